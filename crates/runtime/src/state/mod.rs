//! The Store data of one call: the broker that decides, the capabilities that hold host
//! handles, the limiter, the guest's stdio and its WASI view. Front ends reach it through
//! Wasmtime's `Caller`; nothing here decides or touches the host by itself.

use sandbox_policy::ReasonCode;
use wasmtime::Memory;

use crate::broker::Broker;
use crate::cap::fs::Mounts;
use crate::cap::net::Connections;
use crate::engine::limiter::RunLimiter;

pub(crate) mod wasi;

use wasi::WasiState;

/// The run ended because the guest was denied and the policy says `on_deny: trap`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("`{capability}` denied by `{rule_id}` ({reason}) and the policy says `on_deny: trap`")]
pub struct DenyTrap {
    /// Why the request was denied.
    pub reason: ReasonCode,
    /// The rule that denied it.
    pub rule_id: String,
    /// What was asked, e.g. `fs.write`.
    pub capability: &'static str,
}

/// Where a call's guest output also goes, as the guest writes it (the report still captures
/// it within the policy's caps). A stream that fails to take bytes (a closed terminal) is
/// dropped; the call goes on.
#[derive(Default)]
pub struct OutputStreams {
    /// Receives the guest's stdout (WASI fd 1, `output_write`).
    pub stdout: Option<Box<dyn std::io::Write + Send>>,
    /// Receives the guest's stderr (WASI fd 2, `log`).
    pub stderr: Option<Box<dyn std::io::Write + Send>>,
}

/// Captured guest output, bounded by the policy's cap, and streamed as it comes where asked.
#[derive(Default)]
pub(crate) struct Capture {
    pub bytes: Vec<u8>,
    pub cap: usize,
    pub truncated: bool,
    tee: Option<Box<dyn std::io::Write + Send>>,
}

impl Capture {
    pub(crate) fn new(cap: u64, tee: Option<Box<dyn std::io::Write + Send>>) -> Capture {
        Capture {
            bytes: Vec::new(),
            cap: usize::try_from(cap).unwrap_or(usize::MAX),
            truncated: false,
            tee,
        }
    }

    pub(crate) fn write(&mut self, data: &[u8]) {
        if let Some(tee) = &mut self.tee {
            if tee.write_all(data).and_then(|()| tee.flush()).is_err() {
                self.tee = None;
            }
        }
        let room = self.cap.saturating_sub(self.bytes.len());
        if data.len() > room {
            self.truncated = true;
        }
        self.bytes.extend_from_slice(&data[..data.len().min(room)]);
    }
}

/// Per-run state owned by the Store: the broker, the limiter and the guest's stdio.
pub(crate) struct RunState {
    pub(crate) broker: Broker,
    /// The filesystem capability: the mounts' host folders.
    pub(crate) fs: Mounts,
    /// The network capability: the call's open connections.
    pub(crate) net: Connections,
    pub(crate) limiter: RunLimiter,
    pub(crate) input: Vec<u8>,
    pub(crate) stdout: Capture,
    pub(crate) stderr: Capture,
    pub(crate) wasi: WasiState,
    /// The instance's `memory` export, found by the first host call that needs it.
    pub(crate) memory: Option<Memory>,
}
