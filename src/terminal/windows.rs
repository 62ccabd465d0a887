//! The terminal on Windows: the console's input (`CONIN$`) and output (`CONOUT$`) buffers,
//! their modes through the console API. Windows sends no signal on a resize: the size is
//! polled.

use std::{
    fs::{File, OpenOptions},
    io::{self, Read, Write},
    os::windows::io::AsRawHandle,
    time::Duration,
};

use windows_sys::Win32::System::Console::{
    CONSOLE_MODE, CONSOLE_SCREEN_BUFFER_INFO, ENABLE_ECHO_INPUT, ENABLE_LINE_INPUT,
    ENABLE_PROCESSED_INPUT, ENABLE_VIRTUAL_TERMINAL_INPUT, ENABLE_VIRTUAL_TERMINAL_PROCESSING,
    GetConsoleMode, GetConsoleScreenBufferInfo, SetConsoleMode,
};

/// How often a resize is looked for.
const SIZE_POLL: Duration = Duration::from_millis(250);

/// The console: keys are read from its input buffer, text written to its screen buffer.
#[derive(Debug)]
pub struct Terminal {
    input: File,
    output: File,
}

impl Terminal {
    pub fn try_clone(&self) -> io::Result<Terminal> {
        Ok(Terminal {
            input: self.input.try_clone()?,
            output: self.output.try_clone()?,
        })
    }
}

impl Read for Terminal {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.input.read(buf)
    }
}

impl Write for &Terminal {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&self.output).write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        (&self.output).flush()
    }
}

pub fn open() -> io::Result<Terminal> {
    let open = |name| OpenOptions::new().read(true).write(true).open(name);
    Ok(Terminal {
        input: open("CONIN$")?,
        output: open("CONOUT$")?,
    })
}

fn mode_of(file: &File) -> io::Result<CONSOLE_MODE> {
    let mut mode: CONSOLE_MODE = 0;
    // SAFETY: the handle is the open file's; `mode` outlives the call.
    if unsafe { GetConsoleMode(file.as_raw_handle(), &mut mode) } == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(mode)
}

fn set_mode(file: &File, mode: CONSOLE_MODE) -> io::Result<()> {
    // SAFETY: the handle is the open file's.
    if unsafe { SetConsoleMode(file.as_raw_handle(), mode) } == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Puts the console's modes back as they were when it was made.
pub struct Restore {
    tty: Terminal,
    input: CONSOLE_MODE,
    output: CONSOLE_MODE,
}

impl Drop for Restore {
    fn drop(&mut self) {
        let _ = set_mode(&self.tty.input, self.input);
        let _ = set_mode(&self.tty.output, self.output);
    }
}

fn changed(
    tty: &Terminal,
    input: impl FnOnce(CONSOLE_MODE) -> CONSOLE_MODE,
    output: impl FnOnce(CONSOLE_MODE) -> CONSOLE_MODE,
) -> io::Result<Restore> {
    let saved = Restore {
        tty: tty.try_clone()?,
        input: mode_of(&tty.input)?,
        output: mode_of(&tty.output)?,
    };
    set_mode(&tty.input, input(saved.input))?;
    set_mode(&tty.output, output(saved.output))?;
    Ok(saved)
}

/// Keys as they come (no line editing, no Ctrl-C handling, no echo) and sent as the terminal
/// sequences a remote shell expects; the remote's escape sequences shown as such.
pub fn raw(tty: &Terminal) -> io::Result<Restore> {
    changed(
        tty,
        |m| {
            (m & !(ENABLE_ECHO_INPUT | ENABLE_LINE_INPUT | ENABLE_PROCESSED_INPUT))
                | ENABLE_VIRTUAL_TERMINAL_INPUT
        },
        |m| m | ENABLE_VIRTUAL_TERMINAL_PROCESSING,
    )
}

pub fn echo_off(tty: &Terminal) -> io::Result<Restore> {
    changed(tty, |m| m & !ENABLE_ECHO_INPUT, |m| m)
}

pub fn size(tty: &Terminal) -> Option<(u32, u32)> {
    // SAFETY: a plain C struct, all zeroes is a valid value; the handle is the open file's.
    let mut info: CONSOLE_SCREEN_BUFFER_INFO = unsafe { std::mem::zeroed() };
    if unsafe { GetConsoleScreenBufferInfo(tty.output.as_raw_handle(), &mut info) } == 0 {
        return None;
    }
    let w = &info.srWindow;
    let cols = i32::from(w.Right) - i32::from(w.Left) + 1;
    let rows = i32::from(w.Bottom) - i32::from(w.Top) + 1;
    (cols > 0 && rows > 0).then(|| (cols as u32, rows as u32))
}

pub fn follow_size(
    sizes: tokio::sync::watch::Sender<(u32, u32)>,
    current: fn() -> (u32, u32),
) -> tokio::task::JoinHandle<()> {
    let _ = sizes.send(current());
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SIZE_POLL);
        loop {
            tick.tick().await;
            let now = current();
            if *sizes.borrow() != now && sizes.send(now).is_err() {
                return;
            }
        }
    })
}
