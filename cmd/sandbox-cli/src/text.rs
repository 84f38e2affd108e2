//! Text output helpers.

/// One field of text that came from a plugin, a report or a module (a path, a rule id, a
/// capability, a context key): the runtime's one escaping function, capped at
/// `SHOWN_TEXT_BYTES`, so it stays on its line and cannot drive the terminal.
pub fn shown(text: &str) -> String {
    sandbox_runtime::report::escape_text(text, sandbox_runtime::report::SHOWN_TEXT_BYTES)
}

/// The last pass over a whole text output, whose own line breaks and tabs are kept: every
/// other character `sandbox_runtime::report::needs_escape` names (escape sequences, other
/// controls, U+2028/U+2029, bidi controls) is shown as `\u{..}` instead of being interpreted.
pub fn neutralize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c != '\n' && c != '\t' && sandbox_runtime::report::needs_escape(c) {
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
