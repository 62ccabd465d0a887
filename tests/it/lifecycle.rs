//! The whole life of a host through the real docker CLI: create → ls → stop → start at a new
//! public address → the context works again with no manual step → restart → regenerate-certs →
//! rm. Plus `env` in every shell, `ssh`, `scp`, `ls` costs and bad input.

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use docker_euca::{names::MachineName, store::Store};

use crate::support::{
    DockerHome, ok, run, server_version,
    testbed::{User, block_on, env, euca, testbed, unique},
    text,
};

fn create(home: &DockerHome, user: &User, name: &str) {
    let out = run(&mut euca(
        home,
        user,
        &[
            "create",
            "-q",
            name,
            "--image",
            &env()["EUCA_TESTBED_IMAGE"],
        ],
    ));
    assert!(out.status.success(), "{}", text(&out));
}

fn public_ip(home: &DockerHome, name: &str) -> String {
    Store::new(home.path())
        .load(&MachineName::new(name).unwrap())
        .unwrap()
        .cloud
        .public_ip
        .unwrap()
}

#[test]
fn a_whole_life_through_the_docker_cli() {
    let home = DockerHome::new();
    let user = User::new();
    let name = unique("life");
    create(&home, &user, &name);
    let v = server_version(&home, &name);

    let ls = ok(&mut euca(
        &home,
        &user,
        &["ls", "--format", "{{.Name}}|{{.State}}|{{.Docker}}"],
    ));
    assert_eq!(ls.trim(), format!("{name}|Running|v{v}"));

    // The fields `docker context ls --format '{{json .}}'` shares with ours mean the same there.
    let find = |rows: Vec<serde_json::Value>| {
        rows.into_iter()
            .find(|r| r["Name"] == name.as_str())
            .expect("a row for the machine")
    };
    let docker_row = find(crate::support::json_lines(
        ok(home
            .docker()
            .args(["context", "ls", "--format", "{{json .}}"]))
        .as_bytes(),
    ));
    let our_row = find(crate::support::json_lines(
        ok(&mut euca(&home, &user, &["ls", "--format", "{{json .}}"])).as_bytes(),
    ));
    for shared in ["Name", "Error"] {
        assert!(
            docker_row.get(shared).is_some() && our_row.get(shared).is_some(),
            "{shared}: {docker_row} / {our_row}"
        );
        assert_eq!(docker_row[shared], our_row[shared], "{shared}");
    }
    assert_eq!(docker_row["DockerEndpoint"], our_row["URL"]);
    // docker's idea of "current": nothing is (no context used yet), then each way docker has.
    let out = run(&mut euca(&home, &user, &["active"]));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(out.stdout.is_empty(), "{}", text(&out));
    let url = our_row["URL"].as_str().unwrap().to_string();
    let mut by_flag = home.docker();
    by_flag.args(["--context", &name, "euca", "active"]);
    user.apply(&mut by_flag);
    assert_eq!(ok(&mut by_flag).trim(), name);
    let mut by_env = euca(&home, &user, &["active"]);
    by_env.env("DOCKER_CONTEXT", &name);
    assert_eq!(ok(&mut by_env).trim(), name);
    let mut by_host = euca(&home, &user, &["ls", "--format", "{{.Name}} {{.Active}}"]);
    by_host.env("DOCKER_HOST", &url);
    assert_eq!(ok(&mut by_host).trim(), format!("{name} true"));
    let mut host_beats_context = euca(&home, &user, &["active"]);
    host_beats_context
        .env("DOCKER_CONTEXT", &name)
        .env("DOCKER_HOST", "tcp://10.214.255.254:2376");
    assert_eq!(run(&mut host_beats_context).status.code(), Some(1));
    assert_eq!(
        ok(&mut euca(&home, &user, &["version", &name])).trim(),
        v,
        "`version NAME` is the engine's own"
    );
    let lines = ok(&mut euca(&home, &user, &["ls", "--format", "json"]));
    assert_eq!(
        lines.lines().count(),
        1,
        "one object per machine and line: {lines}"
    );
    assert_eq!(crate::support::json_lines(lines.as_bytes())[0], our_row);
    let table = ok(&mut euca(
        &home,
        &user,
        &["ls", "--format", "table {{.Name}}\\t{{.State}}"],
    ));
    assert_eq!(
        table
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .collect::<Vec<_>>(),
        vec![vec!["NAME", "STATE"], vec![name.as_str(), "Running"]],
        "{table}"
    );

    let before = public_ip(&home, &name);
    ok(&mut euca(&home, &user, &["stop", &name]));
    assert_eq!(
        ok(&mut euca(&home, &user, &["status", &name])).trim(),
        "Stopped"
    );
    let started = ok(&mut euca(&home, &user, &["start", &name]));
    let after = public_ip(&home, &name);
    assert_ne!(
        before, after,
        "EDGE gives a new public address after stop/start"
    );
    assert!(
        started.contains("new address") && started.contains("certificate reissued"),
        "{started}"
    );
    // No manual step: the context points at the new address and its certificate verifies.
    assert_eq!(server_version(&home, &name), v);
    let host = ok(home.docker().args([
        "context",
        "inspect",
        &name,
        "--format",
        "{{.Endpoints.docker.Host}}",
    ]));
    assert_eq!(host.trim(), format!("tcp://{after}:2376"));

    ok(&mut euca(&home, &user, &["restart", &name]));
    assert_eq!(server_version(&home, &name), v);
    let old_ca = std::fs::read(
        home.path()
            .join(format!("euca/machines/{name}/certs/ca.pem")),
    )
    .unwrap();
    ok(&mut euca(
        &home,
        &user,
        &["regenerate-certs", &name, "--client-certs"],
    ));
    let new_ca = std::fs::read(
        home.path()
            .join(format!("euca/machines/{name}/certs/ca.pem")),
    )
    .unwrap();
    assert_ne!(old_ca, new_ca, "--client-certs makes a new CA");
    assert_eq!(server_version(&home, &name), v);
    ok(&mut euca(&home, &user, &["provision", "-q", &name]));
    assert_eq!(server_version(&home, &name), v);

    let id = Store::new(home.path())
        .load(&MachineName::new(name.clone()).unwrap())
        .unwrap()
        .cloud
        .instance_id
        .unwrap();
    ok(&mut euca(&home, &user, &["rm", "-y", &name]));
    let info = block_on(user.ec2().describe_instance(&id)).unwrap();
    assert!(
        info.as_ref().is_none_or(|i| i.state == "terminated"),
        "{info:?}"
    );
    assert!(
        block_on(
            user.ec2()
                .find_security_group(&format!("docker-euca-{name}"))
        )
        .unwrap()
        .is_none()
    );
    let contexts = ok(home
        .docker()
        .args(["context", "ls", "--format", "{{.Name}}"]));
    assert!(!contexts.lines().any(|l| l == name), "{contexts}");
    // Every EC2 action of the whole life is in the documented least-privilege policy.
    crate::iam_policy::assert_allows(&user.stats());
}

