//! Faults, through the running gate: GitHub slow, failing, answering garbage or dropping the
//! connection (the mock's `POST /_mock/fail`), and an upstream that is down, resets, or hangs.
//!
//! Every case is bounded in time and checks the gate fails closed: sign-ins fail with a page that
//! names the cause, existing sessions keep working, nobody is let in who should not be, and the
//! gate keeps serving afterwards with no panic in its log.

use crate::common::*;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// `github.timeout` in the harness config.
const GITHUB_TIMEOUT: Duration = Duration::from_secs(3);
/// A hard cap on any single request in these tests: a hang fails the test, never stalls it.
const HARD_CAP: Duration = Duration::from_secs(20);

/// The harness's allow-lists plus `databio` members, so sign-in asks GitHub about an org too.
fn gate_options(extra: &str) -> GateOptions {
    GateOptions {
        access_extra: format!("allowed_orgs = [\"databio\"]\n{extra}"),
        ..GateOptions::default()
    }
}

async fn mock_post(h: &Harness, path_and_query: &str) -> serde_json::Value {
    let r = plain_client()
        .post(format!("{}{path_and_query}", h.mock_url))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{path_and_query}: {}", r.status());
    r.json().await.unwrap_or(serde_json::Value::Null)
}

/// What one request got: status, body text, Set-Cookie values, and how long it took.
struct Got {
    status: u16,
    body: String,
    cookies: Vec<String>,
    took: Duration,
}

impl Got {
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// Whether a non-empty session cookie was handed out.
    fn sets_session(&self) -> bool {
        self.cookies.iter().any(|c| {
            c.strip_prefix("_gatehouse")
                .and_then(|rest| rest.split_once('='))
                .is_some_and(|(_, v)| !v.starts_with(';') && !v.is_empty())
        })
    }
}

/// Send `req`, read the whole answer, fail the test if it takes longer than [`HARD_CAP`].
async fn fetch(req: reqwest::RequestBuilder) -> Got {
    let started = Instant::now();
    let work = async {
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let cookies = set_cookies(&r);
        let body = r.text().await.unwrap_or_default();
        (status, body, cookies)
    };
    let (status, body, cookies) = tokio::time::timeout(HARD_CAP, work)
        .await
        .expect("request hung past the hard cap");
    Got {
        status,
        body,
        cookies,
        took: started.elapsed(),
    }
}

/// GET `/echo` carrying only `cookie` (an API client).
async fn with_cookie(h: &Harness, cookie: &str) -> Got {
    fetch(
        plain_client()
            .get(h.url("/echo"))
            .header("accept", "application/json")
            .header("cookie", format!("_gatehouse={cookie}")),
    )
    .await
}

/// The checks that must hold whatever GitHub is doing: sessions made earlier keep working with
/// their own identity and without asking GitHub, anonymous visitors are sent to sign in, and a
/// signed-in person who is not admitted is still refused.
async fn fail_closed_invariants(h: &Harness, mona: &str, mallory: &str, what: &str) {
    let before = h.mock.api_request_count();
    let got = with_cookie(h, mona).await;
    assert_eq!(got.status, 200, "{what}: existing session: {}", got.body);
    assert_eq!(
        upstream_header(&got.json(), "x-forwarded-user"),
        Some("monalisa"),
        "{what}"
    );
    assert!(got.took < Duration::from_secs(1), "{what}: {:?}", got.took);
    let got = with_cookie(h, mallory).await;
    assert_eq!(got.status, 403, "{what}: not admitted: {}", got.body);
    let got = fetch(
        plain_client()
            .get(h.url("/echo"))
            .header("accept", "text/html"),
    )
    .await;
    assert_eq!(got.status, 302, "{what}: anonymous browser");
    let got = fetch(
        plain_client()
            .get(h.url("/echo"))
            .header("accept", "application/json"),
    )
    .await;
    assert_eq!(got.status, 401, "{what}: anonymous API client");
    assert_eq!(
        h.mock.api_request_count(),
        before,
        "{what}: requests within refresh_interval must not ask GitHub"
    );
}

/// One GitHub fault during sign-in and what the gate must answer.
struct SignInFault {
    fail: &'static str,
    /// The status the person gets.
    status: u16,
    /// The `error` of the JSON answer an API client gets.
    code: &'static str,
    /// Text the page must contain.
    says: &'static str,
}

