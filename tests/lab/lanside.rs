//! LAN-side placements and router services for issue 10 (points 3 and 4): a device on a second
//! bridge (a guest network) or on an interface outside any bridge (Wi-Fi outside br-lan), an fw4 zone for such an
//! interface that may forward to the WAN (and the tunnel), and router services that relay: a
//! TCP forwarder (socat), a DNS forwarder on another port, dnsmasq as a DHCPv4/DHCPv6 relay.
//! Used by `tests/leak_lanside.rs`.

use super::*;

/// The router's address on LAN-side subnet `net` (`192.168.<net>.1`).
pub fn router4(net: u8) -> Ipv4Addr {
    Ipv4Addr::new(192, 168, net, 1)
}

/// The router's IPv6 address on LAN-side subnet `net` (`fd6d:6f61:7400:<net>::1`, inside
/// [`LAN6_PREFIX`], so the internet host routes replies back to the router).
pub fn router6(net: u8) -> Ipv6Addr {
    Ipv6Addr::new(0xfd6d, 0x6f61, 0x7400, net as u16, 0, 0, 0, 1)
}

impl Lab {
    /// A device namespace whose `eth0` (MAC `mac`) is the peer of the router's `port`; returns
    /// the namespace name. The caller attaches `port` and configures addresses.
    fn extra_device_ns(&self, label: &str, port: &str, mac: &str) -> String {
        let ns = format!("{}-x-{label}", self.id);
        self.add_ns(&ns);
        self.must(
            &self.router,
            &["ip", "link", "add", "name", port, "type", "veth", "peer", "name", "eth0", "netns", &ns],
        );
        self.must(&ns, &["ip", "link", "set", "eth0", "address", mac]);
        self.must(&ns, &["ip", "link", "set", "eth0", "up"]);
        ns
    }

    fn device_addresses(&self, ns: &str, ifname: &str, net: u8) -> (Ipv4Addr, Ipv6Addr) {
        let ip4 = Ipv4Addr::new(192, 168, net, 10);
        let ip6 = Ipv6Addr::new(0xfd6d, 0x6f61, 0x7400, net as u16, 0, 0, 0, 0x10);
        self.must(ns, &["ip", "addr", "add", &format!("{ip4}/24"), "dev", ifname]);
        self.must(ns, &["ip", "addr", "add", &format!("{ip6}/64"), "dev", ifname, "nodad"]);
        self.must(ns, &["ip", "link", "set", ifname, "up"]);
        self.must(ns, &["ip", "route", "add", "default", "via", &router4(net).to_string()]);
        self.must(ns, &["ip", "-6", "route", "add", "default", "via", &router6(net).to_string()]);
        (ip4, ip6)
    }

    fn router_addresses(&self, ifname: &str, net: u8) {
        let r = &self.router;
        self.must(r, &["ip", "addr", "add", &format!("{}/24", router4(net)), "dev", ifname]);
        self.must(r, &["ip", "addr", "add", &format!("{}/64", router6(net)), "dev", ifname, "nodad"]);
        self.must(r, &["ip", "link", "set", ifname, "up"]);
    }

    /// A device `like` (same MAC and names) on a second bridge `bridge` of the router (a guest
    /// network), subnet `192.168.<net>.0/24`.
    pub fn guest_device(&self, like: &Device, bridge: &str, net: u8) -> Device {
        assert!(valid_ifname(bridge));
        self.must(&self.router, &["ip", "link", "add", bridge, "type", "bridge"]);
        self.router_addresses(bridge, net);
        let port = format!("g{net}");
        let ns = self.extra_device_ns("guest", &port, &like.mac);
        self.must(&self.router, &["ip", "link", "set", &port, "master", bridge, "up"]);
        let (ip4, ip6) = self.device_addresses(&ns, "eth0", net);
        Device {
            label: format!("{}-on-{bridge}", like.label),
            ns,
            mac: like.mac.clone(),
            ip4,
            ip6,
            names: like.names.clone(),
        }
    }

