//! `doctor` and `logs` through the real docker CLI against the testbed. Each failing check is
//! shown by breaking exactly that one thing (a wrong secret, a skewed clock, a stopped daemon, a
//! stopped instance, a new address under the old certificate, new host keys) and finding that
//! check alone `fail`, with its hint, and exit 1; a healthy cloud and machine give only `ok` and
//! `warn`, exit 0, and doctor changes nothing (no file, no cloud call but Describe/Get).

use std::{
    collections::BTreeMap,
    net::{IpAddr, SocketAddr, TcpStream},
    path::{Path, PathBuf},
    process::{Command, Output},
    time::{Duration, Instant},
};

use aws_sdk_ec2::types::InstanceStateName;
use docker_euca::doctor::CHECKS;

use crate::support::{
    DockerHome, ok, run,
    testbed::{
        User, assert_testbed_address, block_on, create_ok, euca, record, testbed, unique, vm_report,
    },
    text,
};

/// The cloud side's checks: the first seven.
const CLOUD_CHECKS: usize = 7;

/// One line of `doctor --format json`.
#[derive(Debug, Clone)]
struct Line {
    check: String,
    status: String,
    detail: String,
    hint: Option<String>,
}

/// A doctor run: its output and its lines, parsed.
struct Doctor {
    out: Output,
    lines: Vec<Line>,
}

impl Doctor {
    fn all(&self) -> String {
        text(&self.out)
    }

    fn line(&self, check: &str) -> &Line {
        self.lines
            .iter()
            .find(|l| l.check == check)
            .unwrap_or_else(|| panic!("no {check} line:\n{}", self.all()))
    }

    fn status(&self, check: &str) -> &str {
        &self.line(check).status
    }

    fn ids(&self) -> Vec<&str> {
        self.lines.iter().map(|l| l.check.as_str()).collect()
    }

    fn failed(&self) -> Vec<&str> {
        self.lines
            .iter()
            .filter(|l| l.status == "fail")
            .map(|l| l.check.as_str())
            .collect()
    }

    /// `check` is the only failure, its hint says `hint`, doctor exits 1 and ends with the
    /// reporter's one line naming it.
    fn assert_fails_alone(&self, check: &str, hint: &str) {
        assert_eq!(self.out.status.code(), Some(1), "{}", self.all());
        assert_eq!(self.failed(), [check], "{}", self.all());
        let line = self.line(check);
        assert!(
            line.hint.as_deref().is_some_and(|h| h.contains(hint)),
            "{check}: hint {:?} lacks {hint:?}\n{}",
            line.hint,
            self.all()
        );
        let stderr = String::from_utf8_lossy(&self.out.stderr);
        assert_eq!(
            stderr.lines().next().unwrap_or_default(),
            format!("docker euca: 1 check failed: {check}"),
            "{}",
            self.all()
        );
    }

    /// Exit 0, every line `ok` or `warn`.
    fn assert_healthy(&self) {
        assert_eq!(self.out.status.code(), Some(0), "{}", self.all());
        for l in &self.lines {
            assert!(
                l.status == "ok" || l.status == "warn",
                "{}: {}\n{}",
                l.check,
                l.status,
                self.all()
            );
        }
    }
}

/// `docker euca doctor --format json ARGS…` as `user`.
fn doctor(home: &DockerHome, user: &User, args: &[&str]) -> Doctor {
    let mut all = vec!["doctor", "--format", "json"];
    all.extend_from_slice(args);
    doctor_run(euca(home, user, &all))
}

fn doctor_run(mut cmd: Command) -> Doctor {
    let out = run(&mut cmd);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines = stdout
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {l:?}\n{}", text(&out)));
            let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
            assert_eq!(keys, ["check", "status", "detail", "hint"], "{l}");
            Line {
                check: v["check"].as_str().unwrap().to_string(),
                status: v["status"].as_str().unwrap().to_string(),
                detail: v["detail"].as_str().unwrap().to_string(),
                hint: v["hint"].as_str().map(str::to_string),
            }
        })
        .collect();
    Doctor { out, lines }
}

/// Every file under the store and the context store, with its bytes.
fn snapshot(home: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(dir: &Path, into: &mut BTreeMap<PathBuf, Vec<u8>>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, into);
            } else {
                into.insert(path.clone(), std::fs::read(&path).unwrap_or_default());
            }
        }
    }
    let mut files = BTreeMap::new();
    walk(&home.join("euca"), &mut files);
    walk(&home.join("contexts"), &mut files);
    files
}

