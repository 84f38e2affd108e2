//! `host_abi`: the fuzz input is a script of `sandbox` host calls with raw pointers, lengths,
//! handles, ports and flags. It is turned into a WAT module and run by the real runtime under
//! a policy over a temp-dir tree with a read-only mount, a read-write mount, planted symlinks
//! that point out, and an `outside` folder holding a secret. After each run: nothing but the
//! read-write mount changed, the secret reached no output, every file request that went ahead
//! lies in a mount, quotas held, connections went only to the test's own echo server, and the
//! report verifies.
//!
//! The script is a small byte code ([`HostAbiScript::decode`]) with an encoder, so the
//! adversarial suite's cases can be committed as seeds (`fuzz/corpus/host_abi`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use sandbox_policy::{parse_policy, Policy, Request, Verdict};
use sandbox_runtime::{sha256_hex, verify_report, Plugin, Report, RunOutput, Sandbox};
use wasmtime::Engine;

use crate::interpreter::{self, INPUT_TEXT};
use crate::oracle;
use crate::script::{
    Buf, Call, Handle, HostAbiScript, Port, Ptr, AUDIT, DATA_START, NO_MEMORY_EXPORT, SCRATCH,
    TRAP_ON_DENY,
};

/// Strings a script can point at by index; `{outside}` becomes the host path of the secret.
const STRINGS: &[&str] = &[
    "/data/hello.txt",
    "/data",
    "/data/sub/../hello.txt",
    "/data/../outside/secret.txt",
    "/data/link-out/secret.txt",
    "/data/link-file",
    "/data/link-abs",
    "/data/loop-a",
    "/data/secret/key.txt",
    "/out/new.log",
    "/out",
    "/out/link-out/secret.txt",
    "/out/link-file",
    "/out/../data/hello.txt",
    "/data-secret/key.txt",
    "/proc/self/root/etc/passwd",
    "/dev/zero",
    "/data/hello.txt/",
    "/data/hello.txt\0.png",
    "{outside}",
    "echo.test",
    "127.0.0.1",
    "127.1",
    "0x7f.0.0.1",
    "::ffff:127.0.0.1",
    "localhost",
    "169.254.169.254",
    "0.0.0.0",
    "hello from a fuzzed plugin",
];

/// The temp-dir tree every run works on, the echo server, and what must never change.
struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    echo_port: u16,
    engine: Engine,
    baseline: BTreeMap<String, String>,
    secret_windows: HashSet<u64>,
    /// Interpreter plugins by (memory pages, policy flags), each compiled on first use.
    interpreters: HashMap<(u8, u8), Plugin>,
}

const WINDOW: usize = 12;

