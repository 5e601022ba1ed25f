//! Client budgets through the real binary: rate limits on sign-in and failed API keys (429 with
//! `Retry-After`), trusted proxies deciding whose address counts, 431 for oversized headers,
//! and the header read timeout for stalled clients.

use crate::common::*;

use base64::Engine;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// 6 a minute (one every 10 s), 3 at once.
const LIMITS: &str = "\n[limits]\nauth_per_minute = 6\nburst = 3\n";

async fn start(client: &reqwest::Client, h: &Harness, xff: Option<&str>) -> reqwest::Response {
    let mut req = client.get(h.url("/oauth2/start?rd=/"));
    if let Some(xff) = xff {
        req = req.header("x-forwarded-for", xff);
    }
    req.send().await.unwrap()
}

fn retry_after(r: &reqwest::Response) -> u64 {
    r.headers()
        .get("retry-after")
        .expect("a Retry-After header")
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

fn session_cookie_header() -> String {
    format!("_gatehouse={}", mint(KEY_A, &claims_for("octocat", 583231)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_start_gets_429_with_retry_after_past_the_burst() {
    let h = Harness::start(GateOptions {
        access_extra: LIMITS.into(),
        ..GateOptions::default()
    })
    .await;
    let client = plain_client();
    for i in 0..3 {
        assert_eq!(start(&client, &h, None).await.status(), 302, "request {i}");
    }
    let r = start(&client, &h, None).await;
    assert_eq!(r.status(), 429);
    let wait = retry_after(&r);
    assert!((1..=10).contains(&wait), "Retry-After {wait}");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "rate_limited");
    assert!(body["message"].as_str().unwrap().contains("try again"));

    // Browsers get a page; the callback shares the budget.
    let r = navigate(&client, h.url("/oauth2/start?rd=/")).await;
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    assert!(r.text().await.unwrap().contains("Too many attempts"));
    let r = client
        .get(h.url("/oauth2/callback?code=x&state=y"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);

    // Other endpoints and proxied traffic are not limited.
    for _ in 0..5 {
        assert_eq!(
            client.get(h.url("/ping")).send().await.unwrap().status(),
            200
        );
        let (status, _) = echo(
            &client,
            h.url("/echo"),
            &[("cookie", &session_cookie_header())],
        )
        .await;
        assert_eq!(status, 200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trusted_proxy_forwarded_for_gives_each_client_its_own_budget() {
    let h = Harness::start_with_server(
        GateOptions {
            access_extra: LIMITS.into(),
            ..GateOptions::default()
        },
        r#"trusted_proxies = ["127.0.0.1/32"]"#,
    )
    .await;
    let client = plain_client();
    for who in ["203.0.113.1", "203.0.113.2"] {
        for i in 0..3 {
            let r = start(&client, &h, Some(who)).await;
            assert_eq!(r.status(), 302, "{who} request {i}");
        }
        let r = start(&client, &h, Some(who)).await;
        assert_eq!(r.status(), 429, "{who} past its burst");
    }
    // The right-most untrusted entry counts, not what its client claimed to its left.
    assert_eq!(
        start(&client, &h, Some("203.0.113.1, 203.0.113.3"))
            .await
            .status(),
        302
    );
    assert_eq!(
        start(&client, &h, Some("203.0.113.3, 203.0.113.1"))
            .await
            .status(),
        429
    );

    // The app sees the proxy's list with the proxy appended, and its -Proto/-Host.
    let (status, seen) = echo(
        &client,
        h.url("/echo"),
        &[
            ("cookie", &session_cookie_header()),
            ("x-forwarded-for", "203.0.113.9"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "app.example.com"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{seen}");
    assert_eq!(
        upstream_header(&seen, "x-forwarded-for"),
        Some("203.0.113.9, 127.0.0.1")
    );
    assert_eq!(upstream_header(&seen, "x-real-ip"), Some("203.0.113.9"));
    assert_eq!(upstream_header(&seen, "x-forwarded-proto"), Some("https"));
    assert_eq!(
        upstream_header(&seen, "x-forwarded-host"),
        Some("app.example.com")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_forwarded_for_neither_resets_the_budget_nor_reaches_the_app() {
    let h = Harness::start(GateOptions {
        access_extra: LIMITS.into(),
        ..GateOptions::default()
    })
    .await;
    let client = plain_client();
    for i in 0..3 {
        let forged = format!("198.51.100.{i}");
        assert_eq!(start(&client, &h, Some(&forged)).await.status(), 302);
    }
    let r = start(&client, &h, Some("198.51.100.77")).await;
    assert_eq!(
        r.status(),
        429,
        "a forged X-Forwarded-For must not reset the budget"
    );

    let (status, seen) = echo(
        &client,
        h.url("/echo"),
        &[
            ("cookie", &session_cookie_header()),
            ("x-forwarded-for", "203.0.113.9"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "evil.example"),
            ("x-real-ip", "203.0.113.9"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{seen}");
    assert_eq!(upstream_header(&seen, "x-forwarded-for"), Some("127.0.0.1"));
    assert_eq!(upstream_header(&seen, "x-real-ip"), Some("127.0.0.1"));
    assert_eq!(upstream_header(&seen, "x-forwarded-proto"), Some("http"));
    assert_ne!(
        upstream_header(&seen, "x-forwarded-host"),
        Some("evil.example")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_api_keys_get_429_and_then_even_the_right_key_waits() {
    let (key, hash) = gatehouse::tokens::api_keys::new_key();
    let toml = format!(
        r#"
[roles.deployer]

[[rules]]
path = "/echo/deploy/**"
allow = ["role:deployer"]

[limits]
api_key_failures_per_minute = 3

[[api_keys]]
name = "nightly"
hash = "{hash}"
roles = ["deployer"]
"#
    );
    let h = Harness::start(GateOptions {
        access_extra: toml,
        ..GateOptions::default()
    })
    .await;
    let basic = |pass: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("nightly:{pass}"))
        )
    };
    let client = plain_client();
    let get = |auth: String| {
        client
            .get(h.url("/echo/deploy/x"))
            .header("authorization", auth)
            .send()
    };
    // Successes never count.
    for _ in 0..5 {
        assert_eq!(get(basic(&key)).await.unwrap().status(), 200);
    }
    for i in 0..3 {
        assert_eq!(
            get(basic("gk_wrong")).await.unwrap().status(),
            401,
            "failure {i}"
        );
    }
    let r = get(basic("gk_wrong")).await.unwrap();
    assert_eq!(r.status(), 429);
    let wait = retry_after(&r);
    assert!((1..=20).contains(&wait), "Retry-After {wait}");
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["error"],
        "rate_limited"
    );
    // Locked out: the right key is not even checked, so a lucky guess cannot be recognised.
    let r = get(basic(&key)).await.unwrap();
    assert_eq!(r.status(), 429);
    assert!(retry_after(&r) <= wait);
    // Sessions from the same address are unaffected.
    let (status, _) = echo(
        &client,
        h.url("/echo"),
        &[("cookie", &session_cookie_header())],
    )
    .await;
    assert_eq!(status, 200);
    assert!(!h.log().contains(&key));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_headers_get_431() {
    let h = Harness::start(GateOptions::default()).await;
    let client = plain_client();
    let big = "a".repeat(64 * 1024);
    let r = client
        .get(h.url("/echo"))
        .header("x-big", &big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 431);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "headers_too_large");

    // A browser gets a page; a 20 KiB cookie is over the cookie budget on its own.
    let cookie = format!("junk={}", "c".repeat(20 * 1024));
    let r = client
        .get(h.url("/"))
        .header("accept", "text/html")
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 431);
    assert!(r.text().await.unwrap().contains("cookies"));

    // Gatehouse's own endpoints are covered too, and ordinary requests still pass.
    let r = client
        .get(h.url("/oauth2/start"))
        .header("x-big", &big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 431);
    let (status, _) = echo(
        &client,
        h.url("/echo"),
        &[
            ("cookie", &session_cookie_header()),
            ("x-medium", &"m".repeat(8 * 1024)),
        ],
    )
    .await;
    assert_eq!(status, 200);
}

/// Read until the server closes the connection; how long that took (or `None` past `limit`).
async fn closed_within(stream: &mut tokio::net::TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(
            limit.saturating_sub(started.elapsed()),
            stream.read(&mut buf),
        )
        .await
        {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => continue,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_request_header_is_dropped_after_client_timeout() {
    let h = Harness::start_with_server(GateOptions::default(), r#"client_timeout = "2s""#).await;

    // Half a request line, then nothing (Pingora alone would wait 60 s).
    let mut slow = tokio::net::TcpStream::connect(h.gate_addr).await.unwrap();
    slow.write_all(b"GET /pi").await.unwrap();
    let took = closed_within(&mut slow, Duration::from_secs(10))
        .await
        .expect("a stalled client is disconnected");
    assert!(
        took >= Duration::from_millis(1500),
        "closed too early: {took:?}"
    );
    assert!(took <= Duration::from_secs(5), "closed too late: {took:?}");

    // An idle keep-alive connection (after a full request) is closed too.
    let mut idle = tokio::net::TcpStream::connect(h.gate_addr).await.unwrap();
    idle.write_all(b"GET /ping HTTP/1.1\r\nHost: gate\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(5), idle.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    let took = closed_within(&mut idle, Duration::from_secs(10))
        .await
        .expect("an idle keep-alive connection is closed");
    assert!(took <= Duration::from_secs(5), "closed too late: {took:?}");

    // A prompt client is still served.
    assert_eq!(
        plain_client()
            .get(h.url("/ping"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}
