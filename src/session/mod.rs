//! Sessions: the JWE key ring, the claims, and the cookies that carry them.

mod claims;
pub mod cookies;
mod keyring;

pub use claims::SessionClaims;
pub use cookies::CookieSettings;
pub use keyring::{key_id, JweError, KeyRing};

use crate::config::SessionSettings;
use http::HeaderMap;
use serde::{de::DeserializeOwned, Serialize};

/// Everything needed to read and write session cookies, built once at start.
#[derive(Debug)]
pub struct Sessions {
    pub ring: KeyRing,
    pub cookie: CookieSettings,
    pub ttl_secs: u64,
}

impl Sessions {
    pub fn new(settings: &SessionSettings) -> Sessions {
        Sessions {
            ring: KeyRing::new(&settings.keys),
            cookie: CookieSettings {
                name: settings.cookie_name.clone(),
                secure: settings.secure,
                domain: settings.domain.clone(),
            },
            ttl_secs: settings.ttl.as_secs(),
        }
    }

    /// The live session in the request, if any. Anything wrong with it means "no session".
    pub fn read(&self, headers: &HeaderMap, now: u64) -> Option<SessionClaims> {
        let value = cookies::read_session_value(headers, &self.cookie.name)?;
        let claims: SessionClaims = self.open_json(&value)?;
        claims.is_live(now).then_some(claims)
    }

    /// `Set-Cookie` values that store `claims` (chunked when large).
    pub fn write(
        &self,
        claims: &SessionClaims,
        request_headers: &HeaderMap,
        now: u64,
    ) -> Option<Vec<String>> {
        let token = self.seal_json(claims)?;
        let max_age = claims.exp.saturating_sub(now) as i64;
        cookies::session_set_cookies(&self.cookie, &token, max_age, request_headers)
    }

    /// `Set-Cookie` values that end the session.
    pub fn clear(&self, request_headers: &HeaderMap) -> Vec<String> {
        cookies::clear_session_cookies(&self.cookie, request_headers)
    }

    pub fn seal_json<T: Serialize>(&self, value: &T) -> Option<String> {
        let json = serde_json::to_vec(value).ok()?;
        self.ring.seal(&json).ok()
    }

    pub fn open_json<T: DeserializeOwned>(&self, token: &str) -> Option<T> {
        let plain = self.ring.open(token).ok()?;
        serde_json::from_slice(&plain).ok()
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
