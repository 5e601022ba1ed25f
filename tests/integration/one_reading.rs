//! One request, one reading: what the gate judges is what the app acts on. Each test is the
//! regression for one class of disagreement found against a released build, sent byte for byte
//! through the running gate to the demo app's `/echo`, which reports what it received.

use crate::common::*;
use std::time::Duration;

/// octocat is the admin; monalisa is admitted but not an admin.
const RULES: &str = r#"
admin_users = ["octocat"]

[[rules]]
host = "admin.example.com"
path = "/**"
allow = ["role:admin"]

[[rules]]
path = "/echo/public/**"
policy = "public"

[[rules]]
path = "/echo/files/**"
policy = "public"
allow_folded_segments = true

[[rules]]
path = "/echo/wiki/Special:Admin/**"
allow = ["role:admin"]

[[rules]]
path = "/echo/café/**"
allow = ["role:admin"]

[[rules]]
path = "/echo/{owner}/**"
owner_methods = ["POST", "PUT", "PATCH", "DELETE"]
"#;

async fn gate() -> Harness {
    Harness::start(GateOptions {
        access_extra: RULES.into(),
        ..GateOptions::default()
    })
    .await
}

fn session_of(login: &str, id: u64) -> String {
    mint(KEY_A, &claims_for(login, id))
}

/// Send `head` (request line and headers, each line ending in `\r\n`, without the blank line)
/// exactly as given, with `Connection: close` added.
async fn send(h: &Harness, head: &[u8]) -> RawResponse {
    let mut request = head.to_vec();
    request.extend_from_slice(b"Connection: close\r\n\r\n");
    parse_raw(&raw_exchange(h.gate_addr, &request, Duration::from_secs(5)).await)
}

/// `METHOD path` with the gate's own Host, JSON accepted, and `extra` header lines.
fn request(method: &str, path: &str, host: &str, extra: &[u8]) -> Vec<u8> {
    let mut out =
        format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nAccept: application/json\r\n")
            .into_bytes();
    out.extend_from_slice(extra);
    out
}

fn cookie_line(value: &str) -> Vec<u8> {
    format!("Cookie: {value}\r\n").into_bytes()
}

fn cookies_seen(r: &RawResponse) -> String {
    match &r.json()["headers"]["cookie"] {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => panic!("the app got the Cookie header more than once: {other}"),
    }
}

