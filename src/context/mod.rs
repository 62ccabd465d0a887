//! Docker's context store, read and written byte-for-byte as the docker CLI does
//! (docker/cli `cli/context/store`):
//!
//! - `contexts/meta/<sha256(name)>/meta.json`:
//!   `{"Name":…,"Metadata":{"Description":…},"Endpoints":{"docker":{"Host":…,"SkipTLSVerify":false}}}`
//! - `contexts/tls/<sha256(name)>/docker/{ca.pem,cert.pem,key.pem}`
//!
//! and `currentContext` in `config.json` (see [`ConfigFile`]).

mod config_file;

pub use config_file::ConfigFile;

use std::{
    fs::{self, OpenOptions},
    io::{self, Write},
    path::{Path, PathBuf},
    time::SystemTime,
};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::fsutil::{self, PRIVATE_DIR, PRIVATE_FILE};

#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("docker context {name:?} does not exist")]
    NotFound { name: String },
    #[error("docker context file {path} is damaged: {source}")]
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

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> ContextError {
    let path = path.to_path_buf();
    move |source| ContextError::Io {
        action,
        path,
        source,
    }
}

/// The docker endpoint of a context.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DockerEndpoint {
    #[serde(rename = "Host", default, skip_serializing_if = "String::is_empty")]
    pub host: String,
    #[serde(rename = "SkipTLSVerify", default)]
    pub skip_tls_verify: bool,
}

/// Client TLS material stored with a context.
#[derive(Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub ca_pem: Vec<u8>,
    pub cert_pem: Vec<u8>,
    pub key_pem: crate::secret::Secret<Vec<u8>>,
}

impl std::fmt::Debug for TlsFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsFiles").finish_non_exhaustive()
    }
}

/// A context as docker stores it. Unknown metadata fields and other endpoints are kept
/// when a context is rewritten.
#[derive(Debug, Clone, PartialEq)]
pub struct ContextMeta {
    pub name: String,
    pub description: String,
    pub docker: Option<DockerEndpoint>,
    /// Metadata fields other than `Description` (docker's `AdditionalFields`).
    pub extra_metadata: serde_json::Map<String, serde_json::Value>,
    /// Endpoints other than `docker`.
    pub extra_endpoints: serde_json::Map<String, serde_json::Value>,
}

impl ContextMeta {
    pub fn new(name: &str, description: &str, host: &str) -> Self {
        ContextMeta {
            name: name.to_string(),
            description: description.to_string(),
            docker: Some(DockerEndpoint {
                host: host.to_string(),
                skip_tls_verify: false,
            }),
            extra_metadata: Default::default(),
            extra_endpoints: Default::default(),
        }
    }

    /// Serialises exactly as Go's `json.Marshal` does for docker's metadata struct.
    pub fn to_json(&self) -> Vec<u8> {
        // docker marshals Description and the additional fields as one map: Go sorts map keys,
        // at every level.
        let mut metadata = serde_json::Map::new();
        if !self.description.is_empty() {
            metadata.insert("Description".into(), self.description.clone().into());
        }
        for (k, v) in &self.extra_metadata {
            metadata.insert(k.clone(), sorted(v.clone()));
        }
        metadata.sort_keys();
        let mut endpoints = serde_json::Map::new();
        if let Some(docker) = &self.docker {
            endpoints.insert(
                "docker".into(),
                serde_json::to_value(docker).expect("endpoint"),
            );
        }
        for (k, v) in &self.extra_endpoints {
            endpoints.insert(k.clone(), v.clone());
        }
        // Go sorts map keys when it marshals a map.
        endpoints.sort_keys();
        let mut top = serde_json::Map::new();
        top.insert("Name".into(), self.name.clone().into());
        top.insert("Metadata".into(), metadata.into());
        top.insert("Endpoints".into(), endpoints.into());
        go_json_escape(&serde_json::to_vec(&top).expect("context metadata"))
    }

    pub fn from_json(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        #[derive(Deserialize)]
        struct Raw {
            #[serde(rename = "Name", default)]
            name: String,
            #[serde(rename = "Metadata", default)]
            metadata: Option<serde_json::Map<String, serde_json::Value>>,
            #[serde(rename = "Endpoints", default)]
            endpoints: Option<serde_json::Map<String, serde_json::Value>>,
        }
        let raw: Raw = serde_json::from_slice(bytes)?;
        let mut extra_metadata = raw.metadata.unwrap_or_default();
        let description = match extra_metadata.remove("Description") {
            Some(serde_json::Value::String(s)) => s,
            _ => String::new(),
        };
        let mut extra_endpoints = raw.endpoints.unwrap_or_default();
        let docker = match extra_endpoints.remove("docker") {
            Some(v) => Some(serde_json::from_value(v)?),
            None => None,
        };
        Ok(ContextMeta {
            name: raw.name,
            description,
            docker,
            extra_metadata,
            extra_endpoints,
        })
    }
}

