//! The Debian package (scripts/package, cargo-deb) installed on this machine as a user would:
//! docker finds the plugin where it finds its own plugins with a fresh DOCKER_CONFIG, `man`
//! finds a page per command, the shells load the completions from their system directories,
//! and removing the package leaves none of it.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use crate::completion::{bash_offers, fish_offers, home_with_machines, zsh_offers};
use crate::support::{ok, run, text};

const INSTALLED: &str = "/usr/libexec/docker/cli-plugins/docker-euca";
const PACKAGE: &str = "docker-euca";

/// Removes the package however the test ends, so that no run leaves it installed.
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = Command::new("dpkg").args(["--purge", PACKAGE]).output();
    }
}

fn build_package(out_dir: &Path) -> PathBuf {
    // cargo holds its build lock while the tests run: package the binary the tests use.
    let out = run(
        Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/package"))
            .env("PROFILE", "dev")
            .env("NO_BUILD", "1")
            .env("OUT_DIR", out_dir),
    );
    assert!(out.status.success(), "scripts/package: {}", text(&out));
    let debs: Vec<PathBuf> = std::fs::read_dir(out_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "deb"))
        .collect();
    assert_eq!(
        debs.len(),
        1,
        "one package in {}: {debs:?}",
        out_dir.display()
    );
    debs[0].clone()
}

/// The paths the package holds, from `dpkg-deb -c` (without the leading `.`).
fn contents(deb: &Path) -> Vec<String> {
    ok(Command::new("dpkg-deb").arg("-c").arg(deb))
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .map(|p| p.trim_start_matches('.').to_string())
        .collect()
}

/// Every visible command's page name and the synopsis it starts with:
/// (`docker-euca-swarm-ls`, `docker euca swarm ls`).
fn visible_commands() -> Vec<(String, String)> {
    use clap::CommandFactory;
    let cli = docker_euca::cli::Cli::command();
    let mut pages = vec![("docker-euca".to_string(), "docker euca".to_string())];
    for sub in cli.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = sub.get_name();
        pages.push((format!("docker-euca-{name}"), format!("docker euca {name}")));
        for inner in sub.get_subcommands().filter(|s| !s.is_hide_set()) {
            let inner = inner.get_name();
            pages.push((
                format!("docker-euca-{name}-{inner}"),
                format!("docker euca {name} {inner}"),
            ));
        }
    }
    pages
}

#[test]
fn the_debian_package_installs_like_dockers_own_plugins_and_goes_cleanly() {
    let _ = Command::new("dpkg").args(["--purge", PACKAGE]).output();
    let out_dir = tempfile::tempdir().unwrap();
    let deb = build_package(out_dir.path());

    let files = contents(&deb);
    for want in [
        INSTALLED,
        "/usr/share/bash-completion/completions/docker-euca",
        "/usr/share/zsh/vendor-completions/_docker-euca",
        "/usr/share/fish/vendor_completions.d/docker-euca.fish",
        "/usr/share/doc/docker-euca/copyright",
    ] {
        assert!(files.iter().any(|f| f == want), "{want} in {files:#?}");
    }
    let pages = visible_commands();
    for (page, _) in &pages {
        let path = format!("/usr/share/man/man1/{page}.1.gz");
        assert!(files.contains(&path), "{path} in the package");
    }

    let installed = Installed;
    ok(Command::new("dpkg").arg("--install").arg(&deb));
    assert_fresh_docker_finds_the_plugin();
    assert_every_page_renders(&pages);
    assert_installed_completions_offer_machines();

    ok(Command::new("dpkg").args(["--remove", PACKAGE]));
    drop(installed);
    assert!(!Path::new(INSTALLED).exists(), "the plugin is gone");
    assert!(!Path::new("/usr/share/man/man1/docker-euca-create.1.gz").exists());
    let status = run(Command::new("dpkg").args(["--status", PACKAGE]));
    assert!(
        !text(&status).contains("Status: install ok installed"),
        "{}",
        text(&status)
    );
}

/// A fresh DOCKER_CONFIG (nothing in it): docker finds the packaged plugin on its own.
fn assert_fresh_docker_finds_the_plugin() {
    let config = tempfile::tempdir().unwrap();
    let docker = || {
        let mut c = Command::new("docker");
        c.env("DOCKER_CONFIG", config.path())
            .env_remove("DOCKER_HOST")
            .env_remove("DOCKER_CONTEXT");
        c
    };
    let version = ok(docker().args(["euca", "version"]));
    assert!(version.contains(env!("CARGO_PKG_VERSION")), "{version}");
    let plugins = ok(docker().args(["info", "--format", "{{json .ClientInfo.Plugins}}"]));
    let plugins: serde_json::Value = serde_json::from_str(&plugins).unwrap();
    let euca = plugins
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["Name"] == "euca")
        .unwrap_or_else(|| panic!("euca among {plugins}"));
    assert_eq!(euca["Path"], INSTALLED, "{euca}");
    assert!(euca.get("Err").is_none(), "{euca}");
    let help = ok(docker().arg("--help"));
    assert!(help.contains("euca*"), "{help}");
}

/// `man NAME` finds each command's page, and every page renders with no warning.
fn assert_every_page_renders(pages: &[(String, String)]) {
    for (page, synopsis) in pages {
        let out = run(Command::new("man")
            .args(["--warnings", page])
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "100"));
        assert!(out.status.success(), "man {page}: {}", text(&out));
        assert!(out.stderr.is_empty(), "man {page} warned: {}", text(&out));
        // man justifies lines: compare with single spaces
        let shown = String::from_utf8_lossy(&out.stdout);
        let shown = shown.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            shown.contains(&format!("SYNOPSIS {synopsis} ")),
            "man {page} shows {synopsis}: {shown}"
        );
    }
}

/// The completions the package put in the shells' system directories load by themselves
/// (bash-completion's loader, zsh's fpath, fish's vendor directory) and offer machines.
fn assert_installed_completions_offer_machines() {
    let home = home_with_machines();
    // `docker-euca` on PATH is the installed one.
    let link = home.path().join("cli-plugins/docker-euca");
    std::fs::remove_file(&link).unwrap();
    std::os::unix::fs::symlink(INSTALLED, &link).unwrap();
    let want = vec!["web1".to_string(), "web2".to_string()];
    // bash-completion loads completions/docker-euca when docker-euca is first completed.
    let load = "_completion_loader docker-euca";
    assert_eq!(bash_offers(&home, load, "docker-euca rm we"), want, "bash");
    assert_eq!(
        zsh_offers(&home, ":", None, "docker-euca rm we"),
        want,
        "zsh"
    );
    assert_eq!(fish_offers(&home, "", "docker-euca rm we"), want, "fish");
    assert_eq!(
        bash_offers(&home, "_completion_loader docker", "docker euca rm we"),
        want,
        "docker's own completion"
    );
}
