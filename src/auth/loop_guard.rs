//! Redirect-loop diagnosis: when the same browser comes back to `/oauth2/start` again and
//! again within a minute without its session cookie ever arriving, show a page that names the
//! likely cause instead of sending it to GitHub once more.
//!
//! "The same browser" is recognised without storing any cookie's value:
//! - a small counter cookie `<cookie_name>_loop` (`count.first_seen`, host-only, `Path` = the
//!   proxy prefix, `HttpOnly`, `SameSite=Lax`, `Secure` only when the request came over https
//!   so it survives the misconfigurations it diagnoses), incremented by each start and reset to
//!   zero when a sign-in completes (a zero count still shows that this browser's cookies work);
//! - when that cookie does not come back either, a bounded in-memory counter keyed by a hash of
//!   the client address (as the gate resolved it) and `User-Agent`, with a higher threshold,
//!   since several people behind one NAT with the same browser share a key.
//!
//! Every first-time visitor arrives without the counter cookie, so it is counted in memory
//! too. The counter cookie set for such a start is marked (`count.first.m`); when a browser
//! brings a marked cookie back (at its next start or at a completed callback), its one in-memory
//! start is taken back. A browser that completes its sign-ins therefore never adds up in memory,
//! however many people share its address and browser build; one whose cookies really are lost
//! never brings the mark back and is still diagnosed.
//!
//! Only browser navigations are counted: scripts and CLIs (`client_redirect_uri`) get no page.

use super::facts::RequestFacts;
use crate::pages::{LoopHint, Refusal};
use crate::reply::Reply;
use crate::runtime::Runtime;
use crate::session::cookies::{find_cookie, read_session_value, set_cookie};
use crate::session::{CookieSettings, SessionClaims};
use http::request::Parts;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, OnceLock};

/// Starts are counted over this many seconds.
pub const WINDOW_SECS: u64 = 60;
/// This many starts within the window go to GitHub; the next one gets the diagnosis.
pub const MAX_STARTS: u32 = 3;
/// The same for browsers whose counter cookie does not come back (counted in memory).
pub const MAX_COOKIELESS_STARTS: u32 = 5;
/// Bound on remembered cookieless browsers; when full, nobody new is counted (fail open).
const MAX_REMEMBERED: usize = 10_000;

pub fn cookie_name(session_cookie: &str) -> String {
    format!("{session_cookie}_loop")
}

/// Counts starts of cookieless browsers by a hash of address and user agent.
#[derive(Debug, Default)]
pub struct LoopGuard {
    /// key → (starts, first start)
    seen: Mutex<HashMap<u64, (u32, u64)>>,
}

