//! The small read-only commands: `inspect`, `status`, `ip`, `url`, `config`, and `use`.

use clap::Args;

use super::{Ctx, cloud_args::CloudArgs};
use crate::{
    names::MachineName,
    ops::{machine, machine::machine_address},
    report::Hinted,
    template,
};

#[derive(Debug, Args)]
pub struct NameArgs {
    /// Machine name
    pub name: MachineName,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Machine name
    name: MachineName,
    /// json, or a template such as '{{.cloud.instance_id}}'
    #[arg(short, long, default_value = "json")]
    format: String,
}

/// Everything in the record (which holds no secret).
pub fn inspect(ctx: &Ctx, args: InspectArgs) -> anyhow::Result<()> {
    // A bad template fails before the record is read.
    let format = template::Format::parse(&args.format)?;
    format.check(&crate::store::MachineRecord::new(args.name.clone()))?;
    let record = ctx.store().load(&args.name)?;
    let value = serde_json::to_value(&record)?;
    match format {
        template::Format::Json | template::Format::DefaultTable => {
            println!("{}", serde_json::to_string_pretty(&value)?)
        }
        _ => println!("{}", template::render_one(&args.format, &value)?),
    }
    Ok(())
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Machine name
    name: MachineName,
    #[command(flatten)]
    cloud: CloudArgs,
}

/// The instance's state as the cloud reports it.
pub async fn status(ctx: &Ctx, args: StatusArgs) -> anyhow::Result<()> {
    let record = ctx.store().load(&args.name)?;
    let id = machine::instance_id(&record)?;
    let ec2 = machine::cloud_of_machine(&ctx.docker_config, &record, &args.cloud.into()).await?;
    let state = match ec2.describe_instance(&id).await? {
        Some(i) => {
            let mut c = i.state.chars();
            c.next()
                .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                .unwrap_or_default()
        }
        None => "NotFound".into(),
    };
    println!("{state}");
    Ok(())
}

fn address(
    ctx: &Ctx,
    name: &MachineName,
) -> anyhow::Result<(crate::store::MachineRecord, std::net::IpAddr)> {
    let record = ctx.store().load(name)?;
    let ip = machine_address(&record).ok_or_else(|| {
        Hinted::new(
            format!("{name} has no address on record"),
            format!("is it running? `docker euca start {name}`"),
        )
    })?;
    Ok((record, ip))
}

pub fn ip(ctx: &Ctx, args: NameArgs) -> anyhow::Result<()> {
    println!("{}", address(ctx, &args.name)?.1);
    Ok(())
}

pub fn url(ctx: &Ctx, args: NameArgs) -> anyhow::Result<()> {
    let (record, ip) = address(ctx, &args.name)?;
    println!(
        "{}",
        record
            .engine
            .url
            .unwrap_or_else(|| format!("tcp://{ip}:2376"))
    );
    Ok(())
}

/// The docker CLI flags that reach the machine, as docker-machine printed them.
pub fn config(ctx: &Ctx, args: NameArgs) -> anyhow::Result<()> {
    let record = ctx.store().load(&args.name)?;
    let context = record.context_name();
    let url = record.engine.url.clone().ok_or_else(|| {
        Hinted::new(
            format!("{} has no docker endpoint yet", args.name),
            format!("`docker euca provision {}`", args.name),
        )
    })?;
    let tls = ctx.contexts().tls_dir(&context);
    println!(
        "--tlsverify\n--tlscacert=\"{}\"\n--tlscert=\"{}\"\n--tlskey=\"{}\"\n-H={url}",
        tls.join("ca.pem").display(),
        tls.join("cert.pem").display(),
        tls.join("key.pem").display()
    );
    Ok(())
}

/// Makes the machine's context the current one.
pub fn use_machine(ctx: &Ctx, args: NameArgs) -> anyhow::Result<()> {
    let record = ctx.store().load(&args.name)?;
    let context = record.context_name();
    ctx.contexts().read(&context)?;
    ctx.config_file().set_current_context(&context)?;
    println!("Current context is now {context:?}");
    Ok(())
}

/// `active`: the machine docker talks to now, by the docker CLI's own rule (`--context`, then
/// `DOCKER_HOST`, then `DOCKER_CONTEXT`, then `config.json`); nothing on stdout and exit 1
/// when it is none of ours.
pub fn active(ctx: &Ctx) -> anyhow::Result<()> {
    let current = ctx.globals.current(&ctx.docker_config);
    let found = ctx
        .store()
        .list()?
        .into_iter()
        .filter_map(|(_, r)| r.ok())
        .find(|r| current.is(&r.context_name(), r.engine.url.as_deref()));
    match found {
        Some(r) => {
            println!("{}", r.name);
            Ok(())
        }
        None => {
            let what = match current {
                crate::plugin::Current::Context(c) => format!("context {c:?}"),
                crate::plugin::Current::Host(h) => format!("DOCKER_HOST {h}"),
            };
            anyhow::bail!(crate::report::Hinted::new(
                format!("no machine is active: docker talks to {what}"),
                "`docker euca use NAME` (or `docker context use NAME`) makes one current",
            ))
        }
    }
}
