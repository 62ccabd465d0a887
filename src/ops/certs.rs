//! `regenerate-certs`: a new server certificate (and with `--client-certs` a new CA and client
//! certificate too), the daemon restarted, the context rewritten and verified, all under the
//! machine's lock (two runs at once would mix two CAs: docker-machine#3634).

use std::{path::Path, time::Duration};

use super::{
    machine::address_of,
    setup::{reissue_server_cert, verify},
};
use crate::{names::MachineName, store::Store};

pub async fn regenerate_certs(
    docker_config: &Path,
    name: &MachineName,
    client_certs: bool,
    timeout: Duration,
) -> anyhow::Result<String> {
    let store = Store::new(docker_config);
    let _lock = store.lock_operation(name, "regenerate-certs")?;
    let record = store.load(name)?;
    let address = address_of(&record)?;
    let url = reissue_server_cert(
        docker_config,
        &store,
        &record,
        address,
        client_certs,
        timeout,
    )
    .await?;
    let context = record.context_name();
    let version = verify(docker_config, &context, &url, timeout).await?;
    Ok(format!(
        "{name}: new {} installed; Docker {} answers at {url}",
        if client_certs {
            "CA, server and client certificates"
        } else {
            "server certificate"
        },
        version.version
    ))
}