/// The value with every object's keys sorted, as Go writes a `map[string]any`.
fn sorted(v: serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(map) => {
            let mut out: serde_json::Map<String, serde_json::Value> =
                map.into_iter().map(|(k, v)| (k, sorted(v))).collect();
            out.sort_keys();
            serde_json::Value::Object(out)
        }
        serde_json::Value::Array(a) => {
            serde_json::Value::Array(a.into_iter().map(sorted).collect())
        }
        other => other,
    }
}

/// Go's encoder escapes `<`, `>`, `&`, U+2028 and U+2029; do the same so files match byte for byte.
/// (These characters can only occur inside JSON strings, so replacing them is safe.)
fn go_json_escape(json: &[u8]) -> Vec<u8> {
    let s = String::from_utf8_lossy(json);
    s.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
        .into_bytes()
}

/// The directory id docker uses for a context: the hex SHA-256 of its name.
pub fn context_id(name: &str) -> String {
    hex::encode(Sha256::digest(name.as_bytes()))
}

/// The context store in one docker config directory.
#[derive(Debug, Clone)]
pub struct ContextStore {
    config_dir: PathBuf,
}

impl ContextStore {
    pub fn new(config_dir: &Path) -> Self {
        ContextStore {
            config_dir: config_dir.to_path_buf(),
        }
    }

    fn meta_dir(&self, name: &str) -> PathBuf {
        self.config_dir.join("contexts/meta").join(context_id(name))
    }

    /// `contexts/tls`: one `<id>` directory per context, plus the staging directories of TLS
    /// writes in progress (see [`ContextStore::write`]).
    fn tls_parent(&self) -> PathBuf {
        self.config_dir.join("contexts/tls")
    }

    fn tls_root(&self, name: &str) -> PathBuf {
        self.tls_parent().join(context_id(name))
    }

    /// The directory holding the context's docker TLS files (`DOCKER_CERT_PATH` for it).
    pub fn tls_dir(&self, name: &str) -> PathBuf {
        self.tls_root(name).join("docker")
    }

    pub fn exists(&self, name: &str) -> bool {
        self.meta_dir(name).join("meta.json").exists()
    }

    /// Creates or replaces the context; `tls` replaces its docker TLS files when given.
    ///
    /// The three TLS files are replaced as one set, so the docker CLI never pairs a new
    /// certificate with an old key: the new set is written (0600, fsynced) into a fresh 0700
    /// directory `contexts/tls/.<id>.new-XXXXXX`, then `docker/` is renamed aside to
    /// `.<id>.old-XXXXXX`, the new directory is renamed to `docker/`, and the old one removed.
    /// Staging directories sit beside `<id>/`, not inside it, because the docker CLI lists
    /// `<id>/` as the context's endpoints (`docker context inspect`, `export`); it never lists
    /// `contexts/tls/` itself, and its names are hex ids, so it never opens ours.
    ///
    /// Without an atomic exchange of two directories, one window remains: between the two
    /// renames (microseconds) `docker/` is absent, and a reader finds the context without TLS
    /// files. A crash there leaves the complete old set aside; the next write of this context
    /// (with or without TLS) first puts it back, then removes every staging directory, so a
    /// crash at any point ends in the complete old set or the complete new one. A reader that
    /// opens the files one by one across a swap can still mix sets; the docker CLI reads them
    /// once, together, when it starts.
    pub fn write(&self, meta: &ContextMeta, tls: Option<&TlsFiles>) -> Result<(), ContextError> {
        let dir = self.meta_dir(&meta.name);
        fsutil::create_private_dir(&dir).map_err(io_err("create", &dir))?;
        match tls {
            Some(tls) => self.write_tls(&meta.name, tls)?,
            None => self.recover_tls(&context_id(&meta.name))?,
        }
        let path = dir.join("meta.json");
        fsutil::write_atomic(&path, &meta.to_json(), PRIVATE_FILE).map_err(io_err("write", &path))
    }

