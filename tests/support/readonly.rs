//! A file no process of this user can write, whoever runs the tests: mode 0444 stops a user,
//! but not root, so for root the file is also made immutable (`chattr +i`, which needs
//! `CAP_LINUX_IMMUTABLE` and a filesystem that keeps the flag: ext4, xfs, btrfs). SQLite then
//! opens it read-only and refuses every write with `SQLITE_READONLY`. Undone when dropped.

use std::fs::{self, OpenOptions, Permissions};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const CHATTR_NEEDED: &str = "as root, a file mode does not stop writes: `chattr +i` is needed (Debian: sudo apt-get install e2fsprogs), with CAP_LINUX_IMMUTABLE on a filesystem that keeps the flag (ext4, xfs, btrfs) — or run the tests as a user other than root";

/// A file made read-only until dropped.
pub struct ReadOnly {
    path: PathBuf,
    mode: u32,
    immutable: bool,
}

impl ReadOnly {
    /// Makes `path` (which must exist) read-only for this user, root included.
    pub fn file(path: &Path) -> ReadOnly {
        let mode = fs::metadata(path)
            .expect("the file to make read-only")
            .permissions()
            .mode();
        fs::set_permissions(path, Permissions::from_mode(0o444)).expect("chmod 0444");
        let mut read_only = ReadOnly {
            path: path.to_path_buf(),
            mode,
            immutable: false,
        };
        if writable(path) {
            chattr(path, "+i").unwrap_or_else(|why| panic!("{why}: {CHATTR_NEEDED}"));
            read_only.immutable = true;
        }
        assert!(
            !writable(path),
            "{} is still writable: {CHATTR_NEEDED}",
            path.display()
        );
        read_only
    }
}

impl Drop for ReadOnly {
    fn drop(&mut self) {
        // Undone first, or the temporary directory holding it cannot be removed.
        if self.immutable {
            let _ = chattr(&self.path, "-i");
        }
        let _ = fs::set_permissions(&self.path, Permissions::from_mode(self.mode));
    }
}

fn writable(path: &Path) -> bool {
    OpenOptions::new().append(true).open(path).is_ok()
}

fn chattr(path: &Path, flag: &str) -> Result<(), String> {
    let out = Command::new("chattr")
        .arg(flag)
        .arg(path)
        .output()
        .map_err(|e| format!("cannot run chattr: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "chattr {flag} {} failed: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}
