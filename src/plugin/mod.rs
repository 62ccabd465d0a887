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
    /// Cobra's completion protocol: `__complete euca ARGS… PARTIAL`.
    Complete {
        globals: GlobalFlags,
        args: Vec<OsString>,
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
                _ => (text.to_string(), None),
            };
            // `-cNAME`, `-Hhost` and `-lLEVEL`: short flags with their value attached.
            let (flag, inline) = match (flag.as_str(), inline) {
                (f, None)
                    if f.len() > 2
                        && !f.starts_with("--")
                        && ["-c", "-H", "-l"].contains(&&f[..2]) =>
                {
                    (f[..2].to_string(), Some(f[2..].to_string()))
                }
                (_, inline) => (flag, inline),
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
            let value = if takes_value {
                match inline {
                    Some(v) => Some(v),
                    None => Some(
                        rest.next()
                            .and_then(|v| v.into_string().ok())
                            .ok_or_else(|| format!("flag needs an argument: {flag}"))?,
                    ),
                }
            } else {
                None
            };
            let bool_value = || inline_bool(&flag, text);
            match flag.as_str() {
                "--config" => globals.config = value.map(PathBuf::from),
                "-c" | "--context" => globals.context = value,
                "-H" | "--host" => globals.host.extend(value),
                "-l" | "--log-level" => globals.log_level = value,
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
            Some("__complete" | "__completeNoDesc") if second_is_us => {
                args.drain(..2);
                Invocation::Complete { globals, args }
            }
            _ => Invocation::Run { globals, args },
        })
    }
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
                args: vec!["r".into()]
            }
        );
    }

    #[test]
    fn missing_value_is_an_error() {
        assert!(Invocation::parse(vec!["--config".into()]).is_err());
        assert!(Invocation::parse(vec!["--debug=maybe".into(), "euca".into()]).is_err());
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
