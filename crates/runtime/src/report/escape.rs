//! The one escaping function for text that came from a plugin, a report or a module (paths,
//! hosts, rule ids, capabilities, context keys, import names, compiler messages) before it is
//! printed: nothing in it can move the terminal, start a line, or reorder what a person reads,
//! and it is never longer than its cap.

/// The cap most callers use: long enough for any path a report keeps in its context, short
/// enough that a field cannot flood a terminal.
pub const SHOWN_TEXT_BYTES: usize = 512;

/// Whether a character is shown escaped: control characters (C0, DEL, C1 including U+0085),
/// the Unicode line and paragraph separators U+2028 and U+2029, and the bidirectional controls
/// (U+061C, U+200E, U+200F, U+202A–U+202E, U+2066–U+2069) that make text read in another order
/// than it is stored.
pub fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}'
                | '\u{2029}'
                | '\u{061c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
        )
}

/// `text` for one line of output: a line break or tab is written `\n`, `\r`, `\t`, every other
/// character [`needs_escape`] names as `\u{..}`, and past `max_bytes` bytes of output the rest
/// is cut (on a character boundary) and replaced by `… (N bytes)`, N the original's length.
pub fn escape_text(text: &str, max_bytes: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max_bytes) + 16);
    for c in text.chars() {
        let before = out.len();
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if needs_escape(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
        if out.len() > max_bytes {
            out.truncate(before);
            out.push_str(&format!("… ({} bytes)", text.len()));
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_breaks_separators_controls_and_bidi_are_escaped() {
        assert_eq!(
            escape_text(
                "a\nb\r\u{2028}\u{2029}\u{85}\u{1b}[2J\u{202e}\u{2066}\u{200f}\u{61c}\t",
                100
            ),
            "a\\nb\\r\\u{2028}\\u{2029}\\u{85}\\u{1b}[2J\\u{202e}\\u{2066}\\u{200f}\\u{61c}\\t"
        );
        assert_eq!(escape_text("/data/é.txt", 100), "/data/é.txt");
    }

    #[test]
    fn long_text_is_cut_on_a_character_boundary_and_says_how_long_it_was() {
        let long = "é".repeat(1000);
        let shown = escape_text(&long, 11);
        assert_eq!(shown, format!("{}… (2000 bytes)", "é".repeat(5)));
        let escapes = "\u{1b}".repeat(100);
        let shown = escape_text(&escapes, 20);
        assert_eq!(shown, format!("{}… (100 bytes)", "\\u{1b}".repeat(3)));
    }
}
