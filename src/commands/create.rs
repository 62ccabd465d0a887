//! `docker euca create`

use std::{path::PathBuf, time::Duration};

use clap::Args;

use super::{Ctx, cloud_args::CloudArgs};
use crate::{
    names::MachineName,
    ops::{
        self, CreateOptions,
        create::{DEFAULT_INSTANCE_TYPE, Timeouts},
        setup::ProvisionPlan,
    },
    provision::{EngineInstall, EngineOptions, daemon::check_engine_value},
    report::Hinted,
};

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Machine name (also the docker context name; at most 32 characters); several names make
    /// a fleet, launched together
    #[arg(help_heading = "Machines", value_parser = new_machine_name, required = true, value_name = "NAME")]
    names: Vec<MachineName>,
    #[command(flatten, next_help_heading = "Cloud")]
    cloud: CloudArgs,
    /// Image id (emi-… or ami-…)
    #[arg(help_heading = "Instance", long)]
    image: Option<String>,
    /// Instance type
    #[arg(help_heading = "Instance", long, default_value = DEFAULT_INSTANCE_TYPE, value_parser = parse_instance_type)]
    instance_type: String,
    /// Availability zone
    #[arg(help_heading = "Instance", long)]
    zone: Option<String>,
    /// Subnet id (VPC clouds)
    #[arg(help_heading = "Network", long)]
    subnet: Option<String>,
    /// Root volume size in GiB
    #[arg(help_heading = "Instance", long, value_name = "GIB")]
    root_size: Option<i32>,
    /// IAM instance profile name or ARN
    #[arg(help_heading = "Instance", long, value_name = "NAME|ARN")]
    iam_instance_profile: Option<String>,
    /// Your own cloud-init user data (kept and merged with docker-euca's)
    #[arg(help_heading = "Instance", long, value_name = "FILE")]
    user_data: Option<PathBuf>,
    /// SSH login user
    #[arg(help_heading = "SSH", long, default_value = "ubuntu")]
    ssh_user: String,
    /// SSH port
    #[arg(help_heading = "SSH", long, default_value_t = 22, value_parser = clap::value_parser!(u16).range(1..))]
    ssh_port: u16,
    /// Source CIDR allowed to reach SSH and Docker (repeatable; default: the profile's, else
    /// this machine's own address as a /32)
    #[arg(help_heading = "Network", long = "allow-cidr", value_name = "CIDR", value_parser = super::cloud_args::parse_cidr)]
    allow_cidrs: Vec<String>,
    /// Extra port to open, PORT[/tcp|udp] (repeatable)
    #[arg(help_heading = "Network", long = "open-port", value_name = "PORT[/PROTO]", value_parser = parse_port)]
    open_ports: Vec<(u16, String)>,
    /// Use this existing security group as it is (never edited)
    #[arg(help_heading = "Network", long, value_name = "NAME")]
    security_group: Option<String>,
    /// Existing EC2 key pair to launch with (with --ssh-key)
    #[arg(help_heading = "SSH", long, value_name = "NAME", requires = "ssh_key")]
    keypair_name: Option<String>,
    /// Private key of --keypair-name
    #[arg(
        help_heading = "SSH",
        long,
        value_name = "PATH",
        requires = "keypair_name"
    )]
    ssh_key: Option<PathBuf>,
    /// Generate an RSA-4096 key and import it as key pair docker-euca-NAME-XXXXXXXX (for images without
    /// cloud-init; rm deletes it)
    #[arg(help_heading = "SSH", long, conflicts_with_all = ["keypair_name", "ssh_key"])]
    import_keypair: bool,
    /// The image has no cloud-init: send none of our user data, read the SSH host key from the
    /// console (needs --import-keypair or --keypair-name)
    #[arg(help_heading = "Instance", long)]
    no_cloud_init: bool,
    /// With --no-cloud-init: if the console never shows the host keys, trust the first key seen
    #[arg(help_heading = "SSH", long, requires = "no_cloud_init")]
    ssh_trust_first_key: bool,
    /// Reach the instance on its private address (VPC or VPN users)
    #[arg(help_heading = "Network", long)]
    use_private_address: bool,
    /// Keep what was made if the create fails (remove it later with `rm`)
    #[arg(help_heading = "Output and waiting", long)]
    keep_on_failure: bool,
    /// No progress output
    #[arg(help_heading = "Output and waiting", short, long)]
    quiet: bool,
    /// Maximum wait for each stage, in seconds
    #[arg(
        help_heading = "Output and waiting",
        long,
        value_name = "SECS",
        default_value_t = 300
    )]
    stage_timeout: u64,
    /// Docker context name (default: the machine name)
    #[arg(help_heading = "Output and waiting", long, value_name = "NAME")]
    context_name: Option<MachineName>,
    /// Make the new context the current one
    #[arg(help_heading = "Output and waiting", long = "use")]
    use_context: bool,
    /// How to get the engine: package (default), skip (use the image's)
    #[arg(help_heading = "Engine", long, value_name = "package|skip", default_value = "package", value_parser = ["package", "skip"])]
    engine_install: String,
    /// Run this install script for the engine instead of the package
    #[arg(
        help_heading = "Engine",
        long,
        value_name = "URL",
        conflicts_with = "engine_install"
    )]
    engine_install_url: Option<String>,
    /// Extra dockerd flag, KEY[=VALUE] (repeatable)
    #[arg(
        help_heading = "Engine",
        long = "engine-opt",
        value_name = "KEY[=VALUE]"
    )]
    engine_opts: Vec<String>,
    /// Engine label KEY=VALUE (repeatable)
    #[arg(
        help_heading = "Engine",
        long = "engine-label",
        value_name = "KEY=VALUE"
    )]
    engine_labels: Vec<String>,
    /// Engine storage driver
    #[arg(help_heading = "Engine", long, value_name = "DRIVER")]
    engine_storage_driver: Option<String>,
    /// Registry mirror (repeatable)
    #[arg(
        help_heading = "Engine",
        long = "engine-registry-mirror",
        value_name = "URL"
    )]
    engine_registry_mirrors: Vec<String>,
    /// Insecure registry (repeatable)
    #[arg(
        help_heading = "Engine",
        long = "engine-insecure-registry",
        value_name = "HOST[:PORT]"
    )]
    engine_insecure_registries: Vec<String>,
    /// Environment variable for the daemon, KEY=VALUE (repeatable)
    #[arg(help_heading = "Engine", long = "engine-env", value_name = "KEY=VALUE")]
    engine_env: Vec<String>,
    /// Extra name or address for the daemon's certificate (repeatable)
    #[arg(help_heading = "TLS", long = "tls-san", value_name = "NAME|IP")]
    tls_sans: Vec<String>,
    /// Make a fleet of N machines NAME-1 … NAME-N (one NAME)
    #[arg(help_heading = "Machines", long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100))]
    count: Option<u32>,
    /// How many machines of a fleet are set up over SSH at once
    #[arg(help_heading = "Machines", long, value_name = "N", default_value_t = default_parallel(), value_parser = clap::value_parser!(u32).range(1..))]
    parallel: u32,
    /// One CA for the whole fleet, so that one client certificate opens every host (default:
    /// a CA per machine)
    #[arg(help_heading = "TLS", long)]
    shared_ca: bool,
    /// Join the machines into the Docker Swarm cluster CLUSTER (made if new; a docker context
    /// of that name points at a manager)
    #[arg(help_heading = "Swarm", long, value_name = "CLUSTER", value_parser = new_machine_name)]
    swarm: Option<MachineName>,
    /// Managers among the machines of a new cluster: the first K (3 or 5 survive failures)
    #[arg(help_heading = "Swarm", long, value_name = "K", requires = "swarm", value_parser = clap::value_parser!(u32).range(1..=7))]
    swarm_managers: Option<u32>,
    /// Role of machines joining an existing cluster
    #[arg(help_heading = "Swarm", long, value_name = "manager|worker", default_value = "worker", requires = "swarm", value_parser = ["manager", "worker"])]
    swarm_role: String,
    /// Instance metadata tokens: required (IMDSv2 only) or optional [default: required]
    #[arg(help_heading = "AWS dialect", long, value_name = "required|optional", value_parser = ["required", "optional"])]
    metadata_http_tokens: Option<String>,
    /// Network hops the instance metadata's answers may travel [default: 1, not into containers]
    #[arg(help_heading = "AWS dialect", long, value_name = "N", value_parser = clap::value_parser!(i32).range(1..=64))]
    metadata_hop_limit: Option<i32>,
    /// The root volume's EBS type [default: gp3]
    #[arg(help_heading = "AWS dialect", long, value_name = "TYPE", value_parser = ["gp3", "gp2", "io1", "io2", "st1", "sc1", "standard"])]
    root_volume_type: Option<String>,
    /// Provisioned IOPS of the root volume (gp3, io1, io2)
    #[arg(help_heading = "AWS dialect", long, value_name = "IOPS", value_parser = clap::value_parser!(i32).range(100..))]
    root_iops: Option<i32>,
    /// Throughput of a gp3 root volume, in MiB/s
    #[arg(help_heading = "AWS dialect", long, value_name = "MIBS", value_parser = clap::value_parser!(i32).range(125..=2000))]
    root_throughput: Option<i32>,
    /// Encrypt the root volume; --root-encrypted=false opts out [default: true]
    #[arg(help_heading = "AWS dialect", long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    root_encrypted: Option<bool>,
    /// The KMS key that encrypts the root volume: id, ARN or alias/NAME [default: EBS's]
    #[arg(help_heading = "AWS dialect", long, value_name = "KEY")]
    kms_key_id: Option<String>,
    /// A spot instance (one-time, in the same RunInstances: no spot request to outlive it)
    #[arg(help_heading = "AWS dialect", long)]
    spot: bool,
    /// The most to pay for the spot instance, in USD per hour [default: the on-demand price]
    #[arg(help_heading = "AWS dialect", long, value_name = "USD", requires = "spot", value_parser = parse_price)]
    spot_max_price: Option<String>,
    /// When there is no spot capacity, launch on demand instead (and say so)
    #[arg(help_heading = "AWS dialect", long, value_name = "on-demand", requires = "spot", value_parser = ["on-demand"])]
    spot_fallback: Option<String>,
    /// Give the instance a public address even where its subnet maps none
    #[arg(help_heading = "AWS dialect", long, conflicts_with = "no_public_ip")]
    associate_public_ip: bool,
    /// No public address: the instance is reached on its private one (VPN, peering, bastion)
    #[arg(help_heading = "AWS dialect", long)]
    no_public_ip: bool,
}

