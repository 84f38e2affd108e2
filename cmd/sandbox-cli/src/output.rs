//! Files and streams the CLI writes: output files opened safely before anything runs, and
//! writes to stdout and stderr that never panic.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::anyhow;
use sandbox_policy::{MountMode, Policy};

/// The most input bytes the CLI reads for a plugin, from a file or from stdin.
pub const MAX_INPUT_BYTES: u64 = 64 << 20;

/// An output file, checked before the run and written after it: a regular file (or a new
/// one in an existing folder), never reached through a final symlink.
pub struct OutputFile {
    /// The path as given, for messages.
    pub path: PathBuf,
    /// What the file holds, for messages (`report`, `stdout`, ...).
    pub what: &'static str,
}

impl OutputFile {
    /// Checks that `path` can be written, without creating or changing anything: an existing
    /// path must be a regular file (not a symlink, FIFO, device or folder) that opens for
    /// writing; a new one needs an existing, writable folder.
    pub fn check(path: &Path, what: &'static str) -> anyhow::Result<OutputFile> {
        let out = OutputFile {
            path: path.to_owned(),
            what,
        };
        match std::fs::symlink_metadata(path) {
            Ok(_) => {
                // Opened without creating or truncating: only the checks happen.
                drop(open_checked(path, what, false)?);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let folder = folder_of(path);
                let usable = std::fs::metadata(folder)
                    .map(|m| m.is_dir())
                    .unwrap_or(false);
                if !usable {
                    return Err(anyhow!(
                        "cannot write {what} `{}`: folder `{}` does not exist",
                        path.display(),
                        folder.display()
                    ));
                }
                if !writable(folder) {
                    return Err(anyhow!(
                        "cannot write {what} `{}`: folder `{}` is not writable",
                        path.display(),
                        folder.display()
                    ));
                }
            }
            Err(e) => return Err(anyhow!("cannot write {what} `{}`: {e}", path.display())),
        }
        Ok(out)
    }

    /// Writes all of `bytes`, replacing what the file held, with the same checks as
    /// [`check`](OutputFile::check); the error is one sentence naming the file.
    pub fn write(&self, bytes: &[u8]) -> anyhow::Result<()> {
        let (what, path) = (self.what, &self.path);
        let mut file = open_checked(path, what, true)?;
        file.set_len(0)
            .and_then(|()| file.write_all(bytes))
            .and_then(|()| file.flush())
            .map_err(|e| anyhow!("cannot write {what} `{}`: {e}", path.display()))
    }
}

/// Opens `path` for writing now, with the checks of [`OutputFile::check`], and empties it:
/// for a file written as the run goes (the event stream).
pub fn open_for_writing(path: &Path, what: &str) -> anyhow::Result<File> {
    let file = open_checked(path, what, true)?;
    file.set_len(0)
        .map_err(|e| anyhow!("cannot write {what} `{}`: {e}", path.display()))?;
    Ok(file)
}

/// Opens `path` for writing without following a final symlink and refuses anything but a
/// regular file. `create`: make it when missing. Nothing is truncated here.
fn open_checked(path: &Path, what: &str, create: bool) -> anyhow::Result<File> {
    // O_NONBLOCK: opening a FIFO with no reader fails instead of waiting for one.
    let file = OpenOptions::new()
        .write(true)
        .create(create)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| open_error(path, what, &e))?;
    let kind = file
        .metadata()
        .map_err(|e| anyhow!("cannot write {what} `{}`: {e}", path.display()))?
        .file_type();
    if kind.is_file() {
        return Ok(file);
    }
    let is = if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_char_device() || kind.is_block_device() {
        "a device"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    };
    Err(anyhow!(
        "cannot write {what} `{}`: it is {is}; output files must be regular files",
        path.display()
    ))
}

/// The folder a file path is in (`.` for a bare name).
fn folder_of(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Whether this process may create files in `folder`.
fn writable(folder: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(folder.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: `c` is a valid NUL-terminated string that lives across the call.
    unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) == 0 }
}

