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
}

impl User {
    pub fn new() -> User {
        env();
        let kv = parse_exports(&testbed(&["credentials", "new"]));
        User {
            access_key: kv["AWS_ACCESS_KEY_ID"].clone(),
            secret_key: kv["AWS_SECRET_ACCESS_KEY"].clone(),
        }
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
            region: "eucalyptus".into(),
            keys: AccessKeys {
                access_key_id: self.access_key.clone(),
                secret_access_key: Secret::new(self.secret_key.clone()),
                session_token: None,
            },
            profile: "test".into(),
            ca_bundle: None,
            keys_source: "test".into(),
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
    let group = block_on(ec2.find_security_group(&format!("docker-euca-{name}"))).unwrap();
    assert!(group.is_none(), "security group left for {name}: {group:?}");
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
