//! `run` and `report verify`.

use std::sync::Arc;

use anyhow::anyhow;
use sandbox_runtime::report::Report;
use sandbox_runtime::{
    sha256_hex, Allocation, CacheStatus, ModuleCache, OutputStreams, Rejected, RunOutput, Sandbox,
    StartError, Status,
};

use crate::args::{ExitCodeFrom, RunArgs, VerifyArgs};
use crate::output::{self, OutputFile};
use crate::policy_load::{load_policy, Mounts};
use crate::text::{neutralize, one_line, to_json};
use crate::Exit;

pub fn run(args: RunArgs) -> anyhow::Result<Exit> {
    // First, before any thread starts, so every thread inherits the blocked signals.
    let signals = crate::signals::watch();
    let (policy, policy_bytes) = load_policy(&args.policy, Mounts::MustExist)?;
    // Every output is opened before anything runs: a missing folder or a symlink costs no run.
    let open = |path: &Option<std::path::PathBuf>, what| -> anyhow::Result<Option<OutputFile>> {
        path.as_deref()
            .map(|p| OutputFile::check(p, what))
            .transpose()
    };
    let report_file = open(&args.report_file, "report")?;
    let stdout_file = open(&args.stdout, "stdout")?;
    let stderr_file = open(&args.stderr, "stderr")?;
    let events_file = open(&args.events, "events")?;
    let outputs: Vec<&OutputFile> = [&report_file, &stdout_file, &stderr_file, &events_file]
        .into_iter()
        .flatten()
        .collect();
    output::warn_outputs_in_mounts(&policy, &outputs);
    let input = output::read_input(args.input.as_deref())?;
    let plugin_bytes = crate::bounded::read_plugin(&args.plugin, &policy)?;
    // An unusable cache folder only means compiling; the builder never fails on it.
    let cache = match args.no_cache {
        true => None,
        false => ModuleCache::user_default(),
    };
    let cache_dir = cache.as_ref().map(|c| c.dir().to_owned());
    // One call: on-demand allocation, no pool to set up.
    let mut builder = Sandbox::builder(Arc::new(policy))
        .policy_source(args.policy.display().to_string(), sha256_hex(&policy_bytes))
        .allocation(Allocation::OnDemand)
        .cache(cache);
    let events = match &events_file {
        Some(file) => Some(crate::events_file::open(&file.path)?),
        None => None,
    };
    if let Some(sink) = &events {
        builder = builder.event_sink(sink.clone());
    }
    let sandbox = builder.build().map_err(|e| start_error(e, &[], None))?;
    let plugin_path = args.plugin.display().to_string();
    let output = match load_or_cancel(&sandbox, &plugin_path, plugin_bytes, &args, &signals)? {
        Loaded::Plugin(plugin) => {
            warn_untrusted_cache(cache_dir.as_deref(), plugin.cache_status());
            // With a report file, the guest's output goes to the terminal as it is written, as
            // `wasmtime run` prints it; without one, stdout carries the report alone.
            let streams = match report_file {
                Some(_) => OutputStreams {
                    stdout: Some(Box::new(std::io::stdout())),
                    stderr: Some(Box::new(std::io::stderr())),
                },
                None => OutputStreams::default(),
            };
            plugin.call_cancellable(&input, &args.args, streams, signals.handle())
        }
        Loaded::Cancelled(output) => *output,
    };
    let exit = match signals.caught() {
        Some(code) if output.report.outcome.status == Status::Cancelled => Exit::Signal(code),
        _ => exit_for(&output.report, args.exit_code),
    };
    // From here on nothing changes the exit code: write failures are said on stderr.
    if let Some(error) = events.as_ref().and_then(|sink| sink.error()) {
        let shown = args.events.as_deref().unwrap_or(std::path::Path::new(""));
        say_error(Err(anyhow!(
            "cannot write events `{}`: {error}",
            shown.display()
        )));
    }
    if let Some(file) = stdout_file {
        say_error(file.write(&output.stdout));
    }
    if let Some(file) = stderr_file {
        say_error(file.write(&output.stderr));
    }
    deliver(&args, report_file, &output);
    Ok(exit)
}

