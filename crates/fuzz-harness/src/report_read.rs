//! `report_read`: any bytes given to the report reader (`report verify`, `explain`, `policy
//! replay`) are a report or one clear error, never a panic. A report that verifies has one
//! meaning: serde's own last-wins reading of the same bytes gives the same report, so no
//! duplicate key or trailing text slipped through; its events replay under a policy and read
//! back on their own.

use std::path::Path;

use sandbox_policy::replay::replay;
use sandbox_runtime::report::{read_event, verify_report, Report};

/// The policy the verified events are decided again under: a mount, rules of each effect,
/// quotas and a network rule, so replay takes every path.
const REPLAY_POLICY: &str = r#"version: 1
name: fuzz-replay
filesystem:
  mounts: [{ guest: /data, host: /nonexistent-fuzz/data, mode: ro }, { guest: /out, host: /nonexistent-fuzz/out, mode: rw }]
  rules:
    - { id: read-data, effect: allow, ops: [read, list], paths: ["/data/**"] }
    - { id: no-secrets, effect: deny, ops: [read], paths: ["/data/secret/**"] }
    - { id: write-out, effect: allow, ops: [write, create], paths: ["/out/*.log"] }
  quotas: { read_bytes: 1KiB, write_bytes: 1KiB }
network:
  rules: [{ id: lan, effect: allow, hosts: ["echo.test"], ports: [7000] }]
  quotas: { connections: 1, egress_bytes: 1KiB }
"#;

pub fn report_read(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let event = read_event(&text);
    match verify_report(&text) {
        Ok(report) => {
            let loose: Report = serde_json::from_str(&text)
                .expect("a report that verifies is read by serde_json as well");
            assert_eq!(loose, report, "a verified report reads two ways");
            let policy = sandbox_policy::parse_policy(REPLAY_POLICY, Path::new("/"))
                .expect("the replay policy parses");
            // The report's events are the type replay reads.
            let events = &report.events;
            let replayed = replay(&policy, events);
            assert!(replayed.events.len() + replayed.not_replayable.len() <= events.len());
            for e in &report.events {
                let alone = serde_json::to_string(e).expect("an event writes as JSON");
                assert_eq!(
                    read_event(&alone).as_ref(),
                    Ok(e),
                    "an event reads back as written"
                );
            }
        }
        Err(e) => {
            let message = e.to_string();
            assert!(
                !message.is_empty() && !message.contains('\n'),
                "{message:?}"
            );
        }
    }
    if let Err(e) = event {
        assert!(!e.to_string().contains('\n'), "{e}");
    }
}
