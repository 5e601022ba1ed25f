//! Several apps behind one gate: `[[routes]]` by host and path prefix, each with its own rules,
//! allow-lists and identity-assertion audience.

use crate::common::*;
use base64::Engine;
use serde_json::Value;
use std::net::SocketAddr;

/// An app that says which it is and what it received.
async fn named_app(name: &'static str) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().fallback(move |req: axum::extract::Request| async move {
        let header = |n: &str| {
            req.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        axum::Json(serde_json::json!({
            "app": name,
            "path": req.uri().path(),
            "user": header("x-forwarded-user"),
            "assertion": header("x-gatehouse-jwt-assertion"),
        }))
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

async fn get(client: &reqwest::Client, url: String, host: Option<&str>) -> (u16, Value) {
    let mut req = client.get(url).header("accept", "application/json");
    if let Some(host) = host {
        req = req.header("host", host);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn audience(assertion: &Value) -> String {
    let payload = assertion.as_str().unwrap().split('.').nth(1).unwrap();
    let json: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    json["aud"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_by_host_and_prefix_with_their_own_rules() {
    let grafana = named_app("grafana").await;
    let grafana_api = named_app("grafana-api").await;
    let wiki = named_app("wiki").await;
    let admin = format!("127.0.0.1:{}", free_port());
    let h = Harness::start_with_server(
        GateOptions {
            access_extra: format!(
                r#"
admin_users = ["octocat"]

[[routes]]
name = "grafana"
path_prefix = "/grafana"
upstream = "http://{grafana}"
[[routes.rules]]
path = "/grafana/admin/**"
allow = ["role:admin"]

[[routes]]
path_prefix = "/grafana/api"
upstream = "http://{grafana_api}"

[[routes]]
name = "wiki"
host = "wiki.example.test"
upstream = "http://{wiki}"
allowed_users = ["monalisa"]
[[routes.rules]]
path = "/public/**"
policy = "public"
"#
            ),
            ..GateOptions::default()
        },
        &format!("admin_listen = \"{admin}\""),
    )
    .await;
    let octo = browser();
    h.sign_in(&octo, "octocat", "/").await;
    let mona = browser();
    h.sign_in(&mona, "monalisa", "/").await;

    // Longest prefix wins; the rest goes to [upstream].
    let (status, seen) = get(&octo, h.url("/grafana/d/1"), None).await;
    assert_eq!(
        (status, seen["app"].as_str()),
        (200, Some("grafana")),
        "{seen}"
    );
    assert_eq!(seen["user"], "octocat");
    assert_eq!(audience(&seen["assertion"]), "grafana");
    let (_, seen) = get(&octo, h.url("/grafana/api/health"), None).await;
    assert_eq!(seen["app"], "grafana-api");
    assert_eq!(audience(&seen["assertion"]), "/grafana/api");
    let (_, seen) = get(&octo, h.url("/grafanax"), None).await;
    assert!(
        seen["app"].is_null(),
        "the demo app behind [upstream]: {seen}"
    );

    // The route's own rule.
    assert_eq!(get(&octo, h.url("/grafana/admin/users"), None).await.0, 200);
    assert_eq!(get(&mona, h.url("/grafana/admin/users"), None).await.0, 403);

    // By host, with the route's own allow-list: monalisa yes, octocat no; its public path.
    let (status, seen) = get(&mona, h.url("/page"), Some("wiki.example.test")).await;
    assert_eq!(
        (status, seen["app"].as_str()),
        (200, Some("wiki")),
        "{seen}"
    );
    assert_eq!(
        get(&octo, h.url("/page"), Some("wiki.example.test"))
            .await
            .0,
        403
    );
    let (status, seen) = get(
        &plain_client(),
        h.url("/public/x"),
        Some("Wiki.Example.Test:443"),
    )
    .await;
    assert_eq!(
        (status, seen["app"].as_str()),
        (200, Some("wiki")),
        "{seen}"
    );
    assert!(seen["user"].is_null());

    // Metrics count by route name.
    let metrics = plain_client()
        .get(format!("http://{admin}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        r#"gatehouse_requests_total{decision="allowed",route="grafana"} 2"#,
        r#"gatehouse_requests_total{decision="forbidden",route="grafana"} 1"#,
        r#"gatehouse_requests_total{decision="public",route="wiki"} 1"#,
        r#"gatehouse_requests_total{decision="forbidden",route="wiki"} 1"#,
    ] {
        assert!(metrics.contains(line), "missing {line} in\n{metrics}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_upstream_unrouted_requests_get_404() {
    let app = named_app("only").await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gatehouse.toml");
    std::fs::write(
        &config,
        format!(
            "[github]\nclient_id = \"x\"\nclient_secret = \"y\"\n[session]\nsecrets = [\"{}\"]\n[access]\nallowed_users = [\"octocat\"]\n[[routes]]\npath_prefix = \"/app\"\nupstream = \"http://{app}\"\n",
            b64(&KEY_A)
        ),
    )
    .unwrap();
    let out = std::process::Command::new(binary())
        .args(["check-config", "--config"])
        .arg(&config)
        .args(["--explain", "--user", "octocat", "--path", "/elsewhere"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("404"), "{text}");
    let out = std::process::Command::new(binary())
        .args(["check-config", "--config"])
        .arg(&config)
        .args(["--explain", "--user", "octocat", "--path", "/app/x"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("route:    /app") && text.contains("decision: allow"),
        "{text}"
    );
}

/// An https app with a self-signed certificate: answers every request `200 secure`.
async fn tls_app(cert_pem: &str, key_pem: &str) -> SocketAddr {
    use rustls::pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    gatehouse::install_crypto_provider();
    let certs = vec![CertificateDer::from_pem_slice(cert_pem.as_bytes()).unwrap()];
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = vec![0u8; 16 * 1024];
                let _ = tls.read(&mut buf).await;
                let _ = tls
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\nconnection: close\r\n\r\nsecure",
                    )
                    .await;
                let _ = tls.shutdown().await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_upstreams_are_verified_with_the_routes_ca_file() {
    let (cert, key) = self_signed_cert();
    let app = tls_app(&cert, &key).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &cert).unwrap();
    let h = Harness::start(GateOptions {
        access_extra: format!(
            r#"
[[routes]]
path_prefix = "/trusted"
upstream = "https://localhost:{port}"
ca_file = "{ca}"

[[routes]]
path_prefix = "/untrusted"
upstream = "https://localhost:{port}"
"#,
            port = app.port(),
            ca = ca.display()
        ),
        ..GateOptions::default()
    })
    .await;
    let client = browser();
    h.sign_in(&client, "octocat", "/").await;
    let r = client.get(h.url("/trusted/x")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "secure");
    // Not signed by a CA the gate trusts: never proxied.
    let r = client
        .get(h.url("/untrusted/x"))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 502);
}
