//! One module per command: read options, call the operations, render the result.

pub mod cloud_args;
pub mod complete;
pub mod completion;
pub mod create;
pub mod doctor;
pub mod env;
pub mod import;
pub mod inspect;
pub mod login;
pub mod logs;
pub mod ls;
pub mod manpages;
pub mod power;
pub mod prune;
pub mod rm;
pub mod selection;
pub mod ssh;
pub mod swarm;
pub mod upgrade;
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

/// Asks `question` on the terminal and reads the answer off the async runtime (so that Ctrl-C
/// cancels at once); whether it was yes. The caller checks first that stdin is a terminal.
pub async fn confirmed(question: &str) -> anyhow::Result<bool> {
    use std::io::{BufRead, Write};
    eprint!("{question} [y/N] ");
    std::io::stderr().flush()?;
    let answer = tokio::task::spawn_blocking(|| {
        let mut answer = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut answer)
            .map(|_| answer)
    })
    .await??;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}
