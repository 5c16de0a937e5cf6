//! Reading one option of a section: single values, lists, defaults, required options and unknown
//! names, each problem recorded as a [`Diagnostic`] at its line.

use super::suggest::did_you_mean;
use super::uci::{OptionValue, Section, Value};
use super::{printable, Diagnostic, Kind};

/// A section being read, with its UCI address.
pub(super) struct Sec<'s> {
    pub(super) s: &'s Section,
    pub(super) addr: String,
}

/// Collects diagnostics while the model is built.
pub(super) struct Ctx<'a> {
    pub(super) file: &'a str,
    pub(super) errors: Vec<Diagnostic>,
    pub(super) warnings: Vec<Diagnostic>,
}

impl Ctx<'_> {
    pub(super) fn diag(
        &self,
        kind: Kind,
        line: usize,
        sec: Option<&str>,
        opt: Option<&str>,
        msg: String,
    ) -> Diagnostic {
        Diagnostic {
            kind,
            file: self.file.to_string(),
            line,
            section: sec.map(str::to_string),
            option: opt.map(str::to_string),
            message: msg,
        }
    }
    /// An error about a value or option of one section ([`Kind::Value`]).
    pub(super) fn error(&mut self, line: usize, sec: Option<&str>, opt: Option<&str>, msg: String) {
        let d = self.diag(Kind::Value, line, sec, opt, msg);
        self.errors.push(d);
    }
    /// An error found by a check across sections ([`Kind::Conflict`]).
    pub(super) fn conflict(&mut self, line: usize, sec: Option<&str>, opt: Option<&str>, msg: String) {
        let d = self.diag(Kind::Conflict, line, sec, opt, msg);
        self.errors.push(d);
    }
    /// A warning about a value ([`Kind::Value`]).
    pub(super) fn warn(&mut self, line: usize, sec: Option<&str>, opt: Option<&str>, msg: String) {
        let d = self.diag(Kind::Value, line, sec, opt, msg);
        self.warnings.push(d);
    }
    /// A warning about an unknown or inapplicable option or section type ([`Kind::Unknown`]).
    pub(super) fn unknown(&mut self, line: usize, sec: Option<&str>, opt: Option<&str>, msg: String) {
        let d = self.diag(Kind::Unknown, line, sec, opt, msg);
        self.warnings.push(d);
    }

    /// The value of a single-valued option; `None` if absent or given as a list (an error).
    pub(super) fn single<'s>(&mut self, sec: &Sec<'s>, name: &str) -> Option<&'s Value> {
        let o = sec.s.get(name)?;
        match &o.value {
            OptionValue::Single(v) => Some(v),
            OptionValue::List(_) => {
                self.error(
                    o.line,
                    Some(&sec.addr),
                    Some(name),
                    format!("takes a single value: write `option {} '...'`, not `list`", name),
                );
                None
            }
        }
    }

    /// A parsed single-valued option: `Ok(None)` if absent, `Err(())` if invalid (error recorded).
    pub(super) fn get<T>(
        &mut self,
        sec: &Sec<'_>,
        name: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<Option<(T, usize)>, ()> {
        let present = sec.s.get(name).is_some();
        match self.single(sec, name) {
            None if present => Err(()),
            None => Ok(None),
            Some(v) if !v.is_utf8() => {
                self.error(v.line, Some(&sec.addr), Some(name), format!("'{}' is not valid UTF-8", printable(&v.text)));
                Err(())
            }
            Some(v) => match parse(&v.text) {
                Ok(t) => Ok(Some((t, v.line))),
                Err(m) => {
                    self.error(v.line, Some(&sec.addr), Some(name), m);
                    Err(())
                }
            },
        }
    }

    /// A parsed option with a default: the default when absent or invalid (error recorded).
    pub(super) fn get_or<T>(
        &mut self,
        sec: &Sec<'_>,
        name: &str,
        default: T,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> T {
        match self.get(sec, name, parse) {
            Ok(Some((v, _))) => v,
            _ => default,
        }
    }

    /// A required option: error naming the section's `config` line when absent.
    pub(super) fn required<T>(
        &mut self,
        sec: &Sec<'_>,
        name: &str,
        what: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<(T, usize)> {
        match self.get(sec, name, parse) {
            Ok(Some(v)) => Some(v),
            Ok(None) => {
                self.error(sec.s.line, Some(&sec.addr), Some(name), format!("missing: {}", what));
                None
            }
            Err(()) => None,
        }
    }

    /// Every item of an option that may be given as `list` (or a single `option`), each parsed;
    /// `None` if absent. Invalid items are reported and left out.
    pub(super) fn list<T>(
        &mut self,
        sec: &Sec<'_>,
        name: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Option<Vec<(T, usize)>> {
        let o = sec.s.get(name)?;
        let mut out = Vec::new();
        for v in o.values() {
            if !v.is_utf8() {
                self.error(v.line, Some(&sec.addr), Some(name), format!("'{}' is not valid UTF-8", printable(&v.text)));
                continue;
            }
            match parse(&v.text) {
                Ok(t) => out.push((t, v.line)),
                Err(mut m) => {
                    let parts: Vec<&str> = v.text.split_whitespace().collect();
                    if parts.len() > 1 && parts.iter().all(|p| parse(p).is_ok()) {
                        m.push_str(&format!("; write one `list {} '...'` line per value", name));
                    }
                    self.error(v.line, Some(&sec.addr), Some(name), m)
                }
            }
        }
        Some(out)
    }

    /// An error about an unknown option or section type ([`Kind::Unknown`]).
    pub(super) fn refuse_unknown(&mut self, line: usize, sec: Option<&str>, opt: Option<&str>, msg: String) {
        let d = self.diag(Kind::Unknown, line, sec, opt, msg);
        self.errors.push(d);
    }

    /// Refuse options not in `known`, suggesting the closest known name: an unknown option is an
    /// error, so that a typo (`shapper`) never leaves a device unshaped or unprotected. `other(name)`
    /// may instead explain an option that is known elsewhere but does not apply here (a warning).
    pub(super) fn unknown_options(&mut self, sec: &Sec<'_>, known: &[&str], other: impl Fn(&str) -> Option<String>) {
        for o in &sec.s.options {
            if known.contains(&o.name.as_str()) {
                continue;
            }
            match other(&o.name) {
                Some(msg) => self.unknown(o.line, Some(&sec.addr), Some(&o.name), msg),
                None => self.refuse_unknown(
                    o.line,
                    Some(&sec.addr),
                    Some(&o.name),
                    format!("unknown option{} (known here: {})", did_you_mean(&o.name, known), known.join(", ")),
                ),
            }
        }
    }
}
