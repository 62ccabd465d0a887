//! Output a person expects: spinners with elapsed time on a terminal, plain lines (no escape
//! sequence at all) with `NO_COLOR` or when stderr is a pipe; progress and errors on stderr,
//! results alone on stdout, so `docker euca ip NAME | xargs …` gets the address and nothing else.

use std::{
    io::Read,
    process::{Command, Stdio},
};

use crate::support::{
    DockerHome, ok, run,
    testbed::{User, assert_nothing_left, create_ok, euca, unique},
    text,
};

/// Runs `docker euca ARGS` on a terminal (util-linux `script` makes one) and returns its exit
/// status and everything the terminal showed.
fn on_a_terminal(home: &DockerHome, user: &User, args: &[&str], no_color: bool) -> (i32, String) {
    let words: Vec<String> = args
        .iter()
        .map(|a| shlex::try_quote(a).unwrap().into_owned())
        .collect();
    let line = format!("docker euca {}", words.join(" "));
    let mut cmd = Command::new("script");
    cmd.args(["-qec", &line, "/dev/null"])
        .env("DOCKER_CONFIG", home.path())
        .env_remove("DOCKER_HOST")
        .env_remove("DOCKER_CONTEXT");
    if no_color {
        cmd.env("NO_COLOR", "1");
    } else {
        cmd.env_remove("NO_COLOR");
    }
    user.apply(&mut cmd);
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The terminal's input stays open (script ends the session at its end of input).
    let _input = child.stdin.take();
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut shown = Vec::new();
        stdout.read_to_end(&mut shown).unwrap();
        shown
    });
    let status = child.wait().unwrap();
    let shown = String::from_utf8_lossy(&reader.join().unwrap()).into_owned();
    (status.code().unwrap_or(-1), shown)
}

#[test]
fn spinners_on_a_terminal_plain_lines_with_no_color_or_a_pipe_and_results_alone_on_stdout() {
    let home = DockerHome::new();
    let user = User::new();
    let name = unique("tty");
    create_ok(&home, &user, &name, &[]);

    // A terminal: spinners, drawn and cleared with escape sequences.
    let (status, shown) = on_a_terminal(&home, &user, &["provision", &name], false);
    assert_eq!(status, 0, "{shown}");
    assert!(
        shown.contains('\u{1b}'),
        "a spinner on the terminal: {shown:?}"
    );
    assert!(shown.contains(&format!("{name} provisioned")), "{shown}");

    // NO_COLOR on the same terminal: the same stage lines, not one escape sequence.
    let (status, shown) = on_a_terminal(&home, &user, &["provision", &name], true);
    assert_eq!(status, 0, "{shown}");
    assert!(!shown.contains('\u{1b}'), "NO_COLOR: {shown:?}");
    assert!(
        shown.lines().any(|l| l.trim_end().ends_with("s)")),
        "stage lines with their time: {shown}"
    );

    // A pipe: the progress on stderr in plain lines, the result alone on stdout.
    let out = run(&mut euca(&home, &user, &["provision", &name]));
    assert!(out.status.success(), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains('\u{1b}'), "{stderr:?}");
    assert!(stderr.lines().count() >= 2, "stage lines: {stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(
        stdout.starts_with(&format!("{name} provisioned: Docker ")),
        "{stdout}"
    );

    // `ip` into a pipe: the address and nothing else, nothing on stderr.
    let out = run(&mut euca(&home, &user, &["ip", &name]));
    assert!(out.status.success(), "{}", text(&out));
    let ip: std::net::IpAddr = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{ip}\n"));
    assert!(out.stderr.is_empty(), "{}", text(&out));

    ok(&mut euca(&home, &user, &["rm", "-y", &name]));
    assert_nothing_left(&user, &name);
}
