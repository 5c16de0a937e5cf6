//! Unit tests of validation: defaults, warnings, errors, budgets (grammar tests are in `grammar.rs`).

use super::*;

fn report(text: &str) -> Report {
    let pkg = super::uci::parse("t.conf", text).expect("test config must be valid UCI");
    validate("t.conf", &pkg)
}

fn ok(text: &str) -> Loaded {
    match report(text).into_result() {
        Ok(l) => l,
        Err(e) => panic!("expected a valid model, got errors: {:#?}", e),
    }
}

/// Exactly one error, on `line`, about `option`, whose message contains `needle`.
fn one_error(text: &str, line: usize, option: Option<&str>, needle: &str) -> Diagnostic {
    let r = report(text);
    assert!(r.model.is_none(), "model must be refused");
    assert_eq!(r.errors.len(), 1, "expected one error, got {:#?}", r.errors);
    let e = r.errors[0].clone();
    assert_eq!(e.line, line, "{e}");
    assert_eq!(e.option.as_deref(), option, "{e}");
    assert!(e.message.contains(needle), "message {:?} lacks {:?}", e.message, needle);
    e
}

const WG: &str = "config tunnel 'vpn'\n\toption type 'wireguard'\n\toption device 'wg0'\n\toption dns '10.64.0.1'\n";

// ----- defaults -----

#[test]
fn empty_file_gives_defaults() {
    let l = ok("");
    assert_eq!(l.model.global, Global::default());
    assert!(l.model.tunnels.is_empty() && l.model.devices.is_empty());
    let g = &l.model.global;
    assert!(g.enabled);
    assert_eq!(g.log_level, LogLevel::Info);
    assert_eq!(g.lan_devices, vec![IfName::new("br-lan").unwrap()]);
    assert_eq!((g.fwmark_mask, g.queue_base, g.table_base), (0x0f00_0000, 4200, 4200));
    assert!(!g.realtime, "real-time scheduling is opt-in");
}

#[test]
fn tunnel_and_device_defaults() {
    let l = ok(&format!(
        "{WG}config tunnel 'tor'\n\toption type 'tor'\nconfig device\n\tlist mac 'aa:bb:cc:00:11:22'\n\toption route 'vpn'\n"
    ));
    let m = &l.model;
    let TunnelKind::WireGuard(w) = &m.tunnels[0].kind else { panic!() };
    assert_eq!(w.pad_to, PadTo::Auto);
    assert!(!w.ipv6);
    assert!(w.pad_all);
    assert_eq!(w.cover_dst, Some("10.64.0.1".parse().unwrap()), "cover_dst defaults to dns");
    assert_eq!(m.tunnels[1].kind, TunnelKind::Tor(TorTunnel { trans_port: 9040, dns_port: 9053 }));
    let d = &m.devices[0];
    assert!(d.enabled);
    assert_eq!(d.name, "@device[0]", "an unnamed device is shown by its section address");
    assert_eq!(d.route, Route::Tunnel(Name::new("vpn").unwrap()));
    assert_eq!(d.shaper, None);
    assert_eq!(m.device_tunnel(d).unwrap().name.as_str(), "vpn");
}

#[test]
fn every_global_option_is_read() {
    let l = ok("config moat 'main'\n\toption enabled 'off'\n\toption log_level 'debug'\n\tlist lan_device 'br-lan'\n\tlist lan_device 'br-iot'\n\toption fwmark_mask '0xf0000000'\n\toption queue_base '100'\n\toption table_base '300'\n\toption realtime '1'\n");
    let g = &l.model.global;
    assert!(!g.enabled);
    assert!(g.realtime);
    assert_eq!(g.log_level, LogLevel::Debug);
    assert_eq!(g.lan_devices.len(), 2);
    assert_eq!((g.fwmark_mask, g.queue_base, g.table_base), (0xf000_0000, 100, 300));
    assert!(l.warnings.is_empty());
}

