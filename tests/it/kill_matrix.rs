//! The kill matrix (issue 10): every step of create's journal, of start after an address
//! change, and of rm, interrupted there — by SIGINT (Ctrl-C: the operation may clean up) and by
//! SIGKILL (no chance to) — then what a user would run next (`rm NAME`, or the same command
//! again). Counted through the EC2 API and the store: instances, groups and key pairs left,
//! records and contexts left, store files that no longer parse. Every count must be zero.
//!
//! Steps are reached with the debug-only `DOCKER_EUCA_CRASH_AT` / `DOCKER_EUCA_INTERRUPT_AT`
//! (src/crash.rs). Each case prints one `KILL-MATRIX` line for `scripts/reliability`.

use std::{
    path::Path,
    process::{Output, Stdio},
    time::{Duration, Instant},
};

use crate::support::{
    DockerHome, run,
    testbed::{User, block_on, create_ok, env, euca, groups_named_for, unique},
    text,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// SIGINT at the step: the command cancels (and a create rolls back) by itself.
    Int,
    /// SIGKILL at the step: nothing runs after it.
    Kill,
}

impl Mode {
    fn var(self) -> &'static str {
        match self {
            Mode::Int => "DOCKER_EUCA_INTERRUPT_AT",
            Mode::Kill => "DOCKER_EUCA_CRASH_AT",
        }
    }
}

/// What is left of machine `name` after a case.
#[derive(Debug, Default, PartialEq, Eq)]
struct Leftovers {
    instances: usize,
    groups: usize,
    key_pairs: usize,
    records: usize,
    contexts: usize,
    corrupt_files: usize,
}

fn count_leftovers(home: &DockerHome, user: &User, name: &str) -> Leftovers {
    let ec2 = user.ec2();
    let instances = block_on(ec2.describe_instances(&[]))
        .unwrap()
        .into_iter()
        .filter(|i| i.state != "terminated")
        .filter(|i| {
            i.tags.iter().any(|(_, v)| v == name)
                || i.client_token
                    .as_deref()
                    .is_some_and(|t| t.starts_with(&format!("docker-euca-{name}-")))
        })
        .count();
    let pairs = block_on(ec2.sdk().describe_key_pairs().send()).unwrap();
    let key_pairs = pairs
        .key_pairs()
        .iter()
        .filter_map(|k| k.key_name())
        .filter(|k| k.starts_with(&format!("docker-euca-{name}-")))
        .count();
    let contexts = String::from_utf8_lossy(
        &run(home
            .docker()
            .args(["context", "ls", "--format", "{{.Name}}"]))
        .stdout,
    )
    .lines()
    .filter(|l| l.trim() == name)
    .count();
    Leftovers {
        instances,
        groups: groups_named_for(user, name).len(),
        key_pairs,
        records: usize::from(home.path().join(format!("euca/machines/{name}")).exists()),
        contexts,
        corrupt_files: corrupt_json_files(home.path()),
    }
}

/// Store files (every `*.json` under `DOCKER_CONFIG`) that no longer parse.
fn corrupt_json_files(dir: &Path) -> usize {
    let mut corrupt = 0;
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            corrupt += corrupt_json_files(&path);
        } else if path.extension().is_some_and(|e| e == "json") {
            let bytes = std::fs::read(&path).unwrap_or_default();
            if serde_json::from_slice::<serde_json::Value>(&bytes).is_err() {
                eprintln!("corrupt: {}", path.display());
                corrupt += 1;
            }
        }
    }
    corrupt
}

fn report(command: &str, step: &str, mode: Mode, left: &Leftovers) {
    println!(
        "KILL-MATRIX command={command} step={step} mode={mode:?} instances={} groups={} \
         key_pairs={} records={} contexts={} corrupt={}",
        left.instances,
        left.groups,
        left.key_pairs,
        left.records,
        left.contexts,
        left.corrupt_files
    );
    assert_eq!(*left, Leftovers::default(), "{command} {step} {mode:?}");
}

/// The plugin itself (not through docker, so that its own exit status is seen), stopped at
/// `step`.
fn hooked(home: &DockerHome, user: &User, mode: Mode, step: &str, args: &[&str]) -> Output {
    let mut cmd = home.euca();
    cmd.args(args).env(mode.var(), step);
    user.apply(&mut cmd);
    run(&mut cmd)
}

