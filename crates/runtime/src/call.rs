//! One call of a plugin: load checks, per-call state and budgets, instantiation, the call
//! itself, how it ended, and the report. A call that starts always ends with a report, whether
//! the plugin completes, traps or exhausts a budget.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sandbox_policy::{Policy, ReasonCode, DEFAULT_TABLE_ELEMENTS};
use wasmtime::{
    Engine, Extern, ExternType, Instance, InstancePre, Linker, Module, ModuleExport, Store, Trap,
    TypedFunc, UpdateDeadline,
};

use crate::abi::{self, wasi_p1::GuestExit};
use crate::broker::events::{EventLog, Outcome};
use crate::broker::{Broker, CancelFlag};
use crate::cap::fs::{MountError, Mounts};
use crate::cap::net::Connections;
use crate::engine::epoch;
use crate::engine::limiter::{LimitHit, RunLimiter};
use crate::report::stream::{EventSink, RunInfo, SinkTap};
use crate::report::{self, Report, Status, Subject};
use crate::state::wasi::WasiState;
use crate::state::{Capture, DenyTrap, OutputStreams, RunState};

/// Why a run could not start (exit code 1). No report exists for these.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The plugin is larger than the policy's `limits.module_bytes`.
    #[error("plugin `{path}` is {size} bytes; the policy's `limits.module_bytes` allows {limit}")]
    ModuleTooLarge {
        /// The plugin as named.
        path: String,
        /// Its size in bytes.
        size: u64,
        /// The policy's limit in bytes.
        limit: u64,
    },
    /// The plugin is over one of the static limits checked before compiling
    /// ([`crate::module_limits`]).
    #[error("plugin `{path}` has {found} {}; the sandbox compiles at most {} (limit `{}`)", .limit.name.replace('_', " "), .limit.max, .limit.name)]
    ModuleOverLimit {
        /// The plugin as named.
        path: String,
        /// The limit it is over.
        limit: crate::engine::module_limits::ModuleLimit,
        /// How many it has (counting stops soon after the limit).
        found: u64,
    },
    /// The plugin does not compile.
    #[error("plugin `{path}` is not a valid WebAssembly module: {message}")]
    InvalidModule {
        /// The plugin as named.
        path: String,
        /// Why it is not valid, on one line.
        message: String,
    },
    /// The plugin imports functions the sandbox does not provide.
    #[error("plugin `{path}` imports what the sandbox does not provide: {}", .imports.join(", "))]
    UnknownImports {
        /// The plugin as named.
        path: String,
        /// Each import the sandbox does not provide, as `module::name`.
        imports: Vec<String>,
    },
    /// The plugin imports a sandbox function with another type.
    #[error("plugin `{path}` imports a sandbox function with the wrong type: {message} (see docs/host-abi.md)")]
    BadImport {
        /// The plugin as named.
        path: String,
        /// Which import, and the type it should have.
        message: String,
    },
    /// The plugin has no entry of type `() -> ()` by that name.
    #[error("plugin `{path}` has no exported function `{entry}` of type `() -> ()`")]
    MissingEntry {
        /// The plugin as named.
        path: String,
        /// The entry asked for.
        entry: String,
    },
    /// A mount's host folder could not be opened.
    #[error("policy `{policy}`: {source}")]
    Mount {
        /// The policy as named.
        policy: String,
        /// Which mount, and why its folder could not be opened.
        #[source]
        source: MountError,
    },
    /// Wasmtime could not be set up (the message says why).
    #[error("cannot set up the WebAssembly engine: {0}")]
    Engine(String),
    /// The policy could not be read or parsed.
    #[error("policy `{path}`: {message}")]
    Policy {
        /// The policy file as named.
        path: String,
        /// What is wrong, with `line:column` where known.
        message: String,
    },
}

/// A finished run: the report, and the guest's raw stdout and stderr.
pub struct RunOutput {
    /// The call's report.
    pub report: Report,
    /// Everything the guest wrote to stdout, within the policy's cap.
    pub stdout: Vec<u8>,
    /// Everything the guest wrote to stderr, within the policy's cap.
    pub stderr: Vec<u8>,
}

/// The engine settings every run uses: fuel and epochs on, threads off (shared memories would
/// grow outside the limiter).
pub(crate) fn engine() -> Result<Engine, StartError> {
    crate::engine::on_demand().map_err(|e| StartError::Engine(e.to_string()))
}

/// How a call ended.
#[derive(Clone)]
enum Ended {
    Completed,
    Exited(i32),
    Trapped(String),
    FuelExhausted,
    Timeout,
    MemoryLimit(LimitHit),
    Cancelled(String),
}

