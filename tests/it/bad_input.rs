//! Bad input, one table for every command (issue 10). Each case is refused in one clear line
//! and changes nothing:
//!
//! - a command line clap cannot parse exits 2 with clap's own `error: ` line; everything docker
//!   euca itself refuses starts with `docker euca: ` and is followed by a `hint: ` line; either
//!   way the first line names the problem (the case's needle), and nothing panics;
//! - nothing that makes or changes something reaches the cloud: every case runs as a fresh
//!   testbed user, whose calls the testbed counts (the one exception, an instance type only the
//!   cloud can refuse, must leave nothing behind instead);
//! - no file under the case's own `DOCKER_CONFIG` changes (checksums before and after; it may
//!   hold a record, a profile or a context the case needs).
//!
//! The cases run on a few threads at once.

use std::{
    collections::{BTreeMap, BTreeSet},
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Output},
    sync::atomic::{AtomicUsize, Ordering},
};

use base64::Engine;
use docker_euca::{
    context::{ContextMeta, ContextStore},
    credentials::{Profile, Profiles},
    names::MachineName,
    store::{MachineRecord, MachineState, Store},
};
use sha2::{Digest, Sha256};

use crate::support::{
    DockerHome, run_with_input,
    testbed::{User, block_on, env, groups_named_for, testbed, unique},
    text,
};

const THREADS: usize = 8;

/// A new machine's name may have 32 characters (`names::MAX_NAME_LEN`).
const NAME_33: &str = "abcdefghijabcdefghijabcdefghijabc";
const NAME_70: &str = "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij";

/// Calls that make or change something in the cloud.
const CHANGING_CALLS: &[&str] = &[
    "CreateSecurityGroup",
    "ImportKeyPair",
    "RunInstances",
    "CreateTags",
    "AuthorizeSecurityGroupIngress",
    "CreateKeyPair",
    "DeleteSecurityGroup",
    "DeleteKeyPair",
    "DeleteTags",
    "RevokeSecurityGroupIngress",
    "StartInstances",
    "StopInstances",
    "RebootInstances",
    "TerminateInstances",
];

/// The kind of refusal, each with its own rule for the first lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// clap cannot parse the command line: exit 2, first line `error: …`.
    Usage,
    /// docker euca refuses: first line `docker euca: …`, second line `hint: …`.
    Refused,
}

/// What the case's `DOCKER_CONFIG` holds beforehand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Setup {
    Empty,
    /// Record `bare1`, of a create that never got past its first step: no endpoint, no
    /// instance, no address, no docker endpoint, no context.
    Bare,
    /// `machines/broken1/machine.json` that is not JSON.
    Damaged,
    /// Record `inst1` of an instance on the testbed, made by the case's user.
    Instance,
    /// Record `badca1` like `inst1`, with a CA bundle recorded that is not PEM.
    BadCaRecord,
    /// Profile `badca` of the testbed whose CA bundle is not PEM.
    BadCaProfile,
    /// Record `ctx1` with its docker context, and a `config.json` that is not JSON.
    BadConfigJson,
    /// The store's id already made (a create that gets as far as the cloud makes it).
    StoreId,
}

/// How the plugin is run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    /// `docker euca …` through the real docker CLI, as users run it.
    Docker,
    /// The plugin binary itself: where the docker CLI would speak first (its own warning about
    /// a damaged `config.json`, a `DOCKER_CONFIG` it cannot read) or handle the flag itself.
    Plugin,
}

/// Whose credentials the environment holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Creds {
    /// The case's testbed user (`AWS_ACCESS_KEY_ID`, `EC2_URL`, the testbed's D-Bus).
    User,
    /// None at all: no `AWS_*`/`EC2_*`, `HOME` without `~/.euca`, no profile, no Secret Service.
    Nothing,
}

/// What the cloud may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cloud {
    /// No call that makes or changes anything.
    Untouched,
    /// A call that makes something (the launch, the group, the key pair) is refused by the
    /// cloud (no pre-check can know what it offers): what was made before it is rolled back and
    /// nothing is left (`{name}` is the machine).
    RolledBack,
}

#[derive(Debug, Clone, Copy)]
struct Case {
    /// After `euca`; `{…}` placeholders are filled in by [`placeholders`].
    args: &'static [&'static str],
    expect: Expect,
    /// What the first line must say.
    needle: &'static str,
    setup: Setup,
    /// Set after the credentials (placeholders filled in).
    env: &'static [(&'static str, &'static str)],
    creds: Creds,
    via: Via,
    /// Standard input (placeholders filled in); none: an empty pipe, never a terminal.
    stdin: Option<&'static str>,
    cloud: Cloud,
}

const fn usage(args: &'static [&'static str], needle: &'static str) -> Case {
    Case {
        args,
        expect: Expect::Usage,
        needle,
        setup: Setup::Empty,
        env: &[],
        creds: Creds::User,
        via: Via::Docker,
        stdin: None,
        cloud: Cloud::Untouched,
    }
}

