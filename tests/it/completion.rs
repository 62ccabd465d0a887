//! Completion in bash, zsh and fish, each run for real: docker's own completion scripts (the one
//! Debian ships, and `docker completion SHELL`) asking the plugin through docker, and the plugin's
//! own scripts for `docker-euca` run directly. Every one offers the machines of the store.

use std::{path::Path, process::Command};

use crate::support::{DockerHome, ok};

/// Debian's bash completion for docker (package docker.io).
const DEBIAN_DOCKER_BASH: &str = "/usr/share/bash-completion/completions/docker";
const BASH_COMPLETION: &str = "/usr/share/bash-completion/bash_completion";
const ZSH_HARNESS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/zsh-complete.zsh"
);

/// A docker config with three machine records (no cloud needed to complete names).
pub fn home_with_machines() -> DockerHome {
    let home = DockerHome::new();
    let store = docker_euca::store::Store::new(home.path());
    for n in ["web1", "web2", "db1"] {
        store
            .create(&docker_euca::store::MachineRecord::new(
                docker_euca::names::MachineName::new(n).unwrap(),
            ))
            .unwrap();
    }
    home
}

/// A shell running `script` with the home's docker config, and `docker-euca` on PATH (as
/// `cargo install` puts it; the package puts it where only docker looks).
pub fn shell(home: &DockerHome, program: &str, script: &str) -> Command {
    let mut cmd = in_home(home, program);
    cmd.arg("-c").arg(script);
    cmd
}

fn in_home(home: &DockerHome, program: &str) -> Command {
    let path = format!(
        "{}:{}",
        home.path().join("cli-plugins").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = Command::new(program);
    cmd.env("DOCKER_CONFIG", home.path())
        .env("PATH", path)
        .env_remove("DOCKER_HOST")
        .env_remove("DOCKER_CONTEXT");
    cmd
}

/// What bash's completion offers for `line` after `setup` (which loads a completion): the
/// words are split as bash splits them, and the function `complete -p` names is called as
/// bash calls it.
pub fn bash_offers(home: &DockerHome, setup: &str, line: &str) -> Vec<String> {
    let script = format!(
        r#"source {BASH_COMPLETION}
{setup}
COMP_LINE='{line}'; COMP_POINT=${{#COMP_LINE}}
read -ra COMP_WORDS <<< "$COMP_LINE"; [[ $COMP_LINE == *' ' ]] && COMP_WORDS+=('')
COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 ))
f=$(complete -p "${{COMP_WORDS[0]}}" | sed -n 's/.*-F \([^ ]*\).*/\1/p')
[[ -n $f ]] || {{ echo "no completion for ${{COMP_WORDS[0]}}" >&2; exit 1; }}
"$f" "${{COMP_WORDS[0]}}" "${{COMP_WORDS[COMP_CWORD]}}" "${{COMP_WORDS[COMP_CWORD-1]}}"
printf '%s\n' "${{COMPREPLY[@]}}""#
    );
    lines(&ok(&mut shell(home, "bash", &script)))
}

/// What zsh's completion offers for `line`: a real interactive zsh with compinit on a
/// pseudo-terminal, TAB pressed (tests/fixtures/zsh-complete.zsh); `setup` loads a
/// completion, `fpath` adds a directory of completion functions.
pub fn zsh_offers(home: &DockerHome, setup: &str, fpath: Option<&Path>, line: &str) -> Vec<String> {
    let capture = tempfile::NamedTempFile::new().unwrap();
    let mut zsh = in_home(home, "zsh");
    zsh.args(["-f", ZSH_HARNESS, line])
        .env("SETUP", setup)
        .env("CAPTURE_OUT", capture.path())
        .env(
            "EXTRA_FPATH",
            fpath.map(|p| p.display().to_string()).unwrap_or_default(),
        );
    lines(&ok(&mut zsh))
}

/// What fish's completion offers for `line` (`complete -C`), values only.
pub fn fish_offers(home: &DockerHome, setup: &str, line: &str) -> Vec<String> {
    let script = format!("{setup}\ncomplete -C '{line}'");
    lines(&ok(&mut shell(home, "fish", &script)))
        .into_iter()
        .map(|l| l.split('\t').next().unwrap_or("").to_string())
        .collect()
}

fn lines(out: &str) -> Vec<String> {
    let mut v: Vec<String> = out
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn debians_bash_completion_for_docker_reaches_the_plugin() {
    // It asks `PLUGIN __completeNoDesc rm we`, without the plugin's name and without
    // descriptions; the plugin once refused that with "unrecognized subcommand".
    let home = home_with_machines();
    let setup = format!("source {DEBIAN_DOCKER_BASH}");
    let offered = bash_offers(&home, &setup, "docker euca rm we");
    assert_eq!(offered, names(&["web1", "web2"]));
    let offered = bash_offers(&home, &setup, "docker euca re");
    assert_eq!(
        offered,
        names(&["regenerate-certs", "restart"]),
        "commands only, no words of their descriptions"
    );
}

#[test]
fn dockers_generated_completion_reaches_the_plugin_in_bash_zsh_and_fish() {
    let home = home_with_machines();
    let want = names(&["web1", "web2"]);
    let bash = bash_offers(
        &home,
        "source <(docker completion bash)",
        "docker euca rm we",
    );
    assert_eq!(bash, want, "bash");
    let zsh = zsh_offers(
        &home,
        "source <(docker completion zsh)",
        None,
        "docker euca rm we",
    );
    assert_eq!(zsh, want, "zsh");
    let fish = fish_offers(
        &home,
        "docker completion fish | source",
        "docker euca rm we",
    );
    assert_eq!(fish, want, "fish");
}

#[test]
fn the_plugins_own_scripts_offer_machines_commands_and_flags() {
    let home = home_with_machines();
    let want = names(&["web1", "web2"]);
    let bash = "source <(docker-euca completion bash)";
    assert_eq!(bash_offers(&home, bash, "docker-euca rm we"), want, "bash");
    assert_eq!(
        bash_offers(&home, bash, "docker-euca scp d"),
        names(&["db1:"])
    );
    assert_eq!(
        bash_offers(&home, bash, "docker-euca regen"),
        names(&["regenerate-certs"])
    );
    let zsh = "source <(docker-euca completion zsh)";
    assert_eq!(
        zsh_offers(&home, zsh, None, "docker-euca rm we"),
        want,
        "zsh"
    );
    assert!(zsh_offers(&home, zsh, None, "docker-euca ls --fo").contains(&"--format".to_string()));
    let fish = "docker-euca completion fish | source";
    assert_eq!(fish_offers(&home, fish, "docker-euca rm we"), want, "fish");
    assert_eq!(
        fish_offers(&home, fish, "docker-euca scp d"),
        names(&["db1:"])
    );
    // The scripts for the other shells are clap's (commands and flags).
    for shell in ["powershell", "elvish"] {
        let script = ok(home.euca().args(["completion", shell]));
        assert!(script.contains("regenerate-certs"), "{shell}: {script}");
    }
}
