//! `upgrade NAME`: the engine upgraded through the host's own package manager, on a VM whose
//! mirror has a newer build of every installed package (`testbed config --mirror newer`; the
//! VM's apt stand-in records the new version in its own dpkg overlay). The daemon's
//! configuration is kept, the daemon restarted and verified over mutual TLS; a second upgrade
//! is refused in one line, since nothing is newer.

use crate::support::{
    DockerHome, ok, run, server_version,
    testbed::{User, assert_nothing_left, create_ok, euca, record, testbed, unique},
    text,
};

/// Every apt-get/apt run in a testbed VM is logged here (testbed/README.md, "Package mirror").
const MIRROR_LOG: &str = "/var/log/euca-testbed-mirror.log";
/// Where docker-euca puts the daemon's configuration, for each init system.
const DAEMON_CONFIGS: &str = "/etc/systemd/system/docker.service.d/10-docker-euca.conf \
                              /etc/default/docker /etc/conf.d/docker";

/// Runs `script` in the instance's VM (through the testbed, not SSH).
fn in_vm(id: &str, script: &str) -> String {
    testbed(&["exec", id, "--", "sh", "-c", script])
}

fn installed_docker_io() -> String {
    let out =
        ok(std::process::Command::new("dpkg-query").args(["-W", "-f=${Version}", "docker.io"]));
    out.trim().to_string()
}

#[test]
fn upgrade_goes_through_the_package_manager_keeps_the_config_and_refuses_when_nothing_is_newer() {
    let home = DockerHome::new();
    let user = User::new();
    user.config(&["--mirror", "newer"]);
    let name = unique("upg");
    create_ok(&home, &user, &name, &[]);
    let id = record(&home, &name).cloud.instance_id.unwrap();
    let config = in_vm(&id, &format!("cat {DAEMON_CONFIGS} 2>/dev/null; true"));
    assert!(
        config.contains("--tlsverify"),
        "our daemon config: {config}"
    );
    let dockerd_before = in_vm(&id, "pidof dockerd");

    let old = installed_docker_io();
    let new = format!("{old}+testbed1");
    let out = ok(&mut euca(&home, &user, &["upgrade", "-q", &name]));
    assert_eq!(
        out.trim(),
        format!(
            "{name}: docker.io {old} → {new}; Docker {} answers; daemon configuration kept",
            server_version(&home, &name)
        )
    );
    // The package manager did it: a simulation, then one upgrade of that package only,
    // keeping changed configuration files.
    let log = in_vm(&id, &format!("cat {MIRROR_LOG}"));
    let installs: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(" start ") && l.contains(" install ") && !l.contains(" -s "))
        .collect();
    assert_eq!(installs.len(), 1, "one real install: {log}");
    for word in ["--only-upgrade", "--force-confold", "docker.io"] {
        assert!(installs[0].contains(word), "{word}: {}", installs[0]);
    }
    // Configuration kept, the daemon restarted, and the real docker CLI still talks to it.
    let after = in_vm(&id, &format!("cat {DAEMON_CONFIGS} 2>/dev/null; true"));
    assert_eq!(after, config, "the daemon's configuration is unchanged");
    assert_ne!(
        in_vm(&id, "pidof dockerd"),
        dockerd_before,
        "dockerd restarted"
    );
    assert!(!server_version(&home, &name).is_empty());
    assert!(record(&home, &name).engine.version.is_some());

    // Nothing newer now: refused in one line and a hint, nothing run.
    let out = run(&mut euca(&home, &user, &["upgrade", "-q", &name]));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.lines().next().unwrap_or(""),
        format!(
            "docker euca: {name}: docker.io {new} is the newest version the host's package mirror has"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("hint: nothing to upgrade"), "{stderr}");
    let log = in_vm(&id, &format!("cat {MIRROR_LOG}"));
    let real_installs = log
        .lines()
        .filter(|l| l.contains(" start ") && l.contains(" install ") && !l.contains(" -s "))
        .count();
    assert_eq!(real_installs, 1, "no second upgrade: {log}");

    // A name that is not a machine: one line, nothing asked of any host.
    let out = run(&mut euca(&home, &user, &["upgrade", "no-such-machine"]));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no-such-machine"),
        "{}",
        text(&out)
    );

    ok(&mut euca(&home, &user, &["rm", "-y", &name]));
    assert_nothing_left(&user, &name);
}
