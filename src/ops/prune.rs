//! `prune`: remove what docker-euca made on one cloud that no record of this store accounts for
//! any more: a record deleted or lost with `$DOCKER_CONFIG`, `rm -f`, a create that crashed and
//! that no one followed up.
//!
//! Decided by a pure function, [`orphans`], from the records and an [`Inventory`] of the cloud;
//! then carried out (instances terminated and waited for, then groups, then key pairs), each
//! resource checked again just before it goes.
//!
//! - **Only what is proved ours.** An instance or group is ours when it carries both
//!   `docker-euca:*` tags with this store's id. With `--all-stores` the search widens to every
//!   resource with a `docker-euca:machine` tag these credentials see, whatever its store (or none:
//!   docker-euca from before store ids); that is the user's explicit word, given after the list.
//! - **A record that exists is never touched.** Nothing any record of this store names (instance
//!   id or client token; group id, name or journalled intent; key pair name or intent) is an
//!   orphan, and nothing of a machine whose record cannot be read is.
//! - **An existing record with another id.** A resource tagged with this store and machine `web1`
//!   while `web1`'s record names another instance (or group), or none, is an orphan: it is what
//!   an earlier incarnation of the name left (its record was lost and the name used again), or
//!   an attempt whose id the record never learned. It cannot be the record's own: a create
//!   journals an id in the record *before* it tags the resource, and the inventory is read
//!   *before* the records, so every tagged resource a record will ever own is already in the
//!   record when it is read.
//! - **Key pairs carry no tags**, so only their unique name speaks for them (see [`orphans`]).
//! - **The cloud is the one the flags resolve to** (`--endpoint/--region/--profile`, the
//!   environment, the default profile), since no record says which; run it once per cloud.

use std::{
    collections::{HashMap, HashSet},
    path::Path,
    time::Duration,
};

use anyhow::bail;

use crate::{
    cloud::{
        Ec2, InstanceInfo, Inventory, InventoryInstance, KEY_PAIR_PREFIX, MACHINE_TAG, STORE_TAG,
        Terminate,
    },
    credentials::CloudFlags,
    names::MachineName,
    progress::Progress,
    report::Hinted,
    store::{CloudRecord, Listed, Store},
};

/// How long an instance may take to show `terminated`.
const TERMINATE_TIMEOUT: Duration = Duration::from_secs(300);
/// How long a group may stay in use by an instance this run terminated.
const GROUP_RELEASE_TIMEOUT: Duration = Duration::from_secs(180);

#[derive(Debug, Clone, Default)]
pub struct PruneOptions {
    /// Which cloud (there is no record to take it from).
    pub cloud: CloudFlags,
    /// Widen the search to resources of every store (and of none).
    pub all_stores: bool,
    /// No progress output.
    pub quiet: bool,
}

/// Whose a resource is, by its tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub machine: String,
    /// `None`: no store tag (a docker-euca from before store ids).
    pub store: Option<String>,
}

/// Why an instance or group is an orphan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// This store has no record of the machine.
    NoRecord,
    /// This store's record of the machine names another resource of this kind (`None`: none):
    /// this one is left from an earlier incarnation or attempt (see the module docs).
    NotTheRecords { recorded: Option<String> },
    /// Another store's, or no store's (`--all-stores`).
    OtherStore,
}

/// One resource to remove.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Orphan {
    Instance {
        id: String,
        owner: Owner,
        reason: Reason,
    },
    Group {
        id: String,
        name: String,
        owner: Owner,
        reason: Reason,
    },
    /// A key pair `docker-euca-MACHINE-XXXXXXXX` (see [`orphans`] for why that is enough).
    KeyPair { name: String, machine: String },
}

impl Orphan {
    /// The instance's or group's id, or the key pair's name.
    pub fn id(&self) -> &str {
        match self {
            Orphan::Instance { id, .. } | Orphan::Group { id, .. } => id.as_str(),
            Orphan::KeyPair { name, .. } => name.as_str(),
        }
    }

    /// The tags' owner (key pairs have no tags).
    pub fn owner(&self) -> Option<&Owner> {
        match self {
            Orphan::Instance { owner, .. } | Orphan::Group { owner, .. } => Some(owner),
            Orphan::KeyPair { .. } => None,
        }
    }

    /// The removal order: instances, groups, key pairs.
    fn rank(&self) -> u8 {
        match self {
            Orphan::Instance { .. } => 0,
            Orphan::Group { .. } => 1,
            Orphan::KeyPair { .. } => 2,
        }
    }

    fn same_resource(&self, other: &Orphan) -> bool {
        self.rank() == other.rank() && self.id() == other.id()
    }
}

