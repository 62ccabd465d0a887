//! Cancellation: SIGINT/SIGTERM, and end-of-file on `DOCKER_CLI_PLUGIN_SOCKET`.
//!
//! When docker runs a plugin it opens a socket and passes its address in
//! `DOCKER_CLI_PLUGIN_SOCKET` (an abstract unix socket when it starts with `@`). Docker closes its
//! end when the user interrupts it; the plugin sees end-of-file and must stop cleanly.

#[cfg(unix)]
use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;

pub const SOCKET_ENV: &str = "DOCKER_CLI_PLUGIN_SOCKET";

/// Spawns the watchers; `token` is cancelled when any of them fires.
pub fn watch(token: CancellationToken) {
    let on_signal = token.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => tracing::debug!("interrupted (SIGINT, Ctrl-C)"),
            _ = terminated() => tracing::debug!("told to end (SIGTERM, or the console closed)"),
        }
        on_signal.cancel();
    });
    watch_socket(token);
}

/// SIGTERM on Unix.
#[cfg(unix)]
async fn terminated() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            term.recv().await;
        }
        Err(_) => std::future::pending().await,
    }
}

/// Ctrl-Break, or the console window closing, on Windows (Ctrl-C is `ctrl_c` above).
#[cfg(windows)]
async fn terminated() {
    use tokio::signal::windows::{ctrl_break, ctrl_close};
    match (ctrl_break(), ctrl_close()) {
        (Ok(mut brk), Ok(mut close)) => {
            tokio::select! {
                _ = brk.recv() => {}
                _ = close.recv() => {}
            }
        }
        _ => std::future::pending().await,
    }
}

/// Docker closes the socket when the user interrupts it: end-of-file cancels `token`.
#[cfg(unix)]
fn watch_socket(token: CancellationToken) {
    let Some(addr) = std::env::var_os(SOCKET_ENV) else {
        return;
    };
    let addr = addr.to_string_lossy().into_owned();
    match connect(&addr) {
        Ok(mut stream) => {
            tokio::spawn(async move {
                let mut buf = [0u8; 64];
                loop {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(_) => continue,
                    }
                }
                tracing::debug!("docker closed the plugin socket");
                token.cancel();
            });
        }
        Err(err) => tracing::debug!("cannot connect to {SOCKET_ENV}={addr}: {err}"),
    }
}

/// On Windows docker's socket is an abstract AF_UNIX name, which neither std nor tokio can
/// reach; the console's own events (Ctrl-C, Ctrl-Break, close), which reach every process
/// attached to it and so the plugin too, do the socket's job.
#[cfg(not(unix))]
fn watch_socket(_: CancellationToken) {}

/// Linux (and docker on Windows) names the socket `@NAME`, an abstract name; macOS and the
/// BSDs give a path in the temporary directory.
#[cfg(unix)]
fn connect(addr: &str) -> std::io::Result<tokio::net::UnixStream> {
    let std_stream = match addr.strip_prefix('@') {
        Some(name) => {
            #[cfg(target_os = "linux")]
            {
                use std::os::linux::net::SocketAddrExt;
                let sa = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
                std::os::unix::net::UnixStream::connect_addr(&sa)?
            }
            #[cfg(not(target_os = "linux"))]
            {
                let _ = name;
                return Err(std::io::Error::other("abstract sockets need Linux"));
            }
        }
        None => std::os::unix::net::UnixStream::connect(addr)?,
    };
    std_stream.set_nonblocking(true)?;
    tokio::net::UnixStream::from_std(std_stream)
}