fn window_hash(bytes: &[u8]) -> u64 {
    // FNV-1a: the comparison is on hashes, so the fuzzer cannot lift the secret from it.
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn leaks(windows: &HashSet<u64>, bytes: &[u8]) -> bool {
    bytes
        .windows(WINDOW)
        .any(|w| windows.contains(&window_hash(w)))
}

/// Every file, folder and symlink beneath `dir` (symlinks not followed), with its content
/// hash, link target or mode.
pub fn snapshot(dir: &Path) -> BTreeMap<String, String> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let rel = path
                .strip_prefix(base)
                .unwrap_or(&path)
                .to_string_lossy()
                .into_owned();
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode();
            if meta.is_symlink() {
                let target = std::fs::read_link(&path).unwrap_or_default();
                out.insert(rel, format!("link {}", target.display()));
            } else if meta.is_dir() {
                out.insert(rel, format!("dir {mode:o}"));
                walk(base, &path, out);
            } else {
                let bytes = std::fs::read(&path).unwrap_or_default();
                out.insert(rel, format!("file {mode:o} {}", sha256_hex(&bytes)));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn start_echo_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an echo server on 127.0.0.1");
    let port = listener.local_addr().expect("echo server address").port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut stream = stream;
                let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                let mut buf = [0u8; 4096];
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 || stream.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    port
}

/// Empties the read-write mount and plants its links again. The folder itself stays, so the
/// sandboxes kept between inputs keep a valid handle to it.
fn reset_out(root: &Path) {
    let out = root.join("out");
    std::fs::create_dir_all(&out).expect("create the rw mount");
    for entry in std::fs::read_dir(&out)
        .expect("list the rw mount")
        .flatten()
    {
        let path = entry.path();
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_dir() => {
                std::fs::remove_dir_all(&path).expect("empty the rw mount")
            }
            _ => std::fs::remove_file(&path).expect("empty the rw mount"),
        }
    }
    std::os::unix::fs::symlink("../outside", out.join("link-out")).expect("plant a link");
    std::os::unix::fs::symlink(root.join("outside/secret.txt"), out.join("link-file"))
        .expect("plant a link");
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().canonicalize().expect("canonical temp dir");
        let write = |rel: &str, bytes: &[u8]| {
            let path = root.join(rel);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(path, bytes).expect("write fixture");
        };
        // Fresh per process and never in the harness's source, so only a read can leak it.
        let nonce = sha256_hex(
            format!("{:?}{}", std::time::SystemTime::now(), std::process::id()).as_bytes(),
        );
        let secret = format!("OUTSIDE-{nonce}");
        write("outside/secret.txt", secret.as_bytes());
        write("outside/only-outside.txt", secret.as_bytes());
        write("data-secret/key.txt", secret.as_bytes());
        write("data/hello.txt", b"hello from the data mount\n");
        write("data/sub/inner.txt", b"inner\n");
        write(
            "data/secret/key.txt",
            b"inside the mount, denied by a rule\n",
        );
        let link = |target: &Path, rel: &str| {
            std::os::unix::fs::symlink(target, root.join(rel)).expect("plant a link")
        };
        link(&root.join("outside"), "data/link-out");
        link(Path::new("../outside/secret.txt"), "data/link-file");
        link(&root.join("outside/secret.txt"), "data/link-abs");
        link(Path::new("loop-b"), "data/loop-a");
        link(Path::new("loop-a"), "data/loop-b");
        reset_out(&root);
        let mut baseline = snapshot(&root);
        baseline.retain(|k, _| !k.starts_with("out"));
        let secret_windows = secret.as_bytes().windows(WINDOW).map(window_hash).collect();
        Fixture {
            _dir: dir,
            root,
            echo_port: start_echo_server(),
            engine: Sandbox::default_engine().expect("engine"),
            baseline,
            secret_windows,
            interpreters: HashMap::new(),
        }
    }

    fn policy_yaml(&self, flags: u8) -> String {
        format!(
            r#"version: 1
name: host-abi-fuzz
mode: {mode}
on_deny: {on_deny}
budgets: {{ fuel: 1_000_000, timeout_ms: 100, memory_bytes: 1MiB }}
filesystem:
  mounts:
    - {{ guest: /data, host: "{root}/data", mode: ro }}
    - {{ guest: /out, host: "{root}/out", mode: rw }}
  rules:
    - {{ id: read-data, effect: allow, ops: [read, list], paths: ["/data/**"] }}
    - {{ id: no-secret, effect: deny, ops: [read], paths: ["/data/secret/**"] }}
    - {{ id: out-all, effect: allow, ops: [read, write, create, delete, list], paths: ["/out/**"] }}
  quotas: {{ read_bytes: 4KiB, write_bytes: 4KiB }}
network:
  rules:
    - {{ id: echo, effect: allow, hosts: ["echo.test", "127.0.0.1"], ports: [{port}] }}
  quotas: {{ connections: 3, egress_bytes: 1KiB, ingress_bytes: 1KiB }}
  resolve: {{ echo.test: 127.0.0.1 }}
stdio: {{ stdout_bytes: 1KiB, stderr_bytes: 1KiB }}
"#,
            mode = if flags & AUDIT != 0 {
                "audit"
            } else {
                "enforce"
            },
            on_deny = if flags & TRAP_ON_DENY != 0 {
                "trap"
            } else {
                "error"
            },
            root = self.root.display(),
            port = self.echo_port,
        )
    }
}

fn wat_bytes(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("\\{b:02x}")).collect()
}

