//! The WASI preview 1 front end (`wasi_snapshot_preview1`), documented in `docs/host-abi.md`.
//! wasmtime-wasi has no per-operation hook, so the calls are ours: an fd table whose preopens
//! are the policy's mounts, and every file operation handed to the broker, decided and logged
//! exactly like the native ABI. A deny is an errno (`EACCES`, `ENOTCAPABLE`, `EDQUOT`, ...),
//! never a trap unless the policy says `on_deny: trap`. stdio is captured, args and env come
//! from the command line and the policy, and with `deterministic: true` clocks and randomness
//! are virtual.

use std::io::SeekFrom;
use std::time::Duration;

use sandbox_policy::{
    ClockKind, ClockRequest, EnvRequest, OpenFilesRequest, RandomRequest, ReasonCode, Request,
};
use wasmtime::{Caller, Linker, Trap};

use crate::broker::events::Outcome;
use crate::broker::HostError;
use crate::cap::fs::open::{FileKind, OpenSpec, Opened, Stat, TimeSpec};
use crate::guest::{burn_fuel, copy_fuel};
use crate::state::wasi::{counts_as_open, Clock, Fail, Fd, VIRTUAL_EPOCH_NS};
use crate::state::{DenyTrap, RunState};

/// The import module name.
pub const MODULE: &str = "wasi_snapshot_preview1";

/// WASI preview 1 errno values.
pub mod errno {
    /// No error.
    pub const SUCCESS: u16 = 0;
    /// Permission denied (a deny by the policy).
    pub const ACCES: u16 = 2;
    /// Bad file descriptor.
    pub const BADF: u16 = 8;
    /// Quota exceeded.
    pub const DQUOT: u16 = 19;
    /// File exists.
    pub const EXIST: u16 = 20;
    /// Bad address (a pointer outside guest memory).
    pub const FAULT: u16 = 21;
    /// Host is unreachable.
    pub const HOSTUNREACH: u16 = 23;
    /// Invalid argument.
    pub const INVAL: u16 = 28;
    /// I/O error.
    pub const IO: u16 = 29;
    /// Is a directory.
    pub const ISDIR: u16 = 31;
    /// A symlink where the call does not follow one, or too many levels of symlinks.
    pub const LOOP: u16 = 32;
    /// Too many open files.
    pub const MFILE: u16 = 33;
    /// No such file or directory.
    pub const NOENT: u16 = 44;
    /// Function not supported.
    pub const NOSYS: u16 = 52;
    /// Not a directory.
    pub const NOTDIR: u16 = 54;
    /// Directory not empty.
    pub const NOTEMPTY: u16 = 55;
    /// Not a socket.
    pub const NOTSOCK: u16 = 57;
    /// Not supported.
    pub const NOTSUP: u16 = 58;
    /// Operation not permitted (an absolute path, or `..` above the directory fd).
    pub const PERM: u16 = 63;
    /// Read-only file system (a read-only mount).
    pub const ROFS: u16 = 69;
    /// Invalid seek (on a stream).
    pub const SPIPE: u16 = 70;
    /// Timed out.
    pub const TIMEDOUT: u16 = 73;
    /// Cross-device link (a hard link between two mounts).
    pub const XDEV: u16 = 75;
    /// Capabilities insufficient (outside every mount).
    pub const NOTCAPABLE: u16 = 76;
}

const FILETYPE_UNKNOWN: u8 = 0;
const FILETYPE_CHARACTER_DEVICE: u8 = 2;
const FILETYPE_DIRECTORY: u8 = 3;
const FILETYPE_REGULAR_FILE: u8 = 4;
const FILETYPE_SYMBOLIC_LINK: u8 = 7;

const RIGHT_FD_READ: u64 = 1 << 1;
const RIGHT_FD_SEEK: u64 = 1 << 2;
const RIGHT_FD_WRITE: u64 = 1 << 6;
const RIGHT_FD_READDIR: u64 = 1 << 14;
const RIGHT_PATH_FILESTAT_SET_SIZE: u64 = 1 << 19;
const RIGHT_FD_FILESTAT_SET_SIZE: u64 = 1 << 22;
/// Every right of preview 1 (`fd_datasync` .. `sock_accept`).
const RIGHTS_ALL: u64 = (1 << 30) - 1;
/// What Wasmtime reports for a preopened directory: the path operations and the directory's
/// own metadata (bits 9–18, 20, 21, 23–26).
const RIGHTS_PREOPEN: u64 = (0x3ff << 9) | (0b11 << 20) | (0b1111 << 23);
/// What a preopen hands down to what is opened beneath it: its own rights and the file ones
/// (`fd_datasync` .. `fd_allocate`, `fd_filestat_*`, `poll_fd_readwrite`).
const RIGHTS_PREOPEN_INHERITING: u64 = RIGHTS_PREOPEN | 0x1ff | (0b111 << 21) | (1 << 27);

const OFLAG_CREAT: i32 = 1;
const OFLAG_DIRECTORY: i32 = 2;
const OFLAG_EXCL: i32 = 4;
const OFLAG_TRUNC: i32 = 8;
const FDFLAG_APPEND: i32 = 1;
const FDFLAG_DSYNC: i32 = 2;
const FDFLAG_NONBLOCK: i32 = 4;
const FDFLAG_RSYNC: i32 = 8;
const FDFLAG_SYNC: i32 = 16;
/// Synchronous-I/O flags: the sandbox does not promise them, so it refuses them (`ENOTSUP`).
const FDFLAGS_SYNC: i32 = FDFLAG_DSYNC | FDFLAG_RSYNC | FDFLAG_SYNC;
const FSTFLAG_ATIM: i32 = 1;
const FSTFLAG_ATIM_NOW: i32 = 2;
const FSTFLAG_MTIM: i32 = 4;
const FSTFLAG_MTIM_NOW: i32 = 8;
const LOOKUP_SYMLINK_FOLLOW: i32 = 1;

/// Most bytes one read or write moves when the guest passes several buffers; one buffer is
/// read or written in place, up to the native ABI's limit.
const GATHER_BYTES: usize = 64 << 10;
/// Most buffers one read or write takes.
const MAX_BUFFERS: u32 = 1024;
/// Random bytes made between two checks of the run's deadline.
const RANDOM_SLICE_BYTES: usize = 1 << 20;
/// Most subscriptions one `poll_oneoff` takes.
const MAX_SUBSCRIPTIONS: u32 = 4096;

/// The guest called `proc_exit`: a normal end of the run, with the guest's exit code.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the plugin exited with code {0}")]
pub struct GuestExit(pub i32);

type WasiResult<T = ()> = Result<T, Fail>;

fn errno_of(error: &HostError) -> u16 {
    match error {
        HostError::Denied(reason) | HostError::DeniedTrap { reason, .. } => match reason {
            ReasonCode::FsPathOutsideMounts => errno::NOTCAPABLE,
            ReasonCode::FsReadQuotaExceeded
            | ReasonCode::FsWriteQuotaExceeded
            | ReasonCode::NetEgressQuotaExceeded
            | ReasonCode::NetIngressQuotaExceeded
            | ReasonCode::NetConnectionQuotaExceeded
            | ReasonCode::FsEntriesQuotaExceeded => errno::DQUOT,
            ReasonCode::FsReadOnlyMount => errno::ROFS,
            // A link target the rule refuses is an argument the guest must change.
            ReasonCode::FsPathInvalid
            | ReasonCode::NetHostInvalid
            | ReasonCode::FsLinkTargetOutsideMount => errno::INVAL,
            ReasonCode::FsOpenFilesExceeded => errno::MFILE,
            ReasonCode::HandleInvalid => errno::BADF,
            ReasonCode::BadGuestPointer
            | ReasonCode::EnvNotAllowed
            | ReasonCode::FsPathNotAllowed
            | ReasonCode::NetHostNotAllowed
            | ReasonCode::NetPortNotAllowed
            | ReasonCode::NetAddressBlocked
            // Not denials of a request, but listed so a new code must be placed here.
            | ReasonCode::Allowed
            | ReasonCode::FuelExhausted
            | ReasonCode::Timeout
            | ReasonCode::MemoryLimit
            | ReasonCode::Trapped
            | ReasonCode::Cancelled => errno::ACCES,
        },
        HostError::NotFound => errno::NOENT,
        HostError::WrongKind => errno::ISDIR,
        HostError::NotDir => errno::NOTDIR,
        HostError::Io => errno::IO,
        HostError::Exists => errno::EXIST,
        HostError::NotEmpty => errno::NOTEMPTY,
        HostError::Invalid => errno::INVAL,
        HostError::TimedOut => errno::TIMEDOUT,
        // Never an errno: `From<HostError> for Fail` ends the run for these.
        HostError::OutOfFuel | HostError::DeadlinePassed => errno::TIMEDOUT,
        HostError::Unreachable => errno::HOSTUNREACH,
        HostError::Loop => errno::LOOP,
        HostError::CrossMount => errno::XDEV,
        HostError::NotPermitted => errno::PERM,
    }
}

