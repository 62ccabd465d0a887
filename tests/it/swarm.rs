//! Docker Swarm clusters on the testbed: `create BASE --count N --swarm CLUSTER` launches a
//! fleet (one RunInstances) whose first K machines are managers and the rest workers, forms the
//! cluster, and writes a docker context `CLUSTER` pointing at a manager; `create NAME --swarm
//! CLUSTER` joins an existing cluster; `rm` of a member leaves the cluster (the last manager
//! ends it); the cluster's own security group admits its members only and goes with the last
//! record naming it. Checked through the real docker CLI (`node ls`, `service ps`, `exec`), the
//! EC2 API as the test's own testbed user, the testbed's call counts and the store.
//!
//! What the testbed cannot do (its README, Limits): the service VIP, the ingress routing mesh
//! and encrypted overlays (no IPVS, no ESP in the host kernel), so services here are global,
//! reached by task address or `tasks.NAME` with `--endpoint-mode dnsrr`; and security groups
//! are not enforced, so the cluster group's rules are only read back through the API.
//! Each case uses at most three VMs and its own user and `DOCKER_CONFIG`.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
    process::{Command, Output},
    time::{Duration, Instant},
};

use docker_euca::{
    cloud::{MACHINE_TAG, STORE_TAG},
    store::{MachineState, Store},
};
use serde_json::Value;

use crate::support::{
    DockerHome,
    fleet::{
        CHANGING_CALLS, check_bad_cases, context_host, context_names, count_names, create,
        exit_problems, files_changed, group_exists, image, load, record_dir, snapshot, table_row,
    },
    ok, run, run_with_input,
    testbed::{
        User, assert_nothing_left, block_on, euca, groups_named_for, record, testbed, unique,
    },
    text,
};

/// The image `testbed image-tar` writes (the VMs have no registry).
const IMAGE: &str = "euca-testbed/busybox:latest";

/// How long the cluster may take to show what a command did (nodes Ready, a node gone).
const NODES_TIMEOUT: Duration = Duration::from_secs(90);
/// How long a global service may take to run a task on every node (the workers try Docker Hub
/// first, which the VMs' DNS refuses at once).
const TASKS_TIMEOUT: Duration = Duration::from_secs(180);
/// How long the overlay may take to carry traffic between tasks once they run.
const OVERLAY_TIMEOUT: Duration = Duration::from_secs(60);

/// `docker euca rm -y ARGS…`, insisting on success and on a clean departure from the swarm
/// (no "leaving its swarm" warning: the depart steps all answered).
fn rm(home: &DockerHome, user: &User, args: &[&str]) -> Output {
    let mut all = vec!["rm", "-y"];
    all.extend_from_slice(args);
    let out = run(&mut euca(home, user, &all));
    assert!(out.status.success(), "rm {args:?}: {}", text(&out));
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("leaving its swarm:"),
        "rm {args:?} could not leave the swarm cleanly: {}",
        text(&out)
    );
    out
}

/// `docker euca ARGS…` as `user` on a terminal (script(1) gives it a pty), typing `input`;
/// both streams come back merged on stdout.
fn euca_on_a_terminal(home: &DockerHome, user: &User, args: &[&str], input: &str) -> Output {
    let line = std::iter::once("docker euca".to_string())
        .chain(args.iter().map(|a| format!("'{a}'")))
        .collect::<Vec<_>>()
        .join(" ");
    let mut cmd = Command::new("script");
    cmd.args(["-q", "-e", "-c", &line, "/dev/null"])
        .env("DOCKER_CONFIG", home.path())
        .env_remove("DOCKER_HOST")
        .env_remove("DOCKER_CONTEXT");
    user.apply(&mut cmd);
    run_with_input(&mut cmd, input.as_bytes())
}

/// A field of context `name`, as `docker context inspect --format` reads it.
fn context_field(home: &DockerHome, name: &str, template: &str) -> String {
    ok(home
        .docker()
        .args(["context", "inspect", name, "--format", template]))
    .trim()
    .to_string()
}

/// The description, read as JSON: this docker CLI's template cannot reach into its metadata.
fn context_description(home: &DockerHome, name: &str) -> String {
    let metadata: serde_json::Value =
        serde_json::from_str(&context_field(home, name, "{{json .Metadata}}")).unwrap();
    // `.Metadata` is docker's whole context record here: {Name, Metadata, Endpoints}.
    metadata["Metadata"]["Description"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The member the cluster's context points at (by its daemon URL), checked against the
/// context's description.
fn context_member(home: &DockerHome, cluster: &str, members: &[String]) -> String {
    let host = context_host(home, cluster);
    let member = members
        .iter()
        .find(|m| load(home, m).and_then(|r| r.engine.url).as_deref() == Some(host.as_str()))
        .unwrap_or_else(|| panic!("context {cluster} points at {host}, none of {members:?}"))
        .clone();
    assert_eq!(
        context_description(home, cluster),
        format!("docker-euca: swarm {cluster} through {member}"),
        "the description of context {cluster}"
    );
    member
}

/// The last line of stdout.
fn last_line(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .rfind(|l| !l.trim().is_empty())
        .unwrap_or_default()
        .to_string()
}

/// A create's stdout ends with how to reach the cluster.
fn assert_swarm_line(out: &Output, cluster: &str) {
    assert_eq!(
        last_line(out),
        format!("swarm {cluster}: docker --context {cluster} node ls"),
        "{}",
        text(out)
    );
}

/// A node of `docker node ls`.
#[derive(Debug, Clone)]
struct Node {
    id: String,
    hostname: String,
    /// `Ready`, `Down`, `Unknown`.
    status: String,
    /// `Leader`, `Reachable`, `Unreachable`; empty for a worker.
    manager: String,
}

/// `docker --context CONTEXT node ls`, or why it failed.
fn nodes(home: &DockerHome, context: &str) -> Result<Vec<Node>, String> {
    let out = run(home.docker().args([
        "--context",
        context,
        "node",
        "ls",
        "--format",
        "{{.ID}}|{{.Hostname}}|{{.Status}}|{{.ManagerStatus}}",
    ]));
    if !out.status.success() {
        return Err(format!("node ls failed: {}", text(&out)));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let mut f = l.split('|').map(str::trim);
            let mut next = || f.next().unwrap_or_default().to_string();
            Node {
                id: next().trim_end_matches('*').trim().to_string(),
                hostname: next(),
                status: next(),
                manager: next(),
            }
        })
        .collect())
}

