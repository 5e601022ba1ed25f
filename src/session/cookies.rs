//! Reading, writing, chunking and stripping Gatehouse's cookies in raw `Cookie` headers.

use cookie::{Cookie, SameSite};
use http::HeaderMap;
use std::borrow::Cow;

/// Above this many bytes a cookie value is split, keeping each `Set-Cookie` under browsers'
/// 4096-byte limit together with its name and attributes.
pub const CHUNK_SIZE: usize = 3800;
/// Never read or clear more chunks than this; a session needing more is refused at write time.
pub const MAX_CHUNKS: usize = 8;

#[derive(Debug, Clone)]
pub struct CookieSettings {
    pub name: String,
    pub secure: bool,
    pub domain: Option<String>,
}

/// Every well-formed `name=value` pair of every `Cookie` header, in order, as the bytes the
/// client sent (names and values trimmed of spaces and tabs). The header is read as bytes, not
/// text: an app may set a cookie holding raw UTF-8 (`name=José`), and one such neighbour must
/// neither hide the session nor stop its removal. A pair without `=`, or whose name is not an
/// RFC 7230 token, cannot be parsed and is left out.
pub fn raw_cookie_pairs(headers: &HeaderMap) -> impl Iterator<Item = (&[u8], &[u8])> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .flat_map(|v| v.as_bytes().split(|b| *b == b';'))
        .filter_map(parse_pair)
}

/// One `name=value` pair, or `None` when it cannot be parsed.
fn parse_pair(pair: &[u8]) -> Option<(&[u8], &[u8])> {
    let eq = pair.iter().position(|b| *b == b'=')?;
    let name = trim(&pair[..eq]);
    let value = trim(&pair[eq + 1..]);
    (!name.is_empty() && name.iter().all(|b| is_token_byte(*b))).then_some((name, value))
}

fn trim(bytes: &[u8]) -> &[u8] {
    let is_space = |b: &u8| *b == b' ' || *b == b'\t';
    let start = bytes
        .iter()
        .position(|b| !is_space(b))
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !is_space(b))
        .map_or(start, |i| i + 1);
    &bytes[start..end]
}

/// RFC 7230 `tchar`.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Every pair whose name and value are text, quotes around the value removed: the form
/// Gatehouse's own cookies always have.
pub fn cookie_pairs(headers: &HeaderMap) -> impl Iterator<Item = (&str, &str)> {
    raw_cookie_pairs(headers).filter_map(|(name, value)| {
        let name = std::str::from_utf8(name).ok()?;
        let value = std::str::from_utf8(value).ok()?;
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value);
        Some((name, value))
    })
}

/// The first value of cookie `name`.
pub fn find_cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    cookie_pairs(headers)
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
}

fn chunk_name(name: &str, i: usize) -> String {
    format!("{name}_{i}")
}

/// The session cookie value, joined from `name_0`, `name_1`, … when it was split.
pub fn read_session_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<Cow<'a, str>> {
    if let Some(v) = find_cookie(headers, name) {
        return Some(Cow::Borrowed(v));
    }
    let mut joined = String::new();
    for i in 0..MAX_CHUNKS {
        match find_cookie(headers, &chunk_name(name, i)) {
            Some(part) => joined.push_str(part),
            None if i == 0 => return None,
            None => break,
        }
    }
    Some(Cow::Owned(joined))
}

/// Is `cookie_name` one of ours: the session cookie, a chunk of it (`_0`, `_1`, …), the
/// login-loop counter (`_loop`) or a login-state cookie (`_login…`), for the configured name?
pub fn is_gatehouse_cookie(cookie_name: &[u8], session_name: &str) -> bool {
    match cookie_name.strip_prefix(session_name.as_bytes()) {
        Some(b"") => true,
        Some(rest) => match rest.strip_prefix(b"_") {
            Some(suffix) => {
                (!suffix.is_empty() && suffix.iter().all(u8::is_ascii_digit))
                    || suffix.starts_with(b"login")
                    || suffix == b"loop"
            }
            None => false,
        },
        None => false,
    }
}

