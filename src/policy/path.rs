//! Request path normalization, done once per request. The authorization decision and the
//! upstream must see the very same path: if Gatehouse matched rules against `/public/../admin`
//! while the upstream resolved it to `/admin`, or kept `Special%3AAdmin` while the app decoded
//! it to `Special:Admin`, a rule could be walked around. So every path is put in one canonical
//! form, that form is both matched and forwarded, and anything upstreams disagree on is flagged.
//!
//! The canonical form: every escape of a character that may stand in a path as itself
//! (letters, digits, `-._~`, `!$&'()*+,=`, `:` and `@`) is decoded; every other byte, escaped
//! or not (non-ASCII, space, `"`, `<`, `{`, `;` when escaped, …), is written as an upper-case
//! `%XX`; repeated slashes collapse and dot segments are removed. So `/caf%c3%a9`, `/café` and
//! `/caf%C3%A9` are one path, as are `/wiki/Special%3AAdmin` and `/wiki/Special:Admin`, and an
//! app that decodes the canonical form once reads what the rules read.

use std::borrow::Cow;

/// A request path after normalization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NormalizedPath<'a> {
    /// The canonical form; starts with '/'. Borrowed when the input was already canonical (the
    /// common case: no allocation).
    pub path: Cow<'a, str>,
    /// The path holds something upstreams disagree on: `%2F`, `%5C`, `%00`, `%25`, an escaped
    /// control byte (`%0A`, `%09`, …; any hex case), a raw `;` or a raw `\`, or an overlong UTF-8
    /// escape (`%C0%AF` and the like), which old decoders read as `/`, `\` or `.`. The caller
    /// answers 400 unless the deciding rule opts in with `allow_encoded_path`.
    pub ambiguous: bool,
    /// A segment ends in a dot or a space (`/admin./x`, `/admin%20/x`, `/x/...`), which IIS and
    /// some Java stacks fold away (`/admin/x`). The caller answers 400 unless the deciding rule
    /// opts in with `allow_folded_segments`.
    pub folded: bool,
}

/// Why a request path cannot be normalized (the caller answers 400).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PathError {
    #[error("the request path does not start with '/'")]
    NotAbsolute,
    #[error("the request path has a '%' that is not followed by two hex digits")]
    BadPercentEncoding,
    #[error("the request path holds a control character (a byte below 0x20, or 0x7F)")]
    ControlByte,
}

/// Normalize the path of a request target (no query string); see the module docs.
///
/// Returns the input borrowed when it is already canonical.
///
/// # Errors
///
/// [`PathError`] when the path does not start with '/', has a malformed `%` escape, or holds a
/// raw control byte.
pub fn normalize(raw: &str) -> Result<NormalizedPath<'_>, PathError> {
    let bytes = raw.as_bytes();
    if bytes.first() != Some(&b'/') {
        return Err(PathError::NotAbsolute);
    }

    // One pass: reject what cannot be normalized, flag ambiguity, and learn whether any rewrite
    // is needed at all.
    let mut changed = false;
    let mut ambiguous = false;
    let mut seg_start = 1;
    let mut i = 1;
    while i < bytes.len() {
        match bytes[i] {
            c if c < 0x20 || c == 0x7F => return Err(PathError::ControlByte),
            b'%' => {
                let value = triplet(bytes, i)?;
                if !stays_escaped(value)
                    || bytes[i + 1].is_ascii_lowercase()
                    || bytes[i + 2].is_ascii_lowercase()
                {
                    changed = true;
                }
                if is_ambiguous_escape(value) || is_overlong_lead(bytes, i, value) {
                    ambiguous = true;
                }
                i += 3;
                continue;
            }
            b';' | b'\\' => ambiguous = true,
            b'/' => {
                // An empty segment before a '/' is a repeated slash.
                if is_dot_segment_or_empty(&bytes[seg_start..i]) {
                    changed = true;
                }
                seg_start = i + 1;
            }
            c if !may_stand_as_itself(c) => changed = true,
            _ => {}
        }
        i += 1;
    }
    // A final empty segment is a trailing slash, which is kept.
    let last = &bytes[seg_start..];
    if !last.is_empty() && is_dot_segment_or_empty(last) {
        changed = true;
    }

    let path = if changed {
        Cow::Owned(remove_dot_segments(&canonical_bytes(raw)?))
    } else {
        Cow::Borrowed(raw)
    };
    let folded = has_folded_segment(&path);
    Ok(NormalizedPath {
        path,
        ambiguous,
        folded,
    })
}

