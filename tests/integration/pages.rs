//! The pages people meet: the configurable sign-in page, `/oauth2/me`, and the redirect-loop
//! diagnosis, against the real binary and the mock GitHub.

use crate::common::*;
use std::process::Command;

fn pages_extra(extra: &str) -> GateOptions {
    GateOptions {
        // Appended after `[access]`: the org makes `databio` one of octocat's groups.
        access_extra: format!("allowed_orgs = [\"databio\"]\n{extra}"),
        ..Default::default()
    }
}

async fn body(r: reqwest::Response) -> String {
    r.text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_page_shows_the_configured_name_logo_and_message() {
    let h = Harness::start(pages_extra(
        "[pages]\napp_name = \"Lab <Wiki>\"\nlogo_url = \"data:image/png;base64,iVBORw0KGgo=\"\nmessage = \"Members of databio only.\"\n",
    ))
    .await;
    let r = navigate(&plain_client(), h.url("/oauth2/sign_in?rd=/docs")).await;
    assert_eq!(r.status(), 200);
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    let html = body(r).await;
    for want in [
        "Sign in to Lab &lt;Wiki&gt;",
        r#"<img class="logo" src="data:image/png;base64,iVBORw0KGgo=""#,
        "Members of databio only.",
        "Sign in with GitHub",
        "/oauth2/start?rd=%2Fdocs",
        "width=device-width",
    ] {
        assert!(html.contains(want), "{want} missing:\n{html}");
    }
    assert!(!html.contains("<script") && !html.contains("<link"));

    // Without [pages] the name is public_url's host.
    let plain = Harness::start(GateOptions::default()).await;
    let html = get_text(&plain_client(), plain.url("/oauth2/sign_in")).await;
    assert!(html.contains("Sign in to 127.0.0.1"), "{html}");
}

#[test]
fn a_logo_from_anywhere_but_https_or_data_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gatehouse.toml");
    std::fs::write(
        &path,
        format!(
            "[github]\nclient_id = \"x\"\nclient_secret = \"y\"\n[session]\nsecrets = [\"{}\"]\n[access]\nallowed_users = [\"octocat\"]\n[pages]\nlogo_url = \"http://example.com/logo.png\"\n",
            b64(&KEY_A)
        ),
    )
    .unwrap();
    let out = Command::new(binary())
        .args(["check-config", "--config"])
        .arg(&path)
        .env_remove("GH_CLIENT_ID")
        .env_remove("GH_CLIENT_SECRET")
        .env_remove("GITHUB_USERS")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("pages.logo_url") && stderr.contains("https"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn me_shows_who_you_are_to_browsers_and_userinfo_json_to_scripts() {
    let h = Harness::start(pages_extra("")).await;
    // Signed out: browsers are sent to sign in, scripts get 401.
    let anon = navigate(&plain_client(), h.url("/oauth2/me")).await;
    assert_eq!(anon.status(), 302);
    assert!(location(&anon).starts_with("/oauth2/start?rd="));
    let anon = plain_client()
        .get(h.url("/oauth2/me"))
        .send()
        .await
        .unwrap();
    assert_eq!(anon.status(), 401);
    assert!(anon.headers().contains_key("www-authenticate"));

    let c = browser();
    assert_eq!(h.sign_in(&c, "octocat", "/").await.status(), 302);
    let page = navigate(&c, h.url("/oauth2/me")).await;
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = body(page).await;
    for want in [
        "The Octocat",
        "octocat@example.com",
        "583231",
        r#"<span class="chip">databio</span>"#,
        r#"<span class="chip">viewer</span>"#,
        "Session ends",
        "UTC",
        r#"<img src="https://avatars.githubusercontent.com/u/583231?v=4""#,
        r#"<form method="post" action="/oauth2/sign_out">"#,
    ] {
        assert!(html.contains(want), "{want} missing:\n{html}");
    }

    // Scripts get exactly the userinfo JSON.
    let json = |path: &'static str| {
        let c = c.clone();
        let url = h.url(path);
        async move {
            let r = c
                .get(url)
                .header("accept", "application/json")
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            r.json::<serde_json::Value>().await.unwrap()
        }
    };
    let me = json("/oauth2/me").await;
    assert_eq!(me, json("/oauth2/userinfo").await);
    assert_eq!(me["user"], "octocat");

    // The sign-out button works: the session is gone afterwards.
    let out = c.post(h.url("/oauth2/sign_out")).send().await.unwrap();
    assert_eq!(out.status(), 302);
    assert_eq!(navigate(&c, h.url("/oauth2/me")).await.status(), 302);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secure_cookie_on_plain_http_is_diagnosed_instead_of_looping() {
    let mut h = Harness::start(GateOptions::default()).await;
    h.restart_with(|config| config.replacen("[session]\n", "[session]\ncookie_secure = true\n", 1))
        .await;
    // A browser that keeps its cookies: the Secure session cookie never comes back over http,
    // so the app sends it to sign in again and again.
    let c = browser();
    for i in 1..=3 {
        let r = navigate(&c, h.url("/oauth2/start?rd=/app")).await;
        assert_eq!(r.status(), 302, "start {i} goes to GitHub");
        assert!(location(&r).starts_with(&h.mock_url));
        let counter = set_cookies(&r)
            .into_iter()
            .find(|c| c.starts_with("_gatehouse_loop="))
            .expect("a loop counter cookie");
        assert!(
            counter.contains("HttpOnly") && counter.contains("Path=/oauth2"),
            "{counter}"
        );
    }
    let r = navigate(&c, h.url("/oauth2/start?rd=/app")).await;
    assert_eq!(r.status(), 400);
    let html = body(r).await;
    assert!(html.contains("Sign-in keeps looping"), "{html}");
    assert!(
        html.contains("marked Secure") && html.contains("session.cookie_secure = false"),
        "{html}"
    );
    assert!(
        html.contains("/oauth2/start?rd=%2Fapp"),
        "Try again keeps rd: {html}"
    );
    assert!(h.log().contains("sign-in loop"), "{}", h.log());

    // "Try again" starts a fresh count.
    let again = navigate(&c, h.url("/oauth2/start?rd=/app")).await;
    assert_eq!(again.status(), 302);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completed_sign_ins_never_count_as_a_loop() {
    let h = Harness::start(GateOptions::default()).await;
    let c = browser();
    for _ in 0..5 {
        let start = navigate(&c, h.url("/oauth2/start?rd=/")).await;
        assert_eq!(start.status(), 302, "{}", start.text().await.unwrap());
        let callback = consent(&c, &location(&start), "octocat").await;
        let back = c.get(callback).send().await.unwrap();
        assert_eq!(back.status(), 302);
        assert!(
            set_cookies(&back)
                .iter()
                .any(|c| c.starts_with("_gatehouse_loop=0.")),
            "the callback resets the counter"
        );
        // Signed out again, e.g. the session was ended elsewhere.
        c.post(h.url("/oauth2/sign_out")).send().await.unwrap();
    }
    // Scripts are never counted or shown the page.
    let script = plain_client();
    for _ in 0..5 {
        let r = script.get(h.url("/oauth2/start")).send().await.unwrap();
        assert_eq!(r.status(), 302);
    }
}

/// Twenty people behind one address with the same browser build, each signing in for the first
/// time within a minute: none is told that sign-in loops. A browser whose cookies never come
/// back, from that same address and build, still gets the diagnosis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_first_sign_ins_behind_one_address_are_not_a_loop() {
    // Forty sign-in requests from one address exceed the default rate limit's burst, which is
    // another refusal ("Too many attempts"), not the one under test.
    let h = Harness::start(GateOptions {
        access_extra: "\n[limits]\nauth_per_minute = 0\n".into(),
        ..Default::default()
    })
    .await;
    for person in 1..=20 {
        let c = browser();
        let start = navigate(&c, h.url("/oauth2/start?rd=/")).await;
        assert_eq!(
            start.status(),
            302,
            "person {person}: {}",
            start.text().await.unwrap()
        );
        assert!(location(&start).starts_with(&h.mock_url), "person {person}");
        let callback = consent(&c, &location(&start), "octocat").await;
        let back = c.get(callback).send().await.unwrap();
        assert_eq!(back.status(), 302, "person {person} signs in");
        assert_eq!(location(&back), "/", "person {person}");
    }
    let lost = plain_client();
    for i in 1..=5 {
        let r = navigate(&lost, h.url("/oauth2/start?rd=/")).await;
        assert_eq!(r.status(), 302, "cookieless start {i} still goes to GitHub");
    }
    let r = navigate(&lost, h.url("/oauth2/start?rd=/")).await;
    assert_eq!(r.status(), 400);
    assert!(body(r).await.contains("Sign-in keeps looping"));
}