/// Whether the nodes are exactly `ids`, all Ready, `managers` of them managers (Leader or
/// Reachable) with exactly one Leader, the others workers.
fn cluster_shape(nodes: &[Node], ids: &BTreeSet<String>, managers: usize) -> Result<(), String> {
    let got: BTreeSet<String> = nodes.iter().map(|n| n.id.clone()).collect();
    if got.len() != nodes.len() || &got != ids {
        return Err(format!("node ids {got:?}, want {ids:?}: {nodes:?}"));
    }
    if let Some(n) = nodes.iter().find(|n| n.status != "Ready") {
        return Err(format!("{n:?} is not Ready: {nodes:?}"));
    }
    if let Some(n) = nodes
        .iter()
        .find(|n| !matches!(n.manager.as_str(), "" | "Leader" | "Reachable"))
    {
        return Err(format!("{n:?} is an unhealthy manager: {nodes:?}"));
    }
    let m = nodes.iter().filter(|n| !n.manager.is_empty()).count();
    let leaders = nodes.iter().filter(|n| n.manager == "Leader").count();
    if m != managers || leaders != 1 {
        return Err(format!(
            "{m} managers and {leaders} leaders, want {managers} and 1: {nodes:?}"
        ));
    }
    Ok(())
}

/// Polls `probe` (every half second) until it answers, failing the test with its last answer
/// at the deadline.
fn wait_until<T>(what: &str, timeout: Duration, mut probe: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        match probe() {
            Ok(v) => return v,
            Err(last) if Instant::now() >= deadline => {
                panic!("{what}: not within {timeout:?}; last seen: {last}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(500)),
        }
    }
}

/// Waits for `docker --context CONTEXT node ls` to show exactly the nodes `ids`, all Ready,
/// `managers` of them managers with one Leader; returns the nodes.
fn wait_for_nodes(
    home: &DockerHome,
    context: &str,
    ids: &BTreeSet<String>,
    managers: usize,
) -> Vec<Node> {
    wait_until(
        &format!("the nodes of {context}: {ids:?}, {managers} manager(s)"),
        NODES_TIMEOUT,
        || {
            let nodes = nodes(home, context)?;
            cluster_shape(&nodes, ids, managers)?;
            Ok(nodes)
        },
    )
}

/// The node ids the records of `names` hold.
fn node_ids(home: &DockerHome, names: &[String]) -> BTreeSet<String> {
    names
        .iter()
        .map(|n| {
            record(home, n)
                .swarm
                .and_then(|s| s.node_id)
                .unwrap_or_else(|| panic!("{n}'s record holds no node id"))
        })
        .collect()
}

/// `docker euca swarm ls --format json`: one object per cluster.
fn swarm_ls(home: &DockerHome, user: &User) -> Vec<Value> {
    ok(&mut euca(home, user, &["swarm", "ls", "--format", "json"]))
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("swarm ls line {l:?}: {e}")))
        .collect()
}

/// The one row of `swarm ls` (there is one cluster in the test's store).
fn swarm_row(home: &DockerHome, user: &User, cluster: &str) -> Value {
    let rows = swarm_ls(home, user);
    assert_eq!(rows.len(), 1, "one cluster: {rows:?}");
    assert_eq!(rows[0]["Name"], cluster, "{rows:?}");
    rows[0].clone()
}

fn strings(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|s| s.as_str().expect("a string").to_string())
        .collect()
}

fn set(names: &[&String]) -> BTreeSet<String> {
    names.iter().map(|n| n.to_string()).collect()
}

/// `swarm ls` shows the cluster with these managers and workers, all `ready` nodes Ready, and
/// its context, without an error.
fn assert_swarm_row(
    home: &DockerHome,
    user: &User,
    cluster: &str,
    managers: &[&String],
    workers: &[&String],
) {
    let row = swarm_row(home, user, cluster);
    assert_eq!(strings(&row["Managers"]), set(managers), "{row}");
    assert_eq!(strings(&row["Workers"]), set(workers), "{row}");
    let n = managers.len() + workers.len();
    assert_eq!(row["Ready"], serde_json::json!([n, n]), "{row}");
    assert_eq!(row["Context"], cluster, "{row}");
    assert_eq!(row["Error"], Value::Null, "{row}");
}

/// `docker euca ls -q` with these filters.
fn ls_names(home: &DockerHome, user: &User, filters: &[&str]) -> BTreeSet<String> {
    let mut args = vec!["ls", "-q"];
    for f in filters {
        args.extend(["--filter", *f]);
    }
    ok(&mut euca(home, user, &args))
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

/// The SWARM cell of every row of `docker euca ls` (the column found by its header).
fn ls_swarm_column(home: &DockerHome, user: &User) -> BTreeMap<String, String> {
    let out = ok(&mut euca(home, user, &["ls"]));
    let mut lines = out.lines();
    let header = lines.next().unwrap_or_default();
    let words: Vec<&str> = header.split_whitespace().collect();
    assert_eq!(
        words,
        [
            "NAME", "ACTIVE", "STATE", "URL", "SWARM", "DOCKER", "ERRORS"
        ],
        "ls's header: {out}"
    );
    let start = header.find("SWARM").unwrap();
    let end = header.find("DOCKER").unwrap();
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let name = l.split_whitespace().next().unwrap_or_default().to_string();
            let cell = l.get(start..end.min(l.len())).unwrap_or_default().trim();
            (name, cell.to_string())
        })
        .collect()
}

