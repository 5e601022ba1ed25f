//! GitHub Apps as the gate's GitHub app: user tokens that expire after 8 hours, renewed with
//! GitHub's single-use refresh tokens at the session's membership re-checks, and memberships
//! visible only where the app is installed with Members: read. The mock GitHub is in its
//! GitHub App mode (a client id starting with `Iv`), with its own clock; the gate's clock
//! moves with it through libfaketime.

use crate::common::clock::{self, Movable};
use crate::common::*;
use std::time::Duration;

const APP_ID: &str = "Iv23liGatehouseTest1";
/// GitHub App user tokens live 8 hours; a minute past that.
const PAST_EXPIRY: u64 = 8 * 3600 + 60;

fn app_gate(
    access_extra: &str,
    session_extra: &str,
    env: Vec<(&'static str, String)>,
) -> GateOptions {
    GateOptions {
        client_id: APP_ID,
        allowed_users: vec![],
        access_extra: format!("allowed_orgs = [\"databio\"]\n{access_extra}"),
        session_extra: session_extra.into(),
        env,
        ..GateOptions::default()
    }
}

/// One request with exactly `cookie`: the status and the new session cookie, if one was set.
async fn call(h: &Harness, cookie: &str) -> (u16, Option<String>, Vec<String>) {
    let r = get_with_session(&h.url("/echo"), cookie).await;
    let cookies = set_cookies(&r);
    let renewed = cookies
        .iter()
        .find_map(|c| c.strip_prefix("_gatehouse="))
        .map(|c| c.split(';').next().unwrap().to_string())
        .filter(|c| !c.is_empty());
    (r.status().as_u16(), renewed, cookies)
}

/// What the mock's token endpoint says to a refresh with `refresh_token`.
async fn refresh_at_mock(h: &Harness, refresh_token: &str) -> serde_json::Value {
    plain_client()
        .post(format!("{}/login/oauth/access_token", h.mock_url))
        .header("accept", "application/json")
        .form(&[
            ("client_id", APP_ID),
            ("client_secret", CLIENT_SECRET),
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_github_app_session_lives_past_eight_hours_on_renewed_tokens() {
    let test = "a_github_app_session_lives_past_eight_hours_on_renewed_tokens";
    if !clock::available(test) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut gate_clock = Movable::new(dir.path());
    let h = Harness::start(app_gate("", "", gate_clock.env())).await;
    assert!(h.mock.install_app("databio", APP_ID));
    let mona = session_of(&h, "monalisa").await;
    let first = claims_in(&mona);
    let token = first
        .github_token
        .clone()
        .expect("the GitHub token is kept");
    let refresh = first
        .github_refresh
        .clone()
        .expect("the refresh token is kept");
    assert!(token.starts_with("ghu_"), "a GitHub App user token");
    assert!(refresh.token.starts_with("ghr_"));
    assert!(refresh.expires_at >= first.iat + 8 * 3600 - 5);
    assert_eq!(call(&h, &mona).await.0, 200);

    // Eight hours later, at GitHub and at the gate.
    let mut cookie = mona.clone();
    let mut used = vec![(token, refresh.token)];
    for round in 1..=2 {
        h.mock.advance_clock(PAST_EXPIRY);
        gate_clock.advance(PAST_EXPIRY);
        let before = h.mock.api_request_count();
        let (status, renewed, _) = call(&h, &cookie).await;
        assert_eq!(status, 200, "round {round}: {}", h.log());
        // Renewed before it was presented: GitHub saw no call with the expired token.
        assert_eq!(
            h.mock.api_request_count() - before,
            2,
            "GET /user and one membership call"
        );
        cookie = renewed.expect("the renewed session is handed back");
        let claims = claims_in(&cookie);
        let token = claims.github_token.clone().unwrap();
        let refresh = claims.github_refresh.clone().unwrap();
        assert!(used.iter().all(|(t, r)| *t != token && *r != refresh.token));
        assert!(refresh.expires_at > claims.refreshed_at + 8 * 3600 - 5);
        assert_eq!(claims.groups, vec!["databio".to_string()]);
        used.push((token, refresh.token));
    }
    // GitHub retired each refresh token at its use.
    let answer = refresh_at_mock(&h, &used[0].1).await;
    assert_eq!(answer["error"], "bad_refresh_token", "{answer}");
    let log = h.log();
    for (token, refresh) in &used {
        assert!(
            !log.contains(token.as_str()) && !log.contains(refresh.as_str()),
            "token logged"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_sessions_keep_and_renew_the_refresh_token_too() {
    let test = "server_side_sessions_keep_and_renew_the_refresh_token_too";
    if !clock::available(test) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut gate_clock = Movable::new(dir.path());
    let h = Harness::start(app_gate("", "store = \"memory\"", gate_clock.env())).await;
    h.mock.install_app("databio", APP_ID);
    let mona = session_of(&h, "monalisa").await;
    assert!(!mona.contains("ghr_"));
    for round in 1..=2 {
        h.mock.advance_clock(PAST_EXPIRY);
        gate_clock.advance(PAST_EXPIRY);
        let (status, _, _) = call(&h, &mona).await;
        assert_eq!(status, 200, "round {round}: {}", h.log());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_github_refuses_before_the_gate_expected_is_renewed() {
    // Only GitHub's clock moves: the gate learns of the expiry from GitHub's 401.
    let h = Harness::start(app_gate("refresh_interval = \"1s\"", "", vec![])).await;
    h.mock.install_app("databio", APP_ID);
    let mona = session_of(&h, "monalisa").await;
    h.mock.advance_clock(PAST_EXPIRY);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    // Many tabs at once with the expired token: one renewal, its tokens handed to all (a
    // second renewal with the same refresh token would be refused and end the session).
    let results = futures_util::future::join_all((0..8).map(|_| call(&h, &mona))).await;
    let mut tokens = Vec::new();
    for (status, renewed, _) in results {
        assert_eq!(status, 200, "{}", h.log());
        let renewed = claims_in(&renewed.expect("the renewed session"));
        tokens.push(renewed.github_token.unwrap());
    }
    assert_ne!(Some(&tokens[0]), claims_in(&mona).github_token.as_ref());
    assert!(tokens.iter().all(|t| *t == tokens[0]), "one renewal");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_refusing_the_renewal_ends_the_session() {
    let h = Harness::start(app_gate("refresh_interval = \"1s\"", "", vec![])).await;
    h.mock.install_app("databio", APP_ID);
    let mona = session_of(&h, "monalisa").await;
    // Past the refresh token's 6 months too: GitHub answers bad_refresh_token.
    mock_call(
        &h,
        reqwest::Method::POST,
        &format!("/_mock/clock?advance={}", 200 * 24 * 3600),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let (status, _, cookies) = call(&h, &mona).await;
    assert_eq!(status, 401, "{}", h.log());
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with("_gatehouse=;") || c.contains("Max-Age=0")),
        "the session cookie is cleared: {cookies:?}"
    );
    assert!(h.log().contains("GitHub refused to renew the token"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_github_app_sees_memberships_only_where_it_is_installed() {
    let h = Harness::start(app_gate("", "", vec![])).await;
    // Not installed on databio: GitHub shows the app no membership there.
    let denied = session_of(&h, "monalisa").await;
    assert!(claims_in(&denied).groups.is_empty());
    assert!(h.log().contains("result=\"denied\""), "{}", h.log());
    mock_call(
        &h,
        reqwest::Method::POST,
        &format!("/_mock/orgs/databio/installations/{APP_ID}"),
    )
    .await;
    let mona = session_of(&h, "monalisa").await;
    assert_eq!(claims_in(&mona).groups, vec!["databio".to_string()]);
}

const SPA: &str = "http://127.0.0.1:9/spa/callback";
const VERIFIER: &str = "a-long-enough-pkce-verifier-for-the-tests-0123456789";

/// Gatehouse tokens for `login` through a client sign-in (code + PKCE).
async fn client_tokens(h: &Harness, login: &str) -> serde_json::Value {
    use sha2::Digest;
    let challenge = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        sha2::Sha256::digest(VERIFIER.as_bytes()),
    );
    let browser = browser();
    let start = browser
        .get(h.url("/oauth2/start"))
        .query(&[
            ("client_redirect_uri", SPA),
            ("state", "xyz"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(start.status(), 302, "{}", h.log());
    let callback = consent(&browser, &location(&start), login).await;
    let landed = location(&browser.get(callback).send().await.unwrap());
    let code = query_of(&landed)["code"].clone();
    let (status, pair) = post_json(
        h,
        "/oauth2/token",
        serde_json::json!({"code": code, "client_redirect_uri": SPA, "code_verifier": VERIFIER}),
    )
    .await;
    assert_eq!(status, 200, "{pair}");
    pair
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gatehouse_refresh_after_eight_hours_renews_the_github_token() {
    let test = "a_gatehouse_refresh_after_eight_hours_renews_the_github_token";
    if !clock::available(test) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut gate_clock = Movable::new(dir.path());
    let tokens = format!(
        "\n[tokens]\nhmac_secret = \"{}\"\nclient_redirect_uris = [\"{SPA}\"]\n",
        b64(&[5; 32])
    );
    let h = Harness::start(app_gate(&tokens, "", gate_clock.env())).await;
    h.mock.install_app("databio", APP_ID);
    let mut pair = client_tokens(&h, "monalisa").await;
    for round in 1..=2 {
        h.mock.advance_clock(PAST_EXPIRY);
        gate_clock.advance(PAST_EXPIRY);
        let (status, next) = post_json(
            &h,
            "/oauth2/refresh",
            serde_json::json!({"refresh_token": pair["refresh_token"]}),
        )
        .await;
        assert_eq!(status, 200, "round {round}: {next} {}", h.log());
        pair = next;
    }
    // An expired GitHub token would have been refused (and the refresh with it): renewed.
    assert!(
        h.log().contains("renewed the sign-in's GitHub token"),
        "{}",
        h.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recheck_overlapping_a_renewal_waits_for_it_instead_of_reusing_the_refresh_token() {
    let h = Harness::start(GateOptions {
        github_extra: webhook_options(),
        ..app_gate("refresh_interval = \"1s\"", "", vec![])
    })
    .await;
    h.mock.install_app("databio", APP_ID);
    let mona = session_of(&h, "monalisa").await;
    h.mock.advance_clock(PAST_EXPIRY);
    // GitHub's token endpoint takes 2 s: the first renewal is still in flight when...
    mock_call(
        &h,
        reqwest::Method::POST,
        "/_mock/fail?mode=slow&delay_ms=2000&scope=oauth",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let first = tokio::spawn({
        let url = h.url("/echo");
        let mona = mona.clone();
        async move { get_with_session(&url, &mona).await.status().as_u16() }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    // ...a webhook asks for a re-check from after it started: a second re-check runs, and must
    // not present the refresh token the first one is using (GitHub retires it at that use).
    let event = member_removed("databio", "monalisa", 1_000_001);
    assert_eq!(deliver_webhook(&h, "organization", &event).await, 200);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, renewed, _) = call(&h, &mona).await;
    assert_eq!(status, 200, "{}", h.log());
    assert_eq!(first.await.unwrap(), 200);
    let renewed = claims_in(&renewed.expect("the renewed session"));
    assert_ne!(renewed.github_token, claims_in(&mona).github_token);
    assert!(!h.log().contains("GitHub refused to renew"), "{}", h.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewal_is_kept_even_when_the_memberships_cannot_be_confirmed() {
    let test = "a_renewal_is_kept_even_when_the_memberships_cannot_be_confirmed";
    if !clock::available(test) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut gate_clock = Movable::new(dir.path());
    let h = Harness::start(app_gate("", "", gate_clock.env())).await;
    h.mock.install_app("databio", APP_ID);
    let mona = session_of(&h, "monalisa").await;
    h.mock.advance_clock(PAST_EXPIRY);
    gate_clock.advance(PAST_EXPIRY);
    // The REST API fails, the token endpoint works: renewed, memberships unconfirmed (and
    // past access.stale_grace after 8 hours: refused for now).
    mock_call(&h, reqwest::Method::POST, "/_mock/fail?status=502").await;
    let (status, renewed, _) = call(&h, &mona).await;
    assert_eq!(status, 503, "{}", h.log());
    let renewed = renewed.expect("the renewed GitHub token is handed back with the session");
    let claims = claims_in(&renewed);
    assert_ne!(claims.github_token, claims_in(&mona).github_token);
    assert_eq!(
        claims.refreshed_at,
        claims_in(&mona).refreshed_at,
        "not confirmed"
    );
    // GitHub back: the session carries on with the renewed token (once the failed answer,
    // reused for a few seconds, has run out).
    mock_call(&h, reqwest::Method::POST, "/_mock/fail?status=0").await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let confirmed = loop {
        let (status, confirmed, _) = call(&h, &renewed).await;
        if status == 200 {
            break confirmed;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{status}: {}",
            h.log()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let confirmed = claims_in(&confirmed.expect("the confirmed session"));
    assert_eq!(
        confirmed.github_token, claims.github_token,
        "no second renewal"
    );
}
