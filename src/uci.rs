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

/// Parse the bytes of a UCI file (any bytes, NUL and invalid UTF-8 included), exactly as `uci` does.
pub fn parse_bytes(file: &str, input: &[u8]) -> Result<Package, ParseError> {
    let mut r = Reader {
        file,
        input,
        fpos: 0,
        eof: false,
        newlines_read: 0,
        buf: Vec::new(),
        buf_filled: 0,
        pos: 0,
        line: 0,
        stmt_line: 1,
        secs: Vec::new(),
        n_section: 0,
        cur: None,
    };
    r.run()?;
    Ok(Package { sections: r.secs.into_iter().map(|s| s.sec).collect() })
}

/// Initial size of libuci's line buffer.
const LINEBUF: usize = 32;

/// The reasons libuci gives, with what was expected.
#[derive(Clone, Copy)]
enum Reason {
    UnterminatedSingle,
    UnterminatedDouble,
    InsufficientArgs,
    InvalidName,
    InvalidType,
    TooManyArgs,
    PackageWithoutName,
    ConfigWithoutName,
    OptionWithoutName,
    InvalidCommand,
    OptionBeforeSection,
    TypeChanged,
}

impl Reason {
    fn text(self) -> &'static str {
        match self {
            Reason::UnterminatedSingle => "EOF with unterminated ' (expected a closing ')",
            Reason::UnterminatedDouble => "EOF with unterminated \" (expected a closing \")",
            Reason::InsufficientArgs => "insufficient arguments (expected a name after the keyword)",
            Reason::InvalidName => "invalid character in name field (expected letters, digits and _ only)",
            Reason::InvalidType => "invalid character in type field (expected printable ASCII, no spaces)",
            Reason::TooManyArgs => "too many arguments (expected end of line; quote values that contain spaces)",
            Reason::PackageWithoutName => "package without name (expected: package <name>)",
            Reason::ConfigWithoutName => "config without name (expected: config <type> ['<name>'])",
            Reason::OptionWithoutName => "option without name (expected: option|list <name> '<value>')",
            Reason::InvalidCommand => "invalid command (expected package, config, option, list or a # comment)",
            Reason::OptionBeforeSection => {
                "option/list command found before the first section (expected a config line first)"
            }
            Reason::TypeChanged => {
                "section of different type overwrites prior section with same name (expected the same type)"
            }
        }
    }
}

/// A section while reading, with libuci's internal name (generated for anonymous sections).
struct RSection {
    sec: Section,
    uci_name: Vec<u8>,
}

/// Emulation of libuci's parse context: the file, its `fgets` line buffer and the package being built.
struct Reader<'a> {
    file: &'a str,
    input: &'a [u8],
    /// Read position in `input` (the FILE's position).
    fpos: usize,
    /// The FILE's end-of-file indicator.
    eof: bool,
    /// Number of `\n` bytes consumed from `input` so far (for true line numbers of statements).
    newlines_read: usize,
    /// libuci's line buffer; its length is libuci's `bufsz`.
    buf: Vec<u8>,
    buf_filled: usize,
    pos: usize,
    /// libuci's line counter (newline-terminated lines read).
    line: usize,
    /// True 1-based line where the current buffer started.
    stmt_line: usize,
    secs: Vec<RSection>,
    n_section: u32,
    cur: Option<usize>,
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// libuci's name/type validation: names are `[A-Za-z0-9_]+` (plus `-` for package names); types are any
/// printable ASCII without spaces.
fn valid_str(s: &[u8], name: bool, package: bool) -> bool {
    !s.is_empty()
        && s.iter().all(|&c| {
            c.is_ascii_alphanumeric() || c == b'_' || (c == b'-' && package) || (!name && (33..=126).contains(&c))
        })
}

/// libuci's hash for generated section names (djb2, on signed chars as on x86/mips).
fn djbhash(mut hash: u32, s: &[u8]) -> u32 {
    if hash == !0 {
        hash = 5381;
    }
    for &c in s {
        hash = (hash << 5).wrapping_add(hash).wrapping_add(c as i8 as i32 as u32);
    }
    hash & 0x7fff_ffff
}