/// Runs `docker euca env` in the shell itself, then `docker version` with what it set.
fn check_in_shell(home: &DockerHome, user: &User, name: &str, shell: &str, eval: &str) {
    let env_out = ok(&mut euca(home, user, &["env", "--shell", shell, name]));
    let script = eval.replace("ENV", &env_out);
    let out = run(Command::new(shell)
        .arg("-c")
        .arg(&script)
        .env("DOCKER_CONFIG", home.path())
        .env_remove("DOCKER_HOST")
        .env_remove("DOCKER_CONTEXT"));
    assert!(
        out.status.success(),
        "{shell}: {}\nscript:\n{script}",
        text(&out)
    );
    assert!(
        !String::from_utf8_lossy(&out.stdout).trim().is_empty(),
        "{shell}: {}",
        text(&out)
    );
}

#[test]
fn env_in_every_shell_ssh_and_scp() {
    let home = DockerHome::new();
    let user = User::new();
    let name = unique("env");
    create(&home, &user, &name);
    let version = "docker version --format '{{.Server.Version}}'";
    check_in_shell(
        &home,
        &user,
        &name,
        "bash",
        &format!("eval \"$(cat <<'EOF'\nENV\nEOF\n)\"; {version}"),
    );
    check_in_shell(
        &home,
        &user,
        &name,
        "zsh",
        &format!("eval \"$(cat <<'EOF'\nENV\nEOF\n)\"; {version}"),
    );
    check_in_shell(&home, &user, &name, "fish", &format!("ENV\n{version}"));
    check_in_shell(&home, &user, &name, "tcsh", &format!("ENV\n{version}"));
    // The shells Debian cannot give us here: the exact text.
    let tls = docker_euca::context::ContextStore::new(home.path()).tls_dir(&name);
    let ip = public_ip(&home, &name);
    let ps = ok(&mut euca(
        &home,
        &user,
        &["env", "--shell", "powershell", &name],
    ));
    assert_eq!(
        ps,
        format!(
            "$Env:DOCKER_HOST = \"tcp://{ip}:2376\"\n$Env:DOCKER_TLS_VERIFY = \"1\"\n$Env:DOCKER_CERT_PATH = \"{}\"\n$Env:DOCKER_MACHINE_NAME = \"{name}\"\n# Run this command to configure your shell:\n# & docker euca env --shell powershell {name} | Invoke-Expression\n",
            tls.display()
        )
    );
    let cmd = ok(&mut euca(&home, &user, &["env", "--shell", "cmd", &name]));
    assert!(
        cmd.starts_with(&format!(
            "SET DOCKER_HOST=tcp://{ip}:2376\nSET DOCKER_TLS_VERIFY=1\n"
        )),
        "{cmd}"
    );
    assert!(
        cmd.contains(&format!(
            "REM @FOR /f \"tokens=*\" %i IN ('docker euca env --shell cmd {name}') DO @%i"
        )),
        "{cmd}"
    );
    let emacs = ok(&mut euca(&home, &user, &["env", "--shell", "emacs", &name]));
    assert!(
        emacs.starts_with(&format!("(setenv \"DOCKER_HOST\" \"tcp://{ip}:2376\")\n")),
        "{emacs}"
    );
    let unset = ok(&mut euca(
        &home,
        &user,
        &["env", "--unset", "--shell", "fish"],
    ));
    assert!(unset.starts_with("set -e DOCKER_HOST;\n"), "{unset}");
    // $SHELL picks the syntax by default.
    let mut default = euca(&home, &user, &["env", &name]);
    default.env("SHELL", "/usr/bin/fish");
    assert!(ok(&mut default).starts_with("set -gx DOCKER_HOST"));

    // ssh: exit codes pass through, output streams, the host key stays pinned.
    let out = run(&mut euca(&home, &user, &["ssh", &name, "--", "false"]));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let out = run(&mut euca(
        &home,
        &user,
        &[
            "ssh",
            &name,
            "--",
            "sh",
            "-c",
            "'echo out; echo err >&2; exit 7'",
        ],
    ));
    assert_eq!(out.status.code(), Some(7), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n");

    // On a terminal, ssh is interactive with a PTY of the terminal's size, which follows
    // resizes (util-linux `script` provides the terminal; a background `stty` resizes it).
    let login = euca(&home, &user, &["ssh", &name]);
    let argv: Vec<String> = std::iter::once(login.get_program())
        .chain(login.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let mut cmd = Command::new("script");
    let resized_login = format!(
        "stty rows 33 cols 111; (sleep 3; stty rows 50 cols 150 </dev/tty) & {}",
        argv.join(" ")
    );
    cmd.args(["-qefc", &resized_login, "/dev/null"])
        .envs(login.get_envs().filter_map(|(k, v)| Some((k, v?))));
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(7));
        let _ =
            std::io::Write::write_all(&mut stdin, b"tty; stty size; echo MARK-$((6*7)); exit 3\n");
        std::thread::sleep(Duration::from_secs(30));
    });
    let out = child.wait_with_output().unwrap();
    let screen = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        screen.contains("/dev/pts/") && screen.contains("MARK-42"),
        "{screen}"
    );
    assert!(
        screen.contains("50 150"),
        "the remote PTY did not follow the resize: {screen}"
    );

    // scp both ways, files and directories.
    let dir = home.path().join("payload");
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(dir.join("sub/a.txt"), "alpha").unwrap();
    std::fs::write(home.path().join("one.txt"), "one").unwrap();
    ok(&mut euca(
        &home,
        &user,
        &[
            "scp",
            home.path().join("one.txt").to_str().unwrap(),
            &format!("{name}:/tmp/one.txt"),
        ],
    ));
    ok(&mut euca(
        &home,
        &user,
        &[
            "scp",
            "-r",
            dir.to_str().unwrap(),
            &format!("{name}:/tmp/up"),
        ],
    ));
    let out = ok(&mut euca(
        &home,
        &user,
        &[
            "ssh",
            &name,
            "--",
            "cat",
            "/tmp/one.txt",
            "/tmp/up/payload/sub/a.txt",
        ],
    ));
    assert_eq!(out, "onealpha");
    let back = home.path().join("back");
    ok(&mut euca(
        &home,
        &user,
        &[
            "scp",
            "-r",
            &format!("{name}:/tmp/up/payload"),
            back.to_str().unwrap(),
        ],
    ));
    assert_eq!(
        std::fs::read_to_string(back.join("payload/sub/a.txt")).unwrap(),
        "alpha"
    );
    ok(&mut euca(
        &home,
        &user,
        &[
            "scp",
            &format!("{name}:/tmp/one.txt"),
            back.to_str().unwrap(),
        ],
    ));
    assert_eq!(
        std::fs::read_to_string(back.join("one.txt")).unwrap(),
        "one"
    );

    ok(&mut euca(&home, &user, &["rm", "-y", &name]));
}