impl From<HostError> for Fail {
    fn from(error: HostError) -> Fail {
        match error {
            HostError::DeniedTrap {
                reason,
                rule_id,
                capability,
            } => Fail::Trap(wasmtime::Error::new(DenyTrap {
                reason,
                rule_id,
                capability,
            })),
            HostError::OutOfFuel => Fail::Trap(wasmtime::Error::new(Trap::OutOfFuel)),
            HostError::DeadlinePassed => Fail::Trap(wasmtime::Error::new(Trap::Interrupt)),
            other => Fail::Errno(errno_of(&other)),
        }
    }
}

/// Guest memory with bounds-checked, little-endian access.
struct Mem<'a>(&'a mut [u8]);

impl Mem<'_> {
    fn range(&self, ptr: i32, len: u32) -> WasiResult<std::ops::Range<usize>> {
        let start = ptr as u32 as usize;
        let end = start.checked_add(len as usize);
        match end {
            Some(end) if end <= self.0.len() => Ok(start..end),
            _ => Err(Fail::Fault {
                ptr: ptr as u32,
                len,
            }),
        }
    }

    fn slice(&self, ptr: i32, len: u32) -> WasiResult<&[u8]> {
        let range = self.range(ptr, len)?;
        Ok(&self.0[range])
    }

    fn slice_mut(&mut self, ptr: i32, len: u32) -> WasiResult<&mut [u8]> {
        let range = self.range(ptr, len)?;
        Ok(&mut self.0[range])
    }

    fn u32_at(&self, ptr: i32) -> WasiResult<u32> {
        let bytes = self.slice(ptr, 4)?;
        Ok(u32::from_le_bytes(bytes.try_into().unwrap_or_default()))
    }

    fn u64_at(&self, ptr: i32) -> WasiResult<u64> {
        let bytes = self.slice(ptr, 8)?;
        Ok(u64::from_le_bytes(bytes.try_into().unwrap_or_default()))
    }

    fn put(&mut self, ptr: i32, bytes: &[u8]) -> WasiResult {
        self.slice_mut(ptr, bytes.len() as u32)?
            .copy_from_slice(bytes);
        Ok(())
    }

    fn put_u32(&mut self, ptr: i32, value: u32) -> WasiResult {
        self.put(ptr, &value.to_le_bytes())
    }

    fn put_u64(&mut self, ptr: i32, value: u64) -> WasiResult {
        self.put(ptr, &value.to_le_bytes())
    }

    /// The guest's buffers (`iovec` or `ciovec` array), each bounds-checked.
    fn buffers(&self, iovs: i32, count: i32) -> WasiResult<Vec<std::ops::Range<usize>>> {
        let count = count as u32;
        // Linux's IOV_MAX: libc and std never pass more, and the host's work stays bounded.
        if count > MAX_BUFFERS {
            return Err(Fail::Errno(errno::INVAL));
        }
        self.range(iovs, count * 8)?;
        let mut ranges = Vec::with_capacity(count.min(1024) as usize);
        for i in 0..count {
            let at = iovs.wrapping_add((i * 8) as i32);
            let ptr = self.u32_at(at)? as i32;
            let len = self.u32_at(at.wrapping_add(4))?;
            ranges.push(self.range(ptr, len)?);
        }
        Ok(ranges)
    }

    /// A path argument, copied out (at most one byte past the longest valid path, so an
    /// overlong path is refused by `decide` without a large host allocation).
    fn path(&self, ptr: i32, len: i32) -> WasiResult<Vec<u8>> {
        let bytes = self.slice(ptr, len as u32)?;
        let take = bytes.len().min(sandbox_policy::MAX_GUEST_PATH_BYTES + 1);
        Ok(bytes[..take].to_vec())
    }
}

type Ctx<'a> = Caller<'a, RunState>;

/// Runs one WASI call: charges the base fee, hands the guest's memory and the run's state to
/// `body`, records a bad pointer, charges for the bytes copied, and returns the errno.
fn dispatch(
    caller: &mut Ctx<'_>,
    function: &'static str,
    body: impl FnOnce(&mut Mem<'_>, &mut RunState) -> WasiResult,
) -> wasmtime::Result<i32> {
    let fuel_left = burn_fuel(caller, crate::guest::HOSTCALL_BASE_FUEL)?;
    let memory = crate::guest::memory(caller);
    let mut empty = [0u8; 0];
    let (bytes, state) = match memory {
        Some(m) => m.data_and_store_mut(&mut *caller),
        None => (&mut empty[..], caller.data_mut()),
    };
    state.wasi.fuel_used = state.wasi.fuel_limit.saturating_sub(fuel_left);
    state.broker.meter_open(fuel_left);
    let memory_bytes = bytes.len() as u64;
    let result = body(&mut Mem(bytes), state);
    let metered = state.broker.meter_close();
    let code = match result {
        Ok(()) => errno::SUCCESS,
        Err(Fail::Errno(code)) => code,
        Err(Fail::Fault { ptr, len }) => {
            state.broker.record_fault(
                "abi.memory",
                ReasonCode::BadGuestPointer,
                "host_abi",
                Outcome::BadPointer {
                    function,
                    ptr: ptr.into(),
                    len: len.into(),
                    memory_bytes,
                },
            );
            errno::FAULT
        }
        Err(Fail::Trap(error)) => {
            if matches!(error.downcast_ref::<Trap>(), Some(Trap::OutOfFuel)) {
                caller.set_fuel(0)?;
            }
            return Err(error);
        }
    };
    if metered > 0 {
        burn_fuel(caller, metered)?;
    }
    Ok(i32::from(code))
}

/// A source of values that differ run to run unless the policy makes them virtual.
enum Source {
    Clock(i32),
    Random(u64),
}

/// In deterministic mode, the first clock read and the first random bytes of a call are
/// decided and recorded (`clock.read`, `random.read`, rule `deterministic`): the report says
/// the run saw virtual sources. Later reads of the same source are not recorded again.
fn decide_source_once(st: &mut RunState, source: Source) -> WasiResult {
    if !st.wasi.deterministic() {
        return Ok(());
    }
    let request = match source {
        Source::Clock(_) if st.wasi.clock_decided => return Ok(()),
        Source::Random(_) if st.wasi.random_decided => return Ok(()),
        Source::Clock(id) => {
            st.wasi.clock_decided = true;
            let clock = match id {
                0 => ClockKind::Realtime,
                1 => ClockKind::Monotonic,
                2 => ClockKind::ProcessCputime,
                _ => ClockKind::ThreadCputime,
            };
            Request::Clock(ClockRequest { clock })
        }
        Source::Random(bytes) => {
            st.wasi.random_decided = true;
            Request::Random(RandomRequest { bytes })
        }
    };
    let _ = st.broker.check(request)?;
    Ok(())
}

/// Joins a path the guest gave relative to directory `base`. A directory fd is the root of
/// what it reaches, as in every WASI runtime: an absolute path, or a `..` that climbs above
/// `base`, is `EPERM` (Wasmtime's answer) before anything is decided. The policy still decides
/// every joined path by its guest path. A trailing `/` is kept: it asks for a directory.
fn join(base: &str, relative: &[u8]) -> WasiResult<Vec<u8>> {
    if relative.first() == Some(&b'/') {
        return Err(Fail::Errno(errno::PERM));
    }
    let mut depth: usize = 0;
    for part in relative.split(|b| *b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => depth = depth.checked_sub(1).ok_or(Fail::Errno(errno::PERM))?,
            _ => depth += 1,
        }
    }
    let mut joined = Vec::with_capacity(base.len() + 1 + relative.len());
    joined.extend_from_slice(base.as_bytes());
    joined.push(b'/');
    joined.extend_from_slice(relative);
    Ok(joined)
}