#[test]
fn shaper_modes() {
    let l = ok("config shaper 'a'\n\toption mode 'constant'\n\toption rate '1'\nconfig shaper 'b'\n\toption mode 'stochastic'\n\toption rate '1000'\n");
    assert_eq!(l.model.shapers[0].mode, ShaperMode::Constant(ConstantParams { rate: 1 }));
    assert!(matches!(l.model.shapers[1].mode, ShaperMode::Stochastic(StochasticParams { rate: 1000, .. })));
    one_error("config shaper 'a'\n\toption mode 'constant'\n\toption rate '1001'\n", 3, Some("rate"), "1-1000");
    one_error("config shaper 'a'\n\toption mode 'constant'\n\toption rate '0'\n", 3, Some("rate"), "1-1000");
    one_error("config shaper 'a'\n\toption mode 'cbr'\n\toption rate '5'\n", 2, Some("mode"), "constant or stochastic");
    one_error("config shaper 'a'\n\toption mode 'constant'\n", 1, Some("rate"), "missing");
    one_error("config shaper\n\toption mode 'constant'\n\toption rate '5'\n", 1, None, "needs a name");
}

// ----- unknown names and warnings -----

#[test]
fn unknown_options_and_types_are_errors() {
    let r = report(&format!("{WG}\toption mtu '1420'\nconfig frob 'x'\n\toption y '1'\nconfig device\n\tlist mac 'aa:bb:cc:00:11:22'\n\toption route 'direct'\n\toption colour 'red'\n"));
    assert!(r.model.is_none());
    let e: Vec<(usize, Option<&str>, Kind)> = r.errors.iter().map(|d| (d.line, d.option.as_deref(), d.kind)).collect();
    assert_eq!(e, vec![(5, Some("mtu"), Kind::Unknown), (6, None, Kind::Unknown), (11, Some("colour"), Kind::Unknown)]);
    assert_eq!(
        r.errors[0].message, "unknown option (known here: type, device, dns, ipv6, pad_to, cover_dst, pad_all, companion, companion_required)",
        "no suggestion when nothing is close"
    );
    assert_eq!(r.errors[1].message, "unknown section type 'frob' (known: moat, tunnel, shaper, device)");
    assert!(r.warnings.is_empty());
}

#[test]
fn typos_are_errors_with_a_suggestion() {
    let dev = "config device\n\tlist mac 'aa:bb:cc:00:11:22'\n\toption route 'vpn'\n";
    let e = one_error(&format!("{WG}{SH}{dev}\toption shapper 'steady'\n"), 11, Some("shapper"), "unknown option");
    assert_eq!(e.message, "unknown option; did you mean 'shaper'? (known here: name, mac, route, shaper, enabled)");
    assert_eq!(e.section.as_deref(), Some("@device[0]"));
    let e = one_error(&format!("{WG}config devices\n\tlist mac 'aa:bb:cc:00:11:22'\n"), 5, None, "devices");
    assert_eq!(
        e.message,
        "unknown section type 'devices'; did you mean 'device'? (known: moat, tunnel, shaper, device)"
    );
    one_error("config moat 'main'\n\toption enable '0'\n", 2, Some("enable"), "did you mean 'enabled'?");
    one_error(
        "config tunnel 'tor'\n\toption type 'tor'\n\toption trans_prot '9040'\n",
        3,
        Some("trans_prot"),
        "did you mean 'trans_port'?",
    );
    one_error(
        "config shaper 's'\n\toption mode 'stochastic'\n\toption rate '10'\n\toption decoy '3'\n",
        4,
        Some("decoy"),
        "did you mean 'decoys'?",
    );
    one_error("config tunel 'vpn'\n", 1, None, "did you mean 'tunnel'?");
}

#[test]
fn options_of_another_shaper_mode_are_warnings() {
    let l = ok("config shaper 's'\n\toption mode 'constant'\n\toption rate '10'\n\toption decoys '3'\n");
    assert_eq!(l.warnings.len(), 1);
    assert_eq!(l.warnings[0].message, "option does not apply to a shaper of mode constant (ignored)");
    assert_eq!(l.warnings[0].kind, Kind::Unknown);
}

#[test]
fn options_of_another_tunnel_type_are_warnings() {
    let l = ok("config tunnel 'o'\n\toption type 'interface'\n\toption device 'tun0'\n\toption pad_to '128'\n\toption trans_port '1'\n");
    assert_eq!(l.warnings.len(), 2);
    assert!(l.warnings.iter().all(|w| w.message.contains("does not apply to a tunnel of type interface")));
}