/// The security groups of cluster `cluster` in the cloud, (id, name): tagged as its group, or
/// named as one.
fn cluster_groups(user: &User, cluster: &str) -> Vec<(String, String)> {
    let out = block_on(user.ec2().sdk().describe_security_groups().send()).unwrap();
    let tag = format!("swarm:{cluster}");
    let prefix = format!("docker-euca-swarm-{cluster}-");
    out.security_groups()
        .iter()
        .filter(|g| {
            g.group_name().unwrap_or_default().starts_with(&prefix)
                || g.tags()
                    .iter()
                    .any(|t| t.key() == Some(MACHINE_TAG) && t.value() == Some(tag.as_str()))
        })
        .map(|g| {
            (
                g.group_id().unwrap_or_default().to_string(),
                g.group_name().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// The cluster group's rules, through DescribeSecurityGroups: every permission admits the
/// group itself alone (a group pair naming it, no CIDR), and the rules are exactly the
/// cluster's ports.
fn assert_member_only_rules(user: &User, group: &str) {
    let out = block_on(
        user.ec2()
            .sdk()
            .describe_security_groups()
            .group_ids(group)
            .send(),
    )
    .unwrap();
    let g = &out.security_groups()[0];
    let mut rules = BTreeSet::new();
    for p in g.ip_permissions() {
        assert!(p.ip_ranges().is_empty(), "a CIDR in {group}: {p:?}");
        assert!(p.ipv6_ranges().is_empty(), "an IPv6 CIDR in {group}: {p:?}");
        assert!(
            p.prefix_list_ids().is_empty(),
            "a prefix list in {group}: {p:?}"
        );
        let pairs = p.user_id_group_pairs();
        assert!(
            !pairs.is_empty(),
            "a rule of {group} without a group pair: {p:?}"
        );
        for pair in pairs {
            assert_eq!(
                pair.group_id(),
                Some(group),
                "a rule of {group} admits another group: {p:?}"
            );
        }
        rules.insert((
            p.ip_protocol().unwrap_or_default().to_string(),
            p.from_port(),
            p.to_port(),
        ));
    }
    let want: BTreeSet<(String, Option<i32>, Option<i32>)> =
        [("tcp", 2377), ("tcp", 7946), ("udp", 7946), ("udp", 4789)]
            .into_iter()
            .map(|(proto, port)| (proto.to_string(), Some(port), Some(port)))
            .collect();
    assert_eq!(
        rules,
        want,
        "the rules of {group}: {:?}",
        g.ip_permissions()
    );
}

/// Every member's record names the cluster, its role as planned, a node id, and the cluster's
/// group (owned, no intent left); its instance is in that group and its own one. Returns the
/// cluster's group id.
fn assert_members(
    home: &DockerHome,
    user: &User,
    cluster: &str,
    names: &[String],
    roles: &[&str],
) -> String {
    let first = record(home, &names[0]).swarm.expect("a swarm entry");
    let group = first.group_id.clone().expect("the cluster's group id");
    let group_name = first.group_name.clone().expect("the cluster's group name");
    assert!(
        group_name.starts_with(&format!("docker-euca-swarm-{cluster}-")),
        "{group_name}"
    );
    for (name, role) in names.iter().zip(roles) {
        let r = record(home, name);
        assert_eq!(r.state, MachineState::Ready, "{name}: {r:?}");
        let s = r
            .swarm
            .clone()
            .unwrap_or_else(|| panic!("{name} has no swarm entry"));
        assert_eq!(s.cluster, cluster, "{name}: {s:?}");
        assert_eq!(s.role, *role, "{name}: {s:?}");
        assert!(s.node_id.is_some(), "{name}: {s:?}");
        assert_eq!(s.group_id.as_deref(), Some(group.as_str()), "{name}: {s:?}");
        assert_eq!(s.group_name.as_deref(), Some(group_name.as_str()), "{name}");
        assert!(s.group_owned, "{name}: {s:?}");
        assert_eq!(s.group_intent, None, "{name}: {s:?}");
        let own = r.cloud.security_group_id.clone().expect("its own group");
        assert_ne!(
            own, group,
            "{name}: the cluster's group is not the machine's own"
        );
        let id = r.cloud.instance_id.clone().expect("an instance");
        let i = block_on(user.ec2().describe_instance(&id))
            .unwrap()
            .unwrap_or_else(|| panic!("{name}'s instance {id}"));
        assert_eq!(i.state, "running", "{name}: {i:?}");
        assert_eq!(
            i.security_group_ids
                .iter()
                .cloned()
                .collect::<BTreeSet<_>>(),
            BTreeSet::from([own, group.clone()]),
            "{name} was launched in its own group and the cluster's: {i:?}"
        );
    }
    group
}

/// The cluster's group in the cloud: the one of its tag and name, tagged with the cluster and
/// this store, member-only rules.
fn assert_cluster_group(home: &DockerHome, user: &User, cluster: &str, group: &str) {
    let g = block_on(user.ec2().security_group(group))
        .unwrap()
        .expect("the cluster's group");
    let store_id = Store::new(home.path()).id().unwrap();
    for tag in [
        (MACHINE_TAG.to_string(), format!("swarm:{cluster}")),
        (STORE_TAG.to_string(), store_id),
    ] {
        assert!(g.tags.contains(&tag), "{group} lacks {tag:?}: {:?}", g.tags);
    }
    assert_eq!(
        cluster_groups(user, cluster),
        vec![(group.to_string(), g.name.clone())],
        "one group for the cluster"
    );
    assert_member_only_rules(user, group);
}

/// Nothing of the cluster is left: for every machine no live instance, no record, no
/// context; no context of the cluster, no group of the fleet `fleet` or of the cluster, and
/// `swarm ls` lists nothing.
fn assert_cluster_gone(
    home: &DockerHome,
    user: &User,
    names: &[String],
    fleets: &[&str],
    cluster: &str,
    group: &str,
) {
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
    assert!(
        !contexts.iter().any(|c| c == cluster),
        "the cluster's context {cluster} is left: {contexts:?}"
    );
    for fleet in fleets {
        let groups = groups_named_for(user, fleet);
        assert!(groups.is_empty(), "groups of {fleet} left: {groups:?}");
    }
    assert!(
        !group_exists(user, group),
        "the cluster's group {group} is left"
    );
    let groups = cluster_groups(user, cluster);
    assert!(
        groups.is_empty(),
        "groups of swarm {cluster} left: {groups:?}"
    );
    assert!(
        Store::new(home.path()).list().unwrap().is_empty(),
        "records are left"
    );
    assert!(
        swarm_ls(home, user).is_empty(),
        "swarm ls still lists a cluster"
    );
}

/// Should the test fail half-way, the machines it made are removed (best effort), so that a
/// failure does not leave VMs running for the next tests.
struct Leftovers<'a> {
    home: &'a DockerHome,
    user: &'a User,
    names: Vec<String>,
}

impl Drop for Leftovers<'_> {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let left: Vec<&str> = self
            .names
            .iter()
            .filter(|n| record_dir(self.home, n).join("machine.json").exists())
            .map(String::as_str)
            .collect();
        if left.is_empty() {
            return;
        }
        let mut args = vec!["rm", "-y", "-f"];
        args.extend(left);
        let _ = euca(self.home, self.user, &args).output();
    }
}

/// Loads the testbed's busybox image into every machine's daemon.
fn load_image(home: &DockerHome, names: &[String]) {
    let tar = home.path().join("busybox.tar");
    if !tar.exists() {
        testbed(&["image-tar", tar.to_str().unwrap()]);
    }
    for name in names {
        ok(home
            .docker()
            .args(["--context", name, "load", "-i"])
            .arg(&tar));
    }
}

/// The tasks of `service` that should run, as `service ps` shows them: (node, current state).
fn tasks(home: &DockerHome, context: &str, service: &str) -> Result<Vec<(String, String)>, String> {
    let out = run(home.docker().args([
        "--context",
        context,
        "service",
        "ps",
        service,
        "--filter",
        "desired-state=running",
        "--format",
        "{{.Node}}|{{.CurrentState}}",
    ]));
    if !out.status.success() {
        return Err(format!("service ps failed: {}", text(&out)));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (node, state) = l.split_once('|').unwrap_or((l, ""));
            (node.trim().to_string(), state.trim().to_string())
        })
        .collect())
}

