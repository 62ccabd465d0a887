//! Touch only what is ours, forget nothing that lives: each test here is one way the promise
//! "nothing orphaned, nothing lost" was broken (issue 9), shown on the testbed.

use std::{
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

use crate::support::{
    DockerHome, run, run_with_input,
    testbed::{
        User, assert_nothing_left, block_on, create_ok, env, euca, group_cidrs, groups_named_for,
        record, testbed, unique,
    },
    text,
};

fn first_line(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}

fn instance_state(user: &User, id: &str) -> String {
    block_on(user.ec2().describe_instance(id))
        .unwrap()
        .map(|i| i.state)
        .unwrap_or_else(|| "absent".into())
}

/// A colleague (another user of the same account) already has a group and a key pair named as
/// the old code named ours; a create that fails must leave both alone.
#[test]
fn a_foreign_group_and_key_pair_survive_a_failed_create() {
    let home = DockerHome::new();
    let (me, colleague) = (User::new(), User::new());
    let name = unique("foreign");
    let theirs = format!("docker-euca-{name}");
    let their_ec2 = colleague.ec2();
    let group_id =
        block_on(their_ec2.create_security_group(&theirs, "a colleague's", None, &[])).unwrap();
    let rsa = docker_euca::ssh::keys::KeyPair::generate_rsa(2048, "colleague").unwrap();
    block_on(their_ec2.import_key_pair(&theirs, &rsa.public_openssh(), &[])).unwrap();
    // Our create fails at launch (the cloud refuses the instance type), after making its key
    // pair and group. (A launch whose answer is lost keeps the record for `rm` instead:
    // fault_matrix.rs.)
    let out = run(&mut euca(
        &home,
        &me,
        &[
            "create",
            &name,
            "--image",
            &env()["EUCA_TESTBED_IMAGE"],
            "--import-keypair",
            "--instance-type",
            "no.such-type",
        ],
    ));
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    let groups = block_on(
        their_ec2
            .sdk()
            .describe_security_groups()
            .group_ids(&group_id)
            .send(),
    );
    assert!(
        groups.is_ok_and(|g| g.security_groups().len() == 1),
        "the colleague's group was deleted: {}",
        text(&out)
    );
    let pairs = block_on(
        their_ec2
            .sdk()
            .describe_key_pairs()
            .key_names(&theirs)
            .send(),
    );
    assert!(
        pairs.is_ok_and(|p| p.key_pairs().len() == 1),
        "the colleague's key pair was deleted: {}",
        text(&out)
    );
    // Ours are gone: only the colleague's group carries the old-style name.
    assert_eq!(groups_named_for(&me, &name), vec![theirs.clone()]);
    let all_pairs = block_on(me.ec2().sdk().describe_key_pairs().send()).unwrap();
    let ours: Vec<_> = all_pairs
        .key_pairs()
        .iter()
        .filter_map(|k| k.key_name())
        .filter(|k| k.starts_with(&format!("{theirs}-")))
        .collect();
    assert!(ours.is_empty(), "our key pair was left: {ours:?}");
    assert!(!home.path().join(format!("euca/machines/{name}")).exists());
    block_on(their_ec2.delete_security_group(&group_id)).unwrap();
    block_on(their_ec2.delete_key_pair(&theirs)).unwrap();
}

/// `rm` with another account's keys, or pointed at another endpoint, must refuse: the other
/// cloud answers NotFound for an instance that is alive.
#[test]
fn rm_with_another_identity_or_endpoint_refuses_and_keeps_the_machine() {
    let home = DockerHome::new();
    let me = User::new();
    let name = unique("ident");
    create_ok(&home, &me, &name, &["-q"]);
    let id = record(&home, &name).cloud.instance_id.unwrap();

    let stranger = User::in_new_account();
    let out = run(&mut euca(&home, &stranger, &["rm", "-y", &name]));
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    let line = first_line(&out);
    assert!(
        line.contains(&me.access_key) && line.contains(&stranger.access_key),
        "the refusal must name both access keys: {line:?}\n{}",
        text(&out)
    );
    assert_eq!(instance_state(&me, &id), "running");
    assert!(record(&home, &name).cloud.instance_id.is_some());

    let other = env()["EC2_URL"].replace("127.0.0.1", "localhost");
    let out = run(&mut euca(
        &home,
        &me,
        &["rm", "-y", "--endpoint", &other, &name],
    ));
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    let line = first_line(&out);
    assert!(
        line.contains(&other) && line.contains(&env()["EC2_URL"]),
        "the refusal must name both endpoints: {line:?}"
    );
    assert_eq!(instance_state(&me, &id), "running");

    let out = run(&mut euca(&home, &me, &["rm", "-y", &name]));
    assert!(out.status.success(), "{}", text(&out));
    assert_nothing_left(&me, &name);
}

/// One instance the cloud no longer knows must not blank `ls` for the others.
#[test]
fn ls_with_one_purged_instance_shows_the_others() {
    let home = DockerHome::new();
    let me = User::new();
    let (kept, purged) = (unique("kept"), unique("purged"));
    let h = std::thread::scope(|s| {
        let a = s.spawn(|| create_ok(&home, &me, &kept, &["-q"]));
        let b = s.spawn(|| create_ok(&home, &me, &purged, &["-q"]));
        (a.join(), b.join())
    });
    assert!(h.0.is_ok() && h.1.is_ok());
    let gone = record(&home, &purged).cloud.instance_id.unwrap();
    testbed(&["purge", &gone]);
    let out = run(&mut euca(&home, &me, &["ls", "--format", "json"]));
    assert!(out.status.success(), "{}", text(&out));
    let rows = crate::support::json_lines(&out.stdout);
    let row = |n: &str| rows.iter().find(|r| r["Name"] == n).cloned().unwrap();
    assert_eq!(row(&kept)["State"], "Running", "{rows:?}");
    assert!(
        row(&kept)["Docker"].as_str().unwrap().starts_with('v'),
        "{rows:?}"
    );
    assert_eq!(row(&purged)["State"], "NotFound", "{rows:?}");
    let out = run(&mut euca(&home, &me, &["rm", "-y", &kept]));
    assert!(out.status.success(), "{}", text(&out));
    // Absent by id and by our tags, asked as the machine's own identity: proved gone.
    let out = run(&mut euca(&home, &me, &["rm", "-y", &purged]));
    assert!(out.status.success(), "{}", text(&out));
    assert_nothing_left(&me, &kept);
    assert_nothing_left(&me, &purged);
}

/// Killed between installing the new host key and pinning it: `ssh` must still get in.
#[test]
fn an_interrupted_host_key_rotation_still_lets_ssh_in() {
    let home = DockerHome::new();
    let me = User::new();
    let name = unique("rot");
    let mut cmd = euca(
        &home,
        &me,
        &["create", &name, "--image", &env()["EUCA_TESTBED_IMAGE"]],
    );
    cmd.env("DOCKER_EUCA_CRASH_AT", "host-key-reloaded");
    let out = run(&mut cmd);
    assert_ne!(
        out.status.code(),
        Some(0),
        "the crash point must stop it: {}",
        text(&out)
    );
    assert!(record(&home, &name).cloud.instance_id.is_some());
    let out = run(&mut euca(&home, &me, &["ssh", &name, "--", "echo", "in"]));
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("in"),
        "{}",
        text(&out)
    );
    // The pending key is now the pinned one, and provisioning can finish.
    let r = record(&home, &name);
    assert!(r.ssh.host_key_rotated, "{r:?}");
    let out = run(&mut euca(&home, &me, &["provision", &name]));
    assert!(out.status.success(), "{}", text(&out));
    let out = run(&mut euca(&home, &me, &["rm", "-y", &name]));
    assert!(out.status.success(), "{}", text(&out));
    assert_nothing_left(&me, &name);
}

