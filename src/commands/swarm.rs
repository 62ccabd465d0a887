//! `docker euca swarm ls`

use clap::{Args, Subcommand};

use super::Ctx;
use crate::{ops::swarm, template};

#[derive(Debug, Args)]
pub struct SwarmArgs {
    #[command(subcommand)]
    command: SwarmCommand,
}

#[derive(Debug, Subcommand)]
enum SwarmCommand {
    /// List the Docker Swarm clusters of the machines, with their members and health
    Ls {
        /// Only cluster names
        #[arg(short, long)]
        quiet: bool,
        /// table, 'table {{.Name}}\t{{.Ready}}', json (one object per line), or a Go template
        #[arg(long, default_value = "table")]
        format: String,
    },
}

pub async fn run(ctx: &Ctx, args: SwarmArgs) -> anyhow::Result<()> {
    let SwarmCommand::Ls { quiet, format } = args.command;
    let format = template::Format::parse(&format)?;
    format.check(&swarm::ClusterRow::default())?;
    let rows = swarm::list(&ctx.docker_config, &ctx.store()).await?;
    if quiet {
        for r in &rows {
            println!("{}", r.name);
        }
        return Ok(());
    }
    if let Some(out) = format.render(&rows, &swarm::ClusterRow::default())? {
        print!("{out}");
        return Ok(());
    }
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            [
                r.name.clone(),
                r.managers.join(","),
                r.workers.join(","),
                r.ready
                    .map(|(ready, all)| format!("{ready}/{all}"))
                    .unwrap_or_else(|| "-".into()),
                r.context.clone().unwrap_or_else(|| "-".into()),
                r.error.clone().unwrap_or_default(),
            ]
        })
        .collect();
    let header = ["NAME", "MANAGERS", "WORKERS", "READY", "CONTEXT", "ERRORS"];
    print!("{}", crate::report::table(&header, &cells));
    Ok(())
}
