//! `prune` on the testbed: what a lost record left in the cloud goes; a machine with a record,
//! and another store's machine, stay; nothing goes without a "yes". Every check of what exists
//! is made through the API. (`prune --all-stores` is only ever run with `--dry-run` here: the
//! other tests' machines share this account.)

use std::process::{Output, Stdio};

use docker_euca::{
    cloud::{MACHINE_TAG, STORE_TAG},
    store::Store,
};

use crate::support::{
    DockerHome, run,
    testbed::{User, assert_nothing_left, block_on, create_ok, euca, record, unique},
    text,
};

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn instance_state(user: &User, id: &str) -> String {
    block_on(user.ec2().describe_instance(id))
        .unwrap()
        .map(|i| i.state)
        .unwrap_or_else(|| "absent".into())
}

fn group_exists(user: &User, id: &str) -> bool {
    block_on(user.ec2().security_group(id)).unwrap().is_some()
}

fn key_pair_exists(user: &User, name: &str) -> bool {
    let out = block_on(user.ec2().sdk().describe_key_pairs().send()).unwrap();
    out.key_pairs().iter().any(|k| k.key_name() == Some(name))
}

fn store_id(home: &DockerHome) -> String {
    Store::new(home.path()).id().unwrap()
}

/// A machine whose record was lost (its directory deleted after a full create) next to a
/// healthy one in the same store: `--dry-run` lists only the lost one's instance, group and key
/// pair and changes nothing; `-y` removes exactly those.
#[test]
fn prune_removes_what_a_lost_record_left_and_keeps_the_healthy_machine() {
    let home = DockerHome::new();
    let me = User::new();
    let (healthy, lost) = (unique("prune-ok"), unique("prune-lost"));
    std::thread::scope(|s| {
        let a = s.spawn(|| create_ok(&home, &me, &healthy, &["-q"]));
        let b = s.spawn(|| create_ok(&home, &me, &lost, &["-q", "--import-keypair"]));
        assert!(a.join().is_ok() && b.join().is_ok(), "a create failed");
    });
    let kept = record(&home, &healthy);
    let kept_instance = kept.cloud.instance_id.clone().unwrap();
    let kept_group = kept.cloud.security_group_id.clone().unwrap();
    let gone = record(&home, &lost);
    let lost_instance = gone.cloud.instance_id.clone().unwrap();
    let lost_group = gone.cloud.security_group_id.clone().unwrap();
    let lost_key = gone.cloud.key_pair_name.clone().unwrap();
    std::fs::remove_dir_all(home.path().join("euca/machines").join(&lost)).unwrap();
    let store = store_id(&home);

    let out = run(&mut euca(&home, &me, &["prune", "--dry-run"]));
    assert!(out.status.success(), "{}", text(&out));
    let listed = stdout(&out);
    let instance_line = listed
        .lines()
        .find(|l| l.starts_with(&format!("instance {lost_instance} ")))
        .unwrap_or_else(|| panic!("the lost instance is not listed:\n{}", text(&out)));
    assert!(
        instance_line.contains(&format!("machine {lost}, store {store}")),
        "{instance_line}"
    );
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with(&format!("group {lost_group} "))),
        "the lost group is not listed:\n{}",
        text(&out)
    );
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with(&format!("key pair {lost_key} "))),
        "the lost key pair is not listed:\n{}",
        text(&out)
    );
    for id in [&kept_instance, &kept_group] {
        assert!(
            !listed.contains(id.as_str()),
            "{id} has a record, yet is listed:\n{}",
            text(&out)
        );
    }
    assert!(
        listed.contains("would prune 1 instances, 1 groups, 1 key pairs"),
        "{}",
        text(&out)
    );
    // Nothing changed.
    assert_eq!(instance_state(&me, &lost_instance), "running");
    assert!(group_exists(&me, &lost_group));
    assert!(key_pair_exists(&me, &lost_key));

    let contexts = || {
        stdout(&run(home.docker().args([
            "context",
            "ls",
            "--format",
            "{{.Name}}",
        ])))
    };
    assert!(
        contexts().lines().any(|c| c == lost),
        "the lost machine's context is there"
    );
    let out = run(&mut euca(&home, &me, &["prune", "-y"]));
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        stdout(&out).contains("pruned 1 instances, 1 groups, 1 key pairs"),
        "{}",
        text(&out)
    );
    // The context docker-euca wrote for the lost machine goes with it; the healthy one's stays.
    assert!(
        stdout(&out).contains(&format!("context {lost} ")),
        "{}",
        text(&out)
    );
    let left = contexts();
    assert!(!left.lines().any(|c| c == lost), "{left}");
    assert!(left.lines().any(|c| c == healthy), "{left}");
    let state = instance_state(&me, &lost_instance);
    assert!(
        state == "terminated" || state == "absent",
        "the lost instance is {state}"
    );
    assert!(!group_exists(&me, &lost_group), "the lost group is left");
    assert!(
        !key_pair_exists(&me, &lost_key),
        "the lost key pair is left"
    );
    assert_nothing_left(&me, &lost);
    // The healthy machine is untouched, record and all, and still answers.
    assert_eq!(instance_state(&me, &kept_instance), "running");
    assert!(group_exists(&me, &kept_group));
    assert_eq!(record(&home, &healthy), kept);
    let out = run(home.docker().args(["--context", &healthy, "version"]));
    assert!(out.status.success(), "{}", text(&out));

    // A second prune finds nothing.
    let out = run(&mut euca(&home, &me, &["prune", "-y"]));
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        stdout(&out).contains("pruned 0 instances, 0 groups, 0 key pairs"),
        "{}",
        text(&out)
    );

    let out = run(&mut euca(&home, &me, &["rm", "-y", &healthy]));
    assert!(out.status.success(), "{}", text(&out));
    assert_nothing_left(&me, &healthy);
}

