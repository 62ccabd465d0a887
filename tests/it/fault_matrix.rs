//! The fault matrix (issue 10): for each EC2 action a command sends, the testbed injects 500,
//! 503, throttling and a delay past the API timeout, on the first call and on every call. The
//! command either succeeds (the fault absorbed by retries) or fails with one clear line naming
//! the call; afterwards nothing is leaked and `rm` finishes the job. Each case prints one
//! `FAULT-MATRIX` line for `scripts/reliability`.

use std::process::Output;

use crate::support::{
    DockerHome, run,
    testbed::{User, assert_nothing_left, create_ok, env, euca, unique, vm_report},
    text,
};

/// Both streams of a failed command and what the testbed knows of the user's VMs (a start
/// whose machine never answered says why).
fn told(user: &User, out: &Output) -> String {
    format!("{}{}", text(out), vm_report(&user.access_key))
}

/// The API timeout the plugin runs with under a delay fault; the delay sleeps past it. Other
/// faults run with the default timeout (a loaded testbed may take over a second to answer).
const API_TIMEOUT_SECS: &str = "5";
const DELAY_MS: &str = "7000";

#[derive(Debug, Clone, Copy)]
enum Fault {
    Status500,
    Status503,
    Throttle,
    Delay,
}

impl Fault {
    fn args(self) -> Vec<&'static str> {
        match self {
            Fault::Status500 => vec!["--status", "500"],
            Fault::Status503 => vec!["--status", "503"],
            Fault::Throttle => vec!["--throttle"],
            Fault::Delay => vec!["--delay", DELAY_MS],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// The first matching call only: retries must absorb it.
    First,
    /// Every matching call: the command fails, naming the call.
    Every,
}

fn quick_user() -> User {
    let user = User::new();
    user.config(&["--boot-delay", "0.3", "--public-ip-delay", "0.3"]);
    user
}

fn inject(user: &User, action: &str, fault: Fault, scope: Scope) {
    let count = if scope == Scope::First { "1" } else { "1000" };
    let mut args = fault.args();
    args.extend(["--count", count]);
    user.fault(action, &args);
}

fn clear(user: &User) {
    crate::support::testbed::testbed(&["fault", "--clear", "--access-key", &user.access_key]);
}

/// `docker euca ARGS` under `fault`: with the short API timeout when the fault is a delay.
fn euca_under(home: &DockerHome, user: &User, fault: Fault, args: &[&str]) -> Output {
    let mut cmd = euca(home, user, args);
    if matches!(fault, Fault::Delay) {
        cmd.env("DOCKER_EUCA_API_TIMEOUT", API_TIMEOUT_SECS);
    }
    run(&mut cmd)
}

/// Success, or one clear line naming the call (and a hint).
fn check_outcome(
    user: &User,
    label: &str,
    action: &str,
    scope: Scope,
    out: &Output,
) -> &'static str {
    if out.status.success() {
        return "succeeded";
    }
    assert_eq!(
        scope,
        Scope::Every,
        "{label}: a single fault must be absorbed: {}",
        told(user, out)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    let line = err
        .lines()
        .find(|l| l.starts_with("docker euca: "))
        .unwrap_or_default();
    assert!(
        line.contains(action),
        "{label}: the error must name {action}: {line:?}\n{err}"
    );
    assert!(!err.contains("unhandled error"), "{label}: {err}");
    "failed clearly"
}

fn report(command: &str, action: &str, fault: Fault, scope: Scope, outcome: &str) {
    println!(
        "FAULT-MATRIX command={command} action={action} fault={fault:?} scope={scope:?} \
         outcome={outcome:?} leaked=0"
    );
}

/// The create flags that make it send `action` (most actions every create sends).
fn flags_sending(action: &str) -> Vec<String> {
    let flags: Vec<&str> = match action {
        "ImportKeyPair" | "DeleteKeyPair" => vec!["--import-keypair"],
        "DescribeAvailabilityZones" => vec!["--zone", &env()["EUCA_TESTBED_ZONE"]],
        "DescribeSubnets" => vec![
            "--subnet",
            &env()["EUCA_TESTBED_SUBNET"],
            "--use-private-address",
        ],
        "GetConsoleOutput" => vec!["--no-cloud-init", "--import-keypair"],
        _ => vec![],
    };
    flags.into_iter().map(str::to_string).collect()
}

/// `create` under the fault; then, with the fault gone, `rm` finishes the job.
fn create_under(action: &str, fault: Fault, scope: Scope) {
    let home = DockerHome::new();
    let user = quick_user();
    let name = unique("fm");
    inject(&user, action, fault, scope);
    let extra = flags_sending(action);
    let mut args = vec![
        "create",
        "-q",
        &name,
        "--image",
        &env()["EUCA_TESTBED_IMAGE"],
    ];
    args.extend(extra.iter().map(String::as_str));
    let out = euca_under(&home, &user, fault, &args);
    let label = format!("create {action} {fault:?} {scope:?}");
    let outcome = check_outcome(&user, &label, action, scope, &out);
    clear(&user);
    if home.path().join(format!("euca/machines/{name}")).exists() {
        let out = run(&mut euca(&home, &user, &["rm", "-y", &name]));
        assert!(
            out.status.success(),
            "{label}: rm after: {}",
            told(&user, &out)
        );
    }
    assert_nothing_left(&user, &name);
    report("create", action, fault, scope, outcome);
}

/// A ready machine; `command` under each fault on `action` in turn (`before` puts the machine
/// in the state the command starts from, `after` brings it back); then `rm` under none.
fn command_under(command: &[&str], action: &str, before: Option<&str>, after: Option<&str>) {
    let home = DockerHome::new();
    let user = quick_user();
    let name = unique("fc");
    create_ok(&home, &user, &name, &["-q"]);
    for scope in [Scope::First, Scope::Every] {
        for fault in [
            Fault::Status500,
            Fault::Status503,
            Fault::Throttle,
            Fault::Delay,
        ] {
            if let Some(step) = before {
                let out = run(&mut euca(&home, &user, &[step, &name]));
                assert!(out.status.success(), "{step} before: {}", told(&user, &out));
            }
            inject(&user, action, fault, scope);
            let mut args = command.to_vec();
            let filter = format!("name={name}");
            if command[0] == "ls" {
                args.extend(["--filter", &filter]);
            } else {
                args.push(&name);
            }
            let out = euca_under(&home, &user, fault, &args);
            let label = format!("{} {action} {fault:?} {scope:?}", command.join(" "));
            // ls reports a cloud that fails in its ERRORS column, and still lists the machine.
            let outcome = if command[0] == "ls" {
                assert!(out.status.success(), "{label}: {}", told(&user, &out));
                let listed = String::from_utf8_lossy(&out.stdout);
                assert!(listed.contains(&name), "{label}: {listed}");
                if scope == Scope::Every {
                    assert!(
                        listed.contains(action),
                        "{label}: the row must name {action}: {listed}"
                    );
                    "listed with the error"
                } else {
                    "succeeded"
                }
            } else {
                check_outcome(&user, &label, action, scope, &out)
            };
            clear(&user);
            if let Some(again) = after {
                let out = run(&mut euca(&home, &user, &[again, &name]));
                assert!(
                    out.status.success(),
                    "{label}: {again} after: {}",
                    told(&user, &out)
                );
            }
            report(command[0], action, fault, scope, outcome);
        }
    }
    let out = run(&mut euca(&home, &user, &["rm", "-y", &name]));
    assert!(out.status.success(), "{}", told(&user, &out));
    assert_nothing_left(&user, &name);
}

/// `rm` under the fault (a fresh machine per case: a working rm removes it); then `rm` again.
fn rm_under(action: &str, fault: Fault, scope: Scope) {
    let home = DockerHome::new();
    let user = quick_user();
    let name = unique("fr");
    let extra = flags_sending(action);
    let mut args = vec!["-q"];
    args.extend(extra.iter().map(String::as_str));
    create_ok(&home, &user, &name, &args);
    inject(&user, action, fault, scope);
    let out = euca_under(&home, &user, fault, &["rm", "-y", &name]);
    let label = format!("rm {action} {fault:?} {scope:?}");
    let outcome = check_outcome(&user, &label, action, scope, &out);
    clear(&user);
    if home.path().join(format!("euca/machines/{name}")).exists() {
        let out = run(&mut euca(&home, &user, &["rm", "-y", &name]));
        assert!(
            out.status.success(),
            "{label}: rm again: {}",
            told(&user, &out)
        );
    }
    assert_nothing_left(&user, &name);
    report("rm", action, fault, scope, outcome);
}

macro_rules! all_faults {
    ($run:ident, $($test:ident: $action:literal;)*) => {
        $(
            #[test]
            fn $test() {
                for scope in [Scope::First, Scope::Every] {
                    for fault in [Fault::Status500, Fault::Status503, Fault::Throttle, Fault::Delay] {
                        $run($action, fault, scope);
                    }
                }
            }
        )*
    };
}

all_faults!(create_under,
    create_describe_images: "DescribeImages";
    create_create_security_group: "CreateSecurityGroup";
    create_authorize_ingress: "AuthorizeSecurityGroupIngress";
    create_run_instances: "RunInstances";
    create_create_tags: "CreateTags";
    create_describe_instances: "DescribeInstances";
    create_import_key_pair: "ImportKeyPair";
    create_describe_availability_zones: "DescribeAvailabilityZones";
    create_describe_subnets: "DescribeSubnets";
    create_get_console_output: "GetConsoleOutput";
);

all_faults!(rm_under,
    rm_describe_instances: "DescribeInstances";
    rm_terminate_instances: "TerminateInstances";
    rm_describe_security_groups: "DescribeSecurityGroups";
    rm_delete_security_group: "DeleteSecurityGroup";
    rm_delete_key_pair: "DeleteKeyPair";
);

#[test]
fn ls_describe_instances() {
    let ls = ["ls", "--format", "{{.Name}} {{.State}} {{.Error}}"];
    command_under(&ls, "DescribeInstances", None, None);
}

#[test]
fn stop_stop_instances() {
    command_under(&["stop"], "StopInstances", None, Some("start"));
}

#[test]
fn stop_describe_instances() {
    command_under(&["stop"], "DescribeInstances", None, Some("start"));
}

#[test]
fn start_start_instances() {
    command_under(&["start"], "StartInstances", Some("stop"), Some("start"));
}

#[test]
fn start_describe_instances() {
    command_under(&["start"], "DescribeInstances", Some("stop"), Some("start"));
}

/// The VM side. SSH that refuses connections: the create fails in one line naming the port
/// and what the security group admits, and rolls back. (A host key mismatch and a daemon that
/// cannot start are in provision_flow.rs.)
#[test]
fn ssh_refusing_connections_fails_clearly_and_rolls_back() {
    let home = DockerHome::new();
    let user = quick_user();
    let name = unique("fs");
    let image = env()["EUCA_TESTBED_IMAGE"].clone();
    let out = run(&mut euca(
        &home,
        &user,
        &[
            "create",
            &name,
            "--image",
            &image,
            "--ssh-port",
            "2222",
            "--stage-timeout",
            "6",
        ],
    ));
    assert_ne!(out.status.code(), Some(0), "{}", told(&user, &out));
    let err = String::from_utf8_lossy(&out.stderr);
    let line = err
        .lines()
        .find(|l| l.starts_with("docker euca: "))
        .unwrap_or_default();
    assert!(
        line.contains("port 2222") && line.contains("did not open"),
        "{err}"
    );
    assert!(
        err.contains("hint: ") && err.contains("--allow-cidr"),
        "{err}"
    );
    assert!(err.contains("rolled back"), "{err}");
    assert_nothing_left(&user, &name);
    println!(
        "FAULT-MATRIX command=create action=SSH fault=Refused scope=Every outcome=\"failed clearly\" leaked=0"
    );
}

/// cloud-init reporting an error (a failing runcmd) while the engine is present: private
/// clouds without a mirror do exactly that; the create carries on and the machine works.
#[test]
fn cloud_init_reporting_an_error_with_the_engine_present_still_creates() {
    let home = DockerHome::new();
    let user = quick_user();
    let name = unique("fe");
    let user_data = home.path().join("failing.yaml");
    std::fs::write(
        &user_data,
        "#cloud-config\nruncmd:\n  - [sh, -c, 'exit 3']\n",
    )
    .unwrap();
    create_ok(
        &home,
        &user,
        &name,
        &["-q", "--user-data", user_data.to_str().unwrap()],
    );
    let id = crate::support::testbed::record(&home, &name)
        .cloud
        .instance_id
        .unwrap();
    let status = crate::support::testbed::testbed(&[
        "exec",
        &id,
        "--",
        "sh",
        "-c",
        "cloud-init status || true",
    ]);
    assert!(
        status.contains("error"),
        "cloud-init must have reported the error: {status}"
    );
    println!(
        "FAULT-MATRIX command=create action=cloud-init fault=Error scope=Every outcome=\"succeeded\" leaked=0"
    );
    let out = run(home.docker().args(["--context", &name, "version"]));
    assert!(out.status.success(), "{}", told(&user, &out));
    let out = run(&mut euca(&home, &user, &["rm", "-y", &name]));
    assert!(out.status.success(), "{}", told(&user, &out));
    assert_nothing_left(&user, &name);
}
