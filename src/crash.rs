//! Crash points for the reliability tests. In debug builds only, `DOCKER_EUCA_CRASH_AT=STEP`
//! makes the process die at that step with no clean-up at all (as a `kill -9` would), so a test
//! can stop an operation exactly between two of its steps. Release builds compile every call to
//! nothing: no user can trip one by accident.

/// The variable naming the step to die at.
pub const CRASH_AT: &str = "DOCKER_EUCA_CRASH_AT";

/// Dies here if this debug build was asked to (see the module docs).
#[inline]
pub fn point(step: &str) {
    #[cfg(debug_assertions)]
    if std::env::var_os(CRASH_AT).is_some_and(|v| v == step) {
        eprintln!("docker-euca: crash point {step:?} reached ({CRASH_AT}); dying without clean-up");
        std::process::abort();
    }
    #[cfg(not(debug_assertions))]
    let _ = step;
}