/// Polls `done` until it holds (an event, not a fixed sleep); panics naming `what` after
/// `limit`, with what the testbed knows of `user`'s VMs.
fn wait_until(user: &User, what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within {limit:?}\n{}",
            vm_report(&user.access_key)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn accepts(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok()
}

/// The machine's instance id and public address, from its record.
fn instance(home: &DockerHome, name: &str) -> (String, IpAddr) {
    let r = record(home, name);
    let ip: IpAddr = r.cloud.public_ip.unwrap().parse().unwrap();
    assert_testbed_address(ip);
    (r.cloud.instance_id.unwrap(), ip)
}

fn rm(home: &DockerHome, user: &User, name: &str) {
    ok(&mut euca(home, user, &["rm", "-y", name]));
}

#[test]
fn a_healthy_cloud_and_machine_pass_and_doctor_changes_nothing() {
    let home = DockerHome::new();
    let user = User::new();
    let name = unique("doc-ok");
    create_ok(&home, &user, &name, &["-q"]);

    let cloud = doctor(&home, &user, &[]);
    cloud.assert_healthy();
    assert_eq!(cloud.ids(), &CHECKS[..CLOUD_CHECKS], "{}", cloud.all());
    // The testbed's endpoint is plain http: a warning, with a hint.
    assert_eq!(cloud.status("endpoint-tls"), "warn");
    assert!(cloud.line("endpoint-tls").hint.is_some());

    let before = snapshot(home.path());
    testbed(&["stats", "--reset", "--access-key", &user.access_key]);
    let d = doctor(&home, &user, &[&name]);
    d.assert_healthy();
    assert_eq!(d.ids(), CHECKS, "{}", d.all());
    for check in &CHECKS {
        if *check != "endpoint-tls" {
            assert_eq!(d.status(check), "ok", "{check}\n{}", d.all());
        }
    }
    assert!(
        d.line("daemon-tls").detail.contains("answers /version"),
        "{}",
        d.all()
    );
    assert!(d.line("ssh").detail.contains("pinned"), "{}", d.all());
    // Nothing written, nothing asked of the cloud but descriptions.
    assert_eq!(snapshot(home.path()), before, "doctor changed files");
    let stats = user.stats();
    assert!(!stats.is_empty());
    for action in stats.keys() {
        assert!(
            action.starts_with("Describe") || action.starts_with("Get"),
            "doctor called {action}: {stats:?}"
        );
    }

    // The text form: one line per check, each `ok` or `warn`, hints indented below.
    let out = ok(&mut euca(&home, &user, &["doctor", &name]));
    let heads: Vec<&str> = out.lines().filter(|l| !l.starts_with(' ')).collect();
    assert_eq!(heads.len(), CHECKS.len(), "{out}");
    for (head, check) in heads.iter().zip(CHECKS) {
        let mut words = head.split_whitespace();
        let status = words.next().unwrap();
        assert!(status == "ok" || status == "warn", "{out}");
        assert_eq!(words.next(), Some(check), "{out}");
    }

    // logs: the console from the cloud, cloud-init's log over SSH; --tail in both.
    let console = ok(&mut euca(&home, &user, &["logs", &name, "--console"]));
    assert!(
        console.contains("SSH HOST KEY KEYS") || console.to_lowercase().contains("cloud-init"),
        "{console}"
    );
    let last = ok(&mut euca(
        &home,
        &user,
        &["logs", &name, "--console", "--tail", "2"],
    ));
    assert!(
        !last.trim().is_empty() && last.lines().count() <= 2,
        "{last:?}"
    );
    let log = ok(&mut euca(&home, &user, &["logs", &name]));
    assert!(log.to_lowercase().contains("cloud-init"), "{log}");
    let last = ok(&mut euca(&home, &user, &["logs", &name, "-n", "3"]));
    assert_eq!(last.lines().count(), log.lines().count().min(3), "{last:?}");
    assert!(log.ends_with(&last), "{last:?} is not the end of the log");

    rm(&home, &user, &name);
}

#[test]
fn a_wrong_secret_fails_credentials_alone_and_never_shows() {
    let home = DockerHome::new();
    let user = User::new();
    let secret = format!("wrong{}", unique("secret"));
    let mut cmd = euca(&home, &user, &["doctor", "--format", "json"]);
    cmd.env("AWS_SECRET_ACCESS_KEY", &secret);
    let d = doctor_run(cmd);
    d.assert_fails_alone("credentials", "AWS_SECRET_ACCESS_KEY");
    // The refusal still carried the cloud's Date: the clock is measured anyway.
    assert_eq!(d.status("clock"), "ok", "{}", d.all());
    assert_eq!(d.status("region"), "skip", "{}", d.all());
    assert_eq!(d.status("endpoint-tcp"), "ok", "{}", d.all());
    let all = d.all();
    assert!(!all.contains(&secret), "the secret was printed:\n{all}");
    assert!(
        !all.contains(&user.secret_key),
        "a secret was printed:\n{all}"
    );
}

#[test]
fn a_skewed_clock_fails_past_fifteen_minutes_and_warns_past_one() {
    let home = DockerHome::new();
    let user = User::new();
    user.config(&["--clock-skew", "1200"]);
    let d = doctor(&home, &user, &[]);
    d.assert_fails_alone("clock", "clock");
    assert!(
        d.line("clock").detail.contains("20 min ahead of"),
        "{}",
        d.all()
    );
    // The keys are not to blame for a refused timestamp.
    assert_eq!(d.status("credentials"), "skip", "{}", d.all());

    user.config(&["--clock-skew", "120"]);
    let d = doctor(&home, &user, &[]);
    d.assert_healthy();
    assert_eq!(d.status("clock"), "warn", "{}", d.all());
    assert!(d.line("clock").detail.contains("ahead of"), "{}", d.all());
    assert_eq!(d.status("credentials"), "ok", "{}", d.all());
}

#[test]
fn a_stopped_daemon_fails_port_2376_alone() {
    let home = DockerHome::new();
    let user = User::new();
    let name = unique("doc-port");
    create_ok(&home, &user, &name, &["-q"]);
    let (id, ip) = instance(&home, &name);
    testbed(&["exec", &id, "--", "service", "docker", "stop"]);
    let port = SocketAddr::new(ip, 2376);
    wait_until(&user, "port 2376 closing", Duration::from_secs(60), || {
        !accepts(port)
    });

    let d = doctor(&home, &user, &[&name]);
    d.assert_fails_alone("port-2376", "docker");
    assert!(
        d.line("port-2376").detail.contains("refused"),
        "{}",
        d.all()
    );
    assert_eq!(d.status("ssh"), "ok", "{}", d.all());
    assert_eq!(d.status("daemon-tls"), "skip", "{}", d.all());
    // The certificate is still judged, from the local copy.
    assert_eq!(d.status("certificate"), "ok", "{}", d.all());
    assert!(
        d.line("certificate").detail.contains("local copy"),
        "{}",
        d.all()
    );
    // A failure brings the console's last lines.
    assert!(
        d.line("console").detail.contains("console output:"),
        "{}",
        d.all()
    );

    rm(&home, &user, &name);
}

#[test]
fn a_stopped_instance_fails_instance_and_skips_what_needs_it() {
    let home = DockerHome::new();
    let user = User::new();
    let name = unique("doc-stop");
    create_ok(&home, &user, &name, &["-q"]);
    ok(&mut euca(&home, &user, &["stop", &name]));

    let d = doctor(&home, &user, &[&name]);
    d.assert_fails_alone("instance", &format!("docker euca start {name}"));
    for check in [
        "security-group",
        "port-22",
        "port-2376",
        "ssh",
        "daemon-tls",
        "certificate",
    ] {
        assert_eq!(d.status(check), "skip", "{check}\n{}", d.all());
        assert!(
            d.line(check).detail.contains("stopped"),
            "{check}\n{}",
            d.all()
        );
    }
    assert_eq!(d.status("context"), "ok", "{}", d.all());
    assert_eq!(d.ids(), CHECKS, "{}", d.all());

    rm(&home, &user, &name);
}

#[test]
fn a_new_address_under_the_old_certificate_fails_certificate_until_start() {
    let home = DockerHome::new();
    let user = User::new();
    let name = unique("doc-addr");
    create_ok(&home, &user, &name, &["-q"]);
    let (id, old) = instance(&home, &name);
    // Stop and start behind docker-euca's back: EDGE hands out a new public address, and
    // nothing reissues the certificate.
    let ec2 = user.ec2();
    let limit = Duration::from_secs(120);
    let info = block_on(async {
        ec2.stop_instances(std::slice::from_ref(&id), false)
            .await
            .unwrap();
        ec2.wait_for_state(&id, InstanceStateName::Stopped, limit)
            .await
            .unwrap();
        ec2.start_instances(std::slice::from_ref(&id))
            .await
            .unwrap();
        ec2.wait_for_state(&id, InstanceStateName::Running, limit)
            .await
            .unwrap();
        ec2.wait_for_address(&id, false, limit).await.unwrap()
    });
    let new: IpAddr = info.public_ip.unwrap().parse().unwrap();
    assert_testbed_address(new);
    assert_ne!(
        new, old,
        "the testbed gives a new public address on every start"
    );
    wait_until(&user, "the daemon at the new address", limit, || {
        accepts(SocketAddr::new(new, 2376))
    });

    let d = doctor(&home, &user, &[&name]);
    d.assert_fails_alone("certificate", &format!("docker euca start {name}"));
    let cert = d.line("certificate");
    assert!(
        cert.detail.contains(&old.to_string()) && cert.detail.contains(&new.to_string()),
        "{}",
        d.all()
    );
    assert_eq!(d.status("instance"), "warn", "{}", d.all());
    assert_eq!(d.status("ssh"), "ok", "{}", d.all());

    // The hint works: start picks up the address, reissues and rewrites the context.
    ok(&mut euca(&home, &user, &["start", &name]));
    doctor(&home, &user, &[&name]).assert_healthy();

    rm(&home, &user, &name);
}

#[test]
fn new_host_keys_fail_ssh_naming_the_change() {
    let home = DockerHome::new();
    let user = User::new();
    let name = unique("doc-key");
    create_ok(&home, &user, &name, &["-q"]);
    let (id, ip) = instance(&home, &name);
    testbed(&[
        "exec",
        &id,
        "--",
        "sh",
        "-c",
        "rm -f /etc/ssh/ssh_host_*; ssh-keygen -A >/dev/null; kill -HUP $(cat /run/sshd.pid)",
    ]);
    let new_key = testbed(&[
        "exec",
        &id,
        "--",
        "cat",
        "/etc/ssh/ssh_host_ed25519_key.pub",
    ]);
    let blob = new_key.split_whitespace().nth(1).unwrap().to_string();
    wait_until(
        &user,
        "sshd serving the new host key",
        Duration::from_secs(60),
        || {
            Command::new("ssh-keyscan")
                .args(["-T", "2", "-t", "ed25519", &ip.to_string()])
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(&blob))
        },
    );

    let d = doctor(&home, &user, &[&name]);
    d.assert_fails_alone("ssh", "do not trust it");
    assert!(
        d.line("ssh").detail.contains("the host key changed"),
        "{}",
        d.all()
    );
    assert_eq!(d.status("port-22"), "ok", "{}", d.all());
    assert_eq!(d.status("daemon-tls"), "ok", "{}", d.all());
    // Doctor pinned nothing: the record still holds the old key.
    let pinned = record(&home, &name).ssh.host_key.unwrap();
    assert!(!pinned.contains(&blob));

    rm(&home, &user, &name);
}