/// Waits until `service` runs one task on each of the nodes `hostnames`, and no other.
fn wait_running_everywhere(
    home: &DockerHome,
    context: &str,
    service: &str,
    hostnames: &BTreeSet<String>,
) {
    wait_until(
        &format!("service {service} running on {hostnames:?}"),
        TASKS_TIMEOUT,
        || {
            let tasks = tasks(home, context, service)?;
            let running: Vec<&String> = tasks
                .iter()
                .filter(|(_, state)| state.starts_with("Running"))
                .map(|(node, _)| node)
                .collect();
            let on: BTreeSet<String> = running.iter().map(|n| n.to_string()).collect();
            if tasks.len() == hostnames.len() && running.len() == tasks.len() && &on == hostnames {
                Ok(())
            } else {
                Err(format!("{tasks:?}"))
            }
        },
    )
}

/// The container of `service`'s task on machine `machine` (through the machine's own context).
fn task_container(home: &DockerHome, machine: &str, service: &str) -> String {
    wait_until(
        &format!("the task container of {service} on {machine}"),
        TASKS_TIMEOUT,
        || {
            let out = run(home.docker().args([
                "--context",
                machine,
                "ps",
                "-q",
                "--filter",
                &format!("label=com.docker.swarm.service.name={service}"),
            ]));
            let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(|l| l.trim().to_string())
                .filter(|l| !l.is_empty())
                .collect();
            match ids.as_slice() {
                [one] if out.status.success() => Ok(one.clone()),
                _ => Err(text(&out)),
            }
        },
    )
}

/// The address of container `id` on machine `machine` in the overlay network `network`.
fn overlay_address(home: &DockerHome, machine: &str, id: &str, network: &str) -> IpAddr {
    let out = ok(home.docker().args(["--context", machine, "inspect", id]));
    let v: Value = serde_json::from_str(&out).unwrap();
    let ip = v[0]["NetworkSettings"]["Networks"][network]["IPAddress"]
        .as_str()
        .unwrap_or_else(|| panic!("{id} on {machine} has no address in {network}: {out}"));
    ip.parse()
        .unwrap_or_else(|e| panic!("{id} on {machine}: {ip:?} in {network}: {e}"))
}

/// Every IPv4 address a command's output names on its own (`Address: 10.0.1.3`).
fn addresses_in(out: &Output) -> BTreeSet<IpAddr> {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
    .split_whitespace()
    .filter_map(|w| w.parse::<IpAddr>().ok())
    .collect()
}

/// The swarm state a machine's own daemon reports (`inactive`, `active`, …).
fn local_swarm_state(home: &DockerHome, machine: &str) -> String {
    ok(home.docker().args([
        "--context",
        machine,
        "info",
        "--format",
        "{{.Swarm.LocalNodeState}}",
    ]))
    .trim()
    .to_string()
}

