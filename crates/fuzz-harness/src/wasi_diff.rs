//! `wasi_diff`: the same script of WASI preview 1 calls runs under the sandbox (allow-all
//! policy, one read-write mount) and under a reference, Wasmtime's own preview 1 (the mount's
//! folder as its preopen), each over its own identical copy of a small tree with planted
//! files, folders and symlinks. Every call's errno and returned bytes must match, and so must
//! the two trees afterwards, except for the few deliberate differences the policy causes
//! ([`known_difference`], listed in `docs/host-abi.md`).
//!
//! The script is a small byte code ([`WasiScript::decode`], [`WasiScript::encode`]): one
//! opcode byte and a fixed number of argument bytes per call, each argument an index into a
//! table (paths, fds, flags, data). It is turned into a WAT module ([`WasiScript::module`])
//! that makes the calls and writes one fixed-size record per call (errno, then what the call
//! returned) to stdout at its end. The reference runs in the caller's hands
//! ([`Reference`]): the harness crate keeps Wasmtime's WASI out of its own dependencies.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use sandbox_policy::parse_policy;
use sandbox_runtime::{sha256_hex, Sandbox};
use wasmtime::Engine;

use crate::snapshot;

/// Most calls one script makes.
pub const MAX_CALLS: usize = 32;
/// The guest path of the mount (and the reference's preopen name).
pub const MOUNT: &str = "/work";
/// Bytes of one call's record: errno (8 bytes with padding), what the call returned (8), then
/// the bytes it filled.
const RECORD: usize = 528;
const SLOTS: usize = 64;
const IOV: usize = 128;
const PATHS_AT: usize = 1024;
const TARGETS_AT: usize = 4096;
const DATA_AT: usize = 5120;
const OUT_AT: usize = 16384;
/// The fd number a script uses for "a closed fd".
const CLOSED_FD: i32 = 77;
/// Bytes a `fd_readdir` call may fill.
const READDIR_BYTES: usize = 512;

/// Paths a call can name, relative to its directory fd.
pub const PATHS: &[&str] = &[
    "a.txt",
    "a.txt/",
    "empty",
    "dir",
    "dir/",
    "dir/f.txt",
    "dir/sub",
    "dir/up",
    "link-file",
    "link-file/",
    "link-dir",
    "link-dir/",
    "dangling",
    "loop",
    "new",
    "new/",
    "new2",
    "dir/new",
    ".",
    "..",
    "../a.txt",
    "dir/../a.txt",
    "dir/../../x",
    "/abs",
    "",
    "link-dir/f.txt",
    "nonexist/x",
    "f.txt",
    "sub",
    "dir/sub/",
    "link-dir/sub/..",
    "a.txt/x",
];

/// Targets a `path_symlink` can write.
pub const TARGETS: &[&str] = &[
    "a.txt",
    "dir",
    "nowhere",
    "../a.txt",
    "/abs",
    "dir/f.txt",
    "new",
    "sub/",
];

/// Bytes a write can write.
pub const DATA: &[&str] = &["", "x", "hello", "0123456789abcdef", "line\n"];

/// Rights a `path_open` can ask for (base rights; inheriting is the same).
const RIGHTS: &[u64] = &[
    0,
    1 << 1,
    1 << 6,
    (1 << 1) | (1 << 6),
    (1 << 30) - 1,
    (1 << 2) | (1 << 5),
];

/// One call of a script; every argument byte is an index into a table, taken modulo its size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `path_open(dir, dirflags, path, oflags, rights, 0, fdflags)`, the fd kept in `slot`.
    Open {
        dir: u8,
        follow: u8,
        path: u8,
        oflags: u8,
        rights: u8,
        fdflags: u8,
        slot: u8,
    },
    /// `fd_read` of `len` bytes.
    Read { fd: u8, len: u8 },
    /// `fd_pread` of `len` bytes at `offset`.
    Pread { fd: u8, len: u8, offset: u8 },
    /// `fd_write` of one of [`DATA`].
    Write { fd: u8, data: u8 },
    /// `fd_pwrite` of one of [`DATA`] at `offset`.
    Pwrite { fd: u8, data: u8, offset: u8 },
    /// `fd_seek(fd, offset as i8, whence % 3)`.
    Seek { fd: u8, offset: u8, whence: u8 },
    /// `fd_tell`.
    Tell { fd: u8 },
    /// `fd_close`.
    Close { fd: u8 },
    /// `fd_fdstat_get`.
    Fdstat { fd: u8 },
    /// `fd_fdstat_set_flags(fd, flags & 31)`.
    SetFlags { fd: u8, flags: u8 },
    /// `fd_filestat_get`.
    Filestat { fd: u8 },
    /// `fd_filestat_set_size(fd, size)`.
    SetSize { fd: u8, size: u8 },
    /// `fd_filestat_set_times(fd, T, T, flags & 15)`.
    FdSetTimes { fd: u8, flags: u8 },
    /// `path_filestat_set_times(dir, follow, path, T, T, flags & 15)`.
    PathSetTimes {
        dir: u8,
        follow: u8,
        path: u8,
        flags: u8,
    },
    /// `path_filestat_get`.
    PathStat { dir: u8, follow: u8, path: u8 },
    /// `path_create_directory`.
    Mkdir { dir: u8, path: u8 },
    /// `path_remove_directory`.
    Rmdir { dir: u8, path: u8 },
    /// `path_unlink_file`.
    Unlink { dir: u8, path: u8 },
    /// `path_rename`.
    Rename {
        dir: u8,
        path: u8,
        dir2: u8,
        path2: u8,
    },
    /// `path_symlink(target, dir, path)`.
    Symlink { target: u8, dir: u8, path: u8 },
    /// `path_readlink` into 64 bytes.
    Readlink { dir: u8, path: u8 },
    /// `path_link`.
    Link {
        dir: u8,
        follow: u8,
        path: u8,
        dir2: u8,
        path2: u8,
    },
    /// `fd_readdir` from cookie 0.
    Readdir { fd: u8 },
    /// `fd_allocate(fd, 0, 16)`.
    Allocate { fd: u8 },
    /// `sock_recv`, `sock_send`, `sock_shutdown` or `sock_accept` (by `which`).
    Sock { fd: u8, which: u8 },
    /// `fd_advise(fd, 0, 0, advice % 6)`.
    Advise { fd: u8, advice: u8 },
    /// `fd_sync`.
    Sync { fd: u8 },
}

