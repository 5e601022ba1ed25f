//! Mock GitHub and demo upstream, driven over real loopback HTTP with reqwest.

use std::collections::HashMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use gatehouse_mock_github::{serve_demo_upstream, MockApp, MockGithub};
use reqwest::{redirect, Client, StatusCode};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;

const CLIENT_ID: &str = "test-client";
const SECRET: &str = "test-secret";
const CALLBACK: &str = "http://127.0.0.1:4180/oauth2/callback";
const VERIFIER: &str = "a-verifier-that-is-long-enough-for-rfc-7636-pkce-0123456789";

fn client() -> Client {
    gatehouse::install_crypto_provider();
    Client::builder()
        .redirect(redirect::Policy::none())
        .user_agent("gatehouse-tests")
        .build()
        .unwrap()
}

fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Start a mock (demo data plus the test app) and return it with its base URL.
async fn start(mock: MockGithub) -> (MockGithub, String) {
    mock.add_app(MockApp {
        client_id: CLIENT_ID.into(),
        client_secret: SECRET.into(),
        callback_url: CALLBACK.into(),
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(mock.clone().serve(listener));
    (mock, base)
}

async fn start_demo() -> (MockGithub, String) {
    start(MockGithub::demo()).await
}

fn query_of(location: &str) -> HashMap<String, String> {
    url::Url::parse(location)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

/// Click "Sign in as LOGIN": POST the form, return the redirect's Location.
async fn sign_in_location(base: &str, fields: &[(&str, &str)]) -> reqwest::Response {
    client()
        .post(format!("{base}/login/oauth/authorize"))
        .form(fields)
        .send()
        .await
        .unwrap()
}

/// A code for `login` with PKCE and the given scopes, redirect_uri given.
async fn code_for(base: &str, login: &str, scope: &str) -> String {
    let challenge = challenge(VERIFIER);
    let resp = sign_in_location(
        base,
        &[
            ("client_id", CLIENT_ID),
            ("redirect_uri", CALLBACK),
            ("scope", scope),
            ("state", "st"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
            ("login", login),
        ],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::FOUND);
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    query_of(&location)["code"].clone()
}

async fn exchange(base: &str, fields: &[(&str, &str)]) -> Value {
    let resp = client()
        .post(format!("{base}/login/oauth/access_token"))
        .header("accept", "application/json")
        .form(fields)
        .send()
        .await
        .unwrap();
    // GitHub answers OAuth errors with 200 too.
    assert_eq!(resp.status(), StatusCode::OK);
    resp.json().await.unwrap()
}

/// The exchange a well-behaved client makes for `code`.
async fn exchange_valid(base: &str, code: &str) -> Value {
    exchange(
        base,
        &[
            ("client_id", CLIENT_ID),
            ("client_secret", SECRET),
            ("code", code),
            ("redirect_uri", CALLBACK),
            ("code_verifier", VERIFIER),
        ],
    )
    .await
}

async fn token_for(base: &str, login: &str, scope: &str) -> String {
    let code = code_for(base, login, scope).await;
    let body = exchange_valid(base, &code).await;
    body["access_token"].as_str().unwrap().to_string()
}

async fn api(base: &str, token: &str, path: &str) -> reqwest::Response {
    client()
        .get(format!("{base}/api/v3{path}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn full_flow_with_pkce() {
    let (_mock, base) = start_demo().await;
    let page = client()
        .get(format!(
            "{base}/login/oauth/authorize?client_id={CLIENT_ID}&scope=read:user%20user:email&state=xyz"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("Sign in to GitHub (mock)"));
    for login in ["octocat", "monalisa", "hubot", "mallory"] {
        assert!(html.contains(&format!("Sign in as {login}")), "{login}");
    }
    assert!(html.contains("error=access_denied"));
    // redirect_uri was not given, so the form must not invent one.
    assert!(!html.contains("name=\"redirect_uri\""));

    let code = code_for(&base, "monalisa", "read:user user:email read:org").await;
    let body = exchange_valid(&base, &code).await;
    let token = body["access_token"].as_str().unwrap();
    assert!(token.starts_with("gho_") && token.len() == 40, "{token}");
    assert!(token[4..].chars().all(|c| c.is_ascii_alphanumeric()));
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["scope"], "read:user,user:email,read:org");

    let user: Value = api(&base, token, "/user").await.json().await.unwrap();
    assert_eq!(user["login"], "monalisa");
    assert_eq!(user["id"], 1000001);
    assert_eq!(user["type"], "User");
    assert!(user["email"].is_null());
    assert!(user["avatar_url"].as_str().unwrap().contains("1000001"));
    let resp = api(&base, token, "/user/emails").await;
    assert_eq!(
        resp.headers()["x-oauth-scopes"],
        "read:user, user:email, read:org"
    );
    let emails: Value = resp.json().await.unwrap();
    assert_eq!(emails[0]["email"], "monalisa@example.com");
    assert_eq!(emails[0]["primary"], true);
    assert_eq!(emails[0]["verified"], true);
}

#[tokio::test]
async fn form_encoded_token_response_without_json_accept() {
    let (_mock, base) = start_demo().await;
    let code = code_for(&base, "octocat", "read:user").await;
    let resp = client()
        .post(format!("{base}/login/oauth/access_token"))
        .basic_auth(CLIENT_ID, Some(SECRET))
        .form(&[
            ("code", code.as_str()),
            ("redirect_uri", CALLBACK),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .unwrap();
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/x-www-form-urlencoded"));
    let text = resp.text().await.unwrap();
    assert!(text.starts_with("access_token=gho_"), "{text}");
    assert!(
        text.ends_with("&scope=read%3Auser&token_type=bearer"),
        "{text}"
    );

    let resp = client()
        .post(format!("{base}/login/oauth/access_token"))
        .form(&[
            ("client_id", CLIENT_ID),
            ("client_secret", "nope"),
            ("code", "x"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let text = resp.text().await.unwrap();
    assert!(
        text.starts_with("error=incorrect_client_credentials&error_description="),
        "{text}"
    );
}

#[tokio::test]
async fn token_endpoint_errors() {
    let (mock, base) = start_demo().await;
    let ok = |code: &str| {
        vec![
            ("client_id", CLIENT_ID.to_string()),
            ("client_secret", SECRET.to_string()),
            ("code", code.to_string()),
            ("redirect_uri", CALLBACK.to_string()),
            ("code_verifier", VERIFIER.to_string()),
        ]
    };
    async fn send(base: &str, fields: Vec<(&str, String)>) -> Value {
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        exchange(base, &fields).await
    }
    let with = |mut f: Vec<(&'static str, String)>, key: &'static str, value: Option<&str>| {
        f.retain(|(k, _)| *k != key);
        if let Some(v) = value {
            f.push((key, v.to_string()));
        }
        f
    };

    // Wrong secret does not burn the code; the correct exchange then works.
    let code = code_for(&base, "octocat", "read:user").await;
    let body = send(&base, with(ok(&code), "client_secret", Some("wrong"))).await;
    assert_eq!(body["error"], "incorrect_client_credentials");
    assert!(body["error_uri"]
        .as_str()
        .unwrap()
        .starts_with("https://docs.github.com/"));
    let body = send(&base, with(ok(&code), "client_id", Some("unknown"))).await;
    assert_eq!(body["error"], "incorrect_client_credentials");

    // redirect_uri must be identical to the authorize request's; the failure burns the code.
    let body = send(
        &base,
        with(
            ok(&code),
            "redirect_uri",
            Some("http://127.0.0.1:4180/oauth2/callback/x"),
        ),
    )
    .await;
    assert_eq!(body["error"], "redirect_uri_mismatch");
    let body = send(&base, ok(&code)).await;
    assert_eq!(
        body["error"], "bad_verification_code",
        "codes are single use"
    );

    let code = code_for(&base, "octocat", "read:user").await;
    let body = send(&base, with(ok(&code), "redirect_uri", None)).await;
    assert_eq!(body["error"], "redirect_uri_mismatch");

    // Reuse after success.
    let code = code_for(&base, "octocat", "read:user").await;
    assert!(send(&base, ok(&code)).await["access_token"].is_string());
    assert_eq!(
        send(&base, ok(&code)).await["error"],
        "bad_verification_code"
    );

    // PKCE: wrong and missing verifier.
    let code = code_for(&base, "octocat", "read:user").await;
    let wrong = "b-verifier-that-is-long-enough-for-rfc-7636-pkce-0123456789";
    let body = send(&base, with(ok(&code), "code_verifier", Some(wrong))).await;
    assert_eq!(body["error"], "bad_verification_code");
    assert!(body["error_description"]
        .as_str()
        .unwrap()
        .contains("code_verifier"));
    let code = code_for(&base, "octocat", "read:user").await;
    let body = send(&base, with(ok(&code), "code_verifier", None)).await;
    assert_eq!(body["error"], "bad_verification_code");
    assert!(body["error_description"]
        .as_str()
        .unwrap()
        .contains("missing"));

    // A code issued to another app.
    mock.add_app(MockApp {
        client_id: "other".into(),
        client_secret: "other-secret".into(),
        callback_url: CALLBACK.into(),
    });
    let code = code_for(&base, "octocat", "read:user").await;
    let mut fields = with(ok(&code), "client_id", Some("other"));
    fields = with(fields, "client_secret", Some("other-secret"));
    assert_eq!(send(&base, fields).await["error"], "bad_verification_code");

    // Unknown and expired codes.
    assert_eq!(
        send(&base, ok("0123456789abcdef0123")).await["error"],
        "bad_verification_code"
    );
    let code = code_for(&base, "octocat", "read:user").await;
    let resp = client()
        .post(format!("{base}/_mock/codes/expire"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        send(&base, ok(&code)).await["error"],
        "bad_verification_code"
    );
}

#[tokio::test]
async fn authorize_validation() {
    let (_mock, base) = start_demo().await;
    let get = |query: String| {
        let base = base.clone();
        async move {
            client()
                .get(format!("{base}/login/oauth/authorize?{query}"))
                .send()
                .await
                .unwrap()
        }
    };
    let resp = get("client_id=nope".into()).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));

    // A redirect_uri that does not match: GitHub sends the error to the *registered*
    // callback (never to the given URL), with its description, error_uri and the state.
    for bad in [
        "http://evil.example/oauth2/callback",
        "http://127.0.0.1:4181/oauth2/callback",
        "http://127.0.0.1:4180/oauth2/callbackx",
        "http://127.0.0.1:4180/other",
    ] {
        let resp = get(format!(
            "client_id={CLIENT_ID}&redirect_uri={}&state=s1",
            urlencode(bad)
        ))
        .await;
        assert_eq!(resp.status(), StatusCode::FOUND, "{bad}");
        let location = resp.headers()["location"].to_str().unwrap().to_string();
        assert!(location.starts_with(&format!("{CALLBACK}?")), "{location}");
        let q = query_of(&location);
        assert_eq!(q["error"], "redirect_uri_mismatch");
        assert_eq!(
            q["error_description"],
            "The redirect_uri MUST match the registered callback URL for this application."
        );
        assert!(q["error_uri"].ends_with("#redirect-uri-mismatch"));
        assert_eq!(q["state"], "s1");
        assert!(!q.contains_key("code"));
        // The POST is refused the same way: no code.
        let resp = sign_in_location(
            &base,
            &[
                ("client_id", CLIENT_ID),
                ("redirect_uri", bad),
                ("login", "octocat"),
            ],
        )
        .await;
        assert_eq!(resp.status(), StatusCode::FOUND, "{bad}");
        let location = resp.headers()["location"].to_str().unwrap();
        assert!(location.starts_with(&format!("{CALLBACK}?error=redirect_uri_mismatch")));
    }
    // Not a URL at all: a page.
    let resp = get(format!("client_id={CLIENT_ID}&redirect_uri=nope")).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(resp.headers().get("location").is_none());

    let plain = format!(
        "client_id={CLIENT_ID}&code_challenge={}&code_challenge_method=plain",
        challenge(VERIFIER)
    );
    assert_eq!(get(plain).await.status(), StatusCode::BAD_REQUEST);

    // Escaping of reflected parameters.
    let html = get(format!("client_id={CLIENT_ID}&state=%22%3E%3Cscript%3E"))
        .await
        .text()
        .await
        .unwrap();
    assert!(!html.contains("<script>"));
    assert!(html.contains("&quot;&gt;&lt;script&gt;"));

    // Omitted redirect_uri: the registered callback; a subdirectory keeps its own query.
    let resp = sign_in_location(
        &base,
        &[
            ("client_id", CLIENT_ID),
            ("state", "a b&c"),
            ("login", "octocat"),
        ],
    )
    .await;
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    assert!(
        location.starts_with(&format!("{CALLBACK}?code=")),
        "{location}"
    );
    assert_eq!(query_of(&location)["state"], "a b&c");
    let sub = format!("{CALLBACK}/deeper?keep=1");
    let resp = sign_in_location(
        &base,
        &[
            ("client_id", CLIENT_ID),
            ("redirect_uri", &sub),
            ("login", "octocat"),
        ],
    )
    .await;
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    assert!(
        location.starts_with(&format!("{CALLBACK}/deeper?keep=1&code=")),
        "{location}"
    );
    assert!(!location.contains("state="));

    let resp = sign_in_location(&base, &[("client_id", CLIENT_ID), ("login", "nobody")]).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
}

fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[tokio::test]
async fn rest_rules() {
    let (mock, base) = start_demo().await;
    let before = mock.api_request_count();
    gatehouse::install_crypto_provider();
    let resp = Client::new()
        .get(format!("{base}/api/v3/user"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert!(resp
        .text()
        .await
        .unwrap()
        .contains("Please make sure your request has a User-Agent header"));

    let resp = client()
        .get(format!("{base}/api/v3/user"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["message"],
        "Requires authentication"
    );
    let resp = api(&base, "gho_notatoken", "/user").await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["message"],
        "Bad credentials"
    );

    let token = token_for(&base, "octocat", "read:user").await;
    let resp = client()
        .get(format!("{base}/api/v3/user"))
        .header("authorization", format!("token {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = api(&base, &token, "/user/emails").await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(resp.json::<Value>().await.unwrap()["message"], "Not Found");
    // GitHub refuses to list orgs without read:org or user (it used to be an empty list here).
    let resp = api(&base, &token, "/user/orgs").await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(resp.headers()["x-oauth-scopes"], "read:user");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["message"],
        "You need at least read:org scope or user scope to list your organizations."
    );
    assert_eq!(body["status"], "403");
    let with_user = token_for(&base, "octocat", "user").await;
    assert_eq!(
        api(&base, &with_user, "/user/orgs").await.status(),
        StatusCode::OK
    );
    assert_eq!(
        api(&base, &token, "/user/teams").await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api(&base, &token, "/user/memberships/orgs/databio")
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    let team = "/orgs/databio/teams/core/memberships/octocat";
    assert_eq!(
        api(&base, &token, team).await.status(),
        StatusCode::NOT_FOUND
    );
    let resp = api(&base, &token, "/repos/x/y").await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["documentation_url"],
        "https://docs.github.com/rest"
    );
    // Outside the prefix is not the API and is not counted.
    let counted = mock.api_request_count();
    assert_eq!(
        client()
            .get(format!("{base}/user"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(mock.api_request_count(), counted);
    assert_eq!(counted - before, 11);
}

#[tokio::test]
async fn memberships_with_read_org() {
    let (_mock, base) = start_demo().await;
    let octocat = token_for(&base, "octocat", "read:user read:org").await;
    let orgs: Value = api(&base, &octocat, "/user/orgs")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(orgs.as_array().unwrap().len(), 1);
    assert_eq!(orgs[0]["login"], "databio");
    let teams: Value = api(&base, &octocat, "/user/teams")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(teams[0]["slug"], "core");
    assert_eq!(teams[0]["organization"]["login"], "databio");
    let m: Value = api(&base, &octocat, "/user/memberships/orgs/DataBio")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (m["state"].as_str(), m["role"].as_str()),
        (Some("active"), Some("admin"))
    );
    assert_eq!(m["organization"]["login"], "databio");
    assert_eq!(m["user"]["login"], "octocat");
    let t: Value = api(
        &base,
        &octocat,
        "/orgs/DATABIO/teams/core/memberships/OctoCat",
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(t["state"], "active");
    assert_eq!(t["role"], "member");
    assert_eq!(
        api(
            &base,
            &octocat,
            "/orgs/databio/teams/core/memberships/monalisa"
        )
        .await
        .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api(&base, &octocat, "/user/memberships/orgs/acme")
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api(&base, &octocat, "/user/memberships/orgs/nope")
            .await
            .status(),
        StatusCode::NOT_FOUND
    );

    // Pending shows as pending and does not list the org.
    let hubot = token_for(&base, "hubot", "user read:org").await;
    let m: Value = api(&base, &hubot, "/user/memberships/orgs/databio")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(m["state"], "pending");
    let orgs: Value = api(&base, &hubot, "/user/orgs").await.json().await.unwrap();
    assert_eq!(orgs, serde_json::json!([]));
    // `user` implies user:email; hubot's primary is unverified.
    let emails: Value = api(&base, &hubot, "/user/emails")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (
            emails[0]["primary"].as_bool(),
            emails[0]["verified"].as_bool()
        ),
        (Some(true), Some(false))
    );
    assert_eq!(emails[1]["verified"], true);

    // A non-member of the org can not see its teams.
    let mallory = token_for(&base, "mallory", "read:org").await;
    let team = "/orgs/databio/teams/core/memberships/octocat";
    assert_eq!(
        api(&base, &mallory, team).await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn pagination_link_headers() {
    let mut toml = String::from("[[users]]\nlogin = \"pager\"\nid = 7\n");
    for i in 1..=5 {
        toml.push_str(&format!(
            "[[orgs]]\nlogin = \"org{i}\"\nmembers = [{{ login = \"pager\" }}]\n"
        ));
    }
    let (_mock, base) = start(MockGithub::from_toml(&toml).unwrap()).await;
    let token = token_for(&base, "pager", "read:org").await;
    let host = base.trim_start_matches("http://");
    let link = |n: u32, rel: &str| {
        format!("<http://{host}/api/v3/user/orgs?per_page=2&page={n}>; rel=\"{rel}\"")
    };

    let first = api(&base, &token, "/user/orgs?per_page=2").await;
    assert_eq!(
        first.headers()["link"],
        format!("{}, {}", link(2, "next"), link(3, "last")).as_str()
    );
    let logins: Value = first.json().await.unwrap();
    assert_eq!(
        (logins[0]["login"].as_str(), logins[1]["login"].as_str()),
        (Some("org1"), Some("org2"))
    );

    let middle = api(&base, &token, "/user/orgs?per_page=2&page=2").await;
    let expected = [
        link(1, "prev"),
        link(3, "next"),
        link(3, "last"),
        link(1, "first"),
    ]
    .join(", ");
    assert_eq!(middle.headers()["link"], expected.as_str());

    let last = api(&base, &token, "/user/orgs?per_page=2&page=3").await;
    assert_eq!(
        last.headers()["link"],
        format!("{}, {}", link(2, "prev"), link(1, "first")).as_str()
    );
    let items: Value = last.json().await.unwrap();
    assert_eq!(items.as_array().unwrap().len(), 1);
    assert_eq!(items[0]["login"], "org5");

    let all = api(&base, &token, "/user/orgs?per_page=1000").await;
    assert!(all.headers().get("link").is_none());
    assert_eq!(
        all.json::<Value>().await.unwrap().as_array().unwrap().len(),
        5
    );
}

#[tokio::test]
async fn revocation() {
    let (_mock, base) = start_demo().await;
    let token = token_for(&base, "octocat", "read:user").await;
    let revoke = |user: &str, pass: &str, body: String| {
        client()
            .delete(format!("{base}/api/v3/applications/{CLIENT_ID}/token"))
            .basic_auth(user, Some(pass))
            .header("content-type", "application/json")
            .body(body)
    };
    let body = serde_json::json!({ "access_token": token }).to_string();
    assert_eq!(
        revoke(CLIENT_ID, "wrong", body.clone())
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        revoke("demo-client-id", "demo-client-secret", body.clone())
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        revoke(CLIENT_ID, SECRET, "{".into())
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(api(&base, &token, "/user").await.status(), StatusCode::OK);
    assert_eq!(
        revoke(CLIENT_ID, SECRET, body.clone())
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        api(&base, &token, "/user").await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        revoke(CLIENT_ID, SECRET, body)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn mock_controls() {
    let (mock, base) = start_demo().await;
    let token = token_for(&base, "octocat", "read:user read:org").await;
    let c = client();
    let member = format!("{base}/_mock/orgs/databio/members/octocat");

    assert_eq!(
        c.delete(&member).send().await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        api(&base, &token, "/user/memberships/orgs/databio")
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    let teams: Value = api(&base, &token, "/user/teams")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(teams, serde_json::json!([]));

    let resp = c
        .post(format!("{member}?state=pending"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let m: Value = api(&base, &token, "/user/memberships/orgs/databio")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(m["state"], "pending");
    c.post(format!("{member}?state=active"))
        .send()
        .await
        .unwrap();
    let m: Value = api(&base, &token, "/user/memberships/orgs/databio")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(m["state"], "active");
    let team = format!("{base}/_mock/orgs/databio/teams/core/members/octocat");
    assert_eq!(
        c.post(&team).send().await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
    let path = "/orgs/databio/teams/core/memberships/octocat";
    assert_eq!(api(&base, &token, path).await.status(), StatusCode::OK);
    assert_eq!(
        c.post(format!("{member}?state=bogus"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::BAD_REQUEST
    );
    let ghost = format!("{base}/_mock/orgs/nope/members/octocat");
    assert_eq!(
        c.post(ghost).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );

    c.post(format!("{base}/_mock/fail?status=502"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        api(&base, &token, "/user").await.status(),
        StatusCode::BAD_GATEWAY
    );
    // The token endpoint still works unless oauth=true.
    assert!(token_for(&base, "octocat", "").await.starts_with("gho_"));
    c.post(format!("{base}/_mock/fail?status=503&oauth=true"))
        .send()
        .await
        .unwrap();
    let resp = c
        .post(format!("{base}/login/oauth/access_token"))
        .form(&[("client_id", CLIENT_ID)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    c.post(format!("{base}/_mock/fail?status=0"))
        .send()
        .await
        .unwrap();
    assert_eq!(api(&base, &token, "/user").await.status(), StatusCode::OK);

    let stats: Value = c
        .get(format!("{base}/_mock/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        stats["api_requests"].as_u64(),
        Some(mock.api_request_count())
    );
}

#[tokio::test]
async fn api_at_root_and_toml_errors() {
    let (_mock, base) = start(MockGithub::demo().with_api_prefix("")).await;
    let token = token_for(&base, "octocat", "").await;
    let user = client()
        .get(format!("{base}/user"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(user.json::<Value>().await.unwrap()["login"], "octocat");
    assert_eq!(
        api(&base, &token, "/user").await.status(),
        StatusCode::NOT_FOUND
    );

    let err = MockGithub::from_toml("[[users]]\nlogin = \"bad_login\"\nid = 1\n")
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("users[0].login") && err.contains("fix:"),
        "{err}"
    );
}

/// `POST {base}/_mock/{path}` and its status.
async fn control(base: &str, path: &str) -> StatusCode {
    client()
        .post(format!("{base}/_mock/{path}"))
        .send()
        .await
        .unwrap()
        .status()
}

/// The URL of the `rel` entry of a response's Link header.
fn link_rel(resp: &reqwest::Response, rel: &str) -> Option<String> {
    let header = resp.headers().get("link")?.to_str().unwrap().to_string();
    header.split(", ").find_map(|entry| {
        let (url, params) = entry.split_once(">; ")?;
        (params == format!("rel=\"{rel}\"")).then(|| url.trim_start_matches('<').to_string())
    })
}

/// Follow `rel="next"` from `{base}/api/v3{path}`; every item of every page, and the page count.
async fn all_pages(base: &str, token: &str, path: &str) -> (Vec<Value>, usize) {
    let mut url = format!("{base}/api/v3{path}");
    let mut items = Vec::new();
    for pages in 1..=20 {
        let resp = client().get(&url).bearer_auth(token).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{url}");
        let next = link_rel(&resp, "next");
        let page: Value = resp.json().await.unwrap();
        items.extend(page.as_array().unwrap().iter().cloned());
        match next {
            Some(next) => {
                // Absolute, and still under the API prefix.
                assert!(next.starts_with(&format!("{base}/api/v3/")), "{next}");
                url = next;
            }
            None => return (items, pages),
        }
    }
    panic!("more than 20 pages from {path}");
}

#[tokio::test]
async fn create_org_control_endpoint() {
    let (_mock, base) = start_demo().await;
    let c = client();
    let resp = c
        .post(format!("{base}/_mock/orgs/New-Org?name=New%20Org"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        (body["login"].as_str(), body["name"].as_str()),
        (Some("New-Org"), Some("New Org"))
    );
    let id = body["id"].as_u64().unwrap();
    assert!(id > 2000002, "{id}");
    // Logins are case-insensitive and shared with users.
    assert_eq!(control(&base, "orgs/new-org").await, StatusCode::CONFLICT);
    assert_eq!(control(&base, "orgs/databio").await, StatusCode::CONFLICT);
    assert_eq!(control(&base, "orgs/OctoCat").await, StatusCode::CONFLICT);
    for bad in [
        "bad_org",
        "-lead",
        "trail-",
        "two--hyphens",
        &"x".repeat(40),
    ] {
        assert_eq!(
            control(&base, &format!("orgs/{bad}")).await,
            StatusCode::BAD_REQUEST,
            "{bad}"
        );
    }
    // A second org gets another id; a fresh org has no members.
    let other: Value = c
        .post(format!("{base}/_mock/orgs/other-org"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_ne!(other["id"].as_u64(), Some(id));
    assert!(other["name"].is_null());
    let token = token_for(&base, "octocat", "read:org").await;
    assert_eq!(
        api(&base, &token, "/user/memberships/orgs/new-org")
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        control(&base, "orgs/new-org/members/octocat").await,
        StatusCode::OK
    );
    let m: Value = api(&base, &token, "/user/memberships/orgs/NEW-ORG")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(m["state"], "active");
    assert_eq!(m["organization"]["login"], "New-Org");
    assert_eq!(m["organization"]["id"].as_u64(), Some(id));
}

#[tokio::test]
async fn user_in_150_orgs_pages_through_link_headers() {
    let (_mock, base) = start_demo().await;
    let mut expected = vec!["databio".to_string(), "acme".to_string()];
    for i in 1..=150 {
        let org = format!("bulk-org-{i}");
        assert_eq!(control(&base, &format!("orgs/{org}")).await, StatusCode::OK);
        assert_eq!(
            control(&base, &format!("orgs/{org}/members/monalisa")).await,
            StatusCode::OK
        );
        expected.push(org);
    }
    let token = token_for(&base, "monalisa", "read:user read:org").await;

    let first = api(&base, &token, "/user/orgs?per_page=100").await;
    let last = link_rel(&first, "last").unwrap();
    assert_eq!(last, format!("{base}/api/v3/user/orgs?per_page=100&page=2"));
    let (items, pages) = all_pages(&base, &token, "/user/orgs?per_page=100").await;
    assert_eq!(pages, 2);
    let logins: Vec<String> = items
        .iter()
        .map(|o| o["login"].as_str().unwrap().to_string())
        .collect();
    let unique: std::collections::HashSet<&String> = logins.iter().collect();
    assert_eq!(unique.len(), logins.len(), "an org came back twice");
    let mut sorted = logins.clone();
    sorted.sort();
    expected.sort();
    assert_eq!(sorted, expected);

    // per_page defaults to 30 and is clamped to 100.
    let default = api(&base, &token, "/user/orgs").await;
    assert_eq!(
        link_rel(&default, "last").unwrap(),
        format!("{base}/api/v3/user/orgs?page=6")
    );
    assert_eq!(
        default
            .json::<Value>()
            .await
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        30
    );
    let (items, pages) = all_pages(&base, &token, "/user/orgs").await;
    assert_eq!((items.len(), pages), (152, 6));
    let clamped = api(&base, &token, "/user/orgs?per_page=1000").await;
    assert_eq!(
        link_rel(&clamped, "next").unwrap(),
        format!("{base}/api/v3/user/orgs?per_page=1000&page=2")
    );
    assert_eq!(
        clamped
            .json::<Value>()
            .await
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        100
    );
    // Past the end: an empty page.
    let beyond: Value = api(&base, &token, "/user/orgs?per_page=100&page=3")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(beyond, serde_json::json!([]));

    // Without read:org (or user) GitHub refuses the list.
    let plain = token_for(&base, "monalisa", "read:user").await;
    assert_eq!(
        api(&base, &plain, "/user/orgs").await.status(),
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn pending_membership_is_not_listed() {
    let (_mock, base) = start_demo().await;
    assert_eq!(control(&base, "orgs/invite-only").await, StatusCode::OK);
    assert_eq!(
        control(&base, "orgs/invite-only/members/monalisa?state=pending").await,
        StatusCode::OK
    );
    let token = token_for(&base, "monalisa", "read:org").await;
    let (orgs, _) = all_pages(&base, &token, "/user/orgs?per_page=1").await;
    let logins: Vec<&str> = orgs.iter().map(|o| o["login"].as_str().unwrap()).collect();
    assert_eq!(logins, ["databio", "acme"]);
    let m: Value = api(&base, &token, "/user/memberships/orgs/invite-only")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (m["state"].as_str(), m["role"].as_str()),
        (Some("pending"), Some("member"))
    );
    // Accepting the invitation lists it.
    assert_eq!(
        control(&base, "orgs/invite-only/members/monalisa?state=active").await,
        StatusCode::OK
    );
    let (orgs, _) = all_pages(&base, &token, "/user/orgs").await;
    assert!(orgs.iter().any(|o| o["login"] == "invite-only"));
    // Not a member at all, and no read:org: 404.
    assert_eq!(
        api(&base, &token, "/user/memberships/orgs/other")
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    let plain = token_for(&base, "monalisa", "read:user").await;
    assert_eq!(
        api(&base, &plain, "/user/memberships/orgs/invite-only")
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn created_teams_and_team_memberships() {
    let (_mock, base) = start_demo().await;
    let c = client();
    assert_eq!(
        control(&base, "orgs/nope/teams/platform").await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(control(&base, "orgs/team-org").await, StatusCode::OK);
    let resp = c
        .post(format!(
            "{base}/_mock/orgs/team-org/teams/platform?name=Platform"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let team: Value = resp.json().await.unwrap();
    assert_eq!(
        (
            team["org"].as_str(),
            team["slug"].as_str(),
            team["name"].as_str()
        ),
        (Some("team-org"), Some("platform"), Some("Platform"))
    );
    assert_ne!(team["id"].as_u64(), Some(3000001));
    assert_eq!(
        control(&base, "orgs/TEAM-ORG/teams/platform").await,
        StatusCode::CONFLICT
    );
    assert_eq!(
        control(&base, "orgs/team-org/teams/Bad%20Slug").await,
        StatusCode::BAD_REQUEST
    );
    for slug in ["infra", "docs"] {
        assert_eq!(
            control(&base, &format!("orgs/team-org/teams/{slug}")).await,
            StatusCode::OK
        );
    }
    // octocat: active in team-org, on platform and infra (plus databio/core from the demo data).
    assert_eq!(
        control(&base, "orgs/team-org/members/octocat").await,
        StatusCode::OK
    );
    assert_eq!(
        control(&base, "orgs/team-org/members/monalisa").await,
        StatusCode::OK
    );
    for slug in ["platform", "infra"] {
        assert_eq!(
            control(
                &base,
                &format!("orgs/team-org/teams/{slug}/members/octocat")
            )
            .await,
            StatusCode::NO_CONTENT
        );
    }
    let token = token_for(&base, "octocat", "read:org").await;
    let t: Value = api(
        &base,
        &token,
        "/orgs/team-org/teams/platform/memberships/octocat",
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(t["state"], "active");
    for path in [
        "/orgs/team-org/teams/docs/memberships/octocat",
        "/orgs/team-org/teams/platform/memberships/monalisa",
        "/orgs/team-org/teams/nope/memberships/octocat",
        "/orgs/team-org/teams/platform/memberships/mallory",
    ] {
        assert_eq!(
            api(&base, &token, path).await.status(),
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }

    // A team in an org where the membership is pending grants nothing and is not listed.
    assert_eq!(control(&base, "orgs/pending-org").await, StatusCode::OK);
    assert_eq!(
        control(&base, "orgs/pending-org/teams/ops").await,
        StatusCode::OK
    );
    assert_eq!(
        control(&base, "orgs/pending-org/members/octocat?state=pending").await,
        StatusCode::OK
    );
    assert_eq!(
        control(&base, "orgs/pending-org/teams/ops/members/octocat").await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        api(
            &base,
            &token,
            "/orgs/pending-org/teams/ops/memberships/octocat"
        )
        .await
        .status(),
        StatusCode::NOT_FOUND
    );

    let first = api(&base, &token, "/user/teams?per_page=2").await;
    assert_eq!(
        link_rel(&first, "next").unwrap(),
        format!("{base}/api/v3/user/teams?per_page=2&page=2")
    );
    let (teams, pages) = all_pages(&base, &token, "/user/teams?per_page=2").await;
    assert_eq!(pages, 2);
    let mut got: Vec<String> = teams
        .iter()
        .map(|t| {
            format!(
                "{}/{}",
                t["organization"]["login"].as_str().unwrap(),
                t["slug"].as_str().unwrap()
            )
        })
        .collect();
    got.sort();
    assert_eq!(got, ["databio/core", "team-org/infra", "team-org/platform"]);

    // Without read:org the team calls answer 404.
    let plain = token_for(&base, "octocat", "read:user").await;
    for path in [
        "/user/teams",
        "/orgs/team-org/teams/platform/memberships/octocat",
    ] {
        assert_eq!(
            api(&base, &plain, path).await.status(),
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
}

#[tokio::test]
async fn many_concurrent_sign_ins() {
    let (_mock, base) = start_demo().await;
    let tasks: Vec<_> = (0..40)
        .map(|_| {
            let base = base.clone();
            tokio::spawn(async move { token_for(&base, "monalisa", "read:org").await })
        })
        .collect();
    let mut tokens = std::collections::HashSet::new();
    for t in tasks {
        tokens.insert(t.await.unwrap());
    }
    assert_eq!(tokens.len(), 40);
}

async fn start_upstream() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(serve_demo_upstream(listener));
    base
}

#[tokio::test]
async fn upstream_upload_and_download() {
    let base = start_upstream().await;
    let body: Vec<u8> = (0..10 * 1024 * 1024_u32)
        .map(|i| (i * 7 % 256) as u8)
        .collect();
    let expected: String = Sha256::digest(&body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let resp: Value = client()
        .post(format!("{base}/upload"))
        .body(body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(resp["bytes"], 10 * 1024 * 1024);
    assert_eq!(resp["sha256"], expected.as_str());

    let n: u64 = 5 * 1024 * 1024 + 17;
    let mut resp = client()
        .get(format!("{base}/download?bytes={n}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-length"], n.to_string().as_str());
    let mut seen: u64 = 0;
    while let Some(chunk) = resp.chunk().await.unwrap() {
        for b in chunk.iter() {
            assert_eq!(*b, (seen % 251) as u8);
            seen += 1;
        }
    }
    assert_eq!(seen, n);
}

#[tokio::test]
async fn upstream_page_echo_and_sse() {
    let base = start_upstream().await;
    let html = client()
        .get(format!("{base}/some/path?q=1"))
        .header("x-forwarded-user", "<script>alert(1)</script>")
        .header("x-forwarded-groups", "databio,databio/core")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("Demo app behind Gatehouse"));
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!html.contains("<script>"));
    assert!(html.contains("databio,databio/core"));
    assert!(html.contains("/some/path?q=1"));
    assert!(html.contains("/oauth2/sign_out"));

    let echo: Value = client()
        .put(format!("{base}/echo/a/b?x=1"))
        .header("x-one", "1")
        .header("x-twice", "a")
        .header("x-twice", "b") // reqwest appends, so the header repeats
        .body("hello")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(echo["method"], "PUT");
    assert_eq!(echo["path"], "/echo/a/b");
    assert_eq!(echo["query"], "x=1");
    assert_eq!(echo["headers"]["x-one"], "1");
    assert_eq!(echo["headers"]["x-twice"], serde_json::json!(["a", "b"]));
    assert_eq!(echo["body"], "hello");

    let start = std::time::Instant::now();
    let mut resp = client().get(format!("{base}/sse")).send().await.unwrap();
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut text = String::new();
    while let Some(chunk) = resp.chunk().await.unwrap() {
        text.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    assert_eq!(text.matches("data: tick ").count(), 5);
    assert!(text.ends_with("data: tick 5\n\n"));
    assert!(start.elapsed() >= std::time::Duration::from_millis(400));
}

#[tokio::test]
async fn org_restrictions_single_sign_on_and_rate_limits_answer_as_github_does() {
    let (_mock, base) = start_demo().await;
    let token = token_for(&base, "monalisa", "read:user read:org").await;
    let membership = "/user/memberships/orgs/databio";
    let ok = api(&base, &token, membership).await;
    assert_eq!(ok.headers()["x-ratelimit-limit"], "5000");
    assert_eq!(ok.headers()["x-ratelimit-resource"], "core");
    assert_ne!(ok.headers()["x-ratelimit-remaining"], "0");

    // OAuth App access restrictions: the lists leave the org out, its endpoints say why.
    let policy = "orgs/databio/policy?oauth_app_restrictions=true";
    assert_eq!(control(&base, policy).await, StatusCode::OK);
    let resp = api(&base, &token, membership).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(resp.headers()["x-oauth-scopes"], "read:user, read:org");
    assert_eq!(resp.headers()["x-accepted-oauth-scopes"], "read:org");
    let body: Value = resp.json().await.unwrap();
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("the `databio` organization has enabled OAuth App access restrictions"),
        "{message}"
    );
    assert_eq!(body["status"], "403");
    let orgs: Value = api(&base, &token, "/user/orgs").await.json().await.unwrap();
    assert_eq!(orgs.as_array().unwrap().len(), 1, "acme only: {orgs}");
    let team = "/orgs/databio/teams/core/memberships/octocat";
    assert_eq!(
        api(&base, &token, team).await.status(),
        StatusCode::FORBIDDEN
    );
    // Personal tokens are not OAuth apps: restrictions do not apply to them.
    let pat: Value = client()
        .post(format!("{base}/_mock/users/monalisa/tokens"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let pat = pat["token"].as_str().unwrap();
    assert_eq!(api(&base, pat, membership).await.status(), StatusCode::OK);
    // An owner approves the app: the same token sees the org at once.
    let approve = format!("orgs/databio/approved_apps/{CLIENT_ID}");
    assert_eq!(control(&base, &approve).await, StatusCode::NO_CONTENT);
    assert_eq!(
        api(&base, &token, membership).await.status(),
        StatusCode::OK
    );

    // SAML single sign-on: members' lists leave it out (saying which), its endpoints refuse
    // with the URL that authorizes the token.
    assert_eq!(
        control(&base, "orgs/databio/policy?saml_sso=true").await,
        StatusCode::OK
    );
    let resp = api(&base, &token, "/user/orgs").await;
    assert_eq!(
        resp.headers()["x-github-sso"],
        "partial-results; organizations=2000001"
    );
    let resp = api(&base, &token, membership).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let sso = resp.headers()["x-github-sso"].to_str().unwrap().to_string();
    let prefix = format!("required; url={base}/orgs/databio/sso?authorization_request=");
    assert!(sso.starts_with(&prefix), "{sso}");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["message"], "Resource protected by organization SAML enforcement. You must grant your OAuth token access to this organization.");
    // A non-member is not asked for single sign-on: 404 as before.
    let mallory = token_for(&base, "mallory", "read:org").await;
    assert_eq!(
        api(&base, &mallory, membership).await.status(),
        StatusCode::NOT_FOUND
    );
    let request = sso.split("authorization_request=").nth(1).unwrap();
    let shown = client()
        .get(format!(
            "{base}/orgs/databio/sso?authorization_request={request}"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(shown.status(), StatusCode::OK);
    let signed_in = client()
        .post(format!("{base}/orgs/databio/sso"))
        .form(&[("authorization_request", request)])
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), StatusCode::OK);
    assert_eq!(
        api(&base, &token, membership).await.status(),
        StatusCode::OK
    );
    // Used once.
    let again = client()
        .post(format!("{base}/orgs/databio/sso"))
        .form(&[("authorization_request", request)])
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_FOUND);

    // The primary rate limit: 403 (or 429), the budget spent, the reset ahead.
    let fail = "fail?mode=rate_limit&limit=primary&status=429&wait=30";
    assert_eq!(control(&base, fail).await, StatusCode::OK);
    let resp = api(&base, &token, "/user").await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(resp.headers()["x-ratelimit-remaining"], "0");
    let reset: u64 = resp.headers()["x-ratelimit-reset"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(reset > gatehouse::clock::unix_now() + 20);
    let body: Value = resp.json().await.unwrap();
    assert!(body["message"]
        .as_str()
        .unwrap()
        .starts_with("API rate limit exceeded for user ID 1000001."));
    // The secondary one: budget left, retry-after only when given.
    let fail = "fail?mode=rate_limit&limit=secondary&wait=7";
    assert_eq!(control(&base, fail).await, StatusCode::OK);
    let resp = api(&base, &token, "/user").await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(resp.headers()["retry-after"], "7");
    assert_ne!(resp.headers()["x-ratelimit-remaining"], "0");
    let body: Value = resp.json().await.unwrap();
    assert!(body["message"]
        .as_str()
        .unwrap()
        .starts_with("You have exceeded a secondary rate limit."));
    assert_eq!(
        control(&base, "fail?mode=rate_limit&limit=secondary").await,
        StatusCode::OK
    );
    assert!(api(&base, &token, "/user")
        .await
        .headers()
        .get("retry-after")
        .is_none());
    assert_eq!(control(&base, "fail?mode=off").await, StatusCode::OK);

    // The authorize step can be told to send an OAuth error to the registered callback.
    let fail = "fail?mode=authorize_error&error=application_suspended";
    assert_eq!(control(&base, fail).await, StatusCode::OK);
    let resp = client()
        .get(format!(
            "{base}/login/oauth/authorize?client_id={CLIENT_ID}&state=xyz"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FOUND);
    let q = query_of(resp.headers()["location"].to_str().unwrap());
    assert_eq!(q["error"], "application_suspended");
    assert_eq!(
        q["error_description"],
        "Your application has been suspended. Contact support@github.com."
    );
    assert_eq!(q["state"], "xyz");
    assert_eq!(
        control(&base, "fail?mode=authorize_error&error=bogus").await,
        StatusCode::BAD_REQUEST
    );
}
