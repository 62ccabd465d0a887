//! File writes that are private and atomic: a temp file in the same directory, the final mode
//! set before any byte is written, fsync, rename, fsync of the directory.

use std::{
    fs::{self, DirBuilder, File, OpenOptions, Permissions},
    io::{self, Write},
    os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt},
    path::Path,
};

pub const PRIVATE_DIR: u32 = 0o700;
pub const PRIVATE_FILE: u32 = 0o600;

/// Creates `dir` (and missing parents) as 0700 and makes sure `dir` itself is 0700.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(PRIVATE_DIR)
        .create(dir)?;
    let mode = fs::metadata(dir)?.permissions().mode() & 0o777;
    if mode != PRIVATE_DIR {
        fs::set_permissions(dir, Permissions::from_mode(PRIVATE_DIR))?;
    }
    Ok(())
}

/// Replaces `path` with `contents` atomically; readers see the old or the new file, never a mix.
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .permissions(Permissions::from_mode(mode))
        .tempfile_in(dir)?;
    // The builder's mode is subject to the umask; set it exactly.
    tmp.as_file()
        .set_permissions(Permissions::from_mode(mode))?;
    tmp.write_all(contents)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    fs::File::open(dir)?.sync_all()
}

/// Current permission bits of `path`, if it exists.
pub fn mode_of(path: &Path) -> Option<u32> {
    fs::metadata(path)
        .ok()
        .map(|m| m.permissions().mode() & 0o7777)
}

/// A cross-process exclusive lock on a file (`std::fs::File::lock`, flock(2) on Unix), held
/// until dropped (closing the file releases it).
#[derive(Debug)]
pub struct LockFile {
    _file: File,
}

impl LockFile {
    /// Blocks until the lock is ours.
    pub fn exclusive(path: &Path) -> io::Result<Self> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(path)?;
        file.lock()?;
        Ok(LockFile { _file: file })
    }

    /// Takes the lock if it is free and writes `holder` into the file for whoever finds it
    /// taken; otherwise returns at once with what the holder wrote. Never blocks.
    pub fn try_exclusive(path: &Path, holder: &str) -> io::Result<Result<Self, String>> {
        use std::io::{Read, Seek, Write};
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .mode(0o600)
            .open(path)?;
        match file.try_lock() {
            Ok(()) => {
                file.set_len(0)?;
                file.seek(io::SeekFrom::Start(0))?;
                file.write_all(holder.as_bytes())?;
                Ok(Ok(LockFile { _file: file }))
            }
            Err(fs::TryLockError::WouldBlock) => {
                let mut held_by = String::new();
                file.read_to_string(&mut held_by)?;
                Ok(Err(held_by.trim().to_string()))
            }
            Err(fs::TryLockError::Error(e)) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_sets_mode_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.json");
        write_atomic(&f, b"one", PRIVATE_FILE).unwrap();
        assert_eq!(mode_of(&f), Some(0o600));
        write_atomic(&f, b"two", 0o644).unwrap();
        assert_eq!(fs::read(&f).unwrap(), b"two");
        assert_eq!(mode_of(&f), Some(0o644));
        let leftovers: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temp file left behind");
    }

    #[test]
    fn a_taken_lock_names_its_holder_and_is_free_again_once_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.op");
        let held = LockFile::try_exclusive(&path, "provision (pid 1)")
            .unwrap()
            .unwrap();
        let refused = LockFile::try_exclusive(&path, "rm (pid 2)").unwrap();
        assert_eq!(refused.err().as_deref(), Some("provision (pid 1)"));
        drop(held);
        assert!(
            LockFile::try_exclusive(&path, "rm (pid 2)")
                .unwrap()
                .is_ok()
        );
        assert_eq!(mode_of(&path), Some(0o600));
    }

    #[test]
    fn private_dir_is_0700_even_if_it_existed() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("x/y");
        fs::create_dir_all(&d).unwrap();
        fs::set_permissions(&d, Permissions::from_mode(0o755)).unwrap();
        create_private_dir(&d).unwrap();
        assert_eq!(mode_of(&d), Some(0o700));
    }
}
