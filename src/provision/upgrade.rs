//! The engine's upgrade through the host's own package manager: which package holds the
//! engine, whether the mirror has a newer one, and the upgrade that keeps the daemon's
//! configuration. Scripts are rendered and answers parsed here (pure, unit-tested); the
//! operation in `ops::upgrade` runs them.

use std::time::Duration;

use super::{InitSystem, daemon, detect::INIT_PROBE};

/// The package managers an engine upgrade knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PackageManager {
    Apt,
    Dnf,
    Yum,
    Apk,
}

impl PackageManager {
    fn from_word(word: &str) -> Option<PackageManager> {
        Some(match word {
            "apt" => PackageManager::Apt,
            "dnf" => PackageManager::Dnf,
            "yum" => PackageManager::Yum,
            "apk" => PackageManager::Apk,
            _ => return None,
        })
    }

    /// The packages that can hold the engine, in the order they are looked for.
    fn engine_packages(self) -> &'static [&'static str] {
        match self {
            PackageManager::Apt => &["docker-ce", "docker.io", "moby-engine"],
            PackageManager::Dnf | PackageManager::Yum => &["docker-ce", "moby-engine", "docker"],
            PackageManager::Apk => &["docker-engine", "docker"],
        }
    }

    /// Prints `installed VERSION` and, when the mirror has a newer one, `available VERSION`,
    /// for `package`; `refresh-failed` when the package lists could not be refreshed.
    fn check_script(self, package: &str) -> String {
        let p = package;
        match self {
            PackageManager::Apt => format!(
                "env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null 2>&1 || echo refresh-failed\n\
                 env DEBIAN_FRONTEND=noninteractive apt-get install -s --only-upgrade {p} 2>&1 | sed 's/^/apt /'"
            ),
            PackageManager::Dnf | PackageManager::Yum => {
                let m = self.command();
                format!(
                    "echo \"installed $(rpm -q --qf '%{{VERSION}}-%{{RELEASE}}' {p})\"\n\
                     t=$(mktemp) || exit 1; {m} -q check-update {p} >\"$t\" 2>&1; st=$?\n\
                     if [ $st = 100 ]; then awk '$1 ~ /^{p}\\./ {{ print \"available \" $2 }}' \"$t\"; \
                     elif [ $st != 0 ]; then echo refresh-failed; fi; rm -f \"$t\""
                )
            }
            PackageManager::Apk => format!(
                "apk update -q >/dev/null 2>&1 || echo refresh-failed\n\
                 apk version {p} 2>/dev/null | sed -n 's/^{p}-\\([^ ]*\\) *< *\\(.*\\)$/installed \\1\\navailable \\2/p; s/^{p}-\\([^ ]*\\) *= *.*$/installed \\1/p'"
            ),
        }
    }

    fn command(self) -> &'static str {
        match self {
            PackageManager::Apt => "apt-get",
            PackageManager::Dnf => "dnf",
            PackageManager::Yum => "yum",
            PackageManager::Apk => "apk",
        }
    }

    /// Upgrades `package` only (never installs another), keeping changed configuration files
    /// (dpkg's confold; rpm keeps them and writes `.rpmnew`; apk writes `.apk-new`).
    fn upgrade_command(self, package: &str) -> String {
        let p = package;
        match self {
            PackageManager::Apt => format!(
                "env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --only-upgrade \
                 -o Dpkg::Options::=--force-confold -o Dpkg::Options::=--force-confdef {p}"
            ),
            PackageManager::Dnf | PackageManager::Yum => {
                format!("{} -y -q upgrade {p}", self.command())
            }
            PackageManager::Apk => format!("apk upgrade -q {p}"),
        }
    }
}

/// What the host says of its engine's package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnginePackage {
    pub manager: PackageManager,
    pub init: InitSystem,
    pub package: String,
    pub installed: String,
    /// The mirror's newer version, if it has one.
    pub available: Option<String>,
}

/// Why the host's engine package cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PackageError {
    #[error(
        "the host has none of the package managers docker-euca upgrades with (apt, dnf, yum, apk)"
    )]
    NoManager,
    #[error("no installed package holds the engine (looked for {0})")]
    NoPackage(String),
    #[error("the package lists could not be refreshed (is the host's package mirror reachable?)")]
    RefreshFailed,
    #[error("the package manager did not say which version of {0} is installed")]
    Unreadable(String),
}

