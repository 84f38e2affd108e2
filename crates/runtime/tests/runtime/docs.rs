//! Keeps `docs/host-abi.md` and `docs/reason-codes.md` honest: every reason code with its meaning
//! and remedy, every host ABI function with an import type that really instantiates, every error
//! code with its exact value, the ABI's constants, and every built-in rule id that `decide` and
//! the runtime emit.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use sandbox_policy::{
    parse_policy, FsAccess, FsRequest, NetAccess, NetRequest, Policy, ReasonCode, Request, Usage,
};
use sandbox_runtime::{
    wasi_errno, Allocation, Report, RunOutput, Sandbox, StartError, Status, ABI_FUNCTIONS,
    ABI_MODULE, ERR_BAD_HANDLE, ERR_DENIED, ERR_FAULT, ERR_INVALID, ERR_IO, ERR_NOT_FOUND,
    ERR_QUOTA, ERR_READ_ONLY, ERR_WRONG_KIND, MAX_HOST_BYTES, MAX_IO_BYTES, MAX_OPEN_CONNECTIONS,
    WASI_FUNCTIONS, WASI_MODULE, WRITE_APPEND,
};

/// The error codes the crate exports, to check the source scan below against.
const EXPORTED_ERRORS: &[(&str, i32)] = &[
    ("ERR_DENIED", ERR_DENIED),
    ("ERR_QUOTA", ERR_QUOTA),
    ("ERR_INVALID", ERR_INVALID),
    ("ERR_FAULT", ERR_FAULT),
    ("ERR_NOT_FOUND", ERR_NOT_FOUND),
    ("ERR_IO", ERR_IO),
    ("ERR_BAD_HANDLE", ERR_BAD_HANDLE),
    ("ERR_READ_ONLY", ERR_READ_ONLY),
    ("ERR_WRONG_KIND", ERR_WRONG_KIND),
];

fn doc(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// `pub const NAME: TYPE = VALUE;` declarations of the native ABI (`src/abi/sandbox.rs`, and
/// `src/guest.rs` for the copy and fuel limits) whose name starts with `prefix`, so that a
/// constant added there without being exported is still checked against the docs.
fn abi_constants(prefix: &str) -> BTreeMap<String, String> {
    let mut source = String::new();
    for file in ["src/abi/sandbox.rs", "src/guest.rs"] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
        source += &std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    }
    source
        .lines()
        .filter_map(|line| {
            let rest = line.trim().strip_prefix("pub const ")?;
            let (name, rest) = rest.split_once(':')?;
            let (_, value) = rest.split_once('=')?;
            let value = value.trim().strip_suffix(';')?.trim();
            name.starts_with(prefix)
                .then(|| (name.trim().to_owned(), value.to_owned()))
        })
        .collect()
}

fn cells(line: &str) -> Vec<String> {
    let inner = line.trim().trim_start_matches('|').trim_end_matches('|');
    inner.split('|').map(|c| c.trim().to_owned()).collect()
}

/// The body rows of the markdown table whose header's first cell is `first_header`.
fn table(text: &str, first_header: &str) -> Vec<Vec<String>> {
    let mut lines = text
        .lines()
        .skip_while(|l| !(l.starts_with('|') && cells(l)[0] == first_header));
    assert!(
        lines.next().is_some(),
        "no table with first column `{first_header}`"
    );
    lines
        .take_while(|l| l.starts_with('|'))
        .filter(|l| !l.starts_with("|---"))
        .map(cells)
        .collect()
}

/// `x` for a cell that is exactly `` `x` ``.
fn code(cell: &str) -> Option<&str> {
    cell.strip_prefix('`')?
        .strip_suffix('`')
        .filter(|c| !c.contains('`'))
}

/// The parameter and result types of a WAT function type, ignoring `$name`s and grouping.
fn wat_type(signature: &str) -> (Vec<String>, Vec<String>) {
    let (mut params, mut results) = (Vec::new(), Vec::new());
    let mut into_results = false;
    for word in signature.replace(['(', ')'], " ").split_whitespace() {
        match word {
            "func" => {}
            "param" => into_results = false,
            "result" => into_results = true,
            w if w.starts_with('$') => {}
            w if into_results => results.push(w.to_owned()),
            w => params.push(w.to_owned()),
        }
    }
    (params, results)
}

fn test_policy(yaml: &str) -> Policy {
    parse_policy(yaml, Path::new("."))
        .unwrap_or_else(|e| panic!("test policy does not parse: {e:?}"))
}

