//! WASI conformance through the CLI: `examples/guests/tools/src/bin/conformance.rs`, ordinary
//! Rust `std` code covering files, directories, links, seeking, rights, times and errors, run
//! under an allow-all policy with its whole expected output asserted (issue 14).

use super::guest;
use super::Sandbox;

const ALLOW_ALL: &str = r#"version: 1
name: conformance
mode: enforce
budgets: { fuel: 500_000_000, timeout_ms: 10000, memory_bytes: 64MiB }
filesystem:
  mounts:
    - { guest: /out, host: ./fixtures/out, mode: rw }
  rules:
    - { id: all, effect: allow, ops: [read, write, create, delete, list, rename, symlink], paths: ["/out/**"] }
stdio: { stdout_bytes: 64KiB, stderr_bytes: 16KiB }
limits: { open_files: 16 }
"#;

#[test]
fn the_conformance_program_passes_every_check_under_an_allow_all_policy() {
    let sb = Sandbox::new();
    sb.write("policies/conformance.yaml", ALLOW_ALL);
    let (code, report, _) = sb.run(
        "policies/conformance.yaml",
        &guest("conformance"),
        &["--", "/out"],
    );
    assert_eq!(code, 0, "{report}");
    assert_eq!(
        report["stdio"]["stdout"].as_str().unwrap(),
        "files: ok\nseeking: ok\ndirectories: ok\nlinks: ok\nrights: ok\ntimes: ok\nerrors: ok\n\
         cleanup: ok\n0 of 8 checks failed\n",
        "{report}"
    );
    assert!(report["outcome"].get("exit_code").is_none() || report["outcome"]["exit_code"] == 0);
    assert_eq!(report["summary"]["denied"], 0, "{report}");
    // Every kind of decided operation the program makes shows up as an allowed event.
    let capabilities: std::collections::BTreeSet<&str> = report["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["capability"].as_str().unwrap())
        .collect();
    for cap in [
        "fs.read",
        "fs.write",
        "fs.create",
        "fs.delete",
        "fs.list",
        "fs.rename",
        "fs.symlink",
    ] {
        assert!(
            capabilities.contains(cap),
            "{cap} missing from {capabilities:?}"
        );
    }
    let left: Vec<_> = std::fs::read_dir(sb.path("policies/fixtures/out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != ".gitkeep" && n != "placeholder" && !n.starts_with('.'))
        .collect();
    assert!(
        !left
            .iter()
            .any(|n| ["conf.txt", "hard.txt", "soft", "tree", "emptydir"].contains(&n.as_str())),
        "{left:?}"
    );
}
