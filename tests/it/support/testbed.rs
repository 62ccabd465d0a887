//! The local Eucalyptus testbed (`testbed/testbed`): brought up once per test run (idempotent;
//! `scripts/test` takes it down afterwards), with a fresh user per test so API call counts and
//! injected faults stay with the test that asked for them.

use std::{collections::HashMap, net::IpAddr, path::PathBuf, process::Command, sync::OnceLock};

use docker_euca::{
    cloud::Ec2,
    credentials::{AccessKeys, CloudTarget},
    secret::Secret,
};

pub fn testbed_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testbed/testbed")
}

/// `testbed ARGS…`, insisting on success; returns stdout.
pub fn testbed(args: &[&str]) -> String {
    let out = Command::new(testbed_bin())
        .args(args)
        .output()
        .expect("run testbed/testbed");
    assert!(
        out.status.success(),
        "testbed {args:?} failed:\n{}",
        super::text(&out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn parse_exports(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("export ").or(Some(l)))
        .filter_map(|l| l.split_once('='))
        .filter(|(k, _)| !k.starts_with('#') && !k.contains(' '))
        .map(|(k, v)| {
            (
                k.to_string(),
                v.trim_matches('\'').trim_matches('"').to_string(),
            )
        })
        .collect()
}

/// The testbed's environment (`testbed up --keyring`, once per process).
pub fn env() -> &'static HashMap<String, String> {
    static ENV: OnceLock<HashMap<String, String>> = OnceLock::new();
    ENV.get_or_init(|| {
        let env = parse_exports(&testbed(&["up", "--keyring"]));
        for key in [
            "EC2_URL",
            "EUCA_TESTBED_IMAGE",
            "EUCA_TESTBED_SUBNET",
            "DBUS_SESSION_BUS_ADDRESS",
        ] {
            assert!(
                env.contains_key(key),
                "testbed up did not print {key}: {env:?}"
            );
        }
        env
    })
}

/// A fresh testbed user: its own keys, so its stats and faults are its own.
#[derive(Clone)]
pub struct User {
    pub access_key: String,
    pub secret_key: String,
    /// The SigV4 region its personality takes: `eucalyptus`, or `us-east-1` for an AWS user.
    pub region: String,
}

impl User {
    pub fn new() -> User {
        Self::with_args(&["credentials", "new"])
    }

    /// A user of a second account: it sees none of the first account's resources.
    pub fn in_new_account() -> User {
        Self::with_args(&["credentials", "new", "--account", "new"])
    }

    /// A user whose requests meet the testbed's AWS personality (first account, region
    /// us-east-1, the testbed's VPC as the default VPC).
    pub fn aws() -> User {
        Self::with_args(&["credentials", "new", "--personality", "aws"])
    }

    fn with_args(args: &[&str]) -> User {
        env();
        let kv = parse_exports(&testbed(args));
        User {
            access_key: kv["AWS_ACCESS_KEY_ID"].clone(),
            secret_key: kv["AWS_SECRET_ACCESS_KEY"].clone(),
            region: kv["EUCA_REGION"].clone(),
        }
    }

    pub fn is_aws(&self) -> bool {
        self.region != "eucalyptus"
    }

    /// The testbed's log of this user's EC2 requests, in order (`testbed requests --json`).
    fn request_log(&self) -> Vec<serde_json::Value> {
        let out = testbed(&["requests", "--json", "--access-key", &self.access_key]);
        let mut v: serde_json::Value = serde_json::from_str(&out).unwrap();
        match v["requests"].take() {
            serde_json::Value::Array(entries) => entries,
            other => panic!("testbed requests: no list of requests: {other}"),
        }
    }

    /// The EC2 requests this user sent, in order: action and parameter names.
    pub fn requests(&self) -> Vec<(String, Vec<String>)> {
        self.request_log()
            .iter()
            .map(|r| {
                let names = r["params"].as_array().unwrap();
                let names = names.iter().map(|n| n.as_str().unwrap().to_string());
                (r["action"].as_str().unwrap().to_string(), names.collect())
            })
            .collect()
    }

    /// The EC2 requests this user sent, in order: action, and whether the testbed has served
    /// it yet (a `fault --slow` call is received long before it is applied).
    pub fn requests_served(&self) -> Vec<(String, bool)> {
        self.request_log()
            .iter()
            .map(|r| {
                let action = r["action"].as_str().unwrap().to_string();
                (action, r["done"].as_bool().unwrap())
            })
            .collect()
    }

    /// EC2 calls this user made, per action.
    pub fn stats(&self) -> HashMap<String, u64> {
        let out = testbed(&["stats", "--json", "--access-key", &self.access_key]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        v["actions"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, n)| (k.clone(), n.as_u64().unwrap()))
            .collect()
    }

    pub fn fault(&self, action: &str, args: &[&str]) {
        let mut all = vec!["fault", action, "--access-key", &self.access_key];
        all.extend_from_slice(args);
        testbed(&all);
    }

    pub fn config(&self, args: &[&str]) {
        let mut all = vec!["config", "--access-key", &self.access_key];
        all.extend_from_slice(args);
        testbed(&all);
    }

    /// An EC2 client for this user, to check through the API what exists.
    pub fn ec2(&self) -> Ec2 {
        let _ = rustls::crypto::ring::default_provider().install_default();
        Ec2::connect(&CloudTarget {
            endpoint: env()["EC2_URL"].clone(),
            region: self.region.clone(),
            keys: AccessKeys {
                access_key_id: self.access_key.clone(),
                secret_access_key: Secret::new(self.secret_key.clone()),
                session_token: None,
            },
            profile: "test".into(),
            ca_bundle: None,
            keys_source: "test".into(),
            dialect: if self.is_aws() {
                docker_euca::dialect::Dialect::Aws
            } else {
                docker_euca::dialect::Dialect::Eucalyptus
            },
        })
        .unwrap()
    }

    /// Environment for running the plugin as this user.
    pub fn apply(&self, cmd: &mut Command) {
        cmd.env("EC2_URL", &env()["EC2_URL"])
            .env("AWS_ACCESS_KEY_ID", &self.access_key)
            .env("AWS_SECRET_ACCESS_KEY", &self.secret_key)
            .env(
                "DBUS_SESSION_BUS_ADDRESS",
                &env()["DBUS_SESSION_BUS_ADDRESS"],
            );
        if self.is_aws() {
            cmd.env("AWS_REGION", &self.region);
        }
    }
}

/// `docker euca ARGS…` through the real docker CLI, as this user.
pub fn euca(home: &super::DockerHome, user: &User, args: &[&str]) -> Command {
    let mut cmd = home.docker();
    cmd.arg("euca").args(args);
    user.apply(&mut cmd);
    cmd
}

/// Nothing of machine `name` is left in the cloud: no live instance tagged with it, no
/// security group of its name (checked through the API).
pub fn assert_nothing_left(user: &User, name: &str) {
    let ec2 = user.ec2();
    let live: Vec<_> = block_on(ec2.instances_tagged(name))
        .unwrap()
        .into_iter()
        .filter(|i| i.state != "terminated")
        .collect();
    assert!(live.is_empty(), "instances left for {name}: {live:?}");
    let groups = groups_named_for(user, name);
    assert!(
        groups.is_empty(),
        "security groups left for {name}: {groups:?}"
    );
}

/// Security groups whose name a create of machine `name` would use (`docker-euca-NAME` or
/// `docker-euca-NAME-SUFFIX`), or that carry its machine tag.
pub fn groups_named_for(user: &User, name: &str) -> Vec<String> {
    let out = block_on(user.ec2().sdk().describe_security_groups().send()).unwrap();
    let exact = format!("docker-euca-{name}");
    out.security_groups()
        .iter()
        .filter(|g| {
            let n = g.group_name().unwrap_or_default();
            let tagged = g
                .tags()
                .iter()
                .any(|t| t.key() == Some("docker-euca:machine") && t.value() == Some(name));
            n == exact || n.strip_prefix(&exact).is_some_and(|r| r.starts_with('-')) || tagged
        })
        .map(|g| g.group_name().unwrap_or_default().to_string())
        .collect()
}

/// `docker euca create NAME --image <testbed image> EXTRA…` as `user` on an image that "lacks"
/// the engine: the user data hides dockerd in `bootcmd`, before anything looks for it.
pub fn create_without_engine(
    home: &super::DockerHome,
    user: &User,
    name: &str,
    extra: &[&str],
) -> std::process::Output {
    let user_data = home.path().join("hide-dockerd.yaml");
    std::fs::write(
        &user_data,
        "#cloud-config\nbootcmd:\n  - mv /usr/sbin/dockerd /usr/sbin/dockerd.hidden || true\n",
    )
    .unwrap();
    let mut args = vec![
        "create",
        name,
        "--image",
        env()["EUCA_TESTBED_IMAGE"].as_str(),
        "--user-data",
        user_data.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    super::run(&mut euca(home, user, &args))
}

/// `docker euca create NAME --image <testbed image> EXTRA…` as `user`, insisting on success.
pub fn create_ok(home: &super::DockerHome, user: &User, name: &str, extra: &[&str]) -> String {
    let mut args = vec![
        "create",
        name,
        "--image",
        env()["EUCA_TESTBED_IMAGE"].as_str(),
    ];
    args.extend_from_slice(extra);
    let out = super::run(&mut euca(home, user, &args));
    assert!(
        out.status.success(),
        "create {name} failed: {}",
        super::text(&out)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The source CIDRs a security group admits (through the API).
pub fn group_cidrs(user: &User, group_id: &str) -> Vec<String> {
    let out = block_on(
        user.ec2()
            .sdk()
            .describe_security_groups()
            .group_ids(group_id)
            .send(),
    )
    .unwrap();
    out.security_groups()[0]
        .ip_permissions()
        .iter()
        .flat_map(|p| p.ip_ranges())
        .filter_map(|r| r.cidr_ip().map(str::to_string))
        .collect()
}

/// The machine's record in `home`.
pub fn record(home: &super::DockerHome, name: &str) -> docker_euca::store::MachineRecord {
    docker_euca::store::Store::new(home.path())
        .load(&docker_euca::names::MachineName::new(name).unwrap())
        .unwrap()
}

/// Every address a test dials must live in the testbed's own ranges (never moto's inventions).
pub fn assert_testbed_address(ip: IpAddr) {
    let IpAddr::V4(v4) = ip else {
        panic!("{ip} is not a testbed address")
    };
    let [a, b, ..] = v4.octets();
    assert!(
        a == 10 && (213..=215).contains(&b),
        "{ip} is outside the testbed's ranges 10.213-215.0.0/16"
    );
}

/// A name unique to this run, for machines and profiles.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{:x}", rand_u32())
}

fn rand_u32() -> u32 {
    use std::time::{SystemTime, UNIX_EPOCH};
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    t ^ (std::process::id() << 8) ^ n.wrapping_mul(2654435761)
}

/// A runtime for async checks inside sync tests.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// What the testbed knows of `access_key`'s VMs, for a failure message: each instance's phase,
/// its VM's state, boot time and error, and the last lines of its VM's boot log. A test that
/// waited in vain for a VM (a port that never opened) then says why, in CI too, where the
/// testbed's state is gone after `down`.
pub fn vm_report(access_key: &str) -> String {
    let Ok(out) = Command::new(testbed_bin())
        .args(["status", "--json"])
        .output()
    else {
        return "(testbed status could not run)".into();
    };
    let Ok(status) = serde_json::from_slice::<serde_json::Value>(&out.stdout) else {
        return "(testbed status --json gave no JSON)".into();
    };
    let mut report = String::from("--- the testbed's VMs of this user\n");
    let mine = status["instances"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|i| i["owner"] == access_key);
    for inst in mine {
        report.push_str(&vm_lines(inst));
    }
    report
}

fn vm_lines(inst: &serde_json::Value) -> String {
    let id = inst["instance_id"].as_str().unwrap_or("?");
    let mut lines = format!(
        "{id}: phase {} vm {} private {} public {} boot {}s error {}\n",
        inst["phase"],
        inst["vm_state"],
        inst["private_ip"],
        inst["public_ip"],
        inst["boot_seconds"],
        inst["vm_error"]
    );
    let root = std::env::var_os("EUCA_TESTBED_ROOT").map_or_else(
        || PathBuf::from("/var/lib/docker-euca-testbed"),
        PathBuf::from,
    );
    let log = root.join("vms").join(id).join("boot.log");
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    for line in &all[all.len().saturating_sub(25)..] {
        lines.push_str(&format!("  {line}\n"));
    }
    lines
}
