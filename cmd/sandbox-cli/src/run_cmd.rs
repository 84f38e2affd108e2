//! `run` and `report verify`.

use std::path::Path;
use std::sync::Arc;

use anyhow::{anyhow, Context};
use sandbox_policy::Policy;
use sandbox_runtime::{sha256_hex, Allocation, CacheStatus, ModuleCache, Rejected, Sandbox};

use crate::args::{RunArgs, VerifyArgs};
use crate::bounded;
use crate::text::to_json;
use crate::Exit;

/// Reads and validates a policy file; the error is one sentence naming the file and the
/// first mistake's `line:column`. Returns the policy and the file's bytes.
pub fn load_policy(path: &Path) -> anyhow::Result<(Policy, Vec<u8>)> {
    // One bounded read: the digest is of the very text that is parsed.
    let (policy, text) = crate::bounded::load_policy(path).map_err(|errors| {
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
    Ok((policy, text.into_bytes()))
}

pub fn run(args: RunArgs) -> anyhow::Result<Exit> {
    let (policy, policy_bytes) = load_policy(&args.policy)?;
    let plugin_bytes = bounded::read_plugin(&args.plugin, &policy)?;
    let input = match &args.input {
        Some(path) => bounded::read(path, "input", bounded::MAX_INPUT_BYTES)?,
        None => Vec::new(),
    };
    // An unusable cache folder only means compiling; `run_with_cache` never fails on it.
    let cache = match args.no_cache {
        true => None,
        false => ModuleCache::user_default(),
    };
    // The CLI runs a plugin as an embedder does; one call needs no instance pool.
    let cache_dir = cache.as_ref().map(|c| c.dir().to_owned());
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
    if let (
        Some(dir),
        CacheStatus::Rejected {
            reason: Rejected::Untrusted,
            ..
        },
    ) = (cache_dir, plugin.cache_status())
    {
        eprintln!(
            "warning: the module cache `{}` (or its entry) is owned by another user or writable by group or others: not used; compiled instead",
            dir.display()
        );
    }
    let output = plugin.call_with_args(&input, &args.args);
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
    let text = bounded::read_text(&args.report_file, "report", bounded::MAX_REPORT_BYTES)?;
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
