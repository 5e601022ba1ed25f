//! The gate keeps its upstream connections for reuse even when more requests are in flight than
//! Pingora's default pool of 128 holds: a second wave of as many concurrent requests reuses the
//! first wave's connections instead of opening new ones (bench/README.md, "The upstream pool").
//!
//! This file is its own test binary, not a module of `tests/integration/`: it holds about 1,200
//! loopback connections (and as many ephemeral ports) at once, while the integration tests pick
//! free ports by binding port 0 and starting a gate on it a moment later; run in one binary with
//! them, a `rotation::` replica once found its port taken ("Address already in use"). It shares
//! the harness only.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail by panicking"
)]

#[path = "integration/common/mod.rs"]
mod common;

use common::*;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Requests in flight at once in each wave: well over Pingora's default pool of 128 (which in
/// practice kept about 240 of 600, with its per-thread slack). This process and the gate (which
/// inherits its limit) each hold 1,200 sockets at the peak, so the test asks for an open-file
/// limit above 2,400 before it starts.
const WAVE: usize = 600;

/// What the upstream has seen.
#[derive(Default)]
struct Seen {
    connections: AtomicUsize,
    requests: AtomicUsize,
}

/// An upstream that answers each request only once `WAVE` requests of its wave have arrived,
/// so the gate must hold `WAVE` upstream connections at the same moment; connections stay open
/// (keep-alive) until the gate closes them.
async fn holding_upstream() -> (SocketAddr, Arc<Seen>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Seen::default());
    let counts = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            counts.connections.fetch_add(1, Ordering::SeqCst);
            let counts = counts.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    // One body-less request: read up to the end of its header.
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match conn.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    buf.clear();
                    let arrived = counts.requests.fetch_add(1, Ordering::SeqCst) + 1;
                    let wave_full = arrived.div_ceil(WAVE) * WAVE;
                    let deadline = Instant::now() + Duration::from_secs(10);
                    while counts.requests.load(Ordering::SeqCst) < wave_full
                        && Instant::now() < deadline
                    {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    let reply = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                    if conn.write_all(reply).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, seen)
}

async fn wave(client: &reqwest::Client, url: &str, cookie: &str) {
    let requests = (0..WAVE).map(|_| {
        client
            .get(url)
            .header("accept", "application/json")
            .header("cookie", format!("_gatehouse={cookie}"))
            .send()
    });
    for r in futures_util::future::join_all(requests).await {
        let r = r.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.text().await.unwrap(), "ok");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_second_wave_of_concurrent_requests_reuses_the_first_waves_upstream_connections() {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    let open_files: usize = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse().ok())
        .unwrap_or(usize::MAX);
    assert!(
        open_files > 4 * WAVE,
        "this test needs an open-file limit above {} (it is {open_files}): raise it with ulimit -n",
        4 * WAVE
    );
    let (upstream, seen) = holding_upstream().await;
    let h = Harness::start(GateOptions {
        upstream: Some(upstream),
        ..Default::default()
    })
    .await;
    let cookie = session_of(&h, "OctoCat").await;
    let client = plain_client();
    let url = h.url("/app/pool");

    wave(&client, &url, &cookie).await;
    let after_first = seen.connections.load(Ordering::SeqCst);
    assert!(
        after_first >= WAVE,
        "the upstream held {WAVE} requests at once, so the gate needed {WAVE} connections; it opened {after_first}"
    );
    // Let the gate put the last connections back into its pool.
    tokio::time::sleep(Duration::from_millis(300)).await;

    wave(&client, &url, &cookie).await;
    let opened_again = seen.connections.load(Ordering::SeqCst) - after_first;
    // With Pingora's default pool of 128 the second wave opened 357 new connections.
    assert!(
        opened_again <= 10,
        "the second wave opened {opened_again} new upstream connections (first wave: {after_first}); \
         the gate did not keep the first wave's connections. Gate log:\n{}",
        h.log()
    );
}
