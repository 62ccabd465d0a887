//! `ls` scaling, measured (not asserted): run with
//! `DOCKER_EUCA_BIN=path/to/release/docker-euca cargo test --test it -- --ignored --nocapture bench_ls`
//! while the testbed is up.
//! Machines are records whose instances exist but never boot, so this measures what grows with
//! N: the EC2 side. Prints wall time and EC2 calls for 1, 20 and 100 machines.

use std::time::Instant;

use crate::support::{
    DockerHome, bench, run,
    testbed::{User, testbed},
    text,
};

#[test]
#[ignore = "a measurement, run by hand (see the module docs)"]
fn bench_ls() {
    println!(
        "{:>9} {:>12} {:>12} {:>18}",
        "machines", "median (ms)", "min (ms)", "DescribeInstances"
    );
    for n in [1, 20, 100] {
        let home = DockerHome::new();
        let user = User::new();
        user.config(&["--boot-delay", "3600"]);
        let ids = bench::pending_machines(&home, &user, "m", n);
        let mut times = Vec::new();
        let mut calls = Vec::new();
        for _ in 0..7 {
            testbed(&["stats", "--reset", "--access-key", &user.access_key]);
            let mut cmd = home.docker();
            cmd.args(["euca", "ls", "-q"]);
            user.apply(&mut cmd);
            let started = Instant::now();
            let out = run(&mut cmd);
            times.push(started.elapsed().as_secs_f64() * 1000.0);
            assert!(out.status.success(), "{}", text(&out));
            assert_eq!(
                String::from_utf8_lossy(&out.stdout).lines().count(),
                n as usize
            );
            calls.push(user.stats().get("DescribeInstances").copied().unwrap_or(0));
        }
        times.sort_by(|a, b| a.partial_cmp(b).unwrap());
        println!(
            "{n:>9} {:>12.1} {:>12.1} {:>18}",
            times[times.len() / 2],
            times[0],
            calls[0]
        );
        assert!(calls.iter().all(|c| *c == 1));
        bench::terminate(&user, &ids);
    }
}
