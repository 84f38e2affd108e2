//! The embedding API: build a [`Sandbox`] from a policy once, [`load`](Sandbox::load) a plugin
//! once (compiled, checked and cached), then [`call`](Plugin::call) it as often as you like.
//! Every call gets a fresh instance with its own memory, fuel, wall-clock budget, quotas and
//! event log, and returns the same [`Report`](crate::Report) that `sandbox-cli run` prints.
//!
//! ```
//! use std::sync::Arc;
//! use sandbox_runtime::{Sandbox, Status};
//!
//! let policy = sandbox_policy::parse_policy(
//!     "version: 1\nname: echo\nbudgets: { fuel: 1_000_000, timeout_ms: 1000, memory_bytes: 1MiB }\n",
//!     std::path::Path::new("."),
//! )?;
//! let sandbox = Sandbox::builder(Arc::new(policy)).build()?;
//! let plugin = sandbox.load(
//!     "echo.wat",
//!     br#"(module
//!       (import "sandbox" "input_read" (func $read (param i32 i32 i32) (result i32)))
//!       (import "sandbox" "output_write" (func $write (param i32 i32) (result i32)))
//!       (memory (export "memory") 1)
//!       (func (export "_start")
//!         (drop (call $write (i32.const 0) (call $read (i32.const 0) (i32.const 4096) (i32.const 0))))))"#,
//!     "_start",
//! )?;
//! for word in ["one", "two", "three"] {
//!     let out = plugin.call(word.as_bytes());
//!     assert_eq!(out.report.outcome.status, Status::Completed);
//!     assert_eq!(out.stdout, word.as_bytes());
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Speed comes from Wasmtime's fast paths: the linker is resolved once per plugin
//! ([`wasmtime::InstancePre`]); instances come from the pooling allocator, whose slots keep
//! memory images mapped copy-on-write between calls; the wall clock is one epoch thread per
//! sandbox. Where the pooling allocator cannot serve the policy or the plugin (a memory ceiling
//! above 4 GiB, a plugin with several memories or a larger table than a slot holds, or no
//! address space for the pool) the sandbox allocates on demand instead and says why
//! ([`Sandbox::fallback_reason`], [`Plugin::fallback_reason`]). Limits are the same either way:
//! the store's limiter enforces the policy's ceilings.

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use sandbox_policy::Policy;
use sha2::{Digest, Sha256};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, InstancePre, Linker, Module,
    PoolingAllocationConfig,
};

use crate::broker::events::EventLog;
use crate::broker::CancelFlag;
use crate::call::{self as run, Prepared, RunOutput, Sinks, StartError};
use crate::cap::fs::Mounts;
use crate::engine::cache::{engine_fingerprint, CacheStatus, Lookup, ModuleCache};
use crate::engine::epoch::{Running, Ticker};
use crate::report::stream::EventSink;
use crate::report::Subject;
use crate::state::{OutputStreams, RunState};

/// Largest memory ceiling a pool slot serves: a 32-bit memory never grows past it.
const POOL_MAX_MEMORY: u64 = 4 << 30;

/// Event logs kept between calls, and the most storage one may hold to be kept: enough for
/// the calls that run at once, without keeping what one noisy call grew.
const KEPT_LOGS: usize = 64;
const KEPT_LOG_BYTES: usize = 4 << 20;

/// How instances are allocated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allocation {
    /// From a pool made when the sandbox is built: the fastest per call. The default.
    Pooling,
    /// Mapped and unmapped for each call, as `sandbox-cli run` does for its single call.
    OnDemand,
}

/// Builds a [`Sandbox`]; see [`Sandbox::builder`].
pub struct SandboxBuilder {
    policy: Arc<Policy>,
    policy_path: String,
    policy_sha256: String,
    allocation: Allocation,
    max_concurrent_calls: Option<u32>,
    cache: Option<ModuleCache>,
    engine: Option<Engine>,
    refuse_relaxed_network: bool,
    sinks: Vec<Arc<dyn EventSink>>,
}

impl SandboxBuilder {
    /// Hands every call's events to `sink` as they are recorded, besides the report: a
    /// `run` line's worth when the call starts, each event when it is final, the report when
    /// it ends. May be given more than once; each sink gets everything.
    pub fn event_sink(mut self, sink: Arc<dyn EventSink>) -> Self {
        self.sinks.push(sink);
        self
    }

