//! Prometheus metrics on the admin listener (`server.admin_listen`): the counters move by the
//! right amounts as requests are made, the histograms exist, and `/metrics` is never served on
//! the public listener.

use crate::common::*;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const RULES: &str = r#"
[[rules]]
path = "/echo/closed/**"
policy = "deny"

[[rules]]
path = "/echo/hidden/**"
policy = "deny"
hide = true
"#;

/// A gate with an admin listener.
async fn gate_with(opts: GateOptions, tls: bool) -> Harness {
    let opts = GateOptions {
        admin: true,
        ..opts
    };
    match tls {
        true => Harness::start_tls(opts, "").await,
        false => Harness::start(opts).await,
    }
}

async fn gate() -> Harness {
    gate_with(
        GateOptions {
            access_extra: RULES.into(),
            ..GateOptions::default()
        },
        false,
    )
    .await
}

async fn scrape(g: &Harness) -> BTreeMap<String, f64> {
    scrape::scrape(g.admin.as_deref().unwrap()).await
}

fn requests(decision: &str) -> String {
    format!("gatehouse_requests_total{{decision=\"{decision}\",route=\"default\"}}")
}

fn logins(result: &str) -> String {
    format!("gatehouse_logins_total{{result=\"{result}\"}}")
}

/// Counters are updated when a request is logged, just after its response is sent: poll until
/// every `(series, delta)` has moved by exactly that much since `before` (or time runs out).
async fn expect_deltas(g: &Harness, before: &BTreeMap<String, f64>, deltas: &[(String, f64)]) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let now = scrape(g).await;
        let moved = |series: &str| {
            now.get(series).copied().unwrap_or(f64::NAN)
                - before.get(series).copied().unwrap_or(0.0)
        };
        let wrong: Vec<String> = deltas
            .iter()
            .filter(|(series, delta)| moved(series) != *delta)
            .map(|(series, delta)| format!("{series}: moved {} (want {delta})", moved(series)))
            .collect();
        if wrong.is_empty() {
            return;
        }
        if Instant::now() > deadline {
            panic!("metrics did not move as expected:\n{}", wrong.join("\n"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_move_with_requests_and_histograms_exist() {
    let g = gate().await;
    // The readiness probes' `/ping`s are counted just after their responses: let them settle.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let start = scrape(&g).await;
    // Every series exists from the start, at zero where nothing happened yet.
    for decision in [
        "allowed",
        "public",
        "redirected",
        "unauthorized",
        "forbidden",
        "hidden",
        "bad_request",
        "error",
    ] {
        assert_eq!(start.get(&requests(decision)), Some(&0.0), "{decision}");
    }
    assert_eq!(start.get(&logins("succeeded")), Some(&0.0));
    for histogram in [
        "gatehouse_github_request_duration_seconds",
        "gatehouse_upstream_duration_seconds",
    ] {
        assert!(
            start.contains_key(&format!("{histogram}_count")),
            "{histogram}"
        );
        assert!(
            start.contains_key(&format!("{histogram}_sum")),
            "{histogram}"
        );
        assert!(
            start.contains_key(&format!("{histogram}_bucket{{le=\"+Inf\"}}")),
            "{histogram}"
        );
    }
    assert!(start.contains_key("gatehouse_github_errors_total{kind=\"unreachable\"}"));
    // The cookie store cannot count sessions: the gauge is absent rather than a false 0.
    assert!(!start
        .keys()
        .any(|k| k.starts_with("gatehouse_sessions_active")));

    // A sign-in: one start, one success, GitHub asked (at least /user and /user/emails).
    let client = browser();
    let done = g.sign_in(&client, "octocat", "/echo").await;
    assert_eq!(done.status(), 302);
    let after_login = scrape(&g).await;
    expect_deltas(
        &g,
        &start,
        &[
            (logins("started"), 1.0),
            (logins("succeeded"), 1.0),
            (logins("denied"), 0.0),
            (requests("endpoint"), 2.0),
        ],
    )
    .await;
    let github_calls = after_login["gatehouse_github_request_duration_seconds_count"]
        - start["gatehouse_github_request_duration_seconds_count"];
    assert!(github_calls >= 2.0, "GitHub calls observed: {github_calls}");

    // Then: 3 allowed, 2 × 401, 1 × 302 to sign in, 2 × 403, 1 × 404, 1 × 400.
    let before = scrape(&g).await;
    for _ in 0..3 {
        let (status, _) = echo(&client, g.url("/echo/a"), &[]).await;
        assert_eq!(status, 200);
    }
    let anonymous = plain_client();
    for _ in 0..2 {
        let (status, _) = echo(&anonymous, g.url("/echo/a"), &[]).await;
        assert_eq!(status, 401);
    }
    assert_eq!(navigate(&anonymous, g.url("/echo/a")).await.status(), 302);
    for who in [&client, &anonymous] {
        let (status, _) = echo(who, g.url("/echo/closed/x"), &[]).await;
        assert_eq!(status, 403);
    }
    let (status, _) = echo(&client, g.url("/echo/hidden/x"), &[]).await;
    assert_eq!(status, 404);
    let (status, _) = echo(&client, g.url("/echo/a%2Fb"), &[]).await;
    assert_eq!(status, 400);
    expect_deltas(
        &g,
        &before,
        &[
            (requests("allowed"), 3.0),
            (requests("unauthorized"), 2.0),
            (requests("redirected"), 1.0),
            (requests("forbidden"), 2.0),
            (requests("hidden"), 1.0),
            (requests("bad_request"), 1.0),
            (requests("public"), 0.0),
            (requests("error"), 0.0),
            (requests("endpoint"), 0.0),
            ("gatehouse_upstream_duration_seconds_count".into(), 3.0),
            (logins("started"), 0.0),
        ],
    )
    .await;
    let now = scrape(&g).await;
    let upstream_sum = now["gatehouse_upstream_duration_seconds_sum"]
        - before["gatehouse_upstream_duration_seconds_sum"];
    assert!(upstream_sum > 0.0 && upstream_sum < 30.0, "{upstream_sum}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_only_on_the_admin_listener() {
    let g = gate().await;
    // On the public listener `/metrics` is just a path of the app, behind the gate.
    let (status, _) = echo(&plain_client(), g.url("/metrics"), &[]).await;
    assert_eq!(status, 401);
    let client = browser();
    g.sign_in(&client, "octocat", "/").await;
    let body = get_text(&client, g.url("/metrics")).await;
    assert!(!body.contains("gatehouse_requests_total"), "{body}");
    // The admin listener serves nothing else.
    let other = plain_client()
        .get(format!("{}/", g.admin.as_deref().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 404);
    let post = plain_client()
        .post(format!("{}/metrics", g.admin.as_deref().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 405);
    assert!(
        g.log().contains("/metrics"),
        "the admin address is logged at start"
    );
}

#[test]
fn admin_listen_is_checked() {
    let config = |admin: &str| {
        format!(
            r#"
[server]
listen = "127.0.0.1:4180"
admin_listen = "{admin}"
[github]
client_id = "x"
client_secret = "y"
[session]
secrets = ["{key}"]
[access]
allow_any_github_user = true
"#,
            key = b64(&KEY_A)
        )
    };
    let load = |text: &str| gatehouse::config::load_str(text, "test", &|_| None);
    let ok = load(&config("127.0.0.1:9180")).unwrap();
    assert_eq!(ok.admin_listen, Some("127.0.0.1:9180".parse().unwrap()));
    for bad in ["localhost", "127.0.0.1:4180", "0.0.0.0:4180"] {
        let e = load(&config(bad)).unwrap_err().to_string();
        assert!(e.contains("server.admin_listen"), "{bad}: {e}");
    }
    let none =
        load(&config("127.0.0.1:9180").replace("admin_listen = \"127.0.0.1:9180\"\n", "")).unwrap();
    assert_eq!(none.admin_listen, None);
}

fn errors(cause: &str) -> String {
    format!("gatehouse_errors_total{{cause=\"{cause}\"}}")
}

fn reloads(result: &str) -> String {
    format!("gatehouse_reloads_total{{result=\"{result}\"}}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_see_the_build_readiness_and_reloads() {
    let g = gate().await;
    let start = scrape(&g).await;
    let build = format!(
        "gatehouse_build_info{{version=\"{}\"}}",
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(start.get(&build), Some(&1.0), "{start:?}");
    assert_eq!(start.get("gatehouse_ready"), Some(&1.0));
    // Every cause and result exists from the start, so alerts see 0 rather than nothing.
    for series in [
        errors("store"),
        errors("github"),
        errors("membership"),
        errors("upstream"),
        errors("misconfigured"),
        errors("other"),
        reloads("applied"),
        reloads("refused"),
        "gatehouse_store_errors_total".into(),
        "gatehouse_refresh_token_reuse_total".into(),
    ] {
        assert_eq!(start.get(&series), Some(&0.0), "{series}");
    }
    // Without TLS there is no certificate to watch.
    assert!(!start
        .keys()
        .any(|k| k.starts_with("gatehouse_tls_certificate_expiry")));

    let config = g.dir.path().join("gatehouse.toml");
    let good = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{good}\n# reloaded\n")).unwrap();
    signal(&g.child, libc::SIGHUP);
    expect_deltas(
        &g,
        &start,
        &[(reloads("applied"), 1.0), (reloads("refused"), 0.0)],
    )
    .await;
    std::fs::write(&config, "[server\nlisten = ").unwrap();
    signal(&g.child, libc::SIGHUP);
    expect_deltas(
        &g,
        &start,
        &[(reloads("applied"), 1.0), (reloads("refused"), 1.0)],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gates_own_errors_are_counted_by_cause() {
    // An upstream nobody listens on: a public path answers 502, counted as the upstream's.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let nowhere = closed.local_addr().unwrap();
    drop(closed);
    let g = gate_with(
        GateOptions {
            upstream: Some(nowhere),
            access_extra: "[[rules]]\npath = \"/open/**\"\npolicy = \"public\"\n".into(),
            ..GateOptions::default()
        },
        false,
    )
    .await;
    let before = scrape(&g).await;
    let r = plain_client().get(g.url("/open/x")).send().await.unwrap();
    assert_eq!(r.status(), 502);
    expect_deltas(
        &g,
        &before,
        &[
            (errors("upstream"), 1.0),
            (errors("store"), 0.0),
            // The decision was made (public) before the upstream failed.
            (requests("public"), 1.0),
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_outage_shows_as_store_errors_and_not_ready() {
    if !redis::available("a_store_outage_shows_as_store_errors_and_not_ready") {
        return;
    }
    let mut server = redis::RedisServer::start();
    let g = gate_with(
        GateOptions {
            session_extra: server.session_config("redis"),
            ..GateOptions::default()
        },
        false,
    )
    .await;
    let cookie = redis::signed_in(&g, "octocat").await;
    let before = scrape(&g).await;
    assert_eq!(before.get("gatehouse_ready"), Some(&1.0));
    server.stop();
    assert_eq!(redis::status_with(&g.url("/echo"), &cookie).await, 503);
    let during = scrape(&g).await;
    assert_eq!(during.get("gatehouse_ready"), Some(&0.0), "{during:?}");
    assert!(
        during["gatehouse_store_errors_total"] > before["gatehouse_store_errors_total"],
        "store errors did not move"
    );
    assert!(during[&errors("store")] >= before[&errors("store")] + 1.0);
    // Back without a restart of the gate (the records went with the killed Redis).
    server.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    while scrape(&g).await.get("gatehouse_ready") != Some(&1.0) {
        assert!(
            Instant::now() < deadline,
            "still not ready after Redis came back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_served_certificates_expiry_is_a_metric() {
    let g = gate_with(GateOptions::default(), true).await;
    let pem = g.tls_cert_pem.clone().unwrap();
    let der = rustls::pki_types::pem::PemObject::from_pem_slice(pem.as_bytes())
        .map(|c: rustls::pki_types::CertificateDer<'static>| c)
        .unwrap();
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    let want = cert.validity().not_after.timestamp() as f64;
    let series = format!(
        "gatehouse_tls_certificate_expiry_timestamp_seconds{{listener=\"{}\"}}",
        g.gate_addr
    );
    assert_eq!(scrape(&g).await.get(&series), Some(&want));
}
