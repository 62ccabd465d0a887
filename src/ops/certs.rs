//! `regenerate-certs`: a new server certificate (and with `--client-certs` a new CA and client
//! certificate too), the daemon restarted, the context rewritten and verified.

use std::{path::Path, time::Duration};

use super::provision::{install_server_cert, machine_address, verify, write_context};
use crate::{
    names::MachineName,
    provision::{daemon, detect},
    store::Store,
};

pub async fn regenerate_certs(
    docker_config: &Path,
    name: &MachineName,
    client_certs: bool,
    timeout: Duration,
) -> anyhow::Result<String> {
    let store = Store::new(docker_config);
    let record = store.load(name)?;
    let session = super::machine::session(&record, timeout).await?;
    let address = machine_address(&record).expect("session() checked the address");
    let result = async {
        let facts = detect::detect(&session).await?;
        let client = install_server_cert(
            &session,
            &store,
            &record,
            address,
            &record.engine.tls_sans,
            client_certs,
        )
        .await?;
        daemon::restart_and_wait(&session, &facts, timeout).await?;
        anyhow::Ok(client)
    }
    .await;
    session.close().await;
    let client = result?;
    let context = record
        .engine
        .context_name
        .clone()
        .unwrap_or_else(|| record.name.to_string());
    let url = format!("tcp://{address}:{}", daemon::DOCKER_PORT);
    write_context(docker_config, &record, &context, &url, &client, false)?;
    let version = verify(docker_config, &context, &url, timeout).await?;
    Ok(format!(
        "{name}: new {} certificate{} installed; Docker {} answers at {url}",
        if client_certs {
            "CA, server and client"
        } else {
            "server"
        },
        if client_certs { "s" } else { "" },
        version.version
    ))
}