    /// In audit mode, record the connections and name lookups the policy would deny without
    /// making them: the guest gets the deny's error code. `policy learn` uses it so a learning
    /// run reaches no host the base policy forbids. Off by default.
    pub fn refuse_relaxed_network(mut self, refuse: bool) -> Self {
        self.refuse_relaxed_network = refuse;
        self
    }

    /// The policy's file and the SHA-256 of its bytes, as the report records them. Without
    /// this the report names the policy `(embedded)` with the SHA-256 of nothing.
    pub fn policy_source(mut self, path: impl Into<String>, sha256: impl Into<String>) -> Self {
        self.policy_path = path.into();
        self.policy_sha256 = sha256.into();
        self
    }

    /// Pooling (the default) or on demand.
    pub fn allocation(mut self, allocation: Allocation) -> Self {
        self.allocation = allocation;
        self
    }

    /// With pooling: how many calls may hold an instance at once; more calls wait for a free
    /// slot. Defaults to four per CPU, at least 8 and at most 64.
    pub fn max_concurrent_calls(mut self, calls: u32) -> Self {
        self.max_concurrent_calls = Some(calls.max(1));
        self
    }

    /// Keeps compiled modules in this cache; `None` (the default) compiles on every load.
    pub fn cache(mut self, cache: Option<ModuleCache>) -> Self {
        self.cache = cache;
        self
    }

    /// Runs on this engine (allocating on demand) instead of making one. It must have the
    /// settings of [`Sandbox::default_engine`]: fuel and epoch interruption on.
    pub fn engine(mut self, engine: Engine) -> Self {
        self.engine = Some(engine);
        self
    }

    /// Opens the policy's mounts and makes the engine(s). Fails when a mount folder cannot
    /// be opened or no engine can be made; a pool that cannot be made is a fallback, not an
    /// error.
    pub fn build(self) -> Result<Sandbox, StartError> {
        // Two mounts over the same host folders would let a guest change through one what
        // the other promises is read-only: refused unless the policy says it is intended.
        let mounts = &self.policy.filesystem.mounts;
        let overlap = self
            .policy
            .overlapping_mounts()
            .into_iter()
            .find(|(a, b)| !mounts[*a].overlap_intended && !mounts[*b].overlap_intended);
        if let Some((a, b)) = overlap {
            return Err(StartError::Policy {
                path: self.policy_path.clone(),
                message: format!(
                    "mounts `{}` and `{}` share host folders; mark one `overlap: intended` if that is meant",
                    mounts[a].guest, mounts[b].guest
                ),
            });
        }
        let mounts = Mounts::new(&self.policy).map_err(|source| StartError::Mount {
            policy: self.policy_path.clone(),
            source,
        })?;
        let on_demand = |engine: Option<Engine>| -> Result<Slot, StartError> {
            let engine = match engine {
                Some(engine) => engine,
                None => run::engine()?,
            };
            Slot::new(engine, None)
        };
        let (primary, fallback, fallback_reason) = match (self.engine, self.allocation) {
            (Some(engine), _) => (on_demand(Some(engine))?, None, None),
            (None, Allocation::OnDemand) => (on_demand(None)?, None, None),
            (None, Allocation::Pooling) => {
                let slots = self.max_concurrent_calls.unwrap_or_else(default_slots);
                match pooling_engine(&self.policy, slots) {
                    Ok(engine) => (
                        Slot::new(engine, Some(slots))?,
                        Some(on_demand(None)?),
                        None,
                    ),
                    Err(reason) => (on_demand(None)?, None, Some(reason)),
                }
            }
        };
        let mut engines = vec![primary.engine.clone()];
        engines.extend(fallback.iter().map(|s| s.engine.clone()));
        let ticker = Ticker::start(engines)
            .map_err(|e| StartError::Engine(format!("cannot start the epoch thread: {e}")))?;
        Ok(Sandbox {
            inner: Arc::new(Inner {
                policy: self.policy,
                policy_path: self.policy_path,
                policy_sha256: self.policy_sha256,
                mounts,
                primary,
                fallback,
                fallback_reason,
                cache: self.cache,
                refuse_relaxed_network: self.refuse_relaxed_network,
                sinks: (!self.sinks.is_empty()).then(|| Sinks::from(self.sinks)),
                ticker,
                logs: Mutex::new(Vec::new()),
            }),
        })
    }
}

