//! Sign-in through the mock GitHub and what the upstream then receives, against the real binary.

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn happy_path_sets_session_and_forwards_identity() {
    let h = Harness::start(GateOptions::default()).await;
    let client = browser();

    // Anonymous browser navigation is sent to sign in, keeping where it was going.
    let r = navigate(&client, h.url("/echo?x=1")).await;
    assert_eq!(r.status(), 302);
    assert_eq!(location(&r), "/oauth2/start?rd=%2Fecho%3Fx%3D1");

    let r = h.sign_in(&client, "octocat", "/echo?x=1").await;
    assert_eq!(r.status(), 302, "{}", h.log());
    assert_eq!(location(&r), "/echo?x=1");
    let cookie = set_cookies(&r)
        .into_iter()
        .find(|c| c.starts_with("_gatehouse="))
        .unwrap();
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=604800"] {
        assert!(cookie.contains(attr), "{cookie} lacks {attr}");
    }
    assert!(
        !cookie.contains("Secure"),
        "plain-http public_url must not set Secure"
    );
    let value = session_cookie(&r);
    assert!(
        value.len() < 1024,
        "typical session is {} bytes",
        value.len()
    );
    assert_eq!(value.split('.').count(), 5, "compact JWE");

    let api_calls = h.mock.api_request_count();
    let (status, seen) = echo(&client, h.url("/echo"), &[]).await;
    assert_eq!(status, 200);
    assert_eq!(upstream_header(&seen, "x-forwarded-user"), Some("octocat"));
    assert_eq!(
        upstream_header(&seen, "x-forwarded-user-id"),
        Some("583231")
    );
    assert_eq!(
        upstream_header(&seen, "x-forwarded-preferred-username"),
        Some("octocat")
    );
    assert_eq!(
        upstream_header(&seen, "x-forwarded-email"),
        Some("octocat@example.com")
    );
    assert_eq!(upstream_header(&seen, "x-forwarded-proto"), Some("http"));
    assert_eq!(upstream_header(&seen, "x-forwarded-for"), Some("127.0.0.1"));
    assert!(
        upstream_header(&seen, "cookie").is_none(),
        "session cookie reached the app: {seen}"
    );

    // The hot path never calls GitHub.
    for _ in 0..20 {
        assert_eq!(echo(&client, h.url("/echo"), &[]).await.0, 200);
    }
    assert_eq!(h.mock.api_request_count(), api_calls);

    let info: serde_json::Value = client
        .get(h.url("/oauth2/userinfo"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["user"], "octocat");
    assert_eq!(info["user_id"], "583231");
    assert_eq!(info["email"], "octocat@example.com");
    assert_eq!(info["preferredUsername"], "octocat");
    assert!(info["expires_at"].as_u64().unwrap() > now());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unverified_primary_email_is_not_an_identity() {
    let h = Harness::start(GateOptions::default()).await;
    let client = browser();
    assert_eq!(h.sign_in(&client, "hubot", "/").await.status(), 302);
    let (status, seen) = echo(&client, h.url("/echo"), &[]).await;
    assert_eq!(status, 200);
    assert_eq!(upstream_header(&seen, "x-forwarded-user"), Some("hubot"));
    assert!(
        upstream_header(&seen, "x-forwarded-email").is_none(),
        "{seen}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_allowed_user_gets_403_naming_the_login() {
    let h = Harness::start(GateOptions::default()).await;
    let client = browser();
    assert_eq!(h.sign_in(&client, "mallory", "/").await.status(), 302);

    let page = navigate(&client, h.url("/")).await;
    assert_eq!(page.status(), 403);
    let body = page.text().await.unwrap();
    assert!(body.contains("mallory"), "{body}");
    assert!(
        body.contains("/oauth2/sign_out") && body.contains("Sign out"),
        "{body}"
    );

    let api = client.get(h.url("/api/items")).send().await.unwrap();
    assert_eq!(api.status(), 403);
    let json: serde_json::Value = api.json().await.unwrap();
    assert_eq!(json["error"], "forbidden");

    assert_eq!(
        client
            .get(h.url("/oauth2/auth"))
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(
        client
            .get(h.url("/oauth2/userinfo"))
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_list_is_case_insensitive_and_github_users_env_adds_logins() {
    let h = Harness::start(GateOptions {
        allowed_users: vec!["OCTOCAT"],
        env: vec![("GITHUB_USERS", "someone, mallory".into())],
        ..Default::default()
    })
    .await;
    for login in ["octocat", "mallory"] {
        let client = browser();
        h.sign_in(&client, login, "/").await;
        assert_eq!(echo(&client, h.url("/echo"), &[]).await.0, 200, "{login}");
    }
    let client = browser();
    h.sign_in(&client, "monalisa", "/").await;
    assert_eq!(echo(&client, h.url("/echo"), &[]).await.0, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn org_and_team_allow_lists_use_active_memberships_only() {
    let h = Harness::start(GateOptions {
        allowed_users: vec!["nobody-in-particular"],
        access_extra: "allowed_orgs = [\"databio\"]\nallowed_teams = [\"databio/core\"]".into(),
        ..Default::default()
    })
    .await;
    // The authorize URL asks for read:org because org rules exist.
    let start = plain_client()
        .get(h.url("/oauth2/start"))
        .send()
        .await
        .unwrap();
    assert!(
        location(&start).contains("read%3Aorg"),
        "{}",
        location(&start)
    );

    let client = browser();
    h.sign_in(&client, "octocat", "/").await;
    let (status, seen) = echo(&client, h.url("/echo"), &[]).await;
    assert_eq!(status, 200);
    assert_eq!(
        upstream_header(&seen, "x-forwarded-groups"),
        Some("databio,databio/core")
    );

    // hubot's databio membership is only pending: not admitted.
    let client = browser();
    h.sign_in(&client, "hubot", "/").await;
    assert_eq!(echo(&client, h.url("/echo"), &[]).await.0, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forward_auth_endpoint_answers_202_401_403() {
    let h = Harness::start(GateOptions::default()).await;
    let anon = plain_client()
        .get(h.url("/oauth2/auth"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(anon.status(), 401, "auth_request targets never redirect");

    let client = browser();
    h.sign_in(&client, "octocat", "/").await;
    let ok = client.get(h.url("/oauth2/auth")).send().await.unwrap();
    assert_eq!(ok.status(), 202);
    let header = |n: &str| ok.headers().get(n).map(|v| v.to_str().unwrap().to_string());
    assert_eq!(header("x-auth-request-user").as_deref(), Some("octocat"));
    assert_eq!(
        header("x-auth-request-email").as_deref(),
        Some("octocat@example.com")
    );
    // No org rules, so no groups: the header is left out rather than sent empty.
    assert_eq!(header("x-auth-request-groups"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_out_ends_the_session() {
    let h = Harness::start(GateOptions::default()).await;
    let client = browser();
    h.sign_in(&client, "octocat", "/").await;
    assert_eq!(echo(&client, h.url("/echo"), &[]).await.0, 200);

    let out = client.post(h.url("/oauth2/sign_out")).send().await.unwrap();
    assert_eq!(out.status(), 302);
    assert_eq!(location(&out), "/oauth2/sign_in");
    let cleared = set_cookies(&out);
    assert!(
        cleared
            .iter()
            .any(|c| c.starts_with("_gatehouse=;") && c.contains("Max-Age=0")),
        "{cleared:?}"
    );
    assert_eq!(echo(&client, h.url("/echo"), &[]).await.0, 401);

    // GET works too (oauth2-proxy compatible) and honours a safe rd.
    h.sign_in(&client, "octocat", "/").await;
    let out = client
        .get(h.url("/oauth2/sign_out?rd=/bye"))
        .send()
        .await
        .unwrap();
    assert_eq!(location(&out), "/bye");
    assert_eq!(echo(&client, h.url("/echo"), &[]).await.0, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_at_github_shows_a_page_with_a_way_back() {
    let h = Harness::start(GateOptions::default()).await;
    let client = browser();
    let callback = h.authorize(&client, "octocat", "/").await;
    let state = url::Url::parse(&callback)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let cancelled = format!("/oauth2/callback?error=access_denied&state={state}");
    let r = navigate(&client, h.url(&cancelled)).await;
    assert_eq!(r.status(), 403);
    let body = r.text().await.unwrap();
    assert!(
        body.contains("access was not granted") && body.contains("/oauth2/start"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_down_during_sign_in_is_a_502_that_says_so() {
    let h = Harness::start(GateOptions::default()).await;
    let client = browser();
    let callback = h.authorize(&client, "octocat", "/").await;
    plain_client()
        .post(format!("{}/_mock/fail?status=503", h.mock_url))
        .send()
        .await
        .unwrap();
    let r = navigate(&client, callback).await;
    assert_eq!(r.status(), 502);
    assert!(r.text().await.unwrap().contains("GitHub"));
    assert!(!h.log().contains(CLIENT_SECRET), "secret in log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_down_is_a_502_page() {
    let dead: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let h = Harness::start(GateOptions {
        upstream: Some(dead),
        ..Default::default()
    })
    .await;
    let client = browser();
    h.sign_in(&client, "octocat", "/").await;
    let page = navigate(&client, h.url("/")).await;
    assert_eq!(page.status(), 502);
    // The gate closes the connection after a failed proxy, and says so.
    assert_eq!(page.headers().get("connection").unwrap(), "close");
    assert!(page.text().await.unwrap().contains("did not answer"));
    let api = client.get(h.url("/x")).send().await.unwrap();
    assert_eq!(api.status(), 502);
    let json: serde_json::Value = api.json().await.unwrap();
    assert_eq!(json["error"], "upstream_unavailable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_endpoints_ping_ready_sign_in_and_unknown() {
    let h = Harness::start(GateOptions::default()).await;
    let c = plain_client();
    let ping = c.get(h.url("/ping")).send().await.unwrap();
    assert_eq!(ping.status(), 200);
    assert_eq!(c.get(h.url("/ready")).send().await.unwrap().status(), 200);
    let page = c.get(h.url("/oauth2/sign_in?rd=/x")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let body = page.text().await.unwrap();
    assert!(
        body.contains("Sign in with GitHub") && body.contains("/oauth2/start?rd=%2Fx"),
        "{body}"
    );
    assert_eq!(
        c.get(h.url("/oauth2/nope")).send().await.unwrap().status(),
        404
    );
    assert_eq!(
        c.delete(h.url("/oauth2/start"))
            .send()
            .await
            .unwrap()
            .status(),
        405
    );
    let anon = c.get(h.url("/oauth2/userinfo")).send().await.unwrap();
    assert_eq!(anon.status(), 401);
    assert!(anon.headers().get("www-authenticate").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_client_secret_is_reported_as_the_operators_problem() {
    let h = Harness::start(GateOptions {
        client_secret: "not-the-secret",
        ..Default::default()
    })
    .await;
    let client = browser();
    let callback = h.authorize(&client, "octocat", "/").await;
    let r = navigate(&client, callback).await;
    assert_eq!(r.status(), 500);
    let body = r.text().await.unwrap();
    assert!(body.contains("github.client_secret"), "{body}");
    let log = h.log();
    assert!(log.contains("incorrect_client_credentials"), "{log}");
    assert!(!log.contains("not-the-secret"), "secret in log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_takes_rd_from_x_auth_request_redirect_like_oauth2_proxy() {
    let h = Harness::start(GateOptions::default()).await;
    let client = browser();
    let start = client
        .get(h.url("/oauth2/start"))
        .header("x-auth-request-redirect", "/reports?year=2026&q=a%20b")
        .send()
        .await
        .unwrap();
    let callback = consent(&client, &location(&start), "octocat").await;
    let back = client.get(callback).send().await.unwrap();
    assert_eq!(location(&back), "/reports?year=2026&q=a%20b");
}
