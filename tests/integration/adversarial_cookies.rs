//! Adversarial corpus: session cookies. Tampered, truncated, re-headed, expired, future-dated,
//! oversized, over-chunked and spliced cookies are sent to a protected path (as an API client
//! and as a browser) and to a public one. Each must count as no cookie at all (401 / 302 to
//! sign-in), never as an error (5xx) and never as someone.

use crate::common::*;
use base64::Engine;
use serde_json::{json, Value};
use std::time::Duration;

const RULES: &str = r#"
admin_users = ["octocat"]

[[rules]]
path = "/echo/public/**"
policy = "public"
"#;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

#[derive(Clone, Debug, PartialEq)]
enum Expect {
    /// Treated as no cookie: 401 for an API client, 302 to sign-in for a browser.
    Anonymous,
    /// No cookie, or refused for its size (431) before anything was read.
    AnonymousOrTooLarge,
    /// A genuine session of someone not admitted: 403.
    Forbidden,
    /// A genuine session: the upstream sees this login (and never the role `admin` unless the
    /// policy grants it).
    Allowed(&'static str),
    /// Two genuine values in one request: whichever is read, never a mix, never an error.
    OneOf(&'static str),
}

struct Case {
    name: String,
    /// `Cookie` (and other) header lines, each ending in CRLF.
    lines: String,
    expect: Expect,
}

fn cookie_line(value: &str) -> String {
    format!("Cookie: {value}\r\n")
}

fn session(value: &str) -> String {
    cookie_line(&format!("_gatehouse={value}"))
}

/// Change the base64url character at `at` to another valid one (flips the low bit of its value).
fn flip_char(token: &str, at: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut bytes = token.as_bytes().to_vec();
    let i = ALPHABET.iter().position(|c| *c == bytes[at]).unwrap();
    bytes[at] = ALPHABET[i ^ 1];
    String::from_utf8(bytes).unwrap()
}

/// Flip one bit of the decoded bytes of JWE part `part` at byte `at` (clamped), re-encoded.
fn flip_bit(token: &str, part: usize, at: usize) -> String {
    let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
    let mut raw = B64.decode(&parts[part]).unwrap();
    let at = at.min(raw.len() - 1);
    raw[at] ^= 0x01;
    parts[part] = B64.encode(raw);
    parts.join(".")
}

fn split_chunks(token: &str, n: usize) -> Vec<String> {
    let size = token.len().div_ceil(n);
    token
        .as_bytes()
        .chunks(size)
        .map(|c| String::from_utf8(c.to_vec()).unwrap())
        .collect()
}

fn chunk_lines(chunks: &[String]) -> String {
    let joined: Vec<String> = chunks
        .iter()
        .enumerate()
        .map(|(i, c)| format!("_gatehouse_{i}={c}"))
        .collect();
    cookie_line(&joined.join("; "))
}

fn claims_json(login: &str, id: u64) -> Value {
    serde_json::to_value(claims_for(login, id)).unwrap()
}

fn cases() -> Vec<Case> {
    let now = now();
    let kid_a = gatehouse::session::key_id(&KEY_A);
    let kid_b = gatehouse::session::key_id(&KEY_B);
    let good = mint(KEY_A, &claims_for("octocat", 583231));
    let other = mint(KEY_A, &claims_for("octocat", 583231));
    let mut cases = Vec::new();
    let mut add = |name: &str, lines: String, expect: Expect| {
        cases.push(Case {
            name: name.to_string(),
            lines,
            expect,
        })
    };

    // Controls: the genuine article, as Gatehouse and as another JOSE library would write it.
    add(
        "control: genuine",
        session(&good),
        Expect::Allowed("octocat"),
    );
    let typ = format!(r#"{{"alg":"dir","enc":"A256GCM","kid":"{kid_a}","typ":"JWT"}}"#);
    let claims = claims_json("octocat", 583231).to_string();
    add(
        "control: another library's header (typ)",
        session(&seal_with_header(KEY_A, &typ, claims.as_bytes())),
        Expect::Allowed("octocat"),
    );
    add(
        "control: two chunks",
        chunk_lines(&split_chunks(&good, 2)),
        Expect::Allowed("octocat"),
    );
    add(
        "control: not admitted",
        session(&mint(KEY_A, &claims_for("mallory", 1001))),
        Expect::Forbidden,
    );

    // Bit flips in every part: first, middle and last character and byte.
    let parts: Vec<&str> = good.split('.').collect();
    let names = ["header", "encrypted key", "iv", "ciphertext", "tag"];
    let mut offset = 0;
    for (i, part) in parts.iter().enumerate() {
        if part.is_empty() {
            let mut spliced: Vec<&str> = parts.clone();
            spliced[i] = "AAAAAAAAAAAAAAAAAAAAAA";
            add(
                &format!("{} part filled in", names[i]),
                session(&spliced.join(".")),
                Expect::Anonymous,
            );
        } else {
            for (pos, at, byte_at) in [
                ("first", 0, 0),
                ("middle", part.len() / 2, part.len() * 3 / 8),
                ("last", part.len() - 1, usize::MAX),
            ] {
                add(
                    &format!("char flip in {} ({pos})", names[i]),
                    session(&flip_char(&good, offset + at)),
                    Expect::Anonymous,
                );
                add(
                    &format!("bit flip in {} ({pos} byte)", names[i]),
                    session(&flip_bit(&good, i, byte_at)),
                    Expect::Anonymous,
                );
            }
        }
        offset += part.len() + 1;
    }

    // Truncated and re-shaped.
    for (name, value) in [
        ("truncated by one", good[..good.len() - 1].to_string()),
        ("truncated by ten", good[..good.len() - 10].to_string()),
        ("truncated to half", good[..good.len() / 2].to_string()),
        ("tag removed", good[..good.rfind('.').unwrap()].to_string()),
        ("tag emptied", good[..=good.rfind('.').unwrap()].to_string()),
        ("header only", parts[0].to_string()),
        ("extra part", format!("{good}.AAAA")),
        ("trailing dot", format!("{good}.")),
        (
            "iv and tag swapped",
            [parts[0], parts[1], parts[4], parts[3], parts[2]].join("."),
        ),
        ("ciphertext of another cookie", {
            let o: Vec<&str> = other.split('.').collect();
            [parts[0], parts[1], parts[2], o[3], parts[4]].join(".")
        }),
        ("padding added", format!("{good}==")),
        (
            "standard base64 alphabet",
            good.replace('-', "+").replace('_', "/"),
        ),
        ("percent-encoded dots", good.replace('.', "%2E")),
        (
            "a JWS-shaped value",
            "eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.".to_string(),
        ),
        ("garbage", "%%%....".to_string()),
        ("empty", String::new()),
        ("only dots", "....".to_string()),
    ] {
        add(name, session(&value), Expect::Anonymous);
    }

    // Headers a forger would write (the AAD matches the header, so only the header is wrong).
    let sealed = |header: &str, key: [u8; 32]| seal_with_header(key, header, claims.as_bytes());
    for (name, header, key) in [
        (
            "kid of a key not configured",
            format!(r#"{{"alg":"dir","enc":"A256GCM","kid":"{kid_b}"}}"#),
            KEY_A,
        ),
        (
            "random kid",
            r#"{"alg":"dir","enc":"A256GCM","kid":"AAAAAAAAAAA"}"#.to_string(),
            KEY_A,
        ),
        (
            "no kid",
            r#"{"alg":"dir","enc":"A256GCM"}"#.to_string(),
            KEY_A,
        ),
        (
            "null kid",
            r#"{"alg":"dir","enc":"A256GCM","kid":null}"#.to_string(),
            KEY_A,
        ),
        (
            "numeric kid",
            r#"{"alg":"dir","enc":"A256GCM","kid":1}"#.to_string(),
            KEY_A,
        ),
        ("our kid, attacker's key", standard_header(&KEY_A), KEY_B),
        (
            "our kid, attacker's key, embedded jwk",
            format!(
                r#"{{"alg":"dir","enc":"A256GCM","kid":"{kid_a}","jwk":{{"kty":"oct","k":"{}"}}}}"#,
                B64.encode(KEY_B)
            ),
            KEY_B,
        ),
        (
            "our kid, attacker's key, jku",
            format!(
                r#"{{"alg":"dir","enc":"A256GCM","kid":"{kid_a}","jku":"http://127.0.0.1:9/keys"}}"#
            ),
            KEY_B,
        ),
        (
            "path traversal kid",
            r#"{"alg":"dir","enc":"A256GCM","kid":"../../../../dev/null"}"#.to_string(),
            [0; 32],
        ),
        (
            "alg none",
            format!(r#"{{"alg":"none","enc":"A256GCM","kid":"{kid_a}"}}"#),
            KEY_A,
        ),
        (
            "alg None",
            format!(r#"{{"alg":"None","enc":"A256GCM","kid":"{kid_a}"}}"#),
            KEY_A,
        ),
        (
            "alg empty",
            format!(r#"{{"alg":"","enc":"A256GCM","kid":"{kid_a}"}}"#),
            KEY_A,
        ),
        (
            "alg missing",
            format!(r#"{{"enc":"A256GCM","kid":"{kid_a}"}}"#),
            KEY_A,
        ),
        (
            "alg DIR upper case",
            format!(r#"{{"alg":"DIR","enc":"A256GCM","kid":"{kid_a}"}}"#),
            KEY_A,
        ),
        (
            "alg A256KW",
            format!(r#"{{"alg":"A256KW","enc":"A256GCM","kid":"{kid_a}"}}"#),
            KEY_A,
        ),
        (
            "alg RSA-OAEP",
            format!(r#"{{"alg":"RSA-OAEP","enc":"A256GCM","kid":"{kid_a}"}}"#),
            KEY_A,
        ),
        (
            "alg duplicated none then dir",
            format!(r#"{{"alg":"none","alg":"dir","enc":"A256GCM","kid":"{kid_a}"}}"#),
            KEY_A,
        ),
        (
            "enc A128GCM",
            format!(r#"{{"alg":"dir","enc":"A128GCM","kid":"{kid_a}"}}"#),
            KEY_A,
        ),
        (
            "enc A256CBC-HS512",
            format!(r#"{{"alg":"dir","enc":"A256CBC-HS512","kid":"{kid_a}"}}"#),
            KEY_A,
        ),
        (
            "enc lower case",
            format!(r#"{{"alg":"dir","enc":"a256gcm","kid":"{kid_a}"}}"#),
            KEY_A,
        ),
        (
            "enc missing",
            format!(r#"{{"alg":"dir","kid":"{kid_a}"}}"#),
            KEY_A,
        ),
        (
            "zip DEF",
            format!(r#"{{"alg":"dir","enc":"A256GCM","kid":"{kid_a}","zip":"DEF"}}"#),
            KEY_A,
        ),
        (
            "crit",
            format!(r#"{{"alg":"dir","enc":"A256GCM","kid":"{kid_a}","crit":["exp"],"exp":1}}"#),
            KEY_A,
        ),
        (
            "header is an array",
            r#"["dir","A256GCM"]"#.to_string(),
            KEY_A,
        ),
        ("header is not JSON", "dir A256GCM".to_string(), KEY_A),
        (
            "header with a byte-order mark",
            format!("\u{feff}{}", standard_header(&KEY_A)),
            KEY_A,
        ),
    ] {
        add(
            &format!("header: {name}"),
            session(&sealed(&header, key)),
            Expect::Anonymous,
        );
    }
    // alg none with the claims in the clear where the ciphertext goes.
    let none = format!(
        "{}..{}.{}.",
        B64.encode(format!(
            r#"{{"alg":"none","enc":"A256GCM","kid":"{kid_a}"}}"#
        )),
        B64.encode([0u8; 12]),
        B64.encode(&claims)
    );
    add(
        "header: alg none, claims in the clear",
        session(&none),
        Expect::Anonymous,
    );

    // Claims: sealed correctly, but not a live session.
    let std_header = standard_header(&KEY_A);
    let claims_case = |f: &dyn Fn(&mut Value)| {
        let mut c = claims_json("octocat", 583231);
        f(&mut c);
        session(&seal_with_header(
            KEY_A,
            &std_header,
            c.to_string().as_bytes(),
        ))
    };
    for (name, lines, expect) in [
        (
            "expired a second ago",
            claims_case(&|c| {
                c["iat"] = json!(now - 7200);
                c["exp"] = json!(now - 1);
            }),
            Expect::Anonymous,
        ),
        (
            "expires this second",
            claims_case(&|c| c["exp"] = json!(now)),
            Expect::Anonymous,
        ),
        (
            "expired long ago",
            claims_case(&|c| {
                c["iat"] = json!(1);
                c["exp"] = json!(2);
            }),
            Expect::Anonymous,
        ),
        (
            "issued an hour in the future",
            claims_case(&|c| {
                c["iat"] = json!(now + 3600);
                c["exp"] = json!(now + 7200);
            }),
            Expect::Anonymous,
        ),
        (
            "issued two minutes in the future",
            claims_case(&|c| {
                c["iat"] = json!(now + 120);
                c["exp"] = json!(now + 3600);
            }),
            Expect::Anonymous,
        ),
        (
            "issued at u64::MAX",
            claims_case(&|c| {
                c["iat"] = json!(u64::MAX);
                c["exp"] = json!(u64::MAX);
            }),
            Expect::Anonymous,
        ),
        (
            "negative exp",
            claims_case(&|c| c["exp"] = json!(-1)),
            Expect::Anonymous,
        ),
        (
            "exp as a string",
            claims_case(&|c| c["exp"] = json!((now + 3600).to_string())),
            Expect::Anonymous,
        ),
        (
            "exp as a float",
            claims_case(&|c| c["exp"] = json!((now + 3600) as f64 + 0.5)),
            Expect::Anonymous,
        ),
        (
            "exp missing",
            claims_case(&|c| {
                c.as_object_mut().unwrap().remove("exp");
            }),
            Expect::Anonymous,
        ),
        (
            "sub missing",
            claims_case(&|c| {
                c.as_object_mut().unwrap().remove("sub");
            }),
            Expect::Anonymous,
        ),
        (
            "login missing",
            claims_case(&|c| {
                c.as_object_mut().unwrap().remove("login");
            }),
            Expect::Anonymous,
        ),
        (
            "sub as a number",
            claims_case(&|c| c["sub"] = json!(583231)),
            Expect::Anonymous,
        ),
        (
            "claims null",
            session(&seal_with_header(KEY_A, &std_header, b"null")),
            Expect::Anonymous,
        ),
        (
            "claims an array",
            session(&seal_with_header(KEY_A, &std_header, b"[]")),
            Expect::Anonymous,
        ),
        (
            "claims empty object",
            session(&seal_with_header(KEY_A, &std_header, b"{}")),
            Expect::Anonymous,
        ),
        (
            "claims not JSON",
            session(&seal_with_header(KEY_A, &std_header, b"octocat")),
            Expect::Anonymous,
        ),
        (
            "claims with trailing garbage",
            session(&seal_with_header(
                KEY_A,
                &std_header,
                format!("{claims}xyz").as_bytes(),
            )),
            Expect::Anonymous,
        ),
        (
            "claims empty",
            session(&seal_with_header(KEY_A, &std_header, b"")),
            Expect::Anonymous,
        ),
        (
            "a sign-in state where the session goes",
            session(&seal_with_header(
                KEY_A,
                &std_header,
                json!({"state": "s", "verifier": "v", "rd": "/", "exp": now + 600})
                    .to_string()
                    .as_bytes(),
            )),
            Expect::Anonymous,
        ),
        // Roles in the cookie are not believed: the policy computes them.
        (
            "roles claim says admin",
            claims_case(&|c| {
                c["login"] = json!("monalisa");
                c["sub"] = json!("2001");
                c["roles"] = json!(["admin"]);
            }),
            Expect::Allowed("monalisa"),
        ),
    ] {
        add(&format!("claims: {name}"), lines, expect);
    }

    // Size and chunks.
    add(
        "huge: 16 KB of garbage",
        session(&"A".repeat(16 * 1024)),
        Expect::AnonymousOrTooLarge,
    );
    add(
        "huge: 64 KB of garbage",
        session(&"A".repeat(64 * 1024)),
        Expect::AnonymousOrTooLarge,
    );
    add(
        "huge: 6 KB genuine-looking",
        session(&format!("{}.{}", good, "A".repeat(6000))),
        Expect::Anonymous,
    );
    let many: Vec<String> = (0..100).map(|_| "AAAA".to_string()).collect();
    add(
        "many chunks of garbage",
        chunk_lines(&many),
        Expect::AnonymousOrTooLarge,
    );
    add(
        "genuine split into 9 chunks (over the limit)",
        chunk_lines(&split_chunks(&good, 9)),
        Expect::Anonymous,
    );
    let a = split_chunks(&good, 2);
    let b = split_chunks(&other, 2);
    add(
        "chunk from another session",
        chunk_lines(&[a[0].clone(), b[1].clone()]),
        Expect::Anonymous,
    );
    add(
        "second chunk only",
        cookie_line(&format!("_gatehouse_1={}", a[1])),
        Expect::Anonymous,
    );
    let three = split_chunks(&good, 3);
    add(
        "middle chunk missing",
        cookie_line(&format!(
            "_gatehouse_0={}; _gatehouse_2={}",
            three[0], three[2]
        )),
        Expect::Anonymous,
    );
    add(
        "chunk repeated",
        cookie_line(&format!("_gatehouse_0={0}; _gatehouse_1={0}", a[0])),
        Expect::Anonymous,
    );
    add(
        "whole garbage beside genuine chunks",
        cookie_line(&format!(
            "_gatehouse=garbage; _gatehouse_0={}; _gatehouse_1={}",
            a[0], a[1]
        )),
        Expect::Anonymous,
    );
    add(
        "genuine whole beside garbage chunks",
        cookie_line(&format!(
            "_gatehouse={good}; _gatehouse_0=x; _gatehouse_1=y"
        )),
        Expect::Allowed("octocat"),
    );

    // Names, separators and headers.
    add(
        "name upper case",
        cookie_line(&format!("_GATEHOUSE={good}")),
        Expect::Anonymous,
    );
    add(
        "name with a suffix",
        cookie_line(&format!("_gatehousex={good}")),
        Expect::Anonymous,
    );
    add(
        "name with a prefix",
        cookie_line(&format!("x_gatehouse={good}")),
        Expect::Anonymous,
    );
    add(
        "comma instead of semicolon",
        cookie_line(&format!("a=1, _gatehouse={good}")),
        Expect::Anonymous,
    );
    add(
        "in a Cookie2 header",
        format!("Cookie2: _gatehouse={good}\r\n"),
        Expect::Anonymous,
    );
    add(
        "in a Set-Cookie request header",
        format!("Set-Cookie: _gatehouse={good}\r\n"),
        Expect::Anonymous,
    );
    add(
        "in an X-Cookie header",
        format!("X-Cookie: _gatehouse={good}\r\n"),
        Expect::Anonymous,
    );
    add(
        "garbage first, genuine second",
        cookie_line(&format!("_gatehouse=garbage; _gatehouse={good}")),
        Expect::OneOf("octocat"),
    );
    add(
        "genuine first, garbage second",
        cookie_line(&format!("_gatehouse={good}; _gatehouse=garbage")),
        Expect::OneOf("octocat"),
    );
    add(
        "not admitted first, admitted second",
        cookie_line(&format!(
            "_gatehouse={}; _gatehouse={good}",
            mint(KEY_A, &claims_for("mallory", 1001))
        )),
        Expect::OneOf("octocat"),
    );
    add(
        "two Cookie headers",
        format!("Cookie: a=1\r\nCookie: _gatehouse={good}\r\n"),
        Expect::OneOf("octocat"),
    );
    add(
        "quoted value",
        session(&format!("\"{good}\"")),
        Expect::OneOf("octocat"),
    );
    cases
}

async fn send(h: &Harness, path: &str, accept: &str, lines: &str) -> RawResponse {
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nAccept: {accept}\r\nConnection: close\r\n{lines}\r\n",
        h.gate_addr
    );
    parse_raw(&raw_exchange(h.gate_addr, request.as_bytes(), Duration::from_secs(5)).await)
}

fn judge(expect: &Expect, api: &RawResponse, nav: &RawResponse) -> Result<(), String> {
    if api.status >= 500 || nav.status >= 500 || api.status == 0 || nav.status == 0 {
        return Err(format!(
            "error or no answer: API {}, browser {}",
            api.status, nav.status
        ));
    }
    let anonymous = || -> Result<(), String> {
        let to_sign_in = nav
            .header("location")
            .is_some_and(|l| l.starts_with("/oauth2/start?rd="));
        match (api.status, nav.status, to_sign_in) {
            (401, 302, true) => Ok(()),
            _ => Err(format!(
                "not anonymous: API {}, browser {} to {:?}",
                api.status,
                nav.status,
                nav.header("location")
            )),
        }
    };
    let allowed = |login: &str| -> Result<(), String> {
        let seen = api.json();
        let user = seen["headers"]["x-forwarded-user"].as_str();
        let roles = seen["headers"]["x-forwarded-roles"].as_str().unwrap_or("");
        if api.status != 200 || user != Some(login) {
            return Err(format!("wanted {login}: {} {}", api.status, api.body));
        }
        if login != "octocat" && roles.split(',').any(|r| r == "admin") {
            return Err(format!("a role from the cookie was believed: {roles}"));
        }
        Ok(())
    };
    match expect {
        Expect::Anonymous => anonymous(),
        Expect::AnonymousOrTooLarge if api.status == 431 && nav.status == 431 => Ok(()),
        Expect::AnonymousOrTooLarge => anonymous(),
        Expect::Forbidden => match (api.status, nav.status) {
            (403, 403) => Ok(()),
            (a, n) => Err(format!("wanted 403: API {a}, browser {n}")),
        },
        Expect::Allowed(login) => allowed(login),
        Expect::OneOf(login) => match api.status {
            401 => anonymous(),
            403 => Ok(()),
            _ => allowed(login),
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_and_forged_session_cookies_are_no_cookie() {
    let h = Harness::start(GateOptions {
        access_extra: RULES.into(),
        ..GateOptions::default()
    })
    .await;
    let cases = cases();
    let mut failures = Vec::new();
    let mut public_failures = Vec::new();
    for case in &cases {
        let api = send(&h, "/echo/x", "application/json", &case.lines).await;
        let nav = send(&h, "/echo/x", "text/html", &case.lines).await;
        if let Err(e) = judge(&case.expect, &api, &nav) {
            failures.push(format!("[{}] {e}", case.name));
        }
        // On a public path the cookie is not even read, and never reaches the app.
        let public = send(&h, "/echo/public/x", "application/json", &case.lines).await;
        let result = match public.status {
            431 if case.expect == Expect::AnonymousOrTooLarge => Ok(()),
            200 => {
                let seen = public.json();
                let forwarded = seen["headers"]["cookie"].as_str().unwrap_or("");
                let ours = forwarded
                    .split(';')
                    .filter_map(|p| p.trim().split_once('=').map(|(n, _)| n))
                    .find(|n| *n == "_gatehouse" || n.starts_with("_gatehouse_"));
                match (seen["headers"]["x-forwarded-user"].as_str(), ours) {
                    (None, None) => Ok(()),
                    (user, ours) => Err(format!("user {user:?}, our cookie {ours:?} upstream")),
                }
            }
            s => Err(format!("public path answered {s}")),
        };
        if let Err(e) = result {
            public_failures.push(format!("[{}] {e}", case.name));
        }
    }
    println!(
        "table cookies/protected path (API + browser): {} cases tried, {} passed",
        cases.len(),
        cases.len() - failures.len()
    );
    println!(
        "table cookies/public path: {} cases tried, {} passed",
        cases.len(),
        cases.len() - public_failures.len()
    );
    failures.extend(public_failures);
    assert!(
        failures.is_empty(),
        "{} cookie cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    let log = h.log();
    assert!(!log.contains("panicked"), "{log}");
}
