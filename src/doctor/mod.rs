//! `doctor`: what is wrong, one line per check (`ok`, `warn`, `fail`, `skip`), each failure
//! with a hint.
//!
//! - The cloud side, for the credentials a command would use: the endpoint's DNS name, a TCP
//!   connection, its TLS chain (https), the credentials (DescribeAvailabilityZones), the clock
//!   against the answer's `Date` header, the region (DescribeRegions) and the keyring.
//! - One machine, on its own cloud and identity: its record, the instance's state and address,
//!   the security group's rules for this machine's address, ports 22 and 2376, SSH with the
//!   pinned host key, the daemon's mutual TLS and `/version`, the server certificate against the
//!   current address, the docker context against the record, and the console's last lines.
//!
//! Doctor changes nothing: no record is written (a pending host key is accepted, not pinned),
//! no lock is taken, no context is touched and every cloud call is a Describe or Get. Every
//! network check is bounded by [`DoctorOptions::timeout`], so a doctor never hangs. A check
//! that cannot run because an earlier one failed is `skip`, naming why.

mod cloud_checks;
mod machine_checks;
mod net;
pub mod report;

use std::{fmt, path::Path, time::Duration};

use crate::{credentials::CloudFlags, names::MachineName, ops::cloud_target, store::Store};

/// Every check's id, in the order doctor runs them. Stable: scripts match on them.
pub const CHECKS: [&str; 17] = [
    "endpoint-dns",
    "endpoint-tcp",
    "endpoint-tls",
    "credentials",
    "clock",
    "region",
    "keyring",
    "record",
    "instance",
    "security-group",
    "port-22",
    "port-2376",
    "ssh",
    "daemon-tls",
    "certificate",
    "context",
    "console",
];

/// The default bound of each network check.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub struct DoctorOptions {
    /// The machine to check; without one, only the cloud side.
    pub name: Option<MachineName>,
    pub cloud: CloudFlags,
    /// The bound of each network check.
    pub timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    /// Works, but something deserves attention (the hint says what).
    Warn,
    Fail,
    /// Not run: an earlier check failed or the check does not apply (the detail says why).
    Skip,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "fail",
            Status::Skip => "skip",
        }
    }
}

/// One check's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// One of [`CHECKS`].
    pub id: &'static str,
    pub status: Status,
    /// What was found; may run over several lines (the console's last lines).
    pub detail: String,
    /// What to do about a `fail` or `warn`.
    pub hint: Option<String>,
}

impl Check {
    pub fn ok(id: &'static str, detail: impl Into<String>) -> Check {
        Check {
            id,
            status: Status::Ok,
            detail: detail.into(),
            hint: None,
        }
    }

    pub fn warn(id: &'static str, detail: impl Into<String>, hint: impl Into<String>) -> Check {
        Check {
            id,
            status: Status::Warn,
            detail: detail.into(),
            hint: Some(hint.into()),
        }
    }

    pub fn fail(id: &'static str, detail: impl Into<String>, hint: impl Into<String>) -> Check {
        Check {
            id,
            status: Status::Fail,
            detail: detail.into(),
            hint: Some(hint.into()),
        }
    }

    pub fn skip(id: &'static str, reason: impl Into<String>) -> Check {
        Check {
            id,
            status: Status::Skip,
            detail: reason.into(),
            hint: None,
        }
    }
}

/// Doctor found failures: shown by the reporter as one line, after the checks' own lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChecksFailed(pub Vec<&'static str>);

impl fmt::Display for ChecksFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        let noun = if n == 1 { "check" } else { "checks" };
        write!(f, "{n} {noun} failed: {}", self.0.join(", "))
    }
}

impl std::error::Error for ChecksFailed {}

/// `Err` naming every failed check, in order, when any failed.
pub fn verdict(checks: &[Check]) -> Result<(), ChecksFailed> {
    let failed: Vec<&'static str> = checks
        .iter()
        .filter(|c| c.status == Status::Fail)
        .map(|c| c.id)
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(ChecksFailed(failed))
    }
}

/// The checks made so far; each is handed to the caller's sink the moment it is known, so a
/// slow check shows which one is slow.
struct Run<'a> {
    checks: Vec<Check>,
    sink: &'a mut (dyn FnMut(&Check) + Send),
}