/// Two `provision` runs on one machine: the second is told at once who is busy with it, and the
/// certificates stay one consistent set.
#[test]
fn a_second_provision_is_told_the_machine_is_busy() {
    let home = DockerHome::new();
    let me = User::new();
    let name = unique("busy");
    create_ok(&home, &me, &name, &["-q"]);
    let spawn = || {
        euca(&home, &me, &["provision", &name])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let first = spawn();
    let lock = home.path().join(format!("euca/locks/{name}.op"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::fs::read_to_string(&lock).map_or(true, |s| !s.contains("provision")) {
        assert!(
            Instant::now() < deadline,
            "the first provision never took the lock"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let second = spawn().wait_with_output().unwrap();
    let first = first.wait_with_output().unwrap();
    assert!(first.status.success(), "{}", text(&first));
    assert_ne!(second.status.code(), Some(0), "{}", text(&second));
    let line = first_line(&second);
    assert!(
        line.contains("busy") && line.contains("provision") && line.contains("pid"),
        "{line:?}"
    );
    // One set: the context's client cert and the machine's server cert chain to the same CA.
    let certs = home.path().join(format!("euca/machines/{name}/certs"));
    for cert in ["server.pem", "cert.pem"] {
        let out = run(Command::new("openssl").args([
            "verify",
            "-CAfile",
            certs.join("ca.pem").to_str().unwrap(),
            certs.join(cert).to_str().unwrap(),
        ]));
        assert!(out.status.success(), "{cert}: {}", text(&out));
    }
    let out = run(home.docker().args(["--context", &name, "version"]));
    assert!(out.status.success(), "{}", text(&out));
    let out = run(&mut euca(&home, &me, &["rm", "-y", &name]));
    assert!(out.status.success(), "{}", text(&out));
}

/// With no `--allow-cidr`, only this machine's own address may reach SSH and the daemon.
#[test]
fn a_default_create_authorises_only_this_machine() {
    let home = DockerHome::new();
    let me = User::new();
    let name = unique("cidr");
    let progress = create_ok(&home, &me, &name, &[]);
    let group = record(&home, &name).cloud.security_group_id.unwrap();
    let cidrs = group_cidrs(&me, &group);
    assert!(!cidrs.is_empty());
    for cidr in &cidrs {
        assert!(cidr.ends_with("/32"), "{cidrs:?}");
    }
    // The testbed's instances see this machine as the bridge address.
    assert!(cidrs.contains(&"10.214.0.1/32".to_string()), "{cidrs:?}");
    assert!(progress.contains("10.214.0.1/32"), "{progress}");
    let out = run(&mut euca(&home, &me, &["rm", "-y", &name]));
    assert!(out.status.success(), "{}", text(&out));
}

/// A launch refused (an instance type the cloud does not offer) while other instances exist: the rollback must not depend
/// on a `client-token` filter the cloud lacks, and leaves nothing.
#[test]
fn a_create_failing_at_launch_while_others_run_leaves_nothing() {
    let home = DockerHome::new();
    let me = User::new();
    let other = block_on(
        me.ec2()
            .sdk()
            .run_instances()
            .image_id(&env()["EUCA_TESTBED_IMAGE"])
            .instance_type("m1.small".into())
            .min_count(1)
            .max_count(1)
            .send(),
    )
    .unwrap();
    let other = other.instances()[0].instance_id().unwrap().to_string();
    let name = unique("zone");
    let out = run(&mut euca(
        &home,
        &me,
        &[
            "create",
            &name,
            "--image",
            &env()["EUCA_TESTBED_IMAGE"],
            // A mistyped --zone is now refused before anything is made (bad_input.rs); an
            // instance type only the cloud can refuse fails the launch itself.
            "--instance-type",
            "no.such-type",
        ],
    ));
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    let error = String::from_utf8_lossy(&out.stderr)
        .lines()
        .find(|l| l.starts_with("docker euca: "))
        .map(str::to_string)
        .unwrap_or_default();
    assert!(
        error.contains("RunInstances") && error.contains("no.such-type"),
        "{}",
        text(&out)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("rolled back"), "{stderr}");
    assert!(!stderr.contains("unhandled"), "{stderr}");
    assert_nothing_left(&me, &name);
    assert!(!home.path().join(format!("euca/machines/{name}")).exists());
    block_on(me.ec2().terminate_instance(&other)).unwrap();
}

/// EC2 is eventually consistent: just after StartInstances it may still say `stopped`.
#[test]
fn start_waits_through_a_stale_stopped_state() {
    let home = DockerHome::new();
    let me = User::new();
    let name = unique("stale");
    create_ok(&home, &me, &name, &["-q"]);
    me.config(&["--stale-start", "6"]);
    let out = run(&mut euca(&home, &me, &["stop", &name]));
    assert!(out.status.success(), "{}", text(&out));
    let out = run(&mut euca(&home, &me, &["start", &name]));
    assert!(out.status.success(), "{}", text(&out));
    let out = run(home.docker().args(["--context", &name, "version"]));
    assert!(out.status.success(), "{}", text(&out));
    let out = run(&mut euca(&home, &me, &["rm", "-y", &name]));
    assert!(out.status.success(), "{}", text(&out));
}

/// A lost answer (the cloud acted, the client never heard) to each call that makes something:
/// the create still succeeds with exactly one of each, and rm leaves nothing.
#[test]
fn lost_answers_to_the_making_calls_are_recovered() {
    let home = DockerHome::new();
    let me = User::new();
    for action in ["CreateSecurityGroup", "ImportKeyPair", "RunInstances"] {
        me.fault(action, &["--lose-answer"]);
    }
    let name = unique("lost");
    create_ok(&home, &me, &name, &["-q", "--import-keypair"]);
    let ec2 = me.ec2();
    let tagged: Vec<_> = block_on(ec2.instances_tagged(&name))
        .unwrap()
        .into_iter()
        .filter(|i| i.state != "terminated")
        .collect();
    assert_eq!(tagged.len(), 1, "{tagged:?}");
    let untagged: Vec<_> = block_on(ec2.describe_instances(&[]))
        .unwrap()
        .into_iter()
        .filter(|i| i.state != "terminated" && i.tags.is_empty())
        .filter(|i| i.client_token.as_deref().is_some_and(|t| t.contains(&name)))
        .collect();
    assert!(
        untagged.is_empty(),
        "a second, untagged instance: {untagged:?}"
    );
    assert_eq!(groups_named_for(&me, &name).len(), 1);
    let out = run(&mut euca(&home, &me, &["rm", "-y", &name]));
    assert!(out.status.success(), "{}", text(&out));
    assert_nothing_left(&me, &name);
}

/// A profile may keep the CIDRs its creates admit by default.
#[test]
fn a_profile_may_keep_a_default_cidr() {
    let home = DockerHome::new();
    let me = User::new();
    let mut login = euca(
        &home,
        &me,
        &[
            "login",
            "--profile",
            "office",
            "--endpoint",
            &env()["EC2_URL"],
            "--access-key",
            &me.access_key,
            "--secret-key-stdin",
            "--allow-cidr",
            "10.9.0.0/16",
        ],
    );
    let out = run_with_input(
        login.env("DOCKER_EUCA_KEYRING", "keyutils"),
        me.secret_key.as_bytes(),
    );
    assert!(out.status.success(), "{}", text(&out));
    let name = unique("office");
    create_ok(&home, &me, &name, &["-q", "--profile", "office"]);
    let group = record(&home, &name).cloud.security_group_id.unwrap();
    let cidrs = group_cidrs(&me, &group);
    assert!(
        !cidrs.is_empty() && cidrs.iter().all(|c| c == "10.9.0.0/16"),
        "{cidrs:?}"
    );
    let out = run(&mut euca(&home, &me, &["rm", "-y", &name]));
    assert!(out.status.success(), "{}", text(&out));
}
