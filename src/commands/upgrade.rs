//! `docker euca upgrade NAME…`: the engine upgraded through each host's package manager.

use std::time::Duration;

use anyhow::bail;
use clap::Args;

use super::Ctx;
use crate::{ops, progress::Progress, report::Hinted};

#[derive(Debug, Args)]
pub struct UpgradeArgs {
    #[command(flatten)]
    selection: super::selection::Selection,
    /// Maximum wait for each stage (the package manager, the daemon's restart), in seconds
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    timeout: u64,
    /// No progress output
    #[arg(short, long)]
    quiet: bool,
}

/// Upgrades the machines one after the other (each restarts its daemon); one line each.
pub async fn run(ctx: &Ctx, args: UpgradeArgs) -> anyhow::Result<()> {
    let names = args.selection.resolve(ctx).await?;
    let timeout = Duration::from_secs(args.timeout);
    let mut failed = Vec::new();
    for name in &names {
        let mut progress = Progress::new(args.quiet).for_machine(name.as_str(), None);
        match ops::upgrade::upgrade(&ctx.docker_config, name, timeout, &mut progress).await {
            Ok(up) => {
                let kept = if up.config_restored {
                    "kept (put back: the package had replaced it)"
                } else {
                    "kept"
                };
                println!(
                    "{name}: {} {} → {}; Docker {} answers; daemon configuration {kept}",
                    up.package, up.from, up.to, up.engine.version
                );
            }
            Err(e) if names.len() == 1 => return Err(e),
            Err(e) => {
                eprintln!("docker euca: {e:#}");
                if let Some(h) = crate::report::hint_for(&e) {
                    eprintln!("hint: {h}");
                }
                failed.push(name.to_string());
            }
        }
    }
    if !failed.is_empty() {
        bail!(Hinted::new(
            format!("not upgraded: {}", failed.join(", ")),
            "see the errors above; the command can be run again"
        ));
    }
    Ok(())
}
