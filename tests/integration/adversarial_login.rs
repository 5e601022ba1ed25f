//! Adversarial corpus: the sign-in flow. Session fixation (a cookie planted before sign-in is
//! replaced, never adopted), state and code replay, states from another browser, callbacks
//! nobody started, GitHub's refusals, and client PKCE at `/oauth2/token`.

use crate::common::tally::Tally;
use crate::common::*;
use base64::Engine;
use serde_json::{json, Value};
use sha2::Digest;

const SPA: &str = "http://127.0.0.1:9/spa/callback";
const VERIFIER: &str = "a-long-enough-pkce-verifier-for-the-tests-0123456789";

fn config() -> String {
    format!(
        "\n[tokens]\nhmac_secret = \"{}\"\nclient_redirect_uris = [\"{SPA}\"]\n\n[limits]\nauth_per_minute = 0\n",
        b64(&[5; 32])
    )
}

async fn gate() -> Harness {
    Harness::start(GateOptions {
        access_extra: config(),
        ..GateOptions::default()
    })
    .await
}

/// The session value a response sets (`None`: it sets none).
fn new_session(r: &reqwest::Response) -> Option<String> {
    set_cookies(r)
        .iter()
        .find_map(|c| c.strip_prefix("_gatehouse="))
        .map(|c| c.split(';').next().unwrap().to_string())
        .filter(|v| !v.is_empty())
}

/// Who `client` (with its cookie jar) is now, per `/oauth2/userinfo`.
async fn whoami(h: &Harness, client: &reqwest::Client) -> Option<String> {
    let r = client.get(h.url("/oauth2/userinfo")).send().await.unwrap();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    body["user"].as_str().map(str::to_string)
}

