//! Crash and interrupt points for the reliability tests. In debug builds only:
//!
//! - `DOCKER_EUCA_CRASH_AT=STEP` makes the process die at that step with SIGKILL: no clean-up,
//!   no destructors, exactly as a `kill -9` from outside;
//! - `DOCKER_EUCA_INTERRUPT_AT=STEP` sends the process SIGINT at that step, as a Ctrl-C would,
//!   and lets it go on: the operation sees the cancellation at its next wait.
//!
//! So a test can stop an operation exactly between two of its steps. Release builds compile every
//! call to nothing: no user can trip one by accident.

/// The variable naming the step to die at.
pub const CRASH_AT: &str = "DOCKER_EUCA_CRASH_AT";
/// The variable naming the step to be interrupted at.
pub const INTERRUPT_AT: &str = "DOCKER_EUCA_INTERRUPT_AT";

/// Dies, or is interrupted, here if this debug build was asked to (see the module docs).
#[inline]
pub fn point(step: &str) {
    #[cfg(all(debug_assertions, unix))]
    {
        let asked = |var: &str| std::env::var_os(var).is_some_and(|v| v == step);
        if asked(CRASH_AT) {
            eprintln!(
                "docker-euca: crash point {step:?} reached ({CRASH_AT}); dying without clean-up"
            );
            // SAFETY: raise(3) has no preconditions; SIGKILL ends the process here.
            unsafe { libc::raise(libc::SIGKILL) };
        }
        if asked(INTERRUPT_AT) {
            eprintln!("docker-euca: interrupt point {step:?} reached ({INTERRUPT_AT})");
            // SAFETY: raise(3) has no preconditions; tokio's SIGINT handler turns it into the
            // cancellation a Ctrl-C causes.
            unsafe { libc::raise(libc::SIGINT) };
        }
    }
    // The reliability tests run on Linux; other platforms compile the points to nothing.
    #[cfg(not(all(debug_assertions, unix)))]
    let _ = step;
}