fn default_slots() -> u32 {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    u32::try_from(cpus * 4).unwrap_or(64).clamp(8, 64)
}

/// The pooling engine for a policy, or why there is none.
fn pooling_engine(policy: &Policy, slots: u32) -> Result<Engine, String> {
    let memory = policy.budgets.memory_bytes.value;
    if memory > POOL_MAX_MEMORY {
        return Err(format!(
            "`budgets.memory_bytes` is {memory} bytes; a pool slot holds at most {POOL_MAX_MEMORY}"
        ));
    }
    // A slot is as large as the ceiling, so it is the limiter, not the pool, that refuses a
    // growth past it (and the run ends as `memory_limit`).
    let page = 64 * 1024;
    let slot_bytes = usize::try_from(memory.div_ceil(page).max(1) * page)
        .map_err(|_| "the memory ceiling does not fit this host's address space".to_owned())?;
    let table_elements = usize::try_from(sandbox_policy::DEFAULT_TABLE_ELEMENTS)
        .map_err(|_| "the table ceiling does not fit this host's address space".to_owned())?;
    let mut pool = PoolingAllocationConfig::new();
    pool.total_core_instances(slots)
        .total_memories(slots)
        .total_tables(slots)
        .max_memory_size(slot_bytes)
        .table_elements(table_elements);
    let mut config: Config = crate::engine::config();
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Engine::new(&config).map_err(|e| format!("cannot make the instance pool: {e}"))
}

/// An engine with its resolved linker, its cache fingerprint and, for a pool, the count of
/// free slots.
struct Slot {
    engine: Engine,
    linker: Linker<RunState>,
    fingerprint: [u8; 32],
    free: Option<Arc<Slots>>,
}

impl Slot {
    fn new(engine: Engine, slots: Option<u32>) -> Result<Slot, StartError> {
        Ok(Slot {
            linker: run::linker(&engine)?,
            fingerprint: engine_fingerprint(&engine),
            free: slots.map(|n| Arc::new(Slots::new(n))),
            engine,
        })
    }
}

/// A counting semaphore: a call waits for a pool slot instead of failing to instantiate. Taking
/// and giving back a free slot is one atomic operation; only waiting takes the lock.
struct Slots {
    free: AtomicU32,
    waiters: AtomicU32,
    lock: Mutex<()>,
    freed: Condvar,
}

struct SlotGuard<'a>(&'a Slots);

impl Slots {
    fn new(slots: u32) -> Slots {
        Slots {
            free: AtomicU32::new(slots),
            waiters: AtomicU32::new(0),
            lock: Mutex::new(()),
            freed: Condvar::new(),
        }
    }

    fn try_take(&self) -> bool {
        self.free
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }

    fn acquire(&self) -> SlotGuard<'_> {
        while !self.try_take() {
            let mut guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
            // Counted before the check, so a release after the check sees a waiter to wake.
            self.waiters.fetch_add(1, Ordering::SeqCst);
            while self.free.load(Ordering::SeqCst) == 0 {
                guard = self.freed.wait(guard).unwrap_or_else(|e| e.into_inner());
            }
            self.waiters.fetch_sub(1, Ordering::SeqCst);
        }
        SlotGuard(self)
    }
}

impl Drop for SlotGuard<'_> {
    fn drop(&mut self) {
        let slots = &self.0;
        slots.free.fetch_add(1, Ordering::SeqCst);
        if slots.waiters.load(Ordering::SeqCst) > 0 {
            let _guard = slots.lock.lock().unwrap_or_else(|e| e.into_inner());
            slots.freed.notify_one();
        }
    }
}

struct Inner {
    policy: Arc<Policy>,
    policy_path: String,
    policy_sha256: String,
    mounts: Mounts,
    primary: Slot,
    /// With pooling: the on-demand engine for plugins the pool cannot hold.
    fallback: Option<Slot>,
    /// Why the sandbox allocates on demand although pooling was asked for.
    fallback_reason: Option<String>,
    cache: Option<ModuleCache>,
    refuse_relaxed_network: bool,
    sinks: Option<Sinks>,
    ticker: Ticker,
    /// Event logs of finished calls, storage kept, for the next calls.
    logs: Mutex<Vec<EventLog>>,
}

impl Inner {
    fn take_log(&self) -> EventLog {
        let mut logs = self.logs.lock().unwrap_or_else(|e| e.into_inner());
        logs.pop().unwrap_or_else(|| EventLog::new(0))
    }

