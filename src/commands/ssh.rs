//! `docker euca ssh` and `docker euca scp`

use std::{io::IsTerminal, time::Duration};

use clap::Args;

use super::Ctx;
use crate::{names::MachineName, ops, ssh::Pty};

#[derive(Debug, Args)]
pub struct SshArgs {
    /// Machine name
    name: MachineName,
    /// Command to run (after `--`); none opens an interactive shell
    #[arg(last = true)]
    command: Vec<String>,
    /// Connect timeout, in seconds
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    timeout: u64,
}

/// The terminal's size, 80×24 when it does not know it.
fn terminal_size() -> (u32, u32) {
    crate::terminal::open()
        .ok()
        .and_then(|t| crate::terminal::size(&t))
        .unwrap_or((80, 24))
}

/// Exits with the remote command's status.
pub async fn run(ctx: &Ctx, args: SshArgs) -> anyhow::Result<()> {
    let record = ctx.store().load(&args.name)?;
    let session =
        ops::machine::session(&ctx.store(), &record, Duration::from_secs(args.timeout)).await?;
    let interactive = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let command = (!args.command.is_empty()).then(|| args.command.join(" "));
    let status = if interactive {
        let (cols, rows) = terminal_size();
        let (sizes, resize) = tokio::sync::watch::channel((cols, rows));
        let winch = crate::terminal::follow_size(sizes, terminal_size);
        let term = std::env::var("TERM").unwrap_or_else(|_| "xterm".into());
        let pty = Pty {
            term,
            cols,
            rows,
            resize: Some(resize),
        };
        let _raw = crate::terminal::open()
            .and_then(|t| crate::terminal::raw(&t))
            .ok();
        let status = session
            .run_attached(command.as_deref(), Some(pty), true)
            .await;
        winch.abort();
        status?
    } else {
        let command = command.unwrap_or_else(|| "sh -s".into());
        session
            .run_attached(Some(&command), None, !std::io::stdin().is_terminal())
            .await?
    };
    session.close().await;
    if status != 0 {
        std::process::exit(status.min(255) as i32);
    }
    Ok(())
}

#[derive(Debug, Args)]
pub struct ScpArgs {
    /// Copy directories recursively
    #[arg(short, long)]
    recursive: bool,
    /// [NAME:]SRC
    src: String,
    /// [NAME:]DST
    dst: String,
    /// Connect timeout, in seconds
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    timeout: u64,
}

pub async fn scp(ctx: &Ctx, args: ScpArgs) -> anyhow::Result<()> {
    ops::scp::scp(
        &ctx.docker_config,
        &args.src,
        &args.dst,
        args.recursive,
        Duration::from_secs(args.timeout),
    )
    .await
}
