//! login/logout/profiles against the testbed's real Secret Service and the kernel keyring; a
//! wrong secret stores nothing; no secret ever lands in a file or on a command line.

use std::{
    io::Write,
    process::{Command, Stdio},
};

use crate::support::{
    DockerHome, ok, run,
    testbed::{User, env, unique},
    text,
};

/// `docker euca login` with the secret on stdin; `keyring` picks the backend.
fn login(
    home: &DockerHome,
    user: &User,
    profile: &str,
    secret: &str,
    keyring: &str,
) -> std::process::Output {
    let mut cmd = home.docker();
    cmd.args([
        "euca",
        "login",
        "--profile",
        profile,
        "--endpoint",
        &env()["EC2_URL"],
        "--access-key",
        &user.access_key,
        "--secret-key-stdin",
    ]);
    backend(&mut cmd, keyring);
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{secret}\n").as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn backend(cmd: &mut Command, keyring: &str) {
    cmd.env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("EC2_URL");
    match keyring {
        "secret-service" => {
            cmd.env(
                "DBUS_SESSION_BUS_ADDRESS",
                &env()["DBUS_SESSION_BUS_ADDRESS"],
            )
            .env("DOCKER_EUCA_KEYRING", "secret-service");
        }
        _ => {
            cmd.env_remove("DBUS_SESSION_BUS_ADDRESS")
                .env("DOCKER_EUCA_KEYRING", "keyutils");
        }
    }
}

/// Every byte of every file under `dir`.
fn files_contain(dir: &std::path::Path, needle: &str) -> Vec<String> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_symlink() {
                continue;
            }
            if p.is_dir() {
                stack.push(p);
            } else if std::fs::read(&p)
                .map(|b| String::from_utf8_lossy(&b).contains(needle))
                .unwrap_or(false)
            {
                hits.push(p.display().to_string());
            }
        }
    }
    hits
}

fn round_trip(keyring: &str) {
    let home = DockerHome::new();
    let user = User::new();
    let profile = unique("p");
    let out = login(&home, &user, &profile, &user.secret_key, keyring);
    assert!(out.status.success(), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("Login succeeded"), "{said}");
    if keyring == "keyutils" {
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("does not survive a reboot"),
            "{}",
            text(&out)
        );
    } else {
        assert!(said.contains("Secret Service"), "{said}");
    }
    assert!(
        user.stats().contains_key("DescribeAvailabilityZones"),
        "login must check the keys with a real call"
    );

    let mut list = home.docker();
    list.args(["euca", "profiles"]);
    backend(&mut list, keyring);
    let listed = ok(&mut list);
    assert!(
        listed.contains(&profile) && listed.contains(&user.access_key),
        "{listed}"
    );
    assert!(!listed.contains(&user.secret_key));

    // The secret is in the keyring and nowhere under DOCKER_CONFIG.
    assert!(files_contain(home.path(), &user.secret_key).is_empty());
    let profiles = std::fs::read_to_string(home.path().join("euca/profiles.json")).unwrap();
    assert!(profiles.contains(&user.access_key));
    assert_eq!(
        docker_euca::fsutil::mode_of(&home.path().join("euca/profiles.json")),
        Some(0o600)
    );

    let mut logout = home.docker();
    logout.args(["euca", "logout", "--profile", &profile]);
    backend(&mut logout, keyring);
    ok(&mut logout);
    let mut again = home.docker();
    again.args(["euca", "logout", "--profile", &profile]);
    backend(&mut again, keyring);
    let out = run(&mut again);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("does not exist"),
        "{}",
        text(&out)
    );
}

#[test]
fn login_logout_profiles_with_the_secret_service() {
    round_trip("secret-service");
}

#[test]
fn login_logout_profiles_with_the_kernel_keyring() {
    round_trip("keyutils");
}

#[test]
fn a_wrong_secret_is_refused_and_nothing_is_stored() {
    let home = DockerHome::new();
    let user = User::new();
    let out = login(&home, &user, "default", "not-the-secret", "secret-service");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("refused these keys; nothing was stored"),
        "{err}"
    );
    assert!(err.contains("hint:"), "{err}");
    assert!(!home.path().join("euca/profiles.json").exists());
}

