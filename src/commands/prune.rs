//! `docker euca prune`

use std::{fmt, io::IsTerminal};

use anyhow::bail;
use clap::Args;

use super::{Ctx, cloud_args::CloudArgs};
use crate::{
    ops::prune::{self, Orphan, Owner, PruneOptions, Reason, Skip},
    report::{self, Hinted},
};

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// List what would be removed; remove nothing
    #[arg(long)]
    dry_run: bool,
    /// Do not ask for confirmation
    #[arg(short = 'y', long)]
    yes: bool,
    /// Also remove other stores' resources: everything tagged docker-euca:machine these
    /// credentials see, whether or not some other DOCKER_CONFIG still has its record
    #[arg(long)]
    all_stores: bool,
    #[command(flatten)]
    cloud: CloudArgs,
    /// No progress output
    #[arg(short, long)]
    quiet: bool,
}

pub async fn run(ctx: &Ctx, args: PruneArgs) -> anyhow::Result<()> {
    let opts = PruneOptions {
        cloud: args.cloud.into(),
        all_stores: args.all_stores,
        quiet: args.quiet,
    };
    let survey = prune::survey(&ctx.docker_config, &opts).await?;
    // Always the list first: with --all-stores it is what the "yes" is given to.
    for orphan in &survey.orphans {
        println!("{}", line(orphan));
    }
    let found = Counts::of(&survey.orphans);
    if args.dry_run {
        println!("would prune {found}");
        return Ok(());
    }
    if survey.orphans.is_empty() {
        println!("pruned {found}");
        return Ok(());
    }
    if !args.yes {
        let others = survey.orphans.iter().any(|o| {
            matches!(
                o,
                Orphan::Instance {
                    reason: Reason::OtherStore,
                    ..
                } | Orphan::Group {
                    reason: Reason::OtherStore,
                    ..
                }
            )
        });
        confirm(&survey.endpoint, found.total(), others).await?;
    }
    let pruned = prune::prune(&ctx.docker_config, &opts, survey).await?;
    for (orphan, skip) in &pruned.skipped {
        eprintln!("left alone: {}: {}", line(orphan), skip_text(skip));
    }
    for (orphan, err) in &pruned.failed {
        eprintln!("docker euca: cannot prune {}: {err:#}", line(orphan));
        if let Some(hint) = report::hint_for(err) {
            eprintln!("hint: {hint}");
        }
    }
    for context in &pruned.contexts {
        println!("context {context} (its instance was pruned)");
    }
    println!("pruned {}", Counts::of(&pruned.removed));
    if !pruned.failed.is_empty() {
        bail!(Hinted::new(
            format!(
                "could not prune {} of the resources listed",
                pruned.failed.len()
            ),
            "fix the causes above and run prune again (what is gone stays gone)",
        ));
    }
    Ok(())
}

/// Asks on the terminal; refuses without one (as `rm` does). The answer is read off the async
/// runtime, so that Ctrl-C cancels at once.
async fn confirm(endpoint: &str, total: usize, other_stores: bool) -> anyhow::Result<()> {
    let what = if total == 1 {
        "1 resource".to_string()
    } else {
        format!("{total} resources")
    };
    if !std::io::stdin().is_terminal() {
        bail!(Hinted::new(
            format!("refusing to prune {what} without confirmation"),
            "check the list above (--dry-run shows it without asking), then add -y to confirm",
        ));
    }
    if other_stores {
        eprintln!(
            "warning: --all-stores: this list holds other stores' resources (other DOCKER_CONFIGs, \
             other people's machines on this account), whose records prune cannot see"
        );
    }
    if !super::confirmed(&format!("Remove these {what} from {endpoint}?")).await? {
        bail!(Hinted::new("nothing pruned", "answer y, or pass -y"));
    }
    Ok(())
}