/// The `Cookie` header the app may see: every parseable pair that is not one of Gatehouse's,
/// byte for byte, joined into one header. `None` when the client's headers need no change (one
/// `Cookie` header, every pair parseable, none of ours); `Some(empty)` when nothing remains.
pub fn strip_own_cookies(headers: &HeaderMap, session_name: &str) -> Option<Vec<u8>> {
    let mut values = headers.get_all(http::header::COOKIE).iter();
    let first = values.next()?;
    // More than one header is folded into one, so every app reads the same list.
    let mut changed = values.next().is_some();
    let mut kept = Vec::with_capacity(first.len());
    for header in headers.get_all(http::header::COOKIE) {
        for pair in header.as_bytes().split(|b| *b == b';') {
            let Some((name, value)) = parse_pair(pair) else {
                // Empty pieces (`a=1;;b=2`, a trailing `;`) are separators, not cookies.
                changed |= !trim(pair).is_empty();
                continue;
            };
            if is_gatehouse_cookie(name, session_name) || hides_own_cookie(value, session_name) {
                changed = true;
                continue;
            }
            if !kept.is_empty() {
                kept.extend_from_slice(b"; ");
            }
            kept.extend_from_slice(name);
            kept.push(b'=');
            kept.extend_from_slice(value);
        }
    }
    changed.then_some(kept)
}

/// Does a value hold one of our cookies after a comma (`a=1,_gatehouse=…`)? RFC 6265 does not
/// separate cookies with commas, but older parsers (RFC 2965, some Java and PHP stacks) do, and
/// would hand the app the session; the whole pair goes.
fn hides_own_cookie(value: &[u8], session_name: &str) -> bool {
    value.contains(&b',')
        && value
            .split(|b| *b == b',')
            .skip(1)
            .filter_map(parse_pair)
            .any(|(name, _)| is_gatehouse_cookie(name, session_name))
}

/// The name of the Gatehouse cookie an upstream's `Set-Cookie` value would set, overwrite or
/// clear, if any (lossy UTF-8, for the log; never the value). Read as leniently as any browser
/// or intermediary could: white space around the name, any case, a `__Host-` / `__Secure-`
/// prefix, a value without `=` (a nameless cookie whose text is the name), and cookies folded
/// into one header with commas (`a=1, _gatehouse=x`: RFC 6265 forbids it, yet some proxies and
/// libraries split there), where the whole header counts.
pub fn own_cookie_set_by(set_cookie: &[u8], session_name: &str) -> Option<String> {
    let ours = comparable(session_name.as_bytes());
    let ours = std::str::from_utf8(&ours).ok()?;
    set_cookie
        .split(|b| *b == b',')
        .enumerate()
        .filter_map(|(i, piece)| {
            let pair = piece.split(|b| *b == b';').next().unwrap_or_default();
            match pair.iter().position(|b| *b == b'=') {
                Some(eq) => Some(&pair[..eq]),
                // A browser reads `Set-Cookie: name` as a nameless cookie; only the first
                // piece can be one (`Expires=Wed, 21 Oct …` has pieces without `=`).
                None if i == 0 => Some(pair),
                None => None,
            }
        })
        .find(|name| is_gatehouse_cookie(&comparable(name), ours))
        .map(|name| String::from_utf8_lossy(name.trim_ascii()).into_owned())
}

/// A cookie name as compared for [`own_cookie_set_by`]: trimmed, without `__Host-` /
/// `__Secure-` prefixes (in any case, as browsers read them), lower-cased.
fn comparable(name: &[u8]) -> Vec<u8> {
    let mut name = name.trim_ascii();
    loop {
        let lower = |n: usize| name.get(..n).map(<[u8]>::to_ascii_lowercase);
        if lower(7).as_deref() == Some(b"__host-") {
            name = &name[7..];
        } else if lower(9).as_deref() == Some(b"__secure-") {
            name = &name[9..];
        } else {
            return name.to_ascii_lowercase();
        }
    }
}

/// One `Set-Cookie` value with Gatehouse's attributes.
pub fn set_cookie(
    settings: &CookieSettings,
    name: &str,
    value: &str,
    path: &str,
    max_age_secs: i64,
) -> String {
    let mut c = Cookie::build((name.to_string(), value.to_string()))
        .path(path.to_string())
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(settings.secure)
        .max_age(cookie::time::Duration::seconds(max_age_secs.max(0)));
    if let Some(domain) = &settings.domain {
        c = c.domain(domain.clone());
    }
    c.build().to_string()
}

