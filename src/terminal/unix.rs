//! The terminal on Unix: `/dev/tty`, its modes through rustix's termios (no `stty` process).

use std::{fs::File, io};

use rustix::termios::{self, LocalModes, OptionalActions, Termios};

/// On Unix the terminal is one file, read and written.
pub type Terminal = File;

pub fn open() -> io::Result<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
}

/// Puts the terminal's modes back as they were when it was made.
pub struct Restore {
    tty: File,
    saved: Termios,
}

impl Drop for Restore {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(&self.tty, OptionalActions::Now, &self.saved);
    }
}

/// Applies `change` to the terminal's modes; the guard restores them.
fn changed(tty: &File, change: impl FnOnce(&mut Termios)) -> io::Result<Restore> {
    let saved = termios::tcgetattr(tty)?;
    let mut modes = saved.clone();
    change(&mut modes);
    termios::tcsetattr(tty, OptionalActions::Now, &modes)?;
    Ok(Restore {
        tty: tty.try_clone()?,
        saved,
    })
}

pub fn raw(tty: &File) -> io::Result<Restore> {
    changed(tty, Termios::make_raw)
}

pub fn echo_off(tty: &File) -> io::Result<Restore> {
    changed(tty, |t| t.local_modes.remove(LocalModes::ECHO))
}

pub fn size(tty: &File) -> Option<(u32, u32)> {
    let ws = termios::tcgetwinsize(tty).ok()?;
    (ws.ws_col > 0 && ws.ws_row > 0).then(|| (u32::from(ws.ws_col), u32::from(ws.ws_row)))
}

/// SIGWINCH says the terminal was resized.
pub fn follow_size(
    sizes: tokio::sync::watch::Sender<(u32, u32)>,
    current: fn() -> (u32, u32),
) -> tokio::task::JoinHandle<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let changes = signal(SignalKind::window_change()).ok();
    let _ = sizes.send(current());
    tokio::spawn(async move {
        let Some(mut changes) = changes else { return };
        while changes.recv().await.is_some() {
            let _ = sizes.send(current());
        }
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn what_is_not_a_terminal_is_refused() {
        let file = tempfile::tempfile().unwrap();
        assert!(super::raw(&file).is_err());
        assert!(super::echo_off(&file).is_err());
        assert_eq!(super::size(&file), None);
    }
}