/// The guest path of directory fd `fd`: `EBADF` for any other fd, as Wasmtime answers.
fn dir_base(state: &mut RunState, fd: i32) -> WasiResult<String> {
    match state.wasi.get(fd)? {
        Fd::Dir { dir, .. } => Ok(dir.guest.clone()),
        _ => Err(Fail::Errno(errno::BADF)),
    }
}

/// The guest path for `path` relative to directory fd `fd`.
fn dir_path(state: &mut RunState, fd: i32, path: &[u8]) -> WasiResult<Vec<u8>> {
    let base = dir_base(state, fd)?;
    if path.is_empty() {
        return Err(Fail::Errno(errno::NOENT));
    }
    join(&base, path)
}

/// A path argument of a `path_*` call, joined to its directory fd.
fn guest_path(
    mem: &Mem<'_>,
    state: &mut RunState,
    fd: i32,
    ptr: i32,
    len: i32,
) -> WasiResult<Vec<u8>> {
    // At most one byte past the longest valid path is copied, and paid for first.
    let take = (len as u32 as usize).min(sandbox_policy::MAX_GUEST_PATH_BYTES + 1);
    state.broker.charge_fuel(copy_fuel(take))?;
    let path = mem.path(ptr, len)?;
    dir_path(state, fd, &path)
}

fn filetype(kind: FileKind) -> u8 {
    match kind {
        FileKind::Regular => FILETYPE_REGULAR_FILE,
        FileKind::Directory => FILETYPE_DIRECTORY,
        FileKind::Symlink => FILETYPE_SYMBOLIC_LINK,
        FileKind::Other => FILETYPE_UNKNOWN,
    }
}

/// In deterministic mode, the identity a guest path gets instead of the host's device, inode
/// and link count, which differ between two copies of the same folders: device 1, an inode
/// that is a hash of the guest path (FNV-1a), one link.
fn virtual_identity(guest_path: &[u8]) -> (u64, u64, u64) {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in guest_path {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    (1, hash | 1, 1)
}

/// Writes a `filestat`; `virtual_path` is the guest path in deterministic mode, which then
/// replaces the host's identity and times with virtual ones.
fn put_filestat(
    mem: &mut Mem<'_>,
    out: i32,
    stat: &Stat,
    virtual_path: Option<&[u8]>,
) -> WasiResult {
    let deterministic = virtual_path.is_some();
    let (dev, ino, nlink) = match virtual_path {
        Some(path) => virtual_identity(path),
        None => (stat.dev, stat.ino, stat.nlink),
    };
    let mut bytes = [0u8; 64];
    bytes[0..8].copy_from_slice(&dev.to_le_bytes());
    bytes[8..16].copy_from_slice(&ino.to_le_bytes());
    bytes[16] = filetype(stat.kind);
    bytes[24..32].copy_from_slice(&nlink.to_le_bytes());
    bytes[32..40].copy_from_slice(&stat.size.to_le_bytes());
    // Host timestamps would make a deterministic run's output differ run to run.
    let times = if deterministic {
        [VIRTUAL_EPOCH_NS; 3]
    } else {
        [stat.atime_ns, stat.mtime_ns, stat.ctime_ns]
    };
    for (i, t) in times.iter().enumerate() {
        bytes[40 + i * 8..48 + i * 8].copy_from_slice(&t.to_le_bytes());
    }
    mem.put(out, &bytes)
}

fn args_sizes(list: &[Vec<u8>], mem: &mut Mem<'_>, count_out: i32, size_out: i32) -> WasiResult {
    let size: usize = list.iter().map(|a| a.len() + 1).sum();
    mem.put_u32(count_out, list.len() as u32)?;
    mem.put_u32(size_out, size as u32)
}

fn args_write(
    state: &mut RunState,
    env: bool,
    mem: &mut Mem<'_>,
    pointers: i32,
    buffer: i32,
) -> WasiResult {
    let RunState { broker, wasi, .. } = state;
    let list = if env { &wasi.env } else { &wasi.args };
    let size: usize = list.iter().map(|a| a.len() + 1 + 4).sum();
    broker.charge_fuel(copy_fuel(size))?;
    let mut at = buffer as u32;
    for (i, item) in list.iter().enumerate() {
        mem.put_u32(pointers.wrapping_add((i * 4) as i32), at)?;
        mem.put(at as i32, item)?;
        mem.put(at.wrapping_add(item.len() as u32) as i32, &[0])?;
        at = at.wrapping_add(item.len() as u32 + 1);
    }
    Ok(())
}

fn fd_read(
    mem: &mut Mem<'_>,
    state: &mut RunState,
    fd: i32,
    iovs: i32,
    count: i32,
    offset: Option<u64>,
    out: i32,
) -> WasiResult {
    let buffers = mem.buffers(iovs, count)?;
    let RunState {
        broker,
        fs,
        wasi,
        input,
        ..
    } = state;
    let entry = wasi
        .fds
        .get_mut(fd as u32 as usize)
        .and_then(Option::as_mut)
        .ok_or(Fail::Errno(errno::BADF))?;
    // One buffer is filled in place; several share one bounded staging buffer.
    let single = buffers.len() == 1;
    let wanted: usize = if single {
        buffers[0].len().min(crate::guest::MAX_IO_BYTES as usize)
    } else {
        buffers
            .iter()
            .map(|r| r.len())
            .sum::<usize>()
            .min(GATHER_BYTES)
    };
    let mut staging = Vec::new();
    let target: &mut [u8] = if single {
        let start = buffers[0].start;
        &mut mem.0[start..start + wanted]
    } else {
        staging.resize(wanted, 0);
        &mut staging
    };
    // Paid for the most it may copy before reading; what it did not copy is given back.
    broker.charge_fuel(copy_fuel(wanted))?;
    let n = match entry {
        Fd::Stdin => {
            if offset.is_some() {
                return Err(Fail::Errno(errno::SPIPE));
            }
            let rest = input.get(wasi.stdin_position..).unwrap_or_default();
            let n = rest.len().min(target.len());
            target[..n].copy_from_slice(&rest[..n]);
            wasi.stdin_position += n;
            n
        }
        Fd::File(file) => {
            if !file.readable {
                return Err(Fail::Errno(errno::BADF));
            }
            fs.file_read(broker, file, offset, target)? as usize
        }
        // As Wasmtime: a directory fd is not readable.
        Fd::Dir { .. } | Fd::Stdout | Fd::Stderr => return Err(Fail::Errno(errno::BADF)),
    };
    if !single {
        let mut done = 0;
        for range in &buffers {
            if done == n {
                break;
            }
            let take = range.len().min(n - done);
            mem.0[range.start..range.start + take].copy_from_slice(&staging[done..done + take]);
            done += take;
        }
    }
    broker.refund_fuel(copy_fuel(wanted) - copy_fuel(n));
    mem.put_u32(out, n as u32)
}

fn fd_write(
    mem: &mut Mem<'_>,
    state: &mut RunState,
    fd: i32,
    iovs: i32,
    count: i32,
    offset: Option<u64>,
    out: i32,
) -> WasiResult {
    let buffers = mem.buffers(iovs, count)?;
    let data: std::borrow::Cow<'_, [u8]> = if buffers.len() == 1 {
        let range = buffers[0].clone();
        let end = range.start + range.len().min(crate::guest::MAX_IO_BYTES as usize);
        std::borrow::Cow::Borrowed(&mem.0[range.start..end])
    } else {
        let mut gathered = Vec::new();
        for range in &buffers {
            let room = GATHER_BYTES - gathered.len();
            let take = range.len().min(room);
            gathered.extend_from_slice(&mem.0[range.start..range.start + take]);
            if gathered.len() == GATHER_BYTES {
                break;
            }
        }
        std::borrow::Cow::Owned(gathered)
    };
    let RunState {
        broker,
        fs,
        wasi,
        stdout,
        stderr,
        ..
    } = state;
    let entry = wasi
        .fds
        .get_mut(fd as u32 as usize)
        .and_then(Option::as_mut)
        .ok_or(Fail::Errno(errno::BADF))?;
    broker.charge_fuel(copy_fuel(data.len()))?;
    let n = match entry {
        Fd::Stdout | Fd::Stderr if offset.is_some() => return Err(Fail::Errno(errno::SPIPE)),
        // Output past the cap is dropped and marked truncated; the guest sees it written.
        Fd::Stdout => {
            stdout.write(&data);
            data.len()
        }
        Fd::Stderr => {
            stderr.write(&data);
            data.len()
        }
        Fd::File(file) => {
            if !file.writable {
                return Err(Fail::Errno(errno::BADF));
            }
            fs.file_write(broker, file, offset, &data)? as usize
        }
        Fd::Dir { .. } | Fd::Stdin => return Err(Fail::Errno(errno::BADF)),
    };
    broker.refund_fuel(copy_fuel(data.len()) - copy_fuel(n));
    drop(data);
    mem.put_u32(out, n as u32)
}

