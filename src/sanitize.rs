//! What text from outside may reach a terminal, a log line or a chat message.
//!
//! Event types, ids, payload values and the error texts of remote servers are written by
//! anyone who can reach the queue. A control character in them could break the one-line
//! contract of a message or a log line (`\n`, U+2028), forge a line (`\rdelivered …`),
//! drive the terminal (`ESC[1A ESC[2K` erases the line above) or reorder what a reader sees
//! (bidi overrides). Every such text passes through one of the two functions here: values
//! in messages are flattened (the character becomes a space), texts in diagnostics are
//! escaped (the character stays visible as `\u{1b}`, so an operator sees what was sent).

use std::borrow::Cow;

/// Whether `c` must never reach one-line output as it is: control characters (Unicode
/// category Cc, which includes `\t`, `\n`, `\r`, ESC, DEL and the C1 controls such as
/// U+0085), the line and paragraph separators U+2028 and U+2029, and the bidi embeddings,
/// overrides and isolates (U+202A..U+202E, U+2066..U+2069).
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        )
}

/// `text` with every unsafe character replaced by a space (`\r\n` by one space), for values
/// interpolated into a message.
pub fn one_line(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    let mut flat = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\r' {
            chars.next_if_eq(&'\n');
        }
        flat.push(if is_unsafe(c) { ' ' } else { c });
    }
    Cow::Owned(flat)
}

/// `text` with every unsafe character escaped (`\n`, `\r`, `\t`, otherwise `\u{1b}`), for
/// error messages and log lines that echo input or a remote server's answer.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if is_unsafe(c) => out.extend(c.escape_unicode()),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// The most of a remote server's text an error message echoes, in characters.
pub const MAX_ECHO: usize = 300;

/// At most [`MAX_ECHO`] characters of `text`, escaped as by [`escape`], with `…` where it
/// was cut: for error messages that echo what a remote server said, so a server answering
/// megabytes cannot make an error message of them.
pub fn excerpt(text: &str) -> String {
    let end = text
        .char_indices()
        .nth(MAX_ECHO)
        .map_or(text.len(), |(i, _)| i);
    let escaped = escape(&text[..end]);
    let mut short: String = escaped.chars().take(MAX_ECHO).collect();
    if end < text.len() || short.len() < escaped.len() {
        short.push('…');
    }
    short
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn every_kind_of_line_break_and_terminal_control_is_flattened() {
        let hostile = "a\nb\r\nc\rd\u{b}e\u{c}f\u{85}g\u{2028}h\u{2029}i\u{1b}[1A\u{1b}[2Kj\u{7f}k\u{202e}l\u{2066}m\tn\0o";
        assert_eq!(one_line(hostile), "a b c d e f g h i [1A [2Kj k l m n o");
        assert_eq!(one_line("café ✓ <ok>"), "café ✓ <ok>");
    }

    #[test]
    fn escaped_text_shows_what_was_sent() {
        assert_eq!(
            escape("x\ndelivered\u{1b}[2K\u{2028}\t\r"),
            "x\\ndelivered\\u{1b}[2K\\u{2028}\\t\\r"
        );
        assert_eq!(escape("user.signup é"), "user.signup é");
    }

    #[test]
    fn an_excerpt_is_short_escaped_and_marked_where_cut() {
        assert_eq!(excerpt("ERR no such key"), "ERR no such key");
        let long = format!("ERR \u{1b}[2K{}", "x".repeat(10_000));
        let short = excerpt(&long);
        assert!(short.starts_with("ERR \\u{1b}[2Kxxx"), "{short}");
        assert!(short.ends_with("x…"), "{short}");
        assert_eq!(short.chars().count(), MAX_ECHO + 1);
        let controls = excerpt(&"\u{7}".repeat(MAX_ECHO));
        assert_eq!(controls.chars().count(), MAX_ECHO + 1, "{controls}");
    }

    proptest! {
        #[test]
        fn results_never_hold_an_unsafe_character(text in any::<String>()) {
            prop_assert!(!one_line(&text).chars().any(is_unsafe));
            prop_assert!(!escape(&text).chars().any(is_unsafe));
            prop_assert!(!excerpt(&text).chars().any(is_unsafe));
            prop_assert!(excerpt(&text).chars().count() <= MAX_ECHO + 1);
            prop_assert!(one_line(&text).chars().count() <= text.chars().count());
        }
    }
}
