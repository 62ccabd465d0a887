//! The cloud half of create and rm on the testbed: what is made is tagged, journalled and
//! removed again, whatever happens; nothing is left in the cloud (checked through the API).

use std::{
    process::{Command, Output},
    time::{Duration, Instant},
};

use docker_euca::{names::MachineName, store::Store};

use crate::support::{
    DockerHome, run,
    testbed::{User, assert_nothing_left, block_on, env, euca, unique},
    text,
};

fn create_args<'a>(name: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "create",
        name,
        "--image",
        env()["EUCA_TESTBED_IMAGE"].as_str(),
        "--instance-type",
        "m1.small",
    ];
    v.extend_from_slice(extra);
    v
}

fn assert_clear_failure(out: &Output, needle: &str) {
    assert_ne!(out.status.code(), Some(0), "{}", text(out));
    let err = String::from_utf8_lossy(&out.stderr);
    let first = err.lines().next().unwrap_or_default();
    assert!(
        first.contains(needle),
        "first line {first:?} lacks {needle:?}\n{err}"
    );
}

#[test]
fn create_edge_with_a_public_ip_delay_then_rm_leaves_nothing() {
    let home = DockerHome::new();
    let user = User::new();
    user.config(&["--public-ip-delay", "3"]);
    let name = unique("edge");
    let out = run(&mut euca(
        &home,
        &user,
        &create_args(
            &name,
            &["--allow-cidr", "10.0.0.0/8", "--open-port", "8080"],
        ),
    ));
    assert!(out.status.success(), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for stage in [
        "creating security group",
        "launching",
        "to run with a public address",
        "waiting for SSH",
    ] {
        assert!(
            stderr.contains(stage),
            "no progress line for {stage:?}:\n{stderr}"
        );
    }
    let record = Store::new(home.path())
        .load(&MachineName::new(name.clone()).unwrap())
        .unwrap();
    let id = record.cloud.instance_id.clone().unwrap();
    let public = record.cloud.public_ip.clone().unwrap();
    assert_ne!(Some(&public), record.cloud.private_ip.as_ref());
    crate::support::testbed::assert_testbed_address(public.parse().unwrap());
    assert!(record.cloud.security_group_owned);
    // Tagged with CreateTags (TagSpecification would have been refused by the personality).
    let info = block_on(user.ec2().describe_instance(&id))
        .unwrap()
        .unwrap();
    assert!(
        info.tags
            .contains(&("docker-euca:machine".into(), name.clone())),
        "{:?}",
        info.tags
    );
    assert!(info.tags.contains(&("Name".into(), name.clone())));
    assert_eq!(user.stats().get("RunInstances"), Some(&1));
    // No secret in the record.
    let raw = std::fs::read_to_string(
        home.path()
            .join(format!("euca/machines/{name}/machine.json")),
    )
    .unwrap();
    assert!(!raw.contains(&user.secret_key));

    let out = run(&mut euca(&home, &user, &["rm", "-y", &name]));
    assert!(out.status.success(), "{}", text(&out));
    assert_nothing_left(&user, &name);
    assert!(!home.path().join(format!("euca/machines/{name}")).exists());
}

#[test]
fn create_in_vpc_mode_on_the_private_address_then_rm() {
    let home = DockerHome::new();
    let user = User::new();
    let name = unique("vpc");
    let subnet = env()["EUCA_TESTBED_SUBNET"].clone();
    let out = run(&mut euca(
        &home,
        &user,
        &create_args(&name, &["--subnet", &subnet, "--use-private-address"]),
    ));
    assert!(out.status.success(), "{}", text(&out));
    let record = Store::new(home.path())
        .load(&MachineName::new(name.clone()).unwrap())
        .unwrap();
    let private = record.cloud.private_ip.clone().unwrap();
    assert!(private.starts_with("10.215."), "{private}");
    let out = run(&mut euca(&home, &user, &["rm", "-y", &name]));
    assert!(out.status.success(), "{}", text(&out));
    assert_nothing_left(&user, &name);
}

#[test]
fn sigint_mid_wait_rolls_everything_back() {
    let home = DockerHome::new();
    let user = User::new();
    user.config(&["--public-ip-delay", "60"]);
    let name = unique("int");
    let child = euca(&home, &user, &create_args(&name, &[]))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (store, machine) = wait_until_launched(&home, &name);
    std::thread::sleep(Duration::from_secs(2));
    // SIGINT to the plugin process, as a terminal's Ctrl-C would (docker forwards nothing here).
    let plugin_pid = find_plugin_pid(&name).expect("plugin process");
    unsafe { kill(plugin_pid, 2) };
    let out = child.wait_with_output().unwrap();
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("rolled back"),
        "{}",
        text(&out)
    );
    assert_nothing_left(&user, &name);
    assert!(
        store.load(&machine).is_err(),
        "the record must be gone after a rollback"
    );
}

