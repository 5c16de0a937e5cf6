//! Flow offloading: established flows that skip the hooks where moat marks, drops and queues.

use super::{addr, truthy, Warning};
use crate::config::uci::Package;
use crate::config::{printable, Model, Route};

// ---------------------------------------------------------------------------------------------
// Flow offloading
// ---------------------------------------------------------------------------------------------

pub(super) fn check_offload(model: &Model, fw: &Package, out: &mut Vec<Warning>) {
    let affected: Vec<&str> = model
        .devices
        .iter()
        .filter(|d| d.enabled && (d.route != Route::Direct || d.shaper.is_some()))
        .map(|d| d.name.as_str())
        .collect();
    if affected.is_empty() {
        return;
    }
    for (idx, s) in fw.sections.iter().enumerate().filter(|(_, s)| s.stype == "defaults") {
        let sw = s.get_str("flow_offloading").is_some_and(truthy);
        let hw = s.get_str("flow_offloading_hw").is_some_and(truthy);
        if !sw && !hw {
            continue;
        }
        let a = addr("firewall", fw, idx);
        let which = match (sw, hw) {
            (true, true) => "software and hardware flow offloading are enabled",
            (true, false) => "software flow offloading is enabled",
            (false, _) => "hardware flow offloading is set (it takes effect together with flow_offloading)",
        };
        let mut fix = Vec::new();
        if sw {
            fix.push(format!("uci set {}.flow_offloading='0'", a));
        }
        if hw {
            fix.push(format!("uci set {}.flow_offloading_hw='0'", a));
        }
        fix.push("uci commit firewall".to_string());
        fix.push("/etc/init.d/firewall reload".to_string());
        let names: Vec<String> = affected.iter().take(5).map(|n| format!("'{}'", printable(n))).collect();
        out.push(Warning {
            message: format!(
                "fw4 {which} ({a}): once a TCP/UDP connection is offloaded, its packets skip the forward and \
                 postrouting hooks where moat marks, drops and shapes them, so the kill switch, blocking and shaping \
                 stop applying to established connections of the {} protected device{} ({}{}). Turn offloading off:",
                affected.len(),
                if affected.len() == 1 { "" } else { "s" },
                names.join(", "),
                if affected.len() > 5 { ", …" } else { "" }
            ),
            fix,
        });
    }
}