/// `--spot-max-price`: a positive decimal number of dollars, as EC2 takes it.
fn parse_price(s: &str) -> Result<String, String> {
    match s.parse::<f64>() {
        Ok(p) if p > 0.0 && p.is_finite() && !s.contains(['e', 'E']) => Ok(s.to_string()),
        _ => Err(format!(
            "{s:?} is not a price: give dollars per hour, e.g. 0.05"
        )),
    }
}

/// SSH set-ups at once: each is mostly waiting on the network, so a few per core.
fn default_parallel() -> u32 {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    (cores * 4).clamp(4, 16) as u32
}

/// The machines to make: the names given, or `--count`'s `NAME-1` … `NAME-N`.
fn fleet_names(names: Vec<MachineName>, count: Option<u32>) -> anyhow::Result<Vec<MachineName>> {
    let Some(count) = count else {
        return Ok(names);
    };
    let [base] = names.as_slice() else {
        anyhow::bail!(Hinted::new(
            "--count takes one base name",
            "give one NAME with --count N (the machines are NAME-1 … NAME-N), or several names without it",
        ));
    };
    (1..=count)
        .map(|n| {
            MachineName::for_new_machine(format!("{base}-{n}")).map_err(|e| {
                Hinted::new(
                    format!("{base}-{n}: {e}"),
                    "pick a shorter base name for --count",
                )
                .into()
            })
        })
        .collect()
}

