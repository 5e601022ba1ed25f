//! Whole `login` and `token` flows against a fake gate (axum on a loopback port) and a fake
//! browser (reqwest), in process.

use super::login::{login_with, LoginOptions};
use super::store::{self, StoredTokens};
use super::{pkce, token, unix_now, ClientError};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Default)]
struct Fake {
    /// The challenge and redirect URI the start URL carried.
    started: Option<(String, String)>,
    /// Answer /oauth2/token and /oauth2/refresh with this error instead.
    refuse: Option<(u16, &'static str, &'static str)>,
    refreshes: Vec<String>,
}

type Shared = Arc<Mutex<Fake>>;

fn tokens(n: u32) -> Value {
    json!({
        "access_token": format!("acc-{n}"),
        "refresh_token": format!("ref-{n}"),
        "token_type": "Bearer",
        "expires_in": 900,
        "refresh_expires_in": 86_400,
    })
}

fn refused(status: u16, error: &str, message: &str) -> (StatusCode, Json<Value>) {
    (
        StatusCode::from_u16(status).unwrap(),
        Json(json!({ "error": error, "message": message })),
    )
}

async fn token_endpoint(
    State(fake): State<Shared>,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    let fake = fake.lock().unwrap();
    if let Some((status, error, message)) = fake.refuse {
        return refused(status, error, message);
    }
    let (challenge, redirect) = fake.started.clone().unwrap();
    let verifier = body["code_verifier"].as_str().unwrap();
    if body["code"] != "code-1"
        || body["client_redirect_uri"] != redirect.as_str()
        || pkce::challenge_s256(verifier) != challenge
    {
        return refused(400, "invalid_grant", "PKCE or redirect mismatch");
    }
    (StatusCode::OK, Json(tokens(1)))
}

async fn refresh_endpoint(
    State(fake): State<Shared>,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    let mut fake = fake.lock().unwrap();
    if let Some((status, error, message)) = fake.refuse {
        return refused(status, error, message);
    }
    fake.refreshes
        .push(body["refresh_token"].as_str().unwrap().to_string());
    (StatusCode::OK, Json(tokens(2)))
}

async fn fake_gate(fake: Shared) -> String {
    let router = Router::new()
        .route("/oauth2/token", post(token_endpoint))
        .route("/oauth2/refresh", post(refresh_endpoint))
        .with_state(fake);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
}

fn query_param(url: &url::Url, name: &str) -> String {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .unwrap()
}

/// The browser's part: note the challenge at the gate, then visit the loopback with each of
/// `callback_queries(state)` in turn. Returns the status and page of each answer.
type Browser = tokio::task::JoinHandle<Vec<(u16, String)>>;

fn browser(
    fake: &Shared,
    start: &str,
    callback_queries: impl FnOnce(&str) -> Vec<String> + Send + 'static,
) -> Browser {
    let start = url::Url::parse(start).unwrap();
    assert_eq!(start.path(), "/oauth2/start");
    assert_eq!(query_param(&start, "code_challenge_method"), "S256");
    let redirect = query_param(&start, "client_redirect_uri");
    fake.lock().unwrap().started = Some((query_param(&start, "code_challenge"), redirect.clone()));
    let state = query_param(&start, "state");
    assert_eq!(state.len(), 43);
    tokio::spawn(async move {
        crate::install_crypto_provider();
        let http = reqwest::Client::new();
        let base = redirect.trim_end_matches("/callback");
        let favicon = http
            .get(format!("{base}/favicon.ico"))
            .send()
            .await
            .unwrap();
        assert_eq!(favicon.status(), 404);
        let mut answers = Vec::new();
        for query in callback_queries(&state) {
            let answer = http
                .get(format!("{redirect}?{query}"))
                .send()
                .await
                .unwrap();
            answers.push((answer.status().as_u16(), answer.text().await.unwrap()));
        }
        answers
    })
}

fn options(origin: &str, dir: &std::path::Path, timeout: Duration) -> LoginOptions {
    LoginOptions {
        origin: origin.to_string(),
        open_browser: false,
        timeout,
        store_dir: dir.to_path_buf(),
    }
}

/// Run `login` with the fake browser sending one callback; the login result and what the
/// browser saw.
async fn run_login(
    fake: &Shared,
    origin: &str,
    dir: &std::path::Path,
    callback_query: impl FnOnce(&str) -> String + Send + 'static,
) -> (Result<(), ClientError>, (u16, String)) {
    let (result, mut answers) =
        run_login_with(fake, origin, dir, |state| vec![callback_query(state)]).await;
    (result, answers.remove(0))
}

/// Run `login` with the fake browser sending several callbacks in turn.
async fn run_login_with(
    fake: &Shared,
    origin: &str,
    dir: &std::path::Path,
    callback_queries: impl FnOnce(&str) -> Vec<String> + Send + 'static,
) -> (Result<(), ClientError>, Vec<(u16, String)>) {
    let mut tab = None;
    let result = login_with(&options(origin, dir, Duration::from_secs(10)), |start| {
        tab = Some(browser(fake, start, callback_queries));
    })
    .await;
    (result, tab.unwrap().await.unwrap())
}

