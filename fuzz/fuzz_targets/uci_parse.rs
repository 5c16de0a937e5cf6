//! Fuzz target for the UCI reader: any bytes must parse or be rejected without a panic, and a
//! package that parses must re-read identically from its own `uci export` rendering (whenever libuci's
//! export format can express it: see `Package::export_rereadable`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match moat::config::uci::parse_bytes("fuzz", data) {
        Ok(pkg) => {
            let _ = pkg.show_bytes("cfg");
            if pkg.export_rereadable() {
                let export = pkg.export_bytes("cfg");
                let again = moat::config::uci::parse_bytes("export", &export)
                    .unwrap_or_else(|e| panic!("export does not re-parse: {e}"));
                assert!(again.same_content(&pkg), "export re-reads differently");
                assert_eq!(again.export_bytes("cfg"), export, "export is not a fixed point");
            }
        }
        Err(e) => {
            let lines = data.iter().filter(|&&b| b == b'\n').count();
            assert!(e.line <= lines, "error line {} beyond the {} lines of the input", e.line, lines);
        }
    }
});
