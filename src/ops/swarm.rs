//! Docker Swarm clusters across machines: the cluster's security group (made before the launch,
//! so the members have it from their first boot), forming or joining the cluster over the
//! engine API once the members are verified, the cluster's docker context, a member's
//! departure (`rm`), and the list of clusters (`swarm ls`).
//!
//! - **Membership lives in the member records** (`swarm`: cluster, role, node id, the cluster
//!   group); no record of its own. The join tokens are asked of a manager each time they are
//!   needed and never written.
//! - **One security group per cluster**, tagged `docker-euca:machine=swarm:CLUSTER` (no machine
//!   name has a colon) and this store's id, attached to every member, whose rules admit the
//!   members alone (group pairs, never a CIDR): 2377/tcp, 7946/tcp+udp, 4789/udp, and ESP in a
//!   VPC. It goes with the last record that names it, like a fleet's group.
//! - **The context `CLUSTER`** is a manager's endpoint and client certificate under the
//!   cluster's name; when that manager goes it moves to another.

use std::{path::Path, time::Duration, time::Instant};

use anyhow::{Context, bail};

use crate::{
    cloud::{Ec2, Ownership, STORE_TAG},
    context::{ContextMeta, ContextStore},
    engine::swarm::{JoinTokens, Member},
    names::MachineName,
    progress::Progress,
    report::Hinted,
    store::{MachineRecord, MachineState, Store, SwarmRecord},
};

/// How long a daemon may take to answer a swarm call, and the nodes to show Ready.
const SWARM_TIMEOUT: Duration = Duration::from_secs(60);

/// The rules of a cluster's group: from the members, to each other.
const EDGE_RULES: &[(Option<u16>, &str)] = &[
    (Some(2377), "tcp"),
    (Some(7946), "tcp"),
    (Some(7946), "udp"),
    (Some(4789), "udp"),
];
/// ESP (protocol 50, encrypted overlays): a VPC group takes it; an EDGE cloud refuses numbered
/// protocols by default and admits everything between members of one group anyway.
const ESP: (Option<u16>, &str) = (None, "50");

/// What `create --swarm` asks for.
#[derive(Debug, Clone)]
pub struct SwarmPlan {
    pub cluster: MachineName,
    /// Managers among the new machines of a new cluster (the first K; default 1).
    pub managers: Option<usize>,
    /// The role of new machines joining an existing cluster (default: worker).
    pub join_as_manager: bool,
}

/// The `docker-euca:machine` tag of a cluster's group.
pub fn group_tag(cluster: &str) -> String {
    format!("swarm:{cluster}")
}

/// The records of the cluster's members in this store.
/// The records of the cluster's members in this store (not those that left an ended cluster:
/// their records keep only its group, to delete with the last of them).
pub fn members(store: &Store, cluster: &str) -> anyhow::Result<Vec<MachineRecord>> {
    Ok(store
        .list()?
        .into_iter()
        .filter_map(|(_, r)| r.ok())
        .filter(|r| {
            r.swarm
                .as_ref()
                .is_some_and(|s| s.cluster == cluster && s.role != LEFT)
        })
        .collect())
}

/// The role a record keeps once its cluster ended.
const LEFT: &str = "left";

