//! Per-path rules, roles, owner scopes and path safety, through the running gate.

use crate::common::*;
use std::io::{Read, Write};
use std::net::SocketAddr;

/// Paths under `/echo` so the demo upstream echoes what it received.
const RULES: &str = r#"
admin_users = ["octocat"]

[roles.editor]
users = ["monalisa"]

[[rules]]
path = "/echo/public/**"
policy = "public"

[[rules]]
path = "/echo/admin/**"
allow = ["role:admin"]
hide = true

[[rules]]
path = "/echo/vault/**"
policy = "deny"

[[rules]]
path = "/echo/api/*/items"
methods = ["POST"]
allow = ["role:editor"]

[[rules]]
path = "/echo/orgs-only/**"
allow = ["org:acme"]

[[rules]]
path = "/echo/files/**"
policy = "public"
allow_encoded_path = true

[[rules]]
path = "/echo/hub/{owner}/**"
owner_methods = ["POST", "PUT", "PATCH", "DELETE"]

[[rules]]
path = "/echo/private/{owner}/**"
owner_methods = ["POST", "PUT", "PATCH", "DELETE"]
hide = true
"#;

async fn gate() -> Harness {
    Harness::start(GateOptions {
        access_extra: RULES.into(),
        ..GateOptions::default()
    })
    .await
}

async fn signed_in(h: &Harness, login: &str) -> reqwest::Client {
    let client = browser();
    let r = h.sign_in(&client, login, "/").await;
    assert_eq!(r.status(), 302, "sign-in of {login}");
    client
}

