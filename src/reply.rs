//! A response Gatehouse writes itself (endpoints, redirects, error pages), independent of
//! Pingora so handlers can be tested without a server.

use bytes::Bytes;

#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Bytes,
}

impl Reply {
    fn new(status: u16, content_type: &str, body: impl Into<Bytes>) -> Reply {
        Reply {
            status,
            headers: vec![
                ("Content-Type", content_type.to_string()),
                // Auth answers depend on who asks: never let a cache share them.
                ("Cache-Control", "no-store".to_string()),
                ("X-Content-Type-Options", "nosniff".to_string()),
            ],
            body: body.into(),
        }
    }

    pub fn html(status: u16, body: String) -> Reply {
        Reply::new(status, "text/html; charset=utf-8", body)
            .header("X-Frame-Options", "DENY")
            .header(
                "Content-Security-Policy",
                "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; form-action 'self'; frame-ancestors 'none'",
            )
    }

    pub fn json(status: u16, value: &serde_json::Value) -> Reply {
        Reply::new(status, "application/json", value.to_string())
    }

    pub fn text(status: u16, body: &'static str) -> Reply {
        Reply::new(status, "text/plain; charset=utf-8", body)
    }

    /// 302 to `location` (already validated by the caller).
    pub fn redirect(location: String) -> Reply {
        Reply::new(302, "text/plain; charset=utf-8", "").header("Location", location)
    }

    pub fn empty(status: u16) -> Reply {
        Reply::new(status, "text/plain; charset=utf-8", "")
    }

    /// Replace every `name` header with this one value.
    pub fn replace_header(mut self, name: &'static str, value: impl Into<String>) -> Reply {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.header(name, value)
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }

    pub fn cookies(mut self, set_cookies: impl IntoIterator<Item = String>) -> Reply {
        self.headers
            .extend(set_cookies.into_iter().map(|c| ("Set-Cookie", c)));
        self
    }
}
