//! The local terminal: raw mode and echo off, each put back by a guard (on return, `?`,
//! unwinding, or a cancelled future dropped), and the window size with its changes.
//!
//! One module per platform: `unix` (termios through rustix, `/dev/tty`, SIGWINCH) and
//! `windows` (the console's modes on `CONIN$`/`CONOUT$`, its size polled, since Windows sends
//! no signal on a resize).

#[cfg(unix)]
mod unix;
#[cfg(unix)]
use unix as os;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
use windows as os;

pub use os::{Restore, Terminal};

/// The controlling terminal, for reading and writing (never stdin/stdout, which may be pipes).
pub fn open() -> std::io::Result<Terminal> {
    os::open()
}

/// Raw mode (no line editing, no signals from keys, no echo): an interactive remote shell.
pub fn raw(tty: &Terminal) -> std::io::Result<Restore> {
    os::raw(tty)
}

/// Echo off, the rest as it is: a secret typed at a prompt.
pub fn echo_off(tty: &Terminal) -> std::io::Result<Restore> {
    os::echo_off(tty)
}

/// (columns, rows), when the terminal knows them.
pub fn size(tty: &Terminal) -> Option<(u32, u32)> {
    os::size(tty)
}

/// Sends the terminal's size on `sizes` now and whenever it changes, until aborted. It listens
/// before it reads, so that no resize falls between the two.
pub fn follow_size(
    sizes: tokio::sync::watch::Sender<(u32, u32)>,
    current: fn() -> (u32, u32),
) -> tokio::task::JoinHandle<()> {
    os::follow_size(sizes, current)
}
