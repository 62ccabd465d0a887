//! Operations: what a command does, with typed inputs (`<Verb>Options`) and no clap. Each
//! command module is a thin wrapper around one of these.

pub mod cloud_target;
pub mod create;
pub mod login;
pub mod provision;
pub mod rm;

pub use create::{CreateOptions, create};
pub use login::{LoginOptions, login, logout};
pub use rm::{RmOptions, rm};
