//! Log text that came from outside (user names, paths, headers, GitHub's messages) must not
//! forge lines or drive the terminal reading the log: control characters (C0 such as ESC, CR
//! and LF; DEL; C1 such as CSI) and the invisible characters that reorder or hide text
//! (bidi overrides and isolates, zero-width marks, line and paragraph separators) are written
//! as visible escapes instead.

use std::borrow::Cow;
use std::fmt;

/// Does `c` need escaping in a log line? (Shared with the CLI client through the leaf crate
/// `gatehouse-base`.)
pub use gatehouse_base::text::is_unsafe;

/// `text` with every unsafe character as `\n`, `\r`, `\t` or `\u{…}` (Rust's notation, which
/// is what the text format's quoted values already use). Borrowed when nothing needed it.
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    // Writing to a String cannot fail.
    let _ = fmt::Write::write_str(&mut Escaping(&mut out), text);
    Cow::Owned(out)
}

/// A [`fmt::Write`] that passes text on to `W` with unsafe characters escaped as
/// [`escape_controls`] does, without allocating (log lines are written through it).
pub struct Escaping<W>(pub W);

impl<W: fmt::Write> fmt::Write for Escaping<W> {
    fn write_str(&mut self, mut text: &str) -> fmt::Result {
        while let Some((at, c)) = text.char_indices().find(|(_, c)| is_unsafe(*c)) {
            self.0.write_str(&text[..at])?;
            match c {
                '\n' => self.0.write_str("\\n")?,
                '\r' => self.0.write_str("\\r")?,
                '\t' => self.0.write_str("\\t")?,
                c => write!(self.0, "\\u{{{:x}}}", c as u32)?,
            }
            text = &text[at + c.len_utf8()..];
        }
        self.0.write_str(text)
    }
}

/// `text` for a terminal: unsafe characters dropped except line breaks (a command's own
/// multi-line error text keeps its lines).
pub fn terminal_text(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| is_unsafe(c) && c != '\n') {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.chars()
            .filter(|c| !is_unsafe(*c) || *c == '\n')
            .collect(),
    )
}

/// A JSON log line with every unsafe character that JSON writers leave raw (DEL, C1, the
/// invisible ones; serde_json already escapes C0) written as a JSON `\uXXXX` escape: the line
/// stays valid JSON and decodes to the same text, but shows nothing to a terminal.
pub fn escape_json_line(line: &str) -> Cow<'_, str> {
    if !line.chars().any(|c| is_unsafe(c) && c != '\n') {
        return Cow::Borrowed(line);
    }
    let mut out = String::with_capacity(line.len() + 16);
    for c in line.chars() {
        if is_unsafe(c) && c != '\n' {
            // Every unsafe character is in the Basic Multilingual Plane: one escape each.
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_and_invisible_characters_become_visible() {
        assert_eq!(
            escape_controls("a\u{1b}[31mb\r\nc\u{9b}d\u{202e}e\u{7f}"),
            "a\\u{1b}[31mb\\r\\nc\\u{9b}d\\u{202e}e\\u{7f}"
        );
        assert!(matches!(escape_controls("plain José ✓"), Cow::Borrowed(_)));
    }

    #[test]
    fn json_lines_stay_json_and_lose_raw_controls() {
        let line = serde_json::json!({"user": "x\u{1b}\u{9b}\u{202e}\u{7f}y"}).to_string() + "\n";
        let escaped = escape_json_line(&line);
        assert!(
            !escaped.chars().any(|c| is_unsafe(c) && c != '\n'),
            "{escaped}"
        );
        let back: serde_json::Value = serde_json::from_str(escaped.trim_end()).unwrap();
        assert_eq!(back["user"], "x\u{1b}\u{9b}\u{202e}\u{7f}y");
        assert!(escaped.ends_with('\n'));
    }
}
