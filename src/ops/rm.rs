//! `rm`, and the teardown a failed create shares with it: terminate the instance, delete the
//! machine's own security group once it is free, delete an imported key pair, then the context
//! and the record. Things already gone are fine; each removal is journalled as it happens, so a
//! second `rm` picks up where the first stopped.

use std::{path::Path, time::Duration};

use anyhow::Context;
use aws_sdk_ec2::types::InstanceStateName;

use crate::{
    cloud::{CloudError, Ec2},
    context::{ConfigFile, ContextStore},
    credentials::CloudFlags,
    names::MachineName,
    progress::Progress,
    store::{MachineRecord, Store},
};

#[derive(Debug, Clone, Default)]
pub struct RmOptions {
    pub names: Vec<MachineName>,
    /// Drop the record even if the cloud refuses.
    pub force: bool,
    pub cloud: CloudFlags,
    pub quiet: bool,
}

/// How long a group may stay "in use" by a terminating instance before we give up.
const GROUP_RELEASE_TIMEOUT: Duration = Duration::from_secs(180);

/// Removes the cloud resources the record says the machine owns, journalling each removal.
pub async fn teardown(
    ec2: &Ec2,
    store: &Store,
    name: &MachineName,
    progress: &mut Progress,
) -> Result<(), CloudError> {
    let record = match store.load(name) {
        Ok(r) => r,
        Err(_) => return Ok(()),
    };
    if let Some(id) = &record.cloud.instance_id {
        progress.stage(format!("terminating instance {id}"));
        ec2.terminate_instance(id).await?;
        ec2.wait_for_state(id, InstanceStateName::Terminated, Duration::from_secs(300))
            .await?;
        let _ = store.update(name, |r| r.cloud.instance_id = None);
    }
    if let (true, Some(group)) = (
        record.cloud.security_group_owned,
        &record.cloud.security_group_id,
    ) {
        progress.stage(format!("deleting security group {group}"));
        let deadline = tokio::time::Instant::now() + GROUP_RELEASE_TIMEOUT;
        loop {
            match ec2.delete_security_group(group).await {
                Ok(()) => break,
                Err(e)
                    if matches!(e.code(), Some("DependencyViolation" | "InvalidGroup.InUse"))
                        && tokio::time::Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
                Err(e) => return Err(e),
            }
        }
        let _ = store.update(name, |r| {
            r.cloud.security_group_id = None;
            r.cloud.security_group_owned = false;
        });
    }
    if let (true, Some(key)) = (record.cloud.key_pair_owned, &record.cloud.key_pair_name) {
        progress.stage(format!("deleting key pair {key}"));
        ec2.delete_key_pair(key).await?;
        let _ = store.update(name, |r| r.cloud.key_pair_owned = false);
    }
    progress.finish_stage();
    Ok(())
}

/// Deletes the machine's docker context (and clears `currentContext` if it pointed there).
pub fn remove_context(docker_config: &Path, record: &MachineRecord) -> anyhow::Result<()> {
    let name = record
        .engine
        .context_name
        .clone()
        .unwrap_or_else(|| record.name.to_string());
    let config = ConfigFile::new(docker_config);
    config.clear_current_context_if(&name)?;
    ContextStore::new(docker_config).remove(&name)?;
    Ok(())
}

/// Removes each machine; returns the names that could not be removed (errors already printed).
pub async fn rm(docker_config: &Path, opts: &RmOptions) -> anyhow::Result<Vec<String>> {
    let store = Store::new(docker_config);
    let mut failed = Vec::new();
    for name in &opts.names {
        let mut progress = Progress::new(opts.quiet);
        let outcome = rm_one(docker_config, &store, name, opts, &mut progress).await;
        if let Err(err) = outcome {
            progress.fail_stage();
            eprintln!("docker euca: cannot remove {name}: {err:#}");
            if let Some(hint) = crate::report::hint_for(&err) {
                eprintln!("hint: {hint}");
            }
            failed.push(name.to_string());
        } else if !opts.quiet {
            println!("{name} removed");
        }
    }
    Ok(failed)
}

async fn rm_one(
    docker_config: &Path,
    store: &Store,
    name: &MachineName,
    opts: &RmOptions,
    progress: &mut Progress,
) -> anyhow::Result<()> {
    let record = store.load(name)?;
    let cloud_result: anyhow::Result<()> = async {
        let needs_cloud = record.cloud.instance_id.is_some()
            || record.cloud.security_group_owned
            || record.cloud.key_pair_owned;
        if !needs_cloud {
            return Ok(());
        }
        let mut flags = opts.cloud.clone();
        flags.endpoint = flags.endpoint.or(record.cloud.endpoint.clone());
        flags.region = flags.region.or(record.cloud.region.clone());
        let target =
            super::cloud_target::resolve(docker_config, &flags, record.cloud.profile.clone())
                .await?;
        let ec2 = Ec2::connect(&target)?;
        teardown(&ec2, store, name, progress).await?;
        Ok(())
    }
    .await;
    match cloud_result {
        Ok(()) => {}
        Err(err) if opts.force => {
            progress.fail_stage();
            eprintln!(
                "warning: {name}: the cloud refused ({err:#}); forgetting the machine anyway (-f)"
            );
        }
        Err(err) => {
            return Err(err.context(format!(
                "{name} is kept so that `docker euca rm` can retry; `rm -f` forgets it"
            )));
        }
    }
    remove_context(docker_config, &record).context("cannot remove the docker context")?;
    store.remove(name)?;
    Ok(())
}