/// Epoch ticks between two looks at a call's cancel flag while Wasm code runs: a cancel
/// ends the code within about this many milliseconds.
const CANCEL_POLL_TICKS: u64 = 5;

/// The sinks a call hands its events to.
pub(crate) type Sinks = Arc<[Arc<dyn EventSink>]>;

fn classify(error: &wasmtime::Error) -> Ended {
    if let Some(hit) = error.downcast_ref::<LimitHit>() {
        return Ended::MemoryLimit(hit.clone());
    }
    if let Some(GuestExit(code)) = error.downcast_ref::<GuestExit>() {
        return Ended::Exited(*code);
    }
    if let Some(deny) = error.downcast_ref::<DenyTrap>() {
        return Ended::Trapped(deny.to_string());
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => Ended::FuelExhausted,
        Some(Trap::Interrupt) => Ended::Timeout,
        Some(trap) => Ended::Trapped(trap.to_string()),
        None => Ended::Trapped(first_line(&error.to_string())),
    }
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or("").trim().to_owned()
}

/// Refuses a module larger than the policy's `limits.module_bytes`, before compiling it.
pub(crate) fn check_size(policy: &Policy, path: &str, bytes: &[u8]) -> Result<(), StartError> {
    let limit = policy.limits.module_bytes.value;
    let size = bytes.len() as u64;
    if size > limit {
        return Err(StartError::ModuleTooLarge {
            path: path.to_owned(),
            size,
            limit,
        });
    }
    Ok(())
}

/// Longest compiler or WAT parser message kept in a load error: a WAT error quotes the line
/// it failed on, and a plugin's line may be megabytes long.
const COMPILE_MESSAGE_BYTES: usize = 400;

/// Most unknown imports a load error lists one by one.
const LISTED_IMPORTS: usize = 16;

/// Turns WAT text into a binary module (a binary passes as it is) and checks the static limits
/// on it, before any compiling.
pub(crate) fn prepare<'a>(
    path: &str,
    bytes: &'a [u8],
) -> Result<std::borrow::Cow<'a, [u8]>, StartError> {
    let binary = wat::parse_bytes(bytes).map_err(|e| StartError::InvalidModule {
        path: path.to_owned(),
        message: report::escape_text(&e.to_string(), COMPILE_MESSAGE_BYTES),
    })?;
    crate::engine::module_limits::check(&binary).map_err(|over| StartError::ModuleOverLimit {
        path: path.to_owned(),
        limit: over.limit,
        found: over.found,
    })?;
    Ok(binary)
}

/// Compiles a binary module that [`prepare`] passed.
pub(crate) fn compile(engine: &Engine, path: &str, binary: &[u8]) -> Result<Module, StartError> {
    Module::from_binary(engine, binary).map_err(|e| StartError::InvalidModule {
        path: path.to_owned(),
        message: describe_compile_error(&e),
    })
}

/// The import check: every import is a `sandbox` function, and the entry is `() -> ()`. It
/// runs on every module, compiled or read from the cache.
pub(crate) fn check_module(module: &Module, path: &str, entry: &str) -> Result<(), StartError> {
    let path = path.to_owned();
    // Import names are the plugin's text: escaped, capped, and at most a few listed.
    let mut unknown: Vec<String> = module
        .imports()
        .filter(|i| !abi::provides(i.module(), i.name()))
        .map(|i| report::escape_text(&format!("`{}::{}`", i.module(), i.name()), 160))
        .collect();
    if unknown.len() > LISTED_IMPORTS {
        let more = unknown.len() - LISTED_IMPORTS;
        unknown.truncate(LISTED_IMPORTS);
        unknown.push(format!("and {more} more"));
    }
    if !unknown.is_empty() {
        return Err(StartError::UnknownImports {
            path,
            imports: unknown,
        });
    }
    match module.get_export(entry) {
        Some(ExternType::Func(f)) if f.params().len() == 0 && f.results().len() == 0 => Ok(()),
        _ => Err(StartError::MissingEntry {
            path,
            entry: entry.to_owned(),
        }),
    }
}

fn describe_compile_error(error: &wasmtime::Error) -> String {
    let mut text = error.to_string();
    for cause in error.chain().skip(1) {
        text.push_str(": ");
        text.push_str(&cause.to_string());
    }
    let text = report::escape_text(&text.replace('\n', " "), COMPILE_MESSAGE_BYTES);
    if text.contains("threads") || text.contains("shared") {
        format!("{text} (shared memories and threads are refused: they grow outside the memory ceiling)")
    } else {
        text
    }
}

