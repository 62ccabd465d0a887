//! The clap tree and the dispatch from parsed arguments to one command module.

use std::{ffi::OsString, process::ExitCode};

use clap::{CommandFactory, Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::{
    commands::{self, Ctx},
    ops::power::Power,
    plugin::{self, GlobalFlags, Invocation},
    report,
};

#[derive(Debug, Parser)]
#[command(
    name = "docker euca",
    bin_name = "docker euca",
    version,
    about = "Docker hosts on a Eucalyptus cloud",
    long_about = "Launch instances on a Eucalyptus (EC2-compatible) cloud, provision Docker on them \
                  over SSH with mutual TLS, and manage them as docker contexts.",
    disable_help_subcommand = true,
    propagate_version = true
)]
pub struct Cli {
    /// Show debug output (docker's `-D` before `euca` works too)
    #[arg(short = 'D', long, global = true)]
    pub debug: bool,

    #[command(subcommand)]
    pub command: Command,
}

const CREATE_EXAMPLES: &str = "\
Examples:
  docker euca create web1 --image emi-12345678 --use
  docker euca create web1 --image emi-12345678 --allow-cidr 203.0.113.0/24 --open-port 80
  docker euca create app --count 3 --image emi-12345678           # app-1 … app-3, one launch
  docker euca create node --count 3 --swarm prod --image emi-12345678
  docker euca create db1 --image emi-12345678 --subnet subnet-1234 --use-private-address
  docker euca create old1 --image emi-12345678 --no-cloud-init --import-keypair";

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a Docker host on the cloud, or a fleet of them (several names, --count), joined
    /// into a Docker Swarm with --swarm
    #[command(after_help = CREATE_EXAMPLES)]
    Create(Box<commands::create::CreateArgs>),
    /// Remove machines and everything they have in the cloud
    #[command(visible_alias = "remove")]
    Rm(commands::rm::RmArgs),
    /// Take over docker-machine hosts (amazonec2, eucalyptus): keyring, pinned host key, context
    ImportMachine(commands::import::ImportArgs),
    /// Remove what docker-euca made in the cloud that no machine record accounts for any more
    Prune(commands::prune::PruneArgs),
    /// List machines (one cloud call per endpoint)
    Ls(commands::ls::LsArgs),
    /// Docker Swarm clusters of the machines (`swarm ls`)
    Swarm(commands::swarm::SwarmArgs),
    /// Show a machine's record (it holds no secret)
    Inspect(commands::inspect::InspectArgs),
    /// Show the instance's state
    Status(commands::inspect::StatusArgs),
    /// Show the machine's address
    Ip(commands::inspect::NameArgs),
    /// Show the docker endpoint URL
    Url(commands::inspect::NameArgs),
    /// Print the docker CLI flags for the machine
    Config(commands::inspect::NameArgs),
    /// Make the machine's context the current one
    Use(commands::inspect::NameArgs),
    /// Print the machine docker talks to now (--context, DOCKER_HOST, DOCKER_CONTEXT, then
    /// the current context); exit 1 when none
    Active,
    /// Print the environment variables that point docker at the machine
    Env(commands::env::EnvArgs),
    /// Log in over SSH (host key pinned), or run a command
    Ssh(commands::ssh::SshArgs),
    /// Copy files to or from a machine over SSH
    Scp(commands::ssh::ScpArgs),
    /// Start machines (a new address is handled: certificate reissued, context updated)
    Start(commands::power::PowerArgs),
    /// Stop machines
    Stop(commands::power::PowerArgs),
    /// Restart machines
    Restart(commands::power::PowerArgs),
    /// Force machines to stop
    Kill(commands::power::PowerArgs),
    /// Issue new TLS certificates for a machine
    RegenerateCerts(commands::power::RegenerateArgs),
    /// Re-run provisioning on a machine (idempotent)
    Provision(commands::power::ProvisionArgs),
    /// Upgrade machines' engines through their package manager (configuration kept, verified)
    Upgrade(commands::upgrade::UpgradeArgs),
    /// Check the cloud side, or one machine, and say what is wrong (changes nothing)
    Doctor(commands::doctor::DoctorArgs),
    /// Show a machine's boot log: cloud-init's output over SSH, or the console (--console)
    Logs(commands::logs::LogsArgs),
    /// Print a shell completion script
    Completion(commands::completion::CompletionArgs),
    /// Write the man pages into a directory (for packaging)
    #[command(hide = true)]
    ManPages(commands::manpages::ManPagesArgs),
    /// Check cloud credentials and keep them in the OS keyring
    Login(commands::login::LoginArgs),
    /// Remove a credential profile and its secret
    Logout(commands::login::LogoutArgs),
    /// List credential profiles (never a secret)
    Profiles(commands::login::ProfilesArgs),
    /// Show the plugin version (build details with -D), or with NAME the machine's engine version
    Version(commands::version::VersionArgs),
}

