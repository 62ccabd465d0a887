//! docker-machine's store, read only (plus `--scrub`): `machines/NAME/config.json` of its
//! `amazonec2` driver and of the Eucalyptus fork's `eucalyptus` driver, the SSH key and the
//! TLS material beside it. The format is libmachine's (`persist.Filestore`, `host.Host`
//! ConfigVersion 3); the fork's older hosts carry the same `Driver`/`DriverName` pair.
//!
//! Paths recorded in a store are absolute and go stale when a store is moved
//! (docker-machine#4304): every file is looked for in the store actually given first, then at
//! the recorded path.

use std::{
    io,
    path::{Path, PathBuf},
};

use serde::Deserialize;

use crate::secret::Secret;

#[derive(Debug, thiserror::Error)]
pub enum DmError {
    #[error("no docker-machine store at {0} (it has no machines/ directory)")]
    NoStore(PathBuf),
    #[error("docker-machine has no machine {name:?} in {store}")]
    NoMachine { name: String, store: PathBuf },
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("{path} is not a docker-machine host file: {message}")]
    Format { path: PathBuf, message: String },
    #[error(
        "machine {name:?} uses docker-machine's {driver:?} driver; only amazonec2 and eucalyptus can be imported"
    )]
    Driver { name: String, driver: String },
    #[error("machine {name:?} has no {what} in {path}")]
    Missing {
        name: String,
        what: &'static str,
        path: PathBuf,
    },
    #[error("cannot scrub {path}: {message}")]
    Scrub { path: PathBuf, message: String },
}

impl DmError {
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            DmError::NoStore(_) => "give the store with --storage-path DIR (docker-machine's MACHINE_STORAGE_PATH)".into(),
            DmError::NoMachine { .. } => "`docker-machine ls` lists its machines; --all imports every one".into(),
            DmError::Driver { .. } => "only hosts on an EC2 cloud can be imported".into(),
            DmError::Missing { .. } | DmError::Format { .. } => "the store may be damaged; `docker-machine inspect NAME` shows what docker-machine reads".into(),
            DmError::Read { .. } | DmError::Scrub { .. } => "check the file's permissions".into(),
        })
    }
}

/// Which docker-machine driver made the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriverKind {
    Amazonec2,
    Eucalyptus,
}

impl DriverKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DriverKind::Amazonec2 => "amazonec2",
            DriverKind::Eucalyptus => "eucalyptus",
        }
    }
}

/// docker-machine's engine options (`--engine-*`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DmEngine {
    /// `--engine-opt`s, `key=value` (dockerd's `--key=value`).
    pub opts: Vec<String>,
    pub env: Vec<String>,
    pub labels: Vec<String>,
    pub storage_driver: Option<String>,
    pub registry_mirrors: Vec<String>,
    pub insecure_registries: Vec<String>,
}

/// The client TLS material docker-machine used for the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DmTls {
    pub ca_cert: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

