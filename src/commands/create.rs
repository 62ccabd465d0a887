//! `docker euca create`

use std::{path::PathBuf, time::Duration};

use clap::Args;

use super::{Ctx, cloud_args::CloudArgs};
use crate::{
    names::MachineName,
    ops::{
        self, CreateOptions,
        create::{DEFAULT_INSTANCE_TYPE, Timeouts, parse_cidr, parse_port},
    },
};

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Machine name (also the docker context name)
    name: MachineName,
    #[command(flatten)]
    cloud: CloudArgs,
    /// Image id (emi-… or ami-…)
    #[arg(long)]
    image: Option<String>,
    /// Instance type
    #[arg(long, default_value = DEFAULT_INSTANCE_TYPE)]
    instance_type: String,
    /// Availability zone
    #[arg(long)]
    zone: Option<String>,
    /// Subnet id (VPC clouds)
    #[arg(long)]
    subnet: Option<String>,
    /// Root volume size in GiB
    #[arg(long, value_name = "GIB")]
    root_size: Option<i32>,
    /// IAM instance profile name or ARN
    #[arg(long, value_name = "NAME|ARN")]
    iam_instance_profile: Option<String>,
    /// Your own cloud-init user data (kept and merged with docker-euca's)
    #[arg(long, value_name = "FILE")]
    user_data: Option<PathBuf>,
    /// SSH login user
    #[arg(long, default_value = "ubuntu")]
    ssh_user: String,
    /// SSH port
    #[arg(long, default_value_t = 22)]
    ssh_port: u16,
    /// Source CIDR allowed to reach SSH and Docker (repeatable)
    #[arg(long = "allow-cidr", value_name = "CIDR", value_parser = parse_cidr, default_value = "0.0.0.0/0")]
    allow_cidrs: Vec<String>,
    /// Extra port to open, PORT[/tcp|udp] (repeatable)
    #[arg(long = "open-port", value_name = "PORT[/PROTO]", value_parser = parse_port)]
    open_ports: Vec<(u16, String)>,
    /// Use this existing security group as it is (never edited)
    #[arg(long, value_name = "NAME")]
    security_group: Option<String>,
    /// Existing EC2 key pair to launch with (with --ssh-key)
    #[arg(long, value_name = "NAME", requires = "ssh_key")]
    keypair_name: Option<String>,
    /// Private key of --keypair-name
    #[arg(long, value_name = "PATH", requires = "keypair_name")]
    ssh_key: Option<PathBuf>,
    /// Reach the instance on its private address (VPC or VPN users)
    #[arg(long)]
    use_private_address: bool,
    /// Keep what was made if the create fails (remove it later with `rm`)
    #[arg(long)]
    keep_on_failure: bool,
    /// No progress output
    #[arg(short, long)]
    quiet: bool,
    /// Maximum wait for each stage, in seconds
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    stage_timeout: u64,
}

pub async fn run(ctx: &Ctx, args: CreateArgs) -> anyhow::Result<()> {
    let stage = Duration::from_secs(args.stage_timeout);
    let opts = CreateOptions {
        name: args.name,
        cloud: args.cloud.into(),
        image: args.image,
        instance_type: args.instance_type,
        zone: args.zone,
        subnet: args.subnet,
        root_size: args.root_size,
        iam_instance_profile: args.iam_instance_profile,
        user_data: args.user_data,
        ssh_user: args.ssh_user,
        ssh_port: args.ssh_port,
        allow_cidrs: args.allow_cidrs,
        open_ports: args.open_ports,
        security_group: args.security_group,
        keypair_name: args.keypair_name,
        ssh_key: args.ssh_key,
        use_private_address: args.use_private_address,
        keep_on_failure: args.keep_on_failure,
        quiet: args.quiet,
        timeouts: Timeouts {
            running: stage,
            address: stage,
            ssh_port: stage,
        },
    };
    let outcome = ops::create(&ctx.docker_config, opts, ctx.cancel.clone()).await?;
    println!(
        "{} is up: instance {} at {}, SSH answering on port {}",
        outcome.record.name,
        outcome.record.cloud.instance_id.as_deref().unwrap_or("?"),
        outcome.address,
        outcome.record.ssh.port.unwrap_or(22)
    );
    Ok(())
}
