//! An EC2 endpoint served over HTTPS with a private CA, as private Eucalyptus clouds run
//! theirs: the testbed's personality on its TLS port (`EC2_URL_TLS`), its certificate signed by
//! a CA it made (`EUCA_TESTBED_CA`), and a CA that signed nothing of it
//! (`EUCA_TESTBED_OTHER_CA`). With the bundle (on the command line, or kept in the profile)
//! login and create work; without it, or with another CA's, one line says the certificate is
//! not trusted and names `--ca-bundle`, and nothing is made.

use std::process::Command;

use crate::support::{
    DockerHome, run,
    testbed::{User, assert_nothing_left, env, unique},
    text,
};

fn tls_url() -> String {
    env()["EC2_URL_TLS"].clone()
}

/// `docker euca ARGS…` as `user` against the TLS endpoint (its keys in the environment).
fn euca_tls(home: &DockerHome, user: &User, args: &[&str]) -> Command {
    let mut cmd = home.docker();
    cmd.arg("euca").args(args);
    user.apply(&mut cmd);
    cmd.env("EC2_URL", tls_url());
    cmd
}

fn login(
    home: &DockerHome,
    user: &User,
    profile: &str,
    bundle: Option<&str>,
) -> std::process::Output {
    let url = tls_url();
    let mut args = vec!["login", "--profile", profile, "--endpoint", url.as_str()];
    args.extend([
        "--access-key",
        user.access_key.as_str(),
        "--secret-key-stdin",
    ]);
    if let Some(b) = bundle {
        args.extend(["--ca-bundle", b]);
    }
    let mut cmd = euca_tls(home, user, &args);
    cmd.env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{}\n", user.secret_key).as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// The `docker euca:` line names the untrusted certificate, the hint names `--ca-bundle`.
fn assert_untrusted(out: &std::process::Output) {
    assert_eq!(out.status.code(), Some(1), "{}", text(out));
    let err = String::from_utf8_lossy(&out.stderr);
    let mut lines = err.lines();
    let first = lines.next().unwrap_or_default();
    assert!(
        first.starts_with("docker euca: ") && first.contains("is not trusted"),
        "{err}"
    );
    assert!(
        lines
            .next()
            .is_some_and(|h| h.starts_with("hint: ") && h.contains("--ca-bundle")),
        "{err}"
    );
}

#[test]
fn login_and_create_over_https_with_the_private_ca() {
    let home = DockerHome::new();
    let user = User::new();
    let out = login(&home, &user, "tls", Some(&env()["EUCA_TESTBED_CA"]));
    assert!(out.status.success(), "{}", text(&out));
    let profiles: serde_json::Value =
        serde_json::from_slice(&std::fs::read(home.path().join("euca/profiles.json")).unwrap())
            .unwrap();
    assert_eq!(profiles["profiles"]["tls"]["endpoint"], tls_url());
    assert!(
        profiles["profiles"]["tls"]["ca_bundle"]
            .as_str()
            .is_some_and(|b| !b.is_empty()),
        "the bundle is kept in the profile: {profiles}"
    );

    // The profile alone (its bundle) is enough for create: no --ca-bundle, no keys in the env.
    let name = unique("tls");
    let image = env()["EUCA_TESTBED_IMAGE"].clone();
    let mut create = euca_tls(
        &home,
        &user,
        &["create", &name, "--profile", "tls", "--image", &image],
    );
    create
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("EC2_URL");
    let out = run(&mut create);
    assert!(out.status.success(), "{}", text(&out));
    let record: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            home.path()
                .join(format!("euca/machines/{name}/machine.json")),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(record["cloud"]["endpoint"], tls_url());
    assert!(
        user.stats().contains_key("RunInstances"),
        "the launch went through the TLS endpoint as this user"
    );
    let mut rm = euca_tls(&home, &user, &["rm", "-y", &name]);
    rm.env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("EC2_URL");
    let out = run(&mut rm);
    assert!(out.status.success(), "{}", text(&out));
    assert_nothing_left(&user, &name);
}

#[test]
fn without_the_ca_or_with_another_one_the_endpoint_is_refused_and_nothing_is_made() {
    let home = DockerHome::new();
    let user = User::new();
    for bundle in [None, Some(env()["EUCA_TESTBED_OTHER_CA"].as_str())] {
        let out = login(&home, &user, "tls", bundle);
        assert_untrusted(&out);
        assert!(
            !home.path().join("euca/profiles.json").exists(),
            "{}",
            text(&out)
        );
    }
    let name = unique("tlsno");
    let image = env()["EUCA_TESTBED_IMAGE"].clone();
    let url = tls_url();
    let other = env()["EUCA_TESTBED_OTHER_CA"].clone();
    let cases: [Vec<&str>; 2] = [
        vec!["create", &name, "--endpoint", &url, "--image", &image],
        vec![
            "create",
            &name,
            "--endpoint",
            &url,
            "--ca-bundle",
            &other,
            "--image",
            &image,
        ],
    ];
    for args in cases {
        let out = run(&mut euca_tls(&home, &user, &args));
        assert_untrusted(&out);
        assert!(!home.path().join(format!("euca/machines/{name}")).exists());
        assert!(
            !crate::support::text(&run(home.docker().args(["context", "ls", "-q"])))
                .contains(&name)
        );
    }
    // No call ever reached the cloud: the handshake failed first.
    assert!(user.stats().is_empty(), "{:?}", user.stats());
}
