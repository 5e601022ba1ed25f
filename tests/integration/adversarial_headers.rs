//! Adversarial corpus: client-sent identity headers. Every header an upstream might trust as
//! identity (or as the method or URL to act on) is sent in many spellings, anonymously and
//! signed in, on public and protected paths, byte for byte over a raw connection (HTTP clients
//! would normalize the names). The upstream must never see a value the client sent.

use crate::common::*;
use serde_json::Value;

const RULES: &str = r#"
[[rules]]
path = "/echo/public/**"
policy = "public"
"#;

/// The value every spoofed header carries; it must never show up at the upstream.
const MARKER: &str = "spoofed-adm1n";

/// Header names, as an attacker would write them canonically.
const NAMES: &[&str] = &[
    "X-Forwarded-User",
    "X-Forwarded-User-Id",
    "X-Forwarded-Email",
    "X-Forwarded-Preferred-Username",
    "X-Forwarded-Groups",
    "X-Forwarded-Roles",
    "X-Forwarded-Access-Token",
    "X-Forwarded-For",
    "X-Forwarded-Host",
    "X-Forwarded-Proto",
    "X-Forwarded-Port",
    "X-Forwarded-Prefix",
    "X-Forwarded-Uri",
    "X-Forwarded-Method",
    "X-Forwarded-Server",
    "X-Auth-Request-User",
    "X-Auth-Request-User-Id",
    "X-Auth-Request-Email",
    "X-Auth-Request-Preferred-Username",
    "X-Auth-Request-Groups",
    "X-Auth-Request-Roles",
    "X-Auth-Request-Access-Token",
    "X-Auth-Request-Redirect",
    "X-Gatehouse-Jwt-Assertion",
    "X-Gatehouse-User",
    "Remote-User",
    "Remote-Email",
    "Remote-Groups",
    "Remote-Name",
    "X-Remote-User",
    "X-Webauth-User",
    "X-Real-IP",
    "Forwarded",
    "X-HTTP-Method-Override",
    "X-HTTP-Method",
    "X-Method-Override",
    "X-Original-URL",
    "X-Original-URI",
    "X-Original-Method",
    "X-Rewrite-URL",
    "X-Envoy-Original-Path",
];

/// The request a proxy in front asks `/oauth2/auth` about: inputs there, not identity.
const FORWARD_AUTH_INPUTS: &[&str] = &[
    "X-Original-URI",
    "X-Forwarded-Uri",
    "X-Original-Method",
    "X-Forwarded-Method",
    "X-Forwarded-Host",
];

fn alternating(name: &str) -> String {
    name.chars()
        .enumerate()
        .map(|(i, c)| {
            if i % 2 == 0 {
                c.to_ascii_lowercase()
            } else {
                c.to_ascii_uppercase()
            }
        })
        .collect()
}

/// Named header blocks (`Name: value\r\n` lines) for one attacked name.
fn spellings(name: &str) -> Vec<(String, String)> {
    let lower = name.to_ascii_lowercase();
    let upper = name.to_ascii_uppercase();
    let under = name.replace('-', "_");
    let first_under = name.replacen('-', "_", 1);
    let line = |n: &str, v: &str| format!("{n}: {v}\r\n");
    vec![
        ("canonical".into(), line(name, MARKER)),
        ("lower case".into(), line(&lower, MARKER)),
        ("upper case".into(), line(&upper, MARKER)),
        ("alternating case".into(), line(&alternating(name), MARKER)),
        ("underscores".into(), line(&under, MARKER)),
        (
            "underscores lower".into(),
            line(&under.to_ascii_lowercase(), MARKER),
        ),
        ("one underscore".into(), line(&first_under, MARKER)),
        (
            "duplicated".into(),
            format!("{}{}", line(name, MARKER), line(name, MARKER)),
        ),
        (
            "dash and underscore twins".into(),
            format!("{}{}", line(name, MARKER), line(&under, MARKER)),
        ),
        (
            "comma-joined".into(),
            line(name, &format!("octocat, {MARKER}")),
        ),
        (
            "padded value".into(),
            line(name, &format!("   {MARKER}   ")),
        ),
        (
            "no space after colon".into(),
            format!("{name}:{MARKER}\r\n"),
        ),
        ("tab after colon".into(), format!("{name}:\t{MARKER}\r\n")),
        (
            "after a legitimate header".into(),
            format!("X-Request-Id: 1\r\n{}", line(&lower, MARKER)),
        ),
        // Malformed on the wire: refused (400), or the value must still never pass.
        (
            "space before colon".into(),
            format!("{name} : {MARKER}\r\n"),
        ),
        (
            "obs-fold continuation".into(),
            format!("X-Innocent: a\r\n {name}: {MARKER}\r\n"),
        ),
        (
            "folded value".into(),
            format!("{name}: octocat\r\n {MARKER}\r\n"),
        ),
    ]
}