/// How many argument bytes each opcode takes, in opcode order.
const ARITY: &[usize] = &[
    7, 2, 3, 2, 3, 3, 1, 1, 1, 2, 1, 2, 2, 4, 3, 2, 2, 2, 4, 3, 2, 5, 1, 1, 2, 2, 1,
];

impl Op {
    fn decode(code: u8, a: &[u8]) -> Op {
        let g = |i: usize| a.get(i).copied().unwrap_or(0);
        match code as usize % ARITY.len() {
            0 => Op::Open {
                dir: g(0),
                follow: g(1),
                path: g(2),
                oflags: g(3),
                rights: g(4),
                fdflags: g(5),
                slot: g(6),
            },
            1 => Op::Read {
                fd: g(0),
                len: g(1),
            },
            2 => Op::Pread {
                fd: g(0),
                len: g(1),
                offset: g(2),
            },
            3 => Op::Write {
                fd: g(0),
                data: g(1),
            },
            4 => Op::Pwrite {
                fd: g(0),
                data: g(1),
                offset: g(2),
            },
            5 => Op::Seek {
                fd: g(0),
                offset: g(1),
                whence: g(2),
            },
            6 => Op::Tell { fd: g(0) },
            7 => Op::Close { fd: g(0) },
            8 => Op::Fdstat { fd: g(0) },
            9 => Op::SetFlags {
                fd: g(0),
                flags: g(1),
            },
            10 => Op::Filestat { fd: g(0) },
            11 => Op::SetSize {
                fd: g(0),
                size: g(1),
            },
            12 => Op::FdSetTimes {
                fd: g(0),
                flags: g(1),
            },
            13 => Op::PathSetTimes {
                dir: g(0),
                follow: g(1),
                path: g(2),
                flags: g(3),
            },
            14 => Op::PathStat {
                dir: g(0),
                follow: g(1),
                path: g(2),
            },
            15 => Op::Mkdir {
                dir: g(0),
                path: g(1),
            },
            16 => Op::Rmdir {
                dir: g(0),
                path: g(1),
            },
            17 => Op::Unlink {
                dir: g(0),
                path: g(1),
            },
            18 => Op::Rename {
                dir: g(0),
                path: g(1),
                dir2: g(2),
                path2: g(3),
            },
            19 => Op::Symlink {
                target: g(0),
                dir: g(1),
                path: g(2),
            },
            20 => Op::Readlink {
                dir: g(0),
                path: g(1),
            },
            21 => Op::Link {
                dir: g(0),
                follow: g(1),
                path: g(2),
                dir2: g(3),
                path2: g(4),
            },
            22 => Op::Readdir { fd: g(0) },
            23 => Op::Allocate { fd: g(0) },
            24 => Op::Sock {
                fd: g(0),
                which: g(1),
            },
            25 => Op::Advise {
                fd: g(0),
                advice: g(1),
            },
            _ => Op::Sync { fd: g(0) },
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        let (code, args): (u8, Vec<u8>) = match *self {
            Op::Open {
                dir,
                follow,
                path,
                oflags,
                rights,
                fdflags,
                slot,
            } => (0, vec![dir, follow, path, oflags, rights, fdflags, slot]),
            Op::Read { fd, len } => (1, vec![fd, len]),
            Op::Pread { fd, len, offset } => (2, vec![fd, len, offset]),
            Op::Write { fd, data } => (3, vec![fd, data]),
            Op::Pwrite { fd, data, offset } => (4, vec![fd, data, offset]),
            Op::Seek { fd, offset, whence } => (5, vec![fd, offset, whence]),
            Op::Tell { fd } => (6, vec![fd]),
            Op::Close { fd } => (7, vec![fd]),
            Op::Fdstat { fd } => (8, vec![fd]),
            Op::SetFlags { fd, flags } => (9, vec![fd, flags]),
            Op::Filestat { fd } => (10, vec![fd]),
            Op::SetSize { fd, size } => (11, vec![fd, size]),
            Op::FdSetTimes { fd, flags } => (12, vec![fd, flags]),
            Op::PathSetTimes {
                dir,
                follow,
                path,
                flags,
            } => (13, vec![dir, follow, path, flags]),
            Op::PathStat { dir, follow, path } => (14, vec![dir, follow, path]),
            Op::Mkdir { dir, path } => (15, vec![dir, path]),
            Op::Rmdir { dir, path } => (16, vec![dir, path]),
            Op::Unlink { dir, path } => (17, vec![dir, path]),
            Op::Rename {
                dir,
                path,
                dir2,
                path2,
            } => (18, vec![dir, path, dir2, path2]),
            Op::Symlink { target, dir, path } => (19, vec![target, dir, path]),
            Op::Readlink { dir, path } => (20, vec![dir, path]),
            Op::Link {
                dir,
                follow,
                path,
                dir2,
                path2,
            } => (21, vec![dir, follow, path, dir2, path2]),
            Op::Readdir { fd } => (22, vec![fd]),
            Op::Allocate { fd } => (23, vec![fd]),
            Op::Sock { fd, which } => (24, vec![fd, which]),
            Op::Advise { fd, advice } => (25, vec![fd, advice]),
            Op::Sync { fd } => (26, vec![fd]),
        };
        out.push(code);
        out.extend(args);
    }
}

/// A script of WASI calls.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WasiScript {
    /// The calls, in order (at most [`MAX_CALLS`]).
    pub ops: Vec<Op>,
}

/// An fd argument: the preopen, one of four slots filled by `path_open`, or a closed fd.
fn fd_expr(b: u8) -> String {
    match b % 6 {
        0 => "(i32.const 3)".to_owned(),
        5 => format!("(i32.const {CLOSED_FD})"),
        k => format!("(i32.load (i32.const {}))", SLOTS + 4 * (k as usize - 1)),
    }
}

/// `(ptr, len)` of path `b` as WAT arguments.
fn path_args(b: u8) -> String {
    let i = b as usize % PATHS.len();
    format!(
        "(i32.const {}) (i32.const {})",
        PATHS_AT + 64 * i,
        PATHS[i].len()
    )
}

fn data_string(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("\\{b:02x}")).collect()
}