#[test]
fn a_companion_on_an_ipv6_tunnel_warns_that_ipv6_comes_back_unshaped() {
    let wg = "config tunnel 'vpn'\n\toption type 'wireguard'\n\toption device 'wg0'\n\toption companion '10.0.0.1'\n";
    assert!(ok(wg).warnings.is_empty());
    let l = ok(&format!("{wg}\toption ipv6 '1'\n"));
    assert_eq!((l.warnings.len(), l.warnings[0].line, l.warnings[0].option.as_deref()), (1, 4, Some("companion")));
    assert!(l.warnings[0].message.contains("IPv6 (ipv6 '1') comes back unshaped"), "{}", l.warnings[0]);
}

#[test]
fn warnings_survive_errors() {
    let r = report(
        "config moat 'main'\n\tlist lan_device 'br-lan'\n\tlist lan_device 'br-lan'\n\toption log_level 'loud'\n",
    );
    assert_eq!(r.errors.len(), 1);
    assert_eq!(r.warnings.len(), 1);
    assert_eq!(r.warnings[0].option.as_deref(), Some("lan_device"));
}

// ----- errors -----

#[test]
fn wrong_values_name_line_section_and_option() {
    let e = one_error("config moat 'main'\n\toption enabled 'maybe'\n", 2, Some("enabled"), "not a boolean");
    assert_eq!(e.section.as_deref(), Some("main"));
    assert_eq!(e.file, "t.conf");
    one_error("config moat 'main'\n\toption log_level 'loud'\n", 2, Some("log_level"), "error, warn, info or debug");
    one_error("config moat 'main'\n\tlist lan_device ''\n", 2, Some("lan_device"), "interface name");
    one_error(
        "config moat 'main'\n\tlist lan_device 'br-lan'\n\tlist lan_device 'br lan'\n",
        3,
        Some("lan_device"),
        "interface name",
    );
    one_error(
        "config moat 'main'\n\toption lan_device 'br-lan br-iot'\n",
        2,
        Some("lan_device"),
        "one `list lan_device '...'` line per value",
    );
    one_error(
        "config device\n\toption mac 'aa:bb:cc:00:11:22 aa:bb:cc:00:11:23'\n\toption route 'direct'\n",
        2,
        Some("mac"),
        "one `list mac",
    );
}

#[test]
fn all_errors_are_collected() {
    let r = report("config moat 'main'\n\toption enabled 'x'\n\toption queue_base '-1'\nconfig tunnel 'vpn'\n\toption type 'gre'\nconfig device\n\tlist mac 'zz'\n\toption route 'block'\n");
    let lines: Vec<usize> = r.errors.iter().map(|e| e.line).collect();
    assert_eq!(lines, vec![2, 3, 5, 7]);
}

#[test]
fn single_options_given_as_list() {
    one_error("config moat 'main'\n\tlist log_level 'info'\n", 2, Some("log_level"), "single value");
}

#[test]
fn two_main_sections() {
    one_error("config moat 'main'\nconfig moat 'other'\n", 2, None, "only one is allowed");
    one_error("config moat\nconfig moat\n", 2, None, "only one is allowed");
}

#[test]
fn same_name_with_another_type_is_refused_by_the_reader() {
    let r = check_bytes("f", b"config tunnel 'x'\n\toption type 'tor'\nconfig shaper 'x'\n\toption mode 'constant'\n");
    assert_eq!(r.errors.len(), 1, "{:#?}", r.errors);
    assert_eq!(r.errors[0].line, 3);
}

#[test]
fn redeclared_section_name_of_the_same_type() {
    let e = one_error(
        "config tunnel 'vpn'\n\toption type 'tor'\nconfig device\n\tlist mac 'aa:bb:cc:00:11:22'\n\toption route 'direct'\nconfig tunnel 'vpn'\n\toption trans_port '9100'\n",
        6,
        None,
        "declared more than once (first at line 1, again at line 6)",
    );
    assert_eq!(e.section.as_deref(), Some("vpn"));
    assert_eq!(e.kind, Kind::Conflict);
}