/// A browser and an API client each finish a sign-in while GitHub misbehaves. Returns
/// (browser answer, API answer).
async fn sign_in_during(h: &Harness, fail: &str, login: &str) -> (Got, Got) {
    let browser_client = browser();
    let api_client = browser();
    let browser_callback = h.authorize(&browser_client, login, "/").await;
    let api_callback = h.authorize(&api_client, login, "/").await;
    mock_post(h, fail).await;
    let page = fetch(
        browser_client
            .get(browser_callback)
            .header("accept", "text/html"),
    )
    .await;
    let json = fetch(
        api_client
            .get(api_callback)
            .header("accept", "application/json"),
    )
    .await;
    mock_post(h, "/_mock/fail?mode=off").await;
    (page, json)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_faults_during_sign_in_fail_closed_with_a_page_that_names_github() {
    let started = Instant::now();
    let h = Harness::start(gate_options("")).await;
    let mona = session_of(&h, "monalisa").await;
    let mallory = session_of(&h, "mallory").await;

    let unavailable = |fail| SignInFault {
        fail,
        status: 502,
        code: "github_unavailable",
        says: "GitHub could not be reached",
    };
    let cases = [
        unavailable("/_mock/fail?status=500"),
        unavailable("/_mock/fail?mode=status&status=500&scope=oauth"),
        unavailable("/_mock/fail?mode=status&status=503&scope=all"),
        unavailable("/_mock/fail?mode=slow&delay_ms=8000&scope=rest"),
        unavailable("/_mock/fail?mode=slow&delay_ms=8000&scope=oauth"),
        unavailable("/_mock/fail?mode=drop&scope=rest"),
        unavailable("/_mock/fail?mode=drop&scope=oauth"),
        unavailable("/_mock/fail?mode=truncate&scope=rest"),
        unavailable("/_mock/fail?mode=truncate&scope=oauth"),
        // Garbage from GitHub is GitHub failing too: a bad gateway, not a refusal.
        unavailable("/_mock/fail?mode=malformed&scope=rest"),
        unavailable("/_mock/fail?mode=malformed&scope=oauth"),
    ];
    let mut report = Vec::new();
    for case in &cases {
        let (page, json) = sign_in_during(&h, case.fail, "octocat").await;
        report.push(format!(
            "{:<55} browser {} in {:>5} ms, api {} in {:>5} ms",
            case.fail,
            page.status,
            page.took.as_millis(),
            json.status,
            json.took.as_millis()
        ));
        for (who, got) in [("browser", &page), ("api", &json)] {
            assert!(!got.sets_session(), "{}: {who} got a session", case.fail);
            // Sign-in is at most: token exchange, GET /user, then the rest at once.
            assert!(
                got.took < GITHUB_TIMEOUT * 3 + Duration::from_secs(1),
                "{}: {who} took {:?}",
                case.fail,
                got.took
            );
        }
        assert_eq!(page.status, case.status, "{}: {}", case.fail, page.body);
        assert!(
            page.body.contains("<html") || page.body.contains("<!DOCTYPE"),
            "{}: a page for the browser: {}",
            case.fail,
            page.body
        );
        assert!(
            page.body.contains(case.says) && page.body.contains("/oauth2/start"),
            "{}: the page names the cause and offers to sign in again: {}",
            case.fail,
            page.body
        );
        assert_eq!(json.status, case.status, "{}: {}", case.fail, json.body);
        assert_eq!(json.json()["error"], case.code, "{}", case.fail);
        fail_closed_invariants(&h, &mona, &mallory, case.fail).await;
    }
    // A slow GitHub that still answers within github.timeout signs people in, just slowly.
    mock_post(&h, "/_mock/fail?mode=slow&delay_ms=500&scope=all").await;
    let t = Instant::now();
    let slow_ok = h.sign_in(&browser(), "octocat", "/").await;
    let slow_took = t.elapsed();
    assert_eq!(slow_ok.status(), 302, "{}", h.log());
    assert!(slow_ok.headers().get("set-cookie").is_some());
    report.push(format!(
        "{:<55} browser {} in {:>5} ms",
        "/_mock/fail?mode=slow&delay_ms=500&scope=all",
        slow_ok.status(),
        slow_took.as_millis()
    ));
    mock_post(&h, "/_mock/fail?mode=off").await;
    // Healed: sign-in works at full speed again, and the gate never panicked.
    let healed = session_of(&h, "octocat").await;
    assert_eq!(with_cookie(&h, &healed).await.status, 200);
    let log = h.log();
    assert!(!log.contains("panicked"), "{log}");
    eprintln!(
        "sign-in faults ({} cases, {:?}):\n  {}",
        cases.len() + 1,
        started.elapsed(),
        report.join("\n  ")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_faults_during_a_recheck_keep_sessions_within_the_grace_and_bounded_in_time() {
    let h = Harness::start(gate_options(
        "refresh_interval = \"1s\"\nstale_grace = \"60s\"",
    ))
    .await;
    let faults = [
        "/_mock/fail?mode=status&status=500",
        "/_mock/fail?mode=slow&delay_ms=8000",
        "/_mock/fail?mode=malformed",
        "/_mock/fail?mode=drop",
    ];
    // One session per fault: a failed re-check's result is reused by its session for a while.
    let mut sessions = Vec::new();
    for (i, _) in faults.iter().enumerate() {
        let login = format!("recheck-{i}");
        mock_post(&h, &format!("/_mock/users/{login}?id={}", 7_100_000 + i)).await;
        mock_post(&h, &format!("/_mock/orgs/databio/members/{login}")).await;
        sessions.push((login.clone(), session_of(&h, &login).await));
    }
    let mallory = session_of(&h, "mallory").await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let mut report = Vec::new();
    for (fail, (login, cookie)) in faults.iter().zip(&sessions) {
        mock_post(&h, fail).await;
        let got = with_cookie(&h, cookie).await;
        report.push(format!(
            "{fail:<40} re-check → {} in {} ms",
            got.status,
            got.took.as_millis()
        ));
        assert_eq!(got.status, 200, "{fail}: {}", got.body);
        assert_eq!(
            upstream_header(&got.json(), "x-forwarded-user"),
            Some(login.as_str()),
            "{fail}"
        );
        // Within stale_grace a request waits at most a second for a slow GitHub; the
        // re-check goes on in the background.
        assert!(
            got.took < Duration::from_millis(2000),
            "{fail}: a request must not wait on a slow re-check past a second: {:?}",
            got.took
        );
        // The not-admitted stay refused; anonymous visitors are not let in.
        assert_eq!(with_cookie(&h, &mallory).await.status, 403, "{fail}");
        let anon = fetch(plain_client().get(h.url("/echo"))).await;
        assert_eq!(anon.status, 401, "{fail}");
        mock_post(&h, "/_mock/fail?mode=off").await;
    }
    let log = h.log();
    assert!(!log.contains("panicked"), "{log}");
    eprintln!("re-check faults:\n  {}", report.join("\n  "));
}

/// An upstream that misbehaves on purpose, by path:
/// - `/reset-early`: reads the request, then resets the connection without a byte;
/// - `/reset-mid`: sends headers (Content-Length 100000) and 1000 bytes, then resets;
/// - `/reset-chunked`: a chunked answer with one chunk, then resets;
/// - `/close-mid`: headers (Content-Length 100000) and 1000 bytes, then a clean close (FIN);
/// - `/hang`: reads the request and never answers;
/// - anything else: 200 with the identity it received as JSON.
async fn faulty_upstream() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(faulty_connection(stream));
        }
    });
    addr
}