    /// A device `like` (same MAC and names) on an interface of the router outside any bridge,
    /// `ifname` (a Wi-Fi interface outside br-lan; also what a VLAN sub-interface like
    /// `br-lan.1` looks like to nft: another iifname. The lab kernel has no 802.1Q support,
    /// CONFIG_VLAN_8021Q is off, so a real VLAN device cannot be made here).
    pub fn standalone_device(&self, like: &Device, ifname: &str, net: u8) -> Device {
        assert!(valid_ifname(ifname));
        let ns = self.extra_device_ns("wifi", ifname, &like.mac);
        self.router_addresses(ifname, net);
        let (ip4, ip6) = self.device_addresses(&ns, "eth0", net);
        Device {
            label: format!("{}-on-{ifname}", like.label),
            ns,
            mac: like.mac.clone(),
            ip4,
            ip6,
            names: like.names.clone(),
        }
    }

    /// Put `ifname` in an fw4 zone of its own that may forward to the WAN and to the tunnel and
    /// reach the router (as a user's guest/IoT zone does; the rules fw4 renders for it come
    /// down to these accepts).
    pub fn fw4_zone_to_wan(&self, ifname: &str) {
        assert!(valid_ifname(ifname));
        let script = format!(
            "insert rule inet fw4 forward iifname \"{ifname}\" oifname {{ \"pppoe-wan\", \"{wg}\" }} accept\n\
             insert rule inet fw4 input iifname \"{ifname}\" accept\n",
            wg = self.wg_router
        );
        self.nft(&self.router, &script).unwrap_or_else(|e| panic!("{e}"));
    }

    /// A TCP forwarder on the router (socat): `listen` -> `to`.
    pub fn tcp_forwarder(&self, listen: SocketAddr, to: SocketAddr) {
        let l = format!("TCP-LISTEN:{},bind={},fork,reuseaddr", listen.port(), listen.ip());
        let t = format!("TCP:{to}");
        self.spawn("socat", &self.router, &["socat", &l, &t], &[]);
        let ok = self.wait_for("socat listening", Duration::from_secs(5), || {
            self.ns(&self.router, &["ss", "-Hltn", &format!("sport = :{}", listen.port())])
                .map(|o| !o.trim().is_empty())
                .unwrap_or(false)
        });
        assert!(ok, "socat did not listen; log:\n{}", self.proc_log("socat"));
    }

    /// A DNS forwarder on the router at `listen` asking the outside resolver (a resolver on
    /// another port, a DoH front end: a router service that resolves for the LAN).
    pub fn dns_forwarder(&self, listen: SocketAddr) {
        let d = in_ns(&self.router, || {
            dns::serve(listen, dns::Mode::Forward(SocketAddr::new(IpAddr::V4(RESOLVER4), 53))).expect("dns forwarder")
        });
        self.keep_server(d);
    }

    /// dnsmasq on the router as the LAN's DHCPv4 server (192.168.77.100-150) writing its leases to
    /// `<lab dir>/dhcp.leases`, which it returns (the discovery tests read it).
    pub fn dhcp_server(&self) -> std::path::PathBuf {
        let leases = self.dir.join("dhcp.leases");
        let leasefile = format!("--dhcp-leasefile={}", leases.display());
        self.spawn(
            "dnsmasq",
            &self.router,
            &[
                "dnsmasq",
                "--keep-in-foreground",
                "--conf-file=/dev/null",
                "--port=0",
                "--interface=br-lan",
                "--bind-interfaces",
                "--dhcp-range=192.168.77.100,192.168.77.150,12h",
                "--dhcp-authoritative",
                &leasefile,
                "--pid-file=",
                "--user=root",
                "--log-dhcp",
                "--log-facility=-",
            ],
            &[],
        );
        leases
    }

    /// `dev` asks for a DHCP lease as `hostname` (busybox udhcpc, no script) until [`Self::dhcp_server`]'s
    /// `leases` file names its MAC, for up to 20 s. True when udhcpc succeeded and the lease is there.
    pub fn dhcp_lease(&self, dev: &Device, hostname: &str, leases: &std::path::Path) -> bool {
        let host = format!("hostname:{hostname}");
        self.wait_for("a DHCP lease", Duration::from_secs(20), || {
            let args =
                ["busybox", "udhcpc", "-i", "eth0", "-n", "-q", "-t", "3", "-T", "1", "-s", "/bin/true", "-x", &host];
            self.ns(&dev.ns, &args).is_ok() && std::fs::read_to_string(leases).is_ok_and(|t| t.contains(&dev.mac))
        })
    }