#[test]
fn secret_key_flag_warns_and_never_shows_in_ps_when_read_from_stdin() {
    let home = DockerHome::new();
    let user = User::new();
    // While a login reading stdin waits, its command line holds no secret.
    let mut cmd = home.docker();
    cmd.args([
        "euca",
        "login",
        "--profile",
        "ps",
        "--endpoint",
        &env()["EC2_URL"],
        "--access-key",
        &user.access_key,
        "--secret-key-stdin",
    ]);
    backend(&mut cmd, "secret-service");
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let ps = ok(Command::new("ps").args(["-eo", "args"]));
    assert!(!ps.contains(&user.secret_key));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(user.secret_key.as_bytes())
        .unwrap();
    assert!(child.wait_with_output().unwrap().status.success());

    let mut flag = home.docker();
    flag.args([
        "euca",
        "login",
        "--profile",
        "flag",
        "--endpoint",
        &env()["EC2_URL"],
        "--access-key",
        &user.access_key,
        "--secret-key",
        &user.secret_key,
    ]);
    backend(&mut flag, "secret-service");
    let out = run(&mut flag);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("insecure"),
        "{}",
        text(&out)
    );
}

#[test]
fn euca2ools_ini_and_eucarc_import() {
    let home = DockerHome::new();
    let user = User::new();
    let tmp = tempfile::tempdir().unwrap();
    let ini = tmp.path().join("euca.ini");
    std::fs::write(&ini, format!(
        "[global]\ndefault-region = eucalyptus\n[region eucalyptus]\nec2-url = {}\nuser = me\n[user me]\nkey-id = {}\nsecret-key = {}\n",
        env()["EC2_URL"], user.access_key, user.secret_key
    )).unwrap();
    let mut cmd = home.docker();
    cmd.args(["euca", "login", "--profile", "ini", "--from-euca2ools"])
        .arg(&ini);
    backend(&mut cmd, "secret-service");
    let out = ok(&mut cmd);
    assert!(out.contains("Login succeeded"), "{out}");

    let rc = tmp.path().join("eucarc");
    std::fs::write(&rc, format!(
        "EUCA_KEY_DIR=$(cd $(dirname ${{BASH_SOURCE:-$0}}); pwd -P)\nexport EC2_URL={}\nexport EC2_ACCESS_KEY='{}'\nexport EC2_SECRET_KEY='{}'\n",
        env()["EC2_URL"], user.access_key, user.secret_key
    )).unwrap();
    let mut cmd = home.docker();
    cmd.args(["euca", "login", "--profile", "rc", "--from-eucarc"])
        .arg(&rc);
    backend(&mut cmd, "secret-service");
    ok(&mut cmd);
    let profiles: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(home.path().join("euca/profiles.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        profiles["profiles"]["ini"]["access_key_id"],
        user.access_key.as_str()
    );
    assert_eq!(
        profiles["profiles"]["rc"]["endpoint"],
        env()["EC2_URL"].as_str()
    );
    assert!(files_contain(home.path(), &user.secret_key).is_empty());
}

/// On a terminal (util-linux `script` makes one), login asks for the secret with echo off: the
/// typed secret is not in what the terminal shows, the keys work, and echo is back afterwards.
#[test]
fn the_secret_typed_at_the_prompt_is_not_echoed_and_echo_comes_back() {
    use std::io::Read;
    let home = DockerHome::new();
    let user = User::new();
    let line = format!(
        "docker euca login --profile tty --endpoint {} --access-key {}; stty -a",
        env()["EC2_URL"],
        user.access_key
    );
    let mut cmd = Command::new("script");
    cmd.args(["-qec", &line, "/dev/null"])
        .env("DOCKER_CONFIG", home.path())
        .env_remove("DOCKER_HOST")
        .env_remove("DOCKER_CONTEXT");
    backend(&mut cmd, "secret-service");
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let shown = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let reader = {
        let shown = shown.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                shown.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        })
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !String::from_utf8_lossy(&shown.lock().unwrap()).contains("Secret key: ") {
        assert!(
            std::time::Instant::now() < deadline,
            "no prompt: {:?}",
            String::from_utf8_lossy(&shown.lock().unwrap())
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(format!("{}\r", user.secret_key).as_bytes())
        .unwrap();
    let status = child.wait().unwrap();
    drop(stdin);
    reader.join().unwrap();
    let shown = String::from_utf8_lossy(&shown.lock().unwrap()).into_owned();
    assert!(status.success(), "{shown}");
    assert!(shown.contains("Login succeeded"), "{shown}");
    assert!(
        !shown.contains(&user.secret_key),
        "the secret was echoed: {shown}"
    );
    let after = shown.split("Login succeeded").nth(1).unwrap_or_default();
    assert!(
        after.split_whitespace().any(|w| w == "echo")
            && !after.split_whitespace().any(|w| w == "-echo"),
        "echo is not back after the prompt: {after}"
    );
}

/// The AWS shared config in a directory of its own (AWS_CONFIG_FILE and
/// AWS_SHARED_CREDENTIALS_FILE point there), with the variables that name it.
struct AwsFiles {
    dir: tempfile::TempDir,
}

impl AwsFiles {
    fn new(config: &str, credentials: &str) -> AwsFiles {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config"), config).unwrap();
        std::fs::write(dir.path().join("credentials"), credentials).unwrap();
        AwsFiles { dir }
    }

    fn apply(&self, cmd: &mut Command) {
        cmd.env("AWS_CONFIG_FILE", self.dir.path().join("config"))
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                self.dir.path().join("credentials"),
            )
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_REGION")
            .env_remove("AWS_DEFAULT_REGION");
    }
}

/// A profile whose keys come from a `credential_process` (a vault's CLI, here a script that
/// prints them) drives a whole create and rm: keys, and region, from the shared config only.
#[test]
fn a_credential_process_profile_of_the_aws_shared_config_creates_and_removes() {
    let (home, user, audit) = (DockerHome::new(), User::aws(), User::aws());
    let tmp = tempfile::tempdir().unwrap();
    let script = tmp.path().join("vault");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nprintf '{{\"Version\": 1, \"AccessKeyId\": \"%s\", \"SecretAccessKey\": \"%s\"}}' {} {}\n",
            user.access_key, user.secret_key
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let files = AwsFiles::new(
        &format!(
            "[profile tb]\nregion = us-east-1\ncredential_process = {}\n",
            script.display()
        ),
        "",
    );
    let name = unique("aws-process");
    let euca = |args: &[&str]| {
        let mut cmd = home.docker();
        cmd.arg("euca").args(args);
        backend(&mut cmd, "secret-service");
        files.apply(&mut cmd);
        cmd.env("EC2_URL", &env()["EC2_URL"])
            .env("AWS_PROFILE", "tb");
        cmd
    };
    let image = env()["EUCA_TESTBED_IMAGE"].clone();
    ok(&mut euca(&["create", &name, "--image", &image, "-q"]));
    let rec = crate::support::testbed::record(&home, &name);
    assert_eq!(
        rec.cloud.access_key_id.as_deref(),
        Some(user.access_key.as_str())
    );
    assert_eq!(
        rec.cloud.region.as_deref(),
        Some("us-east-1"),
        "the profile's region"
    );
    assert_eq!(rec.cloud.dialect, Some(docker_euca::dialect::Dialect::Aws));
    assert!(files_contain(home.path(), &user.secret_key).is_empty());
    ok(&mut euca(&["rm", "-y", &name]));
    crate::support::testbed::assert_nothing_left(&audit, &name);

    // A process that fails: one line naming the profile, and nothing is made.
    let broken = AwsFiles::new("[profile tb]\ncredential_process = /bin/false\n", "");
    let mut cmd = euca(&["create", &unique("aws-broken"), "--image", &image, "-q"]);
    broken.apply(&mut cmd);
    cmd.env("AWS_PROFILE", "tb");
    let out = run(&mut cmd);
    assert!(!out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.lines()
            .next()
            .unwrap_or_default()
            .contains("profile \"tb\" gave no keys"),
        "{err}"
    );
    assert!(err.contains("hint:"), "{err}");
}

/// `login --from-aws-profile` moves a static key of the shared config into the keyring (the
/// region with it); temporary keys and unknown profiles are refused, storing nothing.
#[test]
fn login_from_an_aws_profile_keeps_only_long_term_keys() {
    let (home, user) = (DockerHome::new(), User::aws());
    let files = AwsFiles::new(
        "[profile work]\nregion = us-east-1\n[profile temp]\nregion = us-east-1\n",
        &format!(
            "[work]\naws_access_key_id = {ak}\naws_secret_access_key = {sk}\n\
             [temp]\naws_access_key_id = {ak}\naws_secret_access_key = {sk}\naws_session_token = tok\n",
            ak = user.access_key,
            sk = user.secret_key
        ),
    );
    let login = |profile: &str, from: &str| {
        let mut cmd = home.docker();
        cmd.args(["euca", "login", "--profile", profile, "--endpoint"])
            .arg(&env()["EC2_URL"])
            .args(["--from-aws-profile", from]);
        backend(&mut cmd, "secret-service");
        files.apply(&mut cmd);
        run(&mut cmd)
    };
    let out = login("fromaws", "work");
    assert!(out.status.success(), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("region us-east-1, aws dialect"), "{said}");
    assert!(
        user.stats().contains_key("DescribeAvailabilityZones"),
        "checked with a real call"
    );
    let profiles = std::fs::read_to_string(home.path().join("euca/profiles.json")).unwrap();
    assert!(profiles.contains(&user.access_key), "{profiles}");
    assert!(files_contain(home.path(), &user.secret_key).is_empty());

    for (from, needle) in [
        ("temp", "gives temporary credentials"),
        ("nosuch", "has no profile \"nosuch\" with keys"),
    ] {
        let profile = unique("refused");
        let out = login(&profile, from);
        assert!(!out.status.success(), "{}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.lines().next().unwrap_or_default().contains(needle),
            "{err}"
        );
        let profiles = std::fs::read_to_string(home.path().join("euca/profiles.json")).unwrap();
        assert!(
            !profiles.contains(&profile),
            "{profile} was stored: {profiles}"
        );
    }
}

/// `--use-instance-role` takes the role's keys from the instance metadata service (the
/// testbed's, IMDSv2, named by AWS_EC2_METADATA_SERVICE_ENDPOINT); without the flag the
/// service is never asked, even with no other keys anywhere.
#[test]
fn instance_role_keys_come_from_the_metadata_service_only_when_asked() {
    let (home, user, audit) = (DockerHome::new(), User::aws(), User::aws());
    let imds = crate::support::testbed::testbed(&["imds", "--access-key", &user.access_key]);
    let endpoint = imds
        .lines()
        .find_map(|l| l.strip_prefix("AWS_EC2_METADATA_SERVICE_ENDPOINT="))
        .unwrap()
        .to_string();
    let asked = || {
        let out = crate::support::testbed::testbed(&["imds", "--json"]);
        serde_json::from_str::<serde_json::Value>(&out).unwrap()["requests"]
            .as_u64()
            .unwrap()
    };
    let files = AwsFiles::new("", "");
    let euca = |args: &[&str]| {
        let mut cmd = home.docker();
        cmd.arg("euca").args(args);
        backend(&mut cmd, "secret-service");
        files.apply(&mut cmd);
        cmd.env("EC2_URL", &env()["EC2_URL"])
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_SERVICE_ENDPOINT", &endpoint);
        cmd
    };
    let image = env()["EUCA_TESTBED_IMAGE"].clone();
    let name = unique("aws-role");

    let out = run(&mut euca(&["create", &name, "--image", &image, "-q"]));
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no access keys are configured"),
        "{}",
        text(&out)
    );
    assert_eq!(
        asked(),
        0,
        "the metadata service was asked without --use-instance-role"
    );

    ok(&mut euca(&[
        "create",
        &name,
        "--image",
        &image,
        "-q",
        "--use-instance-role",
    ]));
    assert!(asked() >= 2, "a token, then the role's keys");
    let rec = crate::support::testbed::record(&home, &name);
    assert_eq!(
        rec.cloud.access_key_id.as_deref(),
        Some(user.access_key.as_str())
    );
    assert!(files_contain(home.path(), &user.secret_key).is_empty());
    // The record remembers where its keys come from: no flag needed any more.
    ok(&mut euca(&["rm", "-y", &name]));
    crate::support::testbed::assert_nothing_left(&audit, &name);
}