/// argv[0]: the plugin's file name, so no host folder leaks into the guest.
pub(crate) fn program_name(plugin_path: &str) -> String {
    std::path::Path::new(plugin_path)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "plugin".to_owned())
}

/// The linker every plugin is resolved against: the `sandbox` host ABI.
pub(crate) fn linker(engine: &Engine) -> Result<Linker<RunState>, StartError> {
    let mut linker = Linker::new(engine);
    abi::sandbox::add_to_linker(&mut linker).map_err(|e| StartError::Engine(e.to_string()))?;
    abi::wasi_p1::add_to_linker(&mut linker).map_err(|e| StartError::Engine(e.to_string()))?;
    Ok(linker)
}

/// Resolves every import against the ABI's types now, so a wrong signature is a load error
/// (exit 1), not a trap at instantiation.
pub(crate) fn instantiate_pre(
    linker: &Linker<RunState>,
    module: &Module,
    path: &str,
) -> Result<InstancePre<RunState>, StartError> {
    linker
        .instantiate_pre(module)
        .map_err(|e| StartError::BadImport {
            path: path.to_owned(),
            message: report::escape_text(&first_line(&e.to_string()), COMPILE_MESSAGE_BYTES),
        })
}

/// What a call gives the guest: its input (stdin for WASI) and its argv after the program name.
pub(crate) struct CallInput {
    pub input: Vec<u8>,
    pub program: String,
    pub args: Vec<String>,
    /// Whether the module imports WASI at all; a plugin that does not pays nothing for it.
    pub uses_wasi: bool,
    /// Where the guest's output also goes as it is written.
    pub streams: OutputStreams,
    /// In audit mode, connect and look up nothing the policy would deny.
    pub refuse_relaxed_network: bool,
    /// Set from another thread to end the call.
    pub cancel: Arc<CancelFlag>,
    /// Where the call's events go as they are recorded (none: only the report).
    pub sinks: Option<Sinks>,
}

/// The state of one call: its own broker (usage, quotas, event log), limiter, stdio and WASI
/// view. The log may come from an earlier call; it is emptied.
pub(crate) fn new_state(
    policy: &Arc<Policy>,
    mounts: &Mounts,
    call: CallInput,
    deadline: Instant,
    log: EventLog,
    run: Option<&Arc<RunInfo>>,
) -> RunState {
    let mut broker = Broker::with_log(Arc::clone(policy), deadline, log);
    broker.refuse_relaxed_network = call.refuse_relaxed_network;
    broker.set_cancel(Arc::clone(&call.cancel));
    if let (Some(run), Some(sinks)) = (run, &call.sinks) {
        broker.set_tap(Box::new(SinkTap::new(Arc::clone(run), Arc::clone(sinks))));
    }
    let wasi = if call.uses_wasi {
        WasiState::new(policy, mounts, &call.program, &call.args)
    } else {
        WasiState::unused()
    };
    RunState {
        broker,
        fs: mounts.clone(),
        net: Connections::default(),
        wasi,
        limiter: RunLimiter::new(policy.budgets.memory_bytes.value, DEFAULT_TABLE_ELEMENTS),
        input: call.input,
        stdout: Capture::new(policy.stdio.stdout_bytes.value, call.streams.stdout),
        stderr: Capture::new(policy.stdio.stderr_bytes.value, call.streams.stderr),
        memory: None,
    }
}

/// Where a module's entry export is, found by name once per plugin rather than once per
/// call.
pub(crate) struct Exports {
    entry_name: String,
    entry: Option<ModuleExport>,
}

impl Exports {
    pub(crate) fn of(module: &Module, entry: &str) -> Exports {
        Exports {
            entry_name: entry.to_owned(),
            entry: module.get_export_index(entry),
        }
    }
}

/// A call after its per-call setup: a store with its budgets set, and the entry of the new
/// instance (or how instantiation ended the call: a start function may trap or exhaust a
/// budget).
pub(crate) struct Prepared {
    store: Store<RunState>,
    instance: Result<Instance, Ended>,
    /// The entry, found on the first call (so setup does not pay for it).
    entry: Option<TypedFunc<(), ()>>,
    started: Instant,
    fuel_limit: u64,
    /// The run's first stream line and its sinks, when the call has sinks.
    stream: Option<(Arc<RunInfo>, Sinks)>,
}

