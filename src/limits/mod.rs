//! Per-client budgets: rate limits on the sign-in and token endpoints and on failed API-key
//! attempts (429 with `Retry-After`), header sizes (431), and the header read timeout
//! ([`ClientTimeout`]).
//!
//! Failed API-key attempts have two kinds of budget (see [`ApiKeyBudget`]): one per client
//! address and configured key name, for wrong keys given with a real name, and one per client
//! address for attempts naming no configured key. Each locks out only what it counts, so
//! someone guessing (or spraying names) from a shared address never locks out another key
//! used from that address, while guesses at one key stay bounded per address.
//!
//! Limits are keyed by the client's IP as the gate resolved it (`gate::client_ip`: the peer,
//! or what a trusted proxy says). IPv6 addresses are keyed by their /64, the block one
//! subscriber usually holds, so rotating addresses inside it does not reset a budget.
//!
//! This module only counts; the answers (429, 431) are `pages::Refusal`s.

mod client_timeout;

pub use client_timeout::ClientTimeout;

use crate::config::LimitSettings;
use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A single `Cookie` header (or all of them together) longer than this gets 431.
pub const MAX_COOKIE_BYTES: usize = 16 * 1024;

/// Stale keys are swept from the limiters every this many checks, so memory stays bounded by
/// the clients seen within one burst window (plus this many).
const SWEEP_EVERY: u64 = 1024;

/// How long a refused client should wait; `Retry-After` in whole seconds, at least 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter(pub Duration);

impl RetryAfter {
    pub fn secs(self) -> u64 {
        let d = self.0;
        (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1)
    }
}

type Keyed = DefaultKeyedRateLimiter<IpAddr>;

/// Whose budget a failed API-key attempt is counted against, and what a lockout then refuses.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ApiKeyBudget {
    /// A wrong key for configured key `name`, from `ip` (by [`key`]): past the budget, `ip`'s
    /// attempts with that name are refused unchecked; other names from `ip`, and `name` from
    /// other addresses, are not.
    Key { name: String, ip: IpAddr },
    /// An attempt from `ip` naming no configured key (or malformed): past the budget, `ip`'s
    /// attempts naming no configured key are refused; real names are not.
    Address(IpAddr),
}

impl ApiKeyBudget {
    /// The budget for an attempt from `ip` naming `name` (`configured`: a real key's name).
    pub fn of(ip: IpAddr, name: Option<&str>, configured: bool) -> ApiKeyBudget {
        let ip = key(ip);
        match name {
            Some(name) if configured => ApiKeyBudget::Key {
                name: name.to_string(),
                ip,
            },
            _ => ApiKeyBudget::Address(ip),
        }
    }
}

pub struct Limits {
    /// `/oauth2/start`, `callback`, `token`, `refresh`, `pat`; `None`: off.
    auth: Option<Keyed>,
    /// Raw GitHub tokens checked with GitHub (cache misses only), with the same quota as
    /// `auth` but a budget of its own; `None`: off.
    github_token_checks: Option<Keyed>,
    /// Failed API-key attempts, by [`ApiKeyBudget`]; `None`: off.
    api_key_failures: Option<DefaultKeyedRateLimiter<ApiKeyBudget>>,
    /// Budgets past their API-key failure limit, and until when. The attempts they cover are
    /// refused without being checked, so a right guess cannot be told apart.
    locked_out: Mutex<HashMap<ApiKeyBudget, Instant>>,
    checks: AtomicU64,
}

impl std::fmt::Debug for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limits")
            .field("auth", &self.auth.as_ref().map(|l| l.len()))
            .field(
                "api_key_failures",
                &self.api_key_failures.as_ref().map(|l| l.len()),
            )
            .finish_non_exhaustive()
    }
}

fn limiter<K: Clone + Eq + std::hash::Hash>(
    per_minute: u32,
    burst: u32,
) -> Option<DefaultKeyedRateLimiter<K>> {
    let rate = NonZeroU32::new(per_minute)?;
    let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    Some(DefaultKeyedRateLimiter::keyed(
        Quota::per_minute(rate).allow_burst(burst),
    ))
}

