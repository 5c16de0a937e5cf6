//! The reader proper: an emulation of libuci's `uci_parse_*` functions over its `fgets` line buffer.

use super::{OptionValue, Package, ParseError, Section, UciOption, Value};

/// Parse the bytes of a UCI file (any bytes, NUL and invalid UTF-8 included), exactly as `uci` does.
pub fn parse_bytes(file: &str, input: &[u8]) -> Result<Package, ParseError> {
    let mut r = Reader {
        file,
        input,
        fpos: 0,
        eof: false,
        newlines_read: 0,
        buf: Vec::new(),
        bufsz: 0,
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

/// The line buffer size at which this reader reports what libuci reports when its `realloc` fails ("out of
/// memory"). libuci doubles its buffer for every line that does not end in a newline within one `fgets` chunk
/// (a NUL byte cuts it short), so a few dozen NUL-truncated lines ask for gigabytes. Where exactly the real
/// allocation fails depends on the machine; 256 MiB is above any real router's free memory.
const MAX_BUFSZ: usize = 256 << 20;

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
    OutOfMemory,
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
            Reason::OutOfMemory => "out of memory (libuci's line buffer would exceed 256 MiB: NUL bytes in the file?)",
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
    /// The bytes of libuci's line buffer written so far (reads beyond are NUL).
    buf: Vec<u8>,
    /// libuci's `bufsz`: the size its buffer has (0 = not allocated yet). Tracked, not allocated, because a
    /// file of many NUL-truncated lines doubles it once per line.
    bufsz: usize,
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
pub(super) fn djbhash(mut hash: u32, s: &[u8]) -> u32 {
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
        if i >= self.buf.len() {
            if c == 0 {
                return;
            }
            self.buf.resize(i + 1, 0);
        }
        self.buf[i] = c;
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

    /// Double the buffer as libuci does; past [`MAX_BUFSZ`] libuci's realloc fails (out of memory).
    fn grow(&mut self) -> Result<(), ParseError> {
        self.bufsz *= 2;
        if self.bufsz > MAX_BUFSZ {
            return Err(self.err(Reason::OutOfMemory));
        }
        Ok(())
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
    fn getln(&mut self, offset: usize) -> Result<(), ParseError> {
        if self.bufsz == 0 {
            self.bufsz = LINEBUF;
        }
        if offset >= self.bufsz - 1 {
            self.grow()?;
        }
        let mut ofs = offset;
        loop {
            self.set(ofs, 0);
            let n = self.bufsz - ofs;
            if !self.fgets(ofs, n) || self.at(ofs) == 0 {
                return Ok(());
            }
            ofs += self.strlen(ofs);
            self.buf_filled = ofs;
            if self.at(ofs - 1) == b'\n' {
                self.line += 1;
                return Ok(());
            }
            self.grow()?;
        }
    }

    fn run(&mut self) -> Result<(), ParseError> {
        while !self.eof {
            self.pos = 0;
            self.stmt_line = self.newlines_read + 1;
            self.getln(0)?;
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
            let sec = Section { stype: stype_s, name: None, line, options: Vec::new(), redeclared: Vec::new() };
            self.secs.push(RSection { sec, uci_name });
            self.cur = Some(self.secs.len() - 1);
        } else if let Some(i) = self.secs.iter().position(|s| s.uci_name == name) {
            if self.secs[i].sec.stype.as_bytes() != stype.as_slice() {
                return Err(self.err(Reason::TypeChanged));
            }
            self.secs[i].sec.redeclared.push(line);
            self.cur = Some(i);
        } else {
            self.n_section += 1;
            let name_s = String::from_utf8_lossy(&name).into_owned();
            let sec = Section { stype: stype_s, name: Some(name_s), line, options: Vec::new(), redeclared: Vec::new() };
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
    fn parse_backslash(&mut self) -> Result<bool, ParseError> {
        self.pos += 1;
        let c = self.cur();
        if c == 0 || c == b'\n' || (c == b'\r' && self.at(self.pos + 1) == b'\n' && self.at(self.pos + 2) == 0) {
            self.getln(self.pos)?;
            return Ok(false);
        }
        Ok(true)
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
                    if self.parse_backslash()? {
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
                    self.getln(self.pos)?;
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
                    self.getln(self.pos)?;
                    if self.cur() == 0 {
                        return Err(self.err(Reason::UnterminatedDouble));
                    }
                }
                b'\\' => {
                    if self.parse_backslash()? {
                        self.addc(target);
                    }
                }
                _ => self.addc(target),
            }
        }
    }
}
