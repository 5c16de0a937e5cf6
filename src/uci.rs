//! Reader for OpenWrt UCI configuration files (`/etc/config/*`).
//!
//! The goal is to read a file exactly as OpenWrt's `uci` tool (libuci `file.c`) does:
//! the same sections, options, lists and values, in the same order, and to reject the
//! same files at the same line. Conformance is checked against `../shared/uci-vectors/`
//! in `tests/uci_vectors.rs`.
//!
//! This module is pure: text in, [`Package`] or [`ParseError`] out.

use std::fmt;

/// One value as written in the file, with the line it started on (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Value {
    /// The unquoted, unescaped text.
    pub text: String,
    /// Line (1-based) of the `option`/`list` statement that gave this value.
    pub line: usize,
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
}

/// One `config <type> ['<name>']` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// Section type (`device`, `tunnel`, …).
    pub stype: String,
    /// Section name; `None` for anonymous sections.
    pub name: Option<String>,
    /// Line of the `config` statement.
    pub line: usize,
    /// Options in the order they were first set.
    pub options: Vec<UciOption>,
}

impl Section {
    /// Look an option up by name.
    pub fn get(&self, name: &str) -> Option<&UciOption> {
        self.options.iter().find(|o| o.name == name)
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
}

/// A parse error: the file is not valid UCI syntax.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// Path of the file, as given to [`parse`].
    pub file: String,
    /// Line (1-based) where the error was found.
    pub line: usize,
    /// What was wrong / what was expected.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

impl std::error::Error for ParseError {}

/// Parse the text of a UCI file. `file` is used in error messages only.
pub fn parse(file: &str, text: &str) -> Result<Package, ParseError> {
    let mut p = Parser { file, chars: text.chars().collect(), pos: 0, line: 1, pkg: Package::default(), cur: None };
    p.run()?;
    Ok(p.pkg)
}

struct Parser<'a> {
    file: &'a str,
    chars: Vec<char>,
    pos: usize,
    line: usize,
    pkg: Package,
    /// Index of the current section in `pkg.sections`.
    cur: Option<usize>,
}

fn is_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

