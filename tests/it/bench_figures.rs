//! The figures of `docs/performance.md` that need machines or the library: measurements, not
//! assertions (each fails only when it cannot measure). `scripts/bench` runs them with
//! `DOCKER_EUCA_BIN=target/release/docker-euca cargo test --test it -- --ignored --nocapture
//! --test-threads 1 bench_figures::` while the testbed is up, and collects the `FIGURE …` lines
//! they (and `scripts/bench-tool`, which does the timing and counting) print.
//!
//! - `ls_over_pending_machines`: 1, 10, 50, 100 machines (`BENCH_LS_SIZES`) whose instances
//!   exist but never boot: `ls` of docker-euca (through docker, and run directly) and of
//!   docker-machine over the same instances (a store rendered from the amazonec2 fixture),
//!   wall time (hyperfine), EC2 calls, processes, peak RSS; the floor (the same
//!   DescribeInstances sent directly).
//! - `create_then_ls_over_answering_machines`: one create with `-D` (EC2 calls up to "SSH port
//!   open" and in total, its stages, "SSH port open" to "verified", peak RSS), then 19 more
//!   (`BENCH_LIVE_MACHINES`), then `ls` of both tools over the 20 answering daemons, against
//!   one API call (the floor) plus one probe (curl, mutual TLS `/version`).
//! - `certificates`: CA + server + client certificate, in process.
//!
//! The plugin measured is `DOCKER_EUCA_BIN` (else this build's); docker-machine is
//! `DOCKER_MACHINE` (else `/work/shared/anchors/docker-machine`; without one its columns are
//! left out).

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::mpsc,
    time::Instant,
};

use docker_euca::{
    context::ContextStore,
    names::MachineName,
    store::{MachineState, Store},
    tls::{CertificateAuthority, DEFAULT_VALIDITY_DAYS, San},
};

use crate::support::{
    DockerHome, PLUGIN, bench, run,
    testbed::{User, env, record},
    text,
};

fn plugin() -> String {
    std::env::var("DOCKER_EUCA_BIN").unwrap_or_else(|_| PLUGIN.to_string())
}

fn docker_machine() -> Option<String> {
    let dm = std::env::var("DOCKER_MACHINE")
        .unwrap_or_else(|_| "/work/shared/anchors/docker-machine".to_string());
    Path::new(&dm).is_file().then_some(dm)
}

fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `scripts/bench-tool ARGS…` as `user`; its FIGURE lines are printed (and returned), its
/// stderr (hyperfine's progress, notes) passes through.
fn bench_tool(user: &User, args: &[&str]) -> String {
    let tool = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/bench-tool");
    let mut cmd = Command::new("python3");
    cmd.arg(tool).args(args).stderr(Stdio::inherit());
    user.apply(&mut cmd);
    for key in [
        "EUCA_TESTBED_IMAGE",
        "EUCA_TESTBED_ZONE",
        "EUCA_TESTBED_SUBNET",
    ] {
        cmd.env(key, &env()[key]);
    }
    cmd.env("EUCA_REGION", "eucalyptus");
    if let Some(dm) = docker_machine() {
        cmd.env("DOCKER_MACHINE", dm);
    }
    let out = run(&mut cmd);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    print!("{stdout}");
    assert!(
        out.status.success(),
        "bench-tool {args:?} failed: {}",
        text(&out)
    );
    stdout
}

/// A FIGURE line's value (`key=value`, unquoted values only).
fn figure_value<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
}

/// Writes the machines file `bench-tool dm-store` reads and the ids file the others read.
fn write_machines(dir: &Path, machines: &[serde_json::Value]) -> (PathBuf, PathBuf) {
    let json = dir.join("bench-machines.json");
    let ids = dir.join("bench-ids");
    std::fs::write(&json, serde_json::to_vec_pretty(machines).unwrap()).unwrap();
    let lines: Vec<&str> = machines
        .iter()
        .map(|m| m["instance_id"].as_str().unwrap())
        .collect();
    std::fs::write(&ids, lines.join("\n") + "\n").unwrap();
    (json, ids)
}

