//! Standard OAuth 2.0 clients against the running gate (RFC 6749, 7636, 8252, 8414, 7009): the
//! `oauth2` crate (Rust) and authlib (Python) run the code flow with PKCE, refresh, refresh-token
//! reuse detection and revocation, each knowing only what the metadata document says. Nothing is
//! subclassed or hooked: the `oauth2` crate gets a plain reqwest transport (its documented custom
//! HTTP client), authlib its stock `requests` session. The browser part (the mock GitHub's
//! consent and the loopback confirmation) is driven with reqwest, as a person's browser would;
//! the client library gets the final redirect URL.
//!
//! authlib is installed pinned by `.ci/run` into the CI venv (`$GATEHOUSE_DIFF_PYTHON`, as the
//! differential tests use it); without it the authlib test is skipped with a note, except under
//! `CI=true`, where it fails.

use crate::common::*;
use oauth2::basic::BasicClient;
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, HttpRequest, HttpResponse,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken, RequestTokenError,
    RevocationUrl, StandardRevocableToken, TokenResponse, TokenUrl,
};
use serde_json::Value;

/// The confidential client's secret (with characters the Basic encoding must carry).
const WEB_SECRET: &str = "s3:cr/t-of-the-web-client";
const WEB_REDIRECT: &str = "https://web.example/cb";

/// `sha256$SALT$HASH` of `secret`, as `gatehouse hash-key` prints it.
fn secret_hash(secret: &str) -> String {
    use base64::Engine;
    use sha2::Digest;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let salt = [9u8; 16];
    let mut h = sha2::Sha256::new();
    h.update(salt);
    h.update(secret.as_bytes());
    format!("sha256${}${}", b64.encode(salt), b64.encode(h.finalize()))
}

/// A gate on https (RFC 6749 §3.1 and RFC 7009 §2 want TLS, and the `oauth2` crate insists on
/// it for revocation) with a public native client (`cli`, loopback any port) and a confidential
/// web client.
async fn gate() -> Harness {
    Harness::start_tls(
        GateOptions {
            access_extra: format!(
                r#"
[tokens]
hmac_secret = "{hmac}"

[[tokens.clients]]
client_id = "cli"
redirect_uris = ["http://127.0.0.1/callback"]

[[tokens.clients]]
client_id = "web"
redirect_uris = ["{WEB_REDIRECT}"]
client_secret_hash = "{hash}"

[limits]
auth_per_minute = 0
"#,
                hmac = b64(&[6; 32]),
                hash = secret_hash(WEB_SECRET),
            ),
            ..GateOptions::default()
        },
        "",
    )
    .await
}

/// A client of the gate (trusting its certificate) that does not follow redirects.
fn client(h: &Harness) -> reqwest::Client {
    h.client_builder().build().unwrap()
}

/// The `oauth2` crate's HTTP transport (its documented custom client): reqwest as it is, trusting
/// the gate's certificate, no redirects followed.
fn transport(
    h: &Harness,
) -> impl Fn(
    HttpRequest,
) -> std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<HttpResponse, reqwest::Error>> + Send>,
> {
    let client = client(h);
    move |request| Box::pin(send(client.clone(), request))
}

async fn send(
    client: reqwest::Client,
    request: HttpRequest,
) -> Result<HttpResponse, reqwest::Error> {
    let response = client.execute(reqwest::Request::try_from(request)?).await?;
    let mut answer = http::Response::builder().status(response.status().as_u16());
    for (name, value) in response.headers() {
        answer = answer.header(name.as_str(), value.as_bytes());
    }
    let body = response.bytes().await?.to_vec();
    Ok(answer.body(body).expect("a response"))
}

/// What the metadata document names.
struct Discovered {
    authorize: String,
    token: String,
    revoke: String,
}

