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
    /// Move a profile's static key from the AWS shared config (~/.aws) into the keyring
    #[arg(long, value_name = "NAME", conflicts_with_all = ["from_euca2ools", "from_eucarc", "access_key", "secret_key", "secret_key_stdin"])]
    from_aws_profile: Option<String>,
    /// Source CIDR `create` admits by default with this profile (repeatable; without it, a
    /// create admits only this machine's own address)
    #[arg(long = "allow-cidr", value_name = "CIDR", value_parser = super::cloud_args::parse_cidr)]
    allow_cidrs: Vec<String>,
    /// The cloud's EC2 dialect, kept in the profile (auto: aws for an AWS region name or an
    /// amazonaws.com endpoint, eucalyptus otherwise)
    #[arg(long, value_name = "DIALECT", default_value = "auto")]
    dialect: super::cloud_args::DialectArg,
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
        from_aws_profile: args.from_aws_profile,
        allow_cidrs: args.allow_cidrs,
        dialect: args.dialect.into(),
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
        let secret = read_secret_no_echo("Secret key: ").await?;
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
        "Login succeeded: profile {:?}, {} (region {}, {} dialect), {} zone(s); secret stored in the {}",
        outcome.profile,
        outcome.endpoint,
        outcome.region,
        outcome.dialect,
        outcome.zones.len(),
        outcome.backend.describe()
    );
    Ok(())
}

/// Keeps a secret given on the command line out of every `Debug` print of the arguments.
fn parse_secret(s: &str) -> Result<Secret<String>, String> {
    Ok(Secret::new(s.to_string()))
}

/// Prompts on the terminal (`/dev/tty`, never stdout) with echo off and reads one line.
///
/// Echo comes back whatever ends the prompt: a line, end of input, a read error, a panic in
/// the reader, or cancellation. Ctrl-C does not kill the process here: tokio's handler
/// ([`crate::plugin::cancel`]) turns SIGINT (and docker closing the plugin socket) into the
/// cancellation token, and `cli::main` then drops this future and exits. So the guard that
/// restores the terminal lives here, in the future, and not in the blocking reader: that
/// thread is abandoned at exit, still blocked in `read`, and never unwinds.
async fn read_secret_no_echo(prompt: &str) -> anyhow::Result<Secret<String>> {
    use std::io::Write;
    let tty = crate::terminal::open().context("no terminal")?;
    // Echo off before the prompt shows: nothing typed after it can be echoed.
    let echo_off =
        crate::terminal::echo_off(&tty).context("cannot turn the terminal's echo off")?;
    (&tty).write_all(prompt.as_bytes())?;
    // Echo back on first, then end the line the user's unechoed Enter (or ^C) left open.
    let line_end = tty.try_clone().context("cannot reopen the terminal")?;
    let _echo_back = OnDrop(move || {
        let _ = &echo_off;
        let _ = (&line_end).write_all(b"\n");
    });
    let reader = tty.try_clone().context("cannot reopen the terminal")?;
    let line = tokio::task::spawn_blocking(move || read_line(reader))
        .await
        .context("the terminal reader stopped")??;
    Ok(Secret::new(line))
}

/// One line from the terminal, without its line break; end of input is an error, not an
/// empty secret.
fn read_line(tty: crate::terminal::Terminal) -> anyhow::Result<String> {
    let mut line = String::new();
    let n = std::io::BufRead::read_line(&mut std::io::BufReader::new(tty), &mut line)
        .context("cannot read the secret key from the terminal")?;
    if n == 0 {
        bail!(Hinted::new(
            "no secret key entered (end of input)",
            "type the secret key and press Enter, or use --secret-key-stdin"
        ));
    }
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

/// Runs its closure when dropped: on return, on `?`, during a panic's unwinding, and when the
/// future holding it is dropped unfinished (cancellation).
struct OnDrop<F: FnMut()>(F);

impl<F: FnMut()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        (self.0)();
    }
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
    /// table, 'table {{.Name}}\t{{.Endpoint}}', json (one object per line), or a Go template
    #[arg(long, default_value = "table")]
    format: String,
    /// The same as --format json
    #[arg(long, hide = true, conflicts_with = "format")]
    json: bool,
}

