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

/// A gRPC-style upstream on Node's own `http2` (cleartext, prior knowledge): for any request,
/// `content-type: application/grpc`, three length-prefixed messages 150 ms apart (the first
/// naming the user the gate sent), then the trailers `grpc-status: 0`.
const GRPC_STYLE_SERVER: &str = r#"
const http2 = require('http2');
const server = http2.createServer();
server.on('stream', (stream, headers) => {
  const user = headers['x-forwarded-user'] || '-';
  const te = headers['te'] || '-';
  stream.respond({':status': 200, 'content-type': 'application/grpc'}, {waitForTrailers: true});
  stream.on('wantTrailers', () => stream.sendTrailers({'grpc-status': '0', 'grpc-message': 'ok'}));
  const msg = (text) => { const b = Buffer.from(text); const f = Buffer.alloc(5); f.writeUInt32BE(b.length, 1); return Buffer.concat([f, b]); };
  let n = 0;
  const next = () => {
    n += 1;
    stream.write(msg(n === 1 ? `user=${user} te=${te}` : `message ${n}`));
    if (n < 3) setTimeout(next, 150); else stream.end();
  };
  stream.on('data', () => {});
  next();
});
server.listen(0, '127.0.0.1', () => console.log(server.address().port));
"#;

/// Stops the Node upstream when the test ends.
struct Node(std::process::Child);

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `node` running [`GRPC_STYLE_SERVER`] and its port; `None` (skipped, said why) without node
/// outside CI.
fn grpc_style_upstream() -> Option<(Node, u16)> {
    use std::io::BufRead;
    let spawned = Command::new("node")
        .args(["-e", GRPC_STYLE_SERVER])
        .stdout(std::process::Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) if std::env::var("CI").is_err() => {
            println!("note: node not found ({e}); skipping the h2c upstream test");
            return None;
        }
        Err(e) => panic!("node: {e}; .ci/run installs it"),
    };
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line.trim().parse().expect("the upstream's port");
    Some((Node(child), port))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_to_an_upstream_that_asks_for_it_streams_grpc_style_with_trailers() {
    let Some((_node, port)) = grpc_style_upstream() else {
        return;
    };
    let upstream: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    let mut h = Harness::start(GateOptions {
        upstream: Some(upstream),
        ..Default::default()
    })
    .await;
    h.restart_with(|config| {
        config
            .replacen("[server]\n", "[server]\nh2c = true\n", 1)
            .replacen("[upstream]\n", "[upstream]\nh2c = true\n", 1)
    })
    .await;
    let cookie = format!("_gatehouse={}", mint(KEY_A, &claims_for("octocat", 583231)));

    // curl, as a gRPC client would call: HTTP/2 prior knowledge, `te: trailers`, a framed body.
    let dir = tempfile::tempdir().unwrap();
    let request = dir.path().join("request.bin");
    std::fs::write(&request, b"\0\0\0\0\x02hi").unwrap();
    let out = Command::new("curl")
        .args([
            "-sS",
            "--http2-prior-knowledge",
            "-D",
            "-",
            "-o",
            "/dev/null",
        ])
        .args(["-H", "content-type: application/grpc", "-H", "te: trailers"])
        .args(["-H", &format!("cookie: {cookie}")])
        .args(["--data-binary", &format!("@{}", request.display())])
        .arg(h.url("/pkg.Service/Stream"))
        .output()
        .expect("run curl");
    let shown = String::from_utf8_lossy(&out.stdout).to_ascii_lowercase();
    assert!(shown.starts_with("http/2 200"), "{shown}\n{}", h.log());
    assert!(shown.contains("content-type: application/grpc"), "{shown}");
    assert!(
        shown.contains("grpc-status: 0"),
        "the trailers reach the client: {shown}"
    );

    // The messages arrive as the upstream sends them, not all at the end.
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let started = Instant::now();
    let r = client
        .post(h.url("/pkg.Service/Stream"))
        .header("cookie", &cookie)
        .header("content-type", "application/grpc")
        .body(&b"\0\0\0\0\x02hi"[..])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut stream = r.bytes_stream();
    let mut body = Vec::new();
    let mut first_at = None;
    while let Some(piece) = stream.next().await {
        first_at.get_or_insert_with(|| started.elapsed());
        body.extend_from_slice(&piece.unwrap());
    }
    let all_at = started.elapsed();
    let text = String::from_utf8_lossy(&body);
    assert!(
        text.contains("user=octocat"),
        "identity reached the app: {text}"
    );
    assert!(text.contains("message 3"), "{text}");
    let first_at = first_at.unwrap();
    assert!(
        all_at.saturating_sub(first_at) >= Duration::from_millis(250),
        "not streamed: first piece at {first_at:?}, all at {all_at:?}"
    );
}