/// A browser whose jar already holds `cookies` for the gate (as a planted cookie would be).
fn browser_with(h: &Harness, cookies: &[String]) -> reqwest::Client {
    gatehouse::install_crypto_provider();
    let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
    let url = url::Url::parse(&h.gate).unwrap();
    for c in cookies {
        jar.add_cookie_str(&format!("{c}; Path=/"), &url);
    }
    reqwest::Client::builder()
        .cookie_provider(jar)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planted_sessions_are_replaced_at_sign_in() {
    let h = gate().await;
    let mona = session_cookie(&h.sign_in(&browser(), "monalisa", "/").await);
    let mallory = mint(KEY_A, &claims_for("mallory", 1001));
    let mut big = claims_for("monalisa", 2001);
    big.groups = (0..300)
        .map(|i| format!("org-{i:04}/team-{i:04}"))
        .collect();
    let big = mint(KEY_A, &big);
    let halves: Vec<String> = big
        .as_bytes()
        .chunks(3800)
        .map(|c| String::from_utf8(c.to_vec()).unwrap())
        .collect();
    let planted: Vec<(&str, Vec<String>)> = vec![
        (
            "garbage cookie",
            vec!["_gatehouse=attacker-chosen-value".into()],
        ),
        (
            "another user's genuine session",
            vec![format!("_gatehouse={mona}")],
        ),
        (
            "a not-admitted user's session",
            vec![format!("_gatehouse={mallory}")],
        ),
        (
            "another user's chunked session",
            halves
                .iter()
                .enumerate()
                .map(|(i, c)| format!("_gatehouse_{i}={c}"))
                .collect(),
        ),
        (
            "genuine whole plus stale chunks",
            vec![
                format!("_gatehouse={mona}"),
                "_gatehouse_0=x".into(),
                "_gatehouse_1=y".into(),
            ],
        ),
        (
            "a planted login-state cookie",
            vec!["_gatehouse_login_AAAAAAAAAAAA=planted".into()],
        ),
    ];
    let mut table = Tally::new("login/session fixation");
    for (name, cookies) in &planted {
        let client = browser_with(&h, cookies);
        let t0 = now();
        let r = h.sign_in(&client, "octocat", "/").await;
        let set = new_session(&r);
        let replaced = set.as_deref().is_some_and(|v| {
            !cookies.iter().any(|c| c.ends_with(v)) && {
                let claims = claims_in(v);
                claims.login == "octocat" && claims.iat >= t0
            }
        });
        // Every chunk the browser had is expired by the same answer.
        let stale_chunks_cleared = cookies
            .iter()
            .filter_map(|c| c.split('=').next())
            .filter(|n| n.starts_with("_gatehouse_") && !n.starts_with("_gatehouse_login"))
            .all(|n| {
                set_cookies(&r)
                    .iter()
                    .any(|c| c.starts_with(&format!("{n}=")) && c.contains("Max-Age=0"))
            });
        let now_who = whoami(&h, &client).await;
        table.check(
            name,
            r.status() == 302 && replaced && stale_chunks_cleared && now_who.as_deref() == Some("octocat"),
            format!(
                "status {}, replaced {replaced}, chunks cleared {stale_chunks_cleared}, now {now_who:?}; Set-Cookie {:?}",
                r.status(),
                set_cookies(&r)
            ),
        );
    }
    // Signing in does not need, read or keep the previous session: the planted value is never
    // what the browser ends up holding, and signing in twice gives two different sessions.
    let client = browser();
    let first = new_session(&h.sign_in(&client, "octocat", "/").await);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let second = new_session(&h.sign_in(&client, "octocat", "/").await);
    table.check(
        "a second sign-in issues a fresh session",
        first.is_some() && second.is_some() && first != second,
        "same session value twice",
    );
    table.finish();
}

fn state_of(authorize_or_callback: &str) -> String {
    query_of(authorize_or_callback)["state"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_code_and_callback_abuse_is_refused() {
    let h = gate().await;
    let mut table = Tally::new("login/state and code");
    let refused = |r: &reqwest::Response| {
        (r.status() == 400 || r.status() == 403) && new_session(r).is_none()
    };

    // State replay: the same browser, the same callback, twice.
    let victim = browser();
    let callback = h.authorize(&victim, "octocat", "/").await;
    let first = victim.get(&callback).send().await.unwrap();
    table.check(
        "control: the callback once",
        first.status() == 302,
        first.status(),
    );
    let again = victim.get(&callback).send().await.unwrap();
    table.check(
        "state replay, same browser",
        refused(&again),
        again.status(),
    );

    // State from another browser: the callback URL alone is not enough.
    let other = browser();
    let callback = h.authorize(&other, "octocat", "/").await;
    let stolen = browser().get(&callback).send().await.unwrap();
    table.check(
        "state from another browser",
        refused(&stolen),
        stolen.status(),
    );
    // (… and it stays usable by its own browser: the thief did not burn it.)
    let own = other.get(&callback).send().await.unwrap();
    table.check(
        "the rightful browser after a theft attempt",
        own.status() == 302,
        own.status(),
    );

    // Login CSRF: the attacker's own callback (code and state) sent to the victim's browser.
    let attacker = browser();
    let attackers_callback = h.authorize(&attacker, "mallory", "/").await;
    let victim = browser();
    let _ = h.authorize(&victim, "octocat", "/").await; // the victim has a login cookie of their own
    let csrf = victim.get(&attackers_callback).send().await.unwrap();
    table.check(
        "attacker's callback in the victim's browser",
        refused(&csrf),
        csrf.status(),
    );

    // Code replay: a used code with a fresh state of the same browser.
    let client = browser();
    let used = h.authorize(&client, "octocat", "/").await;
    let r = client.get(&used).send().await.unwrap();
    assert_eq!(r.status(), 302);
    let fresh = h.authorize(&client, "octocat", "/").await;
    let replay = format!(
        "{}/oauth2/callback?code={}&state={}",
        h.gate,
        query_of(&used)["code"],
        state_of(&fresh)
    );
    let r = client.get(&replay).send().await.unwrap();
    table.check("code replay under a fresh state", refused(&r), r.status());

    // Code injection: another login's (unused) code under this browser's state: its PKCE
    // verifier does not match, so GitHub refuses it.
    let thief = browser();
    let foreign = h.authorize(&browser(), "octocat", "/").await;
    let mine = h.authorize(&thief, "mallory", "/").await;
    let injected = format!(
        "{}/oauth2/callback?code={}&state={}",
        h.gate,
        query_of(&foreign)["code"],
        state_of(&mine)
    );
    let r = thief.get(&injected).send().await.unwrap();
    table.check(
        "another login's code under my state",
        refused(&r),
        r.status(),
    );

    // Callbacks nobody started.
    for (name, query) in [
        ("no parameters", String::new()),
        ("code only", "code=abc".to_string()),
        (
            "well-formed state, no login cookie",
            format!("code=abc&state={}", "A".repeat(43)),
        ),
        (
            "state too long",
            format!("code=abc&state={}", "A".repeat(44)),
        ),
        (
            "state with a newline",
            "code=abc&state=%0Aset-cookie".to_string(),
        ),
        (
            "state naming another cookie",
            "code=abc&state=..%2F_gatehouse".to_string(),
        ),
        ("empty state", "code=abc&state=".to_string()),
        ("error without state", "error=access_denied".to_string()),
    ] {
        let r = browser()
            .get(format!("{}/oauth2/callback?{query}", h.gate))
            .header("accept", "text/html")
            .send()
            .await
            .unwrap();
        table.check(&format!("callback, {name}"), refused(&r), r.status());
    }

    // A login cookie from one attempt presented with another attempt's state.
    let client = plain_client();
    let a = client
        .get(h.url("/oauth2/start?rd=/"))
        .send()
        .await
        .unwrap();
    let b = client
        .get(h.url("/oauth2/start?rd=/"))
        .send()
        .await
        .unwrap();
    let cookie_a = set_cookies(&a)
        .iter()
        .find(|c| c.starts_with("_gatehouse_login_"))
        .map(|c| c.split(';').next().unwrap().to_string())
        .unwrap();
    let callback_b = consent(&client, &location(&b), "octocat").await;
    let (name_a, value_a) = cookie_a.split_once('=').unwrap();
    let tag_b = &state_of(&callback_b)[..12];
    let renamed = format!("_gatehouse_login_{tag_b}={value_a}");
    let _ = name_a;
    let r = client
        .get(&callback_b)
        .header("cookie", &renamed)
        .send()
        .await
        .unwrap();
    table.check(
        "login cookie of another attempt, renamed",
        refused(&r),
        r.status(),
    );

    // An expired sign-in: the sealed state says so.
    let state = "B".repeat(43);
    let expired = gatehouse::session::KeyRing::new(&[gatehouse::config::SessionKey(KEY_A)])
        .seal(
            json!({"state": state, "verifier": VERIFIER, "rd": "/", "exp": now() - 1})
                .to_string()
                .as_bytes(),
        )
        .unwrap();
    let r = plain_client()
        .get(format!("{}/oauth2/callback?code=abc&state={state}", h.gate))
        .header(
            "cookie",
            format!("_gatehouse_login_{}={expired}", &state[..12]),
        )
        .send()
        .await
        .unwrap();
    table.check("expired sign-in state", refused(&r), r.status());
    // A session cookie where the login cookie goes.
    let session = mint(KEY_A, &claims_for("octocat", 583231));
    let r = plain_client()
        .get(format!("{}/oauth2/callback?code=abc&state={state}", h.gate))
        .header(
            "cookie",
            format!("_gatehouse_login_{}={session}", &state[..12]),
        )
        .send()
        .await
        .unwrap();
    table.check(
        "a session cookie as the login cookie",
        refused(&r),
        r.status(),
    );

    // GitHub says no: access_denied (the person pressed Cancel), and an error with markup.
    for (name, error) in [
        ("access_denied", "access_denied"),
        ("error with markup", "%3Cscript%3Ealert(1)%3C%2Fscript%3E"),
        ("error with a newline", "x%0D%0ASet-Cookie:%20a=b"),
    ] {
        let client = browser();
        let start = client
            .get(h.url("/oauth2/start?rd=/"))
            .send()
            .await
            .unwrap();
        let state = state_of(&location(&start));
        let r = client
            .get(format!(
                "{}/oauth2/callback?error={error}&state={state}",
                h.gate
            ))
            .header("accept", "text/html")
            .send()
            .await
            .unwrap();
        let status = r.status();
        let no_session = new_session(&r).is_none();
        let header_ok = !r.headers().contains_key("a");
        let body = r.text().await.unwrap();
        table.check(
            &format!("GitHub error: {name}"),
            (400..500).contains(&status.as_u16())
                && no_session
                && header_ok
                && !body.contains("<script>alert(1)"),
            format!("status {status}, no session {no_session}"),
        );
    }
    table.finish();
}

fn challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()))
}

