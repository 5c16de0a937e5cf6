//! Leak matrix, route `vpn` with the tunnel's `ipv6 '1'` ("vpn6"): the device's IPv6 is routed
//! into the tunnel instead of rejected; it must work end to end and never leave in the clear,
//! also across the faults that touch the tunnel and moat. Needs root.

mod lab;

use lab::matrix::{run, run_kinds, Fault};

#[test]
fn vpn6_traffic_kinds_ipv6_dns_dot_quic() {
    run_kinds("vpn6");
}

#[test]
fn vpn6_steady() {
    run("vpn6", Fault::None);
}

#[test]
fn vpn6_tunnel_down_and_up() {
    run("vpn6", Fault::TunnelDownUp);
}

#[test]
fn vpn6_wireguard_go_killed_and_restarted() {
    run("vpn6", Fault::WireguardKilled);
}

#[test]
fn vpn6_moat_sigkill() {
    run("vpn6", Fault::MoatSigkill);
}

#[test]
fn vpn6_moat_restart() {
    run("vpn6", Fault::MoatRestart);
}

#[test]
fn vpn6_reload_switches_the_device_to_another_protected_route_and_back() {
    run("vpn6", Fault::ReloadSwitchRoute);
}

#[test]
fn vpn6_tunnel_flaps_while_moat_is_dead() {
    run("vpn6", Fault::MoatDeadTunnelFlap);
}