#[test]
fn an_endpoint_nobody_listens_on_fails_endpoint_tcp_alone() {
    let home = DockerHome::new();
    let user = User::new();
    let port = crate::support::free_port();
    let mut cmd = euca(&home, &user, &["doctor", "--format", "json"]);
    cmd.env(
        "EC2_URL",
        format!("http://127.0.0.1:{port}/services/compute/"),
    );
    let d = doctor_run(cmd);
    d.assert_fails_alone("endpoint-tcp", "endpoint");
    assert_eq!(d.status("endpoint-dns"), "ok", "{}", d.all());
    for check in ["credentials", "clock", "region"] {
        assert_eq!(d.status(check), "skip", "{check}\n{}", d.all());
    }
}

#[test]
fn the_kernel_keyring_warns_that_it_does_not_survive_a_reboot() {
    let home = DockerHome::new();
    let user = User::new();
    let mut cmd = euca(&home, &user, &["doctor", "--format", "json"]);
    cmd.env("DOCKER_EUCA_KEYRING", "keyutils");
    let d = doctor_run(cmd);
    d.assert_healthy();
    assert_eq!(d.status("keyring"), "warn", "{}", d.all());
    assert!(d.line("keyring").detail.contains("reboot"), "{}", d.all());
}

#[test]
fn an_unknown_machine_fails_record_and_skips_the_machine_checks() {
    let home = DockerHome::new();
    let user = User::new();
    let d = doctor(&home, &user, &["no-such-machine"]);
    d.assert_fails_alone("record", "docker euca ls");
    for check in &CHECKS[CLOUD_CHECKS + 1..] {
        assert_eq!(d.status(check), "skip", "{check}\n{}", d.all());
    }
}

#[test]
fn a_context_removed_by_hand_fails_context_alone() {
    let home = DockerHome::new();
    let user = User::new();
    let name = unique("doc-ctx");
    create_ok(&home, &user, &name, &["-q"]);
    ok(home.docker().args(["context", "rm", "-f", &name]));
    let d = doctor(&home, &user, &[&name]);
    assert_eq!(d.out.status.code(), Some(1), "{}", d.all());
    assert_eq!(d.status("context"), "fail", "{}", d.all());
    assert!(
        d.line("context")
            .hint
            .as_deref()
            .is_some_and(|h| h.contains("regenerate-certs")),
        "{}",
        d.all()
    );
    // Everything that does not read the context still passes.
    for check in [
        "record",
        "instance",
        "security-group",
        "port-22",
        "port-2376",
        "ssh",
        "certificate",
    ] {
        assert_eq!(d.status(check), "ok", "{check}\n{}", d.all());
    }
    rm(&home, &user, &name);
}
