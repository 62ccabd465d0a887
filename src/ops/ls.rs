//! `ls`: one DescribeInstances per cloud identity (endpoint, region, profile, access key), never
//! one per machine, filtered by `instance-id` so that one instance the cloud no longer knows
//! shows `NotFound` alone; daemon versions checked concurrently, bounded, each with a timeout,
//! started beside the DescribeInstances rather than after it.
//! A damaged record is listed under its name; a task that fails fails its own rows only.

use std::{collections::HashMap, path::Path, sync::Arc, time::Duration};

use serde::Serialize;
use tokio::sync::Semaphore;

use super::machine::{cloud_of, group_by_cloud};
use crate::{
    context::{ConfigFile, ContextStore},
    credentials::CloudFlags,
    engine,
    store::{MachineState, Store},
};

/// At most this many daemon checks run at once.
pub const DAEMON_CHECKS_IN_FLIGHT: usize = 32;

#[derive(Debug, Clone, Default)]
pub struct LsOptions {
    pub timeout: Duration,
    pub cloud: CloudFlags,
    pub name_filters: Vec<String>,
    pub state_filters: Vec<String>,
    /// `swarm=CLUSTER`: members of these clusters.
    pub swarm_filters: Vec<String>,
    /// What docker talks to now (the ACTIVE column); `None`: `config.json`'s current context.
    pub current: Option<crate::plugin::Current>,
}

impl LsOptions {
    /// Whether a record passes the filters that need no cloud call (name, swarm).
    pub fn keeps(&self, record: &crate::store::MachineRecord) -> bool {
        let name_ok = self.name_filters.is_empty()
            || self
                .name_filters
                .iter()
                .any(|p| name_matches(record.name.as_str(), p));
        let cluster = record.swarm.as_ref().map(|s| s.cluster.as_str());
        let swarm_ok = self.swarm_filters.is_empty()
            || self
                .swarm_filters
                .iter()
                .any(|c| Some(c.as_str()) == cluster);
        name_ok && swarm_ok
    }

    /// Parses one `--filter KEY=VALUE` (name, state, swarm).
    pub fn add_filter(&mut self, filter: &str) -> Result<(), crate::report::Hinted> {
        match filter.split_once('=') {
            Some(("name", v)) => self.name_filters.push(v.to_string()),
            Some(("state", v)) => self.state_filters.push(v.to_string()),
            Some(("swarm", v)) => self.swarm_filters.push(v.to_string()),
            _ => {
                return Err(crate::report::Hinted::new(
                    format!("unknown filter {filter:?}"),
                    "use name=PATTERN, state=Running|Stopped|… or swarm=CLUSTER",
                ));
            }
        }
        Ok(())
    }
}

/// One row of `ls`; also what `--format` templates see.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct MachineRow {
    pub name: String,
    pub active: bool,
    pub state: String,
    #[serde(rename = "URL")]
    pub url: String,
    pub docker: String,
    /// `CLUSTER (manager|worker)`, empty outside a swarm.
    pub swarm: String,
    /// `.Error`, as in `docker context ls` and docker-machine's `ls` templates.
    #[serde(rename = "Error")]
    pub errors: String,
    #[serde(rename = "InstanceID")]
    pub instance_id: String,
    #[serde(rename = "PublicIP")]
    pub public_ip: String,
    #[serde(rename = "PrivateIP")]
    pub private_ip: String,
    pub endpoint: String,
}

/// `name=` (and a name pattern on the command line) matches names with `*` wildcards (docker's filters match substrings; so do we when
/// there is no wildcard).
pub fn name_matches(name: &str, pattern: &str) -> bool {
    if !pattern.contains('*') {
        return name.contains(pattern);
    }
    let parts: Vec<&str> = pattern.split('*').collect();
    let mut rest = name;
    for (i, part) in parts.iter().enumerate() {
        if part.is_empty() {
            continue;
        }
        match rest.find(part) {
            Some(pos) if i == 0 && pos != 0 => return false,
            Some(pos) => rest = &rest[pos + part.len()..],
            None => return false,
        }
    }
    parts
        .last()
        .is_none_or(|last| last.is_empty() || name.ends_with(last))
}

