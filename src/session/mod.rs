//! Sessions: the JWE key ring, the claims, the cookies that carry them, and, with
//! `session.store = "memory" | "redis" | "postgres"`, the server-side records the cookie points to.

pub mod cookies;
mod keyring;
mod record_cache;
mod revocations;

pub use crate::claims::SessionClaims;
pub use cookies::CookieSettings;
pub use keyring::{key_id, JweError, KeyRing};
pub use revocations::Revocations;

use crate::config::{SessionKey, SessionSettings};
use crate::store::{SessionRecord, Store, StoreError, UserMark};
use http::request::Parts;
use http::HeaderMap;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::net::IpAddr;
use std::sync::Arc;

/// How often a server-side session's `last_seen` is written (not on every request).
const TOUCH_EVERY_SECS: u64 = 60;
/// A revocation outlives the sessions it ends by this much (clocks of replicas differ).
const MARK_MARGIN_SECS: u64 = 60;

/// Everything needed to read and write sessions, built once at start.
#[derive(Debug)]
pub struct Sessions {
    pub ring: KeyRing,
    pub cookie: CookieSettings,
    pub ttl_secs: u64,
    /// Shared state: records (when server-side), codes, refresh tokens, the revocation list.
    pub store: Arc<dyn Store>,
    /// This process's copy of the revocation list.
    pub revocations: Arc<Revocations>,
    /// `Some` when sessions are server-side: seals GitHub tokens in the records.
    records: Option<KeyRing>,
    /// Recently read records (server-side sessions only).
    cache: record_cache::RecordCache,
}

/// What a revocation asks of a user's sessions.
enum Revoke {
    /// They end.
    End,
    /// They ask GitHub again before their next request.
    Recheck,
}

/// What a server-side session's cookie holds: only which record, and until when.
#[derive(Serialize, Deserialize)]
struct SessionRef {
    #[serde(rename = "sid")]
    session_id: String,
    #[serde(rename = "exp")]
    expires_at: u64,
}