#[test]
fn a_second_declaration_is_an_error_wherever_it_is() {
    // The case from issue 12: the last section redeclares a WireGuard tunnel as Tor.
    let r = report(&format!("{WG}config tunnel 'vpn'\n\toption type 'tor'\n"));
    assert!(r.model.is_none());
    let e = r.errors.iter().find(|e| e.message.contains("declared more than once")).expect("redeclaration refused");
    assert_eq!((e.line, e.section.as_deref(), e.option.as_deref()), (5, Some("vpn"), None));
    assert!(e.message.contains("(first at line 1, again at line 5)"), "{e}");
    // Right after the first, and without options: still two declarations of one name.
    one_error("config moat 'main'\nconfig moat 'main'\n", 2, None, "(first at line 1, again at line 2)");
    // Each further declaration is reported at its own line.
    let r = report(
        "config shaper 's'\n\toption mode 'constant'\n\toption rate '5'\nconfig shaper 's'\nconfig shaper 's'\n",
    );
    let lines: Vec<usize> = r.errors.iter().map(|e| e.line).collect();
    assert_eq!(lines, [4, 5], "{:#?}", r.errors);
}

#[test]
fn tunnel_rules() {
    one_error("config tunnel 'vpn'\n\toption device 'wg0'\n", 1, Some("type"), "missing");
    one_error("config tunnel 'vpn'\n\toption type 'gre'\n", 2, Some("type"), "wireguard, interface or tor");
    one_error("config tunnel 'vpn'\n\toption type 'wireguard'\n", 1, Some("device"), "missing");
    one_error("config tunnel\n\toption type 'tor'\n", 1, None, "needs a name");
    one_error("config tunnel 'direct'\n\toption type 'tor'\n", 1, None, "reserved");
    one_error("config tunnel 'block'\n\toption type 'tor'\n", 1, None, "reserved");
    one_error(&format!("config tunnel '{}'\n\toption type 'tor'\n", "t".repeat(33)), 1, None, "1-32");
}

#[test]
fn dns_and_cover_dst() {
    one_error(
        &format!("{WG}\toption ipv6 '0'\n").replace("10.64.0.1", "fd00::53"),
        4,
        Some("dns"),
        "does not carry IPv6",
    );
    // The fix is offered, last.
    let e = one_error(&WG.replace("10.64.0.1", "fd00::53"), 4, Some("dns"), "fd00::53 is IPv6");
    assert!(e.message.ends_with("; use an IPv4 resolver or set ipv6 '1'"), "{e}");
    let l = ok(&format!("{WG}\toption ipv6 '1'\n").replace("10.64.0.1", "fd00::53"));
    let TunnelKind::WireGuard(w) = &l.model.tunnels[0].kind else { panic!() };
    assert_eq!(w.cover_dst, None, "an IPv6 dns is no cover destination");
    one_error(&WG.replace("10.64.0.1", "127.0.0.1"), 4, Some("dns"), "unicast");
    one_error(&WG.replace("10.64.0.1", "0.0.0.0"), 4, Some("dns"), "unicast");
    one_error(&WG.replace("10.64.0.1", "224.0.0.251"), 4, Some("dns"), "unicast");
    one_error(&format!("{WG}\toption cover_dst 'fd00::1'\n"), 5, Some("cover_dst"), "IPv4");
    one_error(&format!("{WG}\toption cover_dst '255.255.255.255'\n"), 5, Some("cover_dst"), "unicast");
    let l = ok(&format!("{WG}\toption cover_dst '10.64.0.9'\n"));
    let TunnelKind::WireGuard(w) = &l.model.tunnels[0].kind else { panic!() };
    assert_eq!(w.cover_dst, Some("10.64.0.9".parse().unwrap()));
}

#[test]
fn pad_to_in_config() {
    one_error(&format!("{WG}\toption pad_to '1500'\n"), 5, Some("pad_to"), "out of range");
    one_error(&format!("{WG}\toption pad_to '32'\n"), 5, Some("pad_to"), "out of range");
    one_error(&format!("{WG}\toption pad_to '1420'\n"), 5, Some("pad_to"), "not a multiple of 16 (try 1408 or auto)");
    let l = ok(&format!("{WG}\toption pad_to '1280'\n\toption pad_all '0'\n"));
    let TunnelKind::WireGuard(w) = &l.model.tunnels[0].kind else { panic!() };
    assert_eq!((w.pad_to, w.pad_all), (PadTo::Bytes(1280), false));
}

