//! `start`, `stop`, `restart`, `kill`, `regenerate-certs`, `provision`

use std::time::Duration;

use anyhow::bail;
use clap::Args;

use super::{Ctx, cloud_args::CloudArgs};
use crate::{
    names::MachineName,
    ops::{
        self,
        power::{Power, PowerOptions},
    },
    progress::Progress,
    report::Hinted,
};

#[derive(Debug, Args)]
pub struct PowerArgs {
    #[command(flatten)]
    selection: super::selection::Selection,
    /// Maximum wait for each stage, in seconds
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    timeout: u64,
    #[command(flatten)]
    cloud: CloudArgs,
}

pub async fn run(ctx: &Ctx, args: PowerArgs, action: Power) -> anyhow::Result<()> {
    let opts = PowerOptions {
        names: args.selection.resolve(ctx).await?,
        action,
        cloud: args.cloud.into(),
        timeout: Duration::from_secs(args.timeout),
    };
    let results = ops::power::power(&ctx.docker_config, &opts).await?;
    let mut failed = Vec::new();
    for (name, result) in results {
        match result {
            Ok(msg) => println!("{msg}"),
            Err(e) => {
                eprintln!("docker euca: {name}: {e:#}");
                if let Some(h) = crate::report::hint_for(&e) {
                    eprintln!("hint: {h}");
                }
                failed.push(name);
            }
        }
    }
    if !failed.is_empty() {
        bail!(Hinted::new(
            format!("failed for {}", failed.join(", ")),
            "see the errors above; the command can be run again"
        ));
    }
    Ok(())
}

#[derive(Debug, Args)]
pub struct RegenerateArgs {
    /// Machine name
    name: MachineName,
    /// A new CA and client certificate too (the old client certificate stops working)
    #[arg(long)]
    client_certs: bool,
    /// Maximum wait for each stage, in seconds
    #[arg(long, value_name = "SECS", default_value_t = 120)]
    timeout: u64,
}

pub async fn regenerate(ctx: &Ctx, args: RegenerateArgs) -> anyhow::Result<()> {
    let msg = ops::certs::regenerate_certs(
        &ctx.docker_config,
        &args.name,
        args.client_certs,
        Duration::from_secs(args.timeout),
    )
    .await?;
    println!("{msg}");
    Ok(())
}

#[derive(Debug, Args)]
pub struct ProvisionArgs {
    /// Machine name
    name: MachineName,
    /// Maximum wait for each stage, in seconds
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    timeout: u64,
    /// No progress output
    #[arg(short, long)]
    quiet: bool,
}

/// Re-runs provisioning with the options the machine was created with (idempotent).
pub async fn provision(ctx: &Ctx, args: ProvisionArgs) -> anyhow::Result<()> {
    let mut progress = Progress::new(args.quiet);
    let verified = ops::provision::provision(
        &ctx.docker_config,
        &args.name,
        Duration::from_secs(args.timeout),
        &mut progress,
    )
    .await?;
    println!(
        "{} provisioned: Docker {} at {}",
        args.name, verified.version.version, verified.url
    );
    Ok(())
}