impl WasiScript {
    /// Reads a script from fuzzer bytes; never fails (missing arguments are 0).
    pub fn decode(data: &[u8]) -> WasiScript {
        let mut ops = Vec::new();
        let mut at = 0;
        while at < data.len() && ops.len() < MAX_CALLS {
            let code = data[at];
            let arity = ARITY[code as usize % ARITY.len()];
            let end = (at + 1 + arity).min(data.len());
            ops.push(Op::decode(code, &data[at + 1..end]));
            at = end;
        }
        WasiScript { ops }
    }

    /// The bytes [`WasiScript::decode`] reads back as this script.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for op in &self.ops {
            op.encode(&mut out);
        }
        out
    }

    /// The WAT module that makes the calls and writes their records to stdout.
    pub fn module(&self) -> String {
        let mut m = String::from("(module\n");
        for (name, params) in IMPORTS {
            let _ = writeln!(
                m,
                "  (import \"wasi_snapshot_preview1\" \"{name}\" (func ${name} (param {params}) (result i32)))"
            );
        }
        m.push_str("  (memory (export \"memory\") 1)\n");
        let _ = writeln!(
            m,
            "  (data (i32.const {SLOTS}) \"{}\")",
            data_string(&[CLOSED_FD as u8, 0, 0, 0].repeat(4))
        );
        for (i, p) in PATHS.iter().enumerate() {
            let _ = writeln!(
                m,
                "  (data (i32.const {}) \"{}\")",
                PATHS_AT + 64 * i,
                data_string(p.as_bytes())
            );
        }
        for (i, t) in TARGETS.iter().enumerate() {
            let _ = writeln!(
                m,
                "  (data (i32.const {}) \"{}\")",
                TARGETS_AT + 64 * i,
                data_string(t.as_bytes())
            );
        }
        for (i, d) in DATA.iter().enumerate() {
            let _ = writeln!(
                m,
                "  (data (i32.const {}) \"{}\")",
                DATA_AT + 64 * i,
                data_string(d.as_bytes())
            );
        }
        m.push_str("  (func (export \"_start\")\n");
        for (i, op) in self.ops.iter().enumerate() {
            let rec = OUT_AT + i * RECORD;
            let _ = writeln!(m, "    (i32.store (i32.const {rec}) {})", call(op, rec));
        }
        let _ = writeln!(
            m,
            "    (i32.store (i32.const {IOV}) (i32.const {OUT_AT}))\n    (i32.store (i32.const {}) (i32.const {}))\n    (drop (call $fd_write (i32.const 1) (i32.const {IOV}) (i32.const 1) (i32.const 0)))))",
            IOV + 4,
            self.ops.len() * RECORD
        );
        m
    }
}

/// Every import a script may use, with its parameter types.
const IMPORTS: &[(&str, &str)] = &[
    ("path_open", "i32 i32 i32 i32 i32 i64 i64 i32 i32"),
    ("fd_read", "i32 i32 i32 i32"),
    ("fd_pread", "i32 i32 i32 i64 i32"),
    ("fd_write", "i32 i32 i32 i32"),
    ("fd_pwrite", "i32 i32 i32 i64 i32"),
    ("fd_seek", "i32 i64 i32 i32"),
    ("fd_tell", "i32 i32"),
    ("fd_close", "i32"),
    ("fd_fdstat_get", "i32 i32"),
    ("fd_fdstat_set_flags", "i32 i32"),
    ("fd_filestat_get", "i32 i32"),
    ("fd_filestat_set_size", "i32 i64"),
    ("fd_filestat_set_times", "i32 i64 i64 i32"),
    ("path_filestat_set_times", "i32 i32 i32 i32 i64 i64 i32"),
    ("path_filestat_get", "i32 i32 i32 i32 i32"),
    ("path_create_directory", "i32 i32 i32"),
    ("path_remove_directory", "i32 i32 i32"),
    ("path_unlink_file", "i32 i32 i32"),
    ("path_rename", "i32 i32 i32 i32 i32 i32"),
    ("path_symlink", "i32 i32 i32 i32 i32"),
    ("path_readlink", "i32 i32 i32 i32 i32 i32"),
    ("path_link", "i32 i32 i32 i32 i32 i32 i32"),
    ("fd_readdir", "i32 i32 i32 i64 i32"),
    ("fd_allocate", "i32 i64 i64"),
    ("sock_recv", "i32 i32 i32 i32 i32 i32"),
    ("sock_send", "i32 i32 i32 i32 i32"),
    ("sock_shutdown", "i32 i32"),
    ("sock_accept", "i32 i32 i32"),
    ("fd_advise", "i32 i64 i64 i32"),
    ("fd_sync", "i32"),
];

/// The WAT expression making one call, its outputs going to record `rec`.
fn call(op: &Op, rec: usize) -> String {
    path_call(op, rec).unwrap_or_else(|| fd_call(op, rec))
}

/// Sets the one iovec at [`IOV`] to `(ptr, len)`.
fn iov(ptr: usize, len: usize) -> String {
    format!(
        "(i32.store (i32.const {IOV}) (i32.const {ptr})) (i32.store (i32.const {}) (i32.const {len}))",
        IOV + 4
    )
}

/// The iovec of one of [`DATA`].
fn data_iov(d: u8) -> String {
    let i = d as usize % DATA.len();
    iov(DATA_AT + 64 * i, DATA[i].len())
}

/// The two times `set_times` calls give, in nanoseconds.
const TIMES: &str = "(i64.const 1000000000123456789) (i64.const 1000000000123456789)";

