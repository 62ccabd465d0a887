//! Run by `scripts/test` after `testbed down` (it is `#[ignore]`d in the main run because the
//! testbed is up then): no namespace, process, mount, bridge, route or file of the testbed is left.

use std::process::Command;

use crate::support::run;

fn stdout(cmd: &mut Command) -> String {
    String::from_utf8_lossy(&run(cmd).stdout).into_owned()
}

#[test]
#[ignore = "run by scripts/test after `testbed down`"]
fn the_testbed_leaves_nothing() {
    let netns = stdout(Command::new("ip").args(["netns", "list"]));
    assert!(!netns.contains("etb-"), "namespaces left:\n{netns}");
    let links = stdout(Command::new("ip").args(["-o", "link"]));
    assert!(
        !links.contains("eucatb0") && !links.contains("etb"),
        "links left:\n{links}"
    );
    let routes = stdout(Command::new("ip").args(["route"]));
    for r in ["10.213.", "10.214.", "10.215.", "54.214.", "172.31."] {
        assert!(!routes.contains(r), "route {r} left:\n{routes}");
    }
    let rules = stdout(Command::new("ip").args(["rule"]));
    assert!(!rules.contains("eucatb0"), "ip rules left:\n{rules}");
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    assert!(
        !mounts.contains("docker-euca-testbed"),
        "mounts left:\n{mounts}"
    );
    assert!(
        !std::path::Path::new("/var/lib/docker-euca-testbed").exists(),
        "state directory left"
    );
    // No live process carries the testbed's daemon marker (zombies are already dead).
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        if status.contains("State:\tZ") {
            continue;
        }
        let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        let marked = String::from_utf8_lossy(&environ).contains("DOCKER_EUCA_TESTBED_DAEMON=");
        assert!(
            !marked,
            "testbed process {pid} left: {}",
            std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
                .unwrap_or_default()
                .replace('\0', " ")
        );
    }
}
