//! The secrets scan (issue 10): a machine's whole life (login, create, ssh, scp, stop/start,
//! regenerate-certs, rm) with `-D`, the secret key kept in the real Secret Service. Then the
//! secret key and every private key (client SSH key, bootstrap host key, CA key, client TLS
//! key) are searched for in every store file that is not itself the 0600 key file, in all
//! output and debug logs, in `inspect` and `ls --format json`, and in `/proc/*/cmdline` and
//! `/proc/*/environ` of the plugin's processes, sampled during the run. Every file is 0600,
//! every directory 0700.

use std::{
    collections::BTreeMap,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::Command,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use crate::support::{
    DockerHome, run, run_with_input,
    testbed::{User, env, record, testbed, unique},
    text,
};

/// A command of the machine's life: the plugin through docker, `-D`, the key from the keyring
/// only (no key in the environment of the process).
fn life(home: &DockerHome, args: &[&str]) -> Command {
    let mut cmd = home.docker();
    cmd.arg("euca")
        .arg("-D")
        .args(args)
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("EC2_ACCESS_KEY")
        .env_remove("EC2_SECRET_KEY")
        .env(
            "DBUS_SESSION_BUS_ADDRESS",
            &env()["DBUS_SESSION_BUS_ADDRESS"],
        );
    cmd
}

/// Samples `/proc/*/cmdline` and `/proc/*/environ` of every docker-euca process while the life
/// runs.
struct ProcSampler {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<BTreeMap<String, Vec<u8>>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ProcSampler {
    fn start() -> ProcSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(BTreeMap::new()));
        let (s, v) = (stop.clone(), seen.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
                    let dir = entry.path();
                    let Ok(cmdline) = std::fs::read(dir.join("cmdline")) else {
                        continue;
                    };
                    if !String::from_utf8_lossy(&cmdline).contains("docker-euca") {
                        continue;
                    }
                    let environ = std::fs::read(dir.join("environ")).unwrap_or_default();
                    let mut all = cmdline;
                    all.extend_from_slice(&environ);
                    v.lock().unwrap().insert(dir.display().to_string(), all);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        ProcSampler {
            stop,
            seen,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> BTreeMap<String, Vec<u8>> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap();
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

/// A distinctive piece of a PEM or OpenSSH private key: its longest base64 line.
fn fingerprint_of_key(pem: &str) -> String {
    pem.lines()
        .filter(|l| !l.starts_with("-----"))
        .max_by_key(|l| l.len())
        .unwrap_or_default()
        .trim()
        .to_string()
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() && !path.is_symlink() {
            out.push(path.clone());
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn no_secret_escapes_a_machines_whole_life() {
    let home = DockerHome::new();
    let user = User::new();
    let name = unique("scan");
    let sampler = ProcSampler::start();
    let mut outputs: Vec<(String, Vec<u8>)> = Vec::new();
    let mut step = |label: &str, mut cmd: Command, input: Option<&[u8]>| {
        let out = match input {
            Some(i) => run_with_input(&mut cmd, i),
            None => run(&mut cmd),
        };
        assert!(out.status.success(), "{label}: {}", text(&out));
        let mut both = out.stdout.clone();
        both.extend_from_slice(&out.stderr);
        outputs.push((label.to_string(), both));
    };

    let endpoint = env()["EC2_URL"].clone();
    step(
        "login",
        {
            let mut c = life(&home, &["login", "--endpoint", &endpoint]);
            c.args(["--access-key", &user.access_key, "--secret-key-stdin"]);
            c
        },
        Some(user.secret_key.as_bytes()),
    );
    step(
        "create",
        life(
            &home,
            &["create", &name, "--image", &env()["EUCA_TESTBED_IMAGE"]],
        ),
        None,
    );
    let id = record(&home, &name).cloud.instance_id.unwrap();
    // The bootstrap host key travelled in the user data: take it from the VM's seed.
    let seed = testbed(&[
        "exec",
        &id,
        "--",
        "cat",
        "/var/lib/cloud/seed/nocloud/user-data",
    ]);
    let bootstrap = seed
        .split("-----BEGIN OPENSSH PRIVATE KEY-----")
        .nth(1)
        .and_then(|rest| rest.split("-----END").next())
        .map(|body| {
            body.lines()
                .map(str::trim)
                .max_by_key(|l| l.len())
                .unwrap_or_default()
                .to_string()
        })
        .expect("the user data carries the bootstrap host key");
    step("ssh", life(&home, &["ssh", &name, "--", "true"]), None);
    let local = home.path().join("scp-source.txt");
    std::fs::write(&local, "hello").unwrap();
    step(
        "scp",
        life(
            &home,
            &["scp", local.to_str().unwrap(), &format!("{name}:/tmp/x")],
        ),
        None,
    );
    step("stop", life(&home, &["stop", &name]), None);
    step("start", life(&home, &["start", &name]), None);
    step(
        "regenerate-certs",
        life(&home, &["regenerate-certs", &name]),
        None,
    );
    step("inspect", life(&home, &["inspect", &name]), None);
    step("ls", life(&home, &["ls", "--format", "json"]), None);

    // The keys to look for, read while they exist; then the store is scanned.
    let machine_dir = home.path().join(format!("euca/machines/{name}"));
    let mut secrets: Vec<(&str, String)> = vec![
        ("secret key", user.secret_key.clone()),
        ("bootstrap host key", bootstrap),
    ];
    let key_files = [
        ("client SSH key", machine_dir.join("id_ed25519")),
        ("CA key", machine_dir.join("certs/ca-key.pem")),
        ("client TLS key", machine_dir.join("certs/key.pem")),
    ];
    for (what, path) in &key_files {
        secrets.push((
            what,
            fingerprint_of_key(&std::fs::read_to_string(path).unwrap()),
        ));
    }
    let mut found = Vec::new();
    for path in files_under(home.path()) {
        if path.is_symlink() {
            continue;
        }
        let under_store = path.starts_with(home.path().join("euca"))
            || path.starts_with(home.path().join("contexts"));
        if path.is_dir() {
            if under_store {
                assert_eq!(
                    mode(&path),
                    0o700,
                    "{} is {:o}",
                    path.display(),
                    mode(&path)
                );
            }
            continue;
        }
        if under_store {
            assert_eq!(
                mode(&path),
                0o600,
                "{} is {:o}",
                path.display(),
                mode(&path)
            );
        }
        let bytes = std::fs::read(&path).unwrap_or_default();
        let content = String::from_utf8_lossy(&bytes);
        for (what, secret) in &secrets {
            // A key file holds its own key; the context's copy of the client key is one too.
            let own_file = key_files.iter().any(|(w, p)| w == what && *p == path)
                || (*what == "client TLS key" && path.ends_with("docker/key.pem"));
            if !own_file && content.contains(secret.as_str()) {
                found.push(format!("{what} in {}", path.display()));
            }
        }
    }
    step("rm", life(&home, &["rm", "-y", &name]), None);
    let processes = sampler.finish();
    assert!(
        !processes.is_empty(),
        "the sampler saw no docker-euca process"
    );
    for (label, out) in &outputs {
        let out = String::from_utf8_lossy(out);
        for (what, secret) in &secrets {
            if out.contains(secret.as_str()) {
                found.push(format!("{what} in the output of {label}"));
            }
        }
    }
    for (pid, bytes) in &processes {
        let seen = String::from_utf8_lossy(bytes);
        for (what, secret) in &secrets {
            if seen.contains(secret.as_str()) {
                found.push(format!("{what} in {pid}/cmdline or environ"));
            }
        }
    }
    println!(
        "SECRETS-SCAN files={} outputs={} processes={} secrets={} found={}",
        files_under(home.path()).len(),
        outputs.len(),
        processes.len(),
        secrets.len(),
        found.len()
    );
    assert!(found.is_empty(), "secrets escaped: {found:#?}");
}
