//! The WASI preview 1 front end answers as Wasmtime's own preview 1 does wherever the policy
//! allows (issue 14): raw preview 1 calls in WAT, run by the runtime under an allow-all policy
//! over a temp-dir tree with two read-write mounts and a read-only one; each call's errno
//! (and, for a few, what it wrote) is checked, and the host tree after it.

use std::path::Path;
use std::sync::Arc;

use sandbox_policy::parse_policy;
use sandbox_runtime::{RunOutput, Sandbox};

const IMPORTS: &[(&str, &str)] = &[
    ("path_open", "i32 i32 i32 i32 i32 i64 i64 i32 i32"),
    ("fd_write", "i32 i32 i32 i32"),
    ("fd_pread", "i32 i32 i32 i64 i32"),
    ("fd_fdstat_get", "i32 i32"),
    ("fd_fdstat_set_flags", "i32 i32"),
    ("fd_fdstat_set_rights", "i32 i64 i64"),
    ("fd_filestat_set_times", "i32 i64 i64 i32"),
    ("path_filestat_set_times", "i32 i32 i32 i32 i64 i64 i32"),
    ("path_filestat_get", "i32 i32 i32 i32 i32"),
    ("path_create_directory", "i32 i32 i32"),
    ("path_unlink_file", "i32 i32 i32"),
    ("path_symlink", "i32 i32 i32 i32 i32"),
    ("path_link", "i32 i32 i32 i32 i32 i32 i32"),
    ("fd_allocate", "i32 i64 i64"),
    ("sock_recv", "i32 i32 i32 i32 i32 i32"),
    ("sock_send", "i32 i32 i32 i32 i32"),
];

/// Where calls write what they return; the test reads it back from the output.
pub const OUT: usize = 12288;
/// Where `path_open` puts the fd it opens; `fd()` loads it.
const FD_AT: usize = 64;
/// The last opened fd, for a call's argument.
pub const FD: &str = "(i32.load (i32.const 64))";
/// A preview 1 `fd_fdstat_get` rights mask for a directory as Wasmtime's preopens report it.
pub const RIGHTS_PREOPEN: u64 = 0x07b7_fe00;

/// A WAT program: string data and one recorded call after another.
#[derive(Default)]
pub struct Program {
    data: Vec<(usize, String)>,
    calls: Vec<String>,
}

impl Program {
    /// `(ptr len)` of a string placed in the module's data.
    pub fn s(&mut self, text: &str) -> String {
        let at = 1024 + 128 * self.data.len();
        self.data.push((at, text.to_owned()));
        format!("(i32.const {at}) (i32.const {})", text.len())
    }

    /// Records the errno of `call` (a WAT expression).
    pub fn call(&mut self, call: impl Into<String>) -> &mut Self {
        self.calls.push(call.into());
        self
    }

    /// `path_open(dir, dirflags, path, oflags, rights, rights, fdflags)` into [`FD`].
    pub fn open(
        &mut self,
        dir: i32,
        follow: i32,
        path: &str,
        oflags: i32,
        rights: u64,
        fdflags: i32,
    ) -> &mut Self {
        let path = self.s(path);
        self.call(format!(
            "(call $path_open (i32.const {dir}) (i32.const {follow}) {path} (i32.const {oflags}) (i64.const {rights}) (i64.const {rights}) (i32.const {fdflags}) (i32.const {FD_AT}))"
        ))
    }

    fn module(&self) -> String {
        let mut m = String::from("(module\n");
        for (name, params) in IMPORTS {
            m.push_str(&format!(
                "  (import \"wasi_snapshot_preview1\" \"{name}\" (func ${name} (param {params}) (result i32)))\n"
            ));
        }
        m.push_str("  (memory (export \"memory\") 1)\n  (global $n (mut i32) (i32.const 0))\n");
        for (at, text) in &self.data {
            let escaped: String = text.bytes().map(|b| format!("\\{b:02x}")).collect();
            m.push_str(&format!("  (data (i32.const {at}) \"{escaped}\")\n"));
        }
        m.push_str(
            "  (func $rec (param i32)\n    (i32.store8 (i32.add (i32.const 8192) (global.get $n)) (local.get 0))\n    (global.set $n (i32.add (global.get $n) (i32.const 1))))\n",
        );
        m.push_str("  (func (export \"_start\")\n");
        for call in &self.calls {
            m.push_str(&format!("    (call $rec {call})\n"));
        }
        m.push_str(
            "    (i32.store (i32.const 0) (i32.const 8192)) (i32.store (i32.const 4) (i32.const 8192))\n    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 16)))))\n",
        );
        m
    }
}

