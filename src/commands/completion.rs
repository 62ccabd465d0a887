//! `docker euca completion bash|zsh|fish` for standalone use (through docker, completion uses
//! the `__complete` protocol instead).

use clap::{Args, CommandFactory};
use clap_complete::Shell;

#[derive(Debug, Args)]
pub struct CompletionArgs {
    /// bash, zsh, fish, powershell or elvish
    shell: Shell,
}

pub fn run(args: CompletionArgs) -> anyhow::Result<()> {
    let mut cmd = crate::cli::Cli::command();
    clap_complete::generate(args.shell, &mut cmd, "docker-euca", &mut std::io::stdout());
    Ok(())
}
