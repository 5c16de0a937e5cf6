//! The guard file: the boot-time guard ([`crate::plan::guard`]) as an fw4 include, so the
//! firewall loads it on every start, restart and reload, before moat runs.
//!
//! Written atomically (temp file in the same directory, not named `*.nft` so fw4 never includes
//! a half-written one, then rename) after every successful apply of a valid config, only when
//! its text changed (the include directory is on flash). Removed only by `moat cleanup` or a
//! valid config that protects nobody (`enabled '0'` included). `moat run` loads it itself first
//! thing at start, so a boot where fw4 ran without it, or a moat started before fw4, is covered.

use std::path::{Path, PathBuf};

fn temp_of(path: &Path) -> PathBuf {
    let mut t = path.as_os_str().to_owned();
    t.push(".tmp");
    PathBuf::from(t)
}

/// Make the file at `path` hold `text` (`None`: remove it). Nothing is written when it already
/// holds exactly `text`. Returns whether the file changed.
pub fn sync(path: &Path, text: Option<&str>) -> std::io::Result<bool> {
    match text {
        None => match std::fs::remove_file(path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        },
        Some(t) => {
            if std::fs::read(path).is_ok_and(|old| old == t.as_bytes()) {
                return Ok(false);
            }
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            let tmp = temp_of(path);
            {
                use std::io::Write;
                let mut f = std::fs::File::create(&tmp)?;
                f.write_all(t.as_bytes())?;
                f.sync_all()?;
            }
            std::fs::rename(&tmp, path)?;
            Ok(true)
        }
    }
}

/// Why the guard file could not be loaded at start.
#[derive(Debug)]
pub enum LoadError {
    /// Reading it failed.
    Read(std::io::Error),
    /// `nft` refused it (or could not run).
    Nft(super::error::ApplyError),
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadError::Read(e) => write!(f, "reading the guard file: {e}"),
            LoadError::Nft(e) => write!(f, "loading the guard file: {e}"),
        }
    }
}

/// Load the guard file into the kernel if it exists (`nft -f -`, one transaction). `Ok(false)`
/// when there is no file.
pub fn load(path: &Path) -> Result<bool, LoadError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(LoadError::Read(e)),
    };
    super::apply::nft(&text).map(|()| true).map_err(LoadError::Nft)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_writes_only_changes_and_removes() {
        let dir = std::env::temp_dir().join(format!("moat-guardfile-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let p = dir.join("ruleset-post/moat-guard.nft");
        assert!(!sync(&p, None).unwrap());
        assert!(sync(&p, Some("a\n")).unwrap());
        assert!(!sync(&p, Some("a\n")).unwrap());
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "a\n");
        assert!(!temp_of(&p).exists());
        assert!(sync(&p, Some("b\n")).unwrap());
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "b\n");
        assert!(sync(&p, None).unwrap());
        assert!(!p.exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
