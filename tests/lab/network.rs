//! Building the lab: namespaces and links, the servers, WireGuard on both ends, fw4, tor,
//! moat itself, and the moat configs the tests write.

use super::*;

impl Lab {
    pub(super) fn build(&mut self, opts: &Options) {
        let (r, i, v) = (self.router.clone(), self.inet.clone(), self.vpn.clone());
        self.note(&format!("building lab {} in {}", self.id, self.dir.display()));
        for ns in [&r, &i, &v] {
            self.add_ns(ns);
        }
        // Router: forwarding on, as OpenWrt.
        self.sysctl(&r, "net.ipv4.ip_forward=1");
        self.sysctl(&r, "net.ipv6.conf.all.forwarding=1");
        self.sysctl(&i, "net.ipv4.ip_forward=1");
        self.sysctl(&i, "net.ipv6.conf.all.forwarding=1");
        self.sysctl(&v, "net.ipv4.ip_forward=1");
        self.sysctl(&v, "net.ipv6.conf.all.forwarding=1");

        // LAN bridge.
        self.must(&r, &["ip", "link", "add", "br-lan", "type", "bridge"]);
        self.must(&r, &["ip", "addr", "add", &format!("{ROUTER_LAN4}/24"), "dev", "br-lan"]);
        self.must(&r, &["ip", "addr", "add", &format!("{ROUTER_LAN6}/64"), "dev", "br-lan", "nodad"]);
        self.must(&r, &["ip", "link", "set", "br-lan", "up"]);
        for (k, spec) in opts.devices.iter().enumerate() {
            let ns = format!("{}-d{k}-{}", self.id, spec.label);
            self.add_ns(&ns);
            let mac = format!("02:6d:61:62:00:{:02x}", k + 1);
            let ip4 = Ipv4Addr::new(192, 168, 77, 10 + k as u8);
            let ip6 = Ipv6Addr::new(0xfd6d, 0x6f61, 0x7400, 0x77, 0, 0, 0, 0x10 + k as u16);
            let port = format!("lan{k}");
            self.must(&r, &["ip", "link", "add", "name", &port, "type", "veth", "peer", "name", "eth0", "netns", &ns]);
            self.must(&r, &["ip", "link", "set", &port, "master", "br-lan", "up"]);
            self.must(&ns, &["ip", "link", "set", "eth0", "address", &mac]);
            self.must(&ns, &["ip", "addr", "add", &format!("{ip4}/24"), "dev", "eth0"]);
            self.must(&ns, &["ip", "addr", "add", &format!("{ip6}/64"), "dev", "eth0", "nodad"]);
            self.must(&ns, &["ip", "link", "set", "eth0", "up"]);
            self.must(&ns, &["ip", "route", "add", "default", "via", &ROUTER_LAN4.to_string()]);
            self.must(&ns, &["ip", "-6", "route", "add", "default", "via", &ROUTER_LAN6.to_string()]);
            self.devices.push(Device { label: spec.label.clone(), ns, mac, ip4, ip6, names: spec.names.clone() });
        }

        // WAN link: router pppoe-wan <-> internet wan0. Both ends forward, so neither sends
        // router solicitations; what remains is ARP/ND/MLD housekeeping, which the analysis
        // tells apart (IPv6 neighbour discovery needs the link-local addresses).
        self.must(&r, &["ip", "link", "add", "name", "pppoe-wan", "type", "veth", "peer", "name", "wan0", "netns", &i]);
        self.must(&r, &["ip", "addr", "add", &format!("{ROUTER_WAN4}/24"), "dev", "pppoe-wan"]);
        self.must(&r, &["ip", "addr", "add", &format!("{ROUTER_WAN6}/64"), "dev", "pppoe-wan", "nodad"]);
        self.must(&i, &["ip", "addr", "add", &format!("{GATEWAY4}/24"), "dev", "wan0"]);
        self.must(&i, &["ip", "addr", "add", &format!("{GATEWAY6}/64"), "dev", "wan0", "nodad"]);
        self.must(&r, &["ip", "link", "set", "pppoe-wan", "up"]);
        self.must(&i, &["ip", "link", "set", "wan0", "up"]);
        self.must(&r, &["ip", "route", "add", "default", "via", &GATEWAY4.to_string()]);
        self.must(&r, &["ip", "-6", "route", "add", "default", "via", &GATEWAY6.to_string()]);
        // Tor's fake directory authority: unreachable, so tor never sends anything on the WAN.
        self.must(&r, &["ip", "route", "add", "blackhole", TOR_DIRAUTH_NET]);
        // The internet host's addresses.
        for a in [INTERNET4, RESOLVER4] {
            self.must(&i, &["ip", "addr", "add", &format!("{a}/32"), "dev", "lo"]);
        }
        self.must(&i, &["ip", "addr", "add", &format!("{INTERNET6}/128"), "dev", "lo", "nodad"]);
        // Replies to LAN IPv6 (not NATed by fw4) go back to the router.
        self.must(&i, &["ip", "-6", "route", "add", LAN6_PREFIX, "via", &ROUTER_WAN6.to_string()]);

        // VPN server, reached through the internet namespace.
        self.must(&i, &["ip", "link", "add", "name", "vpn0", "type", "veth", "peer", "name", "eth0", "netns", &v]);
        self.must(&i, &["ip", "addr", "add", &format!("{VPN_GATEWAY4}/24"), "dev", "vpn0"]);
        self.must(&v, &["ip", "addr", "add", &format!("{VPN_PUBLIC4}/24"), "dev", "eth0"]);
        self.must(&i, &["ip", "link", "set", "vpn0", "up"]);
        self.must(&v, &["ip", "link", "set", "eth0", "up"]);
        self.must(&v, &["ip", "route", "add", "default", "via", &VPN_GATEWAY4.to_string()]);
        self.must(&i, &["ip", "addr", "add", &format!("{VPN_GATEWAY6}/64"), "dev", "vpn0", "nodad"]);
        self.must(&v, &["ip", "addr", "add", &format!("{VPN_PUBLIC6}/64"), "dev", "eth0", "nodad"]);
        self.must(&v, &["ip", "-6", "route", "add", "default", "via", &VPN_GATEWAY6.to_string()]);
        // The VPN provider NATs its clients (IPv4 and IPv6) onward to the internet.
        self.nft(&v, "table inet labvpn {\n chain post {\n  type nat hook postrouting priority srcnat; policy accept;\n  oifname \"eth0\" masquerade\n }\n}\n")
            .unwrap_or_else(|e| panic!("{e}"));

        self.start_servers();
        self.keygen();
        self.start_wg_server();
        self.start_wg_router();
        if opts.fw4 {
            self.load_fw4().unwrap_or_else(|e| panic!("{e}"));
        }
        assert!(self.wait_handshake(), "no WireGuard handshake between the router and the VPN server within 15 s");
        if opts.tor {
            self.start_tor();
        }
        self.note("lab is up");
    }

