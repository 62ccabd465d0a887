//! One SSH session to a host whose key is pinned.

use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use russh::{
    ChannelMsg,
    client::{self, Handle},
    keys::{
        PrivateKey, PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate, ssh_key::HashAlg,
    },
};

#[derive(Debug, thiserror::Error)]
pub enum SshError {
    #[error(
        "the host key of {addr} does not match the pinned one (expected {expected}, got {got})"
    )]
    HostKeyMismatch {
        addr: SocketAddr,
        expected: String,
        got: String,
    },
    #[error("the pinned host key {0:?} cannot be parsed")]
    BadPinnedKey(String),
    #[error("cannot read the SSH key {path}: {message}")]
    Key { path: PathBuf, message: String },
    #[error("{user}@{addr} refused our key")]
    AuthRejected { user: String, addr: SocketAddr },
    #[error("cannot connect to {addr} over SSH within {waited:?}: {last}")]
    Connect {
        addr: SocketAddr,
        waited: Duration,
        last: String,
    },
    #[error("SSH to {addr} failed: {source}")]
    Protocol {
        addr: SocketAddr,
        source: russh::Error,
    },
    #[error("`{command}` exited with {status}: {}", last_line(stderr))]
    Command {
        command: String,
        status: u32,
        stderr: String,
    },
}

impl SshError {
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            SshError::HostKeyMismatch { .. } => "someone else may be answering at this address (or the instance was \
                 replaced); do not trust it. If the host key changed legitimately, recreate the machine"
                .into(),
            SshError::AuthRejected { .. } => "check --ssh-user and --ssh-key; cloud-init may not have authorised the key".into(),
            SshError::Connect { .. } => "check the security group (--allow-cidr) and that sshd runs on the instance".into(),
            _ => return None,
        })
    }
}

/// The last non-empty line of a command's stderr: the one that usually names the problem.
fn last_line(stderr: &str) -> &str {
    stderr
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("(no error output)")
}

/// A remote terminal: its type, size, and the local size changes to follow.
#[derive(Debug)]
pub struct Pty {
    pub term: String,
    pub cols: u32,
    pub rows: u32,
    pub resize: Option<tokio::sync::watch::Receiver<(u32, u32)>>,
}

/// Where and as whom to connect, and which host key to expect.
#[derive(Debug, Clone)]
pub struct SshTarget {
    pub addr: SocketAddr,
    pub user: String,
    pub key_path: PathBuf,
    /// OpenSSH format (`ssh-ed25519 AAAA…`).
    pub host_key: String,
}

/// What a command did.
#[derive(Debug, Clone, Default)]
pub struct ExecOutput {
    pub status: u32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl ExecOutput {
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

static CONNECTIONS: AtomicUsize = AtomicUsize::new(0);

/// SSH connections this process opened (authenticated sessions), for the create report.
pub fn connections_opened() -> usize {
    CONNECTIONS.load(Ordering::Relaxed)
}

struct Pinned {
    expected: PublicKey,
    seen: Arc<Mutex<Option<String>>>,
}

impl client::Handler for Pinned {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        server: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let key = match server {
            PublicKeyOrCertificate::PublicKey { key, .. } => key.clone(),
            PublicKeyOrCertificate::Certificate(cert) => PublicKey::from(cert.public_key().clone()),
        };
        let ok = key.key_data() == self.expected.key_data();
        *self.seen.lock().expect("lock") = Some(key.fingerprint(HashAlg::Sha256).to_string());
        Ok(ok)
    }
}

/// Trust on first use, only on explicit request (`--ssh-trust-first-key`): completes a key
/// exchange with `addr`, returns the host key it showed, and disconnects without logging in.
pub async fn first_seen_host_key(addr: SocketAddr, timeout: Duration) -> Result<String, SshError> {
    struct Record(Arc<Mutex<Option<PublicKey>>>);
    impl client::Handler for Record {
        type Error = russh::Error;
        async fn check_server_key(
            &mut self,
            server: &PublicKeyOrCertificate,
        ) -> Result<bool, Self::Error> {
            if let PublicKeyOrCertificate::PublicKey { key, .. } = server {
                *self.0.lock().expect("lock") = Some(key.clone());
            }
            Ok(true)
        }
    }
    let seen = Arc::new(Mutex::new(None));
    let attempt = tokio::time::timeout(
        timeout,
        client::connect(
            Arc::new(client::Config::default()),
            addr,
            Record(seen.clone()),
        ),
    )
    .await;
    match attempt {
        Ok(Ok(handle)) => {
            let _ = handle
                .disconnect(russh::Disconnect::ByApplication, "", "en")
                .await;
        }
        Ok(Err(e)) => {
            return Err(SshError::Connect {
                addr,
                waited: timeout,
                last: e.to_string(),
            });
        }
        Err(_) => {
            return Err(SshError::Connect {
                addr,
                waited: timeout,
                last: "handshake timed out".into(),
            });
        }
    }
    let key = seen.lock().expect("lock").clone();
    key.and_then(|k| k.to_openssh().ok())
        .ok_or_else(|| SshError::Connect {
            addr,
            waited: timeout,
            last: "the server showed no plain host key".into(),
        })
}

pub struct Session {
    handle: Handle<Pinned>,
    target: SshTarget,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("target", &self.target)
            .finish()
    }
}