/// Lays out data and renders each call as WAT.
struct ModuleBuilder<'a> {
    fixture: &'a Fixture,
    data: Vec<(u32, Vec<u8>)>,
    next: u32,
    strings: Vec<(u32, u32)>,
    body: String,
}

impl ModuleBuilder<'_> {
    fn place(&mut self, bytes: &[u8]) -> (u32, u32) {
        if self.next + bytes.len() as u32 > SCRATCH {
            return (0, 0);
        }
        let at = self.next;
        self.data.push((at, bytes.to_vec()));
        self.next += bytes.len() as u32;
        (at, bytes.len() as u32)
    }

    fn near_end(back: u16) -> String {
        format!("(i32.sub (i32.mul (memory.size) (i32.const 65536)) (i32.const {back}))")
    }

    fn ptr(&mut self, p: &Ptr) -> String {
        let (ptr, len) = match p {
            Ptr::Str(i) => self.strings[usize::from(*i) % self.strings.len()],
            Ptr::Raw(ptr, len) => (*ptr, *len),
            Ptr::Bytes(bytes) => self.place(bytes),
            Ptr::NearEnd(back, len) => {
                return format!("{} (i32.const {})", Self::near_end(*back), *len as i32)
            }
        };
        format!("(i32.const {}) (i32.const {})", ptr as i32, len as i32)
    }

    fn buf(&self, b: &Buf) -> String {
        match b {
            Buf::Scratch(len) => format!("(i32.const {SCRATCH}) (i32.const {len})"),
            Buf::Raw(ptr, len) => {
                format!("(i32.const {}) (i32.const {})", *ptr as i32, *len as i32)
            }
            Buf::NearEnd(back, len) => {
                format!("{} (i32.const {})", Self::near_end(*back), *len as i32)
            }
        }
    }

    fn buf_ptr(&self, b: &Buf) -> String {
        match b {
            Buf::Scratch(_) => format!("(i32.const {SCRATCH})"),
            Buf::Raw(ptr, _) => format!("(i32.const {})", *ptr as i32),
            Buf::NearEnd(back, _) => Self::near_end(*back),
        }
    }

    fn handle(h: &Handle) -> String {
        match h {
            Handle::Last => "(global.get $last)".into(),
            Handle::Raw(v) => format!("(i32.const {v})"),
        }
    }

    fn call(&mut self, c: &Call) -> String {
        match c {
            Call::InputLen => "(drop (call $input_len))".into(),
            Call::InputRead(b, offset) => format!(
                "(drop (call $input_read {} (i32.const {})))",
                self.buf(b),
                *offset as i32
            ),
            Call::OutputWrite(p) => format!("(drop (call $output_write {}))", self.ptr(p)),
            Call::Log(p) => format!("(drop (call $log {}))", self.ptr(p)),
            Call::FsRead(p, offset, b) => format!(
                "(drop (call $fs_read {} (i64.const {offset}) {}))",
                self.ptr(p),
                self.buf(b)
            ),
            Call::FsWrite(p, data, flags) => format!(
                "(drop (call $fs_write {} {} (i32.const {flags})))",
                self.ptr(p),
                self.ptr(data)
            ),
            Call::FsStat(p, b) => {
                format!("(drop (call $fs_stat {} {}))", self.ptr(p), self.buf_ptr(b))
            }
            Call::FsList(p, b) => format!("(drop (call $fs_list {} {}))", self.ptr(p), self.buf(b)),
            Call::FsDelete(p) => format!("(drop (call $fs_delete {}))", self.ptr(p)),
            Call::NetConnect(p, port) => {
                let port = match port {
                    Port::Echo => i32::from(self.fixture.echo_port),
                    Port::Raw(v) => *v,
                };
                format!(
                    "(global.set $last (call $net_connect {} (i32.const {port})))",
                    self.ptr(p)
                )
            }
            Call::NetSend(h, p) => format!(
                "(drop (call $net_send {} {}))",
                Self::handle(h),
                self.ptr(p)
            ),
            Call::NetRecv(h, b, timeout) => format!(
                "(drop (call $net_recv {} {} (i32.const {timeout})))",
                Self::handle(h),
                self.buf(b)
            ),
            Call::NetClose(h) => format!("(drop (call $net_close {}))", Self::handle(h)),
            Call::MemoryGrow(n) => format!("(drop (memory.grow (i32.const {n})))"),
            Call::Repeat(n, inner) => {
                let inner = self.call(inner);
                format!(
                    "(local.set $i (i32.const {n})) (block $done (loop $again (br_if $done (i32.eqz (local.get $i))) {inner} (local.set $i (i32.sub (local.get $i) (i32.const 1))) (br $again)))"
                )
            }
        }
    }
}

