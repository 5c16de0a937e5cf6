//! Reader tests, including a differential property test against serde_json (a dev-dependency).

use super::*;

// `same`: the value comparison shared with fuzz/fuzz_targets/rpc_input.rs.
include!("same_as_serde.rs");

/// Both readers agree on `input`: both refuse it, or both accept it with the same value (and ours
/// re-reads its own rendering identically).
pub fn agree(input: &[u8]) {
    let ours = parse(input);
    let theirs = serde_json::from_slice::<serde_json::Value>(input);
    match (&ours, &theirs) {
        (Ok(a), Ok(b)) => {
            assert!(same(a, b), "{:?}: {a:?} vs {b:?}", String::from_utf8_lossy(input));
            assert_eq!(parse(a.to_string().as_bytes()).as_ref(), Ok(a));
        }
        (Err(_), Err(_)) => {}
        // serde_json refuses numbers beyond f64 ("number out of range"); we keep their text.
        (Ok(_), Err(e)) if e.to_string().contains("out of range") => {}
        // serde_json nests to 128, we to MAX_DEPTH.
        (Err(e), Ok(_)) if e.message == "nested too deeply" => {}
        _ => panic!("{:?}: ours {ours:?}, serde_json {theirs:?}", String::from_utf8_lossy(input)),
    }
}

#[test]
fn values_and_errors() {
    let v = parse(br#" {"a": [1, -2.5e3, true, null, "x\u00e9\ud83d\ude00\n"], "b": {}, "a": 0} "#).unwrap();
    assert_eq!(v["a"].as_u64(), Some(0), "a repeated key keeps the last value");
    assert!(v["b"].is_object() && v["missing"].is_null() && v["a"][3].is_null());
    assert_eq!(v.to_string(), r#"{"a":0,"b":{}}"#);
    let s = parse(br#"["x\u00e9\ud83d\ude00\n\/"]"#).unwrap();
    assert_eq!(s[0], "xé😀\n/");
    for bad in [
        &b""[..],
        b"{",
        b"[1,]",
        b"{\"a\"}",
        b"01",
        b"1.",
        b"-",
        b"1e",
        b"\"\\ud800\"",
        b"\"\\udc00x\"",
        b"\"\x01\"",
        b"\"\xff\"",
        b"nul",
        b"[] x",
        b"{\"a\":1,}",
        b"'a'",
        b"\"\\x\"",
        b"\"\\u12\"",
    ] {
        assert!(parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        agree(bad);
    }
    let deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
    assert_eq!(parse(deep.as_bytes()).unwrap_err().message, "nested too deeply");
    let ok = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
    assert!(parse(ok.as_bytes()).is_ok());
    assert!(parse("[".repeat(1_000_000).as_bytes()).is_err(), "no stack overflow");
}

#[test]
fn random_inputs_agree_with_serde_json() {
    const PIECES: &[&str] = &[
        "{",
        "}",
        "[",
        "]",
        ",",
        ":",
        "\"",
        "\"a\"",
        "\"k\":",
        "1",
        "-0",
        "0.5",
        "1e3",
        "2E-2",
        "true",
        "false",
        "null",
        " ",
        "\n",
        "\\",
        "\\u00e9",
        "\\ud83d\\ude00",
        "\\ud800",
        "é",
        "\u{1}",
        "x",
        "01",
        "1e999",
        "\"\\n\"",
    ];
    let mut seed = 0x9e37_79b9u32;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed
    };
    for _ in 0..20_000 {
        let n = next() % 24;
        let s: String = (0..n).map(|_| PIECES[next() as usize % PIECES.len()]).collect();
        agree(s.as_bytes());
        // and well-formed shapes with random leaves
        let t = format!(
            "{{\"a\":[{}],\"b\":{}}}",
            PIECES[next() as usize % PIECES.len()],
            PIECES[next() as usize % 17 + 9]
        );
        agree(t.as_bytes());
    }
}

#[test]
fn fuzz_finding_long_fraction_is_kept_as_text() {
    // fuzz/artifacts crash-fac4a7…: serde_json rounds this fraction differently in the last ulp.
    let t = b"1111111111111.1222222222222222222211122";
    assert_eq!(parse(t).unwrap(), Value::Number(String::from_utf8(t.to_vec()).unwrap()));
    agree(t);
}