/// One resource, one line: `instance i-1 (machine web1, store 0a1b…): no record of web1 in this
/// store`.
fn line(orphan: &Orphan) -> String {
    match orphan {
        Orphan::Instance { id, owner, reason } => format!(
            "instance {id} ({}): {}",
            whose(owner),
            why(owner, reason, "instance")
        ),
        Orphan::Group {
            id,
            name,
            owner,
            reason,
        } => format!(
            "group {id} {name} ({}): {}",
            whose(owner),
            why(owner, reason, "group")
        ),
        Orphan::KeyPair { name, machine } => format!("key pair {name} (machine {machine})"),
    }
}

fn whose(owner: &Owner) -> String {
    match &owner.store {
        Some(store) => format!("machine {}, store {store}", owner.machine),
        None => format!("machine {}, no store tag", owner.machine),
    }
}

fn why(owner: &Owner, reason: &Reason, kind: &str) -> String {
    let machine = &owner.machine;
    match reason {
        Reason::NoRecord => format!("no record of {machine} in this store"),
        Reason::NotTheRecords {
            recorded: Some(recorded),
        } => format!("{machine}'s record has {kind} {recorded}"),
        Reason::NotTheRecords { recorded: None } => format!("{machine}'s record has no {kind}"),
        Reason::OtherStore if owner.store.is_some() => "another store's (--all-stores)".into(),
        Reason::OtherStore => "from before store ids (--all-stores)".into(),
    }
}

fn skip_text(skip: &Skip) -> String {
    match skip {
        Skip::Held => "a record of this store holds it now".into(),
        Skip::Gone => "it was gone already".into(),
        Skip::Changed => "its docker-euca tags changed since it was listed".into(),
        Skip::InUse(instance) => {
            format!("instance {instance}, which could not be terminated, still uses it")
        }
    }
}

/// How many of each kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Counts {
    instances: usize,
    groups: usize,
    key_pairs: usize,
}

impl Counts {
    fn of(orphans: &[Orphan]) -> Counts {
        let mut counts = Counts::default();
        for orphan in orphans {
            match orphan {
                Orphan::Instance { .. } => counts.instances += 1,
                Orphan::Group { .. } => counts.groups += 1,
                Orphan::KeyPair { .. } => counts.key_pairs += 1,
            }
        }
        counts
    }

    fn total(&self) -> usize {
        self.instances + self.groups + self.key_pairs
    }
}

impl fmt::Display for Counts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} instances, {} groups, {} key pairs",
            self.instances, self.groups, self.key_pairs
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(store: Option<&str>) -> Owner {
        Owner {
            machine: "web1".into(),
            store: store.map(str::to_string),
        }
    }

    #[test]
    fn one_line_per_resource() {
        let instance = Orphan::Instance {
            id: "i-1".into(),
            owner: owner(Some("0a1b2c3d4e5f6a7b")),
            reason: Reason::NoRecord,
        };
        assert_eq!(
            line(&instance),
            "instance i-1 (machine web1, store 0a1b2c3d4e5f6a7b): no record of web1 in this store"
        );
        let group = Orphan::Group {
            id: "sg-1".into(),
            name: "docker-euca-web1-0a1b2c3d".into(),
            owner: owner(Some("0a1b2c3d4e5f6a7b")),
            reason: Reason::NotTheRecords {
                recorded: Some("sg-2".into()),
            },
        };
        assert_eq!(
            line(&group),
            "group sg-1 docker-euca-web1-0a1b2c3d (machine web1, store 0a1b2c3d4e5f6a7b): \
             web1's record has group sg-2"
        );
        let legacy = Orphan::Instance {
            id: "i-2".into(),
            owner: owner(None),
            reason: Reason::OtherStore,
        };
        assert_eq!(
            line(&legacy),
            "instance i-2 (machine web1, no store tag): from before store ids (--all-stores)"
        );
        let key = Orphan::KeyPair {
            name: "docker-euca-web1-0a1b2c3d".into(),
            machine: "web1".into(),
        };
        assert_eq!(
            line(&key),
            "key pair docker-euca-web1-0a1b2c3d (machine web1)"
        );
        let counts = Counts::of(&[instance, group, legacy, key]);
        assert_eq!(counts.to_string(), "2 instances, 1 groups, 1 key pairs");
        assert_eq!(counts.total(), 4);
    }
}