const fn refused(args: &'static [&'static str], needle: &'static str) -> Case {
    Case {
        expect: Expect::Refused,
        ..usage(args, needle)
    }
}

impl Case {
    const fn on(self, setup: Setup) -> Case {
        Case { setup, ..self }
    }

    const fn with_env(self, env: &'static [(&'static str, &'static str)]) -> Case {
        Case { env, ..self }
    }

    const fn plugin_itself(self) -> Case {
        Case {
            via: Via::Plugin,
            ..self
        }
    }

    const fn stdin(self, input: &'static str) -> Case {
        Case {
            stdin: Some(input),
            ..self
        }
    }

    const fn without_credentials(self) -> Case {
        Case {
            creds: Creds::Nothing,
            ..self
        }
    }

    const fn refused_by_the_cloud_at_launch(self) -> Case {
        Case {
            cloud: Cloud::RolledBack,
            setup: Setup::StoreId,
            ..self
        }
    }
}

const NO_SECRET_SERVICE: &[(&str, &str)] = &[
    ("DOCKER_EUCA_KEYRING", "secret-service"),
    ("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent"),
];
const KEYUTILS: &[(&str, &str)] = &[("DOCKER_EUCA_KEYRING", "keyutils")];
/// A `DOCKER_CONFIG` no one can write to, not even root: a path under a regular file.
const UNWRITABLE_CONFIG: &[(&str, &str)] = &[("DOCKER_CONFIG", "/proc/version/x")];

