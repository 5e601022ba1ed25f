//! Per-request auth work (target: a median of at most 3 µs for a cookie-authenticated request).
//!
//! - `check/*`: the whole decision the gate makes in `request_filter` (`auth::access::check`):
//!   path normalization, rule lookup, reading the credential, judging, role names.
//! - `session/*`: the session cookie alone: find it in the `Cookie` header, decrypt (A256GCM),
//!   parse the claims (`Sessions::read`), or only decrypt (`KeyRing::open`).
//! - `bearer/*`, `api_key/*`: verifying an access token (HS256) and an API key (salted SHA-256).
//! - `assertion/*`: the signed identity sent upstream: a cache hit (every request of a person
//!   within 30 s) and a miss (an ES256 signature, once per person per 30 s).
//! - `headers/*`: removing Gatehouse's cookies from the `Cookie` header (public), and the
//!   identity/forwarding header rewrite. The gate's header functions (`gate::headers`) are
//!   private, so `headers/rewrite_equivalent` repeats the same Pingora calls they make (strip
//!   reserved names, insert 6 identity and 4 forwarding headers); it is an estimate of that
//!   cost, not the gate's code itself.
//! - `endpoint/forward_auth`: `/oauth2/auth` for nginx `auth_request` (decision + 202 reply).
//!
//! The policy decision at 10,000 rules and 100,000 users is `benches/policy.rs`.
//!
//! ```text
//! cargo bench --bench auth
//! cargo bench --bench auth -- --warm-up-time 1 --measurement-time 3   # quicker
//! ```

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a bench whose setup fails stops with the reason"
)]

use base64::Engine;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use gatehouse::auth::access::{check, Access, DenyAs, Judge};
use gatehouse::clock::unix_now;
use gatehouse::config::load_str;
use gatehouse::runtime::Runtime;
use gatehouse::session::{cookies::strip_own_cookies, SessionClaims};
use gatehouse::tokens::assertion::AssertionSubject;
use http::request::Parts;
use pingora::http::RequestHeader;
use std::future::Future;
use std::hint::black_box;
use std::task::{Context, Poll, Waker};

const SESSION_SECRET: &str = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=";
const HMAC_SECRET: &str = "CwsLCwsLCwsLCwsLCwsLCwsLCwsLCwsLCwsLCwsLCws=";
const PATH: &str = "/app/dashboard/settings";
/// Cookies a browser typically sends along with the session.
const OTHER_COOKIES: &str = "theme=dark; _ga=GA1.1.123456789.1700000000; lang=en";

/// Run a future that never waits on I/O (every benchmarked path is such) to completion.
fn ready<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("a benchmarked path waited on I/O"),
    }
}

/// The gate's config: 10 allowed users, a public prefix, an HS256 token key, one API key.
fn rt(api_key_hash: &str) -> Runtime {
    let users: Vec<String> = (1..10).map(|i| format!("\"user{i:02}\"")).collect();
    let text = format!(
        r#"
[server]
listen = "127.0.0.1:4180"
public_url = "http://127.0.0.1:4180"

[upstream]
url = "http://127.0.0.1:8080"

[github]
client_id = "bench"
client_secret = "bench"

[session]
secrets = ["{SESSION_SECRET}"]

[access]
allowed_users = [{users}, "bench"]
admin_users = ["bench"]

[tokens]
hmac_secret = "{HMAC_SECRET}"

[[api_keys]]
name = "bench"
hash = "{api_key_hash}"
roles = ["viewer"]

[[rules]]
path = "/public/**"
policy = "public"
"#,
        users = users.join(", "),
    );
    let settings = match load_str(&text, "bench.toml", &|_| None) {
        Ok(settings) => settings,
        Err(e) => panic!("the bench config is refused: {e}"),
    };
    gatehouse::install_crypto_provider();
    Runtime::new(settings).expect("the bench app starts")
}

fn claims(now: u64) -> SessionClaims {
    SessionClaims {
        user_id: "4242".into(),
        login: "bench".into(),
        name: None,
        email: Some("bench@example.com".into()),
        avatar_url: None,
        groups: vec![],
        roles: vec![],
        iat: now,
        exp: now + 3600,
        refreshed_at: now,
        github_token: None,
        github_refresh: None,
        session_id: None,
    }
}

fn request(path: &str, headers: &[(&str, &str)]) -> Parts {
    let mut b = http::Request::builder()
        .method("GET")
        .uri(path)
        .header("host", "127.0.0.1:4180");
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(()).expect("a valid request").into_parts().0
}

fn allowed_user(access: Access) -> bool {
    matches!(access, Access::Allow(g) if g.identity.is_some())
}

/// What `gate::headers::{strip_reserved, add_identity, add_forwarded}` do, with the same public
/// Pingora calls (those functions are private to the gate).
fn rewrite_equivalent(req: &mut RequestHeader, login: &str, id: &str, email: &str, roles: &str) {
    let doomed: Vec<http::HeaderName> = req
        .headers
        .keys()
        .filter(|n| {
            let n = n.as_str();
            n.starts_with("x-forwarded-") || n.starts_with("x-auth-request-") || n == "forwarded"
        })
        .cloned()
        .collect();
    for name in doomed {
        req.remove_header(&name);
    }
    let _ = req.insert_header("X-Forwarded-User", login);
    let _ = req.insert_header("X-Forwarded-User-Id", id);
    let _ = req.insert_header("X-Forwarded-Preferred-Username", login);
    let _ = req.insert_header("X-Forwarded-Email", email);
    let _ = req.insert_header("X-Forwarded-Roles", roles);
    let ip = std::net::IpAddr::from([127, 0, 0, 1]).to_string();
    let _ = req.insert_header("X-Forwarded-For", ip.as_str());
    let _ = req.insert_header("X-Real-IP", ip);
    let _ = req.insert_header("X-Forwarded-Proto", "http");
    let _ = req.insert_header("X-Forwarded-Host", "127.0.0.1:4180");
}