impl LoopGuard {
    /// The process-wide guard (it outlives config reloads, like the browsers it counts).
    pub fn global() -> &'static LoopGuard {
        static GUARD: OnceLock<LoopGuard> = OnceLock::new();
        GUARD.get_or_init(LoopGuard::default)
    }

    /// Count one start for `key`; `None` when memory is full.
    fn bump(&self, key: u64, now: u64) -> Option<(u32, u64)> {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if !seen.contains_key(&key) && seen.len() >= MAX_REMEMBERED {
            seen.retain(|_, (_, first)| now.saturating_sub(*first) < WINDOW_SECS);
            if seen.len() >= MAX_REMEMBERED {
                return None;
            }
        }
        let entry = seen.entry(key).or_insert((0, now));
        if now.saturating_sub(entry.1) >= WINDOW_SECS || entry.1 > now {
            *entry = (0, now);
        }
        entry.0 += 1;
        Some(*entry)
    }

    /// Take back one start of `key`: the browser behind it proved that its cookies work.
    fn take_back(&self, key: u64) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = seen.get_mut(&key) {
            entry.0 = entry.0.saturating_sub(1);
            if entry.0 == 0 {
                seen.remove(&key);
            }
        }
    }

    fn forget(&self, key: u64) {
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&key);
    }

    /// Count this start. `Ok`: `Set-Cookie` values for the redirect to GitHub. `Err`: the
    /// diagnosis page (which also resets the count, so "Try again" starts afresh).
    pub fn check(
        &self,
        rt: &Runtime,
        facts: &RequestFacts<'_>,
        rd: &str,
        now: u64,
    ) -> Result<Vec<String>, Reply> {
        if !facts.browser {
            return Ok(Vec::new());
        }
        let (req, client_ip) = (facts.req, facts.client_ip);
        let name = cookie_name(&rt.sessions.cookie.name);
        let counter = find_cookie(&req.headers, &name);
        if rt.sessions.has_live_cookie(&req.headers, now) {
            // Cookies work; whatever sends a signed-in person here is not a cookie problem.
            return Ok(counter.map(|_| clear_cookie(rt, req)).into_iter().collect());
        }
        let key = client_ip.map(|ip| client_key(req, ip));
        let (count, first, cookie_lost) = match counter.map(parse_counter) {
            Some(parsed) => {
                if let (
                    Some(key),
                    Some(Counter {
                        in_memory: true, ..
                    }),
                ) = (key, parsed)
                {
                    self.take_back(key);
                }
                match parsed {
                    Some(Counter { count, first, .. })
                        if first <= now && now - first < WINDOW_SECS =>
                    {
                        (count.saturating_add(1), first, false)
                    }
                    _ => (1, now, false),
                }
            }
            None => match key.and_then(|key| self.bump(key, now)) {
                Some((count, first)) => (count, first, true),
                None => (1, now, false),
            },
        };
        let limit = if cookie_lost {
            MAX_COOKIELESS_STARTS
        } else {
            MAX_STARTS
        };
        if count > limit {
            if let Some(key) = key {
                self.forget(key);
            }
            let hints = diagnose(rt, req, now, cookie_lost);
            let codes: Vec<&str> = hints.iter().map(LoopHint::code).collect();
            tracing::warn!(
                starts = count,
                window_secs = WINDOW_SECS,
                hints = %codes.join(","),
                "sign-in loop: the browser keeps returning to start without a session cookie"
            );
            let clear = counter.map(|_| clear_cookie(rt, req));
            return Err(Refusal::LoginLoop {
                hints,
                start_url: rt.start_url(rd),
            }
            .reply(true)
            .cookies(clear));
        }
        let max_age = WINDOW_SECS - now.saturating_sub(first).min(WINDOW_SECS - 1);
        // A start counted in memory says so in its cookie, for `take_back`. The cookie's own
        // count starts at one: the in-memory count is other browsers' too.
        let value = if cookie_lost {
            format!("1.{now}.m")
        } else {
            format!("{count}.{first}")
        };
        Ok(vec![set_cookie(
            &counter_cookie_settings(rt, req),
            &name,
            &value,
            &rt.settings.proxy_prefix,
            max_age as i64,
        )])
    }

    /// A sign-in completed: the count starts over at zero. The zero stays for the window, so
    /// the next start (after a sign-out, say) still shows that this browser returns cookies.
    /// A start of this browser still counted in memory is taken back.
    pub fn completed(
        &self,
        rt: &Runtime,
        req: &Parts,
        client_ip: Option<IpAddr>,
        now: u64,
    ) -> Option<String> {
        let counter = find_cookie(&req.headers, &cookie_name(&rt.sessions.cookie.name))?;
        if let (
            Some(ip),
            Some(Counter {
                in_memory: true, ..
            }),
        ) = (client_ip, parse_counter(counter))
        {
            self.take_back(client_key(req, ip));
        }
        Some(set_cookie(
            &counter_cookie_settings(rt, req),
            &cookie_name(&rt.sessions.cookie.name),
            &format!("0.{now}"),
            &rt.settings.proxy_prefix,
            WINDOW_SECS as i64,
        ))
    }
}

/// For the callback: the `Set-Cookie` that resets the counter, when the browser sent one.
pub fn clear(rt: &Runtime, req: &Parts, client_ip: Option<IpAddr>) -> Option<String> {
    LoopGuard::global().completed(rt, req, client_ip, crate::clock::unix_now())
}

