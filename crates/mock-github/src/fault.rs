//! Applying a failure injected by `POST /_mock/fail` to one endpoint: a status, a delay, a
//! cut-off JSON body, a connection closed before the response, or one cut mid-body.

use std::io;

use axum::body::{Body, Bytes};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use super::state::{FailMode, Failure};

/// What the endpoint answers instead of its normal response; `None`: answer normally (after
/// the delay of [`FailMode::Slow`]). `status_reply` builds the body for an injected status;
/// `malformed` is the cut-off JSON for [`FailMode::Malformed`].
pub(super) async fn inject(
    failure: Failure,
    status_reply: impl FnOnce(StatusCode) -> Response,
    malformed: &'static str,
) -> Option<Response> {
    match failure.mode {
        FailMode::Status(status) => Some(status_reply(
            StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY),
        )),
        FailMode::Slow(delay) => {
            tokio::time::sleep(delay).await;
            None
        }
        // Answered first, held afterwards: see [`hold`].
        FailMode::Late(_) => None,
        FailMode::Malformed => Some(
            (
                [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
                malformed,
            )
                .into_response(),
        ),
        FailMode::Drop => Some(dropped()),
        FailMode::Truncate => Some(truncated(malformed)),
        // Answered where the endpoint knows who asks (REST) or where it redirects (authorize).
        FailMode::RateLimit { .. } | FailMode::AuthorizeError(_) => None,
    }
}

/// Hold an answer already made for [`FailMode::Late`] (a no-op for every other failure).
pub(super) async fn hold(failure: Option<Failure>, response: Response) -> Response {
    if let Some(Failure {
        mode: FailMode::Late(delay),
        ..
    }) = failure
    {
        tokio::time::sleep(delay).await;
    }
    response
}

/// A 200 whose headers promise more body than arrives: the start of `body`, then the server
/// aborts the connection mid-transfer.
fn truncated(body: &'static str) -> Response {
    use futures_util::StreamExt;
    let head = futures_util::stream::once(async move { Ok(Bytes::from_static(body.as_bytes())) });
    let cut = futures_util::stream::once(async {
        // Let the headers and the first bytes go out before the connection breaks.
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        Err::<Bytes, io::Error>(io::Error::new(
            io::ErrorKind::ConnectionReset,
            "connection cut by POST /_mock/fail?mode=truncate",
        ))
    });
    let mut response = Response::new(Body::from_stream(head.chain(cut)));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json; charset=utf-8"),
    );
    headers.insert(header::CONTENT_LENGTH, header::HeaderValue::from(4096u32));
    response
}

/// A response whose body fails at once: the server aborts the connection, so the client never
/// gets a complete answer (like GitHub's load balancer resetting a connection).
fn dropped() -> Response {
    let body = futures_util::stream::once(async {
        Err::<Bytes, io::Error>(io::Error::new(
            io::ErrorKind::ConnectionReset,
            "connection dropped by POST /_mock/fail?mode=drop",
        ))
    });
    let mut response = Response::new(Body::from_stream(body));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}
