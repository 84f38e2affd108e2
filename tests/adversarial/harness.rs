//! What every adversarial case shares: a temp dir with a tree of host files (two mount
//! folders, a folder outside every mount holding secrets), the policy and plugin of the case,
//! the real `sandbox-cli` binary, and snapshots that prove nothing outside changed.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

pub use sandbox_runtime::{
    ERR_BAD_HANDLE, ERR_DENIED, ERR_FAULT, ERR_INVALID, ERR_NOT_FOUND, ERR_QUOTA, ERR_READ_ONLY,
    ERR_TIMED_OUT, WRITE_APPEND,
};

/// What the secret files outside every mount hold; it must never reach a plugin.
pub const OUTSIDE_SECRET: &str = "OUTSIDE-SECRET: never readable by a plugin\n";
pub const PREFIX_SECRET: &str = "PREFIX-SECRET: /data-secret is not /data\n";
pub const HELLO: &str = "hello from the data mount\n";

/// The policy most cases start from: `/data` read-only, `/out` read-write, a deny rule for
/// `/data/secret`, quotas, and budgets that end a runaway plugin in seconds.
pub const FS_POLICY: &str = r#"version: 1
name: adversarial
budgets: { fuel: 50_000_000, timeout_ms: 5000, memory_bytes: 16MiB }
filesystem:
  mounts:
    - { guest: /data, host: ./tree/data, mode: ro }
    - { guest: /out, host: ./tree/out, mode: rw }
  rules:
    - { id: read-data, effect: allow, ops: [read, list], paths: ["/data/**"] }
    - { id: no-secrets, effect: deny, ops: [read], paths: ["/data/secret/**"] }
    - { id: write-out, effect: allow, ops: [read, write, create, delete, list], paths: ["/out/**"] }
  quotas: { read_bytes: 1MiB, write_bytes: 64KiB }
"#;

/// One case: its own temp dir, policy and plugin.
pub struct Case {
    dir: tempfile::TempDir,
}

impl Case {
    pub fn new() -> Case {
        let dir = tempfile::tempdir().unwrap();
        let case = Case { dir };
        case.write("tree/data/hello.txt", HELLO.as_bytes());
        case.write("tree/data/sub/inner.txt", b"inner\n");
        case.write(
            "tree/data/secret/key.txt",
            b"inside the mount, denied by a rule\n",
        );
        std::fs::create_dir_all(case.path("tree/out")).unwrap();
        case.write("tree/data-secret/key.txt", PREFIX_SECRET.as_bytes());
        case.write("tree/outside/secret.txt", OUTSIDE_SECRET.as_bytes());
        case.write("tree/outside/only-outside.txt", OUTSIDE_SECRET.as_bytes());
        case.policy(FS_POLICY);
        case
    }

    /// The case's folder, canonical so host paths in reports compare equal.
    pub fn root(&self) -> PathBuf {
        self.dir.path().canonicalize().unwrap()
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root().join(rel)
    }

    pub fn write(&self, rel: &str, bytes: &[u8]) {
        let path = self.path(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }

    /// Plants a symlink at `rel` (as the host, before the run) pointing at `target`.
    pub fn symlink(&self, target: impl AsRef<Path>, rel: &str) {
        std::os::unix::fs::symlink(target, self.path(rel)).unwrap();
    }

    pub fn policy(&self, yaml: &str) {
        self.write("policy.yaml", yaml.as_bytes());
    }

    /// Every entry beneath `tree/` with its content hash, link target or mode.
    pub fn snapshot(&self) -> BTreeMap<String, String> {
        sandbox_fuzz_harness::snapshot(&self.path("tree"))
    }

    /// Asserts that exactly the listed entries (paths beneath `tree/`) were added, removed or
    /// changed since `before`.
    pub fn assert_changed(&self, before: &BTreeMap<String, String>, expected: &[&str]) {
        let after = self.snapshot();
        let mut changed: Vec<&str> = before
            .keys()
            .chain(after.keys())
            .filter(|k| before.get(*k) != after.get(*k))
            .map(String::as_str)
            .collect();
        changed.sort();
        changed.dedup();
        let mut expected = expected.to_vec();
        expected.sort();
        assert_eq!(changed, expected, "files changed beneath tree/");
    }

    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_sandbox-cli"))
            .args(args)
            .current_dir(self.root())
            .env_remove("RUST_BACKTRACE")
            // The CLI caches compiled modules: never in the user's cache folder, and never in
            // the tree a case hashes.
            .env(
                "XDG_CACHE_HOME",
                std::env::temp_dir().join("sandbox-adversarial-cache"),
            )
            .output()
            .unwrap()
    }

