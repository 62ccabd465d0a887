//! `import-machine` against hosts docker-machine made on the testbed, from fixture stores of
//! each driver (`tests/fixtures/docker-machine/`): the real docker CLI reaches the imported
//! hosts, the secret is in the keyring only, the docker-machine store is unchanged but for
//! `--scrub`, docker-machine's group and key pair survive `rm`, and a gone instance leaves
//! nothing behind.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use crate::support::{
    DockerHome,
    dmachine::{
        DmGroup, DmHost, launch, make_group, make_ssh_key, make_store_certs,
        provision_like_docker_machine, render_fixture, snapshot,
    },
    ok, run, server_version,
    testbed::{User, block_on, env, testbed, unique},
    text,
};

/// The plugin through the real docker CLI, with no cloud credentials in the environment:
/// whatever it knows comes from the store it imports, then from its keyring profile.
fn euca(home: &DockerHome, args: &[&str]) -> Command {
    let mut cmd = home.docker();
    cmd.arg("euca")
        .args(args)
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("EC2_URL")
        .env(
            "DBUS_SESSION_BUS_ADDRESS",
            &env()["DBUS_SESSION_BUS_ADDRESS"],
        )
        .env("DOCKER_EUCA_KEYRING", "secret-service");
    cmd
}

fn import(home: &DockerHome, store: &Path, args: &[&str]) -> std::process::Output {
    let mut all = vec!["import-machine", "--storage-path", store.to_str().unwrap()];
    all.extend_from_slice(args);
    run(&mut euca(home, &all))
}

/// The profile's secret as the Secret Service holds it (`None`: no entry).
fn keyring_secret(profile: &str) -> Option<String> {
    let out = run(Command::new("secret-tool")
        .args(["lookup", "service", "docker-euca", "username", profile])
        .env(
            "DBUS_SESSION_BUS_ADDRESS",
            &env()["DBUS_SESSION_BUS_ADDRESS"],
        ));
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Files under `dir` whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &str) -> Vec<PathBuf> {
    snapshot(dir)
        .into_iter()
        .filter(|(_, bytes)| String::from_utf8_lossy(bytes).contains(needle))
        .map(|(p, _)| p)
        .collect()
}

fn instance_state(user: &User, id: &str) -> String {
    block_on(user.ec2().describe_instance(id))
        .unwrap()
        .map(|i| i.state)
        .unwrap_or_else(|| "gone".into())
}

fn tags_of(user: &User, id: &str) -> Vec<(String, String)> {
    block_on(user.ec2().describe_instance(id))
        .unwrap()
        .unwrap()
        .tags
}

fn group_exists(user: &User, group: &DmGroup) -> bool {
    block_on(user.ec2().security_group(&group.id))
        .unwrap()
        .is_some()
}

fn key_pair_exists(user: &User, name: &str) -> bool {
    let out = block_on(user.ec2().sdk().describe_key_pairs().send()).unwrap();
    out.key_pairs().iter().any(|k| k.key_name() == Some(name))
}

fn clean_up(user: &User, group: &DmGroup, hosts: &[&DmHost]) {
    let ec2 = user.ec2();
    for h in hosts {
        let _ = block_on(ec2.terminate_instance(&h.instance_id));
        let _ =
            block_on(ec2.wait_until_terminated(&h.instance_id, std::time::Duration::from_secs(60)));
        let _ = block_on(ec2.delete_key_pair(&h.key_name));
    }
    let _ = block_on(ec2.delete_security_group(&group.id));
}

