//! What the fleet and swarm tests share: names, the create they run, the table it prints, the
//! store and contexts it leaves, and the bad-input bookkeeping.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Output,
};

use docker_euca::{names::MachineName, store::MachineRecord, store::Store};
use sha2::{Digest, Sha256};

use super::{
    DockerHome, ok, run,
    testbed::{User, block_on, env, euca},
    text,
};

/// The machines `--count n` makes of `base`.
pub fn count_names(base: &str, n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("{base}-{i}")).collect()
}

pub fn image() -> String {
    env()["EUCA_TESTBED_IMAGE"].clone()
}

/// `docker euca create ARGS… --image <testbed image>` as `user`.
pub fn create(home: &DockerHome, user: &User, args: &[&str]) -> Output {
    let image = image();
    let mut all = vec!["create"];
    all.extend_from_slice(args);
    all.extend(["--image", image.as_str()]);
    run(&mut euca(home, user, &all))
}

/// The machine's record, if it exists.
pub fn load(home: &DockerHome, name: &str) -> Option<MachineRecord> {
    Store::new(home.path())
        .load(&MachineName::new(name).unwrap())
        .ok()
}

pub fn record_dir(home: &DockerHome, name: &str) -> PathBuf {
    home.path().join(format!("euca/machines/{name}"))
}

/// The contexts the real docker CLI lists.
pub fn context_names(home: &DockerHome) -> Vec<String> {
    ok(home
        .docker()
        .args(["context", "ls", "--format", "{{.Name}}"]))
    .lines()
    .map(|l| l.trim().to_string())
    .collect()
}

/// The docker endpoint of context `name`, as the docker CLI reads it.
pub fn context_host(home: &DockerHome, name: &str) -> String {
    ok(home.docker().args([
        "context",
        "inspect",
        name,
        "--format",
        "{{.Endpoints.docker.Host}}",
    ]))
    .trim()
    .to_string()
}

/// The row of `name` in the table a fleet's create prints on stdout: (ADDRESS, RESULT), the
/// result's words joined by single spaces.
pub fn table_row(out: &Output, name: &str) -> (String, String) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let header: Vec<&str> = stdout
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        ["NAME", "ADDRESS", "RESULT"],
        "the fleet's table header: {}",
        text(out)
    );
    let line = stdout
        .lines()
        .skip(1)
        .find(|l| l.split_whitespace().next() == Some(name))
        .unwrap_or_else(|| panic!("no row for {name} in the table: {}", text(out)));
    let mut cells = line.split_whitespace().skip(1);
    let address = cells.next().unwrap_or_default().to_string();
    (address, cells.collect::<Vec<_>>().join(" "))
}

pub fn group_exists(user: &User, group_id: &str) -> bool {
    block_on(user.ec2().security_group(group_id))
        .unwrap()
        .is_some()
}

/// Every file under `dir` with a digest of its bytes, but the lock files (kept by design) and,
/// when `allow_store_id`, the store's id (made by a create that reads its records).
pub fn snapshot(dir: &Path, allow_store_id: bool) -> BTreeMap<PathBuf, String> {
    let mut files = BTreeMap::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            let rel = path.strip_prefix(dir).unwrap().to_path_buf();
            let store_id = rel.starts_with("euca")
                && rel
                    .file_name()
                    .is_some_and(|f| f.to_string_lossy().starts_with("store-id"));
            if rel.starts_with("euca/locks") || (allow_store_id && store_id) {
                continue;
            }
            let kind = entry.file_type().unwrap();
            if kind.is_symlink() {
                let target = std::fs::read_link(&path).unwrap_or_default();
                files.insert(rel, format!("-> {}", target.display()));
            } else if kind.is_dir() {
                files.insert(rel, "dir".into());
                dirs.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap_or_default();
                files.insert(rel, hex::encode(Sha256::digest(bytes)));
            }
        }
    }
    files
}

/// Calls that make or change something in the cloud.
pub const CHANGING_CALLS: &[&str] = &[
    "CreateSecurityGroup",
    "AuthorizeSecurityGroupIngress",
    "ImportKeyPair",
    "RunInstances",
    "CreateTags",
    "TerminateInstances",
    "DeleteSecurityGroup",
    "DeleteKeyPair",
];

/// Runs every bad-input case (`check` says what went wrong with one, if anything), prints a
/// `BAD-INPUT` line for each, and fails naming every case that went wrong.
pub fn check_bad_cases<C>(
    cases: &[C],
    args: impl Fn(&C) -> String,
    label: impl Fn(&C) -> String,
    check: impl Fn(&C) -> Vec<String>,
) {
    let mut failures = Vec::new();
    for case in cases {
        let problems = check(case);
        println!(
            "BAD-INPUT command=create passed={} case={:?}",
            problems.is_empty(),
            args(case)
        );
        if !problems.is_empty() {
            failures.push(format!(
                "create {} ({}):\n  {}",
                args(case),
                label(case),
                problems.join("\n  ")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

/// What is wrong with how a refused command ended, whatever its kind: it succeeded, panicked
/// or died of a signal.
pub fn exit_problems(out: &Output) -> Vec<String> {
    match out.status.code() {
        Some(0) => vec!["it succeeded".to_string()],
        Some(101) => vec!["it panicked".to_string()],
        None => vec![format!("it died of a signal ({})", out.status)],
        Some(_) => vec![],
    }
}

/// The files that differ between two [`snapshot`]s, as a problem line (none when equal).
pub fn files_changed(
    before: &BTreeMap<PathBuf, String>,
    after: &BTreeMap<PathBuf, String>,
) -> Option<String> {
    let changed: Vec<String> = before
        .keys()
        .chain(after.keys())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .filter(|p| before.get(*p) != after.get(*p))
        .map(|p| p.display().to_string())
        .collect();
    (!changed.is_empty()).then(|| format!("files changed: {}", changed.join(", ")))
}
