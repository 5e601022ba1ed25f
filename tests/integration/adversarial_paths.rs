//! Adversarial corpus: path confusion against a protected prefix, rule matching that must
//! ignore the query and fragment, and client-sent "original URL" headers. Requests go byte for
//! byte over a raw connection, where an HTTP client would have cleaned the path up.
//!
//! The gate under test hides `/echo/admin/**` from everyone but the admin (octocat), makes
//! `/echo/public/**` public, and needs a sign-in everywhere else.

use crate::common::*;
use std::collections::HashMap;

#[derive(Debug, Clone, Copy)]
enum Class {
    /// Decided by the admin rule: anonymous 401, monalisa 404, octocat 200 on an admin path.
    Admin,
    /// Refused as unsafe: 400 for everyone.
    Refused,
    /// Admin, or refused outright (either is safe).
    AdminOrRefused,
    /// Not the admin rule: a sign-in is needed, and the upstream gets exactly this path.
    Protected(&'static str),
    /// Public: anonymous 200, and the upstream gets exactly this path.
    Public(&'static str),
    /// Public with this path, or refused.
    PublicOrRefused(&'static str),
    /// Targets HTTP parsers disagree on: whatever happens, nobody but the admin reaches the
    /// admin area and nothing errs (checked for every class).
    Safe,
}

const PATHS: &[(&str, &str, Class)] = &[
    ("control: admin", "/echo/admin/x", Class::Admin),
    ("control: bare prefix", "/echo/admin", Class::Admin),
    (
        "control: public",
        "/echo/public/x",
        Class::Public("/echo/public/x"),
    ),
    ("control: elsewhere", "/echo/x", Class::Protected("/echo/x")),
    // Case.
    ("capital A", "/echo/Admin/x", Class::Admin),
    ("alternating case", "/echo/aDmIn/x", Class::Admin),
    ("all capitals", "/ECHO/ADMIN/x", Class::Admin),
    ("trailing slash", "/echo/admin/", Class::Admin),
    // Slashes and dot segments.
    ("leading double slash", "//echo/admin/x", Class::Admin),
    ("doubled slashes", "//echo//admin//x", Class::Admin),
    ("tripled slash", "/echo///admin/x", Class::Admin),
    ("dot segment", "/echo/./admin/x", Class::Admin),
    ("leading dot segment", "/./echo/admin", Class::Admin),
    (
        "dot-dot from public",
        "/echo/public/../admin/x",
        Class::Admin,
    ),
    (
        "dot then dot-dot",
        "/echo/public/./../admin/x",
        Class::Admin,
    ),
    ("dot-dot from elsewhere", "/echo/x/../admin/x", Class::Admin),
    (
        "dot-dot above the root",
        "/../../echo/admin/x",
        Class::Admin,
    ),
    (
        "dot-dot out and back in",
        "/echo/public/../../echo/admin/",
        Class::Admin,
    ),
    ("dot-dot ending at admin", "/echo/admin/x/..", Class::Admin),
    // Encoded dots and letters.
    (
        "encoded dot-dot",
        "/echo/public/%2e%2e/admin/x",
        Class::Admin,
    ),
    (
        "encoded dot-dot upper case",
        "/echo/public/%2E%2E/admin/x",
        Class::Admin,
    ),
    (
        "half-encoded dot-dot",
        "/echo/public/.%2e/admin/x",
        Class::Admin,
    ),
    (
        "other half-encoded dot-dot",
        "/echo/public/%2e./admin/x",
        Class::Admin,
    ),
    ("encoded dot", "/echo/%2e/admin/x", Class::Admin),
    ("encoded letter", "/echo/%61dmin/x", Class::Admin),
    ("encoded capital", "/echo/%41DMIN/x", Class::Admin),
    ("encoded last letter", "/echo/adm%69n/x", Class::Admin),
    (
        "encoded question mark then dot-dot",
        "/echo/public/x%3F/../../admin/x",
        Class::Admin,
    ),
    (
        "encoded hash then dot-dot",
        "/echo/public/x%23/../../admin/x",
        Class::Admin,
    ),
    // Absolute-form request targets.
    (
        "absolute form, our host",
        "http://{addr}/echo/admin/x",
        Class::AdminOrRefused,
    ),
    (
        "absolute form, other host",
        "http://evil.example/echo/public/../admin/x",
        Class::AdminOrRefused,
    ),
    // Encoded separators, parameters, NUL: refused.
    ("encoded slash", "/echo/admin%2Fx", Class::Refused),
    (
        "encoded slash lower case",
        "/echo/admin%2fx",
        Class::Refused,
    ),
    (
        "encoded slashes around dot-dot",
        "/echo/public%2F..%2Fadmin/x",
        Class::Refused,
    ),
    (
        "dot-dot encoded slash",
        "/echo/public/..%2Fadmin/x",
        Class::Refused,
    ),
    (
        "encoded backslashes",
        "/echo/a%5C..%5Cadmin",
        Class::Refused,
    ),
    (
        "raw backslashes",
        "/echo/public\\..\\admin\\x",
        Class::Refused,
    ),
    ("semicolon parameter", "/echo/admin;x", Class::Refused),
    (
        "jsessionid parameter",
        "/echo/admin;jsessionid=1/x",
        Class::Refused,
    ),
    (
        "semicolon before dot-dot",
        "/echo/public;/../admin/x",
        Class::Refused,
    ),
    (
        "Tomcat dot-dot-semicolon",
        "/echo/public/..;/admin/x",
        Class::Refused,
    ),
    ("encoded NUL", "/echo/admin%00", Class::Refused),
    (
        "encoded NUL before extension",
        "/echo/public/x%00.html",
        Class::Refused,
    ),
    (
        "encoded NUL in dot-dot",
        "/echo/public/%00/../admin",
        Class::Refused,
    ),
    ("bad escape", "/echo/%zz", Class::Refused),
    ("truncated escape", "/echo/admin%2", Class::Refused),
    ("lone percent", "/echo/admin%", Class::Refused),
    // Overlong UTF-8 spellings of '/', '\' and '.' (old decoders read them as the real thing).
    (
        "overlong slash",
        "/echo/public/..%c0%afadmin/x",
        Class::Refused,
    ),
    (
        "overlong slash upper case",
        "/echo/public/..%C0%AFadmin/x",
        Class::Refused,
    ),
    (
        "overlong dots",
        "/echo/public/%c0%ae%c0%ae/admin/x",
        Class::Refused,
    ),
    (
        "overlong backslash",
        "/echo/public/..%c1%9cadmin/x",
        Class::Refused,
    ),
    (
        "three-byte overlong slash",
        "/echo/public/..%e0%80%afadmin/x",
        Class::Refused,
    ),
    (
        "four-byte overlong slash",
        "/echo/public/..%f0%80%80%afadmin/x",
        Class::Refused,
    ),
    // Not a path, or not HTTP.
    // (`echo/admin/x` without the leading slash: see adversarial_smuggling.rs, the app receives exactly the judged target.)
    ("asterisk form", "*", Class::Refused),
    ("raw control byte", "/echo/admin\u{1}/x", Class::Safe),
    ("raw DEL", "/echo/admin\u{7f}/x", Class::Safe),
    ("raw space", "/echo/ad min/x", Class::Safe),
    ("raw space after the prefix", "/echo/admin /x", Class::Safe),
    // Segments IIS and some Java stacks fold away (`/admin.` read as `/admin`), and escaped
    // control bytes: refused unless the deciding rule opts in.
    ("trailing dot", "/echo/admin.", Class::Refused),
    ("trailing dots", "/echo/admin..", Class::Refused),
    ("trailing encoded space", "/echo/admin%20", Class::Refused),
    ("trailing encoded tab", "/echo/admin%09", Class::Refused),
    ("trailing dot mid-path", "/echo/admin./x", Class::Refused),
    ("trailing encoded dot", "/echo/admin%2e/x", Class::Refused),
    ("encoded line feed", "/echo/admin%0a", Class::Refused),
    // Look-alikes: not the admin rule, and the upstream gets exactly what was judged.
    (
        "longer name",
        "/echo/admins/x",
        Class::Protected("/echo/admins/x"),
    ),
    (
        "dot-dot after admin",
        "/echo/admin/../x",
        Class::Protected("/echo/x"),
    ),
    (
        "encoded dot-dot after admin",
        "/echo/admin/%2e%2e/x",
        Class::Protected("/echo/x"),
    ),
    (
        "dotless i",
        "/echo/adm%C4%B1n/x",
        Class::Protected("/echo/adm%C4%B1n/x"),
    ),
    ("raw non-ASCII", "/echo/\u{e4}dmin", Class::Safe),
    (
        "raw non-ASCII inside the admin area",
        "/echo/admin/\u{e4}",
        Class::Safe,
    ),
    (
        "raw non-ASCII after public dot-dot",
        "/echo/public/\u{e4}/../../admin/x",
        Class::Safe,
    ),
    // Double encoding is passed on verbatim: decided and forwarded as the same literal path.
    (
        "double-encoded dot-dot",
        "/echo/public/%252e%252e/admin/x",
        Class::PublicOrRefused("/echo/public/%252e%252e/admin/x"),
    ),
    (
        "double-encoded slash",
        "/echo/public/..%252fadmin",
        Class::PublicOrRefused("/echo/public/..%252fadmin"),
    ),
];

/// Query strings and fragments never take part in matching.
const QUERIES: &[(&str, &str, Class)] = &[
    (
        "query names admin",
        "/echo/public/x?next=/echo/admin/x",
        Class::Public("/echo/public/x"),
    ),
    (
        "query with dot-dots",
        "/echo/public/x?/../../admin/x",
        Class::Public("/echo/public/x"),
    ),
    (
        "query with encoded slashes",
        "/echo/public/x?a=%2F..%2Fadmin",
        Class::Public("/echo/public/x"),
    ),
    (
        "query with a semicolon",
        "/echo/public/x?a=1;b=2",
        Class::Public("/echo/public/x"),
    ),
    (
        "query names public",
        "/echo/admin/x?x=/echo/public/",
        Class::Admin,
    ),
    ("empty query", "/echo/admin/x?", Class::Admin),
    (
        "query of dot-dots",
        "/echo/admin/x?../../public",
        Class::Admin,
    ),
    (
        "fragment names public",
        "/echo/admin/x#/echo/public/x",
        Class::AdminOrRefused,
    ),
    (
        "fragment with dot-dots",
        "/echo/public/x#/../../admin/x",
        Class::PublicOrRefused("/echo/public/x"),
    ),
    (
        "query then fragment",
        "/echo/admin?a=b#/public",
        Class::AdminOrRefused,
    ),
];

async fn as_who(h: &Harness, target: &str, cookie: &str) -> RawResponse {
    as_who_bytes(h, target.as_bytes(), cookie).await
}

async fn as_who_bytes(h: &Harness, target: &[u8], cookie: &str) -> RawResponse {
    let mut request = b"GET ".to_vec();
    request.extend_from_slice(target);
    request.extend_from_slice(
        format!(
            " HTTP/1.1\r\nHost: {}\r\nAccept: application/json\r\nConnection: close\r\n{cookie}\r\n",
            h.gate_addr
        )
        .as_bytes(),
    );
    parse_raw(&raw_exchange(h.gate_addr, &request, std::time::Duration::from_secs(5)).await)
}

/// The path the upstream received, when the answer is the demo app's echo.
fn upstream_path(r: &RawResponse) -> Option<String> {
    r.json()["path"].as_str().map(str::to_string)
}

/// Is `path` (as the upstream got it) inside the admin area?
fn is_admin_area(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    lower == "/echo/admin" || lower.starts_with("/echo/admin/")
}

struct Who {
    anon: String,
    mona: String,
    octo: String,
}

async fn judge(h: &Harness, who: &Who, target: &str, class: Class) -> Result<(), String> {
    let anon = as_who(h, target, &who.anon).await;
    let mona = as_who(h, target, &who.mona).await;
    let octo = as_who(h, target, &who.octo).await;
    let statuses = (anon.status, mona.status, octo.status);
    let describe = |r: &RawResponse| {
        format!(
            "{} {}",
            r.status,
            r.body.chars().take(200).collect::<String>()
        )
    };
    // Whatever the class: nobody but the admin ever reaches the admin area, and nothing errs.
    for (name, r) in [("anonymous", &anon), ("monalisa", &mona)] {
        if r.status == 200 && upstream_path(r).is_some_and(|p| is_admin_area(&p)) {
            return Err(format!("{name} reached the admin area: {}", describe(r)));
        }
    }
    if [anon.status, mona.status, octo.status]
        .iter()
        .any(|s| *s >= 500 || *s == 0)
    {
        return Err(format!("error or no answer: {statuses:?}"));
    }
    let admin = || -> Result<(), String> {
        if (anon.status, mona.status, octo.status) != (401, 404, 200) {
            return Err(format!(
                "wanted the admin rule (401, 404, 200), got {statuses:?}"
            ));
        }
        // The demo app routes case-sensitively: `/ECHO/…` is its home page, not the echo.
        match upstream_path(&octo) {
            Some(p) if is_admin_area(&p) => Ok(()),
            Some(p) => Err(format!("admin decision, but the upstream got {p}")),
            None if octo.body.contains("/ECHO/ADMIN") => Ok(()),
            None => Err(format!("no echo: {}", describe(&octo))),
        }
    };
    let refused = || -> Result<(), String> {
        match statuses {
            (400, 400, 400) => Ok(()),
            _ => Err(format!("wanted 400 for everyone, got {statuses:?}")),
        }
    };
    let forwarded = |r: &RawResponse, want: &str| -> Result<(), String> {
        match upstream_path(r) {
            Some(p) if p == want && r.status == 200 => Ok(()),
            _ => Err(format!(
                "wanted 200 with the upstream on {want}: {}",
                describe(r)
            )),
        }
    };
    match class {
        Class::Admin => admin(),
        Class::Refused => refused(),
        Class::AdminOrRefused => admin().or_else(|_| refused()),
        Class::Protected(want) => {
            if anon.status != 401 {
                return Err(format!("anonymous got {}", describe(&anon)));
            }
            forwarded(&mona, want)?;
            forwarded(&octo, want)
        }
        Class::Public(want) => {
            forwarded(&anon, want)?;
            forwarded(&mona, want)
        }
        Class::PublicOrRefused(want) => forwarded(&anon, want).or_else(|_| refused()),
        Class::Safe => Ok(()),
    }
}

async fn gate_and_people() -> (Harness, Who) {
    let h = Harness::start(GateOptions {
        access_extra: ECHO_ADMIN_RULES.into(),
        ..GateOptions::default()
    })
    .await;
    let cookie = |r: reqwest::Response| format!("Cookie: _gatehouse={}\r\n", session_cookie(&r));
    let mona = cookie(h.sign_in(&browser(), "monalisa", "/").await);
    let octo = cookie(h.sign_in(&browser(), "octocat", "/").await);
    (
        h,
        Who {
            anon: String::new(),
            mona,
            octo,
        },
    )
}

async fn run_table(h: &Harness, who: &Who, table: &str, cases: &[(&str, &str, Class)]) {
    let mut failures = Vec::new();
    for (name, target, class) in cases {
        let target = target.replace("{addr}", &h.gate_addr.to_string());
        if let Err(e) = judge(h, who, &target, *class).await {
            failures.push(format!("[{name}] {target:?} ({class:?}): {e}"));
        }
    }
    println!(
        "table {table}: {} cases tried, {} passed",
        cases.len(),
        cases.len() - failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {} cases failed in {table}:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_confusion_against_a_protected_prefix() {
    let (h, who) = gate_and_people().await;
    run_table(&h, &who, "paths/confusion", PATHS).await;
}

/// Targets that are not UTF-8 (sent as bytes): overlong and stray bytes, raw.
const BYTE_PATHS: &[(&str, &[u8])] = &[
    ("raw overlong slash", b"/echo/public/..\xc0\xafadmin/x"),
    (
        "raw overlong dots",
        b"/echo/public/\xc0\xae\xc0\xae/admin/x",
    ),
    ("raw 0xFF in the admin area", b"/echo/admin/\xff"),
    (
        "raw 0xFF before dot-dot",
        b"/echo/public/\xff/../../admin/x",
    ),
    ("raw NUL", b"/echo/admin\x00/x"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_utf8_targets_never_reach_the_admin_area() {
    let (h, who) = gate_and_people().await;
    let mut failures = Vec::new();
    for (name, target) in BYTE_PATHS {
        for (who_name, cookie) in [("anonymous", &who.anon), ("monalisa", &who.mona)] {
            let r = as_who_bytes(&h, target, cookie).await;
            if r.status >= 500 || r.status == 0 {
                failures.push(format!(
                    "[{name}, {who_name}] error or no answer: {}",
                    r.status
                ));
            }
            if r.status == 200 && upstream_path(&r).is_some_and(|p| is_admin_area(&p)) {
                failures.push(format!(
                    "[{name}, {who_name}] reached the admin area: {}",
                    r.body
                ));
            }
        }
    }
    println!(
        "table paths/non-UTF-8 targets: {} cases tried, {} passed",
        BYTE_PATHS.len() * 2,
        BYTE_PATHS.len() * 2 - failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_and_fragment_never_take_part_in_matching() {
    let (h, who) = gate_and_people().await;
    run_table(&h, &who, "paths/query and fragment", QUERIES).await;
}

/// Headers some servers and frameworks take as "the URL really asked for".
const URL_HEADERS: &[&str] = &[
    "X-Original-URL",
    "X-Rewrite-URL",
    "X-Original-URI",
    "X-Forwarded-Uri",
    "X-Forwarded-Path",
    "X-Forwarded-Prefix",
    "X-Envoy-Original-Path",
    "X_Original_URL",
    "x-original-uri",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_sent_original_url_headers_change_nothing() {
    let (h, who) = gate_and_people().await;
    let mut tried = 0;
    let mut failures = Vec::new();
    for header in URL_HEADERS {
        // A public request claiming to be for the admin area: judged (and forwarded) as public,
        // and the claim never reaches the app.
        let r = as_who(
            &h,
            "/echo/public/x",
            &format!("{header}: /echo/admin/x\r\n"),
        )
        .await;
        tried += 1;
        let leaked = r.body.contains("/echo/admin");
        if r.status != 200 || upstream_path(&r).as_deref() != Some("/echo/public/x") || leaked {
            failures.push(format!(
                "[{header} on a public path] {} {}",
                r.status, r.body
            ));
        }
        // An admin request claiming to be public: still the admin rule.
        for (who_name, cookie, want) in
            [("anonymous", &who.anon, 401), ("monalisa", &who.mona, 404)]
        {
            let r = as_who(
                &h,
                "/echo/admin/x",
                &format!("{cookie}{header}: /echo/public/x\r\n"),
            )
            .await;
            tried += 1;
            if r.status != want {
                failures.push(format!(
                    "[{header} on the admin path, {who_name}] wanted {want}, got {} {}",
                    r.status, r.body
                ));
            }
        }
    }
    println!(
        "table paths/original-URL headers on proxied requests: {tried} cases tried, {} passed",
        tried - failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forward_auth_judges_the_named_path_only() {
    let (h, who) = gate_and_people().await;
    // (name, header lines, anonymous status, monalisa status)
    let cases: &[(&str, &str, u16, u16)] = &[
        ("control: public", "X-Original-URI: /echo/public/x\r\n", 202, 202),
        ("control: admin", "X-Original-URI: /echo/admin/x\r\n", 401, 403),
        ("control: elsewhere", "X-Forwarded-Uri: /echo/x\r\n", 401, 202),
        ("query names admin", "X-Original-URI: /echo/public/x?next=/echo/admin/x\r\n", 202, 202),
        ("query names public", "X-Original-URI: /echo/admin/x?next=/echo/public/x\r\n", 401, 403),
        ("fragment names public", "X-Original-URI: /echo/admin/x#/echo/public/x\r\n", 401, 403),
        ("fragment with dot-dots", "X-Original-URI: /echo/public/x#/../../admin/x\r\n", 202, 202),
        ("dot-dot", "X-Forwarded-Uri: /echo/public/../admin/x\r\n", 401, 403),
        ("encoded dot-dot", "X-Original-URI: /echo/public/%2e%2e/admin/x\r\n", 401, 403),
        ("case", "X-Original-URI: /echo/ADMIN/x\r\n", 401, 403),
        ("double slashes", "X-Original-URI: //echo//admin\r\n", 401, 403),
        ("encoded slash", "X-Original-URI: /echo/public%2F..%2Fadmin\r\n", 403, 403),
        ("semicolon", "X-Original-URI: /echo/public/..;/admin\r\n", 403, 403),
        ("overlong slash", "X-Original-URI: /echo/public/..%c0%afadmin\r\n", 403, 403),
        ("absolute URL", "X-Original-URI: http://evil.example/echo/public/x\r\n", 403, 403),
        ("empty", "X-Original-URI: \r\n", 403, 403),
        (
            "two spellings disagree (public first)",
            "X-Original-URI: /echo/public/x\r\nX-Forwarded-Uri: /echo/admin/x\r\n",
            403,
            403,
        ),
        (
            "two spellings disagree (admin first)",
            "X-Original-URI: /echo/admin/x\r\nX-Forwarded-Uri: /echo/public/x\r\n",
            403,
            403,
        ),
        (
            "X-Original-URL is not an input",
            "X-Original-URI: /echo/admin/x\r\nX-Original-URL: /echo/public/x\r\n",
            401,
            403,
        ),
        (
            "methods disagree",
            "X-Original-URI: /echo/public/x\r\nX-Original-Method: GET\r\nX-Forwarded-Method: DELETE\r\n",
            403,
            403,
        ),
        ("not a method", "X-Original-URI: /echo/x\r\nX-Original-Method: G(T\r\n", 403, 403),
    ];
    let mut failures = Vec::new();
    for (name, lines, anon_want, mona_want) in cases {
        for (who_name, cookie, want) in [
            ("anonymous", &who.anon, anon_want),
            ("monalisa", &who.mona, mona_want),
        ] {
            let r = as_who(&h, "/oauth2/auth", &format!("{cookie}{lines}")).await;
            if r.status != *want {
                failures.push(format!(
                    "[{name}, {who_name}] wanted {want}, got {} {}",
                    r.status, r.body
                ));
            }
        }
    }
    println!(
        "table paths/forward-auth original URI: {} cases tried, {} passed",
        cases.len() * 2,
        cases.len() * 2 - failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forward_auth_refuses_a_repeated_original_uri() {
    let (h, who) = gate_and_people().await;
    let mut statuses = HashMap::new();
    for (who_name, cookie) in [("anonymous", &who.anon), ("monalisa", &who.mona)] {
        let r = as_who(
            &h,
            "/oauth2/auth",
            &format!("{cookie}X-Original-URI: /echo/public/x\r\nX-Original-URI: /echo/admin/x\r\n"),
        )
        .await;
        statuses.insert(who_name, r.status);
    }
    println!("table paths/forward-auth repeated header: 2 cases tried");
    assert_eq!(statuses["anonymous"], 403, "{statuses:?}");
    assert_eq!(statuses["monalisa"], 403, "{statuses:?}");
}
