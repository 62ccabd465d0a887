//! Fleets on the testbed: `create NAME1 NAME2 …` or `create BASE --count N` makes its machines
//! with one security group and one RunInstances (`MinCount = MaxCount = N`, one client token);
//! each machine gets its record (with `cloud.fleet` and `cloud.launch_index`) and a docker
//! context of its name, is brought up on its own and, when it fails, is rolled back on its own.
//! The shared group goes with the last machine that names it. Checked through the EC2 API (as
//! the test's own testbed user), the testbed's call counts, the store and the real docker CLI.
//! Each case uses at most three VMs and its own user and `DOCKER_CONFIG`.

use std::{
    collections::{BTreeSet, HashMap},
    path::PathBuf,
    process::{Child, Output, Stdio},
    time::{Duration, Instant},
};

use docker_euca::{
    cloud::{InstanceInfo, MACHINE_TAG, STORE_TAG},
    context::ContextStore,
    names::MachineName,
    store::{MachineRecord, MachineState, Store},
};

use crate::support::{
    DockerHome,
    fleet::{
        CHANGING_CALLS, check_bad_cases, context_host, context_names, count_names, create,
        exit_problems, files_changed, group_exists, image, load, record_dir, snapshot, table_row,
    },
    ok, run, server_version,
    testbed::{
        User, assert_nothing_left, assert_testbed_address, block_on, env, euca, groups_named_for,
        record, testbed, unique,
    },
    text,
};

/// `docker euca rm -y NAMES…`, insisting on success.
fn rm(home: &DockerHome, user: &User, names: &[&str]) {
    let mut args = vec!["rm", "-y"];
    args.extend_from_slice(names);
    let out = run(&mut euca(home, user, &args));
    assert!(out.status.success(), "rm {names:?}: {}", text(&out));
}

/// The `docker euca: ` error line and the line after it.
fn error_and_hint(out: &Output) -> (String, String) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let mut lines = stderr
        .lines()
        .skip_while(|l| !l.starts_with("docker euca: "));
    let error = lines.next().unwrap_or_default().to_string();
    let hint = lines.next().unwrap_or_default().to_string();
    (error, hint)
}

/// Whether stderr has a stage line of machine `name` (prefixed `NAME: `) saying `what`.
fn has_machine_line(out: &Output, name: &str, what: &str) -> bool {
    let prefix = format!("{name}: ");
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .any(|l| l.starts_with(&prefix) && l.contains(what))
}

/// Every instance launched with this client token, in any state (read page by page, without
/// the `client-token` filter the testbed lacks).
fn launched_with(user: &User, token: &str) -> Vec<InstanceInfo> {
    block_on(user.ec2().instances_launched_with(token)).unwrap()
}

fn instance_state(user: &User, id: &str) -> String {
    block_on(user.ec2().describe_instance(id))
        .unwrap()
        .map(|i| i.state)
        .unwrap_or_else(|| "absent".into())
}

/// The failed calls of this user, per action (`User::stats` counts every call).
fn error_stats(user: &User) -> HashMap<String, u64> {
    let out = testbed(&["stats", "--json", "--access-key", &user.access_key]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["errors"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, n)| (k.clone(), n.as_u64().unwrap()))
                .collect()
        })
        .unwrap_or_default()
}

/// Nothing of the fleet is left: for every machine no live instance with its tags, no record,
/// no context; no group of the fleet's label, and the group the records named is gone.
fn assert_fleet_gone(home: &DockerHome, user: &User, names: &[String], label: &str, group: &str) {
    let contexts = context_names(home);
    for name in names {
        assert_nothing_left(user, name);
        assert!(
            !record_dir(home, name).exists(),
            "the record of {name} is left"
        );
        assert!(
            !contexts.contains(name),
            "the context {name} is left: {contexts:?}"
        );
    }
    let groups = groups_named_for(user, label);
    assert!(groups.is_empty(), "groups of {label} left: {groups:?}");
    assert!(
        !group_exists(user, group),
        "the fleet's group {group} is left"
    );
}

/// No instance of the launch is alive any more.
fn assert_launch_gone(user: &User, token: &str) {
    let alive: Vec<_> = launched_with(user, token)
        .into_iter()
        .filter(|i| i.state != "terminated")
        .collect();
    assert!(
        alive.is_empty(),
        "instances of {token} still alive: {alive:?}"
    );
}

