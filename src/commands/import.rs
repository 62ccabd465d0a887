//! `docker euca import-machine`

use std::{path::PathBuf, time::Duration};

use anyhow::bail;
use clap::Args;

use super::Ctx;
use crate::{
    ops::import::{self, ImportOptions, Imported},
    progress::Progress,
    report::Hinted,
};

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// docker-machine machine names
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    names: Vec<String>,
    /// Import every machine of the docker-machine store
    #[arg(long)]
    all: bool,
    /// docker-machine's store (default: $MACHINE_STORAGE_PATH, else ~/.docker/machine)
    #[arg(long, value_name = "DIR")]
    storage_path: Option<PathBuf>,
    /// After importing, remove the secret key from docker-machine's config.json
    #[arg(long)]
    scrub: bool,
    /// Keep docker-machine's certificates and daemon configuration; only write the context
    #[arg(long)]
    keep_certs: bool,
    /// If the console shows no SSH host keys, trust the key the host shows (its fingerprint
    /// is printed)
    #[arg(long)]
    ssh_trust_first_key: bool,
    /// Credential profile: an existing one is used as it is; a new one of this name keeps the
    /// credentials from config.json (default: a profile with the same endpoint and access key,
    /// else `docker-machine`)
    #[arg(long, value_name = "NAME")]
    profile: Option<String>,
    /// Extra CA certificates (PEM) to trust for the endpoint (kept in a new profile)
    #[arg(long, value_name = "FILE")]
    ca_bundle: Option<PathBuf>,
    /// Maximum wait for each stage, in seconds
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    stage_timeout: u64,
    /// Print only the imported machines' names
    #[arg(short, long)]
    quiet: bool,
}

pub async fn run(ctx: &Ctx, args: ImportArgs) -> anyhow::Result<()> {
    let opts = ImportOptions {
        storage_path: args.storage_path,
        names: args.names,
        all: args.all,
        scrub: args.scrub,
        keep_certs: args.keep_certs,
        trust_first_key: args.ssh_trust_first_key,
        profile: args.profile,
        ca_bundle: args.ca_bundle,
        stage_timeout: Duration::from_secs(args.stage_timeout),
    };
    let mut progress = Progress::new(args.quiet);
    let results = import::import(&ctx.docker_config, &opts, &ctx.cancel, &mut progress).await?;
    let mut failed = Vec::new();
    for (name, result) in &results {
        match result {
            Ok(imported) if args.quiet => println!("{}", imported.name),
            Ok(imported) => report(imported),
            Err(e) if e.chain().any(|c| c.is::<crate::report::Cancelled>()) => {
                return Err(anyhow::Error::new(crate::report::Cancelled));
            }
            Err(e) => {
                eprintln!("docker euca: {name}: {e:#}");
                if let Some(h) = crate::report::hint_for(e) {
                    eprintln!("hint: {h}");
                }
                failed.push(name.clone());
            }
        }
    }
    if !failed.is_empty() {
        bail!(Hinted::new(
            format!(
                "{} of {} imports failed: {}",
                failed.len(),
                results.len(),
                failed.join(", ")
            ),
            "see the errors above; a failed import left nothing, so it can be run again"
        ));
    }
    Ok(())
}

fn report(imported: &Imported) {
    let name = &imported.name;
    println!(
        "Imported {name}: {} (engine {})",
        imported.url, imported.engine_version
    );
    println!(
        "  credentials: profile {}{}",
        imported.profile,
        if imported.profile_created {
            " (new; the secret is in the OS keyring)"
        } else {
            ""
        }
    );
    if !imported.secret_left_in.is_empty() {
        let files: Vec<String> = imported
            .secret_left_in
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        println!(
            "  warning: the secret key is still in plain text in {}; import with --scrub removes it",
            files.join(" and ")
        );
    }
    if let Some(key) = &imported.key_pair_left {
        println!(
            "  note: key pair {key} was made by docker-machine; `docker euca rm {name}` leaves it"
        );
    }
    println!("  use it: docker --context {name} version  (or `docker context use {name}`)");
}
