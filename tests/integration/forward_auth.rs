//! `/oauth2/auth` asked the way each proxy asks it. Traefik is not in the registries this project
//! installs from, so its documented forwardAuth request is sent by hand: `GET` to the address
//! (`/oauth2/auth?proxy=traefik`, `Host` = the gate), the client's headers, and
//! `X-Forwarded-Method/-Proto/-Host/-Uri/-For`. Caddy and nginx run for real in `deploy_files`.

use crate::common::*;

const URI: &str = "/private/page?x=1";
const RD: &str = "%2Fprivate%2Fpage%3Fx%3D1";

/// What Traefik sends for a client request of `method` to `URI`, from `client`'s own headers.
fn traefik(
    h: &Harness,
    client: &reqwest::Client,
    method: &str,
    accept: &str,
) -> reqwest::RequestBuilder {
    client
        .get(h.url("/oauth2/auth?proxy=traefik"))
        .header("accept", accept)
        .header("x-forwarded-method", method)
        .header("x-forwarded-proto", "http")
        .header("x-forwarded-host", h.gate_addr.to_string())
        .header("x-forwarded-uri", URI)
        .header("x-forwarded-for", "203.0.113.5")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traefik_forward_auth_request_shape() {
    let h = Harness::start(GateOptions::default()).await;
    let anon = plain_client();

    // A browser navigation, signed out: 302 to sign in, absolute (Traefik resolves a relative
    // Location against the gate's address), returning to the original URI.
    let r = traefik(&h, &anon, "GET", "text/html").send().await.unwrap();
    assert_eq!(r.status(), 302);
    assert_eq!(location(&r), h.url(&format!("/oauth2/start?rd={RD}")));

    // A script: 401 JSON whose sign_in_url returns to the original URI too.
    let r = traefik(&h, &anon, "GET", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        body["sign_in_url"],
        format!("/oauth2/start?rd={RD}"),
        "{body}"
    );
    // A form POST is not a navigation to redirect: the proxy hands on the 401.
    let r = traefik(&h, &anon, "POST", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // Without the query marker (a stock forwardAuth or Caddy forward_auth config),
    // X-Forwarded-Method says the same.
    let r = anon
        .get(h.url("/oauth2/auth"))
        .header("accept", "text/html")
        .header("x-forwarded-method", "GET")
        .header("x-forwarded-uri", URI)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    assert!(location(&r).ends_with(&format!("/oauth2/start?rd={RD}")));

    // Signed in: 202 with the identity headers, and no empty ones (no orgs, so no groups).
    let octocat = browser();
    h.sign_in(&octocat, "octocat", "/").await;
    let ok = traefik(&h, &octocat, "GET", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 202);
    assert_eq!(ok.headers()["x-auth-request-user"], "octocat");
    for (name, value) in ok.headers() {
        assert!(!value.is_empty(), "empty {name}");
    }
    assert!(ok.headers().get("x-auth-request-groups").is_none());

    // Signed in but not admitted: a page for the browser, JSON for a script.
    let mallory = browser();
    h.sign_in(&mallory, "mallory", "/").await;
    let page = traefik(&h, &mallory, "GET", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 403);
    assert!(page.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let json = traefik(&h, &mallory, "GET", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(json.status(), 403);
    assert!(json.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
}

/// nginx's `auth_request` treats anything but 2xx, 401 and 403 as an error: a browser asked
/// through it still gets 401, but the sign-in URL names the original URI.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_still_gets_401_naming_the_original_uri() {
    let h = Harness::start(GateOptions::default()).await;
    let r = plain_client()
        .get(h.url("/oauth2/auth"))
        .header("accept", "text/html")
        .header("x-original-uri", URI)
        .header("x-original-method", "GET")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["sign_in_url"], format!("/oauth2/start?rd={RD}"));
}