/// The owner a resource's tags name; `None` without a (non-empty) machine tag.
fn owner_of(tags: &[(String, String)]) -> Option<Owner> {
    let get = |k: &str| {
        tags.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    Some(Owner {
        machine: get(MACHINE_TAG)?.to_string(),
        store: get(STORE_TAG).map(str::to_string),
    })
}

/// The machine a key pair's name names, if it has exactly the shape a create gives the key
/// pairs it imports: `docker-euca-<machine>-<8 lowercase hex digits>`, `<machine>` a valid name.
pub fn key_pair_machine(name: &str) -> Option<&str> {
    let rest = name.strip_prefix(KEY_PAIR_PREFIX)?;
    let (machine, suffix) = rest.rsplit_once('-')?;
    let hex = suffix.len() == 8
        && suffix
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    (hex && MachineName::new(machine).is_ok()).then_some(machine)
}

/// What this store's records know.
struct Known<'a> {
    store_id: &'a str,
    all_stores: bool,
    /// Each machine with a record; `None`: the record cannot be read.
    machines: HashMap<&'a str, Option<&'a CloudRecord>>,
    /// Instance ids any record holds.
    instances: HashSet<&'a str>,
    /// Client tokens any record holds, with the launch index of a fleet's machine (`None`:
    /// every instance of that launch).
    tokens: HashSet<(&'a str, Option<u32>)>,
    /// Group ids, names and intents any record holds.
    groups: HashSet<&'a str>,
    /// Key pair names and intents any record holds.
    key_pairs: HashSet<&'a str>,
}

impl<'a> Known<'a> {
    fn new(records: &'a [Listed], store_id: &'a str, all_stores: bool) -> Known<'a> {
        let mut known = Known {
            store_id,
            all_stores,
            machines: HashMap::new(),
            instances: HashSet::new(),
            tokens: HashSet::new(),
            groups: HashSet::new(),
            key_pairs: HashSet::new(),
        };
        for (name, entry) in records {
            let cloud = entry.as_ref().ok().map(|r| &r.cloud);
            known.machines.insert(name.as_str(), cloud);
            let Some(c) = cloud else { continue };
            known
                .instances
                .extend(c.instance_id.iter().map(String::as_str));
            if let Some(token) = &c.client_token {
                known.tokens.insert((token.as_str(), c.launch_index));
            }
            known.groups.extend(
                c.security_group_id
                    .iter()
                    .chain(&c.security_group_name)
                    .chain(&c.security_group_intent)
                    .map(String::as_str),
            );
            if let Some(s) = entry.as_ref().ok().and_then(|r| r.swarm.as_ref()) {
                known.groups.extend(
                    s.group_id
                        .iter()
                        .chain(&s.group_name)
                        .chain(&s.group_intent)
                        .map(String::as_str),
                );
            }
            known.key_pairs.extend(
                c.key_pair_name
                    .iter()
                    .chain(&c.key_pair_intent)
                    .map(String::as_str),
            );
        }
        known
    }

    /// Whether a tagged instance or group (not held by any record) is an orphan, and whose.
    /// `recorded`: the id a record keeps for this kind of resource.
    fn judge(
        &self,
        id: &str,
        tags: &[(String, String)],
        recorded: fn(&CloudRecord) -> Option<&String>,
    ) -> Option<(Owner, Reason)> {
        let owner = owner_of(tags)?;
        if owner.store.as_deref() != Some(self.store_id) {
            return self.all_stores.then_some((owner, Reason::OtherStore));
        }
        let reason = match self.machines.get(owner.machine.as_str()).copied() {
            None => Reason::NoRecord,
            // An unreadable record may hold this very id.
            Some(None) => return None,
            Some(Some(cloud)) => match recorded(cloud) {
                Some(r) if r.as_str() == id => return None,
                r => Reason::NotTheRecords {
                    recorded: r.cloned(),
                },
            },
        };
        Some((owner, reason))
    }
}

fn recorded_instance(c: &CloudRecord) -> Option<&String> {
    c.instance_id.as_ref()
}

fn recorded_group(c: &CloudRecord) -> Option<&String> {
    c.security_group_id.as_ref()
}

