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
                "placeholders look like {{.Name}} or {{json .}}; `--format json` shows the fields"
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

/// Columns padded to their widest cell (three spaces apart, as docker's tables), the last one
/// unpadded; each line ends with a newline.
pub fn table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) -> String {
    let mut widths = header.map(|h| h.chars().count());
    for row in rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cols: [&str; N]| {
        let mut s = String::new();
        for (i, c) in cols.iter().enumerate() {
            if i + 1 == N {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<width$}   ", width = widths[i]));
            }
        }
        format!("{}\n", s.trim_end())
    };
    let mut out = line(*header);
    for row in rows {
        out.push_str(&line(std::array::from_fn(|i| row[i].as_str())));
    }
    out
}

#[cfg(test)]
mod table_tests {
    #[test]
    fn columns_line_up_on_the_widest_cell() {
        let out = super::table(
            &["NAME", "RESULT"],
            &[
                ["web-1".into(), "ready".into()],
                ["a".into(), "failed: x".into()],
            ],
        );
        assert_eq!(out, "NAME    RESULT\nweb-1   ready\na       failed: x\n");
    }
}
