//! `docker euca version`

use clap::Args;

use super::Ctx;

#[derive(Debug, Args)]
pub struct VersionArgs {}

pub fn run(ctx: &Ctx, _args: VersionArgs) -> anyhow::Result<()> {
    println!("docker-euca version {}", env!("CARGO_PKG_VERSION"));
    if ctx.debug {
        println!(" git commit:   {}", env!("DOCKER_EUCA_GIT_COMMIT"));
        println!(" target:       {}", env!("DOCKER_EUCA_TARGET"));
        println!(" profile:      {}", env!("DOCKER_EUCA_PROFILE"));
        println!(" docker config: {}", ctx.docker_config.display());
    }
    Ok(())
}
