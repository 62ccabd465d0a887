//! `start`, `stop`, `restart`, `kill` on one or several machines, concurrently, with one
//! Start/StopInstances call per cloud, each machine's lock held for the whole command. `start`
//! notices a changed address (EDGE hands out a new public one), reissues the server
//! certificate, restarts the daemon, updates the context and verifies it: no
//! `regenerate-certs` needed, unlike docker-machine.

use std::{net::IpAddr, path::Path, time::Duration};

use anyhow::Context;
use aws_sdk_ec2::types::InstanceStateName;

use super::{
    machine::{self, group_by_cloud, instance_id},
    setup::{reissue_server_cert, verify},
};
use crate::{
    cloud::{Ec2, usable_address},
    credentials::CloudFlags,
    fsutil::LockFile,
    names::MachineName,
    provision::daemon,
    store::{MachineRecord, Store},
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

impl Power {
    fn command(self) -> &'static str {
        match self {
            Power::Start => "start",
            Power::Stop => "stop",
            Power::Restart => "restart",
            Power::Kill => "kill",
        }
    }
}

#[derive(Debug, Clone)]
pub struct PowerOptions {
    pub names: Vec<MachineName>,
    pub action: Power,
    pub cloud: CloudFlags,
    pub timeout: Duration,
}

type Outcome = (String, anyhow::Result<String>);

/// What happened to each machine, in the order given.
pub async fn power(docker_config: &Path, opts: &PowerOptions) -> anyhow::Result<Vec<Outcome>> {
    let store = Store::new(docker_config);
    let mut results: Vec<Outcome> = Vec::new();
    let mut records = Vec::new();
    let mut locks: Vec<LockFile> = Vec::new();
    for name in &opts.names {
        let locked = store
            .lock_operation(name, opts.action.command())
            .map_err(anyhow::Error::from)
            .and_then(|lock| Ok((lock, store.load(name)?)));
        match locked {
            Ok((lock, record)) => {
                locks.push(lock);
                records.push(record);
            }
            Err(e) => results.push((name.to_string(), Err(e))),
        }
    }
    let mut jobs = Vec::new();
    for (key, group) in group_by_cloud(records) {
        match machine::cloud_of(docker_config, &key, &opts.cloud).await {
            Ok(ec2) => {
                let (ready, failed) = power_group(docker_config, &store, &ec2, group, opts).await;
                results.extend(failed);
                jobs.extend(ready);
            }
            Err(e) => fail_all(&mut results, &group, &e),
        }
    }
    for (name, job) in jobs {
        // A panicking task fails its own machine only.
        let outcome = job
            .await
            .unwrap_or_else(|e| Err(anyhow::anyhow!("internal error: {e}")));
        results.push((name, outcome));
    }
    drop(locks);
    let order = |n: &String| {
        opts.names
            .iter()
            .position(|m| m.as_str() == n)
            .unwrap_or(usize::MAX)
    };
    results.sort_by_key(|(n, _)| order(n));
    Ok(results)
}

type Job = (String, tokio::task::JoinHandle<anyhow::Result<String>>);

/// One cloud's machines: one Stop/StartInstances call for all, then per-machine waits.
/// Returns the per-machine jobs still running and the outcomes already known.
async fn power_group(
    docker_config: &Path,
    store: &Store,
    ec2: &Ec2,
    group: Vec<MachineRecord>,
    opts: &PowerOptions,
) -> (Vec<Job>, Vec<Outcome>) {
    let mut done = Vec::new();
    let mut members = Vec::new();
    let stops = matches!(opts.action, Power::Stop | Power::Kill | Power::Restart);
    for r in group {
        if stops && r.cloud.spot {
            done.push((r.name.to_string(), Err(spot_cannot_stop(&r))));
            continue;
        }
        match instance_id(&r) {
            Ok(id) => members.push((r, id)),
            Err(e) => done.push((r.name.to_string(), Err(e))),
        }
    }
    if members.is_empty() {
        return (vec![], done);
    }
    if matches!(opts.action, Power::Stop | Power::Kill | Power::Restart) {
        let stopped = stop_all(ec2, &members, opts, &mut done).await;
        if opts.action != Power::Restart {
            let verb = if opts.action == Power::Kill {
                "killed"
            } else {
                "stopped"
            };
            done.extend(stopped.into_iter().map(|(r, _)| {
                let n = r.name.to_string();
                (n.clone(), Ok(format!("{n} {verb}")))
            }));
            return (vec![], done);
        }
        members = stopped;
    }
    if members.is_empty() {
        return (vec![], done);
    }
    let ids: Vec<String> = members.iter().map(|(_, id)| id.clone()).collect();
    if let Err(e) = ec2.start_instances(&ids).await {
        let records: Vec<_> = members.into_iter().map(|(r, _)| r).collect();
        fail_all(&mut done, &records, &e.into());
        return (vec![], done);
    }
    let verb = if opts.action == Power::Restart {
        "restarted"
    } else {
        "started"
    };
    let jobs = members
        .into_iter()
        .map(|(r, _)| {
            let (ec2, store, docker_config, timeout) = (
                ec2.clone(),
                store.clone(),
                docker_config.to_path_buf(),
                opts.timeout,
            );
            let name = r.name.clone();
            let job = tokio::spawn(async move {
                after_start(&docker_config, &store, &ec2, &name, timeout, verb).await
            });
            (r.name.to_string(), job)
        })
        .collect();
    (jobs, done)
}

