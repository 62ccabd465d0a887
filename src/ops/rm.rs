//! `rm`, and the teardown a failed create shares with it: terminate the instance, delete the
//! machine's own security group once it is free, delete an imported key pair, then the context
//! and the record. Things already gone are fine; each removal is journalled as it happens, so a
//! second `rm` picks up where the first stopped. Resources whose creating call never answered
//! are found again by name (security group) or client token (instance).

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use aws_sdk_ec2::types::InstanceStateName;

use crate::{
    cloud::Ec2,
    context::{ConfigFile, ContextStore},
    credentials::CloudFlags,
    names::MachineName,
    progress::Progress,
    store::{MachineRecord, Store, StoreError},
};

/// Descriptions of the contexts docker-euca writes start with this; others are never removed.
pub const CONTEXT_DESCRIPTION_PREFIX: &str = "docker-euca:";

#[derive(Debug, Clone, Default)]
pub struct RmOptions {
    pub names: Vec<MachineName>,
    /// Forget the machine even if the cloud refuses (or its record is damaged).
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
) -> anyhow::Result<()> {
    let record = match store.load(name) {
        Ok(r) => r,
        Err(StoreError::NotFound { .. }) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let mut instances: Vec<String> = record.cloud.instance_id.iter().cloned().collect();
    if instances.is_empty()
        && let Some(token) = &record.cloud.client_token
    {
        instances = ec2
            .instances_by_client_token(token)
            .await?
            .into_iter()
            .filter(|i| i.state != "terminated")
            .map(|i| i.id)
            .collect();
    }
    for id in &instances {
        progress.stage(format!("terminating instance {id}"));
        ec2.terminate_instance(id).await?;
        ec2.wait_for_state(id, InstanceStateName::Terminated, Duration::from_secs(300))
            .await?;
    }
    store.update(name, |r| {
        r.cloud.instance_id = None;
        r.cloud.client_token = None;
    })?;
    if record.cloud.security_group_owned {
        let group = match (
            &record.cloud.security_group_id,
            &record.cloud.security_group_name,
        ) {
            (Some(id), _) => Some(id.clone()),
            (None, Some(name)) => ec2.find_security_group(name).await?,
            (None, None) => None,
        };
        if let Some(group) = group {
            progress.stage(format!("deleting security group {group}"));
            let deadline = tokio::time::Instant::now() + GROUP_RELEASE_TIMEOUT;
            loop {
                match ec2.delete_security_group(&group).await {
                    Ok(()) => break,
                    Err(e)
                        if matches!(
                            e.code(),
                            Some("DependencyViolation" | "InvalidGroup.InUse")
                        ) && tokio::time::Instant::now() < deadline =>
                    {
                        tokio::time::sleep(Duration::from_secs(2)).await;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
        store.update(name, |r| {
            r.cloud.security_group_id = None;
            r.cloud.security_group_owned = false;
        })?;
    }
    if let (true, Some(key)) = (record.cloud.key_pair_owned, &record.cloud.key_pair_name) {
        progress.stage(format!("deleting key pair {key}"));
        ec2.delete_key_pair(key).await?;
        store.update(name, |r| r.cloud.key_pair_owned = false)?;
    }
    progress.finish_stage();
    Ok(())
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

/// Removes each machine; returns each one's outcome, in order.
pub async fn rm(docker_config: &Path, opts: &RmOptions) -> Vec<(MachineName, anyhow::Result<()>)> {
    let store = Store::new(docker_config);
    let mut outcomes = Vec::new();
    for name in &opts.names {
        let mut progress = Progress::new(opts.quiet);
        let outcome = rm_one(docker_config, &store, name, opts, &mut progress).await;
        if outcome.is_err() {
            progress.fail_stage();
        }
        outcomes.push((name.clone(), outcome));
    }
    outcomes
}

async fn rm_one(
    docker_config: &Path,
    store: &Store,
    name: &MachineName,
    opts: &RmOptions,
    progress: &mut Progress,
) -> anyhow::Result<()> {
    let record = match store.load(name) {
        Ok(r) => r,
        Err(e @ (StoreError::Corrupt { .. } | StoreError::NewerSchema { .. })) if opts.force => {
            progress.note(format!(
                "warning: {e}; forgetting it without touching the cloud (-f)"
            ));
            store.remove(name)?;
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    if let Err(err) = remove_cloud_resources(docker_config, store, &record, opts, progress).await {
        if !opts.force {
            return Err(err.context(format!(
                "{name} is kept so that `docker euca rm` can retry (`rm -f` forgets it)"
            )));
        }
        progress.fail_stage();
        progress.note(format!(
            "warning: {name}: the cloud refused ({err:#}); forgetting the machine anyway (-f)"
        ));
    }
    remove_context(docker_config, record.engine.context_name.as_deref())?;
    store.remove(name)?;
    Ok(())
}

async fn remove_cloud_resources(
    docker_config: &Path,
    store: &Store,
    record: &MachineRecord,
    opts: &RmOptions,
    progress: &mut Progress,
) -> anyhow::Result<()> {
    let c = &record.cloud;
    if c.instance_id.is_none()
        && c.client_token.is_none()
        && !c.security_group_owned
        && !c.key_pair_owned
    {
        return Ok(());
    }
    let mut flags = opts.cloud.clone();
    flags.ca_bundle = flags.ca_bundle.or(c.ca_bundle.clone().map(PathBuf::from));
    let key = super::machine::CloudKey::of(record);
    let ec2 = super::machine::ec2_for(docker_config, &key, &flags).await?;
    teardown(&ec2, store, &record.name, progress).await
}
