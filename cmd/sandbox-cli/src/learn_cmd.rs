//! `policy learn`: runs the plugin once in audit mode under the base policy and writes the
//! least-privilege policy for what it did (the learning itself is `sandbox_policy::learn`).

use std::path::Path;
use std::sync::Arc;

use anyhow::{anyhow, Context};
use sandbox_policy::learn::{learn as learn_policy, LearnSource, Learned, ObservedRun};
use sandbox_policy::templates::{template, Preset};
use sandbox_policy::{Mode, Policy, ReasonCode, Usage, Verdict};
use sandbox_runtime::report::Report;
use sandbox_runtime::{sha256_hex, Allocation, Sandbox};

use crate::args::LearnArgs;
use crate::output::{self, OutputFile};
use crate::policy_load::{load_policy, Mounts};
use crate::run_cmd::start_error;
use crate::text::{neutralize, one_line};
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
        // The report's events are the type learn reads.
        events: report.events.clone(),
        not_recorded: report.events_summary.not_recorded,
        usage: Usage {
            fs_read_bytes: u.fs_read_bytes,
            fs_write_bytes: u.fs_write_bytes,
            net_connections: u.net_connections,
            net_egress_bytes: u.net_egress_bytes,
            net_ingress_bytes: u.net_ingress_bytes,
            // The report does not carry the entries count yet.
            ..Usage::default()
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

/// `--generalize`: each filesystem rule's file paths become the narrowest folder glob
/// (`parent/*`); a path whose folder is the guest root, and a rule that only lists folders,
/// stay exact. Returns the text and one line per widened rule saying what it now allows.
fn generalize(text: &str, learned: &Learned) -> (String, Vec<String>) {
    use std::collections::BTreeSet;
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let mut said = Vec::new();
    for rule in &learned.fs_rules {
        let only_list = rule.ops.iter().all(|op| op.as_str() == "list");
        if only_list {
            continue;
        }
        let mut globs = BTreeSet::new();
        let mut widened = BTreeSet::new();
        for path in &rule.paths {
            match path.rsplit_once('/') {
                Some((folder, _)) if !folder.is_empty() => {
                    globs.insert(format!("{folder}/*"));
                    widened.insert(folder.to_owned());
                }
                _ => {
                    globs.insert(path.clone());
                }
            }
        }
        if widened.is_empty() {
            continue;
        }
        let head = format!("- {{ id: {},", rule.id);
        let Some(at) = lines.iter().position(|l| l.trim_start().starts_with(&head)) else {
            continue;
        };
        let Some(start) = lines[at].find("paths: [") else {
            continue;
        };
        let Some(len) = lines[at][start..].find(']') else {
            continue;
        };
        let quoted: Vec<String> = globs.iter().map(|g| crate::text::yaml_quoted(g)).collect();
        let ops: Vec<&str> = rule.ops.iter().map(|op| op.as_str()).collect();
        let folders: Vec<String> = widened.iter().map(|f| format!("`{f}`")).collect();
        let what = format!(
            "rule `{}` now allows {} on every file directly in {} (it named {})",
            rule.id,
            ops.join(", "),
            folders.join(", "),
            rule.paths
                .iter()
                .map(|p| format!("`{p}`"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let line = lines[at].clone();
        lines[at] = format!(
            "{}paths: [{}]{}",
            &line[..start],
            quoted.join(", "),
            &line[start + len + 1..]
        );
        let pad = " ".repeat(line.len() - line.trim_start().len());
        lines.insert(at, format!("{pad}# REVIEW: generalized: {what}"));
        said.push(what);
    }
    let mut out = lines.join("\n");
    if text.ends_with('\n') {
        out.push('\n');
    }
    (out, said)
}

/// Marks every learned rule that allows what the base policy denied with a `# REVIEW:` line
/// above it (rules already marked for overriding a deny rule keep their own mark). Returns
/// the text and one line per marked rule for the summary.
fn mark_beyond_base(learned: &Learned, report: &Report) -> (String, Vec<String>) {
    let overriding: Vec<&str> = learned.overridden.iter().map(|(r, _)| r.as_str()).collect();
    let rules = learned
        .fs_rules
        .iter()
        .map(|r| (&r.id, &r.seqs))
        .chain(learned.net_rules.iter().map(|r| (&r.id, &r.seqs)));
    let mut lines: Vec<String> = learned.text.lines().map(str::to_owned).collect();
    let mut said = Vec::new();
    for (id, seqs) in rules {
        let denied: Vec<&sandbox_runtime::report::ReportEvent> = seqs
            .iter()
            .filter_map(|seq| report.events.iter().find(|e| e.seq == *seq))
            .filter(|e| e.decision == Verdict::Deny && !overriding.contains(&e.rule_id.as_str()))
            .collect();
        if denied.is_empty() {
            continue;
        }
        let head = format!("- {{ id: {id},");
        let Some(at) = lines.iter().position(|l| l.trim_start().starts_with(&head)) else {
            continue;
        };
        let mut by: Vec<&str> = denied.iter().map(|e| e.rule_id.as_str()).collect();
        by.sort_unstable();
        by.dedup();
        let events: Vec<String> = denied.iter().map(|e| e.seq.to_string()).collect();
        let (noun, them) = match events.len() {
            1 => ("event", "it"),
            _ => ("events", "them"),
        };
        let events = events.join(", ");
        let by = by.join("`, `");
        let pad = " ".repeat(lines[at].len() - lines[at].trim_start().len());
        lines.insert(
            at,
            format!("{pad}# REVIEW: the base policy denied {noun} {events} (by `{by}`); this rule allows {them}"),
        );
        said.push(format!(
            "rule `{id}` allows {noun} {events}, which the base policy denied (by `{by}`)"
        ));
    }
    let mut text = lines.join("\n");
    if learned.text.ends_with('\n') {
        text.push('\n');
    }
    (text, said)
}

/// Why a learning run taught nothing usable: no events, every filesystem request outside the
/// base policy's mounts, or an outcome other than `completed`. Empty when it is usable.
fn unusable_run(report: &Report) -> Vec<String> {
    let mut reasons = Vec::new();
    let status = status_text(report);
    if status != "completed" {
        reasons.push(format!(
            "ended `{status}` ({}), so what it would have done next was never seen",
            one_line(&report.outcome.message)
        ));
    }
    if report.events.is_empty() && report.events_summary.not_recorded == 0 {
        reasons.push("recorded no events".to_owned());
    }
    // Filesystem requests that reached a mount (an invalid path never does).
    let fs: Vec<_> = report
        .events
        .iter()
        .filter(|e| matches!(e.request, Some(sandbox_policy::Request::Fs(_))))
        .collect();
    let inside = fs.iter().any(|e| {
        !matches!(
            e.reason_code,
            ReasonCode::FsPathOutsideMounts | ReasonCode::FsPathInvalid
        )
    });
    if !fs.is_empty() && !inside {
        reasons.push(format!(
            "made {} filesystem {}, none inside the base policy's mounts (give `--policy` with the mounts the plugin needs)",
            fs.len(),
            if fs.len() == 1 { "request" } else { "requests" }
        ));
    }
    reasons
}

pub fn learn(args: LearnArgs) -> anyhow::Result<Exit> {
    let (base, base_bytes, base_path) = match &args.policy {
        Some(path) => {
            let (policy, bytes) = load_policy(path, Mounts::MustExist)?;
            (policy, bytes, Some(path.display().to_string()))
        }
        None => {
            let text = template(Preset::Strict);
            let policy = sandbox_policy::parse_policy(text, Path::new("."))
                .map_err(|e| anyhow!("the strict template does not parse: {e}"))?;
            (policy, text.as_bytes().to_vec(), None)
        }
    };
    // The learned policy's file is checked before anything runs, as `run`'s outputs are.
    let output_file = OutputFile::check(&args.output, "learned policy")?;
    output::warn_outputs_in_mounts(&base, &[&output_file]);
    let plugin_bytes = crate::bounded::read_plugin(&args.plugin, &base)?;
    let input = output::read_input(args.input.as_deref())?;
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
        // Learning records what the plugin asks for; it never reaches a host BASE denies.
        .refuse_relaxed_network(!args.allow_network)
        .build()
        .map_err(|e| start_error(e, &[], None))?;
    let plugin = sandbox
        .load(
            &args.plugin.display().to_string(),
            &plugin_bytes,
            &args.entry,
        )
        .map_err(|e| start_error(e, &plugin_bytes, Some(sandbox.engine())))?;
    let output = plugin.call_with_args(&input, &args.args);
    let report = output.report;
    let unusable = unusable_run(&report);
    if !unusable.is_empty() && !args.allow_empty {
        return Err(anyhow!(
            "the learning run {}: a policy learned from it would not let the plugin work, so `{}` was not written (give `--allow-empty` to write it anyway)",
            unusable.join(", and "),
            args.output.display()
        ));
    }
    let source = LearnSource {
        plugin_path: args.plugin.display().to_string(),
        plugin_sha256: report.plugin.sha256.clone(),
        base_path,
        mount_hosts,
    };
    let learned = learn_policy(&base, &observed(&report), &source);

    let (text, beyond) = mark_beyond_base(&learned, &report);
    let (text, widened) = match args.generalize {
        true => generalize(&text, &learned),
        false => (text, Vec::new()),
    };
    // The learned file must be a policy that runs and lints clean; anything else is a bug here.
    let folder = args
        .output
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    sandbox_policy::parse_policy(&text, folder)
        .map_err(|e| anyhow!("the learned policy does not parse (a bug in `policy learn`): {e}"))?;
    let lint = sandbox_policy::lint::lint_policy_text(&text, &args.output);
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
    output_file.write(text.as_bytes())?;

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
    out!("{}", neutralize(&out));
    for line in &widened {
        out!("  generalized: {}\n", neutralize(line));
    }
    for line in &beyond {
        out!("  review: {}\n", neutralize(line));
    }
    for reason in &unusable {
        errln!("warning: the learning run {}", neutralize(reason));
    }
    for warning in &learned.warnings {
        errln!("warning: {}", neutralize(warning));
    }
    Ok(Exit::Ok)
}