/// Waits until the create running for `name` has journalled its instance (mid-wait from then on).
fn wait_until_launched(home: &DockerHome, name: &str) -> (Store, MachineName) {
    let store = Store::new(home.path());
    let machine = MachineName::new(name).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while store
        .load(&machine)
        .ok()
        .and_then(|r| r.cloud.instance_id)
        .is_none()
    {
        assert!(Instant::now() < deadline, "the create never launched");
        std::thread::sleep(Duration::from_millis(200));
    }
    (store, machine)
}

fn find_plugin_pid(name: &str) -> Option<i32> {
    let ps = String::from_utf8(
        Command::new("ps")
            .args(["-eo", "pid,args"])
            .output()
            .ok()?
            .stdout,
    )
    .ok()?;
    ps.lines()
        .filter(|l| l.contains("docker-euca") && l.contains(name) && !l.contains("ps -eo"))
        .find_map(|l| l.split_whitespace().next()?.parse().ok())
}

unsafe extern "C" {
    fn kill(pid: i32, sig: i32) -> i32;
}

/// Docker closes `DOCKER_CLI_PLUGIN_SOCKET` when the user interrupts it: the plugin must see the
/// end of file and cancel (here: roll the create back), as it does for SIGINT.
#[test]
fn closing_the_plugin_socket_cancels_like_sigint() {
    use std::os::linux::net::SocketAddrExt;
    let home = DockerHome::new();
    let user = User::new();
    user.config(&["--public-ip-delay", "60"]);
    let name = unique("sock");
    let socket_name = format!("docker-euca-test-{name}");
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(socket_name.as_bytes()).unwrap();
    let listener = std::os::unix::net::UnixListener::bind_addr(&addr).unwrap();
    let mut cmd = Command::new(crate::support::PLUGIN);
    cmd.args(create_args(&name, &[]))
        .env("DOCKER_CONFIG", home.path())
        .env("DOCKER_CLI_PLUGIN_SOCKET", format!("@{socket_name}"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    user.apply(&mut cmd);
    let child = cmd.spawn().unwrap();
    let (conn, _) = listener.accept().unwrap();
    wait_until_launched(&home, &name);
    drop(conn);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("rolled back"),
        "{}",
        text(&out)
    );
    assert_nothing_left(&user, &name);
}

#[test]
fn throttling_is_backed_off_and_absorbed() {
    let home = DockerHome::new();
    let user = User::new();
    user.fault("DescribeAvailabilityZones", &["--throttle", "--count", "2"]);
    let mut cmd = home.docker();
    cmd.args([
        "euca",
        "login",
        "--profile",
        "throttled",
        "--endpoint",
        &env()["EC2_URL"],
        "--access-key",
        &user.access_key,
        "--secret-key-stdin",
    ])
    .env("DOCKER_EUCA_KEYRING", "keyutils")
    .stdin(std::process::Stdio::piped())
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), user.secret_key.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "two RequestLimitExceeded answers must be retried: {}",
        text(&out)
    );
    assert_eq!(
        user.stats().get("DescribeAvailabilityZones"),
        Some(&3),
        "two throttled calls, then the one that worked"
    );
}

