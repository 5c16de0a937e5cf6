//! Fuzz target for the rpcd plugin's input. The first byte picks the method, the rest is stdin:
//! - the crate's JSON reader (`moat::json::value`) agrees with serde_json: both refuse, or both
//!   accept with the same value, and our rendering re-reads to the same value;
//! - whatever the bytes, `moat::rpc::call` answers one JSON object (an error object for bad
//!   input) and nothing panics. Paths point at an empty directory of the target's own (no
//!   daemon, no leases, no neighbour table).
#![no_main]

use libfuzzer_sys::fuzz_target;
use moat::json::value::{parse, Value};

include!("../../src/json/same_as_serde.rs");

fuzz_target!(|data: &[u8]| {
    let Some((&pick, input)) = data.split_first() else { return };
    let ours = parse(input);
    let theirs = serde_json::from_slice::<serde_json::Value>(input);
    match (&ours, &theirs) {
        (Ok(a), Ok(b)) => {
            assert!(same(a, b), "values differ: {a:?} vs {b:?}");
            assert_eq!(parse(a.to_string().as_bytes()).as_ref(), Ok(a), "rendering does not re-read");
        }
        (Err(_), Err(_)) => {}
        (Ok(_), Err(e)) if e.to_string().contains("out of range") => {}
        (Err(e), Ok(_)) if e.message == "nested too deeply" => {}
        _ => panic!("readers disagree: ours {ours:?}, serde_json {theirs:?}"),
    }
    let dir = std::env::temp_dir().join("moat-fuzz-rpc");
    let ctx = moat::rpc::Context {
        config: dir.join("moat"),
        state_dir: dir.clone(),
        sources: moat::discover::Sources {
            dnsmasq: dir.join("leases"),
            odhcpd: dir.join("odhcpd"),
            neighbours: false,
            lan: vec![],
        },
    };
    let methods = ["status", "devices", "check", "series", "bogus"];
    let out = moat::rpc::call(&ctx, methods[pick as usize % methods.len()], input);
    let v: serde_json::Value = serde_json::from_str(&out).expect("answer is JSON");
    assert!(v.is_object(), "answer is not an object: {out}");
});