/// What of `inventory` is an orphan of the store `store_id` whose records are `records` (pure),
/// in removal order: instances (not terminated), then groups, then key pairs.
///
/// Instances and groups: see the module docs. A group that an instance staying alive is in (one
/// that is not an orphan, tagged or not) is kept: it is in use.
///
/// Key pairs cannot be tagged on Eucalyptus 4.4, so one is an orphan only if all of these hold:
/// its name is exactly `docker-euca-<machine>-<8 hex>`; no record of this store holds it (name
/// or journalled intent) and `<machine>` has no unreadable record; no instance that stays alive
/// uses it (tagged or not, of any store: [`Inventory::key_users`]); and `<machine>` is the
/// machine of an orphaned instance or group *of this store* found in the same run, or
/// `--all-stores` was given.
///
/// Why that is safe without tags: the 8 random hex digits make every such name unique to the
/// one create that journalled it, on this account. When `<machine>` is the machine of one of
/// this store's orphans, that create was one of (a) this store's lost machine of that name, the
/// case prune is for; (b) this store's current machine of that name, excluded because its
/// record holds the name; (c) another store's machine of the same name, whose key pair is in
/// use by its instance, excluded because that instance stays alive. What is left of (c) is a
/// create in another store that has imported its key pair and not launched yet, or an `rm`
/// there between terminating and deleting the key pair: then that create's launch fails on the
/// missing key pair and rolls back, or that `rm` finds the key pair already gone, which it
/// accepts. No live machine ever loses its key pair to prune, and no record is left wrong.
pub fn orphans(
    records: &[Listed],
    inventory: &Inventory,
    store_id: &str,
    all_stores: bool,
) -> Vec<Orphan> {
    let known = Known::new(records, store_id, all_stores);
    let mut found = Vec::new();

    let mut terminating: HashSet<&str> = HashSet::new();
    for i in &inventory.instances {
        let token_held = i.client_token.as_deref().is_some_and(|t| {
            known.tokens.contains(&(t, None)) || known.tokens.contains(&(t, i.launch_index))
        });
        if i.state == "terminated" || known.instances.contains(i.id.as_str()) || token_held {
            continue;
        }
        if let Some((owner, reason)) = known.judge(&i.id, &i.tags, recorded_instance) {
            terminating.insert(i.id.as_str());
            found.push(Orphan::Instance {
                id: i.id.clone(),
                owner,
                reason,
            });
        }
    }
    // The instances that stay alive after this run.
    let staying: Vec<&InventoryInstance> = inventory
        .instances
        .iter()
        .chain(&inventory.key_users)
        .filter(|i| i.state != "terminated" && !terminating.contains(i.id.as_str()))
        .collect();

    for g in &inventory.groups {
        let held = known.groups.contains(g.id.as_str()) || known.groups.contains(g.name.as_str());
        let in_use = staying.iter().any(|i| i.group_ids.contains(&g.id));
        if held || in_use {
            continue;
        }
        if let Some((owner, reason)) = known.judge(&g.id, &g.tags, recorded_group) {
            found.push(Orphan::Group {
                id: g.id.clone(),
                name: g.name.clone(),
                owner,
                reason,
            });
        }
    }

    let orphaned_machines: HashSet<&str> = found
        .iter()
        .filter_map(Orphan::owner)
        .filter(|o| o.store.as_deref() == Some(store_id))
        .map(|o| o.machine.as_str())
        .collect();
    let mut key_pairs = Vec::new();
    for name in &inventory.key_pairs {
        let Some(machine) = key_pair_machine(name) else {
            continue;
        };
        let held = known.key_pairs.contains(name.as_str());
        let unreadable = matches!(known.machines.get(machine), Some(None));
        let in_use = staying
            .iter()
            .any(|i| i.key_name.as_deref() == Some(name.as_str()));
        if held || unreadable || in_use {
            continue;
        }
        if all_stores || orphaned_machines.contains(machine) {
            key_pairs.push(Orphan::KeyPair {
                name: name.clone(),
                machine: machine.to_string(),
            });
        }
    }
    found.extend(key_pairs);

    found.sort_by(|a, b| (a.rank(), a.id()).cmp(&(b.rank(), b.id())));
    found.dedup_by(|a, b| a.same_resource(b));
    found
}

/// What [`survey`] found, to show (and confirm) before [`prune`] removes it.
#[derive(Debug)]
pub struct Survey {
    pub orphans: Vec<Orphan>,
    /// This store's id (the `docker-euca:store` tag its creates put on).
    pub store_id: String,
    /// The cloud looked at.
    pub endpoint: String,
    ec2: Ec2,
    inventory: Inventory,
}

/// Lists the orphans on the cloud the flags resolve to; changes nothing (`--dry-run` is this
/// alone). The cloud is read before the records (see the module docs for why the order matters).
pub async fn survey(docker_config: &Path, opts: &PruneOptions) -> anyhow::Result<Survey> {
    let store = Store::new(docker_config);
    let store_id = store.id()?;
    let target = super::cloud_target::resolve(docker_config, &opts.cloud, None).await?;
    let ec2 = Ec2::connect(&target)?;
    let inventory = ec2.inventory().await?;
    let records = store.list()?;
    let found = orphans(&records, &inventory, &store_id, opts.all_stores);
    Ok(Survey {
        orphans: found,
        store_id,
        endpoint: target.endpoint,
        ec2,
        inventory,
    })
}

/// Why a listed orphan was left alone after all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    /// A record of this store holds it now (made while the list waited for confirmation).
    Held,
    /// It was gone already.
    Gone,
    /// Its `docker-euca:*` tags are no longer the ones listed.
    Changed,
    /// This instance, which could not be terminated, still uses it.
    InUse(String),
}

