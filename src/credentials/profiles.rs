//! Non-secret profile settings in `$DOCKER_CONFIG/euca/profiles.json`; the secret key of each
//! profile lives in the OS keyring under service `docker-euca`, account = profile name.

use std::{
    collections::BTreeMap,
    io,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

use crate::{
    dialect::DialectChoice,
    fsutil::{self, LockFile, PRIVATE_FILE},
};

const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    pub endpoint: String,
    pub region: String,
    pub access_key_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle: Option<PathBuf>,
    /// Image used by `create` when `--image` is not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_image: Option<String>,
    /// Source CIDRs `create` admits when `--allow-cidr` is not given (else: this machine's
    /// own address).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_cidrs: Vec<String>,
    /// The cloud's EC2 dialect as `login --dialect` gave it (`auto` is not written).
    #[serde(default, skip_serializing_if = "DialectChoice::is_auto")]
    pub dialect: DialectChoice,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct File {
    schema_version: u32,
    #[serde(default)]
    profiles: BTreeMap<String, Profile>,
}

#[derive(Debug, Clone)]
pub struct Profiles {
    path: PathBuf,
}

fn damaged(path: &Path, e: serde_json::Error) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{} is damaged: {e}", path.display()),
    )
}

impl Profiles {
    pub fn new(docker_config: &Path) -> Self {
        Profiles {
            path: docker_config.join("euca/profiles.json"),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn read(&self) -> io::Result<File> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| damaged(&self.path, e)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(File {
                schema_version: SCHEMA_VERSION,
                ..Default::default()
            }),
            Err(e) => Err(e),
        }
    }

    pub fn all(&self) -> io::Result<BTreeMap<String, Profile>> {
        Ok(self.read()?.profiles)
    }

    pub fn get(&self, name: &str) -> io::Result<Option<Profile>> {
        Ok(self.read()?.profiles.remove(name))
    }

    /// Adds or replaces (`Some`) or removes (`None`) one profile, under a lock.
    pub fn set(&self, name: &str, profile: Option<Profile>) -> io::Result<bool> {
        let dir = self.path.parent().expect("profiles.json has a parent");
        fsutil::create_private_dir(&dir.join("locks"))?;
        let _guard = LockFile::exclusive(&dir.join("locks/profiles.lock"))?;
        let mut file = self.read()?;
        file.schema_version = SCHEMA_VERSION;
        let existed = match profile {
            Some(p) => file.profiles.insert(name.to_string(), p).is_some(),
            None => file.profiles.remove(name).is_some(),
        };
        let mut json = serde_json::to_vec_pretty(&file).expect("profiles serialise");
        json.push(b'\n');
        fsutil::write_atomic(&self.path, &json, PRIVATE_FILE)?;
        Ok(existed)
    }
}
