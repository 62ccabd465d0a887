//! Offline clouds: no route to a package mirror (`testbed config --mirror hang`: every apt-get
//! update/install in the VM blocks, then fails as apt does when its connections time out). An image
//! that carries Docker must cost no more to create there than online: nothing may wait on the
//! mirror. The proofs are events, not timings: the boot script's own line in the cloud-init output,
//! and the VM's apt log (`/var/log/euca-testbed-mirror.log`, one `start`/`end` pair per apt run),
//! which stays empty; `--stage-timeout 60` turns any wait on the mirror (120 s per apt run) into a
//! failed create rather than a slow one.

use std::time::Instant;

use crate::support::{
    DockerHome, ok, server_version,
    testbed::{
        User, assert_nothing_left, create_ok, create_without_engine, euca, record, testbed, unique,
    },
    text,
};

/// What the boot script prints when the image has the engine (then it asks no package manager).
const ENGINE_PRESENT: &str = "docker-euca: engine present (";
const NO_PACKAGE_INSTALL: &str = "), no package install";
/// What it prints before asking apt-get for the engine.
const INSTALLING_WITH_APT: &str = "docker-euca: installing the engine with apt-get";
/// Every apt-get/apt run in a testbed VM is logged here (testbed/README.md, "Package mirror").
const MIRROR_LOG: &str = "/var/log/euca-testbed-mirror.log";

fn instance_id(home: &DockerHome, name: &str) -> String {
    record(home, name)
        .cloud
        .instance_id
        .expect("the record names its instance")
}

/// `cat FILE` in the instance's VM (through the testbed, not SSH); empty when it does not exist.
fn vm_file(id: &str, path: &str) -> String {
    testbed(&[
        "exec",
        id,
        "--",
        "sh",
        "-c",
        &format!("cat {path} 2>/dev/null; true"),
    ])
}

#[test]
fn a_default_create_behind_a_hanging_mirror_never_waits_on_it() {
    let home = DockerHome::new();
    let user = User::new();
    user.config(&["--mirror", "hang"]);
    let name = unique("offline");

    let started = Instant::now();
    create_ok(&home, &user, &name, &["--stage-timeout", "60"]);
    // For the record only (no assertion on time): a mirror ok create takes about as long.
    eprintln!(
        "create behind a hanging mirror took {:.1?}",
        started.elapsed()
    );
    assert!(!server_version(&home, &name).is_empty());

    let id = instance_id(&home, &name);
    // Nothing in the VM asked for a package: not cloud-init, not the boot script, not the
    // provisioning over SSH (read before anything below runs apt itself).
    let apt_runs = vm_file(&id, MIRROR_LOG);
    assert!(
        apt_runs.trim().is_empty(),
        "apt-get/apt ran in the VM of an image that has Docker:\n{apt_runs}"
    );
    // The boot script found the engine and said so (in cloud-init's output, as `logs` shows it).
    let log = ok(&mut euca(&home, &user, &["logs", &name]));
    let line = log
        .lines()
        .find(|l| l.contains(ENGINE_PRESENT))
        .unwrap_or_else(|| panic!("no {ENGINE_PRESENT:?} line in the cloud-init output:\n{log}"));
    assert!(line.contains(NO_PACKAGE_INSTALL), "{line}");
    assert!(!log.contains(INSTALLING_WITH_APT), "{log}");

    // The VM really is behind the hanging mirror: apt would have blocked.
    assert!(
        vm_file(&id, "/etc/euca-testbed/mirror").starts_with("hang"),
        "the VM does not see mirror hang"
    );
    let probe = testbed(&[
        "exec",
        &id,
        "--",
        "sh",
        "-c",
        "timeout 3 apt-get update >/dev/null 2>&1; echo rc=$?",
    ]);
    assert!(
        probe.contains("rc=124"),
        "apt-get update did not hang: {probe}"
    );

    ok(&mut euca(&home, &user, &["rm", "-y", &name]));
    assert_nothing_left(&user, &name);
}

/// The other side: an image without the engine (dockerd hidden by the user data, as in
/// engine_install.rs) behind a mirror that hangs 5 s per apt run. The boot script does ask
/// apt-get, which waits and fails; the create then fails naming the install, not a timeout.
#[test]
fn a_missing_engine_behind_a_hanging_mirror_is_asked_of_apt_and_fails_clearly() {
    let home = DockerHome::new();
    let user = User::new();
    user.config(&["--mirror", "hang", "--mirror-hang", "5"]);
    let name = unique("offline-noengine");
    let out = create_without_engine(
        &home,
        &user,
        &name,
        &["--stage-timeout", "120", "--keep-on-failure"],
    );
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("the docker engine is not installed on the host and installing it failed"),
        "{err}"
    );
    // apt's own words for a mirror it cannot reach (the testbed's hanging install).
    assert!(err.contains("Unable to fetch some archives"), "{err}");

    let id = instance_id(&home, &name);
    let log = vm_file(&id, "/var/log/cloud-init-output.log");
    assert!(log.contains(INSTALLING_WITH_APT), "{log}");
    assert!(!log.contains(ENGINE_PRESENT), "{log}");
    let apt_runs = vm_file(&id, MIRROR_LOG);
    assert!(
        apt_runs
            .lines()
            .any(|l| l.contains(" end ") && l.contains("apt-get update -> exit 0")),
        "{apt_runs}"
    );
    assert!(
        apt_runs
            .lines()
            .any(|l| l.contains(" end ") && l.contains("apt-get install -> exit 100")),
        "{apt_runs}"
    );

    ok(&mut euca(&home, &user, &["rm", "-y", &name]));
    assert_nothing_left(&user, &name);
}
