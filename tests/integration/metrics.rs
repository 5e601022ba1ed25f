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

struct Gate {
    h: Harness,
    admin: String,
}

async fn gate() -> Gate {
    let admin = format!("127.0.0.1:{}", free_port());
    let h = Harness::start_with_server(
        GateOptions {
            access_extra: RULES.into(),
            ..GateOptions::default()
        },
        &format!("admin_listen = \"{admin}\""),
    )
    .await;
    Gate {
        h,
        admin: format!("http://{admin}"),
    }
}

/// `series → value` of every sample line.
fn parse(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_string(), value.parse().ok()?))
        })
        .collect()
}

async fn scrape(g: &Gate) -> BTreeMap<String, f64> {
    let r = plain_client()
        .get(format!("{}/metrics", g.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let content_type = r.headers()["content-type"].to_str().unwrap().to_string();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    parse(&r.text().await.unwrap())
}

fn requests(decision: &str) -> String {
    format!("gatehouse_requests_total{{decision=\"{decision}\",route=\"default\"}}")
}

fn logins(result: &str) -> String {
    format!("gatehouse_logins_total{{result=\"{result}\"}}")
}

/// Counters are updated when a request is logged, just after its response is sent: poll until
/// every `(series, delta)` has moved by exactly that much since `before` (or time runs out).
async fn expect_deltas(g: &Gate, before: &BTreeMap<String, f64>, deltas: &[(String, f64)]) {
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
    let done = g.h.sign_in(&client, "octocat", "/echo").await;
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
        let (status, _) = echo(&client, g.h.url("/echo/a"), &[]).await;
        assert_eq!(status, 200);
    }
    let anonymous = plain_client();
    for _ in 0..2 {
        let (status, _) = echo(&anonymous, g.h.url("/echo/a"), &[]).await;
        assert_eq!(status, 401);
    }
    assert_eq!(navigate(&anonymous, g.h.url("/echo/a")).await.status(), 302);
    for who in [&client, &anonymous] {
        let (status, _) = echo(who, g.h.url("/echo/closed/x"), &[]).await;
        assert_eq!(status, 403);
    }
    let (status, _) = echo(&client, g.h.url("/echo/hidden/x"), &[]).await;
    assert_eq!(status, 404);
    let (status, _) = echo(&client, g.h.url("/echo/a%2Fb"), &[]).await;
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
    let (status, _) = echo(&plain_client(), g.h.url("/metrics"), &[]).await;
    assert_eq!(status, 401);
    let client = browser();
    g.h.sign_in(&client, "octocat", "/").await;
    let body = get_text(&client, g.h.url("/metrics")).await;
    assert!(!body.contains("gatehouse_requests_total"), "{body}");
    // The admin listener serves nothing else.
    let other = plain_client()
        .get(format!("{}/", g.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 404);
    let post = plain_client()
        .post(format!("{}/metrics", g.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 405);
    assert!(
        g.h.log().contains("/metrics"),
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
