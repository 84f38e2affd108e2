//! Guest-path globs: `*` matches within one segment, `**` matches zero or more whole segments.
//! Patterns are absolute and already normal (no `.`, `..` or empty segments), so matching is a
//! walk over path segments with no string prefix tests (`/data/**` never matches `/data-x`).

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    /// A segment with `*` wildcards, kept as the literal pieces between them.
    Wild(Vec<String>),
    AnyDepth,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobPattern {
    source: String,
    segments: Vec<Segment>,
}

impl GlobPattern {
    /// Compiles a pattern; the error is a message with what to write instead.
    pub fn parse(text: &str) -> Result<GlobPattern, String> {
        if text.contains('\0') {
            return Err("a glob may not contain a NUL byte".into());
        }
        if !text.starts_with('/') {
            return Err(format!(
                "glob `{text}` is not absolute: guest paths start with `/`, e.g. `/{}`",
                text.trim_start_matches("./")
            ));
        }
        let mut segments = Vec::new();
        let body = &text[1..];
        if !body.is_empty() {
            let parts: Vec<&str> = body.split('/').collect();
            for (index, part) in parts.iter().enumerate() {
                let last = index + 1 == parts.len();
                match *part {
                    "" if last => {
                        return Err(format!(
                            "glob `{text}` ends with `/`: drop it, or write `{}**` for everything beneath",
                            text
                        ))
                    }
                    "" => return Err(format!("glob `{text}` has an empty segment (`//`)")),
                    "." | ".." => {
                        return Err(format!(
                            "glob `{text}` has a `{part}` segment: write the normalised path"
                        ))
                    }
                    "**" if segments.last() == Some(&Segment::AnyDepth) => {}
                    "**" => segments.push(Segment::AnyDepth),
                    p if p.contains("**") => {
                        return Err(format!(
                            "glob `{text}`: `**` must be a whole segment, e.g. `/dir/**/*.txt`"
                        ))
                    }
                    p if p.contains(['?', '[', ']', '{', '}']) => {
                        return Err(format!(
                            "glob `{text}`: only `*` and `**` are wildcards (`?`, `[]` and `{{}}` are not supported)"
                        ))
                    }
                    p if p.contains('*') => {
                        segments.push(Segment::Wild(p.split('*').map(str::to_owned).collect()))
                    }
                    p => segments.push(Segment::Literal(p.to_owned())),
                }
            }
        }
        Ok(GlobPattern {
            source: text.to_owned(),
            segments,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Matches a normalised absolute guest path.
    /// Segments before the first `**` match one to one and a final `**` takes the rest, with
    /// no allocation: that covers the common `/dir/**` and `/dir/*.log` forms on the
    /// host-call path. Only a `**` followed by more segments needs the general matcher.
    pub fn matches(&self, path: &str) -> bool {
        let rest = path.strip_prefix('/').unwrap_or(path);
        let mut parts = rest.split('/').filter(|p| !p.is_empty());
        for (index, segment) in self.segments.iter().enumerate() {
            if *segment == Segment::AnyDepth {
                if index + 1 == self.segments.len() {
                    return true;
                }
                let remaining: Vec<&str> = parts.collect();
                return match_segments(&self.segments[index..], &remaining);
            }
            match parts.next() {
                Some(part) if segment_matches(segment, part) => {}
                _ => return false,
            }
        }
        parts.next().is_none()
    }

    /// The literal directory prefix before the first wildcard, e.g. `/data/logs` for
    /// `/data/logs/*.txt`. Used by lint to relate rules to mounts.
    pub fn literal_prefix(&self) -> String {
        let mut out = String::new();
        for segment in &self.segments {
            match segment {
                Segment::Literal(s) => {
                    out.push('/');
                    out.push_str(s);
                }
                _ => break,
            }
        }
        if out.is_empty() {
            out.push('/');
        }
        out
    }

    /// True when the pattern has no wildcard.
    pub fn is_literal(&self) -> bool {
        self.segments
            .iter()
            .all(|s| matches!(s, Segment::Literal(_)))
    }

    /// True when every path this pattern matches is also matched by `other` (a sound but
    /// incomplete check: it may answer false for some covered patterns).
    pub fn is_covered_by(&self, other: &GlobPattern) -> bool {
        if self == other || other.segments == [Segment::AnyDepth] {
            return true;
        }
        if let Some((Segment::AnyDepth, head)) = other.segments.split_last() {
            if head.iter().all(|s| matches!(s, Segment::Literal(_)))
                && self.segments.len() >= head.len()
                && self.segments[..head.len()] == *head
            {
                return true;
            }
        }
        if self.is_literal() {
            return other.matches(&self.source);
        }
        false
    }
}

/// Dynamic programming over (pattern position, path position): O(P·N) whatever the number of
/// `**`, so a long guest path cannot make a match take exponential time on the host.
fn match_segments(pattern: &[Segment], parts: &[&str]) -> bool {
    // reachable[j]: the pattern prefix seen so far matches exactly the first j parts.
    let mut reachable = vec![false; parts.len() + 1];
    reachable[0] = true;
    for segment in pattern {
        let mut next = vec![false; parts.len() + 1];
        match segment {
            Segment::AnyDepth => {
                let mut seen = false;
                for j in 0..=parts.len() {
                    seen |= reachable[j];
                    next[j] = seen;
                }
            }
            other => {
                for j in 0..parts.len() {
                    if reachable[j] && segment_matches(other, parts[j]) {
                        next[j + 1] = true;
                    }
                }
            }
        }
        reachable = next;
    }
    reachable[parts.len()]
}

fn segment_matches(segment: &Segment, part: &str) -> bool {
    match segment {
        Segment::Literal(literal) => literal == part,
        Segment::Wild(pieces) => wild_matches(pieces, part),
        Segment::AnyDepth => true,
    }
}

/// `pieces` are the literal texts between `*`s: the first must be a prefix, the last a
/// suffix, the middle ones found in order.
fn wild_matches(pieces: &[String], text: &str) -> bool {
    let (first, last) = match (pieces.first(), pieces.last()) {
        (Some(first), Some(last)) => (first, last),
        _ => return false,
    };
    if !text.starts_with(first.as_str()) {
        return false;
    }
    let mut rest = &text[first.len()..];
    for middle in &pieces[1..pieces.len() - 1] {
        match rest.find(middle.as_str()) {
            Some(at) => rest = &rest[at + middle.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last.as_str())
}

#[cfg(test)]
mod tests {
    use super::GlobPattern;

    fn glob(text: &str) -> GlobPattern {
        GlobPattern::parse(text).unwrap()
    }

    #[test]
    fn double_star_matches_the_directory_itself_and_everything_beneath() {
        let g = glob("/data/**");
        assert!(g.matches("/data"));
        assert!(g.matches("/data/a"));
        assert!(g.matches("/data/a/b/c.txt"));
        assert!(!g.matches("/"));
    }

    #[test]
    fn prefix_accident_is_not_a_match() {
        assert!(!glob("/data/**").matches("/data-secret"));
        assert!(!glob("/data/**").matches("/data-secret/x"));
        assert!(!glob("/data").matches("/data-secret"));
        assert!(!glob("/data*/x").matches("/data/y"));
    }

    #[test]
    fn single_star_stays_within_one_segment() {
        let g = glob("/out/*.log");
        assert!(g.matches("/out/a.log"));
        assert!(g.matches("/out/.log"));
        assert!(!g.matches("/out/a/b.log"));
        assert!(!g.matches("/out/a.txt"));
        assert!(glob("/a/*b*c").matches("/a/xbyc"));
        assert!(!glob("/a/*b*c").matches("/a/xcyb"));
        assert!(!glob("/a/ab*ba").matches("/a/aba"));
    }

    #[test]
    fn double_star_in_the_middle() {
        let g = glob("/data/**/*.txt");
        assert!(g.matches("/data/a.txt"));
        assert!(g.matches("/data/x/y/a.txt"));
        assert!(!g.matches("/data/x/y/a.bin"));
    }

    #[test]
    fn many_double_stars_match_long_paths_in_linear_time() {
        let g = glob("/data/**/**/**/**/**/**/**/**/x");
        let long = format!("/data{}", "/a".repeat(4000));
        let started = std::time::Instant::now();
        assert!(!g.matches(&long));
        assert!(g.matches(&format!("{long}/x")));
        let g = glob("/data/**/a/**/a/**/a/**/b");
        assert!(!g.matches(&long));
        // Generous bound: the exponential matcher took seconds on far shorter paths.
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
    }

    #[test]
    fn root_globs() {
        assert!(glob("/**").matches("/"));
        assert!(glob("/**").matches("/anything/at/all"));
        assert!(glob("/").matches("/"));
        assert!(!glob("/").matches("/a"));
    }

    #[test]
    fn bad_globs_are_refused_with_a_hint() {
        for bad in [
            "data/**",
            "/data/",
            "/data//x",
            "/data/../etc",
            "/./x",
            "/data/**.txt",
            "/a/b?",
            "/a/[ab]",
            "/a\0b",
        ] {
            assert!(
                GlobPattern::parse(bad).is_err(),
                "{bad:?} should be refused"
            );
        }
    }

    #[test]
    fn coverage_is_sound() {
        assert!(glob("/data/x/**").is_covered_by(&glob("/data/**")));
        assert!(glob("/data/a.txt").is_covered_by(&glob("/data/*.txt")));
        assert!(!glob("/data/**").is_covered_by(&glob("/data/x/**")));
        assert!(!glob("/data-x/**").is_covered_by(&glob("/data/**")));
        assert_eq!(glob("/data/logs/*.txt").literal_prefix(), "/data/logs");
    }
}
