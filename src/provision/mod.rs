//! Provisioning over one SSH session: wait for cloud-init, detect the OS and init system, make
//! sure the engine is installed, write the TLS material and the daemon configuration for that
//! init system, restart and enable the daemon, and wait until it listens. Never talks to EC2.

pub mod daemon;
pub mod detect;
pub mod probe;
pub mod upgrade;
pub mod userdata;

use std::time::Duration;

use crate::ssh::{Session, SshError, shell_quote};
pub use daemon::{DaemonConfig, EngineOptions};
pub use detect::{HostFacts, InitSystem};

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error(transparent)]
    Ssh(#[from] SshError),
    #[error("the host's answer could not be read: {0}")]
    Probe(String),
    /// The connection died while the host was read (its answer cut short): read again over a
    /// new connection.
    #[error("the SSH connection was lost while the host was being read")]
    ConnectionLost,
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
            ProvisionError::Probe(_) => Some("the login shell may print too much; `docker euca ssh NAME` shows what it says".into()),
            ProvisionError::ConnectionLost => Some("the host stopped answering; check it with `docker euca logs NAME --console`".into()),
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

/// Installs the engine on a host whose probe found none, within `timeout`; returns its
/// `dockerd` path and version.
pub async fn install_engine(
    session: &Session,
    facts: &HostFacts,
    install: &EngineInstall,
    timeout: Duration,
) -> Result<(String, String), ProvisionError> {
    let sudo = session.sudo();
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
    // A package manager behind an unreachable mirror waits until its connections time out.
    let out = tokio::time::timeout(timeout, session.exec(&command))
        .await
        .map_err(|_| {
            ProvisionError::Install(format!(
                "the install did not finish within {timeout:?} (no reachable package mirror?)"
            ))
        })??;
    let found = session
        .exec("command -v dockerd && (dockerd --version 2>/dev/null || docker --version)")
        .await?;
    let text = found.stdout_text();
    let mut lines = text.lines();
    match (found.status, lines.next(), lines.next()) {
        (0, Some(path), Some(version)) if out.status == 0 => {
            Ok((path.trim().to_string(), version.trim().to_string()))
        }
        _ => {
            let err = out.stderr_text();
            let tail: Vec<&str> = err.lines().rev().take(5).collect();
            Err(ProvisionError::Install(
                tail.into_iter().rev().collect::<Vec<_>>().join(" / "),
            ))
        }
    }
}
