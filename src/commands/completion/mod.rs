//! `docker euca completion SHELL`: completion for `docker-euca` run directly. Through docker
//! (`docker euca …`), docker's own completion asks the plugin with the `__complete` protocol.
//!
//! The bash, zsh and fish scripts ask the plugin the same way, so they offer machine names;
//! powershell and elvish get clap's static script (commands and flags only).

use clap::{Args, CommandFactory, ValueEnum};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Shell {
    Bash,
    Zsh,
    Fish,
    Powershell,
    Elvish,
}

#[derive(Debug, Args)]
pub struct CompletionArgs {
    /// The shell to print the script for
    shell: Shell,
}

pub const BASH: &str = include_str!("docker-euca.bash");
pub const ZSH: &str = include_str!("docker-euca.zsh");
pub const FISH: &str = include_str!("docker-euca.fish");

pub fn run(args: CompletionArgs) -> anyhow::Result<()> {
    let static_shell = match args.shell {
        Shell::Bash => return print(BASH),
        Shell::Zsh => return print(ZSH),
        Shell::Fish => return print(FISH),
        Shell::Powershell => clap_complete::Shell::PowerShell,
        Shell::Elvish => clap_complete::Shell::Elvish,
    };
    let mut cmd = crate::cli::Cli::command();
    clap_complete::generate(
        static_shell,
        &mut cmd,
        "docker-euca",
        &mut std::io::stdout(),
    );
    Ok(())
}

fn print(script: &str) -> anyhow::Result<()> {
    use std::io::Write;
    std::io::stdout().write_all(script.as_bytes())?;
    Ok(())
}