/// A one-time code for the SPA, with `challenge` (or none) at start.
async fn spa_code(h: &Harness, code_challenge: Option<&str>) -> String {
    let client = browser();
    let mut query = vec![("client_redirect_uri", SPA.to_string())];
    if let Some(c) = code_challenge {
        query.push(("code_challenge", c.to_string()));
        query.push(("code_challenge_method", "S256".into()));
    }
    let start = client
        .get(h.url("/oauth2/start"))
        .query(&query)
        .send()
        .await
        .unwrap();
    assert_eq!(start.status(), 302);
    let callback = consent(&client, &location(&start), "octocat").await;
    let done = client.get(callback).send().await.unwrap();
    query_of(&location(&done))["code"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_pkce_at_the_token_endpoint() {
    let h = gate().await;
    let mut table = Tally::new("login/client PKCE at /oauth2/token");
    let good = challenge(VERIFIER);
    let cases: Vec<(&str, Option<String>, Value, u16)> = vec![
        (
            "control: right verifier",
            Some(good.clone()),
            json!({"code_verifier": VERIFIER}),
            200,
        ),
        (
            "wrong verifier",
            Some(good.clone()),
            json!({"code_verifier": "another-verifier-another-verifier-another-verifier"}),
            400,
        ),
        ("verifier missing", Some(good.clone()), json!({}), 400),
        (
            "verifier null",
            Some(good.clone()),
            json!({"code_verifier": null}),
            400,
        ),
        (
            "empty verifier",
            Some(good.clone()),
            json!({"code_verifier": ""}),
            400,
        ),
        (
            "the challenge as verifier (plain)",
            Some(good.clone()),
            json!({"code_verifier": good}),
            400,
        ),
        (
            "verifier with a trailing space",
            Some(good.clone()),
            json!({"code_verifier": format!("{VERIFIER} ")}),
            400,
        ),
        (
            "verifier upper-cased",
            Some(good.clone()),
            json!({"code_verifier": VERIFIER.to_uppercase()}),
            400,
        ),
        (
            "verifier as a number",
            Some(good.clone()),
            json!({"code_verifier": 12345}),
            400,
        ),
        (
            "verifier for a code without challenge",
            None,
            json!({"code_verifier": VERIFIER}),
            400,
        ),
        ("control: no challenge, no verifier", None, json!({}), 200),
        (
            "wrong client_redirect_uri",
            Some(good.clone()),
            json!({"code_verifier": VERIFIER, "client_redirect_uri": "http://127.0.0.1:9/other"}),
            400,
        ),
    ];
    for (name, code_challenge, extra, want) in &cases {
        let code = spa_code(&h, code_challenge.as_deref()).await;
        let mut body = json!({"code": code, "client_redirect_uri": SPA});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (status, answer) = post_json(&h, "/oauth2/token", body.clone()).await;
        table.check(name, status == *want, format!("status {status}: {answer}"));
        if *want != 200 && *name != "verifier as a number" {
            // A refused attempt uses the code up: the right verifier afterwards is too late.
            // (A body that is not even the right JSON shape is refused before the code is
            // looked at, so it burns nothing.)
            let (status, answer) = post_json(
                &h,
                "/oauth2/token",
                json!({"code": code, "client_redirect_uri": SPA, "code_verifier": VERIFIER}),
            )
            .await;
            table.check(
                &format!("{name}, then the right verifier"),
                status == 400,
                format!("status {status}: {answer}"),
            );
        } else {
            let (status, answer) = post_json(&h, "/oauth2/token", body).await;
            table.check(
                &format!("{name}, replayed"),
                status == 400,
                format!("status {status}: {answer}"),
            );
        }
    }
    for (name, body) in [
        (
            "made-up code",
            json!({"code": "made-up", "client_redirect_uri": SPA, "code_verifier": VERIFIER}),
        ),
        (
            "code missing",
            json!({"client_redirect_uri": SPA, "code_verifier": VERIFIER}),
        ),
        (
            "code as an array",
            json!({"code": ["a"], "client_redirect_uri": SPA}),
        ),
        (
            "browser state as code",
            json!({"code": "A".repeat(43), "client_redirect_uri": SPA}),
        ),
    ] {
        let (status, answer) = post_json(&h, "/oauth2/token", body).await;
        table.check(name, status == 400, format!("status {status}: {answer}"));
    }
    // PKCE methods other than S256 never get as far as GitHub.
    for (name, method, c) in [
        ("method plain", "plain", VERIFIER.to_string()),
        ("method s256 lower case", "s256", good.clone()),
        ("challenge too short", "S256", "abc".to_string()),
        (
            "challenge with padding",
            "S256",
            format!("{}=", &good[..42]),
        ),
    ] {
        let r = plain_client()
            .get(h.url("/oauth2/start"))
            .query(&[
                ("client_redirect_uri", SPA),
                ("code_challenge", &c),
                ("code_challenge_method", method),
            ])
            .send()
            .await
            .unwrap();
        table.check(name, r.status() == 400, r.status());
    }
    table.finish();
}