/// Runs one invocation to completion and returns the process exit code.
pub fn main(invocation: Invocation) -> ExitCode {
    let (globals, args, help) = match invocation {
        Invocation::Run { globals, args } => (globals, args, false),
        Invocation::Help { globals, args } => (globals, args, true),
        Invocation::Complete {
            globals,
            args,
            descriptions,
        } => {
            let machines = crate::store::Store::new(&globals.docker_config_dir()).names();
            let answer = commands::complete::complete(&Cli::command(), &args, &machines);
            print!("{}", answer.render(descriptions));
            return ExitCode::SUCCESS;
        }
    };
    let mut argv: Vec<OsString> = vec!["docker euca".into()];
    argv.extend(args);
    if help {
        argv.push("--help".into());
    }
    let cli = match Cli::try_parse_from(argv) {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            return ExitCode::from(if err.use_stderr() { 2 } else { 0 });
        }
    };
    let debug = cli.debug || globals.debug;
    init_logging(&globals, debug);
    // bollard (ring) and the AWS SDK share one rustls; exactly one provider may be installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            return report::failure(
                &anyhow::Error::new(err).context("cannot start the async runtime"),
                debug,
            );
        }
    };
    let outcome = runtime.block_on(async move {
        let cancel = CancellationToken::new();
        plugin::cancel::watch(cancel.clone());
        let ctx = Ctx::new(globals, debug, cancel.clone());
        if matches!(cli.command, Command::Create(_) | Command::ImportMachine(_)) {
            // These watch the token themselves, so that they can roll back before returning.
            return dispatch(&ctx, cli.command).await;
        }
        tokio::select! {
            outcome = dispatch(&ctx, cli.command) => outcome,
            _ = cancel.cancelled() => Err(anyhow::Error::new(report::Cancelled)),
        }
    });
    // Do not wait for blocked helpers (keyring calls, stdin readers) on the way out.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => report::failure(&err, debug),
    }
}

async fn dispatch(ctx: &Ctx, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Create(args) => commands::create::run(ctx, *args).await,
        Command::Rm(args) => commands::rm::run(ctx, args).await,
        Command::Swarm(args) => commands::swarm::run(ctx, args).await,
        Command::Prune(args) => commands::prune::run(ctx, args).await,
        Command::ImportMachine(args) => commands::import::run(ctx, args).await,
        Command::Ls(args) => commands::ls::run(ctx, args).await,
        Command::Inspect(args) => commands::inspect::inspect(ctx, args),
        Command::Status(args) => commands::inspect::status(ctx, args).await,
        Command::Ip(args) => commands::inspect::ip(ctx, args),
        Command::Url(args) => commands::inspect::url(ctx, args),
        Command::Config(args) => commands::inspect::config(ctx, args),
        Command::Use(args) => commands::inspect::use_machine(ctx, args),
        Command::Active => commands::inspect::active(ctx),
        Command::Env(args) => commands::env::run(ctx, args),
        Command::Ssh(args) => commands::ssh::run(ctx, args).await,
        Command::Scp(args) => commands::ssh::scp(ctx, args).await,
        Command::Start(args) => commands::power::run(ctx, args, Power::Start).await,
        Command::Stop(args) => commands::power::run(ctx, args, Power::Stop).await,
        Command::Restart(args) => commands::power::run(ctx, args, Power::Restart).await,
        Command::Kill(args) => commands::power::run(ctx, args, Power::Kill).await,
        Command::RegenerateCerts(args) => commands::power::regenerate(ctx, args).await,
        Command::Provision(args) => commands::power::provision(ctx, args).await,
        Command::Upgrade(args) => commands::upgrade::run(ctx, args).await,
        Command::Doctor(args) => commands::doctor::run(ctx, args).await,
        Command::Logs(args) => commands::logs::run(ctx, args).await,
        Command::Completion(args) => commands::completion::run(args),
        Command::ManPages(args) => commands::manpages::run(args),
        Command::Login(args) => commands::login::run(ctx, args).await,
        Command::Logout(args) => commands::login::logout(ctx, args).await,
        Command::Profiles(args) => commands::login::profiles(ctx, args),
        Command::Version(args) => commands::version::run(ctx, args).await,
    }
}

fn init_logging(globals: &GlobalFlags, debug: bool) {
    use tracing_subscriber::{filter::Targets, layer::SubscriberExt, util::SubscriberInitExt};
    let level = if debug {
        "debug".to_string()
    } else {
        match globals.log_level.as_deref() {
            Some("fatal") => "error".into(),
            Some(level) => level.to_string(),
            None => "warn".into(),
        }
    };
    // Our crate at the chosen level, dependencies at `warn`, unless DOCKER_EUCA_LOG gives
    // targets (`info,russh=debug`: the syntax of RUST_LOG without span filters).
    let filter = std::env::var("DOCKER_EUCA_LOG")
        .ok()
        .and_then(|v| v.parse::<Targets>().ok())
        .unwrap_or_else(|| {
            format!("warn,docker_euca={level}")
                .parse()
                .unwrap_or_default()
        });
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(debug)
        .without_time();
    let _ = tracing_subscriber::registry()
        .with(fmt)
        .with(filter)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clap_tree_is_consistent() {
        Cli::command().debug_assert();
    }
}