/// The calls that take a path.
fn path_call(op: &Op, rec: usize) -> Option<String> {
    // Wasmtime requires results aligned to their size: records and their parts are 8-aligned.
    let out = rec + 8;
    let body = rec + 16;
    let times = TIMES;
    Some(match *op {
        Op::Open { dir, follow, path, oflags, rights, fdflags, slot } => format!(
            "(call $path_open {} (i32.const {}) {} (i32.const {}) (i64.const {r}) (i64.const {r}) (i32.const {}) (i32.const {}))",
            fd_expr(dir), follow & 1, path_args(path), oflags & 15,
            fdflags & 31, SLOTS + 4 * (slot as usize % 4),
            r = RIGHTS[rights as usize % RIGHTS.len()]
        ),
        Op::PathSetTimes { dir, follow, path, flags } => format!("(call $path_filestat_set_times {} (i32.const {}) {} {times} (i32.const {}))", fd_expr(dir), follow & 1, path_args(path), flags & 15),
        Op::PathStat { dir, follow, path } => format!("(call $path_filestat_get {} (i32.const {}) {} (i32.const {out}))", fd_expr(dir), follow & 1, path_args(path)),
        Op::Mkdir { dir, path } => format!("(call $path_create_directory {} {})", fd_expr(dir), path_args(path)),
        Op::Rmdir { dir, path } => format!("(call $path_remove_directory {} {})", fd_expr(dir), path_args(path)),
        Op::Unlink { dir, path } => format!("(call $path_unlink_file {} {})", fd_expr(dir), path_args(path)),
        Op::Rename { dir, path, dir2, path2 } => format!("(call $path_rename {} {} {} {})", fd_expr(dir), path_args(path), fd_expr(dir2), path_args(path2)),
        Op::Symlink { target, dir, path } => {
            let t = target as usize % TARGETS.len();
            format!("(call $path_symlink (i32.const {}) (i32.const {}) {} {})", TARGETS_AT + 64 * t, TARGETS[t].len(), fd_expr(dir), path_args(path))
        }
        Op::Readlink { dir, path } => format!("(call $path_readlink {} {} (i32.const {body}) (i32.const 64) (i32.const {out}))", fd_expr(dir), path_args(path)),
        Op::Link { dir, follow, path, dir2, path2 } => format!("(call $path_link {} (i32.const {}) {} {} {})", fd_expr(dir), follow & 1, path_args(path), fd_expr(dir2), path_args(path2)),
        _ => return None,
    })
}

/// The calls on an fd.
fn fd_call(op: &Op, rec: usize) -> String {
    // Wasmtime requires results aligned to their size: records and their parts are 8-aligned.
    let out = rec + 8;
    let body = rec + 16;
    let times = TIMES;
    let data = data_iov;
    match *op {
        Op::Read { fd, len } => format!("(block (result i32) {} (call $fd_read {} (i32.const {IOV}) (i32.const 1) (i32.const {out})))", iov(body, len as usize % 64), fd_expr(fd)),
        Op::Pread { fd, len, offset } => format!("(block (result i32) {} (call $fd_pread {} (i32.const {IOV}) (i32.const 1) (i64.const {offset}) (i32.const {out})))", iov(body, len as usize % 64), fd_expr(fd)),
        Op::Write { fd, data: d } => format!("(block (result i32) {} (call $fd_write {} (i32.const {IOV}) (i32.const 1) (i32.const {out})))", data(d), fd_expr(fd)),
        Op::Pwrite { fd, data: d, offset } => format!("(block (result i32) {} (call $fd_pwrite {} (i32.const {IOV}) (i32.const 1) (i64.const {offset}) (i32.const {out})))", data(d), fd_expr(fd)),
        Op::Seek { fd, offset, whence } => format!("(call $fd_seek {} (i64.const {}) (i32.const {}) (i32.const {out}))", fd_expr(fd), offset as i8, whence % 3),
        Op::Tell { fd } => format!("(call $fd_tell {} (i32.const {out}))", fd_expr(fd)),
        Op::Close { fd } => format!("(call $fd_close {})", fd_expr(fd)),
        Op::Fdstat { fd } => format!("(call $fd_fdstat_get {} (i32.const {out}))", fd_expr(fd)),
        Op::SetFlags { fd, flags } => format!("(call $fd_fdstat_set_flags {} (i32.const {}))", fd_expr(fd), flags & 31),
        Op::Filestat { fd } => format!("(call $fd_filestat_get {} (i32.const {out}))", fd_expr(fd)),
        Op::SetSize { fd, size } => format!("(call $fd_filestat_set_size {} (i64.const {size}))", fd_expr(fd)),
        Op::FdSetTimes { fd, flags } => format!("(call $fd_filestat_set_times {} {times} (i32.const {}))", fd_expr(fd), flags & 15),
        Op::Readdir { fd } => format!("(call $fd_readdir {} (i32.const {body}) (i32.const {READDIR_BYTES}) (i64.const 0) (i32.const {out}))", fd_expr(fd)),
        Op::Allocate { fd } => format!("(call $fd_allocate {} (i64.const 0) (i64.const 16))", fd_expr(fd)),
        Op::Sock { fd, which } => match which % 4 {
            0 => format!("(block (result i32) {} (call $sock_recv {} (i32.const {IOV}) (i32.const 1) (i32.const 0) (i32.const {out}) (i32.const {body})))", iov(body + 16, 8), fd_expr(fd)),
            1 => format!("(block (result i32) {} (call $sock_send {} (i32.const {IOV}) (i32.const 1) (i32.const 0) (i32.const {out})))", data(1), fd_expr(fd)),
            2 => format!("(call $sock_shutdown {} (i32.const 3))", fd_expr(fd)),
            _ => format!("(call $sock_accept {} (i32.const 0) (i32.const {out}))", fd_expr(fd)),
        },
        Op::Advise { fd, advice } => format!("(call $fd_advise {} (i64.const 0) (i64.const 0) (i32.const {}))", fd_expr(fd), advice % 6),
        Op::Sync { fd } => format!("(call $fd_sync {})", fd_expr(fd)),

        _ => String::new(),
    }
}

/// What one call gave back, as compared: its errno and the bytes that must match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// The errno.
    pub errno: u32,
    /// The returned values that must match (host identity and times left out).
    pub result: String,
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .map_or(0, |s| u32::from_le_bytes(s.try_into().unwrap_or_default()))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 8)
        .map_or(0, |s| u64::from_le_bytes(s.try_into().unwrap_or_default()))
}

/// Parses the `dirent`s of a readdir buffer into sorted `name:type` pairs (the sandbox
/// lists sorted, the host in its own order; inodes differ between the two copies).
fn dirents(b: &[u8], used: usize) -> String {
    let mut names = Vec::new();
    let mut at = 0;
    while at + 24 <= used {
        let len = u32_at(b, at + 16) as usize;
        let kind = b[at + 20];
        let Some(name) = b.get(at + 24..at + 24 + len) else {
            break;
        };
        if at + 24 + len > used {
            break;
        }
        names.push(format!("{}:{kind}", String::from_utf8_lossy(name)));
        at += 24 + len;
    }
    names.sort();
    names.join(",")
}

