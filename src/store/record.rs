//! The machine record: what a create made and learned, step by step (a journal), so that a
//! failed or interrupted create can be resumed or removed without leaving anything behind.

use serde::{Deserialize, Serialize};

use crate::names::MachineName;

/// Bumped on incompatible changes; a record with a higher version is refused, not misread.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MachineState {
    /// A create is in progress or was interrupted; the cloud fields say what exists.
    Creating,
    /// Create finished and verified the daemon.
    Ready,
    /// A create failed and kept its resources (`--keep-on-failure`).
    Failed,
}

/// Where the machine lives and which cloud resources belong to it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CloudRecord {
    pub endpoint: Option<String>,
    pub region: Option<String>,
    /// The EC2 dialect the machine was made in; absent in records older than dialects
    /// (Eucalyptus, then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dialect: Option<crate::dialect::Dialect>,
    /// Credential profile name; the keys themselves stay in the OS keyring.
    pub profile: Option<String>,
    /// The access key id the machine was made with (not a secret): commands on the machine
    /// refuse credentials of another identity, which would see its live instance as NotFound.
    #[serde(default)]
    pub access_key_id: Option<String>,
    pub ca_bundle: Option<String>,
    pub image_id: Option<String>,
    pub instance_type: Option<String>,
    pub zone: Option<String>,
    pub subnet_id: Option<String>,
    pub instance_id: Option<String>,
    pub private_ip: Option<String>,
    pub public_ip: Option<String>,
    pub use_private_address: bool,
    pub security_group_id: Option<String>,
    pub security_group_name: Option<String>,
    /// True once the cloud confirmed that create made the group (then rm deletes it); false
    /// for `--security-group` and while the creating call is unanswered.
    pub security_group_owned: bool,
    /// The unique name of a group whose CreateSecurityGroup was sent but not yet answered:
    /// the journalled intent that finds it again if the answer is lost.
    #[serde(default)]
    pub security_group_intent: Option<String>,
    pub key_pair_name: Option<String>,
    /// True once the cloud confirmed create's ImportKeyPair (then rm deletes it).
    pub key_pair_owned: bool,
    /// The unique name of a key pair whose ImportKeyPair is unanswered (key pairs carry no
    /// tags in Eucalyptus 4.4: the unique name is the proof).
    #[serde(default)]
    pub key_pair_intent: Option<String>,
    /// Made with the instance role's keys (`--use-instance-role`): every command on the
    /// machine asks the metadata service again, without the flag.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub instance_role: bool,
    /// Launched as a spot instance (AWS dialect): cannot be stopped, only removed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub spot: bool,
    /// The RunInstances client token, journalled before the call: finds the instance even
    /// if the answer to the call never arrived.
    #[serde(default)]
    pub client_token: Option<String>,
    /// The fleet this machine was launched with (one RunInstances for several machines): the
    /// `docker-euca:machine` tag of the security group the fleet shares, which goes with the
    /// last member that names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fleet: Option<String>,
    /// This machine's `AmiLaunchIndex` in its fleet's launch: with the client token, it tells
    /// which of the launch's instances is this machine's when the answer was lost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch_index: Option<u32>,
}

/// How to reach the host over SSH.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SshRecord {
    pub user: Option<String>,
    pub port: Option<u16>,
    /// Path of the client private key (0600, in the machine directory unless given by the user).
    pub key_path: Option<String>,
    /// The pinned server host key, OpenSSH public key format.
    pub host_key: Option<String>,
    /// False while the pinned key is the bootstrap one sent in the user data (readable by the
    /// instance's metadata service); provisioning replaces it with one that never left here.
    #[serde(default)]
    pub host_key_rotated: bool,
    /// A host key being installed (recorded before sshd is touched): a connect accepts it
    /// besides `host_key`, and the first connect that sees it makes it the pinned one.
    #[serde(default)]
    pub pending_host_key: Option<String>,
}

/// The docker engine side: the context written and the daemon's TLS endpoint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EngineRecord {
    pub context_name: Option<String>,
    pub url: Option<String>,
    pub tls_sans: Vec<String>,
    pub labels: Vec<String>,
    pub version: Option<String>,
    /// How the engine was installed: `package`, `skip` or the install script's URL.
    pub install: Option<String>,
    /// `--engine-opt`s, as given.
    pub opts: Vec<String>,
    pub storage_driver: Option<String>,
    pub registry_mirrors: Vec<String>,
    pub insecure_registries: Vec<String>,
    pub env: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MachineRecord {
    pub schema_version: u32,
    pub name: MachineName,
    pub state: MachineState,
    /// RFC 3339 creation time.
    pub created_at: String,
    #[serde(default)]
    pub cloud: CloudRecord,
    #[serde(default)]
    pub ssh: SshRecord,
    #[serde(default)]
    pub engine: EngineRecord,
    /// The docker-machine host directory an `import-machine` took this machine from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imported_from: Option<String>,
    /// The Docker Swarm cluster this machine is a member of (the join tokens are never kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swarm: Option<SwarmRecord>,
}

/// A machine's membership of a swarm cluster.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SwarmRecord {
    pub cluster: String,
    /// `manager` or `worker`, as it joined (the cluster may have changed it since).
    pub role: String,
    pub node_id: Option<String>,
    /// The cluster's security group, shared by every member: deleted with the last member
    /// that names it, when `group_owned`.
    pub group_id: Option<String>,
    pub group_name: Option<String>,
    pub group_owned: bool,
    /// A cluster group whose CreateSecurityGroup is unanswered (its unique name).
    pub group_intent: Option<String>,
}

#[derive(Debug)]
pub(super) enum DecodeError {
    NewerSchema(u32),
    Json(serde_json::Error),
}

impl MachineRecord {
    pub fn new(name: MachineName) -> Self {
        MachineRecord {
            schema_version: SCHEMA_VERSION,
            name,
            state: MachineState::Creating,
            created_at: now_rfc3339(),
            cloud: CloudRecord::default(),
            ssh: SshRecord::default(),
            engine: EngineRecord::default(),
            imported_from: None,
            swarm: None,
        }
    }

    /// The docker context this machine's endpoint lives in (the machine name unless
    /// `--context-name` chose another).
    pub fn context_name(&self) -> String {
        self.engine
            .context_name
            .clone()
            .unwrap_or_else(|| self.name.to_string())
    }

    pub fn to_json(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec_pretty(self).expect("a record always serialises");
        out.push(b'\n');
        out
    }

    pub(super) fn from_json(bytes: &[u8]) -> Result<Self, DecodeError> {
        #[derive(Deserialize)]
        struct Version {
            schema_version: u32,
        }
        let v: Version = serde_json::from_slice(bytes).map_err(DecodeError::Json)?;
        if v.schema_version > SCHEMA_VERSION {
            return Err(DecodeError::NewerSchema(v.schema_version));
        }
        serde_json::from_slice(bytes).map_err(DecodeError::Json)
    }
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let mut rec = MachineRecord::new(MachineName::new("web1").unwrap());
        rec.cloud.instance_id = Some("i-123".into());
        let back = MachineRecord::from_json(&rec.to_json()).unwrap();
        assert_eq!(back, rec);
    }
}