/// Two stores (two DOCKER_CONFIGs) on one account: a plain prune in one never touches the
/// other's machine; `--all-stores --dry-run` lists it (and still not this store's own).
#[test]
fn prune_leaves_another_store_alone_unless_asked_for_all_stores() {
    let (mine, theirs) = (DockerHome::new(), DockerHome::new());
    let me = User::new();
    let (ours, other) = (unique("prune-mine"), unique("prune-theirs"));
    std::thread::scope(|s| {
        let a = s.spawn(|| create_ok(&mine, &me, &ours, &["-q"]));
        let b = s.spawn(|| create_ok(&theirs, &me, &other, &["-q"]));
        assert!(a.join().is_ok() && b.join().is_ok(), "a create failed");
    });
    let our_instance = record(&mine, &ours).cloud.instance_id.unwrap();
    let their_record = record(&theirs, &other);
    let their_instance = their_record.cloud.instance_id.clone().unwrap();
    let their_group = their_record.cloud.security_group_id.clone().unwrap();
    let their_store = store_id(&theirs);
    assert_ne!(their_store, store_id(&mine));

    let out = run(&mut euca(&mine, &me, &["prune", "-y"]));
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        stdout(&out).contains("pruned 0 instances, 0 groups, 0 key pairs"),
        "{}",
        text(&out)
    );
    assert!(!stdout(&out).contains(&their_instance), "{}", text(&out));
    assert_eq!(instance_state(&me, &their_instance), "running");
    assert!(group_exists(&me, &their_group));
    assert_eq!(record(&theirs, &other), their_record);
    assert_eq!(instance_state(&me, &our_instance), "running");

    let out = run(&mut euca(
        &mine,
        &me,
        &["prune", "--all-stores", "--dry-run"],
    ));
    assert!(out.status.success(), "{}", text(&out));
    let listed = stdout(&out);
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with(&format!("instance {their_instance} "))
                && l.contains(&format!("machine {other}, store {their_store}"))),
        "the other store's instance is not listed:\n{}",
        text(&out)
    );
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with(&format!("group {their_group} "))),
        "the other store's group is not listed:\n{}",
        text(&out)
    );
    assert!(
        !listed.contains(&our_instance),
        "this store's machine has a record, yet is listed:\n{}",
        text(&out)
    );
    assert!(listed.contains("would prune "), "{}", text(&out));
    assert_eq!(instance_state(&me, &their_instance), "running");
    assert!(group_exists(&me, &their_group));

    let out = run(&mut euca(&theirs, &me, &["rm", "-y", &other]));
    assert!(out.status.success(), "{}", text(&out));
    let out = run(&mut euca(&mine, &me, &["rm", "-y", &ours]));
    assert!(out.status.success(), "{}", text(&out));
    assert_nothing_left(&me, &other);
    assert_nothing_left(&me, &ours);
}

