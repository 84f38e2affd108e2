//! Errors in a policy file: each with a stable kind, the place, a message and a fix hint.

use crate::span::Span;

/// What kind of mistake a policy error is; the string form is a stable lint id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PolicyErrorKind {
    Syntax,
    UnknownKey,
    MissingKey,
    WrongType,
    UnsupportedVersion,
    DuplicateRuleId,
    InvalidSize,
    InvalidGlob,
    InvalidPath,
    InvalidHost,
    InvalidPort,
    InvalidCidr,
    InvalidValue,
    Io,
}

impl PolicyErrorKind {
    pub fn id(self) -> &'static str {
        match self {
            PolicyErrorKind::Syntax => "syntax",
            PolicyErrorKind::UnknownKey => "unknown-key",
            PolicyErrorKind::MissingKey => "missing-key",
            PolicyErrorKind::WrongType => "wrong-type",
            PolicyErrorKind::UnsupportedVersion => "unsupported-version",
            PolicyErrorKind::DuplicateRuleId => "duplicate-rule-id",
            PolicyErrorKind::InvalidSize => "invalid-size",
            PolicyErrorKind::InvalidGlob => "invalid-glob",
            PolicyErrorKind::InvalidPath => "invalid-path",
            PolicyErrorKind::InvalidHost => "invalid-host",
            PolicyErrorKind::InvalidPort => "invalid-port",
            PolicyErrorKind::InvalidCidr => "invalid-cidr",
            PolicyErrorKind::InvalidValue => "invalid-value",
            PolicyErrorKind::Io => "io",
        }
    }
}

/// One mistake in a policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{span}: {message}")]
pub struct PolicyError {
    pub kind: PolicyErrorKind,
    pub span: Span,
    pub message: String,
    pub help: String,
}

impl PolicyError {
    pub fn new(
        kind: PolicyErrorKind,
        span: Span,
        message: impl Into<String>,
        help: impl Into<String>,
    ) -> Self {
        PolicyError {
            kind,
            span,
            message: message.into(),
            help: help.into(),
        }
    }

    /// A one-line hint on how to fix it.
    pub fn help(&self) -> &str {
        &self.help
    }
}

/// Every mistake found in one policy file, in file order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", render_first(.errors))]
pub struct PolicyErrors {
    pub errors: Vec<PolicyError>,
}

fn render_first(errors: &[PolicyError]) -> String {
    match errors.first() {
        Some(first) if errors.len() > 1 => {
            format!("{first} (and {} more)", errors.len() - 1)
        }
        Some(first) => first.to_string(),
        None => "invalid policy".to_owned(),
    }
}

/// The candidate closest to `value` when it is close enough to be a misspelling of it
/// (`filesytem` for `filesystem`, `audti` for `audit`).
pub fn closest<'a>(value: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (strsim::jaro_winkler(value, c), *c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// `"; did you mean `x`?"` when [`closest`] finds one, else nothing: for the end of a message.
pub fn did_you_mean(value: &str, candidates: &[&str]) -> String {
    closest(value, candidates)
        .map(|c| format!("; did you mean `{c}`?"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn misspellings_find_their_word_and_strangers_find_none() {
        let keys = ["version", "name", "mode", "filesystem", "network"];
        assert_eq!(super::closest("filesytem", &keys), Some("filesystem"));
        assert_eq!(super::closest("mdoe", &keys), Some("mode"));
        assert_eq!(super::closest("zzz", &keys), None);
        assert_eq!(
            super::did_you_mean("audti", &["enforce", "audit"]),
            "; did you mean `audit`?"
        );
        assert_eq!(super::did_you_mean("qqqq", &["enforce", "audit"]), "");
    }
}