    /// dnsmasq on the router as a DHCPv4 and DHCPv6 relay for `br-lan`, to servers on the WAN
    /// (the internet host's WAN addresses; nobody answers: only what leaves counts).
    pub fn dhcp_relay(&self) {
        let r4 = format!("--dhcp-relay={ROUTER_LAN4},{GATEWAY4}");
        let r6 = format!("--dhcp-relay={ROUTER_LAN6},{GATEWAY6}");
        let pid = self.dir.join("dnsmasq.pid").to_string_lossy().to_string();
        self.spawn(
            "dnsmasq",
            &self.router,
            &[
                "dnsmasq",
                "--keep-in-foreground",
                "--conf-file=/dev/null",
                "--port=0",
                "--user=root",
                "--interface=br-lan",
                &format!("--pid-file={pid}"),
                "--log-dhcp",
                "--log-facility=-",
                &r4,
                &r6,
            ],
            &[],
        );
        let ok = self.wait_for("dnsmasq listening on 67 and 547", Duration::from_secs(5), || {
            self.ns(&self.router, &["ss", "-Hlun"]).map(|o| o.contains(":67 ") && o.contains(":547 ")).unwrap_or(false)
        });
        assert!(ok, "dnsmasq relay did not come up; log:\n{}", self.proc_log("dnsmasq"));
    }

    /// From `dev`: a DHCPDISCOVER (broadcast, chaddr = its MAC, hostname = its first name) and
    /// a DHCPv6 Solicit (from its link-local address to ff02::1:2, DUID-LL of its MAC, FQDN =
    /// its first name). Errors only if the packets cannot be sent.
    pub fn send_dhcp(&self, dev: &Device) -> Result<(), String> {
        let mac: Vec<u8> = dev.mac.split(':').map(|h| u8::from_str_radix(h, 16).unwrap()).collect();
        let name = dev.names[0].clone();
        in_ns(&dev.ns, move || -> Result<(), String> {
            let e = |e: std::io::Error| e.to_string();
            // DHCPv4 BOOTREQUEST.
            let mut p = vec![0u8; 240];
            p[0] = 1;
            p[1] = 1;
            p[2] = 6;
            p[4..8].copy_from_slice(&[0x6d, 0x6f, 0x61, 0x74]);
            p[28..34].copy_from_slice(&mac);
            p[236..240].copy_from_slice(&[99, 130, 83, 99]);
            p.extend([53, 1, 1]);
            p.extend([12, name.len() as u8]);
            p.extend(name.as_bytes());
            p.push(255);
            let s = UdpSocket::bind("0.0.0.0:68").map_err(e)?;
            s.set_broadcast(true).map_err(e)?;
            s.send_to(&p, "255.255.255.255:67").map_err(e)?;
            // DHCPv6 Solicit from the EUI-64 link-local address.
            let mut q = vec![1u8, 0x12, 0x34, 0x56];
            q.extend([0, 1, 0, 10, 0, 3, 0, 1]);
            q.extend(&mac);
            q.extend([0, 8, 0, 2, 0, 0]);
            let mut fqdn = vec![0u8];
            for l in name.split('.') {
                fqdn.push(l.len() as u8);
                fqdn.extend(l.as_bytes());
            }
            fqdn.push(0);
            q.extend([0, 39, 0, fqdn.len() as u8]);
            q.extend(&fqdn);
            let idx = nix_ifindex("eth0")?;
            let s6 = UdpSocket::bind(SocketAddr::V6(std::net::SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, 546, 0, idx)))
                .map_err(e)?;
            let to = std::net::SocketAddrV6::new("ff02::1:2".parse().unwrap(), 547, 0, idx);
            s6.send_to(&q, to).map_err(e)?;
            Ok(())
        })
    }
}

/// The interface index of `name` in the current namespace.
fn nix_ifindex(name: &str) -> Result<u32, String> {
    let c = std::ffi::CString::new(name).map_err(|e| e.to_string())?;
    // SAFETY: c is a valid NUL-terminated string.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if i == 0 {
        Err(format!("no interface {name}"))
    } else {
        Ok(i)
    }
}
