//! Idiomatic Rust over the sandbox's native host ABI (`sandbox` import module, see
//! `docs/host-abi.md`) for plugins built for `wasm32-wasip1`. Files, stdio, args, env, clocks
//! and randomness come from Rust's `std` through WASI; this crate adds what WASI preview 1
//! lacks: outbound TCP under the policy's network rules, and the run's input blob.
//!
//! ```no_run
//! use std::io::{Read, Write};
//! let mut stream = sandbox_guest::TcpStream::connect("echo.test", 7000)?;
//! stream.write_all(b"ping")?;
//! let mut reply = [0u8; 4];
//! stream.read_exact(&mut reply)?;
//! # Ok::<(), std::io::Error>(())
//! ```

use std::fmt;
use std::time::Duration;

#[allow(dead_code)]
mod sys {
    #[link(wasm_import_module = "sandbox")]
    extern "C" {
        pub fn input_len() -> i32;
        pub fn input_read(buf: *mut u8, len: i32, offset: i32) -> i32;
        pub fn net_connect(host: *const u8, host_len: i32, port: i32) -> i32;
        pub fn net_send(handle: i32, data: *const u8, len: i32) -> i32;
        pub fn net_recv(handle: i32, buf: *mut u8, len: i32, timeout_ms: i32) -> i32;
        pub fn net_close(handle: i32) -> i32;
    }
}

/// A refusal or failure reported by the host, one variant per stable ABI error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// The policy denied the request (`-1`); the run's report says which rule and why.
    Denied,
    /// A quota would be crossed (`-2`).
    Quota,
    /// An argument is invalid (`-3`).
    Invalid,
    /// A pointer or length outside guest memory (`-4`).
    Fault,
    /// No such file or directory (`-5`).
    NotFound,
    /// The host operation failed (`-6`).
    Io,
    /// The handle is not open (`-7`).
    BadHandle,
    /// The mount is read-only (`-8`).
    ReadOnly,
    /// A directory where a file was needed, or the reverse (`-9`).
    WrongKind,
    /// The peer could not be reached (`-10`).
    Unreachable,
    /// Nothing arrived before the wait ran out (`-11`).
    TimedOut,
    /// A code this version of the crate does not know.
    Unknown(i32),
}

impl Error {
    /// The error for a negative return code.
    pub fn from_code(code: i32) -> Error {
        match code {
            -1 => Error::Denied,
            -2 => Error::Quota,
            -3 => Error::Invalid,
            -4 => Error::Fault,
            -5 => Error::NotFound,
            -6 => Error::Io,
            -7 => Error::BadHandle,
            -8 => Error::ReadOnly,
            -9 => Error::WrongKind,
            -10 => Error::Unreachable,
            -11 => Error::TimedOut,
            other => Error::Unknown(other),
        }
    }
}

fn check(code: i32) -> Result<usize, Error> {
    if code < 0 {
        Err(Error::from_code(code))
    } else {
        Ok(code as usize)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            Error::Denied => "denied by the sandbox policy",
            Error::Quota => "the sandbox policy's quota would be crossed",
            Error::Invalid => "invalid argument",
            Error::Fault => "buffer outside guest memory",
            Error::NotFound => "not found",
            Error::Io => "host i/o error",
            Error::BadHandle => "handle not open",
            Error::ReadOnly => "read-only mount",
            Error::WrongKind => "wrong kind of file",
            Error::Unreachable => "peer unreachable",
            Error::TimedOut => "timed out",
            Error::Unknown(code) => return write!(f, "unknown sandbox error {code}"),
        };
        f.write_str(text)
    }
}

impl std::error::Error for Error {}

impl From<Error> for std::io::Error {
    fn from(error: Error) -> std::io::Error {
        use std::io::ErrorKind;
        let kind = match error {
            Error::Denied | Error::ReadOnly => ErrorKind::PermissionDenied,
            Error::Quota => ErrorKind::QuotaExceeded,
            Error::Invalid | Error::Fault => ErrorKind::InvalidInput,
            Error::NotFound => ErrorKind::NotFound,
            Error::BadHandle => ErrorKind::NotConnected,
            Error::WrongKind => ErrorKind::IsADirectory,
            Error::Unreachable => ErrorKind::ConnectionRefused,
            Error::TimedOut => ErrorKind::TimedOut,
            Error::Io | Error::Unknown(_) => ErrorKind::Other,
        };
        std::io::Error::new(kind, error)
    }
}

/// The run's input blob (`--input` of `sandbox-cli run`).
pub fn input() -> Vec<u8> {
    // SAFETY: the host writes at most `len` bytes into the buffer it is given.
    unsafe {
        let len = sys::input_len().max(0) as usize;
        let mut buf = vec![0u8; len];
        let n = sys::input_read(buf.as_mut_ptr(), len as i32, 0);
        buf.truncate(n.max(0) as usize);
        buf
    }
}

/// An outbound TCP connection, decided by the policy's network rules and quotas.
#[derive(Debug)]
pub struct TcpStream {
    handle: i32,
    read_timeout: Duration,
}

impl TcpStream {
    /// Connects to `host:port`. The host decides on the name, resolves it (the policy's
    /// `resolve` map first), decides on the address, and connects to exactly that address.
    pub fn connect(host: &str, port: u16) -> Result<TcpStream, Error> {
        // SAFETY: the host reads `host.len()` bytes from a live slice.
        let handle =
            check(unsafe { sys::net_connect(host.as_ptr(), host.len() as i32, port as i32) })?;
        Ok(TcpStream {
            handle: handle as i32,
            read_timeout: Duration::from_secs(5),
        })
    }

    /// How long a read waits for data (the run's wall-clock budget bounds it as well).
    pub fn set_read_timeout(&mut self, timeout: Duration) {
        self.read_timeout = timeout;
    }

    pub fn send(&mut self, data: &[u8]) -> Result<usize, Error> {
        // SAFETY: the host reads `data.len()` bytes from a live slice.
        check(unsafe { sys::net_send(self.handle, data.as_ptr(), data.len() as i32) })
    }

    pub fn recv(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        let timeout = self.read_timeout.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: the host writes at most `buf.len()` bytes into a live slice.
        check(unsafe { sys::net_recv(self.handle, buf.as_mut_ptr(), buf.len() as i32, timeout) })
    }
}

impl std::io::Read for TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        Ok(self.recv(buf)?)
    }
}

impl std::io::Write for TcpStream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        Ok(self.send(buf)?)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for TcpStream {
    fn drop(&mut self) {
        // SAFETY: closing a handle this stream owns; a stale one is only an error code.
        unsafe {
            sys::net_close(self.handle);
        }
    }
}
