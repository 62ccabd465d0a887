//! `regenerate-certs`: a new server certificate (and with `--client-certs` a new CA and client
//! certificate too), the daemon restarted, the context rewritten and verified.

use std::{path::Path, time::Duration};

use super::provision::{machine_address, reissue_server_cert, verify};
use crate::{names::MachineName, report::Hinted, store::Store};

pub async fn regenerate_certs(
    docker_config: &Path,
    name: &MachineName,
    client_certs: bool,
    timeout: Duration,
) -> anyhow::Result<String> {
    let store = Store::new(docker_config);
    let record = store.load(name)?;
    let address = machine_address(&record).ok_or_else(|| {
        Hinted::new(
            format!("{name} has no address on record"),
            format!("is it running? `docker euca start {name}`"),
        )
    })?;
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