/// A module builder with the harness's strings placed.
fn builder(fixture: &Fixture) -> ModuleBuilder<'_> {
    let mut b = ModuleBuilder {
        fixture,
        data: Vec::new(),
        next: DATA_START,
        strings: Vec::new(),
        body: String::new(),
    };
    let outside = fixture.root.join("outside/secret.txt");
    for s in STRINGS {
        let text = s.replace("{outside}", &outside.to_string_lossy());
        let placed = b.place(text.as_bytes());
        b.strings.push(placed);
    }
    b
}

/// The import lines of every `sandbox` function a script can call.
fn import_lines() -> String {
    let mut wat = String::new();
    for (name, ty) in [
        ("input_len", "(result i32)"),
        ("input_read", "(param i32 i32 i32) (result i32)"),
        ("output_write", "(param i32 i32) (result i32)"),
        ("log", "(param i32 i32) (result i32)"),
        ("fs_read", "(param i32 i32 i64 i32 i32) (result i32)"),
        ("fs_write", "(param i32 i32 i32 i32 i32) (result i32)"),
        ("fs_stat", "(param i32 i32 i32) (result i32)"),
        ("fs_list", "(param i32 i32 i32 i32) (result i32)"),
        ("fs_delete", "(param i32 i32) (result i32)"),
        ("net_connect", "(param i32 i32 i32) (result i32)"),
        ("net_send", "(param i32 i32 i32) (result i32)"),
        ("net_recv", "(param i32 i32 i32 i32) (result i32)"),
        ("net_close", "(param i32) (result i32)"),
    ] {
        wat.push_str(&format!(
            "  (import \"sandbox\" \"{name}\" (func ${name} {ty}))\n"
        ));
    }
    wat
}

/// The data lines of a builder's placed bytes.
fn data_lines(data: &[(u32, Vec<u8>)]) -> String {
    data.iter()
        .map(|(at, bytes)| format!("  (data (i32.const {at}) \"{}\")\n", wat_bytes(bytes)))
        .collect()
}

/// The WAT module a script becomes, against this process's fixture.
fn module_text(fixture: &Fixture, script: &HostAbiScript) -> String {
    let mut b = builder(fixture);
    for call in &script.calls {
        let text = b.call(call);
        b.body.push_str(&text);
        b.body.push('\n');
    }
    let pages = 1 + script.pages % 4;
    let export = if script.flags & NO_MEMORY_EXPORT == NO_MEMORY_EXPORT {
        ""
    } else {
        "(export \"memory\")"
    };
    let mut wat = String::from("(module\n");
    wat.push_str(&import_lines());
    wat.push_str(&format!("  (memory {export} {pages})\n"));
    wat.push_str("  (global $last (mut i32) (i32.const 0))\n");
    wat.push_str(&data_lines(&b.data));
    wat.push_str("  (func (export \"_start\") (local $i i32)\n");
    wat.push_str(&b.body);
    wat.push_str("  ))\n");
    wat
}

fn connects(call: &Call) -> bool {
    match call {
        Call::NetConnect(..) => true,
        Call::Repeat(_, inner) => connects(inner),
        _ => false,
    }
}

fn fixture() -> &'static Mutex<Fixture> {
    static FIXTURE: OnceLock<Mutex<Fixture>> = OnceLock::new();
    FIXTURE.get_or_init(|| Mutex::new(Fixture::new()))
}

