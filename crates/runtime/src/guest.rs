//! The guest side of every host call: the guest's memory found and bounds-checked, ranges
//! that cannot overflow, and fuel charged for the bytes a call will copy. Front ends use it
//! before they hand plain slices to the capabilities.

use wasmtime::{Caller, Extern, Memory, Trap};

use crate::state::RunState;

/// A host function's view of the call: Wasmtime's caller over the Store data.
pub(crate) type Ctx<'a> = Caller<'a, RunState>;

/// Most bytes one call moves; larger reads return fewer bytes, larger writes are refused.
pub const MAX_IO_BYTES: u32 = 16 << 20;

/// Fuel charged per host call, and per 8 bytes copied, so I/O loops are bounded by fuel too.
pub const HOSTCALL_BASE_FUEL: u64 = 10;
/// Fuel charged per 8 bytes a host call copies.
pub const FUEL_PER_8_BYTES: u64 = 1;

/// The caller's `memory` export, looked up by name once per call and then kept.
pub(crate) fn memory(caller: &mut Ctx<'_>) -> Option<Memory> {
    if let Some(memory) = caller.data().memory {
        return Some(memory);
    }
    match caller.get_export("memory") {
        Some(Extern::Memory(m)) => {
            caller.data_mut().memory = Some(m);
            Some(m)
        }
        _ => None,
    }
}

/// The range `[ptr, ptr+len)` if it lies inside memory of `size` bytes.
pub fn guest_range(size: usize, ptr: i32, len: i32) -> Option<std::ops::Range<usize>> {
    let start = ptr as u32 as usize;
    let len = len as u32 as usize;
    let end = start.checked_add(len)?;
    (end <= size).then_some(start..end)
}

/// Charges fuel for a host call that copies `bytes`; running out ends the run as
/// `fuel_exhausted`, exactly as if Wasm code had used it. Then opens the broker's meter with
/// the fuel left, so the capability the call reaches charges its own work before doing it.
pub(crate) fn charge(caller: &mut Ctx<'_>, bytes: u64) -> wasmtime::Result<()> {
    settle(caller)?;
    let left = burn_fuel(caller, HOSTCALL_BASE_FUEL + bytes / 8 * FUEL_PER_8_BYTES)?;
    caller.data_mut().broker.meter_open(left);
    Ok(())
}

/// Burns the fuel the broker's meter recorded since it was opened, and closes it.
pub(crate) fn settle(caller: &mut Ctx<'_>) -> wasmtime::Result<()> {
    let spent = caller.data_mut().broker.meter_close();
    if spent == 0 {
        return Ok(());
    }
    burn_fuel(caller, spent).map(drop)
}

/// The fuel for copying `bytes` between guest and host memory.
pub(crate) fn copy_fuel(bytes: usize) -> u64 {
    bytes as u64 / 8 * FUEL_PER_8_BYTES
}

/// Takes `cost` units of fuel, or ends the run as `fuel_exhausted` when less is left.
/// Returns the fuel left after it.
pub(crate) fn burn_fuel(caller: &mut Ctx<'_>, cost: u64) -> wasmtime::Result<u64> {
    let fuel = caller.get_fuel()?;
    if fuel < cost {
        caller.set_fuel(0)?;
        return Err(wasmtime::Error::new(Trap::OutOfFuel));
    }
    caller.set_fuel(fuel - cost)?;
    Ok(fuel - cost)
}

/// The path to read and the buffer to fill, both in guest memory. Only when the guest made
/// them overlap is the path copied.
pub(crate) fn path_and_buffer(
    data: &mut [u8],
    path: std::ops::Range<usize>,
    buf: std::ops::Range<usize>,
) -> (std::borrow::Cow<'_, [u8]>, &mut [u8]) {
    if path.end <= buf.start {
        let (low, high) = data.split_at_mut(buf.start);
        (low[path].into(), &mut high[..buf.len()])
    } else if buf.end <= path.start {
        let (low, high) = data.split_at_mut(path.start);
        (high[..path.len()].into(), &mut low[buf])
    } else {
        let copied = data[path].to_vec();
        (copied.into(), &mut data[buf])
    }
}
