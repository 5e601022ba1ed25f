//! Request path normalization, done once per request. The authorization decision and the
//! upstream must see the very same path: if Gatehouse matched rules against `/public/../admin`
//! while the upstream resolved it to `/admin`, or decoded `%61dmin` differently from it, a rule
//! could be walked around. So the path is normalized here (unreserved escapes decoded, other
//! escapes upper-cased, repeated slashes collapsed, dot segments removed), that result is both
//! matched and forwarded, and anything upstreams disagree on is flagged as `ambiguous`.

use std::borrow::Cow;

/// A request path after normalization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NormalizedPath<'a> {
    /// Starts with '/'. Borrowed when the input was already normal (the common case: no allocation).
    pub path: Cow<'a, str>,
    /// The path holds something upstreams disagree on: `%2F`, `%5C`, `%00` (any hex case), a raw `;` or a raw `\`,
    /// or an overlong UTF-8 escape (`%C0%AF` and the like), which old decoders read as `/`, `\` or `.`.
    /// The caller answers 400 unless the deciding rule opts in with `allow_encoded_path`.
    pub ambiguous: bool,
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
/// Returns the input borrowed when it is already normal.
///
/// # Errors
///
/// [`PathError`] when the path does not start with '/', has a malformed `%` escape, or holds a
/// control byte.
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
                if is_unreserved(value)
                    || bytes[i + 1].is_ascii_lowercase()
                    || bytes[i + 2].is_ascii_lowercase()
                {
                    changed = true;
                }
                if matches!(value, b'/' | b'\\' | 0) || is_overlong_lead(bytes, i, value) {
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
            _ => {}
        }
        i += 1;
    }
    // A final empty segment is a trailing slash, which is kept.
    let last = &bytes[seg_start..];
    if !last.is_empty() && is_dot_segment_or_empty(last) {
        changed = true;
    }

    if !changed {
        return Ok(NormalizedPath {
            path: Cow::Borrowed(raw),
            ambiguous,
        });
    }
    Ok(NormalizedPath {
        path: Cow::Owned(remove_dot_segments(&decode_unreserved(raw)?)),
        ambiguous,
    })
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

/// RFC 3986 §2.3 unreserved characters.
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn is_dot_segment_or_empty(segment: &[u8]) -> bool {
    matches!(segment, b"" | b"." | b"..")
}

/// Decode triplets of unreserved characters and upper-case the hex of all others. Decoded
/// output is never scanned for triplets again, so nothing is decoded twice (and no decoded
/// byte can be a '/' or a '%').
fn decode_unreserved(raw: &str) -> Result<String, PathError> {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let bytes = raw.as_bytes();
    let mut out = String::with_capacity(raw.len());
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'%' {
            i += 1;
            continue;
        }
        let value = triplet(bytes, i)?;
        // Every byte of a triplet is ASCII, so these are char boundaries.
        out.push_str(&raw[copied..i]);
        if is_unreserved(value) {
            out.push(char::from(value));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(value >> 4)]));
            out.push(char::from(HEX[usize::from(value & 0x0F)]));
        }
        i += 3;
        copied = i;
    }
    out.push_str(&raw[copied..]);
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
            "/caf\u{e9}",
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
        assert_eq!(norm("/a%3a%3Ab"), "/a%3A%3Ab");
        assert_eq!(norm("/x%c3%a9"), "/x%C3%A9");
        assert_eq!(norm("/%ff"), "/%FF");
    }

    #[test]
    fn never_decodes_twice() {
        assert_eq!(norm("/%252F"), "/%252F");
        assert!(!ambiguous("/%252F"));
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
            "/%252F",
            "/a%2Eb",
            "/a%20b",
            "/a%25",
            "/a%3B",
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
    fn non_ascii_passes_through() {
        assert_eq!(norm("/caf\u{e9}/../x\u{e9}"), "/x\u{e9}");
    }
}