    fn keep_log(&self, log: EventLog) {
        if log.held_bytes() <= KEPT_LOG_BYTES {
            let mut logs = self.logs.lock().unwrap_or_else(|e| e.into_inner());
            if logs.len() < KEPT_LOGS {
                logs.push(log);
            }
        }
    }
}

/// A policy made ready to run plugins: its mounts opened, its engine made, its epoch thread
/// started. Cheap to clone (clones share everything), `Send + Sync`; build one per policy and
/// keep it.
#[derive(Clone)]
pub struct Sandbox {
    inner: Arc<Inner>,
}

impl Sandbox {
    /// Starts building a sandbox for `policy`. Host folders of its mounts are taken relative to
    /// `policy.base_dir`.
    pub fn builder(policy: Arc<Policy>) -> SandboxBuilder {
        SandboxBuilder {
            policy,
            policy_path: "(embedded)".to_owned(),
            policy_sha256: hex::encode(Sha256::digest(b"")),
            allocation: Allocation::Pooling,
            max_concurrent_calls: None,
            cache: None,
            engine: None,
            refuse_relaxed_network: false,
            sinks: Vec::new(),
        }
    }

    /// Reads and checks a policy file, and starts building a sandbox for it; the report
    /// names the file and the SHA-256 of its bytes.
    pub fn builder_from_file(path: &Path) -> Result<SandboxBuilder, StartError> {
        let error = |message: String| StartError::Policy {
            path: path.display().to_string(),
            message,
        };
        // The digest is of the very text that was parsed, read once: a regular file of at
        // most the parser's own limit.
        let limit = sandbox_policy::MAX_POLICY_BYTES as u64;
        let bytes = crate::engine::read::read_regular_file(path, limit)
            .map_err(|e| error(format!("cannot read it: {e}")))?;
        let text = String::from_utf8(bytes).map_err(|_| error("it is not UTF-8 text".into()))?;
        let base_dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let policy =
            sandbox_policy::parse_policy(&text, base_dir).map_err(|e| error(e.to_string()))?;
        Ok(Sandbox::builder(Arc::new(policy)).policy_source(
            path.display().to_string(),
            hex::encode(Sha256::digest(text.as_bytes())),
        ))
    }

    /// An engine with the settings every sandbox uses, instances allocated on demand: made
    /// once and given to many builders ([`SandboxBuilder::engine`]), it saves making one per
    /// sandbox.
    pub fn default_engine() -> Result<Engine, StartError> {
        run::engine()
    }

    /// The policy every call of this sandbox runs under.
    pub fn policy(&self) -> &Arc<Policy> {
        &self.inner.policy
    }

    /// The engine plugins are compiled for (the pooling one, when the sandbox pools).
    pub fn engine(&self) -> &Engine {
        &self.inner.primary.engine
    }

    /// How this sandbox allocates instances for plugins that fit its pool.
    pub fn allocation(&self) -> Allocation {
        match self.inner.primary.free {
            Some(_) => Allocation::Pooling,
            None => Allocation::OnDemand,
        }
    }

    /// Why pooling was asked for but the sandbox allocates on demand.
    pub fn fallback_reason(&self) -> Option<&str> {
        self.inner.fallback_reason.as_deref()
    }

    /// Compiles (or reads from the cache) and checks a plugin: its size against the policy,
    /// its imports against the host ABI, its `entry` export, and every import's type. `path`
    /// is only the name the report shows. Errors are the `run` command's exit-1 errors.
    pub fn load(&self, path: &str, bytes: &[u8], entry: &str) -> Result<Plugin, StartError> {
        let inner = &self.inner;
        run::check_size(&inner.policy, path, bytes)?;
        let module_sha256: [u8; 32] = Sha256::digest(bytes).into();
        let mut rejected = None;
        if let Some(cache) = &inner.cache {
            let primary = &inner.primary;
            match cache.lookup(&primary.engine, &primary.fingerprint, &module_sha256) {
                Lookup::Hit(module) => {
                    run::check_module(&module, path, entry)?;
                    return self.finish_load(
                        primary,
                        module,
                        path,
                        entry,
                        module_sha256,
                        CacheStatus::Hit,
                        None,
                    );
                }
                Lookup::Rejected(reason) => rejected = Some(reason),
                Lookup::Miss => {}
            }
            // A plugin the pool cannot hold was cached for the fallback engine: look there
            // before compiling it for the pool again.
            if let Some(fallback) = &inner.fallback {
                if let Lookup::Hit(module) =
                    cache.lookup(&fallback.engine, &fallback.fingerprint, &module_sha256)
                {
                    run::check_module(&module, path, entry)?;
                    let reason = "the instance pool cannot hold it (found compiled for on-demand allocation in the cache)";
                    return self.finish_load(
                        fallback,
                        module,
                        path,
                        entry,
                        module_sha256,
                        CacheStatus::Hit,
                        Some(reason.to_owned()),
                    );
                }
            }
        }
        self.compile_and_finish(path, bytes, entry, module_sha256, rejected)
    }

