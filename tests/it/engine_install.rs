//! Engine installation paths, on VMs whose image "lacks" dockerd: the user data hides it (the
//! VM's /usr is copy-on-write, so only that VM loses it). An install script served from the
//! testbed's bridge address puts it back; a package manager that cannot provide it makes the
//! create fail clearly and roll back.

use std::{
    io::{Read, Write},
    net::TcpListener,
};

use crate::support::{
    DockerHome, ok,
    testbed::{User, assert_nothing_left, create_without_engine, euca, unique},
    text,
};

/// Serves `body` to every request on the testbed bridge (where VMs can reach the host).
fn serve(body: &'static str) -> String {
    let listener = TcpListener::bind("10.213.0.1:0").expect("the testbed bridge address");
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = write!(
                stream,
                "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
        }
    });
    format!("http://{addr}/install.sh")
}

#[test]
fn an_install_script_url_installs_the_missing_engine() {
    let home = DockerHome::new();
    let user = User::new();
    let name = unique("url");
    let url =
        serve("#!/bin/sh\nset -e\nmv /usr/sbin/dockerd.hidden /usr/sbin/dockerd\necho installed\n");
    let out = create_without_engine(&home, &user, &name, &["--engine-install-url", &url]);
    assert!(out.status.success(), "{}", text(&out));
    ok(home.docker().args(["--context", &name, "version"]));
    ok(&mut euca(&home, &user, &["rm", "-y", &name]));
    assert_nothing_left(&user, &name);
}

#[test]
fn an_engine_the_package_manager_cannot_provide_fails_clearly_and_rolls_back() {
    let home = DockerHome::new();
    let user = User::new();
    let name = unique("nopkg");
    let out = create_without_engine(&home, &user, &name, &[]);
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("the docker engine is not installed on the host and installing it failed"),
        "{err}"
    );
    assert!(
        err.contains("hint: use an image with docker, --engine-install-url"),
        "{err}"
    );
    assert!(err.contains("rolled back"), "{err}");
    assert_nothing_left(&user, &name);
    let skip = create_without_engine(&home, &user, &name, &["--engine-install", "skip"]);
    assert!(
        String::from_utf8_lossy(&skip.stderr)
            .contains("--engine-install skip, and the image has no dockerd"),
        "{}",
        text(&skip)
    );
    assert_nothing_left(&user, &name);
}