/// The key an address is limited under: IPv4 (also IPv4-mapped IPv6) as is, IPv6 by its /64.
pub fn key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(bits))
        }
        v4 => v4,
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Limits {
    pub fn new(settings: &LimitSettings) -> Limits {
        Limits {
            auth: limiter(settings.auth_per_minute, settings.burst),
            github_token_checks: limiter(settings.auth_per_minute, settings.burst),
            api_key_failures: limiter(
                settings.api_key_failures_per_minute,
                settings.api_key_failures_per_minute,
            ),
            locked_out: Mutex::new(HashMap::new()),
            checks: AtomicU64::new(0),
        }
    }

    /// Take one request to a sign-in or token endpoint from `ip` (unknown: not limited).
    pub fn check_auth(&self, ip: Option<IpAddr>) -> Result<(), RetryAfter> {
        let (Some(limiter), Some(ip)) = (&self.auth, ip) else {
            return Ok(());
        };
        self.tick();
        limiter
            .check_key(&key(ip))
            .map_err(|not_until| RetryAfter(not_until.wait_time_from(limiter.clock().now())))
    }

    /// Take one GitHub call to check a raw GitHub token from `ip` (unknown: not limited), so
    /// a flood of made-up tokens cannot spend the gate's GitHub rate limit.
    pub fn check_github_token(&self, ip: Option<IpAddr>) -> Result<(), RetryAfter> {
        let (Some(limiter), Some(ip)) = (&self.github_token_checks, ip) else {
            return Ok(());
        };
        self.tick();
        limiter
            .check_key(&key(ip))
            .map_err(|not_until| RetryAfter(not_until.wait_time_from(limiter.clock().now())))
    }

    /// Is this budget locked out (past its failure limit)? Asked before a key is checked.
    pub fn api_key_locked_out(&self, budget: &ApiKeyBudget) -> Option<RetryAfter> {
        self.api_key_failures.as_ref()?;
        let locked = lock(&self.locked_out);
        if locked.is_empty() {
            return None;
        }
        let wait = locked.get(budget)?.checked_duration_since(Instant::now())?;
        Some(RetryAfter(wait)).filter(|r| !r.0.is_zero())
    }

    /// Count a failed API-key attempt against `budget`; `Some` when that put it past its limit
    /// (it is then locked out until the budget allows one more attempt).
    pub fn api_key_failed(&self, budget: &ApiKeyBudget) -> Option<RetryAfter> {
        let limiter = self.api_key_failures.as_ref()?;
        self.tick();
        let not_until = limiter.check_key(budget).err()?;
        let wait = not_until.wait_time_from(limiter.clock().now());
        lock(&self.locked_out).insert(budget.clone(), Instant::now() + wait);
        Some(RetryAfter(wait))
    }

    /// Every [`SWEEP_EVERY`] checks, forget the addresses whose budgets are full again.
    fn tick(&self) {
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.sweep();
        }
    }

    fn sweep(&self) {
        for limiter in [&self.auth, &self.github_token_checks]
            .into_iter()
            .flatten()
        {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        if let Some(limiter) = &self.api_key_failures {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        let now = Instant::now();
        let mut locked = lock(&self.locked_out);
        locked.retain(|_, until| *until > now);
        locked.shrink_to_fit();
    }

    /// Keys currently held, for tests: (auth, API-key failures, locked out).
    #[cfg(test)]
    fn tracked(&self) -> (usize, usize, usize) {
        (
            self.auth.as_ref().map_or(0, |l| l.len()),
            self.api_key_failures.as_ref().map_or(0, |l| l.len()),
            lock(&self.locked_out).len(),
        )
    }
}

/// Which part of the request header is over its budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderExcess {
    /// All header fields together, over `server.max_header_bytes`.
    Total(usize),
    /// The `Cookie` header(s), over [`MAX_COOKIE_BYTES`].
    Cookie,
}

impl From<HeaderExcess> for crate::pages::Refusal {
    fn from(excess: HeaderExcess) -> crate::pages::Refusal {
        let (cookies, limit) = match excess {
            HeaderExcess::Cookie => (true, MAX_COOKIE_BYTES),
            HeaderExcess::Total(max) => (false, max),
        };
        crate::pages::Refusal::HeadersTooLarge { cookies, limit }
    }
}

