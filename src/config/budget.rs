//! Budgets: how many mark values, routing tables and NFQUEUE numbers a model needs, and the check of
//! the configured `fwmark_mask`, `table_base` and `queue_base` against them.

use super::options::Ctx;
use super::sections::GlobalLines;
use super::{contiguous, Device, Draft, Route, TunnelKind, MWAN3_MARK_MASK, PBR_MARK_MASK, RULE_PRIORITY_MAX};

impl Draft {
    /// Mark values the plan uses inside `fwmark_mask` (its layout: one value per route in use -
    /// each tunnel an enabled device is routed into, and `block` if an enabled device uses it -
    /// then one per enabled shaped device). Validation guarantees the mask holds this many
    /// non-zero values.
    pub fn mark_values_needed(&self) -> u32 {
        let routes = self
            .tunnels
            .iter()
            .filter(|t| self.active_devices().any(|d| d.route == Route::Tunnel(t.name.clone())))
            .count()
            + usize::from(self.active_devices().any(|d| d.route == Route::Block));
        (routes + self.active_devices().filter(|d| d.shaper.is_some()).count()) as u32
    }
    /// Routing tables (= ip rule priorities) the plan uses from `table_base`: one per
    /// `wireguard`/`interface` tunnel. Validation guarantees `table_base .. table_base +
    /// max(1, tables_needed())` avoids 0 and 253–255 and ends at [`RULE_PRIORITY_MAX`] at most.
    pub fn tables_needed(&self) -> u32 {
        self.tunnels.iter().filter(|t| !matches!(t.kind, TunnelKind::Tor(_))).count() as u32
    }
    /// NFQUEUE numbers the plan uses from `queue_base`: one per enabled shaped device, plus one
    /// pad queue per wireguard tunnel with `pad_all 1` that has an enabled shaped device.
    /// Validation guarantees they all fit in 0..=65535.
    pub fn queues_needed(&self) -> u32 {
        let shaped: Vec<&Device> = self.active_devices().filter(|d| d.shaper.is_some()).collect();
        let pad = self
            .tunnels
            .iter()
            .filter(|t| matches!(&t.kind, TunnelKind::WireGuard(l) if l.pad_all))
            .filter(|t| shaped.iter().any(|d| d.route == Route::Tunnel(t.name.clone())))
            .count();
        (shaped.len() + pad) as u32
    }
}

/// Check the mark, table and queue ranges against what the model needs.
/// Uses the valid sections only: with invalid ones there are errors already, and the
/// budgets are checked exactly once they are fixed.
pub(super) fn check_budgets(cx: &mut Ctx<'_>, m: &Draft, gl: &GlobalLines) {
    let g = &m.global;
    let marks_needed = m.mark_values_needed() as u64;
    let tables_needed = (m.tables_needed() as u64).max(1);
    let queues_needed = m.queues_needed() as u64;
    let sec = gl.section.as_deref();
    let mask = g.fwmark_mask;
    if mask == 0 {
        cx.conflict(
            gl.fwmark_mask,
            sec,
            Some("fwmark_mask"),
            "the mask is zero; moat needs some mark bits".to_string(),
        );
    } else if !contiguous(mask) {
        cx.conflict(
            gl.fwmark_mask,
            sec,
            Some("fwmark_mask"),
            format!("0x{:08x} is not one contiguous run of bits (e.g. 0x0f000000)", mask),
        );
    } else {
        if mask & PBR_MARK_MASK != 0 {
            cx.conflict(
                gl.fwmark_mask,
                sec,
                Some("fwmark_mask"),
                format!("0x{:08x} overlaps the bits pbr uses (0x{:08x})", mask, PBR_MARK_MASK),
            );
        }
        if mask & MWAN3_MARK_MASK != 0 {
            cx.conflict(
                gl.fwmark_mask,
                sec,
                Some("fwmark_mask"),
                format!("0x{:08x} overlaps the bits mwan3 uses (0x{:08x})", mask, MWAN3_MARK_MASK),
            );
        }
        let bits = mask.count_ones();
        let values: u64 = (1u64 << bits) - 1;
        let need = marks_needed;
        if values < need {
            cx.conflict(
                gl.fwmark_mask,
                sec,
                Some("fwmark_mask"),
                format!(
                    "0x{:08x} has {} bits ({} non-zero values) but the routes in use and the shaped devices need {} mark values; widen the mask",
                    mask, bits, values, need
                ),
            );
        }
    }
    let tb = g.table_base as u64;
    let tlast = tb + tables_needed - 1;
    if tb == 0 {
        cx.conflict(
            gl.table_base,
            sec,
            Some("table_base"),
            "table 0 is reserved (expected 1-32765, avoiding 253-255)".to_string(),
        );
    } else if tlast > RULE_PRIORITY_MAX as u64 {
        cx.conflict(
            gl.table_base,
            sec,
            Some("table_base"),
            format!(
                "tables/priorities {}-{} would reach past {}: moat's ip rules must come before the main table's rule (32766)",
                tb, tlast, RULE_PRIORITY_MAX
            ),
        );
    } else if tb <= 255 && tlast >= 253 {
        cx.conflict(
            gl.table_base,
            sec,
            Some("table_base"),
            format!("tables {}-{} would include 253-255 (the kernel's default, main and local tables)", tb, tlast),
        );
    }
    let qn = queues_needed;
    if qn > 0 && g.queue_base as u64 + qn - 1 > u16::MAX as u64 {
        cx.conflict(
            gl.queue_base,
            sec,
            Some("queue_base"),
            format!(
                "queues {}-{} would pass 65535 (shaped devices and their tunnels' pad queues need {})",
                g.queue_base,
                g.queue_base as u64 + qn - 1,
                qn
            ),
        );
    }
}
