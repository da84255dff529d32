//! Each chat kind's markup escaping: what a value from a payload becomes in
//! a message, so that no field can page a channel, ping a person, plant a
//! link or change how the message looks. The template's own text is
//! trusted and never escaped; [`crate::template`] applies these to values
//! only, after making them one line. A leaf: it depends on nothing else of
//! the crate.

/// Slack message text: `&` → `&amp;`, `<` → `&lt;`, `>` → `&gt;`, the
/// escaping Slack requires so that text cannot form `<!channel>`, `<@U123>`
/// or `<http://x|label>`.
pub fn slack(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Discord's Markdown characters get a backslash, so a value cannot turn the
/// message bold, hide it behind a spoiler, open a code block, quote, head or
/// list a line, mask a link (`[text](url)`) or form a mention or timestamp
/// (`<@123>`, `<t:0>`). A backslash shows the character itself in Discord.
/// Mentions written as text (`@everyone`) are left alone: the message is sent
/// with `allowed_mentions` empty, so they ping nobody.
pub fn discord(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(
            c,
            '\\' | '*' | '_' | '~' | '`' | '|' | '>' | '<' | '#' | '-' | '[' | ']' | '(' | ')'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Adaptive Card `TextBlock` text is a CommonMark subset (bold, italic,
/// lists, links) plus `{{DATE(…)}}`/`{{TIME(…)}}` functions. Its markup
/// characters get a backslash (CommonMark shows the character itself), so a
/// value cannot turn text bold or italic, plant a link (`[text](url)`), open
/// a list or call a date function; a `.` after a digit is escaped too, so
/// `1.` cannot start a numbered list.
pub fn teams(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut previous = ' ';
    for c in text.chars() {
        let markup = matches!(
            c,
            '\\' | '*'
                | '_'
                | '~'
                | '`'
                | '['
                | ']'
                | '('
                | ')'
                | '<'
                | '>'
                | '#'
                | '+'
                | '-'
                | '!'
                | '{'
                | '}'
                | '|'
        );
        if markup || (c == '.' && previous.is_ascii_digit()) {
            out.push('\\');
        }
        out.push(c);
        previous = c;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn teams_values_cannot_format_link_list_or_call_a_function() {
        assert_eq!(
            teams("**bold** _it_ [x](http://e.vil) {{DATE(2017-02-14T06:00:00Z)}}"),
            r"\*\*bold\*\* \_it\_ \[x\]\(http://e.vil\) \{\{DATE\(2017\-02\-14T06:00:00Z\)\}\}"
        );
        assert_eq!(teams("1. ada@example.com"), r"1\. ada@example.com");
        assert_eq!(teams("- item"), r"\- item");
    }
}