/// Before anything is made: a new cluster has as many machines as managers asked for and a
/// name no machine or context has; an existing cluster has a manager that answers (and takes
/// no `--swarm-managers`).
pub async fn check_plan(
    docker_config: &Path,
    store: &Store,
    plan: &SwarmPlan,
    names: &[MachineName],
) -> anyhow::Result<()> {
    let cluster = plan.cluster.as_str();
    let existing = members(store, cluster)?;
    if !existing.is_empty() {
        if plan.managers.is_some() {
            bail!(Hinted::new(
                format!("swarm {cluster} exists: --swarm-managers is for a new cluster"),
                "add managers to it with --swarm-role manager",
            ));
        }
        if find_manager(docker_config, &existing).await.is_none() {
            bail!(Hinted::new(
                format!("no manager of swarm {cluster} answers"),
                "start one (`docker euca start NAME`); `docker euca swarm ls` lists the members",
            ));
        }
        return Ok(());
    }
    let managers = plan.managers.unwrap_or(1);
    if managers > names.len() {
        bail!(Hinted::new(
            format!(
                "--swarm-managers {managers} asks for more managers than the {} machine(s) made",
                names.len()
            ),
            "make at least as many machines (--count N), or ask for fewer managers",
        ));
    }
    let taken_by_machine =
        names.iter().any(|n| n.as_str() == cluster) || store.exists(&plan.cluster);
    if taken_by_machine || ContextStore::new(docker_config).exists(cluster) {
        bail!(Hinted::new(
            format!("a docker context named {cluster:?} already exists, or a machine will have it"),
            "the cluster's context takes its name: pick a cluster name that is no machine's or context's",
        ));
    }
    Ok(())
}

/// The cluster's group for the new machines `names`: an existing cluster's, or a new one
/// (journalled in every new record before the call, tagged, its member-only rules set).
pub async fn cluster_group(
    ec2: &Ec2,
    store: &Store,
    plan: &SwarmPlan,
    names: &[MachineName],
    vpc: Option<&str>,
    progress: &mut Progress,
) -> anyhow::Result<String> {
    let cluster = plan.cluster.as_str();
    let existing = members(store, cluster)?
        .into_iter()
        .filter(|r| !names.contains(&r.name))
        .find_map(|r| {
            r.swarm
                .and_then(|s| s.group_id.map(|id| (id, s.group_name, s.group_owned)))
        });
    if let Some((id, name, owned)) = existing {
        progress.stage(format!("joining swarm {cluster}: its security group {id}"));
        ec2.security_group(&id).await?.ok_or_else(|| {
            Hinted::new(
                format!("the security group {id} of swarm {cluster} no longer exists"),
                "remove the cluster's machines (`docker euca rm`) and make the cluster again",
            )
        })?;
        return journal_membership(store, names, plan, |s| {
            s.group_id = Some(id.clone());
            s.group_name = name.clone();
            // The cluster's group, made by this store: it goes with whichever member is last.
            s.group_owned = owned;
        })
        .map(|()| id.clone());
    }
    let group = format!(
        "docker-euca-{}-{:08x}",
        group_tag(cluster).replace(':', "-"),
        rand::random::<u32>()
    );
    progress.stage(format!("creating swarm {cluster}'s security group {group}"));
    journal_membership(store, names, plan, |s| s.group_intent = Some(group.clone()))?;
    crate::crash::point("swarm-group-intent");
    let description = format!("docker-euca swarm {cluster}: its members only");
    let owner = Ownership::new(group_tag(cluster), store.id()?);
    let id = match ec2
        .create_security_group(&group, &description, vpc, &owner.tags())
        .await
    {
        Ok(id) => id,
        Err(e) if e.code() == Some("InvalidGroup.Duplicate") => ec2
            .find_security_group(&group)
            .await?
            .map(|g| g.id)
            .ok_or(e)?,
        // A clear refusal made nothing: there is no group to settle in the rollback.
        Err(e) if e.is_refusal() => {
            journal_membership(store, names, plan, |s| s.group_intent = None)?;
            return Err(e.into());
        }
        Err(e) => return Err(e.into()),
    };
    journal_membership(store, names, plan, |s| {
        s.group_id = Some(id.clone());
        s.group_name = Some(group.clone());
        s.group_owned = true;
        s.group_intent = None;
    })?;
    ec2.create_tags(std::slice::from_ref(&id), &owner.tags())
        .await?;
    let mut rules = EDGE_RULES.to_vec();
    if vpc.is_some() {
        rules.push(ESP);
    }
    ec2.authorize_from_itself(&id, &rules).await?;
    Ok(id)
}