#[test]
fn tor_ports() {
    one_error(
        "config tunnel 'tor'\n\toption type 'tor'\n\toption trans_port '9053'\n",
        3,
        Some("dns_port"),
        "different ports",
    );
    one_error(
        "config tunnel 'tor'\n\toption type 'tor'\n\toption dns_port '9040'\n",
        3,
        Some("dns_port"),
        "different ports",
    );
    one_error("config tunnel 'tor'\n\toption type 'tor'\n\toption dns_port '0'\n", 3, Some("dns_port"), "port");
    let l = ok("config tunnel 'tor'\n\toption type 'tor'\n\toption trans_port '9140'\n\toption dns_port '9153'\n");
    assert_eq!(l.model.tunnels[0].kind, TunnelKind::Tor(TorTunnel { trans_port: 9140, dns_port: 9153 }));
}

#[test]
fn two_tunnels_on_one_device() {
    let e = one_error(
        &format!("{WG}config tunnel 'vpn2'\n\toption type 'interface'\n\toption device 'wg0'\n"),
        7,
        Some("device"),
        "already used by tunnel 'vpn' (line 3)",
    );
    assert_eq!(e.section.as_deref(), Some("vpn2"));
}

#[test]
fn tunnel_on_a_lan_device() {
    one_error(
        "config tunnel 'x'\n\toption type 'interface'\n\toption device 'br-lan'\n",
        3,
        Some("device"),
        "lan_device",
    );
}

#[test]
fn mac_in_two_devices_names_both() {
    let e = one_error(
        "config device 'a'\n\tlist mac 'aa:bb:cc:00:11:22'\n\toption route 'direct'\nconfig device\n\toption name 'B'\n\tlist mac 'AA-BB-CC-00-11-22'\n\toption route 'block'\n",
        6,
        Some("mac"),
        "already listed in device section 'a' (line 2)",
    );
    assert_eq!(e.section.as_deref(), Some("@device[1]"));
    one_error(
        "config device\n\tlist mac 'aa:bb:cc:00:11:22'\n\tlist mac 'aa:bb:cc:00:11:22'\n\toption route 'direct'\n",
        3,
        Some("mac"),
        "twice",
    );
}

#[test]
fn mac_clash_is_found_even_if_the_device_has_other_errors() {
    let r = report("config device\n\tlist mac 'aa:bb:cc:00:11:22'\n\toption route 'direct'\nconfig device\n\tlist mac 'aa:bb:cc:00:11:22'\n\toption enabled 'perhaps'\n");
    let got: Vec<(usize, Option<&str>)> = r.errors.iter().map(|e| (e.line, e.option.as_deref())).collect();
    assert_eq!(got, vec![(4, Some("route")), (5, Some("mac")), (6, Some("enabled"))]);
}

#[test]
fn device_rules() {
    one_error("config device\n\toption route 'direct'\n", 1, Some("mac"), "missing");
    one_error("config device\n\tlist mac 'aa:bb:cc:00:11:22'\n", 1, Some("route"), "missing");
    one_error(
        "config device\n\tlist mac 'aa:bb:cc:00:11:22'\n\toption route 'vpn'\n",
        3,
        Some("route"),
        "names no tunnel section",
    );
    one_error(
        "config device\n\tlist mac 'aa:bb:cc:00:11:22'\n\toption route 'v p n'\n",
        3,
        Some("route"),
        "not a route",
    );
    one_error(
        "config device\n\tlist mac 'aa:bb:cc:00:11:22'\n\toption route 'direct'\n\toption enabled '2'\n",
        4,
        Some("enabled"),
        "boolean",
    );
    let l = ok("config device\n\toption mac 'aa:bb:cc:00:11:22'\n\toption route 'direct'\n\toption enabled 'no'\n");
    assert!(!l.model.devices[0].enabled);
    assert_eq!(l.model.devices[0].macs.len(), 1, "a single `option mac` is accepted too");
}

