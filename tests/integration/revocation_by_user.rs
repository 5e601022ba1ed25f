//! Ending a user's access, whatever they signed in with: browser sessions, the CLI/SPA code
//! exchange (a refresh family and its access tokens), `/oauth2/pat`, and raw GitHub tokens the
//! gate remembered. The admin lists every kind by login (never a secret) and ends them all;
//! a one-time code or refresh token from before "sign out everywhere" is refused; on Redis the
//! same holds across replicas.

use crate::common::clock;
use crate::common::redis::{available, redis_cmd, RedisServer};
use crate::common::*;

use base64::Engine;
use serde_json::{json, Value};
use sha2::Digest;
use std::time::{Duration, Instant};

const SPA: &str = "http://127.0.0.1:9/spa/callback";
const HMAC: [u8; 32] = [5; 32];
const VERIFIER: &str = "a-long-enough-pkce-verifier-for-the-tests-0123456789";

/// databio members are admitted; octocat is the admin; raw GitHub tokens are accepted.
fn options(session_extra: &str) -> GateOptions {
    GateOptions {
        allowed_users: vec![],
        access_extra: format!(
            r#"allowed_orgs = ["databio"]
admin_users = ["octocat"]

[tokens]
hmac_secret = "{}"
client_redirect_uris = ["{SPA}"]
accept_github_tokens = true
"#,
            b64(&HMAC)
        ),
        session_extra: session_extra.into(),
        ..GateOptions::default()
    }
}

