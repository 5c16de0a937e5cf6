//! JSON, without serde (measured: serde_json costs 67,896 B of the mipsel binary, which would break the
//! 700 KB budget): [`string`] escapes strings for the hand-written status files, and [`value`] is a
//! strict, size- and depth-limited reader for hostile input (rpcd's JSON on stdin), fuzzed against
//! serde_json (`fuzz/fuzz_targets/rpc_input.rs`).

pub mod value;

pub use value::{parse, Value};

use std::fmt::Write as _;

/// `s` as a JSON string literal (quotes, backslashes and control characters escaped).
pub fn string(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped() {
        assert_eq!(string("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000a\"");
        assert_eq!(string("\u{1}é"), "\"\\u0001é\"");
    }
}
