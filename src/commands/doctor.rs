//! `docker euca doctor [NAME]`

use std::{io::Write, time::Duration};

use clap::{Args, ValueEnum};

use super::{Ctx, cloud_args::CloudArgs};
use crate::{
    doctor::{self, Check, DoctorOptions, report},
    names::MachineName,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DoctorFormat {
    /// One line per check: STATUS CHECK DETAIL, the hint below
    Text,
    /// One JSON object per check per line: {"check","status","detail","hint"}
    Json,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Machine to check; without one, only the cloud side (endpoint, credentials, clock,
    /// region, keyring)
    name: Option<MachineName>,
    /// Output format
    #[arg(long, value_enum, default_value_t = DoctorFormat::Text)]
    format: DoctorFormat,
    /// Time limit of each network check, in seconds
    #[arg(long, value_name = "SECS", default_value_t = doctor::DEFAULT_TIMEOUT.as_secs())]
    timeout: u64,
    #[command(flatten)]
    cloud: CloudArgs,
}

/// Prints each check as it is known; with a failed check, ends in an error naming them all
/// (the reporter prints it as one line after the checks' own).
pub async fn run(ctx: &Ctx, args: DoctorArgs) -> anyhow::Result<()> {
    let opts = DoctorOptions {
        name: args.name,
        cloud: args.cloud.into(),
        timeout: Duration::from_secs(args.timeout.max(1)),
    };
    let format = args.format;
    let mut print = move |check: &Check| {
        let line = match format {
            DoctorFormat::Text => report::text(check),
            DoctorFormat::Json => report::json(check),
        };
        // A closed stdout (`| head`) must not turn into a panic.
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    };
    let checks = doctor::doctor(&ctx.docker_config, &opts, &mut print).await;
    doctor::verdict(&checks)?;
    Ok(())
}
