//! `docker euca env`: environment variables in each shell's own syntax, plus the hint line that
//! tells the user how to apply them.

use std::fmt::Write;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
    PowerShell,
    Cmd,
    Tcsh,
    Emacs,
}

impl Shell {
    pub fn parse(name: &str) -> Option<Shell> {
        let base = name
            .rsplit(['/', '\\'])
            .next()
            .unwrap_or(name)
            .trim_end_matches(".exe");
        Some(match base {
            "bash" | "sh" | "dash" | "ksh" => Shell::Bash,
            "zsh" => Shell::Zsh,
            "fish" => Shell::Fish,
            "powershell" | "pwsh" => Shell::PowerShell,
            "cmd" => Shell::Cmd,
            "tcsh" | "csh" => Shell::Tcsh,
            "emacs" => Shell::Emacs,
            _ => return None,
        })
    }

    /// From `$SHELL`, else bash.
    pub fn from_env() -> Shell {
        std::env::var("SHELL")
            .ok()
            .and_then(|s| Shell::parse(&s))
            .unwrap_or(Shell::Bash)
    }

    fn set(self, out: &mut String, key: &str, value: &str) {
        let _ = match self {
            Shell::Bash | Shell::Zsh => {
                writeln!(out, "export {key}=\"{}\"", value.replace('"', "\\\""))
            }
            Shell::Fish => writeln!(out, "set -gx {key} \"{}\";", value.replace('"', "\\\"")),
            Shell::PowerShell => writeln!(out, "$Env:{key} = \"{}\"", value.replace('"', "`\"")),
            Shell::Cmd => writeln!(out, "SET {key}={value}"),
            Shell::Tcsh => writeln!(out, "setenv {key} \"{}\";", value.replace('"', "\\\"")),
            Shell::Emacs => writeln!(out, "(setenv \"{key}\" \"{}\")", value.replace('"', "\\\"")),
        };
    }

    fn unset(self, out: &mut String, key: &str) {
        let _ = match self {
            Shell::Bash | Shell::Zsh => writeln!(out, "unset {key}"),
            Shell::Fish => writeln!(out, "set -e {key};"),
            Shell::PowerShell => writeln!(out, "Remove-Item Env:\\\\{key}"),
            Shell::Cmd => writeln!(out, "SET {key}="),
            Shell::Tcsh => writeln!(out, "unsetenv {key};"),
            Shell::Emacs => writeln!(out, "(setenv \"{key}\" nil)"),
        };
    }

    fn hint(self, out: &mut String, command: &str) {
        let (comment, apply) = match self {
            Shell::Bash | Shell::Zsh => ("#", format!("eval $({command})")),
            Shell::Fish => ("#", format!("eval ({command})")),
            Shell::PowerShell => ("#", format!("& {command} | Invoke-Expression")),
            Shell::Cmd => (
                "REM",
                format!("@FOR /f \"tokens=*\" %i IN ('{command}') DO @%i"),
            ),
            Shell::Tcsh => (":", format!("eval `{command}`")),
            Shell::Emacs => (
                ";;",
                format!(
                    "(with-temp-buffer (shell-command \"{command}\" (current-buffer)) (eval-buffer))"
                ),
            ),
        };
        let _ = writeln!(out, "{comment} Run this command to configure your shell:");
        let _ = writeln!(out, "{comment} {apply}");
    }
}

/// The variables that point the docker CLI at a machine.
pub fn render_set(shell: Shell, vars: &[(&str, String)], command: &str) -> String {
    let mut out = String::new();
    for (k, v) in vars {
        shell.set(&mut out, k, v);
    }
    shell.hint(&mut out, command);
    out
}

/// Unsets the variables.
pub fn render_unset(shell: Shell, keys: &[&str], command: &str) -> String {
    let mut out = String::new();
    for k in keys {
        shell.unset(&mut out, k);
    }
    shell.hint(&mut out, command);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shell_has_its_syntax() {
        let vars = [("DOCKER_HOST", "tcp://1.2.3.4:2376".to_string())];
        let cmd = "docker euca env web1";
        assert!(
            render_set(Shell::PowerShell, &vars, cmd)
                .starts_with("$Env:DOCKER_HOST = \"tcp://1.2.3.4:2376\"\n# Run")
        );
        assert!(
            render_set(Shell::Cmd, &vars, cmd)
                .contains("SET DOCKER_HOST=tcp://1.2.3.4:2376\nREM Run")
        );
        assert!(
            render_set(Shell::Emacs, &vars, cmd)
                .starts_with("(setenv \"DOCKER_HOST\" \"tcp://1.2.3.4:2376\")\n;; Run")
        );
        assert!(
            render_unset(Shell::PowerShell, &["DOCKER_HOST"], cmd)
                .starts_with("Remove-Item Env:\\\\DOCKER_HOST")
        );
        assert!(render_unset(Shell::Cmd, &["DOCKER_HOST"], cmd).starts_with("SET DOCKER_HOST=\n"));
        assert!(
            render_unset(Shell::Emacs, &["DOCKER_HOST"], cmd)
                .starts_with("(setenv \"DOCKER_HOST\" nil)")
        );
    }

    #[test]
    fn shell_names() {
        assert_eq!(Shell::parse("/usr/bin/zsh"), Some(Shell::Zsh));
        assert_eq!(Shell::parse("pwsh.exe"), Some(Shell::PowerShell));
        assert_eq!(Shell::parse("/bin/csh"), Some(Shell::Tcsh));
        assert_eq!(Shell::parse("nushell"), None);
    }
}
