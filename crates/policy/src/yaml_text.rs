//! Small helpers for writing policy YAML and messages: quoting that no guest-chosen text can
//! break out of, and numbers that read well.

/// A YAML double-quoted scalar. Printable ASCII and non-ASCII letters and digits stay as they
/// are; everything else (line breaks, escapes, format characters) becomes a `\u` escape, so
/// a guest-chosen path can neither end the string nor start a new line of the policy.
pub(crate) fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    out.push_str(&escape(text));
    out.push('"');
    out
}

/// The inside of [`quote`], also safe inside a YAML comment (no line break survives).
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            ' '..='~' => out.push(c),
            c if !c.is_ascii() && c.is_alphanumeric() => out.push(c),
            c if (c as u32) <= 0xffff => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push_str(&format!("\\U{:08x}", c as u32)),
        }
    }
    out
}

/// `1234567` as `1_234_567`: a number a policy parser reads and a person can count.
pub(crate) fn group_digits(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('_');
        }
        out.push(c);
    }
    out
}

/// A size for a policy: whole `GiB`, `MiB` or `KiB` when it is one, digits otherwise.
pub(crate) fn size(n: u64) -> String {
    for (unit, shift) in [("GiB", 30), ("MiB", 20), ("KiB", 10)] {
        if n > 0 && n.is_multiple_of(1u64 << shift) {
            return format!("{}{unit}", group_digits(n >> shift));
        }
    }
    group_digits(n)
}

/// A size for a message: `64 KiB (65_536 bytes)`, or `512 bytes`.
pub(crate) fn size_words(n: u64) -> String {
    let short = size(n);
    if short.ends_with("iB") {
        format!("{short} ({} bytes)", group_digits(n))
    } else {
        format!("{short} bytes")
    }
}

/// `value + percent%`, rounded up.
pub(crate) fn with_headroom(value: u64, percent: u64) -> u64 {
    value.saturating_add(value.saturating_mul(percent).div_ceil(100))
}

/// Seqs as short ranges: `2, 3, 5, 6, 7` → `2, 3, 5-7`.
pub(crate) fn seq_ranges(seqs: &[u64]) -> String {
    let mut sorted = seqs.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
            i += 1;
            end = sorted[i];
        }
        parts.push(match end - start {
            0 => start.to_string(),
            1 => format!("{start}, {end}"),
            _ => format!("{start}-{end}"),
        });
        i += 1;
    }
    parts.join(", ")
}

/// A rule-id-safe slug: lower-case letters, digits and single dashes.
pub(crate) fn slug(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    let out = out.trim_end_matches('-');
    if out.is_empty() {
        "root".to_owned()
    } else {
        out.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_keeps_guest_text_on_one_line() {
        assert_eq!(quote("/data/a.txt"), "\"/data/a.txt\"");
        assert_eq!(quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(quote("x\ny: 1"), "\"x\\u000ay: 1\"");
        assert_eq!(quote("\u{1b}[2J\u{2028}"), "\"\\u001b[2J\\u2028\"");
        assert_eq!(quote("héllo"), "\"héllo\"");
        assert_eq!(quote("\u{1f600}"), "\"\\U0001f600\"");
    }

    #[test]
    fn quoted_text_reads_back_as_yaml() {
        for text in ["/a\nb", "x\"y", "tab\there", "\u{85}nel", "é", "\u{1f600}"] {
            let yaml = format!("k: {}\n", quote(text));
            let back: std::collections::BTreeMap<String, String> =
                serde_saphyr::from_str(&yaml).unwrap();
            assert_eq!(back["k"], text, "{yaml}");
        }
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(group_digits(0), "0");
        assert_eq!(group_digits(999), "999");
        assert_eq!(group_digits(1000), "1_000");
        assert_eq!(group_digits(71684), "71_684");
        assert_eq!(size(65536), "64KiB");
        assert_eq!(size(3 << 20), "3MiB");
        assert_eq!(size(1000), "1_000");
        assert_eq!(size(0), "0");
        assert_eq!(size_words(65536), "64KiB (65_536 bytes)");
        assert_eq!(size_words(10), "10 bytes");
    }

    #[test]
    fn headroom_is_a_quarter_rounded_up() {
        assert_eq!(with_headroom(0, 25), 0);
        assert_eq!(with_headroom(1, 25), 2);
        assert_eq!(with_headroom(100, 25), 125);
        assert_eq!(with_headroom(101, 25), 127);
        assert_eq!(with_headroom(u64::MAX, 25), u64::MAX);
    }

    #[test]
    fn seqs_compress_to_ranges() {
        assert_eq!(seq_ranges(&[5, 2, 3, 6, 7, 9]), "2, 3, 5-7, 9");
        assert_eq!(seq_ranges(&[4]), "4");
        assert_eq!(seq_ranges(&[]), "");
    }

    #[test]
    fn slugs() {
        assert_eq!(slug("/data/Secret File.txt"), "data-secret-file-txt");
        assert_eq!(slug("/"), "root");
        assert_eq!(slug("echo.test"), "echo-test");
    }
}
