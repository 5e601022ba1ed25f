//! GitHub orgs and teams: targeted membership checks at sign-in, the full lists for
//! `groups_header = "all"`, and the live re-check of a session's memberships.

use crate::common::*;
use std::time::{Duration, Instant};

fn org_gate(extra: &str) -> GateOptions {
    GateOptions {
        allowed_users: vec![],
        access_extra: format!("allowed_orgs = [\"databio\"]\n{extra}"),
        ..GateOptions::default()
    }
}

/// One request carrying exactly `cookie` (never updated, like a tab that has not seen the
/// refreshed cookie yet). Returns the status, the upstream's echo and any Set-Cookie values.
async fn call(h: &Harness, cookie: &str) -> (u16, serde_json::Value, Vec<String>) {
    let r = plain_client()
        .get(h.url("/echo"))
        .header("accept", "application/json")
        .header("cookie", format!("_gatehouse={cookie}"))
        .send()
        .await
        .unwrap();
    let cookies = set_cookies(&r);
    let status = r.status().as_u16();
    let body = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body)),
        cookies,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn org_members_are_admitted_and_pending_invitations_are_not() {
    let h = Harness::start(org_gate("")).await;
    let mona = session_of(&h, "monalisa").await;
    let (code, seen, _) = call(&h, &mona).await;
    assert_eq!(code, 200);
    assert_eq!(
        upstream_header(&seen, "x-forwarded-groups"),
        Some("databio")
    );
    // hubot's invitation to databio is pending; mallory is in acme only.
    for login in ["hubot", "mallory"] {
        let cookie = session_of(&h, login).await;
        assert_eq!(call(&h, &cookie).await.0, 403, "{login}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn team_members_are_admitted_and_other_org_members_are_not() {
    let h = Harness::start(GateOptions {
        allowed_users: vec![],
        access_extra: "allowed_teams = [\"databio/core\"]".into(),
        ..GateOptions::default()
    })
    .await;
    let octo = session_of(&h, "octocat").await;
    let (code, seen, _) = call(&h, &octo).await;
    assert_eq!(code, 200);
    assert_eq!(
        upstream_header(&seen, "x-forwarded-groups"),
        Some("databio/core")
    );
    let mona = session_of(&h, "monalisa").await;
    assert_eq!(call(&h, &mona).await.0, 403);
}

async fn join_150_orgs(h: &Harness, login: &str) {
    for i in 0..150 {
        mock_call(h, reqwest::Method::POST, &format!("/_mock/orgs/org-{i:03}")).await;
        mock_call(
            h,
            reqwest::Method::POST,
            &format!("/_mock/orgs/org-{i:03}/members/{login}"),
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_in_150_orgs_costs_one_call_per_configured_org() {
    let h = Harness::start(org_gate("")).await;
    join_150_orgs(&h, "monalisa").await;
    let before = h.mock.api_request_count();
    let mona = session_of(&h, "monalisa").await;
    // GET /user, GET /user/emails, GET /user/memberships/orgs/databio: nothing else.
    assert_eq!(h.mock.api_request_count() - before, 3);
    assert!(mona.len() < 1024, "session cookie is {} bytes", mona.len());
    let (code, seen, _) = call(&h, &mona).await;
    assert_eq!(code, 200);
    assert_eq!(
        upstream_header(&seen, "x-forwarded-groups"),
        Some("databio")
    );
    // Requests never ask GitHub.
    let before = h.mock.api_request_count();
    for _ in 0..20 {
        assert_eq!(call(&h, &mona).await.0, 200);
    }
    assert_eq!(h.mock.api_request_count(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_header_all_lists_every_org_and_team_across_pages() {
    let h = Harness::start(org_gate("groups_header = \"all\"")).await;
    join_150_orgs(&h, "octocat").await;
    let before = h.mock.api_request_count();
    let client = browser();
    assert_eq!(h.sign_in(&client, "octocat", "/").await.status(), 302);
    // user, emails, 1 membership, /user/orgs (2 pages of 100), /user/teams (1 page).
    assert_eq!(h.mock.api_request_count() - before, 6);
    let (code, seen) = echo(&client, h.url("/echo"), &[]).await;
    assert_eq!(code, 200);
    let groups: Vec<&str> = upstream_header(&seen, "x-forwarded-groups")
        .unwrap()
        .split(',')
        .collect();
    assert_eq!(groups.len(), 152, "{groups:?}");
    for g in ["databio", "databio/core", "org-000", "org-149"] {
        assert!(groups.contains(&g), "{g} missing from {groups:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removed_from_the_org_loses_access_at_the_next_recheck() {
    let h = Harness::start(org_gate("refresh_interval = \"2s\"")).await;
    let mona = session_of(&h, "monalisa").await;
    assert_eq!(call(&h, &mona).await.0, 200);
    mock_call(
        &h,
        reqwest::Method::DELETE,
        "/_mock/orgs/databio/members/monalisa",
    )
    .await;
    // Until the re-check is due, the session's memberships stand and GitHub is not asked.
    let before = h.mock.api_request_count();
    assert_eq!(call(&h, &mona).await.0, 200);
    assert_eq!(h.mock.api_request_count(), before);

    tokio::time::sleep(Duration::from_millis(2200)).await;
    // Many tabs at once with the same stale cookie: one re-check, one answer for all.
    let before = h.mock.api_request_count();
    let results = futures_util::future::join_all((0..16).map(|_| call(&h, &mona))).await;
    for (code, seen, _) in &results {
        assert_eq!(*code, 403, "{seen}");
    }
    assert_eq!(
        h.mock.api_request_count() - before,
        2,
        "one re-check: GET /user and one membership call"
    );
    // The refreshed session (memberships now empty) is handed back to the browser.
    let refreshed = results
        .iter()
        .flat_map(|(_, _, c)| c)
        .find_map(|c| c.strip_prefix("_gatehouse="))
        .map(|c| c.split(';').next().unwrap().to_string())
        .expect("a refreshed session cookie");
    let claims = claims_in(&refreshed);
    assert!(claims.groups.is_empty(), "{:?}", claims.groups);
    assert!(claims.refreshed_at >= claims_in(&mona).refreshed_at + 2);
    assert_eq!(call(&h, &refreshed).await.0, 403);
    assert!(
        !h.log().contains(claims.github_token.as_deref().unwrap()),
        "token logged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_down_during_a_recheck_keeps_access_for_the_grace_then_denies() {
    let h = Harness::start(org_gate("refresh_interval = \"1s\"\nstale_grace = \"3s\"")).await;
    let signed_in = Instant::now();
    let mona = session_of(&h, "monalisa").await;
    mock_call(&h, reqwest::Method::POST, "/_mock/fail?status=502").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // Due, GitHub fails, still inside the grace: the last known memberships serve.
    let (code, seen, _) = call(&h, &mona).await;
    assert_eq!(code, 200, "{seen}");
    // Past refresh_interval + stale_grace: refused, with a page that says why.
    tokio::time::sleep(Duration::from_millis(4600).saturating_sub(signed_in.elapsed())).await;
    let (code, seen, _) = call(&h, &mona).await;
    assert_eq!(code, 503, "{seen}");
    assert_eq!(seen["error"], "membership_unconfirmed");
    // GitHub back: the next re-check (failures are retried every few seconds) restores access.
    mock_call(&h, reqwest::Method::POST, "/_mock/fail?status=0").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (code, _, _) = call(&h, &mona).await;
        if code == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "access did not come back: {code}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_github_token_ends_the_session_at_the_recheck() {
    let h = Harness::start(org_gate("refresh_interval = \"1s\"")).await;
    let mona = session_of(&h, "monalisa").await;
    let token = claims_in(&mona)
        .github_token
        .expect("the GitHub token is kept in the session");
    let r = plain_client()
        .delete(format!(
            "{}/api/v3/applications/{CLIENT_ID}/token",
            h.mock_url
        ))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .header("user-agent", "test")
        .json(&serde_json::json!({ "access_token": token }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let (code, _, cookies) = call(&h, &mona).await;
    assert_eq!(code, 401);
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with("_gatehouse=;") || c.contains("Max-Age=0")),
        "the session cookie is cleared: {cookies:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_recheck_delays_a_request_by_a_second_at_most_and_its_answer_still_counts() {
    let h = Harness::start(org_gate("refresh_interval = \"1s\"\nstale_grace = \"60s\"")).await;
    let mona = session_of(&h, "monalisa").await;
    mock_call(
        &h,
        reqwest::Method::DELETE,
        "/_mock/orgs/databio/members/monalisa",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // GitHub answers, but slowly (within github.timeout).
    mock_call(
        &h,
        reqwest::Method::POST,
        "/_mock/fail?mode=slow&delay_ms=1500",
    )
    .await;
    let asked = Instant::now();
    let (code, _, _) = call(&h, &mona).await;
    let waited = asked.elapsed();
    assert_eq!(
        code, 200,
        "within stale_grace the last known memberships serve"
    );
    assert!(
        waited < Duration::from_millis(1800),
        "the request waited {waited:?} on a slow GitHub"
    );
    // The re-check went on without the request; its answer counts for the next one.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(call(&h, &mona).await.0, 403, "{}", h.log());
}

/// A token pair for `login` from `/oauth2/pat` (a personal access token with `read:org`).
async fn bearer_pair(h: &Harness, login: &str) -> serde_json::Value {
    let pat = mock_pat(h, login).await;
    let (status, pair) = post_json(h, "/oauth2/pat", serde_json::json!({"token": pat})).await;
    assert_eq!(status, 200, "{pair}");
    pair
}

/// One request with `Authorization: Bearer <pair's access token>`: status and upstream echo.
async fn call_bearer(h: &Harness, pair: &serde_json::Value) -> (u16, serde_json::Value) {
    let access = pair["access_token"].as_str().unwrap();
    echo(
        &plain_client(),
        h.url("/echo"),
        &[("authorization", &format!("Bearer {access}"))],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_removed_webhook_makes_older_access_tokens_recheck_before_their_next_use() {
    let h = Harness::start(GateOptions {
        github_extra: webhook_options(),
        ..org_gate("")
    })
    .await;
    let mona = bearer_pair(&h, "monalisa").await;
    let octo = bearer_pair(&h, "octocat").await;
    for pair in [&mona, &octo] {
        let (status, seen) = call_bearer(&h, pair).await;
        assert_eq!(status, 200);
        assert_eq!(
            upstream_header(&seen, "x-forwarded-groups"),
            Some("databio")
        );
    }
    // GitHub removes her. Without a word from GitHub, her token keeps its groups.
    mock_call(
        &h,
        reqwest::Method::DELETE,
        "/_mock/orgs/databio/members/monalisa",
    )
    .await;
    assert_eq!(call_bearer(&h, &mona).await.0, 200);

    // The webhook: her token, issued before it, asks GitHub before its next use and is refused.
    let event = member_removed("databio", "monalisa", 1_000_001);
    assert_eq!(deliver_webhook(&h, "organization", &event).await, 200);
    let before = h.mock.api_request_count();
    let (status, seen) = call_bearer(&h, &mona).await;
    assert_eq!(status, 403, "{seen}");
    assert_eq!(
        h.mock.api_request_count() - before,
        2,
        "GET /user and one membership call"
    );
    // Her sign-in's tokens are over: the access token again, and the refresh token.
    assert!(matches!(call_bearer(&h, &mona).await.0, 401 | 403));
    let (status, _) = post_json(
        &h,
        "/oauth2/refresh",
        serde_json::json!({"refresh_token": mona["refresh_token"]}),
    )
    .await;
    assert_eq!(status, 401);
    // Another user's token is untouched, and costs GitHub nothing.
    let before = h.mock.api_request_count();
    assert_eq!(call_bearer(&h, &octo).await.0, 200);
    assert_eq!(h.mock.api_request_count(), before);
    assert!(h.log().contains("token_refused"), "{}", h.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_whose_user_is_still_admitted_rechecks_once_and_keeps_working() {
    let h = Harness::start(GateOptions {
        github_extra: webhook_options(),
        ..org_gate("")
    })
    .await;
    let octo = bearer_pair(&h, "octocat").await;
    assert_eq!(call_bearer(&h, &octo).await.0, 200);
    // Removed from a team, still in the org: GitHub's `membership` `removed` event.
    let event = serde_json::json!({
        "action": "removed",
        "scope": "team",
        "member": {"login": "octocat", "id": 583231},
        "team": {"slug": "core", "id": 3000001},
        "organization": {"login": "databio", "id": 2000001},
        "sender": {"login": "octocat", "id": 583231}
    });
    assert_eq!(deliver_webhook(&h, "membership", &event).await, 200);
    // Past the second of the webhook (times are whole seconds), GitHub is asked once, and
    // what it said is kept for the token's next uses.
    let asked = now();
    while now() == asked {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let before = h.mock.api_request_count();
    for _ in 0..3 {
        let (status, seen) = call_bearer(&h, &octo).await;
        assert_eq!(status, 200, "{seen}");
        assert_eq!(
            upstream_header(&seen, "x-forwarded-groups"),
            Some("databio")
        );
    }
    assert_eq!(h.mock.api_request_count() - before, 2, "one re-check");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_removed_webhook_reaches_raw_github_tokens_the_gate_remembered() {
    let h = Harness::start(GateOptions {
        github_extra: webhook_options(),
        ..org_gate("\n[tokens]\naccept_github_tokens = true\n")
    })
    .await;
    let authorization = format!("token {}", mock_pat(&h, "monalisa").await);
    let client = plain_client();
    let headers = [("authorization", authorization.as_str())];
    let call_raw = || echo(&client, h.url("/echo"), &headers);
    assert_eq!(call_raw().await.0, 200);
    mock_call(
        &h,
        reqwest::Method::DELETE,
        "/_mock/orgs/databio/members/monalisa",
    )
    .await;
    // GitHub is asked about a raw token once every few minutes: until then, the old answer.
    assert_eq!(call_raw().await.0, 200);
    let event = member_removed("databio", "monalisa", 1_000_001);
    assert_eq!(deliver_webhook(&h, "organization", &event).await, 200);
    let (status, seen) = call_raw().await;
    assert_eq!(status, 403, "{seen}");
}