    /// Stages the new set and swaps it in (see [`ContextStore::write`]).
    fn write_tls(&self, name: &str, tls: &TlsFiles) -> Result<(), ContextError> {
        let id = context_id(name);
        let parent = self.tls_parent();
        let root = self.tls_root(name);
        let target = root.join("docker");
        fsutil::create_private_dir(&root).map_err(io_err("create", &root))?;
        self.recover_tls(&id)?;
        let new_prefix = staging_prefix(&id, STAGING_NEW);
        // Removed again on any error before the swap (the guard's drop).
        let staging = tempfile::Builder::new()
            .prefix(&new_prefix)
            .tempdir_in(&parent)
            .map_err(io_err("create a directory in", &parent))?;
        fill_staging(staging.path(), tls)?;
        let suffix = staging
            .path()
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix(new_prefix.as_str()))
            .unwrap_or("0")
            .to_string();
        let aside = parent.join(format!("{}{suffix}", staging_prefix(&id, STAGING_OLD)));
        let moved_aside = match fs::rename(&target, &aside) {
            Ok(()) => true,
            Err(e) if e.kind() == io::ErrorKind::NotFound => false,
            Err(e) => return Err(io_err("move aside", &target)(e)),
        };
        crate::crash::point("context-tls-swap");
        if let Err(e) = fs::rename(staging.path(), &target) {
            if moved_aside {
                let _ = fs::rename(&aside, &target);
            }
            return Err(io_err("move into place", &target)(e));
        }
        let _in_place = staging.keep();
        sync_dir(&root)?;
        sync_dir(&parent)?;
        if moved_aside && let Err(e) = fs::remove_dir_all(&aside) {
            // Harmless where it is; the next write of this context removes it.
            tracing::warn!("cannot remove {}: {e}", aside.display());
        }
        Ok(())
    }

    /// Finishes what an interrupted TLS write of context `id` left: when it died between its
    /// two renames (no `docker/`, an old set aside), the old set goes back into place; then
    /// every staging directory of the context is removed.
    fn recover_tls(&self, id: &str) -> Result<(), ContextError> {
        let parent = self.tls_parent();
        let mut leftovers = staging_dirs(&parent, id)?;
        let root = parent.join(id);
        let target = root.join("docker");
        let newest_old = leftovers
            .iter()
            .enumerate()
            .filter(|(_, s)| s.old)
            .max_by_key(|(_, s)| s.modified)
            .map(|(i, _)| i);
        if let Some(i) = newest_old
            && fs::symlink_metadata(&target).is_err()
        {
            let old = leftovers.swap_remove(i);
            fsutil::create_private_dir(&root).map_err(io_err("create", &root))?;
            fs::rename(&old.path, &target).map_err(io_err("restore", &old.path))?;
            sync_dir(&root)?;
        }
        for leftover in leftovers {
            match fs::remove_dir_all(&leftover.path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("remove", &leftover.path)(e)),
            }
        }
        Ok(())
    }

    pub fn read(&self, name: &str) -> Result<ContextMeta, ContextError> {
        let path = self.meta_dir(name).join("meta.json");
        let bytes = fs::read(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => ContextError::NotFound {
                name: name.to_string(),
            },
            _ => ContextError::Io {
                action: "read",
                path: path.clone(),
                source: e,
            },
        })?;
        ContextMeta::from_json(&bytes).map_err(|source| ContextError::Corrupt { path, source })
    }

    /// Reads the context's TLS files if it has them.
    pub fn read_tls(&self, name: &str) -> Result<Option<TlsFiles>, ContextError> {
        let dir = self.tls_dir(name);
        let read = |file: &str| -> Result<Option<Vec<u8>>, ContextError> {
            let path = dir.join(file);
            match fs::read(&path) {
                Ok(b) => Ok(Some(b)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(ContextError::Io {
                    action: "read",
                    path,
                    source: e,
                }),
            }
        };
        match (read("ca.pem")?, read("cert.pem")?, read("key.pem")?) {
            (Some(ca_pem), Some(cert_pem), Some(key)) => Ok(Some(TlsFiles {
                ca_pem,
                cert_pem,
                key_pem: key.into(),
            })),
            _ => Ok(None),
        }
    }

    /// All contexts in the store (docker's `default` is not stored and not listed).
    pub fn list(&self) -> Result<Vec<ContextMeta>, ContextError> {
        let root = self.config_dir.join("contexts/meta");
        let entries = match fs::read_dir(&root) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(ContextError::Io {
                    action: "read",
                    path: root,
                    source: e,
                });
            }
        };
        let mut out = Vec::new();
        for entry in entries.filter_map(|e| e.ok()) {
            let path = entry.path().join("meta.json");
            match fs::read(&path) {
                Ok(bytes) => out.push(
                    ContextMeta::from_json(&bytes)
                        .map_err(|source| ContextError::Corrupt { path, source })?,
                ),
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => {
                    return Err(ContextError::Io {
                        action: "read",
                        path,
                        source: e,
                    });
                }
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Removes the context's metadata and TLS files (and any staging directory an interrupted
    /// write left); a missing context is not an error.
    pub fn remove(&self, name: &str) -> Result<(), ContextError> {
        let staging = staging_dirs(&self.tls_parent(), &context_id(name))?;
        let dirs = [self.meta_dir(name), self.tls_root(name)]
            .into_iter()
            .chain(staging.into_iter().map(|s| s.path));
        for dir in dirs {
            match fs::remove_dir_all(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(ContextError::Io {
                        action: "remove",
                        path: dir,
                        source: e,
                    });
                }
            }
        }
        Ok(())
    }
}