/// Loads and calls a module once, as the CLI does.
fn run(policy: &str, wat: &[u8]) -> Result<RunOutput, StartError> {
    Sandbox::builder(Arc::new(test_policy(policy)))
        .policy_source("docs-test.yaml", "")
        .allocation(Allocation::OnDemand)
        .build()?
        .load("docs-test.wat", wat, "_start")
        .map(|plugin| plugin.call(b""))
}

fn run_wat(policy: &str, wat: &str) -> Report {
    run(policy, wat.as_bytes())
        .unwrap_or_else(|e| panic!("run did not start: {e}\n{wat}"))
        .report
}

#[test]
fn every_reason_code_is_documented_with_its_meaning_and_remedy() {
    let text = doc("reason-codes.md");
    assert!(
        text.contains("**Codes are stable.**"),
        "reason-codes.md must say that codes are stable"
    );
    let mut rows = BTreeMap::new();
    for row in table(&text, "code") {
        let name =
            code(&row[0]).unwrap_or_else(|| panic!("reason code cell not in backticks: {row:?}"));
        assert!(
            ReasonCode::parse(name).is_some(),
            "reason-codes.md documents `{name}`, which the code does not define"
        );
        assert!(
            rows.insert(name.to_owned(), row.clone()).is_none(),
            "`{name}` is documented twice"
        );
    }
    for code in ReasonCode::ALL {
        let name = code.as_str();
        assert!(
            text.contains(&format!("`{name}`")),
            "reason-codes.md does not mention `{name}`"
        );
        let row = rows
            .get(name)
            .unwrap_or_else(|| panic!("reason-codes.md has no table row for `{name}`"));
        assert_eq!(
            row[1],
            code.meaning(),
            "meaning of `{name}` in reason-codes.md differs from reason.rs"
        );
        assert_eq!(
            row[2],
            code.remedy(),
            "remedy of `{name}` in reason-codes.md differs from reason.rs"
        );
    }
}

#[test]
fn every_abi_function_has_a_table_row_and_a_section() {
    let text = doc("host-abi.md");
    assert!(
        text.contains("sandbox host ABI v1"),
        "host-abi.md must name its version"
    );
    assert!(
        text.contains(&format!("`{ABI_MODULE}`")),
        "host-abi.md must name the import module"
    );
    let rows = table(&text, "function");
    let documented: BTreeSet<&str> = rows
        .iter()
        .map(|r| code(&r[0]).unwrap_or_else(|| panic!("function cell not in backticks: {r:?}")))
        .collect();
    let provided: BTreeSet<&str> = ABI_FUNCTIONS.iter().copied().collect();
    assert_eq!(
        documented, provided,
        "the function table of host-abi.md and `ABI_FUNCTIONS` differ"
    );
    assert_eq!(
        rows.len(),
        provided.len(),
        "a function is listed twice in host-abi.md"
    );

    for row in &rows {
        let name = code(&row[0]).unwrap();
        let table_type =
            code(&row[1]).unwrap_or_else(|| panic!("type of `{name}` not in backticks"));
        let heading = format!("### `{name}`");
        let mut section = text.lines().skip_while(|l| l.trim() != heading);
        assert!(
            section.next().is_some(),
            "host-abi.md has no `{heading}` section"
        );
        let signature = section
            .take_while(|l| !l.starts_with('#'))
            .find_map(|l| code(l.trim()).filter(|c| c.starts_with("(func")))
            .unwrap_or_else(|| panic!("the `{name}` section shows no signature"));
        assert_eq!(
            wat_type(signature),
            wat_type(table_type),
            "`{name}`: section and table disagree"
        );
    }
}

/// A module importing every function with the given types.
fn module_importing(types: &[(String, String)]) -> String {
    let imports: String = types
        .iter()
        .map(|(name, ty)| format!("  (import \"{ABI_MODULE}\" \"{name}\" {ty})\n"))
        .collect();
    format!("(module\n{imports}  (memory (export \"memory\") 1)\n  (func (export \"_start\")))\n")
}

#[test]
fn documented_import_types_instantiate() {
    let text = doc("host-abi.md");
    let types: Vec<(String, String)> = table(&text, "function")
        .iter()
        .map(|r| {
            (
                code(&r[0]).unwrap().to_owned(),
                code(&r[1]).unwrap().to_owned(),
            )
        })
        .collect();
    let report = run_wat("version: 1\n", &module_importing(&types));
    assert_eq!(
        report.outcome.status,
        Status::Completed,
        "{}",
        report.outcome.message
    );

    // The check has teeth: one wrong type is refused at load.
    let mut wrong = types.clone();
    wrong[0].1 = "(func (param i64))".into();
    let started = run("version: 1\n", module_importing(&wrong).as_bytes());
    assert!(
        matches!(started, Err(StartError::BadImport { .. })),
        "a wrong import type was accepted"
    );
}

