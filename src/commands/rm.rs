//! `docker euca rm`

use std::io::IsTerminal;

use anyhow::bail;
use clap::Args;

use super::{Ctx, cloud_args::CloudArgs};
use crate::{
    ops::{self, RmOptions},
    report::{self, Hinted},
    store::StoreError,
};

#[derive(Debug, Args)]
pub struct RmArgs {
    #[command(flatten)]
    selection: super::selection::Selection,
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
    let names = args.selection.resolve(ctx).await?;
    for name in &names {
        if !store.exists(name) {
            bail!(StoreError::NotFound {
                name: name.to_string()
            });
        }
    }
    if !args.yes {
        let list = names
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
        let endings = cluster_endings(&store, &names);
        if !super::confirmed(&format!(
            "Remove {list} and everything it has in the cloud?{endings}"
        ))
        .await?
        {
            bail!(Hinted::new("nothing removed", "answer y, or pass -y"));
        }
    }
    let opts = RmOptions {
        names,
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

/// The clusters whose last manager is among `names`, said in the question.
fn cluster_endings(store: &crate::store::Store, names: &[crate::names::MachineName]) -> String {
    let mut out = String::new();
    for name in names {
        let Ok(record) = store.load(name) else {
            continue;
        };
        if crate::ops::swarm::is_last_manager(store, &record).unwrap_or(false) {
            let cluster = record.swarm.map(|s| s.cluster).unwrap_or_default();
            out.push_str(&format!(
                "\n{name} is the last manager of swarm {cluster}: removing it ends the cluster (its workers leave it)."
            ));
        }
    }
    out
}
