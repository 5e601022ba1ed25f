//! `/upload` and `/download`: big bodies streamed chunk by chunk, never held in memory,
//! so tests can prove the gate streams too.

use axum::body::{Body, Bytes};
use axum::extract::{Query, Request};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::{stream, StreamExt};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};

const CHUNK: u64 = 64 * 1024;
const MAX_DOWNLOAD: u64 = 1024 * 1024 * 1024;

/// `POST|PUT /upload`: `{"bytes": N, "sha256": "hex"}` of the body, hashed as it arrives.
pub(super) async fn upload(req: Request) -> Response {
    let mut body = req.into_body().into_data_stream();
    let mut hasher = Sha256::new();
    let mut bytes: u64 = 0;
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(chunk) => {
                bytes += chunk.len() as u64;
                hasher.update(&chunk);
            }
            Err(e) => {
                return (StatusCode::BAD_REQUEST, format!("body read failed: {e}\n"))
                    .into_response();
            }
        }
    }
    let sha256: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Json(json!({ "bytes": bytes, "sha256": sha256 })).into_response()
}

#[derive(Deserialize)]
pub(super) struct DownloadQuery {
    bytes: Option<u64>,
}

/// Byte `i` of every download, so clients can verify content without a reference copy.
pub(super) fn download_byte(i: u64) -> u8 {
    (i % 251) as u8
}

/// `GET /download?bytes=N`: N deterministic bytes (N capped at 1 GiB) in 64 KiB chunks.
pub(super) async fn download(Query(q): Query<DownloadQuery>) -> Response {
    let total = q.bytes.unwrap_or(0).min(MAX_DOWNLOAD);
    let chunks = stream::unfold(0_u64, move |offset| async move {
        if offset >= total {
            return None;
        }
        let end = (offset + CHUNK).min(total);
        let chunk: Vec<u8> = (offset..end).map(download_byte).collect();
        Some((Ok::<Bytes, std::io::Error>(Bytes::from(chunk)), end))
    });
    (
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::CONTENT_LENGTH, total.to_string()),
        ],
        Body::from_stream(chunks),
    )
        .into_response()
}