/// The per-call setup: fresh state, fuel, the wall-clock deadline (the shared epoch thread
/// ticks; the store checks the real time at each tick), then instantiation.
pub(crate) fn instantiate(
    pre: &InstancePre<RunState>,
    policy: &Arc<Policy>,
    mounts: &Mounts,
    call: CallInput,
    log: EventLog,
    subject: &Subject,
) -> Prepared {
    let timeout = Duration::from_millis(policy.budgets.timeout_ms.value);
    let stream = call.sinks.clone().map(|sinks| {
        let run = Arc::new(report::run_info(policy, subject));
        for sink in sinks.iter() {
            sink.run_started(&run);
        }
        (run, sinks)
    });
    let started = Instant::now();
    let run = stream.as_ref().map(|(run, _)| run);
    let state = new_state(policy, mounts, call, started + timeout, log, run);
    let mut store = Store::new(pre.module().engine(), state);
    store.limiter(|state| &mut state.limiter);
    let fuel_limit = policy.budgets.fuel.value;
    let fuel_set = store.set_fuel(fuel_limit);
    store.set_epoch_deadline(epoch::ticks_for(timeout).min(CANCEL_POLL_TICKS));
    store.epoch_deadline_callback(|store| {
        // Zero once the call is cancelled, too.
        let left = store.data().broker.remaining();
        if left.is_zero() {
            Err(wasmtime::Error::new(Trap::Interrupt))
        } else {
            let ticks = epoch::ticks_for(left).min(CANCEL_POLL_TICKS);
            Ok(UpdateDeadline::Continue(ticks))
        }
    });
    let instance = match fuel_set {
        Err(e) => Err(Ended::Trapped(first_line(&e.to_string()))),
        Ok(()) => pre.instantiate(&mut store).map_err(|e| classify(&e)),
    };
    Prepared {
        store,
        instance,
        entry: None,
        started,
        fuel_limit,
        stream,
    }
}

impl Prepared {
    /// Calls the entry in this call's instance: what [`finish`] does before the report.
    fn invoke(&mut self, exports: &Exports) -> Ended {
        let instance = match &self.instance {
            Err(ended) => return ended.clone(),
            Ok(instance) => *instance,
        };
        if self.entry.is_none() {
            let found = exports
                .entry
                .as_ref()
                .and_then(|e| instance.get_module_export(&mut self.store, e))
                .and_then(Extern::into_func);
            let Some(func) = found else {
                return Ended::Trapped(format!("no exported function `{}`", exports.entry_name));
            };
            match func.typed::<(), ()>(&self.store) {
                Ok(func) => self.entry = Some(func),
                Err(e) => return Ended::Trapped(first_line(&e.to_string())),
            }
        }
        // Borrowed, not cloned: a clone would count a reference on the type registry.
        let Some(func) = &self.entry else {
            return Ended::Trapped(format!("no exported function `{}`", exports.entry_name));
        };
        match func.call(&mut self.store, ()) {
            Ok(()) => Ended::Completed,
            Err(e) => classify(&e),
        }
    }

    /// For the `call` benchmark: true when the entry completed.
    #[cfg(feature = "bench-hooks")]
    pub(crate) fn invoke_completes(&mut self, exports: &Exports) -> bool {
        matches!(self.invoke(exports), Ended::Completed)
    }
}

