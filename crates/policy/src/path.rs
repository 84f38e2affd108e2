//! Lexical normalisation of guest paths, before any matching.

/// Longest guest path accepted, in bytes (Linux's PATH_MAX).
pub const MAX_GUEST_PATH_BYTES: usize = 4096;

/// Why a guest path was refused before any rule was looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvalidPath {
    Empty,
    ContainsNul,
    NotUtf8,
    TooLong,
}

impl InvalidPath {
    pub fn describe(self) -> &'static str {
        match self {
            InvalidPath::Empty => "the path is empty",
            InvalidPath::ContainsNul => "the path contains a NUL byte",
            InvalidPath::NotUtf8 => "the path is not valid UTF-8",
            InvalidPath::TooLong => "the path is longer than 4096 bytes",
        }
    }
}

/// Turns raw guest bytes into a normalised absolute guest path: relative paths are taken from
/// `/`, `.` and repeated or trailing slashes vanish, `..` removes one segment and stops at `/`
/// (as in POSIX). A path that climbs above a mount therefore lands outside it, and is decided
/// as the path it names, never as a string prefix of a mount.
pub fn normalize_guest_path(raw: &[u8]) -> Result<String, InvalidPath> {
    if raw.is_empty() {
        return Err(InvalidPath::Empty);
    }
    if raw.len() > MAX_GUEST_PATH_BYTES {
        return Err(InvalidPath::TooLong);
    }
    if raw.contains(&0) {
        return Err(InvalidPath::ContainsNul);
    }
    let text = std::str::from_utf8(raw).map_err(|_| InvalidPath::NotUtf8)?;
    let mut segments: Vec<&str> = Vec::new();
    for part in text.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    let mut out = String::with_capacity(text.len() + 1);
    for segment in &segments {
        out.push('/');
        out.push_str(segment);
    }
    if out.is_empty() {
        out.push('/');
    }
    Ok(out)
}

/// True when `path` is `base` or lies beneath it, compared by whole segments.
pub fn is_within(path: &str, base: &str) -> bool {
    if base == "/" {
        return path.starts_with('/');
    }
    match path.strip_prefix(base) {
        Some("") => true,
        Some(rest) => rest.starts_with('/'),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> String {
        normalize_guest_path(s.as_bytes()).unwrap()
    }

    #[test]
    fn dots_and_slashes_are_normalised() {
        assert_eq!(norm("/data/./a//b/"), "/data/a/b");
        assert_eq!(norm("data/a"), "/data/a");
        assert_eq!(norm("/data/x/../y"), "/data/y");
        assert_eq!(norm("/"), "/");
        assert_eq!(norm("."), "/");
    }

    #[test]
    fn dotdot_escapes_climb_out_of_the_mount() {
        assert_eq!(norm("/data/../etc/passwd"), "/etc/passwd");
        assert_eq!(norm("/data/../../../../etc"), "/etc");
        assert_eq!(norm("../../x"), "/x");
    }

    #[test]
    fn invalid_paths_are_refused() {
        assert_eq!(normalize_guest_path(b""), Err(InvalidPath::Empty));
        assert_eq!(
            normalize_guest_path(b"/a\0b"),
            Err(InvalidPath::ContainsNul)
        );
        assert_eq!(normalize_guest_path(b"/a\xff"), Err(InvalidPath::NotUtf8));
        let long = vec![b'a'; MAX_GUEST_PATH_BYTES + 1];
        assert_eq!(normalize_guest_path(&long), Err(InvalidPath::TooLong));
    }

    #[test]
    fn within_compares_whole_segments() {
        assert!(is_within("/data", "/data"));
        assert!(is_within("/data/x", "/data"));
        assert!(!is_within("/data-secret", "/data"));
        assert!(!is_within("/dat", "/data"));
        assert!(is_within("/anything", "/"));
    }
}
