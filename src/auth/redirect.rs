//! Where to send a browser after sign-in or sign-out: a same-origin path, or `/`.
//!
//! Browsers treat `//host`, `/\host`, and paths with tabs or newlines stripped as other origins,
//! so anything that could be read as one falls back to `/`.

use url::Url;

const MAX_LEN: usize = 2048;

/// A safe local redirect target for `rd`. `prefix` is Gatehouse's own path prefix: landing on
/// its endpoints after sign-in would loop, so those fall back to `/` too (except the "who am I"
/// page, which is made for people to land on).
pub fn safe_redirect(rd: Option<&str>, public_url: &Url, prefix: &str) -> String {
    rd.and_then(|rd| local_path(rd, public_url))
        .filter(|p| match landing_path(p) {
            Some(landing) => !is_under(&landing, prefix) || is_me_page(&landing, prefix),
            // A malformed escape (Gatehouse answers 400 to it) may vanish with a `..` the
            // browser resolves, so where it lands is unknown.
            None => false,
        })
        .unwrap_or_else(|| "/".to_string())
}

/// Where a browser following `path` lands, as Gatehouse routes it: resolved the browser's way
/// (query and fragment dropped, dot segments removed, empty segments kept), then normalized as
/// Gatehouse normalizes request paths. `/x/../oauth2/start`, `/oauth2//../x` (the browser asks
/// for `/oauth2/x`), `/%6Fauth2/start` and `/oauth2#x` all land on Gatehouse's own endpoints
/// (found by fuzzing). `None` when it cannot be told.
fn landing_path(path: &str) -> Option<String> {
    let resolved = Url::parse("http://landing.invalid/")
        .ok()?
        .join(path)
        .ok()?;
    let normal = crate::policy::path::normalize(resolved.path()).ok()?;
    Some(normal.path.into_owned())
}

fn is_me_page(path: &str, prefix: &str) -> bool {
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest == "/me" || rest.starts_with("/me?"))
}

fn local_path(rd: &str, public_url: &Url) -> Option<String> {
    if rd.is_empty() || rd.len() > MAX_LEN {
        return None;
    }
    let path = if rd.starts_with('/') {
        rd.to_string()
    } else {
        // An absolute URL is accepted only for our own origin, and reduced to its path.
        let url = Url::parse(rd).ok()?;
        if url.origin() != public_url.origin()
            || !url.username().is_empty()
            || url.password().is_some()
        {
            return None;
        }
        let mut p = url.path().to_string();
        if let Some(q) = url.query() {
            p.push('?');
            p.push_str(q);
        }
        p
    };
    is_plain_local_path(&path, public_url).then_some(path)
}

/// Does `path`, resolved the way a browser resolves a `Location`, stay on our origin with a path
/// that does not itself read as `//host`? Dot segments count: `/.//evil.com` and `/..//evil.com`
/// resolve to the path `//evil.com`, which an app redirecting to `location.pathname` (or any
/// later hop that re-reads the path) would send to another host.
fn resolves_home(path: &str, public_url: &Url) -> bool {
    public_url
        .join(path)
        .is_ok_and(|u| u.origin() == public_url.origin() && !u.path().starts_with("//"))
}

fn is_plain_local_path(path: &str, public_url: &Url) -> bool {
    let bad_char = |c: char| c == '\\' || c.is_control() || c.is_whitespace();
    if !path.starts_with('/')
        || path.starts_with("//")
        || path.chars().any(bad_char)
        || !resolves_home(path, public_url)
    {
        return false;
    }
    // Look through percent-encoding too (some servers and browsers decode before redirecting).
    let mut current = path.to_string();
    for _ in 0..3 {
        let decoded = percent_encoding::percent_decode_str(&current)
            .decode_utf8_lossy()
            .into_owned();
        if decoded.starts_with("//")
            || decoded.starts_with("/\\")
            || decoded.chars().any(|c| c == '\\' || c.is_control())
            || !resolves_home(&decoded, public_url)
        {
            return false;
        }
        if decoded == current {
            break;
        }
        current = decoded;
    }
    true
}

fn is_under(path: &str, prefix: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    let prefix = prefix.to_ascii_lowercase();
    lower == prefix
        || lower.starts_with(&format!("{prefix}/"))
        || lower.starts_with(&format!("{prefix}?"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_me_page_is_a_fine_landing_place() {
        let u = Url::parse("http://gate.test").unwrap();
        assert_eq!(
            safe_redirect(Some("/oauth2/me"), &u, "/oauth2"),
            "/oauth2/me"
        );
        assert_eq!(safe_redirect(Some("/oauth2/mex"), &u, "/oauth2"), "/");
        assert_eq!(safe_redirect(Some("/oauth2/start"), &u, "/oauth2"), "/");
    }

    fn rd(s: &str) -> String {
        let public = Url::parse("https://app.example.com").unwrap();
        safe_redirect(Some(s), &public, "/oauth2")
    }

    #[test]
    fn keeps_local_paths() {
        assert_eq!(rd("/dashboard?tab=1"), "/dashboard?tab=1");
        assert_eq!(rd("/a/b%20c"), "/a/b%20c");
        assert_eq!(rd("https://app.example.com/x?y=1"), "/x?y=1");
    }

    #[test]
    fn open_redirects_land_on_root() {
        for attack in [
            "//evil.com",
            "https://evil.com",
            "/\\evil.com",
            "%2F%2Fevil.com",
            "/%2F%2Fevil.com",
            "/%2fevil.com",
            "/%5Cevil.com",
            "/\t/evil.com",
            "\\\\evil.com",
            "http:evil.com",
            "javascript:alert(1)",
            "https://app.example.com.evil.com/",
            "https://user@app.example.com/",
            "///evil.com",
            "/%252F%252Fevil.com",
            // Dot segments that resolve to a `//host` path.
            "/.//evil.com",
            "/..//evil.com",
            "/%2e%2e//evil.com",
            "/%2e%2e%2f%2fevil.com",
            "/a/../..//evil.com",
            "",
            "evil.com",
        ] {
            assert_eq!(rd(attack), "/", "{attack:?}");
        }
    }

    #[test]
    fn own_endpoints_fall_back_to_root() {
        assert_eq!(rd("/oauth2/start"), "/");
        assert_eq!(rd("/OAuth2/sign_out"), "/");
        assert_eq!(rd("/oauth2x"), "/oauth2x");
        for sneaky in [
            "/x/../oauth2/start",
            "/x/%2e%2E/oauth2/sign_out",
            "/%6Fauth2/start",
            "/oauth2#x",
            "/oauth2/./me/../start",
            "/%zz/../oauth2/start",
            "/oauth2//../x",
        ] {
            assert_eq!(rd(sneaky), "/", "{sneaky:?}");
        }
        assert_eq!(rd("/oauth2/me?tab=1"), "/oauth2/me?tab=1");
    }
}