    /// The report of a call cancelled before it could start, e.g. while `bytes` compiled:
    /// outcome `cancelled`, one `CANCELLED` event saying `by` what, no usage. Event sinks get
    /// it as a whole stream. `path` is the name the report shows.
    pub fn cancelled_report(&self, path: &str, bytes: &[u8], by: &str) -> RunOutput {
        let inner = &self.inner;
        let subject = Subject {
            plugin_path: path.to_owned(),
            plugin_sha256: hex::encode(Sha256::digest(bytes)),
            policy_path: inner.policy_path.clone(),
            policy_sha256: inner.policy_sha256.clone(),
        };
        run::cancelled_before_start(&inner.policy, &subject, inner.sinks.clone(), by)
    }

    /// Reads a plugin file and [`load`](Sandbox::load)s it. Only a regular file is read, and
    /// no more of it than the policy's `limits.module_bytes` (and one byte to tell).
    pub fn load_file(&self, path: &Path, entry: &str) -> Result<Plugin, StartError> {
        let limit = self.inner.policy.limits.module_bytes.value;
        let bytes = match crate::engine::read::read_regular_file(path, limit) {
            Ok(bytes) => bytes,
            Err(crate::engine::read::ReadError::TooLarge(_)) => {
                return Err(StartError::ModuleTooLarge {
                    path: path.display().to_string(),
                    size: std::fs::metadata(path).map_or(limit + 1, |m| m.len()),
                    limit,
                })
            }
            Err(e) => {
                return Err(StartError::InvalidModule {
                    path: path.display().to_string(),
                    message: format!("cannot read it: {e}"),
                })
            }
        };
        self.load(&path.display().to_string(), &bytes, entry)
    }

    fn compile_and_finish(
        &self,
        path: &str,
        bytes: &[u8],
        entry: &str,
        module_sha256: [u8; 32],
        rejected: Option<crate::engine::cache::Rejected>,
    ) -> Result<Plugin, StartError> {
        let inner = &self.inner;
        // WAT to binary and the static limits, once, before Cranelift sees anything.
        let binary = run::prepare(path, bytes)?;
        let bytes = &binary[..];
        let (slot, module, reason) = match run::compile(&inner.primary.engine, path, bytes) {
            Ok(module) => (&inner.primary, module, None),
            Err(pool_error) => match &inner.fallback {
                // Valid for an on-demand engine: then it is the pool that cannot hold it.
                Some(fallback) => match run::compile(&fallback.engine, path, bytes) {
                    Ok(module) => (fallback, module, Some(pool_reason(&pool_error))),
                    Err(e) => return Err(e),
                },
                None => return Err(pool_error),
            },
        };
        // Checked before anything is stored, so the cache holds only plugins that load.
        run::check_module(&module, path, entry)?;
        let status = match &inner.cache {
            None => CacheStatus::Disabled,
            Some(cache) => {
                let stored = cache.store(&slot.fingerprint, &module_sha256, &module);
                match rejected {
                    Some(reason) => CacheStatus::Rejected { reason, stored },
                    None => CacheStatus::Miss { stored },
                }
            }
        };
        self.finish_load(slot, module, path, entry, module_sha256, status, reason)
    }

