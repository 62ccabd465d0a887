//! create, end to end on the testbed: pinned SSH, Docker provisioning, TLS, the context, and the
//! real docker CLI through it; the failure paths roll back and leave nothing in the cloud.

use std::process::Command;

use docker_euca::{names::MachineName, store::Store};

use crate::support::{
    DockerHome, ok, run, server_version,
    testbed::{User, assert_nothing_left, env, euca, unique},
    text,
};

fn image() -> String {
    env()["EUCA_TESTBED_IMAGE"].clone()
}

/// OpenSSH into the machine with the key and pinned host key from its record.
fn ssh_to(home: &DockerHome, name: &str, cmd: &str) -> std::process::Output {
    let rec = Store::new(home.path())
        .load(&MachineName::new(name).unwrap())
        .unwrap();
    let ip = if rec.cloud.use_private_address {
        rec.cloud.private_ip.clone()
    } else {
        rec.cloud.public_ip.clone()
    }
    .unwrap();
    crate::support::testbed::assert_testbed_address(ip.parse().unwrap());
    let known = home.path().join(format!("known-{name}"));
    std::fs::write(&known, format!("{ip} {}\n", rec.ssh.host_key.unwrap())).unwrap();
    run(Command::new("ssh")
        .args(["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"])
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", known.display()))
        .arg("-i")
        .arg(rec.ssh.key_path.unwrap())
        .arg(format!("{}@{ip}", rec.ssh.user.unwrap()))
        .arg(cmd))
}

#[test]
fn create_edge_then_docker_cli_runs_a_container_through_the_context() {
    let home = DockerHome::new();
    let user = User::new();
    user.config(&["--public-ip-delay", "3"]);
    let name = unique("web");
    let user_data = home.path().join("user-data.yaml");
    std::fs::write(&user_data, "#cloud-config\nwrite_files:\n  - path: /etc/mine\n    content: kept\nruncmd:\n  - touch /root/runcmd-ran\n").unwrap();
    let out = run(&mut euca(
        &home,
        &user,
        &[
            "-D",
            "create",
            &name,
            "--image",
            &image(),
            "--engine-label",
            "env=test",
            "--engine-label",
            "tier=web",
            "--user-data",
            user_data.to_str().unwrap(),
            "--use",
        ],
    ));
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("{name} is ready: Docker "))
            && stdout.contains(&format!("docker context use {name}")),
        "{stdout}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("ssh connections opened: 1;"),
        "one SSH connection for the whole provisioning:\n{stderr}"
    );
    // Even with -D, no secret reaches the terminal.
    for secret in [user.secret_key.as_str(), "PRIVATE KEY"] {
        assert!(
            !text(&out).contains(secret),
            "{secret:?} leaked into the output"
        );
    }

    // The real docker CLI through the context.
    let version = ok(home.docker().args([
        "--context",
        &name,
        "version",
        "--format",
        "{{.Server.Version}}",
    ]));
    assert!(!version.trim().is_empty());
    assert_eq!(
        ok(home.docker().args(["context", "show"])).trim(),
        name,
        "--use makes it current"
    );
    let tar = home.path().join("busybox.tar");
    crate::support::testbed::testbed(&["image-tar", tar.to_str().unwrap()]);
    ok(home
        .docker()
        .args(["--context", &name, "load", "-i"])
        .arg(&tar));
    let hello = ok(home.docker().args([
        "--context",
        &name,
        "run",
        "--rm",
        "--network",
        "none",
        "euca-testbed/busybox:latest",
        "echo",
        "hello",
    ]));
    assert_eq!(hello.trim(), "hello");
    let labels =
        ok(home
            .docker()
            .args(["--context", &name, "info", "--format", "{{json .Labels}}"]));
    for l in ["provider=eucalyptus", "env=test", "tier=web"] {
        assert!(labels.contains(l), "{labels}");
    }
    // The bootstrap host key (sent in user data, visible on the console) was replaced by one
    // that never left this machine, and that one is what ssh now verifies.
    let record = Store::new(home.path())
        .load(&MachineName::new(name.clone()).unwrap())
        .unwrap();
    assert!(record.ssh.host_key_rotated);
    let pinned = record.ssh.host_key.clone().unwrap();
    let id = record.cloud.instance_id.clone().unwrap();
    let console = crate::support::testbed::block_on(
        user.ec2()
            .sdk()
            .get_console_output()
            .instance_id(&id)
            .send(),
    )
    .unwrap();
    let console = String::from_utf8(
        base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            console.output().unwrap().trim(),
        )
        .unwrap(),
    )
    .unwrap();
    assert!(console.contains("BEGIN SSH HOST KEY KEYS"), "{console}");
    assert!(
        !console.contains(pinned.split_whitespace().nth(1).unwrap()),
        "the pinned key must not be the bootstrap one"
    );
    // The user's cloud-config was kept, next to ours.
    let out = ssh_to(
        &home,
        &name,
        "cat /etc/mine; sudo test -e /root/runcmd-ran && echo ran",
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("kept"),
        "{}",
        text(&out)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("ran"),
        "{}",
        text(&out)
    );
    // TLS files are private.
    let tls = docker_euca::context::ContextStore::new(home.path()).tls_dir(&name);
    assert_eq!(
        docker_euca::fsutil::mode_of(&tls.join("key.pem")),
        Some(0o600)
    );
    assert_eq!(
        docker_euca::fsutil::mode_of(
            &home
                .path()
                .join(format!("euca/machines/{name}/certs/ca-key.pem"))
        ),
        Some(0o600)
    );

    let out = run(&mut euca(&home, &user, &["rm", "-y", &name]));
    assert!(out.status.success(), "{}", text(&out));
    assert_nothing_left(&user, &name);
    let contexts = ok(home
        .docker()
        .args(["context", "ls", "--format", "{{.Name}}"]));
    assert!(!contexts.lines().any(|l| l == name), "{contexts}");
    assert_eq!(
        ok(home.docker().args(["context", "show"])).trim(),
        "default",
        "rm clears currentContext"
    );
}

