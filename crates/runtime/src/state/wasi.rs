//! The guest's WASI preview 1 view, kept in the Store data: its fd table (whose file and
//! directory handles are the filesystem capability's, opaque here), argv, environment,
//! clocks and randomness. The front end in `abi/wasi_p1` reads and changes it.

use std::time::{Instant, SystemTime};

use sandbox_policy::Policy;

use crate::cap::fs::open::{GuestDir, GuestFile};
use crate::cap::fs::Mounts;

/// WASI's `EBADF`, what a missing fd answers.
const BADF: u16 = 8;

/// The virtual clock: nanoseconds per unit of fuel, and the wall-clock time it starts at
/// (2000-01-01T00:00:00Z).
pub(crate) const VIRTUAL_NS_PER_FUEL: u64 = 1;
pub(crate) const VIRTUAL_EPOCH_NS: u64 = 946_684_800 * 1_000_000_000;
/// The seed of the deterministic random stream.
pub(crate) const VIRTUAL_RANDOM_SEED: u64 = 0x5eed_5a4d_b0c5_0001;

pub(crate) enum Fd {
    Stdin,
    Stdout,
    Stderr,
    Dir {
        dir: GuestDir,
        /// The guest path announced by `fd_prestat_dir_name`, for the mounts' roots.
        preopen: Option<String>,
    },
    File(GuestFile),
}

pub(crate) enum Clock {
    Real { started: Instant },
    Virtual { slept_ns: u64 },
}

/// SplitMix64: a small, well-mixed stream for the deterministic mode (not for secrets; the
/// guest asked for reproducible runs).
pub(crate) struct SeededRandom(u64);

impl SeededRandom {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub(crate) fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(8) {
            let bytes = self.next().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}

/// The guest's WASI view: its fd table, argv, environment, clocks and randomness.
pub(crate) struct WasiState {
    pub(crate) fds: Vec<Option<Fd>>,
    pub(crate) args: Vec<Vec<u8>>,
    pub(crate) env: Vec<Vec<u8>>,
    pub(crate) clock: Clock,
    pub(crate) random: Option<SeededRandom>,
    pub(crate) stdin_position: usize,
    /// Files and directories the guest opened (preopens and stdio not counted).
    pub(crate) open_files: u64,
    /// Whether this call's first clock read, and first random bytes, were decided already.
    pub(crate) clock_decided: bool,
    pub(crate) random_decided: bool,
    /// The names of the variables in `env`, as the policy sets them.
    pub(crate) env_names: Vec<String>,
    pub(crate) fuel_limit: u64,
    /// Fuel used so far, set at the start of each call (the virtual clock reads it).
    pub(crate) fuel_used: u64,
}

impl WasiState {
    /// Stdio on fds 0–2, then one preopened directory per mount, in the policy's order.
    pub(crate) fn new(policy: &Policy, fs: &Mounts, program: &str, args: &[String]) -> WasiState {
        let mut fds = vec![Some(Fd::Stdin), Some(Fd::Stdout), Some(Fd::Stderr)];
        for (index, mount) in policy.filesystem.mounts.iter().enumerate() {
            fds.push(Some(Fd::Dir {
                dir: fs.preopen(policy, index),
                preopen: Some(mount.guest.clone()),
            }));
        }
        let args = std::iter::once(program)
            .chain(args.iter().map(String::as_str))
            .map(|a| a.as_bytes().to_vec())
            .collect();
        let env = policy
            .env
            .iter()
            .map(|(k, v)| format!("{k}={v}").into_bytes())
            .collect();
        let (clock, random) = if policy.deterministic {
            (
                Clock::Virtual { slept_ns: 0 },
                Some(SeededRandom(VIRTUAL_RANDOM_SEED)),
            )
        } else {
            (
                Clock::Real {
                    started: Instant::now(),
                },
                None,
            )
        };
        WasiState {
            fds,
            args,
            env,
            clock,
            random,
            stdin_position: 0,
            open_files: 0,
            clock_decided: false,
            random_decided: false,
            env_names: policy.env.iter().map(|(k, _)| k.clone()).collect(),
            fuel_limit: policy.budgets.fuel.value,
            fuel_used: 0,
        }
    }

    /// The state of a plugin that imports no WASI function: nothing to set up per call.
    pub(crate) fn unused() -> WasiState {
        WasiState {
            fds: Vec::new(),
            args: Vec::new(),
            env: Vec::new(),
            clock: Clock::Virtual { slept_ns: 0 },
            random: None,
            stdin_position: 0,
            open_files: 0,
            clock_decided: false,
            random_decided: false,
            env_names: Vec::new(),
            fuel_limit: 0,
            fuel_used: 0,
        }
    }

    pub(crate) fn now(&self, clock_id: i32) -> Option<u64> {
        match (&self.clock, clock_id) {
            (Clock::Virtual { slept_ns }, 0) => Some(
                VIRTUAL_EPOCH_NS
                    .saturating_add(self.fuel_used.saturating_mul(VIRTUAL_NS_PER_FUEL))
                    .saturating_add(*slept_ns),
            ),
            (Clock::Virtual { slept_ns }, 1..=3) => Some(
                self.fuel_used
                    .saturating_mul(VIRTUAL_NS_PER_FUEL)
                    .saturating_add(*slept_ns),
            ),
            (Clock::Real { .. }, 0) => Some(
                SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
                    .unwrap_or(0),
            ),
            (Clock::Real { started }, 1..=3) => {
                Some(u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX))
            }
            _ => None,
        }
    }

    pub(crate) fn deterministic(&self) -> bool {
        matches!(self.clock, Clock::Virtual { .. })
    }

    pub(crate) fn insert(&mut self, fd: Fd) -> u32 {
        let slot = self.fds.iter().skip(3).position(Option::is_none);
        match slot {
            Some(i) => {
                self.fds[i + 3] = Some(fd);
                (i + 3) as u32
            }
            None => {
                self.fds.push(Some(fd));
                (self.fds.len() - 1) as u32
            }
        }
    }

    pub(crate) fn get(&mut self, fd: i32) -> Result<&mut Fd, Fail> {
        self.fds
            .get_mut(fd as u32 as usize)
            .and_then(Option::as_mut)
            .ok_or(Fail::Errno(BADF))
    }

    /// Removes an fd from the table, keeping the count of guest-opened files.
    pub(crate) fn take(&mut self, fd: i32) -> Result<Fd, Fail> {
        let entry = self
            .fds
            .get_mut(fd as u32 as usize)
            .and_then(Option::take)
            .ok_or(Fail::Errno(BADF))?;
        if counts_as_open(&entry) {
            self.open_files -= 1;
        }
        Ok(entry)
    }
}

pub(crate) fn counts_as_open(fd: &Fd) -> bool {
    matches!(fd, Fd::File(_) | Fd::Dir { preopen: None, .. })
}

/// Why a call did not succeed.
pub(crate) enum Fail {
    Errno(u16),
    /// A pointer or length outside guest memory: recorded, and `EFAULT` to the guest.
    Fault {
        ptr: u32,
        len: u32,
    },
    /// Ends the run: `on_deny: trap`, or `proc_exit`.
    Trap(wasmtime::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_random_is_reproducible_and_not_constant() {
        let mut a = SeededRandom(VIRTUAL_RANDOM_SEED);
        let mut b = SeededRandom(VIRTUAL_RANDOM_SEED);
        let (mut x, mut y) = ([0u8; 37], [0u8; 37]);
        a.fill(&mut x);
        b.fill(&mut y);
        assert_eq!(x, y);
        assert_ne!(x[..8], x[8..16]);
    }
}
