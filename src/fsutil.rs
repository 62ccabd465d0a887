//! File writes that are private and atomic: a temp file in the same directory, the final mode
//! set before any byte is written, fsync, rename, fsync of the directory.
//!
//! Modes are Unix's; the `os` module below is the only place that knows. Windows has no mode
//! bits: there a file is as private as the directory it inherits its ACL from (the user's
//! profile, where docker's config lives), and the mode calls do nothing.

use std::{
    fs::{self, DirBuilder, File, OpenOptions},
    io::{self, Write},
    path::Path,
};

#[cfg(unix)]
mod os {
    use std::{
        fs::{self, DirBuilder, File, Metadata, OpenOptions, Permissions},
        io,
        os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt},
        path::Path,
    };

    pub fn dir_mode(builder: &mut DirBuilder, mode: u32) {
        builder.mode(mode);
    }
    pub fn open_mode(options: &mut OpenOptions, mode: u32) {
        options.mode(mode);
    }
    pub fn set_path_mode(path: &Path, mode: u32) -> io::Result<()> {
        fs::set_permissions(path, Permissions::from_mode(mode))
    }
    pub fn set_file_mode(file: &File, mode: u32) -> io::Result<()> {
        file.set_permissions(Permissions::from_mode(mode))
    }
    pub fn mode(meta: &Metadata) -> Option<u32> {
        Some(meta.permissions().mode() & 0o7777)
    }
}

#[cfg(not(unix))]
mod os {
    use std::{
        fs::{DirBuilder, File, Metadata, OpenOptions},
        io,
        path::Path,
    };

    pub fn dir_mode(_: &mut DirBuilder, _: u32) {}
    pub fn open_mode(_: &mut OpenOptions, _: u32) {}
    pub fn set_path_mode(_: &Path, _: u32) -> io::Result<()> {
        Ok(())
    }
    pub fn set_file_mode(_: &File, _: u32) -> io::Result<()> {
        Ok(())
    }
    pub fn mode(_: &Metadata) -> Option<u32> {
        None
    }
}

/// Sets `path`'s permission bits (Unix; nothing elsewhere).
pub fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    os::set_path_mode(path, mode)
}

/// Sets an open file's permission bits (Unix; nothing elsewhere).
pub fn set_file_mode(file: &File, mode: u32) -> io::Result<()> {
    os::set_file_mode(file, mode)
}

/// `options` creating files with `mode` (before the umask; Unix).
pub fn with_mode(options: &mut OpenOptions, mode: u32) -> &mut OpenOptions {
    os::open_mode(options, mode);
    options
}

/// The permission bits in `meta` (Unix; `None` elsewhere).
pub fn mode_in(meta: &fs::Metadata) -> Option<u32> {
    os::mode(meta)
}

pub const PRIVATE_DIR: u32 = 0o700;
pub const PRIVATE_FILE: u32 = 0o600;

/// Creates `dir` (and missing parents) as 0700 and makes sure `dir` itself is 0700.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = DirBuilder::new();
    os::dir_mode(builder.recursive(true), PRIVATE_DIR);
    builder.create(dir)?;
    match mode_of(dir) {
        Some(mode) if mode & 0o777 != PRIVATE_DIR => set_mode(dir, PRIVATE_DIR),
        _ => Ok(()),
    }
}

/// Replaces `path` with `contents` atomically; readers see the old or the new file, never a mix.
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    // tempfile makes it 0600; the exact mode is set before any byte is written.
    let mut tmp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir)?;
    set_file_mode(tmp.as_file(), mode)?;
    tmp.write_all(contents)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    fs::File::open(dir)?.sync_all()
}

/// Current permission bits of `path`, if it exists.
pub fn mode_of(path: &Path) -> Option<u32> {
    fs::metadata(path).ok().as_ref().and_then(mode_in)
}

/// Tests: `path` has exactly `mode` (Unix); elsewhere, where there are no mode bits, that it
/// exists.
#[cfg(test)]
#[track_caller]
pub fn assert_mode(path: &Path, mode: u32) {
    if cfg!(unix) {
        assert_eq!(mode_of(path), Some(mode), "mode of {}", path.display());
    } else {
        assert!(path.exists(), "{}", path.display());
    }
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
        let file = with_mode(
            OpenOptions::new().create(true).truncate(false).write(true),
            PRIVATE_FILE,
        )
        .open(path)?;
        file.lock()?;
        Ok(LockFile { _file: file })
    }

    /// Takes the lock if it is free and writes `holder` into the file for whoever finds it
    /// taken; otherwise returns at once with what the holder wrote. Never blocks.
    pub fn try_exclusive(path: &Path, holder: &str) -> io::Result<Result<Self, String>> {
        use std::io::{Read, Seek, Write};
        let mut file = with_mode(
            OpenOptions::new()
                .create(true)
                .truncate(false)
                .read(true)
                .write(true),
            PRIVATE_FILE,
        )
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
        assert_mode(&f, 0o600);
        write_atomic(&f, b"two", 0o644).unwrap();
        assert_eq!(fs::read(&f).unwrap(), b"two");
        assert_mode(&f, 0o644);
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
        assert_mode(&path, 0o600);
    }

    #[test]
    fn private_dir_is_0700_even_if_it_existed() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("x/y");
        fs::create_dir_all(&d).unwrap();
        set_mode(&d, 0o755).unwrap();
        create_private_dir(&d).unwrap();
        assert_mode(&d, 0o700);
    }
}
