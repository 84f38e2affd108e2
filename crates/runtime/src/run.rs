//! One run of a plugin under a policy: engine set-up, budgets, instantiation, the call, and
//! the report. A run that starts always ends with a report, whether the plugin completes,
//! traps or exhausts a budget.

use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sandbox_policy::{Policy, ReasonCode, DEFAULT_TABLE_ELEMENTS};
use wasmtime::{Config, Engine, ExternType, Linker, Module, Store, Trap};

use crate::abi;
use crate::broker::Broker;
use crate::events::Outcome;
use crate::fs::{MountError, Mounts};
use crate::limiter::{LimitHit, RunLimiter};
use crate::report::{self, Report, Status};
use crate::wasi::{self, GuestExit, WasiState};

/// Why a run could not start (exit code 1). No report exists for these.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("plugin `{path}` is {size} bytes; the policy's `limits.module_bytes` allows {limit}")]
    ModuleTooLarge { path: String, size: u64, limit: u64 },
    #[error("plugin `{path}` is not a valid WebAssembly module: {message}")]
    InvalidModule { path: String, message: String },
    #[error("plugin `{path}` imports what the sandbox does not provide: {}", .imports.join(", "))]
    UnknownImports { path: String, imports: Vec<String> },
    #[error("plugin `{path}` imports a sandbox function with the wrong type: {message} (see docs/host-abi.md)")]
    BadImport { path: String, message: String },
    #[error("plugin `{path}` has no exported function `{entry}` of type `() -> ()`")]
    MissingEntry { path: String, entry: String },
    #[error("policy `{policy}`: {source}")]
    Mount {
        policy: String,
        #[source]
        source: MountError,
    },
    #[error("cannot set up the WebAssembly engine: {0}")]
    Engine(String),
}

/// The run ended because the guest was denied and the policy says `on_deny: trap`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("`{capability}` denied by `{rule_id}` ({reason}) and the policy says `on_deny: trap`")]
pub struct DenyTrap {
    pub reason: ReasonCode,
    pub rule_id: String,
    pub capability: &'static str,
}

/// Captured guest output, bounded by the policy's cap.
#[derive(Debug, Default)]
pub struct Capture {
    pub bytes: Vec<u8>,
    pub cap: usize,
    pub truncated: bool,
}

impl Capture {
    fn new(cap: u64) -> Capture {
        Capture {
            bytes: Vec::new(),
            cap: usize::try_from(cap).unwrap_or(usize::MAX),
            truncated: false,
        }
    }

    pub fn write(&mut self, data: &[u8]) {
        let room = self.cap.saturating_sub(self.bytes.len());
        if data.len() > room {
            self.truncated = true;
        }
        self.bytes.extend_from_slice(&data[..data.len().min(room)]);
    }
}

/// Per-run state owned by the Store: the broker, the limiter and the guest's stdio.
pub struct RunState {
    pub(crate) broker: Broker,
    pub(crate) limiter: RunLimiter,
    pub(crate) input: Vec<u8>,
    pub(crate) stdout: Capture,
    pub(crate) stderr: Capture,
    pub(crate) wasi: WasiState,
}

/// What to run, and the names the report records.
pub struct RunConfig {
    pub policy: Arc<Policy>,
    /// The policy file as given (shown in the report) and the SHA-256 of its bytes.
    pub policy_path: String,
    pub policy_sha256: String,
    pub plugin_path: String,
    pub plugin_bytes: Vec<u8>,
    /// Exported function to call; `_start` by default.
    pub entry: String,
    /// The guest's stdin (WASI) and `input_read` data (native ABI).
    pub input: Vec<u8>,
    /// The guest's argv after the program name (WASI); the program name is the plugin's
    /// file name, never a host path.
    pub args: Vec<String>,
}

