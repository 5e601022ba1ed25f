//! Upgraded connections (websockets) end when the credential that opened them does: a
//! session, one of Gatehouse's access tokens, a GitHub token, an API key or an OIDC token.
//!
//! An upgrade request is judged like any request; Pingora then tunnels the bytes both ways.
//! Pingora 0.9 has no timer hook for a tunnel, so the deadline is kept three ways: each chunk
//! either way is checked against it (request/response body filters), and the client-side read
//! timeout is lowered to the time left, so an idle tunnel ends on time too. The client then
//! gets a close frame (1008, "session expired") and the connection closes; the upstream
//! connection is dropped.
//!
//! A revoked session (signed out everywhere, revoked by an admin or by a GitHub webhook) ends
//! its tunnels too: every chunk checks the revocation list as this process has it, and at most
//! every [`RECHECK_EVERY`] a chunk starts a background read of the list (and of a server-side
//! session record) whose verdict the following chunks see. So does a membership re-check a
//! webhook asked for (removed from an org or team) after the tunnel was judged: the app got the
//! old groups with the upgrade, and only a new upgrade is judged on the new ones. The body
//! filters never wait themselves: Pingora polls them inside its tunnel loop, where a filter
//! that yields can lose bytes.
//!
//! Machine credentials are watched by what they are: an OIDC token's tunnel ends at its `exp`;
//! an API key's (or an OIDC issuer's) when a reload removes or changes its config entry (each
//! chunk compares the entry's fingerprint with the config in force); an access token's also
//! when its refresh family is revoked (a copied refresh token, a refused re-check).

use crate::identity::{Identity, Source};
use crate::runtime::Runtime;
use crate::store::UserMark;
use pingora::proxy::Session;
use pingora::{Error, ErrorType};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How often a tunnel's chunks start a fresh read of the revocation list and its record.
const RECHECK_EVERY: Duration = Duration::from_millis(250);

/// The client-side read timeout Pingora uses when none is set: an idle tunnel still ends then.
const DEFAULT_IDLE: Duration = Duration::from_secs(60);

/// A tunnel that must end when its session does.
pub(super) struct Upgraded {
    /// Unix seconds when the session ends.
    until: u64,
    /// The client read timeout in force before the deadline lowered it.
    idle: Duration,
    /// Whose sign-in (GitHub id, sign-in time) it rides on.
    user_id: String,
    signed_in_at: u64,
    /// Unix seconds when the upgrade request arrived (its memberships were current then).
    judged_at: u64,
    /// The server-side session record, if any.
    record: Option<Arc<str>>,
    /// The refresh family of the access token that opened it, if any.
    family: Option<Arc<str>>,
    /// The config entry (API key, OIDC issuer) that vouched for it, if any.
    entry: Option<Entry>,
    rechecked: Instant,
    /// Set once the session was found revoked (by a chunk, or by a background read).
    revoked: Arc<AtomicBool>,
    /// A background read is under way.
    reading: Arc<AtomicBool>,
}

/// A config entry a tunnel is bound to, as it was configured when the tunnel was judged.
enum Entry {
    ApiKey { name: String, fingerprint: [u8; 32] },
    OidcIssuer([u8; 32]),
}

impl Entry {
    /// Is the entry still configured, unchanged, in `app`'s config?
    fn still_there(&self, rt: &Runtime) -> bool {
        match self {
            Entry::ApiKey { name, fingerprint } => {
                rt.tokens.api_key_fingerprint(name).as_ref() == Some(fingerprint)
            }
            Entry::OidcIssuer(fingerprint) => rt.tokens.has_oidc_issuer(fingerprint),
        }
    }
}

/// For a response switching protocols on a request with an identity: what to watch.
/// `expires_at == 0` means the credential carries no end of its own (API keys): it is watched
/// by its config entry. `started`: when the request arrived.
pub(super) fn on_upgrade(
    session: &mut Session,
    identity: &Identity,
    started: Instant,
) -> Option<Upgraded> {
    let (family, entry) = match &identity.source {
        Source::AccessToken { family } => (Some(Arc::from(family.as_str())), None),
        Source::ApiKey { name, entry } => (
            None,
            Some(Entry::ApiKey {
                name: name.clone(),
                fingerprint: *entry,
            }),
        ),
        Source::Oidc { issuer } => (None, Some(Entry::OidcIssuer(*issuer))),
        Source::Session | Source::GithubToken | Source::Unknown => (None, None),
    };
    if identity.expires_at == 0 && entry.is_none() {
        return None;
    }
    let judged_at = SystemTime::now()
        .checked_sub(started.elapsed())
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs());
    let up = Upgraded {
        // No end of its own: until its entry goes.
        until: match identity.expires_at {
            0 => u64::MAX,
            at => at,
        },
        idle: session.get_read_timeout().unwrap_or(DEFAULT_IDLE),
        user_id: identity.user_id.clone(),
        signed_in_at: identity.signed_in_at,
        judged_at,
        record: identity.session_record.as_deref().map(Arc::from),
        family,
        entry,
        rechecked: Instant::now(),
        revoked: Arc::default(),
        reading: Arc::default(),
    };
    // Not an error yet: the 101 still goes out, and the first check ends it.
    let _ = check(session, &up);
    Some(up)
}

fn left(until: u64) -> Option<Duration> {
    let Some(end) = UNIX_EPOCH.checked_add(Duration::from_secs(until)) else {
        return Some(Duration::MAX);
    };
    end.duration_since(SystemTime::now())
        .ok()
        .filter(|d| !d.is_zero())
}