/// Why a session could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("the session is too large to store in cookies")]
    TooLarge,
    /// A re-check's write found the session signed out or revoked meanwhile.
    #[error("the session was ended meanwhile")]
    Ended,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Sessions {
    /// `store` and `revocations` outlive a config reload (the caller keeps them).
    pub fn new(
        settings: &SessionSettings,
        store: Arc<dyn Store>,
        revocations: Arc<Revocations>,
    ) -> Sessions {
        let records = settings.store.server_side.then(|| {
            let mut keys: Vec<SessionKey> =
                settings.store.keys.iter().map(|k| SessionKey(*k)).collect();
            // Records in this process's memory die with it, so its own key may seal them when
            // none is configured. It lasts as long as the process, reloads included: a reload
            // (even one that adds a key) must not make the records already sealed unreadable.
            if !settings.store.shared() {
                keys.push(SessionKey(process_key()));
            }
            KeyRing::new(&keys)
        });
        // Revocations must outlive every session this config can make.
        revocations.keep_at_least(settings.ttl.as_secs().saturating_add(MARK_MARGIN_SECS));
        Sessions {
            ring: KeyRing::new(&settings.keys),
            cookie: CookieSettings {
                name: settings.cookie_name.clone(),
                secure: settings.secure,
                domain: settings.domain.clone(),
            },
            ttl_secs: settings.ttl.as_secs(),
            store,
            revocations,
            records,
            cache: Default::default(),
        }
    }

    pub fn server_side(&self) -> bool {
        self.records.is_some()
    }

    /// The live session in the request, if any. A cookie that is wrong in any way, a record
    /// that is gone, or a session on the revocation list means "no session"; `Err` means the
    /// store could not say (the caller refuses, never allows).
    pub async fn read(
        &self,
        headers: &HeaderMap,
        now: u64,
    ) -> Result<Option<SessionClaims>, StoreError> {
        let Some(value) = cookies::read_session_value(headers, &self.cookie.name) else {
            return Ok(None);
        };
        let mut claims = match &self.records {
            None => match self.open_json::<SessionClaims>(&value) {
                Some(claims) if claims.is_live(now) => claims,
                _ => return Ok(None),
            },
            Some(seal) => {
                let Some(reference) = self.open_json::<SessionRef>(&value) else {
                    return Ok(None);
                };
                if now >= reference.expires_at {
                    return Ok(None);
                }
                let key = crate::opaque::digest(&reference.session_id);
                let record = match self.cache.get(&key) {
                    Some(record) => record,
                    None => {
                        let read_at = std::time::Instant::now();
                        let Some(record) = self.store.session(&key, now).await? else {
                            return Ok(None);
                        };
                        let record = Arc::new(record);
                        self.cache.put(&key, Arc::clone(&record), read_at);
                        record
                    }
                };
                if now >= record.last_seen.saturating_add(TOUCH_EVERY_SECS) {
                    self.touch_later(&key, &record, now);
                }
                let mut claims = record.claims.clone();
                claims.github_token = record
                    .sealed_token
                    .as_deref()
                    .and_then(|sealed| seal.open(sealed).ok())
                    .and_then(|plain| String::from_utf8(plain).ok());
                claims.github_refresh = seal.open_refresh(claims.github_refresh.take());
                claims.session_id = Some(key);
                if !claims.is_live(now) {
                    return Ok(None);
                }
                claims
            }
        };
        // A session lives `session.ttl` from its sign-in as configured now, whatever end it
        // was issued with: shortening the ttl shortens sessions already out.
        claims.exp = claims.exp.min(self.ends_at(claims.iat));
        if now >= claims.exp {
            return Ok(None);
        }
        let mark = self
            .revocations
            .mark(self.store.as_ref(), &claims.user_id)
            .await?;
        if mark.is_some_and(|m| claims.iat <= m.end_before) {
            return Ok(None);
        }
        Ok(Some(claims))
    }

    /// Does the request carry a session cookie this gate could have written, still within its
    /// lifetime? No store call: for diagnosing cookie trouble, never for letting anyone in.
    pub fn has_live_cookie(&self, headers: &HeaderMap, now: u64) -> bool {
        let Some(value) = cookies::read_session_value(headers, &self.cookie.name) else {
            return false;
        };
        match self.records {
            None => self
                .open_json::<SessionClaims>(&value)
                .is_some_and(|c| c.is_live(now) && now < self.ends_at(c.iat)),
            Some(_) => self
                .open_json::<SessionRef>(&value)
                .is_some_and(|r| now < r.expires_at),
        }
    }

    /// When a sign-in made at `signed_in_at` ends under the current `session.ttl` (sessions
    /// and the tokens minted from them alike).
    pub fn ends_at(&self, signed_in_at: u64) -> u64 {
        signed_in_at.saturating_add(self.ttl_secs)
    }

    /// When the revocation list asks this session to re-check its memberships now: the time
    /// of that request (results from before it must not be reused).
    pub fn recheck_requested(&self, claims: &SessionClaims) -> Option<u64> {
        self.revocations
            .latest(&claims.user_id)
            .map(|m| m.recheck_before)
            .filter(|&at| at > 0 && claims.refreshed_at <= at)
    }

    /// Is this identity's sign-in (made at `iat`) on the revocation list? For checks that
    /// cannot wait on the store (open websockets).
    pub fn ended(&self, user_id: &str, iat: u64) -> bool {
        self.revocations
            .latest(user_id)
            .is_some_and(|m| iat <= m.end_before)
    }

    /// A new session for a sign-in (always a new record id: a session planted before it is
    /// never adopted). Returns the `Set-Cookie` values to send.
    pub async fn create(
        &self,
        claims: &SessionClaims,
        req: &Parts,
        client_ip: Option<IpAddr>,
        now: u64,
    ) -> Result<Vec<String>, WriteError> {
        let claims = SessionClaims {
            session_id: None,
            ..self.after_revocation(claims).await?
        };
        self.write(&claims, req, client_ip, now).await
    }

    /// Store re-checked claims of an existing session. Returns the `Set-Cookie` values to send
    /// (none for a server-side session).
    pub async fn update(
        &self,
        claims: &SessionClaims,
        req: &Parts,
        client_ip: Option<IpAddr>,
        now: u64,
    ) -> Result<Vec<String>, WriteError> {
        if self.records.is_some() && claims.session_id.is_none() {
            return Ok(Vec::new());
        }
        self.write(claims, req, client_ip, now).await
    }

    /// A new session when `claims` carry no record id, else an update of that record.
    /// `client_ip` (the client as the gate resolved it) is recorded with a new one.
    async fn write(
        &self,
        claims: &SessionClaims,
        req: &Parts,
        client_ip: Option<IpAddr>,
        now: u64,
    ) -> Result<Vec<String>, WriteError> {
        let max_age = claims.exp.saturating_sub(now) as i64;
        let Some(seal) = &self.records else {
            let token = self.seal_json(claims).ok_or(WriteError::TooLarge)?;
            self.remember_login(claims).await?;
            return cookies::session_set_cookies(&self.cookie, &token, max_age, &req.headers)
                .ok_or(WriteError::TooLarge);
        };
        let sealed_token = match &claims.github_token {
            Some(token) => Some(
                seal.seal(token.as_bytes())
                    .map_err(|_| WriteError::TooLarge)?,
            ),
            None => None,
        };
        let github_refresh = seal
            .seal_refresh(claims.github_refresh.as_ref())
            .map_err(|_| WriteError::TooLarge)?;
        let record = SessionRecord {
            claims: SessionClaims {
                github_token: None,
                github_refresh,
                session_id: None,
                ..claims.clone()
            },
            sealed_token,
            created_at: claims.iat,
            last_seen: now,
            ip: client_ip.map(|ip| ip.to_string()),
            user_agent: req
                .headers
                .get(http::header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(|ua| ua.chars().take(256).collect()),
        };
        if let Some(key) = &claims.session_id {
            // An update (a re-check): where and how the session was made stays as it was.
            let Some(old) = self.store.session(key, now).await? else {
                return Err(WriteError::Ended);
            };
            let record = SessionRecord {
                ip: old.ip,
                user_agent: old.user_agent,
                ..record
            };
            // Only if it still exists: a sign-out or revocation since the read above wins.
            let replaced = self.store.update_session(key, &record).await?;
            self.cache.forget(key);
            return if replaced {
                Ok(Vec::new())
            } else {
                Err(WriteError::Ended)
            };
        }
        let sid = crate::opaque::random_token();
        self.store
            .put_session(&crate::opaque::digest(&sid), &record)
            .await?;
        self.remember_login(claims).await?;
        let token = self
            .seal_json(&SessionRef {
                session_id: sid,
                expires_at: claims.exp,
            })
            .ok_or(WriteError::TooLarge)?;
        cookies::session_set_cookies(&self.cookie, &token, max_age, &req.headers)
            .ok_or(WriteError::TooLarge)
    }

    /// A sign-in in the same second as a revocation of the user (sign out everywhere, then at
    /// once sign in again), or as the revocation list's floor, counts as made after it:
    /// revocations compare whole seconds. For every kind of sign-in happening now: sessions,
    /// one-time codes, token pairs, raw GitHub tokens.
    pub async fn after_revocation(
        &self,
        claims: &SessionClaims,
    ) -> Result<SessionClaims, StoreError> {
        let mut claims = claims.clone();
        let mark = self
            .revocations
            .mark(self.store.as_ref(), &claims.user_id)
            .await?;
        if let Some(m) = mark {
            if claims.iat <= m.end_before {
                claims.iat = m.end_before.saturating_add(1);
            }
            // Only a re-check mark moves the membership time: the list's floor lies seconds
            // ahead, and dating memberships after it would put off the next re-check.
            if m.recheck_before > 0 && claims.refreshed_at <= m.recheck_before {
                claims.refreshed_at = m.recheck_before.saturating_add(1);
            }
        }
        Ok(claims)
    }

    /// So an admin can name the user by login, and webhooks find them by id.
    async fn remember_login(&self, claims: &SessionClaims) -> Result<(), StoreError> {
        self.store
            .remember_login(
                &claims.login.to_ascii_lowercase(),
                &claims.user_id,
                claims.exp,
            )
            .await
    }

    /// End this one session on the server side (cookie sessions end when the cookie goes).
    pub async fn end(&self, claims: &SessionClaims) -> Result<(), StoreError> {
        if let Some(key) = &claims.session_id {
            self.end_record(key).await?;
        }
        Ok(())
    }

    /// Delete one server-side session by its record key; what it was, if it existed.
    pub async fn end_record(&self, key: &str) -> Result<Option<SessionRecord>, StoreError> {
        self.cache.forget(key);
        self.store.delete_session(key).await
    }

    /// End every session of a user, wherever they are: records deleted, and the revocation
    /// list told so cookie sessions and tokens end too, on every replica. Returns how many
    /// server-side records there were.
    pub async fn end_all(&self, user_id: &str, now: u64) -> Result<usize, StoreError> {
        self.add_mark(user_id, Revoke::End, now).await?;
        self.cache.forget_user(user_id);
        self.store.delete_user_sessions(user_id).await
    }

    /// Make every session of a user ask GitHub again before its next request.
    pub async fn recheck_all(&self, user_id: &str, now: u64) -> Result<(), StoreError> {
        self.add_mark(user_id, Revoke::Recheck, now).await
    }

    async fn add_mark(&self, user_id: &str, what: Revoke, now: u64) -> Result<(), StoreError> {
        // Sign-ins in the same second as an earlier revocation or the list's floor were dated
        // just after it (`after_revocation`): a revocation in that second must cover them too.
        let latest = self
            .revocations
            .mark(self.store.as_ref(), user_id)
            .await?
            .map_or(0, |m| m.end_before);
        let at = if latest >= now { latest + 1 } else { now };
        let (end_before, recheck_before) = match what {
            Revoke::End => (at, 0),
            Revoke::Recheck => (0, at),
        };
        let mark = UserMark {
            end_before,
            recheck_before,
            // No session or token made before the mark outlives this: sessions end
            // `session.ttl` after their sign-in, and the list keeps marks as long as the
            // longest ttl any replica declared (so shortening the ttl, revoking and lengthening
            // it again cannot bring a revoked session back).
            expires_at: now.saturating_add(self.revocations.keep()),
        };
        self.store.mark_user(user_id, mark).await?;
        self.revocations.note(user_id, mark);
        Ok(())
    }

    /// Write `last_seen` in the background; the copy here notes it at once, so the session's
    /// next requests do not write it again.
    fn touch_later(&self, key: &str, record: &SessionRecord, now: u64) {
        let touched = SessionRecord {
            last_seen: now,
            ..record.clone()
        };
        self.cache
            .put(key, Arc::new(touched), std::time::Instant::now());
        let (store, key) = (Arc::clone(&self.store), key.to_string());
        tokio::spawn(async move {
            if let Err(e) = store.touch_session(&key, now).await {
                tracing::debug!(error = %e, "could not note session activity");
            }
        });
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

/// A random key made once per process (see [`Sessions::new`]).
fn process_key() -> [u8; 32] {
    static KEY: std::sync::OnceLock<[u8; 32]> = std::sync::OnceLock::new();
    *KEY.get_or_init(|| {
        use rand::RngCore;
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        key
    })
}
