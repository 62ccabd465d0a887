//! One module per command: read options, call the operations, render the result.

pub mod cloud_args;
pub mod complete;
pub mod completion;
pub mod create;
pub mod env;
pub mod inspect;
pub mod login;
pub mod ls;
pub mod power;
pub mod prune;
pub mod rm;
pub mod ssh;
pub mod version;

use std::path::PathBuf;

use tokio_util::sync::CancellationToken;

use crate::{
    context::{ConfigFile, ContextStore},
    plugin::GlobalFlags,
    store::Store,
};

/// What every command gets: docker's global flags, the resolved docker config directory and the
/// cancellation token. Passed by reference; there are no globals.
#[derive(Debug)]
pub struct Ctx {
    pub globals: GlobalFlags,
    pub docker_config: PathBuf,
    pub debug: bool,
    pub cancel: CancellationToken,
}

impl Ctx {
    pub fn new(globals: GlobalFlags, debug: bool, cancel: CancellationToken) -> Self {
        let docker_config = globals.docker_config_dir();
        Ctx {
            globals,
            docker_config,
            debug,
            cancel,
        }
    }

    pub fn store(&self) -> Store {
        Store::new(&self.docker_config)
    }

    pub fn contexts(&self) -> ContextStore {
        ContextStore::new(&self.docker_config)
    }

    pub fn config_file(&self) -> ConfigFile {
        ConfigFile::new(&self.docker_config)
    }
}