const STAGING_NEW: &str = "new";
const STAGING_OLD: &str = "old";

/// `.<id>.new-` / `.<id>.old-`: never a context id (those are hex), so never one of docker's.
fn staging_prefix(id: &str, kind: &str) -> String {
    format!(".{id}.{kind}-")
}

/// A staging directory of a TLS write: the new set being written, or the old one set aside.
#[derive(Debug)]
struct Staging {
    path: PathBuf,
    old: bool,
    modified: Option<SystemTime>,
}

/// The staging directories of context `id` found in `parent` (`contexts/tls`).
fn staging_dirs(parent: &Path, id: &str) -> Result<Vec<Staging>, ContextError> {
    let entries = match fs::read_dir(parent) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err("read", parent)(e)),
    };
    let (new_prefix, old_prefix) = (
        staging_prefix(id, STAGING_NEW),
        staging_prefix(id, STAGING_OLD),
    );
    Ok(entries
        .filter_map(|e| e.ok())
        .filter_map(|entry| {
            let name = entry.file_name();
            let name = name.to_str()?;
            let old = if name.starts_with(&old_prefix) {
                true
            } else if name.starts_with(&new_prefix) {
                false
            } else {
                return None;
            };
            Some(Staging {
                path: entry.path(),
                old,
                modified: entry.metadata().and_then(|m| m.modified()).ok(),
            })
        })
        .collect())
}

/// Writes the three files into the fresh staging directory `dir` and makes them durable.
fn fill_staging(dir: &Path, tls: &TlsFiles) -> Result<(), ContextError> {
    // tempfile makes it 0700 already; say so whatever the platform's default.
    fsutil::set_mode(dir, PRIVATE_DIR).map_err(io_err("set permissions on", dir))?;
    for (file, bytes) in [
        ("ca.pem", &tls.ca_pem),
        ("cert.pem", &tls.cert_pem),
        ("key.pem", tls.key_pem.expose()),
    ] {
        let path = dir.join(file);
        write_new_private(&path, bytes).map_err(io_err("write", &path))?;
    }
    sync_dir(dir)
}

/// A new 0600 file (exactly, whatever the umask) with `bytes`, fsynced.
fn write_new_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = fsutil::with_mode(
        OpenOptions::new().write(true).create_new(true),
        PRIVATE_FILE,
    )
    .open(path)?;
    fsutil::set_file_mode(&file, PRIVATE_FILE)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Makes the entries of `dir` (renames, new files) durable.