#[test]
fn every_error_code_is_documented_with_its_exact_value() {
    let declared: BTreeMap<String, i32> = abi_constants("ERR_")
        .into_iter()
        .map(|(name, value)| {
            let value = value
                .parse()
                .unwrap_or_else(|_| panic!("`{name}` = {value} is not a number"));
            (name, value)
        })
        .collect();
    for (name, value) in EXPORTED_ERRORS {
        assert_eq!(
            declared.get(*name),
            Some(value),
            "scanning abi.rs misread `{name}`"
        );
    }

    let text = doc("host-abi.md");
    let mut documented = BTreeMap::new();
    for row in table(&text, "name") {
        let name = code(&row[0]).unwrap_or_else(|| panic!("error name not in backticks: {row:?}"));
        let value: i32 = row[1]
            .parse()
            .unwrap_or_else(|_| panic!("value of `{name}` is not a number: {:?}", row[1]));
        assert!(
            documented.insert(name.to_owned(), value).is_none(),
            "`{name}` is documented twice"
        );
    }
    assert_eq!(
        documented, declared,
        "the error table of host-abi.md and the `ERR_*` constants of abi.rs differ"
    );

    // Everywhere either page writes "`ERR_X` (-N)", N is the value, and every `ERR_X` exists.
    for (page, text) in [
        ("host-abi.md", text.clone()),
        ("reason-codes.md", doc("reason-codes.md")),
    ] {
        for (at, _) in text.match_indices("`ERR_") {
            let rest = &text[at + 1..];
            let name = &rest[..rest.find('`').unwrap()];
            let value = declared
                .get(name)
                .unwrap_or_else(|| panic!("{page} names `{name}`, which does not exist"));
            if let Some(paren) = rest[name.len() + 1..].strip_prefix(" (") {
                if let Some(number) = paren.split(')').next().and_then(|n| n.parse::<i32>().ok()) {
                    assert_eq!(number, *value, "{page} gives `{name}` the value {number}");
                }
            }
        }
    }
}

#[test]
fn abi_constants_are_documented_with_their_values() {
    let text = doc("host-abi.md");
    for needle in [
        format!("`WRITE_APPEND` = `{WRITE_APPEND}`"),
        format!("`MAX_IO_BYTES` = 16 MiB = `{MAX_IO_BYTES}` bytes"),
        format!("`MAX_HOST_BYTES` = `{MAX_HOST_BYTES}`"),
        format!("`MAX_OPEN_CONNECTIONS` = `{MAX_OPEN_CONNECTIONS}`"),
    ] {
        assert!(text.contains(&needle), "host-abi.md does not say {needle}");
    }
    assert_eq!(MAX_IO_BYTES, 16 << 20);

    let fuel = abi_constants("");
    let base = &fuel["HOSTCALL_BASE_FUEL"];
    let per_8 = &fuel["FUEL_PER_8_BYTES"];
    assert_eq!(
        per_8, "1",
        "FUEL_PER_8_BYTES changed: update the fuel section of host-abi.md and this test"
    );
    let formula = format!(
        "HOSTCALL_BASE_FUEL + (bytes / 8) * FUEL_PER_8_BYTES  =  {base} + floor(bytes / 8)"
    );
    assert!(
        text.contains(&formula),
        "host-abi.md does not give the fuel formula `{formula}`"
    );
}

fn fs(op: FsAccess, path: &str, bytes: u64) -> Request {
    Request::Fs(FsRequest {
        op,
        path: path.into(),
        not_utf8: false,
        resolved: None,
        bytes,
    })
}

fn net(op: NetAccess, host: &str, port: u16, address: Option<&str>, bytes: u64) -> Request {
    Request::Net(NetRequest {
        op,
        host: host.into(),
        port,
        address: address.map(|a| a.parse().unwrap()),
        bytes,
    })
}

const DECIDE_POLICY: &str = r#"
version: 1
filesystem:
  mounts:
    - { guest: /data, host: ./data, mode: ro }
    - { guest: /out, host: ./out, mode: rw }
  rules:
    - { id: read-data, effect: allow, ops: [read], paths: ["/data/**"] }
    - { id: no-secrets, effect: deny, ops: [read], paths: ["/data/secret/**"] }
    - { id: write-out, effect: allow, ops: [write], paths: ["/out/**"] }
  quotas: { read_bytes: 10, write_bytes: 10 }
