//! Adversarial corpus: open redirects. Every `rd` below is walked through the real sign-in
//! (`/oauth2/start?rd=…` → mock GitHub → `/oauth2/callback`) and through sign-out and the
//! sign-in page; wherever the browser is sent must be a path on the gate's own origin.

use crate::common::tally::Tally;
use crate::common::*;
use std::time::Duration;

/// Lift the sign-in rate limit: this corpus signs in well over a hundred times a minute.
const NO_LIMITS: &str = "\n[limits]\nauth_per_minute = 0\n";

/// Named `rd` values; `{gate}` is the gate's origin (`http://127.0.0.1:PORT`), `{addr}` its
/// `host:port`.
const VECTORS: &[(&str, &str)] = &[
    ("protocol-relative", "//evil.com"),
    ("three slashes", "///evil.com"),
    ("four slashes", "////evil.com"),
    ("slash backslash", "/\\evil.com"),
    ("backslash slash", "\\/evil.com"),
    ("two backslashes", "\\\\evil.com"),
    ("slash backslash slash", "/\\/evil.com"),
    ("encoded slashes after slash", "/%2F%2Fevil.com"),
    ("encoded slashes lower case", "/%2f%2fevil.com"),
    ("encoded slashes only", "%2F%2Fevil.com"),
    ("encoded backslash", "/%5Cevil.com"),
    ("double-encoded slashes", "/%252F%252Fevil.com"),
    ("triple-encoded slashes", "/%25252F%25252Fevil.com"),
    ("encoded percent digits", "/%25%32%46%25%32%46evil.com"),
    ("encoded tab", "/%09/evil.com"),
    ("raw tab", "/\t/evil.com"),
    ("tab after slashes", "//%09evil.com"),
    ("raw CR LF", "/\r\n/evil.com"),
    (
        "encoded CR LF header injection",
        "/%0d%0aLocation:%20https://evil.com",
    ),
    ("encoded LF set-cookie", "/%0aSet-Cookie:%20x=1"),
    ("NUL byte", "/\u{0}//evil.com"),
    ("encoded NUL", "/%00//evil.com"),
    ("line separator U+2028", "/\u{2028}/evil.com"),
    ("space then slashes", "/ /evil.com"),
    ("leading space", " //evil.com"),
    ("https without slashes", "https:evil.com"),
    ("http without slashes", "http:evil.com"),
    ("https one slash", "https:/evil.com"),
    ("absolute https", "https://evil.com"),
    ("absolute upper case", "HTTPS://EVIL.COM/"),
    ("ftp scheme", "ftp://evil.com/"),
    ("localhost suffix", "http://localhost.evil.com"),
    ("loopback suffix", "http://127.0.0.1.evil.com/"),
    ("our origin as a prefix", "{gate}.evil.com/"),
    ("our origin as userinfo", "http://{addr}@evil.com/"),
    ("userinfo on our origin", "http://evil.com@{addr}/"),
    ("encoded at in userinfo", "http://{addr}%40evil.com/"),
    ("backslash userinfo", "//evil.com\\@{addr}/"),
    ("at sign alone", "@evil.com"),
    ("other port on our host", "http://127.0.0.1:1/"),
    ("IPv6 loopback", "http://[::1]/"),
    ("javascript", "javascript:alert(1)"),
    ("javascript mixed case", "JaVaScRiPt:alert(document.domain)"),
    ("javascript with tab", "java\tscript:alert(1)"),
    ("javascript after slashes", "//javascript:alert(1)"),
    ("data URL", "data:text/html,<script>alert(1)</script>"),
    ("vbscript", "vbscript:msgbox(1)"),
    ("dot slash slash", "/.//evil.com"),
    ("dot-dot slash slash", "/..//evil.com"),
    ("encoded dot-dot slash slash", "/%2e%2e//evil.com"),
    ("dot then backslash", "/./\\evil.com"),
    ("encoded dot-dot and slashes", "/%2e%2e%2f%2fevil.com"),
    ("climb above the root", "/a/../..//evil.com"),
    ("ideographic full stop in host", "//evil\u{3002}com"),
    ("encoded ideographic full stop", "//evil%E3%80%82com"),
    ("fullwidth solidus pair", "\u{FF0F}\u{FF0F}evil.com"),
    ("slash then fullwidth solidus", "/\u{FF0F}evil.com"),
    ("fullwidth full stop path", "/\u{FF0E}\u{FF0E}/evil.com"),
    ("right-to-left override", "/\u{202E}moc.live//"),
    ("our origin then slashes", "{gate}//evil.com"),
    ("our origin then backslash", "{gate}/\\evil.com"),
    ("own endpoint start", "/oauth2/start?rd=//evil.com"),
    (
        "own endpoint sign_out",
        "/OAuth2/sign_out?rd=https://evil.com",
    ),
    ("own endpoint callback", "/oauth2/callback?code=x&state=y"),
    ("very long", "/{long}"),
    ("empty", ""),
    ("bare host", "evil.com"),
    ("fragment only", "#//evil.com"),
    ("query only", "?next=//evil.com"),
];