fn clear_cookie(rt: &Runtime, req: &Parts) -> String {
    set_cookie(
        &counter_cookie_settings(rt, req),
        &cookie_name(&rt.sessions.cookie.name),
        "",
        &rt.settings.proxy_prefix,
        0,
    )
}

/// Host-only, and `Secure` only over https: the counter must come back even when the session
/// cookie's own attributes are what breaks sign-in.
fn counter_cookie_settings(rt: &Runtime, req: &Parts) -> CookieSettings {
    CookieSettings {
        name: cookie_name(&rt.sessions.cookie.name),
        secure: request_scheme(rt, req) == "https",
        domain: None,
    }
}

/// The counter cookie's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Counter {
    count: u32,
    first: u64,
    /// The start that set it was also counted in memory (`.m`).
    in_memory: bool,
}

/// `count.first_seen`, both small numbers, then `.m` when counted in memory.
fn parse_counter(value: &str) -> Option<Counter> {
    let (value, in_memory) = match value.strip_suffix(".m") {
        Some(rest) => (rest, true),
        None => (value, false),
    };
    let (count, first) = value.split_once('.')?;
    let count: u32 = count.parse().ok()?;
    (count <= 1000).then_some(())?;
    Some(Counter {
        count,
        first: first.parse().ok()?,
        in_memory,
    })
}

