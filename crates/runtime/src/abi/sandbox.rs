//! The `sandbox` import module (host ABI v1), documented in `docs/host-abi.md`. Each function
//! is thin: it bounds-checks guest pointers, charges fuel for the bytes it copies, and hands
//! plain slices to the broker. Errors are stable negative codes; a deny never traps unless the
//! policy says `on_deny: trap`.

use sandbox_policy::{ReasonCode, MAX_GUEST_PATH_BYTES};
use wasmtime::{Linker, Memory, Trap};

use crate::broker::events::Outcome;
use crate::broker::HostError;
use crate::cap::fs::ListFormat;
use crate::guest::{charge, guest_range, memory, path_and_buffer, settle, Ctx, MAX_IO_BYTES};
use crate::state::{DenyTrap, RunState};

/// The import module name.
pub const MODULE: &str = "sandbox";

/// The policy denied the request (path, mount, host or port).
pub const ERR_DENIED: i32 = -1;
/// A quota would be crossed; nothing was done.
pub const ERR_QUOTA: i32 = -2;
/// An argument is invalid (empty, too long or non-UTF-8 path, unknown flags, oversized buffer).
pub const ERR_INVALID: i32 = -3;
/// A pointer or length lies outside the guest's memory, or the module exports no `memory`.
pub const ERR_FAULT: i32 = -4;
/// No such file or directory.
pub const ERR_NOT_FOUND: i32 = -5;
/// The host operation failed.
pub const ERR_IO: i32 = -6;
/// The handle is not open in this run.
pub const ERR_BAD_HANDLE: i32 = -7;
/// The mount is read-only.
pub const ERR_READ_ONLY: i32 = -8;
/// A directory where a file was needed, or the reverse.
pub const ERR_WRONG_KIND: i32 = -9;

/// The peer could not be reached, or the connection failed.
pub const ERR_UNREACHABLE: i32 = -10;
/// The wait ran out before anything arrived.
pub const ERR_TIMED_OUT: i32 = -11;

/// `fs_write` flag: append instead of replacing the file.
pub const WRITE_APPEND: i32 = 1;

/// The ABI's error code for a failed host operation.
pub(crate) fn error_code(error: &HostError) -> i32 {
    match error {
        HostError::Denied(reason) | HostError::DeniedTrap { reason, .. } => match reason {
            ReasonCode::FsReadQuotaExceeded
            | ReasonCode::FsWriteQuotaExceeded
            | ReasonCode::NetConnectionQuotaExceeded
            | ReasonCode::NetEgressQuotaExceeded
            | ReasonCode::NetIngressQuotaExceeded => ERR_QUOTA,
            ReasonCode::FsEntriesQuotaExceeded => ERR_QUOTA,
            ReasonCode::FsPathInvalid | ReasonCode::NetHostInvalid => ERR_INVALID,
            ReasonCode::FsReadOnlyMount => ERR_READ_ONLY,
            ReasonCode::HandleInvalid => ERR_BAD_HANDLE,
            // The native ABI opens no files and reports bad pointers itself (`ERR_FAULT`).
            ReasonCode::FsOpenFilesExceeded
            | ReasonCode::FsLinkTargetOutsideMount
            | ReasonCode::EnvNotAllowed
            | ReasonCode::BadGuestPointer
            | ReasonCode::FsPathNotAllowed
            | ReasonCode::FsPathOutsideMounts
            | ReasonCode::NetHostNotAllowed
            | ReasonCode::NetPortNotAllowed
            | ReasonCode::NetAddressBlocked
            // Not denials of a request, but listed so a new code must be placed here.
            | ReasonCode::Allowed
            | ReasonCode::FuelExhausted
            | ReasonCode::Timeout
            | ReasonCode::MemoryLimit
            | ReasonCode::Trapped
            | ReasonCode::Cancelled => ERR_DENIED,
        },
        HostError::NotFound => ERR_NOT_FOUND,
        HostError::WrongKind | HostError::NotDir | HostError::Loop => ERR_WRONG_KIND,
        HostError::Io
        | HostError::Exists
        | HostError::NotEmpty
        | HostError::CrossMount
        | HostError::NotPermitted => ERR_IO,
        HostError::Invalid => ERR_INVALID,
        HostError::TimedOut => ERR_TIMED_OUT,
        // Never returned: `finish` ends the run for these.
        HostError::OutOfFuel | HostError::DeadlinePassed => ERR_TIMED_OUT,
        HostError::Unreachable => ERR_UNREACHABLE,
    }
}

