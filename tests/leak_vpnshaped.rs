//! Leak matrix, route `vpn` with a shaper on the device ("vpnshaped": constant 200 packets/s):
//! the device's tunnel traffic passes moat's queue (xt NFQUEUE here), which must fail closed
//! when moat is killed or restarts, and never let anything out in the clear. Needs root.

mod lab;

use lab::matrix::{run, run_kinds, Fault};

#[test]
fn vpnshaped_traffic_kinds_ipv6_dns_dot_quic() {
    run_kinds("vpnshaped");
}

#[test]
fn vpnshaped_steady() {
    run("vpnshaped", Fault::None);
}

#[test]
fn vpnshaped_tunnel_down_and_up() {
    run("vpnshaped", Fault::TunnelDownUp);
}

#[test]
fn vpnshaped_wireguard_go_killed_and_restarted() {
    run("vpnshaped", Fault::WireguardKilled);
}

#[test]
fn vpnshaped_moat_sigkill() {
    run("vpnshaped", Fault::MoatSigkill);
}

#[test]
fn vpnshaped_moat_restart() {
    run("vpnshaped", Fault::MoatRestart);
}

#[test]
fn vpnshaped_reload_changed_config() {
    run("vpnshaped", Fault::ReloadChanged);
}
