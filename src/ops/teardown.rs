//! Removing what a machine's create made, shared by create's rollback and `rm`: decided from
//! the record alone ([`plan`], a pure function), then carried out with proof at every step.
//!
//! - Nothing is deleted without proof that it is ours: both ownership tags, or the unique name
//!   (or client token) this store journalled before the call that made it.
//! - Nothing is forgotten without proof that it is gone: an instance is `terminated`, or absent
//!   from a DescribeInstances by id and by our tags, made with the machine's own identity. A
//!   bare `InvalidInstanceID.NotFound` proves nothing.
//! - Each removal is journalled as it happens, so a second `rm` picks up where one stopped.

use std::{path::Path, time::Duration};

use anyhow::bail;

use crate::{
    cloud::{Ec2, GroupInfo, Ownership, Terminate, Verdict},
    context::{ConfigFile, ContextStore},
    names::MachineName,
    progress::Progress,
    report::Hinted,
    store::{CloudRecord, Store, StoreError},
};

/// Descriptions of the contexts docker-euca writes start with this; others are never removed.
pub const CONTEXT_DESCRIPTION_PREFIX: &str = "docker-euca:";
/// The whole head of such a description, before the instance id (`docker-euca: i-… on URL`).
pub const CONTEXT_DESCRIPTION_PREFIX_SPACED: &str = "docker-euca: ";

/// How long a group may stay "in use" by a terminating instance before we give up.
const GROUP_RELEASE_TIMEOUT: Duration = Duration::from_secs(180);
/// How long a terminating instance may take to show `terminated`.
const TERMINATE_TIMEOUT: Duration = Duration::from_secs(300);

/// One removal, decided from the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The cloud confirmed this instance to us: terminate it, then prove it gone.
    TerminateInstance(String),
    /// RunInstances was sent with this token but its answer never arrived: find what it
    /// launched (by token, or by our tags) and terminate that.
    RecoverLaunch(String),
    /// The cloud confirmed this group to us: delete it once free (if its tags or unique name
    /// still say it is ours).
    DeleteGroup { id: String, name: Option<String> },
    /// CreateSecurityGroup was sent with this unique name but never answered: delete the group
    /// of that name if there is one.
    RecoverGroup(String),
    /// An imported key pair (confirmed, or sent with this unique name): delete it.
    DeleteKeyPair(String),
}

/// What must be removed for a record, in order: instances first (a group in use cannot be
/// deleted), then the group, then the key pair. Resources the user gave (`--security-group`,
/// `--keypair-name`) never appear.
pub fn plan(cloud: &CloudRecord) -> Vec<Step> {
    let mut steps = Vec::new();
    match (&cloud.instance_id, &cloud.client_token) {
        (Some(id), _) => steps.push(Step::TerminateInstance(id.clone())),
        (None, Some(token)) => steps.push(Step::RecoverLaunch(token.clone())),
        (None, None) => {}
    }
    match (cloud.security_group_owned, &cloud.security_group_id) {
        (true, Some(id)) => steps.push(Step::DeleteGroup {
            id: id.clone(),
            name: cloud.security_group_name.clone(),
        }),
        _ => {
            if let Some(name) = &cloud.security_group_intent {
                steps.push(Step::RecoverGroup(name.clone()));
            }
        }
    }
    match (
        cloud.key_pair_owned,
        &cloud.key_pair_name,
        &cloud.key_pair_intent,
    ) {
        (true, Some(name), _) => steps.push(Step::DeleteKeyPair(name.clone())),
        (_, _, Some(intent)) => steps.push(Step::DeleteKeyPair(intent.clone())),
        _ => {}
    }
    steps
}