/// One segment of a path rule written by a person, in the canonical form requests are matched
/// in (`café` and `caf%c3%a9` → `caf%C3%A9`, `Special%3AAdmin` → `Special:Admin`).
///
/// # Errors
///
/// [`PathError::BadPercentEncoding`] or [`PathError::ControlByte`].
pub fn canonical_segment(text: &str) -> Result<String, PathError> {
    if text.bytes().any(|c| c < 0x20 || c == 0x7F) {
        return Err(PathError::ControlByte);
    }
    canonical_bytes(text)
}

/// Escapes that stay escaped and make a path ambiguous: `/`, `\`, NUL and `%` itself (apps that
/// decode twice, or split before decoding, read them differently), and the other control bytes
/// (a `%0A` ends a line for regex `$` in some routers; `%09` is trimmed by others).
fn is_ambiguous_escape(value: u8) -> bool {
    matches!(value, b'/' | b'\\' | b'%') || value < 0x20 || value == 0x7F
}

/// May `b` appear in a canonical path as itself? RFC 3986 `pchar` and `/`, plus a raw `;` and
/// `\`, which stay as sent (they are flagged ambiguous instead).
fn may_stand_as_itself(b: u8) -> bool {
    b == b'/' || b == b';' || b == b'\\' || decodes_to_itself(b)
}

/// Characters whose escape is decoded: unreserved, the sub-delimiters but `;` (Java stacks cut
/// a raw `;` off as a path parameter, so an escaped one stays escaped), `:` and `@`.
fn decodes_to_itself(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,=:@".contains(&b)
}

fn stays_escaped(value: u8) -> bool {
    !decodes_to_itself(value)
}

/// A segment that ends in `.` or a space (`%20`), other than `.` and `..` (removed before this
/// is asked). Trailing slashes make empty segments, which are fine.
fn has_folded_segment(path: &str) -> bool {
    path.split('/')
        .any(|seg| !seg.is_empty() && (seg.ends_with('.') || seg.ends_with("%20")))
}

/// Does the escape `lead` at `at` start an overlong UTF-8 sequence (`%C0%AF` for `/`,
/// `%E0%80%AF`, `%F0%80%80%AF`, …)? Valid UTF-8 never holds one; decoders that accepted them
/// once turned them into `/`, `\` or `.` after the gate had decided.
fn is_overlong_lead(bytes: &[u8], at: usize, lead: u8) -> bool {
    let next = || {
        (bytes.get(at + 3) == Some(&b'%'))
            .then(|| triplet(bytes, at + 3).ok())
            .flatten()
    };
    match lead {
        0xC0 | 0xC1 => true,
        0xE0 => next().is_some_and(|n| (0x80..=0x9F).contains(&n)),
        0xF0 => next().is_some_and(|n| (0x80..=0x8F).contains(&n)),
        _ => false,
    }
}

/// The byte a `%XX` triplet at `at` encodes.
fn triplet(bytes: &[u8], at: usize) -> Result<u8, PathError> {
    match (
        bytes.get(at + 1).copied().and_then(hex_value),
        bytes.get(at + 2).copied().and_then(hex_value),
    ) {
        (Some(hi), Some(lo)) => Ok((hi << 4) | lo),
        _ => Err(PathError::BadPercentEncoding),
    }
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn is_dot_segment_or_empty(segment: &[u8]) -> bool {
    matches!(segment, b"" | b"." | b"..")
}

/// The canonical spelling of every byte (see the module docs). Decoded output is never scanned
/// for triplets again, so nothing is decoded twice (and no decoded byte can be a '/' or a '%').
fn canonical_bytes(raw: &str) -> Result<String, PathError> {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let bytes = raw.as_bytes();
    let mut out = String::with_capacity(raw.len() + raw.len() / 4);
    let escape = |out: &mut String, b: u8| {
        out.push('%');
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0x0F)]));
    };
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let value = triplet(bytes, i)?;
            if decodes_to_itself(value) {
                out.push(char::from(value));
            } else {
                escape(&mut out, value);
            }
            i += 3;
            continue;
        }
        if may_stand_as_itself(b) {
            out.push(char::from(b));
        } else {
            escape(&mut out, b);
        }
        i += 1;
    }
    Ok(out)
}

