//! The fuzz targets' bodies: each takes arbitrary bytes and panics when an invariant breaks.
//!
//! Shared by `fuzz/fuzz_targets/*.rs` (libFuzzer, via cargo-fuzz) and by the main crate's
//! `tests/integration/fuzz_smoke.rs` (which compiles this file with `#[path]` and replays the
//! corpus, the saved regressions and a short in-process mutational run). Only `gatehouse`'s public
//! API and crates the main crate already depends on are used here.
//!
//! Fixtures are fixed (keys, issuer, clock, environment), so a failing input replays the same
//! way everywhere. The seed corpus holds a few *valid* cookies and bearers made with these
//! fixtures (see `seed_corpus`); they are the only inputs that may open or verify.

use gatehouse::auth::redirect::safe_redirect;
use gatehouse::config::{AccessSigning, SessionKey};
use gatehouse::policy::path::{normalize, PathError};
use gatehouse::session::{cookies, KeyRing, SessionClaims};
use gatehouse::tokens::{self, AccessClaims, AccessTokens};
use http::header::COOKIE;
use http::{HeaderMap, HeaderValue};
use std::sync::OnceLock;
use url::Url;

/// A target's body: panics when an invariant breaks.
pub type Target = fn(&[u8]);

/// Every target, by the name of its `fuzz/fuzz_targets/<name>.rs` and `fuzz/corpus/<name>/`.
pub const TARGETS: &[(&str, Target)] = &[
    ("session_cookie", session_cookie),
    ("bearer_token", bearer_token),
    ("config_load", config_load),
    ("path_normalize", path_normalize),
    ("safe_redirect", safe_redirect_target),
];

// ---------------------------------------------------------------------------------------------
// Fixtures

/// Session keys: the first seals, both open (a rotation).
pub const SESSION_KEYS: [[u8; 32]; 2] = [[0x11; 32], [0x22; 32]];
pub const COOKIE_NAME: &str = "_gatehouse";
/// The clock the session target reads cookies at.
pub const NOW: u64 = 1_900_000_000;
/// `sub` of every claim set the seed generator seals or signs: nothing else may ever open.
pub const SEED_SUB: &str = "4242424242";
pub const SEED_FAMILY: &str = "fuzz-seed-family";

pub const ISSUER: &str = "https://gate.fuzz.test";
pub const HS256_SECRET: &[u8] = b"fuzz-hs256-secret-0123456789abcdef0123456789";
/// A throwaway P-256 key (PKCS#8), for the ES256 verifier only.
pub const ES256_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgCcFNqrIuwIBM5Vzs
4cgu+nODfAukfe9C8fSSB+s9KUGhRANCAAQ77jGW+1MOEx5lxRa48Xsq5ltx+GZ+
XkdUoJR/Ny/W6l4BsOxPHIuQSQ8FI0UPGlCk8LipAaQPK188FxAXgxSM
-----END PRIVATE KEY-----
";
/// Seed bearers are issued at this (past) time with a century-long lifetime, so they stay
/// valid for `verify`, which reads the real clock (`iat` in the future and `exp` in the past
/// are both refused).
pub const BEARER_ISSUED_AT: u64 = 1_700_000_000;
pub const BEARER_TTL: u64 = 100 * 365 * 24 * 3600;

/// The fixed environment of the config target. The secret values are markers that must never
/// show up in the printed effective config.
pub const CONFIG_ENV: &[(&str, &str)] = &[
    ("GH_CLIENT_ID", "fuzz-client-id"),
    ("GH_CLIENT_SECRET", "FUZZ-ENV-CLIENT-SECRET-7f3a"),
    (
        "GATEHOUSE_SESSION_SECRET",
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
    ),
    ("GITHUB_USERS", "octocat, monalisa"),
    ("PORT", "4180"),
    ("HOST", "127.0.0.1"),
];
const ENV_SECRET_MARKERS: &[&str] = &[
    "FUZZ-ENV-CLIENT-SECRET-7f3a",
    "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
];

