//! SSH with russh: one session per host, the server's host key pinned (never "trust whatever
//! answers"), commands with exit status and separate stdout/stderr, file upload with modes.

pub mod keys;
mod session;

pub use session::shell_quote;

pub use session::{
    ExecOutput, Pty, RemoteFile, Session, SshError, SshTarget, connections_opened,
    first_seen_host_key, write_files_script,
};
