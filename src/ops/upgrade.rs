//! `upgrade`: the engine upgraded through the host's own package manager, the daemon's
//! configuration kept, the daemon restarted and verified over mutual TLS; refused when the
//! mirror has nothing newer. Holds the machine's lock for the whole of it.

use std::{path::Path, time::Duration};

use anyhow::Context;

use super::{machine, setup};
use crate::{
    engine::EngineVersion,
    names::MachineName,
    progress::Progress,
    provision::upgrade::{self, EnginePackage, PackageError},
    report::Hinted,
    ssh::Session,
    store::Store,
};

/// What an upgrade did.
#[derive(Debug)]
pub struct Upgraded {
    pub package: String,
    pub from: String,
    pub to: String,
    /// The package replaced the daemon's configuration file and ours was put back.
    pub config_restored: bool,
    pub engine: EngineVersion,
}

pub async fn upgrade(
    docker_config: &Path,
    name: &MachineName,
    timeout: Duration,
    progress: &mut Progress,
) -> anyhow::Result<Upgraded> {
    let store = Store::new(docker_config);
    let _lock = store.lock_operation(name, "upgrade")?;
    let record = store.load(name)?;
    let url = record.engine.url.clone().ok_or_else(|| {
        Hinted::new(
            format!("{name} has no daemon endpoint yet"),
            "`docker euca provision NAME` sets it up",
        )
    })?;
    let session = machine::session(&store, &record, timeout).await?;

    progress.stage("reading the engine's package and the mirror's newest");
    let engine = read_package(&session, name, timeout).await?;
    progress.finish_stage();
    let Some(to) = engine.available.clone() else {
        return Err(nothing_newer(name, &engine).into());
    };

    progress.stage(format!(
        "upgrading {} {} to {to}",
        engine.package, engine.installed
    ));
    let config_restored = run_upgrade(&session, name, &engine, timeout).await?;
    progress.finish_stage();

    progress.stage("verifying the daemon over mutual TLS");
    let engine_version =
        setup::verify(docker_config, &record.context_name(), &url, timeout).await?;
    let now = read_package(&session, name, timeout).await?;
    progress.finish_stage();
    if now.installed != to {
        anyhow::bail!(
            "{name}: the package manager reports {} {} after the upgrade to {to}",
            now.package,
            now.installed
        );
    }
    store.update(name, |r| {
        r.engine.version = Some(engine_version.version.clone())
    })?;
    session.close().await;
    Ok(Upgraded {
        package: engine.package,
        from: engine.installed,
        to,
        config_restored,
        engine: engine_version,
    })
}

fn nothing_newer(name: &MachineName, engine: &EnginePackage) -> Hinted {
    Hinted::new(
        format!(
            "{name}: {} {} is the newest version the host's package mirror has",
            engine.package, engine.installed
        ),
        "nothing to upgrade; `docker euca version NAME` shows the engine's version",
    )
}

/// One round trip, as root: which package holds the engine and what the mirror has.
async fn read_package(
    session: &Session,
    name: &MachineName,
    timeout: Duration,
) -> anyhow::Result<EnginePackage> {
    let command = format!("{}sh -s", session.sudo());
    let script = upgrade::read_script();
    let out = tokio::time::timeout(
        timeout,
        session.exec_with_input(&command, Some(script.as_bytes())),
    )
    .await
    .map_err(|_| {
        Hinted::new(
            format!("{name}: the package manager did not answer within {timeout:?}"),
            "is the host's package mirror reachable? --timeout gives it longer",
        )
    })??;
    upgrade::parse_read(&out.stdout_text()).map_err(|e| {
        let hint = match e {
            PackageError::RefreshFailed => "check the host's package sources (apt, dnf, apk)",
            _ => "upgrade the engine by hand over `docker euca ssh NAME`",
        };
        Hinted::new(format!("{name}: {e}"), hint).into()
    })
}

/// Runs the upgrade, the configuration check and the restart; returns whether the daemon's
/// configuration had to be put back.
async fn run_upgrade(
    session: &Session,
    name: &MachineName,
    engine: &EnginePackage,
    timeout: Duration,
) -> anyhow::Result<bool> {
    let command = format!("{}sh -s", session.sudo());
    let script = upgrade::upgrade_script(engine, timeout);
    // The package download and the daemon's restart each get the timeout.
    let out = tokio::time::timeout(
        timeout * 2,
        session.exec_with_input(&command, Some(script.as_bytes())),
    )
    .await
    .map_err(|_| {
        Hinted::new(
            format!(
                "{name}: the upgrade did not finish within {:?}",
                timeout * 2
            ),
            "see what the package manager is doing with `docker euca ssh NAME`",
        )
    })?
    .context("the upgrade's connection")?;
    // The package manager's last word is its error ("E: …").
    let err_text = out.stderr_text();
    let stderr = err_text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("no error output")
        .trim()
        .to_string();
    let failed = |what: &str| -> anyhow::Error {
        Hinted::new(
            format!("{name}: {what}: {stderr}"),
            "`docker euca logs NAME` and `docker euca ssh NAME` show the host's side",
        )
        .into()
    };
    match out.status {
        0 => Ok(out.stdout_text().lines().any(|l| l == "config-restored")),
        upgrade::CONFIG_SAVE_FAILED => {
            Err(failed("cannot keep a copy of the daemon's configuration"))
        }
        upgrade::UPGRADE_FAILED => {
            Err(failed(&format!("the upgrade of {} failed", engine.package)))
        }
        92 => Err(failed("the daemon did not restart after the upgrade")),
        3 => Err(failed("dockerd exited after the upgrade")),
        _ => Err(failed("the daemon's port did not open after the upgrade")),
    }
}