/// Carries out [`plan`] for the machine's record on `ec2` (the machine's own cloud),
/// journalling each step as done.
pub async fn teardown(
    ec2: &Ec2,
    store: &Store,
    name: &MachineName,
    progress: &mut Progress,
) -> anyhow::Result<()> {
    let record = match store.load(name) {
        Ok(r) => r,
        Err(StoreError::NotFound { .. }) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let owner = super::machine::ownership(store, name)?;
    // What the machines of a fleet share carries the fleet's name.
    let group_owner = Ownership::new(
        record
            .cloud
            .fleet
            .clone()
            .unwrap_or_else(|| name.to_string()),
        owner.store.clone(),
    );
    for step in plan(&record.cloud) {
        match step {
            Step::TerminateInstance(id) => {
                terminate_proved(
                    ec2,
                    &owner,
                    &id,
                    record.cloud.client_token.as_deref(),
                    progress,
                )
                .await?;
                crate::crash::point("rm-instance");
                forget_instance(store, name)?;
            }
            Step::RecoverLaunch(token) => {
                progress.stage("looking for an instance whose launch was not answered");
                for id in launched_by(ec2, &owner, &token, record.cloud.launch_index).await? {
                    terminate_proved(ec2, &owner, &id, Some(&token), progress).await?;
                }
                forget_instance(store, name)?;
            }
            Step::DeleteGroup { id, name: group } => {
                // Only a fleet's machines share a group: a single machine's is its own.
                let shared = record.cloud.fleet.is_some();
                let _held = match shared {
                    true => Some(hold_group(store, &id).await?),
                    false => None,
                };
                if !shared || !still_named_by_others(store, name, &id, group.as_deref())? {
                    delete_group_proved(ec2, &group_owner, &id, group.as_deref(), progress).await?;
                    crate::crash::point("rm-group");
                }
                forget_group(store, name)?;
            }
            Step::RecoverGroup(group) => {
                let shared = record.cloud.fleet.is_some();
                let _held = match shared {
                    true => Some(hold_group(store, &group).await?),
                    false => None,
                };
                if !shared || !still_named_by_others(store, name, "", Some(&group))? {
                    let id = settle_group(ec2, &record.cloud, &group, &group_owner).await?;
                    delete_group_proved(ec2, &group_owner, &id, Some(&group), progress).await?;
                }
                forget_group(store, name)?;
            }
            Step::DeleteKeyPair(key) => {
                if record.cloud.key_pair_intent.as_deref() == Some(key.as_str()) {
                    settle_key_pair(ec2, &record, &key, &owner).await?;
                }
                progress.stage(format!("deleting key pair {key}"));
                ec2.delete_key_pair(&key).await?;
                store.update(name, |r| {
                    r.cloud.key_pair_owned = false;
                    r.cloud.key_pair_intent = None;
                })?;
            }
        }
    }
    // The cluster's group, once the instance is gone.
    super::swarm::release_group(ec2, store, &store.load(name)?, progress).await?;
    progress.finish_stage();
    Ok(())
}

/// A CreateSecurityGroup sent under this unique name but never answered may still be applied
/// after a look-up: so the group is made again under the same name. Either that call makes it,
/// or `Duplicate` says the first one did (the name is ours alone); both ways it now exists and
/// has an id to delete, and a late first call can only meet `Duplicate`.
async fn settle_group(
    ec2: &Ec2,
    cloud: &CloudRecord,
    group: &str,
    owner: &Ownership,
) -> anyhow::Result<String> {
    let vpc = match &cloud.subnet_id {
        Some(subnet) => ec2.subnet_vpc(subnet).await?,
        None => None,
    };
    match ec2
        .create_security_group(
            group,
            "docker-euca: settling an unanswered create",
            vpc.as_deref(),
            &owner.tags(),
        )
        .await
    {
        Ok(id) => Ok(id),
        Err(e) if e.code() == Some("InvalidGroup.Duplicate") => Ok(ec2
            .find_security_group(group)
            .await?
            .map(|g| g.id)
            .ok_or(e)?),
        Err(e) => Err(e.into()),
    }
}

/// The same for an ImportKeyPair never answered: imported again from the public key the create
/// wrote beside the private one (then deleted, whichever call made it).
async fn settle_key_pair(
    ec2: &Ec2,
    record: &crate::store::MachineRecord,
    key: &str,
    owner: &Ownership,
) -> anyhow::Result<()> {
    let Some(public) = record
        .ssh
        .key_path
        .as_ref()
        .and_then(|p| std::fs::read_to_string(format!("{p}.pub")).ok())
    else {
        return Ok(());
    };
    match ec2.import_key_pair(key, public.trim(), &owner.tags()).await {
        Ok(()) => Ok(()),
        Err(e) if e.code() == Some("InvalidKeyPair.Duplicate") => Ok(()),
        Err(e) => Err(e.into()),
    }
}

fn forget_instance(store: &Store, name: &MachineName) -> Result<(), StoreError> {
    store.update(name, |r| {
        r.cloud.instance_id = None;
        r.cloud.client_token = None;
    })?;
    Ok(())
}

fn forget_group(store: &Store, name: &MachineName) -> Result<(), StoreError> {
    store.update(name, |r| {
        r.cloud.security_group_id = None;
        r.cloud.security_group_owned = false;
        r.cloud.security_group_intent = None;
    })?;
    Ok(())
}

/// The group lock: held while a machine decides whether it is the last to name a group the
/// machines of a fleet (or a cluster) share, and deletes it if so. Taken off the runtime's
/// threads: it waits for another machine's deletion.
pub async fn hold_group(store: &Store, group: &str) -> anyhow::Result<crate::fsutil::LockFile> {
    let store = store.clone();
    let group = group.to_string();
    Ok(tokio::task::spawn_blocking(move || store.lock_group(&group)).await??)
}

/// Whether another record of this store names the group (by id or by journalled name): then
/// it stays, for the last of them to delete.
pub fn still_named_by_others(
    store: &Store,
    me: &MachineName,
    id: &str,
    group_name: Option<&str>,
) -> Result<bool, StoreError> {
    let names = |c: &CloudRecord| {
        (!id.is_empty() && c.security_group_id.as_deref() == Some(id))
            || (group_name.is_some()
                && (c.security_group_intent.as_deref() == group_name
                    || (c.security_group_name.as_deref() == group_name && c.security_group_owned)))
    };
    Ok(store
        .list()?
        .into_iter()
        .any(|(name, record)| match record {
            Ok(r) => name != *me && names(&r.cloud),
            // An unreadable record might name it: keep the group.
            Err(_) => name != *me,
        }))
}

/// The instances a lost RunInstances made: those carrying our tags, and those launched with
/// our client token (found without the `client-token` filter, which some clouds lack) and,
/// for a machine of a fleet, its own launch index.
async fn launched_by(
    ec2: &Ec2,
    owner: &Ownership,
    token: &str,
    launch_index: Option<u32>,
) -> anyhow::Result<Vec<String>> {
    let by_token = ec2
        .instances_launched_with(token)
        .await?
        .into_iter()
        .filter(|i| launch_index.is_none() || i.launch_index == launch_index);
    let mut ids: Vec<String> = ec2
        .instances_owned(owner)
        .await?
        .into_iter()
        .chain(by_token)
        .filter(|i| i.state != "terminated")
        .map(|i| i.id)
        .collect();
    ids.sort();
    ids.dedup();
    Ok(ids)
}

/// Terminates an instance proved ours, and returns once the cloud proves it gone.
async fn terminate_proved(
    ec2: &Ec2,
    owner: &Ownership,
    id: &str,
    token: Option<&str>,
    progress: &mut Progress,
) -> anyhow::Result<()> {
    if let Some(info) = ec2.describe_instance(id).await? {
        let by_token = token.is_some() && info.client_token.as_deref() == token;
        if owner.judge(&info.tags) == Verdict::Someone && !by_token {
            bail!(Hinted::new(
                format!("instance {id} carries another machine's or store's tags: not terminated"),
                "check the record; `rm -f` forgets the machine without touching the cloud",
            ));
        }
        if info.state == "terminated" {
            return Ok(());
        }
    }
    progress.stage(format!("terminating instance {id}"));
    let terminated = match ec2.terminate_instance(id).await? {
        Terminate::Accepted => ec2.wait_until_terminated(id, TERMINATE_TIMEOUT).await?,
        Terminate::Unknown => false,
    };
    if terminated {
        return Ok(());
    }
    prove_gone(ec2, owner, id).await
}

/// For an instance absent by id (or that the cloud says it does not know), gone means: absent
/// from our tags too, or shown `terminated` there (asked as the machine's own identity, which
/// the caller has checked).
async fn prove_gone(ec2: &Ec2, owner: &Ownership, id: &str) -> anyhow::Result<()> {
    let by_tags = ec2
        .instances_owned(owner)
        .await?
        .into_iter()
        .find(|i| i.id == id);
    match by_tags {
        None => Ok(()),
        Some(i) if i.state == "terminated" => Ok(()),
        Some(i) => bail!(Hinted::new(
            format!(
                "instance {id} is still {} after TerminateInstances",
                i.state
            ),
            "retry `docker euca rm`; the record is kept until the cloud shows it terminated",
        )),
    }
}

/// Deletes a group if it still is the one we made (both tags, our unique name on an untagged
/// group, or our machine tag on a group from before store ids), waiting while a terminating
/// instance still holds it.
async fn delete_group_proved(
    ec2: &Ec2,
    owner: &Ownership,
    id: &str,
    journalled_name: Option<&str>,
    progress: &mut Progress,
) -> anyhow::Result<()> {
    let Some(group) = ec2.security_group(id).await? else {
        return Ok(());
    };
    if !group_is_ours(owner, &group, journalled_name) {
        bail!(Hinted::new(
            format!(
                "security group {id} ({}) does not carry this machine's tags: not deleted",
                group.name
            ),
            "check the record; `rm -f` forgets the machine without touching the cloud",
        ));
    }
    progress.stage(format!("deleting security group {} ({id})", group.name));
    delete_group_when_free(ec2, id).await
}

/// Deletes a group, waiting while a terminating instance still holds it.
pub async fn delete_group_when_free(ec2: &Ec2, id: &str) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + GROUP_RELEASE_TIMEOUT;
    loop {
        match ec2.delete_security_group(id).await {
            Ok(()) => return Ok(()),
            Err(e)
                if matches!(e.code(), Some("DependencyViolation" | "InvalidGroup.InUse"))
                    && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Whether a group found in the cloud is provably ours (pure).
pub fn group_is_ours(owner: &Ownership, group: &GroupInfo, journalled_name: Option<&str>) -> bool {
    let named_as_journalled = journalled_name == Some(group.name.as_str());
    match owner.judge(&group.tags) {
        Verdict::Ours => true,
        Verdict::Untagged | Verdict::Legacy => named_as_journalled,
        Verdict::Someone => false,
    }
}

/// Deletes the machine's docker context if docker-euca wrote it (never a context of the
/// user's own that happens to share the name), and clears `currentContext` if it pointed there.
pub fn remove_context(docker_config: &Path, context_name: Option<&str>) -> anyhow::Result<()> {
    let Some(name) = context_name else {
        return Ok(());
    };
    let contexts = ContextStore::new(docker_config);
    match contexts.read(name) {
        Ok(meta) if meta.description.starts_with(CONTEXT_DESCRIPTION_PREFIX) => {
            ConfigFile::new(docker_config).clear_current_context_if(name)?;
            contexts.remove(name)?;
        }
        Ok(_) => tracing::debug!("context {name} is not docker-euca's; left alone"),
        Err(crate::context::ContextError::NotFound { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::{MACHINE_TAG, STORE_TAG};

    fn record() -> CloudRecord {
        CloudRecord::default()
    }

    #[test]
    fn nothing_made_nothing_to_do() {
        assert!(plan(&record()).is_empty());
    }

    #[test]
    fn a_shared_group_stays_while_another_record_names_it_and_goes_with_the_last() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let member = |name: &str| {
            let mut r = crate::store::MachineRecord::new(MachineName::new(name).unwrap());
            r.cloud.fleet = Some("web".into());
            r.cloud.security_group_id = Some("sg-1".into());
            r.cloud.security_group_name = Some("docker-euca-web-0a1b2c3d".into());
            r.cloud.security_group_owned = true;
            store.create(&r).unwrap();
            r.name
        };
        let (a, b) = (member("web-1"), member("web-2"));
        let named = |me: &MachineName| {
            still_named_by_others(&store, me, "sg-1", Some("docker-euca-web-0a1b2c3d")).unwrap()
        };
        assert!(named(&a) && named(&b));
        // A record damaged on disk might name it: kept.
        std::fs::write(store.machine_dir(&b).join("machine.json"), b"{not json").unwrap();
        assert!(named(&a));
        // A record removed meanwhile names nothing: the last one deletes it.
        store.remove(&b).unwrap();
        assert!(!named(&a));
    }

    #[test]
    fn a_confirmed_instance_is_terminated_and_a_lost_launch_recovered() {
        let mut r = record();
        r.client_token = Some("tok".into());
        assert_eq!(plan(&r), vec![Step::RecoverLaunch("tok".into())]);
        r.instance_id = Some("i-1".into());
        assert_eq!(plan(&r), vec![Step::TerminateInstance("i-1".into())]);
        r.client_token = None;
        assert_eq!(plan(&r), vec![Step::TerminateInstance("i-1".into())]);
    }

    #[test]
    fn groups_confirmed_intended_or_given() {
        let mut r = record();
        // The user's own group (--security-group): never touched.
        r.security_group_id = Some("sg-user".into());
        r.security_group_name = Some("mine".into());
        assert!(plan(&r).is_empty());
        // An unanswered CreateSecurityGroup: found again by its unique name.
        let mut r = record();
        r.security_group_intent = Some("docker-euca-web1-0a1b2c3d".into());
        assert_eq!(
            plan(&r),
            vec![Step::RecoverGroup("docker-euca-web1-0a1b2c3d".into())]
        );
        // Confirmed: deleted by id.
        r.security_group_owned = true;
        r.security_group_id = Some("sg-1".into());
        r.security_group_name = Some("docker-euca-web1-0a1b2c3d".into());
        r.security_group_intent = None;
        assert_eq!(
            plan(&r),
            vec![Step::DeleteGroup {
                id: "sg-1".into(),
                name: Some("docker-euca-web1-0a1b2c3d".into())
            }]
        );
        // "Owned" without an id (an old record's intent under a name that was not unique):
        // nothing is looked up by that name.
        let mut r = record();
        r.security_group_owned = true;
        r.security_group_name = Some("docker-euca-web1".into());
        assert!(plan(&r).is_empty());
    }

    #[test]
    fn key_pairs_confirmed_intended_or_given() {
        let mut r = record();
        r.key_pair_name = Some("users-own".into());
        assert!(plan(&r).is_empty(), "--keypair-name is the user's");
        r.key_pair_intent = Some("docker-euca-web1-0a1b2c3d".into());
        assert_eq!(
            plan(&r),
            vec![Step::DeleteKeyPair("docker-euca-web1-0a1b2c3d".into())]
        );
        let mut r = record();
        r.key_pair_owned = true;
        r.key_pair_name = Some("docker-euca-web1-0a1b2c3d".into());
        assert_eq!(
            plan(&r),
            vec![Step::DeleteKeyPair("docker-euca-web1-0a1b2c3d".into())]
        );
    }

    #[test]
    fn everything_comes_down_instances_first() {
        let mut r = record();
        r.instance_id = Some("i-1".into());
        r.security_group_owned = true;
        r.security_group_id = Some("sg-1".into());
        r.key_pair_owned = true;
        r.key_pair_name = Some("k".into());
        let steps = plan(&r);
        assert!(matches!(steps[0], Step::TerminateInstance(_)));
        assert!(matches!(steps[1], Step::DeleteGroup { .. }));
        assert!(matches!(steps[2], Step::DeleteKeyPair(_)));
    }

    #[test]
    fn a_group_is_ours_by_both_tags_or_by_the_journalled_name() {
        let me = Ownership::new("web1", "s1");
        let group = |name: &str, tags: &[(&str, &str)]| GroupInfo {
            id: "sg-1".into(),
            name: name.into(),
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        let ours = group(
            "docker-euca-web1-aa",
            &[(MACHINE_TAG, "web1"), (STORE_TAG, "s1")],
        );
        assert!(group_is_ours(&me, &ours, None));
        let untagged = group("docker-euca-web1-aa", &[]);
        assert!(group_is_ours(&me, &untagged, Some("docker-euca-web1-aa")));
        assert!(!group_is_ours(&me, &untagged, Some("docker-euca-web1-bb")));
        assert!(!group_is_ours(&me, &untagged, None));
        let other_store = group(
            "docker-euca-web1-aa",
            &[(MACHINE_TAG, "web1"), (STORE_TAG, "s2")],
        );
        assert!(!group_is_ours(
            &me,
            &other_store,
            Some("docker-euca-web1-aa")
        ));
        let legacy = group("docker-euca-web1", &[(MACHINE_TAG, "web1")]);
        assert!(group_is_ours(&me, &legacy, Some("docker-euca-web1")));
        assert!(!group_is_ours(&me, &legacy, Some("docker-euca-web1-aa")));
    }
}