/// Figure 2: `ls` over N machines whose instances never boot (the EC2 side of `ls`).
#[test]
#[ignore = "a measurement, run by scripts/bench"]
fn ls_over_pending_machines() {
    let sizes: String = env_or("BENCH_LS_SIZES", "1,10,50,100".to_string());
    let runs: u32 = env_or("BENCH_RUNS", 10);
    for n in sizes
        .split(',')
        .filter_map(|s| s.trim().parse::<i32>().ok())
    {
        let home = DockerHome::new();
        let user = User::new();
        user.config(&["--boot-delay", "3600"]);
        let ids = bench::pending_machines(&home, &user, "m", n);
        // Listed as made (state from the cloud, as docker-machine shows its machines), not as
        // creates in progress.
        let store = Store::new(home.path());
        for i in 0..ids.len() {
            let name = MachineName::new(format!("m{i:03}")).unwrap();
            store
                .update(&name, |r| r.state = MachineState::Ready)
                .unwrap();
        }
        let machines: Vec<serde_json::Value> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| serde_json::json!({"name": format!("m{i:03}"), "instance_id": id}))
            .collect();
        let work = tempfile::Builder::new()
            .prefix("bench-ls-")
            .tempdir()
            .unwrap();
        measure_ls(&user, &home, work.path(), "pending", &machines, runs);
        bench::terminate(&user, &ids);
    }
}

/// One line the create printed, with when it arrived.
struct Line {
    at: Instant,
    stdout: bool,
    text: String,
}

/// A progress line `WHAT (1.2s)`: the stage and its seconds.
fn stage_line(line: &str) -> Option<(&str, f64)> {
    let rest = line.strip_suffix("s)")?;
    let (what, secs) = rest.rsplit_once(" (")?;
    let first = what.split_whitespace().next().unwrap_or("");
    if ["DEBUG", "INFO", "WARN", "TRACE", "ERROR"].contains(&first) {
        return None;
    }
    Some((what, secs.parse().ok()?))
}

/// The number after `key` in the create's `-D` summary line (`… from SSH to verified: 1.3s …`).
fn debug_seconds(lines: &[Line], key: &str) -> Option<f64> {
    lines.iter().find_map(|l| {
        let rest = &l.text[l.text.find(key)? + key.len()..];
        let end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        rest[..end].parse().ok()
    })
}

fn quoted(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "'"))
}

/// Figure 4 (docker-euca's side): one create, run directly under GNU time, every line it
/// prints timestamped on arrival; the testbed's call count is read the moment the stage
/// "waiting for SSH on …" ends (SSH port open), and again at the end.
fn measured_create(home: &DockerHome, user: &User, name: &str) {
    let rss_file = home.path().join("bench-create-rss");
    let mut cmd = Command::new("/usr/bin/time");
    cmd.args(["-f", "%M", "-o"])
        .arg(&rss_file)
        .arg(plugin())
        .args([
            "-D",
            "create",
            name,
            "--image",
            env()["EUCA_TESTBED_IMAGE"].as_str(),
        ])
        .env("DOCKER_CONFIG", home.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    user.apply(&mut cmd);
    crate::support::testbed::testbed(&["stats", "--reset", "--access-key", &user.access_key]);
    let started = Instant::now();
    let mut child = cmd.spawn().expect("start the create");
    let (tx, rx) = mpsc::channel::<Line>();
    let streams: [(bool, Box<dyn std::io::Read + Send>); 2] = [
        (true, Box::new(child.stdout.take().unwrap())),
        (false, Box::new(child.stderr.take().unwrap())),
    ];
    let readers = streams.map(|(stdout, stream)| {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for text in BufReader::new(stream).lines().map_while(Result::ok) {
                let _ = tx.send(Line {
                    at: Instant::now(),
                    stdout,
                    text,
                });
            }
        })
    });
    drop(tx);
    let mut lines = Vec::new();
    let mut calls_to_ssh: Option<u64> = None;
    let mut ssh_open: Option<Instant> = None;
    for line in rx {
        if ssh_open.is_none()
            && stage_line(&line.text)
                .is_some_and(|(what, _)| what.starts_with("waiting for SSH on"))
        {
            ssh_open = Some(line.at);
            calls_to_ssh = Some(user.stats().values().sum());
        }
        lines.push(line);
    }
    for r in readers {
        r.join().unwrap();
    }
    let status = child.wait().unwrap();
    let ended = Instant::now();
    let by_action = user.stats();
    let calls_total: u64 = by_action.values().sum();
    if !status.success() {
        for l in &lines {
            eprintln!("create {name}: {}", l.text);
        }
        panic!("create {name} failed: {status}");
    }
    let verified = lines
        .iter()
        .rev()
        .find(|l| stage_line(&l.text).is_some_and(|(what, _)| what.starts_with("verifying ")))
        .or_else(|| {
            lines
                .iter()
                .find(|l| l.stdout && l.text.contains(" is ready"))
        })
        .map(|l| l.at)
        .unwrap_or(ended);
    for (i, (what, secs)) in lines
        .iter()
        .filter(|l| !l.stdout)
        .filter_map(|l| stage_line(&l.text))
        .enumerate()
    {
        println!(
            "FIGURE create-stage tool=docker-euca idx={i} seconds={secs:.1} stage={}",
            quoted(what)
        );
    }
    let rss_kb = std::fs::read_to_string(&rss_file)
        .ok()
        .and_then(|t| {
            t.split_whitespace()
                .filter_map(|w| w.parse::<u64>().ok())
                .next_back()
        })
        .unwrap_or(0);
    let mut actions: Vec<String> = by_action.iter().map(|(k, v)| format!("{k}:{v}")).collect();
    actions.sort();
    let ssh_to_verified_ms = ssh_open
        .map(|t| (verified - t).as_secs_f64() * 1000.0)
        .unwrap_or(f64::NAN);
    println!(
        "FIGURE create tool=docker-euca calls_to_ssh={} calls_total={calls_total} \
         ssh_to_verified_ms={ssh_to_verified_ms:.0} ssh_to_verified_debug_s={} \
         ssh_connections={} wall_s={:.2} to_ssh_s={:.2} rss_kb={rss_kb} actions={}",
        calls_to_ssh.map(|c| c.to_string()).unwrap_or_default(),
        debug_seconds(&lines, "from SSH to verified: ")
            .map(|s| format!("{s:.1}"))
            .unwrap_or_default(),
        debug_seconds(&lines, "ssh connections opened: ")
            .map(|s| format!("{s:.0}"))
            .unwrap_or_default(),
        (ended - started).as_secs_f64(),
        ssh_open
            .map(|t| (t - started).as_secs_f64())
            .unwrap_or(f64::NAN),
        actions.join(","),
    );
}

