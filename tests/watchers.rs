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
