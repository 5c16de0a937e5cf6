//! Leak matrix, route `vpn`: every fault of issue 3 while the protected device sends every
//! kind of traffic; pass = zero packets of the device on the WAN outside the tunnel.
//! Needs root; run through scripts/test.sh (lab tests are limited to MOAT_LAB_PARALLEL=2 labs).

mod lab;

use lab::matrix::{run, Fault};

lab::matrix::leak_cells!(vpn);

#[test]
fn vpn_tunnel_flaps_while_moat_is_dead() {
    run("vpn", Fault::MoatDeadTunnelFlap);
}

#[test]
fn vpn_reload_of_a_config_torn_by_an_in_place_write() {
    run("vpn", Fault::ReloadTornWrite);
}