/// Creates `names` with the plugin run directly, `batch` at a time; returns those that worked.
fn create_many(home: &DockerHome, user: &User, names: &[String], batch: usize) -> Vec<String> {
    let mut ready = Vec::new();
    for chunk in names.chunks(batch.max(1)) {
        let children: Vec<_> = chunk
            .iter()
            .map(|name| {
                let mut cmd = Command::new(plugin());
                cmd.args([
                    "create",
                    name.as_str(),
                    "-q",
                    "--image",
                    env()["EUCA_TESTBED_IMAGE"].as_str(),
                ])
                .env("DOCKER_CONFIG", home.path())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
                user.apply(&mut cmd);
                (name.clone(), cmd.spawn().expect("start a create"))
            })
            .collect();
        for (name, child) in children {
            let out = child.wait_with_output().unwrap();
            if out.status.success() {
                ready.push(name);
            } else {
                eprintln!("bench: create {name} failed (left out): {}", text(&out));
            }
        }
    }
    ready
}

/// Figures 3 and 4: a create measured, then `ls` over machines whose daemons answer.
#[test]
#[ignore = "a measurement, run by scripts/bench"]
fn create_then_ls_over_answering_machines() {
    let count: usize = env_or("BENCH_LIVE_MACHINES", 20);
    let batch: usize = env_or("BENCH_CREATE_BATCH", 10);
    let runs: u32 = env_or("BENCH_RUNS", 10);
    let home = DockerHome::new();
    let user = User::new();
    let first = "b00".to_string();
    measured_create(&home, &user, &first);
    let rest: Vec<String> = (1..count).map(|i| format!("b{i:02}")).collect();
    let mut names = vec![first];
    names.extend(create_many(&home, &user, &rest, batch));

    let contexts = ContextStore::new(home.path());
    let machines: Vec<serde_json::Value> = names
        .iter()
        .map(|name| {
            let r = record(&home, name);
            serde_json::json!({
                "name": name,
                "instance_id": r.cloud.instance_id,
                "public_ip": r.cloud.public_ip,
                "private_ip": r.cloud.private_ip,
                "tls_dir": contexts.tls_dir(&r.context_name()),
                "url": r.engine.url,
            })
        })
        .collect();
    let out = measure_ls(&user, &home, home.path(), "live", &machines, runs);
    let answering: Vec<&str> = out
        .lines()
        .filter_map(|l| figure_value(l, "answering"))
        .collect();
    eprintln!(
        "bench: daemons answering per tool: {answering:?} of {}",
        names.len()
    );
    let r = record(&home, &names[0]);
    let tls = contexts.tls_dir(&r.context_name());
    bench_tool(
        &user,
        &[
            "probe",
            "--label",
            "live",
            "--url",
            r.engine.url.as_deref().unwrap(),
            "--tls-dir",
            tls.to_str().unwrap(),
        ],
    );

    // Remove them all (one rm; machines handled concurrently), else terminate what is left.
    let mut rm = Command::new(plugin());
    rm.args(["rm", "-y"])
        .args(names)
        .env("DOCKER_CONFIG", home.path());
    user.apply(&mut rm);
    let out = run(&mut rm);
    if !out.status.success() {
        eprintln!("bench: rm failed, terminating: {}", text(&out));
        let ids: Vec<String> = machines
            .iter()
            .filter_map(|m| m["instance_id"].as_str().map(str::to_string))
            .collect();
        bench::terminate(&user, &ids);
    }
}

