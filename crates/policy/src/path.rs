//! Lexical normalisation of guest paths, before any matching.

use std::borrow::Cow;

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
    normalize_guest_path_cow(raw).map(Cow::into_owned)
}

/// [`normalize_guest_path`] that borrows a path already in normal form (the usual case on the
/// host-call path), so deciding it allocates nothing.
pub fn normalize_guest_path_cow(raw: &[u8]) -> Result<Cow<'_, str>, InvalidPath> {
    check_bytes(raw)?;
    let text = std::str::from_utf8(raw).map_err(|_| InvalidPath::NotUtf8)?;
    Ok(normalize_text(text))
}

/// [`normalize_guest_path_cow`] for text already known to be UTF-8.
pub(crate) fn normalize_guest_str(text: &str) -> Result<Cow<'_, str>, InvalidPath> {
    check_bytes(text.as_bytes())?;
    Ok(normalize_text(text))
}

fn check_bytes(raw: &[u8]) -> Result<(), InvalidPath> {
    if raw.is_empty() {
        return Err(InvalidPath::Empty);
    }
    if raw.len() > MAX_GUEST_PATH_BYTES {
        return Err(InvalidPath::TooLong);
    }
    if raw.contains(&0) {
        return Err(InvalidPath::ContainsNul);
    }
    Ok(())
}

fn normalize_text(text: &str) -> Cow<'_, str> {
    if is_normal(text) {
        return Cow::Borrowed(text);
    }
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
    Cow::Owned(out)
}

/// True when normalising `text` would return it unchanged: absolute, and no empty, `.` or
/// `..` segment. One pass over the bytes: this runs on every host call.
fn is_normal(text: &str) -> bool {
    let bytes = text.as_bytes();
    if bytes == b"/" {
        return true;
    }
    if bytes.first() != Some(&b'/') {
        return false;
    }
    // Each segment starts after a `/`; it must not be empty, `.` or `..`.
    let mut start = 1;
    loop {
        let end = bytes[start..]
            .iter()
            .position(|&b| b == b'/')
            .map_or(bytes.len(), |i| start + i);
        if matches!(&bytes[start..end], b"" | b"." | b"..") {
            return false;
        }
        if end == bytes.len() {
            return true;
        }
        start = end + 1;
    }
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
    fn normal_paths_are_borrowed_and_others_normalised() {
        for normal in [
            "/",
            "/data",
            "/data/a.txt",
            "/a/b/c",
            "/data/.hidden",
            "/x..y",
        ] {
            let cow = normalize_guest_path_cow(normal.as_bytes()).unwrap();
            assert!(matches!(cow, Cow::Borrowed(_)), "{normal}");
            assert_eq!(cow, norm(normal));
        }
        for other in [
            "data",
            "/data/",
            "//data",
            "/data/./x",
            "/data/../x",
            "/.",
            "/..",
        ] {
            let cow = normalize_guest_path_cow(other.as_bytes()).unwrap();
            assert!(matches!(cow, Cow::Owned(_)), "{other}");
            assert_eq!(cow, norm(other));
        }
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
