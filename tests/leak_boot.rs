//! Issue 10 (points 1, 2, 5): the boot window, a stop longer than the hold, a restart on an
//! invalid config, an `opkg upgrade`-style restart, and a tunnel flap during the hold, for each
//! protected route; pass = zero packets of the device on the WAN outside the tunnel (the leak
//! matrix's default-deny judgement), then moat starts and the route works.
//! Needs root; run through scripts/test.sh (lab tests are limited to MOAT_LAB_PARALLEL=2 labs).

mod lab;

use lab::boot::{boot, hold_tunnel_flap, stop_gap, Boot, Gap};

macro_rules! boot_cells {
    ($route:ident) => {
        mod $route {
            use super::*;
            const ROUTE: &str = stringify!($route);

            #[test]
            fn boot_fw4_with_the_guard_before_moat_runs() {
                boot(ROUTE, Boot::NeverStarted);
            }

            #[test]
            fn boot_moat_killed_while_starting() {
                boot(ROUTE, Boot::Killed);
            }

            #[test]
            fn boot_moat_exits_on_an_invalid_config() {
                boot(ROUTE, Boot::InvalidConfig);
            }

            #[test]
            fn stop_longer_than_the_hold() {
                stop_gap(ROUTE, Gap::StopLongerThanHold);
            }

            #[test]
            fn restart_on_an_invalid_config() {
                stop_gap(ROUTE, Gap::RestartInvalid);
            }

            #[test]
            fn opkg_upgrade_restart() {
                stop_gap(ROUTE, Gap::Upgrade);
            }
        }
    };
}

boot_cells!(vpn);
boot_cells!(tor);
boot_cells!(block);

#[test]
fn tunnel_flap_during_the_hold_sends_no_rst_from_the_tunnel_address() {
    hold_tunnel_flap();
}
