//! `run` and `report verify`.

use std::sync::Arc;

use anyhow::{anyhow, Context};
use sandbox_runtime::{sha256_hex, ModuleCache, RunConfig};

use crate::args::{RunArgs, VerifyArgs};
use crate::text::to_json;
use crate::Exit;

pub fn run(args: RunArgs) -> anyhow::Result<Exit> {
    let policy_bytes = std::fs::read(&args.policy)
        .with_context(|| format!("cannot read policy `{}`", args.policy.display()))?;
    let (policy, _) = sandbox_policy::load_policy(&args.policy).map_err(|errors| {
        let first = errors.errors.first();
        let more = errors.errors.len().saturating_sub(1);
        match first {
            Some(e) => anyhow!(
                "policy `{}`:{}: {} ({}){}",
                args.policy.display(),
                e.span,
                e.message,
                e.help(),
                if more > 0 {
                    format!(
                        "; {more} more error(s): run `sandbox-cli policy lint --policy {}`",
                        args.policy.display()
                    )
                } else {
                    String::new()
                }
            ),
            None => anyhow!("policy `{}` is invalid", args.policy.display()),
        }
    })?;
    let plugin_bytes = std::fs::read(&args.plugin)
        .with_context(|| format!("cannot read plugin `{}`", args.plugin.display()))?;
    let input = match &args.input {
        Some(path) => std::fs::read(path)
            .with_context(|| format!("cannot read input `{}`", path.display()))?,
        None => Vec::new(),
    };
    // An unusable cache folder only means compiling; `run_with_cache` never fails on it.
    let cache = match args.no_cache {
        true => None,
        false => ModuleCache::user_default(),
    };
    let output = sandbox_runtime::run_with_cache(
        RunConfig {
            policy: Arc::new(policy),
            policy_path: args.policy.display().to_string(),
            policy_sha256: sha256_hex(&policy_bytes),
            plugin_path: args.plugin.display().to_string(),
            plugin_bytes,
            entry: args.entry.clone(),
            input,
        },
        cache,
    )?;
    let json = to_json(&output.report, args.pretty)?;
    if let Some(path) = &args.report_file {
        std::fs::write(path, &json)
            .with_context(|| format!("cannot write report `{}`", path.display()))?;
    }
    if let Some(path) = &args.stdout {
        std::fs::write(path, &output.stdout)
            .with_context(|| format!("cannot write `{}`", path.display()))?;
    }
    if let Some(path) = &args.stderr {
        std::fs::write(path, &output.stderr)
            .with_context(|| format!("cannot write `{}`", path.display()))?;
    }
    print!("{json}");
    Ok(Exit::from(output.report.outcome.status))
}

pub fn verify(args: VerifyArgs) -> anyhow::Result<Exit> {
    let text = std::fs::read_to_string(&args.report_file)
        .with_context(|| format!("cannot read report `{}`", args.report_file.display()))?;
    match sandbox_runtime::verify_report(&text) {
        Ok(report) => {
            println!(
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
