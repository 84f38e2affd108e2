//! The wall-clock budget's clock: one thread per [`Sandbox`](crate::Sandbox) bumps the epoch of
//! its engines every [`TICK`] while at least one call is running, and sleeps otherwise. Each
//! call sets its store's epoch deadline to the ticks its budget spans and checks the real time
//! when the deadline comes, so a late tick never cuts a call short and a call never runs more
//! than about one tick past its budget.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::Engine;

/// Time between two epoch increments while calls run.
pub(crate) const TICK: Duration = Duration::from_millis(1);

/// Ticks the thread goes on with after the last call ended before it sleeps: waking a
/// parked thread is a system call, too dear to pay on every call of a busy sandbox.
const IDLE_TICKS: u32 = 100;

/// The epoch ticks to wait for `budget` to pass: one more than it spans, since the first tick
/// may come at any point of the current one.
pub(crate) fn ticks_for(budget: Duration) -> u64 {
    let tick = TICK.as_nanos();
    let ticks = budget.as_nanos().div_ceil(tick) + 1;
    u64::try_from(ticks).unwrap_or(u64::MAX)
}

struct Shared {
    active: AtomicUsize,
    stop: AtomicBool,
}

/// The ticking thread; dropping it stops and joins the thread.
pub(crate) struct Ticker {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// Held by a running call; the ticker ticks while any is alive.
pub(crate) struct Running<'a> {
    shared: &'a Shared,
}

impl Ticker {
    /// Starts the thread for these engines (the sandbox's engine and, if it made one, its
    /// on-demand fallback).
    pub(crate) fn start(engines: Vec<Engine>) -> std::io::Result<Ticker> {
        let shared = Arc::new(Shared {
            active: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
        });
        let seen = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("sandbox-epoch".into())
            .spawn(move || {
                let mut idle = 0;
                loop {
                    if seen.stop.load(Ordering::Acquire) {
                        return;
                    }
                    if seen.active.load(Ordering::Acquire) == 0 {
                        idle += 1;
                        if idle > IDLE_TICKS {
                            // `enter` unparks; a stale unpark token costs one extra loop.
                            std::thread::park();
                            idle = 0;
                            continue;
                        }
                    } else {
                        idle = 0;
                    }
                    std::thread::sleep(TICK);
                    for engine in &engines {
                        engine.increment_epoch();
                    }
                }
            })?;
        Ok(Ticker {
            shared,
            thread: Some(thread),
        })
    }

    /// Marks a call as running until the returned guard drops. Waking the thread costs a
    /// system call only when it sleeps; otherwise `unpark` is one atomic swap.
    pub(crate) fn enter(&self) -> Running<'_> {
        if self.shared.active.fetch_add(1, Ordering::AcqRel) == 0 {
            if let Some(thread) = &self.thread {
                thread.thread().unpark();
            }
        }
        Running {
            shared: &self.shared,
        }
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        // Nothing to wake: the thread sees the count on its next tick and parks.
        self.shared.active.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_waits_for_one_tick_more_than_it_spans() {
        assert_eq!(ticks_for(Duration::ZERO), 1);
        assert_eq!(ticks_for(TICK), 2);
        assert_eq!(ticks_for(TICK * 2000), 2001);
        assert_eq!(ticks_for(TICK / 2), 2);
        assert_eq!(ticks_for(Duration::MAX), u64::MAX);
    }

    #[test]
    fn a_running_call_is_interrupted_by_the_shared_ticks() {
        let engine = Engine::new(wasmtime::Config::new().epoch_interruption(true)).unwrap();
        let ticker = Ticker::start(vec![engine.clone()]).unwrap();
        let running = ticker.enter();
        // Without ticks this loop would never end: a deadline of one tick interrupts it.
        let mut store = wasmtime::Store::new(&engine, ());
        store.set_epoch_deadline(1);
        let module =
            wasmtime::Module::new(&engine, "(module (func (export \"f\") (loop br 0)))").unwrap();
        let instance = wasmtime::Instance::new(&mut store, &module, &[]).unwrap();
        let f = instance.get_typed_func::<(), ()>(&mut store, "f").unwrap();
        let err = f.call(&mut store, ()).unwrap_err();
        assert_eq!(
            err.downcast_ref::<wasmtime::Trap>(),
            Some(&wasmtime::Trap::Interrupt)
        );
        drop(running);
        drop(ticker);
    }
}