#[test]
fn ls_makes_one_describe_call_for_twenty_machines_and_a_hung_daemon_times_out_alone() {
    let home = DockerHome::new();
    let user = User::new();
    // Two real machines; one daemon is frozen.
    let (good, hung) = (unique("good"), unique("hung"));
    create(&home, &user, &good);
    create(&home, &user, &hung);
    let hung_id = Store::new(home.path())
        .load(&MachineName::new(hung.clone()).unwrap())
        .unwrap()
        .cloud
        .instance_id
        .unwrap();
    testbed(&["exec", &hung_id, "--", "pkill", "-STOP", "-x", "dockerd"]);
    // Eighteen more records whose instances exist but never boot (launched in one call).
    user.config(&["--boot-delay", "3600"]);
    let extra = crate::support::bench::pending_machines(&home, &user, "many", 18);
    testbed(&["stats", "--reset", "--access-key", &user.access_key]);
    let started = Instant::now();
    let out = run(&mut euca(
        &home,
        &user,
        &[
            "ls",
            "--timeout",
            "2",
            "--format",
            "{{.Name}}|{{.State}}|{{.Docker}}|{{.Error}}",
        ],
    ));
    let took = started.elapsed();
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().count(), 20, "{stdout}");
    let stats = user.stats();
    assert_eq!(
        stats.get("DescribeInstances"),
        Some(&1),
        "one DescribeInstances for 20 machines: {stats:?}"
    );
    let good_row = stdout
        .lines()
        .find(|l| l.starts_with(&format!("{good}|")))
        .unwrap();
    assert!(
        good_row.starts_with(&format!("{good}|Running|v")),
        "{good_row}"
    );
    let hung_row = stdout
        .lines()
        .find(|l| l.starts_with(&format!("{hung}|")))
        .unwrap();
    assert!(hung_row.contains("did not answer within"), "{hung_row}");
    assert!(took < Duration::from_secs(30), "ls took {took:?}");
    testbed(&["exec", &hung_id, "--", "pkill", "-CONT", "-x", "dockerd"]);
    crate::support::bench::terminate(&user, &extra);
    ok(&mut euca(&home, &user, &["rm", "-y", "-f", &good, &hung]));
}