/// Reads the records of a run's stdout, one per call.
pub fn observe(script: &WasiScript, stdout: &[u8]) -> Vec<Observed> {
    script
        .ops
        .iter()
        .enumerate()
        .map(|(i, op)| {
            let rec = stdout.get(i * RECORD..(i + 1) * RECORD).unwrap_or_default();
            let errno = u32_at(rec, 0);
            let body = rec.get(8..).unwrap_or_default();
            let result = if errno != 0 {
                String::new()
            } else {
                result_of(op, body)
            };
            Observed { errno, result }
        })
        .collect()
}

fn result_of(op: &Op, b: &[u8]) -> String {
    match op {
        Op::Read { .. } | Op::Pread { .. } | Op::Readlink { .. } => {
            let n = (u32_at(b, 0) as usize).min(64);
            format!(
                "{n} {:?}",
                String::from_utf8_lossy(b.get(8..8 + n).unwrap_or_default())
            )
        }
        Op::Write { .. } | Op::Pwrite { .. } => format!("{}", u32_at(b, 0)),
        Op::Seek { .. } | Op::Tell { .. } => format!("{}", u64_at(b, 0)),
        Op::Fdstat { .. } => format!(
            "type {} flags {} rights {:#x} {:#x}",
            b[0],
            u32_at(b, 2) & 0xffff,
            u64_at(b, 8),
            u64_at(b, 16)
        ),
        Op::Filestat { .. } | Op::PathStat { .. } => {
            format!(
                "type {} nlink {} size {}",
                b[16],
                u64_at(b, 24),
                u64_at(b, 32)
            )
        }
        Op::Readdir { .. } => {
            let used = (u32_at(b, 0) as usize).min(READDIR_BYTES);
            if used == READDIR_BYTES {
                "full".to_owned()
            } else {
                dirents(b.get(8..).unwrap_or_default(), used)
            }
        }
        _ => String::new(),
    }
}

/// Builds the tree both sides start from, in `root`.
pub fn plant(root: &Path) {
    let write = |rel: &str, text: &str| std::fs::write(root.join(rel), text).expect("plant a file");
    std::fs::create_dir_all(root.join("dir/sub")).expect("plant dir/sub");
    write("a.txt", "hello world\n");
    write("empty", "");
    write("dir/f.txt", "inner");
    let link = |target: &str, rel: &str| {
        std::os::unix::fs::symlink(target, root.join(rel)).expect("plant a link")
    };
    link("a.txt", "link-file");
    link("dir", "link-dir");
    link("nowhere", "dangling");
    link("loop", "loop");
    link("../a.txt", "dir/up");
}

/// A deliberate difference: the sandbox's errno, the reference's, and why.
pub fn known_difference(op: &Op, sandbox: &Observed, reference: &Observed) -> Option<&'static str> {
    const INVAL: u32 = 28;
    const NOTSUP: u32 = 58;
    match op {
        // The policy's rule for guest-made links: relative, no `..`.
        Op::Symlink { target, .. }
            if sandbox.errno == INVAL && {
                let t = TARGETS[*target as usize % TARGETS.len()];
                t.starts_with('/') || t.split('/').any(|p| p == "..")
            } =>
        {
            Some("a guest-made symlink target is relative with no `..` (policy)")
        }
        Op::PathStat { path, .. } | Op::PathSetTimes { path, .. } | Op::Open { path, .. }
            if PATHS[*path as usize % PATHS.len()] == "link-dir/sub/.." =>
        {
            Some("`..` after a symlink is taken lexically (the policy decides the path as written)")
        }
        Op::SetFlags { flags, .. }
            if flags & 26 != 0 && sandbox.errno == NOTSUP && reference.errno == INVAL =>
        {
            Some("synchronous I/O flags are refused as unsupported")
        }
        _ => None,
    }
}

/// How a script's two runs compared.
#[derive(Debug, Default)]
pub struct Verdict {
    /// Calls whose results matched before any difference.
    pub matched: usize,
    /// Deliberate differences met (after one, the two trees may differ, so comparing stops).
    pub known: Vec<&'static str>,
}

/// Runs a script under the sandbox over `root`, returning its stdout.
pub fn run_sandbox(wat: &str, root: &Path) -> Vec<u8> {
    let yaml = format!(
        r#"version: 1
name: wasi-diff
mode: enforce
budgets: {{ fuel: 50_000_000, timeout_ms: 5000, memory_bytes: 16MiB }}
filesystem:
  mounts:
    - {{ guest: {MOUNT}, host: "{}", mode: rw }}
  rules:
    - {{ id: all, effect: allow, ops: [read, write, create, delete, list, rename, symlink], paths: ["{MOUNT}/**"] }}
stdio: {{ stdout_bytes: 1MiB, stderr_bytes: 64KiB }}
limits: {{ open_files: 64 }}
"#,
        root.display()
    );
    let policy = parse_policy(&yaml, root).expect("the wasi_diff policy parses");
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    let engine = ENGINE
        .get_or_init(|| Sandbox::default_engine().expect("engine"))
        .clone();
    let output = Sandbox::builder(Arc::new(policy))
        .policy_source("wasi-diff.yaml", sha256_hex(yaml.as_bytes()))
        .engine(engine)
        .build()
        .and_then(|s| s.load("wasi-diff.wat", wat.as_bytes(), "_start"))
        .map(|p| p.call(b""))
        .unwrap_or_else(|e| panic!("the sandbox could not run a script: {e}\n{wat}"));
    output.stdout
}

/// Runs a script under the reference: Wasmtime's own preview 1 with `root` preopened as
/// [`MOUNT`]; returns the module's stdout.
pub type Reference = dyn Fn(&str, &Path) -> Vec<u8>;

/// Runs `script` on both sides and panics on a difference that is not a known one.
pub fn compare(script: &WasiScript, reference: &Reference) -> Verdict {
    let wat = script.module();
    let ours = tempfile::tempdir().expect("tempdir");
    let theirs = tempfile::tempdir().expect("tempdir");
    plant(ours.path());
    plant(theirs.path());
    let sandbox = observe(script, &run_sandbox(&wat, ours.path()));
    let wasmtime = observe(script, &reference(&wat, theirs.path()));
    let mut verdict = Verdict::default();
    for (i, op) in script.ops.iter().enumerate() {
        let (s, r) = (&sandbox[i], &wasmtime[i]);
        if s == r {
            verdict.matched += 1;
            continue;
        }
        if let Some(why) = known_difference(op, s, r) {
            verdict.known.push(why);
            return verdict;
        }
        if std::env::var_os("WASI_DIFF_LIST").is_some() {
            // Surveying: list every difference of the script instead of stopping at the first.
            eprintln!("DIFF call {i} {op:?}: sandbox {s:?}, wasmtime {r:?}");
            continue;
        }
        panic!(
            "call {i} ({op:?}) differs: sandbox {s:?}, wasmtime {r:?}\nscript bytes {:?}\n{:#?}",
            script.encode(),
            script.ops
        );
    }
    if std::env::var_os("WASI_DIFF_LIST").is_some() && verdict.matched < script.ops.len() {
        return verdict;
    }
    let (a, b) = (tree(ours.path()), tree(theirs.path()));
    assert_eq!(a, b, "the trees differ after {:#?}", script.ops);
    verdict
}

