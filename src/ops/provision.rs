//! `provision`: re-run the setup of an existing machine with the options it was created with
//! (idempotent), holding the machine's lock for the whole of it.

use std::{path::Path, time::Duration};

use super::{
    machine::address_of,
    setup::{self, ProvisionPlan, Verified},
};
use crate::{names::MachineName, progress::Progress, store::Store};

pub async fn provision(
    docker_config: &Path,
    name: &MachineName,
    timeout: Duration,
    progress: &mut Progress,
) -> anyhow::Result<Verified> {
    let store = Store::new(docker_config);
    let _lock = store.lock_operation(name, "provision")?;
    let record = store.load(name)?;
    let address = address_of(&record)?;
    let plan = ProvisionPlan::from_record(&record, timeout);
    setup::provision_machine(docker_config, &store, name, address, &plan, progress).await
}