/// `a-b_c` and `A_B-C` are one name to CGI-style upstreams.
fn folded(name: &str) -> String {
    name.to_ascii_lowercase().replace('_', "-")
}

#[derive(Clone, Copy, Debug)]
enum Scenario {
    AnonymousPublic,
    SignedInProtected,
    SignedInPublic,
    AnonymousProtected,
    ForwardAuthAnonymous,
    ForwardAuthSignedIn,
}

const SCENARIOS: &[Scenario] = &[
    Scenario::AnonymousPublic,
    Scenario::SignedInProtected,
    Scenario::SignedInPublic,
    Scenario::AnonymousProtected,
    Scenario::ForwardAuthAnonymous,
    Scenario::ForwardAuthSignedIn,
];

impl Scenario {
    fn path(self) -> &'static str {
        match self {
            Scenario::AnonymousPublic | Scenario::SignedInPublic => "/echo/public/x",
            Scenario::SignedInProtected | Scenario::AnonymousProtected => "/echo/x",
            Scenario::ForwardAuthAnonymous | Scenario::ForwardAuthSignedIn => "/oauth2/auth",
        }
    }

    fn is_forward_auth(self) -> bool {
        matches!(
            self,
            Scenario::ForwardAuthAnonymous | Scenario::ForwardAuthSignedIn
        )
    }

    fn signed_in(self) -> bool {
        matches!(
            self,
            Scenario::SignedInProtected | Scenario::SignedInPublic | Scenario::ForwardAuthSignedIn
        )
    }
}