/// Collapse repeated slashes and remove `.` and `..` segments (RFC 3986 §5.2.4, never above
/// the root). `path` starts with '/'. A path ending in a slash, `.` or `..` keeps a trailing
/// slash.
fn remove_dot_segments(path: &str) -> String {
    // `out` ends with '/' throughout; the one after a last ordinary segment is dropped at the end.
    let mut out = String::with_capacity(path.len());
    out.push('/');
    let mut last_was_name = false;
    for segment in path.split('/').skip(1) {
        last_was_name = false;
        match segment {
            "" | "." => {}
            ".." => {
                if out.len() > 1 {
                    out.pop();
                    let keep = out.rfind('/').map_or(0, |slash| slash + 1);
                    out.truncate(keep);
                }
            }
            name => {
                out.push_str(name);
                out.push('/');
                last_was_name = true;
            }
        }
    }
    if last_was_name {
        out.pop();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(raw: &str) -> String {
        normalize(raw).unwrap().path.into_owned()
    }

    fn ambiguous(raw: &str) -> bool {
        normalize(raw).unwrap().ambiguous
    }

    fn assert_borrowed(raw: &str) {
        let n = normalize(raw).unwrap();
        assert!(matches!(n.path, Cow::Borrowed(_)), "{raw} was copied");
        assert_eq!(n.path, raw);
    }

    #[test]
    fn must_be_absolute() {
        assert_eq!(normalize(""), Err(PathError::NotAbsolute));
        assert_eq!(normalize("admin"), Err(PathError::NotAbsolute));
        assert_eq!(normalize("*"), Err(PathError::NotAbsolute));
        assert_eq!(normalize("%2Fadmin"), Err(PathError::NotAbsolute));
        assert_eq!(
            normalize("http://example.com/admin"),
            Err(PathError::NotAbsolute)
        );
    }

    #[test]
    fn already_normal_is_borrowed() {
        for raw in [
            "/",
            "/admin",
            "/Admin",
            "/a/",
            "/a/b/c",
            "/a/b/c/",
            "/a%2Fb",
            "/%252F",
            "/a%20b",
            "/.well-known/x",
            "/a/.b/..c/...",
            "/a;b",
            "/caf%C3%A9",
            "/wiki/Special:Admin/x",
            "/a+b/@me/(x),!$&'*=",
        ] {
            assert_borrowed(raw);
        }
    }

    #[test]
    fn decodes_unreserved_triplets() {
        assert_eq!(norm("/%61dmin"), "/admin");
        assert_eq!(norm("/%41dmin"), "/Admin");
        assert_eq!(norm("/%7E%5f%2D%2e%30x"), "/~_-.0x");
        assert_eq!(norm("/a%2Eb"), "/a.b");
    }

    #[test]
    fn upper_cases_other_triplets() {
        assert_eq!(norm("/a%2fb"), "/a%2Fb");
        assert_eq!(norm("/a%3b%3Bb"), "/a%3B%3Bb");
        assert_eq!(norm("/a%20b%3f%23"), "/a%20b%3F%23");
        assert_eq!(norm("/x%c3%a9"), "/x%C3%A9");
        assert_eq!(norm("/%ff"), "/%FF");
    }

    #[test]
    fn never_decodes_twice() {
        assert_eq!(norm("/%252F"), "/%252F");
        assert!(ambiguous("/%252F"));
        assert_eq!(norm("/%2561dmin"), "/%2561dmin");
        assert_eq!(norm("/%252e%252e/admin"), "/%252e%252e/admin");
        assert_eq!(norm("/%25%61"), "/%25a");
    }

    #[test]
    fn bad_percent_encoding() {
        for raw in [
            "/%zz", "/%4", "/%", "/a%", "/%g0", "/%0g", "/%%41", "/%\u{e9}",
        ] {
            assert_eq!(normalize(raw), Err(PathError::BadPercentEncoding), "{raw}");
        }
    }

    #[test]
    fn control_bytes_are_refused() {
        for raw in [
            "/a\0b", "/a\tb", "/a\nb", "/a\rb", "/a\x1fb", "/a\x7fb", "/\x01",
        ] {
            assert_eq!(normalize(raw), Err(PathError::ControlByte), "{raw:?}");
        }
    }

    #[test]
    fn repeated_slashes_collapse() {
        assert_eq!(norm("//admin///x"), "/admin/x");
        assert_eq!(norm("//"), "/");
        assert_eq!(norm("/a//"), "/a/");
        assert_eq!(norm("///a"), "/a");
    }

    #[test]
    fn dot_segments_are_removed() {
        assert_eq!(norm("/../admin"), "/admin");
        assert_eq!(norm("/public/../admin"), "/admin");
        assert_eq!(norm("/a/b/.."), "/a/");
        assert_eq!(norm("/a/."), "/a/");
        assert_eq!(norm("/a/./b"), "/a/b");
        assert_eq!(norm("/a/b/../../.."), "/");
        assert_eq!(norm("/.."), "/");
        assert_eq!(norm("/."), "/");
        assert_eq!(norm("/a/b/../c/./d/"), "/a/c/d/");
        assert_eq!(norm("/a//../b"), "/b");
        assert_eq!(norm("/public/./../admin/"), "/admin/");
    }

    #[test]
    fn encoded_dots_are_dot_segments() {
        assert_eq!(norm("/%2e%2E"), "/");
        assert_eq!(norm("/%2e%2e/%2e%2e/etc"), "/etc");
        assert_eq!(norm("/public/%2e%2e/admin"), "/admin");
        assert_eq!(norm("/public/.%2e/admin"), "/admin");
        assert_eq!(norm("/public/%2E/admin"), "/public/admin");
    }

    #[test]
    fn trailing_slash_is_kept() {
        assert_eq!(norm("/a/"), "/a/");
        assert_eq!(norm("/%61/"), "/a/");
        assert_eq!(norm("/%61"), "/a");
    }

    #[test]
    fn case_is_left_alone() {
        assert_eq!(norm("/Admin"), "/Admin");
        assert_eq!(norm("/ADMIN/%2e%2e/Admin"), "/Admin");
    }

    #[test]
    fn ambiguous_encodings() {
        for raw in [
            "/admin%2F",
            "/admin%2fx",
            "/admin;x",
            "/a%5Cb",
            "/a%5cb",
            "/a%00",
            "/a\\b",
            "/;",
            // `%` itself (double decoding) and escaped control bytes.
            "/a%25",
            "/%252F",
            "/admin%0A",
            "/admin%0d%0a",
            "/admin%09",
            "/admin%7f",
            "/admin%1B",
            // Overlong UTF-8 for '/', '.', '\\'.
            "/..%c0%afadmin",
            "/%C0%AE%C0%AE/x",
            "/..%c1%9c",
            "/..%e0%80%afx",
            "/..%F0%80%80%AFx",
        ] {
            assert!(ambiguous(raw), "{raw}");
        }
        for raw in [
            "/admin",
            "/a%2Eb",
            "/a%20b",
            "/a%3B",
            "/a%3A",
            // Well-formed UTF-8 escapes: é, ऀ (E0 A4 80), 𐀀 (F0 90 80 80).
            "/caf%C3%A9",
            "/%E0%A4%80",
            "/%F0%90%80%80",
            "/%E0",
        ] {
            assert!(!ambiguous(raw), "{raw}");
        }
    }

    #[test]
    fn ambiguous_paths_are_still_normalized() {
        let n = normalize("/public/../admin%2fx").unwrap();
        assert_eq!(n.path, "/admin%2Fx");
        assert!(n.ambiguous);
        let n = normalize("/admin;x").unwrap();
        assert!(matches!(n.path, Cow::Borrowed("/admin;x")));
        assert!(n.ambiguous);
    }

    #[test]
    fn normalizing_is_idempotent() {
        for raw in [
            "/%2e%2e/%2e%2e/etc",
            "//admin///x",
            "/a%2fb/../c/",
            "/%252F/./x",
            "/a/b/..",
            "/%7e%41",
        ] {
            let once = norm(raw);
            assert_borrowed(&once);
        }
    }

    #[test]
    fn non_ascii_is_escaped() {
        assert_eq!(norm("/caf\u{e9}/../x\u{e9}"), "/x%C3%A9");
        assert_eq!(norm("/caf\u{e9}"), norm("/caf%c3%a9"));
    }

    #[test]
    fn escapes_of_characters_that_stand_as_themselves_are_decoded() {
        assert_eq!(norm("/wiki/Special%3AAdmin/x"), "/wiki/Special:Admin/x");
        assert_eq!(norm("/wiki/Special%3aAdmin/x"), "/wiki/Special:Admin/x");
        assert_eq!(norm("/a%2Bb"), "/a+b");
        assert_eq!(norm("/%40me/%21%24%26%27%28%29%2A%2C%3D"), "/@me/!$&'()*,=");
    }

    #[test]
    fn characters_that_cannot_stand_as_themselves_are_escaped() {
        assert_eq!(
            norm("/a\"b<c>{d}|e^f`g[h]"),
            "/a%22b%3Cc%3E%7Bd%7D%7Ce%5Ef%60g%5Bh%5D"
        );
    }

    #[test]
    fn segments_that_fold_away_are_flagged() {
        for raw in [
            "/admin./x",
            "/admin%2e/x",
            "/admin%20/x",
            "/admin%20",
            "/admin.",
            "/x/...",
            "/admin.%20./x",
        ] {
            assert!(normalize(raw).unwrap().folded, "{raw}");
        }
        for raw in [
            "/admin/x",
            "/.well-known/x",
            "/a.b/c",
            "/a/./b",
            "/a/../b",
            "/a/",
            "/%20a",
        ] {
            assert!(!normalize(raw).unwrap().folded, "{raw}");
        }
    }

    #[test]
    fn rule_segments_take_the_request_form() {
        assert_eq!(canonical_segment("caf\u{e9}").unwrap(), "caf%C3%A9");
        assert_eq!(
            canonical_segment("Special%3aAdmin").unwrap(),
            "Special:Admin"
        );
        assert_eq!(canonical_segment("a b").unwrap(), "a%20b");
        assert!(canonical_segment("%zz").is_err());
    }
}