fn sync_dir(dir: &Path) -> Result<(), ContextError> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("sync", dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_json_matches_docker_bytes() {
        let meta = ContextMeta::new("web1", "i-1 on <euca> & co", "tcp://10.0.0.1:2376");
        assert_eq!(
            String::from_utf8(meta.to_json()).unwrap(),
            r#"{"Name":"web1","Metadata":{"Description":"i-1 on \u003ceuca\u003e \u0026 co"},"Endpoints":{"docker":{"Host":"tcp://10.0.0.1:2376","SkipTLSVerify":false}}}"#
        );
    }

    #[test]
    fn unknown_fields_survive_a_rewrite() {
        let input = br#"{"Name":"x","Metadata":{"Description":"d","Owner":"me"},"Endpoints":{"docker":{"Host":"unix:///x","SkipTLSVerify":true},"kubernetes":{"a":1}}}"#;
        let meta = ContextMeta::from_json(input).unwrap();
        assert_eq!(meta.extra_metadata["Owner"], "me");
        assert_eq!(meta.to_json(), input.to_vec());
    }

    #[test]
    fn metadata_keys_are_sorted_as_go_sorts_maps() {
        let input = br#"{"Name":"x","Metadata":{"zeta":{"b":1,"a":2},"Description":"d","Alpha":"y"},"Endpoints":{}}"#;
        let meta = ContextMeta::from_json(input).unwrap();
        assert_eq!(
            String::from_utf8(meta.to_json()).unwrap(),
            r#"{"Name":"x","Metadata":{"Alpha":"y","Description":"d","zeta":{"a":2,"b":1}},"Endpoints":{}}"#
        );
    }

    fn tls_set(tag: &str) -> TlsFiles {
        TlsFiles {
            ca_pem: format!("ca {tag}").into_bytes(),
            cert_pem: format!("cert {tag}").into_bytes(),
            key_pem: format!("key {tag}").into_bytes().into(),
        }
    }

    fn names_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn tls_files_are_replaced_as_one_set() {
        let home = tempfile::tempdir().unwrap();
        let store = ContextStore::new(home.path());
        let meta = ContextMeta::new("web1", "d", "tcp://10.0.0.1:2376");
        store.write(&meta, Some(&tls_set("one"))).unwrap();
        store.write(&meta, Some(&tls_set("two"))).unwrap();
        assert!(store.read_tls("web1").unwrap() == Some(tls_set("two")));
        let dir = store.tls_dir("web1");
        fsutil::assert_mode(&dir, PRIVATE_DIR);
        assert_eq!(names_in(&dir), ["ca.pem", "cert.pem", "key.pem"]);
        for file in ["ca.pem", "cert.pem", "key.pem"] {
            fsutil::assert_mode(&dir.join(file), PRIVATE_FILE);
        }
        // docker lists `tls/<id>/` as the context's endpoints: only `docker` may be there,
        // and nothing of ours is left beside it.
        assert_eq!(names_in(&store.tls_root("web1")), ["docker"]);
        assert_eq!(names_in(&store.tls_parent()), [context_id("web1")]);
        // A rewrite without TLS keeps the files.
        store.write(&meta, None).unwrap();
        assert!(store.read_tls("web1").unwrap() == Some(tls_set("two")));
    }

    #[test]
    fn a_crashed_write_is_ignored_by_readers_and_cleaned_up_by_the_next() {
        let home = tempfile::tempdir().unwrap();
        let store = ContextStore::new(home.path());
        let meta = ContextMeta::new("web1", "d", "tcp://10.0.0.1:2376");
        store.write(&meta, Some(&tls_set("one"))).unwrap();
        let id = context_id("web1");
        // Died while staging: a half-written new set beside the context.
        let partial = store.tls_parent().join(format!(".{id}.new-abc123"));
        fs::create_dir(&partial).unwrap();
        fs::write(partial.join("cert.pem"), "cert half").unwrap();
        assert!(store.read_tls("web1").unwrap() == Some(tls_set("one")));
        store.write(&meta, Some(&tls_set("two"))).unwrap();
        assert!(store.read_tls("web1").unwrap() == Some(tls_set("two")));
        assert_eq!(names_in(&store.tls_parent()), std::slice::from_ref(&id));

        // Died between the two renames: no `docker/`, the old set aside, the new one staged.
        let aside = store.tls_parent().join(format!(".{id}.old-def456"));
        fs::rename(store.tls_dir("web1"), &aside).unwrap();
        let staged = store.tls_parent().join(format!(".{id}.new-def456"));
        fs::create_dir(&staged).unwrap();
        for (file, text) in [
            ("ca.pem", "ca three"),
            ("cert.pem", "cert three"),
            ("key.pem", "key three"),
        ] {
            fs::write(staged.join(file), text).unwrap();
        }
        assert!(store.read_tls("web1").unwrap().is_none());
        // The next write, even one without TLS, puts the complete old set back.
        store.write(&meta, None).unwrap();
        assert!(store.read_tls("web1").unwrap() == Some(tls_set("two")));
        assert_eq!(names_in(&store.tls_parent()), std::slice::from_ref(&id));

        // `remove` takes leftovers with it.
        fs::create_dir(&partial).unwrap();
        store.remove("web1").unwrap();
        assert!(names_in(&store.tls_parent()).is_empty());
    }

    #[test]
    fn context_id_is_sha256_of_name() {
        assert_eq!(
            context_id("web1"),
            "659a7fb2af476fae688d711213d91dc1550a37f0395a00a6f7bacb78ece3666b"
        );
    }
}