#[rustfmt::skip] // one case per entry, as compact as it reads
const CASES: &[Case] = &[
    // ---- create: names ----
    usage(&["create", "", "--image", "{image}"], "it is empty"),
    usage(
        &["create", "default", "--image", "{image}"],
        "`default` is docker's own context",
    ),
    usage(&["create", NAME_33, "--image", "{image}"], "at most 32"),
    usage(&["create", NAME_70, "--image", "{image}"], "at most 32"),
    usage(&["create", "wéb", "--image", "{image}"], "'é' is not allowed"),
    usage(&["create", "a/b", "--image", "{image}"], "'/' is not allowed"),
    usage(
        &["create", "../x", "--image", "{image}"],
        "must start with a letter or a digit",
    ),
    usage(
        &["create", "-x", "--image", "{image}"],
        "unexpected argument '-x'",
    ),
    // ---- create: CIDRs, ports, flags clap checks ----
    usage(
        &["create", "web1", "--image", "{image}", "--allow-cidr", "10.0.0.0"],
        "is not a CIDR",
    ),
    usage(
        &["create", "web1", "--image", "{image}", "--allow-cidr", "10.0.0.0/33"],
        "prefix length",
    ),
    usage(
        &["create", "web1", "--image", "{image}", "--allow-cidr", "x/8"],
        "is not an IPv4 address",
    ),
    usage(
        &["create", "web1", "--image", "{image}", "--allow-cidr", "2001:db8::/32"],
        "is not an IPv4 address",
    ),
    usage(
        &["create", "web1", "--image", "{image}", "--open-port", "0"],
        "is not a port number",
    ),
    usage(
        &["create", "web1", "--image", "{image}", "--open-port", "70000"],
        "is not a port number",
    ),
    usage(
        &["create", "web1", "--image", "{image}", "--open-port", "80/icmp"],
        "must be tcp or udp",
    ),
    usage(
        &["create", "web1", "--image", "{image}", "--open-port", "http"],
        "is not a port number",
    ),
    usage(
        &["create", "web1", "--image", "{image}", "--ssh-port", "0"],
        "--ssh-port",
    ),
    usage(
        &["create", "web1", "--image", "{image}", "--ssh-port", "70000"],
        "--ssh-port",
    ),
    usage(
        &["create", "web1", "--image", "{image}", "--instance-type", ""],
        "--instance-type",
    ),
    usage(
        &["create", "web1", "--image", "{image}", "--engine-install", "bogus"],
        "--engine-install",
    ),
    usage(
        &["create", "web1", "--image", "{image}", "--stage-timeout", "soon"],
        "--stage-timeout",
    ),
    usage(
        &["create", "web1", "--image", "{image}", "--keypair-name", "kp"],
        "required arguments were not provided",
    ),
    usage(
        &[
            "create",
            "web1",
            "--image",
            "{image}",
            "--import-keypair",
            "--keypair-name",
            "kp",
            "--ssh-key",
            "{files}/not-a-key",
        ],
        "cannot be used with",
    ),
    usage(
        &["create", "web1", "--image", "{image}", "--ssh-trust-first-key"],
        "required arguments were not provided",
    ),
    // ---- create: what docker euca checks before the cloud ----
    refused(
        &["create", "web1", "--image", "{image}", "--engine-opt", "debug true"],
        "may not be empty or contain whitespace",
    ),
    refused(
        &["create", "web1", "--image", "{image}", "--engine-label", "tier= web"],
        "may not be empty or contain whitespace",
    ),
    refused(
        &["create", "web1", "--image", "{image}", "--engine-env", "A=b c"],
        "may not be empty or contain whitespace",
    ),
    refused(
        &["create", "web1", "--image", "{image}", "--tls-san", "bad name!"],
        "is not a valid DNS name or IP address",
    ),
    refused(
        &["create", "web1", "--image", "{image}", "--no-cloud-init"],
        "without cloud-init nothing can authorise an SSH key",
    ),
    refused(
        &["create", "web1", "--image", "{image}", "--user-data", "{files}/plain.txt"],
        "no user data format cloud-init knows",
    ),
    refused(
        &["create", "web1", "--image", "{image}", "--user-data", "{files}/no-header.yaml"],
        "no user data format cloud-init knows",
    ),
    refused(
        &["create", "web1", "--image", "{image}", "--user-data", "{files}/big.yaml"],
        "over EC2's limit of 16384",
    ),
    refused(
        &["create", "web1", "--image", "{image}", "--user-data", "{files}/user-data.gz"],
        "is not text",
    ),
    refused(
        &["create", "web1", "--image", "{image}", "--user-data", "{files}/empty"],
        "is empty",
    ),
    refused(
        &["create", "web1", "--image", "{image}", "--user-data", "{files}/missing"],
        "cannot read --user-data",
    ),
    // The testbed is a Eucalyptus cloud: AWS-only launch options are refused before any call
    // that makes something, naming the flags.
    refused(
        &["create", "web1", "--image", "{image}", "--root-volume-type", "gp3", "--metadata-hop-limit", "2"],
        "--metadata-hop-limit, --root-volume-type work only in the AWS dialect",
    ),
    refused(
        &["create", "web1", "--image", "{image}", "--root-encrypted=false"],
        "--root-encrypted works only in the AWS dialect",
    ),
    refused(
        &["create", "web1", "--image", "{image}", "--spot", "--spot-fallback", "on-demand"],
        "--spot, --spot-fallback work only in the AWS dialect",
    ),
    refused(
        &["create", "web1", "--image", "{image}", "--no-public-ip"],
        "--no-public-ip works only in the AWS dialect",
    ),
    usage(
        &["create", "web1", "--image", "{image}", "--spot-max-price", "0.05"],
        "required arguments were not provided",
    ),
    usage(
        &["create", "web1", "--image", "{image}", "--spot", "--spot-max-price", "cheap"],
        "is not a price: give dollars per hour, e.g. 0.05",
    ),
    usage(
        &["create", "web1", "--image", "{image}", "--spot", "--spot-max-price", "0"],
        "is not a price",
    ),
    usage(
        &["create", "web1", "--image", "{image}", "--spot", "--spot-fallback", "never"],
        "invalid value 'never'",
    ),
    usage(
        &["create", "web1", "--image", "{image}", "--associate-public-ip", "--no-public-ip"],
        "cannot be used with",
    ),
    usage(
        &["create", "web1", "--image", "{image}", "--dialect", "azure"],
        "invalid value 'azure' for '--dialect <DIALECT>'",
    ),
    usage(
        &["create", "web1", "--image", "{image}", "--metadata-http-tokens", "maybe"],
        "invalid value 'maybe'",
    ),
    refused(
        &[
            "create",
            "web1",
            "--image",
            "{image}",
            "--keypair-name",
            "kp",
            "--ssh-key",
            "{files}/not-a-key",
        ],
        "is not an OpenSSH private key",
    ),
    refused(
        &[
            "create",
            "web1",
            "--image",
            "{image}",
            "--keypair-name",
            "kp",
            "--ssh-key",
            "{files}/pem-rsa",
        ],
        "is not an OpenSSH private key",
    ),
    refused(
        &[
            "create",
            "web1",
            "--image",
            "{image}",
            "--keypair-name",
            "kp",
            "--ssh-key",
            "{files}/locked-key",
        ],
        "protected by a passphrase",
    ),
    refused(
        &[
            "create",
            "web1",
            "--image",
            "{image}",
            "--keypair-name",
            "kp",
            "--ssh-key",
            "{files}/missing",
        ],
        "cannot read --ssh-key",
    ),
    refused(
        &["create", "web2", "--image", "{image}", "--context-name", "ctx1"],
        "a docker context named \"ctx1\" already exists",
    )
    .on(Setup::BadConfigJson)
    .plugin_itself(),
    // ---- create: endpoints, CA bundles, credentials ----
    refused(
        &["create", "web1", "--image", "{image}", "--endpoint", "ec2.example"],
        "must start with http:// or https://",
    ),
    refused(
        &["create", "web1", "--image", "{image}", "--endpoint", "ftp://x/"],
        "is not a usable EC2 endpoint",
    ),
    refused(
        &[
            "create",
            "web1",
            "--image",
            "{image}",
            "--endpoint",
            "http://127.0.0.1:1/services/compute/",
        ],
        "no answer from the EC2 endpoint",
    ),
    refused(
        &["create", "web1", "--image", "{image}", "--endpoint", "{tls}"],
        "no answer from the EC2 endpoint",
    ),
    refused(
        &["create", "web1", "--image", "{image}", "--ca-bundle", "{files}/not-pem.pem"],
        "holds no PEM certificate",
    ),
    refused(
        &["create", "web1", "--image", "{image}", "--ca-bundle", "{files}/missing.pem"],
        "cannot read the CA bundle",
    ),
    refused(
        &["create", "web1", "--image", "{image}", "--profile", "badca"],
        "holds no PEM certificate",
    )
    .on(Setup::BadCaProfile),
    refused(
        &["create", "web1", "--image", "{image}", "--profile", "nosuch"],
        "profile \"nosuch\" does not exist",
    ),
    refused(
        &["create", "web1", "--image", "{image}", "--endpoint", "{endpoint}"],
        "no access keys are configured",
    )
    .without_credentials(),
    refused(
        &["create", "web1", "--image", "{image}"],
        "/proc/version/x",
    )
    .with_env(UNWRITABLE_CONFIG)
    .plugin_itself(),
    // ---- create: what the cloud has ----
    refused(
        &["create", "web1", "--image", "emi-doesnotexist"],
        "image \"emi-doesnotexist\" does not exist",
    ),
    refused(&["create", "web1"], "no image given"),
    refused(
        &["create", "web1", "--image", "{image}", "--zone", "nowhere-9z"],
        "availability zone \"nowhere-9z\" does not exist",
    ),
    refused(
        &["create", "web1", "--image", "{image}", "--subnet", "subnet-00000000"],
        "subnet \"subnet-00000000\" does not exist",
    ),
    refused(
        &["create", "web1", "--image", "{image}", "--security-group", "no-such-group"],
        "security group \"no-such-group\" does not exist",
    ),
    refused(
        &["create", "-q", "{name}", "--image", "{image}", "--instance-type", "x9.huge"],
        "x9.huge",
    )
    .refused_by_the_cloud_at_launch(),
    // The AWS dialect forced on a Eucalyptus cloud: without --subnet it finds no default VPC
    // (before anything is made); in a subnet, the strict binding refuses it by name (tags at
    // creation on the group first; the launch's IMDSv2 and typed root volume would follow).
    refused(
        &["create", "-q", "{name}", "--image", "{image}", "--dialect", "aws"],
        "has no default VPC subnet",
    ),
    refused(
        &["create", "-q", "{name}", "--image", "{image}", "--dialect", "aws", "--subnet", "{subnet}"],
        "Failed to bind the following fields",
    )
    .refused_by_the_cloud_at_launch(),
    // ---- rm ----
    usage(&["rm"], "required arguments were not provided"),
    usage(&["rm", "-y", "wéb"], "'é' is not allowed"),
    refused(&["rm", "-y", "nosuch"], "machine \"nosuch\" does not exist"),
    refused(&["rm", "bare1"], "refusing to remove bare1 without confirmation").on(Setup::Bare),
    // ---- ls ----
    refused(&["ls", "--format", "{{if}}"], "is not a template docker-euca can read"),
    refused(&["ls", "--format", "{{.Nope"], "is not a template docker-euca can read"),
    refused(&["ls", "--filter", "color=red"], "unknown filter"),
    usage(&["ls", "--timeout", "soon"], "--timeout"),
    // ---- inspect, status, ip, url, config, use ----
    refused(&["inspect", "nosuch"], "machine \"nosuch\" does not exist"),
    refused(
        &["inspect", "--format", "{{.Nope", "bare1"],
        "is not a template docker-euca can read",
    )
    .on(Setup::Bare),
    refused(&["inspect", "broken1"], "is damaged").on(Setup::Damaged),
    usage(&["inspect", "-x"], "unexpected argument '-x'"),
    refused(&["status", "nosuch"], "machine \"nosuch\" does not exist"),
    refused(&["status", "bare1"], "has no instance").on(Setup::Bare),
    refused(&["status", "broken1"], "is damaged").on(Setup::Damaged),
    refused(
        &["status", "inst1", "--profile", "nosuch"],
        "profile \"nosuch\" does not exist",
    )
    .on(Setup::Instance),
    refused(
        &["status", "inst1", "--endpoint", "http://127.0.0.1:9/services/compute/"],
        "was made on",
    )
    .on(Setup::Instance),
    refused(
        &["status", "inst1", "--region", "elsewhere"],
        "made in region",
    )
    .on(Setup::Instance),
    refused(&["status", "badca1"], "holds no PEM certificate").on(Setup::BadCaRecord),
    refused(&["ip", "nosuch"], "machine \"nosuch\" does not exist"),
    refused(&["ip", "bare1"], "has no address on record").on(Setup::Bare),
    usage(&["url", "../x"], "must start with a letter or a digit"),
    refused(&["url", "bare1"], "has no address on record").on(Setup::Bare),
    refused(&["config", "nosuch"], "machine \"nosuch\" does not exist"),
    refused(&["config", "bare1"], "has no docker endpoint yet").on(Setup::Bare),
    refused(&["use", "nosuch"], "machine \"nosuch\" does not exist"),
    refused(&["use", "bare1"], "docker context \"bare1\" does not exist").on(Setup::Bare),
    refused(&["use", "ctx1"], "is damaged")
        .on(Setup::BadConfigJson)
        .plugin_itself(),
    // ---- env ----
    refused(&["env", "--unset", "web1"], "--unset takes no machine name"),
    refused(&["env", "--shell", "nushell"], "unknown shell \"nushell\""),
    refused(&["env"], "no machine name given"),
    refused(&["env", "bare1"], "has no docker endpoint yet").on(Setup::Bare),
    // ---- ssh, scp ----
    refused(
        &["ssh", "nosuch", "--", "true"],
        "machine \"nosuch\" does not exist",
    ),
    refused(&["ssh", "broken1"], "is damaged").on(Setup::Damaged),
    refused(&["ssh", "bare1", "--", "true"], "has no address on record").on(Setup::Bare),
    usage(&["ssh", "bare1", "--timeout", "soon"], "--timeout"),
    refused(&["scp", "/tmp/a", "/tmp/b"], "neither side names a machine"),
    refused(&["scp", "aa:/x", "bb:/y"], "both sides name a machine"),
    refused(
        &["scp", "nosuch:/x", "{files}/out"],
        "machine \"nosuch\" does not exist",
    ),
    usage(&["scp", "onlyone"], "required arguments were not provided"),
    // ---- start, stop, restart, kill ----
    usage(&["start"], "required arguments were not provided"),
    refused(&["start", "nosuch"], "machine \"nosuch\" does not exist"),
    refused(&["start", "bare1"], "has no instance").on(Setup::Bare),
    refused(&["start", "broken1"], "is damaged").on(Setup::Damaged),
    refused(&["stop", "nosuch"], "machine \"nosuch\" does not exist"),
    usage(&["stop", "wéb"], "'é' is not allowed"),
    refused(&["stop", "badca1"], "holds no PEM certificate").on(Setup::BadCaRecord),
    refused(&["restart", "nosuch"], "machine \"nosuch\" does not exist"),
    usage(&["restart", "bare1", "--timeout", "soon"], "--timeout"),
    usage(&["kill", "../x"], "must start with a letter or a digit"),
    refused(&["kill", "nosuch"], "machine \"nosuch\" does not exist"),
    // ---- regenerate-certs, provision ----
    usage(&["regenerate-certs"], "required arguments were not provided"),
    refused(
        &["regenerate-certs", "nosuch"],
        "machine \"nosuch\" does not exist",
    ),
    refused(&["regenerate-certs", "bare1"], "has no address on record").on(Setup::Bare),
    refused(&["provision", "nosuch"], "machine \"nosuch\" does not exist"),
    refused(&["provision", "broken1"], "is damaged").on(Setup::Damaged),
    usage(
        &["provision", "--", "-x"],
        "must start with a letter or a digit",
    ),
    // ---- login, logout, profiles ----
    refused(
        &["login", "--endpoint", "ec2.example", "--access-key", "AKIEXAMPLE", "--secret-key-stdin"],
        "must start with http:// or https://",
    )
    .stdin("secret"),
    refused(
        &["login", "--endpoint", "ftp://x", "--access-key", "AKIEXAMPLE", "--secret-key-stdin"],
        "is not a usable EC2 endpoint",
    )
    .stdin("secret"),
    refused(
        &[
            "login",
            "--endpoint",
            "http://127.0.0.1:1/services/compute/",
            "--access-key",
            "AKIEXAMPLE",
            "--secret-key-stdin",
        ],
        "no answer from the EC2 endpoint",
    )
    .stdin("secret"),
    refused(
        &["login", "--endpoint", "{tls}", "--access-key", "AKIEXAMPLE", "--secret-key-stdin"],
        "no answer from the EC2 endpoint",
    )
    .stdin("secret"),
    refused(
        &[
            "login",
            "--endpoint",
            "{endpoint}",
            "--access-key",
            "AKIEXAMPLE",
            "--secret-key-stdin",
            "--ca-bundle",
            "{files}/not-pem.pem",
        ],
        "holds no PEM certificate",
    )
    .stdin("secret"),
    usage(
        &["login", "--endpoint", "{endpoint}", "--allow-cidr", "10.0.0.0"],
        "is not a CIDR",
    ),
    usage(
        &["login", "--endpoint", "{endpoint}", "--allow-cidr", "x/8"],
        "is not an IPv4 address",
    ),
    usage(
        &["login", "--secret-key", "x", "--secret-key-stdin"],
        "cannot be used with",
    ),
    refused(
        &["login", "--access-key", "AKIEXAMPLE", "--secret-key-stdin"],
        "no endpoint given",
    )
    .stdin("secret"),
    refused(
        &["login", "--endpoint", "{endpoint}", "--secret-key-stdin"],
        "no access key given",
    )
    .stdin("secret"),
    refused(
        &["login", "--endpoint", "{endpoint}", "--access-key", "{access_key}", "--secret-key-stdin"],
        "the secret key on stdin is empty",
    )
    .stdin(""),
    refused(
        &[
            "login",
            "--profile",
            "{name}",
            "--endpoint",
            "{endpoint}",
            "--access-key",
            "{access_key}",
            "--secret-key-stdin",
        ],
        "refused these keys",
    )
    .stdin("not-the-secret"),
    refused(
        &[
            "login",
            "--profile",
            "{name}",
            "--endpoint",
            "{endpoint}",
            "--access-key",
            "{access_key}",
            "--secret-key-stdin",
        ],
        "no OS keyring is available",
    )
    .stdin("{secret_key}")
    .with_env(NO_SECRET_SERVICE),
    refused(&["logout", "--profile", "{name}"], "does not exist").with_env(KEYUTILS),
    usage(&["profiles", "--bogus"], "unexpected argument '--bogus'"),
    // ---- completion, version, the plugin's own command line ----
    usage(&["completion", "nushell"], "invalid value 'nushell'"),
    usage(&["completion"], "required arguments were not provided"),
    usage(&["version", "extra", "more"], "unexpected argument 'more'"),
    refused(&["version", "nosuch"], "machine \"nosuch\" does not exist"),
    usage(&["frobnicate"], "unrecognized subcommand 'frobnicate'"),
    refused(&["--config"], "flag needs an argument: --config").plugin_itself(),
];

