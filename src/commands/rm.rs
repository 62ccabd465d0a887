//! `docker euca rm`

use std::io::IsTerminal;

use anyhow::bail;
use clap::Args;

use super::{Ctx, cloud_args::CloudArgs};
use crate::{
    names::MachineName,
    ops::{self, RmOptions},
    report::{self, Hinted},
    store::StoreError,
};

#[derive(Debug, Args)]
pub struct RmArgs {
    /// Machines to remove
    #[arg(required = true)]
    names: Vec<MachineName>,
    /// Forget the machine even if the cloud refuses to remove its resources
    #[arg(short, long)]
    force: bool,
    /// Do not ask for confirmation
    #[arg(short = 'y', long)]
    yes: bool,
    #[command(flatten)]
    cloud: CloudArgs,
    /// No progress output
    #[arg(short, long)]
    quiet: bool,
}

pub async fn run(ctx: &Ctx, args: RmArgs) -> anyhow::Result<()> {
    let store = ctx.store();
    for name in &args.names {
        if !store.exists(name) {
            bail!(StoreError::NotFound {
                name: name.to_string()
            });
        }
    }
    if !args.yes {
        let list = args
            .names
            .iter()
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        if !std::io::stdin().is_terminal() {
            bail!(Hinted::new(
                format!("refusing to remove {list} without confirmation"),
                "add -y to confirm"
            ));
        }
        if !super::confirmed(&format!(
            "Remove {list} and everything it has in the cloud?"
        ))
        .await?
        {
            bail!(Hinted::new("nothing removed", "answer y, or pass -y"));
        }
    }
    let opts = RmOptions {
        names: args.names,
        force: args.force,
        cloud: args.cloud.into(),
        quiet: args.quiet,
    };
    let outcomes = ops::rm(&ctx.docker_config, &opts).await;
    let mut failed = Vec::new();
    let last = outcomes.len();
    for (i, (name, outcome)) in outcomes.into_iter().enumerate() {
        match outcome {
            Ok(()) => println!("{name} removed"),
            // The last failure becomes the command's own error (one line and a hint).
            Err(err) if i + 1 == last && failed.is_empty() => return Err(err),
            Err(err) => {
                eprintln!("docker euca: cannot remove {name}: {err:#}");
                if let Some(hint) = report::hint_for(&err) {
                    eprintln!("hint: {hint}");
                }
                failed.push(name.to_string());
            }
        }
    }
    if !failed.is_empty() {
        bail!(Hinted::new(
            format!("could not remove {}", failed.join(", ")),
            "fix the causes above and run rm again, or use rm -f"
        ));
    }
    Ok(())
}
