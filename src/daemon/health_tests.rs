use super::*;

const TCP_HEADER: &str =
    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n";
const UDP_HEADER: &str =
    "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n";

/// An IPv4 address as the kernel prints it: the `__be32` as a native integer.
fn hex4(a: [u8; 4]) -> String {
    format!("{:08X}", u32::from_ne_bytes(a))
}

fn hex6(a: Ipv6Addr) -> String {
    a.octets().chunks(4).map(|c| format!("{:08X}", u32::from_ne_bytes([c[0], c[1], c[2], c[3]]))).collect()
}

fn tcp_line(sl: u32, local: &str, port: u16, remote: &str, rport: u16, st: &str) -> String {
    format!(
        "{sl:4}: {local}:{port:04X} {remote}:{rport:04X} {st} 00000000:00000000 00:00000000 00000000     0        0 12345 1 0000000000000000 100 0 0 10 0\n"
    )
}

#[test]
fn tcp_listeners_only_in_state_listen() {
    let any = hex4([0, 0, 0, 0]);
    let lan = hex4([192, 168, 1, 1]);
    let text = format!(
        "{TCP_HEADER}{}{}{}",
        tcp_line(0, &lan, 9040, &any, 0, "0A"),
        tcp_line(1, &hex4([127, 0, 0, 1]), 22, &any, 0, "0A"),
        // An established connection from port 9040 is no listener.
        tcp_line(2, &lan, 9041, &hex4([192, 168, 1, 50]), 40000, "01"),
    );
    let l = parse_proc_net("tcp", &text, Proto::Tcp, false).unwrap();
    assert_eq!(
        l,
        [
            Listener { proto: Proto::Tcp, addr: "192.168.1.1".parse().unwrap(), port: 9040 },
            Listener { proto: Proto::Tcp, addr: "127.0.0.1".parse().unwrap(), port: 22 },
        ]
    );
}

#[test]
fn udp_bound_unconnected_sockets_and_ipv6() {
    let any6 = hex6(Ipv6Addr::UNSPECIFIED);
    let text = format!(
        "{UDP_HEADER}{}{}",
        tcp_line(10, &any6, 9053, &any6, 0, "07"),
        // A connected UDP socket (state 01, remote set) is not a DNSPort.
        tcp_line(11, &hex6("fd00::1".parse().unwrap()), 9054, &hex6("fd00::2".parse().unwrap()), 53, "01"),
    );
    let l = parse_proc_net("udp6", &text, Proto::Udp, true).unwrap();
    assert_eq!(l, [Listener { proto: Proto::Udp, addr: "::".parse().unwrap(), port: 9053 }]);
}

#[test]
fn malformed_tables_are_errors_not_empty() {
    let any = hex4([0, 0, 0, 0]);
    let good = tcp_line(0, &any, 9040, &any, 0, "0A");
    for bad in [
        String::new(),
        format!("garbage header\n{good}"),
        format!("{TCP_HEADER}{}", good.replace(": ", " ")),
        format!("{TCP_HEADER}{}", good.replace(&format!("{any}:2350"), &format!("{any}:235"))),
        format!("{TCP_HEADER}{}", good.replace(&format!("{any}:2350"), "0000000G:2350")),
        format!("{TCP_HEADER}{}", good.replace(" 0A ", " A ")),
        format!("{TCP_HEADER}{}", &good[..60]),
    ] {
        assert!(parse_proc_net("tcp", &bad, Proto::Tcp, false).is_err(), "accepted: {bad:?}");
    }
    // The IPv6 width in an IPv4 table (and the reverse) is refused.
    let v6line = tcp_line(0, &hex6(Ipv6Addr::UNSPECIFIED), 1, &hex6(Ipv6Addr::UNSPECIFIED), 0, "0A");
    assert!(parse_proc_net("tcp", &format!("{TCP_HEADER}{v6line}"), Proto::Tcp, false).is_err());
    assert!(parse_proc_net("tcp6", &format!("{TCP_HEADER}{good}"), Proto::Tcp, true).is_err());
    // A header alone is a valid, empty table.
    assert_eq!(parse_proc_net("tcp", TCP_HEADER, Proto::Tcp, false).unwrap(), []);
}