impl Run<'_> {
    fn push(&mut self, check: Check) {
        (self.sink)(&check);
        self.checks.push(check);
    }

    fn any_failed(&self) -> bool {
        self.checks.iter().any(|c| c.status == Status::Fail)
    }
}

/// Runs the checks, handing each to `sink` as soon as it is known; returns them all.
pub async fn doctor(
    docker_config: &Path,
    opts: &DoctorOptions,
    sink: &mut (dyn FnMut(&Check) + Send),
) -> Vec<Check> {
    let mut run = Run {
        checks: Vec::new(),
        sink,
    };
    let timeout = opts.timeout.max(Duration::from_millis(100));
    match &opts.name {
        None => {
            let target = cloud_target::resolve(docker_config, &opts.cloud, None)
                .await
                .map_err(anyhow::Error::from);
            let input = cloud_checks::CloudInput::new(target, flag_endpoint(&opts.cloud));
            cloud_checks::run(&mut run, input, timeout).await;
        }
        Some(name) => {
            let record = Store::new(docker_config).load(name);
            let input = match &record {
                Ok(record) => {
                    let target =
                        machine_checks::machine_target(docker_config, record, &opts.cloud).await;
                    cloud_checks::CloudInput::new(
                        target,
                        record
                            .cloud
                            .endpoint
                            .clone()
                            .or_else(|| flag_endpoint(&opts.cloud)),
                    )
                }
                Err(_) => {
                    let target = cloud_target::resolve(docker_config, &opts.cloud, None)
                        .await
                        .map_err(anyhow::Error::from);
                    cloud_checks::CloudInput::new(target, flag_endpoint(&opts.cloud))
                }
            };
            let cloud = cloud_checks::run(&mut run, input, timeout).await;
            machine_checks::run(&mut run, docker_config, record, &cloud, timeout).await;
        }
    }
    run.checks
}

/// The endpoint `--endpoint` names, without a `REGION::` prefix.
fn flag_endpoint(flags: &CloudFlags) -> Option<String> {
    flags
        .endpoint
        .as_deref()
        .map(|e| crate::credentials::split_region_url(e).1)
}

/// `n` seconds as a person says it: `45 s`, `20 min`, `3 h 5 min`.
fn human_secs(n: u64) -> String {
    match n {
        0..120 => format!("{n} s"),
        120..3600 => format!("{} min", (n + 30) / 60),
        _ => {
            let minutes = (n + 30) / 60;
            match minutes % 60 {
                0 => format!("{} h", minutes / 60),
                m => format!("{} h {m} min", minutes / 60),
            }
        }
    }
}

/// `d` as a short duration for messages: `5 s`, `2.5 s`.
fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0} s")
    } else {
        format!("{s:.1} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_verdict_names_every_failed_check_in_order() {
        let checks = [
            Check::ok("endpoint-dns", "fine"),
            Check::fail("ssh", "the host key changed", "do not trust it"),
            Check::skip("daemon-tls", "port 2376 does not answer"),
            Check::fail("certificate", "names another address", "regenerate"),
            Check::warn("clock", "2 min off", "sync the clock"),
        ];
        let err = verdict(&checks).unwrap_err();
        assert_eq!(err.to_string(), "2 checks failed: ssh, certificate");
        assert_eq!(
            verdict(&checks[..2]).unwrap_err().to_string(),
            "1 check failed: ssh"
        );
        assert!(verdict(&[Check::ok("clock", "fine"), checks[4].clone()]).is_ok());
    }

    #[test]
    fn durations_read_like_speech() {
        assert_eq!(human_secs(45), "45 s");
        assert_eq!(human_secs(120), "2 min");
        assert_eq!(human_secs(1200), "20 min");
        assert_eq!(human_secs(3600), "1 h");
        assert_eq!(human_secs(3 * 3600 + 5 * 60), "3 h 5 min");
        assert_eq!(secs(Duration::from_secs(5)), "5 s");
        assert_eq!(secs(Duration::from_millis(2500)), "2.5 s");
    }

    #[test]
    fn check_ids_are_unique() {
        let mut ids = CHECKS.to_vec();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), CHECKS.len());
    }
}
