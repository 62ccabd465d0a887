//! The local terminal, through rustix's termios (no `stty` process): raw mode and echo off,
//! each put back by a guard (on return, `?`, unwinding, or a cancelled future dropped), and
//! the window size. Unix only; the platform's own console API would go beside it.

use std::{fs::File, io};

use rustix::termios::{self, LocalModes, OptionalActions, Termios};

/// The controlling terminal, for reading and writing (never stdin/stdout, which may be pipes).
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

/// Raw mode (no line editing, no signals from keys, no echo): an interactive remote shell.
pub fn raw(tty: &File) -> io::Result<Restore> {
    changed(tty, Termios::make_raw)
}

/// Echo off, the rest as it is: a secret typed at a prompt.
pub fn echo_off(tty: &File) -> io::Result<Restore> {
    changed(tty, |t| t.local_modes.remove(LocalModes::ECHO))
}

/// (columns, rows), when the terminal knows them.
pub fn size(tty: &File) -> Option<(u32, u32)> {
    let ws = termios::tcgetwinsize(tty).ok()?;
    (ws.ws_col > 0 && ws.ws_row > 0).then(|| (u32::from(ws.ws_col), u32::from(ws.ws_row)))
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