pub async fn ls(docker_config: &Path, opts: &LsOptions) -> anyhow::Result<Vec<MachineRow>> {
    let store = Store::new(docker_config);
    let mut rows = Vec::new();
    let mut records = Vec::new();
    for (name, entry) in store.list()? {
        match entry {
            Ok(r) => records.push(r),
            Err(e) => rows.push(MachineRow {
                name: name.to_string(),
                state: "Error".into(),
                errors: e.to_string(),
                ..Default::default()
            }),
        }
    }
    rows.retain(|r| {
        opts.name_filters.is_empty() || opts.name_filters.iter().any(|p| name_matches(&r.name, p))
    });
    records.retain(|r| opts.keeps(r));
    if !opts.swarm_filters.is_empty() {
        // A damaged record's cluster cannot be told.
        rows.clear();
    }
    let contexts = ContextStore::new(docker_config);
    let limit = Arc::new(Semaphore::new(DAEMON_CHECKS_IN_FLIGHT));
    let mut early = early_daemon_checks(&records, &contexts, &limit, opts.timeout);
    let current = opts.current.clone().unwrap_or_else(|| {
        crate::plugin::Current::Context(
            ConfigFile::new(docker_config)
                .current_context()
                .ok()
                .flatten()
                .unwrap_or_else(|| "default".into()),
        )
    });

    // One DescribeInstances per cloud, all clouds at once.
    let mut describes = Vec::new();
    for (key, group) in group_by_cloud(records) {
        let docker_config = docker_config.to_path_buf();
        let flags = opts.cloud.clone();
        let ids: Vec<String> = group
            .iter()
            .filter_map(|r| r.cloud.instance_id.clone())
            .collect();
        let describe = tokio::spawn(async move {
            if ids.is_empty() {
                return anyhow::Ok(Vec::new());
            }
            let ec2 = cloud_of(&docker_config, &key, &flags).await?;
            Ok(ec2.describe_instances(&ids).await?)
        });
        describes.push((group, describe));
    }
    let mut pending = Vec::new();
    for (group, describe) in describes {
        let result = describe
            .await
            .unwrap_or_else(|e| Err(anyhow::anyhow!("internal error: {e}")));
        let (infos, cloud_error) = match result {
            Ok(infos) => (
                infos
                    .into_iter()
                    .map(|i| (i.id.clone(), i))
                    .collect::<HashMap<_, _>>(),
                None,
            ),
            Err(e) => (HashMap::new(), Some(format!("{e:#}"))),
        };
        for r in group {
            let context = r.context_name();
            let info = r.cloud.instance_id.as_ref().and_then(|id| infos.get(id));
            let state = match (&r.state, info, &cloud_error) {
                (MachineState::Creating, _, _) if r.engine.url.is_none() => "Creating".to_string(),
                (MachineState::Failed, _, _) => "Failed".to_string(),
                (_, Some(i), _) => capitalise(&i.state),
                (_, None, Some(_)) => "Unknown".to_string(),
                (_, None, None) if r.cloud.instance_id.is_some() => "NotFound".to_string(),
                _ => "None".to_string(),
            };
            let mut errors = cloud_error.clone().unwrap_or_default();
            if state == "NotFound" {
                errors = "the instance no longer exists in the cloud".into();
            }
            let row = MachineRow {
                name: r.name.to_string(),
                active: current.is(&context, r.engine.url.as_deref()),
                state,
                url: r.engine.url.clone().unwrap_or_default(),
                docker: String::new(),
                swarm: r
                    .swarm
                    .as_ref()
                    .map(|s| format!("{} ({})", s.cluster, s.role))
                    .unwrap_or_default(),
                errors,
                instance_id: r.cloud.instance_id.clone().unwrap_or_default(),
                public_ip: info
                    .and_then(|i| i.public_ip.clone())
                    .or(r.cloud.public_ip.clone())
                    .unwrap_or_default(),
                private_ip: info
                    .and_then(|i| i.private_ip.clone())
                    .or(r.cloud.private_ip.clone())
                    .unwrap_or_default(),
                endpoint: r.cloud.endpoint.clone().unwrap_or_default(),
            };
            pending.push((row, context));
        }
    }

    // The daemon checks of running machines: started early, or now for a machine whose address
    // the DescribeInstances just changed; those of machines that do not run are dropped.
    let mut checks = Vec::new();
    for (i, (row, context)) in pending.iter().enumerate() {
        let started = early.remove(&row.name);
        if row.state != "Running" || row.url.is_empty() {
            continue;
        }
        let check = match started {
            Some((url, check)) if url == row.url => check,
            _ => spawn_check(&row.url, &contexts, context, &limit, opts.timeout),
        };
        checks.push((i, check));
    }
    for (_, (_, check)) in early {
        check.abort();
    }
    for (i, check) in checks {
        match check.await {
            Ok(Ok(v)) => pending[i].0.docker = format!("v{}", v.version),
            Ok(Err(e)) => pending[i].0.errors = e.to_string(),
            Err(e) => pending[i].0.errors = format!("internal error: {e}"),
        }
    }
    rows.extend(pending.into_iter().map(|(row, _)| row));
    rows.retain(|r| {
        opts.state_filters.is_empty()
            || opts
                .state_filters
                .iter()
                .any(|s| s.eq_ignore_ascii_case(&r.state))
    });
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(rows)
}

