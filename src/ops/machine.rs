//! Shared by the commands that work on existing machines: the cloud client for a machine's
//! (endpoint, region, profile), grouping machines by it, and an SSH session to a machine.

use std::{collections::BTreeMap, path::Path, time::Duration};

use crate::{
    cloud::Ec2, credentials::CloudFlags, report::Hinted, ssh::Session, store::MachineRecord,
};

/// Identifies one EC2 client: machines with the same key share one API connection and call.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct CloudKey {
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub profile: Option<String>,
}

impl CloudKey {
    pub fn of(record: &MachineRecord) -> CloudKey {
        CloudKey {
            endpoint: record.cloud.endpoint.clone(),
            region: record.cloud.region.clone(),
            profile: record.cloud.profile.clone(),
        }
    }
}

/// Groups records by their cloud key, keeping each group's order.
pub fn group_by_cloud(records: Vec<MachineRecord>) -> BTreeMap<CloudKey, Vec<MachineRecord>> {
    let mut groups: BTreeMap<CloudKey, Vec<MachineRecord>> = BTreeMap::new();
    for r in records {
        groups.entry(CloudKey::of(&r)).or_default().push(r);
    }
    groups
}

/// The EC2 client for machines of `key`; explicit flags win over what the record says.
pub async fn ec2_for(
    docker_config: &Path,
    key: &CloudKey,
    flags: &CloudFlags,
) -> anyhow::Result<Ec2> {
    let mut flags = flags.clone();
    flags.endpoint = flags.endpoint.or(key.endpoint.clone());
    flags.region = flags.region.or(key.region.clone());
    let target = super::cloud_target::resolve(docker_config, &flags, key.profile.clone()).await?;
    Ok(Ec2::connect(&target)?)
}

/// An SSH session to the machine at its recorded address, host key pinned.
pub async fn session(record: &MachineRecord, timeout: Duration) -> anyhow::Result<Session> {
    let address = super::provision::machine_address(record).ok_or_else(|| {
        Hinted::new(
            format!("{} has no address on record", record.name),
            format!("is it running? `docker euca start {}`", record.name),
        )
    })?;
    Ok(Session::connect(&super::provision::ssh_target(record, address)?, timeout).await?)
}

/// The instance id, or a clear error for a machine whose create never got that far.
pub fn instance_id(record: &MachineRecord) -> anyhow::Result<String> {
    record.cloud.instance_id.clone().ok_or_else(|| {
        Hinted::new(
            format!(
                "{} has no instance (its create did not get that far)",
                record.name
            ),
            format!("`docker euca rm {}` removes what is left", record.name),
        )
        .into()
    })
}