#[test]
fn bad_input_is_refused_in_one_clear_line_and_changes_nothing() {
    assert!(CASES.len() >= 60, "only {} cases", CASES.len());
    assert_eq!((NAME_33.len(), NAME_70.len()), (33, 70));
    env(); // the testbed is up before the workers start
    let files = tempfile::Builder::new()
        .prefix("euca-bad-input-")
        .tempdir()
        .expect("tempdir");
    write_files(files.path());
    let dir = files.path();
    let next = AtomicUsize::new(0);
    let next = &next;
    let failures: Vec<String> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..THREADS)
            .map(move |_| {
                scope.spawn(move || {
                    let mut failed = Vec::new();
                    while let Some(case) = CASES.get(next.fetch_add(1, Ordering::Relaxed)) {
                        let problems = run_case(case, dir);
                        println!(
                            "BAD-INPUT command={} passed={} case={:?}",
                            case.args.first().copied().unwrap_or("-"),
                            problems.is_empty(),
                            describe(case)
                        );
                        if !problems.is_empty() {
                            failed.push(format!(
                                "{}:\n  {}",
                                describe(case),
                                problems.join("\n  ")
                            ));
                        }
                    }
                    failed
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("a worker panicked"))
            .collect()
    });
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n\n")
    );
}

/// One case, start to end; what went wrong, if anything.
fn run_case(case: &Case, files: &Path) -> Vec<String> {
    let user = User::new();
    let home = DockerHome::new();
    prepare(case.setup, &home, &user, files);
    let vars = placeholders(&user, &home, files);
    let before = snapshot(home.path());
    let input = case.stdin.map(|s| fill(s, &vars)).unwrap_or_default();
    let out = run_with_input(&mut command(case, &user, &home, &vars), input.as_bytes());
    let mut problems = check_output(case, &out);
    problems.extend(check_store(&before, &snapshot(home.path())));
    problems.extend(check_cloud(case, &user, &vars));
    if !problems.is_empty() {
        problems.push(text(&out));
    }
    problems
}

