//! The machine store under concurrent processes: 20 processes, each doing read-modify-write
//! updates of the same record, lose nothing and corrupt nothing.

use std::process::Command;

use docker_euca::{
    names::MachineName,
    store::{MachineRecord, Store},
};

const WORKER_ENV: &str = "EUCA_IT_STORE_WORKER";
const PROCESSES: usize = 20;
const UPDATES: usize = 10;

/// Runs as a child process when `WORKER_ENV` is set: appends its labels one update at a time.
#[test]
fn store_worker() {
    let Ok(spec) = std::env::var(WORKER_ENV) else {
        return;
    };
    let (dir, id) = spec.split_once('|').unwrap();
    let store = Store::new(std::path::Path::new(dir));
    let name = MachineName::new("shared").unwrap();
    for n in 0..UPDATES {
        store
            .update(&name, |r| r.engine.labels.push(format!("{id}-{n}")))
            .unwrap();
    }
}

#[test]
fn twenty_processes_lose_no_update() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(dir.path());
    store
        .create(&MachineRecord::new(MachineName::new("shared").unwrap()))
        .unwrap();
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..PROCESSES)
        .map(|id| {
            Command::new(&exe)
                .args([
                    "--exact",
                    "store_concurrency::store_worker",
                    "--test-threads=1",
                ])
                .env(WORKER_ENV, format!("{}|{id}", dir.path().display()))
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    let record = store.load(&MachineName::new("shared").unwrap()).unwrap();
    let mut labels = record.engine.labels.clone();
    assert_eq!(labels.len(), PROCESSES * UPDATES, "updates were lost");
    labels.sort();
    labels.dedup();
    assert_eq!(labels.len(), PROCESSES * UPDATES, "updates were duplicated");
    let leftovers: Vec<_> = std::fs::read_dir(store.machine_dir(&record.name))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(leftovers, ["machine.json"], "temp files left behind");
}
