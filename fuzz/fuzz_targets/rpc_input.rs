//! Fuzz target for the rpcd plugin's input: whatever bytes arrive on stdin, for any method, the
//! answer is one JSON object (an error object for bad input) and nothing panics. The first byte
//! picks the method; the rest is the input. Paths point at an empty directory of the target's own
//! (no daemon, no leases, no neighbour table).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, input)) = data.split_first() else { return };
    let dir = std::env::temp_dir().join("moat-fuzz-rpc");
    let ctx = moat::rpc::Context {
        config: dir.join("moat"),
        state_dir: dir.clone(),
        sources: moat::discover::Sources { dnsmasq: dir.join("leases"), odhcpd: dir.join("odhcpd"), neighbours: false },
    };
    let methods = ["status", "devices", "check", "series", "bogus"];
    let out = moat::rpc::call(&ctx, methods[pick as usize % methods.len()], input);
    let v: serde_json::Value = serde_json::from_str(&out).expect("answer is JSON");
    assert!(v.is_object(), "answer is not an object: {out}");
});