#[test]
fn references_to_an_invalid_tunnel_are_not_reported_twice() {
    let r = report("config tunnel 'vpn'\n\toption type 'wireguard'\n\toption device 'wg0;'\nconfig device\n\tlist mac 'aa:bb:cc:00:11:22'\n\toption route 'vpn'\n\toption shaper 's'\nconfig shaper 's'\n\toption mode 'constant'\n\toption rate '9999'\n");
    let got: Vec<(usize, Option<&str>)> = r.errors.iter().map(|e| (e.line, e.option.as_deref())).collect();
    assert_eq!(got, vec![(3, Some("device")), (10, Some("rate"))]);
}

#[test]
fn shaper_references() {
    let dev = |route: &str, shaper: &str| {
        format!("config device\n\tlist mac 'aa:bb:cc:00:11:22'\n\toption route '{route}'\n\toption shaper '{shaper}'\n")
    };
    let sh = "config shaper 'steady'\n\toption mode 'constant'\n\toption rate '20'\n";
    // fine: wireguard route with a shaper; device lines start at 8
    let l = ok(&format!("{WG}{sh}{}", dev("vpn", "steady")));
    assert_eq!(l.model.devices[0].shaper, Some(Name::new("steady").unwrap()));
    one_error(&format!("{WG}{sh}{}", dev("vpn", "nope")), 11, Some("shaper"), "names no shaper section");
    one_error(&format!("{WG}{sh}{}", dev("direct", "steady")), 11, Some("shaper"), "route is direct");
    one_error(&format!("{WG}{sh}{}", dev("block", "steady")), 11, Some("shaper"), "route is block");
    let tor = "config tunnel 'tor'\n\toption type 'tor'\n";
    one_error(&format!("{tor}{sh}{}", dev("tor", "steady")), 9, Some("shaper"), "type tor");
    let ifc = "config tunnel 'o'\n\toption type 'interface'\n\toption device 'tun0'\n";
    one_error(&format!("{ifc}{sh}{}", dev("o", "steady")), 10, Some("shaper"), "type interface");
    let nodns = "config tunnel 'vpn'\n\toption type 'wireguard'\n\toption device 'wg0'\n";
    one_error(&format!("{nodns}{sh}{}", dev("vpn", "steady")), 10, Some("shaper"), "cover_dst");
    // a disabled device is still checked
    one_error(
        &format!("{WG}{sh}{}\toption enabled '0'\n", dev("direct", "steady")),
        11,
        Some("shaper"),
        "route is direct",
    );
}

// ----- marks, tables, queues -----

fn main_with(opt: &str, val: &str) -> String {
    format!("config moat 'main'\n\toption {opt} '{val}'\n")
}

const SH: &str = "config shaper 'steady'\n\toption mode 'constant'\n\toption rate '20'\n";

/// A device section with MAC number `i`.
fn dev(i: usize, route: &str, shaper: Option<&str>) -> String {
    let mut t =
        format!("config device\n\tlist mac 'aa:bb:cc:00:{:02x}:{:02x}'\n\toption route '{route}'\n", i / 256, i % 256);
    if let Some(s) = shaper {
        t += &format!("\toption shaper '{s}'\n");
    }
    t
}