    pub(super) fn start_servers(&mut self) {
        use servers::TcpKind::*;
        let any6 = |p: u16| SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), p);
        let inet_servers = in_ns(&self.inet, || {
            let mut v: Vec<servers::Server> = Vec::new();
            for p in [7, 80, 443, 853, 5222] {
                v.push(servers::serve_tcp(any6(p), Echo).expect("tcp echo"));
            }
            v.push(servers::serve_tcp(any6(9), Sink).expect("tcp sink"));
            v.push(servers::serve_tcp(any6(PUSH_PORT), Push).expect("tcp push"));
            // UDP servers bind each address: a wildcard socket would answer from the
            // interface's primary address and the client's connected socket would drop it.
            for p in [7, 123, 443] {
                v.push(servers::serve_udp_echo(SocketAddr::new(IpAddr::V4(INTERNET4), p)).expect("udp echo"));
                v.push(servers::serve_udp_echo(SocketAddr::new(IpAddr::V6(INTERNET6), p)).expect("udp echo v6"));
            }
            let d = dns::serve(
                SocketAddr::new(IpAddr::V4(RESOLVER4), 53),
                dns::Mode::Answer { v4: INTERNET4, v6: INTERNET6 },
            )
            .expect("dns");
            (v, d)
        });
        let (v, d) = inet_servers;
        let outside = d.log.clone();
        self.keep_server(v);
        self.keep_server(d);
        let d = in_ns(&self.vpn, || {
            dns::serve(
                SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 53),
                dns::Mode::Answer { v4: INTERNET4, v6: INTERNET6 },
            )
            .expect("vpn dns")
        });
        let tunnel = d.log.clone();
        self.keep_server(d);
        // The router's resolver (OpenWrt runs dnsmasq): answers the LAN by asking the outside
        // resolver across the WAN.
        let d = in_ns(&self.router, || {
            dns::serve(
                SocketAddr::new(IpAddr::V4(ROUTER_LAN4), 53),
                dns::Mode::Forward(SocketAddr::new(IpAddr::V4(RESOLVER4), 53)),
            )
            .expect("router dns")
        });
        let router = d.log.clone();
        self.keep_server(d);
        self.outside_dns = outside;
        self.tunnel_dns = tunnel;
        self.router_dns = router;
        self.note("servers up: internet tcp echo 7,80,443,853,5222 sink 9 push 5223, udp echo 7,123,443, dns 53; vpn dns 53; router dns forwarder 53");
    }

    pub(super) fn keygen(&self) {
        for who in ["router", "server"] {
            let key = self.host(&["wg", "genkey"]).unwrap_or_else(|e| panic!("{e}"));
            let public = self.exec(&["wg", "pubkey"], Some(&key)).unwrap_or_else(|e| panic!("{e}"));
            fs::write(self.dir.join(format!("wg-{who}.key")), key.trim()).unwrap();
            fs::write(self.dir.join(format!("wg-{who}.pub")), public.trim()).unwrap();
        }
    }

    pub(super) fn key_path(&self, who: &str) -> String {
        self.dir.join(format!("wg-{who}.key")).to_string_lossy().to_string()
    }

    pub(super) fn public_key(&self, who: &str) -> String {
        fs::read_to_string(self.dir.join(format!("wg-{who}.pub"))).unwrap().trim().to_string()
    }

    pub(super) fn wireguard_go(&self, tag: &str, ns: &str, ifname: &str) {
        let _ = fs::remove_file(format!("/var/run/wireguard/{ifname}.sock"));
        self.spawn(tag, ns, &["wireguard-go", ifname], &[("WG_PROCESS_FOREGROUND", "1"), ("LOG_LEVEL", "error")]);
        let sock = format!("/var/run/wireguard/{ifname}.sock");
        let ok = self.wait_for(&format!("{ifname} control socket"), Duration::from_secs(10), || {
            Path::new(&sock).exists() && self.ns(ns, &["ip", "link", "show", ifname]).is_ok()
        });
        assert!(ok, "wireguard-go {ifname} did not come up; log:\n{}", self.proc_log(tag));
    }

    /// Start the VPN server's wireguard-go and configure it (peer = the router).
    pub fn start_wg_server(&self) {
        let (v, w) = (&self.vpn, &self.wg_server);
        self.wireguard_go("wg-server", v, w);
        let rpub = self.public_key("router");
        // The router does not masquerade IPv6 into the tunnel (fw4 masq is IPv4), so the LAN's ULA
        // prefix is among the router peer's allowed IPs and routed back through the tunnel.
        let allowed = format!("{ROUTER_TUNNEL4}/32,{ROUTER_TUNNEL6}/128,{LAN6_PREFIX}");
        self.must(
            v,
            &[
                "wg",
                "set",
                w,
                "private-key",
                &self.key_path("server"),
                "listen-port",
                &WG_PORT.to_string(),
                "peer",
                &rpub,
                "allowed-ips",
                &allowed,
            ],
        );
        // Like a kernel WireGuard device: no IPv6 link-local, no multicast flag. The kernel
        // still sends MLD reports for the tunnel address's solicited-node group at link up
        // (see `wait_handshake`).
        self.must(v, &["ip", "link", "set", w, "addrgenmode", "none", "multicast", "off"]);
        self.must(v, &["ip", "addr", "add", &format!("{VPN_TUNNEL4}/24"), "dev", w]);
        self.must(v, &["ip", "addr", "add", &format!("{VPN_TUNNEL6}/64"), "dev", w, "nodad"]);
        self.must(v, &["ip", "link", "set", w, "up"]);
        self.must(v, &["ip", "-6", "route", "add", LAN6_PREFIX, "dev", w]);
    }

    /// A second home (for the companion's two-peer test): namespace `<id>-h2` reaching the
    /// internet namespace over a veth (198.18.0.2/30), with its own wireguard-go `<wg>h` peered
    /// to the VPN server as 10.64.0.3 (a second peer of the server). Returns (namespace, wg device).
    pub fn add_home(&self) -> (String, String) {
        let (i, v) = (&self.inet, &self.vpn);
        let h = format!("{}-h2", self.id);
        self.add_ns(&h);
        self.must(i, &["ip", "link", "add", "name", "home2", "type", "veth", "peer", "name", "eth0", "netns", &h]);
        self.must(i, &["ip", "addr", "add", "198.18.0.1/30", "dev", "home2"]);
        self.must(i, &["ip", "link", "set", "home2", "up"]);
        self.must(&h, &["ip", "addr", "add", "198.18.0.2/30", "dev", "eth0"]);
        self.must(&h, &["ip", "link", "set", "eth0", "up"]);
        self.must(&h, &["ip", "route", "add", "default", "via", "198.18.0.1"]);
        let key = self.host(&["wg", "genkey"]).unwrap_or_else(|e| panic!("{e}"));
        let public = self.exec(&["wg", "pubkey"], Some(&key)).unwrap_or_else(|e| panic!("{e}"));
        fs::write(self.dir.join("wg-home2.key"), key.trim()).unwrap();
        let w = format!("{}h", self.wg_router);
        self.wireguard_go("wg-home2", &h, &w);
        let spub = self.public_key("server");
        let endpoint = format!("{VPN_PUBLIC4}:{WG_PORT}");
        let kp = self.key_path("home2");
        self.must(
            &h,
            &["wg", "set", &w, "private-key", &kp, "peer", &spub, "endpoint", &endpoint, "allowed-ips", "0.0.0.0/0"],
        );
        self.must(&h, &["ip", "link", "set", &w, "addrgenmode", "none", "multicast", "off"]);
        self.must(&h, &["ip", "addr", "add", "10.64.0.3/24", "dev", &w]);
        self.must(&h, &["ip", "link", "set", &w, "up"]);
        self.must(v, &["wg", "set", &self.wg_server, "peer", public.trim(), "allowed-ips", "10.64.0.3/32"]);
        (h, w)
    }

    /// Start (or restart) the router's wireguard-go and configure it (peer = the VPN server).
    /// No route uses it: routing into the tunnel is moat's job (or [`Lab::route_by_hand`]'s).
    pub fn start_wg_router(&self) {
        let (r, w) = (&self.router, &self.wg_router);
        self.wireguard_go("wg-router", r, w);
        let spub = self.public_key("server");
        self.must(
            r,
            &[
                "wg",
                "set",
                w,
                "private-key",
                &self.key_path("router"),
                "peer",
                &spub,
                "endpoint",
                &format!("{VPN_PUBLIC4}:{WG_PORT}"),
                "allowed-ips",
                "0.0.0.0/0,::/0",
            ],
        );
        // Like a kernel WireGuard device: no IPv6 link-local, no multicast flag. The kernel
        // still sends MLD reports for the tunnel address's solicited-node group at link up
        // (see `wait_handshake`).
        self.must(r, &["ip", "link", "set", w, "addrgenmode", "none", "multicast", "off"]);
        self.must(r, &["ip", "addr", "add", &format!("{ROUTER_TUNNEL4}/24"), "dev", w]);
        self.must(r, &["ip", "addr", "add", &format!("{ROUTER_TUNNEL6}/64"), "dev", w, "nodad"]);
        self.must(r, &["ip", "link", "set", w, "up"]);
    }

    /// Wait (up to 15 s) for the router's first WireGuard handshake. Until then wireguard-go
    /// holds what the router's kernel sent into the tunnel: at link up, two 76-byte MLD reports
    /// for the tunnel address's solicited-node group (`multicast off` does not stop them). When a
    /// first handshake fails, wireguard-go retries 5 s later, which can be inside a test's WAN
    /// capture, and a held report then shows up as one unpadded message from before moat ran
    /// (seen once in a CI run of tests/shaper_shared_lab.rs: 112 bytes among 547 of 1,440).
    /// A datagram to the VPN server's discard port starts the handshake if nothing else did.
    pub fn wait_handshake(&self) -> bool {
        let _ = in_ns(&self.router, || UdpSocket::bind("0.0.0.0:0").and_then(|s| s.send_to(b"x", (VPN_TUNNEL4, 9))));
        self.wait_for("first handshake", Duration::from_secs(15), || self.latest_handshake() > 0)
    }

    /// When the router last completed a handshake with the VPN server, as `wg show` reports it
    /// (Unix seconds; 0: none yet, or no answer).
    pub fn latest_handshake(&self) -> u64 {
        let out = self.ns(&self.router, &["wg", "show", &self.wg_router, "latest-handshakes"]).unwrap_or_default();
        out.split_whitespace().nth(1).and_then(|t| t.parse().ok()).unwrap_or(0)
    }

    /// Kill the router's wireguard-go (SIGKILL): its interface disappears.
    pub fn kill_wg_router(&self) {
        self.kill("wg-router", libc::SIGKILL);
        let w = self.wg_router.clone();
        let gone = self.wait_for("router wg interface gone", Duration::from_secs(5), || {
            self.ns(&self.router, &["ip", "link", "show", &w]).is_err()
        });
        assert!(gone, "{w} still exists after killing wireguard-go");
        let _ = fs::remove_file(format!("/var/run/wireguard/{w}.sock"));
    }

    /// (Re)load the fw4 ruleset fixture in the router (= `fw4 reload`).
    pub fn load_fw4(&self) -> Result<String, String> {
        assert!(valid_ifname(&self.wg_router));
        let text = FW4_TEMPLATE.replace("@WG@", &self.wg_router);
        fs::write(self.dir.join("fw4.nft"), &text).unwrap();
        self.exec(
            &["ip", "netns", "exec", &self.router, "nft", "-f", &self.dir.join("fw4.nft").to_string_lossy()],
            None,
        )
    }

    pub(super) fn start_tor(&self) {
        let dir = self.dir.to_string_lossy().to_string();
        let data = self.dir.join("tor-data");
        fs::create_dir_all(&data).unwrap();
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&data, fs::Permissions::from_mode(0o700)).unwrap();
        let rc = TORRC_TEMPLATE
            .replace("@DIR@", &dir)
            .replace("@LAN@", &ROUTER_LAN4.to_string())
            .replace("@TRANS@", &TOR_TRANS_PORT.to_string())
            .replace("@DNS@", &TOR_DNS_PORT.to_string());
        let path = self.dir.join("torrc");
        fs::write(&path, rc).unwrap();
        self.spawn("tor", &self.router, &["tor", "-f", &path.to_string_lossy()], &[]);
        let ok = self.wait_for("tor listeners", Duration::from_secs(20), || {
            let l = self.proc_log("tor");
            l.contains("Opened Transparent pf/netfilter listener connection (ready)")
                && l.contains("Opened DNS listener connection (ready)")
        });
        assert!(ok, "tor did not open its listeners; log:\n{}", self.proc_log("tor"));
    }

    /// Tor's info log (accepted connections, DNS requests with names: `SafeLogging 0`).
    pub fn tor_log(&self) -> String {
        fs::read_to_string(self.dir.join("tor-info.log")).unwrap_or_default()
    }

    // ----- routing a device into the tunnel by hand (no moat) -----

    /// Route `dev` into the WireGuard tunnel with plain nft + ip rule, the way the lab facts
    /// describe it, without moat (for lab self-checks and the benchmark baseline).
    pub fn route_by_hand(&self, dev: &Device) {
        let r = &self.router;
        let script = format!(
            "table inet labroute {{\n chain pre {{\n  type filter hook prerouting priority mangle; policy accept;\n  iifname \"br-lan\" ether saddr {} meta mark set 0x100\n }}\n}}\n",
            dev.mac
        );
        self.nft(r, &script).unwrap_or_else(|e| panic!("{e}"));
        self.must(r, &["ip", "rule", "add", "fwmark", "0x100", "lookup", "100", "priority", "100"]);
        self.must(r, &["ip", "route", "add", "default", "dev", &self.wg_router, "table", "100"]);
    }

    /// Undo [`Lab::route_by_hand`].
    pub fn unroute_by_hand(&self) {
        let r = &self.router;
        let _ = self.ns(r, &["nft", "delete", "table", "inet", "labroute"]);
        let _ = self.ns(r, &["ip", "rule", "del", "fwmark", "0x100", "lookup", "100", "priority", "100"]);
        let _ = self.ns(r, &["ip", "route", "flush", "table", "100"]);
    }

    // ----- moat -----

    /// Write `text` as moat's config file (`<dir>/moat.conf`) and return its path.
    pub fn write_moat_config(&self, text: &str) -> PathBuf {
        let p = self.dir.join("moat.conf");
        // Whole files only, as a config tool that renames its new file into place: a reader never
        // sees a truncated one. (A plain write truncates first; in a CI run's reload storm a
        // reload still reading after the previous SIGHUP read a truncated file, applied "0
        // devices protected", and the device's probes left in the clear until the next reload.)
        let tmp = self.dir.join("moat.conf.new");
        fs::write(&tmp, text).unwrap();
        fs::rename(&tmp, &p).unwrap();
        self.note(&format!("moat config written:\n{text}"));
        *self.moat_config.lock().unwrap() = Some(p.clone());
        p
    }

    /// Rewrite moat's config in place as a slow `>` redirect would: truncate it, `signal` moat
    /// while it is empty (a reload then reads the torn file), write `text` `gap` later.
    pub fn write_moat_config_torn(&self, text: &str, signal: libc::c_int, gap: Duration) {
        let p = self.moat_config.lock().unwrap().clone().expect("moat config written before");
        fs::File::create(&p).unwrap();
        self.signal("moat", signal);
        std::thread::sleep(gap);
        fs::write(&p, text).unwrap();
        self.note(&format!("moat config rewritten in place ({} ms empty)", gap.as_millis()));
    }

    /// Start `moat run` in the router with `config` and wait until its table is in place.
    pub fn start_moat(&self, config: &str) {
        self.start_moat_with(config, &moat_bin(), &[]);
    }

    /// [`Lab::start_moat`] with another binary and extra `moat run` arguments.
    pub fn start_moat_with(&self, config: &str, bin: &Path, extra: &[&str]) {
        self.spawn_moat(config, bin, extra);
        let ok = self.wait_for("moat table present", Duration::from_secs(15), || {
            !self.running("moat") || self.moat_ruleset().is_some()
        });
        assert!(
            ok && self.running("moat"),
            "moat run did not come up (running: {}); log:\n{}",
            self.running("moat"),
            self.proc_log("moat")
        );
        assert!(
            self.moat_ruleset().is_some(),
            "moat is running but `inet moat` is missing; log:\n{}",
            self.proc_log("moat")
        );
    }

    /// Spawn `moat run` (tag `moat`) on `config` without waiting for anything. The guard file
    /// is the lab's own ([`Lab::guard_file`]; a binary without `--guard-file`, i.e. older than
    /// issue 10, is run without it, for before/after figures).
    pub fn spawn_moat(&self, config: &str, bin: &Path, extra: &[&str]) {
        let p = self.write_moat_config(config);
        let state = self.dir.join("moat-state");
        fs::create_dir_all(&state).unwrap();
        let (p, state, guard, bin) = (
            p.to_string_lossy().to_string(),
            state.to_string_lossy().to_string(),
            self.guard_file().to_string_lossy().to_string(),
            bin.to_string_lossy().to_string(),
        );
        let mut args = vec![bin.as_str(), "run", "--config", &p, "--state-dir", &state];
        if has_guard_flag(Path::new(&bin)) {
            args.extend(["--guard-file", guard.as_str()]);
        }
        args.extend(extra);
        // Forget a moat that exited (e.g. on an invalid config), so `running("moat")` is this one.
        if !self.running("moat") {
            self.kill("moat", 0);
        }
        self.spawn("moat", &self.router, &args, &[("RUST_BACKTRACE", "1")]);
    }

    /// Where the lab's moat writes its boot-time guard (never the host's /usr/share).
    pub fn guard_file(&self) -> PathBuf {
        self.dir.join("moat-guard.nft")
    }

    /// `nft list table inet moat` in the router, if the table exists.
    pub fn moat_ruleset(&self) -> Option<String> {
        self.ns(&self.router, &["nft", "list", "table", "inet", "moat"]).ok()
    }

    /// The router's policy routing state (`ip rule` + every table's routes), for comparisons.
    pub fn routing_state(&self) -> String {
        let rules = self.ns(&self.router, &["ip", "rule"]).unwrap_or_default();
        let routes = self.ns(&self.router, &["ip", "route", "show", "table", "all"]).unwrap_or_default();
        let routes6 = self.ns(&self.router, &["ip", "-6", "route", "show", "table", "all"]).unwrap_or_default();
        format!("{rules}\n{routes}\n{routes6}")
    }
}

