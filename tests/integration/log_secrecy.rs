//! Secrets never reach the logs. The gate runs with `[log] format = "json"` at debug level; the
//! test signs in, browses, exchanges a code for tokens, refreshes, uses an API key, fails with a
//! wrong token and signs out, then greps everything the gate logged for every secret it used:
//! none may appear. It also checks the access-log lines (valid JSON with their fields) and the
//! audit events for sign-in and sign-out.

use crate::common::*;
use base64::Engine;
use serde_json::{json, Value};
use sha2::Digest;
use std::time::Duration;

const SPA: &str = "http://127.0.0.1:9/spa/callback";
const HMAC: [u8; 32] = [5; 32];
const VERIFIER: &str = "secrecy-test-pkce-verifier-0123456789-abcdefghijklmnop";
const WRONG_TOKEN: &str = "wrong-token-7f3a9c1e5b2d4f6a8c0e2b4d6f8a0c2e";

async fn get_as(h: &Harness, path: &str, authorization: &str) -> u16 {
    plain_client()
        .get(h.url(path))
        .header("authorization", authorization)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// The secrets of this test, by name.
#[derive(Default)]
struct Secrets(Vec<(String, String)>);

impl Secrets {
    fn add(&mut self, name: &str, value: impl Into<String>) {
        let value = value.into();
        assert!(
            value.len() >= 8,
            "{name} is too short to grep for: {value:?}"
        );
        self.0.push((name.to_string(), value));
    }

    /// Every secret, and for long ones their last 16 characters too (a log line that cut a
    /// token short would still leak its random part).
    fn assert_absent_from(&self, log: &str) {
        for (name, value) in &self.0 {
            let mut needles = vec![value.as_str()];
            if value.len() >= 24 {
                needles.push(&value[value.len() - 16..]);
            }
            for needle in needles {
                if let Some(line) = log.lines().find(|l| l.contains(needle)) {
                    panic!("the log holds {name} ({needle}):\n{line}");
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_in_any_log_line() {
    let (api_key, hash) = gatehouse::tokens::api_keys::new_key();
    let extra = format!(
        r#"
[[rules]]
path = "/echo/closed/**"
policy = "deny"

[tokens]
hmac_secret = "{hmac}"
client_redirect_uris = ["{SPA}"]

[[api_keys]]
name = "nightly"
hash = "{hash}"
roles = ["viewer"]

[log]
format = "json"
"#,
        hmac = b64(&HMAC),
    );
    let h = Harness::start(GateOptions {
        access_extra: extra,
        // Everything Gatehouse and Pingora log, not only what operators see by default.
        env: vec![("RUST_LOG", "debug".into())],
        ..GateOptions::default()
    })
    .await;
    let mut secrets = Secrets::default();
    secrets.add("the session key", b64(&KEY_A));
    secrets.add("the client secret", CLIENT_SECRET);
    secrets.add("the token signing secret", b64(&HMAC));
    secrets.add("the API key", api_key.clone());
    secrets.add("the PKCE verifier", VERIFIER);
    secrets.add("a wrong token", WRONG_TOKEN);

    // A browser signs in: the state, the code, the login cookie, the session cookie and the
    // GitHub token inside it are all secrets.
    let client = browser();
    let start = client
        .get(h.url("/oauth2/start"))
        .query(&[("rd", "/echo")])
        .send()
        .await
        .unwrap();
    assert_eq!(start.status(), 302);
    for cookie in set_cookies(&start) {
        let value = cookie.split(';').next().unwrap().split_once('=').unwrap().1;
        secrets.add("the login-state cookie", value);
    }
    let authorize = location(&start);
    secrets.add("the browser's state", query_of(&authorize)["state"].clone());
    let callback = consent(&client, &authorize, "octocat").await;
    secrets.add("the browser's code", query_of(&callback)["code"].clone());
    let done = client.get(&callback).send().await.unwrap();
    assert_eq!(done.status(), 302);
    let cookie = session_cookie(&done);
    let ght = claims_in(&cookie)
        .github_token
        .expect("a GitHub token in the session");
    secrets.add("the session cookie", cookie);
    secrets.add("the browser's GitHub token", ght);

    // Browsing with the cookie, and a refusal by rule.
    for path in ["/echo", "/echo/page?x=1", "/echo/closed/x"] {
        client.get(h.url(path)).send().await.unwrap();
    }

    // An SPA signs in with PKCE and exchanges its code for tokens, then refreshes them.
    let spa = browser();
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(VERIFIER.as_bytes()));
    let start = spa
        .get(h.url("/oauth2/start"))
        .query(&[
            ("client_redirect_uri", SPA),
            ("state", "spa-client-state-5d1c9e"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(start.status(), 302);
    secrets.add("the SPA's own state", "spa-client-state-5d1c9e");
    let authorize = location(&start);
    secrets.add(
        "the SPA sign-in's state",
        query_of(&authorize)["state"].clone(),
    );
    let callback = consent(&spa, &authorize, "monalisa").await;
    secrets.add(
        "the SPA sign-in's GitHub code",
        query_of(&callback)["code"].clone(),
    );
    let landed = location(&spa.get(&callback).send().await.unwrap());
    assert!(landed.starts_with(SPA), "{landed}");
    let code = query_of(&landed)["code"].clone();
    secrets.add("the one-time code", code.clone());
    let (status, pair) = post_json(
        &h,
        "/oauth2/token",
        json!({"code": code, "client_redirect_uri": SPA, "code_verifier": VERIFIER}),
    )
    .await;
    assert_eq!(status, 200, "{pair}");
    let access = pair["access_token"].as_str().unwrap().to_string();
    let refresh = pair["refresh_token"].as_str().unwrap().to_string();
    secrets.add("the access token", access.clone());
    secrets.add("the refresh token", refresh.clone());
    assert_eq!(get_as(&h, "/echo", &format!("Bearer {access}")).await, 200);
    let (status, pair) = post_json(&h, "/oauth2/refresh", json!({"refresh_token": refresh})).await;
    assert_eq!(status, 200, "{pair}");
    secrets.add(
        "the rotated access token",
        pair["access_token"].as_str().unwrap(),
    );
    secrets.add(
        "the rotated refresh token",
        pair["refresh_token"].as_str().unwrap(),
    );
    // The old refresh token again: reuse detection revokes the sign-in.
    let (status, _) = post_json(&h, "/oauth2/refresh", json!({"refresh_token": refresh})).await;
    assert_eq!(status, 401);

    // An API key, then wrong credentials.
    let basic = |pass: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("nightly:{pass}"))
        )
    };
    assert_eq!(get_as(&h, "/echo", &basic(&api_key)).await, 200);
    assert_eq!(
        get_as(&h, "/echo", &format!("Bearer {WRONG_TOKEN}")).await,
        401
    );
    assert_eq!(get_as(&h, "/echo", &basic(WRONG_TOKEN)).await, 401);

    // Sign out.
    let out = client.get(h.url("/oauth2/sign_out")).send().await.unwrap();
    assert_eq!(out.status(), 302);

    // Access lines are written in batches, at most ~100 ms after each response, in order: wait
    // (with a bound) for the last request's line.
    let mut log = h.log();
    for _ in 0..50 {
        if log.contains("\"path\":\"/oauth2/sign_out\"") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        log = h.log();
    }
    secrets.assert_absent_from(&log);

    // Every line is JSON; collect the access-log lines and audit events.
    let lines: Vec<Value> = log
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let of =
        |target: &str| -> Vec<&Value> { lines.iter().filter(|l| l["target"] == target).collect() };
    let access = of("gatehouse::access");
    let audit = of("gatehouse::audit");
    assert!(access.len() >= 12, "{} access lines:\n{log}", access.len());
    for line in &access {
        assert!(line["timestamp"].is_string(), "{line}");
        assert_eq!(line["level"], "INFO", "{line}");
        assert_eq!(line["route"], "default", "{line}");
        assert!(line["method"].is_string(), "{line}");
        let path = line["path"].as_str().unwrap_or_else(|| panic!("{line}"));
        assert!(path.starts_with('/') && !path.contains('?'), "{line}");
        assert!(line["status"].is_u64(), "{line}");
        assert!(line["user"].is_string(), "{line}");
        assert!(line["decision"].is_string(), "{line}");
        assert!(line["latency_ms"].is_number(), "{line}");
    }
    let find = |path: &str, status: u64| {
        access
            .iter()
            .find(|l| l["path"] == path && l["status"] == status)
            .unwrap_or_else(|| panic!("no access line for {path} {status}:\n{log}"))
    };
    let browsed = find("/echo/page", 200);
    assert_eq!(browsed["user"], "octocat");
    assert_eq!(browsed["decision"], "allowed");
    assert!(browsed["upstream_ms"].is_number(), "{browsed}");
    let refused = find("/echo/closed/x", 403);
    assert_eq!(refused["decision"], "forbidden");
    assert!(refused.get("upstream_ms").is_none(), "{refused}");
    assert_eq!(find("/oauth2/callback", 302)["decision"], "endpoint");
    let wrong = access
        .iter()
        .find(|l| l["status"] == 401 && l["path"] == "/echo")
        .expect("a 401 line");
    assert_eq!(wrong["decision"], "unauthorized");
    assert_eq!(wrong["user"], "-");
    assert_eq!(find("/echo", 200)["method"], "GET");

    let event = |name: &str, login: &str| {
        audit
            .iter()
            .find(|l| l["event"] == name && l["login"] == login)
            .unwrap_or_else(|| panic!("no audit event {name} for {login}:\n{log}"))
    };
    let login = event("login", "octocat");
    assert_eq!(login["result"], "succeeded");
    assert_eq!(login["via"], "browser");
    assert_eq!(event("login", "monalisa")["via"], "client");
    event("logout", "octocat");
    // A deny rule decides before the cookie is read: nobody is named.
    let denied = event("denied", "-");
    assert_eq!(denied["path"], "/echo/closed/x");
    assert_eq!(denied["status"], 403);
    assert!(
        audit.iter().any(|l| l["event"] == "refresh_token_reused"),
        "reuse detection is audited:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_log_can_be_turned_off() {
    let h = Harness::start(GateOptions {
        access_extra: "[log]\naccess_log = false".into(),
        ..GateOptions::default()
    })
    .await;
    let client = browser();
    h.sign_in(&client, "octocat", "/echo").await;
    let (status, _) = echo(&client, h.url("/echo"), &[]).await;
    assert_eq!(status, 200);
    // The sign-out's audit event is written at once, after any access line waiting for its
    // batch: once it is there, an access line would be too.
    let out = client.get(h.url("/oauth2/sign_out")).send().await.unwrap();
    assert_eq!(out.status(), 302);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut log = h.log();
    while !log.contains("\"logout\"") {
        assert!(
            std::time::Instant::now() < deadline,
            "no logout event:\n{log}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
        log = h.log();
    }
    assert!(!log.contains("gatehouse::access"), "{log}");
    // Audit events stay.
    assert!(log.contains("gatehouse::audit"), "{log}");
}