fn open_error(path: &Path, what: &str, e: &io::Error) -> anyhow::Error {
    let shown = path.display();
    match e.raw_os_error() {
        Some(libc::ELOOP) => anyhow!(
            "cannot write {what} `{shown}`: it is a symbolic link, which the CLI does not write through"
        ),
        Some(libc::ENXIO) => anyhow!(
            "cannot write {what} `{shown}`: it is a FIFO; output files must be regular files"
        ),
        Some(libc::ENOENT) => anyhow!(
            "cannot write {what} `{shown}`: folder `{}` does not exist",
            folder_of(path).display()
        ),
        Some(libc::EISDIR) => anyhow!("cannot write {what} `{shown}`: it is a folder"),
        _ => anyhow!("cannot write {what} `{shown}`: {e}"),
    }
}

/// The read-write mount of `policy` whose host folder holds `path` (which need not exist
/// yet), if any: a plugin could read or change what the CLI writes there.
pub fn rw_mount_holding(policy: &Policy, path: &Path) -> Option<String> {
    let file = std::fs::canonicalize(folder_of(path)).ok()?;
    policy
        .filesystem
        .mounts
        .iter()
        .filter(|m| m.mode == MountMode::ReadWrite)
        .find(|m| {
            std::fs::canonicalize(policy.mount_host_path(m))
                .map(|host| file.starts_with(host))
                .unwrap_or(false)
        })
        .map(|m| m.guest.clone())
}

/// Warns on stderr for each output file inside a read-write mount of `policy`.
pub fn warn_outputs_in_mounts(policy: &Policy, outputs: &[&OutputFile]) {
    for out in outputs {
        if let Some(guest) = rw_mount_holding(policy, &out.path) {
            let _ = writeln!(
                io::stderr(),
                "warning: {} `{}` is inside the policy's read-write mount `{guest}`: the plugin can read and change it",
                out.what,
                crate::text::neutralize(&out.path.display().to_string()),
            );
        }
    }
}

/// Where a stream write went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// Every byte was written.
    Ok,
    /// The reader went away (EPIPE): stop writing, quietly.
    Closed,
    /// Another error, already said on stderr.
    Failed,
}

/// Writes `bytes` to stdout and flushes; never panics. A closed pipe ends quietly; another
/// error is one sentence on stderr.
pub fn to_stdout(bytes: &[u8]) -> Written {
    let mut out = io::stdout().lock();
    written(out.write_all(bytes).and_then(|()| out.flush()), "stdout")
}

/// Writes `bytes` to stderr; never panics. Errors are only reported as [`Written`].
pub fn to_stderr(bytes: &[u8]) -> Written {
    let mut err = io::stderr().lock();
    match err.write_all(bytes).and_then(|()| err.flush()) {
        Ok(()) => Written::Ok,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Written::Closed,
        Err(_) => Written::Failed,
    }
}

fn written(result: io::Result<()>, stream: &str) -> Written {
    match result {
        Ok(()) => Written::Ok,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Written::Closed,
        Err(e) => {
            let _ = writeln!(io::stderr(), "error: cannot write to {stream}: {e}");
            Written::Failed
        }
    }
}

/// The plugin's input: a file, `-` for stdin, or (with no `--input`) stdin when it is a
/// pipe or a file. At most [`MAX_INPUT_BYTES`].
pub fn read_input(arg: Option<&Path>) -> anyhow::Result<Vec<u8>> {
    match arg {
        Some(path) if path == Path::new("-") => read_capped(io::stdin().lock(), "stdin"),
        // A regular file only, read with its size bound (a FIFO or device is refused).
        Some(path) => crate::bounded::read(path, "input", crate::bounded::MAX_INPUT_BYTES),
        None if stdin_is_piped() => read_capped(io::stdin().lock(), "stdin"),
        None => Ok(Vec::new()),
    }
}

/// Whether stdin is a pipe or a regular file (not a terminal, not `/dev/null`).
fn stdin_is_piped() -> bool {
    use std::os::fd::AsFd;
    let Ok(fd) = io::stdin().as_fd().try_clone_to_owned() else {
        return false;
    };
    File::from(fd)
        .metadata()
        .map(|m| m.file_type().is_fifo() || m.file_type().is_file())
        .unwrap_or(false)
}

fn read_capped(reader: impl Read, what: &str) -> anyhow::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    reader
        .take(MAX_INPUT_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| anyhow!("cannot read {what}: {e}"))?;
    if bytes.len() as u64 > MAX_INPUT_BYTES {
        return Err(anyhow!(
            "{what} is larger than {} MiB, the most the CLI passes to a plugin",
            MAX_INPUT_BYTES >> 20
        ));
    }
    Ok(bytes)
}
