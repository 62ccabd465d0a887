//! Cobra's `__complete` protocol, which docker uses to ask a plugin for completions:
//! one candidate per line (`value\tdescription`), then `:<directive>`.

use std::ffi::OsString;

use clap::Command;

/// Cobra's ShellCompDirectiveNoSpace: the candidate goes on (`web1:` then a path).
const NO_SPACE: u32 = 2;
/// Cobra's ShellCompDirectiveNoFileComp: do not fall back to file names.
const NO_FILE_COMP: u32 = 4;

/// The candidates for one word, and cobra's directive for the shell.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Answer {
    candidates: Vec<(String, Option<String>)>,
    directive: u32,
}

impl Answer {
    /// One candidate per line (`value\tdescription` when `descriptions`), then `:<directive>`.
    pub fn render(&self, descriptions: bool) -> String {
        let mut out = String::new();
        for (value, help) in &self.candidates {
            out.push_str(value);
            if let (true, Some(help)) = (descriptions, help) {
                out.push('\t');
                out.push_str(help.lines().next().unwrap_or(""));
            }
            out.push('\n');
        }
        out.push_str(&format!(":{}\n", self.directive));
        out
    }

    fn push(&mut self, value: impl Into<String>, help: Option<String>) {
        self.candidates.push((value.into(), help));
    }
}

/// Candidates for the last (partial) word of `args`, given the words before it; `machines`
/// are offered where a command takes machine names.
pub fn complete(root: &Command, args: &[OsString], machines: &[String]) -> Answer {
    let words: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let (partial, before) = match words.split_last() {
        Some((last, before)) => (last.as_str(), before),
        None => ("", &[][..]),
    };
    let mut cmd = root;
    for word in before {
        if let Some(sub) = cmd.get_subcommands().find(|s| s.get_name() == word) {
            cmd = sub;
        }
    }
    let mut answer = Answer {
        directive: NO_FILE_COMP,
        ..Answer::default()
    };
    if partial.starts_with('-') {
        for arg in cmd
            .get_arguments()
            .chain(root.get_arguments().filter(|a| a.is_global_set()))
        {
            if let Some(long) = arg.get_long() {
                let flag = format!("--{long}");
                if flag.starts_with(partial) {
                    answer.push(flag, arg.get_help().map(|h| h.to_string()));
                }
            }
        }
        answer.push("--help", Some("Print help".into()));
    } else if cmd.has_subcommands() {
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            if sub.get_name().starts_with(partial) {
                answer.push(sub.get_name(), sub.get_about().map(|h| h.to_string()));
            }
        }
    } else {
        let takes_names = cmd
            .get_positionals()
            .any(|a| matches!(a.get_id().as_str(), "name" | "names"));
        let takes_paths = cmd
            .get_positionals()
            .any(|a| matches!(a.get_id().as_str(), "src" | "dst"));
        for m in machines.iter().filter(|m| m.starts_with(partial)) {
            if takes_names {
                answer.push(m.as_str(), None);
            } else if takes_paths {
                answer.push(format!("{m}:"), None);
            }
        }
        if takes_paths {
            answer.directive |= NO_SPACE;
        }
    }
    answer
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn completes_commands_and_flags() {
        let root = crate::cli::Cli::command();
        let out = complete(&root, &["ver".into()], &[]).render(true);
        assert!(out.starts_with("version\t"), "{out}");
        assert!(out.ends_with(":4\n"));
        let out = complete(&root, &["ver".into()], &[]).render(false);
        assert!(out.starts_with("version\n"), "no description asked: {out}");
        let out = complete(&root, &["version".into(), "--de".into()], &[]).render(true);
        assert!(out.contains("--debug"), "{out}");
        let machines = ["web1".to_string(), "db1".to_string()];
        let out = complete(&root, &["rm".into(), "w".into()], &machines).render(true);
        assert_eq!(out, "web1\n:4\n");
        // `web1:` goes on with a path: no space after it.
        let out = complete(&root, &["scp".into(), "d".into()], &machines).render(true);
        assert_eq!(out, "db1:\n:6\n");
    }
}
