//! Several replicas sharing one real Redis (`session.store = "redis"`): a session made on one
//! works on the other, a login started on one finishes on the other, sign-out and admin
//! revocation on one end the session on the other within a second, signed GitHub webhooks cut
//! a user off everywhere (unsigned ones change nothing), and a Redis outage is a 503 and
//! not-ready, never an allow, with recovery when Redis returns and no gate restart.

use crate::common::redis::{available, signed_in, status_with, until_status, RedisServer};
use crate::common::*;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::time::{Duration, Instant};

const WEBHOOK_SECRET: &str = "webhook-secret-for-tests";

fn redis_gate(redis: &RedisServer, store: &str, access_extra: &str) -> GateOptions {
    shared_gate(redis.session_config(store), access_extra)
}

/// A gate whose `[session]` lines are `session` (a shared store), with webhooks and
/// revoke-on-sign-out on.
pub(crate) fn shared_gate(session: String, access_extra: &str) -> GateOptions {
    GateOptions {
        access_extra: access_extra.into(),
        session_extra: session,
        github_extra: format!("webhook_secret = \"{WEBHOOK_SECRET}\"\nrevoke_on_sign_out = true\n"),
        ..GateOptions::default()
    }
}

/// `X-Hub-Signature-256` of `body` with `secret`.
fn signed_with(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

fn signature(body: &[u8]) -> String {
    signed_with(WEBHOOK_SECRET.as_bytes(), body)
}

async fn webhook(url: &str, event: &str, body: &serde_json::Value, sig: Option<String>) -> u16 {
    let body = serde_json::to_vec(body).unwrap();
    let mut req = plain_client()
        .post(url)
        .header("content-type", "application/json")
        .header("x-github-event", event)
        .header("x-github-delivery", delivery_id());
    if let Some(sig) = sig {
        req = req.header("x-hub-signature-256", sig);
    }
    req.body(body).send().await.unwrap().status().as_u16()
}

async fn user_id(h: &Harness, cookie: &str) -> u64 {
    let info: serde_json::Value = get_with_session(&h.url("/oauth2/userinfo"), cookie)
        .await
        .json()
        .await
        .unwrap();
    info["user_id"].as_str().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_and_logins_cross_replicas_and_sign_out_on_b_ends_it_on_a() {
    if !available("sessions_and_logins_cross_replicas") {
        return;
    }
    let redis = RedisServer::start();
    sessions_cross_replicas(redis.session_config("redis")).await;
}

/// Two replicas on the shared store `session`: a session and a login cross them, and sign-out
/// on B is refused on A within a second.
pub(crate) async fn sessions_cross_replicas(session: String) {
    let a = Harness::start(shared_gate(session, "")).await;
    let b = a.spawn_replica("b").await;

    let cookie = signed_in(&a, "monalisa").await;
    // The cookie holds only an encrypted id: no identity, no token.
    let plain = gatehouse::session::KeyRing::new(&[gatehouse::config::SessionKey(KEY_A)])
        .open(&cookie)
        .unwrap();
    let inside: serde_json::Value = serde_json::from_slice(&plain).unwrap();
    let mut keys: Vec<&str> = inside
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    assert_eq!(keys, ["exp", "sid"], "{inside}");

    let seen: serde_json::Value = get_with_session(&b.url("/echo"), &cookie)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        upstream_header(&seen, "x-forwarded-user"),
        Some("monalisa"),
        "A's session works on B"
    );

    // A login started on A finishes on B (the load balancer sent the callback elsewhere).
    let client = browser();
    let callback = a.authorize(&client, "octocat", "/landed").await;
    let on_b = callback.replace(&a.gate, &b.gate);
    let r = client.get(&on_b).send().await.unwrap();
    assert_eq!(r.status(), 302, "{}", b.log());
    assert_eq!(location(&r), "/landed");
    let octo = session_cookie(&r);
    assert_eq!(status_with(&a.url("/echo"), &octo).await, 200);
    // Its state is used up on every replica.
    let replay = client.get(&callback).send().await.unwrap();
    assert_eq!(replay.status(), 400, "state replayed on the other replica");

    // Sign out on B: refused on A within a second.
    let r = plain_client()
        .get(b.url("/oauth2/sign_out"))
        .header("cookie", format!("_gatehouse={cookie}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let took = until_status(&a.url("/echo"), &cookie, 401, Duration::from_secs(1)).await;
    println!("sign-out on B refused on A after {took:?}");
    assert_eq!(
        status_with(&a.url("/echo"), &octo).await,
        200,
        "other sessions live on"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_webhooks_cut_users_off_on_every_replica_and_unsigned_ones_change_nothing() {
    if !available("signed_webhooks_cut_users_off") {
        return;
    }
    let redis = RedisServer::start();
    webhooks_cut_off_everywhere(redis.session_config("redis")).await;
}

/// Two replicas on the shared store `session`: a signed webhook's removal ends the user's
/// session on both, unsigned ones change nothing.
pub(crate) async fn webhooks_cut_off_everywhere(session: String) {
    let a = Harness::start(GateOptions {
        allowed_users: vec!["hubot"],
        ..shared_gate(
            session,
            "allowed_orgs = [\"databio\"]\nrefresh_interval = \"1h\"",
        )
    })
    .await;
    let b = a.spawn_replica("b").await;
    let hook = b.url("/oauth2/github/webhook");

    let mona = signed_in(&a, "monalisa").await;
    let mona_id = user_id(&a, &mona).await;
    for gate in [a.url("/echo"), b.url("/echo")] {
        assert_eq!(status_with(&gate, &mona).await, 200);
    }
    assert_eq!(
        webhook(
            &hook,
            "ping",
            &serde_json::json!({"zen": "Keep it logically awesome."}),
            Some(signature(br#"{"zen":"Keep it logically awesome."}"#))
        )
        .await,
        200,
        "a signed ping"
    );

    // GitHub removes her; nothing tells the gates yet (re-checks are an hour apart).
    mock_call(
        &a,
        reqwest::Method::DELETE,
        "/_mock/orgs/databio/members/monalisa",
    )
    .await;
    let event = serde_json::json!({
        "action": "member_removed",
        "membership": {"state": "active", "role": "member", "user": {"login": "monalisa", "id": mona_id}},
        "organization": {"login": "databio", "id": 1},
        "sender": {"login": "octocat", "id": 1}
    });
    let bytes = serde_json::to_vec(&event).unwrap();
    let forged = signed_with(b"not-the-secret", &bytes);
    for (name, sig) in [
        ("unsigned", None),
        ("wrong secret", Some(forged)),
        ("other body", Some(signature(b"{}"))),
        (
            "sha1 header",
            Some("sha1=0000000000000000000000000000000000000000".into()),
        ),
    ] {
        assert_eq!(
            webhook(&hook, "organization", &event, sig).await,
            401,
            "{name}"
        );
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    for gate in [a.url("/echo"), b.url("/echo")] {
        assert_eq!(
            status_with(&gate, &mona).await,
            200,
            "a refused webhook changes nothing"
        );
    }

    assert_eq!(
        webhook(&hook, "organization", &event, Some(signature(&bytes))).await,
        200
    );
    for gate in [a.url("/echo"), b.url("/echo")] {
        let took = until_status(&gate, &mona, 403, Duration::from_secs(1)).await;
        println!("member_removed: {gate} refuses after {took:?}");
    }

    // Authorization revoked at GitHub: every session of the user ends at once.
    let hubot = signed_in(&a, "hubot").await;
    let hubot_id = user_id(&a, &hubot).await;
    assert_eq!(status_with(&b.url("/echo"), &hubot).await, 200);
    let revoked = serde_json::json!({
        "action": "revoked",
        "sender": {"login": "hubot", "id": hubot_id}
    });
    let sig = signature(&serde_json::to_vec(&revoked).unwrap());
    assert_eq!(
        webhook(&hook, "github_app_authorization", &revoked, Some(sig)).await,
        200
    );
    for gate in [a.url("/echo"), b.url("/echo")] {
        let took = until_status(&gate, &hubot, 401, Duration::from_secs(1)).await;
        println!("authorization revoked: {gate} refuses after {took:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_is_503_and_not_ready_then_service_resumes_by_itself() {
    if !available("redis_outage_is_503") {
        return;
    }
    let mut redis = RedisServer::start();
    let a = Harness::start(redis_gate(&redis, "redis", "")).await;
    let cookie = signed_in(&a, "monalisa").await;
    assert_eq!(status_with(&a.url("/echo"), &cookie).await, 200);
    let ready = || async { plain_client().get(a.url("/ready")).send().await.unwrap() };
    assert_eq!(ready().await.status(), 200);

    redis.stop();
    until_status(&a.url("/echo"), &cookie, 503, Duration::from_secs(3)).await;
    let page = plain_client()
        .get(a.url("/echo"))
        .header("accept", "text/html")
        .header("cookie", format!("_gatehouse={cookie}"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 503);
    let text = page.text().await.unwrap();
    assert!(
        text.contains("session store unavailable") || text.contains("Session store unavailable"),
        "{text}"
    );
    let not_ready = ready().await;
    assert_eq!(not_ready.status(), 503);
    assert!(not_ready
        .text()
        .await
        .unwrap()
        .contains("session store unavailable"));
    // Signing in cannot finish either, and says why.
    let client = browser();
    let callback = a.authorize(&client, "octocat", "/").await;
    assert_eq!(client.get(&callback).send().await.unwrap().status(), 503);
    // Public paths and the gate's own pages still answer.
    assert_eq!(
        plain_client()
            .get(a.url("/ping"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // Redis returns (empty: no persistence): the gate reconnects by itself.
    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    while ready().await.status() != 200 {
        assert!(Instant::now() < deadline, "not ready again: {}", a.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        status_with(&a.url("/echo"), &cookie).await,
        401,
        "the lost record is no session, never an allow"
    );
    let again = signed_in(&a, "monalisa").await;
    assert_eq!(status_with(&a.url("/echo"), &again).await, 200);
    assert!(!a.log().contains("panicked"), "{}", a.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_list_and_revoke_sessions_and_nobody_else_can() {
    if !available("admins_list_and_revoke_sessions") {
        return;
    }
    let redis = RedisServer::start();
    let a = Harness::start(redis_gate(&redis, "redis", "admin_users = [\"octocat\"]")).await;
    let b = a.spawn_replica("b").await;
    let admin = signed_in(&a, "octocat").await;
    let first = signed_in(&a, "monalisa").await;
    let second = signed_in(&a, "monalisa").await;

    let list = |gate: String, cookie: String| async move {
        plain_client()
            .get(format!("{gate}/oauth2/admin/sessions?user=MonaLisa"))
            .header("cookie", format!("_gatehouse={cookie}"))
            .header("user-agent", "admin-test")
            .send()
            .await
            .unwrap()
    };
    assert_eq!(
        list(a.gate.clone(), first.clone()).await.status(),
        403,
        "not an admin"
    );
    assert_eq!(
        plain_client()
            .get(a.url("/oauth2/admin/sessions?user=monalisa"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let r = list(b.gate.clone(), admin.clone()).await;
    assert_eq!(r.status(), 200);
    let body = r.text().await.unwrap();
    for secret in [&first, &second, &admin] {
        assert!(
            !body.contains(secret.as_str()),
            "no cookie values in the listing"
        );
    }
    assert!(
        !body.contains("gho_") && !body.contains("sealed"),
        "no tokens: {body}"
    );
    let listed: serde_json::Value = serde_json::from_str(&body).unwrap();
    let sessions = listed["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2, "{body}");
    for s in sessions {
        for field in ["id", "user", "created_at", "last_seen", "ip", "user_agent"] {
            assert!(s.get(field).is_some(), "{field} missing in {s}");
        }
        assert_eq!(s["user"], "monalisa");
        assert_eq!(s["ip"], "127.0.0.1");
    }

    // Revoke one session by id (on B): that one stops on A, the other does not.
    let id = sessions[0]["id"].as_str().unwrap();
    let r = plain_client()
        .delete(b.url(&format!("/oauth2/admin/sessions/{id}")))
        .header("cookie", format!("_gatehouse={admin}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // A's copy of a record it read lives up to 250 ms; the revocation must show within 1 s.
    let revoked = Instant::now();
    let (gone, kept) = loop {
        if status_with(&a.url("/echo"), &first).await == 401 {
            break (first.clone(), second.clone());
        }
        if status_with(&a.url("/echo"), &second).await == 401 {
            break (second.clone(), first.clone());
        }
        assert!(
            revoked.elapsed() < Duration::from_secs(1),
            "the revoked session still works on A"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(status_with(&a.url("/echo"), &gone).await, 401);
    assert_eq!(status_with(&a.url("/echo"), &kept).await, 200);
    let again = plain_client()
        .delete(b.url(&format!("/oauth2/admin/sessions/{id}")))
        .header("cookie", format!("_gatehouse={admin}"))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 404);

    // Revoke every session of the user.
    let r = plain_client()
        .delete(a.url("/oauth2/admin/users/monalisa/sessions"))
        .header("cookie", format!("_gatehouse={admin}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let took = until_status(&b.url("/echo"), &kept, 401, Duration::from_secs(1)).await;
    println!("admin revocation seen on the other replica after {took:?}");
    assert_eq!(status_with(&b.url("/echo"), &admin).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookie_sessions_sign_out_everywhere_through_the_shared_revocation_list() {
    if !available("cookie_sessions_sign_out_everywhere") {
        return;
    }
    let redis = RedisServer::start();
    let a = Harness::start(redis_gate(&redis, "cookie", "")).await;
    let b = a.spawn_replica("b").await;
    let laptop = signed_in(&a, "monalisa").await;
    let phone = signed_in(&a, "monalisa").await;
    // Cookie mode: the identity is in the cookie itself.
    assert_eq!(claims_in(&laptop).login, "monalisa");
    let octo = signed_in(&a, "octocat").await;
    let tokens_before = mock_call(&a, reqwest::Method::GET, "/_mock/stats").await["tokens"]
        .as_u64()
        .unwrap();

    let r = plain_client()
        .post(b.url("/oauth2/sign_out?everywhere=1"))
        .header("cookie", format!("_gatehouse={phone}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    for gate in [a.url("/echo"), b.url("/echo")] {
        let took = until_status(&gate, &laptop, 401, Duration::from_secs(1)).await;
        println!("sign out everywhere: {gate} refuses the other cookie after {took:?}");
    }
    assert_eq!(
        status_with(&a.url("/echo"), &octo).await,
        200,
        "other users are untouched"
    );
    // Webhooks work with cookie sessions too, through the same shared revocation list.
    let octo_id = user_id(&a, &octo).await;
    let revoked =
        serde_json::json!({"action": "revoked", "sender": {"login": "octocat", "id": octo_id}});
    let sig = signature(&serde_json::to_vec(&revoked).unwrap());
    let hook = a.url("/oauth2/github/webhook");
    assert_eq!(
        webhook(&hook, "github_app_authorization", &revoked, None).await,
        401
    );
    assert_eq!(
        status_with(&b.url("/echo"), &octo).await,
        200,
        "unsigned: nothing changed"
    );
    assert_eq!(
        webhook(&hook, "github_app_authorization", &revoked, Some(sig)).await,
        200
    );
    until_status(&b.url("/echo"), &octo, 401, Duration::from_secs(1)).await;
    // revoke_on_sign_out: the GitHub token was revoked at GitHub.
    let tokens_after = mock_call(&a, reqwest::Method::GET, "/_mock/stats").await["tokens"]
        .as_u64()
        .unwrap();
    assert_eq!(
        tokens_after + 1,
        tokens_before,
        "one token revoked at GitHub"
    );
    // Signing in again at once works: a new sign-in counts as after the revocation, even
    // within the same second.
    let fresh = signed_in(&a, "monalisa").await;
    assert_eq!(status_with(&b.url("/echo"), &fresh).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sessions_gauge_counts_every_replicas_sessions() {
    if !available("the_sessions_gauge_counts_every_replicas_sessions") {
        return;
    }
    let redis = RedisServer::start();
    let admin = format!("127.0.0.1:{}", free_port());
    let a = Harness::start_with_server(
        redis_gate(&redis, "redis", ""),
        &format!("admin_listen = \"{admin}\""),
    )
    .await;
    let gauge = || async {
        let text = get_text(&plain_client(), format!("http://{admin}/metrics")).await;
        text.lines()
            .find_map(|l| l.strip_prefix("gatehouse_sessions_active "))
            .map(|v| v.trim().parse::<u64>().unwrap())
    };
    assert_eq!(gauge().await, Some(0));
    let mona = signed_in(&a, "monalisa").await;
    signed_in(&a, "octocat").await;
    assert_eq!(gauge().await, Some(2));
    plain_client()
        .get(a.url("/oauth2/sign_out"))
        .header("cookie", format!("_gatehouse={mona}"))
        .send()
        .await
        .unwrap();
    assert_eq!(gauge().await, Some(1));
}
