//! Text that came from outside (user names, paths, headers, GitHub's messages, a gate's
//! answers) must not forge lines or drive the terminal showing it. The gate's logs escape these
//! characters (`gatehouse::observe::escape`); the CLI client drops them.

/// Does `c` need escaping (or dropping) before it is shown: a control character (C0 such as
/// ESC, CR and LF; DEL; C1 such as CSI), or an invisible one that reorders or hides text (bidi
/// overrides and isolates, zero-width marks, line and paragraph separators)?
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{2069}'
                | '\u{FEFF}'
        )
}

#[cfg(test)]
mod tests {
    use super::is_unsafe;

    #[test]
    fn controls_and_invisible_characters_are_unsafe() {
        for c in [
            '\u{1b}', '\r', '\n', '\t', '\u{7f}', '\u{9b}', '\u{202e}', '\u{200b}',
        ] {
            assert!(is_unsafe(c), "{c:?}");
        }
        for c in ['a', ' ', 'é', '✓', '\u{2027}'] {
            assert!(!is_unsafe(c), "{c:?}");
        }
    }
}
