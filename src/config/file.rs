//! Reading a configuration file: size-limited, and for the daemon only once it has settled.

use super::{check_bytes, whole_file, Diagnostic, Kind, Loaded, Report, MAX_FILE_BYTES};

/// How long a configuration file must read the same before the daemon applies it
/// ([`load_file_settled`]).
pub const SETTLE: std::time::Duration = std::time::Duration::from_millis(100);

/// Reads of a file that keeps changing before [`load_file_settled`] gives up (about 2 s at
/// [`SETTLE`]).
pub const SETTLE_READS: usize = 20;

/// [`load_file`] for the daemon: the file is read again `settle` later until two reads in a row
/// agree (at most [`SETTLE_READS`] reads), and only then parsed.
///
/// A writer that truncates the file and then writes it (a plain `>` redirect, an editor saving in
/// place) leaves a moment in which the file is empty or cut short; a reload that read it then
/// would apply a configuration with fewer (or no) protected devices until the next reload. A file
/// that never reads the same twice is an error (the running state stays as it is).
pub fn load_file_settled(
    path: impl AsRef<std::path::Path>,
    settle: std::time::Duration,
) -> Result<Loaded, Vec<Diagnostic>> {
    let path = path.as_ref();
    let file = path.display().to_string();
    let read = settled(|| read_file(path), || std::thread::sleep(settle), SETTLE_READS).unwrap_or_else(|| {
        Err(format!(
            "the file changed between every two of {SETTLE_READS} reads; not applied (is something writing it?)"
        ))
    });
    check_read(&file, read).into_result()
}

/// The report on what reading `file` gave: its bytes checked, or why it could not be read.
pub(super) fn check_read(file: &str, read: Result<Vec<u8>, String>) -> Report {
    match read {
        Ok(bytes) => check_bytes(file, &bytes),
        Err(message) => whole_file(Kind::File, file, 0, message),
    }
}

/// Calls `read` (with `wait` between calls) until two results in a row are equal and returns
/// that result, or `None` after `max_reads` reads without two equal ones in a row.
fn settled<T: PartialEq>(mut read: impl FnMut() -> T, mut wait: impl FnMut(), max_reads: usize) -> Option<T> {
    let mut last = read();
    for _ in 1..max_reads {
        wait();
        let next = read();
        if next == last {
            return Some(next);
        }
        last = next;
    }
    None
}

/// The bytes of a configuration file, or why they cannot be used (unreadable, too large).
pub(super) fn read_file(path: &std::path::Path) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let mut bytes = Vec::new();
    let read = std::fs::File::open(path).and_then(|f| f.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes));
    if let Err(e) = read {
        return Err(format!("cannot read the configuration: {e}"));
    }
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(format!("the file is larger than {MAX_FILE_BYTES} bytes; not a moat configuration"));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    /// `settled` over a scripted sequence of reads; also returns how many reads and waits it made.
    fn run(reads: &[&str], max: usize) -> (Option<String>, usize, usize) {
        let (n, waits) = (Cell::new(0), Cell::new(0));
        let got = settled(
            || {
                let i = n.get();
                n.set(i + 1);
                reads[i.min(reads.len() - 1)].to_string()
            },
            || waits.set(waits.get() + 1),
            max,
        );
        (got, n.get(), waits.get())
    }

    #[test]
    fn a_steady_file_takes_two_reads_and_one_wait() {
        assert_eq!(run(&["a"], 20), (Some("a".into()), 2, 1));
    }

    #[test]
    fn a_file_read_while_truncated_is_read_again_until_it_holds_still() {
        // Truncated (empty), then the writer's first half, then the whole file twice.
        assert_eq!(run(&["", "half", "whole", "whole"], 20), (Some("whole".into()), 4, 3));
    }

    #[test]
    fn a_file_that_never_holds_still_gives_none_after_max_reads() {
        let changing: Vec<String> = (0..30).map(|i| i.to_string()).collect();
        let refs: Vec<&str> = changing.iter().map(String::as_str).collect();
        assert_eq!(run(&refs, 20), (None, 20, 19));
    }

    #[test]
    fn an_equal_pair_must_be_consecutive() {
        // "a" twice but not in a row is not settled.
        assert_eq!(run(&["a", "b", "a", "c", "c"], 20), (Some("c".into()), 5, 4));
    }

    fn scratch(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("moat-settle-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn load_file_settled_parses_a_steady_file_and_names_unreadable_ones() {
        let d = scratch("load");
        let p = d.join("moat");
        std::fs::write(&p, "config moat 'main'\n").unwrap();
        let ok = load_file_settled(&p, std::time::Duration::ZERO);
        let missing = load_file_settled(d.join("absent"), std::time::Duration::ZERO);
        std::fs::remove_dir_all(&d).unwrap();
        assert!(ok.is_ok(), "{ok:?}");
        let errs = missing.unwrap_err();
        assert_eq!(errs.len(), 1);
        assert!(errs[0].to_string().contains("cannot read the configuration"), "{}", errs[0]);
    }
}
