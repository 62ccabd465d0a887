//! The daemon's configuration for each init system: a systemd drop-in, `/etc/default/docker`
//! (`DOCKER_OPTS`) for sysvinit/upstart, `/etc/conf.d/docker` for OpenRC. Rendering is pure and
//! unit-tested; applying it is a handful of commands over the session.

use std::time::Duration;

use super::{HostFacts, InitSystem, ProvisionError};
use crate::ssh::{RemoteFile, Session, SshError, shell_quote};

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

/// One word of a systemd `ExecStart=` line (systemd.service, "Command lines"). systemd expands
/// `%` specifiers over the whole line first (`%%` is a literal `%`), then splits it into words
/// honouring double quotes and C escapes, then substitutes `$VAR`/`${VAR}` in each word (`$$`
/// is a literal `$`). A word made only of harmless characters stays bare so the unit reads
/// naturally; any other is double-quoted with `\\`, `\"` and control characters escaped.
fn systemd_exec_word(word: &str) -> String {
    let bare = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-=:,+@".contains(c));
    if bare {
        word.to_string()
    } else {
        format!("\"{}\"", systemd_escape(word, true))
    }
}

/// One `Environment=` assignment (systemd.exec): always double-quoted so that `=`, blanks or
/// quotes in the value cannot split it, with C escapes and `%%`. Unlike `ExecStart=`, systemd
/// does no `$` expansion here ("the `$` character has no special meaning"), so a `$` is
/// written as it is: `$$` would reach the daemon as two dollars.
fn systemd_environment(assignment: &str) -> String {
    format!("\"{}\"", systemd_escape(assignment, false))
}

/// The inside of a double-quoted systemd string; `dollars` doubles `$` (for `ExecStart=`).
fn systemd_escape(word: &str, dollars: bool) -> String {
    let mut escaped = String::with_capacity(word.len());
    for c in word.chars() {
        match c {
            '%' => escaped.push_str("%%"),
            '$' if dollars => escaped.push_str("$$"),
            '\\' => escaped.push_str(r"\\"),
            '"' => escaped.push_str(r#"\""#),
            '\n' => escaped.push_str(r"\n"),
            '\t' => escaped.push_str(r"\t"),
            '\r' => escaped.push_str(r"\r"),
            c if c.is_ascii_control() => escaped.push_str(&format!(r"\x{:02x}", u32::from(c))),
            c if c.is_control() => escaped.push_str(&format!(r"\u{:04x}", u32::from(c))),
            c => escaped.push(c),
        }
    }
    escaped
}

/// Renders the configuration file for `init`; `dockerd` is the daemon's path on the host.
pub fn render(init: InitSystem, engine: &EngineOptions, dockerd: &str) -> DaemonConfig {
    let args = daemon_args(engine);
    let header = "# Written by docker-euca; `docker euca provision` rewrites it.\n";
    match init {
        InitSystem::Systemd => {
            let command_line = std::iter::once(dockerd)
                .chain(args.iter().map(String::as_str))
                .map(systemd_exec_word)
                .collect::<Vec<_>>()
                .join(" ");
            let mut s = format!("{header}[Service]\nExecStart=\nExecStart={command_line}\n");
            for e in &engine.env {
                s.push_str(&format!("Environment={}\n", systemd_environment(e)));
            }
            DaemonConfig {
                path: config_path(init),
                contents: s,
            }
        }
        InitSystem::SysV => {
            let mut s = format!("{header}DOCKER_OPTS=\"{}\"\n", opts_value(&args));
            for e in &engine.env {
                s.push_str(&format!("export {}\n", shell_quote(e)));
            }
            DaemonConfig {
                path: config_path(init),
                contents: s,
            }
        }
        InitSystem::OpenRc => {
            let mut s = format!("{header}DOCKER_OPTS=\"{}\"\n", opts_value(&args));
            for e in &engine.env {
                s.push_str(&format!("export {}\n", shell_quote(e)));
            }
            DaemonConfig {
                path: config_path(init),
                contents: s,
            }
        }
    }
}

/// Where [`render`] puts the daemon's configuration for `init`.
pub fn config_path(init: InitSystem) -> &'static str {
    match init {
        InitSystem::Systemd => "/etc/systemd/system/docker.service.d/10-docker-euca.conf",
        InitSystem::SysV => "/etc/default/docker",
        InitSystem::OpenRc => "/etc/conf.d/docker",
    }
}