#[test]
fn an_injected_fault_after_launch_rolls_back() {
    let home = DockerHome::new();
    let user = User::new();
    user.fault("CreateTags", &["--status", "503", "--count", "20"]);
    let name = unique("fault");
    let out = run(&mut euca(&home, &user, &create_args(&name, &[])));
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("CreateTags failed"), "{err}");
    assert!(err.contains("rolled back"), "{err}");
    assert_nothing_left(&user, &name);
    testbed_clear(&user);
}

fn testbed_clear(user: &User) {
    crate::support::testbed::testbed(&["fault", "--clear", "--access-key", &user.access_key]);
}

#[test]
fn bad_input_fails_clearly_and_creates_nothing() {
    let home = DockerHome::new();
    let user = User::new();
    let image = env()["EUCA_TESTBED_IMAGE"].clone();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["create", "-x", "--image", &image],
            "unexpected argument",
        ),
        (
            vec!["create", "default", "--image", &image],
            "invalid machine name",
        ),
        (
            vec!["create", "web/1", "--image", &image],
            "invalid machine name",
        ),
        (
            vec![
                "create",
                "okname",
                "--image",
                &image,
                "--allow-cidr",
                "10.0.0.0/40",
            ],
            "prefix length",
        ),
        (
            vec![
                "create",
                "okname",
                "--image",
                &image,
                "--open-port",
                "99999",
            ],
            "not a port number",
        ),
        (
            vec![
                "create",
                "okname",
                "--image",
                &image,
                "--open-port",
                "80/icmp",
            ],
            "must be tcp or udp",
        ),
        (
            vec!["create", "okname", "--image", "emi-doesnotexist"],
            "image \"emi-doesnotexist\" does not exist",
        ),
        (
            vec![
                "create",
                "okname",
                "--image",
                &image,
                "--endpoint",
                "http://127.0.0.1:9/services/compute/",
            ],
            "no answer from the EC2 endpoint",
        ),
        (
            vec![
                "create",
                "okname",
                "--image",
                &image,
                "--endpoint",
                "ftp://x/",
            ],
            "not a usable EC2 endpoint",
        ),
    ];
    for (args, needle) in cases {
        let out = run(&mut euca(&home, &user, &args));
        assert_clear_failure(&out, needle);
    }
    // Missing credentials: no env keys, no profile, no ~/.euca.
    let mut cmd = home.docker();
    cmd.args([
        "euca",
        "create",
        "okname",
        "--image",
        &image,
        "--endpoint",
        &env()["EC2_URL"],
    ])
    .env_remove("AWS_ACCESS_KEY_ID")
    .env_remove("AWS_SECRET_ACCESS_KEY")
    .env("HOME", home.path())
    .env("DOCKER_EUCA_KEYRING", "keyutils");
    let out = run(&mut cmd);
    assert_clear_failure(&out, "no access keys are configured");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("hint: run `docker euca login"),
        "{}",
        text(&out)
    );

    assert!(
        Store::new(home.path()).list().unwrap().is_empty(),
        "a failed create left a record"
    );
    let stats = user.stats();
    for action in ["RunInstances", "CreateSecurityGroup", "ImportKeyPair"] {
        assert_eq!(
            stats.get(action),
            None,
            "bad input reached {action}: {stats:?}"
        );
    }
    assert_nothing_left(&user, "okname");
}

#[test]
fn rm_of_an_unknown_machine_and_without_confirmation() {
    let home = DockerHome::new();
    let user = User::new();
    let out = run(&mut euca(&home, &user, &["rm", "-y", "nosuch"]));
    assert_clear_failure(&out, "machine \"nosuch\" does not exist");
}