/// The browser part of a CLI/SPA sign-in on `gate`: the one-time code it lands with.
async fn code_for(gate: &str, login: &str) -> String {
    let browser = browser();
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(VERIFIER.as_bytes()));
    let start = browser
        .get(format!("{gate}/oauth2/start"))
        .query(&[
            ("client_redirect_uri", SPA),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(start.status(), 302, "start");
    let callback = consent(&browser, &location(&start), login).await;
    let done = browser.get(callback).send().await.unwrap();
    assert_eq!(done.status(), 302);
    let landed = location(&done);
    assert!(landed.starts_with(SPA), "{landed}");
    query_of(&landed)["code"].clone()
}

async fn post_to(gate: &str, path: &str, body: Value) -> (u16, Value) {
    let r = plain_client()
        .post(format!("{gate}{path}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn exchange(gate: &str, code: &str) -> (u16, Value) {
    post_to(
        gate,
        "/oauth2/token",
        json!({"code": code, "client_redirect_uri": SPA, "code_verifier": VERIFIER}),
    )
    .await
}

/// A token pair for `login` through the code exchange on `gate`.
async fn pair_for(gate: &str, login: &str) -> Value {
    let code = code_for(gate, login).await;
    let (status, pair) = exchange(gate, &code).await;
    assert_eq!(status, 200, "{pair}");
    pair
}

async fn refresh(gate: &str, pair: &Value) -> (u16, Value) {
    post_to(
        gate,
        "/oauth2/refresh",
        json!({"refresh_token": pair["refresh_token"]}),
    )
    .await
}

/// `POST /oauth2/pat` with `pat` on `h`: signed in (a session cookie and a token pair).
async fn pat_sign_in(h: &Harness, pat: &str) -> reqwest::Response {
    let r = plain_client()
        .post(h.url("/oauth2/pat"))
        .json(&json!({"token": pat}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r
}

/// The status of `GET /echo` on `gate` with `authorization`.
async fn status_as(gate: &str, authorization: &str) -> u16 {
    plain_client()
        .get(format!("{gate}/echo"))
        .header("authorization", authorization)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn bearer(pair: &Value) -> String {
    format!("Bearer {}", pair["access_token"].as_str().unwrap())
}

/// The family id in a refresh token (`gate_rt.FAMILY.GENERATION.SECRET`).
fn family_of(pair: &Value) -> String {
    pair["refresh_token"]
        .as_str()
        .unwrap()
        .split('.')
        .nth(1)
        .unwrap()
        .to_string()
}

async fn admin(
    method: reqwest::Method,
    gate: &str,
    path: &str,
    cookie: &str,
) -> (u16, String, Value) {
    let r = plain_client()
        .request(method, format!("{gate}{path}"))
        .header("cookie", format!("_gatehouse={cookie}"))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    (status, text, json)
}

async fn listing(gate: &str, cookie: &str, login: &str) -> (String, Value) {
    let (status, text, json) = admin(
        reqwest::Method::GET,
        gate,
        &format!("/oauth2/admin/sessions?user={login}"),
        cookie,
    )
    .await;
    assert_eq!(status, 200, "{text}");
    (text, json)
}

fn kinds(listed: &Value) -> Vec<String> {
    let mut kinds: Vec<String> = listed["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["kind"].as_str().unwrap_or("?").to_string())
        .collect();
    kinds.sort();
    kinds
}

async fn end_user(gate: &str, cookie: &str, login: &str) -> Value {
    let (status, text, json) = admin(
        reqwest::Method::DELETE,
        gate,
        &format!("/oauth2/admin/users/{login}/sessions"),
        cookie,
    )
    .await;
    assert_eq!(status, 200, "{text}");
    json
}

/// `ended` (an answer of [`end_user`]) counts monalisa's one browser session, token pair and
/// unexchanged code; on `h` each is then refused (within a second, as when another replica
/// ended them): the pair's access token, its refresh, the code and the session. The admin
/// lists nothing of hers.
async fn all_of_hers_is_over(
    h: &Harness,
    admin_session: &str,
    ended: &Value,
    pair: &Value,
    code: &str,
    browser_session: &str,
) {
    assert_eq!(
        (
            &ended["sessions_ended"],
            &ended["token_sign_ins_ended"],
            &ended["codes_ended"]
        ),
        (&json!(1), &json!(1), &json!(1)),
        "{ended}"
    );
    until_status(&h.gate, &bearer(pair), 401, Duration::from_secs(1)).await;
    let (status, body) = refresh(&h.gate, pair).await;
    assert_eq!(
        (status, &body["error"]),
        (401, &json!("invalid_grant")),
        "{body}"
    );
    let (status, body) = exchange(&h.gate, code).await;
    assert_eq!(
        (status, &body["error"]),
        (400, &json!("invalid_grant")),
        "{body}"
    );
    let started = Instant::now();
    while get_with_session(&h.url("/echo"), browser_session)
        .await
        .status()
        != 401
    {
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "the browser session is still served"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (text, listed) = listing(&h.gate, admin_session, "monalisa").await;
    assert!(kinds(&listed).is_empty(), "{text}");
}

/// Sleep into the next whole second (revocations compare whole seconds).
async fn next_second() {
    let at = now();
    while now() == at {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Poll until `GET /echo` on `gate` with `authorization` answers `want`.
async fn until_status(gate: &str, authorization: &str, want: u16, limit: Duration) {
    let started = Instant::now();
    loop {
        let got = status_as(gate, authorization).await;
        if got == want {
            return;
        }
        assert!(
            started.elapsed() < limit,
            "{gate}/echo still answers {got}, not {want}, after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A user who only ever used the code exchange (a CLI) is listed and ended by the admin, with
/// cookie sessions and with server-side ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_lists_and_ends_a_cli_users_tokens() {
    for store in ["cookie", "memory"] {
        let h = Harness::start(options(&format!("store = \"{store}\"\n"))).await;
        let octo = session_of(&h, "octocat").await;
        let pair = pair_for(&h.gate, "monalisa").await;
        assert_eq!(status_as(&h.gate, &bearer(&pair)).await, 200);

        let (text, listed) = listing(&h.gate, &octo, "MonaLisa").await;
        assert_eq!(kinds(&listed), ["code_exchange"], "{store}: {text}");
        let entry = &listed["sessions"][0];
        assert_eq!(entry["id"], family_of(&pair), "{text}");
        assert_eq!(
            (&entry["user"], &entry["user_id"]),
            (&json!("monalisa"), &json!("1000001"))
        );
        for field in ["created_at", "last_seen", "expires_at"] {
            assert!(entry[field].as_u64().is_some(), "{field}: {text}");
        }
        let refresh_secret = pair["refresh_token"]
            .as_str()
            .unwrap()
            .rsplit('.')
            .next()
            .unwrap();
        for secret in [
            pair["access_token"].as_str().unwrap(),
            refresh_secret,
            "gho_",
            "ghp_",
        ] {
            assert!(
                !text.contains(secret),
                "{store}: a secret in the listing: {text}"
            );
        }
        assert_eq!(
            listed["cookie_sessions_listed"],
            json!(store != "cookie"),
            "{store}: the listing says whether browser sessions could be listed: {text}"
        );

        let ended = end_user(&h.gate, &octo, "monalisa").await;
        assert_eq!(ended["token_sign_ins_ended"], 1, "{store}: {ended}");
        assert_eq!(
            status_as(&h.gate, &bearer(&pair)).await,
            401,
            "{store}: access token"
        );
        let (status, body) = refresh(&h.gate, &pair).await;
        assert_eq!(
            (status, &body["error"]),
            (401, &json!("invalid_grant")),
            "{store}: {body}"
        );
        let (text, listed) = listing(&h.gate, &octo, "monalisa").await;
        assert!(kinds(&listed).is_empty(), "{store}: {text}");
        assert_eq!(get_with_session(&h.url("/echo"), &octo).await.status(), 200);
        assert!(h.log().contains("sessions_revoked"), "{}", h.log());
    }
}

/// `/oauth2/pat` (a session and a token pair) and a raw GitHub token the gate remembered are
/// listed and ended too. A raw token is GitHub's, not the gate's: ending it means GitHub is
/// asked again before its next use, so a change at GitHub counts at once instead of up to
/// five minutes later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_ends_pat_sign_ins_and_remembered_raw_github_tokens() {
    let h = Harness::start(options("store = \"memory\"\n")).await;
    let octo = session_of(&h, "octocat").await;
    let pat = mock_pat(&h, "monalisa").await;
    let r = pat_sign_in(&h, &pat).await;
    let cookie = session_cookie(&r);
    let pair: Value = r.json().await.unwrap();
    let raw = format!("token {pat}");
    assert_eq!(status_as(&h.gate, &raw).await, 200);
    assert_eq!(status_as(&h.gate, &bearer(&pair)).await, 200);

    let (text, listed) = listing(&h.gate, &octo, "monalisa").await;
    assert_eq!(kinds(&listed), ["github_token", "pat", "session"], "{text}");
    assert!(
        !text.contains(&pat[4..]),
        "no GitHub token in the listing: {text}"
    );

    // Ended: the raw token is asked of GitHub again (once, even within the second of the
    // revocation), and since GitHub still vouches for it and she is still admitted, it is
    // remembered again. The session and the pair are over.
    next_second().await;
    let before = h.mock.api_request_count();
    end_user(&h.gate, &octo, "monalisa").await;
    let revoked_at = now();
    for _ in 0..3 {
        assert_eq!(status_as(&h.gate, &raw).await, 200);
    }
    println!(
        "raw token re-checked {}s after the revocation",
        now() - revoked_at
    );
    assert_eq!(
        h.mock.api_request_count() - before,
        3,
        "GET /user, /user/emails and the membership, once (then remembered again)"
    );
    assert_eq!(
        get_with_session(&h.url("/echo"), &cookie).await.status(),
        401
    );
    assert_eq!(status_as(&h.gate, &bearer(&pair)).await, 401);
    assert_eq!(refresh(&h.gate, &pair).await.0, 401);

    // GitHub removes her from the org. The remembered answer would hold for minutes; the
    // admin ends it now.
    mock_call(
        &h,
        reqwest::Method::DELETE,
        "/_mock/orgs/databio/members/monalisa",
    )
    .await;
    assert_eq!(status_as(&h.gate, &raw).await, 200, "remembered");
    next_second().await;
    end_user(&h.gate, &octo, "monalisa").await;
    assert_eq!(status_as(&h.gate, &raw).await, 403, "{}", h.log());
    assert!(!h.log().contains(&pat), "tokens are never logged");
}

/// A user known to the gate only through a raw GitHub token can be ended by login.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_seen_only_through_a_raw_github_token_is_known_by_login() {
    let h = Harness::start(options("")).await;
    let octo = session_of(&h, "octocat").await;
    let raw = format!("Bearer {}", mock_pat(&h, "monalisa").await);
    assert_eq!(status_as(&h.gate, &raw).await, 200);
    let (text, listed) = listing(&h.gate, &octo, "monalisa").await;
    assert_eq!(kinds(&listed), ["github_token"], "{text}");
    let ended = end_user(&h.gate, &octo, "monalisa").await;
    assert_eq!(ended["user_id"], "1000001", "{ended}");
}

/// A one-time code (and a refresh token) from before "sign out everywhere" is refused with
/// `invalid_grant`; a sign-in right after it works, in the same second too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_from_before_sign_out_everywhere_is_refused() {
    let h = Harness::start(options("")).await;
    let cookie = session_of(&h, "monalisa").await;
    let pair = pair_for(&h.gate, "monalisa").await;
    let code = code_for(&h.gate, "monalisa").await;

    let r = plain_client()
        .post(h.url("/oauth2/sign_out?everywhere=1"))
        .header("cookie", format!("_gatehouse={cookie}"))
        .send()
        .await
        .unwrap();
    assert!(
        r.status().is_redirection() || r.status().is_success(),
        "{}",
        r.status()
    );
    assert_eq!(
        get_with_session(&h.url("/echo"), &cookie).await.status(),
        401
    );

    let (status, body) = exchange(&h.gate, &code).await;
    assert_eq!(
        (status, &body["error"]),
        (400, &json!("invalid_grant")),
        "{body}"
    );
    let (status, body) = refresh(&h.gate, &pair).await;
    assert_eq!(
        (status, &body["error"]),
        (401, &json!("invalid_grant")),
        "{body}"
    );
    assert_eq!(status_as(&h.gate, &bearer(&pair)).await, 401);

    // Signing in again at once (likely within the same second) works, by code and by PAT.
    let fresh = pair_for(&h.gate, "monalisa").await;
    assert_eq!(status_as(&h.gate, &bearer(&fresh)).await, 200);
    assert_eq!(refresh(&h.gate, &fresh).await.0, 200);
    let (status, by_pat) = post_to(
        &h.gate,
        "/oauth2/pat",
        json!({"token": mock_pat(&h, "monalisa").await}),
    )
    .await;
    assert_eq!(status, 200, "{by_pat}");
    assert_eq!(status_as(&h.gate, &bearer(&by_pat)).await, 200);
}

/// On two replicas sharing Redis: token sign-ins made on one are listed and ended from the
/// other (one family by id, then all of them by user), and seen ended everywhere within a
/// second; a code from before the revocation is refused on either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_redis_replicas_token_sign_ins_are_listed_and_ended_everywhere() {
    if !available("on_redis_replicas_token_sign_ins_are_listed_and_ended_everywhere") {
        return;
    }
    let redis = RedisServer::start();
    let a = Harness::start(options(&redis.session_config("redis"))).await;
    let b = a.spawn_replica("b").await;
    let octo = session_of(&a, "octocat").await;
    let laptop = pair_for(&a.gate, "monalisa").await;
    let phone = pair_for(&a.gate, "monalisa").await;
    let browser_session = session_of(&a, "monalisa").await;
    for pair in [&laptop, &phone] {
        assert_eq!(status_as(&a.gate, &bearer(pair)).await, 200);
    }

    let (text, listed) = listing(&b.gate, &octo, "monalisa").await;
    assert_eq!(
        kinds(&listed),
        ["code_exchange", "code_exchange", "session"],
        "{text}"
    );

    // One family by its id, on B: that pair stops on A, the other does not.
    let (status, text, _) = admin(
        reqwest::Method::DELETE,
        &b.gate,
        &format!("/oauth2/admin/sessions/{}", family_of(&laptop)),
        &octo,
    )
    .await;
    assert_eq!(status, 200, "{text}");
    until_status(&a.gate, &bearer(&laptop), 401, Duration::from_secs(1)).await;
    assert_eq!(refresh(&a.gate, &laptop).await.0, 401);
    assert_eq!(status_as(&a.gate, &bearer(&phone)).await, 200);
    let (text, listed) = listing(&a.gate, &octo, "monalisa").await;
    assert_eq!(kinds(&listed), ["code_exchange", "session"], "{text}");

    // Everything of hers, on B; a code she got before is refused too.
    let code = code_for(&a.gate, "monalisa").await;
    next_second().await;
    let ended = end_user(&b.gate, &octo, "monalisa").await;
    all_of_hers_is_over(&a, &octo, &ended, &phone, &code, &browser_session).await;
    assert_eq!(get_with_session(&b.url("/echo"), &octo).await.status(), 200);
}

/// Everything Redis holds of every kind of sign-in (a browser session, a code-exchange pair, a
/// code not yet exchanged, a `/oauth2/pat` pair, a raw GitHub token the gate remembered) keeps
/// the user's GitHub token sealed under `store_secrets`: a dump of the store yields none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_dump_holds_no_github_token() {
    if !available("a_redis_dump_holds_no_github_token") {
        return;
    }
    let redis = RedisServer::start();
    let h = Harness::start(options(&redis.session_config("redis"))).await;
    let _session = session_of(&h, "monalisa").await;
    let pair = pair_for(&h.gate, "monalisa").await;
    let _code = code_for(&h.gate, "monalisa").await;
    pat_sign_in(&h, &mock_pat(&h, "monalisa").await).await;
    let raw = format!("Bearer {}", mock_pat(&h, "monalisa").await);
    assert_eq!(status_as(&h.gate, &raw).await, 200);
    assert_eq!(refresh(&h.gate, &pair).await.0, 200, "refreshes still work");

    let dump = dump(&redis).await;
    for prefix in ["gho_", "ghp_"] {
        assert!(!dump.contains(prefix), "a GitHub token in Redis:\n{dump}");
    }
}

/// A GitHub App's sign-ins keep GitHub's refresh token sealed too (records and families).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_dump_holds_no_github_app_token_or_refresh_token() {
    if !available("a_redis_dump_holds_no_github_app_token_or_refresh_token") {
        return;
    }
    let app = "Iv23liGatehouseTest1";
    let redis = RedisServer::start();
    let h = Harness::start(GateOptions {
        client_id: app,
        ..options(&redis.session_config("redis"))
    })
    .await;
    assert!(h.mock.install_app("databio", app));
    let session = session_of(&h, "monalisa").await;
    assert_eq!(
        get_with_session(&h.url("/echo"), &session).await.status(),
        200
    );
    let pair = pair_for(&h.gate, "monalisa").await;
    assert_eq!(refresh(&h.gate, &pair).await.0, 200);
    let dump = dump(&redis).await;
    for prefix in ["ghu_", "ghr_"] {
        assert!(!dump.contains(prefix), "a GitHub token in Redis:\n{dump}");
    }
}

/// Every key and value in Redis, as text.
async fn dump(redis: &RedisServer) -> String {
    let keys: Vec<String> = redis_cmd(redis, &["KEYS", "*"]).await;
    assert!(keys.len() > 5, "{keys:?}");
    let mut dump = String::new();
    for key in &keys {
        let kind: String = redis_cmd(redis, &["TYPE", key]).await;
        let values: Vec<String> = match kind.as_str() {
            "string" => vec![redis_cmd(redis, &["GET", key]).await],
            "hash" => redis_cmd(redis, &["HGETALL", key]).await,
            "set" => redis_cmd(redis, &["SMEMBERS", key]).await,
            "zset" => redis_cmd(redis, &["ZRANGE", key, "0", "-1"]).await,
            other => panic!("{key}: a {other} nobody reads here"),
        };
        dump.push_str(&format!("{key} = {values:?}\n"));
    }
    dump
}

/// Replicas whose clocks disagree: a user ended on a replica 30 s behind the others still
/// loses every sign-in made on one that is ahead, a one-time code not yet exchanged included.
/// What ends them is the store's records, not a comparison of two machines' clocks (the
/// revocation list's times would miss sign-ins dated after the late clock's "now").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_whose_clock_is_behind_still_ends_every_sign_in() {
    let test = "a_replica_whose_clock_is_behind_still_ends_every_sign_in";
    if !available(test) || !clock::available(test) {
        return;
    }
    let redis = RedisServer::start();
    // A list kept by an older Gatehouse (marks, no meta) is adopted with floor 0, so nothing
    // here is dated after a floor seconds ahead: only the clocks differ.
    let _: i64 = redis_cmd(
        &redis,
        &[
            "HSET",
            "gatehouse:marks:list",
            "999",
            r#"{"end_before":1,"recheck_before":0,"expires_at":4102444800}"#,
        ],
    )
    .await;
    let a = Harness::start(options(&redis.session_config("redis"))).await;
    let late = a
        .spawn_replica_env("late", |config| config, &clock::behind(30))
        .await;
    let date = plain_client().get(late.url("/ping")).send().await.unwrap();
    let date = date.headers()["date"].to_str().unwrap();
    let behind = std::time::SystemTime::now()
        .duration_since(httpdate::parse_http_date(date).unwrap())
        .unwrap_or_default();
    assert!(
        behind >= Duration::from_secs(25),
        "the late replica says {date}"
    );
    let octo = session_of(&a, "octocat").await;
    let pair = pair_for(&a.gate, "monalisa").await;
    let browser_session = session_of(&a, "monalisa").await;
    let code = code_for(&a.gate, "monalisa").await;
    assert_eq!(status_as(&a.gate, &bearer(&pair)).await, 200);

    let ended = end_user(&late.gate, &octo, "monalisa").await;
    all_of_hers_is_over(&a, &octo, &ended, &pair, &code, &browser_session).await;
}

/// "Sign out everywhere" (like the admin revoke and the webhooks that end a user) revokes the
/// user's token families outright, not only through the revocation list: their records leave
/// Redis, so no replica, whatever its copy of the list, can refresh them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_out_everywhere_revokes_the_users_token_families() {
    if !available("sign_out_everywhere_revokes_the_users_token_families") {
        return;
    }
    let redis = RedisServer::start();
    let h = Harness::start(options(&redis.session_config("redis"))).await;
    let pair = pair_for(&h.gate, "monalisa").await;
    let other = pair_for(&h.gate, "octocat").await;
    let family = |p: &Value| format!("gatehouse:fam:{}", family_of(p));
    for p in [&pair, &other] {
        let exists: i64 = redis_cmd(&redis, &["EXISTS", &family(p)]).await;
        assert_eq!(exists, 1, "a live family is stored");
    }
    let cookie = session_of(&h, "monalisa").await;
    let r = plain_client()
        .post(h.url("/oauth2/sign_out?everywhere=1"))
        .header("cookie", format!("_gatehouse={cookie}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let exists: i64 = redis_cmd(&redis, &["EXISTS", &family(&pair)]).await;
    assert_eq!(exists, 0, "her family is revoked, not only marked");
    let exists: i64 = redis_cmd(&redis, &["EXISTS", &family(&other)]).await;
    assert_eq!(exists, 1, "someone else's family stays");
    assert_eq!(refresh(&h.gate, &other).await.0, 200);
}
