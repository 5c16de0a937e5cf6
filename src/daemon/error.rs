//! Typed errors of the daemon's effects: callers decide on variants, never on message text.
//!
//! The decision that matters: whether the nft step is in force. Only a successful `nft -f` loads
//! a table; any [`ApplyError::Nft`] (nft could not be started, its stdin broke, or it rejected
//! the script) means the table in the kernel is still the previous one, so the daemon must not
//! record the new plan as applied. `Display` gives the texts the log and `status.json` show.

use std::fmt;
use std::io;

/// Running one external program (`nft`, `iptables-restore`) failed.
#[derive(Debug)]
pub enum RunError {
    /// The program could not be started (missing, not executable, fork failed).
    Spawn {
        /// Program name or path.
        prog: String,
        /// Why.
        err: io::Error,
    },
    /// Writing the script to its stdin failed (it exited early).
    Stdin {
        /// Program name or path.
        prog: String,
        /// Why.
        err: io::Error,
    },
    /// Waiting for it failed.
    Wait {
        /// Program name or path.
        prog: String,
        /// Why.
        err: io::Error,
    },
    /// It ran and exited with a failure status.
    Failed {
        /// Program name or path.
        prog: String,
        /// Its arguments, space-separated.
        args: String,
        /// Its stderr, trimmed.
        stderr: String,
    },
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Spawn { prog, err } => write!(f, "cannot run {prog}: {err}"),
            RunError::Stdin { prog, err } => write!(f, "{prog}: writing stdin: {err}"),
            RunError::Wait { prog, err } => write!(f, "{prog}: {err}"),
            RunError::Failed { prog, args, stderr } => write!(f, "{prog} {args}: {stderr}"),
        }
    }
}

impl std::error::Error for RunError {}

/// One failed step of an apply, removal or stop.
#[derive(Debug)]
pub enum ApplyError {
    /// The nft step did not load: the table in force is the previous one (or none).
    Nft(RunError),
    /// `iptables-restore` of the xt NFQUEUE rules failed. `blocked`: the apply loaded the
    /// fallback ruleset that drops shaped devices' forwarding until the queue rules load.
    QueueRules {
        /// What failed.
        err: RunError,
        /// Whether shaped devices are blocked because of it.
        blocked: bool,
    },
    /// An rtnetlink request (ip rules, routes) failed.
    Netlink {
        /// What was being done, e.g. "adding rule fwmark …".
        what: String,
        /// The kernel's answer.
        err: io::Error,
    },
}

impl fmt::Display for ApplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApplyError::Nft(e) => e.fmt(f),
            ApplyError::QueueRules { err, blocked: false } => err.fmt(f),
            ApplyError::QueueRules { err, blocked: true } => {
                write!(f, "{err} (shaped devices are blocked until the queue rules load)")
            }
            ApplyError::Netlink { what, err } => write!(f, "{what}: {err}"),
        }
    }
}

/// The failed steps of one apply (at least one); the others went through.
#[derive(Debug, Default)]
pub struct ApplyErrors(pub Vec<ApplyError>);

impl ApplyErrors {
    /// Whether the nft step failed (the new table is not in force).
    pub fn nft_failed(&self) -> bool {
        self.0.iter().any(|e| matches!(e, ApplyError::Nft(_)))
    }

    /// `Ok(())` when nothing failed.
    pub fn into_result(self) -> Result<(), ApplyErrors> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(self)
        }
    }

    /// Collect the error of `r`, if any.
    pub fn note(&mut self, r: Result<(), ApplyErrors>) {
        if let Err(e) = r {
            self.0.extend(e.0);
        }
    }
}

impl From<ApplyError> for ApplyErrors {
    fn from(e: ApplyError) -> Self {
        ApplyErrors(vec![e])
    }
}

impl fmt::Display for ApplyErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            e.fmt(f)?;
        }
        Ok(())
    }
}

impl std::error::Error for ApplyErrors {}

/// Why one convergence step failed.
#[derive(Debug)]
pub enum StepError {
    /// The plan could not be built on this system; nothing was touched.
    Plan(Vec<String>),
    /// Applying (or removing) failed in some steps.
    Apply(ApplyErrors),
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StepError::Plan(errs) => f.write_str(&errs.join("; ")),
            StepError::Apply(e) => e.fmt(f),
        }
    }
}

impl From<ApplyErrors> for StepError {
    fn from(e: ApplyErrors) -> Self {
        StepError::Apply(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_match_what_the_log_showed_before_and_decisions_use_variants() {
        let spawn = RunError::Spawn { prog: "nft".into(), err: io::Error::from_raw_os_error(libc::EACCES) };
        assert!(spawn.to_string().starts_with("cannot run nft: "));
        let failed = RunError::Failed { prog: "nft".into(), args: "-f -".into(), stderr: "Error: x".into() };
        assert_eq!(failed.to_string(), "nft -f -: Error: x");
        let q = RunError::Failed { prog: "iptables-restore".into(), args: "-w --noflush".into(), stderr: "e".into() };
        let errs = ApplyErrors(vec![
            ApplyError::QueueRules { err: q, blocked: true },
            ApplyError::Netlink { what: "listing rules".into(), err: io::Error::from_raw_os_error(libc::EPERM) },
        ]);
        assert!(!errs.nft_failed());
        assert!(errs.to_string().starts_with(
            "iptables-restore -w --noflush: e (shaped devices are blocked until the queue rules load); listing rules: "
        ));
        // The old decision (`starts_with("nft ")`) took a spawn failure for "nft in force".
        assert!(ApplyErrors::from(ApplyError::Nft(spawn)).nft_failed());
        assert!(ApplyErrors::from(ApplyError::Nft(failed)).nft_failed());
        assert_eq!(StepError::Plan(vec!["a".into(), "b".into()]).to_string(), "a; b");
    }
}