#[test]
fn fleet_of_three_one_launch_one_group() {
    let home = DockerHome::new();
    let user = User::new();
    let base = unique("flt");
    let names = count_names(&base, 3);
    let out = create(&home, &user, &[&base, "--count", "3"]);
    assert!(out.status.success(), "{}", text(&out));
    for name in &names {
        for stage in ["to run with a public address", "waiting for SSH on"] {
            assert!(
                has_machine_line(&out, name, stage),
                "no `{name}: …{stage}` line: {}",
                text(&out)
            );
        }
    }

    // One launch and one group for the three (counted before this test makes calls itself;
    // it never sends either action).
    let stats = user.stats();
    assert_eq!(stats.get("RunInstances"), Some(&1), "{stats:?}");
    assert_eq!(stats.get("CreateSecurityGroup"), Some(&1), "{stats:?}");

    let records: Vec<MachineRecord> = names.iter().map(|n| record(&home, n)).collect();
    let store_id = Store::new(home.path()).id().unwrap();
    let token = records[0]
        .cloud
        .client_token
        .clone()
        .expect("the client token is journalled");
    let group = records[0]
        .cloud
        .security_group_id
        .clone()
        .expect("the group is journalled");
    for (n, (name, r)) in names.iter().zip(&records).enumerate() {
        assert_eq!(r.state, MachineState::Ready, "{name}: {r:?}");
        assert_eq!(r.cloud.fleet.as_deref(), Some(base.as_str()), "{name}");
        assert_eq!(r.cloud.launch_index, Some(n as u32), "{name}");
        assert_eq!(
            r.cloud.client_token.as_deref(),
            Some(token.as_str()),
            "{name}"
        );
        assert_eq!(r.cloud.security_group_id.as_deref(), Some(group.as_str()));
        assert!(r.cloud.security_group_owned, "{name}");
        let public = r.cloud.public_ip.clone().expect("a public address");
        assert_testbed_address(public.parse().unwrap());
        let (address, result) = table_row(&out, name);
        assert_eq!(address, public, "{name}'s row: {}", text(&out));
        assert!(
            result.starts_with("ready: Docker "),
            "{name}'s row: {result:?}\n{}",
            text(&out)
        );
    }

    // In the cloud: three instances of one token, launch indexes 0, 1, 2 in the order of the
    // names, each tagged with its own machine.
    let ids: Vec<String> = records
        .iter()
        .map(|r| r.cloud.instance_id.clone().expect("an instance"))
        .collect();
    assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), 3, "{ids:?}");
    let launched = launched_with(&user, &token);
    assert_eq!(
        launched.iter().map(|i| &i.id).collect::<BTreeSet<_>>(),
        ids.iter().collect::<BTreeSet<_>>(),
        "the token's instances are exactly the records': {launched:?}"
    );
    for (n, (name, id)) in names.iter().zip(&ids).enumerate() {
        let i = launched.iter().find(|i| &i.id == id).unwrap();
        assert_eq!(i.state, "running", "{name}: {i:?}");
        assert_eq!(i.launch_index, Some(n as u32), "{name}: {i:?}");
        assert_eq!(i.client_token.as_deref(), Some(token.as_str()));
        for tag in [
            ("Name", name.as_str()),
            (MACHINE_TAG, name.as_str()),
            (STORE_TAG, store_id.as_str()),
        ] {
            assert!(
                i.tags.contains(&(tag.0.to_string(), tag.1.to_string())),
                "{name} lacks the tag {tag:?}: {:?}",
                i.tags
            );
        }
        assert_eq!(i.security_group_ids, vec![group.clone()], "{name}: {i:?}");
    }
    // One group, tagged with the fleet's label (the base name) and this store.
    let g = block_on(user.ec2().security_group(&group))
        .unwrap()
        .expect("the fleet's group");
    assert!(
        g.tags.contains(&(MACHINE_TAG.to_string(), base.clone())),
        "{:?}",
        g.tags
    );
    assert!(
        g.tags.contains(&(STORE_TAG.to_string(), store_id.clone())),
        "{:?}",
        g.tags
    );
    assert_eq!(groups_named_for(&user, &base), vec![g.name.clone()]);

    // Every machine has its own context, pointing at its own address, and its own host key.
    for (name, r) in names.iter().zip(&records) {
        assert!(!server_version(&home, name).is_empty(), "{name}");
        let host = context_host(&home, name);
        assert_eq!(
            host,
            format!("tcp://{}:2376", r.cloud.public_ip.as_ref().unwrap()),
            "{name}"
        );
    }
    let host_keys: BTreeSet<String> = records
        .iter()
        .map(|r| r.ssh.host_key.clone().expect("a pinned host key"))
        .collect();
    assert_eq!(
        host_keys.len(),
        3,
        "each machine pins its own: {host_keys:?}"
    );

    // The first machine goes alone: the group stays, holding the other two.
    rm(&home, &user, &[&names[0]]);
    assert_nothing_left(&user, &names[0]);
    assert!(!record_dir(&home, &names[0]).exists());
    assert!(!context_names(&home).contains(&names[0]));
    assert!(
        matches!(
            instance_state(&user, &ids[0]).as_str(),
            "terminated" | "absent"
        ),
        "{}",
        instance_state(&user, &ids[0])
    );
    assert!(
        group_exists(&user, &group),
        "rm of one machine deleted the group the others are in"
    );
    for (name, id) in names.iter().zip(&ids).skip(1) {
        let i = block_on(user.ec2().describe_instance(id)).unwrap().unwrap();
        assert_eq!(i.state, "running", "{name}");
        assert_eq!(i.security_group_ids, vec![group.clone()], "{name}");
        assert_eq!(
            record(&home, name).cloud.security_group_id.as_deref(),
            Some(group.as_str())
        );
        assert!(!server_version(&home, name).is_empty(), "{name}");
    }

    // The last two go together, selected by a pattern as `ls` would (one that matches nothing
    // is refused and removes nothing): the group goes with the last.
    let out = run(&mut euca(&home, &user, &["rm", "-y", "nomatch-*"]));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .starts_with("docker euca: no machine matches \"nomatch-*\""),
        "{}",
        text(&out)
    );
    let pattern = format!("{base}-*");
    let out = run(&mut euca(&home, &user, &["rm", "-y", &pattern]));
    assert!(out.status.success(), "rm {pattern}: {}", text(&out));
    for name in &names[1..] {
        assert!(
            String::from_utf8_lossy(&out.stdout).contains(&format!("{name} removed")),
            "{}",
            text(&out)
        );
    }
    assert_fleet_gone(&home, &user, &names, &base, &group);
    assert_launch_gone(&user, &token);
}

