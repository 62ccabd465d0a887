//! docker-euca: a Docker CLI plugin that turns a Eucalyptus (EC2-compatible) cloud into Docker hosts.
//!
//! Map of the crate, top to bottom (data flows down, nothing flows back up):
//!
//! - [`plugin`]: the docker CLI plugin protocol: metadata, docker's global flags before `euca`,
//!   `help euca`, `__complete`, cancellation (SIGINT and the plugin socket).
//! - [`cli`] and [`commands`]: the clap tree; one small module per command that reads options,
//!   calls an operation and renders its result. Nothing below `commands` knows clap.
//! - [`ops`]: one operation per command (`ops::create` for `create`, …) with typed options.
//! - The layers operations are made of, one job each: [`cloud`] (EC2 in the Eucalyptus or the AWS dialect),
//!   [`credentials`] (keyring, profiles, the resolution chain), [`store`] (machine records),
//!   [`ssh`] (pinned sessions), [`provision`] (what runs on the host), [`tls`] (certificates),
//!   [`context`] (docker's context store and `config.json`), [`engine`] (the daemon over mTLS).
//! - [`doctor`]: read-only checks across those layers (`doctor`), one line per check.
//! - Shared leaves: [`names`], [`dialect`], [`secret`], [`fsutil`], [`progress`], [`template`], [`shellenv`],
//!   [`report`] (how errors reach the user).

pub mod cli;
pub mod cloud;
pub mod commands;
pub mod context;
pub mod crash;
pub mod credentials;
pub mod dialect;
pub mod dmachine;
pub mod doctor;
pub mod engine;
pub mod error_text;
pub mod fsutil;
pub mod names;
pub mod ops;
pub mod plugin;
pub mod progress;
pub mod provision;
pub mod report;
pub mod secret;
pub mod shellenv;
pub mod ssh;
pub mod store;
pub mod template;
pub mod terminal;
pub mod tls;

use std::process::ExitCode;

/// Entry point after the metadata fast path: parse argv the way docker passes it, set up
/// logging, the crypto provider and the runtime, run one command, and report its outcome.
pub fn run() -> ExitCode {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let invocation = match plugin::Invocation::parse(argv) {
        Ok(invocation) => invocation,
        Err(err) => return report::usage_error(&err),
    };
    cli::main(invocation)
}