/// Does the user's mark on the revocation list end a tunnel of a sign-in made at
/// `signed_in_at`, judged at `judged_at`? Its sign-in was ended, or memberships were to be
/// re-checked after it was judged. Times are whole seconds and another replica's copy of the
/// list may be a moment behind, so a re-check asked for in the second before counts too.
fn cut(mark: Option<UserMark>, signed_in_at: u64, judged_at: u64) -> bool {
    mark.is_some_and(|m| {
        signed_in_at <= m.end_before
            || (m.recheck_before > 0 && judged_at <= m.recheck_before.saturating_add(1))
    })
}

/// Note a revocation: on the revocation list as this process has it now, and, every
/// [`RECHECK_EVERY`], after a fresh read in the background (never waiting here). `app` is the
/// config in force now (a reload may have removed the entry that vouched for the tunnel).
pub(super) fn watch(rt: &Runtime, up: &mut Upgraded) {
    if up.revoked.load(Ordering::Relaxed) {
        return;
    }
    if up
        .entry
        .as_ref()
        .is_some_and(|entry| !entry.still_there(rt))
    {
        up.revoked.store(true, Ordering::Relaxed);
        return;
    }
    let sessions = &rt.sessions;
    let mark = sessions.revocations.latest(&up.user_id);
    if cut(mark, up.signed_in_at, up.judged_at) {
        up.revoked.store(true, Ordering::Relaxed);
        return;
    }
    if up.rechecked.elapsed() < RECHECK_EVERY || up.reading.swap(true, Ordering::AcqRel) {
        return;
    }
    up.rechecked = Instant::now();
    let store = Arc::clone(&sessions.store);
    let revocations = Arc::clone(&sessions.revocations);
    let (user_id, signed_in_at, judged_at) = (up.user_id.clone(), up.signed_in_at, up.judged_at);
    let (record, family) = (up.record.clone(), up.family.clone());
    let (revoked, reading) = (Arc::clone(&up.revoked), Arc::clone(&up.reading));
    tokio::spawn(async move {
        // A store that cannot answer for long closes the tunnel too (fail closed).
        let ended = match revocations.mark(store.as_ref(), &user_id).await {
            Ok(mark) => cut(mark, signed_in_at, judged_at),
            Err(_) => true,
        };
        let now = crate::clock::unix_now();
        let gone = match &record {
            Some(key) if !ended => !matches!(store.session(key, now).await, Ok(Some(_))),
            _ => false,
        };
        let family_revoked = match &family {
            Some(id) if !ended && !gone => !matches!(store.is_revoked(id, now).await, Ok(false)),
            _ => false,
        };
        if ended || gone || family_revoked {
            revoked.store(true, Ordering::Relaxed);
        }
        reading.store(false, Ordering::Release);
    });
}

/// `Err` once the session has ended; otherwise the client read timeout is set to the time
/// left (at most the usual idle timeout).
pub(super) fn check(session: &mut Session, up: &Upgraded) -> pingora::Result<()> {
    if up.revoked.load(Ordering::Relaxed) {
        return Err(Error::explain(
            ErrorType::Custom("session revoked"),
            "the session of this upgraded connection was revoked",
        ));
    }
    match left(up.until) {
        Some(left) => {
            session.set_read_timeout(Some(left.min(up.idle)));
            Ok(())
        }
        None => Err(Error::explain(
            ErrorType::Custom("session expired"),
            "the session of this upgraded connection has ended",
        )),
    }
}

impl Upgraded {
    /// Over: expired or revoked.
    pub(super) fn expired(&self) -> bool {
        self.revoked.load(Ordering::Relaxed) || left(self.until).is_none()
    }
}

/// A websocket close frame (server to client: unmasked), status 1008 "policy violation".
const CLOSE_SESSION_EXPIRED: &[u8] = b"\x88\x11\x03\xf0session expired";

/// Tell the client its session ended: a close frame, then the connection closes.
pub(super) async fn close_expired(session: &mut Session) {
    let frame = bytes::Bytes::from_static(CLOSE_SESSION_EXPIRED);
    let _ = session.write_response_body(Some(frame), true).await;
    let _ = session.finish_body().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_frame_is_well_formed() {
        let f = CLOSE_SESSION_EXPIRED;
        assert_eq!(f[0], 0x88, "FIN + close opcode");
        assert_eq!(f[1] as usize, f.len() - 2, "unmasked, payload length");
        assert_eq!(u16::from_be_bytes([f[2], f[3]]), 1008);
    }

    #[test]
    fn an_ended_sign_in_or_a_later_recheck_cuts_the_tunnel() {
        let mark = |end_before, recheck_before| {
            Some(UserMark {
                end_before,
                recheck_before,
                expires_at: u64::MAX,
            })
        };
        assert!(!cut(None, 100, 100));
        assert!(cut(mark(100, 0), 100, 200), "signed out everywhere");
        assert!(!cut(mark(99, 0), 100, 200), "signed in again after it");
        assert!(
            cut(mark(0, 200), 100, 150),
            "re-check asked after the upgrade"
        );
        assert!(cut(mark(0, 200), 100, 201), "within the second before");
        assert!(
            !cut(mark(0, 200), 100, 202),
            "judged on the re-checked memberships"
        );
    }

    #[test]
    fn deadline_in_the_past_has_nothing_left() {
        assert!(left(1).is_none());
        assert!(left(u64::MAX).is_some());
        assert!(left(crate::clock::unix_now() + 60).is_some());
    }
}
