//! The docker CLI plugin protocol (docker/cli `cli-plugins/`).
//!
//! Docker runs `docker-euca docker-cli-plugin-metadata` before every call and for every
//! `docker --help`; then it runs the plugin with its own argv: `[global flags…] euca ARGS…`,
//! `help euca ARGS…` for `docker help euca`, or `__complete euca ARGS…` for shell completion.
//! Run directly, `docker-euca ARGS…` works the same.

pub mod cancel;

use std::{ffi::OsString, path::PathBuf};

pub const METADATA_COMMAND: &str = "docker-cli-plugin-metadata";

/// The plugin's metadata, from `plugin-metadata/metadata.json` with the crate version filled in.
pub const METADATA: &str = include_str!(concat!(env!("OUT_DIR"), "/metadata.json"));

/// The docker subcommand this plugin provides.
pub const PLUGIN_NAME: &str = "euca";

/// Docker's global flags (those before `euca`) that matter to the plugin.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GlobalFlags {
    pub config: Option<PathBuf>,
    pub context: Option<String>,
    pub host: Vec<String>,
    pub debug: bool,
    pub log_level: Option<String>,
    pub tls: bool,
    pub tls_verify: bool,
    pub tls_ca_cert: Option<PathBuf>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
}

impl GlobalFlags {
    /// `--config`, else `DOCKER_CONFIG`, else `~/.docker`, as the docker CLI resolves it.
    pub fn docker_config_dir(&self) -> PathBuf {
        if let Some(dir) = &self.config {
            return dir.clone();
        }
        match std::env::var_os("DOCKER_CONFIG") {
            Some(dir) if !dir.is_empty() => PathBuf::from(dir),
            _ => dirs::home_dir()
                .unwrap_or_else(|| PathBuf::from("."))
                .join(".docker"),
        }
    }
}

/// What docker would talk to now: a named context, or a host given directly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Current {
    Context(String),
    /// `-H`/`--host` or `DOCKER_HOST`: no named context is current.
    Host(String),
}

impl Current {
    /// Whether this is the machine of `context` (or, for a host given directly, of `url`).
    pub fn is(&self, context: &str, url: Option<&str>) -> bool {
        match self {
            Current::Context(c) => c == context,
            Current::Host(h) => {
                url.is_some_and(|u| u.trim_end_matches('/') == h.trim_end_matches('/'))
            }
        }
    }
}

/// The docker CLI's rule (`cli/command` `resolveContextName`): `--context` first, then a host
/// given directly (`-H`, `DOCKER_HOST`, which overrides every context), then `DOCKER_CONTEXT`,
/// then `currentContext` in `config.json`, else `default`. Pure: the caller reads the world.
pub fn resolve_current(
    flag_context: Option<&str>,
    flag_hosts: &[String],
    env_host: Option<&str>,
    env_context: Option<&str>,
    config_current: Option<&str>,
) -> Current {
    let set = |v: Option<&str>| v.filter(|s| !s.is_empty()).map(str::to_string);
    if let Some(c) = set(flag_context) {
        return Current::Context(c);
    }
    if let Some(h) = flag_hosts.first().cloned().or_else(|| set(env_host)) {
        return Current::Host(h);
    }
    Current::Context(
        set(env_context)
            .or_else(|| set(config_current))
            .unwrap_or_else(|| "default".into()),
    )
}

impl GlobalFlags {
    /// What docker would talk to, by [`resolve_current`] over this process's flags and
    /// environment and `config.json` in `docker_config`.
    pub fn current(&self, docker_config: &std::path::Path) -> Current {
        let env = |k: &str| std::env::var(k).ok();
        let config = crate::context::ConfigFile::new(docker_config)
            .current_context()
            .ok()
            .flatten();
        resolve_current(
            self.context.as_deref(),
            &self.host,
            env("DOCKER_HOST").as_deref(),
            env("DOCKER_CONTEXT").as_deref(),
            config.as_deref(),
        )
    }
}

