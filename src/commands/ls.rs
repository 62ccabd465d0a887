//! `docker euca ls`

use std::time::Duration;

use clap::Args;

use super::{Ctx, cloud_args::CloudArgs};
use crate::{
    ops::ls::{self, LsOptions, MachineRow},
    template,
};

#[derive(Debug, Args)]
pub struct LsArgs {
    /// Only names
    #[arg(short, long)]
    quiet: bool,
    /// Filter: name=PATTERN (`*` wildcards), state=STATE or swarm=CLUSTER (repeatable)
    #[arg(short, long = "filter", value_name = "KEY=VALUE")]
    filters: Vec<String>,
    /// table, 'table {{.Name}}\t{{.State}}', json (one object per line), or a Go template
    /// such as '{{.Name}} {{.State}}'
    #[arg(long, default_value = "table")]
    format: String,
    /// Daemon check timeout, in seconds
    #[arg(short, long, value_name = "SECS", default_value_t = 10)]
    timeout: u64,
    #[command(flatten)]
    cloud: CloudArgs,
}

pub async fn run(ctx: &Ctx, args: LsArgs) -> anyhow::Result<()> {
    let mut opts = LsOptions {
        timeout: Duration::from_secs(args.timeout),
        cloud: args.cloud.into(),
        current: Some(ctx.globals.current(&ctx.docker_config)),
        ..Default::default()
    };
    for f in &args.filters {
        opts.add_filter(f)?;
    }
    let format = template::Format::parse(&args.format)?;
    format.check(&MachineRow::default())?;
    let rows = ls::ls(&ctx.docker_config, &opts).await?;
    if args.quiet {
        for r in &rows {
            println!("{}", r.name);
        }
        return Ok(());
    }
    match format.render(&rows, &MachineRow::default())? {
        Some(out) => print!("{out}"),
        None => print_table(&rows),
    }
    Ok(())
}

fn print_table(rows: &[MachineRow]) {
    let cells: Vec<[String; 7]> = rows
        .iter()
        .map(|r| {
            [
                r.name.clone(),
                if r.active { "*".into() } else { "-".into() },
                r.state.clone(),
                r.url.clone(),
                r.swarm.clone(),
                r.docker.clone(),
                r.errors.clone(),
            ]
        })
        .collect();
    // docker-machine's columns, in its order.
    let header = [
        "NAME", "ACTIVE", "STATE", "URL", "SWARM", "DOCKER", "ERRORS",
    ];
    print!("{}", crate::report::table(&header, &cells));
}
