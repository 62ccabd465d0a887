//! Everything provisioning reads from the host, in one round trip: cloud-init finished (waiting
//! for it if need be), the OS, the init system, the engine and the hostname. The script is
//! POSIX `sh`; each part is printed after a marker line, and parsing is pure.

use std::time::Duration;

use super::{HostFacts, ProvisionError, detect};
use crate::ssh::Session;

/// What the host said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostProbe {
    /// How cloud-init was found finished: `result.json`, `cloud-init:0|2`, `boot-finished`,
    /// `no-cloud-init`.
    pub cloud_init: String,
    pub facts: HostFacts,
    /// `dockerd`'s path, if installed.
    pub dockerd: Option<String>,
    /// `dockerd --version`, if installed.
    pub engine_version: Option<String>,
    pub hostname: String,
}

const MARK: &str = "@@docker-euca:";

/// cloud-init's `result.json` lives in `/run` (empty at every boot) and is written when its
/// last stage ends: there, nothing needs to start Python. Otherwise `cloud-init status
/// --wait` (exit 2, "done with errors", counts as finished), then `boot-finished`.
const CLOUD_INIT: &str = "if [ -e /run/cloud-init/result.json ]; then echo result.json; \
    elif command -v cloud-init >/dev/null 2>&1 && { cloud-init status --wait >/dev/null 2>&1; rc=$?; [ $rc -eq 0 ] || [ $rc -eq 2 ]; }; then echo cloud-init:$rc; \
    elif command -v cloud-init >/dev/null 2>&1 || [ -d /var/lib/cloud ]; then i=0; \
    while [ $i -lt 600 ]; do [ -e /var/lib/cloud/instance/boot-finished ] && { echo boot-finished; break; }; sleep 1; i=$((i + 1)); done; \
    [ $i -lt 600 ] || echo timeout; \
    else echo no-cloud-init; fi";

/// The whole script, one line (the login shell running `sh -c '…'` may be tcsh).
pub fn script() -> String {
    [
        format!("echo {MARK}cloud-init"),
        CLOUD_INIT.to_string(),
        format!("echo {MARK}os-release"),
        "cat /etc/os-release 2>/dev/null || cat /usr/lib/os-release 2>/dev/null".into(),
        format!("echo {MARK}init"),
        detect::INIT_PROBE.into(),
        format!("echo {MARK}dockerd"),
        "command -v dockerd 2>/dev/null".into(),
        format!("echo {MARK}version"),
        "dockerd --version 2>/dev/null || docker --version 2>/dev/null".into(),
        format!("echo {MARK}hostname"),
        "hostname -f 2>/dev/null || hostname".into(),
        "exit 0".into(),
    ]
    .join("; ")
}

/// Splits the output into its parts.
pub fn parse(out: &str) -> Result<HostProbe, String> {
    let mut parts: Vec<(&str, String)> = Vec::new();
    for line in out.lines() {
        match line.strip_prefix(MARK) {
            Some(name) => parts.push((name, String::new())),
            // Lines before the first marker (a login banner, profile noise) are dropped.
            None => {
                if let Some((_, text)) = parts.last_mut() {
                    text.push_str(line);
                    text.push('\n');
                }
            }
        }
    }
    let part = |name: &str| {
        parts
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, t)| t.trim().to_string())
            .ok_or_else(|| format!("the host's answer has no {name} part"))
    };
    let nonempty = |s: String| (!s.is_empty()).then_some(s);
    Ok(HostProbe {
        cloud_init: part("cloud-init")?,
        facts: detect::parse_facts(&part("os-release")?, &part("init")?),
        dockerd: nonempty(part("dockerd")?),
        engine_version: nonempty(part("version")?),
        hostname: part("hostname")?,
    })
}

/// Runs the probe; waiting for cloud-init is bounded by `timeout`.
pub async fn probe(session: &Session, timeout: Duration) -> Result<HostProbe, ProvisionError> {
    let command = format!("sh -c {}", crate::ssh::shell_quote(&script()));
    let out = tokio::time::timeout(timeout, session.exec(&command))
        .await
        .map_err(|_| ProvisionError::CloudInitTimeout(timeout))??;
    if out.lost {
        return Err(ProvisionError::ConnectionLost);
    }
    let probe = parse(&out.stdout_text()).map_err(ProvisionError::Probe)?;
    if probe.cloud_init == "timeout" {
        return Err(ProvisionError::CloudInitTimeout(timeout));
    }
    Ok(probe)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provision::InitSystem;

    #[test]
    fn the_parts_are_read_after_their_markers() {
        let out = "Welcome!\n@@docker-euca:cloud-init\nresult.json\n@@docker-euca:os-release\n\
                   PRETTY_NAME=\"Debian 12\"\nID=debian\n@@docker-euca:init\nsysv\n\
                   @@docker-euca:dockerd\n/usr/sbin/dockerd\n@@docker-euca:version\n\
                   Docker version 20.10.24\n@@docker-euca:hostname\neuca-10-0-0-5\n";
        let p = parse(out).unwrap();
        assert_eq!(p.cloud_init, "result.json");
        assert_eq!(
            (p.facts.os_id.as_str(), p.facts.init),
            ("debian", InitSystem::SysV)
        );
        assert_eq!(p.dockerd.as_deref(), Some("/usr/sbin/dockerd"));
        assert_eq!(p.engine_version.as_deref(), Some("Docker version 20.10.24"));
        assert_eq!(p.hostname, "euca-10-0-0-5");
    }

    #[test]
    fn a_host_without_an_engine_says_so_and_a_cut_answer_is_an_error() {
        let out = "@@docker-euca:cloud-init\nno-cloud-init\n@@docker-euca:os-release\nID=alpine\n\
                   @@docker-euca:init\nopenrc\n@@docker-euca:dockerd\n@@docker-euca:version\n\
                   @@docker-euca:hostname\nh\n";
        let p = parse(out).unwrap();
        assert_eq!((p.dockerd, p.engine_version), (None, None));
        assert!(parse("@@docker-euca:cloud-init\nresult.json\n").is_err());
    }

    #[cfg(unix)] // runs the script with the local `sh`
    #[test]
    fn the_script_is_one_posix_sh_line() {
        let s = script();
        assert!(!s.contains('\n') && !s.contains('!'), "{s}");
        // Syntax only: running it here would wait for this machine's own cloud-init.
        let out = std::process::Command::new("sh")
            .args(["-n", "-c", s.as_str()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