/// What docker (or the user) asked the plugin to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invocation {
    /// Run a command; `args` start after `euca`.
    Run {
        globals: GlobalFlags,
        args: Vec<OsString>,
    },
    /// `docker help euca [COMMAND…]`.
    Help {
        globals: GlobalFlags,
        args: Vec<OsString>,
    },
    /// Cobra's completion protocol: `__complete euca ARGS… PARTIAL` (docker's own
    /// completion), or `__completeNoDesc ARGS… PARTIAL` without the plugin's name (the bash
    /// completion Debian ships with docker), which wants no descriptions.
    Complete {
        globals: GlobalFlags,
        args: Vec<OsString>,
        descriptions: bool,
    },
}

impl Invocation {
    /// Splits docker's global flags from the plugin's own arguments.
    pub fn parse(argv: Vec<OsString>) -> Result<Invocation, String> {
        let mut globals = GlobalFlags::default();
        let mut rest = argv.into_iter().peekable();
        while let Some(arg) = rest.peek() {
            let Some(text) = arg.to_str().map(str::to_string) else {
                break;
            };
            let text = text.as_str();
            if !text.starts_with('-') || text == "-" {
                break;
            }
            if text == "--" {
                rest.next();
                break;
            }
            let (flag, inline) = match text.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
                _ => match attached_short_value(text) {
                    Some((f, v)) => (f.to_string(), Some(v.to_string())),
                    None => (text.to_string(), None),
                },
            };
            let takes_value = matches!(
                flag.as_str(),
                "--config"
                    | "-c"
                    | "--context"
                    | "-H"
                    | "--host"
                    | "-l"
                    | "--log-level"
                    | "--tlscacert"
                    | "--tlscert"
                    | "--tlskey"
            );
            let is_bool = matches!(flag.as_str(), "-D" | "--debug" | "--tls" | "--tlsverify");
            if !takes_value && !is_bool {
                // Not one of docker's: it belongs to the plugin's own parser (e.g. `--help`).
                break;
            }
            rest.next();
            // A value stays an `OsString` until the field needs text: a path may be any bytes.
            let value = if takes_value {
                Some(match inline {
                    Some(v) => OsString::from(v),
                    None => rest
                        .next()
                        .ok_or_else(|| format!("flag needs an argument: {flag}"))?,
                })
            } else {
                None
            };
            let bool_value = || inline_bool(&flag, text);
            let text_value = |value: Option<OsString>| utf8_value(&flag, value);
            match flag.as_str() {
                "--config" => globals.config = value.map(PathBuf::from),
                "-c" | "--context" => globals.context = text_value(value)?,
                "-H" | "--host" => globals.host.extend(text_value(value)?),
                "-l" | "--log-level" => globals.log_level = text_value(value)?,
                "--tlscacert" => globals.tls_ca_cert = value.map(PathBuf::from),
                "--tlscert" => globals.tls_cert = value.map(PathBuf::from),
                "--tlskey" => globals.tls_key = value.map(PathBuf::from),
                "-D" | "--debug" => globals.debug = bool_value()?,
                "--tls" => globals.tls = bool_value()?,
                "--tlsverify" => globals.tls_verify = bool_value()?,
                _ => unreachable!("flag list above"),
            }
        }
        let mut args: Vec<OsString> = rest.collect();
        let first = args.first().and_then(|a| a.to_str()).map(str::to_string);
        let second_is_us = args.get(1).is_some_and(|a| a == PLUGIN_NAME);
        Ok(match first.as_deref() {
            Some(PLUGIN_NAME) => {
                args.remove(0);
                Invocation::Run { globals, args }
            }
            Some("help") if second_is_us => {
                args.drain(..2);
                Invocation::Help { globals, args }
            }
            Some(verb @ ("__complete" | "__completeNoDesc")) => {
                args.drain(..if second_is_us { 2 } else { 1 });
                Invocation::Complete {
                    globals,
                    args,
                    descriptions: verb == "__complete",
                }
            }
            _ => Invocation::Run { globals, args },
        })
    }
}