/// The raft address a manager node advertises.
fn manager_addr(home: &DockerHome, context: &str, node: &str) -> String {
    ok(home.docker().args([
        "--context",
        context,
        "node",
        "inspect",
        node,
        "--format",
        "{{.ManagerStatus.Addr}}",
    ]))
    .trim()
    .to_string()
}

fn private_ip(home: &DockerHome, name: &str) -> String {
    record(home, name)
        .cloud
        .private_ip
        .unwrap_or_else(|| panic!("{name} has no private address"))
}

#[test]
fn one_command_makes_a_three_node_cluster_that_runs_a_service_on_every_node() {
    let home = DockerHome::new();
    let user = User::new();
    let base = unique("sw3");
    let cluster = unique("swc");
    let names = count_names(&base, 3);
    let _leftovers = Leftovers {
        home: &home,
        user: &user,
        names: names.clone(),
    };
    let out = create(&home, &user, &[&base, "--count", "3", "--swarm", &cluster]);
    assert!(out.status.success(), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for stage in [
        format!("starting swarm {cluster} on {}", names[0]),
        format!("waiting for the nodes of swarm {cluster} to be Ready"),
    ] {
        assert!(stderr.contains(&stage), "no `{stage}` line: {}", text(&out));
    }
    // One launch; two groups: the fleet's own and the cluster's.
    let stats = user.stats();
    assert_eq!(stats.get("RunInstances"), Some(&1), "{stats:?}");
    assert_eq!(stats.get("CreateSecurityGroup"), Some(&2), "{stats:?}");

    // The table: the first machine is the manager, the others workers; then the swarm line.
    let roles = ["manager", "worker", "worker"];
    for (name, role) in names.iter().zip(roles) {
        let (address, result) = table_row(&out, name);
        assert_eq!(
            Some(address),
            record(&home, name).cloud.public_ip,
            "{name}'s row: {}",
            text(&out)
        );
        assert!(
            result.starts_with("ready: Docker ") && result.ends_with(&format!(", swarm {role}")),
            "{name}'s row: {result:?}\n{}",
            text(&out)
        );
    }
    assert_swarm_line(&out, &cluster);

    // The records, the instances, the cluster's group and its rules.
    let group = assert_members(&home, &user, &cluster, &names, &roles);
    assert_cluster_group(&home, &user, &cluster, &group);

    // The context CLUSTER: the first manager (the only one) through its own endpoint.
    assert_eq!(context_member(&home, &cluster, &names), names[0]);
    assert_eq!(
        context_host(&home, &cluster),
        record(&home, &names[0]).engine.url.unwrap()
    );

    // The cluster as the real docker CLI sees it through that context: three Ready nodes, one
    // manager (the Leader), whose ids are the records'.
    let ids = node_ids(&home, &names);
    let nodes = wait_for_nodes(&home, &cluster, &ids, 1);
    let lines: Vec<String> = ok(home.docker().args([
        "--context",
        &cluster,
        "node",
        "ls",
        "--format",
        "{{.Status}} {{.ManagerStatus}}",
    ]))
    .lines()
    .map(|l| l.trim().to_string())
    .collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("Ready")).count(),
        3,
        "{lines:?}"
    );
    assert_eq!(
        lines.iter().filter(|l| *l == "Ready Leader").count(),
        1,
        "{lines:?}"
    );
    let manager_id = record(&home, &names[0]).swarm.unwrap().node_id.unwrap();
    let leader = nodes.iter().find(|n| n.manager == "Leader").unwrap();
    assert_eq!(leader.id, manager_id, "the first machine leads: {nodes:?}");
    for name in &names[1..] {
        let id = record(&home, name).swarm.unwrap().node_id.unwrap();
        let node = nodes.iter().find(|n| n.id == id).unwrap();
        assert_eq!(node.manager, "", "{name} is a worker: {nodes:?}");
    }
    // The first manager advertises its private address.
    assert_eq!(
        manager_addr(&home, &cluster, &manager_id),
        format!("{}:2377", private_ip(&home, &names[0]))
    );

    // swarm ls: one cluster, one manager, two workers, all three Ready.
    assert_swarm_row(
        &home,
        &user,
        &cluster,
        &[&names[0]],
        &[&names[1], &names[2]],
    );
    // ls: the SWARM column, and the filter.
    let column = ls_swarm_column(&home, &user);
    for (name, role) in names.iter().zip(roles) {
        assert_eq!(
            column.get(name).map(String::as_str),
            Some(format!("{cluster} ({role})").as_str()),
            "{name} in ls: {column:?}"
        );
    }
    assert_eq!(
        ls_names(&home, &user, &[&format!("swarm={cluster}")]),
        names.iter().cloned().collect::<BTreeSet<_>>()
    );

    // A global service runs a task on every node.
    load_image(&home, &names);
    let hostnames: BTreeSet<String> = nodes.iter().map(|n| n.hostname.clone()).collect();
    assert_eq!(hostnames.len(), 3, "three distinct hostnames: {nodes:?}");
    ok(home.docker().args([
        "--context",
        &cluster,
        "service",
        "create",
        "--detach",
        "--no-resolve-image",
        "--mode",
        "global",
        "--name",
        "t",
        IMAGE,
        "sleep",
        "3600",
    ]));
    wait_running_everywhere(&home, &cluster, "t", &hostnames);

    // An overlay network between the nodes: a task on the first machine reaches the tasks on
    // the other two by their overlay addresses and finds them under tasks.p.
    ok(home.docker().args([
        "--context",
        &cluster,
        "network",
        "create",
        "-d",
        "overlay",
        "--attachable",
        "ov",
    ]));
    ok(home.docker().args([
        "--context",
        &cluster,
        "service",
        "create",
        "--detach",
        "--no-resolve-image",
        "--mode",
        "global",
        "--name",
        "p",
        "--network",
        "ov",
        "--endpoint-mode",
        "dnsrr",
        IMAGE,
        "sleep",
        "3600",
    ]));
    wait_running_everywhere(&home, &cluster, "p", &hostnames);
    let from = task_container(&home, &names[0], "p");
    let here = overlay_address(&home, &names[0], &from, "ov");
    let there: Vec<IpAddr> = names[1..]
        .iter()
        .map(|n| {
            let c = task_container(&home, n, "p");
            overlay_address(&home, n, &c, "ov")
        })
        .collect();
    assert!(
        !there.contains(&here) && there[0] != there[1],
        "each task has its own overlay address: {here} {there:?}"
    );
    for ip in &there {
        wait_until(
            &format!("{}'s task pings {ip} over the overlay", names[0]),
            OVERLAY_TIMEOUT,
            || {
                let out = run(home.docker().args([
                    "--context",
                    &names[0],
                    "exec",
                    &from,
                    "ping",
                    "-c1",
                    "-W2",
                    &ip.to_string(),
                ]));
                if out.status.success() {
                    Ok(())
                } else {
                    Err(text(&out))
                }
            },
        );
    }
    wait_until(
        &format!("tasks.p resolves to {there:?} from {}", names[0]),
        OVERLAY_TIMEOUT,
        || {
            let out = run(home.docker().args([
                "--context",
                &names[0],
                "exec",
                &from,
                "nslookup",
                "tasks.p",
            ]));
            let found = addresses_in(&out);
            if there.iter().chain([&here]).all(|ip| found.contains(ip)) {
                Ok(())
            } else {
                Err(text(&out))
            }
        },
    );

    // The last (only) manager goes alone: the cluster ends. The workers left it (their daemons
    // say so, their records say "left"), the cluster's context is gone, the group stays for
    // the two records that still name it.
    rm(&home, &user, &[&names[0]]);
    assert!(
        !context_names(&home).contains(&cluster),
        "the context {cluster} is left"
    );
    for name in &names[1..] {
        let s = record(&home, name).swarm.expect("still a swarm entry");
        assert_eq!(s.role, "left", "{name}: {s:?}");
        assert_eq!(s.node_id, None, "{name}: {s:?}");
        assert_eq!(s.group_id.as_deref(), Some(group.as_str()), "{name}: {s:?}");
        assert_eq!(local_swarm_state(&home, name), "inactive", "{name}");
    }
    assert!(
        group_exists(&user, &group),
        "the group went with the first of three"
    );

    // The last two go: so does the group.
    rm(&home, &user, &[&names[1], &names[2]]);
    assert_cluster_gone(&home, &user, &names, &[&base], &cluster, &group);
    // A cluster's life too (its group's own rules) is in the least-privilege policy.
    crate::iam_policy::assert_allows(&user.stats());
}

