//! The testbed is real: a launched instance becomes a VM with real cloud-init, sshd and dockerd
//! on the testbed's own addresses; the personality behaves like Eucalyptus where clients trip.

use std::{
    net::IpAddr,
    process::Command,
    time::{Duration, Instant},
};

use aws_sdk_ec2::types::{InstanceStateName, ResourceType, Tag, TagSpecification};
use docker_euca::{
    cloud::{LaunchSpec, usable_address},
    provision::userdata::{self, OurConfig},
    ssh::keys::KeyPair,
};

use crate::support::{
    self, DockerHome, ok, server_version,
    testbed::{
        User, assert_testbed_address, block_on, create_ok, env, euca, record, testbed, unique,
        vm_report,
    },
    text,
};

/// An SSH client (OpenSSH) that trusts exactly `host_key` for `ip`.
fn ssh(
    dir: &std::path::Path,
    key: &str,
    host_key: &str,
    user: &str,
    ip: IpAddr,
    cmd: &str,
) -> std::process::Output {
    assert_testbed_address(ip);
    let key_path = dir.join("id");
    std::fs::write(&key_path, key).unwrap();
    std::os::unix::fs::PermissionsExt::set_mode(
        &mut std::fs::metadata(&key_path).unwrap().permissions(),
        0o600,
    );
    std::fs::set_permissions(
        &key_path,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let known = dir.join("known_hosts");
    std::fs::write(&known, format!("{ip} {host_key}\n")).unwrap();
    support::run(
        Command::new("ssh")
            .args([
                "-o",
                "BatchMode=yes",
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
                "ConnectTimeout=5",
            ])
            .arg("-o")
            .arg(format!("UserKnownHostsFile={}", known.display()))
            .arg("-i")
            .arg(&key_path)
            .arg(format!("{user}@{ip}"))
            .arg(cmd),
    )
}

fn wait_ssh(dir: &std::path::Path, key: &str, host_key: &str, ip: IpAddr) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let out = ssh(dir, key, host_key, "ubuntu", ip, "true");
        if out.status.success() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "ssh to {ip} never worked: {}",
            text(&out)
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn a_launched_instance_is_a_real_vm_through_its_whole_life() {
    let user = User::new();
    user.config(&["--public-ip-delay", "4"]);
    let ec2 = user.ec2();
    let tmp = tempfile::tempdir().unwrap();
    let client = KeyPair::generate_ed25519("client");
    let host = KeyPair::generate_ed25519("host");
    let data = userdata::build(
        &OurConfig {
            authorized_keys: vec![client.public_openssh()],
            host_key: Some((host.private_openssh(), host.public_openssh())),
            install_engine: false,
            disable_root: None,
        },
        Some(
            "#cloud-config\nwrite_files:\n  - path: /etc/testbed-proof\n    content: written by cloud-init\n",
        ),
    );
    let id = block_on(ec2.run_instance(&LaunchSpec {
        image_id: env()["EUCA_TESTBED_IMAGE"].clone(),
        instance_type: "m1.small".into(),
        user_data_b64: Some(userdata::to_base64(&data)),
        client_token: support::testbed::unique("tok"),
        ..Default::default()
    }))
    .unwrap();

    // EDGE: running first, the public address only after the delay.
    let running =
        block_on(ec2.wait_for_state(&id, InstanceStateName::Running, Duration::from_secs(60)))
            .unwrap();
    assert_eq!(
        usable_address(
            running.public_ip.as_deref(),
            running.private_ip.as_deref(),
            false
        ),
        None,
        "{running:?}"
    );
    let t0 = Instant::now();
    let info = block_on(ec2.wait_for_address(&id, false, Duration::from_secs(60))).unwrap();
    assert!(
        t0.elapsed() >= Duration::from_secs(2),
        "the public address came too early"
    );
    let public: IpAddr = info.public_ip.as_deref().unwrap().parse().unwrap();
    assert_testbed_address(public);
    assert_testbed_address(info.private_ip.as_deref().unwrap().parse().unwrap());

    // SSH as ubuntu with the injected key; the host key is the injected one (StrictHostKeyChecking).
    let key = client.private_openssh().expose().clone();
    let hk = host.public_openssh();
    wait_ssh(tmp.path(), &key, &hk, public);
    let out = ssh(
        tmp.path(),
        &key,
        &hk,
        "ubuntu",
        public,
        "sudo -n true && cat /etc/testbed-proof && hostname",
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("written by cloud-init"));
    // Root gets cloud-init's stub, as on a real image.
    let root = ssh(tmp.path(), &key, &hk, "root", public, "true");
    assert!(
        text(&root).contains("Please login as the user"),
        "{}",
        text(&root)
    );
    // A different pinned key is refused by the real ssh client.
    let other = KeyPair::generate_ed25519("other").public_openssh();
    assert!(
        !ssh(tmp.path(), &key, &other, "ubuntu", public, "true")
            .status
            .success()
    );

    // Docker inside: the init script works and the daemon answers on the VM's address.
    let out = ssh(
        tmp.path(),
        &key,
        &hk,
        "ubuntu",
        public,
        "echo 'DOCKER_OPTS=\"-H tcp://0.0.0.0:2375 -H unix:///var/run/docker.sock\"' | sudo tee /etc/default/docker >/dev/null \
         && sudo update-rc.d docker defaults >/dev/null 2>&1; sudo service docker start",
    );
    assert!(out.status.success(), "{}", text(&out));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let v = support::run(Command::new("docker").args([
            "-H",
            &format!("tcp://{public}:2375"),
            "version",
            "--format",
            "{{.Server.Version}}",
        ]));
        if v.status.success() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "dockerd never answered: {}",
            text(&v)
        );
        std::thread::sleep(Duration::from_millis(500));
    }

    // Console output carries the host key block as cloud-init prints it.
    let console = block_on(ec2.sdk().get_console_output().instance_id(&id).send()).unwrap();
    let console = String::from_utf8(base64_decode(console.output().unwrap())).unwrap();
    assert!(
        console.contains("-----BEGIN SSH HOST KEY KEYS-----"),
        "{console}"
    );
    assert!(console.contains(hk.split_whitespace().nth(1).unwrap()));

    // Stop/start: a new public address, which answers SSH; docker comes back (enabled at boot).
    block_on(ec2.stop_instances(std::slice::from_ref(&id), false)).unwrap();
    block_on(ec2.wait_for_state(&id, InstanceStateName::Stopped, Duration::from_secs(60))).unwrap();
    block_on(ec2.start_instances(std::slice::from_ref(&id))).unwrap();
    let again = block_on(ec2.wait_for_address(&id, false, Duration::from_secs(90))).unwrap();
    let new_public: IpAddr = again.public_ip.as_deref().unwrap().parse().unwrap();
    assert_ne!(
        new_public, public,
        "EDGE gives a new public address after stop/start"
    );
    wait_ssh(tmp.path(), &key, &hk, new_public);
    let out = ssh(
        tmp.path(),
        &key,
        &hk,
        "ubuntu",
        new_public,
        "for i in $(seq 300); do sudo docker version >/dev/null 2>&1 && exit 0; sleep 0.2; done; exit 1",
    );
    assert!(
        out.status.success(),
        "docker did not start again at boot: {}",
        text(&out)
    );

    // Terminate removes the VM.
    block_on(ec2.terminate_instance(&id)).unwrap();
    block_on(ec2.wait_for_state(&id, InstanceStateName::Terminated, Duration::from_secs(60)))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while let Some(state) = vm_state(&id) {
        assert!(
            Instant::now() < deadline,
            "the VM of {id} outlived its termination ({state})"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let ns = support::run(Command::new("ip").args(["netns", "list"]));
    assert!(
        !String::from_utf8_lossy(&ns.stdout).contains(&id[2..]),
        "namespace left for {id}"
    );
}

/// Removing a stopped machine kills its own VM and nothing else. The kernel hands a freed
/// namespace's number to the next namespace made: a VM booted after the stop holds the numbers the
/// stopped VM was last recorded with, and the stopped VM's removal must not take them for its own.
#[test]
fn removing_a_stopped_machine_leaves_a_machine_booted_after_its_stop_running() {
    let (home, user) = (DockerHome::new(), User::new());
    let (old, new) = (unique("ns-old"), unique("ns-new"));
    create_ok(&home, &user, &old, &["-q"]);
    let old_id = record(&home, &old).cloud.instance_id.unwrap();
    ok(&mut euca(&home, &user, &["stop", &old]));
    create_ok(&home, &user, &new, &["-q"]);
    let new_id = record(&home, &new).cloud.instance_id.unwrap();

    ok(&mut euca(&home, &user, &["rm", "-y", &old]));
    let deadline = Instant::now() + Duration::from_secs(60);
    while vm_state(&old_id).is_some() {
        assert!(
            Instant::now() < deadline,
            "the VM of {old_id} was not destroyed within 60 s\n{}",
            vm_report(&user.access_key)
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    assert_eq!(
        vm_state(&new_id).as_deref(),
        Some("running"),
        "removing {old} stopped {new}'s VM\n{}",
        vm_report(&user.access_key)
    );
    assert!(!server_version(&home, &new).is_empty());
    ok(&mut euca(&home, &user, &["rm", "-y", &new]));
}

/// The VM state the testbed reports for an instance, `None` when it has no VM.
fn vm_state(id: &str) -> Option<String> {
    let status: serde_json::Value = serde_json::from_str(&testbed(&["status", "--json"])).unwrap();
    status["instances"]
        .as_array()?
        .iter()
        .find(|i| i["instance_id"] == id)
        .and_then(|i| i["vm_state"].as_str().map(str::to_string))
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .unwrap()
}

#[test]
fn strict_binding_refuses_tag_specification() {
    let user = User::new();
    let ec2 = user.ec2();
    let err = block_on(
        ec2.sdk()
            .run_instances()
            .image_id(&env()["EUCA_TESTBED_IMAGE"])
            .min_count(1)
            .max_count(1)
            .tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::Instance)
                    .tags(Tag::builder().key("a").value("b").build())
                    .build(),
            )
            .send(),
    )
    .unwrap_err();
    let msg = format!("{:?}", err);
    assert!(msg.contains("Failed to bind the following fields"), "{msg}");
    assert!(msg.contains("TagSpecification"), "{msg}");
    assert_eq!(user.stats().get("RunInstances").copied().unwrap_or(0), 1);
}

#[test]
fn a_wrong_secret_is_refused_by_the_personality() {
    let mut user = User::new();
    user.secret_key.push('x');
    let err = block_on(user.ec2().check_access()).unwrap_err();
    assert_eq!(err.code(), Some("AuthFailure"), "{err}");
}
