//! Gatehouse's state-changing endpoints answer only requests made by this site itself, with the
//! body type each declares. Otherwise a page on another site could post to them from a
//! victim's browser: a `<form enctype="text/plain">` whose body happens to parse as JSON would
//! sign the browser in as the attacker through `/oauth2/pat` (login CSRF), or end every
//! session of the victim through `/oauth2/sign_out`.
//!
//! A request is cross-site when `Sec-Fetch-Site` says `cross-site` or `same-site`, or when an
//! `Origin` header (`null` included) names another origin than the request's own (its `Host`
//! with the gate's public scheme) or `server.public_url`'s. Requests with neither header (curl,
//! CLIs, servers) are not browsers' and pass. The token endpoints also accept the origins of
//! their configured clients, which call them with CORS.

use crate::pages::Refusal;
use crate::runtime::Runtime;
use http::header::{CONTENT_TYPE, HOST, ORIGIN};
use http::request::Parts;
use http::Method;

pub const JSON: &str = "application/json";
pub const FORM: &str = "application/x-www-form-urlencoded";

/// What body an endpoint takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Takes {
    /// Whatever comes is ignored (no body is read): only the origin is checked.
    Ignored,
    /// A JSON body, always.
    Json,
    /// What an HTML form posts, or JSON; a request without a body may name no type.
    FormOrJson,
}

impl Takes {
    /// For the endpoints reference: what a state-changing request must carry.
    #[cfg(test)]
    pub(super) fn describe(self) -> &'static str {
        match self {
            Takes::Ignored => "no body is read",
            Takes::Json => "a JSON body",
            Takes::FormOrJson => "a form or JSON body",
        }
    }

    /// The media types this accepts, for the 415 answer.
    fn expected(self) -> &'static str {
        match self {
            Takes::Ignored => "",
            Takes::Json => JSON,
            Takes::FormOrJson => "application/x-www-form-urlencoded or application/json",
        }
    }
}

/// Refuse a request to a state-changing endpoint that another site made, or whose body is not
/// of the type the endpoint takes. `cors_clients`: the origins of the configured token clients
/// are trusted too.
pub fn refusal(
    rt: &Runtime,
    req: &Parts,
    body: &[u8],
    takes: Takes,
    cors_clients: bool,
) -> Option<Refusal> {
    if let Some(reason) = cross_site(rt, req, cors_clients) {
        tracing::info!(
            target: "gatehouse::audit",
            event = "cross_site_refused",
            method = %req.method,
            path = req.uri.path(),
            reason = %reason,
            "a request from another site to a state-changing endpoint was refused"
        );
        return Some(Refusal::CrossSite { reason });
    }
    if !body_type_ok(req, body, takes) {
        return Some(Refusal::UnsupportedMediaType {
            expected: takes.expected(),
        });
    }
    None
}

/// Is the request's method one that changes state (anything but GET, HEAD and OPTIONS)?
pub fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Why the request counts as made by another site, if it does.
fn cross_site(rt: &Runtime, req: &Parts, cors_clients: bool) -> Option<String> {
    let origin = match single(req, ORIGIN.as_str()) {
        Ok(origin) => origin,
        Err(why) => return Some(why),
    };
    if let Some(origin) = origin {
        // A client the config lists calls the token endpoints from its own origin (no cookies
        // are involved there).
        if cors_clients && rt.tokens.cors_origin(Some(origin)).is_some() {
            return None;
        }
        let own = own_origin(rt.public_scheme, host(req));
        if !origin_matches(origin, own.as_ref(), &rt.settings.public_url.origin()) {
            return Some(format!(
                "it names another origin ({})",
                origin.chars().take(100).collect::<String>()
            ));
        }
    }
    for site in req.headers.get_all("sec-fetch-site") {
        match site.to_str() {
            Ok(v) if v.eq_ignore_ascii_case("same-origin") || v.eq_ignore_ascii_case("none") => {}
            Ok(v) if v.eq_ignore_ascii_case("same-site") => {
                return Some("Sec-Fetch-Site says another site of the same domain made it".into())
            }
            _ => return Some("Sec-Fetch-Site says another site made it".into()),
        }
    }
    None
}

/// The one value of header `name`, if any; `Err` when it is repeated or not text (a browser
/// sends neither, so nothing in it can be trusted).
fn single<'a>(req: &'a Parts, name: &str) -> Result<Option<&'a str>, String> {
    let mut values = req.headers.get_all(name).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(format!("it has more than one {name} header"));
    }
    first
        .map(|v| {
            v.to_str()
                .map_err(|_| format!("its {name} header is not text"))
        })
        .transpose()
}

/// The `Host` the client asked for (HTTP/1.1 header, or the authority of an HTTP/2 request).
fn host(req: &Parts) -> Option<&str> {
    match req.headers.get(HOST) {
        Some(h) => h.to_str().ok(),
        None => req.uri.authority().map(|a| a.as_str()),
    }
}