#[test]
fn a_fourth_host_joins_and_a_removed_worker_leaves_the_node_list() {
    let home = DockerHome::new();
    let user = User::new();
    let base = unique("swj");
    let cluster = unique("swk");
    let names = count_names(&base, 2);
    let joiner = unique("swx");
    let mut all = names.clone();
    all.push(joiner.clone());
    let _leftovers = Leftovers {
        home: &home,
        user: &user,
        names: all.clone(),
    };
    let out = create(&home, &user, &[&base, "--count", "2", "--swarm", &cluster]);
    assert!(out.status.success(), "{}", text(&out));
    for (name, role) in names.iter().zip(["manager", "worker"]) {
        let (_, result) = table_row(&out, name);
        assert!(
            result.ends_with(&format!(", swarm {role}")),
            "{name}'s row: {result:?}"
        );
    }
    assert_swarm_line(&out, &cluster);
    let group = assert_members(&home, &user, &cluster, &names, &["manager", "worker"]);
    wait_for_nodes(&home, &cluster, &node_ids(&home, &names), 1);
    let context_url = context_host(&home, &cluster);

    // A third host joins the cluster, as a worker, in the cluster's group (not a new one).
    let before = user.stats();
    let out = create(&home, &user, &[&joiner, "--swarm", &cluster]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout
            .lines()
            .next()
            .is_some_and(|l| l.starts_with(&format!("{joiner} is ready: Docker "))),
        "{}",
        text(&out)
    );
    assert_swarm_line(&out, &cluster);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!(
            "joining swarm {cluster}: its security group {group}"
        )),
        "{}",
        text(&out)
    );
    let after = user.stats();
    let delta = |a: &str| after.get(a).copied().unwrap_or(0) - before.get(a).copied().unwrap_or(0);
    assert_eq!(delta("RunInstances"), 1, "{after:?}");
    assert_eq!(
        delta("CreateSecurityGroup"),
        1,
        "only the joiner's own group is made: {after:?}"
    );
    assert_eq!(
        assert_members(
            &home,
            &user,
            &cluster,
            &all,
            &["manager", "worker", "worker"]
        ),
        group
    );
    let nodes = wait_for_nodes(&home, &cluster, &node_ids(&home, &all), 1);
    let joiner_id = record(&home, &joiner).swarm.unwrap().node_id.unwrap();
    assert_eq!(
        nodes
            .iter()
            .find(|n| n.id == joiner_id)
            .map(|n| n.manager.as_str()),
        Some(""),
        "{joiner} is a worker: {nodes:?}"
    );
    assert_swarm_row(&home, &user, &cluster, &[&names[0]], &[&names[1], &joiner]);
    assert_eq!(
        ls_names(&home, &user, &[&format!("swarm={cluster}")]),
        all.iter().cloned().collect::<BTreeSet<_>>()
    );
    assert_eq!(
        context_host(&home, &cluster),
        context_url,
        "a join leaves the context"
    );

    // The joined worker goes: it leaves, its node is removed from the list, the others stay.
    let out = rm(&home, &user, &[&joiner]);
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("could not leave"),
        "{}",
        text(&out)
    );
    let nodes = wait_for_nodes(&home, &cluster, &node_ids(&home, &names), 1);
    assert!(
        !nodes.iter().any(|n| n.id == joiner_id),
        "{joiner}'s node is still listed: {nodes:?}"
    );
    assert_nothing_left(&user, &joiner);
    assert!(!record_dir(&home, &joiner).exists());
    assert!(!context_names(&home).contains(&joiner));
    assert!(
        group_exists(&user, &group),
        "the group went with one of three"
    );
    assert_eq!(context_host(&home, &cluster), context_url);
    assert_eq!(
        ls_names(&home, &user, &[&format!("swarm={cluster}")]),
        names.iter().cloned().collect::<BTreeSet<_>>()
    );
    assert_swarm_row(&home, &user, &cluster, &[&names[0]], &[&names[1]]);

    // The manager the context points at stops and starts at a new public address (EDGE): the
    // cluster's context follows it, and the cluster answers through it again.
    let manager = &names[0];
    let old_url = record(&home, manager).engine.url.unwrap();
    assert_eq!(context_host(&home, &cluster), old_url);
    let out = run(&mut euca(&home, &user, &["stop", manager]));
    assert!(out.status.success(), "{}", text(&out));
    let out = run(&mut euca(&home, &user, &["start", manager]));
    assert!(out.status.success(), "{}", text(&out));
    let new_url = record(&home, manager).engine.url.unwrap();
    assert_ne!(new_url, old_url, "EDGE gives a new public address on start");
    assert_eq!(
        context_host(&home, &cluster),
        new_url,
        "the cluster's context follows its manager"
    );
    wait_for_nodes(&home, &cluster, &node_ids(&home, &names), 1);

    // Asked on a terminal, rm says that removing the last manager ends the cluster; "n" keeps
    // everything.
    let filter = format!("swarm={cluster}");
    let out = euca_on_a_terminal(&home, &user, &["rm", "--filter", &filter], "n\n");
    let said = String::from_utf8_lossy(&out.stdout);
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        said.contains(&format!(
            "{} is the last manager of swarm {cluster}: removing it ends the cluster",
            names[0]
        )),
        "{}",
        text(&out)
    );
    assert!(said.contains("nothing removed"), "{}", text(&out));
    for name in &names {
        assert!(load(&home, name).is_some(), "{name} was removed after a no");
    }
    wait_for_nodes(&home, &cluster, &node_ids(&home, &names), 1);

    // The rest go by the filter (-y: no question): the group and the context go with them.
    let out = rm(&home, &user, &["--filter", &filter]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    for name in &names {
        assert!(
            stdout.lines().any(|l| l == format!("{name} removed")),
            "{}",
            text(&out)
        );
    }
    assert_cluster_gone(&home, &user, &all, &[&base, &joiner], &cluster, &group);
}

