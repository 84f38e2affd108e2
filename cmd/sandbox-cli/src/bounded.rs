//! Reads of the files the CLI is pointed at (`--plugin`, `--policy`, `--input`, reports,
//! events, the policy a report names): regular files only, opened without blocking, with the
//! size limit applied while reading (`sandbox_runtime::read_regular_file`). `/dev/zero`, a FIFO
//! or a huge sparse file is one clear error, not a hang or an exhausted memory.

use std::path::Path;

use anyhow::anyhow;
use sandbox_policy::{Policy, PolicyError, PolicyErrorKind, PolicyErrors, Span};
use sandbox_runtime::{read_regular_file, ReadError};

/// Largest report (or lone event) read: far above what a run writes with the default bound
/// of 10,000 recorded events.
pub const MAX_REPORT_BYTES: u64 = 1 << 30;

/// Largest `--input` file read.
pub const MAX_INPUT_BYTES: u64 = 256 << 20;

/// Reads a regular file of at most `limit` bytes; the error names `what` and the file.
pub fn read(path: &Path, what: &str, limit: u64) -> anyhow::Result<Vec<u8>> {
    read_regular_file(path, limit)
        .map_err(|e| anyhow!("cannot read {what} `{}`: {e}", path.display()))
}

/// [`read`] for text: the file must be UTF-8.
pub fn read_text(path: &Path, what: &str, limit: u64) -> anyhow::Result<String> {
    String::from_utf8(read(path, what, limit)?)
        .map_err(|_| anyhow!("{what} `{}` is not UTF-8 text", path.display()))
}

/// Reads a plugin of at most the policy's `limits.module_bytes`, naming that limit when the
/// file is larger.
pub fn read_plugin(path: &Path, policy: &Policy) -> anyhow::Result<Vec<u8>> {
    let limit = policy.limits.module_bytes.value;
    read_regular_file(path, limit).map_err(|e| match e {
        ReadError::TooLarge(_) => anyhow!(
            "plugin `{}` is larger than the policy's `limits.module_bytes` allows ({limit} bytes)",
            path.display()
        ),
        other => anyhow!("cannot read plugin `{}`: {other}", path.display()),
    })
}

/// `sandbox_policy::load_policy` with a bounded read: a regular file of at most the parser's
/// own limit, then parsed with relative mount folders taken from its folder.
pub fn load_policy(path: &Path) -> Result<(Policy, String), PolicyErrors> {
    let io_error = |message: String| PolicyErrors {
        errors: vec![PolicyError::new(
            PolicyErrorKind::Io,
            Span::UNKNOWN,
            message,
            "check the path given with `--policy`",
        )],
    };
    let limit = sandbox_policy::MAX_POLICY_BYTES as u64;
    let bytes = read_regular_file(path, limit)
        .map_err(|e| io_error(format!("cannot read policy `{}`: {e}", path.display())))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| io_error(format!("policy `{}` is not UTF-8 text", path.display())))?;
    let base_dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let policy = sandbox_policy::parse_policy(&text, base_dir)?;
    Ok((policy, text))
}
