//! `docker euca env`

use anyhow::bail;
use clap::Args;

use super::Ctx;
use crate::{
    names::MachineName,
    report::Hinted,
    shellenv::{self, Shell},
};

const VARS: [&str; 4] = [
    "DOCKER_HOST",
    "DOCKER_TLS_VERIFY",
    "DOCKER_CERT_PATH",
    "DOCKER_MACHINE_NAME",
];

#[derive(Debug, Args)]
pub struct EnvArgs {
    /// Machine name
    name: Option<MachineName>,
    /// bash, zsh, fish, powershell, cmd, tcsh or emacs (default: from $SHELL)
    #[arg(long)]
    shell: Option<String>,
    /// Print the commands that unset the variables instead
    #[arg(short, long)]
    unset: bool,
}

pub fn run(ctx: &Ctx, args: EnvArgs) -> anyhow::Result<()> {
    let shell = match &args.shell {
        Some(s) => Shell::parse(s).ok_or_else(|| {
            Hinted::new(
                format!("unknown shell {s:?}"),
                "use bash, zsh, fish, powershell, cmd, tcsh or emacs",
            )
        })?,
        None => Shell::from_env(),
    };
    let shell_flag = args
        .shell
        .as_ref()
        .map(|s| format!(" --shell {s}"))
        .unwrap_or_default();
    if args.unset {
        if let Some(name) = &args.name {
            bail!(Hinted::new(
                format!("--unset takes no machine name (got {name})"),
                "run `docker euca env --unset`"
            ));
        }
        print!(
            "{}",
            shellenv::render_unset(
                shell,
                &VARS,
                &format!("docker euca env --unset{shell_flag}")
            )
        );
        return Ok(());
    }
    let Some(name) = args.name else {
        bail!(Hinted::new(
            "no machine name given",
            "run `docker euca env NAME` (`docker euca ls` lists them)"
        ));
    };
    let record = ctx.store().load(&name)?;
    let context = record.context_name();
    let url = record.engine.url.clone().ok_or_else(|| {
        Hinted::new(
            format!("{name} has no docker endpoint yet"),
            format!("`docker euca provision {name}`"),
        )
    })?;
    let vars = [
        ("DOCKER_HOST", url),
        ("DOCKER_TLS_VERIFY", "1".to_string()),
        (
            "DOCKER_CERT_PATH",
            ctx.contexts().tls_dir(&context).display().to_string(),
        ),
        ("DOCKER_MACHINE_NAME", name.to_string()),
    ];
    print!(
        "{}",
        shellenv::render_set(shell, &vars, &format!("docker euca env{shell_flag} {name}"))
    );
    Ok(())
}