async fn faulty_connection(mut stream: tokio::net::TcpStream) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let head = String::from_utf8_lossy(&buf).to_string();
    let path = head
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .split('?')
        .next()
        .unwrap_or("/")
        .to_string();
    let reset = |stream: tokio::net::TcpStream| {
        let _ = stream.set_zero_linger();
        drop(stream);
    };
    match path.as_str() {
        "/reset-early" => reset(stream),
        "/reset-mid" | "/close-mid" => {
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 100000\r\n\r\n")
                .await;
            let _ = stream.write_all(&[b'x'; 1000]).await;
            let _ = stream.flush().await;
            tokio::time::sleep(Duration::from_millis(100)).await;
            if path == "/reset-mid" {
                reset(stream);
            } else {
                let _ = stream.shutdown().await;
            }
        }
        "/reset-chunked" => {
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n3e8\r\n")
                .await;
            let _ = stream.write_all(&[b'y'; 1000]).await;
            let _ = stream.write_all(b"\r\n").await;
            let _ = stream.flush().await;
            tokio::time::sleep(Duration::from_millis(100)).await;
            reset(stream);
        }
        "/hang" => {
            // Hold the connection open, answering nothing, until the gate gives up.
            let _ = stream.read(&mut chunk).await;
        }
        _ => {
            let user = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("x-forwarded-user")
                        .then(|| v.trim().to_string())
                })
                .unwrap_or_default();
            let body = serde_json::json!({ "user": user, "path": path }).to_string();
            let reply = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(reply.as_bytes()).await;
            let _ = stream.shutdown().await;
        }
    }
}

