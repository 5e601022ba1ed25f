//! Trust boundaries through the running gate: the app cannot set Gatehouse's cookies,
//! `check-config` and the logs never show a password inside a URL, client-sent text cannot forge
//! log lines or drive a terminal, the `gatehouse login` loopback takes only its own answer, and
//! a loopback client gets a code only with PKCE and after a same-origin confirmation.

use crate::common::*;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// An app that answers every request with `200 ok` and these extra header lines, byte for byte
/// (no HTTP library would send some of them).
async fn start_raw_app(header_lines: Vec<String>) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let head: String = header_lines.iter().map(|l| format!("{l}\r\n")).collect();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let head = head.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n{head}\r\nok"
                );
                let _ = s.write_all(answer.as_bytes()).await;
                let _ = s.shutdown().await;
            });
        }
    });
    addr
}

const PUBLIC_EVERYTHING: &str = r#"
[[rules]]
path = "/**"
policy = "public"
"#;

// ---- 9. The app cannot set, overwrite or clear Gatehouse's cookies ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_cannot_set_gatehouses_cookies() {
    let planted = [
        "Set-Cookie: _gatehouse=planted-value-1; Path=/",
        "Set-Cookie: _gatehouse_0=planted-value-2; Path=/",
        "Set-Cookie: _gatehouse_login_abcdefghijkl=planted-value-3; Path=/oauth2/callback",
        "Set-Cookie: _gatehouse_loop=planted-value-4; Path=/",
        "Set-Cookie:  \t_gatehouse =planted-value-5; Path=/",
        "Set-Cookie: __Host-_gatehouse=planted-value-6; Secure; Path=/",
        "Set-Cookie: __Secure-_gatehouse_1=planted-value-7; Secure",
        "Set-Cookie: _GATEHOUSE=planted-value-8",
        "Set-Cookie: folded=1; Path=/, _gatehouse=planted-value-9; Path=/",
        "Set-Cookie: _gatehouse",
        "Set-Cookie: _gatehouse=; Max-Age=0; Path=/",
        "set-cookie: _gatehouse_2=planted-value-10",
    ];
    let kept = [
        "app=1; Path=/",
        "_gatehouse_pref=keep-me",
        "gatehouse=neighbour",
        "dated=1; Expires=Wed, 21 Oct 2037 07:28:00 GMT; Path=/",
    ];
    let mut lines: Vec<String> = planted.iter().map(|l| l.to_string()).collect();
    lines.extend(kept.iter().map(|c| format!("Set-Cookie: {c}")));
    // Clearing every cookie of the site would end the Gatehouse session too.
    lines.push(r#"Clear-Site-Data: "cookies", "cache""#.into());
    lines.push(r#"Clear-Site-Data: "*""#.into());
    let app = start_raw_app(lines).await;
    let h = Harness::start(GateOptions {
        upstream: Some(app),
        access_extra: PUBLIC_EVERYTHING.into(),
        ..GateOptions::default()
    })
    .await;

    // Anonymous, and signed in (the gate's own cookies must not be disturbed either).
    let anonymous = plain_client().get(h.url("/x")).send().await.unwrap();
    let signed_in = browser();
    assert_eq!(h.sign_in(&signed_in, "octocat", "/").await.status(), 302);
    let session_before = signed_in
        .get(h.url("/oauth2/userinfo"))
        .send()
        .await
        .unwrap();
    assert_eq!(session_before.status(), 200);
    let as_user = signed_in.get(h.url("/x")).send().await.unwrap();
    for r in [anonymous, as_user] {
        assert_eq!(r.status(), 200);
        let got = set_cookies(&r);
        assert_eq!(got, kept, "only the app's own cookies pass");
        let clear: Vec<_> = r.headers().get_all("clear-site-data").iter().collect();
        assert_eq!(clear.len(), 1);
        assert_eq!(
            clear[0],
            r#""cache", "cache", "storage", "executionContexts""#
        );
    }
    // The session survived the app's attempts to clear or replace it.
    let after = signed_in
        .get(h.url("/oauth2/userinfo"))
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 200);

    tokio::time::sleep(Duration::from_millis(200)).await;
    let log = h.log();
    assert!(
        log.contains("the app tried to set one of Gatehouse's cookies")
            && log.contains("__Host-_gatehouse"),
        "{log}"
    );
    assert!(
        !log.contains("planted-value"),
        "values never logged:\n{log}"
    );
}