/// `-cNAME`, `-Hhost`, `-lLEVEL` and pflag's `-c=NAME`: a short flag of docker's with its value
/// attached, split as (flag, value). Matched with `strip_prefix`, never by byte index, so an
/// argument like `-é` (whose second byte is inside a character) cannot panic.
fn attached_short_value(text: &str) -> Option<(&'static str, &str)> {
    if text.starts_with("--") {
        return None;
    }
    ["-c", "-H", "-l"].into_iter().find_map(|short| {
        let value = text.strip_prefix(short).filter(|v| !v.is_empty())?;
        // pflag reads `-c=NAME` as NAME, but a lone `-c=` as the value "=".
        let value = match value.strip_prefix('=') {
            Some(v) if !v.is_empty() => v,
            _ => value,
        };
        Some((short, value))
    })
}

/// A flag value the plugin needs as text (a context name, a host URL, a log level).
fn utf8_value(flag: &str, value: Option<OsString>) -> Result<Option<String>, String> {
    value
        .map(|v| {
            v.into_string().map_err(|v| {
                format!(
                    "invalid value {:?} for {flag}: not valid UTF-8",
                    v.to_string_lossy()
                )
            })
        })
        .transpose()
}

/// `--debug=false` style values for docker's boolean flags.
fn inline_bool(flag: &str, text: &str) -> Result<bool, String> {
    match text.split_once('=') {
        None => Ok(true),
        Some((_, v)) => match v {
            "true" | "1" => Ok(true),
            "false" | "0" => Ok(false),
            _ => Err(format!("invalid value {v:?} for {flag}: use true or false")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Invocation {
        Invocation::parse(args.iter().map(OsString::from).collect()).unwrap()
    }

    fn run(globals: GlobalFlags, args: &[&str]) -> Invocation {
        Invocation::Run {
            globals,
            args: args.iter().map(OsString::from).collect(),
        }
    }

    #[test]
    fn metadata_is_docker_plugin_json_with_crate_version() {
        let v: serde_json::Value = serde_json::from_str(METADATA).unwrap();
        assert_eq!(v["SchemaVersion"], "0.1.0");
        assert_eq!(v["Version"], env!("CARGO_PKG_VERSION"));
        assert!(
            v["ShortDescription"]
                .as_str()
                .is_some_and(|s| !s.is_empty())
        );
        assert!(v["Vendor"].as_str().is_some_and(|s| !s.is_empty()));
    }

    #[test]
    fn the_current_context_follows_the_docker_clis_order() {
        let hosts = vec!["tcp://10.0.0.1:2376".to_string()];
        let ctx = |c: &str| Current::Context(c.into());
        assert_eq!(
            resolve_current(Some("a"), &hosts, Some("tcp://h"), Some("b"), Some("c")),
            ctx("a")
        );
        assert_eq!(
            resolve_current(None, &hosts, Some("tcp://h"), Some("b"), Some("c")),
            Current::Host(hosts[0].clone())
        );
        assert_eq!(
            resolve_current(None, &[], Some("tcp://h"), Some("b"), Some("c")),
            Current::Host("tcp://h".into())
        );
        assert_eq!(
            resolve_current(None, &[], Some(""), Some("b"), Some("c")),
            ctx("b")
        );
        assert_eq!(resolve_current(None, &[], None, None, Some("c")), ctx("c"));
        assert_eq!(resolve_current(None, &[], None, None, None), ctx("default"));
        assert!(
            Current::Host("tcp://10.0.0.1:2376/".into()).is("web1", Some("tcp://10.0.0.1:2376"))
        );
        assert!(
            !Current::Host("tcp://10.0.0.2:2376".into()).is("web1", Some("tcp://10.0.0.1:2376"))
        );
    }

    #[test]
    fn docker_argv_with_global_flags() {
        let got = parse(&[
            "--config",
            "/tmp/c",
            "-D",
            "-c",
            "ctx",
            "-Htcp://x",
            "--tlsverify=false",
            "euca",
            "ls",
            "-q",
        ]);
        let globals = GlobalFlags {
            config: Some("/tmp/c".into()),
            debug: true,
            context: Some("ctx".into()),
            host: vec!["tcp://x".into()],
            ..Default::default()
        };
        assert_eq!(got, run(globals, &["ls", "-q"]));
    }

    #[test]
    fn equals_forms_and_direct_runs() {
        let globals = GlobalFlags {
            config: Some("/c".into()),
            log_level: Some("debug".into()),
            ..Default::default()
        };
        assert_eq!(
            parse(&["--config=/c", "--log-level=debug", "euca", "version"]),
            run(globals, &["version"])
        );
        assert_eq!(
            parse(&["version"]),
            run(GlobalFlags::default(), &["version"])
        );
        assert_eq!(parse(&["--help"]), run(GlobalFlags::default(), &["--help"]));
    }

    #[test]
    fn help_and_complete() {
        assert_eq!(
            parse(&["help", "euca", "create"]),
            Invocation::Help {
                globals: GlobalFlags::default(),
                args: vec!["create".into()]
            }
        );
        assert_eq!(
            parse(&["__complete", "euca", "r"]),
            Invocation::Complete {
                globals: GlobalFlags::default(),
                args: vec!["r".into()],
                descriptions: true,
            }
        );
        // Debian's bash completion for docker leaves the plugin's name out.
        assert_eq!(
            parse(&["__completeNoDesc", "rm", "w"]),
            Invocation::Complete {
                globals: GlobalFlags::default(),
                args: vec!["rm".into(), "w".into()],
                descriptions: false,
            }
        );
    }

    #[test]
    fn missing_value_is_an_error() {
        assert!(Invocation::parse(vec!["--config".into()]).is_err());
        assert!(Invocation::parse(vec!["--debug=maybe".into(), "euca".into()]).is_err());
    }

    #[test]
    fn non_ascii_flags_never_panic() {
        // `-é` and `-äb` used to be sliced at byte 2, inside the character.
        for arg in [
            "-é",
            "-äb",
            "-ä…",
            "--cönfig",
            "--é=1",
            "-é=x",
            "-\u{301}",
            "—",
            "-🦀",
            "-Dé",
        ] {
            assert_eq!(
                parse(&[arg, "euca", "ls"]),
                run(GlobalFlags::default(), &[arg, "euca", "ls"]),
                "{arg}"
            );
        }
        let globals = GlobalFlags {
            host: vec!["é".into()],
            context: Some("kö".into()),
            log_level: Some("→".into()),
            ..Default::default()
        };
        assert_eq!(
            parse(&["-Hé", "-ckö", "-l→", "euca", "ls"]),
            run(globals, &["ls"])
        );
        let globals = GlobalFlags {
            context: Some("é".into()),
            ..Default::default()
        };
        assert_eq!(parse(&["--context=é", "euca"]), run(globals, &[]));
    }

    #[test]
    fn short_flags_take_pflag_equals_values() {
        let globals = GlobalFlags {
            context: Some("ctx".into()),
            host: vec!["=".into()],
            ..Default::default()
        };
        assert_eq!(parse(&["-c=ctx", "-H=", "euca"]), run(globals, &[]));
    }

    #[cfg(unix)]
    #[test]
    fn non_utf8_arguments_never_panic() {
        use std::os::unix::ffi::OsStringExt;
        let bytes = |b: &[u8]| OsString::from_vec(b.to_vec());
        // As a flag: not docker's, so the plugin's own parser gets it.
        let got = Invocation::parse(vec![bytes(b"-\xff"), "euca".into()]).unwrap();
        assert_eq!(
            got,
            Invocation::Run {
                globals: GlobalFlags::default(),
                args: vec![bytes(b"-\xff"), "euca".into()]
            }
        );
        // A path may be any bytes.
        let got = Invocation::parse(vec!["--config".into(), bytes(b"/tmp/\xff"), "euca".into()]);
        assert_eq!(
            got,
            Ok(Invocation::Run {
                globals: GlobalFlags {
                    config: Some(PathBuf::from(bytes(b"/tmp/\xff"))),
                    ..Default::default()
                },
                args: vec![]
            })
        );
        // A context name may not.
        let err = Invocation::parse(vec!["-c".into(), bytes(b"\xffx"), "euca".into()]).unwrap_err();
        assert!(
            err.contains("not valid UTF-8") && err.contains("-c"),
            "{err}"
        );
    }

    #[test]
    fn config_dir_resolution_prefers_the_flag() {
        let g = GlobalFlags {
            config: Some("/x".into()),
            ..Default::default()
        };
        assert_eq!(g.docker_config_dir(), PathBuf::from("/x"));
    }
}