    /// Runs a plugin under `policy.yaml`; the report, raw stdout and raw stderr come back.
    pub fn run(&self, plugin: &str) -> Run {
        self.run_with(plugin, &[])
    }

    pub fn run_with(&self, plugin: &str, extra: &[&str]) -> Run {
        self.write("plugin.wat", plugin.as_bytes());
        for f in ["report.json", "stdout.bin", "stderr.bin"] {
            let _ = std::fs::remove_file(self.path(f));
        }
        let mut args = vec![
            "run",
            "--policy",
            "policy.yaml",
            "--plugin",
            "plugin.wat",
            "--report-file",
            "report.json",
            "--stdout",
            "stdout.bin",
            "--stderr",
            "stderr.bin",
        ];
        args.extend_from_slice(extra);
        let out = self.cli(&args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let code = out.status.code().expect("the CLI exited, not killed");
        assert!(
            !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
            "{stderr}"
        );
        let text = std::fs::read_to_string(self.path("report.json"))
            .unwrap_or_else(|_| panic!("no report (exit {code}); stderr: {stderr}"));
        let report: Value = serde_json::from_str(&text).unwrap();
        let verify = self.cli(&["report", "verify", "--report-file", "report.json"]);
        assert_eq!(verify.status.code(), Some(0), "a fresh report must verify");
        Run {
            code,
            report,
            report_text: text,
            stdout: std::fs::read(self.path("stdout.bin")).unwrap_or_default(),
            stderr: std::fs::read(self.path("stderr.bin")).unwrap_or_default(),
        }
    }
}

pub struct Run {
    pub code: i32,
    pub report: Value,
    pub report_text: String,
    /// The plugin's raw stdout: the result codes it emitted.
    pub stdout: Vec<u8>,
    /// The plugin's raw stderr: what it read, logged.
    pub stderr: Vec<u8>,
}

impl Run {
    /// The `i32` results the plugin emitted with `$emit`, in order.
    pub fn results(&self) -> Vec<i32> {
        self.stdout
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    }

    pub fn events(&self) -> &Vec<Value> {
        self.report["events"].as_array().unwrap()
    }