#[test]
fn fwmark_mask_rules() {
    one_error(&main_with("fwmark_mask", "0"), 2, Some("fwmark_mask"), "zero");
    one_error(&main_with("fwmark_mask", "0x0f0f0000"), 2, Some("fwmark_mask"), "contiguous");
    one_error(&main_with("fwmark_mask", "0x00f00000"), 2, Some("fwmark_mask"), "pbr");
    one_error(&main_with("fwmark_mask", "0x00000f00"), 2, Some("fwmark_mask"), "mwan3");
    ok(&main_with("fwmark_mask", "0xf0000000"));
    ok(&main_with("fwmark_mask", "0x000000ff"));
    ok(&main_with("fwmark_mask", "0x0000c000"));
    // One bit = one value: enough for one route in use, not for a route and a shaped device.
    ok(&format!("{}{WG}{}", main_with("fwmark_mask", "0x01000000"), dev(1, "vpn", None)));
    one_error(
        &format!("{}{WG}{SH}{}", main_with("fwmark_mask", "0x01000000"), dev(1, "vpn", Some("steady"))),
        2,
        Some("fwmark_mask"),
        "need 2 mark values",
    );
    // Two bits = three values: vpn, block, one shaped device; a second shaped device is too many.
    let three = format!(
        "{}{WG}{SH}{}{}",
        main_with("fwmark_mask", "0x03000000"),
        dev(1, "vpn", Some("steady")),
        dev(2, "block", None)
    );
    ok(&three);
    one_error(&format!("{three}{}", dev(3, "vpn", Some("steady"))), 2, Some("fwmark_mask"), "need 4 mark values");
    // Disabled devices use no marks.
    ok(&format!("{three}{}\toption enabled '0'\n", dev(3, "vpn", Some("steady"))));
}

#[test]
fn default_mask_holds_15_values() {
    let mut text = format!("{WG}{SH}");
    for i in 0..14 {
        text += &dev(i, "vpn", Some("steady"));
    }
    let l = ok(&text);
    assert_eq!(l.model.mark_values_needed(), 15);
    text += &dev(14, "vpn", Some("steady"));
    let e = one_error(&text, 0, Some("fwmark_mask"), "need 16 mark values");
    assert_eq!(e.section, None, "no main section: the default mask is at fault");
}

#[test]
fn table_base_rules() {
    let ifc = |n: usize| format!("config tunnel 't{n}'\n\toption type 'interface'\n\toption device 'tun{n}'\n");
    let tor = "config tunnel 'tor'\n\toption type 'tor'\n";
    one_error(&main_with("table_base", "0"), 2, Some("table_base"), "reserved");
    one_error(&main_with("table_base", "253"), 2, Some("table_base"), "253-255");
    one_error(&main_with("table_base", "255"), 2, Some("table_base"), "253-255");
    ok(&main_with("table_base", "252"));
    ok(&format!("{}{}{tor}", main_with("table_base", "252"), ifc(0))); // tor needs no table
    one_error(&format!("{}{}{}", main_with("table_base", "252"), ifc(0), ifc(1)), 2, Some("table_base"), "253-255");
    ok(&main_with("table_base", "256"));
    ok(&format!("{}{}", main_with("table_base", "32765"), ifc(0)));
    one_error(&format!("{}{}{}", main_with("table_base", "32765"), ifc(0), ifc(1)), 2, Some("table_base"), "32766");
    one_error(&main_with("table_base", "4294967295"), 2, Some("table_base"), "32766");
    one_error(&main_with("table_base", "4294967296"), 2, Some("table_base"), "too large");
}

#[test]
fn queue_base_rules() {
    ok(&main_with("queue_base", "0"));
    ok(&main_with("queue_base", "65535"));
    one_error(&main_with("queue_base", "65536"), 2, Some("queue_base"), "too large");
    // One shaped device on a pad_all tunnel: its queue and the tunnel's pad queue.
    let shaped = format!("{WG}{SH}{}", dev(1, "vpn", Some("steady")));
    ok(&format!("{}{shaped}", main_with("queue_base", "65534")));
    one_error(&format!("{}{shaped}", main_with("queue_base", "65535")), 2, Some("queue_base"), "65535");
    let no_pad = format!("{WG}\toption pad_all '0'\n{SH}{}", dev(1, "vpn", Some("steady")));
    ok(&format!("{}{no_pad}", main_with("queue_base", "65535")));
}

#[test]
fn budgets_follow_the_plan_layout() {
    let tor = "config tunnel 'tor'\n\toption type 'tor'\n";
    let unused = "config tunnel 'spare'\n\toption type 'interface'\n\toption device 'tun9'\n";
    let l = ok(&format!(
        "{WG}{tor}{unused}{SH}{}{}{}{}{}",
        dev(1, "vpn", Some("steady")),
        dev(2, "vpn", Some("steady")),
        dev(3, "tor", None),
        dev(4, "block", None),
        dev(5, "direct", None)
    ));
    // routes in use: vpn, tor, block (not spare); plus two shaped devices
    assert_eq!(l.model.mark_values_needed(), 5);
    // vpn and spare have tables; tor has none
    assert_eq!(l.model.tables_needed(), 2);
    // two shaped devices and vpn's pad queue
    assert_eq!(l.model.queues_needed(), 3);
    assert_eq!(l.model.active_devices().count(), 5);
}