/// Read `/.well-known/oauth-authorization-server` and check what RFC 8414 requires of it.
async fn discover(h: &Harness) -> Discovered {
    let r = client(h)
        .get(h.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let doc: Value = r.json().await.unwrap();
    assert_eq!(doc["issuer"], h.gate.trim_end_matches('/'), "{doc}");
    assert_eq!(doc["response_types_supported"], serde_json::json!(["code"]));
    assert_eq!(
        doc["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(
        doc["grant_types_supported"],
        serde_json::json!(["authorization_code", "refresh_token"])
    );
    let field = |k: &str| {
        doc[k]
            .as_str()
            .unwrap_or_else(|| panic!("{k}: {doc}"))
            .to_string()
    };
    Discovered {
        authorize: field("authorization_endpoint"),
        token: field("token_endpoint"),
        revoke: field("revocation_endpoint"),
    }
}

/// A person's browser signing in as `login` at `authorize_url`: the mock GitHub's consent, then
/// (for a loopback address) the same-origin confirmation. Returns the URL the browser is finally
/// sent to: the client's redirect URI with `code` and `state`.
async fn browser_sign_in(h: &Harness, authorize_url: &str, login: &str, loopback: bool) -> String {
    let browser = h.client_builder().cookie_store(true).build().unwrap();
    let start = browser.get(authorize_url).send().await.unwrap();
    assert_eq!(start.status(), 302, "authorize → GitHub");
    let github = location(&start);
    assert!(github.starts_with(&h.mock_url), "{github}");
    let callback = consent(&browser, &github, login).await;
    let back = browser.get(callback).send().await.unwrap();
    match loopback {
        true => confirm_loopback_sign_in(h, &browser, back).await,
        false => {
            assert_eq!(back.status(), 302);
            location(&back)
        }
    }
}

fn param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The authorize URL a client builds (PKCE S256, a random `state`) and its verifier.
fn authorize_url<D, I, R, T>(
    client: &BasicClient<oauth2::EndpointSet, D, I, R, T>,
) -> (String, CsrfToken, PkceCodeVerifier)
where
    D: oauth2::EndpointState,
    I: oauth2::EndpointState,
    R: oauth2::EndpointState,
    T: oauth2::EndpointState,
{
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state) = client
        .authorize_url(CsrfToken::new_random)
        .set_pkce_challenge(challenge)
        .url();
    (url.to_string(), state, verifier)
}

/// The `oauth2` crate, configured only from the metadata document: a public native client on a
/// loopback port runs code + PKCE, refresh, reuse detection (the whole sign-in ends) and, on a
/// second sign-in, revocation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_oauth2_crate_runs_the_code_flow_from_the_metadata_alone() {
    let h = gate().await;
    let http = transport(&h);
    let found = discover(&h).await;
    let port = free_port();
    let redirect = format!("http://127.0.0.1:{port}/callback");
    let client = BasicClient::new(ClientId::new("cli".into()))
        .set_auth_uri(AuthUrl::new(found.authorize.clone()).unwrap())
        .set_token_uri(TokenUrl::new(found.token.clone()).unwrap())
        .set_revocation_url(RevocationUrl::new(found.revoke.clone()).unwrap())
        .set_redirect_uri(RedirectUrl::new(redirect.clone()).unwrap());

    let (url, state, verifier) = authorize_url(&client);
    let landed = browser_sign_in(&h, &url, "octocat", true).await;
    assert!(landed.starts_with(&redirect), "{landed}");
    assert_eq!(
        param(&landed, "state").as_deref(),
        Some(state.secret().as_str())
    );
    let code = param(&landed, "code").expect("a code");
    let tokens = client
        .exchange_code(AuthorizationCode::new(code.clone()))
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("code → tokens");
    let first_refresh = tokens.refresh_token().expect("a refresh token").clone();
    let (status, me) = bearer_userinfo(&h, tokens.access_token().secret()).await;
    assert_eq!((status, me["user"].as_str()), (200, Some("octocat")));

    // The code is single use: invalid_grant, as RFC 6749 §5.2 words it.
    let again = client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(PkceCodeVerifier::new("x".repeat(43)))
        .request_async(&http)
        .await;
    assert_eq!(server_error(again), "invalid_grant");

    // Refresh rotates the pair.
    let refreshed = client
        .exchange_refresh_token(&first_refresh)
        .request_async(&http)
        .await
        .expect("refresh");
    let second_refresh = refreshed
        .refresh_token()
        .expect("a new refresh token")
        .clone();
    assert_ne!(second_refresh.secret(), first_refresh.secret());
    let (status, _) = bearer_userinfo(&h, refreshed.access_token().secret()).await;
    assert_eq!(status, 200);

    // The first refresh token again: reuse, so every token of this sign-in ends.
    let reused = client
        .exchange_refresh_token(&first_refresh)
        .request_async(&http)
        .await;
    assert_eq!(server_error(reused), "invalid_grant");
    let after_reuse = client
        .exchange_refresh_token(&second_refresh)
        .request_async(&http)
        .await;
    assert_eq!(server_error(after_reuse), "invalid_grant");
    let (status, _) = bearer_userinfo(&h, refreshed.access_token().secret()).await;
    assert_eq!(status, 401, "the access token ended with its sign-in");

    // A second sign-in, then revocation (RFC 7009): the refresh token and its access token end.
    let (url, _, verifier) = authorize_url(&client);
    let landed = browser_sign_in(&h, &url, "octocat", true).await;
    let tokens = client
        .exchange_code(AuthorizationCode::new(param(&landed, "code").unwrap()))
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("code → tokens");
    let refresh = tokens.refresh_token().unwrap().clone();
    client
        .revoke_token(StandardRevocableToken::RefreshToken(refresh.clone()))
        .unwrap()
        .request_async(&http)
        .await
        .expect("revocation answers 200");
    let (status, _) = bearer_userinfo(&h, tokens.access_token().secret()).await;
    assert_eq!(status, 401, "revoked with its refresh token");
    let after = client
        .exchange_refresh_token(&refresh)
        .request_async(&http)
        .await;
    assert_eq!(server_error(after), "invalid_grant");
    // Revoking what is already revoked, or a made-up token, is still 200 (RFC 7009 §2.2).
    for token in [refresh.secret().clone(), "made-up".to_string()] {
        client
            .revoke_token(StandardRevocableToken::RefreshToken(RefreshToken::new(
                token,
            )))
            .unwrap()
            .request_async(&http)
            .await
            .expect("200 for any token");
    }
}

