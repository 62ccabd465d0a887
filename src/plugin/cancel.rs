//! Cancellation: SIGINT/SIGTERM, and end-of-file on `DOCKER_CLI_PLUGIN_SOCKET`.
//!
//! When docker runs a plugin it opens a socket and passes its address in
//! `DOCKER_CLI_PLUGIN_SOCKET` (an abstract unix socket when it starts with `@`). Docker closes its
//! end when the user interrupts it; the plugin sees end-of-file and must stop cleanly.

use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;

pub const SOCKET_ENV: &str = "DOCKER_CLI_PLUGIN_SOCKET";

/// Spawns the watchers; `token` is cancelled when any of them fires.
pub fn watch(token: CancellationToken) {
    let on_signal = token.clone();
    tokio::spawn(async move {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        let term = async {
            match term.as_mut() {
                Some(t) => {
                    t.recv().await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => tracing::debug!("SIGINT received"),
            _ = term => tracing::debug!("SIGTERM received"),
        }
        on_signal.cancel();
    });
    if let Some(addr) = std::env::var_os(SOCKET_ENV) {
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
}

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
