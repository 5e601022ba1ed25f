//! TLS termination: the listener serves HTTPS with a certificate made in the test, speaks
//! HTTP/2 to clients that offer it, sends `Strict-Transport-Security` on every response, and a
//! plain-http listener redirects to the https `public_url`.

use crate::common::*;
use std::time::{Duration, Instant};

const HSTS: &str = "max-age=31536000; includeSubDomains";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_http2_hsts_and_a_redirect_listener() {
    let redirect_port = free_port();
    let h = Harness::start_tls(
        GateOptions::default(),
        &format!("hsts = \"{HSTS}\"\nhttp_redirect_listen = \"127.0.0.1:{redirect_port}\""),
    )
    .await;
    assert!(h.gate.starts_with("https://"), "{}", h.gate);
    let client = h.client_builder().build().unwrap();

    // Gatehouse's own answer, over HTTP/2.
    let r = client.get(h.url("/ping")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.version(), reqwest::Version::HTTP_2, "ALPN should pick h2");
    assert_eq!(r.headers()["strict-transport-security"], HSTS);

    // A refusal written by Gatehouse (401 JSON) carries it too.
    let r = client
        .get(h.url("/echo"))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["strict-transport-security"], HSTS);

    // A proxied response, over HTTP/2, and the app hears https.
    let cookie = format!("_gatehouse={}", mint(KEY_A, &claims_for("octocat", 583231)));
    let r = client
        .get(h.url("/echo"))
        .header("cookie", &cookie)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", h.log());
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(r.headers()["strict-transport-security"], HSTS);
    let echo: serde_json::Value = r.json().await.unwrap();
    assert_eq!(upstream_header(&echo, "x-forwarded-proto"), Some("https"));
    assert_eq!(upstream_header(&echo, "x-forwarded-user"), Some("octocat"));

    // Server-sent events stream over HTTP/2 too: the first event arrives long before the end.
    let started = Instant::now();
    let mut r = client
        .get(h.url("/sse"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    let first = r.chunk().await.unwrap().unwrap();
    let first_at = started.elapsed();
    assert!(String::from_utf8_lossy(&first).contains("tick 1"));
    while r.chunk().await.unwrap().is_some() {}
    let end_at = started.elapsed();
    assert!(
        first_at + Duration::from_millis(250) < end_at,
        "first event at {first_at:?}, stream ended at {end_at:?}: buffered"
    );

    // HTTP/1.1 clients are still served.
    let h1 = h.client_builder().http1_only().build().unwrap();
    let r = h1.get(h.url("/ping")).send().await.unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_11);
    assert_eq!(r.headers()["strict-transport-security"], HSTS);

    // Plain http on the TLS port is refused (no answer in clear text).
    let plain = plain_client();
    let clear = plain
        .get(format!("http://{}/ping", h.gate_addr))
        .timeout(Duration::from_secs(3))
        .send()
        .await;
    assert!(clear.is_err() || clear.unwrap().status() != 200);

    // The redirect listener: 308 to the https public_url, same path and query, whatever Host.
    let r = plain
        .post(format!(
            "http://127.0.0.1:{redirect_port}/some/path?q=1&x=%2F"
        ))
        .header("host", "evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 308);
    assert_eq!(
        location(&r),
        format!("https://{}/some/path?q=1&x=%2F", h.gate_addr)
    );
    assert!(r.headers().get("strict-transport-security").is_none());
}

#[test]
fn check_config_names_tls_problems() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, _key) = self_signed_cert();
    let (_, other_key) = self_signed_cert();
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("other-key.pem");
    std::fs::write(&cert_path, cert).unwrap();
    std::fs::write(&key_path, other_key).unwrap();
    let config = dir.path().join("gatehouse.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[server]
public_url = "http://app.example.com"
tls_cert = {cert:?}
tls_key = {key:?}
hsts = "includeSubDomains"
[github]
client_id = "x"
client_secret = "y"
[session]
secrets = ["{secret}"]
[access]
allowed_users = ["octocat"]
"#,
            cert = cert_path.display().to_string(),
            key = key_path.display().to_string(),
            secret = b64(&KEY_A),
        ),
    )
    .unwrap();
    let out = std::process::Command::new(binary())
        .args(["check-config", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    for needle in [
        "server.public_url",
        "https://app.example.com",
        "server.tls_key",
        "cannot serve",
        "server.hsts",
        "max-age",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in:\n{err}");
    }
}
