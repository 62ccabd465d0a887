//! The daemon's configuration for each init system: a systemd drop-in, `/etc/default/docker`
//! (`DOCKER_OPTS`) for sysvinit/upstart, `/etc/conf.d/docker` for OpenRC. Rendering is pure and
//! unit-tested; applying it is a handful of commands over the session.

use std::time::Duration;

use super::{HostFacts, InitSystem, ProvisionError};
use crate::ssh::{Session, shell_quote};

pub const CA_PATH: &str = "/etc/docker/ca.pem";
pub const CERT_PATH: &str = "/etc/docker/server.pem";
pub const KEY_PATH: &str = "/etc/docker/server-key.pem";
pub const DOCKER_PORT: u16 = 2376;

/// `--engine-*` options, as docker-machine had them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EngineOptions {
    /// `--engine-opt key=value` → `--key=value` (or `--key` without a value).
    pub opts: Vec<String>,
    pub labels: Vec<String>,
    pub storage_driver: Option<String>,
    pub registry_mirrors: Vec<String>,
    pub insecure_registries: Vec<String>,
    /// `KEY=VALUE` for the daemon's environment.
    pub env: Vec<String>,
}

/// The rendered configuration: which file, what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonConfig {
    pub path: &'static str,
    pub contents: String,
}

/// dockerd's arguments: the TLS endpoint, the local socket, our label and the user's options.
pub fn daemon_args(engine: &EngineOptions) -> Vec<String> {
    let mut args = vec![
        format!("-H=tcp://0.0.0.0:{DOCKER_PORT}"),
        "-H=unix:///var/run/docker.sock".into(),
        "--tlsverify".into(),
        format!("--tlscacert={CA_PATH}"),
        format!("--tlscert={CERT_PATH}"),
        format!("--tlskey={KEY_PATH}"),
        "--label=provider=eucalyptus".into(),
    ];
    args.extend(engine.labels.iter().map(|l| format!("--label={l}")));
    if let Some(d) = &engine.storage_driver {
        args.push(format!("--storage-driver={d}"));
    }
    args.extend(
        engine
            .registry_mirrors
            .iter()
            .map(|m| format!("--registry-mirror={m}")),
    );
    args.extend(
        engine
            .insecure_registries
            .iter()
            .map(|r| format!("--insecure-registry={r}")),
    );
    args.extend(
        engine
            .opts
            .iter()
            .map(|o| format!("--{}", o.trim_start_matches('-'))),
    );
    args
}

