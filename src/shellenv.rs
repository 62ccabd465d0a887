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

    /// One assignment. Every value is quoted so that the shell, applying the output the way the
    /// hint says, sets exactly these bytes: nothing in it is expanded (`$`, backticks, `!`, `%`)
    /// and no quote inside it ends the string early. Where a shell cannot carry a value at all
    /// (a line break for cmd and tcsh), the variable is unset and a line says why, rather than
    /// set to something else or, for cmd, letting the rest of the value run as a command.
    fn set(self, out: &mut String, key: &str, value: &str) {
        let _ = match self {
            Shell::Bash | Shell::Zsh => writeln!(out, "export {key}={}", posix_quote(value)),
            Shell::Fish => writeln!(out, "set -gx {key} {};", fish_quote(value)),
            Shell::PowerShell => writeln!(out, "$Env:{key} = {}", powershell_quote(value)),
            Shell::Cmd if value.contains(['\n', '\r']) => {
                let _ = writeln!(out, "ECHO {}", cannot_carry(key, "cmd"));
                writeln!(out, "SET {key}=")
            }
            Shell::Cmd => writeln!(out, "SET {key}={value}"),
            Shell::Tcsh if value.contains('\n') => {
                let _ = writeln!(out, "echo {};", tcsh_quote(&cannot_carry(key, "tcsh")));
                writeln!(out, "unsetenv {key};")
            }
            Shell::Tcsh => writeln!(out, "setenv {key} {};", tcsh_quote(value)),
            Shell::Emacs => writeln!(out, "(setenv \"{key}\" {})", elisp_quote(value)),
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

    /// The apply line. bash needs `"$(…)"` quoted (unquoted, the output is word-split and
    /// globbed, which squeezes blanks and loses line breaks inside values) and tcsh needs
    /// `` "`…`" `` for the same reason (unquoted backquotes squeeze blanks and tabs). fish's
    /// `(…)` splits on line breaks only, which is why its lines end in `;`.
    fn hint(self, out: &mut String, command: &str) {
        let (comment, apply) = match self {
            Shell::Bash | Shell::Zsh => ("#", format!("eval \"$({command})\"")),
            Shell::Fish => ("#", format!("eval ({command})")),
            Shell::PowerShell => ("#", format!("& {command} | Invoke-Expression")),
            Shell::Cmd => (
                "REM",
                format!("@FOR /f \"tokens=*\" %i IN ('{command}') DO @%i"),
            ),
            // tcsh's `:` does not expand its arguments, so the backquotes here run nothing
            // when the whole output goes through eval.
            Shell::Tcsh => (":", format!("eval \"`{command}`\"")),
            Shell::Emacs => (
                ";;",
                format!(
                    "(with-temp-buffer (shell-command {} (current-buffer)) (eval-buffer))",
                    elisp_quote(command)
                ),
            ),
        };
        let _ = writeln!(out, "{comment} Run this command to configure your shell:");
        let _ = writeln!(out, "{comment} {apply}");
    }
}

/// The line that replaces an assignment a shell cannot carry.
fn cannot_carry(key: &str, shell: &str) -> String {
    format!("docker euca: {key} left unset: its value holds a line break, which {shell} cannot set")
}

/// POSIX sh, bash, zsh, dash, ksh: inside single quotes nothing is special (no `$`, backtick,
/// `\`, `!` or line break), so the only character to handle is `'` itself: close the quotes,
/// add an escaped `'`, reopen (`'\''`). Kept beside `shlex` (which the remote commands use):
/// shlex puts a word with a `'` in double quotes, where an interactive bash expands `!` when
/// the line is pasted rather than eval'd; here every value is single-quoted, always.
fn posix_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

/// fish: single quotes know exactly two escapes, `\\` and `\'`; everything else, `$`
/// included, is literal. A line break is written as an unquoted `\n` between two quoted
/// parts, because `eval (…)` splits the output at line breaks and would turn a literal one
/// into a space.
fn fish_quote(value: &str) -> String {
    let mut quoted = String::with_capacity(value.len() + 2);
    quoted.push('\'');
    for c in value.chars() {
        match c {
            '\\' => quoted.push_str(r"\\"),
            '\'' => quoted.push_str(r"\'"),
            '\n' => quoted.push_str(r"'\n'"),
            c => quoted.push(c),
        }
    }
    quoted.push('\'');
    quoted
}

/// PowerShell: double quotes with the backtick escaping `` ` ``, `$`, `"` and the typographic
/// double quotes PowerShell also accepts as quotes (U+201C, U+201D, U+201E). Double, not
/// single, quotes because `| Invoke-Expression` runs the output one line at a time: a line
/// break inside a value must be written as `` `n `` (and CR as `` `r ``), which only double
/// quotes understand.
fn powershell_quote(value: &str) -> String {
    let mut quoted = String::with_capacity(value.len() + 2);
    quoted.push('"');
    for c in value.chars() {
        match c {
            '`' | '$' | '"' | '\u{201C}' | '\u{201D}' | '\u{201E}' => {
                quoted.push('`');
                quoted.push(c);
            }
            '\n' => quoted.push_str("`n"),
            '\r' => quoted.push_str("`r"),
            '\0' => quoted.push_str("`0"),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

/// tcsh and csh: single quotes stop `$`, backticks and globbing, and `\` is literal inside
/// them, but history substitution still sees a bare `!` (even in text run by eval, where an
/// unknown event is a hard error), so `!` becomes `\!`; `'` is written as `'\''`. A line
/// break cannot survive `eval "`…`"` (backquotes split at line breaks), so callers never pass
/// one here as a value.
fn tcsh_quote(value: &str) -> String {
    let mut quoted = String::with_capacity(value.len() + 2);
    quoted.push('\'');
    for c in value.chars() {
        match c {
            '\'' => quoted.push_str(r"'\''"),
            '!' => quoted.push_str(r"\!"),
            c => quoted.push(c),
        }
    }
    quoted.push('\'');
    quoted
}

/// Emacs Lisp: a string literal where only `"` and `\` need a backslash; a line break may
/// stand in it as it is.
fn elisp_quote(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', r"\\").replace('"', "\\\""))
}

// cmd gets the value verbatim, and that is right for the way the hint applies it:
// `FOR /f … DO @%i` substitutes each line after cmd has done its `%` expansion and its
// handling of `^ & | < >`, so none of those is interpreted again (a `^%` escape would stay in
// the value as a caret). Pasting the line at a prompt instead would expand `%NAME%`; no
// escape in cmd covers both uses. With delayed expansion on (`cmd /V:ON`), `!NAME!` in a
// value would still expand: it is off by default and nothing here turns it on.

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

    /// Everything a shell might expand or end a string on.
    const TRICKY: &str = r#"a $HOME `id` 'sq' "dq" \bs !bang %PATH% ^ & |  two  spaces"#;

    fn line(shell: Shell, value: &str) -> String {
        let mut out = String::new();
        shell.set(&mut out, "K", value);
        out
    }

    #[test]
    fn posix_shells_get_single_quotes() {
        let want = r#"export K='a $HOME `id` '\''sq'\'' "dq" \bs !bang %PATH% ^ & |  two  spaces'"#;
        assert_eq!(line(Shell::Bash, TRICKY), format!("{want}\n"));
        assert_eq!(line(Shell::Zsh, TRICKY), format!("{want}\n"));
        assert_eq!(line(Shell::Bash, "a\nb"), "export K='a\nb'\n");
    }

    #[test]
    fn fish_escapes_backslash_quote_and_line_break() {
        let want = r#"set -gx K 'a $HOME `id` \'sq\' "dq" \\bs !bang %PATH% ^ & |  two  spaces';"#;
        assert_eq!(line(Shell::Fish, TRICKY), format!("{want}\n"));
        assert_eq!(line(Shell::Fish, "a\nb"), "set -gx K 'a'\\n'b';\n");
    }

    #[test]
    fn powershell_escapes_with_backticks() {
        let want = r#"$Env:K = "a `$HOME ``id`` 'sq' `"dq`" \bs !bang %PATH% ^ & |  two  spaces""#;
        assert_eq!(line(Shell::PowerShell, TRICKY), format!("{want}\n"));
        assert_eq!(
            line(Shell::PowerShell, "a\r\nb\u{201C}c"),
            "$Env:K = \"a`r`nb`\u{201C}c\"\n"
        );
    }

    #[test]
    fn tcsh_escapes_bang_and_quote() {
        let want =
            r#"setenv K 'a $HOME `id` '\''sq'\'' "dq" \bs \!bang %PATH% ^ & |  two  spaces';"#;
        assert_eq!(line(Shell::Tcsh, TRICKY), format!("{want}\n"));
    }

    #[test]
    fn emacs_escapes_quote_and_backslash() {
        let want =
            r#"(setenv "K" "a $HOME `id` 'sq' \"dq\" \\bs !bang %PATH% ^ & |  two  spaces")"#;
        assert_eq!(line(Shell::Emacs, TRICKY), format!("{want}\n"));
        let hint = render_set(
            Shell::Emacs,
            &[],
            r#"docker euca env --shell "e\macs" web1"#,
        );
        assert!(
            hint.ends_with(
                ";; (with-temp-buffer (shell-command \"docker euca env --shell \\\"e\\\\macs\\\" web1\" (current-buffer)) (eval-buffer))\n"
            ),
            "{hint}"
        );
    }

    #[test]
    fn cmd_takes_the_value_verbatim() {
        // `FOR /f … DO @%i` does not expand `%` or act on `^ & |` in what it substitutes.
        assert_eq!(line(Shell::Cmd, TRICKY), format!("SET K={TRICKY}\n"));
    }

    #[test]
    fn a_line_break_is_never_set_where_the_shell_cannot_carry_it() {
        // Raw, the second line would run as a command of its own under cmd's FOR loop.
        assert_eq!(
            line(Shell::Cmd, "a\r\ndel *"),
            "ECHO docker euca: K left unset: its value holds a line break, which cmd cannot set\nSET K=\n"
        );
        assert_eq!(
            line(Shell::Tcsh, "a\nb"),
            "echo 'docker euca: K left unset: its value holds a line break, which tcsh cannot set';\nunsetenv K;\n"
        );
    }

    #[test]
    fn hints_quote_the_command_substitution() {
        let cmd = "docker euca env web1";
        assert!(
            render_set(Shell::Bash, &[], cmd).ends_with("# eval \"$(docker euca env web1)\"\n")
        );
        assert!(render_set(Shell::Tcsh, &[], cmd).ends_with(": eval \"`docker euca env web1`\"\n"));
    }

    /// Whether `shell` runs here; the exact-text tests above cover the shells that do not.
    fn installed(shell: &str) -> bool {
        std::process::Command::new(shell)
            .args(["-c", "exit 0"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// What `printenv K` says after `shell` applied `render_set` the way the hint says.
    fn applied(shell: &str, kind: Shell, value: &str) -> String {
        let apply = match kind {
            Shell::Fish => "eval (printenv OUT); printenv K",
            Shell::Tcsh => "eval \"`printenv OUT`\"; printenv K",
            _ => "eval \"$(printenv OUT)\"; printenv K",
        };
        let rendered = render_set(
            kind,
            &[("K", value.to_string())],
            &format!("docker euca env --shell {shell} web1"),
        );
        let out = std::process::Command::new(shell)
            .args(["-c", apply])
            .env("OUT", &rendered)
            .env_remove("K")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{shell}: {}\n{rendered}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    #[test]
    fn values_round_trip_through_the_installed_shells() {
        let shells = [
            ("sh", Shell::Bash),
            ("bash", Shell::Bash),
            ("zsh", Shell::Zsh),
            ("fish", Shell::Fish),
            ("tcsh", Shell::Tcsh),
        ];
        for (shell, kind) in shells {
            if !installed(shell) {
                continue;
            }
            assert_eq!(
                applied(shell, kind, TRICKY),
                format!("{TRICKY}\n"),
                "{shell}"
            );
            if kind != Shell::Tcsh {
                let broken = "line one\n'line' $two\n";
                assert_eq!(
                    applied(shell, kind, broken),
                    format!("{broken}\n"),
                    "{shell}"
                );
            }
        }
    }

    #[test]
    fn shell_names() {
        assert_eq!(Shell::parse("/usr/bin/zsh"), Some(Shell::Zsh));
        assert_eq!(Shell::parse("pwsh.exe"), Some(Shell::PowerShell));
        assert_eq!(Shell::parse("/bin/csh"), Some(Shell::Tcsh));
        assert_eq!(Shell::parse("nushell"), None);
    }
}
