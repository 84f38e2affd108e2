//! Reference versions of the path rules, written apart from `sandbox-policy` so the fuzz
//! targets check its answers against a second implementation instead of against itself.

/// Lexical normalisation from `/`: `.` and empty segments vanish, `..` drops one segment and
/// stops at the root. `None` for what the sandbox refuses: empty, NUL, over 4096 bytes.
pub fn normalize(path: &str) -> Option<String> {
    if path.is_empty() || path.len() > 4096 || path.contains('\0') {
        return None;
    }
    let mut kept: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                kept.pop();
            }
            s => kept.push(s),
        }
    }
    Some(format!("/{}", kept.join("/")))
}

fn segments(path: &str) -> Vec<&str> {
    path.split('/').filter(|s| !s.is_empty()).collect()
}

/// `path` is `base` or beneath it, by whole segments.
pub fn within(path: &str, base: &str) -> bool {
    let (p, b) = (segments(path), segments(base));
    p.len() >= b.len() && p[..b.len()] == b[..]
}

/// The deepest mount (by guest path) that holds `path`.
pub fn mount_of(path: &str, mounts: &[String]) -> Option<usize> {
    mounts
        .iter()
        .enumerate()
        .filter(|(_, m)| within(path, m))
        .max_by_key(|(_, m)| segments(m).len())
        .map(|(i, _)| i)
}

/// `*` within one segment, `**` as zero or more whole segments.
pub fn glob_matches(pattern: &str, path: &str) -> bool {
    fn segment(pattern: &str, text: &str) -> bool {
        match pattern.split_once('*') {
            None => pattern == text,
            Some((head, rest)) => {
                let Some(text) = text.strip_prefix(head) else {
                    return false;
                };
                (0..=text.len())
                    .filter(|&i| text.is_char_boundary(i))
                    .any(|i| segment(rest, &text[i..]))
            }
        }
    }
    fn walk(pattern: &[&str], path: &[&str]) -> bool {
        match pattern.split_first() {
            None => path.is_empty(),
            Some((&"**", rest)) => (0..=path.len()).any(|i| walk(rest, &path[i..])),
            Some((first, rest)) => {
                !path.is_empty() && segment(first, path[0]) && walk(rest, &path[1..])
            }
        }
    }
    walk(&segments(pattern), &segments(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oracle_agrees_with_posix_on_the_classic_escapes() {
        assert_eq!(normalize("/data/../../etc").as_deref(), Some("/etc"));
        assert_eq!(normalize("data/./x/").as_deref(), Some("/data/x"));
        assert_eq!(normalize("/a\0b"), None);
        assert!(within("/data/x", "/data") && !within("/data-secret", "/data"));
        assert!(within("/anything", "/"));
        assert!(glob_matches("/data/**", "/data"));
        assert!(glob_matches("/out/*.log", "/out/a.log"));
        assert!(!glob_matches("/out/*.log", "/out/sub/a.log"));
        assert!(glob_matches("/a/**/z", "/a/b/c/z"));
        assert!(!glob_matches("/data/**", "/data-secret/x"));
    }
}