/// A confidential client authenticates with HTTP Basic (the `oauth2` crate's default); a wrong
/// secret is 401 `invalid_client` with `WWW-Authenticate`, and its codes need the secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confidential_client_authenticates_and_a_wrong_secret_is_invalid_client() {
    let h = gate().await;
    let http = transport(&h);
    let found = discover(&h).await;
    let web_client = |secret: &str| {
        BasicClient::new(ClientId::new("web".into()))
            .set_client_secret(ClientSecret::new(secret.into()))
            .set_auth_uri(AuthUrl::new(found.authorize.clone()).unwrap())
            .set_token_uri(TokenUrl::new(found.token.clone()).unwrap())
            .set_redirect_uri(RedirectUrl::new(WEB_REDIRECT.into()).unwrap())
    };
    let good = web_client(WEB_SECRET);
    let sign_in = || async {
        let (url, _) = good.authorize_url(CsrfToken::new_random).url();
        let landed = browser_sign_in(&h, url.as_str(), "monalisa", false).await;
        assert!(landed.starts_with(WEB_REDIRECT), "{landed}");
        param(&landed, "code").expect("a code")
    };
    let code = sign_in().await;
    let wrong = web_client("not-the-secret")
        .exchange_code(AuthorizationCode::new(code.clone()))
        .request_async(&http)
        .await;
    assert_eq!(server_error(wrong), "invalid_client");
    // The same refusal on the wire: 401 with the scheme to use.
    let r = client(&h)
        .post(&found.token)
        .basic_auth("web", Some("not-the-secret"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", WEB_REDIRECT),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.headers()["www-authenticate"],
        r#"Basic realm="gatehouse""#
    );
    let tokens = good
        .exchange_code(AuthorizationCode::new(code))
        .request_async(&http)
        .await
        .expect("the right secret");
    // Its refresh token is bound to it: without the secret, or from another client, refused
    // (RFC 6749 §6, RFC 7009 §2.1); with it, rotated.
    let refresh = tokens.refresh_token().expect("a refresh token").clone();
    for (path, form) in [
        (
            "/oauth2/token",
            vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh.secret().as_str()),
                ("client_id", "web"),
            ],
        ),
        (
            "/oauth2/token",
            vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh.secret().as_str()),
                ("client_id", "cli"),
            ],
        ),
        (
            "/oauth2/revoke",
            vec![("token", refresh.secret().as_str()), ("client_id", "cli")],
        ),
        (
            "/oauth2/revoke",
            vec![("token", tokens.access_token().secret().as_str())],
        ),
    ] {
        let r = client(&h)
            .post(h.url(path))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{path} {form:?}");
    }
    let rotated = good
        .exchange_refresh_token(&refresh)
        .request_async(&http)
        .await
        .expect("the owner refreshes");
    // Revoking by the access token (RFC 7009 §2.1, with the owner's credentials) ends the
    // sign-in: the access token and the refresh token both stop working.
    let r = client(&h)
        .post(&found.revoke)
        .basic_auth("web", Some(WEB_SECRET))
        .form(&[
            ("token", rotated.access_token().secret().as_str()),
            ("token_type_hint", "access_token"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (status, _) = bearer_userinfo(&h, rotated.access_token().secret()).await;
    assert_eq!(status, 401);
    let after = good
        .exchange_refresh_token(rotated.refresh_token().unwrap())
        .request_async(&http)
        .await;
    assert_eq!(server_error(after), "invalid_grant");
    // A client with one registered address may name it at neither step (RFC 6749 §4.1.3).
    let authorize = format!(
        "{}?response_type=code&client_id=web&state=s",
        found.authorize
    );
    let landed = browser_sign_in(&h, &authorize, "monalisa", false).await;
    let r = client(&h)
        .post(&found.token)
        .basic_auth("web", Some(WEB_SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &param(&landed, "code").unwrap()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Its code in the hands of someone without the secret (a public client_id alone) is refused.
    let code = sign_in().await;
    let r = client(&h)
        .post(&found.token)
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", WEB_REDIRECT),
            ("client_id", "web"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

/// RFC 6749 §5.2 on the wire, and the authorize step's own refusals: an unknown client or a
/// redirect URI it does not own is shown, never redirected to; a public client without PKCE
/// hears of it at its own address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_worded_as_rfc_6749_says() {
    let h = gate().await;
    let c = client(&h);
    let post = |form: Vec<(&'static str, &'static str)>| {
        let (url, c) = (h.url("/oauth2/token"), c.clone());
        async move {
            let r = c.post(url).form(&form).send().await.unwrap();
            let status = r.status().as_u16();
            let pragma = r
                .headers()
                .get("pragma")
                .map(|v| v.to_str().unwrap().to_string());
            (status, pragma, r.json::<Value>().await.unwrap())
        }
    };
    for (form, want) in [
        (vec![("code", "x")], "invalid_request"),
        (vec![("grant_type", "password")], "unsupported_grant_type"),
        (vec![("grant_type", "refresh_token")], "invalid_request"),
        (
            vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", "gate_rt.a.1.b"),
            ],
            "invalid_grant",
        ),
        (
            vec![
                ("grant_type", "authorization_code"),
                ("code", "made-up"),
                ("redirect_uri", "http://127.0.0.1:5/callback"),
            ],
            "invalid_grant",
        ),
    ] {
        let (status, pragma, body) = post(form.clone()).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some(want)),
            "{form:?}: {body}"
        );
        assert!(body["error_description"].is_string(), "{body}");
        assert_eq!(pragma.as_deref(), Some("no-cache"));
    }
    // The older JSON refresh keeps its 401.
    let r = client(&h)
        .post(h.url("/oauth2/refresh"))
        .json(&serde_json::json!({"refresh_token": "gate_rt.a.1.b"}))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_grant"))
    );
    assert!(body["error_description"].is_string());

    let authorize = |query: Vec<(&'static str, &'static str)>| {
        let (url, c) = (h.url("/oauth2/authorize"), c.clone());
        async move {
            c.get(url)
                .query(&query)
                .header("accept", "application/json")
                .send()
                .await
                .unwrap()
        }
    };
    let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    // Not redirected: unknown client, a redirect it does not own, no client_id at all.
    for query in [
        vec![
            ("response_type", "code"),
            ("client_id", "nobody"),
            ("redirect_uri", "http://127.0.0.1:5/callback"),
        ],
        vec![
            ("response_type", "code"),
            ("client_id", "cli"),
            ("redirect_uri", "http://127.0.0.1:5/elsewhere"),
        ],
        vec![
            ("response_type", "code"),
            ("client_id", "web"),
            ("redirect_uri", "https://evil.example/cb"),
        ],
        vec![
            ("response_type", "code"),
            ("redirect_uri", "http://127.0.0.1:5/callback"),
        ],
    ] {
        let r = authorize(query.clone()).await;
        assert_eq!(r.status(), 400, "{query:?}");
    }
    // `/oauth2/start` takes the standard names too (`redirect_uri` for `client_redirect_uri`).
    let r = c
        .get(h.url("/oauth2/start"))
        .query(&[
            ("response_type", "code"),
            ("client_id", "cli"),
            ("redirect_uri", "http://127.0.0.1:5/callback"),
            ("code_challenge", challenge),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    assert!(location(&r).starts_with(&h.mock_url));
    // Redirected back with the error: no PKCE from a public client, a response_type not offered.
    for (query, want) in [
        (
            vec![
                ("response_type", "code"),
                ("client_id", "cli"),
                ("redirect_uri", "http://127.0.0.1:5/callback"),
                ("state", "s1"),
            ],
            "invalid_request",
        ),
        (
            vec![
                ("response_type", "token"),
                ("client_id", "cli"),
                ("redirect_uri", "http://127.0.0.1:5/callback"),
                ("state", "s1"),
                ("code_challenge", challenge),
                ("code_challenge_method", "S256"),
            ],
            "unsupported_response_type",
        ),
    ] {
        let r = authorize(query.clone()).await;
        assert_eq!(r.status(), 302, "{query:?}");
        let to = location(&r);
        assert!(to.starts_with("http://127.0.0.1:5/callback?"), "{to}");
        assert_eq!(param(&to, "error").as_deref(), Some(want));
        assert_eq!(param(&to, "state").as_deref(), Some("s1"));
    }
    // The confidential client's one address is used when none is named; no PKCE needed.
    let r = authorize(vec![("response_type", "code"), ("client_id", "web")]).await;
    assert_eq!(r.status(), 302);
    assert!(location(&r).starts_with(&h.mock_url));
    // The metadata is never gated, even for a signed-out API client.
    let r = client(&h)
        .get(h.url("/.well-known/oauth-authorization-server"))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// `GET /oauth2/userinfo` with a bearer token.
async fn bearer_userinfo(h: &Harness, token: &str) -> (u16, Value) {
    let r = client(h)
        .get(h.url("/oauth2/userinfo"))
        .bearer_auth(token)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// The `error` of an RFC 6749 §5.2 answer, as the `oauth2` crate parsed it.
fn server_error<T: std::fmt::Debug, E: std::error::Error + 'static>(
    result: Result<T, RequestTokenError<E, oauth2::basic::BasicErrorResponse>>,
) -> String {
    match result {
        Err(RequestTokenError::ServerResponse(e)) => {
            assert!(e.error_description().is_some(), "{e:?}");
            e.error().as_ref().to_string()
        }
        other => panic!("expected an OAuth error answer, got {other:?}"),
    }
}

/// authlib 1.9 (Python, `.ci/run`'s venv), unchanged: its `OAuth2Session` reads the metadata,
/// validates it, and runs code + PKCE, refresh, refresh-token reuse and revocation
/// (`oauth2_clients/authlib_client.py`); this test is its browser, and checks the tokens it got.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authlib_runs_the_code_flow_from_the_metadata_alone() {
    use std::io::{BufRead, Write};
    let python = match python::python_with("authlib") {
        Ok(python) => python,
        Err(why) => {
            assert!(
                !python::in_ci(),
                "{why}; .ci/run installs authlib, and CI must not skip this test"
            );
            println!("note: skipping the authlib test: {why} (.ci/run installs it)");
            return;
        }
    };
    let h = gate().await;
    let ca = h.dir.path().join("gate-ca.pem");
    std::fs::write(&ca, h.tls_cert_pem.as_ref().unwrap()).unwrap();
    let redirect = format!("http://127.0.0.1:{}/callback", free_port());
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/integration/oauth2_clients/authlib_client.py");
    let mut child = std::process::Command::new(python)
        .arg(script)
        .args([h.gate.as_str(), "cli", redirect.as_str()])
        // requests' own setting for whom to trust: the gate's certificate.
        .env("REQUESTS_CA_BUNDLE", &ca)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut sign_ins = 0;
    let summary = loop {
        let line = tokio::task::block_in_place(|| lines.next());
        let Some(Ok(line)) = line else {
            let out = child.wait_with_output().unwrap();
            panic!(
                "authlib stopped: {}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        };
        if let Some(url) = line.strip_prefix("AUTHORIZE ") {
            assert!(url.starts_with(&h.url("/oauth2/authorize?")), "{url}");
            let landed = browser_sign_in(&h, url, "octocat", true).await;
            assert!(landed.starts_with(&redirect), "{landed}");
            writeln!(stdin, "{landed}").unwrap();
            sign_ins += 1;
        } else if let Some(json) = line.strip_prefix("OK ") {
            break serde_json::from_str::<Value>(json).unwrap();
        }
    };
    assert!(child.wait().unwrap().success());
    assert_eq!(sign_ins, 2);
    assert_eq!(summary["reuse"], "invalid_grant");
    assert_eq!(summary["after_reuse"], "invalid_grant");
    assert_eq!(summary["after_revoke"], "invalid_grant");
    // What authlib was given works as a bearer token, until its sign-in ended.
    let tokens = summary["access_tokens"].as_array().unwrap();
    let statuses: Vec<u16> = userinfo_statuses(&h, tokens).await;
    assert_eq!(
        statuses,
        [401, 401, 401],
        "reuse ended the first sign-in, revocation the second"
    );
}

/// `/oauth2/userinfo`'s status for each bearer token.
async fn userinfo_statuses(h: &Harness, tokens: &[Value]) -> Vec<u16> {
    let mut statuses = Vec::new();
    for token in tokens {
        statuses.push(bearer_userinfo(h, token.as_str().unwrap()).await.0);
    }
    statuses
}
