//! Watching live credentials: webhooks that land while GitHub is being asked, websockets opened
//! by API keys and OIDC tokens, replayed webhook deliveries, bogus GitHub tokens, and API-key
//! lockouts behind a shared address.

use crate::common::*;
use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::{
    self, client::IntoClientRequest, protocol::frame::coding::CloseCode, Message,
};

fn org_gate(extra: &str) -> GateOptions {
    GateOptions {
        allowed_users: vec![],
        access_extra: format!("allowed_orgs = [\"databio\"]\n{extra}"),
        github_extra: webhook_options(),
        ..GateOptions::default()
    }
}

/// One request carrying exactly `cookie`: the status and the upstream's echo.
async fn call(h: &Harness, cookie: &str) -> (u16, serde_json::Value) {
    echo(
        &plain_client(),
        h.url("/echo"),
        &[("cookie", &format!("_gatehouse={cookie}"))],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_during_an_inflight_recheck_is_not_answered_with_the_old_result() {
    let h = Harness::start(org_gate("refresh_interval = \"1s\"\nstale_grace = \"60s\"")).await;
    let mona = session_of(&h, "monalisa").await;
    assert_eq!(call(&h, &mona).await.0, 200);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // GitHub's answer (still a member) is made now but arrives 2.5 s later.
    mock_call(
        &h,
        reqwest::Method::POST,
        "/_mock/fail?mode=late&delay_ms=2500",
    )
    .await;
    // Due: the re-check starts; within the grace the request is served after a second.
    assert_eq!(call(&h, &mona).await.0, 200);
    // While that answer is on its way, GitHub removes her and says so.
    mock_call(&h, reqwest::Method::POST, "/_mock/fail?mode=off").await;
    mock_call(
        &h,
        reqwest::Method::DELETE,
        "/_mock/orgs/databio/members/monalisa",
    )
    .await;
    let event = member_removed("databio", "monalisa", 1_000_001);
    assert_eq!(deliver_webhook(&h, "organization", &event).await, 200);
    // The next request is judged on what GitHub says after the webhook, not on the answer
    // asked for before it.
    let (status, seen) = call(&h, &mona).await;
    assert_eq!(status, 403, "{seen}");
    // And once the old answer arrives it is not taken as fresh either.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert_eq!(call(&h, &mona).await.0, 403);
}

/// Sign in `login` and wait until the next whole second (revocations compare whole seconds).
async fn signed_in_in_a_second_of_its_own(h: &Harness, login: &str) -> String {
    let started = now();
    let cookie = session_of(h, login).await;
    while now() <= started + 1 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cookie
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_webhook_delivery_does_not_sign_the_user_out_again() {
    let h = Harness::start(GateOptions {
        github_extra: webhook_options(),
        ..GateOptions::default()
    })
    .await;
    let first = signed_in_in_a_second_of_its_own(&h, "monalisa").await;
    assert_eq!(call(&h, &first).await.0, 200);
    let revoked = serde_json::json!({
        "action": "revoked",
        "sender": {"login": "monalisa", "id": 1_000_001}
    });
    let captured = delivery_id();
    let event = "github_app_authorization";
    let (status, answer) = deliver_webhook_as(&h, event, &revoked, Some(&captured)).await;
    assert_eq!((status, &answer["sessions"]), (200, &"ended".into()));
    assert_ne!(call(&h, &first).await.0, 200, "signed out");

    // She signs in again; an hour later someone replays the captured delivery.
    let again = signed_in_in_a_second_of_its_own(&h, "monalisa").await;
    assert_eq!(call(&h, &again).await.0, 200);
    let (status, answer) = deliver_webhook_as(&h, event, &revoked, Some(&captured)).await;
    assert_eq!(status, 200, "2xx, so GitHub would not retry: {answer}");
    assert_eq!(answer["repeated"], true, "{answer}");
    assert_eq!(call(&h, &again).await.0, 200, "the replay changed nothing");

    // The id is not signed: the same body under a new id only asks GitHub, which still
    // accepts her sign-in.
    let before = h.mock.api_request_count();
    let (status, answer) = deliver_webhook_as(&h, event, &revoked, Some(&delivery_id())).await;
    assert_eq!((status, &answer["sessions"]), (200, &"rechecked".into()));
    assert_eq!(call(&h, &again).await.0, 200, "still signed in");
    assert_eq!(
        h.mock.api_request_count() - before,
        1,
        "one re-check: GET /user (no orgs to ask about)"
    );

    // GitHub always names the delivery; one without an id is refused and changes nothing.
    let (status, _) = deliver_webhook_as(&h, event, &revoked, None).await;
    assert_eq!(status, 400);
    let (status, _) = deliver_webhook_as(&h, event, &revoked, Some("not a guid!")).await;
    assert_eq!(status, 400);
    assert_eq!(call(&h, &again).await.0, 200);
    assert!(h.log().contains("webhook_repeated"), "{}", h.log());
}

// ---- Websockets opened by machine credentials ----

/// A websocket app that says hello, then echoes every message.
async fn ws_echo_upstream() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
                    return;
                };
                if ws.send(Message::Text("hello".into())).await.is_err() {
                    return;
                }
                while let Some(Ok(msg)) = ws.next().await {
                    let echo = matches!(msg, Message::Text(_) | Message::Binary(_));
                    if matches!(msg, Message::Close(_)) || (echo && ws.send(msg).await.is_err()) {
                        return;
                    }
                }
            });
        }
    });
    addr
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The websocket tests measure when sockets close; one at a time, so they do not starve
/// each other's gates of CPU on a small machine.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A socket through the gate to `/socket`, opened with `authorization`, past its hello.
async fn open_socket(h: &Harness, authorization: &str) -> Ws {
    let mut req = format!("ws://{}/socket", h.gate_addr)
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("authorization", authorization.parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .unwrap_or_else(|e| panic!("upgrade through the gate: {e:?}\n{}", h.log()));
    let hello = ws.next().await;
    assert!(matches!(hello, Some(Ok(Message::Text(_)))), "{hello:?}");
    ws
}

/// Does the socket still echo?
async fn echoes(ws: &mut Ws) -> bool {
    if ws.send(Message::Text("ping".into())).await.is_err() {
        return false;
    }
    matches!(
        tokio::time::timeout(Duration::from_secs(2), ws.next()).await,
        Ok(Some(Ok(Message::Text(t)))) if t.as_str() == "ping"
    )
}

/// Wait (at most `limit`) for the gate to close the socket with 1008; when it did.
async fn closed_by_the_gate(ws: &mut Ws, limit: Duration) -> Instant {
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, ws.next()).await {
            Err(_) => panic!("the socket is still open after {limit:?}"),
            Ok(Some(Ok(Message::Close(Some(frame))))) => {
                assert_eq!(frame.code, CloseCode::Policy);
                return Instant::now();
            }
            Ok(Some(Ok(_))) => continue,
            other => panic!("expected a close frame 1008, got {other:?}"),
        }
    }
}