/// A request the faulty upstream answers properly still gets through, as the right person.
async fn healthy(h: &Harness, cookie: &str) {
    let (status, body, _) = through_gate(h, cookie, "/fine", false).await;
    assert_eq!(status, 200, "{body:?}");
    let json: serde_json::Value = serde_json::from_str(&body.unwrap()).unwrap();
    assert_eq!(json["user"], "octocat");
}

/// GET `path` with the session `cookie` as a browser or an API client; the status, whether the
/// body arrived whole (`Err` with the client's error when the transfer broke), and the time.
async fn through_gate(
    h: &Harness,
    cookie: &str,
    path: &str,
    browser: bool,
) -> (u16, Result<String, String>, Duration) {
    let started = Instant::now();
    let work = async {
        let r = plain_client()
            .get(h.url(path))
            .header(
                "accept",
                if browser {
                    "text/html"
                } else {
                    "application/json"
                },
            )
            .header("cookie", format!("_gatehouse={cookie}"))
            .send()
            .await
            .map_err(|e| format!("send: {e}"));
        match r {
            Ok(r) => {
                let status = r.status().as_u16();
                (status, r.text().await.map_err(|e| format!("body: {e}")))
            }
            Err(e) => (0, Err(e)),
        }
    };
    let (status, body) = tokio::time::timeout(HARD_CAP, work)
        .await
        .expect("request hung past the hard cap");
    (status, body, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_down_is_a_prompt_502_and_anonymous_still_signs_in() {
    let dead: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let h = Harness::start(GateOptions {
        upstream: Some(dead),
        ..GateOptions::default()
    })
    .await;
    let cookie = session_of(&h, "octocat").await;
    let (status, body, took) = through_gate(&h, &cookie, "/", true).await;
    assert_eq!(status, 502);
    assert!(
        body.as_deref().unwrap_or("").contains("did not answer"),
        "{body:?}"
    );
    assert!(took < Duration::from_secs(2), "{took:?}");
    // Many at once: every one a prompt 502 JSON, none hangs.
    let started = Instant::now();
    let all =
        futures_util::future::join_all((0..32).map(|_| through_gate(&h, &cookie, "/echo", false)))
            .await;
    for (status, body, _) in &all {
        assert_eq!(*status, 502, "{body:?}");
        let json: serde_json::Value =
            serde_json::from_str(body.as_deref().unwrap_or("")).unwrap_or_default();
        assert_eq!(json["error"], "upstream_unavailable");
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    // The gate itself still decides: anonymous visitors are sent to sign in, not proxied.
    let anon = fetch(
        plain_client()
            .get(h.url("/echo"))
            .header("accept", "text/html"),
    )
    .await;
    assert_eq!(anon.status, 302);
    let log = h.log();
    assert!(!log.contains("panicked"), "{log}");
    eprintln!(
        "upstream down: 1 + 32 requests, 502 in {took:?} (first), {:?} (32 at once)",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_that_resets_or_hangs_gives_502_or_a_broken_transfer_never_a_hang() {
    let upstream = faulty_upstream().await;
    let mut h = Harness::start(GateOptions {
        upstream: Some(upstream),
        ..GateOptions::default()
    })
    .await;
    let cookie = session_of(&h, "octocat").await;
    healthy(&h, &cookie).await;
    let mut report = Vec::new();

    // Reset before a byte of the answer: a 502 page or JSON.
    for browser in [true, false] {
        let (status, body, took) = through_gate(&h, &cookie, "/reset-early", browser).await;
        report.push(format!(
            "/reset-early browser={browser}: {status} in {took:?}"
        ));
        assert_eq!(status, 502, "{body:?}");
        let body = body.unwrap_or_default();
        if browser {
            assert!(body.contains("did not answer"), "{body}");
        } else {
            assert!(body.contains("upstream_unavailable"), "{body}");
        }
        assert!(took < Duration::from_secs(3), "{took:?}");
        healthy(&h, &cookie).await;
    }
    // Reset or closed after the headers: the status already went out, so the client must see a
    // broken transfer, never a short body passed off as complete.
    for path in ["/reset-mid", "/reset-chunked", "/close-mid"] {
        let (status, body, took) = through_gate(&h, &cookie, path, false).await;
        report.push(format!(
            "{path}: {status} in {took:?}, body {}",
            match &body {
                Ok(b) => format!("COMPLETE ({} bytes)", b.len()),
                Err(e) => format!("broken ({e})"),
            }
        ));
        assert!(
            status == 0 || status == 200 || status == 502,
            "{path}: {status}"
        );
        if status == 200 {
            assert!(
                body.is_err(),
                "{path}: a truncated upstream body reached the client as complete ({} bytes, ending {:?})",
                body.as_ref().map_or(0, String::len),
                body.as_ref().map_or("", |b| &b[b.len().saturating_sub(200)..])
            );
        }
        assert!(took < Duration::from_secs(3), "{path}: {took:?}");
        healthy(&h, &cookie).await;
    }

    // On the wire: after a chunked body breaks off, nothing more is written (no error body
    // spliced in, no final chunk), and the connection is closed.
    let mut raw = tokio::net::TcpStream::connect(h.gate_addr).await.unwrap();
    raw.write_all(
        format!(
            "GET /reset-chunked HTTP/1.1\r\nhost: gate\r\naccept: application/json\r\ncookie: _gatehouse={cookie}\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut wire = Vec::new();
    let read = tokio::time::timeout(HARD_CAP, raw.read_to_end(&mut wire)).await;
    assert!(read.is_ok(), "the gate kept the broken connection open");
    let wire = String::from_utf8_lossy(&wire);
    assert!(wire.starts_with("HTTP/1.1 200"), "{wire}");
    assert!(
        !wire.contains("upstream_unavailable"),
        "error spliced into the body: {wire}"
    );
    assert!(
        !wire.ends_with("0\r\n\r\n"),
        "a broken body was ended as complete: {wire}"
    );

    // An upstream that never answers: bounded by upstream.read_timeout, then a 502 (or 504).
    h.restart_with(|config| {
        config.replacen("[upstream]\n", "[upstream]\nread_timeout = \"2s\"\n", 1)
    })
    .await;
    let (status, body, took) = through_gate(&h, &cookie, "/hang", false).await;
    report.push(format!("/hang (read_timeout 2s): {status} in {took:?}"));
    assert!(status == 502 || status == 504, "{status} {body:?}");
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(5),
        "{took:?}"
    );
    healthy(&h, &cookie).await;

    let log = h.log();
    assert!(!log.contains("panicked"), "{log}");
    eprintln!("upstream faults:\n  {}", report.join("\n  "));
}

/// The mock's fault control: the old `?status=N[&oauth=true]` form still works, the new modes
/// say what they set, and nonsense is refused with a message saying what to send.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mock_fault_control_reports_and_validates() {
    let (_mock, addr) = start_mock().await;
    let c = plain_client();
    let post = |q: &'static str| {
        let c = c.clone();
        async move {
            let r = c.post(format!("http://{addr}{q}")).send().await.unwrap();
            let status = r.status().as_u16();
            (
                status,
                r.json::<serde_json::Value>().await.unwrap_or_default(),
            )
        }
    };
    let (s, v) = post("/_mock/fail?status=502&oauth=true").await;
    assert_eq!(
        (s, &v["mode"], &v["scope"], &v["oauth"]),
        (200, &"status".into(), &"all".into(), &true.into())
    );
    let (s, v) = post("/_mock/fail?mode=slow&delay_ms=250&scope=oauth").await;
    assert_eq!(
        (s, &v["mode"], &v["scope"], &v["delay_ms"]),
        (200, &"slow".into(), &"oauth".into(), &250.into())
    );
    for q in [
        "/_mock/fail?mode=malformed",
        "/_mock/fail?mode=drop",
        "/_mock/fail?mode=truncate",
    ] {
        assert_eq!(post(q).await.0, 200, "{q}");
    }
    let (s, v) = post("/_mock/fail?status=0").await;
    assert_eq!((s, &v["mode"]), (200, &"off".into()));
    for bad in [
        "/_mock/fail",
        "/_mock/fail?mode=slow",
        "/_mock/fail?mode=sideways",
        "/_mock/fail?status=700",
        "/_mock/fail?mode=drop&scope=nowhere",
    ] {
        let (s, v) = post(bad).await;
        assert_eq!(s, 400, "{bad}");
        assert!(
            v["message"]
                .as_str()
                .unwrap()
                .contains("mode=slow&delay_ms"),
            "{bad}: {v}"
        );
    }
    assert_eq!(post("/_mock/users/new-person?id=7654321").await.0, 200);
    assert_eq!(post("/_mock/users/NEW-person?id=7654322").await.0, 409);
    assert_eq!(post("/_mock/users/other?id=7654321").await.0, 409);
    assert_eq!(post("/_mock/users/databio?id=7654323").await.0, 409);
    assert_eq!(post("/_mock/users/no--way?id=7654324").await.0, 400);
    assert_eq!(post("/_mock/users/no-id").await.0, 400);
}