fn new_machine_name(s: &str) -> Result<MachineName, String> {
    MachineName::for_new_machine(s).map_err(|e| format!("{e}; {}", e.hint()))
}

/// An instance type: a word, not empty (whether the cloud offers it, only the cloud can say).
fn parse_instance_type(s: &str) -> Result<String, String> {
    if s.is_empty() || s.contains(char::is_whitespace) {
        return Err(
            "an instance type is one word, such as m1.small (`euca-describe-instance-types` lists them)"
                .into(),
        );
    }
    Ok(s.to_string())
}

/// `PORT[/PROTO]` with PROTO tcp (default) or udp.
pub fn parse_port(s: &str) -> Result<(u16, String), String> {
    let (port, proto) = s.split_once('/').unwrap_or((s, "tcp"));
    let port: u16 = port
        .parse()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| format!("{port:?} is not a port number (1-65535)"))?;
    let proto = proto.to_ascii_lowercase();
    if proto != "tcp" && proto != "udp" {
        return Err(format!("protocol {proto:?} in {s:?} must be tcp or udp"));
    }
    Ok((port, proto))
}

pub async fn run(ctx: &Ctx, args: CreateArgs) -> anyhow::Result<()> {
    let stage = Duration::from_secs(args.stage_timeout);
    let fleet_label = args.count.map(|_| args.names[0].to_string());
    let swarm_cluster = args.swarm.as_ref().map(|c| c.to_string());
    let names = fleet_names(args.names, args.count)?;
    if names.len() > 1 && (args.context_name.is_some() || args.use_context) {
        anyhow::bail!(Hinted::new(
            "--context-name and --use are for one machine",
            "each machine of a fleet gets a context of its own name; `docker context use NAME` picks one",
        ));
    }
    for san in &args.tls_sans {
        crate::tls::San::parse(san)?;
    }
    let storage_driver: Vec<String> = args.engine_storage_driver.iter().cloned().collect();
    let engine_values = [
        ("--engine-opt", &args.engine_opts),
        ("--engine-storage-driver", &storage_driver),
        ("--engine-label", &args.engine_labels),
        ("--engine-registry-mirror", &args.engine_registry_mirrors),
        (
            "--engine-insecure-registry",
            &args.engine_insecure_registries,
        ),
        ("--engine-env", &args.engine_env),
    ];
    for (flag, values) in engine_values {
        for v in values {
            check_engine_value(flag, v)
                .map_err(|e| Hinted::new(e, "give one value per flag, without spaces"))?;
        }
    }
    let install = match args.engine_install_url {
        Some(url) => EngineInstall::Url(url),
        None if args.engine_install == "skip" => EngineInstall::Skip,
        None => EngineInstall::Package,
    };
    let provision = ProvisionPlan {
        engine: EngineOptions {
            opts: args.engine_opts,
            labels: args.engine_labels,
            storage_driver: args.engine_storage_driver,
            registry_mirrors: args.engine_registry_mirrors,
            insecure_registries: args.engine_insecure_registries,
            env: args.engine_env,
        },
        install,
        tls_sans: args.tls_sans,
        context_name: args.context_name.as_ref().unwrap_or(&names[0]).to_string(),
        use_context: args.use_context,
        stage_timeout: stage,
    };
    let opts = CreateOptions {
        provision,
        names,
        parallel: args.parallel as usize,
        shared_ca: args.shared_ca,
        fleet_label,
        swarm: args.swarm.map(|cluster| ops::swarm::SwarmPlan {
            cluster,
            managers: args.swarm_managers.map(|k| k as usize),
            join_as_manager: args.swarm_role == "manager",
        }),
        aws: ops::aws_options::AwsOptions {
            metadata_tokens_required: args.metadata_http_tokens.map(|t| t == "required"),
            metadata_hop_limit: args.metadata_hop_limit,
            root_volume_type: args.root_volume_type,
            root_iops: args.root_iops,
            root_throughput: args.root_throughput,
            root_encrypted: args.root_encrypted,
            kms_key_id: args.kms_key_id,
            spot: args.spot,
            spot_max_price: args.spot_max_price,
            spot_fallback_on_demand: args.spot_fallback.is_some(),
            public_ip: match (args.associate_public_ip, args.no_public_ip) {
                (true, _) => Some(true),
                (_, true) => Some(false),
                _ => None,
            },
        },
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
        import_keypair: args.import_keypair,
        no_cloud_init: args.no_cloud_init,
        trust_first_key: args.ssh_trust_first_key,
        use_private_address: args.use_private_address || args.no_public_ip,
        keep_on_failure: args.keep_on_failure,
        quiet: args.quiet,
        timeouts: Timeouts {
            running: stage,
            address: stage,
            ssh_port: stage,
        },
    };
    let outcome = ops::create(&ctx.docker_config, opts, ctx.cancel.clone()).await?;
    tracing::debug!(
        "ssh connections opened: {}; from SSH to verified: {}; total {:.1}s",
        crate::ssh::connections_opened(),
        outcome
            .machines
            .iter()
            .filter_map(|m| m.result.as_ref().ok())
            .map(|r| format!("{:.1}s", r.verified.provision_time.as_secs_f64()))
            .collect::<Vec<_>>()
            .join(", "),
        outcome.total.as_secs_f64()
    );
    if let (Some(took), Some(cluster)) = (outcome.swarm_took, &swarm_cluster) {
        tracing::debug!(
            "swarm {cluster}: from all verified to all nodes Ready: {:.1}s",
            took.as_secs_f64()
        );
    }
    if let [one] = outcome.machines.as_slice() {
        let ready = one.result.as_ref().map_err(|e| anyhow::anyhow!("{e:#}"))?;
        println!(
            "{} is ready: Docker {} (API {}) at {} — docker context use {}",
            ready.record.name,
            ready.verified.version.version,
            ready.verified.version.api_version,
            ready.verified.url,
            ready.record.context_name()
        );
        print_swarm_line(swarm_cluster.as_deref(), &outcome);
        return Ok(());
    }
    print!("{}", fleet_summary(&outcome.machines));
    print_swarm_line(swarm_cluster.as_deref(), &outcome);
    let failed: Vec<&str> = outcome
        .machines
        .iter()
        .filter(|m| m.result.is_err())
        .map(|m| m.name.as_str())
        .collect();
    if !failed.is_empty() {
        anyhow::bail!(Hinted::new(
            format!(
                "{} of {} machines failed: {}",
                failed.len(),
                outcome.machines.len(),
                failed.join(", ")
            ),
            "what they made was removed; the others are ready (see the table); `docker euca logs NAME` shows a host's boot",
        ));
    }
    Ok(())
}