/// Without `-y` and without a terminal, prune lists, then refuses in one line with a hint, and
/// removes nothing. (The orphan is a group tagged for this store by hand: no create needed.)
#[test]
fn prune_without_yes_and_without_a_terminal_refuses() {
    let home = DockerHome::new();
    let me = User::new();
    let ec2 = me.ec2();
    let machine = unique("prune-ask");
    let store = store_id(&home);
    let name = format!("docker-euca-{machine}-0badc0de");
    let group =
        block_on(ec2.create_security_group(&name, "left by a lost record", None, &[])).unwrap();
    block_on(ec2.create_tags(
        std::slice::from_ref(&group),
        &[(MACHINE_TAG, machine.as_str()), (STORE_TAG, store.as_str())],
    ))
    .unwrap();

    let out = run(euca(&home, &me, &["prune"]).stdin(Stdio::null()));
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().collect();
    assert!(
        lines.len() == 2
            && lines[0].starts_with("docker euca: ")
            && lines[0].contains("refusing")
            && lines[1].starts_with("hint: ")
            && lines[1].contains("-y"),
        "{}",
        text(&out)
    );
    assert!(
        stdout(&out).contains(&format!("group {group} {name} ")),
        "the list comes first:\n{}",
        text(&out)
    );
    assert!(group_exists(&me, &group), "removed without a yes");

    let out = run(euca(&home, &me, &["prune", "-y"]).stdin(Stdio::null()));
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        stdout(&out).contains("pruned 0 instances, 1 groups, 0 key pairs"),
        "{}",
        text(&out)
    );
    assert!(!group_exists(&me, &group));
}

/// A kill-matrix leftover: a create killed (SIGKILL, no rollback) once its instance ran, whose
/// record was then lost. Prune finds the instance and the group by this store's tags, and
/// afterwards nothing is left.
#[test]
fn prune_removes_what_a_killed_create_left_once_its_record_is_lost() {
    let home = DockerHome::new();
    let me = User::new();
    let name = unique("prune-kill");
    let mut create = home.euca();
    create
        .args([
            "create",
            &name,
            "--image",
            &crate::support::testbed::env()["EUCA_TESTBED_IMAGE"],
        ])
        .env("DOCKER_EUCA_CRASH_AT", "running");
    me.apply(&mut create);
    let out = run(&mut create);
    assert_eq!(
        out.status.code(),
        None,
        "killed at the step: {}",
        text(&out)
    );
    let left = record(&home, &name);
    assert!(left.cloud.instance_id.is_some() && left.cloud.security_group_id.is_some());
    std::fs::remove_dir_all(home.path().join("euca/machines").join(&name)).unwrap();
    let out = run(&mut euca(&home, &me, &["prune", "-y"]));
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        stdout(&out).contains("pruned 1 instances, 1 groups, 0 key pairs"),
        "{}",
        text(&out)
    );
    assert_nothing_left(&me, &name);
}