impl Session {
    /// Connects and authenticates, retrying while sshd comes up (connection refused, reset,
    /// banner timeouts) until `timeout`. A host key mismatch is final at once.
    pub async fn connect(target: &SshTarget, timeout: Duration) -> Result<Session, SshError> {
        let expected = PublicKey::from_openssh(target.host_key.trim())
            .map_err(|_| SshError::BadPinnedKey(target.host_key.clone()))?;
        let key_text = std::fs::read_to_string(&target.key_path).map_err(|e| SshError::Key {
            path: target.key_path.clone(),
            message: e.to_string(),
        })?;
        let key = Arc::new(
            PrivateKey::from_openssh(&key_text).map_err(|e| SshError::Key {
                path: target.key_path.clone(),
                message: e.to_string(),
            })?,
        );
        let deadline = tokio::time::Instant::now() + timeout;
        let config = Arc::new(client::Config {
            inactivity_timeout: Some(Duration::from_secs(600)),
            keepalive_interval: Some(Duration::from_secs(15)),
            ..Default::default()
        });
        let mut last: String;
        loop {
            let seen = Arc::new(Mutex::new(None));
            let handler = Pinned {
                expected: expected.clone(),
                seen: seen.clone(),
            };
            let attempt = tokio::time::timeout(
                Duration::from_secs(15),
                client::connect(config.clone(), target.addr, handler),
            )
            .await;
            match attempt {
                Ok(Ok(mut handle)) => {
                    let hash = handle
                        .best_supported_rsa_hash()
                        .await
                        .ok()
                        .flatten()
                        .flatten();
                    let auth = handle
                        .authenticate_publickey(
                            target.user.clone(),
                            PrivateKeyWithHashAlg::new(key.clone(), hash),
                        )
                        .await
                        .map_err(|source| SshError::Protocol {
                            addr: target.addr,
                            source,
                        })?;
                    if !auth.success() {
                        return Err(SshError::AuthRejected {
                            user: target.user.clone(),
                            addr: target.addr,
                        });
                    }
                    CONNECTIONS.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!("ssh: connected to {}@{}", target.user, target.addr);
                    return Ok(Session {
                        handle,
                        target: target.clone(),
                    });
                }
                Ok(Err(russh::Error::UnknownKey)) => {
                    let got = seen
                        .lock()
                        .expect("lock")
                        .clone()
                        .unwrap_or_else(|| "?".into());
                    return Err(SshError::HostKeyMismatch {
                        addr: target.addr,
                        expected: expected.fingerprint(HashAlg::Sha256).to_string(),
                        got,
                    });
                }
                Ok(Err(e)) => last = e.to_string(),
                Err(_) => last = "handshake timed out".into(),
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(SshError::Connect {
                    addr: target.addr,
                    waited: timeout,
                    last,
                });
            }
            tracing::debug!("ssh: {} not ready yet: {last}", target.addr);
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    pub fn target(&self) -> &SshTarget {
        &self.target
    }

    /// Runs `command`, feeding `stdin` if given; returns status and both streams.
    pub async fn exec_with_input(
        &self,
        command: &str,
        stdin: Option<&[u8]>,
    ) -> Result<ExecOutput, SshError> {
        let addr = self.target.addr;
        let proto = |source| SshError::Protocol { addr, source };
        let mut channel = self.handle.channel_open_session().await.map_err(proto)?;
        // Login shells of non-root users often lack the sbin directories (dockerd lives there).
        let full =
            format!("PATH=\"$PATH:/usr/local/sbin:/usr/sbin:/sbin\"; export PATH; {command}");
        channel.exec(true, full).await.map_err(proto)?;
        if let Some(input) = stdin {
            channel.data(input).await.map_err(proto)?;
        }
        channel.eof().await.map_err(proto)?;
        let mut out = ExecOutput::default();
        let mut status = None;
        // OpenSSH often sends EOF before the exit status: read until the channel closes.
        while let Some(msg) = channel.wait().await {
            match msg {
                ChannelMsg::Data { data } => out.stdout.extend_from_slice(&data),
                ChannelMsg::ExtendedData { data, ext: 1 } => out.stderr.extend_from_slice(&data),
                ChannelMsg::ExitStatus { exit_status } => status = Some(exit_status),
                ChannelMsg::ExitSignal { signal_name, .. } => {
                    out.stderr
                        .extend_from_slice(format!("killed by signal {signal_name:?}").as_bytes());
                    status = Some(128);
                }
                _ => {}
            }
        }
        out.status = status.unwrap_or(255);
        tracing::debug!("ssh {}: `{}` -> {}", addr, command, out.status);
        Ok(out)
    }

    pub async fn exec(&self, command: &str) -> Result<ExecOutput, SshError> {
        self.exec_with_input(command, None).await
    }

    /// Runs `command` and insists on exit status 0; returns stdout.
    pub async fn run(&self, command: &str) -> Result<String, SshError> {
        let out = self.exec(command).await?;
        if out.status != 0 {
            return Err(SshError::Command {
                command: command.to_string(),
                status: out.status,
                stderr: out.stderr_text().trim().to_string(),
            });
        }
        Ok(out.stdout_text())
    }

    /// `sudo -n` when the login user is not root.
    pub fn sudo(&self) -> &'static str {
        if self.target.user == "root" {
            ""
        } else {
            "sudo -n "
        }
    }

    /// Writes `contents` to `path` on the host atomically with `mode` (as root through sudo
    /// when needed). The contents travel on the channel, never on a command line.
    pub async fn upload(&self, path: &str, contents: &[u8], mode: u32) -> Result<(), SshError> {
        self.upload_as(path, contents, mode, true).await
    }

    /// Like [`Session::upload`]; `as_root: false` writes as the login user (for `scp`).
    pub async fn upload_as(
        &self,
        path: &str,
        contents: &[u8],
        mode: u32,
        as_root: bool,
    ) -> Result<(), SshError> {
        let q = shell_quote(path);
        let tmp = shell_quote(&format!("{path}.docker-euca.tmp"));
        let script = format!(
            "umask 077; mkdir -p \"$(dirname {q})\" && cat > {tmp} && chmod {mode:o} {tmp} && mv -f {tmp} {q}"
        );
        let sudo = if as_root { self.sudo() } else { "" };
        let command = format!("{sudo}sh -c {}", shell_quote(&script));
        let out = self.exec_with_input(&command, Some(contents)).await?;
        if out.status != 0 {
            return Err(SshError::Command {
                command: format!("upload {path}"),
                status: out.status,
                stderr: out.stderr_text().trim().to_string(),
            });
        }
        Ok(())
    }

    /// Runs `command` with its output streamed to ours as it arrives; with `forward_stdin`, our
    /// stdin feeds it. With `pty` (an interactive login when `command` is empty) the remote side
    /// gets a terminal of our size. Returns the remote exit status.
    pub async fn run_attached(
        &self,
        command: Option<&str>,
        pty: Option<Pty>,
        forward_stdin: bool,
    ) -> Result<u32, SshError> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = self.target.addr;
        let proto = |source| SshError::Protocol { addr, source };
        let channel = self.handle.channel_open_session().await.map_err(proto)?;
        if let Some(p) = &pty {
            channel
                .request_pty(true, &p.term, p.cols, p.rows, 0, 0, &[])
                .await
                .map_err(proto)?;
        }
        match command {
            Some(c) => {
                channel
                    .exec(
                        true,
                        format!("PATH=\"$PATH:/usr/local/sbin:/usr/sbin:/sbin\"; export PATH; {c}"),
                    )
                    .await
            }
            None => channel.request_shell(true).await,
        }
        .map_err(proto)?;
        let (mut read, write) = channel.split();
        let write = Arc::new(write);
        // The local terminal's size changes follow the remote PTY.
        let resizer = pty.and_then(|p| p.resize).map(|mut sizes| {
            let write = write.clone();
            tokio::spawn(async move {
                while sizes.changed().await.is_ok() {
                    let (cols, rows) = *sizes.borrow_and_update();
                    let _ = write.window_change(cols, rows, 0, 0).await;
                }
            })
        });
        let feeder = if forward_stdin {
            let write = write.clone();
            Some(tokio::spawn(async move {
                let mut stdin = tokio::io::stdin();
                let mut buf = vec![0u8; 16 * 1024];
                loop {
                    match stdin.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if write.data(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
                let _ = write.eof().await;
            }))
        } else {
            let _ = write.eof().await;
            None
        };
        let mut stdout = tokio::io::stdout();
        let mut stderr = tokio::io::stderr();
        let mut status = None;
        while let Some(msg) = read.wait().await {
            match msg {
                ChannelMsg::Data { data } => {
                    let _ = stdout.write_all(&data).await;
                    let _ = stdout.flush().await;
                }
                ChannelMsg::ExtendedData { data, .. } => {
                    let _ = stderr.write_all(&data).await;
                    let _ = stderr.flush().await;
                }
                ChannelMsg::ExitStatus { exit_status } => status = Some(exit_status),
                ChannelMsg::ExitSignal { .. } => status = Some(128),
                _ => {}
            }
        }
        for task in [feeder, resizer].into_iter().flatten() {
            task.abort();
        }
        Ok(status.unwrap_or(255))
    }

    /// Reads a remote file.
    pub async fn download(&self, path: &str) -> Result<Vec<u8>, SshError> {
        let out = self.exec(&format!("cat -- {}", shell_quote(path))).await?;
        if out.status != 0 {
            return Err(SshError::Command {
                command: format!("read {path}"),
                status: out.status,
                stderr: out.stderr_text().trim().to_string(),
            });
        }
        Ok(out.stdout)
    }

    pub async fn close(self) {
        let _ = self
            .handle
            .disconnect(russh::Disconnect::ByApplication, "", "en")
            .await;
    }
}

/// Single-quotes `s` for a POSIX shell.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-=:,+@".contains(c))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("/etc/docker/ca.pem"), "/etc/docker/ca.pem");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }
}