/// A finished run: the report, and the guest's raw stdout and stderr.
pub struct RunOutput {
    pub report: Report,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// The engine settings every run uses: fuel and epochs on, threads off (shared memories would
/// grow outside the limiter).
pub fn engine() -> Result<Engine, StartError> {
    let mut config = Config::new();
    config.consume_fuel(true);
    config.epoch_interruption(true);
    config.max_wasm_stack(1 << 20);
    Engine::new(&config).map_err(|e| StartError::Engine(e.to_string()))
}

/// Stops the wall-clock timer thread when the run ends.
struct Deadline {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Deadline {
    /// Bumps the engine's epoch once the timeout has passed, which interrupts Wasm code.
    fn start(engine: &Engine, timeout: Duration) -> Deadline {
        let (stop, wait) = mpsc::channel::<()>();
        let engine = engine.clone();
        let thread = std::thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = wait.recv_timeout(timeout) {
                engine.increment_epoch();
            }
        });
        Deadline {
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for Deadline {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// How a call ended.
enum Ended {
    Completed,
    Exited(i32),
    Trapped(String),
    FuelExhausted,
    Timeout,
    MemoryLimit(LimitHit),
}

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

/// Compiles a plugin (WAT or binary) and checks it against the sandbox's imports.
pub fn load_module(engine: &Engine, config: &RunConfig) -> Result<Module, StartError> {
    let path = config.plugin_path.clone();
    let limit = config.policy.limits.module_bytes.value;
    let size = config.plugin_bytes.len() as u64;
    if size > limit {
        return Err(StartError::ModuleTooLarge { path, size, limit });
    }
    let module =
        Module::new(engine, &config.plugin_bytes).map_err(|e| StartError::InvalidModule {
            path: path.clone(),
            message: describe_compile_error(&e),
        })?;
    let unknown: Vec<String> = module
        .imports()
        .filter(|i| !provides(i.module(), i.name()))
        .map(|i| format!("`{}::{}`", i.module(), i.name()))
        .collect();
    if !unknown.is_empty() {
        return Err(StartError::UnknownImports {
            path,
            imports: unknown,
        });
    }
    match module.get_export(&config.entry) {
        Some(ExternType::Func(f)) if f.params().len() == 0 && f.results().len() == 0 => Ok(module),
        _ => Err(StartError::MissingEntry {
            path,
            entry: config.entry.clone(),
        }),
    }
}

/// True for the imports the sandbox defines: the `sandbox` ABI and WASI preview 1.
fn provides(module: &str, name: &str) -> bool {
    (module == abi::MODULE && abi::FUNCTIONS.contains(&name))
        || (module == wasi::MODULE && wasi::FUNCTIONS.contains(&name))
}

fn describe_compile_error(error: &wasmtime::Error) -> String {
    let mut text = error.to_string();
    for cause in error.chain().skip(1) {
        text.push_str(": ");
        text.push_str(&cause.to_string());
    }
    let text = text.replace('\n', " ");
    if text.contains("threads") || text.contains("shared") {
        format!("{text} (shared memories and threads are refused: they grow outside the memory ceiling)")
    } else {
        text
    }
}

/// argv[0]: the plugin's file name, so no host folder leaks into the guest.
fn program_name(plugin_path: &str) -> String {
    std::path::Path::new(plugin_path)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "plugin".to_owned())
}

/// Runs a plugin under a policy. Returns `Err` only when the run could not start.
pub fn run(config: RunConfig) -> Result<RunOutput, StartError> {
    let engine = engine()?;
    run_with_engine(&engine, config)
}

pub fn run_with_engine(engine: &Engine, config: RunConfig) -> Result<RunOutput, StartError> {
    let module = load_module(engine, &config)?;
    let policy = Arc::clone(&config.policy);
    let mounts = Mounts::open(&policy).map_err(|source| StartError::Mount {
        policy: config.policy_path.clone(),
        source,
    })?;
    let mut linker = Linker::new(engine);
    abi::add_to_linker(&mut linker).map_err(|e| StartError::Engine(e.to_string()))?;
    wasi::add_to_linker(&mut linker).map_err(|e| StartError::Engine(e.to_string()))?;
    // Resolves every import against the ABI's types now, so a wrong signature is a load
    // error (exit 1), not a trap at instantiation.
    let instance_pre = linker
        .instantiate_pre(&module)
        .map_err(|e| StartError::BadImport {
            path: config.plugin_path.clone(),
            message: first_line(&e.to_string()),
        })?;

    let timeout = Duration::from_millis(policy.budgets.timeout_ms.value);
    let broker = Broker::new(Arc::clone(&policy), mounts, Instant::now() + timeout);
    let wasi = WasiState::new(
        &policy,
        &broker,
        &program_name(&config.plugin_path),
        &config.args,
    )
    .map_err(|e| StartError::Engine(format!("cannot open the mounts for WASI: {e}")))?;
    let state = RunState {
        broker,
        wasi,
        limiter: RunLimiter::new(policy.budgets.memory_bytes.value, DEFAULT_TABLE_ELEMENTS),
        input: config.input.clone(),
        stdout: Capture::new(policy.stdio.stdout_bytes.value),
        stderr: Capture::new(policy.stdio.stderr_bytes.value),
    };
    let mut store = Store::new(engine, state);
    store.limiter(|state| &mut state.limiter);
    let fuel_limit = policy.budgets.fuel.value;
    store
        .set_fuel(fuel_limit)
        .map_err(|e| StartError::Engine(e.to_string()))?;
    store.set_epoch_deadline(1);
    store.epoch_deadline_trap();

    let started = Instant::now();
    let deadline = Deadline::start(
        engine,
        Duration::from_millis(policy.budgets.timeout_ms.value),
    );
    let ended = match instance_pre.instantiate(&mut store) {
        Err(e) => classify(&e),
        Ok(instance) => match instance.get_typed_func::<(), ()>(&mut store, &config.entry) {
            Err(e) => Ended::Trapped(first_line(&e.to_string())),
            Ok(func) => match func.call(&mut store, ()) {
                Ok(()) => Ended::Completed,
                Err(e) => classify(&e),
            },
        },
    };
    drop(deadline);
    let wall_time = started.elapsed();

    let fuel_left = store.get_fuel().unwrap_or(0);
    let fuel_consumed = fuel_limit.saturating_sub(fuel_left);
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
    };
    let state = store.into_data();
    let report = report::build(report::ReportInput {
        status,
        message,
        exit_code,
        config: &config,
        broker: &state.broker,
        fuel_consumed,
        wall_time,
        peak_memory: state.limiter.peak_memory,
        stdout: &state.stdout,
        stderr: &state.stderr,
    });
    Ok(RunOutput {
        report,
        stdout: state.stdout.bytes,
        stderr: state.stderr.bytes,
    })
}