fn fd_readdir(
    mem: &mut Mem<'_>,
    state: &mut RunState,
    fd: i32,
    buf: i32,
    buf_len: i32,
    cookie: u64,
    out: i32,
) -> WasiResult {
    let room = mem.range(buf, buf_len as u32)?.len();
    let RunState {
        broker, fs, wasi, ..
    } = state;
    let deterministic = wasi.deterministic();
    let Fd::Dir { dir, .. } = wasi.get(fd)? else {
        return Err(Fail::Errno(errno::BADF));
    };
    // Each call lists the whole directory; the listing charges every entry as it reads it.
    let entries = fs.dir_list(broker, dir)?;
    let mut bytes = Vec::with_capacity(room.min(64 << 10));
    for (index, entry) in entries.iter().enumerate().skip(cookie as usize) {
        if bytes.len() >= room {
            break;
        }
        let ino = if deterministic {
            let mut path = dir.guest.as_bytes().to_vec();
            path.push(b'/');
            path.extend_from_slice(&entry.name);
            let normal = sandbox_policy::normalize_guest_path(&path).unwrap_or_default();
            virtual_identity(normal.as_bytes()).1
        } else {
            entry.ino
        };
        bytes.extend_from_slice(&(index as u64 + 1).to_le_bytes());
        bytes.extend_from_slice(&ino.to_le_bytes());
        bytes.extend_from_slice(&(entry.name.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&[filetype(entry.kind), 0, 0, 0]);
        bytes.extend_from_slice(&entry.name);
    }
    // A full buffer tells the guest to ask again with a larger one.
    bytes.truncate(room);
    broker.charge_fuel(copy_fuel(bytes.len()))?;
    mem.put(buf, &bytes)?;
    mem.put_u32(out, bytes.len() as u32)
}

#[allow(clippy::too_many_arguments)]
fn path_open(
    mem: &mut Mem<'_>,
    state: &mut RunState,
    fd: i32,
    dirflags: i32,
    path: i32,
    path_len: i32,
    oflags: i32,
    rights: u64,
    fdflags: i32,
    out: i32,
) -> WasiResult {
    // Wasmtime's order: the fd, then the flags, then the path.
    if let Fd::File(_) = state.wasi.get(fd)? {
        return Err(Fail::Errno(errno::NOTDIR));
    }
    if fdflags & FDFLAGS_SYNC != 0 {
        return Err(Fail::Errno(errno::NOTSUP));
    }
    let directory = oflags & OFLAG_DIRECTORY != 0;
    if directory && oflags & (OFLAG_CREAT | OFLAG_EXCL | OFLAG_TRUNC) != 0 {
        return Err(Fail::Errno(errno::INVAL));
    }
    let guest = guest_path(mem, state, fd, path, path_len)?;
    let spec = OpenSpec {
        read: rights & RIGHT_FD_READ != 0,
        write: rights & RIGHT_FD_WRITE != 0,
        create: oflags & OFLAG_CREAT != 0,
        exclusive: oflags & OFLAG_EXCL != 0,
        truncate: oflags & OFLAG_TRUNC != 0,
        directory,
        append: fdflags & FDFLAG_APPEND != 0,
        nonblock: fdflags & FDFLAG_NONBLOCK != 0,
        follow: dirflags & LOOKUP_SYMLINK_FOLLOW != 0,
    };
    let RunState {
        broker, fs, wasi, ..
    } = state;
    // One more open file is decided before the open: `limits.open_files`.
    let _ = broker.check_limit(Request::FsOpen(OpenFilesRequest {
        open_now: wasi.open_files,
        path: Some(String::from_utf8_lossy(&guest).into_owned()),
    }))?;
    let opened = fs.open(broker, &guest, spec)?;
    let entry = match opened {
        Opened::File(file) => Fd::File(file),
        Opened::Dir(dir) => Fd::Dir { dir, preopen: None },
    };
    wasi.open_files += 1;
    let new_fd = wasi.insert(entry);
    mem.put_u32(out, new_fd)
}

/// The two timestamps of a "set times" call; `EINVAL` for a time both given and "now", or an
/// unknown flag, before anything else is looked at.
fn time_specs(atim: i64, mtim: i64, flags: i32) -> WasiResult<(TimeSpec, TimeSpec)> {
    if flags & !(FSTFLAG_ATIM | FSTFLAG_ATIM_NOW | FSTFLAG_MTIM | FSTFLAG_MTIM_NOW) != 0 {
        return Err(Fail::Errno(errno::INVAL));
    }
    let one = |value: i64, set: i32, now: i32| match (flags & set != 0, flags & now != 0) {
        (true, true) => Err(Fail::Errno(errno::INVAL)),
        (true, false) => Ok(TimeSpec::At(value as u64)),
        (false, true) => Ok(TimeSpec::Now),
        (false, false) => Ok(TimeSpec::Keep),
    };
    Ok((
        one(atim, FSTFLAG_ATIM, FSTFLAG_ATIM_NOW)?,
        one(mtim, FSTFLAG_MTIM, FSTFLAG_MTIM_NOW)?,
    ))
}

fn poll_oneoff(
    mem: &mut Mem<'_>,
    state: &mut RunState,
    subscriptions: i32,
    events: i32,
    count: i32,
    out: i32,
) -> WasiResult {
    let count = count as u32;
    if count == 0 || count > MAX_SUBSCRIPTIONS {
        return Err(Fail::Errno(errno::INVAL));
    }
    mem.range(subscriptions, count * 48)?;
    mem.range(events, count * 32)?;
    // Every subscription read and event written is paid for before any is looked at.
    state
        .broker
        .charge_fuel(copy_fuel(count as usize * (48 + 32)))?;
    // (userdata, error, event type, bytes available)
    let mut ready: Vec<(u64, u16, u8, u64)> = Vec::new();
    let mut soonest: Option<(u64, u64)> = None;
    for i in 0..count {
        let at = subscriptions.wrapping_add((i * 48) as i32);
        let userdata = mem.u64_at(at)?;
        let tag = mem.slice(at.wrapping_add(8), 1)?[0];
        match tag {
            0 => {
                let clock_id = mem.u32_at(at.wrapping_add(16))? as i32;
                let timeout = mem.u64_at(at.wrapping_add(24))?;
                let flags = mem.slice(at.wrapping_add(40), 2)?[0];
                let Some(now) = state.wasi.now(clock_id) else {
                    return Err(Fail::Errno(errno::INVAL));
                };
                let wait = if flags & 1 != 0 {
                    timeout.saturating_sub(now)
                } else {
                    timeout
                };
                if soonest.is_none_or(|(w, _)| wait < w) {
                    soonest = Some((wait, userdata));
                }
            }
            // Files and stdio never block: report them ready at once.
            1 | 2 => {
                let fd = mem.u32_at(at.wrapping_add(16))? as i32;
                let (error, available) = match (tag, state.wasi.get(fd)) {
                    (_, Err(_)) => (errno::BADF, 0),
                    (1, Ok(Fd::Stdin)) => (
                        errno::SUCCESS,
                        state.input.len().saturating_sub(state.wasi.stdin_position),
                    ),
                    _ => (errno::SUCCESS, 0),
                };
                ready.push((userdata, error, tag, available as u64));
            }
            _ => return Err(Fail::Errno(errno::INVAL)),
        }
    }
    if ready.is_empty() {
        if let Some((wait, userdata)) = soonest {
            sleep(state, wait);
            ready.push((userdata, errno::SUCCESS, 0, 0));
        }
    }
    for (i, (userdata, error, kind, nbytes)) in ready.iter().enumerate() {
        let mut event = [0u8; 32];
        event[0..8].copy_from_slice(&userdata.to_le_bytes());
        event[8..10].copy_from_slice(&error.to_le_bytes());
        event[10] = *kind;
        event[16..24].copy_from_slice(&nbytes.to_le_bytes());
        mem.put(events.wrapping_add((i * 32) as i32), &event)?;
    }
    mem.put_u32(out, ready.len() as u32)
}

/// Sleeps: virtually (the clock jumps), or for real but never past the run's deadline; the
/// epoch interrupt then ends the run as soon as the guest runs again.
fn sleep(state: &mut RunState, nanos: u64) {
    match &mut state.wasi.clock {
        Clock::Virtual { slept_ns } => *slept_ns = slept_ns.saturating_add(nanos),
        Clock::Real { .. } => {
            let left = state.broker.remaining();
            std::thread::sleep(Duration::from_nanos(nanos).min(left));
        }
    }
}

/// Declares every preview 1 import once: each row names the import and its handler (in
/// [`imports`]), whose Rust signature is the import's Wasm type. The table makes [`FUNCTIONS`]
/// (the unknown-import check and the docs test read it) and [`add_to_linker`].
macro_rules! wasi_functions {
    ($($name:ident,)*) => {
        /// Every preview 1 import; the socket calls answer `ENOTSOCK` (no fd is a socket)
        /// without touching the host.
        pub const FUNCTIONS: &[&str] = &[$(stringify!($name),)*];

        /// Defines every preview 1 import on the linker.
        pub(crate) fn add_to_linker(linker: &mut Linker<RunState>) -> wasmtime::Result<()> {
            $(linker.func_wrap(MODULE, stringify!($name), imports::$name)?;)*
            Ok(())
        }
    };
}

wasi_functions! {
    args_get,
    args_sizes_get,
    environ_get,
    environ_sizes_get,
    clock_res_get,
    clock_time_get,
    fd_advise,
    fd_allocate,
    fd_close,
    fd_datasync,
    fd_fdstat_get,
    fd_fdstat_set_flags,
    fd_fdstat_set_rights,
    fd_filestat_get,
    fd_filestat_set_size,
    fd_filestat_set_times,
    fd_pread,
    fd_prestat_get,
    fd_prestat_dir_name,
    fd_pwrite,
    fd_read,
    fd_readdir,
    fd_renumber,
    fd_seek,
    fd_sync,
    fd_tell,
    fd_write,
    path_create_directory,
    path_filestat_get,
    path_filestat_set_times,
    path_link,
    path_open,
    path_readlink,
    path_remove_directory,
    path_rename,
    path_symlink,
    path_unlink_file,
    poll_oneoff,
    proc_exit,
    proc_raise,
    sched_yield,
    random_get,
    sock_accept,
    sock_recv,
    sock_send,
    sock_shutdown,
}

/// One handler per import: each hands its arguments to [`dispatch`], which charges the base
/// fuel, finds guest memory, runs the body and turns its result into an errno.
mod imports {
    // A handler's parameters are its import's WASI signature: `path_open` takes nine.
    #![allow(clippy::too_many_arguments)]

    use super::*;

    pub(super) fn args_sizes_get(
        mut caller: Ctx<'_>,
        count: i32,
        size: i32,
    ) -> wasmtime::Result<i32> {
        dispatch(
            &mut caller,
            "args_sizes_get",
            |mem: &mut Mem<'_>, st: &mut RunState| args_sizes(&st.wasi.args, mem, count, size),
        )
    }

    pub(super) fn args_get(
        mut caller: Ctx<'_>,
        pointers: i32,
        buffer: i32,
    ) -> wasmtime::Result<i32> {
        dispatch(
            &mut caller,
            "args_get",
            |mem: &mut Mem<'_>, st: &mut RunState| args_write(st, false, mem, pointers, buffer),
        )
    }

    pub(super) fn environ_sizes_get(
        mut caller: Ctx<'_>,
        count: i32,
        size: i32,
    ) -> wasmtime::Result<i32> {
        dispatch(
            &mut caller,
            "environ_sizes_get",
            |mem: &mut Mem<'_>, st: &mut RunState| args_sizes(&st.wasi.env, mem, count, size),
        )
    }

    pub(super) fn environ_get(
        mut caller: Ctx<'_>,
        pointers: i32,
        buffer: i32,
    ) -> wasmtime::Result<i32> {
        dispatch(
            &mut caller,
            "environ_get",
            |mem: &mut Mem<'_>, st: &mut RunState| {
                // The variables handed over are decided (`env.read`), by name.
                let names = st.wasi.env_names.clone();
                let _ = st.broker.check(Request::Env(EnvRequest { names }))?;
                args_write(st, true, mem, pointers, buffer)
            },
        )
    }

    pub(super) fn clock_res_get(mut caller: Ctx<'_>, id: i32, out: i32) -> wasmtime::Result<i32> {
        dispatch(
            &mut caller,
            "clock_res_get",
            |mem: &mut Mem<'_>, st: &mut RunState| {
                st.wasi.now(id).ok_or(Fail::Errno(errno::INVAL))?;
                mem.put_u64(out, 1)
            },
        )
    }

    pub(super) fn clock_time_get(
        mut caller: Ctx<'_>,
        id: i32,
        _precision: i64,
        out: i32,
    ) -> wasmtime::Result<i32> {
        dispatch(
            &mut caller,
            "clock_time_get",
            |mem: &mut Mem<'_>, st: &mut RunState| {
                let now = st.wasi.now(id).ok_or(Fail::Errno(errno::INVAL))?;
                decide_source_once(st, Source::Clock(id))?;
                mem.put_u64(out, now)
            },
        )
    }

    pub(super) fn random_get(mut caller: Ctx<'_>, buf: i32, len: i32) -> wasmtime::Result<i32> {
        dispatch(
            &mut caller,
            "random_get",
            |mem: &mut Mem<'_>, st: &mut RunState| {
                let target = mem.slice_mut(buf, len as u32)?;
                decide_source_once(st, Source::Random(target.len() as u64))?;
                // Paid for before any byte is made, and made in slices against the deadline.
                st.broker.charge_fuel(copy_fuel(target.len()))?;
                for slice in target.chunks_mut(RANDOM_SLICE_BYTES) {
                    st.broker.check_deadline()?;
                    match &mut st.wasi.random {
                        Some(seeded) => seeded.fill(slice),
                        None => getrandom::fill(slice).map_err(|_| Fail::Errno(errno::IO))?,
                    }
                }
                Ok(())
            },
        )
    }

    pub(super) fn sched_yield(mut caller: Ctx<'_>) -> wasmtime::Result<i32> {
        dispatch(
            &mut caller,
            "sched_yield",
            |_mem: &mut Mem<'_>, _st: &mut RunState| Ok(()),
        )
    }

    pub(super) fn proc_raise(mut caller: Ctx<'_>, _signal: i32) -> wasmtime::Result<i32> {
        dispatch(
            &mut caller,
            "proc_raise",
            |_mem: &mut Mem<'_>, _st: &mut RunState| Err(Fail::Errno(errno::NOTSUP)),
        )
    }

    pub(super) fn poll_oneoff(
        mut caller: Ctx<'_>,
        subs: i32,
        events: i32,
        count: i32,
        out: i32,
    ) -> wasmtime::Result<i32> {
        dispatch(
            &mut caller,
            "poll_oneoff",
            |mem: &mut Mem<'_>, st: &mut RunState| {
                super::poll_oneoff(mem, st, subs, events, count, out)
            },
        )
    }

    pub(super) fn fd_read(
        mut caller: Ctx<'_>,
        fd: i32,
        iovs: i32,
        count: i32,
        out: i32,
    ) -> wasmtime::Result<i32> {
        dispatch(
            &mut caller,
            "fd_read",
            |mem: &mut Mem<'_>, st: &mut RunState| {
                super::fd_read(mem, st, fd, iovs, count, None, out)
            },
        )
    }

    pub(super) fn fd_pread(
        mut caller: Ctx<'_>,
        fd: i32,
        iovs: i32,
        count: i32,
        offset: i64,
        out: i32,
    ) -> wasmtime::Result<i32> {
        dispatch(
            &mut caller,
            "fd_pread",
            |mem: &mut Mem<'_>, st: &mut RunState| {
                super::fd_read(mem, st, fd, iovs, count, Some(offset as u64), out)
            },
        )
    }

    pub(super) fn fd_write(
        mut caller: Ctx<'_>,
        fd: i32,
        iovs: i32,
        count: i32,
        out: i32,
    ) -> wasmtime::Result<i32> {
        dispatch(
            &mut caller,
            "fd_write",
            |mem: &mut Mem<'_>, st: &mut RunState| {
                super::fd_write(mem, st, fd, iovs, count, None, out)
            },
        )
    }

    pub(super) fn fd_pwrite(
        mut caller: Ctx<'_>,
        fd: i32,
        iovs: i32,
        count: i32,
        offset: i64,
        out: i32,
    ) -> wasmtime::Result<i32> {
        dispatch(
            &mut caller,
            "fd_pwrite",
            |mem: &mut Mem<'_>, st: &mut RunState| {
                super::fd_write(mem, st, fd, iovs, count, Some(offset as u64), out)
            },
        )
    }

    pub(super) fn fd_close(mut caller: Ctx<'_>, fd: i32) -> wasmtime::Result<i32> {
        dispatch(
            &mut caller,
            "fd_close",
            |_mem: &mut Mem<'_>, st: &mut RunState| st.wasi.take(fd).map(drop),
        )
    }

    pub(super) fn fd_renumber(mut caller: Ctx<'_>, from: i32, to: i32) -> wasmtime::Result<i32> {
        dispatch(
            &mut caller,
            "fd_renumber",
            |_mem: &mut Mem<'_>, st: &mut RunState| {
                st.wasi.get(to)?;
                if from == to {
                    return st.wasi.get(from).map(drop);
                }
                let entry = st.wasi.take(from)?;
                st.wasi.take(to)?;
                if counts_as_open(&entry) {
                    st.wasi.open_files += 1;
                }
                st.wasi.fds[to as u32 as usize] = Some(entry);
                Ok(())
            },
        )
    }

    pub(super) fn fd_seek(
        mut caller: Ctx<'_>,
        fd: i32,
        offset: i64,
        whence: i32,
        out: i32,
    ) -> wasmtime::Result<i32> {
        dispatch(
            &mut caller,
            "fd_seek",
            |mem: &mut Mem<'_>, st: &mut RunState| {
                // The fd first, as Wasmtime: a bad fd is `EBADF` whatever the offset.
                if let Fd::Dir { .. } = st.wasi.get(fd)? {
                    return Err(Fail::Errno(errno::BADF));
                }
                let to = match whence {
                    0 => SeekFrom::Start(
                        u64::try_from(offset).map_err(|_| Fail::Errno(errno::INVAL))?,
                    ),
                    1 => SeekFrom::Current(offset),
                    2 => SeekFrom::End(offset),
                    _ => return Err(Fail::Errno(errno::INVAL)),
                };
                let RunState {
                    broker, fs, wasi, ..
                } = st;
                let position = match wasi.get(fd)? {
                    Fd::File(file) => fs.file_seek(&broker.handle_permit(), file, to)?,
                    Fd::Dir { .. } => return Err(Fail::Errno(errno::BADF)),
                    _ => return Err(Fail::Errno(errno::SPIPE)),
                };
                mem.put_u64(out, position)
            },
        )
    }

    pub(super) fn fd_tell(mut caller: Ctx<'_>, fd: i32, out: i32) -> wasmtime::Result<i32> {
        dispatch(
            &mut caller,
            "fd_tell",
            |mem: &mut Mem<'_>, st: &mut RunState| {
                let RunState {
                    broker, fs, wasi, ..
                } = st;
                let position = match wasi.get(fd)? {
                    Fd::File(file) => {
                        fs.file_seek(&broker.handle_permit(), file, SeekFrom::Current(0))?
                    }
                    Fd::Dir { .. } => return Err(Fail::Errno(errno::BADF)),
                    _ => return Err(Fail::Errno(errno::SPIPE)),
                };
                mem.put_u64(out, position)
            },
        )
    }

    pub(super) fn fd_advise(
        mut caller: Ctx<'_>,
        fd: i32,
        _offset: i64,
        _len: i64,
        _advice: i32,
    ) -> wasmtime::Result<i32> {
        dispatch(
            &mut caller,
            "fd_advise",
            |_mem: &mut Mem<'_>, st: &mut RunState| match st.wasi.get(fd)? {
                // Accepted, no effect; as Wasmtime, on regular files only.
                Fd::File(_) => Ok(()),
                _ => Err(Fail::Errno(errno::BADF)),
            },
        )
    }

    pub(super) fn fd_allocate(
        mut caller: Ctx<'_>,
        fd: i32,
        _offset: i64,
        _len: i64,
    ) -> wasmtime::Result<i32> {
        dispatch(
            &mut caller,
            "fd_allocate",
            |_mem: &mut Mem<'_>, st: &mut RunState| match st.wasi.get(fd)? {
                // As Wasmtime: a regular file only (`EBADF` otherwise), and not supported.
                Fd::File(_) => Err(Fail::Errno(errno::NOTSUP)),
                _ => Err(Fail::Errno(errno::BADF)),
            },
        )
    }

    pub(super) fn fd_fdstat_get(mut caller: Ctx<'_>, fd: i32, out: i32) -> wasmtime::Result<i32> {
        dispatch(
            &mut caller,
            "fd_fdstat_get",
            |mem: &mut Mem<'_>, st: &mut RunState| {
                let (filetype, flags, rights, inheriting) = match st.wasi.get(fd)? {
                    Fd::Stdin => (FILETYPE_CHARACTER_DEVICE, 0, RIGHT_FD_READ, 0),
                    Fd::Stdout | Fd::Stderr => (FILETYPE_CHARACTER_DEVICE, 0, RIGHT_FD_WRITE, 0),
                    // Wasmtime's rights: a preopen's fixed set; a directory opened beneath it
                    // has every right but the file-only ones and writing.
                    Fd::Dir {
                        preopen: Some(_), ..
                    } => (
                        FILETYPE_DIRECTORY,
                        0,
                        RIGHTS_PREOPEN,
                        RIGHTS_PREOPEN_INHERITING,
                    ),
                    Fd::Dir { preopen: None, .. } => {
                        let rights = RIGHTS_ALL
                            & !(RIGHT_FD_SEEK
                                | RIGHT_FD_FILESTAT_SET_SIZE
                                | RIGHT_PATH_FILESTAT_SET_SIZE
                                | RIGHT_FD_WRITE);
                        (FILETYPE_DIRECTORY, 0, rights, rights)
                    }
                    Fd::File(file) => {
                        let mut rights = RIGHTS_ALL;
                        if !file.readable {
                            rights &= !(RIGHT_FD_READ | RIGHT_FD_READDIR);
                        }
                        if !file.writable {
                            rights &= !RIGHT_FD_WRITE;
                        }
                        let mut flags = 0;
                        if file.append {
                            flags |= FDFLAG_APPEND as u16;
                        }
                        if file.nonblock {
                            flags |= FDFLAG_NONBLOCK as u16;
                        }
                        (FILETYPE_REGULAR_FILE, flags, rights, rights)
                    }
                };
                let mut bytes = [0u8; 24];
                bytes[0] = filetype;
                bytes[2..4].copy_from_slice(&flags.to_le_bytes());
                bytes[8..16].copy_from_slice(&rights.to_le_bytes());
                bytes[16..24].copy_from_slice(&inheriting.to_le_bytes());
                mem.put(out, &bytes)
            },
        )
    }

    pub(super) fn fd_fdstat_set_flags(
        mut caller: Ctx<'_>,
        fd: i32,
        flags: i32,
    ) -> wasmtime::Result<i32> {
        dispatch(
            &mut caller,
            "fd_fdstat_set_flags",
            |_mem: &mut Mem<'_>, st: &mut RunState| match st.wasi.get(fd)? {
                // Only APPEND and NONBLOCK change; synchronous I/O is not promised.
                Fd::File(_) if flags & FDFLAGS_SYNC != 0 => Err(Fail::Errno(errno::NOTSUP)),
                Fd::File(file) => {
                    file.append = flags & FDFLAG_APPEND != 0;
                    file.nonblock = flags & FDFLAG_NONBLOCK != 0;
                    Ok(())
                }
                // As Wasmtime: only a regular file's flags can be set.
                _ => Err(Fail::Errno(errno::BADF)),
            },
        )
    }

    pub(super) fn fd_fdstat_set_rights(
        mut caller: Ctx<'_>,
        fd: i32,
        _base: i64,
        _inheriting: i64,
    ) -> wasmtime::Result<i32> {
        dispatch(
            &mut caller,
            "fd_fdstat_set_rights",
            |_mem: &mut Mem<'_>, st: &mut RunState| {
                st.wasi.get(fd)?;
                Err(Fail::Errno(errno::NOTSUP))
            },
        )
    }

    pub(super) fn fd_filestat_get(mut caller: Ctx<'_>, fd: i32, out: i32) -> wasmtime::Result<i32> {
        dispatch(
            &mut caller,
            "fd_filestat_get",
            |mem: &mut Mem<'_>, st: &mut RunState| {
                let deterministic = st.wasi.deterministic();
                let handle = st.broker.handle_permit();
                let RunState { fs, wasi, .. } = st;
                let path = match wasi.get(fd)? {
                    Fd::File(file) => file.guest_path().as_bytes().to_vec(),
                    Fd::Dir { dir, .. } => dir.guest.as_bytes().to_vec(),
                    _ => format!("/\0fd{fd}").into_bytes(),
                };
                let stat = match wasi.get(fd)? {
                    Fd::File(file) => fs.file_stat(&handle, file)?,
                    Fd::Dir { dir, .. } => fs.dir_stat(&handle, dir)?,
                    _ => Stat {
                        kind: FileKind::Other,
                        size: 0,
                        dev: 0,
                        ino: 0,
                        nlink: 1,
                        atime_ns: 0,
                        mtime_ns: 0,
                        ctime_ns: 0,
                    },
                };
                put_filestat(mem, out, &stat, deterministic.then_some(&path[..]))?;
                if matches!(wasi.get(fd)?, Fd::Stdin | Fd::Stdout | Fd::Stderr) {
                    mem.put(out.wrapping_add(16), &[FILETYPE_CHARACTER_DEVICE])?;
                }
                Ok(())
            },
        )
    }

    pub(super) fn fd_filestat_set_size(
        mut caller: Ctx<'_>,
        fd: i32,
        size: i64,
    ) -> wasmtime::Result<i32> {
        dispatch(
            &mut caller,
            "fd_filestat_set_size",
            |_mem: &mut Mem<'_>, st: &mut RunState| {
                let RunState {
                    broker, fs, wasi, ..
                } = st;
                match wasi.get(fd)? {
                    Fd::File(file) if file.writable => {
                        let size = u64::try_from(size).map_err(|_| Fail::Errno(errno::INVAL))?;
                        Ok(fs.file_set_size(broker, file, size)?)
                    }
                    // As Wasmtime (the host's `ftruncate`): a file not open for writing.
                    Fd::File(_) => Err(Fail::Errno(errno::INVAL)),
                    _ => Err(Fail::Errno(errno::BADF)),
                }
            },
        )
    }

    pub(super) fn fd_filestat_set_times(
        mut caller: Ctx<'_>,
        fd: i32,
        atim: i64,
        mtim: i64,
        flags: i32,
    ) -> wasmtime::Result<i32> {
        dispatch(
            &mut caller,
            "fd_filestat_set_times",
            |_mem: &mut Mem<'_>, st: &mut RunState| {
                let (atime, mtime) = time_specs(atim, mtim, flags)?;
                let RunState {
                    broker, fs, wasi, ..
                } = st;
                match wasi.get(fd)? {
                    Fd::File(file) => Ok(fs.file_set_times(broker, file, atime, mtime)?),
                    Fd::Dir {
                        dir, preopen: None, ..
                    } => Ok(fs.dir_set_times(broker, dir, atime, mtime)?),
                    // As Wasmtime: a preopen's times are set through a path, not its fd.
                    _ => Err(Fail::Errno(errno::BADF)),
                }
            },
        )
    }

    pub(super) fn fd_prestat_get(mut caller: Ctx<'_>, fd: i32, out: i32) -> wasmtime::Result<i32> {
        dispatch(
            &mut caller,
            "fd_prestat_get",
            |mem: &mut Mem<'_>, st: &mut RunState| match st.wasi.get(fd)? {
                Fd::Dir {
                    preopen: Some(name),
                    ..
                } => {
                    let len = name.len() as u32;
                    let mut bytes = [0u8; 8];
                    bytes[4..8].copy_from_slice(&len.to_le_bytes());
                    mem.put(out, &bytes)
                }
                _ => Err(Fail::Errno(errno::BADF)),
            },
        )
    }

    pub(super) fn fd_prestat_dir_name(
        mut caller: Ctx<'_>,
        fd: i32,
        buf: i32,
        len: i32,
    ) -> wasmtime::Result<i32> {
        dispatch(
            &mut caller,
            "fd_prestat_dir_name",
            |mem: &mut Mem<'_>, st: &mut RunState| match st.wasi.get(fd)? {
                Fd::Dir {
                    preopen: Some(name),
                    ..
                } => {
                    if (len as u32 as usize) < name.len() {
                        return Err(Fail::Errno(errno::INVAL));
                    }
                    mem.put(buf, name.as_bytes())
                }
                _ => Err(Fail::Errno(errno::BADF)),
            },
        )
    }

    pub(super) fn fd_readdir(
        mut caller: Ctx<'_>,
        fd: i32,
        buf: i32,
        len: i32,
        cookie: i64,
        out: i32,
    ) -> wasmtime::Result<i32> {
        dispatch(
            &mut caller,
            "fd_readdir",
            |mem: &mut Mem<'_>, st: &mut RunState| {
                super::fd_readdir(mem, st, fd, buf, len, cookie as u64, out)
            },
        )
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn path_open(
        mut caller: Ctx<'_>,
        fd: i32,
        dirflags: i32,
        path: i32,
        path_len: i32,
        oflags: i32,
        rights: i64,
        _inheriting: i64,
        fdflags: i32,
        out: i32,
    ) -> wasmtime::Result<i32> {
        dispatch(
            &mut caller,
            "path_open",
            |mem: &mut Mem<'_>, st: &mut RunState| {
                super::path_open(
                    mem,
                    st,
                    fd,
                    dirflags,
                    path,
                    path_len,
                    oflags,
                    rights as u64,
                    fdflags,
                    out,
                )
            },
        )
    }

    pub(super) fn path_filestat_get(
        mut caller: Ctx<'_>,
        fd: i32,
        flags: i32,
        path: i32,
        path_len: i32,
        out: i32,
    ) -> wasmtime::Result<i32> {
        dispatch(
            &mut caller,
            "path_filestat_get",
            |mem: &mut Mem<'_>, st: &mut RunState| {
                let guest = guest_path(mem, st, fd, path, path_len)?;
                let stat =
                    st.fs
                        .path_stat(&mut st.broker, &guest, flags & LOOKUP_SYMLINK_FOLLOW != 0)?;
                let deterministic = st.wasi.deterministic();
                put_filestat(mem, out, &stat, deterministic.then_some(&guest[..]))
            },
        )
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn path_filestat_set_times(
        mut caller: Ctx<'_>,
        fd: i32,
        flags: i32,
        path: i32,
        path_len: i32,
        atim: i64,
        mtim: i64,
        fst: i32,
    ) -> wasmtime::Result<i32> {
        dispatch(
            &mut caller,
            "path_filestat_set_times",
            |mem: &mut Mem<'_>, st: &mut RunState| {
                let (atime, mtime) = time_specs(atim, mtim, fst)?;
                let guest = guest_path(mem, st, fd, path, path_len)?;
                let follow = flags & LOOKUP_SYMLINK_FOLLOW != 0;
                Ok(st
                    .fs
                    .path_set_times(&mut st.broker, &guest, follow, atime, mtime)?)
            },
        )
    }

    pub(super) fn path_create_directory(
        mut caller: Ctx<'_>,
        fd: i32,
        path: i32,
        path_len: i32,
    ) -> wasmtime::Result<i32> {
        dispatch(
            &mut caller,
            "path_create_directory",
            |mem: &mut Mem<'_>, st: &mut RunState| {
                let guest = guest_path(mem, st, fd, path, path_len)?;
                Ok(st.fs.make_dir(&mut st.broker, &guest)?)
            },
        )
    }

    pub(super) fn path_remove_directory(
        mut caller: Ctx<'_>,
        fd: i32,
        path: i32,
        path_len: i32,
    ) -> wasmtime::Result<i32> {
        dispatch(
            &mut caller,
            "path_remove_directory",
            |mem: &mut Mem<'_>, st: &mut RunState| {
                let guest = guest_path(mem, st, fd, path, path_len)?;
                Ok(st.fs.remove_dir(&mut st.broker, &guest)?)
            },
        )
    }

    pub(super) fn path_unlink_file(
        mut caller: Ctx<'_>,
        fd: i32,
        path: i32,
        path_len: i32,
    ) -> wasmtime::Result<i32> {
        dispatch(
            &mut caller,
            "path_unlink_file",
            |mem: &mut Mem<'_>, st: &mut RunState| {
                let guest = guest_path(mem, st, fd, path, path_len)?;
                Ok(st.fs.fs_delete(&mut st.broker, &guest)?)
            },
        )
    }

    pub(super) fn path_rename(
        mut caller: Ctx<'_>,
        fd: i32,
        old: i32,
        old_len: i32,
        new_fd: i32,
        new: i32,
        new_len: i32,
    ) -> wasmtime::Result<i32> {
        dispatch(
            &mut caller,
            "path_rename",
            |mem: &mut Mem<'_>, st: &mut RunState| {
                let old = mem.path(old, old_len)?;
                let new = mem.path(new, new_len)?;
                let from = dir_path(st, fd, &old)?;
                let to = dir_path(st, new_fd, &new)?;
                Ok(st.fs.rename(&mut st.broker, &from, &to)?)
            },
        )
    }

    pub(super) fn path_symlink(
        mut caller: Ctx<'_>,
        target: i32,
        target_len: i32,
        fd: i32,
        path: i32,
        path_len: i32,
    ) -> wasmtime::Result<i32> {
        dispatch(
            &mut caller,
            "path_symlink",
            |mem: &mut Mem<'_>, st: &mut RunState| {
                let target = mem.path(target, target_len)?;
                let guest = guest_path(mem, st, fd, path, path_len)?;
                Ok(st.fs.make_symlink(&mut st.broker, &target, &guest)?)
            },
        )
    }

    pub(super) fn path_readlink(
        mut caller: Ctx<'_>,
        fd: i32,
        path: i32,
        path_len: i32,
        buf: i32,
        buf_len: i32,
        out: i32,
    ) -> wasmtime::Result<i32> {
        dispatch(
            &mut caller,
            "path_readlink",
            |mem: &mut Mem<'_>, st: &mut RunState| {
                let guest = guest_path(mem, st, fd, path, path_len)?;
                let contents = st.fs.read_symlink(&mut st.broker, &guest)?;
                let n = contents.len().min(buf_len as u32 as usize);
                mem.put(buf, &contents[..n])?;
                mem.put_u32(out, n as u32)
            },
        )
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn path_link(
        mut caller: Ctx<'_>,
        old_fd: i32,
        flags: i32,
        old: i32,
        old_len: i32,
        new_fd: i32,
        new: i32,
        new_len: i32,
    ) -> wasmtime::Result<i32> {
        dispatch(
            &mut caller,
            "path_link",
            |mem: &mut Mem<'_>, st: &mut RunState| {
                dir_base(st, old_fd)?;
                dir_base(st, new_fd)?;
                // As Wasmtime: links are made to the name itself, never through a symlink.
                if flags & LOOKUP_SYMLINK_FOLLOW != 0 {
                    return Err(Fail::Errno(errno::INVAL));
                }
                let from = guest_path(mem, st, old_fd, old, old_len)?;
                let to = guest_path(mem, st, new_fd, new, new_len)?;
                Ok(st.fs.hard_link(&mut st.broker, &from, &to)?)
            },
        )
    }

    pub(super) fn sock_accept(
        mut caller: Ctx<'_>,
        fd: i32,
        _flags: i32,
        _out: i32,
    ) -> wasmtime::Result<i32> {
        dispatch(
            &mut caller,
            "sock_accept",
            |_mem: &mut Mem<'_>, st: &mut RunState| not_a_socket(st, fd),
        )
    }

    pub(super) fn sock_recv(
        mut caller: Ctx<'_>,
        fd: i32,
        _data: i32,
        _len: i32,
        _flags: i32,
        _out_len: i32,
        _out_flags: i32,
    ) -> wasmtime::Result<i32> {
        dispatch(
            &mut caller,
            "sock_recv",
            |_mem: &mut Mem<'_>, st: &mut RunState| not_a_socket(st, fd),
        )
    }

    pub(super) fn sock_send(
        mut caller: Ctx<'_>,
        fd: i32,
        _data: i32,
        _len: i32,
        _flags: i32,
        _out: i32,
    ) -> wasmtime::Result<i32> {
        dispatch(
            &mut caller,
            "sock_send",
            |_mem: &mut Mem<'_>, st: &mut RunState| not_a_socket(st, fd),
        )
    }

    pub(super) fn sock_shutdown(mut caller: Ctx<'_>, fd: i32, _how: i32) -> wasmtime::Result<i32> {
        dispatch(
            &mut caller,
            "sock_shutdown",
            |_mem: &mut Mem<'_>, st: &mut RunState| not_a_socket(st, fd),
        )
    }

    pub(super) fn proc_exit(_caller: Ctx<'_>, code: i32) -> wasmtime::Result<()> {
        Err(wasmtime::Error::new(GuestExit(code)))
    }

    pub(super) fn fd_sync(mut caller: Ctx<'_>, fd: i32) -> wasmtime::Result<i32> {
        dispatch(&mut caller, "fd_sync", |_mem, st| sync(st, fd))
    }

    pub(super) fn fd_datasync(mut caller: Ctx<'_>, fd: i32) -> wasmtime::Result<i32> {
        dispatch(&mut caller, "fd_datasync", |_mem, st| sync(st, fd))
    }

    /// Every fd the sandbox hands out is a file, a directory or stdio: a closed fd is `EBADF`,
    /// any other `ENOTSOCK`.
    fn not_a_socket(st: &mut RunState, fd: i32) -> WasiResult {
        st.wasi.get(fd)?;
        Err(Fail::Errno(errno::NOTSOCK))
    }

    fn sync(st: &mut RunState, fd: i32) -> WasiResult {
        let RunState {
            broker, fs, wasi, ..
        } = st;
        match wasi.get(fd)? {
            Fd::File(file) => Ok(fs.file_sync(&broker.handle_permit(), file)?),
            // As Wasmtime: a preopen or stdio has nothing to sync and says `EBADF`.
            Fd::Dir { preopen: None, .. } => Ok(()),
            _ => Err(Fail::Errno(errno::BADF)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_join_their_directory_and_never_leave_it() {
        let joined = |base, rel| join(base, rel).ok();
        assert_eq!(joined("/data", b"a/b.txt"), Some(b"/data/a/b.txt".to_vec()));
        assert_eq!(joined("/data", b"a/../b/"), Some(b"/data/a/../b/".to_vec()));
        assert!(matches!(
            join("/data", b"../etc/passwd"),
            Err(Fail::Errno(errno::PERM))
        ));
        assert!(matches!(
            join("/data", b"a/../../x"),
            Err(Fail::Errno(errno::PERM))
        ));
        assert!(matches!(
            join("/data", b"/etc/passwd"),
            Err(Fail::Errno(errno::PERM))
        ));
    }

    #[test]
    fn guest_buffers_are_bounds_checked() {
        let mut bytes = vec![0u8; 64];
        // One iovec at 0: { ptr: 16, len: 8 }, and one pointing past the end.
        bytes[0..4].copy_from_slice(&16u32.to_le_bytes());
        bytes[4..8].copy_from_slice(&8u32.to_le_bytes());
        bytes[8..12].copy_from_slice(&60u32.to_le_bytes());
        bytes[12..16].copy_from_slice(&8u32.to_le_bytes());
        let mem = Mem(&mut bytes);
        let ranges = mem.buffers(0, 1).ok().unwrap();
        assert_eq!(ranges.len(), 1);
        assert_eq!(ranges[0], 16..24);
        assert!(matches!(
            mem.buffers(0, 2),
            Err(Fail::Fault { ptr: 60, len: 8 })
        ));
        assert!(matches!(mem.buffers(0, -1), Err(Fail::Errno(errno::INVAL))));
        assert!(matches!(
            mem.buffers(0, 1025),
            Err(Fail::Errno(errno::INVAL))
        ));
        assert!(matches!(mem.u64_at(60), Err(Fail::Fault { .. })));
    }
}