/// Is the request header over budget? Counts each field as `name: value\r\n`.
pub fn header_excess(headers: &http::HeaderMap, max_total: usize) -> Option<HeaderExcess> {
    let mut total = 0;
    let mut cookie = 0;
    for (name, value) in headers {
        total += name.as_str().len() + value.len() + 4;
        if name == http::header::COOKIE {
            cookie += value.len();
        }
    }
    if cookie > MAX_COOKIE_BYTES {
        Some(HeaderExcess::Cookie)
    } else if total > max_total {
        Some(HeaderExcess::Total(max_total))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(auth: u32, burst: u32, failures: u32) -> LimitSettings {
        LimitSettings {
            auth_per_minute: auth,
            burst,
            api_key_failures_per_minute: failures,
            trusted_proxies: Vec::new(),
            max_header_bytes: 32 * 1024,
            client_timeout: Duration::from_secs(30),
        }
    }

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn burst_then_refused_with_retry_after_and_other_ips_unaffected() {
        let limits = Limits::new(&settings(6, 3, 10));
        for _ in 0..3 {
            assert_eq!(limits.check_auth(ip("192.0.2.1")), Ok(()));
        }
        let retry = limits.check_auth(ip("192.0.2.1")).unwrap_err();
        // 6 a minute: one every 10 s.
        assert!((9..=10).contains(&retry.secs()), "{retry:?}");
        assert_eq!(limits.check_auth(ip("192.0.2.2")), Ok(()));
        // Unknown address (e.g. a Unix socket): not limited.
        for _ in 0..10 {
            assert_eq!(limits.check_auth(None), Ok(()));
        }
    }

    #[test]
    fn zero_turns_limits_off() {
        let limits = Limits::new(&settings(0, 3, 0));
        for _ in 0..100 {
            assert_eq!(limits.check_auth(ip("192.0.2.1")), Ok(()));
            let budget = ApiKeyBudget::Address(ip("192.0.2.1").unwrap());
            assert_eq!(limits.api_key_failed(&budget), None);
            assert_eq!(limits.api_key_locked_out(&budget), None);
        }
        assert_eq!(limits.tracked(), (0, 0, 0));
    }

    #[test]
    fn ipv6_is_keyed_by_its_64_and_mapped_ipv4_as_ipv4() {
        let limits = Limits::new(&settings(60, 2, 10));
        assert!(limits.check_auth(ip("2001:db8:1:2::1")).is_ok());
        assert!(limits.check_auth(ip("2001:db8:1:2:ffff::9")).is_ok());
        assert!(limits.check_auth(ip("2001:db8:1:2::3")).is_err());
        assert!(limits.check_auth(ip("2001:db8:1:3::1")).is_ok());
        assert_eq!(
            key("::ffff:192.0.2.7".parse().unwrap()),
            "192.0.2.7".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn api_key_failures_lock_out_only_what_they_counted() {
        let limits = Limits::new(&settings(120, 30, 3));
        let me = ip("198.51.100.4").unwrap();
        let nightly = ApiKeyBudget::of(me, Some("nightly"), true);
        for _ in 0..3 {
            assert_eq!(limits.api_key_locked_out(&nightly), None);
            assert_eq!(limits.api_key_failed(&nightly), None);
        }
        let retry = limits
            .api_key_failed(&nightly)
            .expect("fourth failure is over budget");
        assert!((19..=20).contains(&retry.secs()), "{retry:?}");
        let locked = limits.api_key_locked_out(&nightly).expect("locked out");
        assert!(locked.secs() <= retry.secs());
        // Other keys from the same address, the same key from elsewhere, and names that are
        // not keys from the same address each have budgets of their own.
        let other = ApiKeyBudget::of(me, Some("other"), true);
        let elsewhere = ApiKeyBudget::of(ip("198.51.100.5").unwrap(), Some("nightly"), true);
        let unknown = ApiKeyBudget::of(me, Some("guess"), false);
        for budget in [&other, &elsewhere, &unknown] {
            assert_eq!(limits.api_key_locked_out(budget), None, "{budget:?}");
        }
        assert_eq!(
            unknown,
            ApiKeyBudget::of(me, None, false),
            "one per address"
        );
        assert_eq!(
            ApiKeyBudget::of(ip("2001:db8::1").unwrap(), Some("k"), true),
            ApiKeyBudget::of(ip("2001:db8::2").unwrap(), Some("k"), true),
            "IPv6 by its /64"
        );
    }

    #[test]
    fn memory_is_swept() {
        // 6000 a minute, burst 1: a key's state is stale 10 ms after its last use.
        let limits = Limits::new(&settings(6000, 1, 6000));
        for i in 0..2000u32 {
            let addr = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            let _ = limits.check_auth(Some(addr));
        }
        assert!(limits.tracked().0 > 900, "{:?}", limits.tracked());
        std::thread::sleep(Duration::from_millis(30));
        // The next sweep happens within SWEEP_EVERY checks, all from one address.
        for _ in 0..SWEEP_EVERY {
            let _ = limits.check_auth(ip("192.0.2.1"));
        }
        assert!(limits.tracked().0 < 10, "{:?}", limits.tracked());
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(RetryAfter(Duration::from_millis(1)).secs(), 1);
        assert_eq!(RetryAfter(Duration::ZERO).secs(), 1);
        assert_eq!(RetryAfter(Duration::from_millis(9_001)).secs(), 10);
        assert_eq!(RetryAfter(Duration::from_secs(10)).secs(), 10);
    }

    #[test]
    fn header_budget() {
        let mut headers = http::HeaderMap::new();
        headers.insert("x-small", "a".parse().unwrap());
        assert_eq!(header_excess(&headers, 4096), None);
        headers.insert("x-big", "a".repeat(5000).parse().unwrap());
        assert_eq!(
            header_excess(&headers, 4096),
            Some(HeaderExcess::Total(4096))
        );
        assert_eq!(header_excess(&headers, 32 * 1024), None);
        headers.append("cookie", "c=".repeat(4500).parse().unwrap());
        headers.append("cookie", "d=".repeat(4500).parse().unwrap());
        assert_eq!(header_excess(&headers, 1 << 20), Some(HeaderExcess::Cookie));
    }

    #[test]
    fn config_keys_and_their_checks() {
        let base = r#"
[github]
client_id = "id"
client_secret = "secret"
[session]
secrets = ["AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="]
[access]
allowed_users = ["OctoCat"]
"#;
        let s = crate::config::load_str(base, "t", &|_| None).unwrap();
        assert_eq!((s.limits.auth_per_minute, s.limits.burst), (120, 30));
        assert_eq!(s.limits.api_key_failures_per_minute, 10);
        assert_eq!(s.limits.max_header_bytes, 32 * 1024);
        assert_eq!(s.limits.client_timeout, Duration::from_secs(30));
        assert!(s.limits.trusted_proxies.is_empty());

        let text = base.replace(
            "[github]",
            "[server]\ntrusted_proxies = [\"10.0.0.0/8\", \"192.0.2.7\", \"2001:db8::/32\"]\nclient_timeout = \"2s\"\n[limits]\nauth_per_minute = 0\n[github]",
        );
        let s = crate::config::load_str(&text, "t", &|_| None).unwrap();
        let nets: Vec<String> = s
            .limits
            .trusted_proxies
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(nets, ["10.0.0.0/8", "192.0.2.7/32", "2001:db8::/32"]);
        assert_eq!(s.limits.client_timeout, Duration::from_secs(2));
        assert_eq!(s.limits.auth_per_minute, 0);

        let text = base.replace(
            "[github]",
            "[server]\ntrusted_proxies = [\"nope\"]\nmax_header_bytes = 100\nclient_timeout = \"0s\"\n[limits]\nburst = 0\n[github]",
        );
        let err = crate::config::load_str(&text, "t", &|_| None).unwrap_err();
        let all: Vec<String> = err.problems.iter().map(|p| p.to_string()).collect();
        let all = all.join("\n");
        for key in [
            "server.trusted_proxies[0]",
            "server.max_header_bytes",
            "server.client_timeout",
            "limits.burst",
        ] {
            assert!(all.contains(key), "{key} in {all}");
        }
    }
}