// ---- 10. Passwords inside URLs are never shown ----

fn run_gatehouse(args: &[&str]) -> (Option<i32>, String, String) {
    let out = std::process::Command::new(binary())
        .args(args)
        .env_remove("GH_CLIENT_ID")
        .env_remove("GH_CLIENT_SECRET")
        .env_remove("GITHUB_USERS")
        .env_remove("GATEHOUSE_SESSION_SECRET")
        .env_remove("GATEHOUSE_REDIS_URL")
        .env_remove("GATEHOUSE_CONFIG")
        .output()
        .unwrap();
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
    (out.status.code(), text(out.stdout), text(out.stderr))
}

const URL_PASSWORDS: [&str; 6] = [
    "hunter2-redis",
    "hunter2-sentinel",
    "hunter2-jwks",
    "hunter2-query",
    "hunter2-upstream",
    "hunter2-github",
];

fn assert_no_url_password(text: &str) {
    for p in URL_PASSWORDS {
        assert!(!text.contains(p), "{p} shown in:\n{text}");
    }
}

#[test]
fn check_config_masks_passwords_inside_urls() {
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        r#"
[upstream]
url = "http://app:hunter2-upstream@127.0.0.1:8080"
[github]
client_id = "x"
client_secret = "y"
api_url = "https://bot:hunter2-github@api.github.com"
[session]
secrets = ["{key}"]
redis_url = "redis://:hunter2-redis@10.0.0.1:6379/0"
sentinel_urls = ["redis://default:hunter2-sentinel@10.0.0.2:26379"]
sentinel_master = "mymaster"
[access]
allowed_users = ["octocat"]
[[tokens.oidc_issuers]]
issuer = "https://ci.example"
audience = "https://app.example"
jwks_url = "https://ci:hunter2-jwks@ci.example/jwks?access_token=hunter2-query&v=1"
claims = {{ project = "p" }}
"#,
        key = b64(&KEY_A)
    );
    let path = dir.path().join("gatehouse.toml");
    std::fs::write(&path, config).unwrap();
    let (code, stdout, stderr) =
        run_gatehouse(&["check-config", "--config", path.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("# OK:"), "{stdout}");
    assert_no_url_password(&stdout);
    assert_no_url_password(&stderr);
    // Still useful: where each URL points, and which user.
    for shown in [
        "redis://:***@10.0.0.1:6379/0",
        "redis://default:***@10.0.0.2:26379",
        "https://ci:***@ci.example/jwks?access_token=***&v=1",
        "http://app:***@127.0.0.1:8080",
    ] {
        assert!(stdout.contains(shown), "missing {shown} in:\n{stdout}");
    }

    // A refused URL is quoted masked too.
    let bad = format!(
        "[github]\nclient_id = \"x\"\nclient_secret = \"y\"\n[session]\nsecrets = [\"{}\"]\n\
         sentinel_urls = [\"http://:hunter2-sentinel@10.0.0.2:26379\"]\nsentinel_master = \"m\"\n\
         [access]\nallowed_users = [\"octocat\"]\n",
        b64(&KEY_A)
    );
    std::fs::write(&path, bad).unwrap();
    let (code, stdout, stderr) =
        run_gatehouse(&["check-config", "--config", path.to_str().unwrap()]);
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("session.sentinel_urls[0]") && stderr.contains("http://:***@10.0.0.2"),
        "{stderr}"
    );
    assert_no_url_password(&stdout);
    assert_no_url_password(&stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_running_gate_never_logs_or_shows_a_url_password() {
    let closed = free_port();
    let jwks_port = free_port();
    let h = Harness::start(GateOptions {
        session_extra: format!(
            "store = \"redis\"\nredis_url = \"redis://:hunter2-redis@127.0.0.1:{closed}\"\n\
             redis_timeout = \"200ms\"\nstore_secrets = [\"{}\"]\n",
            b64(&KEY_B)
        ),
        access_extra: format!(
            "[[tokens.oidc_issuers]]\nissuer = \"https://ci.example\"\naudience = \"gate\"\n\
             jwks_url = \"http://ci:hunter2-jwks@127.0.0.1:{jwks_port}/jwks?token=hunter2-query\"\n\
             claims = {{ project = \"p\" }}\n"
        ),
        ..GateOptions::default()
    })
    .await;
    // Redis is down: not ready, saying why, without the password.
    let ready = plain_client().get(h.url("/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    assert_no_url_password(&ready.text().await.unwrap());
    // A session-needing request logs the store error.
    let _ = plain_client()
        .get(h.url("/echo"))
        .header("cookie", "_gatehouse=x")
        .send()
        .await
        .unwrap();
    // A token of the OIDC issuer makes the gate fetch (and fail to fetch) its keys.
    use base64::Engine;
    let b64url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let token = format!(
        "{}.{}.{}",
        b64url.encode(r#"{"alg":"ES256","kid":"k1","typ":"JWT"}"#),
        b64url.encode(format!(
            r#"{{"iss":"https://ci.example","aud":"gate","exp":{},"iat":{}}}"#,
            now() + 300,
            now()
        )),
        b64url.encode([7u8; 64])
    );
    let r = plain_client()
        .get(h.url("/echo"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert!(r.status().as_u16() >= 400);
    assert_no_url_password(&r.text().await.unwrap());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = h.log();
    assert!(log.contains("OIDC JWKS fetch failed"), "{log}");
    assert!(log.contains("ci:***@127.0.0.1"), "{log}");
    assert_no_url_password(&log);
}

// ---- 11. Client-sent text cannot forge log lines or drive a terminal ----

/// A Basic user name that, logged raw, would clear the screen, forge a line and flip text.
const FORGED_NAME: &str =
    "mallory\u{1b}[2J\u{9b}31m\u{202e}evil\u{7f}\u{2028}\r\n2030-01-01T00.00.00Z INFO forged";

async fn log_after_forged_api_key(json: bool) -> String {
    let (_, hash) = gatehouse::tokens::api_keys::new_key();
    let mut access_extra = format!("[[api_keys]]\nname = \"nightly\"\nhash = \"{hash}\"\n");
    if json {
        access_extra.push_str("\n[log]\nformat = \"json\"\n");
    }
    let h = Harness::start(GateOptions {
        access_extra,
        ..GateOptions::default()
    })
    .await;
    use base64::Engine;
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{FORGED_NAME}:wrong-key"));
    let r = plain_client()
        .get(h.url("/echo"))
        .header("authorization", format!("Basic {basic}"))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    tokio::time::sleep(Duration::from_millis(200)).await;
    h.log()
}

fn assert_no_raw_controls(log: &str) {
    for c in ['\u{1b}', '\r', '\u{9b}', '\u{202e}', '\u{7f}', '\u{2028}'] {
        assert!(!log.contains(c), "raw {c:?} in the log:\n{log}");
    }
    assert!(
        !log.lines().any(|l| l.starts_with("2030-01-01")),
        "a forged line:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_basic_user_name_cannot_forge_text_log_lines() {
    let log = log_after_forged_api_key(false).await;
    assert_no_raw_controls(&log);
    let line = log
        .lines()
        .find(|l| l.contains("API key refused"))
        .unwrap_or_else(|| panic!("no refusal line:\n{log}"));
    assert!(
        line.contains(r"mallory\u{1b}[2J\u{9b}31m\u{202e}evil\u{7f}\u{2028}\r\n2030-01-01"),
        "{line}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_basic_user_name_cannot_forge_json_log_lines() {
    let log = log_after_forged_api_key(true).await;
    assert_no_raw_controls(&log);
    let mut refused = None;
    for line in log.lines().filter(|l| l.starts_with('{')) {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        if v["message"] == "API key refused" {
            refused = Some(v);
        }
    }
    // Escaped, not lost: the JSON decodes to exactly what the client sent.
    let refused = refused.unwrap_or_else(|| panic!("no refusal line:\n{log}"));
    assert_eq!(refused["name"], FORGED_NAME);
}

// ---- 12. The `gatehouse login` loopback takes only its own answer ----

/// What a local program or web page that found the port sends to the loopback listener.
async fn knock(loopback: &str, query: &str) -> (u16, String) {
    let r = plain_client()
        .get(format!("{loopback}?{query}"))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

const ESCAPES: &str = "%1B%5B2J%1B%5D0%3Bpwned%07%0D%0Aforged%C2%9B31m%E2%80%AE";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_login_loopback_ignores_answers_without_its_state() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, lines, start) = start_cli_login("http://127.0.0.1:9", dir.path());
    let q = query_of(&start);
    let loopback = q["client_redirect_uri"].clone();
    let state = q["state"].clone();
    for query in [
        format!("error=access_denied&error_description={ESCAPES}"),
        format!("error=access_denied&error_description={ESCAPES}&state=forged"),
        "code=stolen&state=forged".to_string(),
        "code=stolen".to_string(),
        format!("state=&error={ESCAPES}"),
    ] {
        let (status, page) = knock(&loopback, &query).await;
        assert_eq!(status, 400, "{query}");
        assert!(page.contains("still waiting"), "{page}");
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        child.try_wait().unwrap().is_none(),
        "the login must keep waiting for its own answer"
    );
    // An answer with this login's state ends it, printed safely.
    let (status, _) = knock(
        &loopback,
        &format!(
            "error=access_denied&error_description={ESCAPES}{}&state={state}",
            "x".repeat(2000)
        ),
    )
    .await;
    assert_eq!(status, 403);
    let exit = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(exit.code(), Some(1));
    let printed = everything_printed(lines);
    for c in ['\u{1b}', '\r', '\u{7}', '\u{9b}', '\u{202e}'] {
        assert!(!printed.contains(c), "raw {c:?} printed:\n{printed:?}");
    }
    let denied = printed
        .lines()
        .find(|l| l.contains("did not finish"))
        .unwrap_or_else(|| panic!("{printed}"));
    assert!(denied.contains("[2J]0;pwnedforged31m"), "{denied}");
    assert!(denied.len() < 600, "bounded: {} bytes", denied.len());
}

// ---- 15. A loopback client gets a code only with PKCE and the person's confirmation ----

const LOOPBACK_TOKENS: &str = r#"
[tokens]
allow_loopback = true
client_redirect_uris = ["https://spa.example/callback"]
"#;
const VERIFIER: &str = "a-long-enough-pkce-verifier-for-trust-leaks-0123456789";

fn challenge(verifier: &str) -> String {
    use base64::Engine;
    use sha2::Digest;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier))
}

async fn loopback_gate() -> Harness {
    Harness::start(GateOptions {
        access_extra: LOOPBACK_TOKENS.into(),
        ..GateOptions::default()
    })
    .await
}

/// The value of hidden input `name` in a page.
fn hidden_input(html: &str, name: &str) -> String {
    let marker = format!(r#"name="{name}" value=""#);
    let at = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {html}"))
        + marker.len();
    html[at..].split('"').next().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loopback_redirect_needs_pkce() {
    let h = loopback_gate().await;
    let start = |query: Vec<(&'static str, String)>| {
        plain_client()
            .get(h.url("/oauth2/start"))
            .query(&query)
            .header("accept", "application/json")
            .send()
    };
    for uri in [
        "http://127.0.0.1:5555/callback",
        "http://localhost:5555/cb",
        "http://[::1]:5555/",
    ] {
        let r = start(vec![
            ("client_redirect_uri", uri.into()),
            ("state", "s".into()),
        ])
        .await
        .unwrap();
        assert_eq!(r.status(), 400, "{uri}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert!(
            body["message"].as_str().unwrap().contains("needs PKCE"),
            "{body}"
        );
        let r = start(vec![
            ("client_redirect_uri", uri.into()),
            ("code_challenge", challenge(VERIFIER)),
            ("code_challenge_method", "S256".into()),
        ])
        .await
        .unwrap();
        assert_eq!(r.status(), 302, "{uri} with PKCE");
    }
    // A listed URI is the operator's choice: PKCE stays optional there.
    let r = start(vec![(
        "client_redirect_uri",
        "https://spa.example/callback".into(),
    )])
    .await
    .unwrap();
    assert_eq!(r.status(), 302);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loopback_code_needs_a_same_origin_confirmation() {
    let h = loopback_gate().await;
    let redirect = "http://127.0.0.1:5555/callback";
    let b = browser();
    let start = b
        .get(h.url("/oauth2/start"))
        .query(&[
            ("client_redirect_uri", redirect),
            ("state", "client-state"),
            ("code_challenge", &challenge(VERIFIER)),
            ("code_challenge_method", "S256"),
            ("client_name", "build-bot\u{1b}[2J"),
        ])
        .send()
        .await
        .unwrap();
    let callback = consent(&b, &location(&start), "octocat").await;
    let asked = b.get(callback).send().await.unwrap();
    // No code yet: a page that names the account, the program and the exact address.
    assert_eq!(asked.status(), 200);
    assert!(asked.headers().get("location").is_none());
    let csp = asked.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("form-action 'self' http://127.0.0.1:5555;"),
        "{csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    let page = asked.text().await.unwrap();
    for needle in [
        "octocat",
        "build-bot[2J",
        "<code>http://127.0.0.1:5555/callback</code>",
    ] {
        assert!(page.contains(needle), "missing {needle} in {page}");
    }
    assert!(!page.contains('\u{1b}'));
    let id = hidden_input(&page, "id");
    let form = [("id", id.as_str())];
    let confirm = h.url("/oauth2/confirm");

    // The pending id is no code.
    let (status, _) = post_json(
        &h,
        "/oauth2/token",
        serde_json::json!({"code": id, "client_redirect_uri": redirect, "code_verifier": VERIFIER}),
    )
    .await;
    assert_eq!(status, 400);
    // A link cannot confirm.
    let r = b.get(&confirm).query(&form).send().await.unwrap();
    assert_eq!(r.status(), 405);
    // Another site cannot post it, even with this browser's cookie.
    for (name, value) in [
        ("origin", "https://evil.example"),
        ("origin", "null"),
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-site", "same-site"),
    ] {
        let r = b
            .post(&confirm)
            .header(name, value)
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{name}: {value}");
    }
    // Another browser (no cookie for it), or a wrong id: refused, saying what to do.
    let r = plain_client()
        .post(&confirm)
        .header("origin", &h.gate)
        .header("accept", "application/json")
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("gatehouse login"),
        "{body}"
    );
    let wrong = "A".repeat(43);
    let r = b
        .post(&confirm)
        .header("origin", &h.gate)
        .form(&[("id", wrong.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // The person's click: the code goes to the program, with its state.
    let r = b
        .post(&confirm)
        .header("origin", &h.gate)
        .header("sec-fetch-site", "same-origin")
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let landed = location(&r);
    assert!(landed.starts_with(redirect), "{landed}");
    let q = query_of(&landed);
    assert_eq!(q["state"], "client-state");
    // Once only.
    let again = b
        .post(&confirm)
        .header("origin", &h.gate)
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 400);
    // The code needs the verifier, and then works.
    let (status, pair) = post_json(
        &h,
        "/oauth2/token",
        serde_json::json!({"code": q["code"], "client_redirect_uri": redirect, "code_verifier": VERIFIER}),
    )
    .await;
    assert_eq!(status, 200, "{pair}");
    assert!(pair["access_token"].is_string());
    assert!(h.log().contains("client_confirmed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_sent_to_a_loopback_port_names_nobody() {
    let h = loopback_gate().await;
    let b = browser();
    let start = b
        .get(h.url("/oauth2/start"))
        .query(&[
            ("client_redirect_uri", "http://127.0.0.1:5555/callback"),
            ("state", "s"),
            ("code_challenge", &challenge(VERIFIER)),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await
        .unwrap();
    let callback = consent(&b, &location(&start), "mallory").await;
    let refused = b.get(callback).send().await.unwrap();
    assert_eq!(refused.status(), 302);
    let q = query_of(&location(&refused));
    assert_eq!(q["error"], "access_denied");
    assert_eq!(q["state"], "s");
    assert!(!q["error_description"].contains("mallory"), "{q:?}");
    assert!(!q.contains_key("code"));
}

/// The whole `gatehouse login` through the gate: the person confirms, the command signs in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gatehouse_login_works_through_the_confirmation() {
    let h = loopback_gate().await;
    let dir = tempfile::tempdir().unwrap();
    let (mut child, lines, start_url) = start_cli_login(&h.gate, dir.path());
    // The command names itself for the confirmation page.
    assert_eq!(query_of(&start_url)["client_name"], "gatehouse login");
    let b = browser();
    let start = b.get(&start_url).send().await.unwrap();
    assert_eq!(start.status(), 302);
    let callback = consent(&b, &location(&start), "octocat").await;
    let asked = b.get(callback).send().await.unwrap();
    let back = confirm_loopback_sign_in(&h, &b, asked).await;
    assert!(
        back.starts_with(&query_of(&start_url)["client_redirect_uri"]),
        "{back}"
    );
    let done = b.get(&back).send().await.unwrap();
    assert_eq!(done.status(), 200);
    let exit = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    let printed = everything_printed(lines);
    assert!(exit.success(), "{printed}");
    assert!(dir.path().join("tokens.json").exists());
}
