//! One line per stage with its elapsed time: a spinner on a terminal, plain lines otherwise,
//! nothing with `--quiet`. Always on stderr, so stdout stays for results. The machines of a
//! fleet each have their own, prefixed with the machine's name, their spinners stacked in one
//! [`MultiProgress`] on a terminal.

use std::{
    io::IsTerminal,
    time::{Duration, Instant},
};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

#[derive(Debug)]
pub struct Progress {
    quiet: bool,
    tty: bool,
    started: Instant,
    current: Option<(String, Instant, Option<ProgressBar>)>,
    /// `NAME: ` for a machine of a fleet.
    prefix: String,
    /// The fleet's stack of spinners (on a terminal only).
    multi: Option<MultiProgress>,
}

impl Progress {
    pub fn new(quiet: bool) -> Self {
        Progress {
            quiet,
            tty: std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
            started: Instant::now(),
            current: None,
            prefix: String::new(),
            multi: None,
        }
    }

    /// The stack the machines of a fleet draw their spinners in: `None` when there is nothing
    /// to draw (quiet, or not a terminal), where each machine prints plain prefixed lines.
    pub fn multi(&self) -> Option<MultiProgress> {
        (!self.quiet && self.tty).then(MultiProgress::new)
    }

    /// The progress of one machine of a fleet: its lines start with `NAME: `.
    pub fn for_machine(&self, name: &str, multi: Option<&MultiProgress>) -> Progress {
        Progress {
            quiet: self.quiet,
            tty: self.tty,
            started: self.started,
            current: None,
            prefix: format!("{name}: "),
            multi: multi.cloned(),
        }
    }

    /// Starts a stage (ending the previous one).
    pub fn stage(&mut self, what: impl Into<String>) {
        self.finish_stage();
        let what = what.into();
        let bar = (!self.quiet && self.tty).then(|| {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} {prefix}{msg} {elapsed}")
                    .expect("template"),
            );
            bar.set_prefix(self.prefix.clone());
            bar.set_message(what.clone());
            let bar = match &self.multi {
                Some(multi) => multi.add(bar),
                None => bar,
            };
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        });
        tracing::debug!("stage: {}{what}", self.prefix);
        self.current = Some((what, Instant::now(), bar));
    }

    /// Ends the current stage with its elapsed time.
    pub fn finish_stage(&mut self) -> Option<Duration> {
        let (what, started, bar) = self.current.take()?;
        let took = started.elapsed();
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        self.line(&format!("{what} ({:.1}s)", took.as_secs_f64()));
        Some(took)
    }

    /// Abandons the current stage (on failure) without claiming it finished.
    pub fn fail_stage(&mut self) {
        if let Some((what, started, bar)) = self.current.take() {
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
            self.line(&format!(
                "{what}: failed after {:.1}s",
                started.elapsed().as_secs_f64()
            ));
        }
    }

    pub fn note(&self, line: impl AsRef<str>) {
        self.line(line.as_ref());
    }

    fn line(&self, text: &str) {
        if self.quiet {
            return;
        }
        let text = format!("{}{text}", self.prefix);
        match &self.multi {
            Some(multi) => {
                let _ = multi.println(text);
            }
            None => eprintln!("{text}"),
        }
    }

    pub fn total(&self) -> Duration {
        self.started.elapsed()
    }
}
