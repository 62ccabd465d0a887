//! How outcomes reach the user: one clear line, then a hint saying what to do. With
//! `-D/--debug` the whole cause chain follows.

use std::process::ExitCode;

use crate::{
    cloud::CloudError, context::ContextError, credentials::CredentialsError, names::InvalidName,
    store::StoreError, tls::TlsError,
};

/// An error that already knows what the user should do about it.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Hinted {
    pub message: String,
    pub hint: String,
}

impl Hinted {
    pub fn new(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Hinted {
            message: message.into(),
            hint: hint.into(),
        }
    }
}

/// The operation stopped because the user (or docker) asked it to.
#[derive(Debug, thiserror::Error)]
#[error("cancelled")]
pub struct Cancelled;

/// The first hint any error in the chain offers.
pub fn hint_for(err: &anyhow::Error) -> Option<String> {
    err.chain().find_map(|cause| {
        if let Some(e) = cause.downcast_ref::<Hinted>() {
            return Some(e.hint.clone());
        }
        if let Some(e) = cause.downcast_ref::<InvalidName>() {
            return Some(e.hint());
        }
        if let Some(e) = cause.downcast_ref::<StoreError>() {
            return e.hint();
        }
        if let Some(e) = cause.downcast_ref::<ContextError>() {
            return match e {
                ContextError::NotFound { .. } => {
                    Some("`docker context ls` lists the contexts".into())
                }
                ContextError::Corrupt { path, .. } => {
                    Some(format!("fix or remove {} by hand", path.display()))
                }
                ContextError::Io { .. } => None,
            };
        }
        if let Some(e) = cause.downcast_ref::<CloudError>() {
            return e.hint();
        }
        if let Some(e) = cause.downcast_ref::<crate::provision::ProvisionError>() {
            return e.hint();
        }
        if let Some(e) = cause.downcast_ref::<crate::ssh::SshError>() {
            return e.hint();
        }
        if let Some(e) = cause.downcast_ref::<crate::engine::EngineError>() {
            return Some(e.hint());
        }
        if cause.is::<crate::template::TemplateError>() {
            return Some(
                "a Go template, as docker takes: {{.Name}}, {{json .}}, {{range .Labels}}…{{end}}; \
                 `--format json` shows the field names"
                    .into(),
            );
        }
        if let Some(e) = cause.downcast_ref::<crate::dmachine::DmError>() {
            return e.hint();
        }
        if let Some(e) = cause.downcast_ref::<CredentialsError>() {
            return e.hint();
        }
        if cause.is::<crate::credentials::KeyringError>() {
            return Some(
                "start a Secret Service (gnome-keyring) or unlock it; DOCKER_EUCA_KEYRING=keyutils \
                 uses the kernel keyring instead"
                    .into(),
            );
        }
        if let Some(TlsError::BadSan { .. }) = cause.downcast_ref::<TlsError>() {
            return Some("give an IP address or a DNS name such as web1.example.com".into());
        }
        None
    })
}

/// Prints a failed command's error and picks the exit code.
pub fn failure(err: &anyhow::Error, debug: bool) -> ExitCode {
    if err.chain().any(|c| c.is::<Cancelled>()) {
        eprintln!("docker euca: cancelled");
        return ExitCode::from(130);
    }
    eprintln!("docker euca: {err:#}");
    if let Some(hint) = hint_for(err) {
        eprintln!("hint: {hint}");
    }
    if let Some(detail) = err.chain().find_map(|c| {
        c.downcast_ref::<crate::provision::ProvisionError>()?
            .detail()
    }) {
        eprintln!("{detail}");
    }
    if debug {
        eprintln!("\ndetail: {err}");
        for cause in err.chain().skip(1) {
            eprintln!("  caused by: {cause}");
        }
    }
    ExitCode::FAILURE
}

/// A command line that cannot even be split into docker's flags and ours.
pub fn usage_error(message: &str) -> ExitCode {
    eprintln!("docker euca: {message}");
    eprintln!("hint: see `docker euca --help`");
    ExitCode::from(2)
}

/// An error as one line: its whole chain, cut at the first line break.
pub fn first_line(err: &anyhow::Error) -> String {
    format!("{err:#}")
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// A table as docker prints its own: columns aligned by display width (docker's tabwriter:
/// at least 10 wide, 3 spaces apart), the last one unpadded; each line ends with a newline.
pub fn table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) -> String {
    let line = |cells: Vec<&str>| format!("{}\n", cells.join("\t"));
    let mut text = line(header.to_vec());
    for row in rows {
        // A tab inside a cell would open a column of its own.
        let cells: Vec<String> = row.iter().map(|c| c.replace('\t', " ")).collect();
        text.push_str(&line(cells.iter().map(String::as_str).collect()));
    }
    crate::template::aligned(&text)
}

#[cfg(test)]
mod table_tests {
    #[test]
    fn columns_line_up_on_the_widest_cell() {
        // By display width: the accented name is 15 wide and 17 bytes long.
        let out = super::table(
            &["NAME", "RESULT"],
            &[
                ["web-1".into(), "ready".into()],
                ["wébé-machine-12".into(), "failed: x".into()],
            ],
        );
        assert_eq!(
            out,
            "NAME              RESULT\nweb-1             ready\nwébé-machine-12   failed: x\n"
        );
    }
}