/// A tree with the two read-write mounts `/work` (fd 3) and `/w2` (fd 4) and the read-only
/// `/ro` (fd 5), planted files and symlinks.
pub struct Tree {
    /// Holds the folders.
    pub dir: tempfile::TempDir,
}

impl Tree {
    /// Plants the tree.
    pub fn new() -> Tree {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for sub in ["work/dir/sub", "w2", "ro"] {
            std::fs::create_dir_all(root.join(sub)).unwrap();
        }
        std::fs::write(root.join("work/a.txt"), "hello world\n").unwrap();
        std::fs::write(root.join("ro/r.txt"), "read only\n").unwrap();
        for (target, link) in [
            ("a.txt", "link-file"),
            ("dir", "link-dir"),
            ("nowhere", "dangling"),
            ("loop", "loop"),
        ] {
            std::os::unix::fs::symlink(target, root.join("work").join(link)).unwrap();
        }
        Tree { dir }
    }

    /// A host path beneath the tree.
    pub fn path(&self, rel: &str) -> std::path::PathBuf {
        self.dir.path().join(rel)
    }

    /// Runs the program; returns each call's errno and the bytes calls wrote at [`OUT`].
    pub fn run(&self, program: &Program) -> (Vec<u8>, Vec<u8>, RunOutput) {
        let root = self.dir.path().display();
        let yaml = format!(
            r#"version: 1
name: wasi-conformance
filesystem:
  mounts:
    - {{ guest: /work, host: "{root}/work", mode: rw }}
    - {{ guest: /w2, host: "{root}/w2", mode: rw }}
    - {{ guest: /ro, host: "{root}/ro", mode: ro }}
  rules:
    - {{ id: all, effect: allow, ops: [read, write, create, delete, list, rename, symlink], paths: ["/**"] }}
"#
        );
        let policy = parse_policy(&yaml, Path::new(".")).unwrap();
        let wat = program.module();
        let out = Sandbox::builder(Arc::new(policy))
            .build()
            .unwrap()
            .load("conformance.wat", wat.as_bytes(), "_start")
            .unwrap()
            .call(b"");
        let stdout = out.stdout.clone();
        assert_eq!(stdout.len(), 8192, "{wat}\n{:?}", out.report);
        let errnos = stdout[..program.calls.len()].to_vec();
        let written = stdout[OUT - 8192..].to_vec();
        (errnos, written, out)
    }
}

