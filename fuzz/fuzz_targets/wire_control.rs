//! Fuzz target for the companion control protocol: parsing never panics, and whatever parses
//! re-encodes to the same bytes (the format has one encoding per message).
#![no_main]

use libfuzzer_sys::fuzz_target;
use moat::wire::control;

fuzz_target!(|data: &[u8]| {
    let _ = control::parse(data);
    if let Ok(m) = control::parse_body(data) {
        let e = control::encode(&m);
        assert_eq!(&data[..e.len()], &e[..], "one encoding per message");
        assert!(data[e.len()..].iter().all(|&b| b == 0));
    }
});
