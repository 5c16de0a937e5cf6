//! Fuzz target for the companion control protocol: parsing never panics, and whatever parses
//! re-encodes to the same bytes (the format has one encoding per message; a request's
//! per-packet `answers` byte is not part of the message), and writing `answers` into a packet
//! changes nothing else.
#![no_main]

use libfuzzer_sys::fuzz_target;
use moat::wire::control;

fuzz_target!(|data: &[u8]| {
    let parsed = control::parse(data);
    let asked = control::answers(data);
    assert!(asked <= control::MAX_ANSWERS);
    if let Ok(Some(control::Message::Request(_))) = parsed {
        let mut copy = data.to_vec();
        assert!(control::set_answers(&mut copy, asked ^ 1));
        assert_eq!(control::parse(&copy), parsed, "answers change no message");
        assert_eq!(control::answers(&copy), asked ^ 1);
    }
    if let Ok(m) = control::parse_body(data) {
        let e = control::encode(&m);
        let mut body = data[..e.len()].to_vec();
        if matches!(m, control::Message::Request(_)) {
            body[8 + 5] = 0; // the answers byte
        }
        assert_eq!(&body[..], &e[..], "one encoding per message");
        assert!(data[e.len()..].iter().all(|&b| b == 0));
    }
});
