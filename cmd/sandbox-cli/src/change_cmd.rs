//! `policy diff` and `policy replay`: what a policy change does, to the policy's grants and to
//! the requests of real runs. The comparing and deciding is in `sandbox_policy::{diff, replay}`.

use sandbox_policy::replay::{
    budget_checks, replay as replay_events, BudgetCheck, ChangeKind, Replayed,
};
use serde::Serialize;
use serde_json::Value;

use crate::args::{DiffArgs, ReplayArgs, TextOrJson};
use crate::policy_load::{load_policy, Mounts};
use crate::text::{neutralize, shown, to_json};
use crate::Exit;

pub fn diff(args: DiffArgs) -> anyhow::Result<Exit> {
    let (old, _) = load_policy(&args.old, Mounts::MayBeMissing)?;
    let (new, _) = load_policy(&args.new, Mounts::MayBeMissing)?;
    // The same folder written two ways (relative here, absolute in a learned policy) is
    // no change: compare mounts by their canonical paths where they exist.
    let canonical = |path: std::path::PathBuf| std::fs::canonicalize(&path).unwrap_or(path);
    let d = sandbox_policy::diff::diff_with(&old, &new, &canonical);
    let (old_name, new_name) = (
        args.old.display().to_string(),
        args.new.display().to_string(),
    );
    match args.format {
        TextOrJson::Text => out!(
            "{}",
            neutralize(&sandbox_policy::diff::render_text(&d, &old_name, &new_name))
        ),
        TextOrJson::Json => outln!(
            "{}",
            sandbox_policy::diff::render_json(&d, &old_name, &new_name, args.pretty)
        ),
    }
    Ok(Exit::Ok)
}

#[derive(Serialize)]
struct ReplaySummary {
    replayed: usize,
    now_allowed: usize,
    now_denied: usize,
    now_enforced: usize,
    now_relaxed: usize,
    unchanged: usize,
    not_replayable: usize,
    not_recorded: u64,
}

#[derive(Serialize)]
struct ReplayDoc<'a> {
    report: String,
    policy: String,
    plugin: &'a str,
    run_policy: &'a str,
    run_status: Value,
    summary: ReplaySummary,
    events: &'a [Replayed],
    not_replayable: &'a [u64],
    budgets: &'a [BudgetCheck],
    notes: Vec<String>,
}

pub fn replay(args: ReplayArgs) -> anyhow::Result<Exit> {
    // An edited report would make the replay say what no run asked: refuse it.
    let (report, report_file) = crate::events_file::read_verified(
        args.report_file.as_deref(),
        args.events_file.as_deref(),
    )?;
    let (policy, _) = load_policy(&args.policy, Mounts::MayBeMissing)?;
    // The report's events are the type replay reads.
    let r = replay_events(&policy, &report.events);
    let usage = &report.usage;
    let budgets = budget_checks(
        &policy,
        usage.fuel_consumed,
        usage.peak_memory_bytes,
        usage.wall_time_ms,
    );
    let summary = ReplaySummary {
        replayed: r.events.len(),
        now_allowed: r.count(ChangeKind::NowAllowed),
        now_denied: r.count(ChangeKind::NowDenied),
        now_enforced: r.count(ChangeKind::NowEnforced),
        now_relaxed: r.count(ChangeKind::NowRelaxed),
        unchanged: r.events.iter().filter(|e| e.change.is_none()).count(),
        not_replayable: r.not_replayable.len(),
        not_recorded: report.events_summary.not_recorded,
    };
    let run_status = serde_json::to_value(report.outcome.status).unwrap_or(Value::Null);
    let mut notes = vec![
        "replay decides the recorded requests again; a plugin given other answers may ask for other things".to_owned(),
    ];
    if run_status != "completed" {
        notes.push(format!(
            "the run ended `{}`: requests it would have made afterwards were never recorded",
            run_status.as_str().unwrap_or("?")
        ));
    }
    if summary.not_recorded > 0 {
        notes.push(format!(
            "{} events past the report's `max_events` were not recorded and are not replayed",
            summary.not_recorded
        ));
    }
    // Fuel and memory are exact for a run; wall time varies, so it never counts as a change.
    let budget_change = budgets
        .iter()
        .any(|b| !b.fits && b.budget != "budgets.timeout_ms");
    let changed = r.changes().next().is_some() || budget_change;
    let doc = ReplayDoc {
        report: report_file.display().to_string(),
        policy: args.policy.display().to_string(),
        plugin: &report.plugin.path,
        run_policy: &report.policy.path,
        run_status,
        summary,
        events: &r.events,
        not_replayable: &r.not_replayable,
        budgets: &budgets,
        notes,
    };
    match args.format {
        TextOrJson::Json => out!("{}", to_json(&doc, args.pretty)?),
        TextOrJson::Text => out!("{}", neutralize(&render_text(&doc))),
    }
    Ok(if args.fail_on_change && changed {
        Exit::Failure
    } else {
        Exit::Ok
    })
}

fn group(n: f64) -> String {
    if n.fract() != 0.0 {
        return format!("{n}");
    }
    let digits = format!("{}", n as u64);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('_');
        }
        out.push(c);
    }
    out
}

fn render_text(doc: &ReplayDoc) -> String {
    let s = &doc.summary;
    // The plugin and policy paths, capabilities, targets and rule ids come from the report:
    // each is escaped, so none can add a line of its own.
    let mut out = format!(
        "replay of `{}` (plugin `{}`, run under `{}`) under `{}`\n",
        doc.report,
        shown(doc.plugin),
        shown(doc.run_policy),
        doc.policy
    );
    out.push_str(&format!(
        "{} requests decided again: {} now allowed, {} now denied, {} now enforced, {} now only logged, {} unchanged\n",
        s.replayed, s.now_allowed, s.now_denied, s.now_enforced, s.now_relaxed, s.unchanged
    ));
    if s.not_replayable > 0 {
        out.push_str(&format!(
            "{} {} without a request (budgets, guest faults) not replayed: {}\n",
            s.not_replayable,
            if s.not_replayable == 1 {
                "event"
            } else {
                "events"
            },
            doc.not_replayable
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let verdict = |d: &sandbox_policy::replay::Decided| match (d.decision, d.enforced) {
        (sandbox_policy::Verdict::Allow, _) => "allow",
        (_, true) => "deny",
        (_, false) => "deny (logged only)",
    };
    for e in doc.events.iter().filter(|e| e.change.is_some()) {
        let kind = e.change.map(ChangeKind::as_str).unwrap_or("");
        out.push_str(&format!(
            "  event {}: `{}` `{}`: {kind}: {} by `{}` ({}) -> {} by `{}` ({})\n",
            e.seq,
            shown(&e.capability),
            shown(&e.target),
            verdict(&e.old),
            shown(&e.old.rule_id),
            e.old.reason_code,
            verdict(&e.new),
            shown(&e.new.rule_id),
            e.new.reason_code
        ));
    }
    out.push_str(&format!("budgets under `{}`:\n", doc.policy));
    for b in doc.budgets {
        let (unit, used) = match b.budget {
            "budgets.timeout_ms" => (
                " ms (wall time varies from run to run)",
                format!("{}", b.used),
            ),
            "budgets.memory_bytes" => (" bytes", group(b.used)),
            _ => ("", group(b.used)),
        };
        out.push_str(&format!(
            "  {}: the run used {used} of {}{unit}{}\n",
            b.budget,
            group(b.limit as f64),
            if b.fits { "" } else { ": it would not fit" }
        ));
    }
    for note in &doc.notes {
        out.push_str(&format!("note: {note}\n"));
    }
    out
}
