//! `GET /` and any other unmatched GET: an HTML page showing the identity headers.

use axum::extract::Request;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};

use super::super::html::{escape, page};

const IDENTITY_HEADERS: [&str; 6] = [
    "X-Forwarded-User",
    "X-Forwarded-User-Id",
    "X-Forwarded-Email",
    "X-Forwarded-Preferred-Username",
    "X-Forwarded-Groups",
    "X-Forwarded-Roles",
];

pub(super) async fn home(req: Request) -> Response {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, "GET, HEAD")],
            "method not allowed\n",
        )
            .into_response();
    }
    let rows: String = IDENTITY_HEADERS
        .iter()
        .map(|name| {
            let value = match all_values(req.headers(), name) {
                Some(v) => format!("<code>{}</code>", escape(&v)),
                None => "<span class=\"note\">(not sent)</span>".to_string(),
            };
            format!("<tr><th>{name}</th><td>{value}</td></tr>")
        })
        .collect();
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let body = format!(
        "<p class=\"note\">This app has no login of its own. Gatehouse signed you in and \
told it who you are in these request headers:</p><table>{rows}</table>\
<p>Request path: <code>{}</code></p>\
<p><a class=\"button\" href=\"/oauth2/userinfo\">/oauth2/userinfo</a> \
<a class=\"button cancel\" href=\"/oauth2/sign_out\">Sign out</a></p>",
        escape(path)
    );
    page(StatusCode::OK, "Demo app behind Gatehouse", &body)
}

/// Every value of a header joined by ", " so a duplicated (smuggled) header shows up.
fn all_values(headers: &HeaderMap, name: &str) -> Option<String> {
    let values: Vec<String> = headers
        .get_all(name)
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect();
    (!values.is_empty()).then(|| values.join(", "))
}
