//! Reader for OpenWrt UCI configuration files (`/etc/config/*`).
//!
//! The goal is to read a file exactly as OpenWrt's `uci` tool (libuci `file.c`, strict mode, which is the
//! tool's default) does: the same sections, options, lists and values, in the same order, and to reject the
//! same files at the same line. Conformance is checked against the vectors in `tests/uci-vectors/` (produced
//! by the real `uci` tool) in `tests/uci_vectors.rs`, and [`Package::show`] / [`Package::export`] reproduce
//! `uci show` / `uci export` byte for byte.
//!
//! # How libuci reads a file (and so how this reader does)
//! libuci reads the file line by line with `fgets` into one growing buffer (32 bytes at first, doubled
//! whenever a line does not fit) and tokenises that buffer in place. Several observable quirks follow, and
//! this module reproduces them on purpose, because a configuration that OpenWrt's own tools read one way must
//! not be read another way by moat:
//! - A NUL byte ends the line early: the rest of that `fgets` chunk is lost and the next line is appended
//!   where the NUL was (so the line counter does not advance for the truncated line).
//! - The line number in an error is the number of newline-terminated lines read so far (an error on a last
//!   line without a trailing newline is reported one lower, possibly as line 0).
//! - The command word is split off with `strtok(" \t")`, so `config\n` (nothing after the keyword) is an
//!   "invalid command"; the one-letter abbreviations `p`, `c`, `o`, `l` are accepted.
//! - Arguments: adjacent unquoted, `'single'` and `"double"` pieces concatenate; `\` escapes any byte in
//!   unquoted text and in double quotes (a `\` before the end of line joins the next line); quoted text may
//!   span lines; an unquoted `#` ends the line; `;` can separate commands.
//! - `option x ''` and `option x` (no value) never create or change anything; `list x` with no value adds an
//!   empty item; setting an option to a new value, or turning it into a list, moves it to the end of its
//!   section; re-declaring a named section merges into it (a different type is an error).
//! - Anonymous sections get an internal name `cfgNNHHHH` (counter and hash of the type), and a later named
//!   declaration with that name merges into them, as libuci does.
//!
//! This module is pure: bytes in, [`Package`] or [`ParseError`] out; [`Package`] out to text.

use std::collections::HashMap;
use std::fmt;

/// One value as written in the file, with the line it started on (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Value {
    /// The unquoted, unescaped text (decoded as UTF-8; invalid sequences become U+FFFD, see [`Value::raw`]).
    pub text: String,
    /// Line (1-based) of the `option`/`list` statement that gave this value.
    pub line: usize,
    /// The exact bytes of the value (never contains NUL). Equal to `text.as_bytes()` whenever the value is
    /// valid UTF-8; [`Value::is_utf8`] tells whether `text` is exact.
    pub raw: Vec<u8>,
}

impl Value {
    /// A value from text (for building packages in code and tests).
    pub fn new(text: impl Into<String>, line: usize) -> Value {
        let text = text.into();
        Value { raw: text.as_bytes().to_vec(), text, line }
    }

    /// A value from raw bytes; `text` is their lossy UTF-8 decoding.
    pub fn from_bytes(raw: Vec<u8>, line: usize) -> Value {
        Value { text: String::from_utf8_lossy(&raw).into_owned(), line, raw }
    }

    /// Whether the value is valid UTF-8 (so `text` holds it exactly).
    pub fn is_utf8(&self) -> bool {
        self.text.as_bytes() == self.raw.as_slice()
    }
}

/// The value of an option: a single `option` or a `list` of items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OptionValue {
    /// `option name 'value'`
    Single(Value),
    /// One or more `list name 'value'` statements, in file order.
    List(Vec<Value>),
}

/// One option (or list) of a section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UciOption {
    /// Option name (`[A-Za-z0-9_]+`).
    pub name: String,
    /// Line of the statement that last set this option.
    pub line: usize,
    /// The value.
    pub value: OptionValue,
}

impl UciOption {
    /// All values of the option: one for `option`, every item for `list`.
    pub fn values(&self) -> Vec<&Value> {
        match &self.value {
            OptionValue::Single(v) => vec![v],
            OptionValue::List(vs) => vs.iter().collect(),
        }
    }

    /// Whether the option is a `list`.
    pub fn is_list(&self) -> bool {
        matches!(self.value, OptionValue::List(_))
    }
}

/// One `config <type> ['<name>']` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// Section type (`device`, `tunnel`, …): printable ASCII without spaces.
    pub stype: String,
    /// Section name (`[A-Za-z0-9_]+`); `None` for anonymous sections.
    pub name: Option<String>,
    /// Line of the `config` statement.
    pub line: usize,
    /// Options in uci's order (an option moves to the end when its value is changed).
    pub options: Vec<UciOption>,
    /// Lines of later `config` statements that named this section again: libuci merges them into
    /// it (the content above is exactly what libuci reads); kept so that a caller can refuse it.
    pub redeclared: Vec<usize>,
}

impl Section {
    /// Look an option up by name.
    pub fn get(&self, name: &str) -> Option<&UciOption> {
        self.options.iter().find(|o| o.name == name)
    }

    /// The text of a single-valued option (`None` if absent or a list).
    pub fn get_str(&self, name: &str) -> Option<&str> {
        match &self.get(name)?.value {
            OptionValue::Single(v) => Some(v.text.as_str()),
            OptionValue::List(_) => None,
        }
    }
}

/// A parsed configuration package (one file).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Package {
    /// Sections in file order (named sections declared twice are merged into the first).
    pub sections: Vec<Section>,
}

