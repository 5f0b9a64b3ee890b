//! The local stack's data directory: private permissions for what it keeps there (the
//! store, secrets and queues hold directory data and credentials), and an OS file lock
//! so only one `dev` uses a data directory at a time.
//!
//! The lock is an advisory lock of the operating system (`flock` on unix, `LockFileEx`
//! on Windows) on `<dir>/dev.lock`, not a pid file: the kernel drops it when the
//! process dies however it dies (SIGKILL included), so a crashed `dev` never leaves a
//! stale lock behind that a user would have to delete by hand.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

/// The lock file's name inside the data directory.
pub const LOCK_FILE: &str = "dev.lock";

/// Creates `dir` and any missing parents; on unix every directory it creates gets mode
/// 0700. A directory that already exists is left as it is: the user chose it (it may
/// be shared, like a temporary directory), and the files inside are kept 0600 anyway.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Opens `path` for reading and writing, creating it (mode 0600 on unix) if missing,
/// and narrows an existing file's mode to 0600 when group or others had any access.
pub fn open_private_file(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let file = options.open(path)?;
    make_private(path)?;
    Ok(file)
}

/// Narrows an existing file's mode to 0600 (unix) when group or others had any access;
/// a missing file is fine (nothing to protect). Elsewhere it does nothing: Windows
/// files inherit the user profile's access list.
pub fn make_private(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        if meta.permissions().mode() & 0o077 != 0 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Why the data directory could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process (another `dev`) holds the lock.
    #[error(
        "data directory {} is in use by another bamboohr-sync dev process (stop it, or pass another data directory)",
        dir.display()
    )]
    Held {
        /// The data directory.
        dir: PathBuf,
    },
    /// The directory or its lock file could not be created or locked.
    #[error("cannot lock data directory {}: {source}", dir.display())]
    Io {
        /// The data directory.
        dir: PathBuf,
        /// What failed.
        source: io::Error,
    },
}

/// The exclusive lock of a data directory, held until dropped (or until the process
/// ends, whichever comes first).
#[derive(Debug)]
pub struct DataDirLock {
    file: File,
    dir: PathBuf,
}

impl DataDirLock {
    /// Creates `dir` if needed (0700) and locks `<dir>/dev.lock` without waiting: when
    /// another process holds it this fails at once with [`LockError::Held`].
    pub fn acquire(dir: impl AsRef<Path>) -> Result<Self, LockError> {
        let dir = dir.as_ref().to_path_buf();
        let io = |source| LockError::Io {
            dir: dir.clone(),
            source,
        };
        create_private_dir(&dir).map_err(io)?;
        let file = open_private_file(&dir.join(LOCK_FILE)).map_err(io)?;
        // Called through the trait on purpose: std's inherent `File::try_lock` only
        // exists from Rust 1.89, above the workspace's rust-version.
        match fs4::FileExt::try_lock(&file) {
            Ok(()) => Ok(Self { file, dir }),
            Err(fs4::TryLockError::WouldBlock) => Err(LockError::Held { dir }),
            Err(fs4::TryLockError::Error(e)) => Err(io(e)),
        }
    }

    /// The locked data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for DataDirLock {
    fn drop(&mut self) {
        // Closing the file releases the lock as well; unlocking first makes the release
        // not depend on when the handle is closed.
        let _ = fs4::FileExt::unlock(&self.file);
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Read};
    use std::process::{Command, Stdio};

    use super::*;

    /// Set in the child process: the directory whose lock it holds.
    const HOLD_ENV: &str = "EMBEDDED_ADAPTERS_TEST_HOLD_LOCK";
    const CHILD_TEST: &str = "data_dir::tests::lock_holder_child";

    /// Not a test of its own: run by `the_lock_excludes_other_processes_until_the_holder_dies`
    /// in a child process (re-running this test binary), where it takes the lock, says
    /// so, and holds it until its stdin closes or it is killed.
    #[test]
    fn lock_holder_child() {
        let Some(dir) = std::env::var_os(HOLD_ENV) else {
            return;
        };
        let _lock = DataDirLock::acquire(PathBuf::from(dir)).expect("child takes the lock");
        println!("LOCKED");
        // Held until stdin closes, or for a minute at most so a parent that stopped
        // reading cannot leave this process (and itself) hanging.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = std::io::stdin().read_to_end(&mut Vec::new());
            let _ = tx.send(());
        });
        let _ = rx.recv_timeout(std::time::Duration::from_secs(60));
    }

    #[test]
    fn the_lock_excludes_other_processes_until_the_holder_dies() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([CHILD_TEST, "--exact", "--nocapture", "--test-threads=1"])
            .env(HOLD_ENV, &data)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        assert!(
            // libtest prints the test's name and its output on one line.
            lines.any(|l| l.is_ok_and(|l| l.ends_with("LOCKED"))),
            "the child took the lock"
        );

        let err = DataDirLock::acquire(&data).unwrap_err();
        assert!(matches!(err, LockError::Held { .. }), "{err}");
        assert!(
            err.to_string().contains(&data.display().to_string()),
            "the error names the directory: {err}"
        );

        // Killed, not asked to stop: the OS releases the lock of a dead process.
        child.kill().unwrap();
        child.wait().unwrap();
        let lock = DataDirLock::acquire(&data).expect("free once the holder died");
        assert_eq!(lock.dir(), data);
    }

    #[test]
    fn dropping_the_lock_releases_it() {
        let dir = tempfile::tempdir().unwrap();
        let lock = DataDirLock::acquire(dir.path()).unwrap();
        drop(lock);
        DataDirLock::acquire(dir.path()).expect("free after drop");
    }

    #[cfg(unix)]
    #[test]
    fn created_directories_are_0700_and_files_0600() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("a").join("b");
        create_private_dir(&nested).unwrap();
        assert_eq!(mode(&dir.path().join("a")), 0o700);
        assert_eq!(mode(&nested), 0o700);

        let file = nested.join("f");
        drop(open_private_file(&file).unwrap());
        assert_eq!(mode(&file), 0o600);

        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        make_private(&file).unwrap();
        assert_eq!(mode(&file), 0o600, "an existing readable file is narrowed");
        make_private(&nested.join("missing")).unwrap();

        DataDirLock::acquire(&nested).unwrap();
        assert_eq!(mode(&nested.join(LOCK_FILE)), 0o600);
    }
}
