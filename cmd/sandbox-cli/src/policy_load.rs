//! Loading a policy for a command: its errors are shown in the same words and with the same
//! snippet as `policy lint`, all at once.

use std::path::Path;

use anyhow::anyhow;
use sandbox_policy::lint::{lint_policy_text, render_findings, Finding, LintReport, Severity};
use sandbox_policy::Policy;

/// Whether the policy's mount folders must exist (they must to run a plugin).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mounts {
    /// A missing mount folder is an error, said as `lint` says it.
    MustExist,
    /// The policy is only read (diff, replay).
    MayBeMissing,
}

/// Reads and validates a policy file. On errors, every one is shown on stderr with its
/// snippet, and the error returned is one sentence counting them. Returns the policy and the
/// file's bytes.
pub fn load_policy(path: &Path, mounts: Mounts) -> anyhow::Result<(Policy, Vec<u8>)> {
    // A regular file only, read with its size bound applied while reading.
    let bytes = crate::bounded::read(path, "policy", sandbox_policy::MAX_POLICY_BYTES as u64)?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| anyhow!("policy `{}` is not UTF-8 text", path.display()))?;
    let base_dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let findings: Vec<Finding> = match sandbox_policy::parse_policy(text, base_dir) {
        Ok(policy) if mounts == Mounts::MayBeMissing => return Ok((policy, bytes)),
        Ok(policy) => {
            // Lint's own finding, made an error: lint and run say it in the same words.
            let missing: Vec<Finding> = lint_policy_text(text, path)
                .findings
                .into_iter()
                .filter(|f| f.lint_id == "missing-mount-folder")
                .map(|f| Finding {
                    severity: Severity::Error,
                    ..f
                })
                .collect();
            if missing.is_empty() {
                return Ok((policy, bytes));
            }
            missing
        }
        Err(errors) => errors
            .errors
            .into_iter()
            .map(|e| Finding {
                lint_id: e.kind.id(),
                severity: Severity::Error,
                span: e.span,
                message: e.message,
                hint: e.help,
            })
            .collect(),
    };
    let count = findings.len();
    let report = LintReport { findings };
    let shown = path.display().to_string();
    crate::output::to_stderr(render_findings(&report, text, &shown).as_bytes());
    Err(anyhow!(
        "could not use policy `{}` due to {count} previous {}",
        crate::text::one_line(&shown),
        if count == 1 { "error" } else { "errors" }
    ))
}