#[test]
fn a_fleet_where_one_host_fails_keeps_the_others_and_leaves_nothing_of_it() {
    let home = DockerHome::new();
    let user = User::new();
    // The first instance of the answer (launch index 0: the first machine) boots with host
    // keys other than the ones pinned through its user data.
    user.fault("RunInstances", &["--swap-host-key", "--count", "1"]);
    let base = unique("fhk");
    let names = count_names(&base, 3);
    let out = create(&home, &user, &[&base, "--count", "3"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let (error, hint) = error_and_hint(&out);
    assert_eq!(
        error,
        format!("docker euca: 1 of 3 machines failed: {}", names[0]),
        "{}",
        text(&out)
    );
    assert!(hint.starts_with("hint: "), "{}", text(&out));
    let (address, result) = table_row(&out, &names[0]);
    assert_eq!(address, "-", "{}", text(&out));
    assert!(
        result.starts_with("failed: ") && result.contains("does not match the pinned one"),
        "{}'s row: {result:?}\n{}",
        names[0],
        text(&out)
    );
    assert!(
        has_machine_line(&out, &names[0], "rolled back"),
        "{}",
        text(&out)
    );
    for name in &names[1..] {
        let (_, result) = table_row(&out, name);
        assert!(result.starts_with("ready: Docker "), "{name}: {result:?}");
        assert!(!server_version(&home, name).is_empty(), "{name}");
        assert_eq!(record(&home, name).state, MachineState::Ready);
    }

    // Nothing of the failed machine: no record, no context, its instance terminated.
    assert!(
        !record_dir(&home, &names[0]).exists(),
        "the failed machine's record is left"
    );
    assert!(!ContextStore::new(home.path()).exists(&names[0]));
    assert!(!context_names(&home).contains(&names[0]));
    assert_nothing_left(&user, &names[0]);
    let survivor = record(&home, &names[1]);
    let token = survivor.cloud.client_token.clone().expect("the token");
    let group = survivor.cloud.security_group_id.clone().expect("the group");
    // Of the launch, only the two survivors live; the first machine's (launch index 0) is
    // terminated (or, should the cloud no longer list it, gone).
    let survivors: BTreeSet<String> = names[1..]
        .iter()
        .map(|n| record(&home, n).cloud.instance_id.unwrap())
        .collect();
    let launched = launched_with(&user, &token);
    let alive: BTreeSet<String> = launched
        .iter()
        .filter(|i| i.state != "terminated")
        .map(|i| i.id.clone())
        .collect();
    assert_eq!(alive, survivors, "{launched:?}");
    for i in &launched {
        if i.launch_index == Some(0) {
            assert_eq!(i.state, "terminated", "{i:?}");
        } else {
            assert_eq!(i.state, "running", "{i:?}");
        }
    }
    // The group stays for the two that still name it.
    assert!(
        group_exists(&user, &group),
        "the failed machine's rollback deleted the shared group"
    );
    assert_eq!(
        record(&home, &names[2]).cloud.security_group_id.as_deref(),
        Some(group.as_str())
    );

    rm(&home, &user, &[&names[1], &names[2]]);
    assert_fleet_gone(&home, &user, &names, &base, &group);
    assert_launch_gone(&user, &token);
}

/// VPC needs no testbed mode of its own: the testbed's subnet (`EUCA_TESTBED_SUBNET`) exists in
/// the first account whatever `--mode` was, and VPC instances are reached on their private
/// address (as create_rm.rs's VPC create).
#[test]
fn a_fleet_by_names_in_vpc() {
    let home = DockerHome::new();
    let user = User::new();
    let subnet = env()["EUCA_TESTBED_SUBNET"].clone();
    let names = vec![unique("vpa"), unique("vpb")];
    let out = create(
        &home,
        &user,
        &[
            &names[0],
            &names[1],
            "--subnet",
            &subnet,
            "--use-private-address",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    // Named machines: the fleet's label is the first name.
    let label = names[0].clone();
    let records: Vec<MachineRecord> = names.iter().map(|n| record(&home, n)).collect();
    let group = records[0].cloud.security_group_id.clone().unwrap();
    let token = records[0].cloud.client_token.clone().unwrap();
    for (n, (name, r)) in names.iter().zip(&records).enumerate() {
        assert!(
            has_machine_line(&out, name, "to run with its private address"),
            "{}",
            text(&out)
        );
        assert_eq!(r.cloud.fleet.as_deref(), Some(label.as_str()));
        assert_eq!(r.cloud.launch_index, Some(n as u32));
        assert_eq!(r.cloud.subnet_id.as_deref(), Some(subnet.as_str()));
        assert_eq!(r.cloud.security_group_id.as_deref(), Some(group.as_str()));
        let private = r.cloud.private_ip.clone().unwrap();
        assert!(private.starts_with("10.215."), "{name}: {private}");
        let (address, result) = table_row(&out, name);
        assert_eq!(address, private, "{name}");
        assert!(result.starts_with("ready: Docker "), "{name}: {result:?}");
        assert!(!server_version(&home, name).is_empty(), "{name}");
        let i = block_on(
            user.ec2()
                .describe_instance(r.cloud.instance_id.as_ref().unwrap()),
        )
        .unwrap()
        .unwrap();
        assert_eq!(i.subnet_id.as_deref(), Some(subnet.as_str()), "{i:?}");
        assert_eq!(i.client_token.as_deref(), Some(token.as_str()));
        assert_eq!(i.launch_index, Some(n as u32));
        assert_eq!(i.security_group_ids, vec![group.clone()]);
    }
    let stats = user.stats();
    assert_eq!(stats.get("RunInstances"), Some(&1), "{stats:?}");
    assert_eq!(stats.get("CreateSecurityGroup"), Some(&1), "{stats:?}");
    // The group was made in the subnet's VPC.
    let sdk = user.ec2().sdk().clone();
    let subnets = block_on(sdk.describe_subnets().subnet_ids(&subnet).send()).unwrap();
    let vpc = subnets.subnets()[0]
        .vpc_id()
        .expect("the subnet's VPC")
        .to_string();
    let groups = block_on(sdk.describe_security_groups().group_ids(&group).send()).unwrap();
    let g = &groups.security_groups()[0];
    assert_eq!(g.vpc_id(), Some(vpc.as_str()), "{g:?}");
    assert!(
        g.tags()
            .iter()
            .any(|t| t.key() == Some(MACHINE_TAG) && t.value() == Some(label.as_str())),
        "{g:?}"
    );

    rm(&home, &user, &[&names[0], &names[1]]);
    assert_fleet_gone(&home, &user, &names, &label, &group);
    assert_launch_gone(&user, &token);
}

/// A running plugin process; interrupted (SIGINT, so that it rolls back) if the test panics
/// before it ends.
struct Running(Option<Child>);

impl Running {
    fn pid(&self) -> i32 {
        self.0.as_ref().unwrap().id() as i32
    }

    fn ended(&mut self) -> Option<std::process::ExitStatus> {
        self.0.as_mut().unwrap().try_wait().unwrap()
    }

    fn wait(mut self) -> Output {
        self.0.take().unwrap().wait_with_output().unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(child) = self.0.take() {
            // SAFETY: kill(2) on our own child's pid.
            unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
            let _ = child.wait_with_output();
        }
    }
}

#[test]
fn ctrl_c_during_a_fleets_wait_removes_every_instance() {
    let home = DockerHome::new();
    let user = User::new();
    // The instances stay pending long past the interruption.
    user.config(&["--boot-delay", "120"]);
    let base = unique("fint");
    let names = count_names(&base, 3);
    // The plugin itself, so that its own exit status is seen and the signal reaches it (as
    // kill_matrix.rs runs it).
    let mut cmd = home.euca();
    cmd.args(["create", &base, "--count", "3", "--image", &image()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    user.apply(&mut cmd);
    let mut child = Running(Some(cmd.spawn().unwrap()));

    // The event: every record holds its instance (the launch was answered and journalled) and
    // the create has sent its first DescribeInstances, which only the wait for the addresses
    // sends (this test sends none before the signal). Stage lines are printed when a stage
    // ends, so stderr cannot show the wait while it lasts.
    let deadline = Instant::now() + Duration::from_secs(120);
    let (ids, token, group) = loop {
        if let Some(status) = child.ended() {
            panic!(
                "the create ended ({status}) before it was interrupted: {}",
                text(&child.wait())
            );
        }
        let records: Vec<MachineRecord> = names
            .iter()
            .filter_map(|n| load(&home, n))
            .filter(|r| r.cloud.instance_id.is_some())
            .collect();
        if records.len() == names.len()
            && user.stats().get("DescribeInstances").copied().unwrap_or(0) >= 1
        {
            let ids: Vec<String> = records
                .iter()
                .map(|r| r.cloud.instance_id.clone().unwrap())
                .collect();
            break (
                ids,
                records[0].cloud.client_token.clone().expect("the token"),
                records[0]
                    .cloud
                    .security_group_id
                    .clone()
                    .expect("the group"),
            );
        }
        assert!(
            Instant::now() < deadline,
            "the create never reached the wait for its instances"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    // SAFETY: kill(2) on our own child's pid, as a terminal's Ctrl-C would signal it.
    unsafe { libc::kill(child.pid(), libc::SIGINT) };
    let out = child.wait();

    // Everything the launch made is gone: the three instances terminated, no record, no
    // context, no group.
    let launched = launched_with(&user, &token);
    assert!(
        launched.iter().all(|i| ids.contains(&i.id)),
        "the token's instances are the records' {ids:?}: {launched:?}"
    );
    assert_launch_gone(&user, &token);
    for id in &ids {
        assert!(
            matches!(instance_state(&user, id).as_str(), "terminated" | "absent"),
            "{id}: {}",
            text(&out)
        );
    }
    assert_fleet_gone(&home, &user, &names, &base, &group);
    assert!(
        Store::new(home.path()).list().unwrap().is_empty(),
        "records left after the interruption"
    );
    for name in &names {
        assert!(
            has_machine_line(&out, name, "rolled back"),
            "no rollback line for {name}: {}",
            text(&out)
        );
    }
    // Interrupted, the command ends as an interrupted single create does (cli.rs,
    // report::failure): 130, not the fleet's "K of N machines failed" exit 1.
    assert_eq!(
        out.status.code(),
        Some(130),
        "a Ctrl-C of a fleet's create must exit 130: {}",
        text(&out)
    );
}

#[test]
fn a_lost_run_instances_answer_still_makes_or_removes_every_instance() {
    let home = DockerHome::new();
    let user = User::new();
    // RunInstances is applied (two instances launched and booting), its answer lost.
    user.fault("RunInstances", &["--lose-answer", "--count", "1"]);
    let base = unique("flost");
    let names = count_names(&base, 2);
    let out = create(&home, &user, &[&base, "--count", "2", "--parallel", "1"]);
    assert!(out.status.success(), "{}", text(&out));
    // Sent again with the same token, answered with the same reservation.
    assert_eq!(user.stats().get("RunInstances"), Some(&2));
    assert_eq!(
        error_stats(&user).get("RunInstances"),
        Some(&1),
        "the lost answer was one failed call"
    );
    let records: Vec<MachineRecord> = names.iter().map(|n| record(&home, n)).collect();
    let token = records[0].cloud.client_token.clone().unwrap();
    let group = records[0].cloud.security_group_id.clone().unwrap();
    let launched = launched_with(&user, &token);
    assert_eq!(
        launched.len(),
        2,
        "exactly the fleet's two instances for the token, not four: {launched:?}"
    );
    for (n, (name, r)) in names.iter().zip(&records).enumerate() {
        assert_eq!(r.cloud.client_token.as_deref(), Some(token.as_str()));
        let id = r.cloud.instance_id.clone().unwrap();
        let i = launched
            .iter()
            .find(|i| i.id == id)
            .expect("one of the token's");
        assert_eq!(i.launch_index, Some(n as u32), "{name}: {i:?}");
        assert_eq!(i.state, "running");
        assert!(
            i.tags
                .contains(&(MACHINE_TAG.to_string(), name.to_string())),
            "{i:?}"
        );
        let (_, result) = table_row(&out, name);
        assert!(result.starts_with("ready: Docker "), "{name}: {result:?}");
        assert!(!server_version(&home, name).is_empty(), "{name}");
    }
    let untagged: Vec<_> = block_on(user.ec2().describe_instances(&[]))
        .unwrap()
        .into_iter()
        .filter(|i| i.state != "terminated" && i.tags.is_empty())
        .filter(|i| {
            i.client_token
                .as_deref()
                .is_some_and(|t| t.starts_with(&format!("docker-euca-{base}-")))
        })
        .collect();
    assert!(
        untagged.is_empty(),
        "an untagged instance of ours: {untagged:?}"
    );
    assert_eq!(groups_named_for(&user, &base).len(), 1);

    rm(&home, &user, &[&names[0], &names[1]]);
    assert_fleet_gone(&home, &user, &names, &base, &group);
    assert_launch_gone(&user, &token);
}

/// What a bad-input case finds in its `DOCKER_CONFIG` beforehand.
#[derive(Debug, Clone)]
enum Setup {
    Empty,
    /// A docker context of this name, written by the real docker CLI (not docker-euca's).
    Context(String),
    /// A machine record of this name (as a create that got no further than its record).
    Record(String),
}

#[derive(Debug)]
struct BadCase {
    args: Vec<String>,
    /// clap refuses (exit 2, `error: …`); else docker euca does (`docker euca: …`, `hint: …`).
    usage: bool,
    needle: String,
    setup: Setup,
}

fn bad(args: &[&str], usage: bool, needle: &str, setup: Setup) -> BadCase {
    BadCase {
        args: args.iter().map(|s| s.to_string()).collect(),
        usage,
        needle: needle.to_string(),
        setup,
    }
}

#[test]
fn fleet_bad_input_makes_nothing() {
    let image = image();
    let base = unique("fbad");
    let (n1, n2) = (format!("{base}-1"), format!("{base}-2"));
    // A base name that fits, whose `-1` no longer does (32 characters at most).
    let long_base = "abcdefghijabcdefghijabcdefghija";
    assert_eq!(long_base.len(), 31);
    let no_key = std::env::temp_dir().join(format!("{base}-no-such-key"));
    let no_key = no_key.to_str().unwrap();
    let cases = vec![
        bad(
            &[&n1, &n2, "--count", "2"],
            false,
            "--count takes one base name",
            Setup::Empty,
        ),
        bad(&[&base, "--count", "0"], true, "--count", Setup::Empty),
        bad(&[&base, "--count", "101"], true, "--count", Setup::Empty),
        bad(
            &[&base, "--count", "2", "--parallel", "0"],
            true,
            "--parallel",
            Setup::Empty,
        ),
        bad(
            &[long_base, "--count", "2"],
            false,
            &format!("{long_base}-1: "),
            Setup::Empty,
        ),
        bad(
            &[&n1, &n2, "--context-name", "ctx"],
            false,
            "--context-name and --use are for one machine",
            Setup::Empty,
        ),
        bad(
            &[&base, "--count", "2", "--use"],
            false,
            "--context-name and --use are for one machine",
            Setup::Empty,
        ),
        bad(
            &[&n1, &n2, &n1],
            false,
            &format!("{n1} is named twice"),
            Setup::Empty,
        ),
        bad(
            &[&base, "--count", "2", "--import-keypair"],
            false,
            "a fleet needs cloud-init",
            Setup::Empty,
        ),
        bad(
            &[&n1, &n2, "--no-cloud-init", "--import-keypair"],
            false,
            "a fleet needs cloud-init",
            Setup::Empty,
        ),
        bad(
            &[
                &n1,
                &n2,
                "--no-cloud-init",
                "--keypair-name",
                "kp",
                "--ssh-key",
                no_key,
            ],
            false,
            "a fleet needs cloud-init",
            Setup::Empty,
        ),
        bad(
            &[&base, "--count", "3"],
            false,
            &format!("a docker context named {n2:?} already exists"),
            Setup::Context(n2.clone()),
        ),
        bad(
            &[&n1, &n2],
            false,
            &format!("a docker context named {n2:?} already exists"),
            Setup::Context(n2.clone()),
        ),
        bad(
            &[&base, "--count", "3"],
            false,
            &format!("machine {n2:?} already exists"),
            Setup::Record(n2.clone()),
        ),
    ];
    check_bad_cases(
        &cases,
        |c| c.args.join(" "),
        |c| format!("{:?}", c.setup),
        |c| bad_case(c, &image),
    );
}

/// One bad-input case, as a fresh user in a fresh `DOCKER_CONFIG`; what went wrong, if anything.
fn bad_case(case: &BadCase, image: &str) -> Vec<String> {
    let user = User::new();
    let home = DockerHome::new();
    match &case.setup {
        Setup::Empty => {}
        Setup::Context(name) => {
            ok(home.docker().args([
                "context",
                "create",
                name,
                "--docker",
                "host=tcp://127.0.0.1:1",
            ]));
        }
        Setup::Record(name) => {
            Store::new(home.path())
                .create(&MachineRecord::new(
                    MachineName::new(name.as_str()).unwrap(),
                ))
                .unwrap();
        }
    }
    let reaches_the_cloud = matches!(case.setup, Setup::Record(_));
    let before = snapshot(home.path(), reaches_the_cloud);
    let contexts_before = context_names(&home);
    let mut args = vec!["create"];
    args.extend(case.args.iter().map(String::as_str));
    args.extend(["--image", image]);
    let out = run(&mut euca(&home, &user, &args));

    let mut problems = exit_problems(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let mut lines = stderr.lines();
    let first = lines.next().unwrap_or_default();
    let second = lines.next().unwrap_or_default();
    if case.usage {
        if out.status.code() != Some(2) {
            problems.push(format!("a usage error exits 2, not {}", out.status));
        }
        if !first.starts_with("error: ") {
            problems.push(format!(
                "clap's first line starts with `error: `: {first:?}"
            ));
        }
    } else {
        if !first.starts_with("docker euca: ") {
            problems.push(format!(
                "the first line must start with `docker euca: `: {first:?}"
            ));
        }
        if !second.starts_with("hint: ") {
            problems.push(format!("the second line must be a `hint: `: {second:?}"));
        }
    }
    if !first.contains(&case.needle) {
        problems.push(format!(
            "the first line does not say {:?}: {first:?}",
            case.needle
        ));
    }
    // Nothing written: no record, no context, no file changed.
    let after = snapshot(home.path(), reaches_the_cloud);
    problems.extend(files_changed(&before, &after));
    let contexts_after = context_names(&home);
    if contexts_after != contexts_before {
        problems.push(format!(
            "contexts changed: {contexts_before:?} -> {contexts_after:?}"
        ));
    }
    // Nothing in the cloud: refused before the first call, or (a record in the way, found
    // when the records are written, after the image was looked up) before any call that makes
    // something.
    let stats = user.stats();
    if reaches_the_cloud {
        let changing: Vec<String> = CHANGING_CALLS
            .iter()
            .filter_map(|a| stats.get(*a).map(|n| format!("{a} ×{n}")))
            .collect();
        if !changing.is_empty() {
            problems.push(format!(
                "calls that change the cloud: {}",
                changing.join(", ")
            ));
        }
    } else if !stats.is_empty() {
        problems.push(format!("refused after reaching the cloud: {stats:?}"));
    }
    if !problems.is_empty() {
        problems.push(text(&out));
    }
    problems
}

#[test]
fn a_shared_ca_fleet_opens_every_host_with_one_client_certificate() {
    let home = DockerHome::new();
    let user = User::new();
    let base = unique("fca");
    let names = count_names(&base, 2);
    let out = create(&home, &user, &[&base, "--count", "2", "--shared-ca"]);
    assert!(out.status.success(), "{}", text(&out));
    let group = record(&home, &names[0]).cloud.security_group_id.unwrap();
    let token = record(&home, &names[0]).cloud.client_token.unwrap();
    let certs = |name: &str| record_dir(&home, name).join("certs");
    let read =
        |path: PathBuf| std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    // One CA: the machines' CA certificates are the same, and so are their contexts'.
    assert_eq!(
        read(certs(&names[0]).join("ca.pem")),
        read(certs(&names[1]).join("ca.pem")),
        "--shared-ca: every machine's certs/ca.pem is the same"
    );
    let contexts = ContextStore::new(home.path());
    let (tls_a, tls_b) = (contexts.tls_dir(&names[0]), contexts.tls_dir(&names[1]));
    assert_eq!(read(tls_a.join("ca.pem")), read(tls_b.join("ca.pem")));
    assert_eq!(
        read(tls_a.join("ca.pem")),
        read(certs(&names[0]).join("ca.pem"))
    );
    // Each host's server certificate chains to it.
    for (ca_of, server_of) in [(&names[0], &names[1]), (&names[1], &names[0])] {
        let out = run(std::process::Command::new("openssl").args([
            "verify",
            "-CAfile",
            certs(ca_of).join("ca.pem").to_str().unwrap(),
            certs(server_of).join("server.pem").to_str().unwrap(),
        ]));
        assert!(
            out.status.success(),
            "{server_of}'s server cert under {ca_of}'s CA: {}",
            text(&out)
        );
    }
    // The TLS files of one context open the other host, through the real docker CLI.
    for (files_of, host_of) in [(&names[0], &names[1]), (&names[1], &names[0])] {
        let tls = contexts.tls_dir(files_of);
        let host = context_host(&home, host_of);
        assert_eq!(
            host,
            format!(
                "tcp://{}:2376",
                record(&home, host_of).cloud.public_ip.unwrap()
            )
        );
        let out = run(home.docker().args([
            "--host",
            &host,
            "--tlsverify",
            "--tlscacert",
            tls.join("ca.pem").to_str().unwrap(),
            "--tlscert",
            tls.join("cert.pem").to_str().unwrap(),
            "--tlskey",
            tls.join("key.pem").to_str().unwrap(),
            "version",
            "--format",
            "{{.Server.Version}}",
        ]));
        assert!(
            out.status.success() && !String::from_utf8_lossy(&out.stdout).trim().is_empty(),
            "{files_of}'s client certificate must open {host_of} ({host}): {}",
            text(&out)
        );
    }
    for name in &names {
        assert!(!server_version(&home, name).is_empty(), "{name}");
    }

    rm(&home, &user, &[&names[0], &names[1]]);
    assert_fleet_gone(&home, &user, &names, &base, &group);
    assert_launch_gone(&user, &token);
}