/// `Set-Cookie` values that store `value` as the session, split when large, and expire any
/// leftover form (whole or chunks) the browser sent, so a stale half never lingers.
pub fn session_set_cookies(
    settings: &CookieSettings,
    value: &str,
    max_age_secs: i64,
    request_headers: &HeaderMap,
) -> Option<Vec<String>> {
    let name = &settings.name;
    let mut out = Vec::new();
    if value.len() <= CHUNK_SIZE {
        out.push(set_cookie(settings, name, value, "/", max_age_secs));
        for (i, _) in present_chunks(request_headers, name) {
            out.push(set_cookie(settings, &chunk_name(name, i), "", "/", 0));
        }
    } else {
        let chunks: Vec<&str> = value
            .as_bytes()
            .chunks(CHUNK_SIZE)
            .map(|c| std::str::from_utf8(c).unwrap_or_default())
            .collect();
        if chunks.len() > MAX_CHUNKS {
            return None;
        }
        for (i, chunk) in chunks.iter().enumerate() {
            out.push(set_cookie(
                settings,
                &chunk_name(name, i),
                chunk,
                "/",
                max_age_secs,
            ));
        }
        for (i, _) in present_chunks(request_headers, name).filter(|(i, _)| *i >= chunks.len()) {
            out.push(set_cookie(settings, &chunk_name(name, i), "", "/", 0));
        }
        if find_cookie(request_headers, name).is_some() {
            out.push(set_cookie(settings, name, "", "/", 0));
        }
    }
    Some(out)
}

/// `Set-Cookie` values that end the session: the whole cookie and any chunk the browser has.
pub fn clear_session_cookies(
    settings: &CookieSettings,
    request_headers: &HeaderMap,
) -> Vec<String> {
    let name = &settings.name;
    let mut out = vec![set_cookie(settings, name, "", "/", 0)];
    for (i, _) in present_chunks(request_headers, name) {
        out.push(set_cookie(settings, &chunk_name(name, i), "", "/", 0));
    }
    out
}

