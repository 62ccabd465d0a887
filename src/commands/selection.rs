//! Which machines a command acts on: names, `*` patterns and `--filter`s, as `ls` selects them.

use anyhow::bail;
use clap::Args;

use super::Ctx;
use crate::{
    names::MachineName,
    ops::ls::{self, LsOptions, name_matches},
    report::Hinted,
};

#[derive(Debug, Args)]
pub struct Selection {
    /// Machine names, or patterns with `*` (quote them: 'web-*')
    #[arg(value_name = "NAME", required_unless_present = "filters", value_parser = name_or_pattern)]
    names: Vec<String>,
    /// Also the machines `ls --filter` shows: name=PATTERN, swarm=CLUSTER, state=STATE
    /// (repeatable; all must match)
    #[arg(long = "filter", value_name = "KEY=VALUE")]
    filters: Vec<String>,
}

/// A machine name, or a pattern of name characters and `*`: checked as clap parses, so a bad
/// one is a usage error like any other.
fn name_or_pattern(s: &str) -> Result<String, String> {
    if s.contains('*') {
        let ok = s
            .chars()
            .all(|c| c == '*' || c.is_ascii_alphanumeric() || "_.+-".contains(c));
        return if ok {
            Ok(s.to_string())
        } else {
            Err(format!(
                "{s:?} is no name pattern: use name characters (letters, digits, `_.+-`) and `*`"
            ))
        };
    }
    MachineName::new(s)
        .map(|n| n.to_string())
        .map_err(|e| format!("{e}; {}", e.hint()))
}

impl Selection {
    /// The machines selected, each once, in the order given (a pattern's matches sorted). A
    /// pattern or filter that matches nothing is an error: a typo must not do nothing quietly.
    pub async fn resolve(&self, ctx: &Ctx) -> anyhow::Result<Vec<MachineName>> {
        if self.names.is_empty() && self.filters.is_empty() {
            bail!(Hinted::new(
                "no machine given",
                "name the machines, or select them with --filter name=PATTERN|swarm=CLUSTER|state=STATE",
            ));
        }
        let store = ctx.store();
        let mut known = store.names();
        known.sort();
        let mut chosen: Vec<MachineName> = Vec::new();
        let mut add = |name: MachineName| {
            if !chosen.contains(&name) {
                chosen.push(name);
            }
        };
        for given in &self.names {
            if !given.contains('*') {
                add(MachineName::new(given)?);
                continue;
            }
            let matches: Vec<&String> = known.iter().filter(|n| name_matches(n, given)).collect();
            if matches.is_empty() {
                bail!(Hinted::new(
                    format!("no machine matches {given:?}"),
                    "`docker euca ls` lists the machines",
                ));
            }
            for m in matches {
                add(MachineName::new(m)?);
            }
        }
        if !self.filters.is_empty() {
            for name in self.filtered(ctx).await? {
                add(name);
            }
        }
        Ok(chosen)
    }

    async fn filtered(&self, ctx: &Ctx) -> anyhow::Result<Vec<MachineName>> {
        let mut opts = LsOptions::default();
        for f in &self.filters {
            opts.add_filter(f)?;
        }
        let names: Vec<String> = if opts.state_filters.is_empty() {
            // Records alone say the name and the cluster: no cloud call.
            ctx.store()
                .list()?
                .into_iter()
                .filter_map(|(_, r)| r.ok())
                .filter(|r| opts.keeps(r))
                .map(|r| r.name.to_string())
                .collect()
        } else {
            opts.timeout = std::time::Duration::from_secs(10);
            ls::ls(&ctx.docker_config, &opts)
                .await?
                .into_iter()
                .map(|r| r.name)
                .collect()
        };
        if names.is_empty() {
            bail!(Hinted::new(
                format!(
                    "no machine matches --filter {}",
                    self.filters.join(" --filter ")
                ),
                "`docker euca ls --filter …` shows what a filter selects",
            ));
        }
        names.iter().map(|n| Ok(MachineName::new(n)?)).collect()
    }
}
