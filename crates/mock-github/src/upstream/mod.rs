//! The demo upstream: the app Gatehouse protects in `gatehouse demo` and in the tests.
//! It has no login of its own and simply shows (or echoes) what the gate sent it.

mod echo;
mod page;
mod sse;
mod transfer;

use axum::extract::DefaultBodyLimit;
use axum::routing::{any, get, post};
use axum::Router;

/// Serve the demo app on an already-bound listener until the future is dropped.
pub async fn serve_demo_upstream(listener: tokio::net::TcpListener) -> std::io::Result<()> {
    axum::serve(listener, router()).await
}

fn router() -> Router {
    Router::new()
        .route("/echo", any(echo::echo))
        .route("/echo/{*rest}", any(echo::echo))
        .route("/upload", post(transfer::upload).put(transfer::upload))
        .route("/download", get(transfer::download))
        .route("/sse", get(sse::ticks))
        .fallback(page::home)
        // Uploads are streamed and hashed, never buffered, so no size limit applies.
        .layer(DefaultBodyLimit::disable())
}
