//! What every operation on an existing machine shares: its own cloud (the endpoint, region and
//! identity it was made with, and nothing else), grouping machines by cloud, its address, and
//! an SSH session to it with the host key pinned.

use std::{collections::BTreeMap, net::IpAddr, net::SocketAddr, path::Path, time::Duration};

use anyhow::{Context, bail};

use crate::{
    cloud::{Ec2, Ownership},
    credentials::{CloudFlags, split_region_url},
    dialect::{Dialect, DialectChoice},
    names::MachineName,
    report::Hinted,
    ssh::{Session, SshTarget},
    store::{MachineRecord, Store},
};

/// Identifies one cloud identity: machines with the same key share one API client and call.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct CloudKey {
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub profile: Option<String>,
    /// The access key id the machines were made with (`None` in records from before it was
    /// kept: then any identity is accepted, as before).
    pub access_key_id: Option<String>,
    pub ca_bundle: Option<String>,
    /// A record older than dialects was made in Eucalyptus's: the same cloud as a new one.
    pub dialect: Dialect,
    /// Made with `--use-instance-role`: its keys come from the metadata service again.
    pub instance_role: bool,
}

impl CloudKey {
    pub fn of(record: &MachineRecord) -> CloudKey {
        CloudKey {
            endpoint: record.cloud.endpoint.clone(),
            region: record.cloud.region.clone(),
            profile: record.cloud.profile.clone(),
            access_key_id: record.cloud.access_key_id.clone(),
            ca_bundle: record.cloud.ca_bundle.clone(),
            dialect: record.cloud.dialect.unwrap_or(Dialect::Eucalyptus),
            instance_role: record.cloud.instance_role,
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

/// The owner tags of a machine of this store.
pub fn ownership(store: &Store, name: &MachineName) -> anyhow::Result<Ownership> {
    Ok(Ownership::new(name.as_str(), store.id()?))
}

/// Whether two endpoint URLs name the same endpoint (a trailing slash aside).
pub fn same_endpoint(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

/// Refuses flags that point a machine at another cloud than its own (pure).
pub fn check_flags(key: &CloudKey, flags: &CloudFlags) -> Result<(), Hinted> {
    if let (Some(given), Some(own)) = (&flags.endpoint, &key.endpoint) {
        let (region, url) = split_region_url(given);
        if !same_endpoint(&url, own) {
            return Err(Hinted::new(
                format!("the machine was made on {own}, not on {url}"),
                "leave out --endpoint: a machine is always handled on the cloud it was made on",
            ));
        }
        if let (Some(r), Some(own)) = (region, &key.region)
            && &r != own
        {
            return Err(other_region(own, &r));
        }
    }
    if let (Some(given), Some(own)) = (&flags.region, &key.region)
        && given != own
    {
        return Err(other_region(own, given));
    }
    if let Some(given) = flags.dialect
        && !given.is_auto()
        && given != DialectChoice::from(key.dialect)
    {
        let own = key.dialect;
        return Err(Hinted::new(
            format!("the machine was made in the {own} dialect, not the {given} one"),
            "leave out --dialect: a machine is always handled in the dialect it was made in",
        ));
    }
    Ok(())
}

fn other_region(own: &str, given: &str) -> Hinted {
    Hinted::new(
        format!("the machine was made in region {own}, not in {given}"),
        "leave out --region: a machine is always handled in the region it was made in",
    )
}

/// Refuses credentials of another identity than the machine's (pure): another account's keys
/// see the machine's live instance as NotFound, which must never read as "gone".
pub fn check_identity(key: &CloudKey, access_key_id: &str, source: &str) -> Result<(), Hinted> {
    match &key.access_key_id {
        Some(own) if own != access_key_id => Err(Hinted::new(
            format!(
                "the machine was made with access key {own}, but the credentials now are \
                 {access_key_id} (from {source})"
            ),
            format!(
                "unset the variables that name {access_key_id} (AWS_ACCESS_KEY_ID/EC2_ACCESS_KEY…) \
                 or pass --profile with {own}'s profile; `rm -f` forgets a machine without the cloud"
            ),
        )),
        _ => Ok(()),
    }
}

/// The flags a machine's cloud is resolved with (pure): its own endpoint and region, the
/// recorded CA bundle unless `--ca-bundle` gives another, `--profile` if given.
pub fn machine_flags(key: &CloudKey, flags: &CloudFlags) -> CloudFlags {
    CloudFlags {
        endpoint: key.endpoint.clone().or(flags.endpoint.clone()),
        region: key.region.clone().or(flags.region.clone()),
        profile: flags.profile.clone(),
        ca_bundle: flags
            .ca_bundle
            .clone()
            .or_else(|| key.ca_bundle.clone().map(Into::into)),
        dialect: Some(key.dialect.into()),
        use_instance_role: flags.use_instance_role || key.instance_role,
    }
}

/// The EC2 client for machines of `key`, on their own endpoint, region and identity: flags
/// that point elsewhere and credentials of another access key are refused. The recorded CA
/// bundle is used unless `--ca-bundle` gives another.
pub async fn cloud_of(
    docker_config: &Path,
    key: &CloudKey,
    flags: &CloudFlags,
) -> anyhow::Result<Ec2> {
    check_flags(key, flags)?;
    let flags = machine_flags(key, flags);
    let target = super::cloud_target::resolve(docker_config, &flags, key.profile.clone()).await?;
    check_identity(key, &target.keys.access_key_id, &target.keys_source)?;
    Ok(Ec2::connect(&target)?)
}

/// The cloud of one machine (see [`cloud_of`]), the error naming the machine.
pub async fn cloud_of_machine(
    docker_config: &Path,
    record: &MachineRecord,
    flags: &CloudFlags,
) -> anyhow::Result<Ec2> {
    cloud_of(docker_config, &CloudKey::of(record), flags)
        .await
        .map_err(|e| match e.downcast::<Hinted>() {
            // One line, naming the machine: "web1: the machine was made with …".
            Ok(h) => Hinted::new(format!("{}: {}", record.name, h.message), h.hint).into(),
            Err(e) => e,
        })
}

/// The address a machine is reached at, from its record.
pub fn machine_address(record: &MachineRecord) -> Option<IpAddr> {
    let pick = if record.cloud.use_private_address {
        &record.cloud.private_ip
    } else {
        &record.cloud.public_ip
    };
    pick.as_deref().and_then(|a| a.parse().ok())
}

/// The recorded address, or a clear error for a machine that has none.
pub fn address_of(record: &MachineRecord) -> anyhow::Result<IpAddr> {
    machine_address(record).ok_or_else(|| {
        Hinted::new(
            format!("{} has no address on record", record.name),
            format!("is it running? `docker euca start {}`", record.name),
        )
        .into()
    })
}

/// How to reach the machine over SSH at `address`: the pinned host key, and a pending one if
/// a rotation was interrupted.
pub fn ssh_target(record: &MachineRecord, address: IpAddr) -> anyhow::Result<SshTarget> {
    let pinned = record
        .ssh
        .host_key
        .clone()
        .context("the machine record has no pinned host key")?;
    Ok(SshTarget {
        addr: SocketAddr::new(address, record.ssh.port.unwrap_or(22)),
        user: record.ssh.user.clone().unwrap_or_else(|| "ubuntu".into()),
        key_path: record
            .ssh
            .key_path
            .clone()
            .context("the machine record names no SSH key")?
            .into(),
        host_keys: std::iter::once(pinned)
            .chain(record.ssh.pending_host_key.clone())
            .collect(),
    })
}

/// An SSH session to the machine at `address`. A host that shows the pending key of an
/// interrupted rotation has it installed: that key becomes the pinned one.
pub async fn connect(
    store: &Store,
    record: &MachineRecord,
    address: IpAddr,
    timeout: Duration,
) -> anyhow::Result<Session> {
    let session = Session::connect(&ssh_target(record, address)?, timeout).await?;
    if let Some(pending) = &record.ssh.pending_host_key
        && session.host_key() == pending.trim()
    {
        tracing::debug!("ssh: the pending host key answered; pinning it");
        store.update(&record.name, |r| {
            r.ssh.host_key = Some(pending.clone());
            r.ssh.pending_host_key = None;
            r.ssh.host_key_rotated = true;
        })?;
    }
    Ok(session)
}

/// An SSH session to the machine at its recorded address.
pub async fn session(
    store: &Store,
    record: &MachineRecord,
    timeout: Duration,
) -> anyhow::Result<Session> {
    connect(store, record, address_of(record)?, timeout).await
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

/// Waits until a TCP connection to `addr` succeeds, keeping the last error for the message.
/// `allowed` names the sources the security group admits, for the hint.
pub async fn wait_for_port(
    addr: SocketAddr,
    timeout: Duration,
    allowed: Option<&str>,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let attempt =
            tokio::time::timeout(Duration::from_secs(3), tokio::net::TcpStream::connect(addr))
                .await;
        let last = match attempt {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(e)) => e.to_string(),
            Err(_) => "connect timed out".to_string(),
        };
        if tokio::time::Instant::now() >= deadline {
            let hint = match allowed {
                Some(cidrs) => format!(
                    "the security group admits only {cidrs}; behind NAT the cloud sees another \
                     address: give it with --allow-cidr (and check that the image runs sshd)"
                ),
                None => "check that the security group allows it from here and that the image \
                         runs sshd"
                    .into(),
            };
            bail!(Hinted::new(
                format!(
                    "port {} on {} did not open within {timeout:?} (last error: {last})",
                    addr.port(),
                    addr.ip()
                ),
                hint,
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> CloudKey {
        CloudKey {
            endpoint: Some("http://clc:8773/services/compute/".into()),
            region: Some("eucalyptus".into()),
            profile: Some("default".into()),
            access_key_id: Some("AKIOWN".into()),
            ca_bundle: None,
            dialect: Dialect::Eucalyptus,
            instance_role: false,
        }
    }

    #[test]
    fn a_machine_keeps_its_dialect_and_older_records_are_eucalyptus() {
        let aws = CloudKey {
            dialect: Dialect::Aws,
            ..key()
        };
        let flags = machine_flags(&aws, &CloudFlags::default());
        assert_eq!(flags.dialect, Some(DialectChoice::Aws));
        let old = machine_flags(&key(), &CloudFlags::default());
        assert_eq!(old.dialect, Some(DialectChoice::Eucalyptus));
        // A record from before dialects and a new Eucalyptus one are the same cloud: one call.
        let mut before =
            crate::store::MachineRecord::new(crate::names::MachineName::new("a1").unwrap());
        before.cloud.endpoint = Some("http://clc/".into());
        let mut now = before.clone();
        now.cloud.dialect = Some(Dialect::Eucalyptus);
        assert_eq!(group_by_cloud(vec![before, now]).len(), 1);
        let other = CloudFlags {
            dialect: Some(DialectChoice::Eucalyptus),
            ..Default::default()
        };
        let err = check_flags(&aws, &other).unwrap_err();
        assert_eq!(
            err.message,
            "the machine was made in the aws dialect, not the eucalyptus one"
        );
        let auto = CloudFlags {
            dialect: Some(DialectChoice::Auto),
            ..Default::default()
        };
        assert!(check_flags(&aws, &auto).is_ok());
    }

    #[test]
    fn flags_may_repeat_the_machines_cloud_but_not_name_another() {
        let ok = |endpoint: Option<&str>, region: Option<&str>| {
            check_flags(
                &key(),
                &CloudFlags {
                    endpoint: endpoint.map(Into::into),
                    region: region.map(Into::into),
                    ..Default::default()
                },
            )
        };
        assert!(ok(None, None).is_ok());
        assert!(ok(Some("http://clc:8773/services/compute"), Some("eucalyptus")).is_ok());
        assert!(ok(Some("eucalyptus::http://clc:8773/services/compute/"), None).is_ok());
        let other = ok(Some("http://other:8773/services/compute/"), None).unwrap_err();
        assert!(other.message.contains("http://clc:8773/services/compute/"));
        assert!(
            other
                .message
                .contains("http://other:8773/services/compute/")
        );
        assert!(ok(None, Some("us-east-1")).is_err());
        assert!(ok(Some("us-east-1::http://clc:8773/services/compute/"), None).is_err());
    }

    #[test]
    fn every_command_uses_the_recorded_endpoint_and_ca_bundle() {
        let recorded = CloudKey {
            ca_bundle: Some("/etc/euca/ca.pem".into()),
            ..key()
        };
        let flags = machine_flags(&recorded, &CloudFlags::default());
        assert_eq!(flags.endpoint, recorded.endpoint);
        assert_eq!(flags.region, recorded.region);
        assert_eq!(
            flags.ca_bundle.as_deref(),
            Some(Path::new("/etc/euca/ca.pem"))
        );
        let given = CloudFlags {
            ca_bundle: Some("/tmp/other.pem".into()),
            ..Default::default()
        };
        assert_eq!(
            machine_flags(&recorded, &given).ca_bundle.as_deref(),
            Some(Path::new("/tmp/other.pem"))
        );
    }

    #[test]
    fn another_access_key_is_refused_naming_both() {
        assert!(check_identity(&key(), "AKIOWN", "profile").is_ok());
        let err =
            check_identity(&key(), "AKIOTHER", "environment (AWS_ACCESS_KEY_ID)").unwrap_err();
        assert!(err.message.contains("AKIOWN") && err.message.contains("AKIOTHER"));
        assert!(err.message.contains("environment (AWS_ACCESS_KEY_ID)"));
        // Records from before the access key id was kept accept any identity.
        let old = CloudKey {
            access_key_id: None,
            ..key()
        };
        assert!(check_identity(&old, "AKIOTHER", "profile").is_ok());
    }
}
