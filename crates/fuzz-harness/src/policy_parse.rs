//! `policy_parse`: any bytes are an error or a policy, never a panic; `policy lint` agrees
//! with the parser; a parsed policy decides requests; every output format renders.

use std::path::Path;

use sandbox_policy::lint::{lint_policy_text, render_json, render_sarif, render_text};
use sandbox_policy::{parse_policy, FsAccess, FsRequest, ReasonCode, Request, Usage};
use serde_json::Value;

pub fn policy_parse(data: &[u8]) {
    // Lossy, so byte strings that are not UTF-8 still reach the parser as text with U+FFFD.
    let text = String::from_utf8_lossy(data);
    let base = Path::new("/nonexistent-fuzz-base");
    let parsed = parse_policy(&text, base);
    let lint = lint_policy_text(&text, &base.join("policy.yaml"));
    match &parsed {
        Ok(policy) => {
            assert!(
                !lint.has_errors(),
                "the parser accepted a policy that lint reports errors for: {:?}",
                lint.findings
            );
            for mount in &policy.filesystem.mounts {
                assert!(
                    mount.guest.starts_with('/') && !mount.guest.contains("/.."),
                    "mount guest path `{}` is not normalised",
                    mount.guest
                );
            }
            for (path, op) in [
                ("/", FsAccess::Read),
                ("/data/../etc/passwd", FsAccess::Read),
                ("/data/x\0y", FsAccess::Write),
                ("", FsAccess::List),
            ] {
                let request = Request::Fs(FsRequest {
                    op,
                    path: path.into(),
                    not_utf8: false,
                    resolved: None,
                    bytes: 1,
                });
                let decision = policy.decide(&Usage::default(), &request);
                assert!(!policy.rule_id(decision.rule).is_empty());
                if path.is_empty() || path.contains('\0') {
                    assert_eq!(decision.reason, ReasonCode::FsPathInvalid);
                    assert!(!decision.permits());
                }
            }
        }
        Err(errors) => {
            assert!(!errors.errors.is_empty(), "an error without a message");
            assert!(
                lint.has_errors(),
                "the parser refused the policy ({}) but lint found no error",
                errors.errors[0].message
            );
        }
    }
    let _ = render_text(&lint, &text, "policy.yaml");
    let json: Value = serde_json::from_str(&render_json(&lint, "policy.yaml", false))
        .expect("lint JSON output is JSON");
    assert!(json.is_object());
    let sarif: Value = serde_json::from_str(&render_sarif(&lint, "policy.yaml", false))
        .expect("lint SARIF output is JSON");
    assert_start_lines(&sarif);
}

/// SARIF consumers reject a region without `startLine` >= 1.
fn assert_start_lines(value: &Value) {
    match value {
        Value::Object(map) => {
            if let Some(region) = map.get("region") {
                let line = region.get("startLine").and_then(Value::as_u64);
                assert!(line.is_some_and(|l| l >= 1), "SARIF region {region}");
            }
            map.values().for_each(assert_start_lines);
        }
        Value::Array(items) => items.iter().for_each(assert_start_lines),
        _ => {}
    }
}
