//! Provisioning over one SSH session: wait for cloud-init, detect the OS and init system, make
//! sure the engine is installed, write the TLS material and the daemon configuration for that
//! init system, restart and enable the daemon, and wait until it listens. Never talks to EC2.

pub mod daemon;
pub mod detect;
pub mod userdata;

use std::time::Duration;

use crate::ssh::{Session, SshError, shell_quote};
pub use daemon::{DaemonConfig, EngineOptions};
pub use detect::{HostFacts, InitSystem};

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error(transparent)]
    Ssh(#[from] SshError),
    #[error("cloud-init did not finish within {0:?}")]
    CloudInitTimeout(Duration),
    #[error("the docker engine is not installed on the host and installing it failed: {0}")]
    Install(String),
    /// One line; the log tail is shown below the hint by the reporter (see [`ProvisionError::detail`]).
    #[error("the docker daemon did not start: {summary} (last lines of {log} below)")]
    DaemonFailed {
        summary: String,
        log: String,
        tail: String,
    },
}

impl ProvisionError {
    /// Lines worth showing under the one-line message: the daemon log's tail.
    pub fn detail(&self) -> Option<String> {
        match self {
            ProvisionError::DaemonFailed { log, tail, .. } => {
                Some(format!("--- last lines of {log} ---\n{tail}"))
            }
            _ => None,
        }
    }

    pub fn hint(&self) -> Option<String> {
        match self {
            ProvisionError::Ssh(e) => e.hint(),
            ProvisionError::Install(_) => Some("use an image with docker, --engine-install-url URL, or check the instance's package mirror".into()),
            ProvisionError::DaemonFailed { .. } => Some("check --engine-opt/--engine-* values against `dockerd --help` on the host".into()),
            ProvisionError::CloudInitTimeout(_) => Some("the image may be slow to boot; raise --stage-timeout".into()),
        }
    }
}

/// How to get the engine onto the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineInstall {
    /// The distribution's package (asked of cloud-init while booting; over SSH if still missing).
    Package,
    /// Run this install script (`curl -fsSL URL | sh`).
    Url(String),
    /// Use what the image has.
    Skip,
}

/// Waits for cloud-init to finish. Exit 2 ("done, with errors": e.g. no package mirror) counts as
/// finished; images without cloud-init fall back to `boot-finished`, then to nothing.
pub async fn wait_cloud_init(
    session: &Session,
    timeout: Duration,
) -> Result<String, ProvisionError> {
    let script = "if command -v cloud-init >/dev/null 2>&1; then cloud-init status --wait >/dev/null 2>&1; rc=$?; \
                  if [ $rc -eq 0 ] || [ $rc -eq 2 ]; then echo cloud-init:$rc; exit 0; fi; fi; \
                  for i in $(seq 600); do [ -e /var/lib/cloud/instance/boot-finished ] && { echo boot-finished; exit 0; }; \
                  command -v cloud-init >/dev/null 2>&1 || { echo no-cloud-init; exit 0; }; sleep 1; done; exit 1";
    match tokio::time::timeout(timeout, session.exec(script)).await {
        Ok(out) => {
            let out = out?;
            if out.status != 0 {
                return Err(ProvisionError::CloudInitTimeout(timeout));
            }
            Ok(out.stdout_text().trim().to_string())
        }
        Err(_) => Err(ProvisionError::CloudInitTimeout(timeout)),
    }
}

/// Makes sure `dockerd` is on the host; returns the engine version `dockerd --version` reports.
pub async fn ensure_engine(
    session: &Session,
    facts: &HostFacts,
    install: &EngineInstall,
) -> Result<String, ProvisionError> {
    let sudo = session.sudo();
    let present = session
        .exec("command -v dockerd >/dev/null 2>&1")
        .await?
        .status
        == 0;
    if !present {
        let command = match install {
            EngineInstall::Skip => {
                return Err(ProvisionError::Install(
                    "--engine-install skip, and the image has no dockerd".into(),
                ));
            }
            EngineInstall::Url(url) => format!(
                "(command -v curl >/dev/null && curl -fsSL {u} || wget -qO- {u}) | {sudo}sh",
                u = shell_quote(url)
            ),
            EngineInstall::Package => facts.package_install_command(sudo),
        };
        let out = session.exec(&command).await?;
        if out.status != 0
            || session
                .exec("command -v dockerd >/dev/null 2>&1")
                .await?
                .status
                != 0
        {
            let err = out.stderr_text();
            let tail: Vec<&str> = err.lines().rev().take(5).collect();
            return Err(ProvisionError::Install(
                tail.into_iter().rev().collect::<Vec<_>>().join(" / "),
            ));
        }
    }
    let version = session
        .run("dockerd --version 2>/dev/null || docker --version")
        .await?;
    Ok(version.trim().to_string())
}