#[test]
fn create_in_vpc_mode_as_root() {
    let home = DockerHome::new();
    let user = User::new();
    let name = unique("vroot");
    let subnet = env()["EUCA_TESTBED_SUBNET"].clone();
    let out = run(&mut euca(
        &home,
        &user,
        &[
            "create",
            &name,
            "--image",
            &image(),
            "--subnet",
            &subnet,
            "--use-private-address",
            "--ssh-user",
            "root",
        ],
    ));
    assert!(out.status.success(), "{}", text(&out));
    let url = ok(home.docker().args([
        "context",
        "inspect",
        &name,
        "--format",
        "{{.Endpoints.docker.Host}}",
    ]));
    assert!(url.trim().starts_with("tcp://10.215.1."), "{url}");
    ok(home.docker().args(["--context", &name, "version"]));
    let out = run(&mut euca(&home, &user, &["rm", "-y", &name]));
    assert!(out.status.success(), "{}", text(&out));
    assert_nothing_left(&user, &name);
}

#[test]
fn without_cloud_init_an_imported_key_pair_and_the_console_host_key() {
    let home = DockerHome::new();
    let user = User::new();
    let name = unique("nci");
    let out = run(&mut euca(
        &home,
        &user,
        &[
            "create",
            &name,
            "--image",
            &image(),
            "--import-keypair",
            "--no-cloud-init",
        ],
    ));
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("reading the SSH host key from the console")
    );
    let record = Store::new(home.path())
        .load(&MachineName::new(name.clone()).unwrap())
        .unwrap();
    // A unique name: `docker-euca-NAME-` and a random suffix.
    let pair = record.cloud.key_pair_name.clone().unwrap();
    assert!(pair.starts_with(&format!("docker-euca-{name}-")), "{pair}");
    assert!(record.cloud.key_pair_owned);
    assert!(record.ssh.key_path.as_deref().unwrap().ends_with("id_rsa"));
    assert_eq!(
        docker_euca::fsutil::mode_of(std::path::Path::new(
            record.ssh.key_path.as_deref().unwrap()
        )),
        Some(0o600)
    );
    ok(home.docker().args(["--context", &name, "version"]));
    let stats = user.stats();
    assert_eq!(stats.get("ImportKeyPair"), Some(&1), "{stats:?}");
    let out = run(&mut euca(&home, &user, &["rm", "-y", &name]));
    assert!(out.status.success(), "{}", text(&out));
    let pairs =
        crate::support::testbed::block_on(user.ec2().sdk().describe_key_pairs().send()).unwrap();
    assert!(
        !pairs
            .key_pairs()
            .iter()
            .any(|k| k.key_name() == Some(pair.as_str())),
        "rm must delete the imported key pair"
    );
    assert_nothing_left(&user, &name);
}