/// `rd` values that must survive: the gate keeps same-origin paths as they are.
const KEPT: &[(&str, &str, &str)] = &[
    ("plain path", "/dashboard", "/dashboard"),
    ("path and query", "/a/b?tab=1&x=%2F", "/a/b?tab=1&x=%2F"),
    ("at sign in path", "/@evil.com", "/@evil.com"),
    (
        "ideographic full stop in path",
        "/\u{3002}evil.com",
        "/%E3%80%82evil.com",
    ),
    (
        "same-origin absolute",
        "{gate}/deep/link?q=1",
        "/deep/link?q=1",
    ),
    ("the who-am-I page", "/oauth2/me", "/oauth2/me"),
];

fn expand(template: &str, h: &Harness) -> String {
    template
        .replace("{gate}", &h.gate)
        .replace("{addr}", &h.gate_addr.to_string())
        .replace("{long}", &"a".repeat(3000))
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// The raw `Location` (it may hold bytes that are not ASCII).
fn raw_location(r: &reqwest::Response) -> Option<String> {
    r.headers()
        .get("location")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

/// Where `location` sends a browser that is on `gate`: `Ok` only for a path on the gate's own
/// origin that no lenient parser, no decoding step and no later `pathname`-based redirect can
/// turn into another origin.
fn same_origin_path(location: &str, gate: &str) -> Result<(), String> {
    if !location.starts_with('/') || location.starts_with("//") {
        return Err("not an origin-relative path".into());
    }
    if location
        .chars()
        .any(|c| c == '\\' || c.is_control() || c.is_whitespace())
    {
        return Err("backslash, control or white space".into());
    }
    let mut current = location.to_string();
    for _ in 0..4 {
        let decoded = percent_encoding::percent_decode_str(&current)
            .decode_utf8_lossy()
            .into_owned();
        if decoded.starts_with("//")
            || decoded.starts_with("/\\")
            || decoded.chars().any(|c| c == '\\' || c.is_control())
        {
            return Err(format!("decodes to {decoded:?}"));
        }
        if decoded == current {
            break;
        }
        current = decoded;
    }
    let base = url::Url::parse(gate).unwrap();
    let resolved = base.join(location).map_err(|e| e.to_string())?;
    if resolved.origin() != base.origin() {
        return Err(format!("resolves to {resolved}"));
    }
    if resolved.path().starts_with("//") {
        return Err(format!(
            "resolves to the path {:?}, which names another host",
            resolved.path()
        ));
    }
    Ok(())
}

/// Walk the whole sign-in with `rd` (as the query parameter, or as `X-Auth-Request-Redirect`);
/// where the callback finally sends the browser.
async fn landing(h: &Harness, rd: &str, via_header: bool) -> Result<String, String> {
    let client = browser();
    let mut start = client.get(h.url("/oauth2/start"));
    if via_header {
        let value = reqwest::header::HeaderValue::from_str(rd)
            .map_err(|_| "not sendable as a header".to_string())?;
        start = start.header("x-auth-request-redirect", value);
    } else {
        start = start.query(&[("rd", rd)]);
    }
    let start = start.send().await.map_err(|e| e.to_string())?;
    if start.status() != 302 {
        return Err(format!("start answered {}", start.status()));
    }
    let authorize = raw_location(&start).ok_or("start without Location")?;
    if !authorize.starts_with(&h.mock_url) {
        return Err(format!("start sent the browser to {authorize}"));
    }
    let callback = consent(&client, &authorize, "octocat").await;
    let done = client
        .get(callback)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if done.status() != 302 {
        return Err(format!("callback answered {}", done.status()));
    }
    raw_location(&done).ok_or_else(|| "callback without Location".into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_redirects_after_sign_in_land_same_origin() {
    let h = Harness::start(GateOptions {
        access_extra: NO_LIMITS.into(),
        ..GateOptions::default()
    })
    .await;
    let mut rd_query = Tally::new("redirects/after-sign-in (rd query)");
    let mut rd_header = Tally::new("redirects/after-sign-in (X-Auth-Request-Redirect)");
    for (name, template) in VECTORS {
        let rd = expand(template, &h);
        let result = match landing(&h, &rd, false).await {
            Ok(location) => same_origin_path(&location, &h.gate)
                .map_err(|e| format!("rd {rd:?} → Location {location:?}: {e}")),
            Err(e) => Err(format!("rd {rd:?}: {e}")),
        };
        rd_query.check_result(name, result);
        // Header values cannot hold CR, LF or NUL: those vectors only exist in the query.
        if reqwest::header::HeaderValue::from_str(&rd).is_ok() {
            let result = match landing(&h, &rd, true).await {
                Ok(location) => same_origin_path(&location, &h.gate)
                    .map_err(|e| format!("header {rd:?} → Location {location:?}: {e}")),
                Err(e) => Err(format!("header {rd:?}: {e}")),
            };
            rd_header.check_result(name, result);
        }
    }
    let mut kept = Tally::new("redirects/kept same-origin targets");
    for (name, template, want) in KEPT {
        let rd = expand(template, &h);
        let result = match landing(&h, &rd, false).await {
            // Non-ASCII may come back raw or percent-encoded: the same URL to a browser.
            Ok(location) if decode(&location) == decode(want) => Ok(()),
            Ok(location) => Err(format!("rd {rd:?} → {location:?}, wanted {want:?}")),
            Err(e) => Err(e),
        };
        kept.check_result(name, result);
    }
    assert!(rd_query.tried() >= 30);
    rd_query.finish();
    rd_header.finish();
    kept.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_out_and_sign_in_page_targets_stay_same_origin() {
    let h = Harness::start(GateOptions {
        access_extra: NO_LIMITS.into(),
        ..GateOptions::default()
    })
    .await;
    let client = plain_client();
    let mut sign_out = Tally::new("redirects/sign_out");
    let mut sign_in_page = Tally::new("redirects/sign_in page link");
    for (name, template) in VECTORS {
        let rd = expand(template, &h);
        for method in [reqwest::Method::GET, reqwest::Method::POST] {
            let r = client
                .request(method.clone(), h.url("/oauth2/sign_out"))
                .query(&[("rd", rd.as_str())])
                .send()
                .await
                .unwrap();
            let result = match (r.status().as_u16(), raw_location(&r)) {
                (302 | 303, Some(location)) => same_origin_path(&location, &h.gate)
                    .map_err(|e| format!("{method} rd {rd:?} → Location {location:?}: {e}")),
                (status, _) => Err(format!("{method} rd {rd:?}: status {status}")),
            };
            sign_out.check_result(&format!("{name} ({method})"), result);
        }
        // The sign-in page links to /oauth2/start?rd=…: that rd must already be safe.
        let page = client
            .get(h.url("/oauth2/sign_in"))
            .query(&[("rd", rd.as_str())])
            .header("accept", "text/html")
            .send()
            .await
            .unwrap();
        let status = page.status().as_u16();
        let body = page.text().await.unwrap();
        let result = match body.split_once("/oauth2/start?rd=") {
            Some((_, rest)) if status == 200 => {
                let encoded = rest.split(['"', '&', '\'', '<']).next().unwrap_or("");
                let decoded: String =
                    url::form_urlencoded::parse(format!("rd={encoded}").as_bytes())
                        .map(|(_, v)| v.into_owned())
                        .next()
                        .unwrap_or_default();
                same_origin_path(&decoded, &h.gate)
                    .map_err(|e| format!("rd {rd:?} → page links rd {decoded:?}: {e}"))
            }
            _ => Err(format!("rd {rd:?}: status {status}, no start link")),
        };
        sign_in_page.check_result(name, result);
    }
    sign_out.finish();
    sign_in_page.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_redirects_of_protected_paths_stay_same_origin() {
    // A browser navigation to a protected path gets `/oauth2/start?rd=<that path>`; the path
    // is attacker-chosen (sent raw, as a link could make a browser send it).
    let h = Harness::start(GateOptions {
        access_extra: NO_LIMITS.into(),
        ..GateOptions::default()
    })
    .await;
    let mut table = Tally::new("redirects/login redirect of protected paths");
    for (name, target) in [
        ("protocol-relative path", "//evil.com/"),
        ("backslash path", "/\\evil.com/"),
        ("encoded slashes", "/%2F%2Fevil.com"),
        ("dot-dot slashes", "/..//evil.com"),
        ("absolute-form target", "http://evil.com/x"),
        ("absolute-form our host", "http://{addr}//evil.com"),
    ] {
        let target = target.replace("{addr}", &h.gate_addr.to_string());
        let request = format!(
            "GET {target} HTTP/1.1\r\nHost: {}\r\nAccept: text/html\r\nConnection: close\r\n\r\n",
            h.gate_addr
        );
        let r =
            parse_raw(&raw_exchange(h.gate_addr, request.as_bytes(), Duration::from_secs(5)).await);
        let result = match (r.status, r.header("location")) {
            (302, Some(location)) => {
                let rd = location.strip_prefix("/oauth2/start?rd=").map(|enc| {
                    url::form_urlencoded::parse(format!("rd={enc}").as_bytes())
                        .map(|(_, v)| v.into_owned())
                        .next()
                        .unwrap_or_default()
                });
                match rd {
                    Some(rd) => match landing(&h, &rd, false).await {
                        Ok(landed) => same_origin_path(&landed, &h.gate)
                            .map_err(|e| format!("{target} → rd {rd:?} → {landed:?}: {e}")),
                        Err(e) => Err(e),
                    },
                    None => Err(format!("{target}: Location {location:?}")),
                }
            }
            (400 | 404, _) => Ok(()),
            (status, _) => Err(format!("{target}: status {status}")),
        };
        table.check_result(name, result);
    }
    table.finish();
}