impl Parser<'_> {
    fn err(&self, line: usize, msg: impl Into<String>) -> ParseError {
        ParseError { file: self.file.to_string(), line, message: msg.into() }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn run(&mut self) -> Result<(), ParseError> {
        while self.pos < self.chars.len() {
            let line = self.line;
            let args = self.statement()?;
            if args.is_empty() {
                continue;
            }
            self.apply(line, args)?;
        }
        Ok(())
    }

    /// Read the tokens of one statement (up to and including the end of its line).
    fn statement(&mut self) -> Result<Vec<String>, ParseError> {
        let mut args = Vec::new();
        loop {
            // skip blanks
            while matches!(self.peek(), Some(' ') | Some('\t') | Some('\r')) {
                self.pos += 1;
            }
            match self.peek() {
                None => return Ok(args),
                Some('\n') => {
                    self.pos += 1;
                    self.line += 1;
                    return Ok(args);
                }
                Some('#') => {
                    while !matches!(self.peek(), None | Some('\n')) {
                        self.pos += 1;
                    }
                }
                Some(_) => args.push(self.token()?),
            }
        }
    }

    /// Read one token: a run of unquoted, single-quoted and double-quoted pieces.
    fn token(&mut self) -> Result<String, ParseError> {
        let start_line = self.line;
        let mut out = String::new();
        loop {
            match self.peek() {
                None | Some(' ') | Some('\t') | Some('\n') | Some('\r') => return Ok(out),
                Some('\'') => {
                    self.pos += 1;
                    loop {
                        match self.peek() {
                            None => return Err(self.err(start_line, "unterminated '")),
                            Some('\'') => {
                                self.pos += 1;
                                break;
                            }
                            Some(c) => {
                                if c == '\n' {
                                    self.line += 1;
                                }
                                out.push(c);
                                self.pos += 1;
                            }
                        }
                    }
                }
                Some('"') => {
                    self.pos += 1;
                    loop {
                        match self.peek() {
                            None => return Err(self.err(start_line, "unterminated \"")),
                            Some('"') => {
                                self.pos += 1;
                                break;
                            }
                            Some('\\') => {
                                self.pos += 1;
                                self.escaped(&mut out);
                            }
                            Some(c) => {
                                if c == '\n' {
                                    self.line += 1;
                                }
                                out.push(c);
                                self.pos += 1;
                            }
                        }
                    }
                }
                Some('\\') => {
                    self.pos += 1;
                    self.escaped(&mut out);
                }
                Some(c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    /// After a backslash: a newline joins lines, any other character stands for itself.
    fn escaped(&mut self, out: &mut String) {
        match self.peek() {
            None => {}
            Some('\n') => {
                self.pos += 1;
                self.line += 1;
            }
            Some(c) => {
                out.push(c);
                self.pos += 1;
            }
        }
    }

    fn apply(&mut self, line: usize, args: Vec<String>) -> Result<(), ParseError> {
        match args[0].as_str() {
            "package" => {
                if args.len() != 2 {
                    return Err(self.err(line, "expected: package <name>"));
                }
                Ok(())
            }
            "config" => {
                if args.len() < 2 || args.len() > 3 {
                    return Err(self.err(line, "expected: config <type> ['<name>']"));
                }
                let stype = args[1].clone();
                if !is_name(&stype) {
                    return Err(self.err(line, format!("invalid section type '{}'", stype)));
                }
                let name = args.get(2).cloned();
                if let Some(n) = &name {
                    if !is_name(n) {
                        return Err(self.err(line, format!("invalid section name '{}'", n)));
                    }
                    if let Some(i) = self.pkg.sections.iter().position(|s| s.name.as_deref() == Some(n)) {
                        self.pkg.sections[i].stype = stype;
                        self.cur = Some(i);
                        return Ok(());
                    }
                }
                self.pkg.sections.push(Section { stype, name, line, options: Vec::new() });
                self.cur = Some(self.pkg.sections.len() - 1);
                Ok(())
            }
            kw @ ("option" | "list") => {
                let is_list = kw == "list";
                let Some(ci) = self.cur else {
                    return Err(self.err(line, format!("'{}' before any 'config' section", kw)));
                };
                if args.len() < 2 || args.len() > 3 {
                    return Err(self.err(line, format!("expected: {} <name> '<value>'", kw)));
                }
                let name = args[1].clone();
                if !is_name(&name) {
                    return Err(self.err(line, format!("invalid option name '{}'", name)));
                }
                let value = args.get(2).cloned();
                let sec = &mut self.pkg.sections[ci];
                let existing = sec.options.iter().position(|o| o.name == name);
                if is_list {
                    let v = Value { text: value.unwrap_or_default(), line };
                    match existing {
                        Some(i) => {
                            let o = &mut sec.options[i];
                            o.line = line;
                            match &mut o.value {
                                OptionValue::List(vs) => vs.push(v),
                                OptionValue::Single(old) => {
                                    let old = old.clone();
                                    o.value = OptionValue::List(vec![old, v]);
                                }
                            }
                        }
                        None => sec.options.push(UciOption { name, line, value: OptionValue::List(vec![v]) }),
                    }
                } else {
                    match value {
                        None => {}
                        Some(t) if t.is_empty() => {
                            if let Some(i) = existing {
                                sec.options.remove(i);
                            }
                        }
                        Some(t) => {
                            let v = OptionValue::Single(Value { text: t, line });
                            match existing {
                                Some(i) => {
                                    sec.options[i].value = v;
                                    sec.options[i].line = line;
                                }
                                None => sec.options.push(UciOption { name, line, value: v }),
                            }
                        }
                    }
                }
                Ok(())
            }
            other => Err(self.err(line, format!("unknown statement '{}' (expected package, config, option or list)", other))),
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
    }
}