/// Judge one answer. `Ok` when nothing the client sent under `attacked` reached the upstream
/// (or the request was refused outright as malformed).
fn judge(scenario: Scenario, attacked: &str, r: &RawResponse) -> Result<(), String> {
    if r.status == 400 {
        // A malformed header line refused before anything was forwarded.
        return Ok(());
    }
    match scenario {
        Scenario::AnonymousProtected => {
            return match r.status {
                401 => Ok(()),
                s => Err(format!("anonymous with spoofed headers got {s}")),
            }
        }
        Scenario::ForwardAuthAnonymous => {
            return match (r.status, r.header("x-auth-request-user")) {
                (401, None) => Ok(()),
                (s, user) => Err(format!("forward-auth answered {s}, user {user:?}")),
            }
        }
        Scenario::ForwardAuthSignedIn => {
            let users: Vec<&str> = r
                .headers
                .iter()
                .filter(|(n, _)| n == "x-auth-request-user")
                .map(|(_, v)| v.as_str())
                .collect();
            let leaked = r.headers.iter().any(|(_, v)| v.contains(MARKER));
            return match (r.status, users.as_slice(), leaked) {
                (202, ["octocat"], false) => Ok(()),
                (s, users, leaked) => Err(format!(
                    "forward-auth answered {s}, users {users:?}, marker echoed: {leaked}"
                )),
            };
        }
        _ => {}
    }
    if r.status != 200 {
        return Err(format!("status {}: {}", r.status, r.body));
    }
    let seen = r.json();
    let headers = seen["headers"]
        .as_object()
        .ok_or_else(|| format!("not an echo: {}", r.body))?;
    if Value::Object(headers.clone()).to_string().contains(MARKER) {
        return Err(format!("the marker reached the upstream: {seen}"));
    }
    for (name, value) in headers {
        if folded(name) == folded(attacked) && !value.is_string() {
            return Err(format!("{name} reached the upstream twice: {value}"));
        }
    }
    let user = headers.get("x-forwarded-user");
    match scenario {
        Scenario::SignedInProtected => {
            if user != Some(&Value::from("octocat"))
                || headers.get("x-forwarded-user-id") != Some(&Value::from("583231"))
            {
                return Err(format!("wrong identity upstream: {seen}"));
            }
        }
        _ => {
            if let Some(user) = user {
                return Err(format!("identity {user} upstream on a public path"));
            }
        }
    }
    // Any other underscore spelling of an identity header must be gone altogether.
    for name in headers.keys() {
        if name.contains('_') && folded(name).starts_with("x-forwarded-") {
            return Err(format!("{name} passed through"));
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_sent_identity_headers_never_reach_the_upstream() {
    let h = Harness::start(GateOptions {
        access_extra: RULES.into(),
        ..GateOptions::default()
    })
    .await;
    let signed = h.sign_in(&browser(), "octocat", "/").await;
    let cookie = format!("Cookie: _gatehouse={}\r\n", session_cookie(&signed));

    let mut tried = 0;
    let mut per_scenario = std::collections::BTreeMap::<String, usize>::new();
    let mut failures = Vec::new();
    for name in NAMES {
        for (spelling, lines) in spellings(name) {
            for scenario in SCENARIOS {
                if scenario.is_forward_auth() && FORWARD_AUTH_INPUTS.contains(name) {
                    // What forward-auth judges by design (tests/integration/policy_rules.rs, and
                    // the forwarded-URI table in adversarial_paths.rs).
                    continue;
                }
                let extra = if scenario.signed_in() {
                    format!("{cookie}{lines}")
                } else {
                    lines.clone()
                };
                let r = raw_get_with(&h, scenario.path(), &extra).await;
                tried += 1;
                *per_scenario.entry(format!("{scenario:?}")).or_default() += 1;
                if let Err(e) = judge(*scenario, name, &r) {
                    let e: String = e.chars().take(400).collect();
                    failures.push(format!("[{name} / {spelling} / {scenario:?}] {e}"));
                }
            }
        }
    }
    for (scenario, n) in &per_scenario {
        println!("table headers/{scenario}: {n} cases tried");
    }
    println!(
        "table headers (all): {tried} cases tried, {} passed ({} names × {} spellings × {} scenarios)",
        tried - failures.len(),
        NAMES.len(),
        spellings("X").len(),
        SCENARIOS.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {tried} header cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_spoofed_header_at_once_changes_nothing() {
    // All names, all spellings in one request: the upstream sees Gatehouse's values only.
    let h = Harness::start(GateOptions {
        access_extra: RULES.into(),
        ..GateOptions::default()
    })
    .await;
    let signed = h.sign_in(&browser(), "octocat", "/").await;
    let cookie = format!("Cookie: _gatehouse={}\r\n", session_cookie(&signed));
    let mut lines = String::new();
    for name in NAMES {
        for (spelling, block) in spellings(name) {
            // The well-formed spellings, kept under the gate's header budget.
            if matches!(
                spelling.as_str(),
                "canonical" | "alternating case" | "underscores" | "duplicated"
            ) {
                lines.push_str(&block);
            }
        }
    }
    let mut tried = 0;
    let mut failures = Vec::new();
    for scenario in SCENARIOS.iter().filter(|s| !s.is_forward_auth()) {
        let extra = if scenario.signed_in() {
            format!("{cookie}{lines}")
        } else {
            lines.clone()
        };
        let r = raw_get_with(&h, scenario.path(), &extra).await;
        tried += 1;
        if let Err(e) = judge(*scenario, "X-Forwarded-User", &r) {
            failures.push(format!("[all at once / {scenario:?}] {e}"));
        }
    }
    println!(
        "table headers/all-at-once: {tried} cases tried, {} passed",
        tried - failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
