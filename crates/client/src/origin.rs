//! A gate is named by its origin (`scheme://host[:port]`): that is the key in the tokens file
//! and the base of the `/oauth2/*` endpoints.

use super::ClientError;

/// `https://App.Example.com:443/some/path?x` → `https://app.example.com`.
pub fn normalize(input: &str) -> Result<String, ClientError> {
    let bad = |problem: &str| ClientError::BadUrl {
        url: input.to_string(),
        problem: problem.to_string(),
    };
    let parsed = url::Url::parse(input.trim()).map_err(|e| bad(&e.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(bad("it must start with http:// or https://"));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(bad("it has no host"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(bad("it must not carry a user name or password"));
    }
    Ok(parsed.origin().ascii_serialization())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_become_origins() {
        let cases = [
            ("https://App.Example.com/", "https://app.example.com"),
            (
                "https://app.example.com:443/x/y?z=1#f",
                "https://app.example.com",
            ),
            ("http://127.0.0.1:4180", "http://127.0.0.1:4180"),
            ("http://localhost:80/", "http://localhost"),
            ("http://[::1]:4180/", "http://[::1]:4180"),
        ];
        for (input, want) in cases {
            assert_eq!(normalize(input).unwrap(), want, "{input}");
        }
    }

    #[test]
    fn non_http_urls_are_refused() {
        for input in [
            "app.example.com",
            "ftp://x.example.com",
            "https://u:p@x.example.com",
            "",
        ] {
            assert!(normalize(input).is_err(), "{input}");
        }
    }
}