/// What [`prune`] did, resource by resource.
#[derive(Debug, Default)]
pub struct Pruned {
    pub removed: Vec<Orphan>,
    /// Docker contexts docker-euca wrote for a pruned instance (their record is gone too).
    pub contexts: Vec<String>,
    pub skipped: Vec<(Orphan, Skip)>,
    pub failed: Vec<(Orphan, anyhow::Error)>,
}

/// Removes what [`survey`] listed: instances terminated first and waited for, then groups
/// (retried while an instance this run terminated still holds them), then key pairs. The
/// records are read again first, and each instance and group is described again before it
/// goes, so nothing claimed or changed while the list waited for a "y" is removed. One failure
/// does not stop the rest; only a key pair or group that an instance which could not be
/// terminated still uses is kept back. `Err` only if nothing could be started.
pub async fn prune(
    docker_config: &Path,
    opts: &PruneOptions,
    survey: Survey,
) -> anyhow::Result<Pruned> {
    let Survey {
        orphans: listed,
        store_id,
        ec2,
        inventory,
        ..
    } = survey;
    let mut progress = Progress::new(opts.quiet);
    let mut done = Pruned::default();
    let records = Store::new(docker_config).list()?;
    let still = orphans(&records, &inventory, &store_id, opts.all_stores);
    let (mut instances, mut groups, mut key_pairs) = (Vec::new(), Vec::new(), Vec::new());
    for orphan in listed {
        if !still.iter().any(|s| s.same_resource(&orphan)) {
            done.skipped.push((orphan, Skip::Held));
            continue;
        }
        match orphan {
            Orphan::Instance { .. } => instances.push(orphan),
            Orphan::Group { .. } => groups.push(orphan),
            Orphan::KeyPair { .. } => key_pairs.push(orphan),
        }
    }

    // Instances that could not be terminated: what they use is kept.
    let mut alive: HashSet<String> = HashSet::new();
    let mut terminated_any = false;
    if !instances.is_empty() {
        let ids: Vec<String> = instances.iter().map(|o| o.id().to_string()).collect();
        let now: HashMap<String, InstanceInfo> = ec2
            .describe_instances(&ids)
            .await?
            .into_iter()
            .map(|i| (i.id.clone(), i))
            .collect();
        let mut waiting = Vec::new();
        for orphan in instances {
            let id = orphan.id().to_string();
            match now.get(&id) {
                None => {
                    done.skipped.push((orphan, Skip::Gone));
                    continue;
                }
                Some(i) if i.state == "terminated" => {
                    done.skipped.push((orphan, Skip::Gone));
                    continue;
                }
                Some(i) if owner_of(&i.tags).as_ref() != orphan.owner() => {
                    done.skipped.push((orphan, Skip::Changed));
                    continue;
                }
                Some(_) => {}
            }
            progress.stage(format!("terminating instance {id}"));
            let outcome = ec2.terminate_instance(&id).await;
            match outcome {
                Ok(Terminate::Accepted) => {
                    terminated_any = true;
                    waiting.push((orphan, true));
                }
                // Unknown a moment after it was described: whether it is gone, the wait tells.
                Ok(Terminate::Unknown) => waiting.push((orphan, false)),
                Err(e) => {
                    progress.fail_stage();
                    alive.insert(id);
                    done.failed.push((orphan, e.into()));
                }
            }
        }
        if !waiting.is_empty() {
            progress.stage(format!(
                "waiting for {} instance(s) to terminate",
                waiting.len()
            ));
        }
        for (orphan, accepted) in waiting {
            let outcome = ec2
                .wait_until_terminated(orphan.id(), TERMINATE_TIMEOUT)
                .await;
            match outcome {
                Ok(true) => done.removed.push(orphan),
                Ok(false) if accepted => done.removed.push(orphan),
                Ok(false) => done.skipped.push((orphan, Skip::Gone)),
                Err(e) => {
                    alive.insert(orphan.id().to_string());
                    done.failed.push((orphan, e.into()));
                }
            }
        }
        progress.finish_stage();
    }
    for orphan in groups {
        let id = orphan.id().to_string();
        if let Some(user) = survivor_using(&inventory, &alive, |i| i.group_ids.contains(&id)) {
            done.skipped.push((orphan, Skip::InUse(user)));
            continue;
        }
        let outcome = delete_group(&ec2, &orphan, terminated_any, &mut progress).await;
        match outcome {
            Ok(None) => {
                progress.finish_stage();
                done.removed.push(orphan);
            }
            Ok(Some(skip)) => done.skipped.push((orphan, skip)),
            Err(e) => {
                progress.fail_stage();
                done.failed.push((orphan, e));
            }
        }
    }

    for orphan in key_pairs {
        let name = orphan.id().to_string();
        if let Some(user) = survivor_using(&inventory, &alive, |i| {
            i.key_name.as_deref() == Some(name.as_str())
        }) {
            done.skipped.push((orphan, Skip::InUse(user)));
            continue;
        }
        progress.stage(format!("deleting key pair {name}"));
        let outcome = ec2.delete_key_pair(&name).await;
        match outcome {
            Ok(()) => done.removed.push(orphan),
            Err(e) => {
                progress.fail_stage();
                done.failed.push((orphan, e.into()));
            }
        }
    }
    progress.finish_stage();
    done.contexts = remove_contexts_of(docker_config, &done.removed)?;
    Ok(done)
}

