//! Concurrency (issue 10): 20 creates at once on one store, then 20 rms at once, while `ls`
//! runs in a loop. No store file may be corrupt, no record lost, no two machines may share a
//! cloud resource, and every create is either ready or cleanly failed (no record, nothing left).

use std::{
    collections::BTreeSet,
    sync::atomic::{AtomicBool, Ordering},
};

use crate::support::{
    DockerHome, run,
    testbed::{User, assert_nothing_left, env, euca, record, unique},
    text,
};

const MACHINES: usize = 20;

#[test]
fn twenty_creates_and_rms_at_once_with_ls_in_a_loop() {
    let home = DockerHome::new();
    let user = User::new();
    user.config(&["--boot-delay", "0.3", "--public-ip-delay", "0.3"]);
    let names: Vec<String> = (0..MACHINES).map(|i| unique(&format!("c{i:02}"))).collect();
    let done = AtomicBool::new(false);
    let (creates, ls_runs) = std::thread::scope(|s| {
        let ls = s.spawn(|| {
            let mut runs = 0;
            while !done.load(Ordering::Relaxed) {
                let out = run(&mut euca(
                    &home,
                    &user,
                    &["ls", "--format", "json", "--timeout", "2"],
                ));
                assert!(
                    out.status.success(),
                    "ls during the creates: {}",
                    text(&out)
                );
                for line in String::from_utf8_lossy(&out.stdout).lines() {
                    serde_json::from_str::<serde_json::Value>(line)
                        .expect("ls prints a JSON object per line");
                }
                runs += 1;
            }
            runs
        });
        let handles: Vec<_> = names
            .iter()
            .map(|name| {
                let (home, user) = (&home, &user);
                s.spawn(move || {
                    run(&mut euca(
                        home,
                        user,
                        &[
                            "create",
                            "-q",
                            name,
                            "--image",
                            &env()["EUCA_TESTBED_IMAGE"],
                        ],
                    ))
                })
            })
            .collect();
        let outs: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        done.store(true, Ordering::Relaxed);
        (outs, ls.join().unwrap())
    });
    assert!(ls_runs > 0);
    let mut ready = Vec::new();
    let (mut instances, mut groups, mut contexts) =
        (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
    for (name, out) in names.iter().zip(&creates) {
        let dir = home.path().join(format!("euca/machines/{name}"));
        if out.status.success() {
            let r = record(&home, name);
            assert!(
                instances.insert(r.cloud.instance_id.clone().unwrap()),
                "{name} shares an instance"
            );
            assert!(
                groups.insert(r.cloud.security_group_id.clone().unwrap()),
                "{name} shares a group"
            );
            assert!(contexts.insert(r.context_name()), "{name} shares a context");
            ready.push(name.clone());
        } else {
            // Cleanly failed: nothing of it is left.
            eprintln!("{name} failed: {}", text(out));
            assert!(!dir.exists(), "{name} failed but kept a record");
            assert_nothing_left(&user, name);
        }
    }
    println!(
        "CONCURRENCY creates={MACHINES} ready={} ls_runs={ls_runs}",
        ready.len()
    );
    assert!(
        ready.len() >= MACHINES * 3 / 4,
        "only {} of {MACHINES} creates worked",
        ready.len()
    );
    // Every record that should be there is, and parses.
    let out = run(&mut euca(&home, &user, &["ls", "-q"]));
    let listed: BTreeSet<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(
        listed,
        ready.iter().cloned().collect::<BTreeSet<_>>(),
        "lost or extra records"
    );

    let rms: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = ready
            .iter()
            .map(|name| {
                let (home, user) = (&home, &user);
                s.spawn(move || run(&mut euca(home, user, &["rm", "-y", name])))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (name, out) in ready.iter().zip(&rms) {
        assert!(out.status.success(), "rm {name}: {}", text(out));
        assert_nothing_left(&user, name);
    }
    let out = run(&mut euca(&home, &user, &["ls", "-q"]));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "",
        "{}",
        text(&out)
    );
}
