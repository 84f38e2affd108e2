//! Hostile files and the host process: the module is compiled on the host, the cache folder is
//! read back as code, and the CLI reads plugins, policies, inputs, reports and the policy a
//! report names, any of which may come from someone else. Each is bounded, checked, or refused
//! with one clear line.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::harness::*;

/// Runs the CLI in the case's folder with `XDG_CACHE_HOME` given, killing it if it has not
/// ended within `limit`: a hang is a failure, not a stuck suite.
fn cli_within(case: &Case, cache: Option<&Path>, args: &[&str], limit: Duration) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sandbox-cli"));
    command
        .args(args)
        .current_dir(case.root())
        .env_remove("RUST_BACKTRACE")
        .env(
            "XDG_CACHE_HOME",
            cache.map_or_else(
                || std::env::temp_dir().join("sandbox-adversarial-cache"),
                Path::to_path_buf,
            ),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            child.kill().unwrap();
            let _ = child.wait();
            panic!(
                "`sandbox-cli {}` still running after {limit:?}",
                args.join(" ")
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_end(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_end(&mut stderr)
        .unwrap();
    Output {
        status: child.wait().unwrap(),
        stdout,
        stderr,
    }
}

fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Exit 1 with exactly one line on stderr, which contains every one of `needles`.
fn assert_one_line_error(out: &Output, needles: &[&str]) {
    let stderr = stderr_of(out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "not one line: {stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    for needle in needles {
        assert!(stderr.contains(needle), "`{needle}` not in: {stderr}");
    }
}

fn mkfifo(path: &Path) {
    let made = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(made.success());
}

const GENEROUS: &str = "version: 1\nname: bombs\nlimits: { module_bytes: 64MiB }\nbudgets: { fuel: 1_000_000, timeout_ms: 5000, memory_bytes: 1MiB }\n";

#[test]
fn compile_bombs_over_a_static_limit_are_refused_before_compiling_naming_the_limit() {
    let case = Case::new();
    case.policy(GENEROUS);
    let start = "(func (export \"_start\"))";
    let bombs = [
        (
            "locals_per_function",
            format!("(module {start} (func {}))", "(local i64)".repeat(10_001)),
        ),
        (
            "nesting_depth",
            format!(
                "(module {start} (func {}{}))",
                "(block ".repeat(1_000),
                ")".repeat(1_000)
            ),
        ),
        (
            "functions",
            format!("(module {start} {})", "(func)".repeat(100_000)),
        ),
        (
            "element_entries",
            format!(
                "(module {start} (func $f) (elem func {}))",
                "$f ".repeat(100_001)
            ),
        ),
        (
            "data_segments",
            format!(
                "(module {start} (memory 1) {})",
                "(data \"\")".repeat(10_001)
            ),
        ),
    ];
    for (limit, wat) in bombs {
        case.write("bomb.wat", wat.as_bytes());
        let started = Instant::now();
        let out = cli_within(
            &case,
            None,
            &[
                "run",
                "--no-cache",
                "--policy",
                "policy.yaml",
                "--plugin",
                "bomb.wat",
            ],
            Duration::from_secs(60),
        );
        assert_one_line_error(&out, &[&format!("(limit `{limit}`)"), "`bomb.wat`"]);
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{limit}: refused only after {:?}",
            started.elapsed()
        );
    }
    // Just under the limits, the same shapes still load and run.
    let fine = format!(
        "(module {start} (func {}) (func {}{}))",
        "(local i64)".repeat(1_000),
        "(block ".repeat(100),
        ")".repeat(100)
    );
    case.write("fine.wat", fine.as_bytes());
    let out = cli_within(
        &case,
        None,
        &[
            "run",
            "--no-cache",
            "--policy",
            "policy.yaml",
            "--plugin",
            "fine.wat",
        ],
        Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
}

/// The cache entries of a folder, by name.
fn entries(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .collect();
    names.sort();
    names
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Another local user who can write to the cache folder forges an entry: the compiled code of
/// their own plugin under the name and header of the victim's, its digest recomputed (the
/// digest has no key). The victim's run must not run it.
#[test]
fn a_forged_entry_in_a_cache_folder_others_can_write_never_runs() {
    use sha2::{Digest, Sha256};
    let case = Case::new();
    case.policy(GENEROUS);
    let cache = case.root().join("xdg");
    let victim = r#"(module (import "sandbox" "output_write" (func $w (param i32 i32) (result i32)))
        (memory (export "memory") 1) (data (i32.const 0) "victim")
        (func (export "_start") (drop (call $w (i32.const 0) (i32.const 6)))))"#;
    let evil = victim.replace("\"victim\"", "\"EVIL!!\"");
    case.write("victim.wat", victim.as_bytes());
    case.write("evil.wat", evil.as_bytes());
    let run = |plugin: &str| {
        cli_within(
            &case,
            Some(&cache),
            &[
                "run",
                "--policy",
                "policy.yaml",
                "--plugin",
                plugin,
                "--stdout",
                "out.bin",
            ],
            Duration::from_secs(60),
        )
    };
    let out = run("victim.wat");
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let dir = cache.join("sandbox-cli");
    let [victim_entry] = entries(&dir).try_into().unwrap();
    run("evil.wat");
    let evil_entry = entries(&dir)
        .into_iter()
        .find(|p| *p != victim_entry)
        .unwrap();
    let good = std::fs::read(&victim_entry).unwrap();
    let bad = std::fs::read(&evil_entry).unwrap();
    // magic (16) | digest of the rest (32) | module SHA-256 (32) | engine (32) | code
    let mut body = good[48..80].to_vec();
    body.extend_from_slice(&bad[80..]);
    let mut forged = good[..16].to_vec();
    forged.extend_from_slice(&Sha256::digest(&body));
    forged.extend_from_slice(&body);
    std::fs::write(&victim_entry, &forged).unwrap();

    // The folder writable by others: the forged entry is not read, one warning, compiled.
    set_mode(&dir, 0o777);
    let out = run("victim.wat");
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(std::fs::read(case.path("out.bin")).unwrap(), b"victim");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("warning: the module cache"), "{stderr}");
    assert_eq!(
        std::fs::read(&victim_entry).unwrap(),
        forged,
        "nothing stored there"
    );

    // The folder is the user's again, but the entry is writable by others: not read either,
    // and replaced by the user's own compiled module.
    set_mode(&dir, 0o700);
    set_mode(&victim_entry, 0o666);
    let out = run("victim.wat");
    assert_eq!(std::fs::read(case.path("out.bin")).unwrap(), b"victim");
    assert!(stderr_of(&out).starts_with("warning: the module cache"));
    assert_eq!(std::fs::read(&victim_entry).unwrap(), good);

    // Owned by another user (only root can hand a file to one).
    if rustix_is_root() {
        std::fs::write(&victim_entry, &forged).unwrap();
        set_mode(&victim_entry, 0o600);
        std::os::unix::fs::chown(&victim_entry, Some(65534), Some(65534)).unwrap();
        let out = run("victim.wat");
        assert_eq!(std::fs::read(case.path("out.bin")).unwrap(), b"victim");
        assert!(stderr_of(&out).starts_with("warning: the module cache"));
    }
    // A trusted entry is used without a word.
    let out = run("victim.wat");
    assert_eq!(stderr_of(&out), "");
}

fn rustix_is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

#[test]
fn fifos_devices_and_huge_sparse_files_are_refused_at_once_not_read() {
    let case = Case::new();
    case.policy(GENEROUS);
    case.write("ok.wat", b"(module (func (export \"_start\")))");
    mkfifo(&case.path("fifo"));
    let sparse = std::fs::File::create(case.path("sparse.wasm")).unwrap();
    sparse.set_len(8 << 30).unwrap();
    let quick = Duration::from_secs(20);
    let run = |policy: &str, plugin: &str, input: &str| {
        cli_within(
            &case,
            None,
            &[
                "run",
                "--no-cache",
                "--policy",
                policy,
                "--plugin",
                plugin,
                "--input",
                input,
            ],
            quick,
        )
    };
    case.write("in.txt", b"input");
    assert_one_line_error(&run("policy.yaml", "fifo", "in.txt"), &["`fifo`", "FIFO"]);
    assert_one_line_error(
        &run("policy.yaml", "/dev/zero", "in.txt"),
        &["`/dev/zero`", "not a regular file"],
    );
    assert_one_line_error(
        &run("policy.yaml", "sparse.wasm", "in.txt"),
        &["`sparse.wasm`", "`limits.module_bytes`"],
    );
    assert_one_line_error(&run("fifo", "ok.wat", "in.txt"), &["policy `fifo`", "FIFO"]);
    assert_one_line_error(
        &run("policy.yaml", "ok.wat", "fifo"),
        &["input `fifo`", "FIFO"],
    );
    assert_one_line_error(
        &run("policy.yaml", "ok.wat", "/dev/zero"),
        &["input `/dev/zero`", "not a regular file"],
    );
    for args in [
        &["report", "verify", "--report-file", "fifo"][..],
        &["explain", "--report-file", "fifo", "--event-index", "0"],
        &["explain", "--event-json", "/dev/zero"],
        &[
            "policy",
            "replay",
            "--report-file",
            "fifo",
            "--policy",
            "policy.yaml",
        ],
        &["policy", "lint", "--policy", "fifo"],
    ] {
        let out = cli_within(&case, None, args, quick);
        assert_one_line_error(&out, &["not a regular file"]);
    }
}

#[test]
fn a_policy_path_a_report_names_that_is_a_fifo_is_a_note_not_a_hang() {
    let case = Case::new();
    let run = case.run(&Plugin::new().read(b"/etc/passwd").wat());
    assert_eq!(run.code, 0);
    std::fs::remove_file(case.path("policy.yaml")).unwrap();
    mkfifo(&case.path("policy.yaml"));
    let out = cli_within(
        &case,
        None,
        &[
            "explain",
            "--report-file",
            "report.json",
            "--event-index",
            "0",
        ],
        Duration::from_secs(20),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert!(
        text.contains("`policy.yaml` cannot be used") && text.contains("FIFO"),
        "{text}"
    );
}

/// Inserts `insert` right before the first occurrence of `before` in `text`.
fn insert_before(text: &str, before: &str, insert: &str) -> String {
    let at = text.find(before).unwrap();
    format!("{}{insert}{}", &text[..at], &text[at..])
}

#[test]
fn a_report_with_a_duplicate_key_is_refused_by_every_command_that_reads_it() {
    let case = Case::new();
    let run = case.run(&Plugin::new().read(b"/etc/passwd").wat());
    assert_eq!(run.triples()[0].0, "deny");
    let forgeries = [
        // A first-wins reader sees the event allowed; serde merged it away before hashing.
        insert_before(&run.report_text, "\"decision\"", "\"decision\":\"allow\","),
        // A first-wins reader sees a different outcome.
        insert_before(
            &run.report_text,
            "\"outcome\"",
            "\"outcome\":{\"status\":\"completed\",\"message\":\"forged\"},",
        ),
        // The same key spelled with an escape is the same key.
        insert_before(&run.report_text, "\"digest\"", "\"dig\\u0065st\":\"0\","),
    ];
    for forged in &forgeries {
        case.write("forged.json", forged.as_bytes());
        for args in [
            &["report", "verify", "--report-file", "forged.json"][..],
            &[
                "explain",
                "--report-file",
                "forged.json",
                "--event-index",
                "0",
            ],
            &[
                "policy",
                "replay",
                "--report-file",
                "forged.json",
                "--policy",
                "policy.yaml",
            ],
        ] {
            let out = case.cli(args);
            assert_one_line_error(
                &out,
                &["`forged.json`", "can be read two ways", "duplicate key"],
            );
        }
    }
    // Trailing bytes after the report are a second document: refused too.
    case.write("forged.json", format!("{}{{}}", run.report_text).as_bytes());
    let out = case.cli(&["report", "verify", "--report-file", "forged.json"]);
    assert_one_line_error(&out, &["trailing characters"]);
    // A lone event with a duplicate key is refused by `explain --event-json`.
    let event = serde_json::to_string(&run.events()[0]).unwrap();
    case.write(
        "event.json",
        insert_before(&event, "\"rule_id\"", "\"rule_id\":\"forged\",").as_bytes(),
    );
    let out = case.cli(&["explain", "--event-json", "event.json"]);
    assert_one_line_error(&out, &["`event.json`", "duplicate key `rule_id`"]);
}

#[test]
fn replay_and_explain_escape_every_field_a_plugin_or_a_forged_event_chose() {
    let case = Case::new();
    let forged_line = "\n  event 9: `fs.read` `/data/secret/key.txt`: now allowed: deny by `no-secrets` (FS_PATH_NOT_ALLOWED) -> allow by `read-data` (ALLOWED)";
    let path = format!("/data/secret/x{forged_line}\u{2028}\u{202e}");
    let run = case.run(&Plugin::new().read(path.as_bytes()).wat());
    assert_eq!(run.triples()[0].2, "FS_PATH_NOT_ALLOWED");
    // Without the deny rule, the request is now allowed: exactly one changed line.
    let deny_rule =
        "    - { id: no-secrets, effect: deny, ops: [read], paths: [\"/data/secret/**\"] }\n";
    assert!(FS_POLICY.contains(deny_rule));
    case.write("wide.yaml", FS_POLICY.replace(deny_rule, "").as_bytes());
    let out = case.cli(&[
        "policy",
        "replay",
        "--report-file",
        "report.json",
        "--policy",
        "wide.yaml",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert_eq!(
        text.lines().filter(|l| l.starts_with("  event ")).count(),
        1,
        "{text}"
    );
    assert!(text.contains("\\n  event 9:"), "{text}");
    for raw in ['\u{2028}', '\u{202e}'] {
        assert!(!text.contains(raw), "raw {raw:?} in replay output:\n{text}");
    }

    // A forged lone event: every field explain prints stays on its own line.
    let event = serde_json::json!({
        "seq": 0, "decision": "deny", "enforced": true,
        "capability": "fs.read\n  rule:    forged-capability",
        "rule_id": "x\n  reason:  ALLOWED — forged\u{2029}",
        "reason_code": "FS_PATH_NOT_ALLOWED",
        "context": { "key\n  note:    forged": "v\u{85}\u{1b}[2J" },
        "hash": ""
    });
    case.write("event.json", event.to_string().as_bytes());
    let out = case.cli(&["explain", "--event-json", "event.json"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let starts = |prefix: &str| text.lines().filter(|l| l.starts_with(prefix)).count();
    assert_eq!(starts("  rule:"), 1, "{text}");
    assert_eq!(starts("  reason:"), 1, "{text}");
    assert_eq!(starts("  note:"), 1, "{text}");
    for raw in ['\u{2029}', '\u{85}', '\u{1b}'] {
        assert!(
            !text.contains(raw),
            "raw {raw:?} in explain output:\n{text}"
        );
    }
}

#[test]
fn load_errors_quote_imports_and_wat_mistakes_on_one_capped_line() {
    let case = Case::new();
    case.policy(GENEROUS);
    let evil = "(module (import \"evil\\0aerror: forged second line\\1b[2J\\e2\\80\\a8\" \"f\" (func)) (func (export \"_start\")))";
    case.write("imports.wat", evil.as_bytes());
    let out = case.cli(&[
        "run",
        "--no-cache",
        "--policy",
        "policy.yaml",
        "--plugin",
        "imports.wat",
    ]);
    assert_one_line_error(
        &out,
        &[
            "imports what the sandbox does not provide",
            "evil\\nerror: forged",
        ],
    );
    assert!(!stderr_of(&out).contains('\u{2028}'));

    // A malformed WAT file with one huge line is not echoed back.
    let huge = format!(
        "(module (func (export \"_start\") {}",
        "(nop) ".repeat(300_000)
    );
    case.write("huge.wat", format!("{huge} oops)").as_bytes());
    let out = case.cli(&[
        "run",
        "--no-cache",
        "--policy",
        "policy.yaml",
        "--plugin",
        "huge.wat",
    ]);
    assert_one_line_error(&out, &["`huge.wat` is not a valid WebAssembly module"]);
    assert!(
        out.stderr.len() < 2048,
        "{} bytes on stderr",
        out.stderr.len()
    );
}
