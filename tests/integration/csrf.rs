//! Cross-site requests through the running gate: Gatehouse's state-changing endpoints answer
//! only requests this site made (`Origin`, `Sec-Fetch-Site`), with the body type each takes,
//! so another site cannot sign a browser in as someone else (login CSRF through
//! `/oauth2/pat`), sign it out, or act as an admin. Scripts without those headers still work.

use crate::common::*;
use serde_json::{json, Value};

const SPA_ORIGIN: &str = "https://spa.example";

fn csrf_gate() -> GateOptions {
    GateOptions {
        access_extra: format!(
            "admin_users = [\"octocat\"]\n\n[tokens]\nclient_redirect_uris = [\"{SPA_ORIGIN}/callback\"]\n"
        ),
        ..GateOptions::default()
    }
}

/// What a browser sends along with a request another site's page made.
const CROSS_SITE: [(&str, &str); 3] = [
    ("origin", "https://evil.example"),
    ("sec-fetch-site", "cross-site"),
    ("sec-fetch-mode", "navigate"),
];

/// POST `body` to `path` with `headers`; the status, the `Set-Cookie` values and the body.
async fn post(
    h: &Harness,
    path: &str,
    headers: &[(&str, &str)],
    body: impl Into<reqwest::Body>,
) -> (u16, Vec<String>, String) {
    let mut req = plain_client().post(h.url(path));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.body(body).send().await.unwrap();
    let cookies = set_cookies(&r);
    (r.status().as_u16(), cookies, r.text().await.unwrap())
}