/// The fuzz target: decode, run, check.
pub fn host_abi(data: &[u8]) {
    let _ = run_script(&HostAbiScript::decode(data));
}

/// Runs one script and checks every invariant; panics with the module text when one breaks.
/// Returns the report, for tests that check what a script did.
pub fn run_script(script: &HostAbiScript) -> Report {
    // A panic while the lock is held (a finding) must not hide the next input's result.
    let mut fixture = fixture().lock().unwrap_or_else(|e| e.into_inner());
    reset_out(&fixture.root);
    // Audit mode relaxes network rules, so a connect could reach any public address or make
    // a name lookup: only scripts that never connect run in audit mode.
    let audit = script.flags & AUDIT != 0 && !script.calls.iter().any(connects);
    let flags = if audit {
        script.flags
    } else {
        script.flags & !AUDIT
    };
    let yaml = fixture.policy_yaml(flags);
    let policy = parse_policy(&yaml, &fixture.root).expect("the harness policy parses");
    let (output, wat) = if script.flags & NO_MEMORY_EXPORT == NO_MEMORY_EXPORT {
        compiled_run(&fixture, script, &policy, &yaml)
    } else {
        interpreted_run(&mut fixture, script, &policy, &yaml, flags)
    };
    let fail =
        |what: String| -> ! { panic!("{what}\n--- module ---\n{wat}\n--- policy ---\n{yaml}") };

    let mut after = snapshot(&fixture.root);
    let out_files: Vec<(String, String)> = after
        .iter()
        .filter(|(k, _)| k.starts_with("out/") || k.as_str() == "out")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    after.retain(|k, _| !k.starts_with("out"));
    if after != fixture.baseline {
        fail(format!(
            "files outside the rw mount changed:\nbefore {:?}\nafter  {:?}",
            fixture.baseline, after
        ));
    }
    let mut out_bytes = 0u64;
    for (rel, kind) in &out_files {
        let path = fixture.root.join(rel);
        if kind.starts_with("file") {
            let bytes = std::fs::read(&path).unwrap_or_default();
            out_bytes += bytes.len() as u64;
            if leaks(&fixture.secret_windows, &bytes) {
                fail(format!("the secret was written to {rel}"));
            }
        } else if kind.starts_with("link")
            && !["out/link-out", "out/link-file"].contains(&rel.as_str())
        {
            fail(format!("a symlink appeared in the rw mount: {rel}"));
        }
    }
    for (name, bytes) in [("stdout", &output.stdout), ("stderr", &output.stderr)] {
        if leaks(&fixture.secret_windows, bytes) {
            fail(format!("the secret reached the plugin's {name}"));
        }
    }

    let report = &output.report;
    let usage = &report.usage;
    if out_bytes > usage.fs_write_bytes {
        fail(format!(
            "{out_bytes} bytes on disk in the rw mount but only {} counted as written",
            usage.fs_write_bytes
        ));
    }
    if !audit {
        let within = usage.fs_read_bytes <= 4096
            && usage.fs_write_bytes <= 4096
            && usage.net_connections <= 3
            && usage.net_egress_bytes <= 1024
            && usage.net_ingress_bytes <= 1024;
        if !within {
            fail(format!("a quota was crossed in enforce mode: {usage:?}"));
        }
    }
    if output.stdout.len() > 1024 || output.stderr.len() > 1024 + 1 {
        fail("captured output passed its cap".into());
    }
    if let Err(what) = check_events(report, &policy, fixture.echo_port) {
        fail(what);
    }
    let json = serde_json::to_string(report).expect("the report serialises");
    if let Err(e) = verify_report(&json) {
        fail(format!("a fresh report does not verify: {e}"));
    }
    output.report
}

/// Runs a script as a module of its own: for plugins that export no memory, which the
/// interpreter (which reads its program through its memory) cannot be.
fn compiled_run(
    fixture: &Fixture,
    script: &HostAbiScript,
    policy: &Policy,
    yaml: &str,
) -> (RunOutput, String) {
    let wat = module_text(fixture, script);
    let output = Sandbox::builder(Arc::new(policy.clone()))
        .policy_source("host-abi-fuzz.yaml", sha256_hex(yaml.as_bytes()))
        .engine(fixture.engine.clone())
        .build()
        .and_then(|sandbox| sandbox.load("host-abi-fuzz.wat", wat.as_bytes(), "_start"))
        .map(|plugin| plugin.call(INPUT_TEXT))
        .unwrap_or_else(|e| panic!("a generated module could not start: {e}\n{wat}"));
    (output, wat)
}