/// One docker-machine host, as far as an import needs it.
#[derive(Debug, Clone)]
pub struct DmMachine {
    pub name: String,
    /// `machines/NAME` in the store given.
    pub dir: PathBuf,
    pub config_path: PathBuf,
    pub driver: DriverKind,
    pub access_key: String,
    pub secret_key: Secret<String>,
    pub session_token: Option<String>,
    pub endpoint: String,
    pub region: String,
    pub image: Option<String>,
    pub zone: Option<String>,
    pub instance_type: Option<String>,
    pub instance_id: String,
    pub key_name: Option<String>,
    /// docker-machine made the key pair (its `rm` deletes it); false for `--amazonec2-keypair-name`.
    pub key_pair_made_by_machine: bool,
    pub ssh_user: String,
    pub ssh_port: u16,
    pub ssh_key: Option<PathBuf>,
    pub use_private_address: bool,
    pub subnet_id: Option<String>,
    pub engine: DmEngine,
    pub tls: Option<DmTls>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HostFile {
    #[serde(default)]
    config_version: Option<u32>,
    driver_name: String,
    driver: DriverFields,
    #[serde(default)]
    host_options: Option<HostOptions>,
}

/// The union of the two drivers' fields (Go's zero values when unset).
#[derive(Deserialize, Default)]
#[serde(default)]
struct DriverFields {
    #[serde(rename = "AccessKey")]
    access_key: Option<String>,
    #[serde(rename = "SecretKey")]
    secret_key: Option<String>,
    #[serde(rename = "SessionToken")]
    session_token: Option<String>,
    #[serde(rename = "Region")]
    region: Option<String>,
    /// amazonec2's `--amazonec2-endpoint`.
    #[serde(rename = "Endpoint")]
    endpoint: Option<String>,
    /// The fork's `--eucalyptus-compute-endpoint`.
    #[serde(rename = "EC2Endpoint")]
    ec2_endpoint: Option<String>,
    #[serde(rename = "DisableSSL")]
    disable_ssl: Option<bool>,
    #[serde(rename = "AMI")]
    ami: Option<String>,
    #[serde(rename = "Zone")]
    zone: Option<String>,
    #[serde(rename = "InstanceType")]
    instance_type: Option<String>,
    #[serde(rename = "InstanceId")]
    instance_id: Option<String>,
    #[serde(rename = "KeyName")]
    key_name: Option<String>,
    #[serde(rename = "ExistingKey")]
    existing_key: Option<bool>,
    #[serde(rename = "SSHUser")]
    ssh_user: Option<String>,
    #[serde(rename = "SSHPort")]
    ssh_port: Option<u16>,
    #[serde(rename = "SSHKeyPath")]
    ssh_key_path: Option<String>,
    #[serde(rename = "SSHPrivateKeyPath")]
    ssh_private_key_path: Option<String>,
    #[serde(rename = "UsePrivateIP")]
    use_private_ip: Option<bool>,
    #[serde(rename = "PrivateIPOnly")]
    private_ip_only: Option<bool>,
    #[serde(rename = "SubnetId")]
    subnet_id: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct HostOptions {
    engine_options: Option<EngineFields>,
    auth_options: Option<AuthFields>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct EngineFields {
    arbitrary_flags: Option<Vec<String>>,
    env: Option<Vec<String>>,
    insecure_registry: Option<Vec<String>>,
    labels: Option<Vec<String>>,
    registry_mirror: Option<Vec<String>>,
    storage_driver: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct AuthFields {
    ca_cert_path: Option<String>,
    client_cert_path: Option<String>,
    client_key_path: Option<String>,
}

/// A docker-machine store directory.
#[derive(Debug, Clone)]
pub struct DmStore {
    root: PathBuf,
}

impl DmStore {
    /// `--storage-path`, else `MACHINE_STORAGE_PATH`, else `~/.docker/machine`.
    pub fn locate(given: Option<&Path>) -> DmStore {
        let root = given
            .map(Path::to_path_buf)
            .or_else(|| std::env::var_os("MACHINE_STORAGE_PATH").map(PathBuf::from))
            .or_else(|| dirs::home_dir().map(|h| h.join(".docker/machine")))
            .unwrap_or_else(|| PathBuf::from(".docker/machine"));
        DmStore { root }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn machines_dir(&self) -> PathBuf {
        self.root.join("machines")
    }

    /// The names of the store's machines (directories holding a `config.json`), sorted.
    pub fn names(&self) -> Result<Vec<String>, DmError> {
        let dir = self.machines_dir();
        let entries = std::fs::read_dir(&dir).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => DmError::NoStore(self.root.clone()),
            _ => DmError::Read {
                path: dir.clone(),
                source: e,
            },
        })?;
        let mut names: Vec<String> = entries
            .filter_map(Result::ok)
            .filter(|e| e.path().join("config.json").is_file())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        names.sort();
        Ok(names)
    }

    /// Reads one machine.
    pub fn load(&self, name: &str) -> Result<DmMachine, DmError> {
        if !self.machines_dir().is_dir() {
            return Err(DmError::NoStore(self.root.clone()));
        }
        let dir = self.machines_dir().join(name);
        let config_path = dir.join("config.json");
        if name.contains('/') || !config_path.is_file() {
            return Err(DmError::NoMachine {
                name: name.to_string(),
                store: self.root.clone(),
            });
        }
        let bytes = std::fs::read(&config_path).map_err(|source| DmError::Read {
            path: config_path.clone(),
            source,
        })?;
        let host: HostFile = serde_json::from_slice(&bytes).map_err(|e| DmError::Format {
            path: config_path.clone(),
            message: e.to_string(),
        })?;
        tracing::debug!(
            "{}: ConfigVersion {:?}, driver {}",
            config_path.display(),
            host.config_version,
            host.driver_name
        );
        self.machine(name, dir, config_path, host)
    }

    fn machine(
        &self,
        name: &str,
        dir: PathBuf,
        config_path: PathBuf,
        host: HostFile,
    ) -> Result<DmMachine, DmError> {
        let driver = match host.driver_name.as_str() {
            "amazonec2" => DriverKind::Amazonec2,
            "eucalyptus" => DriverKind::Eucalyptus,
            other => {
                return Err(DmError::Driver {
                    name: name.to_string(),
                    driver: other.to_string(),
                });
            }
        };
        let d = host.driver;
        let missing = |what| DmError::Missing {
            name: name.to_string(),
            what,
            path: config_path.clone(),
        };
        let access_key = nonempty(d.access_key).ok_or_else(|| missing("access key (AccessKey)"))?;
        let instance_id =
            nonempty(d.instance_id).ok_or_else(|| missing("instance id (InstanceId)"))?;
        let region = nonempty(d.region).unwrap_or_else(|| match driver {
            DriverKind::Amazonec2 => "us-east-1".into(),
            DriverKind::Eucalyptus => crate::credentials::DEFAULT_REGION.into(),
        });
        let endpoint = match driver {
            DriverKind::Amazonec2 => nonempty(d.endpoint).unwrap_or_else(|| {
                let scheme = if d.disable_ssl == Some(true) {
                    "http"
                } else {
                    "https"
                };
                format!("{scheme}://ec2.{region}.amazonaws.com/")
            }),
            DriverKind::Eucalyptus => {
                nonempty(d.ec2_endpoint).ok_or_else(|| missing("compute endpoint (EC2Endpoint)"))?
            }
        };
        let zone = nonempty(d.zone).map(|z| full_zone(&region, &z));
        let options = host.host_options.unwrap_or_default();
        let ssh_key = first_file(&[
            Some(dir.join("id_rsa")),
            nonempty(d.ssh_key_path).map(PathBuf::from),
            nonempty(d.ssh_private_key_path).map(PathBuf::from),
        ]);
        let tls = self.tls_files(&dir, options.auth_options.unwrap_or_default());
        Ok(DmMachine {
            name: name.to_string(),
            dir,
            config_path,
            driver,
            access_key,
            secret_key: Secret::new(d.secret_key.unwrap_or_default()),
            session_token: nonempty(d.session_token),
            endpoint,
            region,
            image: nonempty(d.ami),
            zone,
            instance_type: nonempty(d.instance_type),
            instance_id,
            key_pair_made_by_machine: d.existing_key != Some(true)
                && d.key_name.as_deref().is_some_and(|k| !k.is_empty()),
            key_name: nonempty(d.key_name),
            ssh_user: nonempty(d.ssh_user).unwrap_or_else(|| "ubuntu".into()),
            ssh_port: d.ssh_port.filter(|p| *p != 0).unwrap_or(22),
            ssh_key,
            use_private_address: d.use_private_ip == Some(true) || d.private_ip_only == Some(true),
            subnet_id: nonempty(d.subnet_id),
            engine: engine_options(options.engine_options.unwrap_or_default()),
            tls,
        })
    }

    /// The client certificate, its key and the CA: the machine directory's copies, then the
    /// recorded paths, then the store's `certs/`.
    fn tls_files(&self, dir: &Path, auth: AuthFields) -> Option<DmTls> {
        let certs = self.root.join("certs");
        let pick = |file: &str, recorded: Option<String>| {
            first_file(&[
                Some(dir.join(file)),
                nonempty(recorded).map(PathBuf::from),
                Some(certs.join(file)),
            ])
        };
        Some(DmTls {
            ca_cert: pick("ca.pem", auth.ca_cert_path)?,
            client_cert: pick("cert.pem", auth.client_cert_path)?,
            client_key: pick("key.pem", auth.client_key_path)?,
        })
    }
}

fn nonempty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.is_empty())
}

fn first_file(candidates: &[Option<PathBuf>]) -> Option<PathBuf> {
    candidates.iter().flatten().find(|p| p.is_file()).cloned()
}

/// amazonec2 keeps only the zone's letter (`a`); the fork keeps the whole name.
fn full_zone(region: &str, zone: &str) -> String {
    if zone.len() == 1 {
        format!("{region}{zone}")
    } else {
        zone.to_string()
    }
}

fn engine_options(e: EngineFields) -> DmEngine {
    DmEngine {
        opts: e.arbitrary_flags.unwrap_or_default(),
        env: e.env.unwrap_or_default(),
        labels: e.labels.unwrap_or_default(),
        storage_driver: nonempty(e.storage_driver),
        registry_mirrors: e.registry_mirror.unwrap_or_default(),
        insecure_registries: e.insecure_registry.unwrap_or_default(),
    }
}

/// Removes the secret key from a `config.json`, changing nothing else in the file: the JSON
/// string after `"SecretKey":` is emptied in place, and the result is checked to be the same
/// document but for that one value. Returns false when there was no secret left.
pub fn scrub_secret(path: &Path) -> Result<bool, DmError> {
    let fail = |message: String| DmError::Scrub {
        path: path.to_path_buf(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|source| DmError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let Some(scrubbed) = without_secret(&text).map_err(fail)? else {
        return Ok(false);
    };
    let mode = crate::fsutil::mode_of(path).unwrap_or(0o600);
    crate::fsutil::write_atomic(path, scrubbed.as_bytes(), mode)
        .map_err(|e| fail(e.to_string()))?;
    Ok(true)
}

/// The file's text with the driver's `SecretKey` value emptied; `None` when it already is.
fn without_secret(text: &str) -> Result<Option<String>, String> {
    const KEY: &str = "\"SecretKey\":";
    let mut found = text.match_indices(KEY);
    let (at, _) = found.next().ok_or("it has no SecretKey")?;
    if found.next().is_some() {
        return Err("it has more than one SecretKey".into());
    }
    let rest = &text[at + KEY.len()..];
    let open = at + KEY.len() + (rest.len() - rest.trim_start().len());
    if !text[open..].starts_with('"') {
        return Err("its SecretKey is not a string".into());
    }
    let close = string_end(&text[open..]).ok_or("its SecretKey string does not end")? + open;
    if close == open + 1 {
        return Ok(None);
    }
    let scrubbed = format!("{}\"\"{}", &text[..open], &text[close + 1..]);
    let mut expected: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    expected["Driver"]["SecretKey"] = serde_json::Value::String(String::new());
    let got: serde_json::Value = serde_json::from_str(&scrubbed).map_err(|e| e.to_string())?;
    if got != expected {
        return Err("the SecretKey found is not the driver's".into());
    }
    Ok(Some(scrubbed))
}

/// Index of the closing quote of the JSON string that `s` starts with.
fn string_end(s: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in s.char_indices().skip(1) {
        match (escaped, c) {
            (true, _) => escaped = false,
            (false, '\\') => escaped = true,
            (false, '"') => return Some(i),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: &str = r#"{
    "ConfigVersion": 3,
    "Driver": {
        "IPAddress": "10.214.0.9",
        "MachineName": "web",
        "SSHUser": "ubuntu",
        "SSHPort": 22,
        "SSHKeyPath": "/old/place/machines/web/id_rsa",
        "StorePath": "/old/place",
        "AccessKey": "AKIA1",
        "SecretKey": "se\"cr/et+",
        "SessionToken": "",
        "Region": "eucalyptus",
        "AMI": "emi-1",
        "KeyName": "web",
        "ExistingKey": false,
        "InstanceId": "i-1",
        "InstanceType": "t2.micro",
        "PrivateIPAddress": "10.213.0.9",
        "Zone": "a",
        "UsePrivateIP": false,
        "Endpoint": "http://127.0.0.1:8773/services/compute/"
    },
    "DriverName": "amazonec2",
    "HostOptions": {
        "EngineOptions": {
            "ArbitraryFlags": ["log-level=debug"],
            "Env": null,
            "InsecureRegistry": ["reg.local:5000"],
            "Labels": ["team=web"],
            "RegistryMirror": [],
            "StorageDriver": "",
            "InstallURL": "https://get.docker.com"
        },
        "AuthOptions": {
            "CaCertPath": "/old/place/certs/ca.pem"
        }
    },
    "Name": "web"
}
"#;

    fn store_with(config: &str) -> (tempfile::TempDir, DmStore) {
        let dir = tempfile::tempdir().unwrap();
        let m = dir.path().join("machines/web");
        std::fs::create_dir_all(&m).unwrap();
        std::fs::write(m.join("config.json"), config).unwrap();
        std::fs::write(m.join("id_rsa"), "key").unwrap();
        let store = DmStore::locate(Some(dir.path()));
        (dir, store)
    }

    #[test]
    fn reads_an_amazonec2_host_and_finds_its_files_in_the_moved_store() {
        let (_dir, store) = store_with(HOST);
        assert_eq!(store.names().unwrap(), vec!["web"]);
        let m = store.load("web").unwrap();
        assert_eq!(m.driver, DriverKind::Amazonec2);
        assert_eq!(m.secret_key.expose(), "se\"cr/et+");
        assert_eq!(m.endpoint, "http://127.0.0.1:8773/services/compute/");
        assert_eq!(m.zone.as_deref(), Some("eucalyptusa"));
        assert!(m.key_pair_made_by_machine);
        assert_eq!(m.ssh_key, Some(store.root().join("machines/web/id_rsa")));
        assert_eq!(m.engine.opts, vec!["log-level=debug"]);
        assert_eq!(m.engine.labels, vec!["team=web"]);
        assert_eq!(m.engine.storage_driver, None);
        // No client certificate anywhere: no TLS material to keep.
        assert!(m.tls.is_none());
    }

    #[test]
    fn refuses_other_drivers_and_unknown_machines_by_name() {
        let (_dir, store) = store_with(&HOST.replace("\"amazonec2\"", "\"virtualbox\""));
        let err = store.load("web").unwrap_err();
        assert!(err.to_string().contains("\"virtualbox\" driver"), "{err}");
        let err = store.load("nope").unwrap_err();
        assert!(matches!(err, DmError::NoMachine { .. }), "{err}");
        let err = DmStore::locate(Some(Path::new("/nonexistent")))
            .names()
            .unwrap_err();
        assert!(matches!(err, DmError::NoStore(_)), "{err}");
    }

    #[test]
    fn a_fork_host_needs_its_compute_endpoint() {
        let fork = HOST
            .replace("\"amazonec2\"", "\"eucalyptus\"")
            .replace("\"Endpoint\"", "\"EC2Endpoint\"")
            .replace("\"Zone\": \"a\"", "\"Zone\": \"PARTI00\"");
        let (_dir, store) = store_with(&fork);
        let m = store.load("web").unwrap();
        assert_eq!(m.driver, DriverKind::Eucalyptus);
        assert_eq!(m.zone.as_deref(), Some("PARTI00"));
        let (_dir, store) = store_with(&fork.replace("\"EC2Endpoint\"", "\"Other\""));
        assert!(matches!(store.load("web"), Err(DmError::Missing { .. })));
    }

    #[test]
    fn scrubbing_changes_only_the_secret() {
        let scrubbed = without_secret(HOST).unwrap().unwrap();
        assert_eq!(
            scrubbed,
            HOST.replace(r#""SecretKey": "se\"cr/et+""#, r#""SecretKey": """#)
        );
        assert_eq!(without_secret(&scrubbed).unwrap(), None);
        let nested = HOST.replace("\"AMI\"", "\"SecretKey\": \"x\", \"AMI\"");
        assert!(without_secret(&nested).is_err());
    }
}