/// One line of `profiles` (never a secret: none is in the profile file).
#[derive(Debug, Default, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct ProfileRow {
    name: String,
    endpoint: String,
    region: String,
    access_key: String,
    ca_bundle: String,
    default_image: String,
    #[serde(rename = "AllowCIDRs")]
    allow_cidrs: Vec<String>,
    /// As given at login: auto, eucalyptus or aws.
    dialect: String,
}

pub fn profiles(ctx: &Ctx, args: ProfilesArgs) -> anyhow::Result<()> {
    let spec = if args.json {
        "json"
    } else {
        args.format.as_str()
    };
    let format = crate::template::Format::parse(spec)?;
    format.check(&ProfileRow::default())?;
    let rows: Vec<ProfileRow> = Profiles::new(&ctx.docker_config)
        .all()?
        .into_iter()
        .map(|(name, p)| ProfileRow {
            name,
            endpoint: p.endpoint,
            region: p.region,
            access_key: p.access_key_id,
            ca_bundle: p
                .ca_bundle
                .map(|c| c.display().to_string())
                .unwrap_or_default(),
            default_image: p.default_image.unwrap_or_default(),
            allow_cidrs: p.allow_cidrs,
            dialect: p.dialect.to_string(),
        })
        .collect();
    if let Some(out) = format.render(&rows, &ProfileRow::default())? {
        print!("{out}");
        return Ok(());
    }
    let cells: Vec<[String; 4]> = rows
        .iter()
        .map(|r| {
            [
                r.name.clone(),
                r.endpoint.clone(),
                r.region.clone(),
                r.access_key.clone(),
            ]
        })
        .collect();
    print!(
        "{}",
        crate::report::table(&["PROFILE", "ENDPOINT", "REGION", "ACCESS KEY"], &cells)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::{
        io::{Seek, Write},
        sync::{
            Arc,
            atomic::{AtomicUsize, Ordering},
        },
    };

    use super::*;

    fn counter() -> (Arc<AtomicUsize>, impl FnMut()) {
        let count = Arc::new(AtomicUsize::new(0));
        let seen = count.clone();
        (count, move || {
            seen.fetch_add(1, Ordering::SeqCst);
        })
    }

    #[tokio::test]
    async fn the_guard_runs_when_a_cancelled_prompt_is_dropped() {
        let (count, restore) = counter();
        let guard = OnDrop(restore);
        let prompt = async move {
            let _guard = guard;
            std::future::pending::<()>().await;
        };
        // What `cli::main`'s select does on Ctrl-C: the unfinished future is dropped.
        let cancel = tokio_util::sync::CancellationToken::new();
        cancel.cancel();
        tokio::select! {
            _ = prompt => unreachable!("the prompt never finishes"),
            _ = cancel.cancelled() => {}
        }
        assert_eq!(count.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn the_guard_runs_on_error_and_on_panic() {
        let (count, restore) = counter();
        let failed = (|| -> anyhow::Result<()> {
            let _guard = OnDrop(restore);
            bail!("read error")
        })();
        assert!(failed.is_err());
        assert_eq!(count.load(Ordering::SeqCst), 1);
        let (count, restore) = counter();
        fn reader_panics() {
            panic!("reader panicked");
        }
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _guard = OnDrop(restore);
            reader_panics();
        }));
        assert!(panicked.is_err());
        assert_eq!(count.load(Ordering::SeqCst), 1);
    }

    fn file_with(text: &str) -> std::fs::File {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(text.as_bytes()).unwrap();
        file.rewind().unwrap();
        file
    }

    #[test]
    fn a_line_loses_its_line_break_and_end_of_input_is_an_error() {
        assert_eq!(read_line(file_with("s3cret\r\n")).unwrap(), "s3cret");
        let err = read_line(file_with("")).unwrap_err();
        assert!(err.to_string().contains("end of input"), "{err}");
    }
}
