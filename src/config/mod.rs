//! Typed, validated model of `/etc/config/moat` (schema v1): the first stage of the pipeline.
//!
//! Built from a parsed [`uci::Package`] by [`from_uci`] (or from a file by [`load_file`]). Every
//! value that can later reach an nft script or a command line is held in a type whose constructor
//! checks a strict grammar ([`IfName`], [`Name`], [`Mac`], `IpAddr`), so code downstream never has
//! to quote.
//!
//! Wrong values, failed cross-checks, unknown options and section types (with a "did you mean"
//! suggestion: a typo must never leave a device unprotected) and a section name declared twice
//! are errors; options that do not apply to a section's type are warnings ([`Loaded::warnings`]).
//! All of them are collected, each naming file, line, section and option. The rules are listed
//! in README.md, section "Configuration reference".
//!
//! Layout: `uci/` reads the file exactly as libuci does; `grammar.rs` parses values; `types.rs`
//! holds the model's types and limits; `options.rs` reads one option with its diagnostics;
//! `sections.rs` reads each section; `suggest.rs` finds the closest known name; `checks.rs` validates across sections; `budget.rs` counts
//! the marks, tables and queues a model needs and checks the configured ranges; `diag.rs` is the
//! diagnostic type.

pub mod uci;

mod budget;
mod checks;
mod diag;
mod file;
mod grammar;
mod options;
mod sections;
mod suggest;
#[cfg(test)]
mod tests;
mod types;

pub use checks::validate;
pub use diag::{printable, Diagnostic, Kind};
pub use file::{load_file_settled, SETTLE};
pub use grammar::*;
pub use types::*;

use uci::Package;

/// Everything validation found: the model (if there were no errors), the errors and the warnings.
#[derive(Debug, Clone)]
pub struct Report {
    /// The model; `None` when there are errors.
    pub model: Option<Model>,
    /// Errors, in line order.
    pub errors: Vec<Diagnostic>,
    /// Warnings, in line order (also collected when there are errors).
    pub warnings: Vec<Diagnostic>,
}

impl Report {
    /// The model and warnings, or the errors (the warnings are dropped in that case).
    pub fn into_result(self) -> Result<Loaded, Vec<Diagnostic>> {
        match self.model {
            Some(model) if self.errors.is_empty() => Ok(Loaded { model, warnings: self.warnings }),
            _ => Err(self.errors),
        }
    }
}

/// Build the model from a parsed package. On failure, every error found is returned.
///
/// `file` is used in diagnostics only. Warnings (options that do not apply, a LAN device listed
/// twice) never make loading fail. Use [`validate`] to get the warnings too when
/// there are errors.
pub fn from_uci(file: &str, pkg: &Package) -> Result<Loaded, Vec<Diagnostic>> {
    validate(file, pkg).into_result()
}

/// Read, parse and validate a configuration file.
///
/// A file that cannot be read, is larger than [`MAX_FILE_BYTES`], holds a NUL byte or is not
/// valid UCI syntax gives exactly one diagnostic.
pub fn load_file(path: impl AsRef<std::path::Path>) -> Result<Loaded, Vec<Diagnostic>> {
    check_file(path).into_result()
}

/// Like [`load_file`], but returns the warnings also when there are errors (for `moat check`).
pub fn check_file(path: impl AsRef<std::path::Path>) -> Report {
    let path = path.as_ref();
    let file = path.display().to_string();
    file::check_read(&file, file::read_file(path))
}

/// Parse and validate the bytes of a configuration file (`file` names it in diagnostics).
///
/// A NUL byte anywhere is refused first, naming its line: libuci silently drops the rest of a
/// line after a NUL, so such a file would not mean what it shows. A UCI syntax error gives one
/// diagnostic. Values that are not valid UTF-8 are errors of their option (see [`validate`]).
pub fn check_bytes(file: &str, bytes: &[u8]) -> Report {
    if let Some(at) = bytes.iter().position(|&b| b == 0) {
        let line = 1 + bytes[..at].iter().filter(|&&b| b == b'\n').count();
        return whole_file(
            Kind::Syntax,
            file,
            line,
            "NUL byte in the file (UCI would silently drop the rest of this line)".to_string(),
        );
    }
    match uci::parse_bytes(file, bytes) {
        Ok(pkg) => validate(file, &pkg),
        Err(e) => whole_file(Kind::Syntax, file, e.line, e.message),
    }
}

fn whole_file(kind: Kind, file: &str, line: usize, message: String) -> Report {
    Report {
        model: None,
        errors: vec![Diagnostic { kind, file: file.to_string(), line, section: None, option: None, message }],
        warnings: Vec::new(),
    }
}