/// Writes the membership into each new record (the role as planned: the first K of a new
/// cluster are managers).
fn journal_membership(
    store: &Store,
    names: &[MachineName],
    plan: &SwarmPlan,
    entry: impl Fn(&mut SwarmRecord),
) -> anyhow::Result<()> {
    let new_cluster = members(store, plan.cluster.as_str())?
        .iter()
        .all(|r| names.contains(&r.name));
    for (n, name) in names.iter().enumerate() {
        let manager = if new_cluster {
            n < plan.managers.unwrap_or(1)
        } else {
            plan.join_as_manager
        };
        store.update(name, |r| {
            let s = r.swarm.get_or_insert_with(|| SwarmRecord {
                cluster: plan.cluster.to_string(),
                role: if manager { "manager" } else { "worker" }.into(),
                ..Default::default()
            });
            entry(s);
        })?;
    }
    Ok(())
}

/// A member as the swarm calls need it.
struct Reached {
    name: MachineName,
    member: Member,
    /// Its private address: what it advertises (stable across stop/start).
    advertise: String,
}

async fn reach(docker_config: &Path, record: &MachineRecord) -> anyhow::Result<Reached> {
    let url = record
        .engine
        .url
        .clone()
        .with_context(|| format!("{} has no daemon endpoint yet", record.name))?;
    let tls = ContextStore::new(docker_config).tls_dir(&record.context_name());
    let member = Member::connect(&url, &tls, SWARM_TIMEOUT).await?;
    let advertise = record
        .cloud
        .private_ip
        .clone()
        .or_else(|| record.cloud.public_ip.clone())
        .with_context(|| format!("{} has no address", record.name))?;
    Ok(Reached {
        name: record.name.clone(),
        member,
        advertise,
    })
}

/// A manager of the cluster among `records` that answers as one.
async fn find_manager(docker_config: &Path, records: &[MachineRecord]) -> Option<Reached> {
    for r in records.iter().filter(|r| r.state == MachineState::Ready) {
        let Ok(reached) = reach(docker_config, r).await else {
            continue;
        };
        if reached
            .member
            .local_state()
            .await
            .is_ok_and(|s| s.active() && s.manager)
        {
            return Some(reached);
        }
    }
    None
}

/// How the new members' part of the cluster went: each its role, or why it did not join.
pub struct Formed {
    pub results: Vec<(MachineName, anyhow::Result<String>)>,
    /// From "all verified" to "all nodes Ready".
    pub took: Duration,
}

/// Forms the cluster with the new (verified) machines `names`, or joins them to it: the
/// first manager inits (a new cluster), the other managers join one at a time, the workers
/// all at once; then every new node is waited for to be Ready on a manager, and the cluster's
/// context is written if it is missing.
pub async fn form(
    docker_config: &Path,
    store: &Store,
    plan: &SwarmPlan,
    names: &[MachineName],
    progress: &mut Progress,
) -> Formed {
    let started = Instant::now();
    let mut results: Vec<(MachineName, anyhow::Result<String>)> = Vec::new();
    match form_steps(docker_config, store, plan, names, progress, &mut results).await {
        Ok(()) => {}
        Err(e) => {
            let line = format!("{e:#}");
            for name in names {
                if !results.iter().any(|(n, _)| n == name) {
                    results.push((name.clone(), Err(anyhow::anyhow!("{line}"))));
                }
            }
        }
    }
    results.sort_by_key(|(n, _)| names.iter().position(|m| m == n));
    Formed {
        results,
        took: started.elapsed(),
    }
}