pub fn config_env(name: &str) -> Option<String> {
    CONFIG_ENV
        .iter()
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// (public URL, proxy prefix) pairs the redirect target checks every input against.
pub const REDIRECT_SETUPS: &[(&str, &str)] = &[
    ("https://app.example.com", "/oauth2"),
    ("http://127.0.0.1:4180", "/oauth2"),
    ("https://gate.test:8443/", "/_auth"),
];

/// A key ring with these keys (the first seals).
pub fn key_ring(keys: &[[u8; 32]]) -> KeyRing {
    let keys: Vec<SessionKey> = keys.iter().map(|k| SessionKey(*k)).collect();
    KeyRing::new(&keys)
}

/// The ring the session target opens cookies with: [`SESSION_KEYS`].
pub fn ring() -> &'static KeyRing {
    static RING: OnceLock<KeyRing> = OnceLock::new();
    RING.get_or_init(|| key_ring(&SESSION_KEYS))
}

/// Seal claims the way `Sessions` does (JSON, then JWE).
pub fn seal_claims(ring: &KeyRing, claims: &SessionClaims) -> String {
    ring.seal(&serde_json::to_vec(claims).unwrap()).unwrap()
}

/// The HS256 and the ES256 verifier.
pub fn verifiers() -> &'static [(&'static str, AccessTokens); 2] {
    static VERIFIERS: OnceLock<[(&'static str, AccessTokens); 2]> = OnceLock::new();
    VERIFIERS.get_or_init(|| {
        let hs = AccessTokens::new(
            &AccessSigning::Hs256(vec![HS256_SECRET.to_vec()]),
            ISSUER,
            BEARER_TTL,
        );
        let es = AccessTokens::new(
            &AccessSigning::Es256(vec![ES256_PEM.to_string()]),
            ISSUER,
            BEARER_TTL,
        );
        [
            ("HS256", hs.expect("HS256 fixture")),
            ("ES256", es.expect("ES256 fixture")),
        ]
    })
}

/// The claims every seed cookie carries (`login` tells seeds apart).
pub fn seed_claims(login: &str) -> SessionClaims {
    // From JSON rather than a struct literal, so new optional fields need no change here.
    serde_json::from_value(serde_json::json!({
        "sub": SEED_SUB,
        "login": login,
        "name": "Fuzz Seed",
        "email": format!("{login}@example.com"),
        "groups": ["databio", "databio/core"],
        "roles": ["admin"],
        "iat": NOW - 3600,
        "exp": NOW + 3600,
        "refreshed_at": NOW - 60,
        "ght": "gho_fuzzseedtoken",
    }))
    .expect("seed claims")
}

// ---------------------------------------------------------------------------------------------
// 1. Session cookies: JWE open, Cookie header reading, stripping our cookies before forwarding.

/// A successful open is only possible for a token sealed with the fixture keys, and only the
/// seed generator sealed any: so the plaintext must be seed claims.
fn assert_seed_plaintext(plain: &[u8], what: &str) {
    let claims: SessionClaims = serde_json::from_slice(plain)
        .unwrap_or_else(|e| panic!("{what} opened to something that is not seed claims: {e}"));
    assert_eq!(claims.user_id, SEED_SUB, "{what} opened to foreign claims");
}

pub fn session_cookie(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let ring = ring();

    // The JWE layer alone, over the whole input.
    if let Ok(plain) = ring.open(&text) {
        assert_seed_plaintext(&plain, "KeyRing::open");
    }
    // A ring with no keys opens nothing, ever.
    assert!(KeyRing::new(&[]).open(&text).is_err());

    // The input as Cookie header lines (one header per line, as HTTP/2 may send them).
    let mut headers = HeaderMap::new();
    for line in data.split(|&b| b == b'\n') {
        if let Ok(v) = HeaderValue::from_bytes(line) {
            headers.append(COOKIE, v);
        }
    }
    if let Some(value) = cookies::read_session_value(&headers, COOKIE_NAME) {
        assert!(
            !value.contains(';'),
            "a cookie value holds a ';': {value:?}"
        );
        assert!(
            value.len() <= data.len(),
            "the joined value is longer than the input"
        );
        // What `Sessions::read` does with it in cookie mode: open, parse, check the clock.
        if let Ok(plain) = ring.open(&value) {
            assert_seed_plaintext(&plain, "the session cookie");
            let claims: SessionClaims = serde_json::from_slice(&plain).unwrap();
            assert!(claims.is_live(NOW), "a seed cookie is not live");
        }
    }

    // Stripping: exactly our cookies (and unparseable pairs) go, every other pair stays, byte
    // for byte and in order, whatever bytes its neighbours hold.
    let names: Vec<&[u8]> = cookies::raw_cookie_pairs(&headers)
        .map(|(n, _)| n)
        .collect();
    let others: Vec<&[u8]> = names
        .iter()
        .copied()
        .filter(|n| !cookies::is_gatehouse_cookie(n, COOKIE_NAME))
        .collect();
    match cookies::strip_own_cookies(&headers, COOKIE_NAME) {
        None => assert_eq!(names, others, "a cookie of ours was not stripped"),
        Some(kept) => {
            let value = HeaderValue::from_bytes(&kept)
                .unwrap_or_else(|e| panic!("the stripped header is not a header value: {e}"));
            let mut again = HeaderMap::new();
            if !kept.is_empty() {
                again.append(COOKIE, value);
            }
            let kept_names: Vec<&[u8]> =
                cookies::raw_cookie_pairs(&again).map(|(n, _)| n).collect();
            assert_eq!(kept_names, others, "stripping changed other cookies");
            assert!(
                cookies::read_session_value(&again, COOKIE_NAME).is_none(),
                "a session cookie survived stripping"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 2. Bearer tokens: pinned-algorithm verification, and the cheap shape/issuer peeks.

pub fn bearer_token(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let dots = text.bytes().filter(|&b| b == b'.').count();

    let shaped = tokens::is_jwt_shaped(&text);
    if shaped {
        assert_eq!(dots, 2, "is_jwt_shaped with {dots} dots");
        assert!(text.is_ascii());
    }
    let issuer = tokens::unverified_issuer(&text);
    if issuer.is_some() {
        assert_eq!(dots, 2, "unverified_issuer found an iss with {dots} dots");
    }

    let mut verified_by = Vec::new();
    for (alg, verifier) in verifiers() {
        assert_eq!(
            verifier.is_ours(&text),
            issuer.as_deref() == Some(ISSUER),
            "is_ours disagrees with unverified_issuer"
        );
        let Ok(claims) = verifier.verify(&text) else {
            continue;
        };
        verified_by.push(*alg);
        assert_seed_bearer(&claims, alg);
        assert!(shaped, "{alg} verified a token that is not JWT-shaped");
        assert_eq!(issuer.as_deref(), Some(ISSUER), "{alg}: iss peek disagrees");
    }
    assert!(
        verified_by.len() < 2,
        "one token verified under both algorithms: {verified_by:?}"
    );
}

/// Only the seed generator ever signed with the fixture keys.
fn assert_seed_bearer(claims: &AccessClaims, alg: &str) {
    assert_eq!(claims.user_id, SEED_SUB, "{alg} verified foreign claims");
    assert_eq!(claims.family, SEED_FAMILY, "{alg} verified foreign claims");
    assert_eq!(claims.issuer, ISSUER);
    assert_eq!(claims.audience, "gatehouse");
}

// ---------------------------------------------------------------------------------------------
// 3. Config: the load + validate path of `check-config` (`runtime::load_file` minus the read):
//    the sections and the compiled roles and rules.

pub fn config_load(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let parsed: Option<toml::Value> = toml::from_str(&text).ok();
    if let Some(value) = &parsed {
        if reaches_outside(value) {
            return;
        }
    }
    match gatehouse::runtime::load_str(&text, "fuzz.toml", &config_env) {
        Err(e) => {
            assert!(!e.problems.is_empty(), "a config error without problems");
            for p in &e.problems {
                assert!(!p.key.is_empty(), "a problem without a key: {p:?}");
                assert!(!p.problem.is_empty(), "a problem without a text: {p:?}");
            }
            let shown = e.to_string();
            assert!(shown.starts_with("fuzz.toml has "));
        }
        Ok(settings) => {
            assert!(parsed.is_some(), "invalid TOML was accepted");
            assert!(
                !settings.session.keys.is_empty(),
                "valid without a session key"
            );
            // What `check-config` prints: must work, and never show a secret.
            let shown = toml::to_string_pretty(&settings.config)
                .unwrap_or_else(|e| panic!("the effective config cannot be printed: {e}"));
            for marker in ENV_SECRET_MARKERS {
                if !text.contains(marker) {
                    assert!(
                        !shown.contains(marker),
                        "check-config would print a secret from the environment"
                    );
                }
            }
        }
    }
}

/// Would validating this config open a device file or ask DNS? Validation reads the files a
/// config names (TLS, CA, keys) and resolves upstream host names; the fuzzer must not read
/// `/dev/zero` forever or send DNS queries, so such inputs are skipped. Strings are checked both
/// as written and `${VAR}`-expanded with the fixed environment.
fn reaches_outside(value: &toml::Value) -> bool {
    match value {
        toml::Value::String(s) => {
            let expanded = expand_like_config(s);
            [s.as_str(), expanded.as_str()].iter().any(|s| {
                let special = ["/dev", "/proc", "/sys", "/run"]
                    .iter()
                    .any(|d| s.contains(d));
                special || names_a_dns_host(s)
            })
        }
        toml::Value::Array(items) => items.iter().any(reaches_outside),
        toml::Value::Table(table) => table.values().any(reaches_outside),
        _ => false,
    }
}

fn names_a_dns_host(s: &str) -> bool {
    let Ok(url) = Url::parse(s.trim()) else {
        return false;
    };
    match url.host() {
        Some(url::Host::Domain(d)) => !d.eq_ignore_ascii_case("localhost"),
        _ => false,
    }
}

/// `${VAR}` / `${VAR:-default}` / `$$` the way src/config/expand.rs does it, near enough to
/// see what a string becomes.
fn expand_like_config(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(stripped) = after.strip_prefix('$') {
            out.push('$');
            rest = stripped;
        } else if let Some(body) = after.strip_prefix('{') {
            let Some(end) = body.find('}') else {
                out.push_str(body);
                return out;
            };
            let inner = &body[..end];
            let (name, default) = match inner.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (inner, None),
            };
            match (config_env(name).filter(|v| !v.is_empty()), default) {
                (Some(v), _) => out.push_str(&v),
                (None, Some(d)) => out.push_str(d),
                (None, None) => {}
            }
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

// ---------------------------------------------------------------------------------------------
// 4. Path normalization.

fn is_control(b: u8) -> bool {
    b < 0x20 || b == 0x7F
}

/// Percent-decode once, at the byte level, as an upstream might.
fn percent_decode_once(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

pub fn path_normalize(data: &[u8]) {
    let raw = String::from_utf8_lossy(data);
    let raw: &str = &raw;
    let normal = match normalize(raw) {
        Err(PathError::NotAbsolute) => {
            assert!(!raw.starts_with('/'), "NotAbsolute for {raw:?}");
            return;
        }
        Err(PathError::ControlByte) => {
            assert!(raw.bytes().any(is_control), "ControlByte for {raw:?}");
            return;
        }
        Err(PathError::BadPercentEncoding) => {
            assert!(raw.contains('%'), "BadPercentEncoding for {raw:?}");
            return;
        }
        Ok(n) => n,
    };
    let path: &str = &normal.path;
    assert!(raw.starts_with('/'));
    assert!(!raw.bytes().any(is_control), "a control byte was accepted");

    // Shape: absolute, no empty or dot segments (a trailing slash is allowed), no control bytes.
    assert!(path.starts_with('/'), "{raw:?} -> {path:?}");
    assert!(!path.contains("//"), "{raw:?} -> {path:?} has '//'");
    for segment in path.split('/').skip(1) {
        assert!(
            segment != "." && segment != "..",
            "{raw:?} -> {path:?} has a dot segment"
        );
    }
    assert!(!path.bytes().any(is_control));
    // Escapes: every '%' starts an upper-case triplet of a reserved byte.
    let b = path.as_bytes();
    for (i, _) in path.match_indices('%') {
        let triplet = b.get(i + 1..i + 3).expect("a '%' at the end");
        assert!(
            triplet
                .iter()
                .all(|c| c.is_ascii_digit() || (b'A'..=b'F').contains(c)),
            "{raw:?} -> {path:?}: escape not upper-case hex"
        );
        let value = u8::from_str_radix(std::str::from_utf8(triplet).unwrap(), 16).unwrap();
        assert!(
            !(value.is_ascii_alphanumeric() || matches!(value, b'-' | b'.' | b'_' | b'~')),
            "{raw:?} -> {path:?}: an unreserved byte is still escaped"
        );
    }
    // Ambiguity comes only from what the flag documents.
    if normal.ambiguous {
        assert!(
            raw.contains(['%', ';', '\\']),
            "ambiguous without cause: {raw:?}"
        );
    } else {
        assert!(
            !raw.contains([';', '\\']),
            "a raw ';' or '\\' is not ambiguous"
        );
        // An upstream that decodes once sees the same segments: no new '/', no dot segment.
        let decoded = percent_decode_once(path);
        let slashes = decoded.iter().filter(|&&c| c == b'/').count();
        assert_eq!(
            slashes,
            path.matches('/').count(),
            "{raw:?} -> {path:?}: decoding adds a '/'"
        );
        for segment in decoded.split(|&c| c == b'/').skip(1) {
            assert!(
                segment != b"." && segment != b"..",
                "{raw:?} -> {path:?}: decoding makes a dot segment"
            );
        }
    }
    // Borrowed exactly when nothing changed.
    match &normal.path {
        std::borrow::Cow::Borrowed(p) => assert_eq!(*p, raw),
        std::borrow::Cow::Owned(p) => assert_ne!(p, raw, "allocated for an unchanged path"),
    }
    // Idempotent: a normal path comes back as it is, borrowed, with the same ambiguity.
    let again = normalize(path).unwrap_or_else(|e| panic!("{raw:?} -> {path:?} -> {e}"));
    assert!(
        matches!(again.path, std::borrow::Cow::Borrowed(_)),
        "{raw:?} -> {path:?} -> {:?}: not idempotent",
        again.path
    );
    // Ambiguity is judged on the raw path, so `..` may remove what made it ambiguous
    // (`/%2F/../a` is ambiguous, `/a` is not); it can never appear.
    assert!(
        !again.ambiguous || normal.ambiguous,
        "{raw:?} -> {path:?}: ambiguous only after normalizing"
    );
}

// ---------------------------------------------------------------------------------------------
// 5. The sign-in/sign-out redirect validator.

pub fn safe_redirect_target(data: &[u8]) {
    let rd = String::from_utf8_lossy(data);
    let rd: &str = &rd;
    let elsewhere = Url::parse("https://elsewhere.invalid/deep/page?q=1").unwrap();
    for (public, prefix) in REDIRECT_SETUPS {
        let public = Url::parse(public).unwrap();
        assert_eq!(safe_redirect(None, &public, prefix), "/");
        let out = safe_redirect(Some(rd), &public, prefix);
        if out == "/" {
            continue;
        }
        // A single leading '/', nothing a browser could read as another origin.
        assert!(out.starts_with('/'), "{rd:?} -> {out:?}");
        assert!(!out.starts_with("//"), "{rd:?} -> {out:?}");
        assert!(
            !out.contains(|c: char| c == '\\' || c.is_control() || c.is_whitespace()),
            "{rd:?} -> {out:?}"
        );
        // Same-origin, whatever the base, as written and after up to three rounds of decoding.
        let mut current = out.clone();
        for _ in 0..4 {
            for base in [&public, &elsewhere] {
                let joined = base
                    .join(&current)
                    .unwrap_or_else(|e| panic!("{rd:?} -> {current:?}: {e}"));
                assert_eq!(
                    joined.origin(),
                    base.origin(),
                    "{rd:?} -> {out:?} (as {current:?}) leaves {base}"
                );
            }
            let decoded = String::from_utf8_lossy(&percent_decode_once(&current)).into_owned();
            if decoded == current {
                break;
            }
            current = decoded;
        }
        // Never landing on one of Gatehouse's own endpoints (that would loop), but its "me"
        // page: judged where the browser lands, dot segments resolved (`/x/../oauth2/start`) and
        // the path normalized as Gatehouse routes it (`/%6Fauth2/start`); `/oauth2/../` is fine.
        let prefix_lower = prefix.to_ascii_lowercase();
        let landing = public.join(&out).unwrap();
        let landed = normalize(landing.path())
            .map(|n| n.path.to_ascii_lowercase())
            .unwrap_or_else(|_| landing.path().to_ascii_lowercase());
        let lands_own = landed == prefix_lower || landed.starts_with(&format!("{prefix_lower}/"));
        let lands_me = landed == format!("{prefix_lower}/me");
        assert!(
            !lands_own || lands_me,
            "{rd:?} -> {out:?}: lands on an own endpoint ({landed})"
        );
        // A local path is kept as it is; an absolute URL must be of our own origin.
        if rd.starts_with('/') {
            assert_eq!(out, rd);
        } else {
            let url = Url::parse(rd).unwrap_or_else(|e| panic!("{rd:?} -> {out:?}: {e}"));
            assert_eq!(url.origin(), public.origin(), "{rd:?} -> {out:?}");
        }
        // Stable: the result is itself accepted as it is.
        if out.len() <= 2048 {
            assert_eq!(safe_redirect(Some(&out), &public, prefix), out, "{rd:?}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Seeds

/// A few real inputs per target, written to `fuzz/corpus/<target>/` by
/// `cargo test --test integration fuzz_smoke::write_seed_corpus -- --ignored`. Valid cookies and
/// bearers are made with the fixtures (their claims have `sub` = [`SEED_SUB`]).
pub fn seed_corpus() -> Vec<(&'static str, String, Vec<u8>)> {
    let mut seeds: Vec<(&'static str, String, Vec<u8>)> = Vec::new();
    let mut add = |target: &'static str, name: &str, bytes: Vec<u8>| {
        seeds.push((target, name.to_string(), bytes));
    };

    // Session cookies.
    let token = seal_claims(ring(), &seed_claims("octocat"));
    let old = seal_claims(&key_ring(&SESSION_KEYS[1..]), &seed_claims("monalisa"));
    let foreign = seal_claims(&key_ring(&[[0x33; 32]]), &seed_claims("mallory"));
    let (a, b) = token.split_at(token.len() / 2);
    add("session_cookie", "jwe", token.clone().into_bytes());
    add("session_cookie", "jwe_old_key", old.clone().into_bytes());
    add("session_cookie", "jwe_foreign_key", foreign.into_bytes());
    add(
        "session_cookie",
        "header",
        format!("theme=dark; {COOKIE_NAME}={token}; other=\"quoted\"").into_bytes(),
    );
    add(
        "session_cookie",
        "header_chunked",
        format!("{COOKIE_NAME}_0={a}; lang=en; {COOKIE_NAME}_1={b}").into_bytes(),
    );
    add(
        "session_cookie",
        "headers_two_lines",
        format!("{COOKIE_NAME}_login=state; a=1\n{COOKIE_NAME}={old}").into_bytes(),
    );
    add(
        "session_cookie",
        "jwe_parsed_header",
        b"eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIiwia2lkIjoiQUFBQUFBQUFBQUEiLCJ6aXAiOiJERUYifQ..AAAAAAAAAAAAAAAA.AAAA.AAAAAAAAAAAAAAAAAAAAAA"
            .to_vec(),
    );

    // Bearers.
    let [(_, hs), (_, es)] = verifiers();
    let claims = seed_claims("octocat");
    add(
        "bearer_token",
        "hs256",
        hs.issue(&claims, SEED_FAMILY, BEARER_ISSUED_AT)
            .unwrap()
            .into_bytes(),
    );
    add(
        "bearer_token",
        "es256",
        es.issue(&claims, SEED_FAMILY, BEARER_ISSUED_AT)
            .unwrap()
            .into_bytes(),
    );
    add(
        "bearer_token",
        "expired_hs256",
        AccessTokens::new(
            &AccessSigning::Hs256(vec![HS256_SECRET.to_vec()]),
            ISSUER,
            900,
        )
        .unwrap()
        .issue(&claims, SEED_FAMILY, 1_000_000_000)
        .unwrap()
        .into_bytes(),
    );
    // alg "none" with our issuer, and a GitHub token.
    add(
        "bearer_token",
        "alg_none",
        b"eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJpc3MiOiJodHRwczovL2dhdGUuZnV6ei50ZXN0IiwiYXVkIjoiZ2F0ZWhvdXNlIiwic3ViIjoiNDI0MjQyNDI0MiIsImV4cCI6NDAwMDAwMDAwMH0."
            .to_vec(),
    );
    add(
        "bearer_token",
        "github_pat",
        b"ghp_16C7e42F292c6912E7710c838347Ae178B4a".to_vec(),
    );

    // Config files.
    let key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    add(
        "config_load",
        "minimal",
        format!(
            "[github]\nclient_id = \"id\"\nclient_secret = \"secret\"\n[session]\nsecrets = [\"{key}\"]\n[access]\nallowed_users = [\"OctoCat\"]\n"
        )
        .into_bytes(),
    );
    add(
        "config_load",
        "env_only",
        b"[server]\nlisten = \"${HOST}:${PORT}\"\npublic_url = \"${GATEHOUSE_PUBLIC_URL:-http://localhost:4180}\"\n".to_vec(),
    );
    add(
        "config_load",
        "roles_rules",
        br#"[server]
public_url = "https://127.0.0.1:8443"
proxy_prefix = "/_auth"
[upstream]
url = "http://127.0.0.1:8080"
connect_timeout = "2s"
[access]
allowed_orgs = ["databio"]
allowed_teams = ["databio/core"]
[roles.admin]
users = ["octocat"]
teams = ["databio/core"]
[[rules]]
path = "/public/**"
policy = "public"
[[rules]]
path = "/admin/**"
allow = ["role:admin"]
hide = true
[[rules]]
path = "/{owner}/**"
owner_methods = ["POST", "PUT"]
[[rules]]
path_regex = "^/api/v[0-9]+/"
methods = ["GET"]
allow = ["org:databio", "user:monalisa"]
allow_encoded_path = true
"#
        .to_vec(),
    );
    add(
        "config_load",
        "bad",
        b"[server]\nlisten = 4180\nbogus = true\n[session]\nttl = \"forever\"\nsecrets = [\"short\"]\n".to_vec(),
    );
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.toml");
    let example = std::fs::read(example).or_else(|_| {
        std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../config.example.toml"
        ))
    });
    if let Ok(example) = example {
        add("config_load", "config_example", example);
    }

    // Paths.
    for (name, p) in [
        ("plain", "/dashboard/index.html"),
        ("dots", "/public/../admin/./x"),
        ("encoded_dots", "/a/%2e%2E/b/%2E/c"),
        ("unreserved", "/%61dmin/%7Euser/%41%42"),
        ("reserved", "/a%2fb%5c%00/c%3b;x\\y"),
        ("slashes", "//a///b/"),
        ("double_encoding", "/%252e%252e/%25"),
        ("non_ascii", "/caf\u{e9}/%C3%A9"),
        ("bad_escape", "/a%zz"),
        ("relative", "a/b"),
    ] {
        add("path_normalize", name, p.as_bytes().to_vec());
    }

    // Redirects.
    for (name, rd) in [
        ("local", "/dashboard?tab=1#x"),
        ("absolute_same_origin", "https://app.example.com/x?y=1"),
        ("absolute_other", "https://evil.com/"),
        ("protocol_relative", "//evil.com"),
        ("backslash", "/\\evil.com"),
        ("encoded_slashes", "/%2F%2Fevil.com"),
        ("double_encoded", "/%252F%252Fevil.com"),
        ("tab", "/\t/evil.com"),
        ("userinfo", "https://user@app.example.com/"),
        ("me_page", "/oauth2/me?x=1"),
        ("own_endpoint", "/OAuth2/sign_out"),
        ("loopback", "http://127.0.0.1:4180/a/b"),
        ("scheme_only", "http:evil.com"),
    ] {
        add("safe_redirect", name, rd.as_bytes().to_vec());
    }
    seeds
}
