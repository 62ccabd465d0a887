//! `currentContext` in docker's `config.json`, edited as generic JSON: every key this plugin
//! does not know survives, in its order, and the file keeps its mode. Written as the docker CLI
//! writes it (tab indentation) and atomically, under a lock shared by docker-euca processes.

use std::{
    fs, io,
    path::{Path, PathBuf},
};

use serde_json::{Map, Value};

use super::ContextError;
use crate::fsutil::{self, LockFile, PRIVATE_FILE};

const KEY: &str = "currentContext";

/// Docker's `config.json` in one config directory.
#[derive(Debug, Clone)]
pub struct ConfigFile {
    dir: PathBuf,
}

impl ConfigFile {
    pub fn new(config_dir: &Path) -> Self {
        ConfigFile {
            dir: config_dir.to_path_buf(),
        }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join("config.json")
    }

    /// The current context, if one other than `default` is set.
    pub fn current_context(&self) -> Result<Option<String>, ContextError> {
        let doc = self.read()?;
        Ok(doc
            .get(KEY)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string))
    }

    /// Makes `name` the current context.
    pub fn set_current_context(&self, name: &str) -> Result<(), ContextError> {
        self.edit(|doc| {
            doc.insert(KEY.into(), Value::String(name.to_string()));
            true
        })
    }

    /// Clears `currentContext` if (and only if) it is `name`; returns whether it did.
    pub fn clear_current_context_if(&self, name: &str) -> Result<bool, ContextError> {
        let mut cleared = false;
        self.edit(|doc| {
            if doc.get(KEY).and_then(Value::as_str) == Some(name) {
                doc.remove(KEY);
                cleared = true;
            }
            cleared
        })?;
        Ok(cleared)
    }

    fn read(&self) -> Result<Map<String, Value>, ContextError> {
        let path = self.path();
        match fs::read(&path) {
            Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => Ok(Map::new()),
            Ok(bytes) => match serde_json::from_slice::<Value>(&bytes) {
                Ok(Value::Object(map)) => Ok(map),
                Ok(_) => Err(ContextError::Corrupt {
                    path,
                    source: serde::de::Error::custom("the top level is not a JSON object"),
                }),
                Err(source) => Err(ContextError::Corrupt { path, source }),
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Map::new()),
            Err(source) => Err(ContextError::Io {
                action: "read",
                path,
                source,
            }),
        }
    }

    /// Applies `change` under the lock; writes only if it reports a change.
    fn edit(
        &self,
        change: impl FnOnce(&mut Map<String, Value>) -> bool,
    ) -> Result<(), ContextError> {
        let locks = self.dir.join("euca/locks");
        let io = |action, path: &Path| {
            let path = path.to_path_buf();
            move |source| ContextError::Io {
                action,
                path,
                source,
            }
        };
        fsutil::create_private_dir(&locks).map_err(io("create", &locks))?;
        let lock_path = locks.join("config.json.lock");
        let _guard = LockFile::exclusive(&lock_path).map_err(io("lock", &lock_path))?;
        let mut doc = self.read()?;
        if !change(&mut doc) {
            return Ok(());
        }
        // Write through a symlink (dotfile set-ups), as docker does, instead of replacing it.
        let path = std::fs::canonicalize(self.path()).unwrap_or_else(|_| self.path());
        let mode = fsutil::mode_of(&path).unwrap_or(PRIVATE_FILE);
        let mut bytes = Vec::new();
        let formatter = serde_json::ser::PrettyFormatter::with_indent(b"\t");
        let mut ser = serde_json::Serializer::with_formatter(&mut bytes, formatter);
        serde::Serialize::serialize(&Value::Object(doc), &mut ser).expect("JSON value");
        fsutil::write_atomic(&path, &bytes, mode).map_err(io("write", &path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_order_and_mode_survive() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = ConfigFile::new(dir.path());
        let original = "{\n\t\"auths\": {\"r.example\": {\"auth\": \"eA==\"}},\n\t\"psFormat\": \"x\",\n\t\"zzz\": [1, 2]\n}";
        fs::write(cfg.path(), original).unwrap();
        fsutil::set_mode(&cfg.path(), 0o640).unwrap();
        cfg.set_current_context("web1").unwrap();
        assert_eq!(cfg.current_context().unwrap().as_deref(), Some("web1"));
        let doc: Value = serde_json::from_slice(&fs::read(cfg.path()).unwrap()).unwrap();
        let keys: Vec<_> = doc.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["auths", "psFormat", "zzz", "currentContext"]);
        assert_eq!(doc["auths"]["r.example"]["auth"], "eA==");
        fsutil::assert_mode(&cfg.path(), 0o640);
        assert!(!cfg.clear_current_context_if("other").unwrap());
        assert!(cfg.clear_current_context_if("web1").unwrap());
        assert_eq!(cfg.current_context().unwrap(), None);
    }

    #[test]
    fn missing_file_is_created_private() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = ConfigFile::new(dir.path());
        assert_eq!(cfg.current_context().unwrap(), None);
        cfg.set_current_context("a1").unwrap();
        fsutil::assert_mode(&cfg.path(), 0o600);
    }

    #[test]
    fn damaged_file_is_reported_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = ConfigFile::new(dir.path());
        fs::write(cfg.path(), "{oops").unwrap();
        assert!(matches!(
            cfg.set_current_context("a1"),
            Err(ContextError::Corrupt { .. })
        ));
        assert_eq!(fs::read_to_string(cfg.path()).unwrap(), "{oops");
    }
}
