//! `run` and `report verify`.

use std::path::Path;
use std::sync::Arc;

use anyhow::{anyhow, Context};
use sandbox_policy::Policy;
use sandbox_runtime::report::Report;
use sandbox_runtime::{sha256_hex, Allocation, ModuleCache, RunOutput, Sandbox, Status};

use crate::args::{ExitCodeFrom, RunArgs, VerifyArgs};
use crate::output::{self, OutputFile};
use crate::text::{neutralize, one_line, to_json};
use crate::Exit;

/// Reads and validates a policy file; the error is one sentence naming the file and the
/// first mistake's `line:column`. Returns the policy and the file's bytes.
pub fn load_policy(path: &Path) -> anyhow::Result<(Policy, Vec<u8>)> {
    let bytes =
        std::fs::read(path).with_context(|| format!("cannot read policy `{}`", path.display()))?;
    let (policy, _) = sandbox_policy::load_policy(path).map_err(|errors| {
        let first = errors.errors.first();
        let more = errors.errors.len().saturating_sub(1);
        match first {
            Some(e) => anyhow!(
                "policy `{}`:{}: {} ({}){}",
                path.display(),
                e.span,
                e.message,
                e.help(),
                if more > 0 {
                    format!(
                        "; {more} more error(s): run `sandbox-cli policy lint --policy {}`",
                        path.display()
                    )
                } else {
                    String::new()
                }
            ),
            None => anyhow!("policy `{}` is invalid", path.display()),
        }
    })?;
    Ok((policy, bytes))
}

pub fn run(args: RunArgs) -> anyhow::Result<Exit> {
    let (policy, policy_bytes) = load_policy(&args.policy)?;
    // Every output is opened before anything runs: a missing folder or a symlink costs no run.
    let open = |path: &Option<std::path::PathBuf>, what| -> anyhow::Result<Option<OutputFile>> {
        path.as_deref()
            .map(|p| OutputFile::check(p, what))
            .transpose()
    };
    let report_file = open(&args.report_file, "report")?;
    let stdout_file = open(&args.stdout, "stdout")?;
    let stderr_file = open(&args.stderr, "stderr")?;
    let outputs: Vec<&OutputFile> = [&report_file, &stdout_file, &stderr_file]
        .into_iter()
        .flatten()
        .collect();
    output::warn_outputs_in_mounts(&policy, &outputs);
    let input = output::read_input(args.input.as_deref())?;
    let plugin_bytes = std::fs::read(&args.plugin)
        .with_context(|| format!("cannot read plugin `{}`", args.plugin.display()))?;
    // An unusable cache folder only means compiling; the builder never fails on it.
    let cache = match args.no_cache {
        true => None,
        false => ModuleCache::user_default(),
    };
    // One call: on-demand allocation, no pool to set up.
    let sandbox = Sandbox::builder(Arc::new(policy))
        .policy_source(args.policy.display().to_string(), sha256_hex(&policy_bytes))
        .allocation(Allocation::OnDemand)
        .cache(cache)
        .build()?;
    let plugin = sandbox.load(
        &args.plugin.display().to_string(),
        &plugin_bytes,
        &args.entry,
    )?;
    let output = plugin.call_with_args(&input, &args.args);
    let exit = exit_for(&output.report, args.exit_code);
    // From here on nothing changes the exit code: write failures are said on stderr.
    if let Some(file) = stdout_file {
        say_error(file.write(&output.stdout));
    }
    if let Some(file) = stderr_file {
        say_error(file.write(&output.stderr));
    }
    deliver(&args, report_file, &output);
    Ok(exit)
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
    // The runtime has no hook that tees the guest's output as it is written, so it goes to
    // the terminal right after the call.
    output::to_stdout(&output.stdout);
    output::to_stderr(&output.stderr);
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
    let text = std::fs::read_to_string(&args.report_file)
        .with_context(|| format!("cannot read report `{}`", args.report_file.display()))?;
    match sandbox_runtime::verify_report(&text) {
        Ok(report) => {
            outln!(
                "report `{}` is intact: {} events chained, digest {}",
                args.report_file.display(),
                report.events.len(),
                report.digest
            );
            Ok(Exit::Ok)
        }
        Err(e) => Err(anyhow!("report `{}`: {e}", args.report_file.display())),
    }
}