/// A fresh user with short testbed delays: the matrix is about steps, not about waiting.
fn quick_user() -> User {
    let user = User::new();
    user.config(&["--boot-delay", "0.3", "--public-ip-delay", "0.3"]);
    user
}

fn rm_ok(home: &DockerHome, user: &User, name: &str) {
    let out = run(&mut euca(home, user, &["rm", "-y", name]));
    assert!(
        out.status.success(),
        "rm after the interruption: {}",
        text(&out)
    );
}

/// Create, stopped at `step`; then `rm` (after SIGKILL, or after a SIGINT that happened too
/// late to stop the create). Nothing may be left.
fn create_interrupted(step: &str, mode: Mode, extra: &[&str]) {
    let home = DockerHome::new();
    let user = quick_user();
    let name = unique("km");
    let mut args = vec![
        "create",
        &name,
        "--image",
        env()["EUCA_TESTBED_IMAGE"].as_str(),
    ];
    args.extend_from_slice(extra);
    let out = hooked(&home, &user, mode, step, &args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("point \"{step}\" reached")),
        "the step was never reached: {}",
        text(&out)
    );
    match mode {
        Mode::Kill => {
            assert_eq!(
                out.status.code(),
                None,
                "killed by a signal: {}",
                text(&out)
            );
            rm_ok(&home, &user, &name);
        }
        // Interrupted after the last wait, a create may finish: then it is a ready machine.
        Mode::Int if out.status.success() => rm_ok(&home, &user, &name),
        Mode::Int => {
            assert_eq!(out.status.code(), Some(130), "{}", text(&out));
            assert!(stderr.contains("rolled back"), "{}", text(&out));
        }
    }
    report("create", step, mode, &count_leftovers(&home, &user, &name));
}

/// Polls the user's requests (a testbed round trip per look) until `done` says so, for at most `limit`.
fn wait_for_calls(user: &User, limit: Duration, done: impl Fn(&[(String, bool)]) -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if done(&user.requests_served()) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// Ctrl-C while the cloud is still applying ImportKeyPair (received, slow: `fault --slow`):
/// the rollback must not look for the key pair before that call has landed, or the pair it
/// makes afterwards outlives the rollback. It leaked before the rollback waited for the calls
/// still on their way (CI of stop 21, `create_key_pair_intent_int`).
#[test]
fn create_interrupted_while_the_cloud_applies_import_key_pair_leaves_no_key_pair() {
    let home = DockerHome::new();
    let user = quick_user();
    let name = unique("kq");
    user.fault("ImportKeyPair", &["--slow", "3000"]);
    let mut cmd = home.euca();
    cmd.args(["create", &name, "--import-keypair", "--image"])
        .arg(env()["EUCA_TESTBED_IMAGE"].as_str())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    user.apply(&mut cmd);
    let child = cmd.spawn().expect("start the plugin");
    let arrived = wait_for_calls(&user, Duration::from_secs(120), |calls| {
        calls.iter().any(|(a, done)| a == "ImportKeyPair" && !done)
    });
    // SAFETY: kill(2) on our own child, which has not been waited for (its pid is still its).
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    assert!(
        arrived,
        "ImportKeyPair never reached the cloud: {}",
        text(&out)
    );
    assert_eq!(out.status.code(), Some(130), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("rolled back"),
        "{}",
        text(&out)
    );
    let settled = wait_for_calls(&user, Duration::from_secs(30), |calls| {
        calls.iter().all(|(_, done)| *done)
    });
    assert!(settled, "the slow ImportKeyPair never ended");
    report(
        "create",
        "import-key-pair-in-flight",
        Mode::Int,
        &count_leftovers(&home, &user, &name),
    );
}

/// A ready machine, stopped; `start` (a new address on EDGE) stopped at `step`; then `start`
/// again must bring it back with a working context, and `rm` leaves nothing.
fn start_interrupted(step: &str, mode: Mode) {
    let home = DockerHome::new();
    let user = quick_user();
    let name = unique("ks");
    create_ok(&home, &user, &name, &["-q"]);
    let out = run(&mut euca(&home, &user, &["stop", &name]));
    assert!(out.status.success(), "{}", text(&out));
    let out = hooked(&home, &user, mode, step, &["start", &name]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!("point \"{step}\" reached")),
        "the step was never reached: {}",
        text(&out)
    );
    let out = run(&mut euca(&home, &user, &["start", &name]));
    assert!(out.status.success(), "start again: {}", text(&out));
    let out = run(home.docker().args(["--context", &name, "version"]));
    assert!(
        out.status.success(),
        "the context works again: {}",
        text(&out)
    );
    rm_ok(&home, &user, &name);
    report("start", step, mode, &count_leftovers(&home, &user, &name));
}