/// The tree as compared: kinds, contents and link targets (not times or modes of folders
/// made by `mkdir`, which follow the process's umask on both sides alike).
fn tree(root: &Path) -> BTreeMap<String, String> {
    snapshot(root)
}

/// The index of a path in [`PATHS`].
fn p(name: &str) -> u8 {
    PATHS
        .iter()
        .position(|x| *x == name)
        .expect("a path of the table") as u8
}

fn t(name: &str) -> u8 {
    TARGETS
        .iter()
        .position(|x| *x == name)
        .expect("a target of the table") as u8
}

const PRE: u8 = 0;
const S0: u8 = 1;
const S1: u8 = 2;
const CLOSED: u8 = 5;
const CREAT: u8 = 1;
const DIRECTORY: u8 = 2;
const EXCL: u8 = 4;
const TRUNC: u8 = 8;
const R_NONE: u8 = 0;
const R_READ: u8 = 1;
const R_WRITE: u8 = 2;
const R_RW: u8 = 3;
const R_ALL: u8 = 4;

fn open(dir: u8, follow: u8, path: &str, oflags: u8, rights: u8, fdflags: u8, slot: u8) -> Op {
    Op::Open {
        dir,
        follow,
        path: p(path),
        oflags,
        rights,
        fdflags,
        slot,
    }
}

