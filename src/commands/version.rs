//! `docker euca version`

use clap::Args;

use super::Ctx;

#[derive(Debug, Args)]
pub struct VersionArgs {
    /// A machine: print its engine's version (as its daemon says, over mutual TLS)
    name: Option<crate::names::MachineName>,
    /// With NAME: how long the daemon may take to answer, in seconds
    #[arg(long, value_name = "SECS", default_value_t = 10, requires = "name")]
    timeout: u64,
}

pub async fn run(ctx: &Ctx, args: VersionArgs) -> anyhow::Result<()> {
    if let Some(name) = &args.name {
        return engine_version(ctx, name, args.timeout).await;
    }
    println!("docker-euca version {}", env!("CARGO_PKG_VERSION"));
    if ctx.debug {
        println!(" git commit:   {}", env!("DOCKER_EUCA_GIT_COMMIT"));
        println!(" target:       {}", env!("DOCKER_EUCA_TARGET"));
        println!(" profile:      {}", env!("DOCKER_EUCA_PROFILE"));
        println!(" docker config: {}", ctx.docker_config.display());
    }
    Ok(())
}

/// `version NAME`: the remote engine's version, from its own `/version`.
async fn engine_version(
    ctx: &Ctx,
    name: &crate::names::MachineName,
    timeout: u64,
) -> anyhow::Result<()> {
    let record = ctx.store().load(name)?;
    let url = record.engine.url.clone().ok_or_else(|| {
        crate::report::Hinted::new(
            format!("{name} has no daemon endpoint yet"),
            "`docker euca provision NAME` sets it up",
        )
    })?;
    let tls = ctx.contexts().tls_dir(&record.context_name());
    let v = crate::engine::version(&url, &tls, std::time::Duration::from_secs(timeout)).await?;
    println!("{}", v.version);
    Ok(())
}