/// Runs a script on the interpreter for its memory size and policy flags, compiled once.
fn interpreted_run(
    fixture: &mut Fixture,
    script: &HostAbiScript,
    policy: &Policy,
    yaml: &str,
    flags: u8,
) -> (RunOutput, String) {
    let pages = 1 + script.pages % 4;
    let mut b = builder(fixture);
    let strings = b.strings.clone();
    let base = b.data.clone();
    let input = interpreter::lower(script, &strings, fixture.echo_port, |bytes| b.place(bytes));
    let key = (pages, flags & (AUDIT | TRAP_ON_DENY));
    let wat = interpreter::module(&import_lines(), &data_lines(&base), u32::from(pages));
    if !fixture.interpreters.contains_key(&key) {
        let plugin = Sandbox::builder(Arc::new(policy.clone()))
            .policy_source("host-abi-fuzz.yaml", sha256_hex(yaml.as_bytes()))
            .engine(fixture.engine.clone())
            .build()
            .and_then(|sandbox| sandbox.load("host-abi-fuzz.wat", wat.as_bytes(), "_start"))
            .unwrap_or_else(|e| panic!("the interpreter could not start: {e}\n{wat}"));
        fixture.interpreters.insert(key, plugin);
    }
    let output = fixture.interpreters[&key].call(&input);
    let listing = format!("{wat}\n;; script: {script:?}");
    (output, listing)
}

/// Every request that went ahead lies in its mount (also as resolved, and on the host), and
/// every connection went to the test's echo server on its port.
fn check_events(report: &Report, policy: &Policy, echo_port: u16) -> Result<(), String> {
    let mounts: Vec<String> = policy
        .filesystem
        .mounts
        .iter()
        .map(|m| m.guest.clone())
        .collect();
    let hosts: Vec<PathBuf> = policy
        .filesystem
        .mounts
        .iter()
        .map(|m| policy.mount_host_path(m))
        .collect();
    for event in &report.events {
        let went_ahead = event.decision == Verdict::Allow || !event.enforced;
        if !went_ahead {
            continue;
        }
        match &event.request {
            Some(Request::Fs(r)) => {
                let asked = (!r.not_utf8).then(|| oracle::normalize(&r.path)).flatten();
                let mount = asked.as_deref().and_then(|a| oracle::mount_of(a, &mounts));
                let Some(mount) = mount else {
                    return Err(format!(
                        "a file request outside every mount went ahead: {event:?}"
                    ));
                };
                if let Some(resolved) = &r.resolved {
                    let m = oracle::normalize(resolved).and_then(|p| oracle::mount_of(&p, &mounts));
                    if m != Some(mount) {
                        return Err(format!(
                            "a symlink led a request out of its mount: {event:?}"
                        ));
                    }
                }
                if let Some(host) = event.context.get("host_path").and_then(|v| v.as_str()) {
                    if !Path::new(host).starts_with(&hosts[mount]) {
                        return Err(format!(
                            "host path {host} is not beneath its mount: {event:?}"
                        ));
                    }
                }
            }
            Some(Request::Net(r)) => {
                let connected =
                    event.context.get("result").and_then(|v| v.as_str()) == Some("done");
                let loopback = r
                    .address
                    .is_some_and(|a| a == std::net::IpAddr::from([127, 0, 0, 1]));
                if connected && !loopback {
                    return Err(format!(
                        "a connection went somewhere other than the echo server: {event:?}"
                    ));
                }
                if r.port != echo_port && connected {
                    return Err(format!("a connection on a port no rule allows: {event:?}"));
                }
            }
            // The runtime records no other kind yet.
            Some(_) | None => {}
        }
    }
    Ok(())
}
