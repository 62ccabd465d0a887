//! Operations: what a command does, with typed inputs (`<Verb>Options`) and no clap. Each
//! command module is a thin wrapper around one of these.

pub mod aws_options;
pub mod certs;
pub mod cloud_target;
pub mod create;
pub mod import;
pub mod ingress;
pub mod login;
pub mod logs;
pub mod ls;
pub mod machine;
pub mod power;
pub mod provision;
pub mod prune;
pub mod rm;
pub mod scp;
pub mod setup;
pub mod swarm;
pub mod teardown;
pub mod upgrade;

pub use create::{CreateOptions, create};
pub use login::{LoginOptions, login, logout};
pub use prune::{PruneOptions, prune};
pub use rm::{RmOptions, rm};
