//! Watching live credentials: webhooks that land while GitHub is being asked, websockets opened
//! by API keys and OIDC tokens, replayed webhook deliveries, bogus GitHub tokens, and API-key
//! lockouts behind a shared address.

mod common;

use common::*;
use std::time::Duration;

fn org_gate(extra: &str) -> GateOptions {
    GateOptions {
        allowed_users: vec![],
        access_extra: format!("allowed_orgs = [\"databio\"]\n{extra}"),
        github_extra: webhook_options(),
        ..GateOptions::default()
    }
}

async fn mock_call(h: &Harness, method: reqwest::Method, path: &str) {
    let r = plain_client()
        .request(method, format!("{}{path}", h.mock_url))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{path}: {}", r.status());
}

/// Signs `login` in; returns the session cookie value.
async fn session_of(h: &Harness, login: &str) -> String {
    let r = h.sign_in(&browser(), login, "/").await;
    assert_eq!(r.status(), 302, "sign-in of {login}");
    session_cookie(&r)
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
