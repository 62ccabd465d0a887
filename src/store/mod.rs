//! Machine records under `$DOCKER_CONFIG/euca/machines/NAME/machine.json`.
//!
//! Every change is a read-modify-write under an exclusive cross-process lock
//! (`$DOCKER_CONFIG/euca/locks/NAME.lock`, never deleted, so that a waiter never locks a file
//! that was unlinked under it), and every write is atomic. Directories are 0700, files 0600.
//! No secret is ever stored here: the record names a credential profile, never its keys.

mod record;

pub use record::{MachineRecord, MachineState, SCHEMA_VERSION};

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
            StoreError::Corrupt { path, .. } => Some(format!(
                "inspect or restore {} by hand; `docker euca rm -f NAME` forgets it",
                path.display()
            )),
            StoreError::Io { .. } => None,
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

    /// Takes the machine's exclusive lock; it is released when the guard drops.
    pub fn lock(&self, name: &MachineName) -> Result<LockFile, StoreError> {
        let dir = self.root.join("locks");
        fsutil::create_private_dir(&dir).map_err(io_err("create", &dir))?;
        let path = dir.join(format!("{name}.lock"));
        LockFile::exclusive(&path).map_err(io_err("lock", &path))
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

    /// All records, sorted by name. Damaged records are reported, not skipped silently.
    pub fn list(&self) -> Result<Vec<Result<MachineRecord, StoreError>>, StoreError> {
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
        Ok(names.iter().map(|n| self.load(n)).collect())
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
        assert_eq!(fsutil::mode_of(&dir), Some(0o700));
        assert_eq!(fsutil::mode_of(&dir.join("machine.json")), Some(0o600));
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
        fs::write(&path, br#"{"schema_version": 99}"#).unwrap();
        assert!(matches!(
            store.load(&name("web1")),
            Err(StoreError::NewerSchema { found: 99, .. })
        ));
    }
}