#[test]
fn bad_input_gives_one_clear_line() {
    let home = DockerHome::new();
    let user = User::new();
    let cases: &[(&[&str], &str)] = &[
        (&["inspect", "nosuch"], "machine \"nosuch\" does not exist"),
        (&["ip", "nosuch"], "machine \"nosuch\" does not exist"),
        (
            &["ssh", "nosuch", "--", "true"],
            "machine \"nosuch\" does not exist",
        ),
        (&["stop", "nosuch"], "machine \"nosuch\" does not exist"),
        (&["env", "--unset", "web1"], "--unset takes no machine name"),
        (&["env", "--shell", "nushell", "web1"], "unknown shell"),
        (
            &["ls", "--format", "{{if}}"],
            "is not a template docker-euca can read",
        ),
        (&["ls", "--filter", "color=red"], "unknown filter"),
        (
            &["inspect", "--format", "{{.Nope", "web1"],
            "is not a template docker-euca can read",
        ),
        (&["scp", "/tmp/a", "/tmp/b"], "neither side names a machine"),
    ];
    for (args, needle) in cases {
        let out = run(euca(&home, &user, args).stdin(Stdio::null()));
        assert_ne!(out.status.code(), Some(0), "{args:?}: {}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        let first = err.lines().next().unwrap_or_default();
        assert!(
            first.starts_with("docker euca: ") && first.contains(needle),
            "{args:?}: first line {first:?}\n{err}"
        );
        assert!(
            err.lines().nth(1).is_some_and(|l| l.starts_with("hint: ")),
            "{args:?}: no hint\n{err}"
        );
    }
}