fn fault(
    caller: &mut Ctx<'_>,
    function: &'static str,
    ptr: i32,
    len: i32,
    memory_bytes: usize,
) -> i32 {
    caller.data_mut().broker.record_fault(
        "abi.memory",
        ReasonCode::BadGuestPointer,
        "host_abi",
        Outcome::BadPointer {
            function,
            ptr: ptr as u32 as u64,
            len: len as u32 as u64,
            memory_bytes: memory_bytes as u64,
        },
    );
    ERR_FAULT
}

/// The guest's memory and a checked range in it; a bad range is recorded and comes back as the
/// `ERR_FAULT` to return.
fn guest_buffer(
    caller: &mut Ctx<'_>,
    function: &'static str,
    ptr: i32,
    len: i32,
) -> Result<(Memory, std::ops::Range<usize>), i32> {
    let Some(mem) = memory(caller) else {
        return Err(fault(caller, function, ptr, len, 0));
    };
    let size = mem.data_size(&*caller);
    match guest_range(size, ptr, len) {
        Some(range) => Ok((mem, range)),
        None => Err(fault(caller, function, ptr, len, size)),
    }
}

/// A path argument in guest memory, checked and cut to one byte past the longest valid path
/// (so an overlong path is refused by `decide` without a large host slice). The path is read
/// in place: the host-call path copies nothing.
fn path_range(
    caller: &mut Ctx<'_>,
    function: &'static str,
    ptr: i32,
    len: i32,
) -> Result<(Memory, std::ops::Range<usize>), i32> {
    let (mem, range) = guest_buffer(caller, function, ptr, len)?;
    let take = range.len().min(MAX_GUEST_PATH_BYTES + 1);
    Ok((mem, range.start..range.start + take))
}

/// Burns the fuel the capability charged, then turns a host error into the guest's return
/// value, or ends the run: `on_deny: trap`, fuel that could not pay for the work, a deadline
/// passed during it.
fn finish(caller: &mut Ctx<'_>, result: Result<i32, HostError>) -> wasmtime::Result<i32> {
    settle(caller)?;
    match result {
        Ok(n) => Ok(n),
        Err(HostError::OutOfFuel) => {
            caller.set_fuel(0)?;
            Err(wasmtime::Error::new(Trap::OutOfFuel))
        }
        Err(HostError::DeadlinePassed) => Err(wasmtime::Error::new(Trap::Interrupt)),
        Err(HostError::DeniedTrap {
            reason,
            rule_id,
            capability,
        }) => Err(wasmtime::Error::new(DenyTrap {
            reason,
            rule_id,
            capability,
        })),
        Err(e) => Ok(error_code(&e)),
    }
}

/// Declares the module's functions once: each row names the import and its handler, whose
/// Rust signature is the import's Wasm type. The table makes [`FUNCTIONS`] (the unknown-import
/// check and the docs test read it) and [`add_to_linker`], so neither can forget a function.
macro_rules! sandbox_functions {
    ($($name:ident,)*) => {
        /// Every import the module provides, in the order `docs/host-abi.md` lists them.
        pub const FUNCTIONS: &[&str] = &[$(stringify!($name),)*];

        /// Defines every `sandbox` function on the linker.
        pub(crate) fn add_to_linker(linker: &mut Linker<RunState>) -> wasmtime::Result<()> {
            $(linker.func_wrap(MODULE, stringify!($name), $name)?;)*
            Ok(())
        }
    };
}

