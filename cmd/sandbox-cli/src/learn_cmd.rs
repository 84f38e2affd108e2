//! `policy learn`: runs the plugin once in audit mode under the base policy and writes the
//! least-privilege policy for what it did (the learning itself is `sandbox_policy::learn`).

use std::path::Path;
use std::sync::Arc;

use anyhow::{anyhow, Context};
use sandbox_policy::learn::{learn as learn_policy, LearnSource, ObservedEvent, ObservedRun};
use sandbox_policy::templates::{template, Preset};
use sandbox_policy::{Mode, Policy, Usage};
use sandbox_runtime::report::Report;
use sandbox_runtime::{sha256_hex, Allocation, Sandbox};

use crate::args::LearnArgs;
use crate::run_cmd::load_policy;
use crate::text::neutralize;
use crate::Exit;

/// The name the strict template goes by in reports and in the learned file.
const STRICT_NAME: &str = "<strict template>";

fn status_text(report: &Report) -> String {
    serde_json::to_value(report.outcome.status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "unknown".into())
}

fn observed(report: &Report) -> ObservedRun {
    let u = &report.usage;
    ObservedRun {
        events: report
            .events
            .iter()
            .map(|e| ObservedEvent {
                seq: e.seq,
                capability: e.capability.clone(),
                verdict: e.decision,
                enforced: e.enforced,
                rule_id: e.rule_id.clone(),
                reason: e.reason_code,
                request: e.request.clone(),
                bytes_done: e
                    .context
                    .get("bytes_done")
                    .and_then(serde_json::Value::as_u64),
            })
            .collect(),
        not_recorded: report.events_summary.not_recorded,
        usage: Usage {
            fs_read_bytes: u.fs_read_bytes,
            fs_write_bytes: u.fs_write_bytes,
            net_connections: u.net_connections,
            net_egress_bytes: u.net_egress_bytes,
            net_ingress_bytes: u.net_ingress_bytes,
        },
        fuel_consumed: u.fuel_consumed,
        peak_memory_bytes: u.peak_memory_bytes,
        status: status_text(report),
        message: report.outcome.message.clone(),
    }
}

/// Each mount's host folder as an absolute path, so the learned policy works wherever it is
/// written.
fn absolute_mount_hosts(policy: &Policy) -> anyhow::Result<Vec<String>> {
    policy
        .filesystem
        .mounts
        .iter()
        .map(|m| {
            let path = policy.mount_host_path(m);
            let absolute = std::fs::canonicalize(&path)
                .or_else(|_| std::path::absolute(&path))
                .with_context(|| {
                    format!("cannot make mount folder `{}` absolute", path.display())
                })?;
            absolute.to_str().map(str::to_owned).ok_or_else(|| {
                anyhow!(
                    "mount folder `{}` is not UTF-8: a policy cannot name it",
                    absolute.display()
                )
            })
        })
        .collect()
}

pub fn learn(args: LearnArgs) -> anyhow::Result<Exit> {
    let (base, base_bytes, base_path) = match &args.policy {
        Some(path) => {
            let (policy, bytes) = load_policy(path)?;
            (policy, bytes, Some(path.display().to_string()))
        }
        None => {
            let text = template(Preset::Strict);
            let policy = sandbox_policy::parse_policy(text, Path::new("."))
                .map_err(|e| anyhow!("the strict template does not parse: {e}"))?;
            (policy, text.as_bytes().to_vec(), None)
        }
    };
    let plugin_bytes = crate::bounded::read_plugin(&args.plugin, &base)?;
    let input = match &args.input {
        Some(path) => crate::bounded::read(path, "input", crate::bounded::MAX_INPUT_BYTES)?,
        None => Vec::new(),
    };
    // Audit mode relaxes rules and quotas only: mounts, invalid paths, blocked addresses and
    // budgets hold, so what they deny is seen as not grantable.
    let mut audit = base.clone();
    audit.mode.value = Mode::Audit;
    let mount_hosts = absolute_mount_hosts(&base)?;
    let sandbox = Sandbox::builder(Arc::new(audit))
        .policy_source(
            base_path.clone().unwrap_or_else(|| STRICT_NAME.into()),
            sha256_hex(&base_bytes),
        )
        .allocation(Allocation::OnDemand)
        .build()?;
    let plugin = sandbox.load(
        &args.plugin.display().to_string(),
        &plugin_bytes,
        &args.entry,
    )?;
    let output = plugin.call_with_args(&input, &args.args);
    let report = output.report;
    let source = LearnSource {
        plugin_path: args.plugin.display().to_string(),
        plugin_sha256: report.plugin.sha256.clone(),
        base_path,
        mount_hosts,
    };
    let learned = learn_policy(&base, &observed(&report), &source);

    // The learned file must be a policy that runs and lints clean; anything else is a bug here.
    let folder = args
        .output
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    sandbox_policy::parse_policy(&learned.text, folder)
        .map_err(|e| anyhow!("the learned policy does not parse (a bug in `policy learn`): {e}"))?;
    let lint = sandbox_policy::lint::lint_policy_text(&learned.text, &args.output);
    if lint.has_errors() {
        return Err(anyhow!(
            "the learned policy has lint errors (a bug in `policy learn`): {}",
            lint.findings
                .iter()
                .map(|f| f.message.clone())
                .collect::<Vec<_>>()
                .join("; ")
        ));
    }
    std::fs::write(&args.output, &learned.text)
        .with_context(|| format!("cannot write `{}`", args.output.display()))?;

    let mut out = format!(
        "learned policy written to `{}` from {} events (run: {})\n",
        args.output.display(),
        report.events.len(),
        status_text(&report)
    );
    out.push_str(&format!(
        "  {} filesystem {}, {} network {}\n",
        learned.fs_rules.len(),
        if learned.fs_rules.len() == 1 {
            "rule"
        } else {
            "rules"
        },
        learned.net_rules.len(),
        if learned.net_rules.len() == 1 {
            "rule"
        } else {
            "rules"
        },
    ));
    if !learned.not_granted.is_empty() {
        out.push_str(&format!(
            "  {} {} not granted (no rule can allow {}; listed at the end of the file)\n",
            learned.not_granted.len(),
            if learned.not_granted.len() == 1 {
                "request"
            } else {
                "requests"
            },
            if learned.not_granted.len() == 1 {
                "it"
            } else {
                "them"
            }
        ));
    }
    for (rule, seqs) in &learned.overridden {
        out.push_str(&format!(
            "  review: the base policy's deny rule `{rule}` matched {} {}, which the learned policy allows\n",
            if seqs.len() == 1 { "event" } else { "events" },
            seqs.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")
        ));
    }
    print!("{}", neutralize(&out));
    for warning in &learned.warnings {
        eprintln!("warning: {}", neutralize(warning));
    }
    Ok(Exit::Ok)
}
