//! `GET /sse`: five `data: tick N` events 100 ms apart, to test that the gate does not
//! buffer streamed responses.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use futures_util::stream;

const TICKS: u32 = 5;
const INTERVAL: Duration = Duration::from_millis(100);

pub(super) async fn ticks() -> Response {
    // The first event goes out at once, the rest every INTERVAL.
    let events = stream::unfold(1_u32, |n| async move {
        if n > TICKS {
            return None;
        }
        if n > 1 {
            tokio::time::sleep(INTERVAL).await;
        }
        let event = Bytes::from(format!("data: tick {n}\n\n"));
        Some((Ok::<Bytes, std::io::Error>(event), n + 1))
    });
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(events),
    )
        .into_response()
}
