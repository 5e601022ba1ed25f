//! Trust boundaries through the running gate: the app cannot set Gatehouse's cookies,
//! `check-config` and the logs never show a password inside a URL, client-sent text cannot forge
//! log lines or drive a terminal, the `gatehouse login` loopback takes only its own answer, and
//! a loopback client gets a code only with PKCE and after a same-origin confirmation.

mod common;

use common::*;
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
    let session_before = signed_in.get(h.url("/oauth2/userinfo")).send().await.unwrap();
    assert_eq!(session_before.status(), 200);
    let as_user = signed_in.get(h.url("/x")).send().await.unwrap();
    for r in [anonymous, as_user] {
        assert_eq!(r.status(), 200);
        let got = set_cookies(&r);
        assert_eq!(got, kept, "only the app's own cookies pass");
    }
    // The session survived the app's attempts to clear or replace it.
    let after = signed_in.get(h.url("/oauth2/userinfo")).send().await.unwrap();
    assert_eq!(after.status(), 200);

    tokio::time::sleep(Duration::from_millis(200)).await;
    let log = h.log();
    assert!(
        log.contains("the app tried to set one of Gatehouse's cookies")
            && log.contains("__Host-_gatehouse"),
        "{log}"
    );
    assert!(!log.contains("planted-value"), "values never logged:\n{log}");
}