#[test]
fn no_cloud_init_needs_a_key_pair() {
    let home = DockerHome::new();
    let user = User::new();
    let out = run(&mut euca(
        &home,
        &user,
        &["create", "nokey", "--image", &image(), "--no-cloud-init"],
    ));
    assert_ne!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("docker euca: without cloud-init nothing can authorise an SSH key"),
        "{err}"
    );
    assert!(!user.stats().contains_key("RunInstances"));
}

#[test]
fn a_vm_answering_with_another_host_key_is_refused_and_rolled_back() {
    let home = DockerHome::new();
    let user = User::new();
    user.fault("RunInstances", &["--swap-host-key", "--count", "1"]);
    let name = unique("mitm");
    let out = run(&mut euca(
        &home,
        &user,
        &["create", &name, "--image", &image()],
    ));
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("does not match the pinned one"), "{err}");
    assert!(err.contains("rolled back"), "{err}");
    assert_nothing_left(&user, &name);
    assert!(Store::new(home.path()).list().unwrap().is_empty());
    assert!(!docker_euca::context::ContextStore::new(home.path()).exists(&name));
}

#[test]
fn a_daemon_that_cannot_start_shows_its_log_and_leaves_nothing() {
    let home = DockerHome::new();
    let user = User::new();
    let name = unique("bad");
    let out = run(&mut euca(
        &home,
        &user,
        &[
            "create",
            &name,
            "--image",
            &image(),
            "--engine-opt",
            "no-such-dockerd-flag=1",
        ],
    ));
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("the docker daemon did not start"), "{err}");
    assert!(
        err.contains("no-such-dockerd-flag"),
        "the log tail names the bad flag:\n{err}"
    );
    assert_nothing_left(&user, &name);
    assert!(!docker_euca::context::ContextStore::new(home.path()).exists(&name));
}

/// The connection dies while the host is read (the host's `hostname` kills the sshd serving
/// the session the first time it runs: the channel closes with no exit status): the create
/// connects again and reads it whole, where it once failed on a cut answer.
#[test]
fn a_connection_lost_while_the_host_is_read_is_opened_again() {
    let home = DockerHome::new();
    let user = User::new();
    let dir = tempfile::tempdir().unwrap();
    let user_data = dir.path().join("cut.yaml");
    std::fs::write(
        &user_data,
        "#cloud-config\n\
         write_files:\n\
         - path: /usr/local/bin/hostname\n\
         \x20 permissions: '0755'\n\
         \x20 content: |\n\
         \x20   #!/bin/sh\n\
         \x20   if [ ! -e /tmp/euca-test-cut ]; then\n\
         \x20     touch /tmp/euca-test-cut\n\
         \x20     pkill -9 -u \"$(id -u)\" -x sshd\n\
         \x20     sleep 5\n\
         \x20   fi\n\
         \x20   exec /bin/hostname \"$@\"\n",
    )
    .unwrap();
    let name = unique("cut");
    let out = run(&mut euca(
        &home,
        &user,
        &[
            "create",
            &name,
            "--image",
            &image(),
            "--user-data",
            user_data.to_str().unwrap(),
        ],
    ));
    assert!(out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("the connection was lost while the host was read; connecting again"),
        "the cut was not seen, so nothing was tested: {err}"
    );
    assert!(!server_version(&home, &name).is_empty());
    let out = run(&mut euca(&home, &user, &["rm", "-y", &name]));
    assert!(out.status.success(), "{}", text(&out));
    assert_nothing_left(&user, &name);
}
