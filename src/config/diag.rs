//! Diagnostics: a problem found while reading the configuration, as data (file, line, section,
//! option, message), rendered as `file:line: section 'x' option 'y': message`.

use std::fmt;

/// What kind of problem a [`Diagnostic`] is, for callers that decide on it (never match the text).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// The file cannot be read, or is too large to be a moat configuration.
    File,
    /// The file is not UCI syntax (or holds a NUL byte): nothing in it was read.
    Syntax,
    /// A value, or a missing or misplaced option, inside one section.
    Value,
    /// A check across sections: references, duplicates, mark/table/queue budgets.
    Conflict,
    /// An option or section type moat does not know, or an option that does not apply here.
    Unknown,
}

/// A problem found while building the model: where it is and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// What kind of problem it is.
    pub kind: Kind,
    /// Config file path.
    pub file: String,
    /// 1-based line of the offending statement (the section's `config` line for missing options);
    /// 0 when the problem is about the whole file (unreadable).
    pub line: usize,
    /// UCI address of the section (`vpn`, `@device[0]`), if the problem is inside one.
    pub section: Option<String>,
    /// Option name, if the problem is about one option.
    pub option: Option<String>,
    /// What is wrong and, where possible, what was expected.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    /// `file:line: section 'x' option 'y': message` (parts that are unknown are left out).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if self.line != 0 {
            write!(f, ":{}", self.line)?;
        }
        let mut sep = ": ";
        if let Some(s) = &self.section {
            write!(f, "{}section '{}'", sep, s)?;
            sep = " ";
        }
        if let Some(o) = &self.option {
            write!(f, "{}option '{}'", sep, o)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Render a hostile string safely for an error message (control characters escaped, length capped).
pub fn printable(s: &str) -> String {
    let mut out: String = s.chars().take(64).flat_map(|c| c.escape_debug()).collect();
    if s.chars().count() > 64 {
        out.push('…');
    }
    out
}
