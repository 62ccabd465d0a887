//! The docker CLI plugin protocol, checked with the real docker CLI.

use crate::support::{DockerHome, PLUGIN, ok, run, text};

#[test]
fn metadata_is_served_without_any_config() {
    // No HOME, no DOCKER_CONFIG, an unreadable config: metadata must not care.
    let out = run(std::process::Command::new(PLUGIN)
        .arg("docker-cli-plugin-metadata")
        .env_clear()
        .env("DOCKER_CONFIG", "/nonexistent/dir"));
    assert!(out.status.success(), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["SchemaVersion"], "0.1.0");
    assert_eq!(v["Version"], env!("CARGO_PKG_VERSION"));
    assert!(out.stderr.is_empty());
}

#[test]
fn docker_help_lists_the_plugin_as_a_management_command() {
    let home = DockerHome::new();
    let help = ok(home.docker().arg("--help"));
    let management = help
        .split("Management Commands:")
        .nth(1)
        .expect("a Management Commands section");
    let section = management.split("\n\n").next().unwrap();
    let line = section
        .lines()
        .find(|l| l.trim_start().starts_with("euca*"))
        .unwrap_or_else(|| panic!("{help}"));
    assert!(
        line.contains("Docker hosts on a Eucalyptus cloud"),
        "{line}"
    );
}

#[test]
fn docker_info_shows_the_plugin_and_no_invalid_plugins() {
    let home = DockerHome::new();
    // No daemon is needed for the client section; the exit code reflects the missing server.
    let out = run(home
        .docker()
        .args(["info", "--format", "{{json .ClientInfo}}"]));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let info: serde_json::Value =
        serde_json::from_str(stdout.trim()).unwrap_or_else(|_| panic!("{}", text(&out)));
    let plugins = info["Plugins"].as_array().expect("plugins list");
    let euca = plugins
        .iter()
        .find(|p| p["Name"] == "euca")
        .unwrap_or_else(|| panic!("{info}"));
    assert_eq!(euca["Version"], env!("CARGO_PKG_VERSION"));
    assert!(euca.get("Err").is_none_or(|e| e.is_null()), "{euca}");
    assert!(
        info["Warnings"].as_array().is_none_or(|w| w.is_empty()),
        "{info}"
    );
    let plain = run(home.docker().arg("info"));
    assert!(
        !text(&plain).contains("Invalid Plugins"),
        "{}",
        text(&plain)
    );
}

#[test]
fn version_through_docker_with_and_without_debug() {
    let home = DockerHome::new();
    let out = ok(home.docker().args(["euca", "version"]));
    assert_eq!(
        out.trim(),
        format!("docker-euca version {}", env!("CARGO_PKG_VERSION"))
    );
    let debug = ok(home.docker().args(["-D", "euca", "version"]));
    assert!(debug.contains("git commit:"), "{debug}");
    assert!(
        debug.contains(&home.path().display().to_string()),
        "{debug}"
    );
}

#[test]
fn global_config_flag_before_euca_is_honoured() {
    let home = DockerHome::new();
    let other = DockerHome::new();
    // docker finds the plugin in --config's cli-plugins and passes the flag on; the plugin must use it.
    let out = ok(home
        .docker()
        .args(["--config"])
        .arg(other.path())
        .args(["-D", "euca", "version"]));
    assert!(
        out.contains(&format!("docker config: {}", other.path().display())),
        "{out}"
    );
}

#[test]
fn help_euca_and_direct_runs_agree() {
    let home = DockerHome::new();
    let via_docker = ok(home.docker().args(["euca", "--help"]));
    let via_help = ok(home.docker().args(["help", "euca"]));
    let direct = ok(home.euca().arg("--help"));
    for out in [&via_docker, &via_help, &direct] {
        assert!(out.contains("Usage: docker euca"), "{out}");
        assert!(out.contains("version"), "{out}");
    }
}

#[test]
fn completion_protocol_answers_docker() {
    let home = DockerHome::new();
    let out = ok(home.docker().args(["__complete", "euca", "ver"]));
    assert!(out.lines().any(|l| l.starts_with("version")), "{out}");
    assert!(out.lines().any(|l| l.starts_with(':')), "{out}");
}

#[test]
fn unknown_command_and_bad_global_flag_fail_clearly() {
    let home = DockerHome::new();
    let out = run(home.euca().arg("frobnicate"));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("frobnicate"));
    let out = run(home.euca().arg("--config"));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("flag needs an argument: --config"));
}