impl Reader<'_> {
    fn at(&self, i: usize) -> u8 {
        self.buf.get(i).copied().unwrap_or(0)
    }

    fn set(&mut self, i: usize, c: u8) {
        if let Some(b) = self.buf.get_mut(i) {
            *b = c;
        }
    }

    fn cur(&self) -> u8 {
        self.at(self.pos)
    }

    fn strlen(&self, i: usize) -> usize {
        self.buf.get(i..).map_or(0, |t| t.iter().position(|&c| c == 0).unwrap_or(t.len()))
    }

    fn str_at(&self, i: usize) -> &[u8] {
        let n = self.strlen(i);
        self.buf.get(i..i + n).unwrap_or(&[])
    }

    fn err(&self, reason: Reason) -> ParseError {
        ParseError { file: self.file.to_string(), line: self.line, message: reason.text().to_string(), byte: self.pos }
    }

    fn grow(&mut self) {
        let n = self.buf.len() * 2;
        self.buf.resize(n, 0);
    }

    /// C `fgets(&buf[at], n, file)`: reads at most n-1 bytes, stopping after a newline; `false` = NULL.
    fn fgets(&mut self, at: usize, n: usize) -> bool {
        if n == 0 {
            return false;
        }
        if n == 1 {
            self.set(at, 0);
            return true;
        }
        if self.eof || self.fpos >= self.input.len() {
            self.eof = true;
            return false;
        }
        let mut k = 0;
        while k < n - 1 {
            let Some(&c) = self.input.get(self.fpos) else {
                self.eof = true;
                break;
            };
            self.fpos += 1;
            self.set(at + k, c);
            k += 1;
            if c == b'\n' {
                self.newlines_read += 1;
                break;
            }
        }
        self.set(at + k, 0);
        true
    }

    /// libuci's `uci_getln`: read the next line into the buffer at `offset`, growing it as needed.
    fn getln(&mut self, offset: usize) {
        if self.buf.is_empty() {
            self.buf = vec![0; LINEBUF];
        }
        if offset >= self.buf.len() - 1 {
            self.grow();
        }
        let mut ofs = offset;
        loop {
            self.set(ofs, 0);
            let n = self.buf.len() - ofs;
            if !self.fgets(ofs, n) || self.at(ofs) == 0 {
                return;
            }
            ofs += self.strlen(ofs);
            self.buf_filled = ofs;
            if self.at(ofs - 1) == b'\n' {
                self.line += 1;
                return;
            }
            self.grow();
        }
    }

    fn run(&mut self) -> Result<(), ParseError> {
        while !self.eof {
            self.pos = 0;
            self.stmt_line = self.newlines_read + 1;
            self.getln(0);
            if self.at(0) != 0 {
                self.parse_line()?;
            }
        }
        Ok(())
    }

    fn skip_whitespace(&mut self) {
        while self.cur() != 0 && is_space(self.cur()) {
            self.pos += 1;
        }
    }

    /// C `strtok(&buf[pos], " \t")` (always restarting): the token's start, NUL-terminating it in place.
    fn strtok(&mut self) -> Option<usize> {
        let mut i = self.pos;
        while matches!(self.at(i), b' ' | b'\t') {
            i += 1;
        }
        if self.at(i) == 0 {
            return None;
        }
        let start = i;
        while !matches!(self.at(i), 0 | b' ' | b'\t') {
            i += 1;
        }
        if self.at(i) != 0 {
            self.set(i, 0);
        }
        Some(start)
    }

    fn parse_line(&mut self) -> Result<(), ParseError> {
        self.skip_whitespace();
        loop {
            let Some(w) = self.strtok() else { return Ok(()) };
            let word = self.str_at(w).to_vec();
            let is = |full: &[u8]| word.len() == 1 || word.as_slice() == full;
            match word[0] {
                b'#' => return Ok(()),
                b'p' if is(b"package") => self.parse_package()?,
                b'c' if is(b"config") => self.parse_config()?,
                b'o' if is(b"option") => self.parse_option(false)?,
                b'l' if is(b"list") => self.parse_option(true)?,
                _ => return Err(self.err(Reason::InvalidCommand)),
            }
        }
    }

    /// Step over the command word (NUL-terminated by strtok); `Err` if nothing follows it.
    fn skip_command(&mut self, reason: Reason) -> Result<(), ParseError> {
        let add = self.strlen(self.pos) + 1;
        if self.pos + add > self.buf_filled {
            return Err(self.err(reason));
        }
        self.pos += add;
        Ok(())
    }

    fn parse_package(&mut self) -> Result<(), ParseError> {
        self.skip_command(Reason::PackageWithoutName)?;
        self.next_arg(true, true, true)?;
        self.assert_eol()?;
        // The file is loaded as a named config: a `package` line is checked, then ignored.
        Ok(())
    }

    fn parse_config(&mut self) -> Result<(), ParseError> {
        self.skip_command(Reason::ConfigWithoutName)?;
        let t = self.next_arg(true, false, false)?;
        if !valid_str(self.str_at(t), false, false) {
            return Err(self.err(Reason::InvalidType));
        }
        let n = self.next_arg(false, true, false)?;
        self.assert_eol()?;
        let stype = self.str_at(t).to_vec();
        let name = self.str_at(n).to_vec();
        let stype_s = String::from_utf8_lossy(&stype).into_owned();
        let line = self.stmt_line;
        if name.is_empty() {
            self.n_section += 1;
            self.n_section += 1;
            let hash = djbhash(!0, &stype);
            let uci_name = format!("cfg{:02x}{:04x}", self.n_section, hash % (1 << 16)).into_bytes();
            let sec = Section { stype: stype_s, name: None, line, options: Vec::new() };
            self.secs.push(RSection { sec, uci_name });
            self.cur = Some(self.secs.len() - 1);
        } else if let Some(i) = self.secs.iter().position(|s| s.uci_name == name) {
            if self.secs[i].sec.stype.as_bytes() != stype.as_slice() {
                return Err(self.err(Reason::TypeChanged));
            }
            self.cur = Some(i);
        } else {
            self.n_section += 1;
            let name_s = String::from_utf8_lossy(&name).into_owned();
            let sec = Section { stype: stype_s, name: Some(name_s), line, options: Vec::new() };
            self.secs.push(RSection { sec, uci_name: name });
            self.cur = Some(self.secs.len() - 1);
        }
        Ok(())
    }

    fn parse_option(&mut self, list: bool) -> Result<(), ParseError> {
        let Some(ci) = self.cur else {
            return Err(self.err(Reason::OptionBeforeSection));
        };
        self.skip_command(Reason::OptionWithoutName)?;
        let n = self.next_arg(true, true, false)?;
        let v = self.next_arg(false, false, false)?;
        self.assert_eol()?;
        let name = String::from_utf8_lossy(self.str_at(n)).into_owned();
        let value = Value::from_bytes(self.str_at(v).to_vec(), self.stmt_line);
        let line = self.stmt_line;
        let opts = &mut self.secs[ci].sec.options;
        let existing = opts.iter().position(|o| o.name == name);
        if list {
            match existing {
                Some(i) if opts[i].is_list() => {
                    opts[i].line = line;
                    if let OptionValue::List(vs) = &mut opts[i].value {
                        vs.push(value);
                    }
                }
                Some(i) => {
                    // A string becomes a list holding the old value first; the list goes to the end.
                    let old = opts.remove(i);
                    let OptionValue::Single(first) = old.value else { unreachable!() };
                    opts.push(UciOption { name, line, value: OptionValue::List(vec![first, value]) });
                }
                None => opts.push(UciOption { name, line, value: OptionValue::List(vec![value]) }),
            }
        } else if !value.raw.is_empty() {
            match existing {
                Some(i) if matches!(&opts[i].value, OptionValue::Single(old) if old.raw == value.raw) => {}
                Some(i) => {
                    opts.remove(i);
                    opts.push(UciOption { name, line, value: OptionValue::Single(value) });
                }
                None => opts.push(UciOption { name, line, value: OptionValue::Single(value) }),
            }
        }
        Ok(())
    }

    /// libuci's `assert_eol` (strict mode): anything left on the line is an error.
    fn assert_eol(&mut self) -> Result<(), ParseError> {
        self.skip_whitespace();
        let t = self.next_arg(false, false, false)?;
        if self.at(t) != 0 {
            return Err(self.err(Reason::TooManyArgs));
        }
        Ok(())
    }

    /// libuci's `next_arg`: parse one argument in place; returns its start in the buffer.
    fn next_arg(&mut self, required: bool, name: bool, package: bool) -> Result<usize, ParseError> {
        self.skip_whitespace();
        let val = self.pos;
        if self.cur() == b';' {
            self.set(self.pos, 0);
            self.pos += 1;
        } else {
            let mut target = val;
            self.parse_str(&mut target)?;
        }
        if self.at(val) == 0 {
            if required {
                return Err(self.err(Reason::InsufficientArgs));
            }
            return Ok(val);
        }
        if name && !valid_str(self.str_at(val), true, package) {
            return Err(self.err(Reason::InvalidName));
        }
        Ok(val)
    }

    fn addc(&mut self, target: &mut usize) {
        let c = self.cur();
        self.set(*target, c);
        *target += 1;
        self.pos += 1;
    }

    /// After a `\`: `false` if it ended the line (the next line was joined), `true` if the next byte is
    /// to be taken literally.
    fn parse_backslash(&mut self) -> bool {
        self.pos += 1;
        let c = self.cur();
        if c == 0 || c == b'\n' || (c == b'\r' && self.at(self.pos + 1) == b'\n' && self.at(self.pos + 2) == 0) {
            self.getln(self.pos);
            return false;
        }
        true
    }

    /// libuci's `parse_str`: one argument made of unquoted/quoted pieces, unescaped in place at `target`.
    fn parse_str(&mut self, target: &mut usize) -> Result<(), ParseError> {
        let mut next = true;
        loop {
            match self.cur() {
                b'\'' => self.parse_single_quote(target)?,
                b'"' => self.parse_double_quote(target)?,
                b'#' => {
                    self.set(self.pos, 0);
                    break;
                }
                0 => break,
                b';' => {
                    next = false;
                    break;
                }
                b'\\' => {
                    if self.parse_backslash() {
                        self.addc(target);
                    }
                }
                _ => self.addc(target),
            }
            if self.cur() == 0 || is_space(self.cur()) {
                break;
            }
        }
        if self.cur() != 0 && next {
            self.pos += 1;
        }
        self.set(*target, 0);
        Ok(())
    }

    fn parse_single_quote(&mut self, target: &mut usize) -> Result<(), ParseError> {
        self.pos += 1;
        loop {
            match self.cur() {
                b'\'' => {
                    self.pos += 1;
                    return Ok(());
                }
                0 => {
                    self.getln(self.pos);
                    if self.cur() == 0 {
                        return Err(self.err(Reason::UnterminatedSingle));
                    }
                }
                _ => self.addc(target),
            }
        }
    }

    fn parse_double_quote(&mut self, target: &mut usize) -> Result<(), ParseError> {
        self.pos += 1;
        loop {
            match self.cur() {
                b'"' => {
                    self.pos += 1;
                    return Ok(());
                }
                0 => {
                    self.getln(self.pos);
                    if self.cur() == 0 {
                        return Err(self.err(Reason::UnterminatedDouble));
                    }
                }
                b'\\' => {
                    if self.parse_backslash() {
                        self.addc(target);
                    }
                }
                _ => self.addc(target),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_sections_options_lists() {
        let p = parse(
            "t",
            "config moat 'main'\n\toption enabled '1'\n\tlist lan_device 'br-lan'\n\tlist lan_device \"br-guest\"\n\nconfig device\n\toption name 'Kitchen speaker' # comment\n",
        )
        .unwrap();
        assert_eq!(p.sections.len(), 2);
        assert_eq!(p.address(0), "main");
        assert_eq!(p.address(1), "@device[0]");
        let lan = p.sections[0].get("lan_device").unwrap();
        assert_eq!(lan.values().iter().map(|v| v.text.as_str()).collect::<Vec<_>>(), ["br-lan", "br-guest"]);
        assert_eq!(p.sections[1].get("name").unwrap().values()[0].text, "Kitchen speaker");
        assert_eq!(p.sections[1].get("name").unwrap().line, 7);
    }

    #[test]
    fn unterminated_quote_names_line() {
        let e = parse("f", "config a 'x'\n\toption b 'oops\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.to_string().starts_with("f:2: "));
        assert!(e.message.contains("expected a closing '"));
    }
}