/// `DOCKER_OPTS="…"`'s value: init scripts expand it unquoted, so arguments are split at spaces
/// and quotes would stay literal; only what a double-quoted shell string would expand is escaped.
/// (Arguments with whitespace are refused before this; see [`check_engine_value`].)
fn opts_value(args: &[String]) -> String {
    args.iter()
        .map(|a| {
            a.chars().fold(String::new(), |mut s, c| {
                if matches!(c, '\\' | '"' | '$' | '`') {
                    s.push('\\');
                }
                s.push(c);
                s
            })
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Engine option values end up in init-system files that split on whitespace.
pub fn check_engine_value(flag: &str, value: &str) -> Result<(), String> {
    if value.is_empty() || value.chars().any(char::is_whitespace) {
        return Err(format!(
            "{flag} {value:?}: engine options may not be empty or contain whitespace"
        ));
    }
    Ok(())
}

/// Renders the configuration file for `init`; `dockerd` is the daemon's path on the host.
pub fn render(init: InitSystem, engine: &EngineOptions, dockerd: &str) -> DaemonConfig {
    let args = daemon_args(engine);
    let header = "# Written by docker-euca; `docker euca provision` rewrites it.\n";
    match init {
        InitSystem::Systemd => {
            let mut s = format!(
                "{header}[Service]\nExecStart=\nExecStart={dockerd} {}\n",
                args.join(" ")
            );
            for e in &engine.env {
                s.push_str(&format!("Environment={}\n", shell_quote(e)));
            }
            DaemonConfig {
                path: "/etc/systemd/system/docker.service.d/10-docker-euca.conf",
                contents: s,
            }
        }
        InitSystem::SysV => {
            let mut s = format!("{header}DOCKER_OPTS=\"{}\"\n", opts_value(&args));
            for e in &engine.env {
                s.push_str(&format!("export {}\n", shell_quote(e)));
            }
            DaemonConfig {
                path: "/etc/default/docker",
                contents: s,
            }
        }
        InitSystem::OpenRc => {
            let mut s = format!("{header}DOCKER_OPTS=\"{}\"\n", opts_value(&args));
            for e in &engine.env {
                s.push_str(&format!("export {}\n", shell_quote(e)));
            }
            DaemonConfig {
                path: "/etc/conf.d/docker",
                contents: s,
            }
        }
    }
}

/// Commands that enable the daemon at boot and restart it.
fn restart_command(init: InitSystem, sudo: &str) -> String {
    match init {
        InitSystem::Systemd => format!(
            "{sudo}systemctl daemon-reload && {sudo}systemctl enable docker >/dev/null 2>&1; {sudo}systemctl restart docker"
        ),
        InitSystem::SysV => format!(
            "({sudo}update-rc.d docker defaults && {sudo}update-rc.d docker enable) >/dev/null 2>&1 || {sudo}chkconfig docker on >/dev/null 2>&1 || true; \
             {sudo}service docker stop >/dev/null 2>&1; {sudo}service docker start"
        ),
        InitSystem::OpenRc => format!(
            "{sudo}rc-update add docker default >/dev/null 2>&1; {sudo}rc-service docker restart"
        ),
    }
}

/// The last lines of the daemon's log, for error messages.
pub async fn log_tail(session: &Session, init: InitSystem) -> (String, String) {
    let sudo = session.sudo();
    let (log, cmd) = match init {
        InitSystem::Systemd => (
            "journalctl -u docker".to_string(),
            format!("{sudo}journalctl -u docker --no-pager -n 25 2>&1"),
        ),
        _ => (
            "/var/log/docker.log".to_string(),
            format!("{sudo}tail -n 25 /var/log/docker.log 2>&1"),
        ),
    };
    let tail = session
        .exec(&cmd)
        .await
        .map(|o| o.stdout_text())
        .unwrap_or_default();
    (log, tail.trim_end().to_string())
}

/// Writes the configuration, restarts and enables the daemon, and waits until its TLS port
/// listens on the host. On failure the error carries the daemon log's last lines.
pub async fn apply(
    session: &Session,
    facts: &HostFacts,
    engine: &EngineOptions,
    timeout: Duration,
) -> Result<(), ProvisionError> {
    let dockerd = session.run("command -v dockerd").await?.trim().to_string();
    let config = render(facts.init, engine, &dockerd);
    session
        .upload(config.path, config.contents.as_bytes(), 0o644)
        .await?;
    restart_and_wait(session, facts, timeout).await
}

/// Restarts (and enables) the daemon with its current configuration and waits for its port.
pub async fn restart_and_wait(
    session: &Session,
    facts: &HostFacts,
    timeout: Duration,
) -> Result<(), ProvisionError> {
    let restart = session
        .exec(&restart_command(facts.init, session.sudo()))
        .await?;
    let fail = |summary: String| async {
        let (log, tail) = log_tail(session, facts.init).await;
        ProvisionError::DaemonFailed { summary, log, tail }
    };
    if restart.status != 0 {
        let summary = format!(
            "restarting it exited with {}: {}",
            restart.status,
            restart.stderr_text().trim()
        );
        return Err(fail(summary).await);
    }
    // Wait for the TLS port from inside the host (no TLS client needed for that).
    let probe = format!(
        "for i in $(seq {n}); do if (exec 3<>/dev/tcp/127.0.0.1/{DOCKER_PORT}) 2>/dev/null; then exit 0; fi; \
         pidof dockerd >/dev/null || [ $i -lt 10 ] || exit 3; sleep 0.5; done; exit 1",
        n = timeout.as_secs().max(1) * 2
    );
    let out = session
        .exec(&format!("bash -c {}", shell_quote(&probe)))
        .await?;
    match out.status {
        0 => Ok(()),
        3 => Err(fail("dockerd exited".into()).await),
        _ => Err(fail(format!(
            "port {DOCKER_PORT} did not open within {timeout:?}"
        ))
        .await),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine() -> EngineOptions {
        EngineOptions {
            opts: vec!["log-level=debug".into()],
            labels: vec!["env=test".into()],
            storage_driver: Some("overlay2".into()),
            registry_mirrors: vec!["https://mirror.example".into()],
            insecure_registries: vec!["10.0.0.1:5000".into()],
            env: vec!["HTTP_PROXY=http://proxy:3128".into()],
        }
    }

    #[test]
    fn args_carry_tls_labels_and_options() {
        let args = daemon_args(&engine());
        for want in [
            "-H=tcp://0.0.0.0:2376",
            "--tlsverify",
            "--tlscacert=/etc/docker/ca.pem",
            "--label=provider=eucalyptus",
            "--label=env=test",
            "--storage-driver=overlay2",
            "--registry-mirror=https://mirror.example",
            "--insecure-registry=10.0.0.1:5000",
            "--log-level=debug",
        ] {
            assert!(
                args.contains(&want.to_string()),
                "{want} missing from {args:?}"
            );
        }
    }

    #[test]
    fn each_init_system_gets_its_file() {
        let s = render(InitSystem::Systemd, &engine(), "/usr/bin/dockerd");
        assert_eq!(
            s.path,
            "/etc/systemd/system/docker.service.d/10-docker-euca.conf"
        );
        assert!(
            s.contents
                .contains("ExecStart=\nExecStart=/usr/bin/dockerd -H=tcp://0.0.0.0:2376")
        );
        assert!(
            s.contents
                .contains("Environment=HTTP_PROXY=http://proxy:3128")
        );
        let v = render(InitSystem::SysV, &engine(), "/usr/sbin/dockerd");
        assert_eq!(v.path, "/etc/default/docker");
        assert!(v.contents.contains(
            "DOCKER_OPTS=\"-H=tcp://0.0.0.0:2376 -H=unix:///var/run/docker.sock --tlsverify"
        ));
        assert!(v.contents.contains("export HTTP_PROXY=http://proxy:3128"));
        assert_eq!(
            render(InitSystem::OpenRc, &engine(), "x").path,
            "/etc/conf.d/docker"
        );
    }
}