/// EC2 stops no one-time spot instance (it answers UnsupportedOperation): said before asking.
fn spot_cannot_stop(r: &MachineRecord) -> anyhow::Error {
    crate::report::Hinted::new(
        format!(
            "{} is a spot instance: EC2 cannot stop a one-time spot instance",
            r.name
        ),
        format!(
            "remove it with `docker euca rm {}`, or create it without --spot to stop and start it",
            r.name
        ),
    )
    .into()
}

/// One StopInstances for all, then each waits for `stopped`; returns those that stopped.
async fn stop_all(
    ec2: &Ec2,
    members: &[(MachineRecord, String)],
    opts: &PowerOptions,
    done: &mut Vec<Outcome>,
) -> Vec<(MachineRecord, String)> {
    let ids: Vec<String> = members.iter().map(|(_, id)| id.clone()).collect();
    if let Err(e) = ec2.stop_instances(&ids, opts.action == Power::Kill).await {
        let records: Vec<_> = members.iter().map(|(r, _)| r.clone()).collect();
        fail_all(done, &records, &e.into());
        return vec![];
    }
    let waits: Vec<_> = members
        .iter()
        .map(|(r, id)| {
            let (ec2, id, timeout) = (ec2.clone(), id.clone(), opts.timeout);
            let wait = tokio::spawn(async move {
                ec2.wait_for_state(&id, InstanceStateName::Stopped, timeout)
                    .await
            });
            (r.clone(), wait)
        })
        .collect();
    let mut stopped = Vec::new();
    for ((record, wait), (_, id)) in waits.into_iter().zip(members) {
        match wait.await {
            Ok(Ok(_)) => stopped.push((record, id.clone())),
            Ok(Err(e)) => done.push((record.name.to_string(), Err(e.into()))),
            Err(e) => done.push((
                record.name.to_string(),
                Err(anyhow::anyhow!("internal error: {e}")),
            )),
        }
    }
    stopped
}

/// Records one cloud-wide failure against every machine of a group, keeping its hint.
fn fail_all(results: &mut Vec<Outcome>, machines: &[MachineRecord], err: &anyhow::Error) {
    let msg = format!("{err:#}");
    let hint = crate::report::hint_for(err);
    results.extend(machines.iter().map(|r| {
        let e = match &hint {
            Some(h) => anyhow::Error::new(crate::report::Hinted::new(msg.clone(), h.clone())),
            None => anyhow::anyhow!(msg.clone()),
        };
        (r.name.to_string(), Err(e))
    }));
}

/// After StartInstances: wait for it to run and get its address; if the daemon's endpoint is
/// not yet at that address, reissue the certificate and rewrite the context; then verify the
/// daemon.
///
/// The trigger is the recorded endpoint URL, not the recorded address: the address is
/// journalled first and the URL last (after the certificate and the context), so a `start`
/// interrupted in between still reissues when run again.
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
    let use_private = record.cloud.use_private_address;
    let info = ec2.wait_for_address(&id, use_private, timeout).await?;
    let address: IpAddr = usable_address(
        info.public_ip.as_deref(),
        info.private_ip.as_deref(),
        use_private,
    )
    .context("the instance has no usable address")?;
    let url = format!("tcp://{address}:{}", daemon::DOCKER_PORT);
    let changed = record.engine.url.as_deref() != Some(url.as_str());
    let (record, _) = store.update(name, |r| {
        r.cloud.private_ip = info.private_ip.clone();
        if !use_private {
            r.cloud.public_ip = info.public_ip.clone();
        }
    })?;
    crate::crash::point("start-address");
    let context = record.context_name();
    if changed {
        machine::wait_for_port(
            std::net::SocketAddr::new(address, record.ssh.port.unwrap_or(22)),
            timeout,
            None,
        )
        .await?;
        reissue_server_cert(docker_config, store, &record, address, false, timeout).await?;
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
