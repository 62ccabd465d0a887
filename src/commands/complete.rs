//! Cobra's `__complete` protocol, which docker uses to ask a plugin for completions:
//! one candidate per line (`value\tdescription`), then `:<directive>`.

use std::ffi::OsString;

use clap::Command;

/// Cobra's ShellCompDirectiveNoFileComp: do not fall back to file names.
const NO_FILE_COMP: u32 = 4;

/// Candidates for the last (partial) word of `args`, given the words before it; `machines`
/// are offered where a command takes machine names.
pub fn complete(root: &Command, args: &[OsString], machines: &[String]) -> String {
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
    let mut out = String::new();
    if partial.starts_with('-') {
        for arg in cmd
            .get_arguments()
            .chain(root.get_arguments().filter(|a| a.is_global_set()))
        {
            if let Some(long) = arg.get_long() {
                let flag = format!("--{long}");
                if flag.starts_with(partial) {
                    push(&mut out, &flag, arg.get_help().map(|h| h.to_string()));
                }
            }
        }
        out.push_str("--help\tPrint help\n");
    } else if cmd.has_subcommands() {
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            if sub.get_name().starts_with(partial) {
                push(
                    &mut out,
                    sub.get_name(),
                    sub.get_about().map(|h| h.to_string()),
                );
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
                push(&mut out, m, None);
            } else if takes_paths {
                push(&mut out, &format!("{m}:"), None);
            }
        }
    }
    out.push_str(&format!(":{NO_FILE_COMP}\n"));
    out
}

fn push(out: &mut String, value: &str, help: Option<String>) {
    out.push_str(value);
    if let Some(help) = help {
        out.push('\t');
        out.push_str(help.lines().next().unwrap_or(""));
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn completes_commands_and_flags() {
        let root = crate::cli::Cli::command();
        let out = complete(&root, &["ver".into()], &[]);
        assert!(out.starts_with("version\t"), "{out}");
        assert!(out.ends_with(":4\n"));
        let out = complete(&root, &["version".into(), "--de".into()], &[]);
        assert!(out.contains("--debug"), "{out}");
        let machines = ["web1".to_string(), "db1".to_string()];
        let out = complete(&root, &["rm".into(), "w".into()], &machines);
        assert_eq!(out, "web1\n:4\n");
        let out = complete(&root, &["scp".into(), "d".into()], &machines);
        assert_eq!(out, "db1:\n:4\n");
    }
}
