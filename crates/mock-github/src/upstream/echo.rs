//! `/echo` and `/echo/*`, any method: the request as JSON, for tests to inspect what the
//! gate forwarded.
//!
//! `{"method", "path", "query" (raw string or null), "headers", "body" (UTF-8, lossy)}`.
//! Header names are lower-cased; a header sent once is a string, a repeated header is an
//! array of its values in order (so tests can spot duplicates). The body is capped at 1 MiB
//! (413 above); use /upload for big bodies.

use axum::body::to_bytes;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

const MAX_ECHO_BODY: usize = 1024 * 1024;

pub(super) async fn echo(req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let mut headers = Map::new();
    for name in parts.headers.keys() {
        let values: Vec<Value> = parts
            .headers
            .get_all(name)
            .iter()
            .map(|v| Value::from(String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect();
        let value = match <[Value; 1]>::try_from(values) {
            Ok([one]) => one,
            Err(many) => Value::Array(many),
        };
        headers.insert(name.as_str().to_string(), value);
    }
    let Ok(body) = to_bytes(body, MAX_ECHO_BODY).await else {
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            "echo body over 1 MiB; use /upload\n",
        )
            .into_response();
    };
    Json(json!({
        "method": parts.method.as_str(),
        "path": parts.uri.path(),
        "query": parts.uri.query(),
        "headers": headers,
        "body": String::from_utf8_lossy(&body),
    }))
    .into_response()
}