/// As root: restart (and enable) the daemon, then wait for its port. Exit status 92: the
/// restart failed; 3: dockerd exited; 1: the port did not open within `timeout`.
pub fn restart_and_wait(init: InitSystem, timeout: Duration) -> String {
    format!(
        "{{ {}; }} || exit 92\n{}",
        restart_command(init, ""),
        probe_script(DOCKER_PORT, timeout.as_secs().max(1), "")
    )
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

/// Reloads sshd (after a new host key is in place) on whatever the host runs.
pub const SSHD_RELOAD: &str = "systemctl reload ssh 2>/dev/null || systemctl reload sshd 2>/dev/null || \
     service ssh reload 2>/dev/null || service sshd reload 2>/dev/null || \
     rc-service sshd reload 2>/dev/null || kill -HUP $(cat /var/run/sshd.pid)";

/// Writes `files` (the TLS material and the daemon's configuration), reloads sshd when a new
/// host key is among them, restarts (and enables) the daemon and waits for its port: one
/// round trip for all of it. On failure the error carries the daemon log's last lines.
pub async fn install_and_restart(
    session: &Session,
    facts: &HostFacts,
    files: &[RemoteFile<'_>],
    reload_sshd: bool,
    timeout: Duration,
) -> Result<(), ProvisionError> {
    let mut then = Vec::new();
    if reload_sshd {
        then.push(format!("{{ {SSHD_RELOAD}; }} >/dev/null 2>&1 || exit 91"));
    }
    then.push(restart_and_wait(facts.init, timeout));
    let out = session.write_files_then(files, &then.join("\n")).await?;
    let failed = |what: &str| {
        ProvisionError::Ssh(SshError::Command {
            command: what.to_string(),
            status: out.status,
            stderr: out.stderr_text().trim().to_string(),
        })
    };
    let summary = match out.status {
        0 => return Ok(()),
        90 => return Err(failed("writing the TLS files and the daemon configuration")),
        91 => return Err(failed("reloading sshd with the new host key")),
        status => restart_failure(status, out.lost, &out.stderr_text(), timeout),
    };
    let (log, tail) = log_tail(session, facts.init).await;
    Err(ProvisionError::DaemonFailed { summary, log, tail })
}

/// What the restart-and-wait script's exit `status` (see [`restart_and_wait`]) says went
/// wrong. Only status 1 is the port not opening in time: a lost connection or a killed shell
/// (the host went down under it) says so instead.
fn restart_failure(status: u32, lost: bool, stderr: &str, timeout: Duration) -> String {
    match status {
        _ if lost => "the SSH connection was lost while it restarted (the host went away?)".into(),
        92 => format!("restarting it failed: {}", stderr.trim()),
        3 => "dockerd exited".into(),
        1 => format!("port {DOCKER_PORT} did not open within {timeout:?}"),
        129..=192 => format!(
            "the command restarting it was killed by signal {}",
            status - 128
        ),
        _ => format!(
            "the command restarting it ended with status {status}: {}",
            stderr.trim()
        ),
    }
}

/// The readiness probe, for POSIX `sh` alone (Alpine and other small images have no bash):
/// exits 0 once something listens on `port`, 3 when dockerd is still not running after the
/// first five seconds, 1 after `wait_secs` (tenth-of-a-second tries: the port is seen open
/// at most 0.1 s late).
///
/// "Listens" is read from `/proc/net/tcp{,6}` (state `0A`), which every Linux has and which
/// needs no tool at all; `nc -z`, bash's `/dev/tcp` and `docker version` on the local socket
/// are asked only when they exist, for hosts where that read fails. dockerd binds all its
/// listeners together before it serves, so the unix socket answering means the TLS port is
/// bound too. Without `pidof` and `pgrep` there is no telling whether dockerd runs, so the
/// probe then waits the whole time instead of failing fast. `sleep 0.5` falls back to
/// `sleep 1` where fractions are refused (doubling the wait, never shortening it).
///
/// One line, no `!`: the login shell that runs `sh -c '…'` may be tcsh, which refuses line
/// breaks inside single quotes and expands `!` even there.
fn probe_script(port: u16, wait_secs: u64, sudo: &str) -> String {
    let hex = format!("{port:04X}");
    let attempts = wait_secs * 10;
    [
        format!(
            "listening() {{ grep -Eq '^ *[0-9]+: [0-9A-F]+:{hex} [0-9A-F]+:[0-9A-F]+ 0A ' /proc/net/tcp /proc/net/tcp6 2>/dev/null && return 0"
        ),
        format!(
            "if command -v nc >/dev/null 2>&1; then nc -z 127.0.0.1 {port} >/dev/null 2>&1 && return 0; fi"
        ),
        format!(
            "if command -v bash >/dev/null 2>&1; then bash -c 'exec 3<>/dev/tcp/127.0.0.1/{port}' >/dev/null 2>&1 && return 0; fi"
        ),
        format!(
            "if command -v docker >/dev/null 2>&1; then {sudo}docker -H unix:///var/run/docker.sock version --format '{{{{.Server.Version}}}}' >/dev/null 2>&1 && return 0; fi"
        ),
        "return 1; }".to_string(),
        "running() { if command -v pidof >/dev/null 2>&1; then pidof dockerd >/dev/null 2>&1; \
         elif command -v pgrep >/dev/null 2>&1; then pgrep -x dockerd >/dev/null 2>&1; else return 0; fi; }"
            .to_string(),
        "i=0".to_string(),
        format!(
            "while [ \"$i\" -lt {attempts} ]; do listening && exit 0; \
             running || [ \"$i\" -lt 50 ] || exit 3; sleep 0.1 2>/dev/null || sleep 1; i=$((i + 1)); done"
        ),
        "exit 1".to_string(),
    ]
    .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_status_1_says_the_port_did_not_open() {
        let t = Duration::from_secs(300);
        assert_eq!(
            restart_failure(1, false, "", t),
            "port 2376 did not open within 300s"
        );
        assert_eq!(restart_failure(3, false, "", t), "dockerd exited");
        assert_eq!(
            restart_failure(92, false, "Job failed\n", t),
            "restarting it failed: Job failed"
        );
        assert!(restart_failure(255, true, "", t).contains("connection was lost"));
        assert_eq!(
            restart_failure(137, false, "killed by signal KILL", t),
            "the command restarting it was killed by signal 9"
        );
        assert_eq!(
            restart_failure(2, false, "sh: syntax error", t),
            "the command restarting it ended with status 2: sh: syntax error"
        );
    }

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
                .contains("Environment=\"HTTP_PROXY=http://proxy:3128\"\n")
        );
        let v = render(InitSystem::SysV, &engine(), "/usr/sbin/dockerd");
        assert_eq!(v.path, "/etc/default/docker");
        assert!(v.contents.contains(
            "DOCKER_OPTS=\"-H=tcp://0.0.0.0:2376 -H=unix:///var/run/docker.sock --tlsverify"
        ));
        assert!(
            v.contents.contains("export 'HTTP_PROXY=http://proxy:3128'"),
            "{}",
            v.contents
        );
        assert_eq!(
            render(InitSystem::OpenRc, &engine(), "x").path,
            "/etc/conf.d/docker"
        );
    }

    fn tricky_engine() -> EngineOptions {
        EngineOptions {
            labels: vec!["cost=100%".into()],
            opts: vec![r#"log-opt=tag=a$b"c\"#.into()],
            env: vec![
                "HTTP_PROXY=http://proxy:3128/$x%y".into(),
                r#"NOTE=say "hi" \o/"#.into(),
            ],
            ..EngineOptions::default()
        }
    }

    #[test]
    fn systemd_escapes_specifiers_dollars_and_quotes() {
        let s = render(InitSystem::Systemd, &tricky_engine(), "/usr/bin/dockerd").contents;
        let exec = concat!(
            "ExecStart=/usr/bin/dockerd -H=tcp://0.0.0.0:2376 -H=unix:///var/run/docker.sock",
            " --tlsverify --tlscacert=/etc/docker/ca.pem --tlscert=/etc/docker/server.pem",
            " --tlskey=/etc/docker/server-key.pem --label=provider=eucalyptus",
            r#" "--label=cost=100%%" "--log-opt=tag=a$$b\"c\\""#,
            "\n"
        );
        assert!(s.contains(exec), "{s}");
        // Environment= does no `$` expansion: a `$` stays single.
        assert!(
            s.contains("Environment=\"HTTP_PROXY=http://proxy:3128/$x%%y\"\n"),
            "{s}"
        );
        assert!(s.contains(r#"Environment="NOTE=say \"hi\" \\o/""#), "{s}");
    }

    #[test]
    fn systemd_words_escape_control_characters() {
        assert_eq!(systemd_exec_word("--label=a\tb\nc"), r#""--label=a\tb\nc""#);
        assert_eq!(systemd_exec_word("a\u{7}b"), r#""a\x07b""#);
        assert_eq!(systemd_exec_word(""), r#""""#);
        assert_eq!(systemd_exec_word("--tlsverify"), "--tlsverify");
    }

    /// systemd's own parser, where it is installed: the drop-in must load without an escape
    /// or specifier complaint.
    #[test]
    fn systemd_accepts_the_drop_in() {
        let Ok(version) = std::process::Command::new("systemd-analyze")
            .arg("--version")
            .output()
        else {
            return;
        };
        if !version.status.success() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let unit = dir.path().join("docker-euca-test.service");
        let drop_in = render(InitSystem::Systemd, &tricky_engine(), "/bin/true").contents;
        std::fs::write(
            &unit,
            drop_in.replace("[Service]\n", "[Service]\nType=oneshot\n"),
        )
        .unwrap();
        let out = std::process::Command::new("systemd-analyze")
            .arg("verify")
            .arg(&unit)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !stderr.contains("escape") && !stderr.contains("specifier"),
            "{stderr}"
        );
    }

    #[cfg(unix)] // runs the script with the local `sh`
    #[test]
    fn probe_is_posix_sh_without_bash() {
        let script = probe_script(DOCKER_PORT, 10, "sudo -n ");
        // bash only where it exists, never as the interpreter.
        assert_eq!(
            script.matches("bash").count(),
            script
                .matches("if command -v bash >/dev/null 2>&1; then bash -c ")
                .count()
                * 2,
            "{script}"
        );
        assert!(!script.contains("seq "), "{script}");
        // One line without `!`, for a tcsh login shell running `sh -c '…'`.
        assert!(!script.contains('\n') && !script.contains('!'), "{script}");
        assert!(script.contains(":0948 "), "{script}");
        assert!(
            script.contains("sudo -n docker -H unix:///var/run/docker.sock version --format '{{.Server.Version}}'"),
            "{script}"
        );
        assert!(script.contains("exit 3"), "{script}");
        let check = std::process::Command::new("sh")
            .args(["-n", "-c", script.as_str()])
            .output()
            .unwrap();
        assert!(
            check.status.success(),
            "{}",
            String::from_utf8_lossy(&check.stderr)
        );
    }

    #[cfg(unix)] // runs the script with the local `sh`
    #[test]
    fn probe_sees_a_listening_port() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let status = std::process::Command::new("sh")
            .args(["-c", probe_script(port, 1, "").as_str()])
            .status()
            .unwrap();
        assert_eq!(status.code(), Some(0));
    }
}