sandbox_functions! {
    input_len,
    input_read,
    output_write,
    log,
    fs_read,
    fs_write,
    fs_stat,
    fs_list,
    fs_delete,
    net_connect,
    net_send,
    net_recv,
    net_close,
    fs_list_entries,
}

/// `output_write` and `log`: guest bytes to the captured stdout or stderr.
fn write_stdio(
    mut caller: Ctx<'_>,
    name: &'static str,
    ptr: i32,
    len: i32,
    is_stderr: bool,
) -> wasmtime::Result<i32> {
    let (mem, range) = match guest_buffer(&mut caller, name, ptr, len) {
        Ok(found) => found,
        Err(code) => return Ok(code),
    };
    // Keeps the returned count a positive i32.
    if range.len() > MAX_IO_BYTES as usize {
        return Ok(ERR_INVALID);
    }
    charge(&mut caller, range.len() as u64)?;
    let (data, state) = mem.data_and_store_mut(&mut caller);
    let sink = if is_stderr {
        &mut state.stderr
    } else {
        &mut state.stdout
    };
    sink.write(&data[range.clone()]);
    if is_stderr {
        sink.write(b"\n");
    }
    Ok(range.len() as i32)
}

fn output_write(caller: Ctx<'_>, ptr: i32, len: i32) -> wasmtime::Result<i32> {
    write_stdio(caller, "output_write", ptr, len, false)
}

fn log(caller: Ctx<'_>, ptr: i32, len: i32) -> wasmtime::Result<i32> {
    write_stdio(caller, "log", ptr, len, true)
}

fn input_len(caller: Ctx<'_>) -> i32 {
    i32::try_from(caller.data().input.len()).unwrap_or(i32::MAX)
}

fn input_read(mut caller: Ctx<'_>, buf: i32, len: i32, offset: i32) -> wasmtime::Result<i32> {
    let (mem, range) = match guest_buffer(&mut caller, "input_read", buf, len) {
        Ok(found) => found,
        Err(code) => return Ok(code),
    };
    let range = range.start..range.start + range.len().min(MAX_IO_BYTES as usize);
    let offset = offset as u32 as usize;
    let available = caller
        .data()
        .input
        .len()
        .saturating_sub(offset)
        .min(range.len());
    charge(&mut caller, available as u64)?;
    if available == 0 {
        // Also covers an offset past the end, which must not reach the slice below.
        return Ok(0);
    }
    let (data, state) = mem.data_and_store_mut(&mut caller);
    data[range.start..range.start + available]
        .copy_from_slice(&state.input[offset..offset + available]);
    Ok(available as i32)
}

fn fs_read(
    mut caller: Ctx<'_>,
    path_ptr: i32,
    path_len: i32,
    offset: i64,
    buf: i32,
    buf_len: i32,
) -> wasmtime::Result<i32> {
    let (mem, path) = match path_range(&mut caller, "fs_read", path_ptr, path_len) {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };
    let range = match guest_buffer(&mut caller, "fs_read", buf, buf_len) {
        Ok((_, range)) => range,
        Err(code) => return Ok(code),
    };
    let range = range.start..range.start + range.len().min(MAX_IO_BYTES as usize);
    if offset < 0 {
        return Ok(ERR_INVALID);
    }
    charge(&mut caller, path.len() as u64)?;
    let (data, state) = mem.data_and_store_mut(&mut caller);
    let (path, buf) = path_and_buffer(data, path, range);
    let result = state
        .fs
        .fs_read(&mut state.broker, &path, offset as u64, buf);
    if let Ok(n) = result {
        charge(&mut caller, n)?;
    }
    finish(&mut caller, result.map(|n| n as i32))
}

