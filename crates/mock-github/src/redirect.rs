//! The redirect_uri rule of GitHub OAuth apps.
//!
//! GitHub documents: host and port must match the registered callback URL and the path must
//! be the callback path or a subdirectory of it. The mock is stricter than GitHub in two
//! ways, so a gate that relies on GitHub's leniency fails here rather than in production:
//! the host must match exactly (GitHub also allows sub-domains) and the port must match even
//! for loopback callbacks (GitHub lets native apps pick any loopback port).

use url::Url;

/// Validate an app's registered callback URL.
pub(super) fn check_callback(callback: &str) -> Result<Url, String> {
    let url = Url::parse(callback).map_err(|e| format!("`{callback}` is not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!("`{callback}` is not an absolute http(s) URL"));
    }
    if url.fragment().is_some() {
        return Err(format!("`{callback}` has a #fragment"));
    }
    Ok(url)
}

/// The URL to redirect to: the given redirect_uri when it satisfies the rule, or the
/// registered callback when none was given. `Err` means show an error page, never redirect.
pub(super) fn resolve(callback: &str, given: Option<&str>) -> Result<Url, String> {
    let registered = check_callback(callback)?;
    let Some(given) = given else {
        return Ok(registered);
    };
    let url = Url::parse(given).map_err(|e| format!("redirect_uri is not a URL ({e})"))?;
    if matches(&registered, &url) {
        Ok(url)
    } else {
        Err("The redirect_uri MUST match the registered callback URL for this application.".into())
    }
}

/// Same scheme, host, port and credentials; path equal to or below the callback's path.
fn matches(registered: &Url, given: &Url) -> bool {
    if given.scheme() != registered.scheme()
        || given.host_str() != registered.host_str()
        || given.port_or_known_default() != registered.port_or_known_default()
        || given.username() != registered.username()
        || given.password() != registered.password()
        || given.fragment().is_some()
    {
        return false;
    }
    // Url::parse already resolved `..` and `.` segments, so a prefix test is safe.
    let base = registered.path().trim_end_matches('/');
    let path = given.path();
    path == registered.path() || path == base || path.starts_with(&format!("{base}/"))
}

#[cfg(test)]
mod tests {
    use super::resolve;

    const CB: &str = "http://example.com/path";

    fn ok(given: &str) -> bool {
        resolve(CB, Some(given)).is_ok()
    }

    #[test]
    fn githubs_documented_examples() {
        assert!(ok("http://example.com/path"));
        assert!(ok("http://example.com/path/subdir/other"));
        assert!(!ok("http://example.com/bar"));
        assert!(!ok("http://example.com/"));
        assert!(!ok("http://example.com:8080/path"));
        assert!(!ok("http://oauth.example.com:8080/path"));
        assert!(!ok("http://example.org"));
    }

    #[test]
    fn stricter_than_github() {
        // Sub-domains and other schemes are refused.
        assert!(!ok("http://oauth.example.com/path"));
        assert!(!ok("https://example.com/path"));
        // Loopback callbacks still need the same port.
        assert!(resolve("http://127.0.0.1:4180/cb", Some("http://127.0.0.1:4181/cb")).is_err());
    }

    #[test]
    fn path_tricks_are_refused() {
        assert!(!ok("http://example.com/pathology"));
        assert!(!ok("http://example.com/path/../bar"));
        assert!(!ok("http://example.com/path/%2e%2e/bar"));
        assert!(!ok("http://example.com/path#frag"));
        assert!(!ok("http://user@example.com/path"));
        assert!(!ok("not a url"));
    }

    #[test]
    fn default_port_and_query_are_fine() {
        assert!(ok("http://example.com:80/path"));
        assert!(ok("http://example.com/path?x=1"));
    }

    #[test]
    fn omitted_uses_the_registered_callback() {
        let url = resolve(CB, None).unwrap();
        assert_eq!(url.as_str(), CB);
    }

    #[test]
    fn callback_with_trailing_slash() {
        let cb = "http://example.com/path/";
        assert!(resolve(cb, Some("http://example.com/path/x")).is_ok());
        assert!(resolve(cb, Some("http://example.com/pathx")).is_err());
    }
}
