//! `rm`: under the machine's lock, on the machine's own cloud and identity, remove what its
//! create made (see [`super::teardown`]: only what is proved ours, forgotten only once proved
//! gone), then the context and the record. `-f` forgets a machine the cloud will not let go of,
//! or whose record is damaged, without touching the cloud.

use std::path::Path;

use super::teardown::{plan, remove_context, teardown};
use crate::{
    credentials::CloudFlags,
    names::MachineName,
    progress::Progress,
    store::{MachineRecord, Store, StoreError},
};

#[derive(Debug, Clone, Default)]
pub struct RmOptions {
    pub names: Vec<MachineName>,
    /// Forget the machine even if the cloud refuses (or its record is damaged).
    pub force: bool,
    pub cloud: CloudFlags,
    pub quiet: bool,
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
    let _lock = store.lock_operation(name, "rm")?;
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
            "warning: {name}: {err:#}; forgetting the machine anyway (-f): what it had in the \
             cloud may be left there"
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
    if let Err(e) = super::swarm::depart(docker_config, store, record, progress).await {
        // The instance goes anyway; a node left behind shows Down until removed.
        progress.fail_stage();
        progress.note(format!(
            "warning: {}: leaving its swarm: {e:#}",
            record.name
        ));
    }
    let swarm_group = record
        .swarm
        .as_ref()
        .is_some_and(|s| s.group_id.is_some() || s.group_intent.is_some());
    if plan(&record.cloud).is_empty() && !swarm_group {
        return Ok(());
    }
    let ec2 = super::machine::cloud_of_machine(docker_config, record, &opts.cloud).await?;
    teardown(&ec2, store, &record.name, progress).await
}
