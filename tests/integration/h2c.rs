//! HTTP/2 without TLS (h2c, prior knowledge): `[server] h2c = true` serves it beside HTTP/1.1
//! on the same port, with streaming bodies; off, such a client is refused and the log says why.
//! curl is the real client (`--http2-prior-knowledge`).

use crate::common::*;
use futures_util::StreamExt;
use std::process::Command;
use std::time::{Duration, Instant};

/// `curl` on `url` with `args`: (exit code, `%{http_code} %{http_version}`).
fn curl(url: &str, args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new("curl")
        .args([
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{http_version}",
        ])
        .args(args)
        .arg(url)
        .output()
        .expect("run curl");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

const WARNING: &str = "set `[server] h2c = true` to accept it";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_off_refuses_prior_knowledge_with_one_clear_log_line() {
    let h = Harness::start(GateOptions::default()).await;
    let (code, _) = curl(&h.url("/ping"), &["--http2-prior-knowledge"]);
    assert_ne!(code, Some(0), "an HTTP/2 client must not be served");
    // HTTP/1.1 is unaffected.
    assert_eq!(curl(&h.url("/ping"), &["--http1.1"]).1, "200 1.1");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !h.log().contains(WARNING) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = h.log();
    assert_eq!(log.matches(WARNING).count(), 1, "{log}");
    assert!(log.contains("HTTP/2 without TLS"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_on_serves_http2_and_http1_on_one_port_with_streaming_bodies() {
    let mut h = Harness::start(GateOptions::default()).await;
    h.restart_with(|config| config.replacen("[server]\n", "[server]\nh2c = true\n", 1))
        .await;
    assert_eq!(
        curl(&h.url("/ping"), &["--http2-prior-knowledge"]).1,
        "200 2"
    );
    assert_eq!(curl(&h.url("/ping"), &["--http1.1"]).1, "200 1.1");
    let cookie = format!("_gatehouse={}", mint(KEY_A, &claims_for("octocat", 583231)));
    let (code, seen) = curl(
        &h.url("/echo"),
        &[
            "--http2-prior-knowledge",
            "-H",
            &format!("cookie: {cookie}"),
        ],
    );
    assert_eq!((code, seen.as_str()), (Some(0), "200 2"));
    // Signed out over h2c: the same answers as over HTTP/1.1.
    assert_eq!(
        curl(
            &h.url("/echo"),
            &["--http2-prior-knowledge", "-H", "accept: application/json"]
        )
        .1,
        "401 2"
    );

    // A streaming request over HTTP/2: the body is sent piece by piece, with pauses (as a
    // gRPC client stream is), and reaches the app whole; a streamed answer arrives in pieces.
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    const PIECES: usize = 5;
    let body = futures_util::stream::iter(0..PIECES).then(|i| async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        Ok::<_, std::io::Error>(vec![i as u8; 1000])
    });
    let r = client
        .post(h.url("/upload"))
        .header("cookie", &cookie)
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await
        .unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(r.status(), 200, "{}", h.log());
    let got: serde_json::Value = r.json().await.unwrap();
    assert_eq!(got["bytes"], PIECES * 1000);

    let size = 8 * 1024 * 1024;
    let r = client
        .get(h.url(&format!("/download?bytes={size}")))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(r.status(), 200);
    let mut stream = r.bytes_stream();
    let (mut offset, mut pieces) = (0u64, 0);
    while let Some(piece) = stream.next().await {
        for b in piece.unwrap() {
            assert_eq!(b, (offset % 251) as u8, "byte {offset}");
            offset += 1;
        }
        pieces += 1;
    }
    assert_eq!(offset as usize, size);
    assert!(pieces > 1, "the answer was not streamed");
}