/// A hash of client address and user agent. Without an address every browser of one version
/// would look alike, so nothing is counted in memory then.
fn client_key(req: &Parts, ip: IpAddr) -> u64 {
    let agent = req
        .headers
        .get(http::header::USER_AGENT)
        .map_or(&[][..], |v| v.as_bytes());
    let mut hash = Sha256::new();
    hash.update(ip.to_string().as_bytes());
    hash.update([0]);
    hash.update(agent);
    let digest = hash.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

/// `http` or `https`, as the browser sees this site: `X-Forwarded-Proto` from a proxy in front,
/// else the request's own scheme, else `server.public_url`'s.
fn request_scheme<'a>(rt: &'a Runtime, req: &'a Parts) -> &'a str {
    req.headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(str::trim)
        .filter(|v| v.eq_ignore_ascii_case("http") || v.eq_ignore_ascii_case("https"))
        .map(|v| {
            if v.eq_ignore_ascii_case("https") {
                "https"
            } else {
                "http"
            }
        })
        .or_else(|| req.uri.scheme_str())
        .unwrap_or(rt.public_scheme)
}

/// The host and port the browser asked for (`X-Forwarded-Host` from a proxy in front, else
/// `Host`), lower-cased.
fn request_authority(req: &Parts) -> Option<String> {
    let header = |name: &str| req.headers.get(name).and_then(|v| v.to_str().ok());
    let value = header("x-forwarded-host")
        .and_then(|v| v.split(',').next())
        .or_else(|| header("host"))
        .or_else(|| req.uri.authority().map(|a| a.as_str()))?;
    Some(value.trim().to_ascii_lowercase())
}

fn split_port(authority: &str) -> (&str, Option<u16>) {
    match authority.rsplit_once(':') {
        Some((host, port)) if !port.contains(']') => (host, port.parse().ok()),
        _ => (authority, None),
    }
}

/// Which of the known causes this request shows.
fn diagnose(rt: &Runtime, req: &Parts, now: u64, cookie_lost: bool) -> Vec<LoopHint> {
    let mut hints = Vec::new();
    let scheme = request_scheme(rt, req);
    if rt.sessions.cookie.secure && scheme == "http" {
        hints.push(LoopHint::SecureOnHttp);
    }
    if let Some(authority) = request_authority(req) {
        let (host, port) = split_port(&authority);
        let host = host.trim_matches(['[', ']']);
        if let Some(domain) = &rt.sessions.cookie.domain {
            let d = domain.trim_start_matches('.').to_ascii_lowercase();
            if host != d && !host.ends_with(&format!(".{d}")) {
                hints.push(LoopHint::CookieDomain {
                    domain: domain.clone(),
                    host: host.to_string(),
                });
            }
        }
        let public = &rt.settings.public_url;
        let public_host = public
            .host_str()
            .unwrap_or_default()
            .trim_matches(['[', ']'])
            .to_ascii_lowercase();
        let default_port = if scheme == "https" { 443 } else { 80 };
        let port = port.unwrap_or(default_port);
        if public_host != host || public.port_or_known_default() != Some(port) {
            hints.push(LoopHint::PublicUrlMismatch {
                public: public.as_str().trim_end_matches('/').to_string(),
                opened: format!("{scheme}://{authority}"),
            });
        }
    }
    let header = |name: &str| req.headers.get(name).and_then(|v| v.to_str().ok());
    let framed = header("sec-fetch-dest")
        .is_some_and(|d| matches!(d, "iframe" | "frame" | "embed" | "object"));
    if framed && header("sec-fetch-site").is_some_and(|s| s != "same-origin") {
        hints.push(LoopHint::ThirdPartyFrame);
    }
    if let Some(value) = read_session_value(&req.headers, &rt.sessions.cookie.name) {
        match rt.sessions.open_json::<SessionClaims>(&value) {
            None => hints.push(LoopHint::UnreadableSession),
            Some(claims) if claims.iat > now.saturating_add(60) => {
                hints.push(LoopHint::ClockSkew {
                    seconds: claims.iat - now,
                    future: true,
                })
            }
            Some(claims) if claims.exp <= now => hints.push(LoopHint::ClockSkew {
                seconds: now - claims.exp,
                future: false,
            }),
            Some(_) => {}
        }
    }
    if cookie_lost {
        hints.push(LoopHint::CookiesBlocked);
    }
    hints
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load_str;

    const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    fn rt(session_extra: &str) -> Runtime {
        let text = format!(
            r#"
[server]
public_url = "http://gate.test:4180"
[upstream]
url = "http://127.0.0.1:9"
[github]
client_id = "id"
client_secret = "secret"
[session]
secrets = ["{KEY}"]
{session_extra}
[access]
allowed_users = ["octocat"]
"#
        );
        let settings = load_str(&text, "test", &|_| None).expect("valid test config");
        crate::install_crypto_provider();
        Runtime::new(settings).expect("app")
    }

    impl LoopGuard {
        /// [`LoopGuard::check`] on `req` read as the gate reads it, from `client_ip`.
        fn check_req(
            &self,
            rt: &Runtime,
            req: &Parts,
            rd: &str,
            now: u64,
            client_ip: Option<IpAddr>,
        ) -> Result<Vec<String>, Reply> {
            use crate::auth::facts::{DenyAs, Judge};
            let facts = RequestFacts::read(rt, req, client_ip, Judge::Request, DenyAs::Negotiate);
            self.check(rt, &facts, rd, now)
        }
    }

    fn start(cookie: Option<&str>, extra: &[(&str, &str)]) -> Parts {
        let mut b = http::Request::builder()
            .uri("/oauth2/start?rd=/")
            .header("host", "gate.test:4180")
            .header("accept", "text/html")
            .header("user-agent", "TestBrowser/1.0");
        if let Some(c) = cookie {
            b = b.header("cookie", c);
        }
        let mut parts = b.body(()).unwrap().into_parts().0;
        for (k, v) in extra {
            let name = http::HeaderName::from_bytes(k.as_bytes()).unwrap();
            parts.headers.insert(name, v.parse().unwrap());
        }
        parts
    }

    /// The counter cookie's `name=value` from a `Set-Cookie`.
    fn pair(set_cookie: &str) -> String {
        set_cookie.split(';').next().unwrap().to_string()
    }

    fn body(reply: &Reply) -> String {
        String::from_utf8(reply.body.to_vec()).unwrap()
    }

    #[test]
    fn counts_with_the_cookie_and_stops_the_fourth_start() {
        let rt = rt("cookie_secure = true");
        let guard = LoopGuard::default();
        let mut cookie: Option<String> = None;
        for i in 1..=MAX_STARTS {
            let set = guard
                .check_req(
                    &rt,
                    &start(cookie.as_deref(), &[]),
                    "/",
                    1000 + i as u64,
                    None,
                )
                .unwrap_or_else(|_| panic!("start {i} should pass"));
            assert_eq!(set.len(), 1);
            let c = &set[0];
            assert!(c.starts_with("_gatehouse_loop="), "{c}");
            assert!(
                c.contains("HttpOnly") && c.contains("SameSite=Lax") && c.contains("Path=/oauth2")
            );
            // Plain http: the counter is not Secure even though the session cookie is.
            assert!(!c.contains("Secure"), "{c}");
            cookie = Some(pair(c));
        }
        let page = guard
            .check_req(&rt, &start(cookie.as_deref(), &[]), "/x", 1010, None)
            .expect_err("the fourth start is a loop");
        assert_eq!(page.status, 400);
        let html = body(&page);
        assert!(
            html.contains("marked Secure") && html.contains("cookie_secure"),
            "{html}"
        );
        assert!(html.contains("/oauth2/start?rd=%2Fx"));
        // The count starts over.
        assert!(page
            .headers
            .iter()
            .any(|(n, v)| *n == "Set-Cookie" && v.starts_with("_gatehouse_loop=;")));
    }

    #[test]
    fn an_old_count_starts_over_and_api_clients_are_not_counted() {
        let rt = rt("");
        let guard = LoopGuard::default();
        let old = format!("_gatehouse_loop=3.{}", 1000);
        let set = guard
            .check_req(&rt, &start(Some(&old), &[]), "/", 1000 + WINDOW_SECS, None)
            .expect("a stale count is not a loop");
        assert!(set[0].starts_with(&format!("_gatehouse_loop=1.{}", 1000 + WINDOW_SECS)));
        let mut api = start(Some("_gatehouse_loop=9.1000"), &[]);
        api.headers.remove("accept");
        assert!(guard
            .check_req(&rt, &api, "/", 1001, None)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn without_the_cookie_falls_back_to_address_and_user_agent() {
        let rt = rt("");
        let guard = LoopGuard::default();
        let me = Some("203.0.113.7".parse().unwrap());
        for i in 0..MAX_COOKIELESS_STARTS {
            assert!(guard
                .check_req(&rt, &start(None, &[]), "/", 2000 + i as u64, me)
                .is_ok());
        }
        // Another address, or another browser on the same address, is not affected.
        let other = Some("203.0.113.8".parse().unwrap());
        assert!(guard
            .check_req(&rt, &start(None, &[]), "/", 2003, other)
            .is_ok());
        let firefox = start(None, &[("user-agent", "OtherBrowser/2")]);
        assert!(guard.check_req(&rt, &firefox, "/", 2003, me).is_ok());
        let page = guard
            .check_req(&rt, &start(None, &[]), "/", 2010, me)
            .expect_err("a cookieless loop");
        assert!(body(&page).contains("not coming back at all"));
        // Without a client address nothing is counted in memory.
        for i in 0..10 {
            assert!(guard
                .check_req(&rt, &start(None, &[]), "/", 3000 + i, None)
                .is_ok());
        }
    }

    #[test]
    fn names_domain_host_frame_and_clock_causes() {
        let rt = rt(r#"cookie_domain = ".example.com""#);
        let future = SessionClaims {
            user_id: "1".into(),
            login: "octocat".into(),
            name: None,
            email: None,
            avatar_url: None,
            groups: vec![],
            roles: vec![],
            iat: 5000,
            exp: 9000,
            refreshed_at: 5000,
            github_token: None,
            github_refresh: None,
            session_id: None,
        };
        let sealed = rt.sessions.seal_json(&future).unwrap();
        let req = start(
            Some(&format!("_gatehouse={sealed}")),
            &[
                ("host", "other.test:8080"),
                ("sec-fetch-dest", "iframe"),
                ("sec-fetch-site", "cross-site"),
            ],
        );
        let hints = diagnose(&rt, &req, 1000, false);
        let codes: Vec<&str> = hints.iter().map(LoopHint::code).collect();
        assert!(codes.contains(&"cookie_domain_mismatch"), "{codes:?}");
        assert!(codes.contains(&"public_url_mismatch"), "{codes:?}");
        assert!(codes.contains(&"third_party_frame"), "{codes:?}");
        assert!(hints.contains(&LoopHint::ClockSkew {
            seconds: 4000,
            future: true
        }));
        let unreadable = start(Some("_gatehouse=not-a-jwe"), &[]);
        let hints = diagnose(&rt, &unreadable, 1000, false);
        assert!(hints.contains(&LoopHint::UnreadableSession), "{hints:?}");
    }

    #[test]
    fn a_matching_request_shows_no_false_causes() {
        let rt = rt("");
        assert!(diagnose(&rt, &start(None, &[]), 1000, false).is_empty());
        // Host-only cookies set over https are sent over http too: not a cause.
        let https = start(None, &[("x-forwarded-proto", "https")]);
        assert!(diagnose(&rt, &https, 1000, false).is_empty());
        let elsewhere = start(None, &[("host", "localhost:4180")]);
        assert_eq!(
            diagnose(&rt, &elsewhere, 1000, false),
            vec![LoopHint::PublicUrlMismatch {
                public: "http://gate.test:4180".into(),
                opened: "http://localhost:4180".into()
            }]
        );
    }

    #[test]
    fn completing_a_sign_in_resets_the_counter() {
        let rt = rt("");
        let guard = LoopGuard::default();
        let req = start(Some("_gatehouse_loop=3.1000"), &[]);
        let c = guard
            .completed(&rt, &req, None, 1005)
            .expect("a resetting cookie");
        assert!(
            c.starts_with("_gatehouse_loop=0.1005;") && c.contains("Max-Age=60"),
            "{c}"
        );
        assert!(guard
            .completed(&rt, &start(None, &[]), None, 1005)
            .is_none());
        // Starting again after that counts from one, and cookies are known to work.
        let me = Some("203.0.113.7".parse().unwrap());
        let set = guard
            .check_req(&rt, &start(Some(&pair(&c)), &[]), "/", 1006, me)
            .unwrap();
        assert!(set[0].starts_with("_gatehouse_loop=1.1005;"), "{}", set[0]);
    }

    #[test]
    fn browsers_that_complete_never_add_up_behind_one_address() {
        let rt = rt("");
        let guard = LoopGuard::default();
        let office = Some("203.0.113.9".parse().unwrap());
        // Twenty first-time visitors, same address and browser build, each signing in.
        for i in 0..20u64 {
            let set = guard
                .check_req(&rt, &start(None, &[]), "/", 4000 + i, office)
                .unwrap_or_else(|_| panic!("person {i} is refused"));
            assert!(set[0].starts_with(&format!("_gatehouse_loop=1.{}.m;", 4000 + i)));
            let back = start(Some(&pair(&set[0])), &[]);
            assert!(guard.completed(&rt, &back, office, 4000 + i).is_some());
        }
        // A marked cookie brought back to a start takes the memory count back as well.
        let set = guard
            .check_req(&rt, &start(None, &[]), "/", 4030, office)
            .unwrap();
        let again = guard
            .check_req(&rt, &start(Some(&pair(&set[0])), &[]), "/", 4031, office)
            .unwrap();
        assert!(
            again[0].starts_with("_gatehouse_loop=2.4030;"),
            "{}",
            again[0]
        );
        // A browser whose cookies never come back is still diagnosed.
        for i in 0..MAX_COOKIELESS_STARTS {
            assert!(guard
                .check_req(&rt, &start(None, &[]), "/", 4040 + i as u64, office)
                .is_ok());
        }
        assert!(guard
            .check_req(&rt, &start(None, &[]), "/", 4050, office)
            .is_err());
    }
}