fn describe(case: &Case) -> String {
    let program = match case.via {
        Via::Docker => "docker euca",
        Via::Plugin => "docker-euca",
    };
    format!("{program} {} ({:?})", case.args.join(" "), case.setup)
}

/// What `{…}` in a case's arguments, environment and input stands for.
fn placeholders(user: &User, home: &DockerHome, files: &Path) -> Vec<(&'static str, String)> {
    let endpoint = env()["EC2_URL"].clone();
    vec![
        ("{image}", env()["EUCA_TESTBED_IMAGE"].clone()),
        ("{subnet}", env()["EUCA_TESTBED_SUBNET"].clone()),
        // TLS spoken to the testbed's plain HTTP port.
        ("{tls}", endpoint.replacen("http://", "https://", 1)),
        ("{endpoint}", endpoint),
        ("{files}", files.display().to_string()),
        ("{home}", home.path().display().to_string()),
        ("{access_key}", user.access_key.clone()),
        ("{secret_key}", user.secret_key.clone()),
        ("{name}", unique("bad")),
    ]
}

fn fill(s: &str, vars: &[(&'static str, String)]) -> String {
    vars.iter()
        .fold(s.to_string(), |acc, (key, value)| acc.replace(key, value))
}

/// The files cases point at, shared by all (read only).
fn write_files(dir: &Path) {
    let write = |name: &str, bytes: &[u8]| std::fs::write(dir.join(name), bytes).unwrap();
    write("not-pem.pem", b"this is not a certificate\n");
    write("not-a-key", b"not a key\n");
    write("plain.txt", b"hello, instance\n");
    write("no-header.yaml", b"runcmd:\n  - echo hi\n");
    write("empty", b"");
    // Random base64 text after a #cloud-config line: ~40 KB that gzip cannot bring under 16 KiB.
    let noise: Vec<u8> = (0..30_000).map(|_| rand::random::<u8>()).collect();
    let big = format!(
        "#cloud-config\nwrite_files:\n  - path: /var/tmp/noise\n    content: {}\n",
        base64::engine::general_purpose::STANDARD.encode(noise)
    );
    write("big.yaml", big.as_bytes());
    // Gzipped user data is binary, not text.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(b"#cloud-config\nruncmd: []\n").unwrap();
    write("user-data.gz", &gz.finish().unwrap());
    // Keys ssh-keygen makes: an RSA key in the PEM format (what CreateKeyPair hands out) and an
    // OpenSSH key under a passphrase.
    for (file, extra) in [
        (
            "pem-rsa",
            &["-t", "rsa", "-b", "1024", "-m", "PEM", "-N", ""][..],
        ),
        ("locked-key", &["-t", "ed25519", "-N", "a passphrase"][..]),
    ] {
        let out = Command::new("ssh-keygen")
            .args(["-q", "-C", "bad-input", "-f"])
            .arg(dir.join(file))
            .args(extra)
            .output()
            .expect("run ssh-keygen");
        assert!(out.status.success(), "ssh-keygen {file}: {}", text(&out));
    }
}

/// Puts what the case needs into its `DOCKER_CONFIG` (before the first checksum).
fn prepare(setup: Setup, home: &DockerHome, user: &User, files: &Path) {
    let store = Store::new(home.path());
    let record = |name: &str, change: fn(&mut MachineRecord, &User, &Path)| {
        let mut r = MachineRecord::new(MachineName::new(name).unwrap());
        change(&mut r, user, files);
        store.create(&r).unwrap();
    };
    let not_pem = files.join("not-pem.pem");
    match setup {
        Setup::Empty => {}
        Setup::Bare => record("bare1", |_, _, _| {}),
        Setup::Damaged => {
            let dir = home.path().join("euca/machines/broken1");
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("machine.json"), "{not json").unwrap();
        }
        Setup::Instance => record("inst1", |r, user, _| on_the_testbed(r, user, None)),
        Setup::BadCaRecord => record("badca1", |r, user, files| {
            on_the_testbed(r, user, Some(files.join("not-pem.pem").as_path()))
        }),
        Setup::BadCaProfile => {
            let profile = Profile {
                endpoint: env()["EC2_URL"].clone(),
                region: "eucalyptus".into(),
                access_key_id: user.access_key.clone(),
                ca_bundle: Some(not_pem.clone()),
                ..Default::default()
            };
            Profiles::new(home.path())
                .set("badca", Some(profile))
                .unwrap();
        }
        Setup::BadConfigJson => {
            record("ctx1", |r, _, _| {
                r.engine.context_name = Some("ctx1".into())
            });
            ContextStore::new(home.path())
                .write(
                    &ContextMeta::new("ctx1", "", "tcp://10.213.0.99:2376"),
                    None,
                )
                .unwrap();
            std::fs::write(home.path().join("config.json"), "{not json").unwrap();
        }
        Setup::StoreId => {
            store.id().unwrap();
        }
    }
}

/// A record as a create on the testbed leaves it, as the case's user; its instance needs to
/// exist for no case here (they are all refused before the cloud is asked about it).
fn on_the_testbed(r: &mut MachineRecord, user: &User, ca_bundle: Option<&Path>) {
    let c = &mut r.cloud;
    c.endpoint = Some(env()["EC2_URL"].clone());
    c.region = Some("eucalyptus".into());
    c.profile = Some("default".into());
    c.access_key_id = Some(user.access_key.clone());
    c.ca_bundle = ca_bundle.map(|p| p.display().to_string());
    c.instance_id = Some("i-0123456789abcdef0".into());
    r.state = MachineState::Ready;
}

/// The command for the case: only the environment the case gives (no cloud settings, keyring
/// choice or `~/.euca` inherited from whoever runs the tests).
fn command(
    case: &Case,
    user: &User,
    home: &DockerHome,
    vars: &[(&'static str, String)],
) -> Command {
    let mut cmd = match case.via {
        Via::Docker => {
            let mut cmd = home.docker();
            cmd.arg("euca");
            cmd
        }
        Via::Plugin => home.euca(),
    };
    cmd.args(case.args.iter().map(|a| fill(a, vars)));
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        let inherited_cloud = ["AWS_", "EC2_", "EUCA_"].iter().any(|p| key.starts_with(p));
        let inherited_choice = [
            "DOCKER_EUCA_KEYRING",
            "DOCKER_EUCA_CRASH_AT",
            "DOCKER_EUCA_INTERRUPT_AT",
        ]
        .contains(&key.as_str());
        if inherited_cloud || inherited_choice {
            cmd.env_remove(key);
        }
    }
    cmd.env("HOME", home.path());
    match case.creds {
        Creds::User => user.apply(&mut cmd),
        Creds::Nothing => {
            cmd.env("DOCKER_EUCA_KEYRING", "keyutils")
                .env_remove("DBUS_SESSION_BUS_ADDRESS");
        }
    }
    for (key, value) in case.env {
        cmd.env(key, fill(value, vars));
    }
    cmd
}

/// The exit code and the first lines, by the rule of the case's kind.
fn check_output(case: &Case, out: &Output) -> Vec<String> {
    let mut problems = Vec::new();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let mut lines = stderr.lines();
    let first = lines.next().unwrap_or_default();
    let second = lines.next().unwrap_or_default();
    match out.status.code() {
        Some(0) => problems.push("it succeeded".to_string()),
        Some(101) => problems.push("it panicked (exit 101)".to_string()),
        None => problems.push(format!("it died of a signal ({})", out.status)),
        Some(_) => {}
    }
    if stderr.contains("panicked") {
        problems.push("a panic message on stderr".to_string());
    }
    match case.expect {
        Expect::Usage => {
            if out.status.code() != Some(2) {
                problems.push(format!("a usage error exits 2, not {}", out.status));
            }
            if !first.starts_with("error: ") {
                problems.push(format!(
                    "clap's first line starts with `error: `: {first:?}"
                ));
            }
        }
        Expect::Refused => {
            if !first.starts_with("docker euca: ") {
                problems.push(format!(
                    "the first line must start with `docker euca: `: {first:?}"
                ));
            }
            if !second.starts_with("hint: ") {
                problems.push(format!("the second line must be a `hint: `: {second:?}"));
            }
        }
    }
    if !first.contains(case.needle) {
        problems.push(format!(
            "the first line does not say {:?}: {first:?}",
            case.needle
        ));
    }
    problems
}

/// Every file under `dir` with a digest of its bytes (symlinks by their target). The lock
/// files under `euca/locks/` are left out: the store keeps them forever by design (a waiter
/// never locks a file that was unlinked under it), and an operation takes its machine's lock
/// before it reads the record.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, String> {
    let mut files = BTreeMap::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let rel = path.strip_prefix(dir).expect("under dir").to_path_buf();
            if rel.starts_with("euca/locks") {
                continue;
            }
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_symlink() {
                let target = std::fs::read_link(&path).unwrap_or_default();
                files.insert(rel, format!("-> {}", target.display()));
            } else if kind.is_dir() {
                dirs.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap_or_default();
                files.insert(rel, hex::encode(Sha256::digest(bytes)));
            }
        }
    }
    files
}