#[tokio::test]
async fn a_non_ascii_cookie_neighbour_neither_hides_nor_leaks_the_session() {
    let h = gate().await;
    let host = h.gate_addr.to_string();
    let session = session_of("monalisa", 583231);
    let neighbours: [&[u8]; 3] = [
        "name=Jos\u{e9}".as_bytes(), // raw UTF-8, as an app may set it
        b"name=Jos\xe9",             // Latin-1: not UTF-8 at all
        b"q=\"a b\"",
    ];
    for neighbour in neighbours {
        let mut line = b"Cookie: ".to_vec();
        line.extend_from_slice(neighbour);
        line.extend_from_slice(
            format!("; _gatehouse={session}; _gatehouse_loop=1.2; _gatehouse_login_ab=x; b=2\r\n")
                .as_bytes(),
        );
        let shown = String::from_utf8_lossy(neighbour);
        // A public path: the app gets its own cookies, never one of Gatehouse's.
        let r = send(&h, &request("GET", "/echo/public/x", &host, &line)).await;
        assert_eq!(r.status, 200, "{shown}: {}", r.body);
        let seen = cookies_seen(&r);
        assert!(!seen.contains("_gatehouse"), "{shown}: the app got {seen}");
        assert!(seen.ends_with("; b=2"), "{shown}: the app got {seen}");
        // A protected path: the session is read whatever its neighbours hold.
        let r = send(&h, &request("GET", "/echo/private", &host, &line)).await;
        assert_eq!(r.status, 200, "{shown}: {}", r.body);
        assert_eq!(
            upstream_header(&r.json(), "x-forwarded-user"),
            Some("monalisa")
        );
        assert!(!cookies_seen(&r).contains("_gatehouse"), "{shown}");
    }
    // Several Cookie headers, the session in the last, unparseable pieces around it: one
    // header reaches the app, with neither the session nor the junk.
    let mut lines = cookie_line("a=1; junk");
    lines.extend(cookie_line(&format!("=x; _gatehouse={session}")));
    let r = send(&h, &request("GET", "/echo/public/x", &host, &lines)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(cookies_seen(&r), "a=1");
}

#[tokio::test]
async fn methods_in_lower_case_are_refused_not_guessed() {
    let h = gate().await;
    let host = h.gate_addr.to_string();
    let mona = cookie_line(&format!("_gatehouse={}", session_of("monalisa", 583231)));
    // The README's owner rule: a non-owner may read octocat's notes but not write them.
    let r = send(&h, &request("POST", "/echo/octocat/notes", &host, &mona)).await;
    assert_eq!(r.status, 403, "{}", r.body);
    for method in ["post", "Post", "pOST", "delete", "get"] {
        let r = send(&h, &request(method, "/echo/octocat/notes", &host, &mona)).await;
        assert_eq!(r.status, 400, "{method}: {}", r.body);
        assert_eq!(r.json()["error"], "invalid_request", "{method}");
    }
    // The owner still writes, in upper case.
    let octo = cookie_line(&format!("_gatehouse={}", session_of("octocat", 583232)));
    let r = send(&h, &request("POST", "/echo/octocat/notes", &host, &octo)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["method"], "POST");
    // Forward-auth judges the method the proxy names by the same rule.
    for method in ["post", "Delete"] {
        let mut extra = mona.clone();
        extra.extend(
            format!("X-Original-Method: {method}\r\nX-Original-URI: /echo/octocat/notes\r\n")
                .into_bytes(),
        );
        let r = send(&h, &request("GET", "/oauth2/auth", &host, &extra)).await;
        assert!(!(200..300).contains(&r.status), "{method}: {}", r.status);
    }
}

#[tokio::test]
async fn escapes_are_judged_and_forwarded_in_the_form_the_app_decodes() {
    let h = gate().await;
    let host = h.gate_addr.to_string();
    let mona = cookie_line(&format!("_gatehouse={}", session_of("monalisa", 583231)));
    let octo = cookie_line(&format!("_gatehouse={}", session_of("octocat", 583232)));
    // Spellings of admin-only paths: refused to monalisa, and for octocat forwarded in the one
    // canonical form.
    for (path, canonical) in [
        ("/echo/wiki/Special:Admin/x", "/echo/wiki/Special:Admin/x"),
        ("/echo/wiki/Special%3AAdmin/x", "/echo/wiki/Special:Admin/x"),
        ("/echo/wiki/Special%3aAdmin/x", "/echo/wiki/Special:Admin/x"),
        ("/echo/wiki/Special%3aAdmin%2Fx", ""),
        ("/echo/caf%C3%A9/x", "/echo/caf%C3%A9/x"),
        ("/echo/caf%c3%a9/x", "/echo/caf%C3%A9/x"),
        ("/echo/CAF%C3%A9/x", "/echo/CAF%C3%A9/x"),
    ] {
        let r = send(&h, &request("GET", path, &host, &mona)).await;
        assert!(
            matches!(r.status, 400 | 403),
            "{path}: monalisa got {}",
            r.status
        );
        let r = send(&h, &request("GET", path, &host, &octo)).await;
        if canonical.is_empty() {
            assert_eq!(r.status, 400, "{path}");
            continue;
        }
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        assert_eq!(r.json()["path"], canonical, "{path}");
    }
    // Literal UTF-8 in the request line is the same path as its escapes.
    let mut raw = b"GET /echo/caf\xc3\xa9/x HTTP/1.1\r\nHost: ".to_vec();
    raw.extend_from_slice(host.as_bytes());
    raw.extend_from_slice(b"\r\nAccept: application/json\r\n");
    raw.extend_from_slice(&mona);
    let r = send(&h, &raw).await;
    assert_eq!(r.status, 403, "literal UTF-8: {}", r.body);
    // Public paths reach the app canonical: `%2B` is `+`, `%3A` is `:`, a space stays escaped.
    let r = send(
        &h,
        &request("GET", "/echo/public/a%2Bb%3a%40c%20d", &host, b""),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["path"], "/echo/public/a+b:@c%20d");
    // What apps read in different ways is refused: `%25`, escaped control bytes, folded segments.
    for path in [
        "/echo/public/%2541",
        "/echo/public/x%0a",
        "/echo/public/x%09",
        "/echo/wiki/Special:Admin./x",
        "/echo/wiki/Special:Admin%20/x",
        "/echo/public/x.",
    ] {
        let r = send(&h, &request("GET", path, &host, b"")).await;
        assert_eq!(r.status, 400, "{path}: {}", r.body);
        assert_eq!(r.json()["error"], "bad_path", "{path}");
    }
    // Another spelling of Gatehouse's own endpoints is neither answered nor sent to the app.
    for path in [
        "/%6Fauth2/userinfo",
        "//oauth2/start",
        "/x/../oauth2/sign_in",
        "/p%69ng",
    ] {
        let r = send(&h, &request("GET", path, &host, b"")).await;
        assert_eq!(r.status, 400, "{path}: {}", r.body);
        assert!(r.json()["path"].is_null(), "{path} reached the app");
    }
    // ... unless the deciding rule opts in.
    let r = send(&h, &request("GET", "/echo/files/report./v1%20", &host, b"")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["path"], "/echo/files/report./v1%20");
}

#[tokio::test]
async fn host_spellings_are_one_host() {
    let h = gate().await;
    let mona = cookie_line(&format!("_gatehouse={}", session_of("monalisa", 583231)));
    let octo = cookie_line(&format!("_gatehouse={}", session_of("octocat", 583232)));
    for host in [
        "admin.example.com",
        "admin.example.com.",
        "ADMIN.Example.com",
        "admin.example.com:",
        "admin.example.com.:",
        "admin.example.com.:80",
    ] {
        let r = send(&h, &request("GET", "/echo/x", host, &mona)).await;
        assert_eq!(r.status, 403, "{host}: monalisa got {}", r.body);
        let r = send(&h, &request("GET", "/echo/x", host, &octo)).await;
        assert_eq!(r.status, 200, "{host}: {}", r.body);
        let forwarded = upstream_header(&r.json(), "host").map(str::to_string);
        let expected = if host.ends_with(":80") {
            "admin.example.com:80"
        } else {
            "admin.example.com"
        };
        assert_eq!(forwarded.as_deref(), Some(expected), "{host}");
        assert_eq!(
            upstream_header(&r.json(), "x-forwarded-host"),
            Some(expected),
            "{host}"
        );
    }
    // What servers read in different ways is refused.
    for host in [
        "admin.example.com..",
        ".admin.example.com",
        "admin.example.com:80.",
        "admin.example.com:x",
        "admin..example.com",
    ] {
        let r = send(&h, &request("GET", "/echo/x", host, &mona)).await;
        assert_eq!(r.status, 400, "{host}: {}", r.body);
    }
    let mut two_hosts = b"Host: admin.example.com\r\n".to_vec();
    two_hosts.extend(&mona);
    let r = send(
        &h,
        &request("GET", "/echo/x", "other.example.com", &two_hosts),
    )
    .await;
    assert_eq!(r.status, 400, "two Host headers: {}", r.body);
}

#[tokio::test]
async fn recognised_credentials_and_client_claims_never_reach_the_app() {
    let h = gate().await;
    let host = h.gate_addr.to_string();
    // GitHub tokens, whether or not this gate accepts them, in either scheme.
    for auth in [
        "token ghp_abcdefghijklmnopqrstuvwxyz0123456789",
        "Bearer gho_abcdefghijklmnopqrstuvwxyz0123456789",
        "bearer github_pat_11ABCDEFG0123456789_abcdefghijklmnop",
    ] {
        let extra = format!("Authorization: {auth}\r\n");
        let r = send(
            &h,
            &request("GET", "/echo/public/x", &host, extra.as_bytes()),
        )
        .await;
        assert_eq!(r.status, 200, "{auth}: {}", r.body);
        assert_eq!(upstream_header(&r.json(), "authorization"), None, "{auth}");
    }
    // The app's own credentials are its business.
    let r = send(
        &h,
        &request(
            "GET",
            "/echo/public/x",
            &host,
            b"Authorization: Basic YXBwOmFwcA==\r\n",
        ),
    )
    .await;
    assert_eq!(
        upstream_header(&r.json(), "authorization"),
        Some("Basic YXBwOmFwcA==")
    );
    // Two Authorization headers: apps pick different ones.
    let r = send(
        &h,
        &request(
            "GET",
            "/echo/public/x",
            &host,
            b"Authorization: Basic YXBwOmFwcA==\r\nAuthorization: token ghp_abc\r\n",
        ),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    // Client-IP and identity headers of other proxies, in any spelling.
    let claims = [
        "True-Client-IP",
        "X-Client-IP",
        "Client-IP",
        "X-Cluster-Client-IP",
        "CF-Connecting-IP",
        "Fastly-Client-IP",
        "X-Forwarded",
        "X-Remote-Group",
        "X-Remote-Extra-Scopes",
        "X_Remote_Group",
        "Impersonate-User",
    ];
    let extra: String = claims
        .iter()
        .map(|n| format!("{n}: 10.9.8.7\r\n"))
        .collect();
    let mona = format!("Cookie: _gatehouse={}\r\n", session_of("monalisa", 583231));
    for path in ["/echo/public/x", "/echo/private"] {
        let r = send(
            &h,
            &request("GET", path, &host, format!("{extra}{mona}").as_bytes()),
        )
        .await;
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        let seen = r.json()["headers"].clone();
        for name in claims {
            let lower = name.to_ascii_lowercase();
            assert!(seen.get(&lower).is_none(), "{path}: the app got {name}");
        }
    }
}