/// Removes the docker contexts docker-euca wrote for instances that were pruned: their
/// description names the instance (`docker-euca: i-… on ENDPOINT`), and no record holds them.
fn remove_contexts_of(docker_config: &Path, removed: &[Orphan]) -> anyhow::Result<Vec<String>> {
    let ids: Vec<&str> = removed
        .iter()
        .filter(|o| matches!(o, Orphan::Instance { .. }))
        .map(Orphan::id)
        .collect();
    let held: HashSet<String> = Store::new(docker_config)
        .list()?
        .into_iter()
        .filter_map(|(_, r)| r.ok().map(|r| r.context_name()))
        .collect();
    let mut gone = Vec::new();
    for meta in crate::context::ContextStore::new(docker_config).list()? {
        let names_pruned = ids.iter().any(|id| {
            meta.description.starts_with(&format!(
                "{}{id} on ",
                super::teardown::CONTEXT_DESCRIPTION_PREFIX_SPACED
            ))
        });
        if names_pruned && !held.contains(&meta.name) {
            super::teardown::remove_context(docker_config, Some(&meta.name))?;
            gone.push(meta.name.clone());
        }
    }
    Ok(gone)
}

/// The id of an instance that could not be terminated (`alive`) and that `uses` what is about
/// to go.
fn survivor_using(
    inventory: &Inventory,
    alive: &HashSet<String>,
    uses: impl Fn(&InventoryInstance) -> bool,
) -> Option<String> {
    inventory
        .instances
        .iter()
        .chain(&inventory.key_users)
        .find(|i| alive.contains(&i.id) && uses(i))
        .map(|i| i.id.clone())
}

