//! The smaller faults found with the ownership work (issue 9), each shown through the real
//! binary: an endpoint that does not speak EC2, a damaged record in `ls`, argv that is not
//! ASCII, a name too long for the cloud's limits, a remote command killed by a signal.

use std::{
    io::{BufRead, BufReader, Write},
    net::TcpListener,
};

use crate::support::{
    DockerHome, run, run_with_input,
    testbed::{User, create_ok, euca, unique},
    text,
};

/// A web server that answers every request with an HTML 404 page, as a wrong endpoint path
/// on a real web server would. Returns its URL.
fn html_404_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/wrong/path/", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0usize;
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                line.clear();
            }
            let mut body = vec![0; length];
            let _ = std::io::Read::read_exact(&mut reader, &mut body);
            let page = "<html><head><title>404 Not Found</title></head><body>nope</body></html>";
            let mut out = stream;
            let _ = write!(
                out,
                "HTTP/1.1 404 Not Found\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}",
                page.len()
            );
        }
    });
    url
}

#[test]
fn an_endpoint_that_does_not_speak_ec2_is_named_with_its_status() {
    let home = DockerHome::new();
    let url = html_404_server();
    let out = run_with_input(
        home.docker()
            .args(["euca", "login", "--profile", "wrong", "--endpoint", &url])
            .args(["--access-key", "AKIEXAMPLE", "--secret-key-stdin"])
            .env("DOCKER_EUCA_KEYRING", "keyutils"),
        b"secret",
    );
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    let first = err.lines().next().unwrap_or_default();
    for needle in ["HTTP 404", &url, "not an EC2 answer", "404 Not Found"] {
        assert!(first.contains(needle), "{needle:?} missing from {first:?}");
    }
    assert!(!err.to_lowercase().contains("unhandled"), "{err}");
    assert!(
        err.contains("hint: ") && err.contains("/services/compute/"),
        "{err}"
    );
}

#[test]
fn ls_lists_a_damaged_record_under_its_name() {
    let home = DockerHome::new();
    let dir = home.path().join("euca/machines/broken1");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("machine.json"), b"{not json").unwrap();
    let out = run(home.docker().args(["euca", "ls", "--format", "json"]));
    assert!(out.status.success(), "{}", text(&out));
    let rows = crate::support::json_lines(&out.stdout);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["Name"], "broken1");
    assert_eq!(rows[0]["State"], "Error");
    assert!(
        rows[0]["Error"].as_str().unwrap().contains("damaged"),
        "{rows:?}"
    );
    // A name filter sees it too.
    let out = run(home
        .docker()
        .args(["euca", "ls", "-q", "--filter", "name=broken"]));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "broken1",
        "{}",
        text(&out)
    );
}

#[test]
fn argv_that_is_not_ascii_never_panics() {
    let home = DockerHome::new();
    for args in [
        &["-é"][..],
        &["-Hé", "ls"],
        &["--cönfig", "x", "ls"],
        &["ls", "-é"],
        &["ïnspect"],
    ] {
        let out = run(home.euca().args(args));
        // `-Hé` is a host value like any other; the rest are unknown commands or flags.
        if args[0] != "-Hé" {
            assert_ne!(out.status.code(), Some(0), "{args:?}: {}", text(&out));
        }
        assert_ne!(
            out.status.code(),
            Some(101),
            "{args:?} panicked: {}",
            text(&out)
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn a_name_too_long_for_the_clouds_limits_is_refused_before_any_call() {
    let home = DockerHome::new();
    let user = User::new();
    let name = format!("{}-{}", unique("long"), "x".repeat(32));
    let out = run(&mut euca(
        &home,
        &user,
        &["create", &name, "--image", "emi-00000000"],
    ));
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("at most 32"), "{err}");
    assert!(
        user.stats().is_empty(),
        "calls were made: {:?}",
        user.stats()
    );
    assert!(!home.path().join("euca/machines").exists());
}

#[test]
fn a_remote_command_killed_by_a_signal_exits_128_plus_n() {
    let home = DockerHome::new();
    let user = User::new();
    let name = unique("sig");
    create_ok(&home, &user, &name, &["-q"]);
    // The remote shell itself dies of SIGTERM: sshd reports an exit signal, not a status.
    let out = run(&mut euca(
        &home,
        &user,
        &["ssh", &name, "--", "kill", "-TERM", "$$"],
    ));
    assert_eq!(out.status.code(), Some(143), "{}", text(&out));
    let out = run(&mut euca(&home, &user, &["rm", "-y", &name]));
    assert!(out.status.success(), "{}", text(&out));
}