async fn form_steps(
    docker_config: &Path,
    store: &Store,
    plan: &SwarmPlan,
    names: &[MachineName],
    progress: &mut Progress,
    results: &mut Vec<(MachineName, anyhow::Result<String>)>,
) -> anyhow::Result<()> {
    let cluster = plan.cluster.as_str();
    let all = members(store, cluster)?;
    let (new, old): (Vec<MachineRecord>, Vec<MachineRecord>) =
        all.into_iter().partition(|r| names.contains(&r.name));
    let mut reached = Vec::new();
    for r in &new {
        reached.push(reach(docker_config, r).await?);
    }
    let role_of = |r: &Reached| {
        new.iter()
            .find(|m| m.name == r.name)
            .and_then(|m| m.swarm.as_ref())
            .map(|s| s.role.clone())
            .unwrap_or_else(|| "worker".into())
    };
    let (manager, joining): (Reached, Vec<Reached>) = if old.is_empty() {
        progress.stage(format!("starting swarm {cluster} on {}", reached[0].name));
        let first = reached.remove(0);
        let id = init_once(&first).await?;
        record_node(store, &first.name, &id, "manager")?;
        results.push((first.name.clone(), Ok("manager".into())));
        (first, reached)
    } else {
        progress.stage(format!("finding a manager of swarm {cluster}"));
        let manager = find_manager(docker_config, &old).await.ok_or_else(|| {
            Hinted::new(
                format!("no manager of swarm {cluster} answers"),
                "start one (`docker euca start NAME`); `docker euca swarm ls` lists the members",
            )
        })?;
        (manager, reached)
    };
    let tokens = manager.member.join_tokens().await?;
    let (managers, workers): (Vec<Reached>, Vec<Reached>) =
        joining.into_iter().partition(|r| role_of(r) == "manager");
    let remote = vec![manager.advertise.clone()];
    for m in &managers {
        progress.stage(format!(
            "joining {} to swarm {cluster} as a manager",
            m.name
        ));
        let joined = join_once(m, &remote, &tokens, true).await;
        results.push((
            m.name.clone(),
            joined
                .and_then(|id| record_node(store, &m.name, &id, "manager"))
                .map(|()| "manager".into()),
        ));
    }
    if !workers.is_empty() {
        progress.stage(format!(
            "joining {} worker{} to swarm {cluster}",
            workers.len(),
            if workers.len() == 1 { "" } else { "s" }
        ));
        let joins = workers
            .iter()
            .map(|w| join_once(w, &remote, &tokens, false));
        for (w, joined) in workers
            .iter()
            .zip(futures_util::future::join_all(joins).await)
        {
            results.push((
                w.name.clone(),
                joined
                    .and_then(|id| record_node(store, &w.name, &id, "worker"))
                    .map(|()| "worker".into()),
            ));
        }
    }
    progress.stage(format!(
        "waiting for the nodes of swarm {cluster} to be Ready"
    ));
    let ids: Vec<String> = results
        .iter()
        .filter(|(_, r)| r.is_ok())
        .filter_map(|(n, _)| store.load(n).ok()?.swarm?.node_id)
        .collect();
    manager.member.wait_ready(&ids, SWARM_TIMEOUT).await?;
    ensure_context(docker_config, store, cluster, &manager.name)?;
    progress.finish_stage();
    Ok(())
}

/// `swarm init`, unless the daemon is already the manager of a cluster (a second run).
async fn init_once(first: &Reached) -> anyhow::Result<String> {
    let state = first.member.local_state().await?;
    if state.active() {
        if let (true, Some(id)) = (state.manager, state.node_id) {
            return Ok(id);
        }
        bail!(Hinted::new(
            format!("{} is already in a swarm, as a worker", first.name),
            "`docker --context NAME swarm leave` first",
        ));
    }
    Ok(first.member.init(&first.advertise).await?)
}

/// `swarm join`, unless the daemon already is in the swarm; returns its node id.
async fn join_once(
    m: &Reached,
    managers: &[String],
    tokens: &JoinTokens,
    as_manager: bool,
) -> anyhow::Result<String> {
    if !m.member.local_state().await?.active() {
        let token = if as_manager {
            &tokens.manager
        } else {
            &tokens.worker
        };
        m.member.join(&m.advertise, managers, token).await?;
    }
    m.member
        .local_state()
        .await?
        .node_id
        .with_context(|| format!("{} joined but shows no node id", m.name))
}

