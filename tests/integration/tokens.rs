//! Tokens through the running gate: the SPA/CLI code exchange, bearer access tokens, refresh
//! rotation and theft detection, personal access tokens, API keys, OIDC tokens from a CI
//! issuer, the signed identity the upstream can verify, and `gatehouse login` end to end.

use crate::common::*;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{json, Value};
use sha2::Digest;

const SPA: &str = "http://127.0.0.1:9/spa/callback";
const HMAC: [u8; 32] = [5; 32];
const ROLELESS_KEY: &str = "gk_a-key-whose-entry-grants-no-role";

/// The `hash` entry for `key` (as `gatehouse hash-key` makes it), with a fixed salt.
fn key_hash(key: &str) -> String {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let salt = [1u8; 16];
    let mut h = sha2::Sha256::new();
    h.update(salt);
    h.update(key.as_bytes());
    format!("sha256${}${}", b64.encode(salt), b64.encode(h.finalize()))
}

const VERIFIER: &str = "a-long-enough-pkce-verifier-for-the-tests-0123456789";

fn challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()))
}

/// A CI-style OIDC issuer on loopback: a P-256 key and its JWKS.
struct Issuer {
    url: String,
    key: EncodingKey,
}

impl Issuer {
    async fn start() -> Issuer {
        use p256::pkcs8::{EncodePrivateKey, LineEnding};
        let secret = p256::SecretKey::random(&mut p256::elliptic_curve::rand_core::OsRng);
        let pem = secret.to_pkcs8_pem(LineEnding::LF).unwrap();
        let mut jwk: Value = serde_json::from_str(&secret.public_key().to_jwk_string()).unwrap();
        jwk["kid"] = json!("ci-key-1");
        jwk["alg"] = json!("ES256");
        jwk["use"] = json!("sig");
        let jwks = json!({ "keys": [jwk] });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new().route(
            "/jwks",
            axum::routing::get(move || {
                let jwks = jwks.clone();
                async move { axum::Json(jwks) }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        Issuer {
            url: format!("http://{addr}"),
            key: EncodingKey::from_ec_pem(pem.as_bytes()).unwrap(),
        }
    }

    fn token(&self, aud: &str, repository: &str) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some("ci-key-1".into());
        let claims = json!({
            "iss": self.url, "aud": aud, "sub": "repo:databio/pephub:ref:refs/heads/main",
            "repository": repository, "ref": "refs/heads/main",
            "iat": now(), "exp": now() + 300,
        });
        jsonwebtoken::encode(&header, &claims, &self.key).unwrap()
    }
}

async fn gate(issuer: &Issuer, extra: &str) -> (Harness, String) {
    gate_for(issuer, vec!["OctoCat", "monalisa", "hubot"], extra).await
}

async fn gate_for(
    issuer: &Issuer,
    allowed_users: Vec<&'static str>,
    extra: &str,
) -> (Harness, String) {
    let (api_key, hash) = gatehouse::tokens::api_keys::new_key();
    let roleless_hash = key_hash(ROLELESS_KEY);
    let toml = format!(
        r#"
admin_users = ["octocat"]
{extra}

[roles.deployer]

[[rules]]
path = "/echo/deploy/**"
allow = ["role:deployer"]

[tokens]
hmac_secret = "{hmac}"
client_redirect_uris = ["{SPA}", "https://spa.example/callback"]
allow_loopback = true
accept_github_tokens = true

[[tokens.oidc_issuers]]
issuer = "{iss}"
audience = "https://gate.example"
jwks_url = "{iss}/jwks"
claims = {{ repository = "databio/pephub", ref = "refs/heads/main" }}
roles = ["deployer"]

[[api_keys]]
name = "nightly"
hash = "{hash}"
roles = ["deployer"]

[[api_keys]]
name = "roleless"
hash = "{roleless_hash}"

[[rules]]
path = "/echo/open/**"
policy = "public"
"#,
        hmac = b64(&HMAC),
        iss = issuer.url,
    );
    let h = Harness::start(GateOptions {
        allowed_users,
        access_extra: toml,
        admin: true,
        ..GateOptions::default()
    })
    .await;
    (h, api_key)
}

/// Run the browser part of a client sign-in; returns where the gate finally sends the browser.
async fn client_sign_in(h: &Harness, login: &str, redirect: &str, pkce: bool) -> String {
    let browser = browser();
    let mut query = vec![
        ("client_redirect_uri", redirect.to_string()),
        ("state", "xyz".into()),
    ];
    if pkce {
        query.push(("code_challenge", challenge(VERIFIER)));
        query.push(("code_challenge_method", "S256".into()));
    }
    let start = browser
        .get(h.url("/oauth2/start"))
        .query(&query)
        .send()
        .await
        .unwrap();
    assert_eq!(start.status(), 302, "start");
    let callback = consent(&browser, &location(&start), login).await;
    let done = browser.get(callback).send().await.unwrap();
    assert_eq!(done.status(), 302);
    assert!(
        set_cookies(&done)
            .iter()
            .all(|c| !c.starts_with("_gatehouse=")),
        "no session cookie for a client sign-in"
    );
    location(&done)
}

async fn get_as(h: &Harness, path: &str, authorization: &str) -> (u16, Value) {
    let r = plain_client()
        .get(h.url(path))
        .header("authorization", authorization)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn tokens_for(h: &Harness, login: &str) -> Value {
    let landed = client_sign_in(h, login, SPA, true).await;
    let code = query_of(&landed)["code"].clone();
    let (status, pair) = post_json(
        h,
        "/oauth2/token",
        json!({"code": code, "client_redirect_uri": SPA, "code_verifier": VERIFIER}),
    )
    .await;
    assert_eq!(status, 200, "{pair}");
    pair
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spa_code_exchange_and_bearer_access() {
    let issuer = Issuer::start().await;
    let (h, _) = gate(&issuer, "").await;
    let landed = client_sign_in(&h, "octocat", SPA, true).await;
    assert!(landed.starts_with(SPA), "{landed}");
    let q = query_of(&landed);
    assert_eq!(q["state"], "xyz");
    let code = q["code"].clone();

    // The wrong verifier, the wrong redirect URI: refused, saying why.
    let (status, body) = post_json(&h, "/oauth2/token", json!({"code": code, "client_redirect_uri": SPA, "code_verifier": "wrong-verifier-wrong-verifier-wrong-verifier"})).await;
    assert_eq!(status, 400);
    assert!(
        body["message"].as_str().unwrap().contains("code_verifier"),
        "{body}"
    );
    // That attempt used the code up: a replay is told so.
    let (status, body) = post_json(
        &h,
        "/oauth2/token",
        json!({"code": code, "client_redirect_uri": SPA, "code_verifier": VERIFIER}),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body["message"].as_str().unwrap().contains("already used"),
        "{body}"
    );
    let (status, body) = post_json(
        &h,
        "/oauth2/token",
        json!({"code": "made-up", "client_redirect_uri": SPA}),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("unknown or expired"),
        "{body}"
    );

    let pair = tokens_for(&h, "octocat").await;
    assert_eq!(pair["token_type"], "Bearer");
    assert_eq!(pair["expires_in"], 900);
    let access = pair["access_token"].as_str().unwrap();
    let (status, seen) = get_as(&h, "/echo", &format!("Bearer {access}")).await;
    assert_eq!(status, 200, "{seen}");
    assert_eq!(upstream_header(&seen, "x-forwarded-user"), Some("octocat"));
    assert_eq!(
        upstream_header(&seen, "x-forwarded-roles"),
        Some("viewer,admin")
    );
    assert_eq!(
        upstream_header(&seen, "authorization"),
        None,
        "the token never reaches the app"
    );
    // userinfo and forward-auth take the bearer too.
    let (status, info) = get_as(&h, "/oauth2/userinfo", &format!("Bearer {access}")).await;
    assert_eq!((status, info["user"].as_str()), (200, Some("octocat")));

    // Expired, unsigned and foreign tokens are 401.
    let mut claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(access.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    claims["exp"] = json!(now() - 1);
    claims["iat"] = json!(now() - 901);
    let expired = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(&HMAC),
    )
    .unwrap();
    let (status, body) = get_as(&h, "/echo", &format!("Bearer {expired}")).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"], "invalid_token");
    claims["exp"] = json!(now() + 600);
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let none = format!(
        "{}.{}.",
        b64.encode(r#"{"alg":"none","typ":"JWT"}"#),
        b64.encode(claims.to_string())
    );
    assert_eq!(get_as(&h, "/echo", &format!("Bearer {none}")).await.0, 401);
    let forged = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(&[6; 32]),
    )
    .unwrap();
    assert_eq!(
        get_as(&h, "/echo", &format!("Bearer {forged}")).await.0,
        401
    );
    assert_eq!(get_as(&h, "/echo", "Bearer not-a-token").await.0, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unlisted_client_redirect_is_refused_before_github() {
    let issuer = Issuer::start().await;
    let (h, _) = gate(&issuer, "").await;
    let before = h.mock.api_request_count();
    for uri in [
        "https://evil.example/cb",
        "https://spa.example/callback/../callback",
        "https://spa.example/callback?x=1",
        "https://spa.example/callbackx",
        "HTTPS://spa.example/callback",
        "http://127.0.0.2:9/spa/callback",
        "http://127.0.0.1.evil.example:80/cb",
        "http://user@127.0.0.1:9/cb",
    ] {
        let r = plain_client()
            .get(h.url("/oauth2/start"))
            .query(&[("client_redirect_uri", uri)])
            .header("accept", "application/json")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{uri}");
    }
    // CORS for SPAs on a configured origin only.
    for (origin, allowed) in [
        ("https://spa.example", true),
        ("https://evil.example", false),
    ] {
        let r = plain_client()
            .request(reqwest::Method::OPTIONS, h.url("/oauth2/token"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
        let acao = r
            .headers()
            .get("access-control-allow-origin")
            .map(|v| v.to_str().unwrap().to_string());
        assert_eq!(acao.as_deref(), allowed.then_some(origin), "{origin}");
    }
    // PKCE "plain" is not accepted either.
    let r = plain_client()
        .get(h.url("/oauth2/start"))
        .query(&[
            ("client_redirect_uri", SPA),
            ("code_challenge", VERIFIER),
            ("code_challenge_method", "plain"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(h.mock.api_request_count(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_rotates_and_a_reused_token_revokes_the_family() {
    let issuer = Issuer::start().await;
    let (h, _) = gate(&issuer, "").await;
    let first = tokens_for(&h, "octocat").await;
    let reused_before = reuse_count(&h).await;
    let (status, second) = post_json(
        &h,
        "/oauth2/refresh",
        json!({"refresh_token": first["refresh_token"]}),
    )
    .await;
    assert_eq!(status, 200, "{second}");
    assert_ne!(second["refresh_token"], first["refresh_token"]);
    let access = second["access_token"].as_str().unwrap();
    assert_eq!(
        get_as(&h, "/echo", &format!("Bearer {access}")).await.0,
        200
    );
    // The first refresh token again: someone copied it. Everything of that sign-in ends.
    let (status, body) = post_json(
        &h,
        "/oauth2/refresh",
        json!({"refresh_token": first["refresh_token"]}),
    )
    .await;
    assert_eq!(status, 401);
    assert!(
        body["message"].as_str().unwrap().contains("already used"),
        "{body}"
    );
    let (status, _) = post_json(
        &h,
        "/oauth2/refresh",
        json!({"refresh_token": second["refresh_token"]}),
    )
    .await;
    assert_eq!(status, 401, "the newer token died with its family");
    // The operator sees the reuse once (the newer token failing after it is not reuse).
    assert_eq!(reuse_count(&h).await, reused_before + 1.0);
    assert_eq!(
        get_as(&h, "/echo", &format!("Bearer {access}")).await.0,
        401,
        "access tokens of the family too"
    );
    assert!(!h.log().contains(first["refresh_token"].as_str().unwrap()));
}

/// `gatehouse_refresh_token_reuse_total` now.
async fn reuse_count(h: &Harness) -> f64 {
    scrape::scrape(h.admin.as_deref().unwrap()).await["gatehouse_refresh_token_reuse_total"]
}

/// The `fam` claim any holder of an access token can read (its payload is plain base64url).
fn family_in(access_token: &str) -> String {
    let payload = access_token.split('.').nth(1).unwrap();
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice::<Value>(&json).unwrap()["fam"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_refresh_token_cannot_revoke_a_family() {
    let issuer = Issuer::start().await;
    let (h, _) = gate(&issuer, "").await;
    let first = tokens_for(&h, "octocat").await;
    let fam = family_in(first["access_token"].as_str().unwrap());
    assert!(first["refresh_token"]
        .as_str()
        .unwrap()
        .starts_with(&format!("gate_rt.{fam}.1.")));
    // The family is public; its secrets are not. Older, current and newer generations with a
    // made-up secret are refused, and none of them may revoke (or rotate) the family.
    for forged in [
        format!("gate_rt.{fam}.0.wrong"),
        format!("gate_rt.{fam}.1.wrong"),
        format!("gate_rt.{fam}.2.wrong"),
    ] {
        let (status, body) =
            post_json(&h, "/oauth2/refresh", json!({ "refresh_token": forged })).await;
        assert!(matches!(status, 400 | 401), "{forged}: {status} {body}");
        assert!(
            !body["message"]
                .as_str()
                .unwrap_or("")
                .contains("already used"),
            "{body}"
        );
    }
    let access = first["access_token"].as_str().unwrap();
    assert_eq!(
        get_as(&h, "/echo", &format!("Bearer {access}")).await.0,
        200,
        "the family's access token still works"
    );
    let (status, second) = post_json(
        &h,
        "/oauth2/refresh",
        json!({"refresh_token": first["refresh_token"]}),
    )
    .await;
    assert_eq!(
        status, 200,
        "the genuine refresh token still works: {second}"
    );
    // After a rotation, a forged generation 1 (now an older one) is still no reuse.
    let (status, _) = post_json(
        &h,
        "/oauth2/refresh",
        json!({ "refresh_token": format!("gate_rt.{fam}.1.wrong") }),
    )
    .await;
    assert!(matches!(status, 400 | 401));
    let (status, third) = post_json(
        &h,
        "/oauth2/refresh",
        json!({"refresh_token": second["refresh_token"]}),
    )
    .await;
    assert_eq!(status, 200, "{third}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_user_cannot_refresh() {
    let issuer = Issuer::start().await;
    let (h, _) = gate_for(&issuer, vec![], "allowed_orgs = [\"databio\"]").await;
    let pair = tokens_for(&h, "monalisa").await;
    let (status, pair) = post_json(
        &h,
        "/oauth2/refresh",
        json!({"refresh_token": pair["refresh_token"]}),
    )
    .await;
    assert_eq!(status, 200, "still a member: refresh works");
    let removed = plain_client()
        .delete(format!(
            "{}/_mock/orgs/databio/members/monalisa",
            h.mock_url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status(), 204);
    let (status, body) = post_json(
        &h,
        "/oauth2/refresh",
        json!({"refresh_token": pair["refresh_token"]}),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"], "access_denied");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn personal_access_tokens_sign_in_allowed_users_only() {
    let issuer = Issuer::start().await;
    let (h, _) = gate(&issuer, "").await;
    let pat = |login: &'static str| mock_pat(&h, login);
    let octo = pat("octocat").await;
    let r = plain_client()
        .post(h.url("/oauth2/pat"))
        .json(&json!({"token": octo}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let cookie = session_cookie(&r);
    let pair: Value = r.json().await.unwrap();
    let (status, seen) = get_as(
        &h,
        "/echo",
        &format!("Bearer {}", pair["access_token"].as_str().unwrap()),
    )
    .await;
    assert_eq!(
        (status, upstream_header(&seen, "x-forwarded-user")),
        (200, Some("octocat"))
    );
    let r = plain_client()
        .get(h.url("/echo"))
        .header("cookie", format!("_gatehouse={cookie}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        200,
        "the PAT sign-in set a working session cookie"
    );
    // mallory's token is genuine, but mallory is not allowed.
    let mallory = pat("mallory").await;
    let (status, body) = post_json(&h, "/oauth2/pat", json!({"token": mallory})).await;
    assert_eq!(status, 403, "{body}");
    let (status, _) = post_json(&h, "/oauth2/pat", json!({"token": "ghp_notarealtoken"})).await;
    assert_eq!(status, 401);
    // With accept_github_tokens, the raw token works as a bearer, asked of GitHub once.
    let before = h.mock.api_request_count();
    for _ in 0..3 {
        let (status, seen) = get_as(&h, "/echo", &format!("token {octo}")).await;
        assert_eq!(
            (status, upstream_header(&seen, "x-forwarded-user")),
            (200, Some("octocat"))
        );
    }
    assert_eq!(
        h.mock.api_request_count() - before,
        2,
        "GET /user and /user/emails, once (no org in this config)"
    );
    assert_eq!(
        get_as(&h, "/echo", &format!("Bearer {mallory}")).await.0,
        403
    );
    assert!(!h.log().contains(&octo), "tokens are never logged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_right_wrong_and_unknown() {
    let issuer = Issuer::start().await;
    let (h, key) = gate(&issuer, "").await;
    let basic = |user: &str, pass: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
        )
    };
    let (status, seen) = get_as(&h, "/echo/deploy/x", &basic("nightly", &key)).await;
    assert_eq!(status, 200, "{seen}");
    assert_eq!(
        upstream_header(&seen, "x-forwarded-user"),
        Some("apikey:nightly")
    );
    assert_eq!(
        upstream_header(&seen, "x-forwarded-roles"),
        Some("deployer")
    );
    assert_eq!(upstream_header(&seen, "authorization"), None);
    let r = plain_client()
        .get(h.url("/echo"))
        .header("authorization", basic("nightly", "gk_wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Basic"));
    assert_eq!(get_as(&h, "/echo", &basic("someone", &key)).await.0, 401);
    // Keys are judged by their roles: no admin role, so the admin-only rule refuses.
    // A key whose entry grants no role reaches nothing that is not public (fail closed).
    assert_eq!(
        get_as(&h, "/echo", &basic("roleless", ROLELESS_KEY))
            .await
            .0,
        403
    );
    // On a public path nobody checks credentials, yet Gatehouse's own never reach the app;
    // the app's own Authorization does.
    let (status, seen) = get_as(&h, "/echo/open/x", &basic("nightly", &key)).await;
    assert_eq!(status, 200);
    assert_eq!(upstream_header(&seen, "authorization"), None, "{seen}");
    let (_, seen) = get_as(&h, "/echo/open/x", &basic("app-user", "app-password")).await;
    assert!(upstream_header(&seen, "authorization").is_some(), "{seen}");
    assert!(!h.log().contains(&key));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ci_oidc_tokens_are_admitted_by_their_claims() {
    let issuer = Issuer::start().await;
    let (h, _) = gate(&issuer, "").await;
    let good = issuer.token("https://gate.example", "databio/pephub");
    let (status, seen) = get_as(&h, "/echo/deploy/run", &format!("Bearer {good}")).await;
    assert_eq!(status, 200, "{seen}");
    assert_eq!(
        upstream_header(&seen, "x-forwarded-user"),
        Some("oidc:repo:databio/pephub:ref:refs/heads/main")
    );
    let other_repo = issuer.token("https://gate.example", "databio/other");
    assert_eq!(
        get_as(&h, "/echo/deploy/run", &format!("Bearer {other_repo}"))
            .await
            .0,
        401
    );
    let other_aud = issuer.token("https://elsewhere.example", "databio/pephub");
    assert_eq!(
        get_as(&h, "/echo/deploy/run", &format!("Bearer {other_aud}"))
            .await
            .0,
        401
    );
}

/// Issue 13, item 10: a credential the gate recognises never reaches the app, on public paths
/// too, whether or not it would be accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recognised_tokens_never_reach_the_app_on_public_paths() {
    let issuer = Issuer::start().await;
    let (h, api_key) = gate(&issuer, "").await;
    let good = issuer.token("https://gate.example", "databio/pephub");
    let other_repo = issuer.token("https://gate.example", "databio/other");
    for auth in [
        format!("Bearer {good}"),
        format!("Bearer {other_repo}"),
        "Bearer gho_16C7e42F292c6912E7710c838347Ae178B4a".to_string(),
        "token ghp_16C7e42F292c6912E7710c838347Ae178B4a".to_string(),
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("nightly:{api_key}"))
        ),
    ] {
        let (status, seen) = get_as(&h, "/echo/open/x", &auth).await;
        assert_eq!(status, 200, "{seen}");
        assert_eq!(upstream_header(&seen, "authorization"), None, "{auth:.20}");
    }
    // Not the gate's: the app's own scheme goes through.
    let (_, seen) = get_as(&h, "/echo/open/x", "Digest username=\"app\"").await;
    assert_eq!(
        upstream_header(&seen, "authorization"),
        Some("Digest username=\"app\"")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_upstream_can_verify_the_signed_identity() {
    let issuer = Issuer::start().await;
    let (h, _) = gate(&issuer, "").await;
    let client = browser();
    h.sign_in(&client, "octocat", "/").await;
    let (_, seen) = echo(
        &client,
        h.url("/echo"),
        &[("x-gatehouse-jwt-assertion", "forged")],
    )
    .await;
    let assertion = upstream_header(&seen, "x-gatehouse-jwt-assertion")
        .unwrap()
        .to_string();
    assert_ne!(assertion, "forged");
    // Acting as the app: keys from the JWKS, issuer and audience pinned.
    let jwks: jsonwebtoken::jwk::JwkSet = plain_client()
        .get(h.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kid = jsonwebtoken::decode_header(&assertion)
        .unwrap()
        .kid
        .unwrap();
    let key = DecodingKey::from_jwk(jwks.find(&kid).unwrap()).unwrap();
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_issuer(&[h.gate.as_str()]);
    let upstream = format!("http://{}", h.upstream_addr);
    validation.set_audience(&[upstream.as_str()]);
    let claims: Value = jsonwebtoken::decode(&assertion, &key, &validation)
        .unwrap()
        .claims;
    assert_eq!(claims["sub"], "583231");
    assert_eq!(claims["login"], "octocat");
    assert_eq!(claims["roles"], json!(["viewer", "admin"]));
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        60
    );
    // Tampered: refused.
    let mut parts: Vec<String> = assertion.split('.').map(str::to_string).collect();
    let mut forged = claims.clone();
    forged["login"] = json!("mallory");
    parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(forged.to_string());
    assert!(jsonwebtoken::decode::<Value>(&parts.join("."), &key, &validation).is_err());
    // Expired (as seen by an app 2 minutes later): refused.
    let mut later = validation.clone();
    later.leeway = 0;
    later.reject_tokens_expiring_in_less_than = 120;
    assert!(jsonwebtoken::decode::<Value>(&assertion, &key, &later).is_err());
    // Another audience: refused.
    let mut other = validation.clone();
    other.set_audience(&["http://another-app"]);
    assert!(jsonwebtoken::decode::<Value>(&assertion, &key, &other).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gatehouse_login_and_token_end_to_end() {
    let issuer = Issuer::start().await;
    let (h, _) = gate(&issuer, "").await;
    let dir = tempfile::tempdir().unwrap();
    let (mut child, _, start_url) = start_cli_login(&h.gate, dir.path());
    // The browser's part.
    let browser = browser();
    let start = browser.get(&start_url).send().await.unwrap();
    assert_eq!(start.status(), 302);
    let callback = consent(&browser, &location(&start), "octocat").await;
    let back = browser.get(callback).send().await.unwrap();
    let loopback = confirm_loopback_sign_in(&h, &browser, back).await;
    assert!(loopback.starts_with("http://127.0.0.1:"), "{loopback}");
    let page = browser.get(&loopback).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());
    let stored = dir.path().join("tokens.json");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&stored).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let out = std::process::Command::new(binary())
        .args(["token", "--url", &h.gate])
        .env("GATEHOUSE_CONFIG_DIR", dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let (status, seen) = get_as(&h, "/echo", &format!("Bearer {token}")).await;
    assert_eq!(
        (status, upstream_header(&seen, "x-forwarded-user")),
        (200, Some("octocat"))
    );
}
