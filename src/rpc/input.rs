//! The plugin's input: the JSON arguments rpcd writes on stdin, treated as hostile.
//!
//! Read at most [`MAX_INPUT`] bytes; parse with [`crate::json::value`] (strict, depth-limited,
//! fuzzed against serde_json); the top level must be an object; only the method's own argument names are
//! accepted, each with its type and a length limit. Every failure is an [`InputError`] that the
//! plugin answers with a JSON error object.

use std::fmt;
use std::io::Read;

use crate::json::value::Value;

/// Largest accepted input: a whole staged configuration (≤ 1 MiB) plus JSON quoting.
pub const MAX_INPUT: usize = 2 << 20;

/// Why the input was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputError {
    /// More than [`MAX_INPUT`] bytes.
    TooLarge,
    /// stdin could not be read.
    Read(String),
    /// Not JSON (what and the byte offset).
    Syntax(String),
    /// Valid JSON but not an object.
    NotObject,
    /// An argument the method does not take.
    Unknown(String),
    /// An argument of the wrong type or too long: (name, what was expected).
    Bad(String, String),
}

impl InputError {
    /// A short stable code for the error object.
    pub fn code(&self) -> &'static str {
        match self {
            InputError::TooLarge => "too_large",
            InputError::Read(_) => "read_error",
            InputError::Syntax(_) => "invalid_json",
            InputError::NotObject => "not_an_object",
            InputError::Unknown(_) => "unknown_argument",
            InputError::Bad(..) => "bad_argument",
        }
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InputError::TooLarge => write!(f, "input larger than {MAX_INPUT} bytes"),
            InputError::Read(e) => write!(f, "cannot read the input: {e}"),
            InputError::Syntax(e) => write!(f, "input is not valid JSON: {e}"),
            InputError::NotObject => f.write_str("input must be a JSON object"),
            InputError::Unknown(k) => {
                write!(f, "unknown argument {}", crate::json::string(&crate::config::printable(k)))
            }
            InputError::Bad(k, want) => write!(f, "argument '{k}' must be {want}"),
        }
    }
}

/// Read all of `r`, refusing more than `max` bytes.
pub fn read_limited(r: impl Read, max: usize) -> Result<Vec<u8>, InputError> {
    let mut b = Vec::new();
    r.take(max as u64 + 1).read_to_end(&mut b).map_err(|e| InputError::Read(e.to_string()))?;
    if b.len() > max {
        return Err(InputError::TooLarge);
    }
    Ok(b)
}

/// Parse the arguments object. Empty (or all-whitespace) input counts as `{}`; keys not in
/// `allowed` are refused.
pub fn parse_args(bytes: &[u8], allowed: &[&str]) -> Result<Value, InputError> {
    if bytes.len() > MAX_INPUT {
        return Err(InputError::TooLarge);
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Vec::new()));
    }
    let v = crate::json::value::parse(bytes).map_err(|e| InputError::Syntax(e.to_string()))?;
    if !v.is_object() {
        return Err(InputError::NotObject);
    }
    if let Some((k, _)) = v.members().iter().find(|(k, _)| !allowed.contains(&k.as_str())) {
        return Err(InputError::Unknown(k.clone()));
    }
    Ok(v)
}

/// An optional string argument of at most `max` bytes.
pub fn opt_str<'a>(args: &'a Value, name: &str, max: usize) -> Result<Option<&'a str>, InputError> {
    match args.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.len() <= max => Ok(Some(s)),
        Some(Value::String(_)) => Err(InputError::Bad(name.into(), format!("a string of at most {max} bytes"))),
        Some(_) => Err(InputError::Bad(name.into(), "a string".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_pass_and_everything_else_is_refused() {
        assert!(parse_args(b"", &[]).unwrap().members().is_empty());
        assert!(parse_args(b" \n", &[]).unwrap().members().is_empty());
        assert_eq!(parse_args(br#"{"config":"x"}"#, &["config"]).unwrap()["config"], "x");
        assert_eq!(parse_args(b"[1]", &[]), Err(InputError::NotObject));
        assert_eq!(parse_args(b"\"s\"", &[]), Err(InputError::NotObject));
        assert_eq!(parse_args(br#"{"x":1}"#, &["config"]), Err(InputError::Unknown("x".into())));
        assert_eq!(parse_args(b"{", &[]).unwrap_err().code(), "invalid_json");
        assert_eq!(parse_args(b"{\"a\":\"\xff\"}", &["a"]).unwrap_err().code(), "invalid_json");
        // Deep nesting hits the reader's depth limit, not the stack.
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(parse_args(deep.as_bytes(), &["a"]).unwrap_err().code(), "invalid_json");
    }

    #[test]
    fn sizes_are_limited() {
        let big = vec![b' '; MAX_INPUT + 1];
        assert_eq!(read_limited(&big[..], MAX_INPUT), Err(InputError::TooLarge));
        assert_eq!(read_limited(&big[..10], MAX_INPUT).unwrap().len(), 10);
        assert_eq!(parse_args(&big, &[]), Err(InputError::TooLarge));
        let m = parse_args(br#"{"n":"abcd","i":3}"#, &["n", "i"]).unwrap();
        assert_eq!(opt_str(&m, "n", 4), Ok(Some("abcd")));
        assert_eq!(opt_str(&m, "n", 3).unwrap_err().code(), "bad_argument");
        assert_eq!(opt_str(&m, "i", 3).unwrap_err().code(), "bad_argument");
        assert_eq!(opt_str(&m, "none", 3), Ok(None));
    }
}
