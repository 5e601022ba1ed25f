//! GitHub's refusals, named: an org's OAuth App access restrictions, SAML single sign-on, a
//! token without `read:org`, the primary and secondary rate limits, and the operator's mistakes
//! GitHub sends to the callback. Each gets its own page and JSON (what happened, who can fix it,
//! the link GitHub gave), a log line and a metric label, and a "Try again" that works at once
//! once it is fixed. The mock GitHub answers each as GitHub does.

use crate::common::*;
use reqwest::Method;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

struct Gate {
    h: Harness,
    admin: String,
}

/// A gate for members of databio (`access_extra` added), with the admin listener for metrics.
async fn gate(access_extra: &str) -> Gate {
    let admin = format!("127.0.0.1:{}", free_port());
    let h = Harness::start_with_server(
        GateOptions {
            allowed_users: vec![],
            access_extra: format!("allowed_orgs = [\"databio\"]\n{access_extra}"),
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

/// `series → value` of every sample of `/metrics`.
async fn scrape(g: &Gate) -> BTreeMap<String, f64> {
    let text = get_text(&plain_client(), format!("{}/metrics", g.admin)).await;
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_string(), value.parse().ok()?))
        })
        .collect()
}

async fn metric(g: &Gate, series: &str) -> f64 {
    scrape(g).await.get(series).copied().unwrap_or_else(|| {
        panic!("no series {series}");
    })
}

/// Sign in as `login` up to GitHub's redirect back, then call the callback as a browser
/// navigation (`page`) or an API client. The client keeps the cookies.
async fn sign_in_answer(
    h: &Harness,
    client: &reqwest::Client,
    login: &str,
    page: bool,
) -> reqwest::Response {
    let callback = h.authorize(client, login, "/echo").await;
    let accept = if page {
        "text/html"
    } else {
        "application/json"
    };
    client
        .get(callback)
        .header("accept", accept)
        .send()
        .await
        .unwrap()
}

async fn json_of(r: reqwest::Response) -> serde_json::Value {
    let text = r.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
}

/// Follow a refusal's `retry_url` as the browser would: a fresh sign-in through GitHub. Returns
/// the callback's answer.
async fn try_again(
    h: &Harness,
    client: &reqwest::Client,
    retry_url: &str,
    login: &str,
) -> reqwest::Response {
    let start = client.get(h.url(retry_url)).send().await.unwrap();
    assert_eq!(start.status(), 302, "Try again starts a sign-in");
    let callback = consent(client, &location(&start), login).await;
    client.get(callback).send().await.unwrap()
}

/// The page's Try again link.
fn try_again_href(page: &str) -> String {
    let at = page.find(">Try again<").expect("a Try again button");
    let href = page[..at].rfind("href=\"").expect("its link") + 6;
    let end = page[href..].find('"').unwrap();
    page[href..href + end].replace("&amp;", "&")
}