/// Deletes an orphaned group if it still carries the tags it was listed with; `Some(skip)` if
/// it was left alone. `DependencyViolation` is waited out only when this run terminated an
/// instance (which may still hold it); otherwise something else uses the group.
async fn delete_group(
    ec2: &Ec2,
    orphan: &Orphan,
    retry: bool,
    progress: &mut Progress,
) -> anyhow::Result<Option<Skip>> {
    let id = orphan.id();
    let Some(group) = ec2.security_group(id).await? else {
        return Ok(Some(Skip::Gone));
    };
    if owner_of(&group.tags).as_ref() != orphan.owner() {
        return Ok(Some(Skip::Changed));
    }
    progress.stage(format!("deleting security group {id} ({})", group.name));
    let deadline = tokio::time::Instant::now() + GROUP_RELEASE_TIMEOUT;
    loop {
        match ec2.delete_security_group(id).await {
            Ok(()) => return Ok(None),
            Err(e) if matches!(e.code(), Some("DependencyViolation" | "InvalidGroup.InUse")) => {
                if retry && tokio::time::Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    continue;
                }
                bail!(Hinted::new(
                    format!("security group {id} is still in use ({e})"),
                    "an instance outside docker-euca's tags may be in it: remove that instance \
                     (or take it out of the group), then run prune again",
                ));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::{
        cloud::GroupInfo,
        store::{MachineRecord, StoreError},
    };

    const ME: &str = "store-me";
    const THEM: &str = "store-them";

    fn tags(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn ours(machine: &str, store: &str) -> Vec<(String, String)> {
        tags(&[(MACHINE_TAG, machine), (STORE_TAG, store)])
    }

    fn instance(id: &str, state: &str, tags: Vec<(String, String)>) -> InventoryInstance {
        InventoryInstance {
            id: id.into(),
            state: state.into(),
            tags,
            ..Default::default()
        }
    }

    fn group(id: &str, name: &str, tags: Vec<(String, String)>) -> GroupInfo {
        GroupInfo {
            id: id.into(),
            name: name.into(),
            tags,
        }
    }

    fn record(name: &str, change: impl FnOnce(&mut CloudRecord)) -> Listed {
        let mut r = MachineRecord::new(MachineName::new(name).unwrap());
        change(&mut r.cloud);
        (MachineName::new(name).unwrap(), Ok(r))
    }

    fn unreadable(name: &str) -> Listed {
        (
            MachineName::new(name).unwrap(),
            Err(StoreError::NewerSchema {
                path: PathBuf::from("machine.json"),
                found: 99,
            }),
        )
    }

    fn ids(found: &[Orphan]) -> Vec<&str> {
        found.iter().map(Orphan::id).collect()
    }

    #[test]
    fn a_fleet_machine_whose_record_is_gone_is_an_orphan_beside_its_fleets_survivors() {
        // web-1 (launch index 0) keeps its record, and the fleet's client token; web-2's
        // record was forgotten (`rm -f`) while its instance still runs.
        let records = [record("web-1", |c| {
            c.instance_id = Some("i-1".into());
            c.client_token = Some("tok".into());
            c.launch_index = Some(0);
        })];
        let launched = |id: &str, name: &str, index| InventoryInstance {
            client_token: Some("tok".into()),
            launch_index: Some(index),
            ..instance(id, "running", ours(name, ME))
        };
        let inv = Inventory {
            instances: vec![launched("i-1", "web-1", 0), launched("i-2", "web-2", 1)],
            ..Default::default()
        };
        assert_eq!(ids(&orphans(&records, &inv, ME, false)), vec!["i-2"]);
        // A single machine's token (no launch index) holds whatever that launch made.
        let single = [record("web-1", |c| c.client_token = Some("tok".into()))];
        assert!(orphans(&single, &inv, ME, false).is_empty());
    }

    #[test]
    fn a_record_that_matches_keeps_its_instance_and_group() {
        let records = [record("web1", |c| {
            c.instance_id = Some("i-1".into());
            c.security_group_id = Some("sg-1".into());
        })];
        let inv = Inventory {
            instances: vec![instance("i-1", "running", ours("web1", ME))],
            groups: vec![group("sg-1", "docker-euca-web1-0a1b2c3d", ours("web1", ME))],
            ..Default::default()
        };
        assert!(orphans(&records, &inv, ME, false).is_empty());
        assert!(orphans(&records, &inv, ME, true).is_empty());
    }

    #[test]
    fn a_record_gone_leaves_orphans() {
        let inv = Inventory {
            instances: vec![instance("i-1", "running", ours("web1", ME))],
            groups: vec![group("sg-1", "docker-euca-web1-0a1b2c3d", ours("web1", ME))],
            ..Default::default()
        };
        let found = orphans(&[], &inv, ME, false);
        let owner = Owner {
            machine: "web1".into(),
            store: Some(ME.into()),
        };
        assert_eq!(
            found,
            vec![
                Orphan::Instance {
                    id: "i-1".into(),
                    owner: owner.clone(),
                    reason: Reason::NoRecord
                },
                Orphan::Group {
                    id: "sg-1".into(),
                    name: "docker-euca-web1-0a1b2c3d".into(),
                    owner,
                    reason: Reason::NoRecord
                },
            ]
        );
    }

    #[test]
    fn a_record_with_another_id_leaves_the_earlier_attempt_an_orphan() {
        let records = [record("web1", |c| {
            c.instance_id = Some("i-2".into());
            c.security_group_id = Some("sg-2".into());
        })];
        let inv = Inventory {
            instances: vec![
                instance("i-1", "running", ours("web1", ME)),
                instance("i-2", "running", ours("web1", ME)),
            ],
            groups: vec![
                group("sg-1", "docker-euca-web1-0a1b2c3d", ours("web1", ME)),
                group("sg-2", "docker-euca-web1-1b2c3d4e", ours("web1", ME)),
            ],
            ..Default::default()
        };
        let found = orphans(&records, &inv, ME, false);
        assert_eq!(ids(&found), ["i-1", "sg-1"]);
        assert!(matches!(
            &found[0],
            Orphan::Instance { reason: Reason::NotTheRecords { recorded: Some(r) }, .. } if r == "i-2"
        ));
        // A record with no instance at all (a create that stopped before launching, or an rm
        // that proved it gone) does not own a live tagged one either.
        let records = [record("web1", |_| {})];
        let found = orphans(&records, &inv, ME, false);
        assert_eq!(ids(&found), ["i-1", "i-2", "sg-1", "sg-2"]);
        assert!(matches!(
            &found[0],
            Orphan::Instance {
                reason: Reason::NotTheRecords { recorded: None },
                ..
            }
        ));
    }

    #[test]
    fn anything_any_record_names_is_kept() {
        // The group is another machine's `--security-group`, the instance was found again by
        // its client token, the group by its journalled intent.
        let records = [
            record("db1", |c| {
                c.security_group_id = Some("sg-1".into());
                c.client_token = Some("tok".into());
            }),
            record("web2", |c| {
                c.security_group_intent = Some("docker-euca-web2-0a1b2c3d".into());
            }),
        ];
        let mut launched = instance("i-1", "running", ours("web1", ME));
        launched.client_token = Some("tok".into());
        let inv = Inventory {
            instances: vec![launched],
            groups: vec![
                group("sg-1", "docker-euca-web1-0a1b2c3d", ours("web1", ME)),
                group("sg-9", "docker-euca-web2-0a1b2c3d", ours("web2", ME)),
            ],
            ..Default::default()
        };
        assert!(orphans(&records, &inv, ME, false).is_empty());
        assert!(orphans(&records, &inv, ME, true).is_empty());
    }

    #[test]
    fn an_unreadable_record_keeps_everything_of_its_machine() {
        let inv = Inventory {
            instances: vec![instance("i-1", "running", ours("web1", ME))],
            groups: vec![group("sg-1", "docker-euca-web1-0a1b2c3d", ours("web1", ME))],
            key_pairs: vec!["docker-euca-web1-0a1b2c3d".into()],
            ..Default::default()
        };
        for all_stores in [false, true] {
            assert!(orphans(&[unreadable("web1")], &inv, ME, all_stores).is_empty());
        }
    }

    #[test]
    fn another_stores_resources_only_with_all_stores() {
        let inv = Inventory {
            instances: vec![instance("i-1", "running", ours("web1", THEM))],
            groups: vec![group(
                "sg-1",
                "docker-euca-web1-0a1b2c3d",
                ours("web1", THEM),
            )],
            ..Default::default()
        };
        assert!(orphans(&[], &inv, ME, false).is_empty());
        let found = orphans(&[], &inv, ME, true);
        assert_eq!(ids(&found), ["i-1", "sg-1"]);
        assert!(matches!(
            &found[0],
            Orphan::Instance { reason: Reason::OtherStore, owner, .. }
                if owner.store.as_deref() == Some(THEM)
        ));
        // Even when this store has a machine of the same name.
        let records = [record("web1", |c| c.instance_id = Some("i-5".into()))];
        assert!(orphans(&records, &inv, ME, false).is_empty());
    }

    #[test]
    fn untagged_and_half_tagged() {
        let inv = Inventory {
            instances: vec![
                instance("i-untagged", "running", vec![]),
                instance("i-named", "running", tags(&[("Name", "web1")])),
                instance("i-store-only", "running", tags(&[(STORE_TAG, ME)])),
                instance("i-legacy", "running", tags(&[(MACHINE_TAG, "web1")])),
                instance("i-empty", "running", ours("", ME)),
            ],
            groups: vec![
                group("sg-untagged", "docker-euca-web1-0a1b2c3d", vec![]),
                group(
                    "sg-legacy",
                    "docker-euca-web1",
                    tags(&[(MACHINE_TAG, "web1")]),
                ),
            ],
            ..Default::default()
        };
        assert!(orphans(&[], &inv, ME, false).is_empty());
        // A machine tag without a store tag is docker-euca's of unknown store: --all-stores.
        let found = orphans(&[], &inv, ME, true);
        assert_eq!(ids(&found), ["i-legacy", "sg-legacy"]);
        assert_eq!(found[0].owner().unwrap().store, None);
        // ... unless a record of this store holds it.
        let records = [record("web1", |c| c.instance_id = Some("i-legacy".into()))];
        assert_eq!(ids(&orphans(&records, &inv, ME, true)), ["sg-legacy"]);
    }

    #[test]
    fn terminated_instances_are_nothing_to_prune() {
        let inv = Inventory {
            instances: vec![
                instance("i-1", "terminated", ours("web1", ME)),
                instance("i-2", "shutting-down", ours("web1", ME)),
            ],
            ..Default::default()
        };
        assert_eq!(ids(&orphans(&[], &inv, ME, false)), ["i-2"]);
    }

    #[test]
    fn a_group_a_staying_instance_is_in_is_kept() {
        let mut kept = instance("i-9", "running", ours("db1", ME));
        kept.group_ids = vec!["sg-1".into()];
        let mut orphan = instance("i-1", "running", ours("web1", ME));
        orphan.group_ids = vec!["sg-2".into()];
        let mut outsider = instance("i-x", "running", vec![]);
        outsider.group_ids = vec!["sg-3".into()];
        let inv = Inventory {
            instances: vec![kept, orphan],
            groups: vec![
                group("sg-1", "docker-euca-web1-0a1b2c3d", ours("web1", ME)),
                group("sg-2", "docker-euca-web1-1b2c3d4e", ours("web1", ME)),
                group("sg-3", "docker-euca-web1-2c3d4e5f", ours("web1", ME)),
            ],
            key_users: vec![outsider],
            ..Default::default()
        };
        let records = [record("db1", |c| c.instance_id = Some("i-9".into()))];
        // sg-2 goes with its own orphan instance; sg-1 and sg-3 are in use.
        assert_eq!(ids(&orphans(&records, &inv, ME, false)), ["i-1", "sg-2"]);
    }

    #[test]
    fn key_pair_names_have_one_exact_shape() {
        assert_eq!(key_pair_machine("docker-euca-web1-0a1b2c3d"), Some("web1"));
        assert_eq!(
            key_pair_machine("docker-euca-my-web.2-0a1b2c3d"),
            Some("my-web.2")
        );
        for not in [
            "docker-euca-web1",
            "docker-euca-web1-0a1b2c3",
            "docker-euca-web1-0a1b2c3d4",
            "docker-euca-web1-0A1B2C3D",
            "docker-euca-web1-0a1b2c3g",
            "docker-euca--0a1b2c3d",
            "docker-euca-w-0a1b2c3d",
            "docker-euca-0a1b2c3d",
            "my-docker-euca-web1-0a1b2c3d",
            "users-own",
        ] {
            assert_eq!(key_pair_machine(not), None, "{not}");
        }
    }

    #[test]
    fn key_pairs_go_only_with_an_orphan_of_this_store_or_all_stores() {
        let mut orphan = instance("i-1", "running", ours("web1", ME));
        orphan.key_name = Some("docker-euca-web1-0a1b2c3d".into());
        let inv = Inventory {
            instances: vec![orphan],
            key_pairs: vec![
                // The orphan's own: goes with it.
                "docker-euca-web1-0a1b2c3d".into(),
                // An earlier attempt's of the same machine, unused: goes too.
                "docker-euca-web1-1b2c3d4e".into(),
                // A machine with no orphan here: only with --all-stores.
                "docker-euca-web2-0a1b2c3d".into(),
                // Not our shape: never.
                "docker-euca-web1".into(),
                "docker-euca-web1-XYZ".into(),
            ],
            ..Default::default()
        };
        assert_eq!(
            ids(&orphans(&[], &inv, ME, false)),
            [
                "i-1",
                "docker-euca-web1-0a1b2c3d",
                "docker-euca-web1-1b2c3d4e"
            ]
        );
        assert_eq!(
            ids(&orphans(&[], &inv, ME, true)),
            [
                "i-1",
                "docker-euca-web1-0a1b2c3d",
                "docker-euca-web1-1b2c3d4e",
                "docker-euca-web2-0a1b2c3d"
            ]
        );
        assert!(matches!(
            &orphans(&[], &inv, ME, false)[1],
            Orphan::KeyPair { machine, .. } if machine == "web1"
        ));
    }

    #[test]
    fn key_pairs_held_or_in_use_are_kept() {
        let mut theirs = instance("i-7", "running", ours("web1", THEM));
        theirs.key_name = Some("docker-euca-web1-2c3d4e5f".into());
        let mut untagged = instance("i-8", "running", vec![]);
        untagged.key_name = Some("docker-euca-web1-3d4e5f6a".into());
        let mut gone = instance("i-6", "terminated", vec![]);
        gone.key_name = Some("docker-euca-web1-4e5f6a7b".into());
        let inv = Inventory {
            instances: vec![instance("i-1", "running", ours("web1", ME)), theirs],
            key_pairs: vec![
                "docker-euca-web1-0a1b2c3d".into(),
                "docker-euca-web1-1b2c3d4e".into(),
                "docker-euca-web1-2c3d4e5f".into(),
                "docker-euca-web1-3d4e5f6a".into(),
                "docker-euca-web1-4e5f6a7b".into(),
            ],
            key_users: vec![untagged, gone],
            ..Default::default()
        };
        // web1's record (another incarnation) holds one name as confirmed, one as an intent.
        let records = [record("web1", |c| {
            c.instance_id = Some("i-2".into());
            c.key_pair_name = Some("docker-euca-web1-0a1b2c3d".into());
            c.key_pair_intent = Some("docker-euca-web1-1b2c3d4e".into());
        })];
        // Another store's live instance uses one, an untagged live one another; the one only a
        // terminated instance used goes.
        assert_eq!(
            ids(&orphans(&records, &inv, ME, false)),
            ["i-1", "docker-euca-web1-4e5f6a7b"]
        );
        // With --all-stores the other store's instance goes, and so may its key pair.
        assert_eq!(
            ids(&orphans(&records, &inv, ME, true)),
            [
                "i-1",
                "i-7",
                "docker-euca-web1-2c3d4e5f",
                "docker-euca-web1-4e5f6a7b"
            ]
        );
    }

    #[test]
    fn another_stores_orphan_does_not_free_key_pairs_without_all_stores() {
        let inv = Inventory {
            instances: vec![instance("i-1", "running", ours("web1", THEM))],
            key_pairs: vec!["docker-euca-web1-0a1b2c3d".into()],
            ..Default::default()
        };
        assert!(orphans(&[], &inv, ME, false).is_empty());
    }

    #[test]
    fn orphans_come_once_in_removal_order() {
        let i = instance("i-2", "running", ours("web1", ME));
        let inv = Inventory {
            instances: vec![i.clone(), instance("i-1", "running", ours("web1", ME)), i],
            groups: vec![group("sg-1", "docker-euca-web1-0a1b2c3d", ours("web1", ME))],
            key_pairs: vec!["docker-euca-web1-0a1b2c3d".into()],
            ..Default::default()
        };
        assert_eq!(
            ids(&orphans(&[], &inv, ME, false)),
            ["i-1", "i-2", "sg-1", "docker-euca-web1-0a1b2c3d"]
        );
    }
}
