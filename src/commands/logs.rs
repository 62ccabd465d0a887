//! `docker euca logs NAME [--console] [--tail N]`

use std::{io::Write, time::Duration};

use clap::Args;

use super::{Ctx, cloud_args::CloudArgs};
use crate::{
    names::MachineName,
    ops::logs::{self, LogSource, LogsOptions},
};

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Machine name
    name: MachineName,
    /// The instance's console output, from the cloud (works when SSH does not)
    #[arg(long)]
    console: bool,
    /// Only the last N lines
    #[arg(short = 'n', long, value_name = "N")]
    tail: Option<usize>,
    /// SSH connect timeout, in seconds
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    timeout: u64,
    #[command(flatten)]
    cloud: CloudArgs,
}

/// Without `--console`: cloud-init's output log over SSH (what the boot and the engine install
/// printed); with it, the console output the cloud keeps.
pub async fn run(ctx: &Ctx, args: LogsArgs) -> anyhow::Result<()> {
    let opts = LogsOptions {
        name: args.name,
        source: if args.console {
            LogSource::Console
        } else {
            LogSource::CloudInit
        },
        tail: args.tail,
        cloud: args.cloud.into(),
        timeout: Duration::from_secs(args.timeout),
    };
    let text = logs::logs(&ctx.docker_config, &opts).await?;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
    Ok(())
}