/// A loaded plugin, or the report of a run cancelled while it compiled.
enum Loaded {
    Plugin(sandbox_runtime::Plugin),
    Cancelled(Box<RunOutput>),
}

/// Loads (compiles) the plugin on a thread of its own, so a signal during compilation ends
/// the run at once with a `cancelled` report; the compiling thread ends with the process.
fn load_or_cancel(
    sandbox: &Sandbox,
    path: &str,
    bytes: Vec<u8>,
    args: &RunArgs,
    signals: &crate::signals::Signals,
) -> anyhow::Result<Loaded> {
    let (send, receive) = std::sync::mpsc::channel();
    let bytes = Arc::new(bytes);
    let (loader, shared, name, entry) = (
        sandbox.clone(),
        Arc::clone(&bytes),
        path.to_owned(),
        args.entry.clone(),
    );
    let spawned = std::thread::Builder::new()
        .name("sandbox-load".into())
        .spawn(move || {
            let _ = send.send(loader.load(&name, &shared, &entry));
        });
    let loaded = match spawned {
        Ok(_) => loop {
            if let Some(by) = signals.cancelled_by() {
                return Ok(Loaded::Cancelled(Box::new(
                    sandbox.cancelled_report(path, &bytes, &by),
                )));
            }
            match receive.recv_timeout(std::time::Duration::from_millis(5)) {
                Ok(loaded) => break loaded,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => continue,
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(anyhow!("plugin `{path}` could not be loaded"));
                }
            }
        },
        // No thread to spare: load here, where a signal waits for the compilation.
        Err(_) => sandbox.load(path, &bytes, &args.entry),
    };
    let plugin = loaded.map_err(|e| start_error(e, &bytes, Some(sandbox.engine())))?;
    Ok(Loaded::Plugin(plugin))
}

/// A start error as one sentence in the CLI's words: its own text only (a mount error's
/// cause is in it already), a component named as such, and a missing entry with the
/// plugin's exports and their types.
pub fn start_error(
    error: StartError,
    bytes: &[u8],
    engine: Option<&wasmtime::Engine>,
) -> anyhow::Error {
    match &error {
        StartError::InvalidModule { path, message } if message.contains("component") => anyhow!(
            "plugin `{path}` is a WebAssembly component; `sandbox-cli` runs core modules only"
        ),
        StartError::MissingEntry { .. } => match engine.and_then(|e| exports(e, bytes)) {
            Some(list) if list.is_empty() => anyhow!("{error}; it exports nothing"),
            Some(list) => anyhow!("{error}; its exports: {}", list.join(", ")),
            None => anyhow!("{error}"),
        },
        _ => anyhow!("{error}"),
    }
}

/// Every export of a module as `` `name`: type ``, or `None` when it does not compile.
fn exports(engine: &wasmtime::Engine, bytes: &[u8]) -> Option<Vec<String>> {
    use wasmtime::ExternType;
    let module = wasmtime::Module::new(engine, bytes).ok()?;
    let list = module
        .exports()
        .map(|export| {
            let kind = match export.ty() {
                ExternType::Func(f) => {
                    let params: Vec<String> = f.params().map(|t| t.to_string()).collect();
                    let results: Vec<String> = f.results().map(|t| t.to_string()).collect();
                    format!("({}) -> ({})", params.join(", "), results.join(", "))
                }
                ExternType::Memory(_) => "memory".to_owned(),
                ExternType::Table(_) => "table".to_owned(),
                ExternType::Global(_) => "global".to_owned(),
                ExternType::Tag(_) => "tag".to_owned(),
            };
            format!("`{}`: {kind}", one_line(export.name()))
        })
        .collect();
    Some(list)
}

