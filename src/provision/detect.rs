//! What the host runs: its distribution (`/etc/os-release`) and its init system.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitSystem {
    Systemd,
    /// sysvinit or upstart: `service`, `/etc/default/docker`.
    SysV,
    OpenRc,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostFacts {
    /// `ID` from os-release (`ubuntu`, `debian`, `rhel`, `alpine`, …).
    pub os_id: String,
    /// `ID_LIKE`, for families.
    pub os_like: String,
    pub pretty_name: String,
    pub init: InitSystem,
}

/// Parses os-release text plus the init probe's answer.
pub fn parse_facts(os_release: &str, init_probe: &str) -> HostFacts {
    let field = |key: &str| {
        os_release
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .map(|v| v.trim().trim_matches('"').trim_matches('\'').to_string())
            .unwrap_or_default()
    };
    let init = match init_probe.trim() {
        "systemd" => InitSystem::Systemd,
        "openrc" => InitSystem::OpenRc,
        _ => InitSystem::SysV,
    };
    HostFacts {
        os_id: field("ID"),
        os_like: field("ID_LIKE"),
        pretty_name: field("PRETTY_NAME"),
        init,
    }
}

impl HostFacts {
    fn is(&self, family: &str) -> bool {
        self.os_id == family || self.os_like.split_whitespace().any(|f| f == family)
    }

    /// The package manager's install command for the engine.
    pub fn package_install_command(&self, sudo: &str) -> String {
        if self.is("debian") || self.is("ubuntu") {
            format!(
                "{sudo}env DEBIAN_FRONTEND=noninteractive apt-get update -qq && {sudo}env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io"
            )
        } else if self.is("alpine") {
            format!("{sudo}apk add --no-cache docker")
        } else if self.is("fedora") || self.is("rhel") || self.is("centos") {
            format!("({sudo}dnf install -y docker || {sudo}yum install -y docker)")
        } else {
            "echo 'no known package manager for this distribution' >&2; exit 1".into()
        }
    }
}

/// Prints the init system: `systemd`, `openrc` or `sysv`.
pub const INIT_PROBE: &str = "if [ -d /run/systemd/system ]; then echo systemd; elif command -v openrc-run >/dev/null 2>&1 || command -v rc-service >/dev/null 2>&1; then echo openrc; else echo sysv; fi";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_release_and_init() {
        let f = parse_facts(
            "PRETTY_NAME=\"Ubuntu 22.04 LTS\"\nID=ubuntu\nID_LIKE=debian\n",
            "systemd\n",
        );
        assert_eq!((f.os_id.as_str(), f.init), ("ubuntu", InitSystem::Systemd));
        assert!(
            f.package_install_command("sudo -n ")
                .contains("apt-get install -y -qq docker.io")
        );
        let a = parse_facts("ID=alpine\n", "openrc");
        assert_eq!(a.init, InitSystem::OpenRc);
        assert!(a.package_install_command("").starts_with("apk add"));
        let r = parse_facts("ID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\n", "sysv");
        assert_eq!(r.init, InitSystem::SysV);
        assert!(
            r.package_install_command("")
                .contains("dnf install -y docker")
        );
    }
}