/// Calls the entry of a prepared call and builds its report; hands back the event log for
/// another call.
pub(crate) fn finish(
    mut prepared: Prepared,
    exports: &Exports,
    subject: &Subject,
) -> (RunOutput, EventLog) {
    let mut ended = prepared.invoke(exports);
    let Prepared {
        mut store,
        started,
        fuel_limit,
        stream,
        ..
    } = prepared;
    // A cancel makes the deadline pass: the run ends as a timeout would, but was cancelled.
    let cancel = Arc::clone(store.data().broker.cancel_flag());
    if matches!(ended, Ended::Timeout) && cancel.is_cancelled() {
        ended = Ended::Cancelled(cancel.reason());
    }
    // A deterministic run's report is the same bytes run after run: the wall time is left at
    // zero (the budget still ends the run).
    let wall_time = if store.data().broker.policy().deterministic {
        Duration::ZERO
    } else {
        started.elapsed()
    };

    let fuel_left = store.get_fuel().unwrap_or(0);
    let fuel_consumed = fuel_limit.saturating_sub(fuel_left);
    let policy = Arc::clone(store.data().broker.policy());
    let state = store.data_mut();
    let mut exit_code = None;
    let (status, message) = match ended {
        Ended::Completed => (Status::Completed, "the plugin completed".to_owned()),
        Ended::Exited(code) => {
            exit_code = Some(code);
            (
                Status::Completed,
                format!("the plugin exited with code {code}"),
            )
        }
        Ended::Trapped(message) => {
            state.broker.record_budget(
                "run",
                "run.trap",
                ReasonCode::Trapped,
                Outcome::Failed {
                    error: message.clone(),
                },
            );
            (Status::Trapped, message)
        }
        Ended::FuelExhausted => {
            state.broker.record_budget(
                "budget.fuel",
                "budgets.fuel",
                ReasonCode::FuelExhausted,
                Outcome::Budget {
                    limit: fuel_limit,
                    used: fuel_consumed,
                },
            );
            (
                Status::FuelExhausted,
                format!("the plugin used all {fuel_limit} units of fuel"),
            )
        }
        Ended::Timeout => {
            let limit = policy.budgets.timeout_ms.value;
            state.broker.record_budget(
                "budget.timeout",
                "budgets.timeout_ms",
                ReasonCode::Timeout,
                Outcome::Budget { limit, used: limit },
            );
            (
                Status::Timeout,
                format!("the plugin ran past its {limit} ms wall-clock budget"),
            )
        }
        Ended::MemoryLimit(hit) => {
            // Tables are counted in elements, memories in bytes.
            let unit = if hit.resource == "table" {
                "elements"
            } else {
                "bytes"
            };
            let message = format!(
                "the plugin asked to grow {} to {} {unit}; the policy allows {}",
                hit.resource, hit.asked, hit.limit
            );
            state.broker.record_budget(
                "budget.memory",
                "budgets.memory_bytes",
                ReasonCode::MemoryLimit,
                Outcome::GrowRefused {
                    resource: hit.resource,
                    asked: hit.asked,
                    limit: hit.limit,
                },
            );
            (Status::MemoryLimit, message)
        }
        Ended::Cancelled(by) => {
            record_cancel(&mut state.broker, &by);
            (Status::Cancelled, format!("the run was cancelled ({by})"))
        }
    };
    state.broker.events_final();
    let mut state = store.into_data();
    let report = report::build(report::ReportInput {
        status,
        message,
        exit_code,
        subject,
        broker: &state.broker,
        fuel_consumed,
        wall_time,
        peak_memory: state.limiter.peak_memory,
        stdout: &state.stdout,
        stderr: &state.stderr,
    });
    if let Some((run, sinks)) = &stream {
        for sink in sinks.iter() {
            sink.run_ended(run, &report);
        }
    }
    let log = state.broker.take_log();
    let output = RunOutput {
        report,
        stdout: state.stdout.bytes,
        stderr: state.stderr.bytes,
    };
    (output, log)
}

fn record_cancel(broker: &mut Broker, by: &str) {
    broker.record_budget(
        "run",
        "run.cancel",
        ReasonCode::Cancelled,
        Outcome::Cancelled { by: by.to_owned() },
    );
}

/// The report of a call cancelled before it started (while the plugin compiled): no usage,
/// and one event, `CANCELLED`. Sinks get the whole stream.
pub(crate) fn cancelled_before_start(
    policy: &Arc<Policy>,
    subject: &Subject,
    sinks: Option<Sinks>,
    by: &str,
) -> RunOutput {
    let max = usize::try_from(policy.limits.max_events.value).unwrap_or(usize::MAX);
    let mut broker = Broker::with_log(Arc::clone(policy), Instant::now(), EventLog::new(max));
    let stream = sinks.map(|sinks| (Arc::new(report::run_info(policy, subject)), sinks));
    if let Some((run, sinks)) = &stream {
        for sink in sinks.iter() {
            sink.run_started(run);
        }
        broker.set_tap(Box::new(SinkTap::new(Arc::clone(run), Arc::clone(sinks))));
    }
    record_cancel(&mut broker, by);
    broker.events_final();
    let empty = Capture::new(0, None);
    let report = report::build(report::ReportInput {
        status: Status::Cancelled,
        message: format!("the run was cancelled ({by}) before the plugin started"),
        exit_code: None,
        subject,
        broker: &broker,
        fuel_consumed: 0,
        wall_time: Duration::ZERO,
        peak_memory: 0,
        stdout: &empty,
        stderr: &empty,
    });
    if let Some((run, sinks)) = &stream {
        for sink in sinks.iter() {
            sink.run_ended(run, &report);
        }
    }
    RunOutput {
        report,
        stdout: Vec::new(),
        stderr: Vec::new(),
    }
}