network:
  rules:
    - { id: api, effect: allow, hosts: ["api.example.com"], ports: [443] }
    - { id: no-evil, effect: deny, hosts: ["evil.example.com"] }
  quotas: { connections: 1, egress_bytes: 10, ingress_bytes: 10 }
"#;

#[test]
fn every_rule_id_and_its_reason_codes_are_documented() {
    // (rule id, reason code) as the policy decides them ...
    let policy = test_policy(DECIDE_POLICY);
    let fresh = Usage::default();
    let used = Usage {
        net_connections: 1,
        net_ingress_bytes: 10,
        ..Usage::default()
    };
    let api = "api.example.com";
    let cases = [
        (&fresh, fs(FsAccess::Read, "/data/a", 1)),
        (&fresh, fs(FsAccess::Read, "/data/secret/k", 1)),
        (&fresh, fs(FsAccess::Read, "", 0)),
        (&fresh, fs(FsAccess::Read, "/etc/passwd", 1)),
        (&fresh, fs(FsAccess::Write, "/data/a", 1)),
        (&fresh, fs(FsAccess::Read, "/out/a", 1)),
        (&fresh, fs(FsAccess::Read, "/data/a", 11)),
        (&fresh, fs(FsAccess::Write, "/out/a", 11)),
        (&fresh, net(NetAccess::Connect, api, 443, None, 0)),
        (
            &fresh,
            net(NetAccess::Connect, "evil.example.com", 443, None, 0),
        ),
        (&fresh, net(NetAccess::Connect, api, 80, None, 0)),
        (
            &fresh,
            net(NetAccess::Connect, "other.example.com", 443, None, 0),
        ),
        (
            &fresh,
            net(NetAccess::Connect, api, 443, Some("127.0.0.1"), 0),
        ),
        (&used, net(NetAccess::Connect, api, 443, None, 0)),
        (&fresh, net(NetAccess::Send, api, 443, None, 11)),
        (&used, net(NetAccess::Receive, api, 443, None, 1)),
    ];
    let mut seen: Vec<(String, ReasonCode, &'static str)> = cases
        .iter()
        .map(|(usage, request)| {
            let d = policy.decide(usage, request);
            let kind = match request {
                Request::Fs(_) => "filesystem",
                Request::Net(_) => "network",
                // The cases above are file and network requests only.
                _ => "other",
            };
            (policy.rule_id(d.rule), d.reason, kind)
        })
        .collect();

    // ... and as the runtime records them.
    let runs = [
        (
            "version: 1\n",
            r#"(import "sandbox" "log" (func $log (param i32 i32) (result i32))) (memory (export "memory") 1) (func (export "_start") (drop (call $log (i32.const -16) (i32.const 100))))"#,
        ),
        (
            "version: 1\n",
            r#"(import "sandbox" "net_close" (func $close (param i32) (result i32))) (func (export "_start") (drop (call $close (i32.const 99))))"#,
        ),
        ("version: 1\n", r#"(func (export "_start") unreachable)"#),
        (
            "version: 1\nbudgets: { fuel: 10_000 }\n",
            r#"(func (export "_start") (loop $l (br $l)))"#,
        ),
        (
            "version: 1\nbudgets: { fuel: 1_000_000_000_000, timeout_ms: 50 }\n",
            r#"(func (export "_start") (loop $l (br $l)))"#,
        ),
        (
            "version: 1\nfilesystem:\n  mounts: [{ guest: /m, host: ., mode: ro }]\n  rules: [{ id: r, effect: allow, ops: [list], paths: [\"/m/**\"] }]\nlimits: { open_files: 1 }\n",
            r#"(import "wasi_snapshot_preview1" "path_open" (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32))) (memory (export "memory") 1) (data (i32.const 0) ".") (func (export "_start") (drop (call $open (i32.const 3) (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 2) (i64.const 0) (i64.const 0) (i32.const 0) (i32.const 8))) (drop (call $open (i32.const 3) (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 2) (i64.const 0) (i64.const 0) (i32.const 0) (i32.const 8))))"#,
        ),
        (
            "version: 1\nbudgets: { memory_bytes: 128KiB }\n",
            r#"(memory (export "memory") 1) (func (export "_start") (loop $l (drop (memory.grow (i32.const 1))) (br $l)))"#,
        ),
    ];
    for (policy, body) in runs {
        let report = run_wat(policy, &format!("(module {body})"));
        let event = report
            .events
            .last()
            .unwrap_or_else(|| panic!("no event for {body}"));
        seen.push((event.rule_id.clone(), event.reason_code, "runtime"));
    }
    // A call cancelled from outside (`run.cancel`).
    let policy = sandbox_policy::parse_policy("version: 1\n", Path::new(".")).unwrap();
    let sandbox = sandbox_runtime::Sandbox::builder(Arc::new(policy))
        .build()
        .unwrap();
    let plugin = sandbox
        .load(
            "spin.wat",
            b"(module (func (export \"_start\") (loop br 0)))",
            "_start",
        )
        .unwrap();
    let cancel = sandbox_runtime::CancelHandle::new();
    cancel.cancel();
    let report = plugin
        .call_cancellable(b"", &[], Default::default(), &cancel)
        .report;
    let event = report.events.last().unwrap();
    seen.push((event.rule_id.clone(), event.reason_code, "runtime"));

    let text = doc("reason-codes.md");
    let rows = table(&text, "rule id");
    let builtin: BTreeMap<&str, &Vec<String>> = rows
        .iter()
        .filter_map(|r| Some((code(&r[0])?, r)))
        .collect();
    let mut used_builtins = BTreeSet::new();
    for (rule_id, reason, kind) in &seen {
        let key = if rule_id.starts_with("filesystem.mount:") {
            "filesystem.mount:<guest>"
        } else {
            rule_id.as_str()
        };
        let row = match builtin.get(key) {
            Some(row) => {
                used_builtins.insert(key);
                *row
            }
            None => rows
                .iter()
                .find(|r| r[0].starts_with(&format!("*a {kind} rule's")))
                .unwrap_or_else(|| {
                    panic!("rule id `{rule_id}` ({reason}) is not in the rule id table")
                }),
        };
        assert!(
            row[1].contains(&format!("`{reason}`")),
            "the row for `{key}` does not list `{reason}`"
        );
    }
    let documented: BTreeSet<&str> = builtin.keys().copied().collect();
    assert_eq!(
        used_builtins, documented,
        "built-in rule ids documented but never produced, or the reverse"
    );
}

#[test]
fn every_wasi_function_is_documented_and_every_documented_one_exists() {
    let text = doc("host-abi.md");
    let documented: BTreeSet<String> = table(&text, "wasi function")
        .iter()
        .map(|row| {
            code(&row[0])
                .unwrap_or_else(|| panic!("wasi function cell not in backticks: {row:?}"))
                .to_owned()
        })
        .collect();
    let defined: BTreeSet<String> = WASI_FUNCTIONS.iter().map(|f| f.to_string()).collect();
    assert_eq!(
        documented, defined,
        "host-abi.md's WASI table and wasi.rs differ"
    );
    assert_eq!(WASI_MODULE, "wasi_snapshot_preview1");
}

#[test]
fn every_documented_wasi_errno_has_its_exact_value() {
    let text = doc("host-abi.md");
    let known: BTreeMap<&str, u16> = [
        ("ACCES", wasi_errno::ACCES),
        ("NOTCAPABLE", wasi_errno::NOTCAPABLE),
        ("DQUOT", wasi_errno::DQUOT),
        ("ROFS", wasi_errno::ROFS),
        ("INVAL", wasi_errno::INVAL),
        ("MFILE", wasi_errno::MFILE),
        ("FAULT", wasi_errno::FAULT),
        ("NOENT", wasi_errno::NOENT),
        ("EXIST", wasi_errno::EXIST),
        ("ISDIR", wasi_errno::ISDIR),
        ("NOTDIR", wasi_errno::NOTDIR),
        ("NOTEMPTY", wasi_errno::NOTEMPTY),
        ("BADF", wasi_errno::BADF),
        ("NOTSUP", wasi_errno::NOTSUP),
        ("IO", wasi_errno::IO),
        ("LOOP", wasi_errno::LOOP),
        ("PERM", wasi_errno::PERM),
        ("XDEV", wasi_errno::XDEV),
        ("NOTSOCK", wasi_errno::NOTSOCK),
    ]
    .into_iter()
    .collect();
    let rows = table(&text, "cause");
    assert_eq!(
        rows.len(),
        known.len(),
        "one row per errno the front end returns"
    );
    for row in rows {
        let name = code(&row[1]).unwrap_or_else(|| panic!("errno not in backticks: {row:?}"));
        let value: u16 = row[2].parse().unwrap();
        assert_eq!(known.get(name), Some(&value), "{row:?}");
    }
}
