//! Machine records under `$DOCKER_CONFIG/euca/machines/NAME/machine.json`.
//!
//! Every change is a read-modify-write under an exclusive cross-process lock
//! (`$DOCKER_CONFIG/euca/locks/NAME.lock`, never deleted, so that a waiter never locks a file
//! that was unlinked under it), and every write is atomic. Directories are 0700, files 0600.
//! No secret is ever stored here: the record names a credential profile, never its keys.

mod record;

pub use record::{CloudRecord, MachineRecord, MachineState, SCHEMA_VERSION, SwarmRecord};

use std::{
    fs, io,
    path::{Path, PathBuf},
};

use crate::{
    fsutil::{self, LockFile, PRIVATE_FILE},
    names::MachineName,
};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("machine {name:?} does not exist")]
    NotFound { name: String },
    #[error("machine {name:?} already exists")]
    AlreadyExists { name: String },
    #[error(
        "machine record {path} was written by a newer docker-euca (schema {found}, this one reads up to {SCHEMA_VERSION})"
    )]
    NewerSchema { path: PathBuf, found: u32 },
    #[error("machine record {path} is damaged: {source}")]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("machine {name:?} is busy: {holder} is working on it")]
    Busy { name: String, holder: String },
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
}

impl StoreError {
    pub fn hint(&self) -> Option<String> {
        match self {
            StoreError::NotFound { .. } => Some(
                "`docker euca ls` lists the machines; `docker euca create NAME` makes one".into(),
            ),
            StoreError::AlreadyExists { name } => Some(format!(
                "pick another name, or remove the old one with `docker euca rm {name}`"
            )),
            StoreError::NewerSchema { .. } => Some("upgrade docker-euca".into()),
            StoreError::Busy { .. } => Some(
                "wait for it to finish (one command at a time per machine), or stop that process"
                    .into(),
            ),
            StoreError::Corrupt { path, .. } => Some(format!(
                "inspect or restore {} by hand; `docker euca rm -f NAME` forgets it",
                path.display()
            )),
            StoreError::Io { .. } => Some(
                "check that DOCKER_CONFIG (docker's --config) is a directory you can write".into(),
            ),
        }
    }
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> StoreError {
    let path = path.to_path_buf();
    move |source| StoreError::Io {
        action,
        path,
        source,
    }
}

/// One entry of [`Store::list`]: a machine's name and its record, or why it cannot be read.
pub type Listed = (MachineName, Result<MachineRecord, StoreError>);

/// The machine store rooted at `$DOCKER_CONFIG/euca`.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    pub fn new(docker_config: &Path) -> Self {
        Store {
            root: docker_config.join("euca"),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn machines_dir(&self) -> PathBuf {
        self.root.join("machines")
    }

    /// The machine's private directory: its record, SSH keys and certificates.
    pub fn machine_dir(&self, name: &MachineName) -> PathBuf {
        self.machines_dir().join(name.as_str())
    }

    fn record_path(&self, name: &MachineName) -> PathBuf {
        self.machine_dir(name).join("machine.json")
    }

    /// Takes the machine's record lock (held for one read-modify-write); it is released when
    /// the guard drops.
    pub fn lock(&self, name: &MachineName) -> Result<LockFile, StoreError> {
        let dir = self.root.join("locks");
        fsutil::create_private_dir(&dir).map_err(io_err("create", &dir))?;
        let path = dir.join(format!("{name}.lock"));
        LockFile::exclusive(&path).map_err(io_err("lock", &path))
    }

    /// The lock of a group several machines share (a fleet's, a cluster's), by its id or
    /// unique name: held while one of them decides whether it is the last and deletes it.
    /// Blocks until free.
    pub fn lock_group(&self, group: &str) -> Result<LockFile, StoreError> {
        let dir = self.root.join("locks");
        fsutil::create_private_dir(&dir).map_err(io_err("create", &dir))?;
        let safe: String = group
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let path = dir.join(format!("group-{safe}.lock"));
        LockFile::exclusive(&path).map_err(io_err("lock", &path))
    }

    /// Takes the machine's operation lock for the whole of `command` (create, provision,
    /// start, rm, …), or fails at once with [`StoreError::Busy`] naming the command and pid
    /// that hold it. Never blocks; released when the guard drops (or the process dies).
    pub fn lock_operation(
        &self,
        name: &MachineName,
        command: &str,
    ) -> Result<LockFile, StoreError> {
        let dir = self.root.join("locks");
        fsutil::create_private_dir(&dir).map_err(io_err("create", &dir))?;
        let path = dir.join(format!("{name}.op"));
        let holder = format!("`{command}` (pid {})", std::process::id());
        match LockFile::try_exclusive(&path, &holder).map_err(io_err("lock", &path))? {
            Ok(lock) => Ok(lock),
            Err(holder) => Err(StoreError::Busy {
                name: name.to_string(),
                holder: if holder.is_empty() {
                    "another docker-euca command".into()
                } else {
                    holder
                },
            }),
        }
    }

    /// This store's id, made once (random) and kept in `store-id`: the `docker-euca:store`
    /// tag on everything its creates make, so that two stores on one account (two laptops,
    /// two `DOCKER_CONFIG`s) never take each other's resources for their own.
    pub fn id(&self) -> Result<String, StoreError> {
        let path = self.root.join("store-id");
        match fs::read_to_string(&path) {
            Ok(id) if !id.trim().is_empty() => return Ok(id.trim().to_string()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("read", &path)(e)),
        }
        fsutil::create_private_dir(&self.root).map_err(io_err("create", &self.root))?;
        let id = format!("{:016x}", rand::random::<u64>());
        let _guard =
            LockFile::exclusive(&self.root.join("store-id.lock")).map_err(io_err("lock", &path))?;
        // Another process may have made it while we waited for the lock.
        if let Ok(existing) = fs::read_to_string(&path)
            && !existing.trim().is_empty()
        {
            return Ok(existing.trim().to_string());
        }
        fsutil::write_atomic(&path, format!("{id}\n").as_bytes(), PRIVATE_FILE)
            .map_err(io_err("write", &path))?;
        Ok(id)
    }

    /// Writes a new record; fails if the machine exists. Returns the machine's directory.
    pub fn create(&self, record: &MachineRecord) -> Result<PathBuf, StoreError> {
        let _guard = self.lock(&record.name)?;
        let path = self.record_path(&record.name);
        if path.exists() {
            return Err(StoreError::AlreadyExists {
                name: record.name.to_string(),
            });
        }
        let dir = self.machine_dir(&record.name);
        fsutil::create_private_dir(&dir).map_err(io_err("create", &dir))?;
        self.write(&path, record)?;
        Ok(dir)
    }

    pub fn exists(&self, name: &MachineName) -> bool {
        self.record_path(name).exists()
    }

    pub fn load(&self, name: &MachineName) -> Result<MachineRecord, StoreError> {
        let path = self.record_path(name);
        let bytes = fs::read(&path).map_err(|source| match source.kind() {
            io::ErrorKind::NotFound => StoreError::NotFound {
                name: name.to_string(),
            },
            _ => StoreError::Io {
                action: "read",
                path: path.clone(),
                source,
            },
        })?;
        MachineRecord::from_json(&bytes).map_err(|e| match e {
            record::DecodeError::NewerSchema(found) => StoreError::NewerSchema { path, found },
            record::DecodeError::Json(source) => StoreError::Corrupt { path, source },
        })
    }

    /// Read-modify-write under the machine's lock: concurrent processes never lose an update.
    pub fn update<T>(
        &self,
        name: &MachineName,
        change: impl FnOnce(&mut MachineRecord) -> T,
    ) -> Result<(MachineRecord, T), StoreError> {
        let _guard = self.lock(name)?;
        let mut record = self.load(name)?;
        let out = change(&mut record);
        self.write(&self.record_path(name), &record)?;
        Ok((record, out))
    }

    /// The names of all machines (no record is parsed: cheap enough for shell completion).
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.machines_dir())
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok())
                    .filter(|e| e.path().join("machine.json").exists())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    /// All records with their names, sorted by name. Damaged records are reported under their
    /// name, not skipped silently.
    pub fn list(&self) -> Result<Vec<Listed>, StoreError> {
        let dir = self.machines_dir();
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(StoreError::Io {
                    action: "read",
                    path: dir,
                    source: e,
                });
            }
        };
        let mut names: Vec<MachineName> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| MachineName::new(e.file_name().to_string_lossy().into_owned()).ok())
            .filter(|n| self.record_path(n).exists())
            .collect();
        names.sort();
        Ok(names
            .into_iter()
            .map(|n| {
                let record = self.load(&n);
                (n, record)
            })
            .collect())
    }

    /// Deletes the machine's directory (record, keys, certificates).
    pub fn remove(&self, name: &MachineName) -> Result<(), StoreError> {
        let _guard = self.lock(name)?;
        let dir = self.machine_dir(name);
        match fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(StoreError::NotFound {
                name: name.to_string(),
            }),
            Err(e) => Err(StoreError::Io {
                action: "remove",
                path: dir,
                source: e,
            }),
        }
    }

    fn write(&self, path: &Path, record: &MachineRecord) -> Result<(), StoreError> {
        let json = record.to_json();
        fsutil::write_atomic(path, &json, PRIVATE_FILE).map_err(io_err("write", path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> MachineName {
        MachineName::new(s).unwrap()
    }

    #[test]
    fn create_load_update_remove() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::new(tmp.path());
        let rec = MachineRecord::new(name("web1"));
        let dir = store.create(&rec).unwrap();
        fsutil::assert_mode(&dir, 0o700);
        fsutil::assert_mode(&dir.join("machine.json"), 0o600);
        assert!(matches!(
            store.create(&rec),
            Err(StoreError::AlreadyExists { .. })
        ));
        store
            .update(&name("web1"), |r| r.cloud.instance_id = Some("i-1".into()))
            .unwrap();
        assert_eq!(
            store
                .load(&name("web1"))
                .unwrap()
                .cloud
                .instance_id
                .as_deref(),
            Some("i-1")
        );
        assert_eq!(store.list().unwrap().len(), 1);
        store.remove(&name("web1")).unwrap();
        assert!(matches!(
            store.load(&name("web1")),
            Err(StoreError::NotFound { .. })
        ));
        assert!(matches!(
            store.remove(&name("web1")),
            Err(StoreError::NotFound { .. })
        ));
    }

    #[test]
    fn the_store_id_is_made_once_and_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::new(tmp.path());
        let id = store.id().unwrap();
        assert_eq!(id.len(), 16);
        assert_eq!(store.id().unwrap(), id);
        assert_eq!(Store::new(tmp.path()).id().unwrap(), id);
        fsutil::assert_mode(&store.root().join("store-id"), 0o600);
        let other = tempfile::tempdir().unwrap();
        assert_ne!(Store::new(other.path()).id().unwrap(), id);
    }

    #[test]
    fn a_second_operation_on_a_machine_is_told_who_holds_it() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::new(tmp.path());
        let held = store.lock_operation(&name("web1"), "provision").unwrap();
        let err = store.lock_operation(&name("web1"), "rm").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("busy") && msg.contains("`provision`"), "{msg}");
        assert!(
            msg.contains(&format!("pid {}", std::process::id())),
            "{msg}"
        );
        // Other machines are not held up, nor are record updates of this one.
        assert!(store.lock_operation(&name("web2"), "rm").is_ok());
        drop(held);
        assert!(store.lock_operation(&name("web1"), "rm").is_ok());
    }

    #[test]
    fn damaged_and_newer_records_are_named() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::new(tmp.path());
        store.create(&MachineRecord::new(name("web1"))).unwrap();
        let path = store.machine_dir(&name("web1")).join("machine.json");
        fs::write(&path, b"{not json").unwrap();
        assert!(matches!(
            store.load(&name("web1")),
            Err(StoreError::Corrupt { .. })
        ));
        let listed = store.list().unwrap();
        assert_eq!(listed[0].0, name("web1"));
        assert!(matches!(listed[0].1, Err(StoreError::Corrupt { .. })));
        fs::write(&path, br#"{"schema_version": 99}"#).unwrap();
        assert!(matches!(
            store.load(&name("web1")),
            Err(StoreError::NewerSchema { found: 99, .. })
        ));
    }
}