/// The node a machine became and the role it joined as (the planned one can change: when the
/// first planned manager failed, the first machine ready inits the cluster).
fn record_node(store: &Store, name: &MachineName, id: &str, role: &str) -> anyhow::Result<()> {
    store.update(name, |r| {
        if let Some(s) = r.swarm.as_mut() {
            s.node_id = Some(id.to_string());
            s.role = role.to_string();
        }
    })?;
    Ok(())
}

/// The cluster's context, if missing, points at `manager`.
fn ensure_context(
    docker_config: &Path,
    store: &Store,
    cluster: &str,
    manager: &MachineName,
) -> anyhow::Result<()> {
    if ContextStore::new(docker_config).exists(cluster) {
        return Ok(());
    }
    point_context(docker_config, &store.load(manager)?, cluster)
}

/// Writes the cluster's context as the manager's endpoint and client certificate.
fn point_context(
    docker_config: &Path,
    manager: &MachineRecord,
    cluster: &str,
) -> anyhow::Result<()> {
    let contexts = ContextStore::new(docker_config);
    let tls = contexts
        .read_tls(&manager.context_name())?
        .with_context(|| format!("{}'s context has no TLS files", manager.name))?;
    let url = manager.engine.url.clone().unwrap_or_default();
    let description = format!(
        "{}swarm {cluster} through {}",
        super::teardown::CONTEXT_DESCRIPTION_PREFIX_SPACED,
        manager.name
    );
    contexts.write(&ContextMeta::new(cluster, &description, &url), Some(&tls))?;
    Ok(())
}

/// The cluster's context pointed at the machine as it was (`before`): it now points at the
/// machine as it is (`after`: a new address, a new client certificate).
pub fn follow_member(
    docker_config: &Path,
    store: &Store,
    before: &MachineRecord,
    after: &MachineRecord,
) -> anyhow::Result<()> {
    let Some(s) = &after.swarm else {
        return Ok(());
    };
    let contexts = ContextStore::new(docker_config);
    let Ok(meta) = contexts.read(&s.cluster) else {
        return Ok(());
    };
    let host = meta.docker.as_ref().map(|d| d.host.clone());
    let ours = meta
        .description
        .starts_with(super::teardown::CONTEXT_DESCRIPTION_PREFIX);
    if ours && host.is_some() && (host == before.engine.url || host == after.engine.url) {
        point_context(docker_config, &store.load(&after.name)?, &s.cluster)?;
    }
    Ok(())
}

/// Whether `record` is the last manager its cluster has (as the records say).
pub fn is_last_manager(store: &Store, record: &MachineRecord) -> anyhow::Result<bool> {
    let Some(s) = &record.swarm else {
        return Ok(false);
    };
    if s.role != "manager" {
        return Ok(false);
    }
    Ok(!members(store, &s.cluster)?
        .iter()
        .any(|m| m.name != record.name && m.swarm.as_ref().is_some_and(|o| o.role == "manager")))
}

/// A member leaving its cluster before its instance goes (`rm`): a manager is demoted first
/// on another manager so that the quorum holds; it leaves; its node is removed on a manager;
/// the cluster's context moves to another manager if it pointed here. The last manager ends
/// the cluster: the workers leave too, and the context goes. Best effort where a host does not
/// answer: the instance is removed anyway.
pub async fn depart(
    docker_config: &Path,
    store: &Store,
    record: &MachineRecord,
    progress: &mut Progress,
) -> anyhow::Result<()> {
    let Some(s) = record.swarm.clone() else {
        return Ok(());
    };
    let Some(node) = s.node_id.clone() else {
        return Ok(());
    };
    let cluster = s.cluster.as_str();
    let others: Vec<MachineRecord> = members(store, cluster)?
        .into_iter()
        .filter(|m| m.name != record.name && m.swarm.as_ref().is_some_and(|o| o.node_id.is_some()))
        .collect();
    progress.stage(format!("leaving swarm {cluster}"));
    let me = reach(docker_config, record).await.ok();
    let manager = find_manager(docker_config, &others).await;
    match &manager {
        Some(m) => {
            if s.role == "manager" || me_is_manager(&me).await {
                m.member.demote(&node).await?;
                if let Some(me) = &me {
                    wait_demoted(me).await;
                }
            }
            if let Some(me) = &me
                && let Err(e) = me.member.leave(false).await
            {
                progress.note(format!("  warning: {} could not leave: {e}", record.name));
            }
            remove_node(&m.member, &node).await?;
            move_context(docker_config, store, cluster, record, &m.name)?;
        }
        None => {
            if let Some(me) = &me {
                me.member.leave(true).await?;
            }
            end_cluster(docker_config, store, cluster, &others, progress).await?;
        }
    }
    store.update(&record.name, |r| {
        if let Some(s) = r.swarm.as_mut() {
            s.node_id = None;
        }
    })?;
    Ok(())
}

