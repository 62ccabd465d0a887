//! `logs`: what the host said while it booted. By default cloud-init's output log over SSH
//! (the pinned host key, as every SSH command), which holds the engine install and any user
//! data's output; with the console, the instance's console output from the cloud
//! (GetConsoleOutput), which needs no SSH at all: the way in when SSH itself is broken.

use std::{path::Path, time::Duration};

use super::machine;
use crate::{
    credentials::CloudFlags,
    names::MachineName,
    report::{Hinted, hint_for},
    ssh::shell_quote,
    store::Store,
};

/// Where cloud-init keeps the output of its stages (`output: all: | tee -a …`).
pub const CLOUD_INIT_LOG: &str = "/var/log/cloud-init-output.log";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogSource {
    /// cloud-init's output log, over SSH.
    CloudInit,
    /// The console output, from the cloud.
    Console,
}

#[derive(Debug, Clone)]
pub struct LogsOptions {
    pub name: MachineName,
    pub source: LogSource,
    /// Only the last N lines.
    pub tail: Option<usize>,
    pub cloud: CloudFlags,
    /// The SSH connect timeout.
    pub timeout: Duration,
}

/// The log's text (ending in a newline unless empty).
pub async fn logs(docker_config: &Path, opts: &LogsOptions) -> anyhow::Result<String> {
    let store = Store::new(docker_config);
    let record = store.load(&opts.name)?;
    let name = &record.name;
    let text = match opts.source {
        LogSource::Console => {
            let id = machine::instance_id(&record)?;
            let ec2 = machine::cloud_of_machine(docker_config, &record, &opts.cloud).await?;
            let text = ec2.console_output(&id).await?.unwrap_or_default();
            if text.trim().is_empty() {
                anyhow::bail!(Hinted::new(
                    format!("the cloud has no console output for {name} ({id}) yet"),
                    format!(
                        "some clouds publish it only minutes after boot: try again later; \
                         `docker euca logs {name}` reads cloud-init's log over SSH"
                    ),
                ));
            }
            text.replace("\r\n", "\n")
        }
        LogSource::CloudInit => {
            let console = format!("`docker euca logs {name} --console` needs no SSH");
            let session = machine::session(&store, &record, opts.timeout)
                .await
                .map_err(|e| {
                    let hint = match hint_for(&e) {
                        Some(h) => format!("{h}; {console}"),
                        None => console.clone(),
                    };
                    Hinted::new(format!("{e:#}"), hint)
                })?;
            let file = shell_quote(CLOUD_INIT_LOG);
            let read = match opts.tail {
                Some(n) => format!("tail -n {n} {file}"),
                None => format!("cat {file}"),
            };
            // Readable by root only on some images: sudo then, non-interactively.
            let command = format!(
                "if [ -r {file} ]; then {read}; else {sudo}{read}; fi",
                sudo = session.sudo()
            );
            let out = session.exec(&command).await;
            session.close().await;
            let out = out?;
            if out.status != 0 {
                let stderr = out.stderr_text();
                let why = stderr
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("no error output");
                anyhow::bail!(Hinted::new(
                    format!("cannot read {CLOUD_INIT_LOG} on {name}: {}", why.trim()),
                    format!(
                        "the image may not run cloud-init, or keeps its log elsewhere; {console}"
                    ),
                ));
            }
            return Ok(with_newline(out.stdout_text()));
        }
    };
    Ok(with_newline(tail(&text, opts.tail)))
}

/// The last `n` lines of `text` (all of it without `n`); trailing empty lines do not count.
pub fn tail(text: &str, n: Option<usize>) -> String {
    let Some(n) = n else {
        return text.to_string();
    };
    let lines: Vec<&str> = text.trim_end_matches('\n').lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn with_newline(mut text: String) -> String {
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_last_lines() {
        let text = "a\nb\nc\nd\n\n";
        assert_eq!(tail(text, Some(2)), "c\nd");
        assert_eq!(tail(text, Some(10)), "a\nb\nc\nd");
        assert_eq!(tail(text, Some(0)), "");
        assert_eq!(tail(text, None), text);
        assert_eq!(with_newline("x".into()), "x\n");
        assert_eq!(with_newline(String::new()), "");
    }
}