/// A seed family: its name and its calls.
type Family = (&'static str, fn() -> Vec<Op>);

/// The seed scripts, one per family of the issue's differences (`fuzz/corpus/wasi_diff`).
pub fn seeds() -> Vec<(String, WasiScript)> {
    let families: [Family; 11] = [
        ("symlinks", seed_symlinks),
        ("rights", seed_rights),
        ("trailing_slash", seed_trailing_slash),
        ("escapes", seed_escapes),
        ("times", seed_times),
        ("fdflags", seed_fdflags),
        ("creat_trunc_append", seed_creat_trunc_append),
        ("hard_links", seed_hard_links),
        ("error_order", seed_error_order),
        ("files_and_seeking", seed_files_and_seeking),
        ("directories", seed_directories),
    ];
    families
        .into_iter()
        .map(|(name, ops)| (name.to_owned(), WasiScript { ops: ops() }))
        .collect()
}

fn seed_symlinks() -> Vec<Op> {
    vec![
        open(PRE, 0, "link-file", 0, R_READ, 0, 0),
        open(PRE, 0, "link-dir", 0, R_READ, 0, 0),
        open(PRE, 0, "dangling", 0, R_READ, 0, 0),
        open(PRE, 0, "loop", 0, R_READ, 0, 0),
        open(PRE, 0, "link-dir", DIRECTORY, R_READ, 0, 0),
        open(PRE, 1, "link-file", 0, R_READ, 0, 0),
        Op::Read { fd: S0, len: 63 },
        open(PRE, 1, "link-dir", DIRECTORY, R_READ, 0, 1),
        Op::Readdir { fd: S1 },
        Op::PathStat {
            dir: PRE,
            follow: 0,
            path: p("link-file"),
        },
        Op::PathStat {
            dir: PRE,
            follow: 1,
            path: p("link-file"),
        },
        Op::PathStat {
            dir: PRE,
            follow: 1,
            path: p("dangling"),
        },
        Op::Readlink {
            dir: PRE,
            path: p("link-dir"),
        },
        Op::Readlink {
            dir: PRE,
            path: p("a.txt"),
        },
        open(PRE, 0, "dangling", CREAT, R_WRITE, 0, 2),
    ]
}

fn seed_rights() -> Vec<Op> {
    vec![
        Op::Fdstat { fd: PRE },
        open(PRE, 0, ".", DIRECTORY, R_ALL, 0, 0),
        Op::Fdstat { fd: S0 },
        open(PRE, 0, "a.txt", 0, R_READ, 0, 1),
        Op::Fdstat { fd: S1 },
        Op::Write { fd: S1, data: 1 },
        open(PRE, 0, "a.txt", 0, R_WRITE, 0, 1),
        Op::Fdstat { fd: S1 },
        Op::Read { fd: S1, len: 4 },
        open(PRE, 0, "a.txt", 0, R_NONE, 0, 2),
        Op::Fdstat { fd: 3 },
        Op::Read { fd: 3, len: 5 },
        open(PRE, 0, "dir", 0, R_ALL, 0, 3),
        open(PRE, 0, "dir", 0, R_READ, 0, 3),
        Op::Fdstat { fd: 4 },
        open(PRE, 0, "a.txt", DIRECTORY, R_READ, 0, 3),
        open(PRE, 0, "dir", DIRECTORY | CREAT, R_READ, 0, 3),
        open(PRE, 0, "a.txt", 0, R_RW, 2, 3),
    ]
}

fn seed_trailing_slash() -> Vec<Op> {
    vec![
        Op::Unlink {
            dir: PRE,
            path: p("a.txt/"),
        },
        Op::Unlink {
            dir: PRE,
            path: p("dir/"),
        },
        Op::Symlink {
            target: t("a.txt"),
            dir: PRE,
            path: p("new/"),
        },
        Op::Symlink {
            target: t("a.txt"),
            dir: PRE,
            path: p("a.txt/"),
        },
        open(PRE, 0, "a.txt/", 0, R_READ, 0, 0),
        open(PRE, 0, "new/", CREAT, R_WRITE, 0, 0),
        open(PRE, 0, "dir/", 0, R_READ, 0, 0),
        Op::PathStat {
            dir: PRE,
            follow: 0,
            path: p("a.txt/"),
        },
        Op::PathStat {
            dir: PRE,
            follow: 0,
            path: p("link-dir/"),
        },
        Op::PathStat {
            dir: PRE,
            follow: 0,
            path: p("link-file/"),
        },
        Op::Mkdir {
            dir: PRE,
            path: p("new/"),
        },
        Op::Rmdir {
            dir: PRE,
            path: p("new/"),
        },
        Op::Rmdir {
            dir: PRE,
            path: p("a.txt/"),
        },
        Op::Rename {
            dir: PRE,
            path: p("a.txt"),
            dir2: PRE,
            path2: p("new/"),
        },
        Op::Rename {
            dir: PRE,
            path: p("a.txt/"),
            dir2: PRE,
            path2: p("new"),
        },
        Op::Link {
            dir: PRE,
            follow: 0,
            path: p("a.txt"),
            dir2: PRE,
            path2: p("new/"),
        },
        Op::PathStat {
            dir: PRE,
            follow: 0,
            path: p("a.txt/x"),
        },
    ]
}

fn seed_escapes() -> Vec<Op> {
    vec![
        open(PRE, 0, "/abs", 0, R_READ, 0, 0),
        open(PRE, 0, "..", DIRECTORY, R_READ, 0, 0),
        open(PRE, 0, "../a.txt", 0, R_READ, 0, 0),
        open(PRE, 0, "dir/../a.txt", 0, R_READ, 0, 0),
        Op::Read { fd: S0, len: 5 },
        open(PRE, 0, "dir/../../x", 0, R_READ, 0, 0),
        open(PRE, 0, "dir", DIRECTORY, R_READ, 0, 1),
        open(S1, 0, "..", DIRECTORY, R_READ, 0, 2),
        open(S1, 0, "../a.txt", 0, R_READ, 0, 2),
        open(S1, 0, "f.txt", 0, R_READ, 0, 2),
        Op::Read { fd: 3, len: 9 },
        open(S1, 0, "sub", DIRECTORY, R_READ, 0, 2),
        Op::PathStat {
            dir: PRE,
            follow: 0,
            path: p(""),
        },
        Op::Mkdir {
            dir: PRE,
            path: p("/abs"),
        },
        Op::Unlink {
            dir: PRE,
            path: p("../a.txt"),
        },
        Op::PathStat {
            dir: PRE,
            follow: 0,
            path: p("link-dir/sub/.."),
        },
        Op::PathStat {
            dir: PRE,
            follow: 0,
            path: p("nonexist/x"),
        },
        open(S0, 0, "new", 0, R_READ, 0, 3),
    ]
}

fn seed_times() -> Vec<Op> {
    vec![
        open(PRE, 0, "a.txt", 0, R_RW, 0, 0),
        Op::FdSetTimes {
            fd: S0,
            flags: 1 | 2,
        },
        Op::FdSetTimes {
            fd: S0,
            flags: 4 | 8,
        },
        Op::FdSetTimes {
            fd: S0,
            flags: 1 | 4,
        },
        Op::FdSetTimes {
            fd: S0,
            flags: 2 | 8,
        },
        Op::FdSetTimes { fd: S0, flags: 0 },
        Op::FdSetTimes {
            fd: CLOSED,
            flags: 1 | 2,
        },
        Op::FdSetTimes {
            fd: CLOSED,
            flags: 1,
        },
        Op::FdSetTimes { fd: PRE, flags: 4 },
        Op::PathSetTimes {
            dir: PRE,
            follow: 0,
            path: p("a.txt"),
            flags: 1 | 4,
        },
        Op::PathSetTimes {
            dir: PRE,
            follow: 1,
            path: p("link-file"),
            flags: 2 | 8,
        },
        Op::PathSetTimes {
            dir: PRE,
            follow: 0,
            path: p("link-file"),
            flags: 4,
        },
        Op::PathSetTimes {
            dir: PRE,
            follow: 0,
            path: p("nonexist/x"),
            flags: 4,
        },
        Op::PathSetTimes {
            dir: PRE,
            follow: 0,
            path: p("dir"),
            flags: 4 | 8,
        },
        Op::PathSetTimes {
            dir: PRE,
            follow: 0,
            path: p("a.txt/"),
            flags: 4,
        },
        Op::Filestat { fd: S0 },
    ]
}

fn seed_fdflags() -> Vec<Op> {
    vec![
        open(PRE, 0, "a.txt", 0, R_RW, 0, 0),
        Op::SetFlags { fd: S0, flags: 1 },
        Op::Fdstat { fd: S0 },
        Op::Write { fd: S0, data: 4 },
        Op::SetFlags { fd: S0, flags: 0 },
        Op::Seek {
            fd: S0,
            offset: 0,
            whence: 0,
        },
        Op::Write { fd: S0, data: 2 },
        Op::SetFlags { fd: S0, flags: 4 },
        Op::Fdstat { fd: S0 },
        Op::SetFlags { fd: S0, flags: 16 },
        Op::SetFlags { fd: PRE, flags: 0 },
        Op::SetFlags {
            fd: CLOSED,
            flags: 1,
        },
        Op::Pread {
            fd: S0,
            len: 63,
            offset: 0,
        },
        open(PRE, 0, "a.txt", 0, R_RW, 16, 1),
        open(PRE, 0, "a.txt", 0, R_RW, 2, 1),
        open(PRE, 0, "a.txt", 0, R_RW, 4, 1),
        Op::Fdstat { fd: S1 },
    ]
}

fn seed_creat_trunc_append() -> Vec<Op> {
    vec![
        open(PRE, 0, "new", CREAT | TRUNC, R_RW, 1, 0),
        Op::Write { fd: S0, data: 2 },
        Op::Write { fd: S0, data: 4 },
        Op::Pread {
            fd: S0,
            len: 63,
            offset: 0,
        },
        Op::Fdstat { fd: S0 },
        open(PRE, 0, "a.txt", TRUNC, R_WRITE, 1, 1),
        Op::Write { fd: S1, data: 3 },
        Op::Pwrite {
            fd: S1,
            data: 1,
            offset: 0,
        },
        Op::Filestat { fd: S1 },
        open(PRE, 0, "new", CREAT | EXCL, R_WRITE, 0, 2),
        open(PRE, 0, "new2", CREAT | EXCL | TRUNC, R_READ, 0, 2),
        Op::Write { fd: 3, data: 1 },
        open(PRE, 0, "dir/new", CREAT, R_NONE, 0, 3),
        Op::Filestat { fd: 4 },
    ]
}

fn seed_hard_links() -> Vec<Op> {
    vec![
        Op::Link {
            dir: PRE,
            follow: 0,
            path: p("a.txt"),
            dir2: PRE,
            path2: p("new"),
        },
        Op::PathStat {
            dir: PRE,
            follow: 0,
            path: p("new"),
        },
        Op::PathStat {
            dir: PRE,
            follow: 0,
            path: p("a.txt"),
        },
        open(PRE, 0, "new", 0, R_RW, 1, 0),
        Op::Write { fd: S0, data: 2 },
        Op::Link {
            dir: PRE,
            follow: 0,
            path: p("dir"),
            dir2: PRE,
            path2: p("new2"),
        },
        Op::Link {
            dir: PRE,
            follow: 0,
            path: p("a.txt"),
            dir2: PRE,
            path2: p("new"),
        },
        Op::Link {
            dir: PRE,
            follow: 0,
            path: p("link-file"),
            dir2: PRE,
            path2: p("dir/new"),
        },
        Op::Readlink {
            dir: PRE,
            path: p("dir/new"),
        },
        Op::Link {
            dir: PRE,
            follow: 1,
            path: p("link-file"),
            dir2: PRE,
            path2: p("new2"),
        },
        Op::Link {
            dir: PRE,
            follow: 0,
            path: p("nonexist/x"),
            dir2: PRE,
            path2: p("new2"),
        },
        Op::Link {
            dir: CLOSED,
            follow: 0,
            path: p("a.txt"),
            dir2: PRE,
            path2: p("new2"),
        },
        Op::Link {
            dir: PRE,
            follow: 0,
            path: p("/abs"),
            dir2: PRE,
            path2: p("new2"),
        },
        Op::Link {
            dir: PRE,
            follow: 0,
            path: p("a.txt"),
            dir2: PRE,
            path2: p("../a.txt"),
        },
    ]
}

fn seed_error_order() -> Vec<Op> {
    vec![
        Op::Close { fd: CLOSED },
        Op::Allocate { fd: PRE },
        Op::Allocate { fd: CLOSED },
        open(PRE, 0, "a.txt", 0, R_RW, 0, 0),
        Op::Allocate { fd: S0 },
        Op::Sock { fd: PRE, which: 0 },
        Op::Sock { fd: S0, which: 1 },
        Op::Sock { fd: S0, which: 2 },
        Op::Sock { fd: PRE, which: 3 },
        Op::Sock {
            fd: CLOSED,
            which: 0,
        },
        Op::Sock {
            fd: CLOSED,
            which: 3,
        },
        Op::Advise { fd: S0, advice: 1 },
        Op::Advise { fd: PRE, advice: 1 },
        Op::Advise {
            fd: CLOSED,
            advice: 0,
        },
        Op::Sync { fd: S0 },
        Op::Sync { fd: CLOSED },
        Op::SetSize { fd: PRE, size: 3 },
        Op::Seek {
            fd: PRE,
            offset: 0,
            whence: 0,
        },
        Op::Tell { fd: PRE },
        Op::Read { fd: PRE, len: 3 },
        Op::Write { fd: PRE, data: 1 },
        Op::Filestat { fd: CLOSED },
        Op::Readdir { fd: S0 },
        Op::Close { fd: S0 },
        Op::Close { fd: S0 },
    ]
}

fn seed_files_and_seeking() -> Vec<Op> {
    vec![
        open(PRE, 0, "a.txt", 0, R_RW, 0, 0),
        Op::Seek {
            fd: S0,
            offset: 6,
            whence: 0,
        },
        Op::Read { fd: S0, len: 5 },
        Op::Tell { fd: S0 },
        Op::Seek {
            fd: S0,
            offset: (-3i8) as u8,
            whence: 1,
        },
        Op::Seek {
            fd: S0,
            offset: (-1i8) as u8,
            whence: 2,
        },
        Op::Seek {
            fd: S0,
            offset: (-100i8) as u8,
            whence: 1,
        },
        Op::Seek {
            fd: S0,
            offset: 0,
            whence: 3,
        },
        Op::Write { fd: S0, data: 3 },
        Op::Pwrite {
            fd: S0,
            data: 2,
            offset: 40,
        },
        Op::Filestat { fd: S0 },
        Op::Pread {
            fd: S0,
            len: 63,
            offset: 0,
        },
        Op::SetSize { fd: S0, size: 3 },
        Op::Read { fd: S0, len: 10 },
        Op::Pread {
            fd: S0,
            len: 10,
            offset: 200,
        },
        open(PRE, 0, "empty", 0, R_READ, 0, 1),
        Op::Read { fd: S1, len: 10 },
        Op::SetSize { fd: S1, size: 3 },
    ]
}

fn seed_directories() -> Vec<Op> {
    vec![
        Op::Mkdir {
            dir: PRE,
            path: p("new"),
        },
        Op::Mkdir {
            dir: PRE,
            path: p("new"),
        },
        Op::Mkdir {
            dir: PRE,
            path: p("a.txt"),
        },
        Op::Rmdir {
            dir: PRE,
            path: p("dir"),
        },
        Op::Rename {
            dir: PRE,
            path: p("new"),
            dir2: PRE,
            path2: p("dir/new"),
        },
        Op::Readdir { fd: PRE },
        open(PRE, 0, "dir", DIRECTORY, R_READ, 0, 0),
        Op::Readdir { fd: S0 },
        Op::Rmdir {
            dir: S0,
            path: p("new"),
        },
        Op::Unlink {
            dir: PRE,
            path: p("dir"),
        },
        Op::Unlink {
            dir: PRE,
            path: p("link-dir"),
        },
        Op::Unlink {
            dir: PRE,
            path: p("dangling"),
        },
        Op::Rename {
            dir: PRE,
            path: p("a.txt"),
            dir2: S0,
            path2: p("f.txt"),
        },
        Op::Rename {
            dir: PRE,
            path: p("dir"),
            dir2: PRE,
            path2: p("empty"),
        },
        Op::Rename {
            dir: PRE,
            path: p("empty"),
            dir2: PRE,
            path2: p("dir"),
        },
        Op::Rmdir {
            dir: PRE,
            path: p("."),
        },
        Op::Filestat { fd: S0 },
        Op::Readdir { fd: PRE },
    ]
}
