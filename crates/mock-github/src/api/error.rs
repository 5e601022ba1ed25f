//! GitHub's REST error body: `{"message": ..., "documentation_url": ...}` with a status.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

pub(super) const REST_DOCS: &str = "https://docs.github.com/rest";

/// `{"message": ..., "documentation_url": ...}` with a status, GitHub's error shape.
pub(super) fn message(status: StatusCode, msg: &str, docs: &str) -> Response {
    (
        status,
        Json(json!({ "message": msg, "documentation_url": docs })),
    )
        .into_response()
}

pub(super) fn not_found() -> Response {
    message(StatusCode::NOT_FOUND, "Not Found", REST_DOCS)
}

/// GitHub's newer error shape, which adds the status as a string: `"status": "403"`.
pub(super) fn message_with_status(status: StatusCode, msg: &str, docs: &str) -> Response {
    (
        status,
        Json(json!({
            "message": msg,
            "documentation_url": docs,
            "status": status.as_u16().to_string(),
        })),
    )
        .into_response()
}