fn sets_session(cookies: &[String]) -> bool {
    cookies
        .iter()
        .any(|c| c.starts_with("_gatehouse") && !c.contains("Max-Age=0"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cross_site_text_plain_form_cannot_sign_a_browser_in_through_pat() {
    let h = Harness::start(csrf_gate()).await;
    let token = mock_pat(&h, "octocat").await;
    // What `<form enctype="text/plain"><input name='{"token":"ghp_…","x":"' value='"}'>` posts.
    let shaped = format!(r#"{{"token":"{token}","x":"="}}"#);
    assert!(serde_json::from_str::<Value>(&shaped).is_ok());

    let mut attacks: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("a browser form from another site", CROSS_SITE.to_vec()),
        ("Origin only", vec![("origin", "https://evil.example")]),
        (
            "Sec-Fetch-Site only",
            vec![("sec-fetch-site", "cross-site")],
        ),
        ("a sibling subdomain", vec![("sec-fetch-site", "same-site")]),
        ("a sandboxed frame", vec![("origin", "null")]),
    ];
    let other_scheme = format!("https://{}", h.gate_addr);
    attacks.push((
        "the gate's host on https",
        vec![("origin", other_scheme.as_str())],
    ));
    let lookalike = format!("http://127.0.0.1.evil.example:{}", h.gate_addr.port());
    attacks.push(("a look-alike host", vec![("origin", lookalike.as_str())]));
    for (name, mut headers) in attacks {
        headers.push(("content-type", "text/plain"));
        let (status, cookies, body) = post(&h, "/oauth2/pat", &headers, shaped.clone()).await;
        assert!(matches!(status, 403 | 415), "{name}: {status} {body}");
        assert!(!sets_session(&cookies), "{name}: {cookies:?}");
        // Even with the right type, another site is refused.
        headers.pop();
        headers.push(("content-type", "application/json"));
        let (status, cookies, body) = post(&h, "/oauth2/pat", &headers, shaped.clone()).await;
        assert_eq!(status, 403, "{name}: {body}");
        assert!(!sets_session(&cookies), "{name}: {cookies:?}");
        if !headers.contains(&("sec-fetch-mode", "navigate")) {
            let answer: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(answer["error"], "cross_site_request", "{name}: {body}");
        }
    }
    // The browser form itself gets a page saying what happened.
    let (status, _, page) = post(
        &h,
        "/oauth2/pat",
        &[
            CROSS_SITE.as_slice(),
            &[("content-type", "application/json")],
        ]
        .concat(),
        shaped.clone(),
    )
    .await;
    assert_eq!(status, 403);
    assert!(
        page.contains("<!doctype html>") && page.contains("another site"),
        "{page}"
    );
    assert!(h.log().contains("cross_site_refused"), "{}", h.log());
    assert!(!h.log().contains(&token), "tokens are never logged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pat_takes_json_only_and_same_origin_posts_still_work() {
    let h = Harness::start(csrf_gate()).await;
    let token = mock_pat(&h, "octocat").await;
    let body = json!({ "token": token }).to_string();
    // No Origin at all, but not JSON: 415 naming the type, and no cookie.
    for (name, headers) in [
        ("text/plain", vec![("content-type", "text/plain")]),
        (
            "a form",
            vec![("content-type", "application/x-www-form-urlencoded")],
        ),
        ("no type", vec![]),
        (
            "two types",
            vec![
                ("content-type", "application/json"),
                ("content-type", "text/plain"),
            ],
        ),
    ] {
        let (status, cookies, answer) = post(&h, "/oauth2/pat", &headers, body.clone()).await;
        assert_eq!(status, 415, "{name}: {answer}");
        assert!(!sets_session(&cookies), "{name}");
        let answer: Value = serde_json::from_str(&answer).unwrap();
        assert_eq!(answer["error"], "unsupported_media_type", "{name}");
        assert_eq!(answer["expected"], "application/json", "{name}");
    }
    // This site's own page posting JSON (any case, with a charset): signed in.
    let own_origin = h.gate.clone();
    let (status, cookies, answer) = post(
        &h,
        "/oauth2/pat",
        &[
            ("origin", own_origin.as_str()),
            ("sec-fetch-site", "same-origin"),
            ("content-type", "Application/JSON; charset=utf-8"),
        ],
        body.clone(),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert!(sets_session(&cookies), "{cookies:?}");
    // A script without Origin or Sec-Fetch headers (curl): as before.
    let (status, cookies, answer) = post(
        &h,
        "/oauth2/pat",
        &[("content-type", "application/json")],
        body,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert!(sets_session(&cookies));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_site_sign_out_and_admin_requests_are_refused() {
    let h = Harness::start(csrf_gate()).await;
    let octo = {
        let r = h.sign_in(&browser(), "octocat", "/").await;
        session_cookie(&r)
    };
    let mona = {
        let r = h.sign_in(&browser(), "monalisa", "/").await;
        session_cookie(&r)
    };
    let cookie = format!("_gatehouse={octo}");
    for (name, path, body, content_type) in [
        ("sign out", "/oauth2/sign_out", "", None),
        (
            "sign out everywhere (form)",
            "/oauth2/sign_out",
            "everywhere=1",
            Some("application/x-www-form-urlencoded"),
        ),
        (
            "sign out everywhere (query)",
            "/oauth2/sign_out?everywhere=1",
            "",
            None,
        ),
    ] {
        let mut headers = CROSS_SITE.to_vec();
        headers.push(("cookie", cookie.as_str()));
        if let Some(t) = content_type {
            headers.push(("content-type", t));
        }
        let (status, cookies, _) = post(&h, path, &headers, body).await;
        assert_eq!(status, 403, "{name}");
        assert!(
            cookies.is_empty(),
            "{name}: the cookie was touched: {cookies:?}"
        );
        assert_eq!(
            get_with_session(&h.url("/echo"), &octo).await.status(),
            200,
            "{name}: the session still works"
        );
    }
    // The admin API: another site cannot end someone's sessions with the admin's cookie.
    let r = plain_client()
        .delete(h.url("/oauth2/admin/users/monalisa/sessions"))
        .header("cookie", &cookie)
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let answer: Value = r.json().await.unwrap();
    assert_eq!(answer["error"], "cross_site_request");
    assert_eq!(get_with_session(&h.url("/echo"), &mona).await.status(), 200);
    // The same from the gate's own page works.
    let r = plain_client()
        .delete(h.url("/oauth2/admin/users/monalisa/sessions"))
        .header("cookie", &cookie)
        .header("origin", &h.gate)
        .header("sec-fetch-site", "same-origin")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(get_with_session(&h.url("/echo"), &mona).await.status(), 401);
    // A sign-out from this site (the Sign out button: a form with no fields) still works.
    let own_origin = h.gate.clone();
    let (status, cookies, _) = post(
        &h,
        "/oauth2/sign_out",
        &[
            ("cookie", cookie.as_str()),
            ("origin", own_origin.as_str()),
            ("sec-fetch-site", "same-origin"),
            ("content-type", "application/x-www-form-urlencoded"),
        ],
        "",
    )
    .await;
    assert_eq!(status, 302);
    assert!(
        cookies.iter().any(|c| c.contains("Max-Age=0")),
        "{cookies:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_and_refresh_work_for_scripts_and_configured_clients_only() {
    let h = Harness::start(csrf_gate()).await;
    // A code for the SPA, through the browser part of a client sign-in.
    let client = browser();
    let start = client
        .get(h.url("/oauth2/start"))
        .query(&[
            ("client_redirect_uri", format!("{SPA_ORIGIN}/callback")),
            ("state", "s".into()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(start.status(), 302);
    let callback = consent(&client, &location(&start), "octocat").await;
    let landed = location(&client.get(callback).send().await.unwrap());
    let code = query_of(&landed)["code"].clone();
    let exchange = json!({"code": code, "client_redirect_uri": format!("{SPA_ORIGIN}/callback")});

    // Another site cannot spend the code, whatever type it says.
    for content_type in ["text/plain", "application/json"] {
        let mut headers = CROSS_SITE.to_vec();
        headers.push(("content-type", content_type));
        let (status, _, _) = post(&h, "/oauth2/token", &headers, exchange.to_string()).await;
        assert_eq!(status, 403, "{content_type}");
    }
    // curl-style JSON (no Origin): tokens.
    let (status, _, answer) = post(
        &h,
        "/oauth2/token",
        &[("content-type", "application/json")],
        exchange.to_string(),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let pair: Value = serde_json::from_str(&answer).unwrap();
    let refresh = json!({ "refresh_token": pair["refresh_token"] }).to_string();

    // The refresh endpoint: text/plain is not JSON here either.
    let (status, _, answer) = post(
        &h,
        "/oauth2/refresh",
        &[("content-type", "text/plain")],
        refresh.clone(),
    )
    .await;
    assert_eq!(status, 415, "{answer}");
    // The configured SPA calls it with CORS from its own origin (a cross-site fetch): allowed,
    // and it can read the answer.
    let r = plain_client()
        .post(h.url("/oauth2/refresh"))
        .header("origin", SPA_ORIGIN)
        .header("sec-fetch-site", "cross-site")
        .header("sec-fetch-mode", "cors")
        .header("content-type", "application/json")
        .body(refresh)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["access-control-allow-origin"], SPA_ORIGIN);
    let pair: Value = r.json().await.unwrap();
    // Another origin is refused before the token is looked at; the SPA's token still works.
    let refresh = json!({ "refresh_token": pair["refresh_token"] }).to_string();
    let r = plain_client()
        .post(h.url("/oauth2/refresh"))
        .header("origin", "https://evil.example")
        .header("content-type", "application/json")
        .body(refresh.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.headers().get("access-control-allow-origin").is_none());
    let (status, _, answer) = post(
        &h,
        "/oauth2/refresh",
        &[("content-type", "application/json")],
        refresh,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    // The preflight is answered as before.
    let r = plain_client()
        .request(reqwest::Method::OPTIONS, h.url("/oauth2/token"))
        .header("origin", SPA_ORIGIN)
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(r.headers()["access-control-allow-origin"], SPA_ORIGIN);
}

/// Two sessions of monalisa (laptop, phone) and one of octocat.
async fn three_sessions(h: &Harness) -> (String, String, String) {
    let mut cookies = Vec::new();
    for login in ["monalisa", "monalisa", "octocat"] {
        let r = h.sign_in(&browser(), login, "/").await;
        assert_eq!(r.status(), 302, "sign-in of {login}");
        cookies.push(session_cookie(&r));
    }
    let octo = cookies.pop().unwrap();
    let phone = cookies.pop().unwrap();
    (cookies.pop().unwrap(), phone, octo)
}

async fn works(h: &Harness, cookie: &str) -> bool {
    match get_with_session(&h.url("/echo"), cookie)
        .await
        .status()
        .as_u16()
    {
        200 => true,
        401 => false,
        other => panic!("unexpected {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_out_everywhere_needs_a_same_origin_post_and_a_get_only_asks() {
    let h = Harness::start(csrf_gate()).await;
    let (laptop, phone, octo) = three_sessions(&h).await;

    // A GET (a link, an <img> on another site): a confirmation page, nothing changes.
    let r = plain_client()
        .get(h.url("/oauth2/sign_out?everywhere=1&rd=/bye"))
        .header("cookie", format!("_gatehouse={phone}"))
        .header("accept", "text/html")
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(set_cookies(&r).is_empty(), "{:?}", set_cookies(&r));
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let page = r.text().await.unwrap();
    for want in [
        r#"<form method="post" action="/oauth2/sign_out">"#,
        r#"<input type="hidden" name="everywhere" value="1">"#,
        r#"<input type="hidden" name="rd" value="/bye">"#,
        "Sign out everywhere",
    ] {
        assert!(page.contains(want), "{want} missing:\n{page}");
    }
    for cookie in [&laptop, &phone, &octo] {
        assert!(works(&h, cookie).await, "a GET ended a session");
    }

    // The page's form posted from another site: refused, every session still works.
    let form = [
        ("cookie", format!("_gatehouse={phone}")),
        ("content-type", "application/x-www-form-urlencoded".into()),
    ];
    let mut headers: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    headers.extend(CROSS_SITE);
    let (status, cookies, _) =
        post(&h, "/oauth2/sign_out", &headers, "everywhere=1&rd=%2Fbye").await;
    assert_eq!(status, 403);
    assert!(cookies.is_empty());
    for cookie in [&laptop, &phone, &octo] {
        assert!(works(&h, cookie).await, "a cross-site POST ended a session");
    }

    // The page's form posted by this site (what the browser sends for the button): every
    // session of the user ends, and nobody else's.
    let own_origin = h.gate.clone();
    let mut headers: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    headers.extend([
        ("origin", own_origin.as_str()),
        ("sec-fetch-site", "same-origin"),
        ("sec-fetch-mode", "navigate"),
    ]);
    let r = {
        let mut req = plain_client().post(h.url("/oauth2/sign_out"));
        for (k, v) in &headers {
            req = req.header(*k, *v);
        }
        req.body("everywhere=1&rd=%2Fbye").send().await.unwrap()
    };
    assert_eq!(r.status(), 302);
    assert_eq!(location(&r), "/bye");
    assert!(set_cookies(&r).iter().any(|c| c.contains("Max-Age=0")));
    assert!(
        !works(&h, &laptop).await,
        "the other session of the user ended too"
    );
    assert!(!works(&h, &phone).await);
    assert!(works(&h, &octo).await, "other users are untouched");
    assert!(h.log().contains("signed out everywhere"), "{}", h.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_out_everywhere_takes_json_or_the_query_from_scripts() {
    let h = Harness::start(csrf_gate()).await;
    let (laptop, phone, octo) = three_sessions(&h).await;
    // JSON from a script: `everywhere` may be a boolean.
    let cookie = format!("_gatehouse={phone}");
    let (status, _, _) = post(
        &h,
        "/oauth2/sign_out",
        &[
            ("cookie", cookie.as_str()),
            ("content-type", "application/json"),
        ],
        r#"{"everywhere": true, "rd": "/bye"}"#,
    )
    .await;
    assert_eq!(status, 302);
    assert!(!works(&h, &laptop).await && !works(&h, &phone).await);
    // A body that is not what it says it is changes nothing.
    let octo_cookie = format!("_gatehouse={octo}");
    let (status, _, _) = post(
        &h,
        "/oauth2/sign_out",
        &[
            ("cookie", octo_cookie.as_str()),
            ("content-type", "application/json"),
        ],
        "everywhere=1",
    )
    .await;
    assert_eq!(status, 400);
    assert!(works(&h, &octo).await);
    // The query on a POST, as before.
    let (status, _, _) = post(
        &h,
        "/oauth2/sign_out?everywhere=1",
        &[("cookie", octo_cookie.as_str())],
        "",
    )
    .await;
    assert_eq!(status, 302);
    assert!(!works(&h, &octo).await);
}