fn fs_write(
    mut caller: Ctx<'_>,
    path_ptr: i32,
    path_len: i32,
    data_ptr: i32,
    data_len: i32,
    flags: i32,
) -> wasmtime::Result<i32> {
    let (mem, path) = match path_range(&mut caller, "fs_write", path_ptr, path_len) {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };
    let range = match guest_buffer(&mut caller, "fs_write", data_ptr, data_len) {
        Ok((_, range)) => range,
        Err(code) => return Ok(code),
    };
    if flags & !WRITE_APPEND != 0 || range.len() > MAX_IO_BYTES as usize {
        return Ok(ERR_INVALID);
    }
    charge(&mut caller, (path.len() + range.len()) as u64)?;
    let (data, state) = mem.data_and_store_mut(&mut caller);
    let append = flags & WRITE_APPEND != 0;
    let result = state
        .fs
        .fs_write(&mut state.broker, &data[path], &data[range], append);
    finish(&mut caller, result.map(|n| n as i32))
}

fn fs_stat(mut caller: Ctx<'_>, path_ptr: i32, path_len: i32, out: i32) -> wasmtime::Result<i32> {
    let (mem, path) = match path_range(&mut caller, "fs_stat", path_ptr, path_len) {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };
    let range = match guest_buffer(&mut caller, "fs_stat", out, 12) {
        Ok((_, range)) => range,
        Err(code) => return Ok(code),
    };
    charge(&mut caller, path.len() as u64)?;
    let (data, state) = mem.data_and_store_mut(&mut caller);
    let result = state
        .fs
        .fs_stat(&mut state.broker, &data[path])
        .map(|stat| {
            data[range.start..range.start + 8].copy_from_slice(&stat.size.to_le_bytes());
            data[range.start + 8..range.end].copy_from_slice(&u32::from(stat.is_dir).to_le_bytes());
            0
        });
    finish(&mut caller, result)
}

fn fs_list(
    caller: Ctx<'_>,
    path_ptr: i32,
    path_len: i32,
    buf: i32,
    buf_len: i32,
) -> wasmtime::Result<i32> {
    list(
        caller,
        "fs_list",
        [path_ptr, path_len, buf, buf_len],
        ListFormat::Lines,
    )
}

fn fs_list_entries(
    caller: Ctx<'_>,
    path_ptr: i32,
    path_len: i32,
    buf: i32,
    buf_len: i32,
) -> wasmtime::Result<i32> {
    let args = [path_ptr, path_len, buf, buf_len];
    list(caller, "fs_list_entries", args, ListFormat::LengthPrefixed)
}

/// `fs_list` and `fs_list_entries`: the listing in `format`, as much as fits in the buffer,
/// and its full length.
fn list(
    mut caller: Ctx<'_>,
    name: &'static str,
    [path_ptr, path_len, buf, buf_len]: [i32; 4],
    format: ListFormat,
) -> wasmtime::Result<i32> {
    let (mem, path) = match path_range(&mut caller, name, path_ptr, path_len) {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };
    let range = match guest_buffer(&mut caller, name, buf, buf_len) {
        Ok((_, range)) => range,
        Err(code) => return Ok(code),
    };
    charge(&mut caller, path.len() as u64)?;
    let (data, state) = mem.data_and_store_mut(&mut caller);
    let result = state
        .fs
        .fs_list(&mut state.broker, &data[path], format)
        .map(|listing| {
            let n = listing.len().min(range.len());
            data[range.start..range.start + n].copy_from_slice(&listing[..n]);
            // The full length, so a guest with a short buffer can retry with a larger one.
            i32::try_from(listing.len()).unwrap_or(i32::MAX)
        });
    if let Ok(n) = result {
        charge(&mut caller, n as u64)?;
    }
    finish(&mut caller, result)
}

fn fs_delete(mut caller: Ctx<'_>, path_ptr: i32, path_len: i32) -> wasmtime::Result<i32> {
    let (mem, path) = match path_range(&mut caller, "fs_delete", path_ptr, path_len) {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };
    charge(&mut caller, path.len() as u64)?;
    let (data, state) = mem.data_and_store_mut(&mut caller);
    let result = state
        .fs
        .fs_delete(&mut state.broker, &data[path])
        .map(|()| 0);
    finish(&mut caller, result)
}

