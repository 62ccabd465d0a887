//! Shared set-up: a private docker config directory with the plugin installed, and helpers to
//! run the real docker CLI and the plugin against it.

use std::{
    os::unix::fs::symlink,
    path::Path,
    process::{Command, Output},
};

pub const PLUGIN: &str = env!("CARGO_BIN_EXE_docker-euca");

/// A temporary `DOCKER_CONFIG` whose `cli-plugins/` holds the built plugin.
pub struct DockerHome {
    pub dir: tempfile::TempDir,
}

impl DockerHome {
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("euca-it-")
            .tempdir()
            .expect("tempdir");
        std::fs::create_dir_all(dir.path().join("cli-plugins")).unwrap();
        // DOCKER_EUCA_BIN swaps in another build (the release binary, for measurements).
        let plugin = std::env::var("DOCKER_EUCA_BIN").unwrap_or_else(|_| PLUGIN.to_string());
        symlink(plugin, dir.path().join("cli-plugins/docker-euca")).unwrap();
        DockerHome { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The real docker CLI, reading this config directory.
    pub fn docker(&self) -> Command {
        let mut cmd = Command::new("docker");
        cmd.env("DOCKER_CONFIG", self.path())
            .env_remove("DOCKER_HOST")
            .env_remove("DOCKER_CONTEXT");
        cmd
    }

    /// The plugin binary run directly, reading this config directory.
    pub fn euca(&self) -> Command {
        let mut cmd = Command::new(PLUGIN);
        cmd.env("DOCKER_CONFIG", self.path());
        cmd
    }
}

/// Runs `cmd`, returning its output; panics with both streams if it cannot start.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// Runs `cmd` and insists on success; returns stdout.
pub fn ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}{}",
        out.status,
        text(&out),
        vms_of_user(cmd)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The testbed's report on the VMs of the user a failed command ran as (its
/// `AWS_ACCESS_KEY_ID`), or nothing for a command run as no testbed user.
fn vms_of_user(cmd: &Command) -> String {
    cmd.get_envs()
        .find(|(k, _)| *k == "AWS_ACCESS_KEY_ID")
        .and_then(|(_, v)| v)
        .map(|key| testbed::vm_report(&key.to_string_lossy()))
        .unwrap_or_default()
}

/// Runs `cmd` with `input` on its standard input (a secret for `--secret-key-stdin`, say).
pub fn run_with_input(cmd: &mut Command, input: &[u8]) -> Output {
    use std::{io::Write, process::Stdio};
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    // A command that exits without reading its input closes the pipe: that is not a failure.
    let _ = child.stdin.take().expect("piped stdin").write_all(input);
    child.wait_with_output().expect("wait for the command")
}

/// Both streams, for assertion messages.
pub fn text(out: &Output) -> String {
    format!(
        "--- stdout\n{}--- stderr\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The remote engine's version through the real docker CLI and `context`.
pub fn server_version(home: &DockerHome, context: &str) -> String {
    ok(home.docker().args([
        "--context",
        context,
        "version",
        "--format",
        "{{.Server.Version}}",
    ]))
    .trim()
    .to_string()
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub mod bench;
pub mod dmachine;
pub mod fleet;
pub mod testbed;

/// Output with one JSON object per line (`--format json`, as docker prints lists).
pub fn json_lines(stdout: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect()
}