#[tokio::test]
async fn login_exchanges_the_code_with_pkce_and_stores_tokens() {
    let fake = Shared::default();
    let origin = fake_gate(fake.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let (result, (status, page)) = run_login(&fake, &origin, dir.path(), |state| {
        format!("code=code-1&state={state}")
    })
    .await;
    result.unwrap();
    assert_eq!(status, 200);
    assert!(
        page.contains("Signed in — you can close this tab"),
        "{page}"
    );
    let stored = store::get(dir.path(), &origin).unwrap().unwrap();
    assert_eq!(stored.access_token, "acc-1");
    assert_eq!(stored.refresh_token, "ref-1");
    let now = unix_now();
    assert!(stored.access_expires_at.abs_diff(now + 900) <= 2);
    assert!(stored.refresh_expires_at.abs_diff(now + 86_400) <= 2);
}

#[tokio::test]
async fn login_ignores_answers_without_its_state_and_keeps_waiting() {
    let fake = Shared::default();
    let origin = fake_gate(fake.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let (result, answers) = run_login_with(&fake, &origin, dir.path(), |state| {
        vec![
            "code=code-1&state=forged".into(),
            "code=code-1".into(),
            "error=access_denied&error_description=%1B%5B2Jgive+up".into(),
            "error=access_denied&state=forged".into(),
            format!("code=code-1&state={state}"),
        ]
    })
    .await;
    result.unwrap();
    let statuses: Vec<u16> = answers.iter().map(|(s, _)| *s).collect();
    assert_eq!(statuses, [400, 400, 400, 400, 200]);
    assert!(answers[0].1.contains("still waiting"), "{}", answers[0].1);
    assert_eq!(
        store::get(dir.path(), &origin)
            .unwrap()
            .unwrap()
            .access_token,
        "acc-1"
    );
}

#[tokio::test]
async fn login_reports_the_gates_error_description() {
    let fake = Shared::default();
    let origin = fake_gate(fake.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let (result, (status, _)) = run_login(&fake, &origin, dir.path(), |state| {
        format!("error=access_denied&error_description=mallory+is+not+allowed&state={state}")
    })
    .await;
    let e = result.unwrap_err().to_string();
    assert!(e.contains("mallory is not allowed (access_denied)"), "{e}");
    assert_eq!(status, 403);
}

#[tokio::test]
async fn login_reports_a_refused_code_exchange() {
    let fake = Shared::default();
    fake.lock().unwrap().refuse = Some((400, "invalid_grant", "the code expired"));
    let origin = fake_gate(fake.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let (result, (status, page)) = run_login(&fake, &origin, dir.path(), |state| {
        format!("code=code-1&state={state}")
    })
    .await;
    let e = result.unwrap_err().to_string();
    assert!(
        e.contains("refused the sign-in code: the code expired"),
        "{e}"
    );
    assert_eq!(status, 400);
    assert!(page.contains("the code expired"));
}

#[tokio::test]
async fn login_times_out_with_instructions() {
    let dir = tempfile::tempdir().unwrap();
    let origin = "http://127.0.0.1:9";
    let result = login_with(
        &options(origin, dir.path(), Duration::from_millis(200)),
        |_| {},
    )
    .await;
    let e = result.unwrap_err().to_string();
    assert_eq!(
        e,
        "No sign-in arrived within 0.2 s. Run `gatehouse login --url http://127.0.0.1:9` again \
         and finish signing in in the browser."
    );
}

fn expiring_pair() -> StoredTokens {
    StoredTokens {
        access_token: "acc-1".into(),
        refresh_token: "ref-1".into(),
        access_expires_at: unix_now() + 10,
        refresh_expires_at: unix_now() + 1_000,
    }
}

#[tokio::test]
async fn token_refreshes_a_nearly_expired_access_token() {
    let fake = Shared::default();
    let origin = fake_gate(fake.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    store::put(dir.path(), &origin, expiring_pair()).unwrap();
    assert_eq!(
        token::access_token(&origin, dir.path()).await.unwrap(),
        "acc-2"
    );
    assert_eq!(fake.lock().unwrap().refreshes, vec!["ref-1".to_string()]);
    let stored = store::get(dir.path(), &origin).unwrap().unwrap();
    assert_eq!(stored.refresh_token, "ref-2");
    // Now fresh: no second refresh.
    assert_eq!(
        token::access_token(&origin, dir.path()).await.unwrap(),
        "acc-2"
    );
    assert_eq!(fake.lock().unwrap().refreshes.len(), 1);
}

#[tokio::test]
async fn token_refresh_refused_means_not_signed_in_with_the_servers_message() {
    let fake = Shared::default();
    fake.lock().unwrap().refuse = Some((403, "not_allowed", "octocat is no longer allowed"));
    let origin = fake_gate(fake.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    store::put(dir.path(), &origin, expiring_pair()).unwrap();
    let e = token::access_token(&origin, dir.path())
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        format!(
            "Not signed in to {origin} (or the session ended): run `gatehouse login --url {origin}` \
             (the server said: octocat is no longer allowed)"
        )
    );
}
