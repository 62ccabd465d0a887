//! One line per stage with its elapsed time: a spinner on a terminal, plain lines otherwise,
//! nothing with `--quiet`. Always on stderr, so stdout stays for results.

use std::{
    io::IsTerminal,
    time::{Duration, Instant},
};

use indicatif::{ProgressBar, ProgressStyle};

#[derive(Debug)]
pub struct Progress {
    quiet: bool,
    tty: bool,
    started: Instant,
    current: Option<(String, Instant, Option<ProgressBar>)>,
}

impl Progress {
    pub fn new(quiet: bool) -> Self {
        Progress {
            quiet,
            tty: std::io::stderr().is_terminal(),
            started: Instant::now(),
            current: None,
        }
    }

    /// Starts a stage (ending the previous one).
    pub fn stage(&mut self, what: impl Into<String>) {
        self.finish_stage();
        let what = what.into();
        let bar = (!self.quiet && self.tty).then(|| {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} {msg} {elapsed}").expect("template"),
            );
            bar.set_message(what.clone());
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        });
        tracing::debug!("stage: {what}");
        self.current = Some((what, Instant::now(), bar));
    }

    /// Ends the current stage with its elapsed time.
    pub fn finish_stage(&mut self) -> Option<Duration> {
        let (what, started, bar) = self.current.take()?;
        let took = started.elapsed();
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        if !self.quiet {
            eprintln!("{what} ({:.1}s)", took.as_secs_f64());
        }
        Some(took)
    }

    /// Abandons the current stage (on failure) without claiming it finished.
    pub fn fail_stage(&mut self) {
        if let Some((what, started, bar)) = self.current.take() {
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
            if !self.quiet {
                eprintln!(
                    "{what}: failed after {:.1}s",
                    started.elapsed().as_secs_f64()
                );
            }
        }
    }

    pub fn note(&self, line: impl AsRef<str>) {
        if !self.quiet {
            eprintln!("{}", line.as_ref());
        }
    }

    pub fn total(&self) -> Duration {
        self.started.elapsed()
    }
}