fn benches(c: &mut Criterion) {
    let (api_key, api_key_hash) = gatehouse::tokens::api_keys::new_key();
    let rt = rt(&api_key_hash);
    let now = unix_now();
    let claims = claims(now);
    let sealed = rt.sessions.seal_json(&claims).expect("seal");
    let cookie = format!("{OTHER_COOKIES}; _gatehouse={sealed}");
    let bearer = rt
        .tokens
        .access
        .issue(&claims, "bench", now)
        .expect("issue");
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("bench:{api_key}"));

    let with_cookie = request(PATH, &[("cookie", &cookie)]);
    let with_bearer = request(PATH, &[("authorization", &format!("Bearer {bearer}"))]);
    let with_key = request(PATH, &[("authorization", &format!("Basic {basic}"))]);
    let public = request("/public/app.js", &[]);
    let anonymous = request(PATH, &[("accept", "text/html,*/*")]);
    let forward = request(
        "/oauth2/auth",
        &[
            ("cookie", &cookie),
            ("x-original-uri", PATH),
            ("x-original-method", "GET"),
            ("x-forwarded-host", "app.example.com"),
        ],
    );

    let decide = |req: &Parts| ready(check(&rt, req, Judge::Request, now, DenyAs::Negotiate));
    assert!(allowed_user(decide(&with_cookie)), "the cookie is refused");
    assert!(
        allowed_user(decide(&with_bearer)),
        "the bearer token is refused"
    );
    assert!(allowed_user(decide(&with_key)), "the API key is refused");
    assert!(matches!(decide(&public), Access::Allow(g) if g.identity.is_none()));
    assert!(matches!(decide(&anonymous), Access::Deny(_)));

    for (name, req) in [
        ("check/cookie", &with_cookie),
        ("check/bearer", &with_bearer),
        ("check/api_key", &with_key),
        ("check/public", &public),
        ("check/anonymous_redirect", &anonymous),
    ] {
        c.bench_function(name, |b| b.iter(|| decide(black_box(req))));
    }
    c.bench_function("endpoint/forward_auth", |b| {
        b.iter(|| {
            ready(gatehouse::auth::handle(
                &rt,
                black_box(&forward),
                b"",
                now,
                None,
            ))
        })
    });

    assert_eq!(
        ready(rt.sessions.read(&with_cookie.headers, now))
            .ok()
            .flatten(),
        Some(claims.clone())
    );
    c.bench_function("session/read", |b| {
        b.iter(|| ready(rt.sessions.read(black_box(&with_cookie.headers), now)))
    });
    c.bench_function("session/open", |b| {
        b.iter(|| rt.sessions.ring.open(black_box(&sealed)))
    });

    assert!(rt.tokens.access.verify(&bearer).is_ok());
    c.bench_function("bearer/is_ours", |b| {
        b.iter(|| rt.tokens.access.is_ours(black_box(&bearer)))
    });
    c.bench_function("bearer/verify", |b| {
        b.iter(|| rt.tokens.access.verify(black_box(&bearer)))
    });

    assert!(rt.tokens.api_keys.verify("bench", &api_key).is_some());
    c.bench_function("api_key/verify", |b| {
        b.iter(|| rt.tokens.api_keys.verify("bench", black_box(&api_key)))
    });

    let signer = rt
        .tokens
        .assertion
        .as_ref()
        .expect("upstream.jwt_assertion is on by default");
    let roles = vec!["viewer".to_string(), "admin".to_string()];
    let subject = AssertionSubject {
        sub: "4242",
        login: "bench",
        email: Some("bench@example.com"),
        groups: &[],
        roles: &roles,
    };
    signer.assertion(&subject, now).expect("sign");
    c.bench_function("assertion/cache_hit", |b| {
        b.iter(|| signer.assertion(black_box(&subject), now))
    });
    // Each call is 31 s later than the last, so the cached token is never reused.
    let mut later = now;
    c.bench_function("assertion/sign", |b| {
        b.iter(|| {
            later += 31;
            signer.assertion(black_box(&subject), later)
        })
    });

    assert_eq!(
        strip_own_cookies(&with_cookie.headers, "_gatehouse").as_deref(),
        Some(OTHER_COOKIES.as_bytes())
    );
    c.bench_function("headers/strip_own_cookies", |b| {
        b.iter(|| strip_own_cookies(black_box(&with_cookie.headers), "_gatehouse"))
    });
    let mut upstream = RequestHeader::build("GET", PATH.as_bytes(), None).expect("header");
    for (k, v) in [
        ("host", "127.0.0.1:4180"),
        (
            "user-agent",
            "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/128.0",
        ),
        ("accept", "text/html,application/xhtml+xml,*/*;q=0.8"),
        ("accept-language", "en-US,en;q=0.5"),
        ("accept-encoding", "gzip, deflate, br"),
        ("cookie", OTHER_COOKIES),
        ("x-forwarded-user", "someone-else"),
    ] {
        upstream.append_header(k, v).expect("header");
    }
    c.bench_function("headers/rewrite_equivalent", |b| {
        b.iter_batched_ref(
            || upstream.clone(),
            |req| rewrite_equivalent(req, "bench", "4242", "bench@example.com", "viewer,admin"),
            BatchSize::SmallInput,
        )
    });
}

criterion_group!(auth_benches, benches);
criterion_main!(auth_benches);