/// With `--swarm`, how to reach the cluster.
fn print_swarm_line(cluster: Option<&str>, outcome: &ops::create::CreateOutcome) {
    let Some(cluster) = cluster else { return };
    if outcome.machines.iter().any(|m| m.result.is_ok()) {
        println!("swarm {cluster}: docker --context {cluster} node ls");
    }
}

/// The table a fleet's create ends with: each machine, its address, and how it went.
fn fleet_summary(machines: &[ops::create::MachineOutcome]) -> String {
    let rows: Vec<[String; 3]> = machines
        .iter()
        .map(|m| match &m.result {
            Ok(r) => [
                m.name.to_string(),
                r.address.to_string(),
                match &r.swarm_role {
                    Some(role) => {
                        format!("ready: Docker {}, swarm {role}", r.verified.version.version)
                    }
                    None => format!("ready: Docker {}", r.verified.version.version),
                },
            ],
            Err(e) => [
                m.name.to_string(),
                "-".into(),
                format!("failed: {}", crate::report::first_line(e)),
            ],
        })
        .collect();
    crate::report::table(&["NAME", "ADDRESS", "RESULT"], &rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs() {
        use crate::commands::cloud_args::parse_cidr;
        assert_eq!(parse_cidr("10.0.0.0/8").unwrap(), "10.0.0.0/8");
        assert_eq!(parse_cidr("0.0.0.0/0").unwrap(), "0.0.0.0/0");
        for bad in ["10.0.0.0", "10.0.0.0/33", "10.0.0/8", "x/1", "10.0.0.0/-1"] {
            assert!(parse_cidr(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ports() {
        assert_eq!(parse_port("80").unwrap(), (80, "tcp".into()));
        assert_eq!(parse_port("53/UDP").unwrap(), (53, "udp".into()));
        for bad in ["0", "70000", "80/icmp", "http", ""] {
            assert!(parse_port(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_empty_instance_type_and_ssh_port_0_are_usage_errors() {
        use clap::Parser;
        let parse = |extra: &[&str]| {
            let mut argv = vec!["docker euca", "create", "web1"];
            argv.extend_from_slice(extra);
            crate::cli::Cli::try_parse_from(argv)
        };
        for bad in [
            &["--ssh-port", "0"][..],
            &["--ssh-port", "65536"],
            &["--instance-type", ""],
            &["--instance-type", "m1 small"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        assert!(parse(&["--ssh-port", "2222", "--instance-type", "t2.micro"]).is_ok());
        assert!(parse(&[]).is_ok(), "the defaults pass their own parsers");
    }

    #[test]
    fn every_create_flag_sits_under_a_heading_and_help_ends_with_examples() {
        use clap::CommandFactory;
        let cli = crate::cli::Cli::command();
        let create = cli.find_subcommand("create").expect("create");
        let loose: Vec<&str> = create
            .get_arguments()
            .filter(|a| a.get_help_heading().is_none() && !a.is_global_set())
            .map(|a| a.get_id().as_str())
            .filter(|id| !["help", "version"].contains(id))
            .collect();
        assert!(
            loose.is_empty(),
            "create flags without a heading: {loose:?}"
        );
        let help = create.clone().render_help().to_string();
        for heading in [
            "Cloud:",
            "Instance:",
            "Network:",
            "SSH:",
            "Engine:",
            "TLS:",
            "Swarm:",
        ] {
            assert!(help.contains(heading), "{heading} missing in:\n{help}");
        }
        assert!(help.contains("Examples:\n  docker euca create"), "{help}");
    }

    #[test]
    fn a_new_machine_name_too_long_for_the_cloud_is_refused_in_one_line() {
        let err = new_machine_name(&"w".repeat(33)).unwrap_err();
        assert!(err.contains("at most 32") && !err.contains('\n'), "{err}");
        assert!(new_machine_name("web1").is_ok());
    }
}