#[test]
fn removing_the_manager_a_three_manager_cluster_points_at_keeps_it_working() {
    let home = DockerHome::new();
    let user = User::new();
    let base = unique("swm");
    let cluster = unique("swq");
    let names = count_names(&base, 3);
    let _leftovers = Leftovers {
        home: &home,
        user: &user,
        names: names.clone(),
    };
    let out = create(
        &home,
        &user,
        &[
            &base,
            "--count",
            "3",
            "--swarm",
            &cluster,
            "--swarm-managers",
            "3",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    for name in &names {
        let (_, result) = table_row(&out, name);
        assert!(
            result.ends_with(", swarm manager"),
            "{name}'s row: {result:?}"
        );
    }
    assert_swarm_line(&out, &cluster);
    let stats = user.stats();
    assert_eq!(stats.get("RunInstances"), Some(&1), "{stats:?}");
    let group = assert_members(&home, &user, &cluster, &names, &["manager"; 3]);
    assert_cluster_group(&home, &user, &cluster, &group);
    let nodes = wait_for_nodes(&home, &cluster, &node_ids(&home, &names), 3);
    // Each manager advertises its private address to the others.
    for name in &names {
        let id = record(&home, name).swarm.unwrap().node_id.unwrap();
        assert!(nodes.iter().any(|n| n.id == id), "{name}: {nodes:?}");
        assert_eq!(
            manager_addr(&home, &cluster, &id),
            format!("{}:2377", private_ip(&home, name)),
            "{name}"
        );
    }
    assert_swarm_row(
        &home,
        &user,
        &cluster,
        &names.iter().collect::<Vec<_>>(),
        &[],
    );

    // The manager the context points at goes: the cluster keeps working through the context,
    // which now points at another member; two managers, one Leader.
    let pointed = context_member(&home, &cluster, &names);
    let pointed_id = record(&home, &pointed).swarm.unwrap().node_id.unwrap();
    rm(&home, &user, &[&pointed]);
    let rest: Vec<String> = names.iter().filter(|n| **n != pointed).cloned().collect();
    let nodes = wait_for_nodes(&home, &cluster, &node_ids(&home, &rest), 2);
    assert!(!nodes.iter().any(|n| n.id == pointed_id), "{nodes:?}");
    let now = context_member(&home, &cluster, &rest);
    assert_ne!(now, pointed);
    assert_nothing_left(&user, &pointed);
    assert!(!record_dir(&home, &pointed).exists());
    assert!(group_exists(&user, &group));
    assert_swarm_row(
        &home,
        &user,
        &cluster,
        &rest.iter().collect::<Vec<_>>(),
        &[],
    );

    // The second-to-last goes (the one the context points at now): the cluster stays, with
    // one manager, the context moved to it.
    let last = rest.iter().find(|n| **n != now).unwrap().clone();
    rm(&home, &user, &[&now]);
    let last_only = vec![last.clone()];
    wait_for_nodes(&home, &cluster, &node_ids(&home, &last_only), 1);
    assert_eq!(context_member(&home, &cluster, &last_only), last);
    assert_eq!(local_swarm_state(&home, &last), "active");
    assert!(group_exists(&user, &group));
    assert_swarm_row(&home, &user, &cluster, &[&last], &[]);

    // The last goes: the cluster ends, its context and group with it.
    rm(&home, &user, &[&last]);
    assert_cluster_gone(&home, &user, &names, &[&base], &cluster, &group);
}

#[derive(Debug)]
struct BadSwarm {
    /// After `create` (the testbed's `--image` is added).
    args: Vec<String>,
    /// clap refuses (exit 2, `error: …`, before any call); else docker euca does (`docker
    /// euca: …` and a `hint: …`, before any call that makes something).
    usage: bool,
    /// In the first line (docker euca's) or anywhere in stderr (clap's).
    needle: String,
    /// A docker context of this name, made by the real docker CLI beforehand.
    context: Option<String>,
}

fn bad(args: &[&str], usage: bool, needle: &str, context: Option<&str>) -> BadSwarm {
    BadSwarm {
        args: args.iter().map(|s| s.to_string()).collect(),
        usage,
        needle: needle.to_string(),
        context: context.map(str::to_string),
    }
}

#[test]
fn bad_swarm_input_makes_nothing() {
    let image = image();
    let name = unique("swbad");
    let cluster = unique("swbc");
    let cases = vec![
        bad(
            &[&name, "--swarm", &cluster, "--swarm-managers", "2"],
            false,
            "--swarm-managers 2 asks for more managers than the 1 machine(s) made",
            None,
        ),
        bad(
            &[
                &name,
                "--count",
                "2",
                "--swarm",
                &cluster,
                "--swarm-managers",
                "3",
            ],
            false,
            "--swarm-managers 3 asks for more managers than the 2 machine(s) made",
            None,
        ),
        bad(
            &[&name, "--swarm-managers", "2"],
            true,
            "--swarm <CLUSTER>",
            None,
        ),
        bad(
            &[&name, "--count", "2", "--swarm-role", "manager"],
            true,
            "--swarm <CLUSTER>",
            None,
        ),
        bad(
            &[&name, "--swarm", &cluster, "--swarm-managers", "0"],
            true,
            "--swarm-managers",
            None,
        ),
        bad(
            &[&name, "--swarm", &cluster, "--swarm-role", "boss"],
            true,
            "--swarm-role",
            None,
        ),
        bad(&[&name, "--swarm", "no/slash"], true, "--swarm", None),
        bad(
            &[&name, "--count", "2", "--swarm", &cluster],
            false,
            &format!("a docker context named {cluster:?} already exists"),
            Some(cluster.as_str()),
        ),
        bad(
            &[&name, "--swarm", &cluster],
            false,
            &format!("a docker context named {cluster:?} already exists"),
            Some(cluster.as_str()),
        ),
    ];
    check_bad_cases(
        &cases,
        |c| c.args.join(" "),
        |c| format!("context {:?}", c.context),
        |c| bad_swarm_case(c, &image),
    );
}

/// One bad-input case, as a fresh user in a fresh `DOCKER_CONFIG`; what went wrong, if anything.
fn bad_swarm_case(case: &BadSwarm, image: &str) -> Vec<String> {
    let user = User::new();
    let home = DockerHome::new();
    if let Some(context) = &case.context {
        ok(home.docker().args([
            "context",
            "create",
            context,
            "--docker",
            "host=tcp://127.0.0.1:1",
        ]));
    }
    let before = snapshot(home.path(), true);
    let contexts_before = context_names(&home);
    let host_before = case.context.as_ref().map(|c| context_host(&home, c));
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
        if !stderr.contains(&case.needle) {
            problems.push(format!("stderr does not say {:?}", case.needle));
        }
    } else {
        if out.status.code() != Some(1) {
            problems.push(format!("a refusal exits 1, not {}", out.status));
        }
        if !first.starts_with("docker euca: ") {
            problems.push(format!(
                "the first line must start with `docker euca: `: {first:?}"
            ));
        }
        if !first.contains(&case.needle) {
            problems.push(format!(
                "the first line does not say {:?}: {first:?}",
                case.needle
            ));
        }
        if !second.starts_with("hint: ") {
            problems.push(format!("the second line must be a `hint: `: {second:?}"));
        }
    }
    // Nothing written: no record, no context, no file changed.
    let after = snapshot(home.path(), true);
    problems.extend(files_changed(&before, &after));
    if !Store::new(home.path()).list().unwrap().is_empty() {
        problems.push("a record was made".into());
    }
    let contexts_after = context_names(&home);
    if contexts_after != contexts_before {
        problems.push(format!(
            "contexts changed: {contexts_before:?} -> {contexts_after:?}"
        ));
    }
    let host_after = case.context.as_ref().map(|c| context_host(&home, c));
    if host_after != host_before {
        problems.push(format!(
            "the existing context changed: {host_before:?} -> {host_after:?}"
        ));
    }
    // Nothing in the cloud: clap refuses before the first call; docker euca (which looks the
    // image up first) before any call that makes something.
    let stats = user.stats();
    if case.usage {
        if !stats.is_empty() {
            problems.push(format!("a usage error reached the cloud: {stats:?}"));
        }
    } else {
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
    }
    if !problems.is_empty() {
        problems.push(text(&out));
    }
    problems
}