/// Render a moat UCI config for this lab: the WireGuard tunnel `vpn`, the tor tunnel `tor`,
/// and one `config device` per `(device, route)`.
pub fn moat_config(lab: &Lab, routes: &[(&Device, &str)]) -> String {
    moat_config_v6(lab, routes, false)
}

/// Like [`moat_config`], with the `vpn` tunnel's `ipv6` option set to `ipv6`.
pub fn moat_config_v6(lab: &Lab, routes: &[(&Device, &str)], ipv6: bool) -> String {
    let mut s = String::from(
        "config moat 'main'\n\toption enabled '1'\n\toption log_level 'debug'\n\tlist lan_device 'br-lan'\n\n",
    );
    s.push_str(&format!(
        "config tunnel 'vpn'\n\toption type 'wireguard'\n\toption device '{}'\n\toption dns '{VPN_TUNNEL4}'\n\toption ipv6 '{}'\n\n",
        lab.wg_router,
        ipv6 as u8
    ));
    s.push_str(&format!("config tunnel 'tor'\n\toption type 'tor'\n\toption trans_port '{TOR_TRANS_PORT}'\n\toption dns_port '{TOR_DNS_PORT}'\n\n"));
    for (d, route) in routes {
        s.push_str(&format!(
            "config device\n\toption name '{}'\n\tlist mac '{}'\n\toption route '{route}'\n\n",
            d.label, d.mac
        ));
    }
    s
}

impl Lab {
    /// One `Ip:` counter of `/proc/net/snmp` in namespace `ns` (e.g. `InHdrErrors`, where the
    /// receiving kernel counts the cover packets it drops).
    pub fn snmp_ip(&self, ns: &str, field: &str) -> u64 {
        let text = self.must(ns, &["cat", "/proc/net/snmp"]);
        let mut lines = text.lines().filter(|x| x.starts_with("Ip:"));
        let names: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
        let vals: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
        vals[names.iter().position(|n| *n == field).unwrap()].parse().unwrap()
    }
}