    #[allow(clippy::too_many_arguments)]
    fn finish_load(
        &self,
        slot: &Slot,
        module: Module,
        path: &str,
        entry: &str,
        module_sha256: [u8; 32],
        cache_status: CacheStatus,
        fallback_reason: Option<String>,
    ) -> Result<Plugin, StartError> {
        let pre = run::instantiate_pre(&slot.linker, &module, path)?;
        let exports = run::Exports::of(&module, entry);
        let inner = &self.inner;
        Ok(Plugin {
            inner: Arc::new(PluginInner {
                sandbox: self.clone(),
                program: run::program_name(path),
                uses_wasi: module
                    .imports()
                    .any(|i| i.module() == crate::abi::wasi_p1::MODULE),
                pre,
                exports,
                subject: Subject {
                    plugin_path: path.to_owned(),
                    plugin_sha256: hex::encode(module_sha256),
                    policy_path: inner.policy_path.clone(),
                    policy_sha256: inner.policy_sha256.clone(),
                },
                free: slot.free.clone(),
                fallback_reason: fallback_reason.or_else(|| inner.fallback_reason.clone()),
                cache_status,
            }),
        })
    }
}

/// The first line of the pool's refusal, for [`Plugin::fallback_reason`].
fn pool_reason(error: &StartError) -> String {
    match error {
        StartError::InvalidModule { message, .. } => {
            format!("the instance pool cannot hold it: {message}")
        }
        other => other.to_string(),
    }
}

struct PluginInner {
    sandbox: Sandbox,
    /// argv[0] of a WASI program: the plugin's file name, never a host folder.
    program: String,
    uses_wasi: bool,
    pre: InstancePre<RunState>,
    exports: run::Exports,
    subject: Subject,
    free: Option<Arc<Slots>>,
    fallback_reason: Option<String>,
    cache_status: CacheStatus,
}

/// A loaded plugin: compiled, checked, its imports resolved. Cheap to clone, `Send + Sync`;
/// call it from as many threads as you like.
#[derive(Clone)]
pub struct Plugin {
    inner: Arc<PluginInner>,
}

impl Plugin {
    /// Runs the plugin's entry once with `input` as its input bytes, in a fresh instance with
    /// the policy's budgets and quotas, and returns the report (a trap or an exhausted budget
    /// is an outcome in the report, not an error).
    pub fn call(&self, input: &[u8]) -> RunOutput {
        self.instantiate(input).run()
    }

    /// [`call`](Plugin::call) for a WASI program: `args` follow the program name in its argv
    /// (the input is its stdin).
    pub fn call_with_args(&self, input: &[u8], args: &[String]) -> RunOutput {
        self.instantiate_with_args(input, args).run()
    }

    /// [`call_with_args`](Plugin::call_with_args), with the guest's stdout and stderr also
    /// written to `streams` as the guest writes them (as `wasmtime run` prints them). The
    /// report still captures them within the policy's caps.
    pub fn call_streaming(
        &self,
        input: &[u8],
        args: &[String],
        streams: OutputStreams,
    ) -> RunOutput {
        self.prepare_call(input, args, streams, CancelHandle::new())
            .run()
    }

    /// [`call_streaming`](Plugin::call_streaming) that `cancel` can end from another thread:
    /// Wasm code stops within a few milliseconds, a blocking host call at the end of its
    /// current slice, and the report's outcome is `cancelled` with a `CANCELLED` event. A
    /// handle cancelled before the call starts ends it at once.
    pub fn call_cancellable(
        &self,
        input: &[u8],
        args: &[String],
        streams: OutputStreams,
        cancel: &CancelHandle,
    ) -> RunOutput {
        self.prepare_call(input, args, streams, cancel.clone())
            .run()
    }

