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
    keys::{PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate, ssh_key::HashAlg},
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
    /// The host keys accepted, OpenSSH format (`ssh-ed25519 AAAA…`): the pinned one first,
    /// then a pending one (a rotation under way). Never empty.
    pub host_keys: Vec<String>,
}

/// What a command did.
#[derive(Debug, Clone, Default)]
pub struct ExecOutput {
    pub status: u32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// The channel closed with neither an exit status nor a signal: the connection was lost
    /// (the host went silent or away) and the output may be cut short.
    pub lost: bool,
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
    expected: Vec<PublicKey>,
    seen: Arc<Mutex<Option<String>>>,
    /// Which of `expected` the server showed.
    matched: Arc<Mutex<Option<usize>>>,
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
        let matched = self
            .expected
            .iter()
            .position(|k| k.key_data() == key.key_data());
        *self.seen.lock().expect("lock") = Some(key.fingerprint(HashAlg::Sha256).to_string());
        *self.matched.lock().expect("lock") = matched;
        Ok(matched.is_some())
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
    /// The accepted host key the server showed (one of `target.host_keys`).
    host_key: String,
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
        let expected = target
            .host_keys
            .iter()
            .map(|k| {
                PublicKey::from_openssh(k.trim()).map_err(|_| SshError::BadPinnedKey(k.clone()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if expected.is_empty() {
            return Err(SshError::BadPinnedKey(String::new()));
        }
        let key_text = std::fs::read_to_string(&target.key_path).map_err(|e| SshError::Key {
            path: target.key_path.clone(),
            message: e.to_string(),
        })?;
        let key = Arc::new(
            // OpenSSH's format, or the PEM (PKCS#1/PKCS#8) docker-machine's keys are in.
            russh::keys::decode_secret_key(&key_text, None).map_err(|e| SshError::Key {
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
            let matched = Arc::new(Mutex::new(None));
            let handler = Pinned {
                expected: expected.clone(),
                seen: seen.clone(),
                matched: matched.clone(),
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
                    let which = matched.lock().expect("lock").unwrap_or(0);
                    return Ok(Session {
                        handle,
                        target: target.clone(),
                        host_key: target.host_keys[which].trim().to_string(),
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
                        expected: expected
                            .iter()
                            .map(|k| k.fingerprint(HashAlg::Sha256).to_string())
                            .collect::<Vec<_>>()
                            .join(" or "),
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

    /// The host key the server proved it holds (OpenSSH format).
    pub fn host_key(&self) -> &str {
        &self.host_key
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
                    status = Some(signal_exit_status(&signal_name));
                }
                _ => {}
            }
        }
        out.lost = status.is_none();
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

    /// Writes the files (each atomically: a temporary file, its mode, a rename) and then runs
    /// `then`, as root, in one round trip. The script and the contents travel on the channel
    /// (base64 in here-documents read by `sh -s`), never on a command line. Exit status 90: a
    /// file could not be written; otherwise `then`'s.
    pub async fn write_files_then(
        &self,
        files: &[RemoteFile<'_>],
        then: &str,
    ) -> Result<ExecOutput, SshError> {
        let script = write_files_script(files, then);
        self.exec_with_input(&format!("{}sh -s", self.sudo()), Some(script.as_bytes()))
            .await
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
                ChannelMsg::ExitSignal { signal_name, .. } => {
                    status = Some(signal_exit_status(&signal_name));
                }
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

/// The exit status a shell gives a command killed by `signal`: 128 + the signal's number, so
/// `docker euca ssh web1 -- cmd` reports what `ssh web1 cmd` run by bash would (143 for TERM,
/// 137 for KILL). Numbers are Linux's (the hosts run Linux; BUS, USR1, USR2 and a few others
/// differ on the BSDs). russh names only twelve signals and passes the rest as `Custom` with the
/// RFC 4254 name ("USR2"; a "SIG" prefix some servers add is accepted too). A name this table
/// does not know gives 128: "killed by a signal" without a number, which no real signal
/// produces and which stays apart from 255, this module's "no exit status at all".
fn signal_exit_status(signal: &russh::Sig) -> u32 {
    use russh::Sig;
    let number = match signal {
        Sig::HUP => 1,
        Sig::INT => 2,
        Sig::QUIT => 3,
        Sig::ILL => 4,
        Sig::ABRT => 6,
        Sig::FPE => 8,
        Sig::KILL => 9,
        Sig::USR1 => 10,
        Sig::SEGV => 11,
        Sig::PIPE => 13,
        Sig::ALRM => 14,
        Sig::TERM => 15,
        Sig::Custom(name) => signal_number(name).unwrap_or(0),
    };
    128 + number
}

/// Linux's number for a signal named as RFC 4254 names them.
fn signal_number(name: &str) -> Option<u32> {
    let name = name.strip_prefix("SIG").unwrap_or(name);
    Some(match name {
        "HUP" => 1,
        "INT" => 2,
        "QUIT" => 3,
        "ILL" => 4,
        "TRAP" => 5,
        "ABRT" | "IOT" => 6,
        "BUS" => 7,
        "FPE" => 8,
        "KILL" => 9,
        "USR1" => 10,
        "SEGV" => 11,
        "USR2" => 12,
        "PIPE" => 13,
        "ALRM" => 14,
        "TERM" => 15,
        "STKFLT" => 16,
        "CHLD" => 17,
        "CONT" => 18,
        "STOP" => 19,
        "TSTP" => 20,
        "TTIN" => 21,
        "TTOU" => 22,
        "URG" => 23,
        "XCPU" => 24,
        "XFSZ" => 25,
        "VTALRM" => 26,
        "PROF" => 27,
        "WINCH" => 28,
        "IO" | "POLL" => 29,
        "PWR" => 30,
        "SYS" => 31,
        _ => return None,
    })
}

/// Single-quotes `s` for a POSIX shell.
/// A file for [`Session::write_files_then`].
#[derive(Debug, Clone, Copy)]
pub struct RemoteFile<'a> {
    pub path: &'a str,
    pub contents: &'a [u8],
    pub mode: u32,
}

/// The `sh -s` script of [`Session::write_files_then`]. `then` runs with stdin from
/// `/dev/null`, so that nothing it starts reads the rest of the script.
pub fn write_files_script(files: &[RemoteFile<'_>], then: &str) -> String {
    use base64::Engine;
    let mut s = String::from(
        "umask 077
if command -v base64 >/dev/null 2>&1; then d64() { base64 -d; }; else d64() { openssl base64 -d -A; }; fi
",
    );
    for f in files {
        let q = shell_quote(f.path);
        let tmp = shell_quote(&format!("{}.docker-euca.tmp", f.path));
        let data = base64::engine::general_purpose::STANDARD.encode(f.contents);
        s.push_str(&format!(
            "mkdir -p \"$(dirname {q})\" && d64 > {tmp} <<'DOCKER_EUCA_EOF'\n{data}\nDOCKER_EUCA_EOF\n\
             chmod {mode:o} {tmp} && mv -f {tmp} {q} || exit 90\n",
            mode = f.mode
        ));
    }
    s.push_str(&format!("{{\n{then}\n}} </dev/null\n"));
    s
}

/// A word for the remote POSIX shell, quoted by the `shlex` crate (a word of plain characters
/// stays bare). A NUL, which no shell word can carry, is dropped.
pub fn shell_quote(s: &str) -> String {
    match shlex::try_quote(s) {
        Ok(quoted) => quoted.into_owned(),
        Err(_) => shell_quote(&s.replace('\0', "")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)] // runs the script with the local `sh`
    #[test]
    fn quoting() {
        assert_eq!(shell_quote("/etc/docker/ca.pem"), "/etc/docker/ca.pem");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote(""), "''");
        for word in [
            "it's", "a b", "$HOME", "`id`", "!x", "a\nb", "\\", "\"q\"", "*", "~",
        ] {
            let quoted = shell_quote(word);
            assert_eq!(
                shlex::split(&quoted),
                Some(vec![word.to_string()]),
                "{word:?} -> {quoted}"
            );
            let out = std::process::Command::new("sh")
                .args(["-c", &format!("printf %s {quoted}")])
                .output()
                .unwrap();
            assert_eq!(
                String::from_utf8_lossy(&out.stdout),
                word,
                "sh read {quoted} back"
            );
        }
    }

    #[test]
    fn a_signal_death_is_128_plus_the_signal_number() {
        use russh::Sig;
        for (signal, status) in [
            (Sig::HUP, 129),
            (Sig::INT, 130),
            (Sig::QUIT, 131),
            (Sig::ILL, 132),
            (Sig::ABRT, 134),
            (Sig::FPE, 136),
            (Sig::KILL, 137),
            (Sig::USR1, 138),
            (Sig::SEGV, 139),
            (Sig::PIPE, 141),
            (Sig::ALRM, 142),
            (Sig::TERM, 143),
            (Sig::Custom("USR2".into()), 140),
            (Sig::Custom("SIGUSR2".into()), 140),
            (Sig::Custom("BUS".into()), 135),
            (Sig::Custom("SYS".into()), 159),
            (Sig::Custom("NOSUCH".into()), 128),
            (Sig::Custom(String::new()), 128),
        ] {
            assert_eq!(signal_exit_status(&signal), status, "{signal:?}");
        }
    }

    // Runs the script with the local `sh`, as the remote host would.
    #[cfg(unix)]
    #[test]
    fn one_script_writes_every_file_with_its_mode_then_runs_the_rest() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("sub dir/key.pem");
        let conf = dir.path().join("conf");
        let (key_s, conf_s) = (key.to_str().unwrap(), conf.to_str().unwrap());
        let secret = b"-----BEGIN KEY-----\nno newline at the end";
        let script = write_files_script(
            &[
                RemoteFile {
                    path: key_s,
                    contents: secret,
                    mode: 0o600,
                },
                RemoteFile {
                    path: conf_s,
                    contents: b"A='$HOME' \\ \"x\"\n",
                    mode: 0o644,
                },
            ],
            "cat; echo then-ran; exit 7",
        );
        let mut child = std::process::Command::new("sh")
            .arg("-s")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(7));
        // `cat` in `then` reads /dev/null, not the rest of the script.
        assert_eq!(String::from_utf8_lossy(&out.stdout), "then-ran\n");
        assert_eq!(std::fs::read(&key).unwrap(), secret);
        assert_eq!(std::fs::read(&conf).unwrap(), b"A='$HOME' \\ \"x\"\n");
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!((mode(&key), mode(&conf)), (0o600, 0o644));
        assert!(!script.contains("no newline"), "contents travel encoded");
    }
}