/// Status of an API-style request (JSON, so refusals are 401/403/404, never a redirect).
async fn status(client: &reqwest::Client, method: &str, url: String) -> u16 {
    client
        .request(method.parse().unwrap(), url)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// A request sent byte for byte as written (HTTP clients clean paths up before sending).
fn raw_get(addr: SocketAddr, path: &str, extra_headers: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: application/json\r\nConnection: close\r\n{extra_headers}\r\n"
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let status = out
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_rule_kind_decides() {
    let h = gate().await;
    let anon = plain_client();

    // Public: no cookie needed, a broken one is not even read, no identity goes upstream.
    let (code, seen) = echo(
        &anon,
        h.url("/echo/public/x"),
        &[("cookie", "_gatehouse=garbage")],
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(upstream_header(&seen, "x-forwarded-user"), None);
    assert_eq!(upstream_header(&seen, "cookie"), None, "{seen}");
    assert_eq!(status(&anon, "GET", h.url("/echo/public")).await, 200);

    // Protected: anonymous API clients get 401, browsers the login redirect, even when hidden.
    assert_eq!(status(&anon, "GET", h.url("/echo/admin/x")).await, 401);
    let nav = navigate(&anon, h.url("/echo/admin/x")).await;
    assert_eq!(nav.status(), 302);
    assert!(location(&nav).starts_with("/oauth2/start?rd="));

    // Deny: 403 for everyone, anonymous included.
    assert_eq!(status(&anon, "GET", h.url("/echo/vault/x")).await, 403);

    let octo = signed_in(&h, "octocat").await;
    let mona = signed_in(&h, "monalisa").await;
    let mallory = signed_in(&h, "mallory").await;

    // role:admin with hide: the admin passes with their roles; others get 404.
    let (code, seen) = echo(&octo, h.url("/echo/admin/x"), &[]).await;
    assert_eq!(code, 200);
    assert_eq!(
        upstream_header(&seen, "x-forwarded-roles"),
        Some("viewer,admin")
    );
    assert_eq!(status(&mona, "GET", h.url("/echo/admin/x")).await, 404);
    assert_eq!(status(&octo, "GET", h.url("/echo/vault/x")).await, 403);

    // methods: the rule decides POST only; GET falls through to the default.
    assert_eq!(
        status(&mona, "POST", h.url("/echo/api/v1/items")).await,
        200
    );
    assert_eq!(
        status(&octo, "POST", h.url("/echo/api/v1/items")).await,
        403
    );
    assert_eq!(status(&octo, "GET", h.url("/echo/api/v1/items")).await, 200);
    let (_, seen) = echo(&mona, h.url("/echo/x"), &[]).await;
    assert_eq!(
        upstream_header(&seen, "x-forwarded-roles"),
        Some("viewer,editor")
    );

    // org: monalisa is in acme, octocat is not.
    assert_eq!(status(&mona, "GET", h.url("/echo/orgs-only/x")).await, 200);
    assert_eq!(status(&octo, "GET", h.url("/echo/orgs-only/x")).await, 403);

    // Not on the allow-lists: 403 everywhere but public paths, and rules never widen that.
    assert_eq!(status(&mallory, "GET", h.url("/echo/x")).await, 403);
    assert_eq!(
        status(&mallory, "GET", h.url("/echo/orgs-only/x")).await,
        403
    );
    assert_eq!(status(&mallory, "GET", h.url("/echo/public/x")).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owner_scoped_writes() {
    let h = gate().await;
    let mona = signed_in(&h, "monalisa").await;
    let octo = signed_in(&h, "octocat").await;
    // Own namespace, and an org's namespace as its member.
    assert_eq!(
        status(&mona, "POST", h.url("/echo/hub/monalisa/p")).await,
        200
    );
    assert_eq!(
        status(&mona, "PUT", h.url("/echo/hub/MonaLisa/p")).await,
        200
    );
    assert_eq!(
        status(&mona, "DELETE", h.url("/echo/hub/acme/p")).await,
        200
    );
    assert_eq!(
        status(&octo, "PATCH", h.url("/echo/hub/databio/p")).await,
        200
    );
    // Someone else's namespace: reading is fine, writing is not.
    assert_eq!(
        status(&mona, "GET", h.url("/echo/hub/octocat/p")).await,
        200
    );
    assert_eq!(
        status(&mona, "POST", h.url("/echo/hub/octocat/p")).await,
        403
    );
    assert_eq!(status(&octo, "POST", h.url("/echo/hub/acme/p")).await, 403);
    // A hiding rule answers 404 instead.
    assert_eq!(
        status(&mona, "POST", h.url("/echo/private/octocat/p")).await,
        404
    );
    assert_eq!(
        status(&mona, "POST", h.url("/echo/private/monalisa/p")).await,
        200
    );
    // Anonymous writers sign in first.
    assert_eq!(
        status(&plain_client(), "POST", h.url("/echo/hub/monalisa/p")).await,
        401
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_confusion_never_reaches_a_protected_path() {
    let h = gate().await;
    let cookie_of = |r: reqwest::Response| format!("Cookie: _gatehouse={}\r\n", session_cookie(&r));
    let mona = cookie_of(h.sign_in(&browser(), "monalisa", "/").await);
    let octo = cookie_of(h.sign_in(&browser(), "octocat", "/").await);
    for path in [
        "/echo/Admin/x",
        "/ECHO/ADMIN/x",
        "//echo//admin/x",
        "/echo/public/../admin/x",
        "/echo/public/%2e%2e/admin/x",
        "/echo/public/./../admin/x",
        "/echo/%61dmin/x",
        "/echo/public/../../echo/admin/",
    ] {
        let (code, body) = raw_get(h.gate_addr, path, "");
        assert_eq!(code, 401, "{path} must need a sign-in: {body}");
        // The admin rule (hidden) decides it, whatever the spelling.
        let (code, body) = raw_get(h.gate_addr, path, &mona);
        assert_eq!(
            code, 404,
            "{path} must stay hidden from a non-admin: {body}"
        );
        let (code, body) = raw_get(h.gate_addr, path, &octo);
        assert_eq!(code, 200, "{path}: {body}");
        // (The demo app routes case-sensitively: `/ECHO/…` lands on its home page.)
        if let Ok(seen) = serde_json::from_str::<serde_json::Value>(&body) {
            assert!(
                seen["path"]
                    .as_str()
                    .unwrap()
                    .to_ascii_lowercase()
                    .starts_with("/echo/admin"),
                "{path} reached the upstream as {}",
                seen["path"]
            );
        } else {
            assert!(
                body.contains("Request path: <code>/ECHO/ADMIN/x</code>"),
                "{body}"
            );
        }
    }
    for path in [
        "/echo/admin%2Fx",
        "/echo/public%2F..%2Fadmin/x",
        "/echo/public/..%2Fadmin/x",
        "/echo/admin;x",
        "/echo/public;/../admin/x",
        "/echo/a%5C..%5Cadmin",
        "/echo/admin%00",
        "/echo/%zz",
    ] {
        for who in ["", mona.as_str(), octo.as_str()] {
            let (code, body) = raw_get(h.gate_addr, path, who);
            assert_eq!(code, 400, "{path} must be refused: {body}");
            assert!(body.contains("bad_path"), "{body}");
        }
    }
    // The upstream acts on the path the decision was made on, query kept.
    let (code, body) = raw_get(h.gate_addr, "/echo/public/a/../b//c/%7Ed?q=%2F..", "");
    assert_eq!(code, 200);
    let seen: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(seen["path"], "/echo/public/b/c/~d");
    assert_eq!(seen["query"], "q=%2F..");
    // A rule can opt in to encoded slashes; they then pass unchanged.
    let (code, body) = raw_get(h.gate_addr, "/echo/files/a%2Fb", "");
    assert_eq!(code, 200, "{body}");
    let seen: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(seen["path"], "/echo/files/a%2Fb");
    // Method and URL override headers never reach the upstream.
    let (code, body) = raw_get(
        h.gate_addr,
        "/echo/public/x",
        "X-HTTP-Method-Override: DELETE\r\nX-Original-URL: /echo/admin/x\r\nX-Rewrite-URL: /echo/admin/x\r\n",
    );
    assert_eq!(code, 200);
    let seen: serde_json::Value = serde_json::from_str(&body).unwrap();
    for header in ["x-http-method-override", "x-original-url", "x-rewrite-url"] {
        assert_eq!(upstream_header(&seen, header), None, "{seen}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forward_auth_judges_the_original_request() {
    let h = gate().await;
    let ask = |client: &reqwest::Client, uri: &str, method: &str| {
        client
            .get(h.url("/oauth2/auth"))
            .header("x-original-uri", uri)
            .header("x-original-method", method)
            .send()
    };
    let anon = plain_client();
    let r = ask(&anon, "/echo/public/x?y=1", "GET").await.unwrap();
    assert_eq!(r.status(), 202);
    assert!(r.headers().get("x-auth-request-user").is_none());
    assert_eq!(
        ask(&anon, "/echo/admin/x", "GET").await.unwrap().status(),
        401
    );
    assert_eq!(
        ask(&anon, "/echo/vault/x", "GET").await.unwrap().status(),
        403
    );
    let mona = signed_in(&h, "monalisa").await;
    // Hidden paths are a plain 403 to the proxy (nginx treats other codes as errors).
    assert_eq!(
        ask(&mona, "/echo/admin/x", "GET").await.unwrap().status(),
        403
    );
    let r = ask(&mona, "/echo/hub/monalisa/p", "POST").await.unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(r.headers()["x-auth-request-roles"], "viewer,editor");
    assert_eq!(
        ask(&mona, "/echo/hub/octocat/p", "POST")
            .await
            .unwrap()
            .status(),
        403
    );
    // Refused addresses are a 403 too; two spellings that disagree are refused.
    assert_eq!(
        ask(&mona, "/echo/admin%2F", "GET").await.unwrap().status(),
        403
    );
    let r = anon
        .get(h.url("/oauth2/auth"))
        .header("x-original-uri", "/echo/public/x")
        .header("x-forwarded-uri", "/echo/admin/x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = anon
        .get(h.url("/oauth2/auth"))
        .header("x-original-uri", "/echo/public/x")
        .header("x-forwarded-uri", "/echo/public/x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
}

#[test]
fn explain_prints_the_deciding_rule() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gatehouse.toml");
    std::fs::write(
        &config,
        format!(
            "[github]\nclient_id = \"x\"\nclient_secret = \"y\"\n[session]\nsecrets = [\"{}\"]\n[access]\nallowed_users = [\"octocat\", \"monalisa\"]\n{RULES}",
            b64(&KEY_A)
        ),
    )
    .unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(binary())
            .args(["check-config", "--config"])
            .arg(&config)
            .arg("--explain")
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let text = run(&[
        "--user",
        "octocat",
        "--path",
        "/echo/admin/x",
        "--method",
        "POST",
    ]);
    assert!(text.contains("decision: allow"), "{text}");
    assert!(text.contains("rule #2"), "{text}");
    assert!(text.contains("roles:    viewer, admin"), "{text}");
    let text = run(&["--user", "monalisa", "--path", "/echo/admin/x"]);
    assert!(text.contains("decision: hide 404"), "{text}");
    let text = run(&["--path", "/echo/public/../vault/x"]);
    assert!(text.contains("normalized to /echo/vault/x"), "{text}");
    assert!(
        text.contains("decision: deny 403") && text.contains("rule #3"),
        "{text}"
    );
    let text = run(&[
        "--user",
        "monalisa",
        "--orgs",
        "databio",
        "--path",
        "/echo/hub/databio/p",
        "--method",
        "DELETE",
    ]);
    assert!(
        text.contains("decision: allow") && text.contains("rule #7"),
        "{text}"
    );
    // Memberships as the mock GitHub's demo data has them: monalisa is in acme.
    let text = run(&[
        "--user",
        "monalisa",
        "--mock-users",
        "demo",
        "--path",
        "/echo/orgs-only/x",
    ]);
    assert!(
        text.contains("who:      monalisa (acme, databio)"),
        "{text}"
    );
    assert!(
        text.contains("decision: allow") && text.contains("rule #5"),
        "{text}"
    );
    let text = run(&["--user", "monalisa", "--path", "/somewhere"]);
    assert!(text.contains("default"), "{text}");
}

#[test]
fn rule_mistakes_are_named_by_check_config() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gatehouse.toml");
    std::fs::write(
        &config,
        format!(
            "[github]\nclient_id = \"x\"\nclient_secret = \"y\"\n[session]\nsecrets = [\"{}\"]\n[access]\nallowed_users = [\"octocat\"]\n[[rules]]\npath = \"/a/**b\"\npolicy = \"public\"\n[[rules]]\npath = \"/b\"\nallow = [\"role:wizard\"]\n[[rules]]\npath = \"/c\"\npolicy = \"maybe\"\n[[rules]]\npath = \"/d\"\npolicy = \"deny\"\nallow = [\"user:x\"]\n",
            b64(&KEY_A)
        ),
    )
    .unwrap();
    let out = std::process::Command::new(binary())
        .args(["check-config", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for needle in [
        "rules[0].path: rule #1",
        "rules[1].allow: rule #2",
        "`role:wizard` names a role nothing grants",
        "rules[2].policy: rule #3",
        "rules[3].allow: rule #4",
        "fix:",
    ] {
        assert!(stderr.contains(needle), "missing {needle}:\n{stderr}");
    }
}

/// Globs with several `**`, which a backtracking matcher needs seconds (or hours) for on a long
/// path that never matches.
const GLOBSTAR_RULES: &str = r#"
[[rules]]
path = "/**/a/**/a/**/z"
policy = "deny"

[[rules]]
path = "/**/x/**/y/**/z/**/w"
policy = "deny"

[[rules]]
path = "/**/a/**/a/**/a/**/a/**/q"
policy = "deny"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_globstars_cannot_stall_the_gate() {
    let h = Harness::start(GateOptions {
        access_extra: GLOBSTAR_RULES.into(),
        ..GateOptions::default()
    })
    .await;
    let anon = plain_client();
    let timed = |path: String| {
        let request = anon
            .get(h.url(&path))
            .header("accept", "application/json")
            .timeout(std::time::Duration::from_secs(10));
        async move {
            let started = std::time::Instant::now();
            let r = request.send().await.expect("an answer within 10 s");
            (r.status().as_u16(), started.elapsed())
        }
    };
    // The rules still decide: a path they match is denied.
    assert_eq!(timed("/a/b/a/c/z".into()).await.0, 403);
    assert_eq!(timed("/x/y/z/w".into()).await.0, 403);
    // 1.6 KB and 8 KB of `/a` match none of them, so an anonymous client gets the default 401,
    // promptly (a backtracking walk took over a second at 1.6 KB).
    for bytes in [1_600, 8_000, 1_600, 8_000] {
        let path = "/a".repeat(bytes / 2);
        let (status, took) = timed(path.clone()).await;
        assert_eq!(status, 401, "{bytes} bytes");
        assert!(
            took < std::time::Duration::from_millis(200),
            "{bytes} bytes of /a took {took:?}"
        );
        let (status, took) = timed(format!("{path}/z")).await;
        assert_eq!(status, 403, "{bytes} bytes then /z");
        assert!(took < std::time::Duration::from_millis(200), "{took:?}");
    }
}
