//! Heap allocations per cookie-authenticated request, on the decision path the public API
//! reaches: `auth::access::check` (session cookie read and decrypted, path normalized, rule
//! found, person judged, role names), `strip_own_cookies` (the `Cookie` header the upstream
//! gets) and the identity assertion (a cache hit, as for every request but one per person per
//! 30 s). A counting allocator in this test binary only counts them; the bounds are the counts
//! measured when this test was written plus a small margin, so a regression fails here.
//!
//! Not counted: Pingora's own per-request work and the gate's identity headers
//! (`gate::headers`, private), which `benches/auth.rs` times with an equivalent.
//!
//! `cargo test --test allocations -- --nocapture` prints the counts.
//!
//! This file is its own test binary, not a module of `tests/integration/`: a global allocator is
//! process-wide, so there it would stand under every other integration test too.

use gatehouse::auth::access::{check, Access, DenyAs, Judge};
use gatehouse::clock::unix_now;
use gatehouse::config::load_str;
use gatehouse::runtime::Runtime;
use gatehouse::session::{cookies::strip_own_cookies, SessionClaims};
use gatehouse::tokens::assertion::AssertionSubject;
use std::future::Future;
use std::task::{Context, Poll, Waker};

/// Counts allocations by the current thread, so tests running in parallel do not disturb
/// each other.
#[path = "support/counting_alloc.rs"]
mod counting_alloc;

#[global_allocator]
static ALLOCATOR: counting_alloc::Counting = counting_alloc::Counting;

/// Allocations per call of `f`, averaged over a few calls after one warm-up call.
fn allocations_per_call<T>(mut f: impl FnMut() -> T) -> f64 {
    const CALLS: u64 = 50;
    drop(f());
    let before = counting_alloc::on_this_thread();
    for _ in 0..CALLS {
        drop(std::hint::black_box(f()));
    }
    (counting_alloc::on_this_thread() - before) as f64 / CALLS as f64
}

/// Every path measured here completes without waiting on I/O.
fn ready<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("the decision waited on I/O"),
    }
}

const CONFIG: &str = r#"
[server]
listen = "127.0.0.1:4180"
public_url = "http://127.0.0.1:4180"

[upstream]
url = "http://127.0.0.1:8080"

[github]
client_id = "id"
client_secret = "secret"

[session]
secrets = ["BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc="]

[access]
allowed_users = ["octocat", "monalisa", "bench"]
admin_users = ["bench"]

[[rules]]
path = "/public/**"
policy = "public"

[[rules]]
path = "/admin/**"
allow = ["role:admin"]
"#;

#[test]
fn allocations_per_cookie_authenticated_request() {
    let settings = load_str(CONFIG, "allocations.toml", &|_| None).expect("config");
    gatehouse::install_crypto_provider();
    let rt = Runtime::new(settings).expect("app");
    let now = unix_now();
    let claims = SessionClaims {
        user_id: "4242".into(),
        login: "bench".into(),
        name: None,
        email: Some("bench@example.com".into()),
        avatar_url: None,
        groups: vec!["acme".into(), "acme/ops".into()],
        roles: vec![],
        iat: now,
        exp: now + 3600,
        refreshed_at: now,
        github_token: None,
        github_refresh: None,
        session_id: None,
    };
    let cookie = format!(
        "theme=dark; _gatehouse={}; lang=en",
        rt.sessions.seal_json(&claims).expect("seal")
    );
    let req = http::Request::builder()
        .method("GET")
        .uri("/admin/dashboard?tab=1")
        .header("host", "127.0.0.1:4180")
        .header("cookie", &cookie)
        .body(())
        .expect("request")
        .into_parts()
        .0;

    let decide = || ready(check(&rt, &req, Judge::Request, now, DenyAs::Negotiate));
    let Access::Allow(granted) = decide() else {
        panic!("the session is refused")
    };
    let identity = granted.identity.expect("an identity");
    assert_eq!(identity.roles, ["viewer", "admin"]);

    let read = allocations_per_call(|| rt.sessions.read(&req.headers, now));
    let decision = allocations_per_call(decide);
    let strip = allocations_per_call(|| strip_own_cookies(&req.headers, "_gatehouse"));
    let signer = rt.tokens.assertion.as_ref().expect("assertions are on");
    let subject = AssertionSubject {
        sub: &identity.user_id,
        login: &identity.login,
        email: identity.email.as_deref(),
        groups: &identity.groups,
        roles: &identity.roles,
    };
    let assertion = allocations_per_call(|| signer.assertion(&subject, now).expect("sign"));
    let total = decision + strip + assertion;
    println!("allocations per cookie-authenticated request (public decision path):");
    println!("  Sessions::read                     {read:>5.1}");
    println!("  auth::access::check (incl. read)   {decision:>5.1}");
    println!("  strip_own_cookies                  {strip:>5.1}");
    println!("  AssertionSigner::assertion (hit)   {assertion:>5.1}");
    println!("  total                              {total:>5.1}");

    // The counts when this test was written (9, 13, 3, 0) plus a margin of 1 or 2, so a
    // regression shows here. A cache hit hands out an `Arc`: it never allocates.
    let bounds = [
        ("Sessions::read", read, 10.0),
        ("auth::access::check", decision, 15.0),
        ("strip_own_cookies", strip, 4.0),
        ("AssertionSigner::assertion (cache hit)", assertion, 0.0),
    ];
    for (what, measured, bound) in bounds {
        assert!(
            measured <= bound,
            "{what}: {measured} allocations per request, more than the bound {bound}"
        );
    }
}