/// `rm` stopped at `step`; `rm` again finishes the job.
fn rm_interrupted(step: &str, mode: Mode) {
    let home = DockerHome::new();
    let user = quick_user();
    let name = unique("kr");
    create_ok(&home, &user, &name, &["-q"]);
    let out = hooked(&home, &user, mode, step, &["rm", "-y", &name]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!("point \"{step}\" reached")),
        "the step was never reached: {}",
        text(&out)
    );
    if home.path().join(format!("euca/machines/{name}")).exists() {
        rm_ok(&home, &user, &name);
    }
    report("rm", step, mode, &count_leftovers(&home, &user, &name));
}

macro_rules! cases {
    ($run:ident { $($test:ident: $step:literal, $mode:ident $(, $extra:expr)?;)* }) => {
        $(
            #[test]
            fn $test() {
                $run($step, Mode::$mode $(, $extra)?);
            }
        )*
    };
}

cases!(create_interrupted {
    create_keys_int: "keys", Int, &[];
    create_keys_kill: "keys", Kill, &[];
    create_key_pair_intent_int: "key-pair-intent", Int, &["--import-keypair"];
    create_key_pair_intent_kill: "key-pair-intent", Kill, &["--import-keypair"];
    create_group_intent_int: "group-intent", Int, &[];
    create_group_intent_kill: "group-intent", Kill, &[];
    create_group_int: "group", Int, &[];
    create_group_kill: "group", Kill, &[];
    create_launch_intent_int: "launch-intent", Int, &[];
    create_launch_intent_kill: "launch-intent", Kill, &[];
    create_launch_int: "launch", Int, &[];
    create_launch_kill: "launch", Kill, &[];
    create_tags_int: "tags", Int, &[];
    create_tags_kill: "tags", Kill, &[];
    create_running_int: "running", Int, &[];
    create_running_kill: "running", Kill, &[];
    create_address_int: "address", Int, &[];
    create_address_kill: "address", Kill, &[];
    create_ssh_int: "ssh", Int, &[];
    create_ssh_kill: "ssh", Kill, &[];
    create_host_key_pending_int: "host-key-pending", Int, &[];
    create_host_key_pending_kill: "host-key-pending", Kill, &[];
    create_host_key_reloaded_int: "host-key-reloaded", Int, &[];
    create_host_key_reloaded_kill: "host-key-reloaded", Kill, &[];
    create_cloud_init_int: "cloud-init", Int, &[];
    create_cloud_init_kill: "cloud-init", Kill, &[];
    create_engine_int: "engine", Int, &[];
    create_engine_kill: "engine", Kill, &[];
    create_certificates_int: "certificates", Int, &[];
    create_certificates_kill: "certificates", Kill, &[];
    create_daemon_restart_int: "daemon-restart", Int, &[];
    create_daemon_restart_kill: "daemon-restart", Kill, &[];
    create_context_int: "context", Int, &[];
    create_context_kill: "context", Kill, &[];
    create_context_files_int: "context-tls-swap", Int, &[];
    create_context_files_kill: "context-tls-swap", Kill, &[];
    create_verify_int: "verify", Int, &[];
    create_verify_kill: "verify", Kill, &[];
});

cases!(start_interrupted {
    start_address_int: "start-address", Int;
    start_address_kill: "start-address", Kill;
    start_certificate_int: "reissue-certificate", Int;
    start_certificate_kill: "reissue-certificate", Kill;
    start_daemon_restart_int: "reissue-daemon-restart", Int;
    start_daemon_restart_kill: "reissue-daemon-restart", Kill;
    start_context_int: "reissue-context", Int;
    start_context_kill: "reissue-context", Kill;
});

cases!(rm_interrupted {
    rm_instance_int: "rm-instance", Int;
    rm_instance_kill: "rm-instance", Kill;
    rm_group_int: "rm-group", Int;
    rm_group_kill: "rm-group", Kill;
});
