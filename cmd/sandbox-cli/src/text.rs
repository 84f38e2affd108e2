//! Text output helpers.

/// Makes guest- or user-controlled text safe for a terminal: escape sequences and other
/// control characters are shown as `\u{..}` instead of being interpreted.
pub fn neutralize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if (c.is_control() && c != '\n' && c != '\t')
            || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// Keeps guest-controlled text on its line of text output: a line break it carries is shown
/// as `\n`, so it cannot start a line that looks like the tool's own.
pub fn one_line(text: &str) -> String {
    text.replace('\n', "\\n")
}

/// A string as a YAML double-quoted scalar (a JSON string is one), so text a plugin chose
/// cannot close the quotes and add YAML of its own to a suggested policy change.
pub fn yaml_quoted(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_owned())
}

/// Writes JSON, pretty or compact, with a trailing newline.
pub fn to_json<T: serde::Serialize>(value: &T, pretty: bool) -> anyhow::Result<String> {
    let mut text = if pretty {
        serde_json::to_string_pretty(value)?
    } else {
        serde_json::to_string(value)?
    };
    text.push('\n');
    Ok(text)
}

#[cfg(test)]
mod tests {
    #[test]
    fn escape_sequences_are_neutralised() {
        assert_eq!(
            super::neutralize("a\u{1b}[31mred\u{7}\n"),
            "a\\u{1b}[31mred\\u{7}\n"
        );
        assert_eq!(super::neutralize("x\u{202e}y"), "x\\u{202e}y");
    }

    #[test]
    fn guest_text_stays_on_one_line_and_inside_its_quotes() {
        assert_eq!(super::one_line("a\n  rule: x"), "a\\n  rule: x");
        assert_eq!(super::yaml_quoted("/a\", \"/**"), r#""/a\", \"/**""#);
    }
}
