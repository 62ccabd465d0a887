//! `start`, `stop`, `restart`, `kill` on one or several machines, concurrently, with one
//! Start/StopInstances call per cloud. `start` notices a changed address (EDGE hands out a new
//! public one), reissues the server certificate, restarts the daemon, updates the context and
//! verifies it: no `regenerate-certs` needed, unlike docker-machine.

use std::{net::IpAddr, path::Path, time::Duration};

use anyhow::Context;
use aws_sdk_ec2::types::InstanceStateName;
use tokio::task::JoinSet;

use super::{
    machine::{group_by_cloud, instance_id},
    provision::{machine_address, verify},
};
use crate::{
    cloud::{Ec2, usable_address},
    credentials::CloudFlags,
    names::MachineName,
    provision::daemon,
    store::Store,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Power {
    Start,
    Stop,
    /// Stop, then start: the instance boots afresh and the address check of `start` applies.
    Restart,
    /// A forced stop.
    Kill,
}

#[derive(Debug, Clone)]
pub struct PowerOptions {
    pub names: Vec<MachineName>,
    pub action: Power,
    pub cloud: CloudFlags,
    pub timeout: Duration,
}

/// What happened to each machine, in the order given.
pub async fn power(
    docker_config: &Path,
    opts: &PowerOptions,
) -> anyhow::Result<Vec<(String, anyhow::Result<String>)>> {
    let store = Store::new(docker_config);
    let mut records = Vec::new();
    for name in &opts.names {
        records.push(store.load(name)?);
    }
    let mut results: Vec<(String, anyhow::Result<String>)> = Vec::new();
    let mut jobs = JoinSet::new();
    for (key, group) in group_by_cloud(records) {
        let ec2 = match super::machine::ec2_for(docker_config, &key, &opts.cloud).await {
            Ok(ec2) => ec2,
            Err(e) => {
                fail_all(&mut results, &group, format!("{e:#}"));
                continue;
            }
        };
        let mut ids = Vec::new();
        let mut members = Vec::new();
        for r in group {
            match instance_id(&r) {
                Ok(id) => {
                    ids.push(id);
                    members.push(r);
                }
                Err(e) => results.push((r.name.to_string(), Err(e))),
            }
        }
        if ids.is_empty() {
            continue;
        }
        let stop = matches!(opts.action, Power::Stop | Power::Kill | Power::Restart);
        if stop {
            if let Err(e) = ec2.stop_instances(&ids, opts.action == Power::Kill).await {
                fail_all(&mut results, &members, format!("{e:#}"));
                continue;
            }
            let mut waits = JoinSet::new();
            for (r, id) in members.iter().zip(&ids) {
                let (ec2, id, name, timeout) =
                    (ec2.clone(), id.clone(), r.name.to_string(), opts.timeout);
                waits.spawn(async move {
                    (
                        name,
                        ec2.wait_for_state(&id, InstanceStateName::Stopped, timeout)
                            .await,
                    )
                });
            }
            let mut stopped_ok = Vec::new();
            while let Some(j) = waits.join_next().await {
                let (name, r) = j?;
                match r {
                    Ok(_) => stopped_ok.push(name),
                    Err(e) => results.push((name, Err(e.into()))),
                }
            }
            if opts.action != Power::Restart {
                let verb = if opts.action == Power::Kill {
                    "killed"
                } else {
                    "stopped"
                };
                results.extend(
                    stopped_ok
                        .into_iter()
                        .map(|n| (n.clone(), Ok(format!("{n} {verb}")))),
                );
                continue;
            }
            members.retain(|r| stopped_ok.contains(&r.name.to_string()));
            ids = members
                .iter()
                .filter_map(|r| r.cloud.instance_id.clone())
                .collect();
            if ids.is_empty() {
                continue;
            }
        }
        if let Err(e) = ec2.start_instances(&ids).await {
            fail_all(&mut results, &members, format!("{e:#}"));
            continue;
        }
        for r in members {
            let (ec2, store, docker_config, timeout) = (
                ec2.clone(),
                store.clone(),
                docker_config.to_path_buf(),
                opts.timeout,
            );
            let verb = if opts.action == Power::Restart {
                "restarted"
            } else {
                "started"
            };
            jobs.spawn(async move {
                let name = r.name.clone();
                (
                    name.to_string(),
                    after_start(&docker_config, &store, &ec2, &name, timeout, verb).await,
                )
            });
        }
    }
    while let Some(j) = jobs.join_next().await {
        results.push(j?);
    }
    let order = |n: &String| {
        opts.names
            .iter()
            .position(|m| m.as_str() == n)
            .unwrap_or(usize::MAX)
    };
    results.sort_by_key(|(n, _)| order(n));
    Ok(results)
}

/// Records one cloud-wide failure against every machine of a group.
fn fail_all(
    results: &mut Vec<(String, anyhow::Result<String>)>,
    machines: &[crate::store::MachineRecord],
    msg: String,
) {
    results.extend(
        machines
            .iter()
            .map(|r| (r.name.to_string(), Err(anyhow::anyhow!(msg.clone())))),
    );
}

/// After StartInstances: wait for it to run and get its address; if the address changed,
/// reissue the certificate and rewrite the context; then verify the daemon.
async fn after_start(
    docker_config: &Path,
    store: &Store,
    ec2: &Ec2,
    name: &MachineName,
    timeout: Duration,
    verb: &str,
) -> anyhow::Result<String> {
    let record = store.load(name)?;
    let id = instance_id(&record)?;
    ec2.wait_for_state(&id, InstanceStateName::Running, timeout)
        .await?;
    let use_private = record.cloud.use_private_address;
    let info = ec2.wait_for_address(&id, use_private, timeout).await?;
    let address: IpAddr = usable_address(
        info.public_ip.as_deref(),
        info.private_ip.as_deref(),
        use_private,
    )
    .context("the instance has no usable address")?;
    let changed = machine_address(&record) != Some(address);
    let (record, _) = store.update(name, |r| {
        r.cloud.private_ip = info.private_ip.clone();
        if !use_private {
            r.cloud.public_ip = info.public_ip.clone();
        }
    })?;
    let context = record.context_name();
    let url = format!("tcp://{address}:{}", daemon::DOCKER_PORT);
    if changed {
        super::create::wait_for_port(
            std::net::SocketAddr::new(address, record.ssh.port.unwrap_or(22)),
            timeout,
        )
        .await?;
        super::provision::reissue_server_cert(
            docker_config,
            store,
            &record,
            address,
            false,
            timeout,
        )
        .await?;
    }
    let version = verify(docker_config, &context, &url, timeout).await?;
    store.update(name, |r| r.engine.version = Some(version.version.clone()))?;
    Ok(if changed {
        format!(
            "{name} {verb} at a new address {address}: certificate reissued, context {context} updated (Docker {})",
            version.version
        )
    } else {
        format!("{name} {verb}: Docker {} at {url}", version.version)
    })
}