impl Package {
    /// The UCI address of section `idx`: its name, or `@type[N]` for anonymous sections,
    /// where N counts sections of that type (named ones included), as `uci show` does.
    pub fn address(&self, idx: usize) -> String {
        let s = &self.sections[idx];
        match &s.name {
            Some(n) => n.clone(),
            None => {
                let n = self.sections[..idx].iter().filter(|o| o.stype == s.stype).count();
                format!("@{}[{}]", s.stype, n)
            }
        }
    }

    /// The named section `name`, if any.
    pub fn section(&self, name: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.name.as_deref() == Some(name))
    }

    /// All sections of type `stype`, in order.
    pub fn sections_of<'a>(&'a self, stype: &'a str) -> impl Iterator<Item = &'a Section> + 'a {
        self.sections.iter().filter(move |s| s.stype == stype)
    }

    /// Whether two packages hold the same sections (types, names), options (names, list or not) and values
    /// (exact bytes), in the same order; line numbers are ignored.
    pub fn same_content(&self, other: &Package) -> bool {
        type OptKey<'a> = (&'a str, bool, Vec<&'a [u8]>);
        fn key(p: &Package) -> Vec<(&str, Option<&str>, Vec<OptKey<'_>>)> {
            p.sections
                .iter()
                .map(|s| {
                    let opts = s
                        .options
                        .iter()
                        .map(|o| (o.name.as_str(), o.is_list(), o.values().iter().map(|v| v.raw.as_slice()).collect()))
                        .collect();
                    (s.stype.as_str(), s.name.as_deref(), opts)
                })
                .collect()
        }
        key(self) == key(other)
    }

    /// Whether [`Package::export`] re-reads as this same package. libuci writes section types unquoted, so a
    /// type holding a quote, `\\`, `#` or `;` (legal in a type, but not as bare text) does not survive its own
    /// export; everything else does.
    pub fn export_rereadable(&self) -> bool {
        self.sections.iter().all(|s| !s.stype.bytes().any(|c| matches!(c, b'\'' | b'"' | b'\\' | b'#' | b';')))
    }

    /// What `uci show <package>` prints for this package, as bytes (values are not necessarily UTF-8).
    pub fn show_bytes(&self, package: &str) -> Vec<u8> {
        let mut out = Vec::new();
        let mut counters: HashMap<&str, usize> = HashMap::new();
        for s in &self.sections {
            let n = counters.entry(s.stype.as_str()).or_insert(0);
            let sref = match &s.name {
                Some(name) => name.clone(),
                None => format!("@{}[{}]", s.stype, n),
            };
            *n += 1;
            out.extend_from_slice(format!("{}.{}={}\n", package, sref, s.stype).as_bytes());
            for o in &s.options {
                out.extend_from_slice(format!("{}.{}.{}=", package, sref, o.name).as_bytes());
                for (i, v) in o.values().into_iter().enumerate() {
                    if i > 0 {
                        out.push(b' ');
                    }
                    out.push(b'\'');
                    escape_into(&mut out, &v.raw);
                    out.push(b'\'');
                }
                out.push(b'\n');
            }
        }
        out
    }

    /// What `uci show <package>` prints (lossy UTF-8 if a value is not UTF-8; see [`Package::show_bytes`]).
    pub fn show(&self, package: &str) -> String {
        String::from_utf8_lossy(&self.show_bytes(package)).into_owned()
    }

    /// What `uci export <package>` prints, as bytes: the canonical re-serialisation.
    pub fn export_bytes(&self, package: &str) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(b"package ");
        escape_into(&mut out, package.as_bytes());
        out.push(b'\n');
        for s in &self.sections {
            out.extend_from_slice(b"\nconfig ");
            escape_into(&mut out, s.stype.as_bytes());
            if let Some(n) = &s.name {
                out.extend_from_slice(b" '");
                escape_into(&mut out, n.as_bytes());
                out.push(b'\'');
            }
            out.push(b'\n');
            for o in &s.options {
                let kw: &[u8] = if o.is_list() { b"\tlist " } else { b"\toption " };
                for v in o.values() {
                    out.extend_from_slice(kw);
                    escape_into(&mut out, o.name.as_bytes());
                    out.extend_from_slice(b" '");
                    escape_into(&mut out, &v.raw);
                    out.extend_from_slice(b"'\n");
                }
            }
        }
        out.push(b'\n');
        out
    }

    /// What `uci export <package>` prints (lossy UTF-8 if a value is not UTF-8).
    pub fn export(&self, package: &str) -> String {
        String::from_utf8_lossy(&self.export_bytes(package)).into_owned()
    }
}

/// uci's escaping for output inside single quotes: `'` becomes `'\''`.
fn escape_into(out: &mut Vec<u8>, s: &[u8]) {
    for &b in s {
        if b == b'\'' {
            out.extend_from_slice(b"'\\''");
        } else {
            out.push(b);
        }
    }
}

/// A parse error: the file is not valid UCI syntax.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// Path of the file, as given to [`parse`].
    pub file: String,
    /// Line where the error was found, numbered as `uci` numbers it: the count of newline-terminated lines
    /// read so far (so an error on a last line that lacks its newline reads one lower, possibly 0).
    pub line: usize,
    /// What was wrong / what was expected.
    pub message: String,
    /// Byte offset in libuci's line buffer where the error was detected (as `uci` reports it).
    pub byte: usize,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

impl std::error::Error for ParseError {}

/// Parse the text of a UCI file. `file` is used in error messages only.
pub fn parse(file: &str, text: &str) -> Result<Package, ParseError> {
    parse_bytes(file, text.as_bytes())
}

mod reader;
#[cfg(test)]
mod tests;

pub use reader::parse_bytes;
