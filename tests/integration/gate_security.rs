//! The gate's security invariants (SECURITY.md "Guarantees"), each pinned against the real binary.

use crate::common::*;

const SPOOFS: &[(&str, &str)] = &[
    ("X-Forwarded-User", "admin"),
    ("x_forwarded_user", "admin"),
    ("X-FORWARDED-EMAIL", "admin@evil.com"),
    ("X_Forwarded_Email", "admin@evil.com"),
    ("X-Forwarded-User-Id", "1"),
    ("X-Forwarded-Preferred-Username", "admin"),
    ("X-Forwarded-Groups", "admins"),
    ("x_forwarded_roles", "admin"),
    ("X-Auth-Request-User", "admin"),
    ("Remote-User", "admin"),
    ("X-Forwarded-For", "10.9.9.9"),
    ("X-Real-IP", "10.9.9.9"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spoofed_identity_headers_never_reach_the_upstream() {
    let h = Harness::start(GateOptions::default()).await;

    // Anonymous: the spoofed headers admit nobody, wherever they are sent.
    let anon = plain_client();
    let (status, _) = echo(&anon, h.url("/echo"), SPOOFS).await;
    assert_eq!(status, 401);
    let mut req = anon.get(h.url("/oauth2/auth"));
    for (k, v) in SPOOFS {
        req = req.header(*k, *v);
    }
    assert_eq!(req.send().await.unwrap().status(), 401);

    // Signed in: the upstream sees Gatehouse's values only, in every spelling.
    let client = browser();
    h.sign_in(&client, "octocat", "/").await;
    let (status, seen) = echo(&client, h.url("/echo"), SPOOFS).await;
    assert_eq!(status, 200);
    let headers = seen["headers"].as_object().unwrap();
    assert_eq!(headers["x-forwarded-user"], "octocat");
    assert_eq!(headers["x-forwarded-email"], "octocat@example.com");
    assert_eq!(headers["x-forwarded-user-id"], "583231");
    assert_eq!(headers["x-forwarded-for"], "127.0.0.1");
    assert_eq!(headers["x-real-ip"], "127.0.0.1");
    assert_eq!(headers["x-forwarded-roles"], "viewer");
    for (name, _) in SPOOFS {
        let lower = name.to_ascii_lowercase();
        if lower.contains('_') {
            assert!(
                !headers.contains_key(&lower),
                "{name} passed through: {seen}"
            );
        }
    }
    for absent in ["x-forwarded-groups", "x-auth-request-user", "remote-user"] {
        assert!(
            !headers.contains_key(absent),
            "{absent} passed through: {seen}"
        );
    }
    let text = seen.to_string();
    assert!(
        !text.contains("admin") && !text.contains("10.9.9.9"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_cookie_never_reaches_the_upstream_but_other_cookies_do() {
    let h = Harness::start(GateOptions::default()).await;
    let token = mint(KEY_A, &claims_for("octocat", 583231));
    let cookie = format!("app=1; _gatehouse={token}; _gatehouse_login_abc=x; theme=dark");
    let (status, seen) = echo(&plain_client(), h.url("/echo"), &[("cookie", &cookie)]).await;
    assert_eq!(status, 200);
    assert_eq!(upstream_header(&seen, "cookie"), Some("app=1; theme=dark"));
    assert!(!seen.to_string().contains(&token[..40]));

    // Only our cookie: the header disappears entirely.
    let only = format!("_gatehouse={token}");
    let (_, seen) = echo(&plain_client(), h.url("/echo"), &[("cookie", &only)]).await;
    assert!(upstream_header(&seen, "cookie").is_none(), "{seen}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_cookies_count_as_anonymous_never_as_errors() {
    let h = Harness::start(GateOptions::default()).await;
    let good = mint(KEY_A, &claims_for("octocat", 583231));
    let mut expired_claims = claims_for("octocat", 583231);
    expired_claims.iat -= 7200;
    expired_claims.exp = now() - 10;
    let expired = mint(KEY_A, &expired_claims);
    let wrong_key = mint(KEY_B, &claims_for("octocat", 583231));
    let mut tampered = good.clone().into_bytes();
    let i = good.len() / 2;
    tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let truncated = good[..good.len() - 5].to_string();
    let not_json = {
        let ring = gatehouse::session::KeyRing::new(&[gatehouse::config::SessionKey(KEY_A)]);
        ring.seal(b"not json at all").unwrap()
    };

    assert_eq!(
        echo(
            &plain_client(),
            h.url("/echo"),
            &[("cookie", &format!("_gatehouse={good}"))]
        )
        .await
        .0,
        200
    );
    for (what, value) in [
        ("tampered", tampered.as_str()),
        ("truncated", truncated.as_str()),
        ("expired", expired.as_str()),
        ("wrong key", wrong_key.as_str()),
        ("not json", not_json.as_str()),
        ("garbage", "%%%...."),
        ("empty", ""),
        ("huge", &"A".repeat(6000)),
    ] {
        let cookie = format!("_gatehouse={value}");
        let api = plain_client()
            .get(h.url("/echo"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(api.status(), 401, "{what}");
        let nav = plain_client()
            .get(h.url("/echo"))
            .header("cookie", &cookie)
            .header("accept", "text/html")
            .send()
            .await
            .unwrap();
        assert_eq!(nav.status(), 302, "{what}");
        assert!(location(&nav).starts_with("/oauth2/start"), "{what}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_secrets_old_cookies_still_open_new_ones_use_the_first_key() {
    let h = Harness::start(GateOptions {
        keys: vec![KEY_B, KEY_A],
        ..Default::default()
    })
    .await;
    let old = mint(KEY_A, &claims_for("octocat", 583231));
    let (status, seen) = echo(
        &plain_client(),
        h.url("/echo"),
        &[("cookie", &format!("_gatehouse={old}"))],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(upstream_header(&seen, "x-forwarded-user"), Some("octocat"));

    // A fresh sign-in is sealed with the first secret.
    let client = browser();
    let r = h.sign_in(&client, "octocat", "/").await;
    let fresh = session_cookie(&r);
    let header = base64::Engine::decode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        fresh.split('.').next().unwrap(),
    )
    .unwrap();
    let header: serde_json::Value = serde_json::from_slice(&header).unwrap();
    assert_eq!(header["kid"], gatehouse::session::key_id(&KEY_B));
    assert_eq!(header["alg"], "dir");
    assert_eq!(header["enc"], "A256GCM");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_session_cookies_are_read_and_all_chunks_stripped() {
    let h = Harness::start(GateOptions::default()).await;
    let mut claims = claims_for("octocat", 583231);
    claims.groups = (0..400)
        .map(|i| format!("org-{i:04}/team-{i:04}"))
        .collect();
    let token = mint(KEY_A, &claims);
    assert!(token.len() > 8000);
    let parts: Vec<&str> = token
        .as_bytes()
        .chunks(3800)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    let mut cookie = String::from("keep=1");
    for (i, p) in parts.iter().enumerate() {
        cookie.push_str(&format!("; _gatehouse_{i}={p}"));
    }
    let (status, seen) = echo(&plain_client(), h.url("/echo"), &[("cookie", &cookie)]).await;
    assert_eq!(status, 200);
    assert_eq!(upstream_header(&seen, "x-forwarded-user"), Some("octocat"));
    assert_eq!(upstream_header(&seen, "cookie"), Some("keep=1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_unknown_and_replayed_state_get_400() {
    let h = Harness::start(GateOptions::default()).await;

    // No state at all.
    let r = plain_client()
        .get(h.url("/oauth2/callback?code=abc"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("expired"));

    // Malformed states (they would name a cookie) are refused the same way, never a 500.
    for bad in ["%0Aset-cookie", "a%3Bb", "x".repeat(500).as_str(), "%00"] {
        let r = plain_client()
            .get(h.url(&format!("/oauth2/callback?code=abc&state={bad}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "state {bad:?}");
    }

    // A genuine callback URL used from another browser (no login cookie): 400, JSON for APIs.
    let victim = browser();
    let callback = h.authorize(&victim, "octocat", "/").await;
    let r = plain_client().get(&callback).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let json: serde_json::Value = r.json().await.unwrap();
    assert_eq!(json["error"], "login_expired");

    // The right browser succeeds once; visiting the same callback again is refused.
    let ok = victim.get(&callback).send().await.unwrap();
    assert_eq!(ok.status(), 302, "{}", h.log());
    let replay = victim.get(&callback).send().await.unwrap();
    assert_eq!(replay.status(), 400, "replayed callback accepted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_with_the_original_login_cookie_is_refused() {
    let h = Harness::start(GateOptions::default()).await;
    let c = plain_client();
    let start = c.get(h.url("/oauth2/start?rd=/x")).send().await.unwrap();
    let login_cookie = set_cookies(&start)[0]
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let callback = consent(&c, &location(&start), "octocat").await;
    let first = c
        .get(&callback)
        .header("cookie", &login_cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 302);
    assert_eq!(location(&first), "/x");
    let again = c
        .get(&callback)
        .header("cookie", &login_cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 400);
    // A state that does not match its cookie is refused too.
    let forged = callback.replace("state=", "state=x");
    assert_eq!(
        c.get(&forged)
            .header("cookie", &login_cookie)
            .send()
            .await
            .unwrap()
            .status(),
        400
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_redirect_attempts_land_on_root() {
    let h = Harness::start(GateOptions::default()).await;
    for rd in [
        "//evil.com",
        "https://evil.com",
        "/\\evil.com",
        "%2F%2Fevil.com",
        "/%2F%2Fevil.com",
        "/\t/evil.com",
        "https://evil.com@127.0.0.1/",
        "javascript:alert(1)",
    ] {
        let client = browser();
        let r = h.sign_in(&client, "octocat", rd).await;
        assert_eq!(r.status(), 302, "{rd:?}");
        assert_eq!(location(&r), "/", "rd {rd:?} escaped");
    }
    // A same-origin absolute URL is reduced to its path.
    let client = browser();
    let r = h
        .sign_in(&client, "octocat", &format!("{}/deep/link?q=1", h.gate))
        .await;
    assert_eq!(location(&r), "/deep/link?q=1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_and_cookie_values_are_never_logged() {
    let h = Harness::start(GateOptions::default()).await;
    let client = browser();
    let r = h.sign_in(&client, "octocat", "/").await;
    let cookie = session_cookie(&r);
    echo(&client, h.url("/echo?token=sekrit"), &[]).await;
    let log = h.log();
    assert!(log.contains("sign-in succeeded"), "{log}");
    for secret in [
        CLIENT_SECRET,
        &b64(&KEY_A),
        &cookie[cookie.len() - 30..],
        "gho_",
    ] {
        assert!(!log.contains(secret), "log leaks {secret}");
    }
}