fn check_store(
    before: &BTreeMap<PathBuf, String>,
    after: &BTreeMap<PathBuf, String>,
) -> Vec<String> {
    let changed: Vec<String> = before
        .keys()
        .chain(after.keys())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .filter(|path| before.get(*path) != after.get(*path))
        .map(|path| path.display().to_string())
        .collect();
    if changed.is_empty() {
        return vec![];
    }
    vec![format!("store files changed: {}", changed.join(", "))]
}

/// What the case's user did to the cloud, by the testbed's count.
fn check_cloud(case: &Case, user: &User, vars: &[(&'static str, String)]) -> Vec<String> {
    let out = testbed(&["stats", "--json", "--access-key", &user.access_key]);
    let stats: serde_json::Value = serde_json::from_str(&out).expect("stats are JSON");
    let count = |kind: &str, action: &str| stats[kind][action].as_u64().unwrap_or(0);
    let changing: Vec<String> = CHANGING_CALLS
        .iter()
        .filter(|a| count("actions", a) > 0)
        .map(|a| format!("{a} ×{}", count("actions", a)))
        .collect();
    match case.cloud {
        Cloud::Untouched if changing.is_empty() => vec![],
        Cloud::Untouched => vec![format!(
            "calls that change the cloud were made: {}",
            changing.join(", ")
        )],
        Cloud::RolledBack => {
            let mut problems = Vec::new();
            let making = ["RunInstances", "CreateSecurityGroup", "ImportKeyPair"];
            if making.iter().all(|a| count("errors", a) == 0) {
                problems.push(format!(
                    "the cloud refused no call that makes something: {stats}"
                ));
            }
            let name = fill("{name}", vars);
            let groups = groups_named_for(user, &name);
            if !groups.is_empty() {
                problems.push(format!("security groups left: {groups:?}"));
            }
            let live: Vec<_> = block_on(user.ec2().instances_tagged(&name))
                .expect("DescribeInstances")
                .into_iter()
                .filter(|i| i.state != "terminated")
                .collect();
            if !live.is_empty() {
                problems.push(format!("instances left: {live:?}"));
            }
            problems
        }
    }
}