#[test]
fn nul_bytes_are_refused_at_their_line() {
    let r = check_bytes("f", b"config tunnel 'vpn'\n\toption type 'wireguard'\n\toption device 'wg\x000'\n");
    assert_eq!(r.errors.len(), 1);
    assert_eq!(r.errors[0].line, 3);
    assert!(r.errors[0].message.contains("NUL"));
    // even in a comment: libuci would drop the rest of the line, so the file is not what it shows
    assert_eq!(check_bytes("f", b"# x\x00\nconfig moat 'main'\n").errors[0].line, 1);
}

#[test]
fn non_utf8_values_are_errors_of_their_option() {
    let r = check_bytes("f", b"config tunnel 'vpn'\n\toption type 'wireguard'\n\toption device 'wg\xff'\n");
    assert_eq!(r.errors.len(), 1, "{:#?}", r.errors);
    assert_eq!((r.errors[0].line, r.errors[0].option.as_deref()), (3, Some("device")));
    assert!(r.errors[0].message.contains("UTF-8"));
    let r = check_bytes("f", b"config device\n\tlist mac '\xfe'\n\toption route 'direct'\n");
    assert_eq!((r.errors[0].line, r.errors[0].option.as_deref()), (2, Some("mac")));
    // bytes in a comment are nobody's value
    assert!(check_bytes("f", b"# caf\xe9\nconfig moat 'main'\n").errors.is_empty());
}

#[test]
fn syntax_errors_are_one_diagnostic() {
    let r = check_bytes("f", b"config moat 'main'\n\toption enabled '1\n");
    assert_eq!(r.errors.len(), 1);
    assert!(r.model.is_none());
    assert_eq!(r.errors[0].option, None);
}

#[test]
fn hostile_values_never_reach_the_model() {
    for v in ["wg0'", "wg0;", "wg0\n", "{wg0}", "$(id)", "`id`", "wg0 ", "wg/0", "wg\u{7f}"] {
        let text =
            format!("config tunnel 'vpn'\n\toption type 'wireguard'\n\toption device \"{}\"\n", v.replace('"', "\\\""));
        let r = report(&text);
        assert_eq!(r.errors.len(), 1, "{v:?}: {:#?}", r.errors);
        assert_eq!((r.errors[0].line, r.errors[0].option.as_deref()), (3, Some("device")), "{v:?}");
    }
}

#[test]
fn every_diagnostic_says_what_kind_it_is() {
    let kinds = |r: &Report| -> Vec<Kind> { r.errors.iter().chain(&r.warnings).map(|d| d.kind).collect() };
    let dir = std::env::temp_dir().join(format!("moat-kind-{}", std::process::id()));
    assert_eq!(kinds(&check_file(dir.join("absent"))), [Kind::File]);
    assert_eq!(kinds(&check_bytes("f", b"config moat 'main'\n\toption enabled '1\n")), [Kind::Syntax]);
    assert_eq!(kinds(&check_bytes("f", b"# \x00\n")), [Kind::Syntax]);
    assert_eq!(kinds(&report(&format!("{WG}\toption pad_to '1500'\n"))), [Kind::Value]);
    assert_eq!(
        kinds(&report("config device\n\tlist mac 'aa:bb:cc:00:11:22'\n\toption route 'vpn'\n")),
        [Kind::Conflict]
    );
    assert_eq!(kinds(&report(&format!("{}{WG}", main_with("fwmark_mask", "0x00f00000")))), [Kind::Conflict]);
    assert_eq!(kinds(&report(&format!("{WG}\toption colour 'red'\nconfig devices\n"))), [Kind::Unknown, Kind::Unknown]);
    assert_eq!(
        kinds(&report("config moat 'main'\n\tlist lan_device 'br-lan'\n\tlist lan_device 'br-lan'\n")),
        [Kind::Value]
    );
}
