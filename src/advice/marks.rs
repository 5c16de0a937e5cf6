//! Mark bits: moat's `fwmark_mask` against pbr's `fw_mask` and mwan3's `mmx_mask`.

use super::{addr, section_enabled, Warning};
use crate::config::uci::Package;
use crate::config::{printable, Model, MWAN3_MARK_MASK, PBR_MARK_MASK};

// ---------------------------------------------------------------------------------------------
// Mark bits
// ---------------------------------------------------------------------------------------------

/// Parse a mark mask as pbr/mwan3 write it: hex with or without `0x` (`00ff0000`, `0x3F00`).
pub(super) fn parse_mask(s: &str) -> Option<u32> {
    let h = s.trim();
    let h = h.strip_prefix("0x").or_else(|| h.strip_prefix("0X")).unwrap_or(h);
    if h.is_empty() || h.len() > 8 {
        return None;
    }
    u32::from_str_radix(h, 16).ok()
}

/// A contiguous mask of `width` bits, as high as possible, sharing no bit with `taken`.
pub(super) fn free_mask(width: u32, taken: u32) -> Option<u32> {
    if width == 0 || width > 31 {
        return None;
    }
    let ones = (1u64 << width) - 1;
    (0..=(32 - width)).rev().map(|sh| (ones << sh) as u32).find(|m| m & taken == 0)
}

/// The mark mask another package uses: `(what, mask)`, or a warning if its value cannot be read.
pub(super) fn other_mask(
    pkg: &Package,
    pkg_name: &str,
    stypes: &[&str],
    option: &str,
    default: u32,
    out: &mut Vec<Warning>,
) -> Option<(String, u32)> {
    let (idx, s) = pkg.sections.iter().enumerate().find(|(_, s)| stypes.contains(&s.stype.as_str()))?;
    if pkg_name == "pbr" && !section_enabled(s) {
        return None;
    }
    match s.get_str(option) {
        None => Some((format!("{}'s default {} 0x{:08x}", pkg_name, option, default), default)),
        Some(v) => match parse_mask(v) {
            Some(m) => Some((format!("{}'s {} 0x{:08x} ({})", pkg_name, option, m, addr(pkg_name, pkg, idx)), m)),
            None => {
                out.push(Warning {
                    message: format!(
                        "{}.{} = '{}' is not a hexadecimal mark mask; cannot check it against moat's fwmark_mask.",
                        addr(pkg_name, pkg, idx),
                        option,
                        printable(v)
                    ),
                    fix: Vec::new(),
                });
                None
            }
        },
    }
}

pub(super) fn check_marks(model: &Model, pbr: Option<&Package>, mwan3: Option<&Package>, out: &mut Vec<Warning>) {
    let mine = model.global.fwmark_mask;
    let mut others = Vec::new();
    if let Some(p) = pbr {
        others.extend(other_mask(p, "pbr", &["pbr", "vpn-policy-routing"], "fw_mask", PBR_MARK_MASK, out));
    }
    if let Some(m) = mwan3 {
        others.extend(other_mask(m, "mwan3", &["globals"], "mmx_mask", MWAN3_MARK_MASK, out));
    }
    let taken = others.iter().fold(PBR_MARK_MASK | MWAN3_MARK_MASK, |acc, (_, m)| acc | m);
    for (what, mask) in &others {
        let shared = mine & mask;
        if shared == 0 {
            continue;
        }
        let suggestion = free_mask(mine.count_ones().max(1), taken);
        let fix = match suggestion {
            Some(m) => vec![
                format!("uci set moat.@moat[0].fwmark_mask='0x{:08x}'", m),
                "uci commit moat".to_string(),
                "/etc/init.d/moat reload".to_string(),
            ],
            None => Vec::new(),
        };
        out.push(Warning {
            message: format!(
                "moat's fwmark_mask 0x{:08x} shares bits 0x{:08x} with {}: both rewrite those packet-mark bits and \
                 route by them, so one package's traffic would follow the other's rules. Give moat bits of its own{}",
                mine,
                shared,
                what,
                if suggestion.is_some() { ":" } else { " (no free contiguous range of the same width)." }
            ),
            fix,
        });
    }
}