fn basic(name: &str, key: &str) -> String {
    let pair = format!("{name}:{key}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

/// Rewrite the gate's config with `edit` and reload it (SIGHUP); returns once it is in force.
async fn reload_with(h: &Harness, edit: impl FnOnce(String) -> String) {
    let path = h.dir.path().join("gatehouse.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let new = edit(text.clone());
    assert_ne!(new, text, "the edit changed nothing");
    std::fs::write(&path, new).unwrap();
    let reloads = h.log().matches("config reloaded").count();
    signal(&h.child, libc::SIGHUP);
    let deadline = Instant::now() + Duration::from_secs(10);
    while h.log().matches("config reloaded").count() <= reloads {
        assert!(Instant::now() < deadline, "no reload:\n{}", h.log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

const DEPLOYER_SOCKET: &str = r#"
[roles.deployer]

[[rules]]
path = "/socket"
allow = ["role:deployer"]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_opened_with_an_api_key_closes_when_a_reload_changes_the_key() {
    let _one = ONE_AT_A_TIME.lock().await;
    let (nightly, nightly_hash) = gatehouse::tokens::api_keys::new_key();
    let (other, other_hash) = gatehouse::tokens::api_keys::new_key();
    let h = Harness::start(GateOptions {
        upstream: Some(ws_echo_upstream().await),
        access_extra: format!(
            r#"{DEPLOYER_SOCKET}
[[api_keys]]
name = "nightly"
hash = "{nightly_hash}"
roles = ["deployer"]

[[api_keys]]
name = "other"
hash = "{other_hash}"
roles = ["deployer"]
"#
        ),
        ..GateOptions::default()
    })
    .await;
    let mut nightly_ws = open_socket(&h, &basic("nightly", &nightly)).await;
    let mut other_ws = open_socket(&h, &basic("other", &other)).await;
    assert!(echoes(&mut nightly_ws).await);

    // The nightly key leaks; the operator puts a new one in its place and reloads.
    let (_, replacement) = gatehouse::tokens::api_keys::new_key();
    reload_with(&h, |c| c.replace(&nightly_hash, &replacement)).await;
    let reloaded = Instant::now();
    // The socket the old key opened ends at its next frame.
    let _ = nightly_ws.send(Message::Text("after".into())).await;
    let closed = closed_by_the_gate(&mut nightly_ws, Duration::from_secs(2)).await;
    assert!(closed - reloaded < Duration::from_secs(1));
    // The other key's socket is untouched; the old key opens nothing any more.
    assert!(echoes(&mut other_ws).await, "{}", h.log());
    let mut req = format!("ws://{}/socket", h.gate_addr)
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("authorization", basic("nightly", &nightly).parse().unwrap());
    match tokio_tungstenite::connect_async(req).await {
        Err(tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 401),
        other => panic!("expected 401, got {:?}", other.map(|(_, r)| r.status())),
    }

    // Removing the entry (not only changing it) ends its sockets too.
    reload_with(&h, |c| {
        c.replace(
            &format!("name = \"other\"\nhash = \"{other_hash}\""),
            &format!("name = \"renamed\"\nhash = \"{other_hash}\""),
        )
    })
    .await;
    let _ = other_ws.send(Message::Text("after".into())).await;
    closed_by_the_gate(&mut other_ws, Duration::from_secs(2)).await;
}

/// A CI-style OIDC issuer on loopback: a P-256 key and its JWKS.
struct Issuer {
    url: String,
    key: jsonwebtoken::EncodingKey,
}

impl Issuer {
    async fn start() -> Issuer {
        use p256::pkcs8::{EncodePrivateKey, LineEnding};
        let secret = p256::SecretKey::random(&mut p256::elliptic_curve::rand_core::OsRng);
        let pem = secret.to_pkcs8_pem(LineEnding::LF).unwrap();
        let mut jwk: serde_json::Value =
            serde_json::from_str(&secret.public_key().to_jwk_string()).unwrap();
        jwk["kid"] = "ci-key-1".into();
        jwk["alg"] = "ES256".into();
        let jwks = serde_json::json!({ "keys": [jwk] });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new().route(
            "/jwks",
            axum::routing::get(move || {
                let jwks = jwks.clone();
                async move { axum::Json(jwks) }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        Issuer {
            url: format!("http://{addr}"),
            key: jsonwebtoken::EncodingKey::from_ec_pem(pem.as_bytes()).unwrap(),
        }
    }

    /// A token for the gate's audience that expires at `exp`.
    fn token(&self, exp: u64) -> String {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some("ci-key-1".into());
        let claims = serde_json::json!({
            "iss": self.url, "aud": "https://gate.example", "sub": "repo:databio/pephub",
            "iat": now(), "exp": exp,
        });
        jsonwebtoken::encode(&header, &claims, &self.key).unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_opened_with_an_oidc_token_closes_when_the_token_expires() {
    let _one = ONE_AT_A_TIME.lock().await;
    let issuer = Issuer::start().await;
    let h = Harness::start(GateOptions {
        upstream: Some(ws_echo_upstream().await),
        access_extra: format!(
            r#"{DEPLOYER_SOCKET}
[[tokens.oidc_issuers]]
issuer = "{iss}"
audience = "https://gate.example"
jwks_url = "{iss}/jwks"
roles = ["deployer"]
"#,
            iss = issuer.url
        ),
        ..GateOptions::default()
    })
    .await;
    let exp = now() + 3;
    let mut ws = open_socket(&h, &format!("Bearer {}", issuer.token(exp))).await;
    assert!(echoes(&mut ws).await);
    // Idle from here on: the gate ends it at the token's `exp` all the same.
    let closed = closed_by_the_gate(&mut ws, Duration::from_secs(8)).await;
    let at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        - closed.elapsed().as_secs_f64();
    assert!(
        at >= exp as f64 - 0.1 && at < exp as f64 + 1.5,
        "closed at {at}, the token expired at {exp}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_opened_with_an_access_token_closes_when_its_sign_in_is_revoked() {
    let _one = ONE_AT_A_TIME.lock().await;
    let h = Harness::start(GateOptions {
        upstream: Some(ws_echo_upstream().await),
        ..GateOptions::default()
    })
    .await;
    let pat = mock_pat(&h, "monalisa").await;
    let (status, pair) = post_json(&h, "/oauth2/pat", serde_json::json!({"token": pat})).await;
    assert_eq!(status, 200, "{pair}");
    let access = pair["access_token"].as_str().unwrap();
    let mut ws = open_socket(&h, &format!("Bearer {access}")).await;
    assert!(echoes(&mut ws).await);
    // The refresh token was copied: the thief and the owner both use it, and the second use
    // revokes every token of the sign-in.
    let refresh = serde_json::json!({"refresh_token": pair["refresh_token"]});
    assert_eq!(
        post_json(&h, "/oauth2/refresh", refresh.clone()).await.0,
        200
    );
    assert_eq!(post_json(&h, "/oauth2/refresh", refresh).await.0, 401);
    let revoked = Instant::now();
    // Its next frames start a read of the family in the background; a frame after that
    // closes it.
    let closed = talk_until_closed(&mut ws, Duration::from_secs(3)).await;
    assert!(closed - revoked < Duration::from_secs(2), "{}", h.log());
}

/// Keep sending a frame every 100 ms until the gate closes the socket with 1008 (at most
/// `limit`); when it did.
async fn talk_until_closed(ws: &mut Ws, limit: Duration) -> Instant {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        let _ = ws.send(Message::Text("more".into())).await;
        match tokio::time::timeout(Duration::from_millis(100), ws.next()).await {
            Ok(Some(Ok(Message::Close(Some(frame))))) => {
                assert_eq!(frame.code, CloseCode::Policy);
                return Instant::now();
            }
            Ok(Some(Ok(_))) | Err(_) => {}
            other => panic!("expected a close frame 1008, got {other:?}"),
        }
    }
    panic!("the socket is still open after {limit:?}");
}

// ---- Raw GitHub tokens ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn made_up_github_tokens_cannot_spend_the_gates_github_rate_limit() {
    let h = Harness::start(GateOptions {
        access_extra:
            "[tokens]\naccept_github_tokens = true\n\n[limits]\nauth_per_minute = 10\nburst = 5\n"
                .into(),
        ..GateOptions::default()
    })
    .await;
    let client = plain_client();
    let status_with = |authorization: String| {
        let client = client.clone();
        let url = h.url("/echo");
        async move {
            let r = client
                .get(url)
                .header("authorization", authorization)
                .send()
                .await
                .unwrap();
            let retry = r.headers().get("retry-after").is_some();
            (r.status().as_u16(), retry)
        }
    };
    // A real token is asked about once, then remembered.
    let real = format!("Bearer {}", mock_pat(&h, "monalisa").await);
    for _ in 0..3 {
        assert_eq!(status_with(real.clone()).await.0, 200);
    }

    // One made-up token, again and again: GitHub is asked once.
    let before = h.mock.api_request_count();
    assert_eq!(status_with("Bearer ghp_madeup0".into()).await.0, 401);
    let per_check = h.mock.api_request_count() - before;
    assert!(per_check >= 1);
    for _ in 0..20 {
        assert_eq!(status_with("Bearer ghp_madeup0".into()).await.0, 401);
    }
    assert_eq!(h.mock.api_request_count() - before, per_check);

    // Fifty made-up tokens from one address: only its budget (burst 5, two used) reaches
    // GitHub; the rest are told to wait, without a GitHub call.
    let before = h.mock.api_request_count();
    let (mut asked, mut waited) = (0, 0);
    for i in 1..=50 {
        match status_with(format!("Bearer ghp_madeup{i}")).await {
            (401, _) => asked += 1,
            (429, true) => waited += 1,
            other => panic!("made-up token {i}: {other:?}"),
        }
    }
    assert!(asked <= 4, "{asked} made-up tokens reached GitHub");
    assert_eq!(asked + waited, 50);
    assert_eq!(h.mock.api_request_count() - before, asked * per_check);
    // The real token is still remembered: it works, at no cost.
    let before = h.mock.api_request_count();
    assert_eq!(status_with(real).await.0, 200);
    assert_eq!(h.mock.api_request_count(), before);
}

// ---- API-key lockouts behind a shared address ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_on_a_shared_address_do_not_lock_out_a_key_they_did_not_name() {
    let (nightly, nightly_hash) = gatehouse::tokens::api_keys::new_key();
    let (other, other_hash) = gatehouse::tokens::api_keys::new_key();
    let h = Harness::start_with_server(
        GateOptions {
            access_extra: format!(
                r#"
[limits]
api_key_failures_per_minute = 3

[[api_keys]]
name = "nightly"
hash = "{nightly_hash}"

[[api_keys]]
name = "other"
hash = "{other_hash}"
"#
            ),
            ..GateOptions::default()
        },
        // A proxy in front: each client is the address it forwards for.
        r#"trusted_proxies = ["127.0.0.1/32"]"#,
    )
    .await;
    let client = plain_client();
    let status = |from: &'static str, name: &str, key: &str| {
        let req = client
            .get(h.url("/echo"))
            .header("x-forwarded-for", from)
            .header("authorization", basic(name, key))
            .send();
        async move { req.await.unwrap().status().as_u16() }
    };
    // Both keys are used from one office address (a NAT)... where someone sprays names.
    let office = "203.0.113.7";
    let sprayed: Vec<u16> = futures_util::future::join_all(
        (0..6).map(|i| status(office, if i % 2 == 0 { "admin" } else { "root" }, "gk_x")),
    )
    .await;
    assert_eq!(
        sprayed.iter().filter(|s| **s == 429).count(),
        3,
        "{sprayed:?}"
    );
    // Names that are no key's are locked out for the address; the real keys are not.
    assert_eq!(status(office, "admin", "gk_x").await, 429);
    assert_eq!(
        status(office, "nightly", &nightly).await,
        403,
        "checked: no role"
    );
    assert_eq!(status(office, "other", &other).await, 403);

    // Guessing at one key is bounded: its budget from this address is spent, and then even
    // its right key waits here (there is no telling the guesser from its owner)...
    for i in 0..3 {
        assert_eq!(
            status(office, "nightly", &format!("gk_guess{i}")).await,
            401
        );
    }
    assert_eq!(status(office, "nightly", "gk_guess3").await, 429);
    assert_eq!(status(office, "nightly", &nightly).await, 429);
    // ...but not elsewhere, and not for the office's other key.
    assert_eq!(status("198.51.100.9", "nightly", &nightly).await, 403);
    assert_eq!(status(office, "other", &other).await, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_catch_all_trusted_proxies_entry_is_warned_about() {
    let h = Harness::start_with_server(
        GateOptions::default(),
        r#"trusted_proxies = ["10.0.0.0/8", "0.0.0.0/0", "::/0"]"#,
    )
    .await;
    let log = h.log();
    for key in ["server.trusted_proxies[1]", "server.trusted_proxies[2]"] {
        assert!(log.contains(key), "no warning for {key}:\n{log}");
    }
    assert!(!log.contains("server.trusted_proxies[0]"), "{log}");
    let out = std::process::Command::new(binary())
        .args(["check-config", "--config"])
        .arg(h.dir.path().join("gatehouse.toml"))
        .env("TEST_GH_SECRET", CLIENT_SECRET)
        .output()
        .unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("warning: server.trusted_proxies[1]") && err.contains("trusts every client"),
        "{err}"
    );
}