/// Two amazonec2 hosts in one store: `dm-web` imported with `--scrub` (docker-euca's own
/// certificates), `dm-db` with `--keep-certs` (docker-machine's), the profile made by the
/// first import reused by the second.
#[test]
fn an_amazonec2_store_imports_one_host_scrubbed_and_one_keeping_its_certificates() {
    let user = User::new();
    let home = DockerHome::new();
    let dm = tempfile::tempdir().unwrap();
    let store = dm.path();
    let group = make_group(&user);
    make_store_certs(store);
    let web = launch(&user, "dm-web", &store.join("machines/dm-web"), &group);
    let db = launch(&user, "dm-db", &store.join("machines/dm-db"), &group);
    provision_like_docker_machine(store, &store.join("machines/dm-web"), &web);
    provision_like_docker_machine(store, &store.join("machines/dm-db"), &db);
    render_fixture("amazonec2", store, &user, &group, &[&web, &db]);
    let before = snapshot(store);
    let profile = unique("dm");

    let out = import(&home, store, &["dm-web", "--scrub", "--profile", &profile]);
    assert!(out.status.success(), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("Imported dm-web: tcp://"), "{said}");
    assert!(!said.contains("plain text"), "{said}");
    assert!(!server_version(&home, "dm-web").trim().is_empty());

    // The host now trusts docker-euca's own CA, not docker-machine's.
    let context_ca = context_file(&home, "dm-web", "ca.pem");
    assert_ne!(
        context_ca,
        std::fs::read(store.join("certs/ca.pem")).unwrap()
    );
    let record = crate::support::testbed::record(&home, "dm-web");
    assert_eq!(
        record.cloud.instance_id.as_deref(),
        Some(web.instance_id.as_str())
    );
    assert_eq!(record.cloud.profile.as_deref(), Some(profile.as_str()));
    assert!(record.imported_from.unwrap().ends_with("machines/dm-web"));
    assert!(record.ssh.host_key.is_some());
    assert!(!record.cloud.security_group_owned && !record.cloud.key_pair_owned);
    let tags = tags_of(&user, &web.instance_id);
    assert!(
        tags.contains(&("docker-euca:machine".into(), "dm-web".into())),
        "{tags:?}"
    );
    assert!(
        tags.iter().any(|(k, _)| k == "docker-euca:store"),
        "{tags:?}"
    );
    assert_eq!(
        docker_euca::fsutil::mode_of(&home.path().join("euca/machines/dm-web/id_rsa")),
        Some(0o600)
    );

    // The secret: in the keyring, nowhere docker-euca wrote, gone from dm-web's config.json.
    assert_eq!(
        keyring_secret(&profile).as_deref(),
        Some(user.secret_key.as_str())
    );
    assert!(files_containing(home.path(), &user.secret_key).is_empty());
    let after = snapshot(store);
    assert_eq!(
        after.keys().collect::<Vec<_>>(),
        before.keys().collect::<Vec<_>>()
    );
    let web_config = PathBuf::from("machines/dm-web/config.json");
    for (path, bytes) in &before {
        if *path == web_config {
            let expected = String::from_utf8_lossy(bytes).replace(
                &format!("\"SecretKey\": \"{}\"", user.secret_key),
                "\"SecretKey\": \"\"",
            );
            assert_ne!(
                expected.as_bytes(),
                bytes.as_slice(),
                "the fixture holds the secret"
            );
            assert_eq!(String::from_utf8_lossy(&after[path]), expected);
        } else {
            assert_eq!(&after[path], bytes, "{} changed", path.display());
        }
    }
    assert_eq!(
        files_containing(store, &user.secret_key),
        vec![PathBuf::from("machines/dm-db/config.json")]
    );

    // dm-db: the same endpoint and key, so the profile is reused; docker-machine's
    // certificates are kept, and the plaintext secret left in its config.json is named.
    let out = import(&home, store, &["dm-db", "--keep-certs"]);
    assert!(out.status.success(), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains(&format!("profile {profile}\n")), "{said}");
    assert!(
        said.contains("still in plain text") && said.contains("--scrub"),
        "{said}"
    );
    assert!(!server_version(&home, "dm-db").trim().is_empty());
    assert_eq!(
        context_file(&home, "dm-db", "ca.pem"),
        std::fs::read(store.join("certs/ca.pem")).unwrap()
    );
    assert_eq!(snapshot(store).len(), before.len());

    // A second import of the same machine is refused and changes nothing.
    let out = import(&home, store, &["dm-db"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already has a machine named dm-db"));

    // rm terminates the instance (the keyring profile answers) and leaves docker-machine's
    // shared group and its key pair alone.
    ok(&mut euca(&home, &["rm", "-y", "dm-web", "dm-db"]));
    assert_eq!(instance_state(&user, &web.instance_id), "terminated");
    assert_eq!(instance_state(&user, &db.instance_id), "terminated");
    assert!(group_exists(&user, &group));
    assert!(key_pair_exists(&user, &web.key_name));
    clean_up(&user, &group, &[&web, &db]);
    ok(&mut euca(&home, &["logout", "--profile", &profile]));
    // The import's calls too (tagging a host docker-machine made) are in the policy. (The
    // test's own set-up ran as this user as well: its calls are the plugin's kinds.)
    crate::iam_policy::assert_allows(&user.stats());
}

fn context_file(home: &DockerHome, context: &str, file: &str) -> Vec<u8> {
    let dir = docker_euca::context::ContextStore::new(home.path()).tls_dir(context);
    std::fs::read(dir.join(file)).unwrap()
}

/// The Eucalyptus fork's driver, in both forms: the host file docker-machine v0.16 migrated
/// (ConfigVersion 3, with the `config.json.bak` migration leaves) provisioned the docker-euca
/// way without `--scrub` (the store is left exactly as it was and the note names both files
/// that hold the secret), and the fork's own compact file imported with `--keep-certs
/// --scrub` (no secret left anywhere in its store).
#[test]
fn a_fork_eucalyptus_store_imports_in_both_formats() {
    let user = User::new();
    let home = DockerHome::new();
    let group = make_group(&user);
    let (migrated, original) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut hosts = Vec::new();
    for (fixture, store) in [
        ("eucalyptus", migrated.path()),
        ("eucalyptus-v0", original.path()),
    ] {
        make_store_certs(store);
        let host = launch(&user, "dm-euca", &store.join("machines/dm-euca"), &group);
        provision_like_docker_machine(store, &store.join("machines/dm-euca"), &host);
        render_fixture(fixture, store, &user, &group, &[&host]);
        hosts.push(host);
    }
    let before = snapshot(migrated.path());
    let profile = unique("dm");

    let out = import(&home, migrated.path(), &["--all", "--profile", &profile]);
    assert!(out.status.success(), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("Imported dm-euca: tcp://"), "{said}");
    assert!(
        said.contains("still in plain text")
            && said.contains("config.json and ")
            && said.contains("config.json.bak"),
        "{said}"
    );
    assert!(!server_version(&home, "dm-euca").trim().is_empty());
    assert_eq!(
        snapshot(migrated.path()),
        before,
        "the store must be left as it was"
    );
    assert!(files_containing(home.path(), &user.secret_key).is_empty());
    assert_eq!(
        keyring_secret(&profile).as_deref(),
        Some(user.secret_key.as_str())
    );
    ok(&mut euca(&home, &["rm", "-y", "dm-euca"]));
    assert_eq!(instance_state(&user, &hosts[0].instance_id), "terminated");

    let out = import(
        &home,
        original.path(),
        &["dm-euca", "--keep-certs", "--scrub"],
    );
    assert!(out.status.success(), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains(&format!("profile {profile}\n")) && !said.contains("plain text"),
        "{said}"
    );
    assert!(!server_version(&home, "dm-euca").trim().is_empty());
    assert!(files_containing(original.path(), &user.secret_key).is_empty());
    assert_eq!(
        crate::support::testbed::record(&home, "dm-euca")
            .cloud
            .instance_id
            .as_deref(),
        Some(hosts[1].instance_id.as_str())
    );
    ok(&mut euca(&home, &["rm", "-y", "dm-euca"]));
    assert_eq!(instance_state(&user, &hosts[1].instance_id), "terminated");
    clean_up(&user, &group, &hosts.iter().collect::<Vec<_>>());
    ok(&mut euca(&home, &["logout", "--profile", &profile]));
}

/// A terminated instance and one the cloud no longer knows: each import fails with one line
/// naming the instance, and leaves no record, context, profile or keyring entry; the store
/// is unchanged.
#[test]
fn an_import_of_a_gone_instance_fails_clearly_and_leaves_nothing() {
    let user = User::new();
    let home = DockerHome::new();
    let dm = tempfile::tempdir().unwrap();
    let store = dm.path();
    let ec2 = user.ec2();
    let mut gone = Vec::new();
    for name in ["dm-web", "dm-db"] {
        make_ssh_key(&store.join("machines").join(name));
        let out = block_on(
            ec2.sdk()
                .run_instances()
                .image_id(&env()["EUCA_TESTBED_IMAGE"])
                .instance_type(aws_sdk_ec2::types::InstanceType::T2Micro)
                .min_count(1)
                .max_count(1)
                .send(),
        )
        .unwrap();
        let id = out.instances()[0].instance_id().unwrap().to_string();
        block_on(ec2.terminate_instance(&id)).unwrap();
        block_on(ec2.wait_until_terminated(&id, std::time::Duration::from_secs(60))).unwrap();
        gone.push(DmHost {
            name: name.into(),
            instance_id: id,
            key_name: unique(name),
            private_ip: "10.213.0.1".into(),
            public_ip: "10.214.0.1".into(),
        });
    }
    testbed(&["purge", &gone[1].instance_id]);
    let group = DmGroup {
        name: "docker-machine".into(),
        id: "sg-00000000".into(),
    };
    render_fixture("amazonec2", store, &user, &group, &[&gone[0], &gone[1]]);
    let before = snapshot(store);

    for (host, says) in [(&gone[0], "is terminated"), (&gone[1], "does not exist")] {
        let profile = unique("dm");
        let out = import(&home, store, &[&host.name, "--profile", &profile]);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("its instance {} {says}", host.instance_id)),
            "{err}"
        );
        assert!(err.contains("hint:"), "{err}");
        assert!(!home.path().join("euca/machines").join(&host.name).exists());
        let contexts = ok(home
            .docker()
            .args(["context", "ls", "--format", "{{.Name}}"]));
        assert!(!contexts.lines().any(|c| c == host.name), "{contexts}");
        let profiles =
            std::fs::read_to_string(home.path().join("euca/profiles.json")).unwrap_or_default();
        assert!(!profiles.contains(&profile), "{profiles}");
        assert_eq!(keyring_secret(&profile), None);
    }
    assert_eq!(snapshot(store), before);

    // Bad input: one line each, nothing written.
    let out = run(&mut euca(
        &home,
        &["import-machine", "--storage-path", "/nonexistent", "x1"],
    ));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no docker-machine store at /nonexistent")
    );
    let out = import(&home, store, &["dm-nope"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("docker-machine has no machine \"dm-nope\"")
    );
    assert!(
        !home.path().join("euca/machines").exists()
            || std::fs::read_dir(home.path().join("euca/machines"))
                .unwrap()
                .next()
                .is_none()
    );
}