/// The origin a page served for this request has: the gate's public scheme and the `Host`.
fn own_origin(scheme: &str, host: Option<&str>) -> Option<url::Origin> {
    let host = host.filter(|h| !h.is_empty() && !h.contains(['/', '?', '#', '@', '\\']))?;
    url::Url::parse(&format!("{scheme}://{host}"))
        .ok()
        .map(|u| u.origin())
}

/// Does `sent` (an `Origin` header) name the request's own origin or the public one? Only the
/// exact form browsers send counts (`scheme://host[:port]`); `null` and anything opaque never do.
fn origin_matches(sent: &str, own: Option<&url::Origin>, public: &url::Origin) -> bool {
    let Ok(url) = url::Url::parse(sent) else {
        return false;
    };
    let origin = url.origin();
    if !origin.is_tuple() || !origin.ascii_serialization().eq_ignore_ascii_case(sent) {
        return false;
    }
    own.is_some_and(|own| *own == origin) || *public == origin
}

/// Does the request say its body is JSON (rather than a form)?
pub fn body_is_json(req: &Parts) -> bool {
    media_type(req).is_some_and(|t| t.eq_ignore_ascii_case(JSON))
}

/// The media type of the body without its parameters; `None` when there is no single,
/// textual `Content-Type`.
fn media_type(req: &Parts) -> Option<&str> {
    single(req, CONTENT_TYPE.as_str())
        .ok()
        .flatten()
        .map(|v| v.split(';').next().unwrap_or("").trim())
}

/// Is the body of a type the endpoint takes? The media type is compared without its
/// parameters (`; charset=utf-8`) and ignoring case.
fn body_type_ok(req: &Parts, body: &[u8], takes: Takes) -> bool {
    if single(req, CONTENT_TYPE.as_str()).is_err() {
        return false;
    }
    let essence = media_type(req);
    match (takes, essence) {
        (Takes::Ignored, _) => true,
        (Takes::Json, Some(t)) => t.eq_ignore_ascii_case(JSON),
        (Takes::Json, None) => false,
        (Takes::FormOrJson, Some(t)) => {
            t.eq_ignore_ascii_case(FORM) || t.eq_ignore_ascii_case(JSON)
        }
        (Takes::FormOrJson, None) => body.is_empty(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(headers: &[(&str, &str)]) -> Parts {
        let mut b = http::Request::builder().method("POST").uri("/oauth2/pat");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    fn origin(text: &str) -> url::Origin {
        url::Url::parse(text).unwrap().origin()
    }

    #[test]
    fn only_the_exact_own_or_public_origin_matches() {
        let own = own_origin("https", Some("gate.example:8443"));
        let public = origin("https://public.example");
        for sent in ["https://gate.example:8443", "https://public.example"] {
            assert!(origin_matches(sent, own.as_ref(), &public), "{sent}");
        }
        for sent in [
            "null",
            "https://evil.example",
            "http://gate.example:8443",
            "https://gate.example",
            "https://gate.example:8443/",
            "https://gate.example:8443/path",
            "https://user@gate.example:8443",
            "https://public.example.evil.example",
            "file:///etc",
            "",
        ] {
            assert!(!origin_matches(sent, own.as_ref(), &public), "{sent}");
        }
        // A default port is left out by browsers; the Host may carry it.
        let own = own_origin("https", Some("gate.example:443"));
        assert!(origin_matches(
            "https://gate.example",
            own.as_ref(),
            &public
        ));
        assert!(own_origin("https", Some("evil.example/x")).is_none());
        assert!(own_origin("https", None).is_none());
    }

    #[test]
    fn body_types_are_compared_without_parameters_or_case() {
        let with = |t: &str| parts(&[("content-type", t)]);
        for t in [
            "application/json",
            "Application/JSON; charset=utf-8",
            "application/json ;charset=UTF-8",
        ] {
            assert!(body_type_ok(&with(t), b"{}", Takes::Json), "{t}");
        }
        for t in [
            "text/plain",
            "application/jsonx",
            "application/json, text/plain",
            "",
        ] {
            assert!(!body_type_ok(&with(t), b"{}", Takes::Json), "{t}");
        }
        assert!(!body_type_ok(&parts(&[]), b"{}", Takes::Json));
        assert!(!body_type_ok(&parts(&[]), b"", Takes::Json));
        let twice = parts(&[
            ("content-type", "application/json"),
            ("content-type", "application/json"),
        ]);
        assert!(!body_type_ok(&twice, b"{}", Takes::Json));
        // Sign-out: a form, JSON, or nothing at all.
        assert!(body_type_ok(
            &with(FORM),
            b"everywhere=1",
            Takes::FormOrJson
        ));
        assert!(body_type_ok(&with(JSON), b"{}", Takes::FormOrJson));
        assert!(body_type_ok(&parts(&[]), b"", Takes::FormOrJson));
        assert!(!body_type_ok(
            &parts(&[]),
            b"everywhere=1",
            Takes::FormOrJson
        ));
        assert!(!body_type_ok(&with("text/plain"), b"", Takes::FormOrJson));
        assert!(body_type_ok(&with("text/plain"), b"x", Takes::Ignored));
    }
}
