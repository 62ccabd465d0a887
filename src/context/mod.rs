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
    fs, io,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::fsutil::{self, PRIVATE_FILE};

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

    fn tls_root(&self, name: &str) -> PathBuf {
        self.config_dir.join("contexts/tls").join(context_id(name))
    }

    /// The directory holding the context's docker TLS files (`DOCKER_CERT_PATH` for it).
    pub fn tls_dir(&self, name: &str) -> PathBuf {
        self.tls_root(name).join("docker")
    }

    pub fn exists(&self, name: &str) -> bool {
        self.meta_dir(name).join("meta.json").exists()
    }

    /// Creates or replaces the context; `tls` replaces its docker TLS files when given.
    pub fn write(&self, meta: &ContextMeta, tls: Option<&TlsFiles>) -> Result<(), ContextError> {
        let dir = self.meta_dir(&meta.name);
        fsutil::create_private_dir(&dir).map_err(io_err("create", &dir))?;
        if let Some(tls) = tls {
            let tls_dir = self.tls_dir(&meta.name);
            fsutil::create_private_dir(&tls_dir).map_err(io_err("create", &tls_dir))?;
            for (file, bytes) in [
                ("ca.pem", &tls.ca_pem),
                ("cert.pem", &tls.cert_pem),
                ("key.pem", tls.key_pem.expose()),
            ] {
                let path = tls_dir.join(file);
                fsutil::write_atomic(&path, bytes, PRIVATE_FILE).map_err(io_err("write", &path))?;
            }
        }
        let path = dir.join("meta.json");
        fsutil::write_atomic(&path, &meta.to_json(), PRIVATE_FILE).map_err(io_err("write", &path))
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

    /// Removes the context's metadata and TLS files; a missing context is not an error.
    pub fn remove(&self, name: &str) -> Result<(), ContextError> {
        for dir in [self.meta_dir(name), self.tls_root(name)] {
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

    #[test]
    fn context_id_is_sha256_of_name() {
        assert_eq!(
            context_id("web1"),
            "659a7fb2af476fae688d711213d91dc1550a37f0395a00a6f7bacb78ece3666b"
        );
    }
}