/// One script, run as root: the package manager, the init system, the engine's package, and
/// its installed and available versions.
pub fn read_script() -> String {
    let find = |m: PackageManager, test: &str| {
        m.engine_packages()
            .iter()
            .map(|p| {
                format!("{test} && {{ echo 'package {p}'; {}; exit 0; }}", {
                    m.check_script(p).replace('\n', "; ")
                })
                .replace("{p}", p)
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let apt = find(
        PackageManager::Apt,
        "dpkg-query -W -f='${Status}' {p} 2>/dev/null | grep -q ' installed$'",
    );
    let rpm = |m| find(m, "rpm -q {p} >/dev/null 2>&1");
    let apk = find(PackageManager::Apk, "apk info -e {p} >/dev/null 2>&1");
    format!(
        "echo \"init $({INIT_PROBE})\"\n\
         if command -v apt-get >/dev/null 2>&1; then echo 'manager apt'\n{apt}\n\
         elif command -v dnf >/dev/null 2>&1; then echo 'manager dnf'\n{dnf}\n\
         elif command -v yum >/dev/null 2>&1; then echo 'manager yum'\n{yum}\n\
         elif command -v apk >/dev/null 2>&1; then echo 'manager apk'\n{apk}\n\
         else exit 0; fi\n",
        dnf = rpm(PackageManager::Dnf),
        yum = rpm(PackageManager::Yum),
    )
}

/// Parses [`read_script`]'s answer.
pub fn parse_read(answer: &str) -> Result<EnginePackage, PackageError> {
    let mut init = InitSystem::SysV;
    let (mut manager, mut package) = (None, None);
    let (mut installed, mut available, mut refresh_failed) = (None, None, false);
    for line in answer.lines() {
        let (key, rest) = line.split_once(' ').unwrap_or((line, ""));
        match key {
            "init" => init = super::detect::parse_facts("", rest).init,
            "manager" => manager = PackageManager::from_word(rest.trim()),
            "package" => package = Some(rest.trim().to_string()),
            "installed" if !rest.trim().is_empty() => installed = Some(rest.trim().to_string()),
            "available" if !rest.trim().is_empty() => available = Some(rest.trim().to_string()),
            "refresh-failed" => refresh_failed = true,
            "apt" => match parse_apt_simulation(rest, package.as_deref().unwrap_or("")) {
                Some(AptSays::Newest(v)) => installed = Some(v),
                Some(AptSays::Upgrade { from, to }) => {
                    installed = Some(from);
                    available = Some(to);
                }
                None => {}
            },
            _ => {}
        }
    }
    let manager = manager.ok_or(PackageError::NoManager)?;
    let package =
        package.ok_or_else(|| PackageError::NoPackage(manager.engine_packages().join(", ")))?;
    if refresh_failed {
        return Err(PackageError::RefreshFailed);
    }
    let installed = installed.ok_or_else(|| PackageError::Unreadable(package.clone()))?;
    Ok(EnginePackage {
        manager,
        init,
        package,
        installed,
        available,
    })
}

enum AptSays {
    Newest(String),
    Upgrade { from: String, to: String },
}

/// One line of `apt-get install -s --only-upgrade PKG`: `Inst PKG [OLD] (NEW origin [arch])`
/// or `PKG is already the newest version (V).`
fn parse_apt_simulation(line: &str, package: &str) -> Option<AptSays> {
    if let Some(rest) = line.strip_prefix(&format!("Inst {package} [")) {
        let (from, rest) = rest.split_once("] (")?;
        let to = rest.split_whitespace().next()?;
        return Some(AptSays::Upgrade {
            from: from.to_string(),
            to: to.trim_end_matches(')').to_string(),
        });
    }
    let rest = line.strip_prefix(&format!("{package} is already the newest version ("))?;
    Some(AptSays::Newest(
        rest.trim_end_matches('.').trim_end_matches(')').to_string(),
    ))
}

/// Exit statuses of [`upgrade_script`] beyond [`daemon::restart_and_wait`]'s.
pub const UPGRADE_FAILED: u32 = 93;
pub const CONFIG_SAVE_FAILED: u32 = 94;

/// As root: keeps a copy of the daemon's configuration, upgrades the package, puts the copy
/// back if the package replaced the file (printing `config-restored`), restarts the daemon
/// and waits for its port.
pub fn upgrade_script(engine: &EnginePackage, timeout: Duration) -> String {
    let config = daemon::config_path(engine.init);
    let saved = format!("{config}.docker-euca-upgrade");
    format!(
        "if [ -f {config} ]; then cp -p {config} {saved} || exit {CONFIG_SAVE_FAILED}; fi\n\
         {upgrade} || {{ rm -f {saved}; exit {UPGRADE_FAILED}; }}\n\
         if [ -f {saved} ]; then if ! cmp -s {config} {saved}; then mv -f {saved} {config} && echo config-restored; else rm -f {saved}; fi; fi\n\
         {restart}\n",
        upgrade = engine.manager.upgrade_command(&engine.package),
        restart = daemon::restart_and_wait(engine.init, timeout),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apt_says_whether_there_is_a_newer_package() {
        let newer = "init systemd\nmanager apt\npackage docker.io\n\
                     apt Inst docker.io [26.1.5+dfsg1-9+b9] (26.1.5+dfsg1-9+b10 Debian:12/stable [amd64])\n";
        let got = parse_read(newer).unwrap();
        assert_eq!(got.manager, PackageManager::Apt);
        assert_eq!(got.init, InitSystem::Systemd);
        assert_eq!(got.package, "docker.io");
        assert_eq!(got.installed, "26.1.5+dfsg1-9+b9");
        assert_eq!(got.available.as_deref(), Some("26.1.5+dfsg1-9+b10"));
        let newest = "init sysv\nmanager apt\npackage docker-ce\n\
                      apt Reading package lists...\n\
                      apt docker-ce is already the newest version (5:27.3.1-1~debian.12~bookworm).\n";
        let got = parse_read(newest).unwrap();
        assert_eq!(got.installed, "5:27.3.1-1~debian.12~bookworm");
        assert_eq!(got.available, None);
    }

    #[test]
    fn rpm_and_apk_answers() {
        let dnf = "init systemd\nmanager dnf\npackage docker-ce\ninstalled 27.3.1-1.el9\navailable 3:27.4.0-1.el9\n";
        let got = parse_read(dnf).unwrap();
        assert_eq!(
            (got.installed.as_str(), got.available.as_deref()),
            ("27.3.1-1.el9", Some("3:27.4.0-1.el9"))
        );
        let apk = "init openrc\nmanager apk\npackage docker\ninstalled 27.3.1-r0\n";
        let got = parse_read(apk).unwrap();
        assert_eq!((got.init, got.available), (InitSystem::OpenRc, None));
    }

    #[test]
    fn what_cannot_be_upgraded_is_named() {
        assert_eq!(parse_read("init systemd\n"), Err(PackageError::NoManager));
        assert!(matches!(
            parse_read("init systemd\nmanager apt\n"),
            Err(PackageError::NoPackage(list)) if list.contains("docker.io")
        ));
        assert_eq!(
            parse_read(
                "manager apt\npackage docker.io\nrefresh-failed\napt docker.io is already the newest version (1).\n"
            ),
            Err(PackageError::RefreshFailed)
        );
        assert!(matches!(
            parse_read("manager apt\npackage docker.io\n"),
            Err(PackageError::Unreadable(_))
        ));
    }

    #[test]
    fn the_read_script_looks_for_every_engine_package_and_the_upgrade_keeps_the_config() {
        let script = read_script();
        for p in ["docker-ce", "docker.io", "moby-engine", "docker-engine"] {
            assert!(
                script.contains(&format!("echo 'package {p}'")),
                "{p}: {script}"
            );
        }
        assert!(script.contains("apt-get install -s --only-upgrade docker.io"));
        assert!(!script.contains("{p}"), "{script}");
        let engine = EnginePackage {
            manager: PackageManager::Apt,
            init: InitSystem::Systemd,
            package: "docker.io".into(),
            installed: "1".into(),
            available: Some("2".into()),
        };
        let up = upgrade_script(&engine, Duration::from_secs(30));
        assert!(up.contains("--only-upgrade"), "{up}");
        assert!(up.contains("--force-confold"), "{up}");
        let config = daemon::config_path(InitSystem::Systemd);
        assert!(
            up.contains(&format!("cp -p {config} {config}.docker-euca-upgrade")),
            "{up}"
        );
        assert!(up.contains("systemctl restart docker"), "{up}");
    }

    #[cfg(unix)] // parses the scripts with the local `sh`
    #[test]
    fn the_scripts_are_valid_sh() {
        use std::io::Write;
        let engine = |manager| EnginePackage {
            manager,
            init: InitSystem::OpenRc,
            package: "docker".into(),
            installed: "1".into(),
            available: Some("2".into()),
        };
        let mut scripts = vec![read_script()];
        for m in [
            PackageManager::Apt,
            PackageManager::Dnf,
            PackageManager::Apk,
        ] {
            scripts.push(upgrade_script(&engine(m), Duration::from_secs(5)));
            scripts.push(m.check_script("docker"));
        }
        for script in scripts {
            let mut sh = std::process::Command::new("sh")
                .arg("-n")
                .stdin(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            sh.stdin
                .take()
                .unwrap()
                .write_all(script.as_bytes())
                .unwrap();
            let out = sh.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "{}\n{script}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}
