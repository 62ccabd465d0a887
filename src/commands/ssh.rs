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

/// The local terminal in raw mode for the life of the guard (`stty`, restored on drop).
struct RawTerminal(Option<String>);

impl RawTerminal {
    fn enter() -> RawTerminal {
        let tty = || std::fs::File::open("/dev/tty").ok();
        let saved = tty()
            .and_then(|t| {
                std::process::Command::new("stty")
                    .arg("-g")
                    .stdin(t)
                    .output()
                    .ok()
            })
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
        if let Some(t) = tty() {
            let _ = std::process::Command::new("stty")
                .args(["raw", "-echo"])
                .stdin(t)
                .status();
        }
        RawTerminal(saved)
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        if let (Some(saved), Ok(t)) = (&self.0, std::fs::File::open("/dev/tty")) {
            let _ = std::process::Command::new("stty")
                .arg(saved)
                .stdin(t)
                .status();
        }
    }
}

fn terminal_size() -> (u32, u32) {
    std::fs::File::open("/dev/tty")
        .ok()
        .and_then(|t| {
            std::process::Command::new("stty")
                .arg("size")
                .stdin(t)
                .output()
                .ok()
        })
        .and_then(|o| {
            let s = String::from_utf8_lossy(&o.stdout).to_string();
            let mut it = s.split_whitespace().filter_map(|n| n.parse::<u32>().ok());
            let rows = it.next()?;
            let cols = it.next()?;
            // A terminal that does not know its size says 0 0.
            (rows > 0 && cols > 0).then_some((cols, rows))
        })
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
        // SIGWINCH: the terminal was resized; tell the remote PTY. Listen before reading the
        // size, so that no resize falls between the two.
        let changes =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change()).ok();
        let (cols, rows) = terminal_size();
        let (sizes, resize) = tokio::sync::watch::channel((cols, rows));
        let winch = tokio::spawn(async move {
            let Some(mut changes) = changes else { return };
            while changes.recv().await.is_some() {
                let _ = sizes.send(terminal_size());
            }
        });
        let term = std::env::var("TERM").unwrap_or_else(|_| "xterm".into());
        let pty = Pty {
            term,
            cols,
            rows,
            resize: Some(resize),
        };
        let _raw = RawTerminal::enter();
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