/// A demotion takes effect when the raft has let the node go: until then it still calls itself
/// a manager, and `swarm leave` would refuse.
async fn wait_demoted(me: &Reached) {
    let deadline = tokio::time::Instant::now() + SWARM_TIMEOUT;
    while tokio::time::Instant::now() < deadline {
        match me.member.local_state().await {
            Ok(state) if state.manager => tokio::time::sleep(Duration::from_millis(200)).await,
            _ => return,
        }
    }
}

/// Removes a node from the list, again while the cluster is still letting it go (a leader
/// election after a demotion refuses for a moment).
async fn remove_node(manager: &Member, node: &str) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + SWARM_TIMEOUT;
    loop {
        match manager.remove_node(node).await {
            Ok(()) => return Ok(()),
            Err(e) if tokio::time::Instant::now() < deadline => {
                tracing::debug!("node rm {node}: {e}; again");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

async fn me_is_manager(me: &Option<Reached>) -> bool {
    match me {
        Some(me) => me.member.local_state().await.is_ok_and(|s| s.manager),
        None => false,
    }
}

/// The cluster's context pointed at the machine going: it now points at `manager`.
fn move_context(
    docker_config: &Path,
    store: &Store,
    cluster: &str,
    going: &MachineRecord,
    manager: &MachineName,
) -> anyhow::Result<()> {
    let contexts = ContextStore::new(docker_config);
    let Ok(meta) = contexts.read(cluster) else {
        return Ok(());
    };
    let host = meta.docker.as_ref().map(|d| d.host.clone());
    if host.is_some() && host == going.engine.url {
        point_context(docker_config, &store.load(manager)?, cluster)?;
    }
    Ok(())
}

/// The last manager went: the workers left have no cluster; they leave it, their records say
/// so (the cluster's group stays recorded, to go with the last of them), the context goes.
async fn end_cluster(
    docker_config: &Path,
    store: &Store,
    cluster: &str,
    others: &[MachineRecord],
    progress: &mut Progress,
) -> anyhow::Result<()> {
    for w in others {
        if let Ok(reached) = reach(docker_config, w).await
            && let Err(e) = reached.member.leave(true).await
        {
            progress.note(format!("  warning: {} could not leave: {e}", w.name));
        }
        store.update(&w.name, |r| {
            if let Some(s) = r.swarm.as_mut() {
                s.node_id = None;
                s.role = LEFT.into();
            }
        })?;
    }
    super::teardown::remove_context(docker_config, Some(cluster))?;
    Ok(())
}

/// The cluster's group of a record: deleted when no other record names it (under the group
/// lock), then forgotten. Called by the teardown once the instance is gone.
pub async fn release_group(
    ec2: &Ec2,
    store: &Store,
    record: &MachineRecord,
    progress: &mut Progress,
) -> anyhow::Result<()> {
    let Some(s) = &record.swarm else {
        return Ok(());
    };
    let key = s.group_id.clone().or_else(|| s.group_intent.clone());
    let Some(key) = key else {
        return Ok(());
    };
    let _held = super::teardown::hold_group(store, &key).await?;
    let named_elsewhere = store.list()?.into_iter().any(|(name, r)| match r {
        Ok(r) => {
            name != record.name
                && r.swarm.as_ref().is_some_and(|o| {
                    o.group_id.as_deref() == Some(key.as_str())
                        || o.group_intent.as_deref() == Some(key.as_str())
                })
        }
        // A record removed while the store was listed names nothing; a damaged one might.
        Err(crate::store::StoreError::NotFound { .. }) => false,
        Err(_) => name != record.name,
    });
    if !named_elsewhere && (s.group_owned || s.group_intent.is_some()) {
        let id = match &s.group_id {
            Some(id) => Some(id.clone()),
            None => ec2.find_security_group(&key).await?.map(|g| g.id),
        };
        if let Some(id) = id {
            delete_cluster_group(ec2, store, &s.cluster, &id, progress).await?;
        }
    }
    store.update(&record.name, |r| {
        if let Some(s) = r.swarm.as_mut() {
            s.group_id = None;
            s.group_owned = false;
            s.group_intent = None;
        }
    })?;
    Ok(())
}

/// Deletes the cluster's group if its tags still say it is this store's cluster group.
async fn delete_cluster_group(
    ec2: &Ec2,
    store: &Store,
    cluster: &str,
    id: &str,
    progress: &mut Progress,
) -> anyhow::Result<()> {
    let Some(group) = ec2.security_group(id).await? else {
        return Ok(());
    };
    let owner = Ownership::new(group_tag(cluster), store.id()?);
    if owner.judge(&group.tags) != crate::cloud::Verdict::Ours {
        let store_tag = group.tags.iter().find(|(k, _)| k == STORE_TAG);
        bail!(Hinted::new(
            format!(
                "security group {id} is not this store's group of swarm {cluster} (store tag {store_tag:?}): not deleted"
            ),
            "check the record; `rm -f` forgets the machine without touching the cloud",
        ));
    }
    progress.stage(format!(
        "deleting swarm {cluster}'s security group {} ({id})",
        group.name
    ));
    super::teardown::delete_group_when_free(ec2, id).await
}

/// One line of `swarm ls`.
#[derive(Debug, Clone, Default, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ClusterRow {
    pub name: String,
    pub managers: Vec<String>,
    pub workers: Vec<String>,
    /// Nodes Ready / nodes, as a manager sees them (`None`: no manager answered).
    pub ready: Option<(usize, usize)>,
    pub context: Option<String>,
    pub error: Option<String>,
}

/// The clusters of this store, each with its members (from the records) and health (from one
/// manager's node list).
pub async fn list(docker_config: &Path, store: &Store) -> anyhow::Result<Vec<ClusterRow>> {
    let mut clusters: Vec<String> = store
        .list()?
        .into_iter()
        .filter_map(|(_, r)| r.ok()?.swarm.filter(|s| s.role != LEFT).map(|s| s.cluster))
        .collect();
    clusters.sort();
    clusters.dedup();
    let mut rows = Vec::new();
    for cluster in clusters {
        let records = members(store, &cluster)?;
        let with_role = |role: &str| -> Vec<String> {
            records
                .iter()
                .filter(|r| r.swarm.as_ref().is_some_and(|s| s.role == role))
                .map(|r| r.name.to_string())
                .collect()
        };
        let (ready, error) = match find_manager(docker_config, &records).await {
            Some(m) => match m.member.nodes().await {
                Ok(nodes) => (
                    Some((nodes.iter().filter(|n| n.ready).count(), nodes.len())),
                    None,
                ),
                Err(e) => (None, Some(e.to_string())),
            },
            None => (None, Some("no manager answers".into())),
        };
        rows.push(ClusterRow {
            name: cluster.clone(),
            managers: with_role("manager"),
            workers: with_role("worker"),
            ready,
            context: ContextStore::new(docker_config)
                .exists(&cluster)
                .then(|| cluster.clone()),
            error,
        });
    }
    Ok(rows)
}