/// Figure 6: a CA, a server and a client certificate, as a create makes them (in process;
/// the profile of this test binary is printed: a debug build is an upper bound).
#[test]
#[ignore = "a measurement, run by scripts/bench"]
fn certificates() {
    let sans = [
        San::Ip("10.214.0.10".parse().unwrap()),
        San::Ip("10.213.0.10".parse().unwrap()),
        San::Dns("localhost".into()),
    ];
    let (warmup, samples) = (5, env_or("BENCH_CERT_SAMPLES", 50usize));
    let (mut all, mut ca_ms, mut server_ms, mut client_ms) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for i in 0..warmup + samples {
        let t0 = Instant::now();
        let ca = CertificateAuthority::generate("docker-euca CA for bench", DEFAULT_VALIDITY_DAYS)
            .unwrap();
        let t1 = Instant::now();
        let server = ca.issue_server(&sans, DEFAULT_VALIDITY_DAYS).unwrap();
        let t2 = Instant::now();
        let client = ca
            .issue_client("docker-euca client for bench", DEFAULT_VALIDITY_DAYS)
            .unwrap();
        let t3 = Instant::now();
        std::hint::black_box((&server.cert_pem, &client.cert_pem));
        if i >= warmup {
            let ms = |a: Instant, b: Instant| (b - a).as_secs_f64() * 1000.0;
            all.push(ms(t0, t3));
            ca_ms.push(ms(t0, t1));
            server_ms.push(ms(t1, t2));
            client_ms.push(ms(t2, t3));
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[v.len() / 2]
    };
    let min = all.iter().cloned().fold(f64::INFINITY, f64::min);
    println!(
        "FIGURE certs median_ms={:.3} min_ms={min:.3} ca_ms={:.3} server_ms={:.3} client_ms={:.3} samples={samples} profile={}",
        median(&mut all),
        median(&mut ca_ms),
        median(&mut server_ms),
        median(&mut client_ms),
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
    );
}

/// `bench-tool measure-ls` over `machines` (docker-euca's store in `home`; a docker-machine
/// store of the same instances in `work` when docker-machine is there), then the floor;
/// returns measure-ls's output.
fn measure_ls(
    user: &User,
    home: &DockerHome,
    work: &Path,
    label: &str,
    machines: &[serde_json::Value],
    runs: u32,
) -> String {
    let (json, ids_file) = write_machines(work, machines);
    let dm_store = work.join("docker-machine");
    let mut args = vec![
        "measure-ls".to_string(),
        "--label".into(),
        label.into(),
        "--ids-file".into(),
        ids_file.display().to_string(),
        "--docker-config".into(),
        home.path().display().to_string(),
        "--plugin".into(),
        plugin(),
        "--runs".into(),
        runs.to_string(),
    ];
    if docker_machine().is_some() {
        bench_tool(
            user,
            &[
                "dm-store",
                "--store",
                dm_store.to_str().unwrap(),
                "--machines",
                json.to_str().unwrap(),
            ],
        );
        args.extend(["--dm-store".into(), dm_store.display().to_string()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = bench_tool(user, &args);
    // The floor: the same DescribeInstances sent directly, in the same run.
    let ids = ids_file.to_str().unwrap();
    bench_tool(user, &["floor", "--label", label, "--ids-file", ids]);
    out
}

/// One timed run of the plugin (`args` after the binary), as `user`: wall seconds, the EC2
/// calls it made (the user's stats, reset first), and its stderr.
fn timed(home: &DockerHome, user: &User, args: &[&str]) -> (f64, u64, String) {
    crate::support::testbed::testbed(&["stats", "--reset", "--access-key", &user.access_key]);
    let mut cmd = Command::new(plugin());
    cmd.args(args).env("DOCKER_CONFIG", home.path());
    user.apply(&mut cmd);
    let started = Instant::now();
    let out = run(&mut cmd);
    let wall = started.elapsed().as_secs_f64();
    assert!(out.status.success(), "{args:?}: {}", text(&out));
    let calls = user.stats().values().sum();
    (
        wall,
        calls,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The slowest VM boot (cloud-init, sshd, dockerd in the testbed's namespaces) of `user`'s
/// instances, from `testbed status`: the part of a fleet's wait that this machine's cores set.
fn slowest_vm_boot(user: &User) -> f64 {
    let status: serde_json::Value =
        serde_json::from_str(&crate::support::testbed::testbed(&["status", "--json"])).unwrap();
    status["instances"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|i| i["owner"].as_str() == Some(user.access_key.as_str()))
        .filter_map(|i| i["boot_seconds"].as_f64())
        .fold(0.0, f64::max)
}

/// `rm -y` of `names` (not timed); the measurement fails if anything stays.
fn remove_all(home: &DockerHome, user: &User, names: &[String]) {
    let mut rm = Command::new(plugin());
    rm.args(["rm", "-y"])
        .args(names)
        .env("DOCKER_CONFIG", home.path());
    user.apply(&mut rm);
    let out = run(&mut rm);
    assert!(out.status.success(), "rm {names:?}: {}", text(&out));
}

/// Figure 5: a fleet of 5 against one host, same run, same testbed delays: wall time and EC2
/// calls of `create --count 5`, of one `create`, and of five `create`s started at once (what a
/// user without fleets does); then a 3-host swarm's time from "all verified" to "all nodes
/// Ready" (from its `-D` line). `BENCH_FLEET_RUNS` rounds (default 3), interleaved.
#[test]
#[ignore = "a measurement, run by scripts/bench"]
fn fleet_of_five_against_one_host() {
    let runs: usize = env_or("BENCH_FLEET_RUNS", 3);
    let image = env()["EUCA_TESTBED_IMAGE"].clone();
    let home = DockerHome::new();
    for round in 0..runs {
        let user = User::new();
        let one = format!("f{round}one");
        let (wall, calls, _) = timed(&home, &user, &["create", &one, "-q", "--image", &image]);
        let boot = slowest_vm_boot(&user);
        println!(
            "FIGURE fleet kind=one round={round} wall_s={wall:.2} calls={calls} vm_boot_s={boot:.2}"
        );
        remove_all(&home, &user, &[one]);

        let user = User::new();
        let base = format!("f{round}five");
        let (wall, calls, _) = timed(
            &home,
            &user,
            &["create", &base, "--count", "5", "-q", "--image", &image],
        );
        let boot = slowest_vm_boot(&user);
        println!(
            "FIGURE fleet kind=fleet5 round={round} wall_s={wall:.2} calls={calls} vm_boot_s={boot:.2}"
        );
        let members: Vec<String> = (1..=5).map(|n| format!("{base}-{n}")).collect();
        remove_all(&home, &user, &members);

        let user = User::new();
        let names: Vec<String> = (1..=5).map(|n| format!("f{round}sep{n}")).collect();
        crate::support::testbed::testbed(&["stats", "--reset", "--access-key", &user.access_key]);
        let started = Instant::now();
        let made = create_many(&home, &user, &names, 5);
        let wall = started.elapsed().as_secs_f64();
        let calls: u64 = user.stats().values().sum();
        assert_eq!(made.len(), 5, "five separate creates: {made:?}");
        let boot = slowest_vm_boot(&user);
        println!(
            "FIGURE fleet kind=separate5 round={round} wall_s={wall:.2} calls={calls} vm_boot_s={boot:.2}"
        );
        remove_all(&home, &user, &names);
    }
    let user = User::new();
    let (wall, calls, stderr) = timed(
        &home,
        &user,
        &[
            "-D", "create", "fsw", "--count", "3", "--swarm", "fswc", "--image", &image,
        ],
    );
    let key = "to all nodes Ready: ";
    let ready = stderr
        .lines()
        .find_map(|l| {
            let rest = &l[l.find(key)? + key.len()..];
            rest.trim_end_matches('s').parse::<f64>().ok()
        })
        .expect("the swarm's -D line");
    println!("FIGURE swarm nodes=3 verified_to_ready_s={ready:.2} wall_s={wall:.2} calls={calls}");
    let members: Vec<String> = (1..=3).map(|n| format!("fsw-{n}")).collect();
    remove_all(&home, &user, &members);
}