fn net_connect(
    mut caller: Ctx<'_>,
    host_ptr: i32,
    host_len: i32,
    port: i32,
) -> wasmtime::Result<i32> {
    let (mem, range) = match guest_buffer(&mut caller, "net_connect", host_ptr, host_len) {
        Ok(found) => found,
        Err(code) => return Ok(code),
    };
    let Ok(port) = u16::try_from(port) else {
        return Ok(ERR_INVALID);
    };
    if port == 0 {
        return Ok(ERR_INVALID);
    }
    if range.len() > crate::cap::net::MAX_HOST_BYTES {
        return Ok(ERR_INVALID);
    }
    let host = mem.data(&caller)[range].to_vec();
    charge(&mut caller, host.len() as u64)?;
    let state = caller.data_mut();
    let result = state.net.net_connect(&mut state.broker, &host, port);
    finish(&mut caller, result)
}

fn net_send(mut caller: Ctx<'_>, handle: i32, ptr: i32, len: i32) -> wasmtime::Result<i32> {
    let (mem, range) = match guest_buffer(&mut caller, "net_send", ptr, len) {
        Ok(found) => found,
        Err(code) => return Ok(code),
    };
    if range.len() > MAX_IO_BYTES as usize {
        return Ok(ERR_INVALID);
    }
    charge(&mut caller, range.len() as u64)?;
    let (data, state) = mem.data_and_store_mut(&mut caller);
    let result = state.net.net_send(&mut state.broker, handle, &data[range]);
    finish(&mut caller, result.map(|n| n as i32))
}

fn net_recv(
    mut caller: Ctx<'_>,
    handle: i32,
    ptr: i32,
    len: i32,
    timeout_ms: i32,
) -> wasmtime::Result<i32> {
    let (mem, range) = match guest_buffer(&mut caller, "net_recv", ptr, len) {
        Ok(found) => found,
        Err(code) => return Ok(code),
    };
    let range = range.start..range.start + range.len().min(MAX_IO_BYTES as usize);
    let timeout = std::time::Duration::from_millis(timeout_ms.max(0) as u64);
    charge(&mut caller, 0)?;
    let (data, state) = mem.data_and_store_mut(&mut caller);
    let result = state
        .net
        .net_recv(&mut state.broker, handle, &mut data[range], timeout);
    if let Ok(n) = result {
        charge(&mut caller, n)?;
    }
    finish(&mut caller, result.map(|n| n as i32))
}

fn net_close(mut caller: Ctx<'_>, handle: i32) -> wasmtime::Result<i32> {
    charge(&mut caller, 0)?;
    let state = caller.data_mut();
    let result = state.net.net_close(&mut state.broker, handle).map(|()| 0);
    finish(&mut caller, result)
}

#[cfg(test)]
mod tests {
    use crate::guest::{guest_range, path_and_buffer};

    #[test]
    fn a_path_overlapping_the_buffer_is_read_before_the_buffer_is_written() {
        let mut data: Vec<u8> = (0..32).collect();
        let (path, buf) = path_and_buffer(&mut data, 0..4, 8..12);
        assert_eq!((&*path, buf.len()), (&[0, 1, 2, 3][..], 4));
        let (path, buf) = path_and_buffer(&mut data, 20..22, 2..6);
        assert_eq!((&*path, buf.len()), (&[20, 21][..], 4));
        let (path, buf) = path_and_buffer(&mut data, 4..8, 6..10);
        buf.fill(0xff);
        assert_eq!(&*path, &[4, 5, 6, 7]);
        assert_eq!(&data[4..10], &[4, 5, 0xff, 0xff, 0xff, 0xff]);
    }

    #[test]
    fn guest_ranges_are_bounds_checked_without_overflow() {
        assert_eq!(guest_range(100, 0, 100), Some(0..100));
        assert_eq!(guest_range(100, 99, 1), Some(99..100));
        assert_eq!(guest_range(100, 100, 0), Some(100..100));
        assert_eq!(guest_range(100, 100, 1), None);
        assert_eq!(guest_range(100, -1, 1), None);
        assert_eq!(guest_range(100, 1, -1), None);
        assert_eq!(
            guest_range(usize::MAX, -1, -1),
            Some(0xffff_ffff..0x1_ffff_fffe)
        );
    }
}
