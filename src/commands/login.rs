//! `docker euca login`, `logout`, `profiles`

use std::{
    io::{IsTerminal, Read},
    path::PathBuf,
};

use anyhow::{Context, bail};
use clap::Args;

use super::Ctx;
use crate::{
    credentials::{Backend, DEFAULT_PROFILE, Profiles},
    ops::{self, LoginOptions},
    report::Hinted,
    secret::Secret,
};

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Profile to store the credentials under
    #[arg(long, default_value = DEFAULT_PROFILE)]
    profile: String,
    /// EC2 endpoint: http://HOST:8773/services/compute/, https://ec2.DOMAIN/ or REGION::URL
    #[arg(long, value_name = "URL")]
    endpoint: Option<String>,
    /// Region (default: eucalyptus)
    #[arg(long)]
    region: Option<String>,
    /// Access key id
    #[arg(long, value_name = "AK")]
    access_key: Option<String>,
    /// Read the secret key from standard input
    #[arg(long, conflicts_with = "secret_key")]
    secret_key_stdin: bool,
    /// The secret key (insecure: it shows in `ps` and shell history; prefer --secret-key-stdin)
    #[arg(long, value_name = "SECRET", hide_env_values = true)]
    #[arg(value_parser = parse_secret)]
    secret_key: Option<Secret<String>>,
    /// Extra CA certificates (PEM) to trust for the endpoint
    #[arg(long, value_name = "FILE")]
    ca_bundle: Option<PathBuf>,
    /// Import from euca2ools' ini files (default ~/.euca)
    #[arg(long, value_name = "FILE", num_args = 0..=1, conflicts_with = "from_eucarc")]
    from_euca2ools: Option<Option<PathBuf>>,
    /// Import from an eucarc file
    #[arg(long, value_name = "FILE")]
    from_eucarc: Option<PathBuf>,
}

pub async fn run(ctx: &Ctx, args: LoginArgs) -> anyhow::Result<()> {
    let mut opts = LoginOptions {
        profile: args.profile,
        endpoint: args.endpoint,
        region: args.region,
        access_key: args.access_key,
        secret_key: None,
        ca_bundle: args.ca_bundle,
        from_euca2ools: args.from_euca2ools,
        from_eucarc: args.from_eucarc,
    };
    if let Some(secret) = args.secret_key {
        eprintln!("WARNING! Using --secret-key via the CLI is insecure. Use --secret-key-stdin.");
        opts.secret_key = Some(secret);
    } else if args.secret_key_stdin {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("cannot read the secret key from stdin")?;
        let s = s.trim_end_matches(['\n', '\r']).to_string();
        if s.is_empty() {
            bail!(Hinted::new(
                "the secret key on stdin is empty",
                "pipe the secret key, e.g. `docker euca login … --secret-key-stdin < secret.txt`"
            ));
        }
        opts.secret_key = Some(Secret::new(s));
    } else if ops::login::needs_secret(&opts) {
        if !std::io::stdin().is_terminal() {
            bail!(Hinted::new(
                "no secret key given",
                "use --secret-key-stdin, or run in a terminal to be asked"
            ));
        }
        let secret = tokio::task::spawn_blocking(|| read_secret_no_echo("Secret key: ")).await??;
        opts.secret_key = Some(secret);
    }
    let outcome = ops::login(&ctx.docker_config, opts).await?;
    if outcome.backend == Backend::KernelKeyutils {
        eprintln!(
            "warning: no Secret Service is running, so the secret went to the kernel keyring, \
             which does not survive a reboot (run `docker euca login` again after one)"
        );
    }
    println!(
        "Login succeeded: profile {:?}, {} (region {}), {} zone(s); secret stored in the {}",
        outcome.profile,
        outcome.endpoint,
        outcome.region,
        outcome.zones.len(),
        outcome.backend.describe()
    );
    Ok(())
}

/// Keeps a secret given on the command line out of every `Debug` print of the arguments.
fn parse_secret(s: &str) -> Result<Secret<String>, String> {
    Ok(Secret::new(s.to_string()))
}

/// Prompts on the terminal with echo off.
fn read_secret_no_echo(prompt: &str) -> anyhow::Result<Secret<String>> {
    use std::io::Write;
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .context("no terminal")?;
    let echo = |on: bool| {
        std::process::Command::new("stty")
            .arg(if on { "echo" } else { "-echo" })
            .stdin(tty.try_clone().expect("tty"))
            .status()
    };
    (&tty).write_all(prompt.as_bytes())?;
    echo(false)?;
    let mut line = String::new();
    let read = std::io::BufRead::read_line(&mut std::io::BufReader::new(&tty), &mut line);
    let _ = echo(true);
    (&tty).write_all(b"\n")?;
    read?;
    Ok(Secret::new(line.trim_end_matches(['\n', '\r']).to_string()))
}

#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// Profile to remove
    #[arg(long, default_value = DEFAULT_PROFILE)]
    profile: String,
}

pub async fn logout(ctx: &Ctx, args: LogoutArgs) -> anyhow::Result<()> {
    ops::logout(&ctx.docker_config, &args.profile).await?;
    println!("Removed profile {:?} and its secret", args.profile);
    Ok(())
}

#[derive(Debug, Args)]
pub struct ProfilesArgs {
    /// Print JSON
    #[arg(long)]
    json: bool,
}

pub fn profiles(ctx: &Ctx, args: ProfilesArgs) -> anyhow::Result<()> {
    let all = Profiles::new(&ctx.docker_config).all()?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&all)?);
        return Ok(());
    }
    println!(
        "{:<16} {:<48} {:<14} ACCESS KEY",
        "PROFILE", "ENDPOINT", "REGION"
    );
    for (name, p) in all {
        println!(
            "{name:<16} {:<48} {:<14} {}",
            p.endpoint, p.region, p.access_key_id
        );
    }
    Ok(())
}
