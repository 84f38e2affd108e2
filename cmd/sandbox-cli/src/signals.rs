//! SIGINT and SIGTERM during `run`: blocked in every thread and taken by one thread of their
//! own (`sigwait`), which cancels the run. The run then ends with a full report, outcome
//! `cancelled`, and `run` exits 128 + the signal (130, 143).

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use sandbox_runtime::CancelHandle;

/// The signals a run watches for, and the cancel handle they set.
pub struct Signals {
    cancel: CancelHandle,
    /// 128 + the first signal caught; 0 until one is.
    caught: Arc<AtomicU8>,
}

impl Signals {
    /// The handle the run is called with.
    pub fn handle(&self) -> &CancelHandle {
        &self.cancel
    }

    /// The exit code for the signal caught, if one was.
    pub fn caught(&self) -> Option<u8> {
        match self.caught.load(Ordering::Acquire) {
            0 => None,
            code => Some(code),
        }
    }

    /// The name of the signal caught, if one was.
    pub fn cancelled_by(&self) -> Option<String> {
        self.caught()
            .map(|code| name(i32::from(code) - 128).to_owned())
    }
}

fn name(signal: i32) -> &'static str {
    match signal {
        libc::SIGINT => "SIGINT",
        libc::SIGTERM => "SIGTERM",
        _ => "a signal",
    }
}

/// Blocks SIGINT and SIGTERM in this thread (and so in every thread started after it) and
/// starts the thread that waits for them. Call it before any other thread starts. Where the
/// thread cannot be made, the signals keep their default action.
pub fn watch() -> Signals {
    let signals = Signals {
        cancel: CancelHandle::new(),
        caught: Arc::new(AtomicU8::new(0)),
    };
    // SAFETY: plain libc calls on a zeroed, then initialised, local `sigset_t`.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        set
    };
    let (cancel, caught) = (signals.cancel.clone(), Arc::clone(&signals.caught));
    // SAFETY: `set` is initialised; the old mask is not asked for.
    let blocked = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if blocked != 0 {
        return signals;
    }
    let spawned = std::thread::Builder::new()
        .name("sandbox-signals".into())
        .spawn(move || loop {
            let mut signal = 0;
            // SAFETY: `set` is initialised and `signal` is a valid out pointer.
            if unsafe { libc::sigwait(&set, &mut signal) } != 0 {
                continue;
            }
            let code = u8::try_from(128 + signal).unwrap_or(130);
            // The first signal decides the exit code.
            let _ = caught.compare_exchange(0, code, Ordering::AcqRel, Ordering::Acquire);
            cancel.cancel_because(name(signal));
        });
    if spawned.is_err() {
        // SAFETY: as above; puts the default actions back.
        unsafe { libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut()) };
    }
    signals
}
