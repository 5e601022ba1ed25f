//! Sign-in on every host the gate serves: a `[[routes]]` host other than `public_url`'s signs
//! in on the public host (GitHub has one callback URL) and is handed the session back with a
//! one-time code bound to the browser that started. Two real host names for loopback:
//! `public_url` is `http://127.0.0.1:PORT`, the route's host is `localhost`.

use crate::common::*;
use serde_json::Value;

/// A gate whose public URL is on 127.0.0.1 with a route for `localhost` (the demo app).
async fn two_host_gate() -> Harness {
    let upstream = start_upstream().await;
    Harness::start(GateOptions {
        access_extra: format!(
            "[[routes]]\nname = \"on-localhost\"\nhost = \"localhost\"\nupstream = \"http://{upstream}\"\n"
        ),
        ..GateOptions::default()
    })
    .await
}

/// `http://localhost:PORT{path}`: the same listener under the other host name.
fn on_localhost(h: &Harness, path: &str) -> String {
    format!("http://localhost:{}{path}", h.gate_addr.port())
}

fn absolute(base: &str, location: &str) -> String {
    url::Url::parse(base)
        .unwrap()
        .join(location)
        .unwrap()
        .to_string()
}

/// From a navigation to `start` (a URL on localhost) to the hand-off URL the public host's
/// callback sends the browser to, with `login` consenting at the mock GitHub.
async fn sign_in_from_localhost(
    h: &Harness,
    b: &reqwest::Client,
    path: &str,
    login: &str,
) -> String {
    let page = navigate(b, on_localhost(h, path)).await;
    assert_eq!(page.status(), 302, "signed out: sent to sign in");
    let start = absolute(&on_localhost(h, path), &location(&page));
    assert!(
        start.starts_with(&on_localhost(h, "/oauth2/start?")),
        "{start}"
    );
    // The other host binds this browser and sends it to the public host's start.
    let bound = b.get(&start).send().await.unwrap();
    assert_eq!(bound.status(), 302);
    let public_start = location(&bound);
    assert!(
        public_start.starts_with(&h.url("/oauth2/start?")),
        "{public_start}"
    );
    let to_github = b.get(&public_start).send().await.unwrap();
    assert_eq!(to_github.status(), 302);
    let callback = consent(b, &location(&to_github), login).await;
    assert!(
        callback.starts_with(&h.url("/oauth2/callback?")),
        "{callback}"
    );
    let back = b.get(&callback).send().await.unwrap();
    assert_eq!(back.status(), 302, "{}", h.log());
    let handoff = location(&back);
    assert!(
        handoff.starts_with(&on_localhost(h, "/oauth2/handoff?code=")),
        "{handoff}"
    );
    handoff
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_host_signs_in_through_the_public_host_and_lands_where_it_started() {
    let h = two_host_gate().await;
    let b = browser();
    let handoff = sign_in_from_localhost(&h, &b, "/echo/x?a=1&b=2", "octocat").await;
    let landed = b.get(&handoff).send().await.unwrap();
    assert_eq!(landed.status(), 302, "{}", h.log());
    assert_eq!(
        location(&landed),
        "/echo/x?a=1&b=2",
        "the whole query survives"
    );
    let (status, echoed) = echo(&b, on_localhost(&h, "/echo/x"), &[]).await;
    assert_eq!(status, 200, "{echoed}");
    assert_eq!(
        upstream_header(&echoed, "x-forwarded-user"),
        Some("octocat")
    );
    assert_eq!(
        echoed["headers"]["host"],
        format!("localhost:{}", h.gate_addr.port())
    );
    // Signed in on the public host too: no second GitHub round trip there.
    let (status, _) = echo(&b, h.url("/echo/y"), &[]).await;
    assert_eq!(status, 200);
    // The code was used up.
    let again = b.get(&handoff).send().await.unwrap();
    assert_eq!(again.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handoff_code_signs_in_only_the_browser_that_started_it() {
    let h = two_host_gate().await;
    // Mallory signs in and sends her hand-off link to Alice (login CSRF): Alice's browser
    // does not hold the binding cookie, so she is not signed in as Mallory.
    let mallory = browser();
    let handoff = sign_in_from_localhost(&h, &mallory, "/echo/x", "mallory").await;
    let alice = browser();
    let r = alice.get(&handoff).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(set_cookies(&r)
        .iter()
        .all(|c| !c.starts_with("_gatehouse=")));
    let (status, _) = echo(&alice, on_localhost(&h, "/echo/x"), &[]).await;
    assert_eq!(status, 401);
    assert!(h.log().contains("handoff_refused"), "{}", h.log());

    // A code made for localhost is refused on the public host, and the token endpoint does
    // not know hand-off codes at all.
    let second = sign_in_from_localhost(&h, &mallory, "/echo/x", "mallory").await;
    let code = query_of(&second)["code"].clone();
    let on_public = mallory
        .get(h.url(&format!("/oauth2/handoff?code={code}")))
        .send()
        .await
        .unwrap();
    assert_eq!(on_public.status(), 400);
    let (status, body) = post_json(
        &h,
        "/oauth2/token",
        serde_json::json!({"code": code, "client_redirect_uri": on_localhost(&h, "/echo/x")}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_public_start_returns_only_to_hosts_the_routes_serve() {
    let h = two_host_gate().await;
    let port = h.gate_addr.port();
    let challenge = "a".repeat(43);
    for rd in [
        format!("http://evil.example:{port}/x"),
        format!("http://localhost.evil.example:{port}/x"),
        format!("https://localhost:{port}/x"),
        format!("http://localhost:{}/x", port + 1),
        format!("http://user@localhost:{port}/x"),
        format!("http://localhost:{port}//evil.example/x"),
    ] {
        let b = browser();
        let start = b
            .get(h.url("/oauth2/start"))
            .query(&[("rd", rd.as_str()), ("handoff", challenge.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(start.status(), 302, "{rd}");
        let callback = consent(&b, &location(&start), "octocat").await;
        let back = b.get(&callback).send().await.unwrap();
        let landed = location(&back);
        assert!(
            landed == "/" || landed.starts_with(&on_localhost(&h, "/oauth2/handoff?")),
            "{rd} → {landed}"
        );
        if landed != "/" {
            // localhost is served, so these two hand off (to its `/`: their paths are not
            // safe), and the hand-off still needs the binding this browser never got.
            assert!(
                rd.contains("user@") || rd.contains("//evil"),
                "{rd} was accepted"
            );
            let finish = b.get(&landed).send().await.unwrap();
            assert_eq!(finish.status(), 400, "{rd}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_navigation_on_the_route_host_is_judged_and_answered_there() {
    // API clients on the other host get JSON, never a hand-off.
    let h = two_host_gate().await;
    let r = plain_client()
        .get(on_localhost(&h, "/echo/x"))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "unauthorized", "{body}");
}