    /// The first half of [`call`](Plugin::call): fresh state and a new instance (which runs
    /// the module's start function, if any). The call's wall-clock budget starts here.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # let policy = sandbox_policy::parse_policy("version: 1\nname: p\n", std::path::Path::new("."))?;
    /// # let sandbox = sandbox_runtime::Sandbox::builder(Arc::new(policy)).build()?;
    /// let plugin = sandbox.load("noop.wat", b"(module (func (export \"_start\")))", "_start")?;
    /// let call = plugin.instantiate(b"");
    /// let out = call.run();
    /// assert_eq!(out.report.summary.allowed + out.report.summary.denied, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn instantiate(&self, input: &[u8]) -> Call<'_> {
        self.instantiate_with_args(input, &[])
    }

    /// [`instantiate`](Plugin::instantiate) with a WASI argv after the program name.
    pub fn instantiate_with_args(&self, input: &[u8], args: &[String]) -> Call<'_> {
        self.prepare_call(input, args, OutputStreams::default(), CancelHandle::new())
    }

    fn prepare_call(
        &self,
        input: &[u8],
        args: &[String],
        streams: OutputStreams,
        cancel: CancelHandle,
    ) -> Call<'_> {
        let inner = &self.inner;
        let slot = inner.free.as_ref().map(|s| s.acquire());
        let sandbox = &inner.sandbox.inner;
        let running = sandbox.ticker.enter();
        let prepared = run::instantiate(
            &inner.pre,
            &sandbox.policy,
            &sandbox.mounts,
            run::CallInput {
                input: input.to_vec(),
                program: inner.program.clone(),
                args: args.to_vec(),
                uses_wasi: inner.uses_wasi,
                streams,
                refuse_relaxed_network: sandbox.refuse_relaxed_network,
                cancel: Arc::clone(&cancel.0),
                sinks: sandbox.sinks.clone(),
            },
            sandbox.take_log(),
            &inner.subject,
        );
        Call {
            plugin: self,
            prepared,
            cancel,
            _running: running,
            _slot: slot,
        }
    }

    /// How this plugin's instances are allocated.
    pub fn allocation(&self) -> Allocation {
        match self.inner.free {
            Some(_) => Allocation::Pooling,
            None => Allocation::OnDemand,
        }
    }

    /// Why this plugin is allocated on demand although the sandbox asked for pooling.
    pub fn fallback_reason(&self) -> Option<&str> {
        self.inner.fallback_reason.as_deref()
    }

    /// Whether the compiled code came from the cache.
    pub fn cache_status(&self) -> CacheStatus {
        self.inner.cache_status
    }

    /// The engine this plugin was compiled for.
    pub fn engine(&self) -> &Engine {
        self.inner.pre.module().engine()
    }

    /// The SHA-256 of the plugin's bytes, as in the report.
    pub fn sha256(&self) -> &str {
        &self.inner.subject.plugin_sha256
    }
}

/// One call between its setup and its run; see [`Plugin::instantiate`]. Holding it holds a
/// pool slot and keeps the epoch thread ticking.
pub struct Call<'a> {
    plugin: &'a Plugin,
    prepared: Prepared,
    cancel: CancelHandle,
    _running: Running<'a>,
    _slot: Option<SlotGuard<'a>>,
}

/// Ends a call in progress from another thread; see [`Plugin::call_cancellable`] and
/// [`Call::cancel_handle`]. Cheap to clone, `Send + Sync`.
#[derive(Clone, Default)]
pub struct CancelHandle(Arc<CancelFlag>);

impl CancelHandle {
    /// A handle that cancels nothing until [`cancel`](CancelHandle::cancel) is called.
    pub fn new() -> CancelHandle {
        CancelHandle::default()
    }

    /// Cancels the call; its `CANCELLED` event says `cancelled by the embedder`.
    pub fn cancel(&self) {
        self.cancel_because("cancelled by the embedder");
    }

    /// Cancels the call, saying why (e.g. `SIGINT`): the reason is in the report's message
    /// and in the `CANCELLED` event's `cancelled_by`. The first reason given is kept.
    pub fn cancel_because(&self, reason: &str) {
        self.0.cancel(reason);
    }

    /// Whether the call was cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.0.is_cancelled()
    }
}

impl Call<'_> {
    /// A handle that cancels this call from another thread, also while [`run`](Call::run)
    /// is running.
    pub fn cancel_handle(&self) -> CancelHandle {
        self.cancel.clone()
    }

    /// Calls the entry and builds the report.
    pub fn run(self) -> RunOutput {
        let inner = &self.plugin.inner;
        let (output, log) = run::finish(self.prepared, &inner.exports, &inner.subject);
        inner.sandbox.inner.keep_log(log);
        output
    }

    /// Not part of the API: calls the entry once more in this call's instance, as
    /// [`run`](Call::run) calls it, for the `call` benchmark. True when it completed.
    #[cfg(feature = "bench-hooks")]
    #[doc(hidden)]
    pub fn bench_invoke(&mut self) -> bool {
        self.prepared.invoke_completes(&self.plugin.inner.exports)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn sandboxes_and_plugins_are_shared_across_threads() {
        assert_send_sync::<Sandbox>();
        assert_send_sync::<Plugin>();
        assert_send_sync::<ModuleCache>();
        assert_send_sync::<CancelHandle>();
    }
}