    /// (decision, rule_id, reason_code) of every recorded event.
    pub fn triples(&self) -> Vec<(String, String, String)> {
        self.events()
            .iter()
            .map(|e| {
                (
                    e["decision"].as_str().unwrap().to_owned(),
                    e["rule_id"].as_str().unwrap().to_owned(),
                    e["reason_code"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    pub fn reasons(&self) -> Vec<String> {
        self.triples().into_iter().map(|t| t.2).collect()
    }

    pub fn status(&self) -> &str {
        self.report["outcome"]["status"].as_str().unwrap()
    }

    pub fn usage(&self, key: &str) -> u64 {
        self.report["usage"][key].as_u64().unwrap()
    }

    pub fn logged(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    /// Nothing from a secret file outside every mount reached the plugin's output.
    pub fn assert_no_secret(&self) {
        for (name, bytes) in [("stdout", &self.stdout), ("stderr", &self.stderr)] {
            let text = String::from_utf8_lossy(bytes);
            assert!(
                !text.contains("OUTSIDE-SECRET") && !text.contains("PREFIX-SECRET"),
                "a secret reached the plugin's {name}: {text}"
            );
        }
        assert!(!self.report_text.contains("OUTSIDE-SECRET"));
    }
}

pub fn t(items: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
    items
        .iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .collect()
}

/// The same triple `n` times.
pub fn n_times(n: usize, item: (&str, &str, &str)) -> Vec<(String, String, String)> {
    t(&vec![item; n])
}

/// Builds a WAT plugin from host calls. Every call's result is emitted (4 bytes, little
/// endian, to stdout) so the test sees the exact ABI code; what a read returns is logged to
/// stderr so the test sees every byte that reached the plugin.
///
/// Memory: 2 pages. Strings from 256, the read buffer at 65536, the emit slot at 131068.
pub struct Plugin {
    data: Vec<(u32, Vec<u8>)>,
    next: u32,
    body: String,
    extra: String,
}

pub const BUF: u32 = 65536;
const DATA_END: u32 = 65536;

fn wat_bytes(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("\\{b:02x}")).collect()
}

impl Default for Plugin {
    fn default() -> Self {
        Self::new()
    }
}

impl Plugin {
    pub fn new() -> Plugin {
        Plugin {
            data: Vec::new(),
            next: 256,
            body: String::new(),
            extra: String::new(),
        }
    }

    /// Places bytes in the data segment; returns their address and length.
    pub fn place(&mut self, bytes: &[u8]) -> (u32, u32) {
        let at = self.next;
        assert!(at + bytes.len() as u32 <= DATA_END, "plugin data too large");
        self.data.push((at, bytes.to_vec()));
        self.next += bytes.len() as u32;
        (at, bytes.len() as u32)
    }

    /// Places bytes in the data segment; returns `(ptr, len)` as WAT operands.
    pub fn bytes(&mut self, bytes: &[u8]) -> String {
        let (at, len) = self.place(bytes);
        format!("(i32.const {at}) (i32.const {len})")
    }

    /// Appends WAT statements to `_start` (locals `$n`, `$i`, `$j`, `$h` exist; `$emit`
    /// emits an i32).
    pub fn raw(mut self, wat: &str) -> Plugin {
        self.body.push_str(wat);
        self.body.push('\n');
        self
    }

    /// Adds module-level WAT (functions, tables, globals).
    pub fn module_items(mut self, wat: &str) -> Plugin {
        self.extra.push_str(wat);
        self.extra.push('\n');
        self
    }

    /// `fs_read(path, offset, BUF, len)`: emits the result and logs the bytes read.
    pub fn read_at(mut self, path: &[u8], offset: i64, len: u32) -> Plugin {
        let p = self.bytes(path);
        self.raw(&format!(
            "(local.set $n (call $fs_read {p} (i64.const {offset}) (i32.const {BUF}) (i32.const {len})))
             (call $emit (local.get $n))
             (if (i32.gt_s (local.get $n) (i32.const 0)) (then (drop (call $log (i32.const {BUF}) (local.get $n)))))"
        ))
    }

    pub fn read(self, path: &[u8]) -> Plugin {
        self.read_at(path, 0, 4096)
    }

    pub fn write(mut self, path: &[u8], data: &[u8], flags: i32) -> Plugin {
        let p = self.bytes(path);
        let d = self.bytes(data);
        self.raw(&format!(
            "(call $emit (call $fs_write {p} {d} (i32.const {flags})))"
        ))
    }

    /// `fs_stat`: emits the result, then the size it wrote (low 32 bits).
    pub fn stat(mut self, path: &[u8]) -> Plugin {
        let p = self.bytes(path);
        self.raw(&format!(
            "(i64.store (i32.const {BUF}) (i64.const -1))
             (call $emit (call $fs_stat {p} (i32.const {BUF})))
             (call $emit (i32.load (i32.const {BUF})))"
        ))
    }

    /// `fs_list`: emits the result and logs the listing.
    pub fn list(mut self, path: &[u8]) -> Plugin {
        let p = self.bytes(path);
        self.raw(&format!(
            "(local.set $n (call $fs_list {p} (i32.const {BUF}) (i32.const 4096)))
             (call $emit (local.get $n))
             (if (i32.gt_s (local.get $n) (i32.const 0)) (then (drop (call $log (i32.const {BUF}) (local.get $n)))))"
        ))
    }

    /// `fs_list_entries`: emits the result and logs the length-prefixed listing.
    pub fn list_entries(mut self, path: &[u8]) -> Plugin {
        let p = self.bytes(path);
        self.raw(&format!(
            "(local.set $n (call $fs_list_entries {p} (i32.const {BUF}) (i32.const 4096)))
             (call $emit (local.get $n))
             (if (i32.gt_s (local.get $n) (i32.const 0)) (then (drop (call $log (i32.const {BUF}) (local.get $n)))))"
        ))
    }

    pub fn delete(mut self, path: &[u8]) -> Plugin {
        let p = self.bytes(path);
        self.raw(&format!("(call $emit (call $fs_delete {p}))"))
    }

    /// `net_connect`: the result is emitted and kept in `$h`.
    pub fn connect(mut self, host: &[u8], port: i32) -> Plugin {
        let h = self.bytes(host);
        self.raw(&format!(
            "(local.set $h (call $net_connect {h} (i32.const {port}))) (call $emit (local.get $h))"
        ))
    }

    /// `net_send` on `$h`.
    pub fn send(mut self, data: &[u8]) -> Plugin {
        let d = self.bytes(data);
        self.raw(&format!("(call $emit (call $net_send (local.get $h) {d}))"))
    }

    pub fn send_on(mut self, handle: i32, data: &[u8]) -> Plugin {
        let d = self.bytes(data);
        self.raw(&format!(
            "(call $emit (call $net_send (i32.const {handle}) {d}))"
        ))
    }

    /// `net_recv` on `$h` into BUF: emits the result and logs what arrived.
    pub fn recv(self, len: u32, timeout_ms: i32) -> Plugin {
        self.raw(&format!(
            "(local.set $n (call $net_recv (local.get $h) (i32.const {BUF}) (i32.const {len}) (i32.const {timeout_ms})))
             (call $emit (local.get $n))
             (if (i32.gt_s (local.get $n) (i32.const 0)) (then (drop (call $log (i32.const {BUF}) (local.get $n)))))"
        ))
    }

    pub fn recv_on(self, handle: i32, len: u32, timeout_ms: i32) -> Plugin {
        self.raw(&format!(
            "(call $emit (call $net_recv (i32.const {handle}) (i32.const {BUF}) (i32.const {len}) (i32.const {timeout_ms})))"
        ))
    }

    pub fn close(self) -> Plugin {
        self.raw("(call $emit (call $net_close (local.get $h)))")
    }

    pub fn close_on(self, handle: i32) -> Plugin {
        self.raw(&format!(
            "(call $emit (call $net_close (i32.const {handle})))"
        ))
    }

    pub fn wat(&self) -> String {
        let mut wat = String::from("(module\n");
        wat.push_str(IMPORTS);
        wat.push_str("  (memory (export \"memory\") 2)\n");
        for (at, bytes) in &self.data {
            wat.push_str(&format!(
                "  (data (i32.const {at}) \"{}\")\n",
                wat_bytes(bytes)
            ));
        }
        wat.push_str(
            "  (func $emit (param $v i32)
    (i32.store (i32.const 131068) (local.get $v))
    (drop (call $output_write (i32.const 131068) (i32.const 4))))\n",
        );
        wat.push_str(&self.extra);
        wat.push_str("  (func (export \"_start\") (local $n i32) (local $i i32) (local $j i32) (local $h i32)\n");
        wat.push_str(&self.body);
        wat.push_str("  ))\n");
        wat
    }
}

/// Every `sandbox` import, for hand-written plugins too.
pub const IMPORTS: &str = r#"  (import "sandbox" "input_len" (func $input_len (result i32)))
  (import "sandbox" "input_read" (func $input_read (param i32 i32 i32) (result i32)))
  (import "sandbox" "output_write" (func $output_write (param i32 i32) (result i32)))
  (import "sandbox" "log" (func $log (param i32 i32) (result i32)))
  (import "sandbox" "fs_read" (func $fs_read (param i32 i32 i64 i32 i32) (result i32)))
  (import "sandbox" "fs_write" (func $fs_write (param i32 i32 i32 i32 i32) (result i32)))
  (import "sandbox" "fs_stat" (func $fs_stat (param i32 i32 i32) (result i32)))
  (import "sandbox" "fs_list" (func $fs_list (param i32 i32 i32 i32) (result i32)))
  (import "sandbox" "fs_list_entries" (func $fs_list_entries (param i32 i32 i32 i32) (result i32)))
  (import "sandbox" "fs_delete" (func $fs_delete (param i32 i32) (result i32)))
  (import "sandbox" "net_connect" (func $net_connect (param i32 i32 i32) (result i32)))
  (import "sandbox" "net_send" (func $net_send (param i32 i32 i32) (result i32)))
  (import "sandbox" "net_recv" (func $net_recv (param i32 i32 i32 i32) (result i32)))
  (import "sandbox" "net_close" (func $net_close (param i32) (result i32)))
"#;

/// What a test server does with each connection.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Serve {
    /// Echoes what it receives.
    Echo,
    /// Accepts and holds the connection, never sending.
    Silent,
    /// Sends this many bytes, then holds the connection.
    Flood(usize),
    /// Reads this many bytes, then closes with data unread, which resets the connection.
    ResetAfter(usize),
}

/// A TCP server on an ephemeral 127.0.0.1 port that this test starts and stops; it counts
/// the connections it accepted and the bytes it received.
pub struct Server {
    pub port: u16,
    accepted: Arc<AtomicU64>,
    received: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    pub fn start(serve: Serve) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicU64::new(0));
        let received = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (a, r, s) = (accepted.clone(), received.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let started = Instant::now();
            let mut clients: Vec<TcpStream> = Vec::new();
            // Bounded: the server stops itself after 60 s whatever happens.
            while !s.load(Ordering::SeqCst) && started.elapsed() < Duration::from_secs(60) {
                if let Ok((mut stream, _)) = listener.accept() {
                    a.fetch_add(1, Ordering::SeqCst);
                    if let Serve::Flood(n) = serve {
                        let _ = stream.write_all(&vec![b'z'; n]);
                    }
                    if let Serve::ResetAfter(n) = serve {
                        let mut part = vec![0u8; n];
                        if stream.read_exact(&mut part).is_ok() {
                            r.fetch_add(n as u64, Ordering::SeqCst);
                        }
                        // Dropped with unread data: the kernel answers with a reset.
                        continue;
                    }
                    stream.set_nonblocking(true).unwrap();
                    clients.push(stream);
                }
                for client in &mut clients {
                    let mut buf = [0u8; 4096];
                    if let Ok(n) = client.read(&mut buf) {
                        r.fetch_add(n as u64, Ordering::SeqCst);
                        if serve == Serve::Echo && n > 0 {
                            let _ = client.write_all(&buf[..n]);
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        Server {
            port,
            accepted,
            received,
            stop,
            thread: Some(thread),
        }
    }

    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Bytes received, once the run has ended and the server has read what was in flight.
    pub fn received_settled(&self) -> u64 {
        let mut last = u64::MAX;
        for _ in 0..200 {
            let now = self.received.load(Ordering::SeqCst);
            if now == last {
                return now;
            }
            last = now;
            std::thread::sleep(Duration::from_millis(10));
        }
        last
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