/// The capabilities of the report's events.
fn capabilities(out: &RunOutput) -> Vec<String> {
    let report = serde_json::to_value(&out.report).unwrap();
    report["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["capability"].as_str().unwrap(),
                e["decision"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn a_symlink_opened_without_follow_is_eloop_and_with_follow_is_opened() {
    let tree = Tree::new();
    let mut p = Program::default();
    p.open(3, 0, "link-file", 0, 2, 0)
        .open(3, 0, "link-dir", 0, 2, 0)
        .open(3, 0, "dangling", 0, 2, 0)
        .open(3, 0, "loop", 0, 2, 0)
        .open(3, 0, "link-dir", 2, 2, 0)
        .open(3, 1, "link-file", 0, 2, 0)
        .open(3, 1, "link-dir", 2, 2, 0);
    let (errnos, _, _) = tree.run(&p);
    // ELOOP, also with O_DIRECTORY (as Wasmtime answers); then both followed.
    assert_eq!(errnos, [32, 32, 32, 32, 32, 0, 0]);
}

#[test]
fn rights_are_reported_as_wasmtime_reports_them_and_requested_rights_hold() {
    let tree = Tree::new();
    let mut p = Program::default();
    p.call(format!(
        "(call $fd_fdstat_get (i32.const 3) (i32.const {OUT}))"
    ));
    // Opening `.` with the rights the preopen reports works.
    let dot = p.s(".");
    p.call(format!(
        "(call $path_open (i32.const 3) (i32.const 0) {dot} (i32.const 2) (i64.load (i32.const {})) (i64.load (i32.const {})) (i32.const 0) (i32.const 64))",
        OUT + 8, OUT + 16
    ));
    p.call(format!(
        "(call $fd_fdstat_get {FD} (i32.const {}))",
        OUT + 24
    ));
    p.open(3, 0, "a.txt", 0, 2, 0);
    p.call(format!(
        "(call $fd_fdstat_get {FD} (i32.const {}))",
        OUT + 48
    ));
    p.call(format!(
        "(call $fd_write {FD} (i32.const 0) (i32.const 1) (i32.const 16))"
    ));
    // A directory cannot be opened with FD_WRITE (Wasmtime's EISDIR).
    p.open(3, 0, "dir", 2, 64, 0);
    let (errnos, out, _) = tree.run(&p);
    assert_eq!(
        errnos,
        [0, 0, 0, 0, 0, 8, 31],
        "a read-only file refuses writes with EBADF"
    );
    let u64_at = |at: usize| u64::from_le_bytes(out[at..at + 8].try_into().unwrap());
    assert_eq!(out[0], 3, "a directory");
    assert_eq!(u64_at(8), RIGHTS_PREOPEN, "{:#x}", u64_at(8));
    assert_eq!(
        u64_at(16) & (1 << 2),
        1 << 2,
        "FD_SEEK is handed down to files"
    );
    assert_eq!(
        u64_at(24 + 8) & (1 << 2 | 1 << 6 | 1 << 22),
        0,
        "no file rights on a directory"
    );
    assert_eq!(
        u64_at(48 + 8) & (1 << 6),
        0,
        "no FD_WRITE on a read-only file"
    );
    assert_eq!(u64_at(48 + 8) & (1 << 1), 1 << 1, "FD_READ on it");
}

#[test]
fn a_trailing_slash_means_the_path_must_be_a_directory() {
    let tree = Tree::new();
    let mut p = Program::default();
    let file_slash = p.s("a.txt/");
    p.call(format!(
        "(call $path_unlink_file (i32.const 3) {file_slash})"
    ));
    let (target, new) = (p.s("a.txt"), p.s("new/"));
    p.call(format!("(call $path_symlink {target} (i32.const 3) {new})"));
    p.open(3, 0, "a.txt/", 0, 2, 0);
    let (through_file, made) = (p.s("a.txt/x"), p.s("made/"));
    p.call(format!(
        "(call $path_filestat_get (i32.const 3) (i32.const 0) {through_file} (i32.const {OUT}))"
    ));
    p.call(format!(
        "(call $path_create_directory (i32.const 3) {made})"
    ));
    p.open(3, 0, "dir/", 0, 2, 0);
    let (errnos, _, _) = tree.run(&p);
    assert_eq!(errnos, [54, 44, 54, 54, 0, 0]);
    assert!(
        tree.path("work/a.txt").is_file(),
        "unlink(\"a.txt/\") deleted the file"
    );
    assert!(std::fs::symlink_metadata(tree.path("work/new")).is_err());
    assert!(tree.path("work/made").is_dir());
}

#[test]
fn absolute_paths_and_dotdot_above_the_directory_fd_are_eperm() {
    let tree = Tree::new();
    let mut p = Program::default();
    p.open(3, 0, "/work/a.txt", 0, 2, 0)
        .open(3, 0, "../work/a.txt", 0, 2, 0)
        .open(3, 0, "dir", 2, 2, 0) // fd 6
        .open(3, 0, "dir/../a.txt", 0, 2, 0)
        .open(6, 0, "../a.txt", 0, 2, 0)
        .open(6, 0, "sub/..", 2, 2, 0);
    let (errnos, _, out) = tree.run(&p);
    assert_eq!(errnos, [63, 63, 0, 0, 63, 0]);
    // Refused before any decision: no event names the escaping paths.
    assert_eq!(capabilities(&out).len(), 3, "{:?}", capabilities(&out));
}

#[test]
fn times_are_set_as_a_decided_write_after_the_flags_are_checked() {
    let tree = Tree::new();
    let mut p = Program::default();
    let (a, r) = (p.s("a.txt"), p.s("r.txt"));
    let t = 1_000_000_000_123_456_789i64;
    p.call(format!("(call $path_filestat_set_times (i32.const 3) (i32.const 0) {a} (i64.const {t}) (i64.const {t}) (i32.const 3))"));
    p.call(
        "(call $fd_filestat_set_times (i32.const 99) (i64.const 0) (i64.const 0) (i32.const 12))",
    );
    p.call(format!("(call $path_filestat_set_times (i32.const 3) (i32.const 0) {a} (i64.const {t}) (i64.const {t}) (i32.const 5))"));
    p.call(format!("(call $path_filestat_set_times (i32.const 5) (i32.const 0) {r} (i64.const {t}) (i64.const {t}) (i32.const 4))"));
    p.open(3, 0, "a.txt", 0, 2, 0);
    p.call(format!(
        "(call $fd_filestat_set_times {FD} (i64.const 0) (i64.const {}) (i32.const 4))",
        t + 1_000_000_000
    ));
    let (errnos, _, out) = tree.run(&p);
    // EINVAL (ATIM with ATIM_NOW), EINVAL before EBADF, set, EROFS on the read-only mount.
    assert_eq!(errnos, [28, 28, 0, 69, 0, 0]);
    let meta = std::fs::metadata(tree.path("work/a.txt")).unwrap();
    let mtime = meta
        .modified()
        .unwrap()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    assert_eq!(mtime.as_secs(), 1_000_000_001, "the fd's mtime is set");
    let atime = meta
        .accessed()
        .unwrap()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    assert_eq!(atime.as_nanos(), t as u128, "the path's atime is set");
    let caps = capabilities(&out);
    assert!(caps.contains(&"fs.write deny".to_owned()), "{caps:?}");
    assert_eq!(
        caps.iter().filter(|c| *c == "fs.write allow").count(),
        2,
        "{caps:?}"
    );
}

#[test]
fn fdstat_set_flags_toggles_append_and_refuses_synchronous_io() {
    let tree = Tree::new();
    let mut p = Program::default();
    p.open(3, 0, "a.txt", 0, 2 | 64, 0);
    p.call(format!("(call $fd_fdstat_set_flags {FD} (i32.const 1))"));
    p.call(format!(
        "(block (result i32) (i32.store (i32.const 32) (i32.const 2048)) (i32.store (i32.const 36) (i32.const 1)) (call $fd_write {FD} (i32.const 32) (i32.const 1) (i32.const 16)))"
    ));
    p.call(format!("(call $fd_fdstat_get {FD} (i32.const {OUT}))"));
    p.call(format!("(call $fd_fdstat_set_flags {FD} (i32.const 16))"));
    p.call("(call $fd_fdstat_set_flags (i32.const 3) (i32.const 0))");
    p.call("(call $fd_fdstat_set_flags (i32.const 99) (i32.const 1))");
    p.call(format!("(call $fd_fdstat_set_flags {FD} (i32.const 0))"));
    p.call(format!(
        "(block (result i32) (i32.store (i32.const 32) (i32.const 2048)) (i32.store (i32.const 36) (i32.const 1)) (call $fd_write {FD} (i32.const 32) (i32.const 1) (i32.const 16)))"
    ));
    p.data.push((2048, "!".to_owned()));
    let (errnos, out, _) = tree.run(&p);
    assert_eq!(errnos, [0, 0, 0, 0, 58, 8, 8, 0, 0]);
    assert_eq!(out[2], 1, "fdstat reports APPEND");
    // Appended at the end, then (APPEND off) written at the position after it.
    assert_eq!(
        std::fs::read(tree.path("work/a.txt")).unwrap(),
        b"hello world\n!!"
    );
}

#[test]
fn create_truncate_and_append_together_open_and_append() {
    let tree = Tree::new();
    let mut p = Program::default();
    p.data.push((2048, "ab".to_owned()));
    let write = format!(
        "(block (result i32) (i32.store (i32.const 32) (i32.const 2048)) (i32.store (i32.const 36) (i32.const 2)) (call $fd_write {FD} (i32.const 32) (i32.const 1) (i32.const 16)))"
    );
    p.open(3, 0, "a.txt", 1 | 8, 2 | 64, 1)
        .call(write.clone())
        .call(write.clone());
    p.open(3, 0, "new.txt", 1 | 8, 64, 1).call(write);
    let (errnos, _, _) = tree.run(&p);
    assert_eq!(errnos, [0, 0, 0, 0, 0]);
    assert_eq!(std::fs::read(tree.path("work/a.txt")).unwrap(), b"abab");
    assert_eq!(std::fs::read(tree.path("work/new.txt")).unwrap(), b"ab");
}

#[test]
fn hard_links_stay_inside_one_read_write_mount() {
    let tree = Tree::new();
    let mut p = Program::default();
    let (a, h, r, x) = (p.s("a.txt"), p.s("h.txt"), p.s("r.txt"), p.s("x.txt"));
    p.call(format!(
        "(call $path_link (i32.const 3) (i32.const 0) {a} (i32.const 3) {h})"
    ));
    p.call(format!(
        "(call $path_link (i32.const 3) (i32.const 0) {a} (i32.const 4) {x})"
    ));
    p.call(format!(
        "(call $path_link (i32.const 5) (i32.const 0) {r} (i32.const 3) {x})"
    ));
    p.call(format!(
        "(call $path_link (i32.const 5) (i32.const 0) {r} (i32.const 5) {x})"
    ));
    p.call(format!(
        "(call $path_link (i32.const 3) (i32.const 0) {a} (i32.const 3) {h})"
    ));
    p.call(format!(
        "(call $path_filestat_get (i32.const 3) (i32.const 0) {h} (i32.const {OUT}))"
    ));
    let (errnos, out, report) = tree.run(&p);
    // Made; EXDEV across mounts; EROFS from a read-only mount (twice); EEXIST.
    assert_eq!(errnos, [0, 75, 69, 69, 20, 0]);
    assert_eq!(
        u64::from_le_bytes(out[24..32].try_into().unwrap()),
        2,
        "two links"
    );
    assert_eq!(
        std::fs::read(tree.path("work/h.txt")).unwrap(),
        b"hello world\n"
    );
    assert!(!tree.path("w2/x.txt").exists() && !tree.path("work/x.txt").exists());
    assert!(!tree.path("ro/x.txt").exists());
    let caps = capabilities(&report);
    assert!(
        caps.starts_with(&[
            "fs.read allow".into(),
            "fs.write allow".into(),
            "fs.create allow".into()
        ]),
        "{caps:?}"
    );
}

#[test]
fn a_closed_fd_is_ebadf_first_and_no_fd_is_a_socket() {
    let tree = Tree::new();
    let mut p = Program::default();
    p.call("(call $fd_allocate (i32.const 3) (i64.const 0) (i64.const 1))");
    p.call("(call $fd_allocate (i32.const 99) (i64.const 0) (i64.const 1))");
    p.open(3, 0, "a.txt", 0, 2, 0);
    p.call(format!(
        "(call $fd_allocate {FD} (i64.const 0) (i64.const 1))"
    ));
    p.call("(call $sock_recv (i32.const 3) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 16) (i32.const 20))");
    p.call(format!(
        "(call $sock_send {FD} (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 16))"
    ));
    p.call(
        "(call $sock_send (i32.const 99) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 16))",
    );
    p.call("(call $fd_fdstat_set_rights (i32.const 99) (i64.const 0) (i64.const 0))");
    let (errnos, _, _) = tree.run(&p);
    assert_eq!(errnos, [8, 8, 0, 58, 57, 57, 8, 8]);
}