fn present_chunks<'a>(
    headers: &'a HeaderMap,
    name: &'a str,
) -> impl Iterator<Item = (usize, &'a str)> + 'a {
    cookie_pairs(headers).filter_map(move |(n, v)| {
        let i: usize = n.strip_prefix(name)?.strip_prefix('_')?.parse().ok()?;
        (i < MAX_CHUNKS).then_some((i, v))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(cookie: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(http::header::COOKIE, cookie.parse().unwrap());
        h
    }

    fn settings() -> CookieSettings {
        CookieSettings {
            name: "_gatehouse".into(),
            secure: true,
            domain: None,
        }
    }

    #[test]
    fn finds_whole_and_chunked_values() {
        let h = headers("a=1; _gatehouse=abc; b=2");
        assert_eq!(read_session_value(&h, "_gatehouse").unwrap(), "abc");
        let h = headers("_gatehouse_1=def; _gatehouse_0=abc");
        assert_eq!(read_session_value(&h, "_gatehouse").unwrap(), "abcdef");
        assert!(read_session_value(&headers("x=1"), "_gatehouse").is_none());
    }

    fn stripped(h: &HeaderMap) -> Option<String> {
        strip_own_cookies(h, "_gatehouse").map(|v| String::from_utf8_lossy(&v).into_owned())
    }

    #[test]
    fn strips_only_our_cookies() {
        let h = headers(
            "a=1; _gatehouse=abc; _gatehouse_0=x; _gatehouse_login_ab=y; _gatehouse_loop=1.2; _gatehouse_pref=keep; b=2",
        );
        assert_eq!(stripped(&h).unwrap(), "a=1; _gatehouse_pref=keep; b=2");
        assert_eq!(stripped(&headers("a=1")), None);
        assert_eq!(stripped(&headers("_gatehouse=1")).unwrap(), "");
    }

    fn raw_headers(values: &[&[u8]]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(
                http::header::COOKIE,
                http::HeaderValue::from_bytes(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn a_non_ascii_neighbour_neither_hides_nor_keeps_the_session() {
        let h = raw_headers(&["name=Jos\u{e9}; _gatehouse=abc; b=2".as_bytes()]);
        assert_eq!(read_session_value(&h, "_gatehouse").unwrap(), "abc");
        let kept = strip_own_cookies(&h, "_gatehouse").unwrap();
        assert_eq!(kept, "name=Jos\u{e9}; b=2".as_bytes());
        // Latin-1 bytes (not UTF-8 at all) are passed on as they came.
        let h = raw_headers(&[b"_gatehouse=abc; n=\xff\xfe"]);
        assert_eq!(strip_own_cookies(&h, "_gatehouse").unwrap(), b"n=\xff\xfe");
    }

    #[test]
    fn unparseable_pairs_are_dropped_and_headers_folded() {
        let h = headers("a=1; junk; =x; b c=2; d=3");
        assert_eq!(stripped(&h).unwrap(), "a=1; d=3");
        let h = raw_headers(&[b"a=1", b" _gatehouse_1 = x ;b=2"]);
        assert_eq!(stripped(&h).unwrap(), "a=1; b=2");
        let h = headers("a=1,_gatehouse=x; b=2, _gatehouse_loop=1; c=x,y");
        assert_eq!(stripped(&h).unwrap(), "c=x,y");
        let h = raw_headers(&[b"a=1", b"b=2"]);
        assert_eq!(stripped(&h).unwrap(), "a=1; b=2");
        assert_eq!(stripped(&headers("a=1;b=2;")), None);
    }

    #[test]
    fn finds_our_cookies_in_upstream_set_cookie_headers() {
        let own = |v: &str| own_cookie_set_by(v.as_bytes(), "_gatehouse");
        for (value, name) in [
            ("_gatehouse=x; Path=/", "_gatehouse"),
            ("_gatehouse_0=x", "_gatehouse_0"),
            (
                "_gatehouse_login_abc=x; Path=/oauth2",
                "_gatehouse_login_abc",
            ),
            ("_gatehouse_loop=1", "_gatehouse_loop"),
            (" \t_gatehouse =x", "_gatehouse"),
            ("__Host-_gatehouse=x; Secure; Path=/", "__Host-_gatehouse"),
            ("__secure-_Gatehouse_1=x", "__secure-_Gatehouse_1"),
            ("_GATEHOUSE=x", "_GATEHOUSE"),
            ("app=1; Path=/, _gatehouse=x", "_gatehouse"),
            ("_gatehouse", "_gatehouse"),
            ("_gatehouse; Path=/", "_gatehouse"),
        ] {
            assert_eq!(own(value).as_deref(), Some(name), "{value}");
        }
        for value in [
            "app=1; Path=/",
            "_gatehouse_pref=keep",
            "gatehouse=1",
            "s=1; Expires=Wed, 21 Oct 2037 07:28:00 GMT; Path=/",
            "x=_gatehouse=1",
            "",
        ] {
            assert_eq!(own(value), None, "{value}");
        }
        // A configured name with a prefix is ours without it, and in any case.
        assert!(own_cookie_set_by(b"__HOST-gh=x", "__Host-gh").is_some());
        assert!(own_cookie_set_by(b"gh_loop=1", "__Host-gh").is_some());
    }

    #[test]
    fn set_cookie_attributes() {
        let c = set_cookie(&settings(), "_gatehouse", "v", "/", 60);
        for part in [
            "_gatehouse=v",
            "HttpOnly",
            "SameSite=Lax",
            "Secure",
            "Path=/",
            "Max-Age=60",
        ] {
            assert!(c.contains(part), "{c} lacks {part}");
        }
    }

    #[test]
    fn large_values_are_chunked_and_small_ones_clear_old_chunks() {
        let big = "x".repeat(CHUNK_SIZE * 2 + 10);
        let cookies = session_set_cookies(&settings(), &big, 60, &HeaderMap::new()).unwrap();
        assert_eq!(cookies.len(), 3);
        assert!(cookies[2].starts_with("_gatehouse_2="));
        let old = headers("_gatehouse_0=a; _gatehouse_1=b");
        let cookies = session_set_cookies(&settings(), "small", 60, &old).unwrap();
        assert_eq!(cookies.len(), 3);
        assert!(cookies[1].contains("Max-Age=0"));
        let huge = "x".repeat(CHUNK_SIZE * (MAX_CHUNKS + 1));
        assert!(session_set_cookies(&settings(), &huge, 60, &HeaderMap::new()).is_none());
    }
}