/// One warning line when the module cache was not used because others could write it.
fn warn_untrusted_cache(dir: Option<&std::path::Path>, status: CacheStatus) {
    if let (
        Some(dir),
        CacheStatus::Rejected {
            reason: Rejected::Untrusted,
            ..
        },
    ) = (dir, status)
    {
        let warning = format!(
            "warning: the module cache `{}` (or its entry) is owned by another user or writable by group or others: not used; compiled instead\n",
            neutralize(&dir.display().to_string())
        );
        output::to_stderr(warning.as_bytes());
    }
}

/// The exit code of a finished run.
fn exit_for(report: &Report, from: ExitCodeFrom) -> Exit {
    match (report.outcome.status, from, report.outcome.exit_code) {
        (Status::Completed, ExitCodeFrom::Guest, Some(code)) => {
            Exit::Guest(u8::try_from(code).unwrap_or(1))
        }
        (status, _, _) => Exit::from(status),
    }
}

/// Writes the report (to `--report-file`, or stdout), and with a report file the guest's
/// output to the terminal and the summary line.
fn deliver(args: &RunArgs, report_file: Option<OutputFile>, output: &RunOutput) {
    let json = match to_json(&output.report, args.pretty) {
        Ok(json) => json,
        Err(e) => {
            say_error(Err(e.context("cannot serialise the report")));
            return;
        }
    };
    let Some(file) = report_file else {
        output::to_stdout(json.as_bytes());
        return;
    };
    let shown = file.path.display().to_string();
    if let Err(e) = file.write(json.as_bytes()) {
        // The run happened: its report must not be lost.
        say_error(Err(e.context("the report follows on stdout")));
        output::to_stdout(json.as_bytes());
        return;
    }
    if !args.quiet {
        output::to_stderr(summary(&output.report, &shown).as_bytes());
    }
}

/// One line: how the run ended, what was decided, and where the report is.
fn summary(report: &Report, report_path: &str) -> String {
    let status = serde_json::to_value(report.outcome.status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "unknown".into());
    let exit = match report.outcome.exit_code {
        Some(code) => format!(" (guest exit code {code})"),
        None => String::new(),
    };
    neutralize(&format!(
        "sandbox-cli: {status}{exit}; {} allowed, {} denied; report in `{}`\n",
        report.summary.allowed,
        report.summary.denied,
        one_line(report_path)
    ))
}

/// Says an error on stderr as one sentence; never panics.
fn say_error(result: anyhow::Result<()>) {
    if let Err(e) = result {
        output::to_stderr(format!("error: {}\n", neutralize(&format!("{e:#}"))).as_bytes());
    }
}

pub fn verify(args: VerifyArgs) -> anyhow::Result<Exit> {
    let Some(report_file) = &args.report_file else {
        return verify_events(&args);
    };
    let text = crate::bounded::read_text(report_file, "report", crate::bounded::MAX_REPORT_BYTES)?;
    match sandbox_runtime::verify_report(&text) {
        Ok(report) => {
            outln!(
                "report `{}` is intact: {} events chained, digest {}",
                report_file.display(),
                report.events.len(),
                report.digest
            );
            Ok(Exit::Ok)
        }
        Err(e) => Err(anyhow!("report `{}`: {e}", report_file.display())),
    }
}

/// `report verify --events-file`: the stream's chain, and how the run ended.
fn verify_events(args: &VerifyArgs) -> anyhow::Result<Exit> {
    let path = args
        .events_file
        .as_deref()
        .ok_or_else(|| anyhow!("give `--report-file` or `--events-file`"))?;
    let stream = crate::events_file::read_stream(path)?;
    let (ended, digest) = match &stream.end {
        Some(end) => {
            let status = serde_json::to_value(end.outcome.status)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            (
                format!("the run ended `{status}`"),
                format!(", report digest {}", end.digest),
            )
        }
        None => (
            "no `end` line: the run was killed before it ended".to_owned(),
            String::new(),
        ),
    };
    outln!(
        "events file `{}` is intact: {} events chained; {ended}\n  run id {}{digest}",
        neutralize(&path.display().to_string()),
        stream.events.len(),
        stream.run.run_id,
    );
    Ok(Exit::Ok)
}