type DaemonCheck = tokio::task::JoinHandle<Result<engine::EngineVersion, engine::EngineError>>;

/// Starts the daemon check of every machine whose create finished, before the cloud says
/// which run: the checks then overlap the DescribeInstances, and `ls` costs about the slower of
/// the two instead of their sum. Each dials the address the machine's context names (where
/// `docker --context NAME` would go), and trusts only the machine's own CA. By machine name:
/// the URL it dialled and the check.
fn early_daemon_checks(
    records: &[crate::store::MachineRecord],
    contexts: &ContextStore,
    limit: &Arc<Semaphore>,
    timeout: Duration,
) -> HashMap<String, (String, DaemonCheck)> {
    records
        .iter()
        .filter(|r| r.state == MachineState::Ready)
        .filter_map(|r| {
            let url = r.engine.url.clone()?;
            let check = spawn_check(&url, contexts, &r.context_name(), limit, timeout);
            Some((r.name.to_string(), (url, check)))
        })
        .collect()
}

/// One daemon check, bounded by `limit` and with the timeout.
fn spawn_check(
    url: &str,
    contexts: &ContextStore,
    context: &str,
    limit: &Arc<Semaphore>,
    timeout: Duration,
) -> DaemonCheck {
    let (url, tls_dir, limit) = (url.to_string(), contexts.tls_dir(context), limit.clone());
    tokio::spawn(async move {
        let _permit = limit.acquire_owned().await;
        engine::version(&url, &tls_dir, timeout).await
    })
}

fn capitalise(s: &str) -> String {
    s.split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_filters() {
        assert!(name_matches("web1", "web"));
        assert!(name_matches("web1", "web*"));
        assert!(name_matches("prod-web1", "*web*"));
        assert!(!name_matches("prod-web1", "web*"));
        assert!(name_matches("web1", "*1"));
        assert!(!name_matches("web12", "web*1x"));
    }

    #[test]
    fn states_read_like_docker_machine() {
        assert_eq!(capitalise("running"), "Running");
        assert_eq!(capitalise("shutting-down"), "ShuttingDown");
    }
}
