//! `docker euca man-pages DIR` (hidden; for packaging): docker-euca(1) and one page per
//! command, docker-euca-create(1) and so on, made from the same clap tree as `--help`.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, CommandFactory};

#[derive(Debug, Args)]
pub struct ManPagesArgs {
    /// The directory to write the pages into (made if missing)
    dir: PathBuf,
}

pub fn run(args: ManPagesArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot make {}", args.dir.display()))?;
    clap_mangen::generate_to(page_tree(), &args.dir)
        .with_context(|| format!("cannot write the man pages into {}", args.dir.display()))
}

/// The clap tree named as the pages are: `docker-euca` (man's names have no spaces), its
/// commands `docker-euca-NAME`, while synopses keep `docker euca NAME`.
fn page_tree() -> clap::Command {
    crate::cli::Cli::command()
        .name("docker-euca")
        .display_name("docker-euca")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_visible_command_has_a_page_with_its_synopsis() {
        let dir = tempfile::tempdir().unwrap();
        run(ManPagesArgs {
            dir: dir.path().to_path_buf(),
        })
        .unwrap();
        let root = std::fs::read_to_string(dir.path().join("docker-euca.1")).unwrap();
        assert!(root.contains("docker euca"), "{root}");
        for sub in crate::cli::Cli::command().get_subcommands() {
            let page = dir.path().join(format!("docker-euca-{}.1", sub.get_name()));
            assert_eq!(page.exists(), !sub.is_hide_set(), "{}", page.display());
        }
        let create = std::fs::read_to_string(dir.path().join("docker-euca-create.1")).unwrap();
        assert!(create.contains("docker euca create"), "{create}");
        assert!(create.contains("\\-\\-image"), "{create}");
        assert!(dir.path().join("docker-euca-swarm-ls.1").exists());
    }
}