#[test]
fn this_kernels_tables_show_our_own_sockets() {
    // The real /proc/net of this process: a TCP listener and a bound UDP socket appear.
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let udp = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    let (tp, up) = (tcp.local_addr().unwrap().port(), udp.local_addr().unwrap().port());
    let l = read_listeners(Path::new("/proc/net")).unwrap();
    // Under qemu-user a big-endian test binary reads the little-endian host kernel's tables, which
    // print each address word in the host's order: 127.0.0.1 then reads as 1.0.0.127. A real
    // big-endian router's kernel prints its own order, which `to_ne_bytes` undoes.
    let swapped = Listener { proto: Proto::Tcp, addr: "1.0.0.127".parse().unwrap(), port: tp };
    if cfg!(target_endian = "big") && l.contains(&swapped) {
        eprintln!("foreign-endian kernel (qemu-user on a little-endian host): saw our listener byte-swapped");
        return;
    }
    assert!(l.contains(&Listener { proto: Proto::Tcp, addr: "127.0.0.1".parse().unwrap(), port: tp }), "{l:?}");
    assert!(l.contains(&Listener { proto: Proto::Udp, addr: "0.0.0.0".parse().unwrap(), port: up }), "{l:?}");
    drop(tcp);
    let l = read_listeners(Path::new("/proc/net")).unwrap();
    assert!(!l.iter().any(|x| x.proto == Proto::Tcp && x.port == tp), "closed listener still seen");
}

#[test]
fn tor_problems_name_the_port() {
    let lan: IpAddr = "192.168.1.1".parse().unwrap();
    let both =
        [Listener { proto: Proto::Tcp, addr: lan, port: 9040 }, Listener { proto: Proto::Udp, addr: lan, port: 9053 }];
    assert_eq!(tor_problem(&both, 9040, 9053), None);
    assert_eq!(
        tor_problem(&[], 9040, 9053).unwrap(),
        "tor is not listening on 9040 (TransPort); tor is not listening on 9053 (DNSPort)"
    );
    assert_eq!(tor_problem(&both[1..], 9040, 9053).unwrap(), "tor is not listening on 9040 (TransPort)");
    // A UDP socket on the TransPort number does not count as the TCP listener.
    let wrong = [Listener { proto: Proto::Udp, addr: lan, port: 9040 }, both[1]];
    assert_eq!(tor_problem(&wrong, 9040, 9053).unwrap(), "tor is not listening on 9040 (TransPort)");
    let lo = [Listener { proto: Proto::Tcp, addr: "127.0.0.1".parse().unwrap(), port: 9040 }, both[1]];
    assert!(tor_problem(&lo, 9040, 9053).unwrap().starts_with("tor listens on 9040 (TransPort) only on 127.0.0.1"));
}

#[test]
fn uapi_answers() {
    let two_peers = "private_key=ab\nlisten_port=51820\npublic_key=cd\nlast_handshake_time_sec=1700000000\nlast_handshake_time_nsec=5\npublic_key=ef\nlast_handshake_time_sec=1700000100\nerrno=0\n\n";
    assert_eq!(parse_uapi_handshake(two_peers), Ok(1700000100));
    assert_eq!(parse_uapi_handshake("private_key=ab\nerrno=0\n\n"), Ok(0));
    assert!(parse_uapi_handshake("errno=1\n\n").is_err());
    assert!(parse_uapi_handshake("last_handshake_time_sec=1\n").is_err(), "no errno: truncated");
    assert!(parse_uapi_handshake("last_handshake_time_sec=x\nerrno=0\n").is_err());
    assert!(parse_uapi_handshake("nonsense\nerrno=0\n").is_err());
    assert_eq!(handshake_note(0, 1000).unwrap(), "up, no handshake yet");
    assert_eq!(handshake_note(1000, 1100), None);
    assert_eq!(handshake_note(1000, 1180).unwrap(), "up, no handshake for 3 min");
}

#[test]
fn uapi_socket_is_asked() {
    // A stand-in wireguard-go: answers one `get=1` on <dir>/wgt0.sock.
    let dir = std::env::temp_dir().join(format!("moat-health-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let sock = std::os::unix::net::UnixListener::bind(dir.join("wgt0.sock")).unwrap();
    let server = std::thread::spawn(move || {
        use std::io::{BufRead, Write};
        let (mut s, _) = sock.accept().unwrap();
        let mut req = String::new();
        std::io::BufReader::new(s.try_clone().unwrap()).read_line(&mut req).unwrap();
        assert_eq!(req, "get=1\n");
        s.write_all(b"public_key=cd\nlast_handshake_time_sec=500\nerrno=0\n\n").unwrap();
    });
    assert_eq!(uapi_handshake(&dir, "wgt0"), Some(Ok(500)));
    server.join().unwrap();
    assert_eq!(uapi_handshake(&dir, "wgt1"), None, "no socket: kernel WireGuard, nothing claimed");
    let _ = std::fs::remove_dir_all(&dir);
}
