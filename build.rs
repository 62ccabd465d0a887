//! Embeds `plugin-metadata/metadata.json` with the crate version filled in, so that
//! `docker-cli-plugin-metadata` is one `print!` of a static string.
use std::{env, fs, path::Path};

fn main() {
    let src = "plugin-metadata/metadata.json";
    println!("cargo:rerun-if-changed={src}");
    let template = fs::read_to_string(src).expect("read plugin-metadata/metadata.json");
    let version = env::var("CARGO_PKG_VERSION").expect("CARGO_PKG_VERSION");
    assert!(
        template.contains("@VERSION@"),
        "metadata.json must carry the @VERSION@ placeholder"
    );
    let out = Path::new(&env::var("OUT_DIR").expect("OUT_DIR")).join("metadata.json");
    fs::write(out, template.trim_end().replace("@VERSION@", &version)).expect("write metadata");
    let git = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=DOCKER_EUCA_GIT_COMMIT={git}");
    println!(
        "cargo:rustc-env=DOCKER_EUCA_TARGET={}",
        env::var("TARGET").unwrap_or_default()
    );
    println!(
        "cargo:rustc-env=DOCKER_EUCA_PROFILE={}",
        env::var("PROFILE").unwrap_or_default()
    );
}
