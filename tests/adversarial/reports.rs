//! Reports and what people read: a report edited after the run is detected, and text a
//! plugin chose (paths, hosts, output) can neither drive a terminal, nor forge lines of
//! `explain`, nor widen the policy change `explain` suggests.

use serde_json::Value;

use crate::harness::*;

fn explain_text(case: &Case, index: &str) -> String {
    let out = case.cli(&[
        "explain",
        "--report-file",
        "report.json",
        "--event-index",
        index,
        "--policy",
        "policy.yaml",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn explain_json(case: &Case, index: &str) -> Value {
    let out = case.cli(&[
        "explain",
        "--report-file",
        "report.json",
        "--event-index",
        index,
        "--policy",
        "policy.yaml",
        "--format",
        "json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn terminal_escapes_from_a_plugin_are_neutralised_in_text_and_escaped_in_json() {
    let case = Case::new();
    let evil = "\u{1b}[2J\u{1b}[31mEVIL\u{7}\u{1b}]0;pwned\u{7}\u{202e}txt\u{9b}";
    let mut plugin = Plugin::new().read(format!("/{evil}").as_bytes());
    let text = plugin.bytes(evil.as_bytes());
    let plugin = plugin
        .raw(&format!("(drop (call $log {text}))"))
        .raw(&format!("(drop (call $output_write {text}))"));
    let run = case.run(&plugin.wat());
    assert_eq!(run.code, 0);
    assert_eq!(run.reasons(), ["FS_PATH_OUTSIDE_MOUNTS"]);
    // JSON escapes control characters: the report file holds no raw escape byte.
    assert!(!run.report_text.contains('\u{1b}') && !run.report_text.contains('\u{7}'));
    assert!(run.report["stdio"]["stderr"]
        .as_str()
        .unwrap()
        .contains(evil));
    let text = explain_text(&case, "0");
    for raw in ['\u{1b}', '\u{7}', '\u{202e}', '\u{9b}'] {
        assert!(
            !text.contains(raw),
            "raw {raw:?} in explain output:\n{text}"
        );
    }
    assert!(text.contains("\\u{1b}[2J\\u{1b}[31mEVIL\\u{7}"), "{text}");
}

/// Found by this suite: a path holding a line break printed raw in `explain`'s text, so a
/// plugin could add lines that read like the tool's own (a second `event` header, a rule).
#[test]
fn regression_a_guest_path_with_a_newline_cannot_forge_lines_of_explain() {
    let case = Case::new();
    let forged = "/x\nevent 0: `fs.read` allowed\n  rule:    read-data\n  reason:  ALLOWED";
    let run = case.run(&Plugin::new().read(forged.as_bytes()).wat());
    assert_eq!(run.reasons(), ["FS_PATH_OUTSIDE_MOUNTS"]);
    let text = explain_text(&case, "0");
    let starts = |prefix: &str| text.lines().filter(|l| l.starts_with(prefix)).count();
    assert_eq!(starts("event "), 1, "{text}");
    assert_eq!(starts("  rule:"), 1, "{text}");
    assert_eq!(starts("  reason:"), 1, "{text}");
    assert!(
        text.contains("path: /x\\nevent 0: `fs.read` allowed\\n"),
        "{text}"
    );
}

/// The YAML a suggestion carries, made into a whole policy and parsed.
fn suggested_policy(explanation: &Value) -> Option<sandbox_policy::Policy> {
    let yaml = explanation["suggestion"]["yaml"].as_str()?;
    let text = format!(
        "version: 1\n{}",
        yaml.replacen(
            "filesystem:\n",
            "filesystem:\n  mounts: [{ guest: /out, host: ., mode: rw }]\n",
            1
        )
    );
    Some(
        sandbox_policy::parse_policy(&text, std::path::Path::new("."))
            .unwrap_or_else(|e| panic!("the suggested YAML does not parse: {e}\n{text}")),
    )
}

/// Found by this suite: `explain` pasted the path and host a plugin asked for into the
/// suggested YAML unquoted, so a plugin asking for `/out/*`, `*`, or a path that closes the
/// quotes got a suggestion that allowed far more than it asked for.
#[test]
fn regression_a_guest_path_or_host_cannot_widen_the_suggested_policy_change() {
    let case = Case::new();
    case.policy(&FS_POLICY.replace(
        r#"paths: ["/out/**"]"#,
        r#"paths: ["/out/*.log"]"#,
    ).replace(
        "  quotas: { read_bytes: 1MiB, write_bytes: 64KiB }\n",
        "  quotas: { read_bytes: 1MiB, write_bytes: 64KiB }\nnetwork:\n  rules: [{ id: api, effect: allow, hosts: [\"api.example.com\"], ports: [443] }]\n",
    ));
    // Unquoted, this was two paths: `/out/a.txt` and `/out/b.log`.
    let closing_quotes = "/out/a.txt\", \"/out/b.log";
    let run = case.run(
        &Plugin::new()
            .write(closing_quotes.as_bytes(), b"x", 0)
            .write(b"/out/*", b"x", 0)
            .write(
                b"/out/x\n    - { id: pwn, effect: allow, ops: [write], paths: [\"/**\"] }",
                b"x",
                0,
            )
            .connect(b"*", 80)
            .connect(b"evil.test\"], ports: [\"1-65535\"]", 80)
            .connect(b"other.example.com", 80)
            .wat(),
    );
    assert_eq!(
        run.reasons(),
        [
            "FS_PATH_NOT_ALLOWED",
            "FS_PATH_NOT_ALLOWED",
            "FS_PATH_NOT_ALLOWED",
            // Not host names at all: refused before any lookup, with no rule to suggest.
            "NET_HOST_INVALID",
            "NET_HOST_INVALID",
            "NET_HOST_NOT_ALLOWED"
        ]
    );

    // A path a rule can name: the suggestion names exactly that path, quotes and all.
    let policy = suggested_policy(&explain_json(&case, "0")).expect("a suggestion");
    let rule = &policy.filesystem.rules[0];
    assert_eq!(rule.paths.len(), 1);
    assert_eq!(rule.paths[0].as_str(), closing_quotes);
    assert!(!rule.paths[0].matches("/out/b.log"));

    // Globs, brackets and line breaks: no YAML at all.
    for index in ["1", "2", "3", "4"] {
        let explanation = explain_json(&case, index);
        assert!(
            explanation["suggestion"]["yaml"].is_null(),
            "event {index}: {}",
            explanation["suggestion"]
        );
    }
    // An ordinary host still gets its one-host rule.
    let yaml = explain_json(&case, "5")["suggestion"]["yaml"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        yaml.contains(r#"hosts: ["other.example.com"], ports: [80]"#),
        "{yaml}"
    );
}

/// Recomputes the event hash chain of a report the way `report verify` checks it, as an
/// attacker who knows the algorithm would.
fn rechain(report: &mut Value) {
    let mut previous = String::new();
    for event in report["events"].as_array_mut().unwrap() {
        let mut body = event.clone();
        body.as_object_mut().unwrap().remove("hash");
        let hash = sandbox_runtime::sha256_hex(
            format!(
                "{previous}{}",
                sandbox_runtime::report::canonical_json(&body)
            )
            .as_bytes(),
        );
        event["hash"] = Value::from(hash.clone());
        previous = hash;
    }
}

#[test]
fn a_report_edited_after_the_run_is_detected_however_it_was_edited() {
    let case = Case::new();
    let run = case.run(
        &Plugin::new()
            .read(b"/data/hello.txt")
            .read(b"/data/../outside/secret.txt")
            .read(b"/data/secret/key.txt")
            .write(b"/out/a.log", b"a", 0)
            .wat(),
    );
    assert_eq!(run.report["events"].as_array().unwrap().len(), 5);
    type Edit = Box<dyn Fn(&mut Value)>;
    let edits: Vec<(&str, &str, Edit)> = vec![
        (
            "deny turned into allow",
            "event 1",
            Box::new(|r| r["events"][1]["decision"] = "allow".into()),
        ),
        (
            "reason changed",
            "event 2",
            Box::new(|r| r["events"][2]["reason_code"] = "ALLOWED".into()),
        ),
        (
            "event deleted",
            "event 1",
            Box::new(|r| {
                r["events"].as_array_mut().unwrap().remove(1);
            }),
        ),
        (
            "events swapped",
            "event 1",
            Box::new(|r| r["events"].as_array_mut().unwrap().swap(1, 2)),
        ),
        (
            "field added to an event",
            "event 0",
            Box::new(|r| r["events"][0]["note"] = "benign".into()),
        ),
        (
            "policy digest replaced",
            "digest",
            Box::new(|r| r["policy"]["sha256"] = "00".repeat(32).into()),
        ),
        (
            "plugin digest replaced",
            "digest",
            Box::new(|r| r["plugin"]["sha256"] = "00".repeat(32).into()),
        ),
        (
            "outcome changed",
            "digest",
            Box::new(|r| r["outcome"]["status"] = "trapped".into()),
        ),
        (
            "usage lowered",
            "digest",
            Box::new(|r| r["usage"]["fs_read_bytes"] = 0.into()),
        ),
        (
            "summary changed",
            "digest",
            Box::new(|r| r["summary"]["denied"] = 0.into()),
        ),
        (
            "digest removed",
            "digest",
            Box::new(|r| {
                r.as_object_mut().unwrap().remove("digest");
            }),
        ),
        // An attacker who knows the algorithm rechains the events, but the digest still
        // covers them.
        (
            "denies dropped and the chain recomputed",
            "digest",
            Box::new(|r| {
                r["events"]
                    .as_array_mut()
                    .unwrap()
                    .retain(|e| e["decision"] == "allow");
                rechain(r);
            }),
        ),
    ];
    for (what, named, edit) in edits {
        let mut report = run.report.clone();
        edit(&mut report);
        case.write("report.json", report.to_string().as_bytes());
        let out = case.cli(&["report", "verify", "--report-file", "report.json"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{what}: not detected");
        assert!(stderr.contains(named), "{what}: {stderr}");
        let out = case.cli(&[
            "explain",
            "--report-file",
            "report.json",
            "--event-index",
            "0",
        ]);
        assert_eq!(out.status.code(), Some(1), "{what}: explain did not notice");
    }
    // The report as written verifies.
    case.write("report.json", run.report_text.as_bytes());
    let out = case.cli(&["report", "verify", "--report-file", "report.json"]);
    assert_eq!(out.status.code(), Some(0));
}

/// The limit of a keyless report, stated as a test: someone who can rewrite the file and
/// recomputes every hash and the digest is not detected. Signing is a later step; until then
/// the report must be kept where the plugin cannot write (docs/threat-model.md).
#[test]
fn a_report_rewritten_with_every_hash_recomputed_verifies_because_reports_are_keyless() {
    let case = Case::new();
    let run = case.run(&Plugin::new().read(b"/data/../outside/secret.txt").wat());
    let mut report = run.report.clone();
    report["events"][0]["decision"] = "allow".into();
    rechain(&mut report);
    let mut body = report.clone();
    body.as_object_mut().unwrap().remove("digest");
    report["digest"] =
        sandbox_runtime::sha256_hex(sandbox_runtime::report::canonical_json(&body).as_bytes())
            .into();
    case.write("report.json", report.to_string().as_bytes());
    let out = case.cli(&["report", "verify", "--report-file", "report.json"]);
    assert_eq!(out.status.code(), Some(0));
}