/// One request with exactly `cookie`, as an API client or a browser navigation.
async fn with_cookie(h: &Harness, cookie: &str, page: bool) -> reqwest::Response {
    plain_client()
        .get(h.url("/echo"))
        .header(
            "accept",
            if page {
                "text/html"
            } else {
                "application/json"
            },
        )
        .header("cookie", format!("_gatehouse={cookie}"))
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_org_restricting_oauth_apps_is_named_and_its_member_gets_in_at_once_once_approved() {
    let g = gate("").await;
    let h = &g.h;
    mock_call(
        h,
        Method::POST,
        "/_mock/orgs/databio/policy?oauth_app_restrictions=true",
    )
    .await;
    let request_url = format!(
        "{}/settings/connections/applications/{CLIENT_ID}",
        h.mock_url
    );
    let approve_url = format!(
        "{}/organizations/databio/settings/oauth_application_policy",
        h.mock_url
    );

    // An API client: JSON naming the org, who fixes it and both links; no session.
    let r = sign_in_answer(h, &browser(), "monalisa", false).await;
    assert_eq!(r.status(), 403);
    assert!(set_cookies(&r)
        .iter()
        .all(|c| !c.starts_with("_gatehouse=") || c.contains("Max-Age=0")));
    let body = json_of(r).await;
    assert_eq!(body["error"], "github_access_restricted", "{body}");
    assert_eq!(body["reason"], "access_restricted");
    assert_eq!(body["org"], "databio");
    assert_eq!(body["approval_request_url"], request_url.as_str());
    assert_eq!(body["owner_approval_url"], approve_url.as_str());
    assert_eq!(body["retry_url"], "/oauth2/start?rd=%2Fecho");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("an owner of databio"),
        "{body}"
    );

    // A browser: its own page, not "Access denied".
    let client = browser();
    let r = sign_in_answer(h, &client, "monalisa", true).await;
    assert_eq!(r.status(), 403);
    let page = r.text().await.unwrap();
    assert!(page.contains("Organization approval needed"), "{page}");
    assert!(!page.contains("Access denied"), "{page}");
    assert!(
        page.contains(&request_url) && page.contains(&approve_url),
        "{page}"
    );
    let retry = try_again_href(&page);
    assert_eq!(retry, "/oauth2/start?rd=%2Fecho");

    // The operator: a log line and a metric label.
    let log = h.log();
    assert!(
        log.lines().any(|l| l.contains("github_refused")
            && l.contains("access_restricted")
            && l.contains("databio")),
        "{log}"
    );
    let refusals =
        "gatehouse_github_refusals_total{during=\"sign_in\",reason=\"access_restricted\"}";
    assert_eq!(metric(&g, refusals).await, 2.0);
    assert_eq!(
        metric(&g, "gatehouse_logins_total{result=\"failed_unconfirmed\"}").await,
        2.0
    );
    assert_eq!(
        metric(&g, "gatehouse_logins_total{result=\"denied\"}").await,
        0.0
    );

    // An owner approves the app: Try again lets her in at once, no re-check to wait for.
    mock_call(
        h,
        Method::POST,
        &format!("/_mock/orgs/databio/approved_apps/{CLIENT_ID}"),
    )
    .await;
    let r = try_again(h, &client, &retry, "monalisa").await;
    assert_eq!(r.status(), 302, "{}", h.log());
    assert_eq!(location(&r), "/echo");
    let (code, seen) = echo(&client, h.url("/echo"), &[]).await;
    assert_eq!(code, 200);
    assert_eq!(
        upstream_header(&seen, "x-forwarded-groups"),
        Some("databio")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_org_enforcing_saml_gives_its_sso_link_and_signing_in_there_lets_the_member_in() {
    let g = gate("").await;
    let h = &g.h;
    mock_call(h, Method::POST, "/_mock/orgs/databio/policy?saml_sso=true").await;

    let r = sign_in_answer(h, &browser(), "monalisa", false).await;
    assert_eq!(r.status(), 403);
    let body = json_of(r).await;
    assert_eq!(body["error"], "github_sso_required", "{body}");
    assert_eq!(body["org"], "databio");
    let sso_url = body["sso_url"].as_str().unwrap().to_string();
    let prefix = format!("{}/orgs/databio/sso?authorization_request=", h.mock_url);
    assert!(sso_url.starts_with(&prefix), "{sso_url}");

    let client = browser();
    let r = sign_in_answer(h, &client, "monalisa", true).await;
    assert_eq!(r.status(), 403);
    let page = r.text().await.unwrap();
    assert!(page.contains("Single sign-on required"), "{page}");
    assert!(page.contains(&prefix), "the SSO link GitHub gave: {page}");
    assert!(page.contains("Who can fix it: you"), "{page}");
    let retry = try_again_href(&page);

    let log = h.log();
    assert!(
        log.lines()
            .any(|l| l.contains("github_refused") && l.contains("sso_required")),
        "{log}"
    );
    let refusals = "gatehouse_github_refusals_total{during=\"sign_in\",reason=\"sso_required\"}";
    assert_eq!(metric(&g, refusals).await, 2.0);

    // She signs in to the org's single sign-on at the link GitHub gave, then tries again.
    let request = sso_url.split("authorization_request=").nth(1).unwrap();
    let r = plain_client()
        .post(format!("{}/orgs/databio/sso", h.mock_url))
        .form(&[("authorization_request", request)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = try_again(h, &client, &retry, "monalisa").await;
    assert_eq!(r.status(), 302, "{}", h.log());
    let (code, _) = echo(&client, h.url("/echo"), &[]).await;
    assert_eq!(code, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_without_read_org_is_asked_to_sign_in_again_and_then_gets_in() {
    // A session from before the org was added to the config: its token has no read:org.
    let g = gate("refresh_interval = \"1s\"").await;
    let h = &g.h;
    let mut claims = claims_for("monalisa", 1000001);
    claims.github_token = Some(mock_pat_with(h, "monalisa", "?scopes=read:user,user:email").await);
    claims.refreshed_at = now() - 60;
    let cookie = mint(KEY_A, &claims);

    let r = with_cookie(h, &cookie, false).await;
    assert_eq!(r.status(), 403);
    let body = json_of(r).await;
    assert_eq!(body["error"], "github_scope_missing", "{body}");
    assert_eq!(body["missing_scope"], "read:org");
    assert_eq!(body["granted_scopes"], "read:user, user:email");
    assert_eq!(body["retry_url"], "/oauth2/start?rd=%2Fecho");

    let r = with_cookie(h, &cookie, true).await;
    assert_eq!(r.status(), 403);
    let page = r.text().await.unwrap();
    assert!(page.contains("Sign in again to grant access"), "{page}");
    assert!(page.contains("read:org"), "{page}");
    let retry = try_again_href(&page);

    let log = h.log();
    assert!(
        log.lines()
            .any(|l| l.contains("scope_missing") && l.contains("monalisa")),
        "{log}"
    );
    let unconfirmed =
        "gatehouse_membership_rechecks_total{outcome=\"unconfirmed\",reason=\"scope_missing\"}";
    assert!(metric(&g, unconfirmed).await >= 1.0);
    let refusals = "gatehouse_github_refusals_total{during=\"recheck\",reason=\"scope_missing\"}";
    assert!(metric(&g, refusals).await >= 1.0);

    // Signing in again asks GitHub for read:org, and then she is in.
    let client = browser();
    let start = client.get(h.url(&retry)).send().await.unwrap();
    let authorize = location(&start);
    let scope = query_of(&authorize)["scope"].clone();
    assert!(scope.split([' ', ',']).any(|s| s == "read:org"), "{scope}");
    let callback = consent(&client, &authorize, "monalisa").await;
    assert_eq!(client.get(callback).send().await.unwrap().status(), 302);
    assert_eq!(echo(&client, h.url("/echo"), &[]).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_recheck_keeps_the_session_and_says_when_to_try_again() {
    // Timings leave room for a loaded machine: the grace ends 6 s after the sign-in, the
    // limit lifts by itself 15 s after it starts.
    let g = gate("refresh_interval = \"1s\"\nstale_grace = \"5s\"").await;
    let h = &g.h;
    let mona = session_of(h, "monalisa").await;
    // The primary limit, answered with 429.
    mock_call(
        h,
        Method::POST,
        "/_mock/fail?mode=rate_limit&limit=primary&status=429&wait=15",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1300)).await;
    // Due, not confirmed, within the grace: the last known memberships serve.
    assert_eq!(with_cookie(h, &mona, false).await.status(), 200);

    // Past the grace: "could not confirm", with when to try again; the session is not ended.
    let deadline = Instant::now() + Duration::from_secs(12);
    let r = loop {
        let r = with_cookie(h, &mona, false).await;
        match r.status().as_u16() {
            503 => break r,
            200 => assert!(Instant::now() < deadline, "the grace never ended"),
            other => panic!("{other} while rate-limited: {}", h.log()),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let retry_after: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=16).contains(&retry_after), "{retry_after}");
    assert!(
        set_cookies(&r).iter().all(|c| !c.contains("Max-Age=0")),
        "the session is kept: {:?}",
        set_cookies(&r)
    );
    let body = json_of(r).await;
    assert_eq!(body["error"], "github_rate_limited", "{body}");
    assert_eq!(body["reason"], "rate_limited");
    assert_eq!(body["retry_url"], "/echo");
    let r = with_cookie(h, &mona, true).await;
    assert_eq!(r.status(), 503);
    let page = r.text().await.unwrap();
    assert!(page.contains("GitHub is limiting requests"), "{page}");
    assert!(
        page.contains("Nothing about your access has changed"),
        "{page}"
    );
    assert_eq!(try_again_href(&page), "/echo");

    let log = h.log();
    assert!(
        log.lines()
            .any(|l| l.contains("re-check not confirmed") && l.contains("rate_limited")),
        "{log}"
    );
    let m = scrape(&g).await;
    let series = |outcome: &str, reason: &str| {
        m[&format!(
            "gatehouse_membership_rechecks_total{{outcome=\"{outcome}\",reason=\"{reason}\"}}"
        )]
    };
    assert!(series("unconfirmed", "rate_limited") >= 1.0);
    assert_eq!(series("removed", ""), 0.0, "never removed");
    assert_eq!(series("ended", ""), 0.0, "never ended");

    // The limit lifts: the same session gets in again.
    mock_call(h, Method::POST, "/_mock/fail?mode=off").await;
    // Not before the Retry-After GitHub gave (up to 15 s): the gate does not ask sooner.
    let deadline = Instant::now() + Duration::from_secs(25);
    while with_cookie(h, &mona, false).await.status() != 200 {
        assert!(Instant::now() < deadline, "access did not come back");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        metric(
            &g,
            "gatehouse_membership_rechecks_total{outcome=\"confirmed\",reason=\"\"}"
        )
        .await
            >= 1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secondary_rate_limit_at_sign_in_says_wait_a_minute() {
    let g = gate("").await;
    let h = &g.h;
    // 403 with budget left, the secondary message and no retry-after: GitHub says a minute.
    mock_call(
        h,
        Method::POST,
        "/_mock/fail?mode=rate_limit&limit=secondary&status=403",
    )
    .await;
    let r = sign_in_answer(h, &browser(), "monalisa", false).await;
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "60");
    let body = json_of(r).await;
    assert_eq!(body["error"], "github_rate_limited", "{body}");
    assert_eq!(body["reason"], "secondary_rate_limited");
    assert_eq!(body["retry_after"], 60);
    let r = sign_in_answer(h, &browser(), "monalisa", true).await;
    let page = r.text().await.unwrap();
    assert!(page.contains("too many requests in a short time"), "{page}");
    let refusals =
        "gatehouse_github_refusals_total{during=\"sign_in\",reason=\"secondary_rate_limited\"}";
    assert_eq!(metric(&g, refusals).await, 2.0);
    assert!(metric(&g, "gatehouse_github_errors_total{kind=\"rate_limited\"}").await >= 2.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_refusing_the_oauth_app_shows_the_misconfigured_page_not_a_403() {
    let g = gate("").await;
    let h = &g.h;
    // GitHub sends the error to the callback instead of asking the person.
    let refused_at_github = |page: bool| async move {
        let client = browser();
        let start = client
            .get(h.url("/oauth2/start?rd=/echo"))
            .send()
            .await
            .unwrap();
        let authorize = client.get(location(&start)).send().await.unwrap();
        assert_eq!(authorize.status(), 302, "GitHub redirects to the callback");
        let callback = location(&authorize);
        assert!(callback.contains("/oauth2/callback?error="), "{callback}");
        let accept = if page {
            "text/html"
        } else {
            "application/json"
        };
        client
            .get(callback)
            .header("accept", accept)
            .send()
            .await
            .unwrap()
    };

    mock_call(
        h,
        Method::POST,
        "/_mock/fail?mode=authorize_error&error=redirect_uri_mismatch",
    )
    .await;
    let r = refused_at_github(true).await;
    assert_eq!(r.status(), 500);
    let page = r.text().await.unwrap();
    assert!(page.contains("Sign-in is misconfigured"), "{page}");
    assert!(
        page.contains("redirect_uri_mismatch") && page.contains("callback URL"),
        "{page}"
    );
    let r = refused_at_github(false).await;
    assert_eq!(r.status(), 500);
    assert_eq!(json_of(r).await["error"], "gateway_misconfigured");
    let log = h.log();
    assert!(
        log.lines()
            .any(|l| l.contains("GitHub refused to start the sign-in")
                && l.contains("redirect_uri_mismatch")),
        "{log}"
    );
    assert_eq!(
        metric(
            &g,
            "gatehouse_logins_total{result=\"failed_misconfigured\"}"
        )
        .await,
        2.0
    );

    mock_call(
        h,
        Method::POST,
        "/_mock/fail?mode=authorize_error&error=application_suspended",
    )
    .await;
    let r = refused_at_github(true).await;
    assert_eq!(r.status(), 500);
    assert!(r.text().await.unwrap().contains("suspended"));

    // Cancelling at GitHub stays the person's own choice.
    mock_call(
        h,
        Method::POST,
        "/_mock/fail?mode=authorize_error&error=access_denied",
    )
    .await;
    let r = refused_at_github(true).await;
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("Sign-in failed"));
    mock_call(h, Method::POST, "/_mock/fail?mode=off").await;

    // A real mismatch: the app's registered callback is on another host than public_url's.
    // GitHub sends the error there, where this browser has no login cookie: still the
    // operator's page, not "Sign-in expired".
    h.mock.add_app(gatehouse_mock_github::MockApp {
        client_id: CLIENT_ID.into(),
        client_secret: CLIENT_SECRET.into(),
        callback_url: format!("http://localhost:{}/oauth2/callback", h.gate_addr.port()),
    });
    let r = refused_at_github(true).await;
    assert_eq!(r.status(), 500);
    assert!(r.text().await.unwrap().contains("Sign-in is misconfigured"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_org_restricting_the_app_after_sign_in_is_not_confirmed_never_removed() {
    // The grace ends 6 s after the sign-in: room for a loaded machine.
    let g = gate("refresh_interval = \"1s\"\nstale_grace = \"5s\"").await;
    let h = &g.h;
    let mona = session_of(h, "monalisa").await;
    mock_call(
        h,
        Method::POST,
        "/_mock/orgs/databio/policy?oauth_app_restrictions=true",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(
        with_cookie(h, &mona, false).await.status(),
        200,
        "within the grace"
    );
    let deadline = Instant::now() + Duration::from_secs(12);
    let r = loop {
        let r = with_cookie(h, &mona, false).await;
        match r.status().as_u16() {
            403 => break r,
            200 => assert!(Instant::now() < deadline, "the grace never ended"),
            other => panic!("{other} while restricted: {}", h.log()),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert!(set_cookies(&r).iter().all(|c| !c.contains("Max-Age=0")));
    let body = json_of(r).await;
    assert_eq!(body["error"], "github_access_restricted", "{body}");
    let m = scrape(&g).await;
    let rechecks = |outcome: &str, reason: &str| {
        m[&format!(
            "gatehouse_membership_rechecks_total{{outcome=\"{outcome}\",reason=\"{reason}\"}}"
        )]
    };
    assert!(rechecks("unconfirmed", "access_restricted") >= 1.0);
    assert_eq!(rechecks("removed", ""), 0.0);

    // Approved: the same session is let in again at its next re-check (seconds, not the hour).
    mock_call(
        h,
        Method::POST,
        &format!("/_mock/orgs/databio/approved_apps/{CLIENT_ID}"),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while with_cookie(h, &mona, false).await.status() != 200 {
        assert!(Instant::now() < deadline, "access did not come back");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
