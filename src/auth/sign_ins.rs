//! Every live sign-in of a user, as the admin listing shows it: server-side browser sessions,
//! token families (code exchange and `/oauth2/pat`) and raw GitHub tokens some replica
//! accepted. Sign-ins the revocation list or `session.ttl` has ended are left out, and nothing
//! secret is shown.

use crate::runtime::Runtime;
use crate::store::StoreError;
use serde_json::{json, Value};

/// The sign-ins of `user_id` (known by `login`), most recently active first.
pub async fn of_user(
    rt: &Runtime,
    login: &str,
    user_id: &str,
    now: u64,
) -> Result<Vec<Value>, StoreError> {
    let store = rt.sessions.store.as_ref();
    let mark = rt.sessions.revocations.mark(store, user_id).await?;
    // Ended by the list (its floor included), or past `session.ttl` as configured now.
    let ended = |signed_in_at: u64| {
        now >= rt.sessions.ends_at(signed_in_at)
            || mark.is_some_and(|m| signed_in_at <= m.end_before)
    };
    // (last_seen, entry) so the newest sort first whatever their kind.
    let mut listed: Vec<(u64, Value)> = Vec::new();
    if rt.sessions.server_side() {
        for (id, r) in store.user_sessions(user_id, now).await? {
            if ended(r.claims.iat) {
                continue;
            }
            listed.push((
                r.last_seen,
                json!({
                    "id": id,
                    "kind": "session",
                    "user": r.claims.login,
                    "user_id": r.claims.user_id,
                    "created_at": r.created_at,
                    "last_seen": r.last_seen,
                    "expires_at": r.claims.exp.min(rt.sessions.ends_at(r.claims.iat)),
                    "ip": r.ip,
                    "user_agent": r.user_agent,
                }),
            ));
        }
    }
    for (id, f) in rt.tokens.store.user_families(user_id, now).await? {
        if ended(f.session.iat) {
            continue;
        }
        // Access-token use is not recorded; the last refresh is the last sign of life.
        let last_seen = f.issued_at.max(f.session.iat);
        listed.push((
            last_seen,
            json!({
                "id": id,
                "kind": f.origin.as_str(),
                "user": f.session.login,
                "user_id": f.session.user_id,
                "created_at": f.session.iat,
                "last_seen": last_seen,
                "expires_at": f.expires_at.min(rt.sessions.ends_at(f.session.iat)),
                "ip": null,
                "user_agent": null,
            }),
        ));
    }
    for (id, t) in store.user_github_tokens(user_id, now).await? {
        if ended(t.checked_at) {
            continue;
        }
        listed.push((
            t.checked_at,
            json!({
                "id": id,
                "kind": "github_token",
                "user": login,
                "user_id": user_id,
                "created_at": t.checked_at,
                "last_seen": t.checked_at,
                "expires_at": t.expires_at,
                "ip": null,
                "user_agent": null,
            }),
        ));
    }
    listed.sort_by_key(|(seen, _)| std::cmp::Reverse(*seen));
    Ok(listed.into_iter().map(|(_, v)| v).collect())
}

/// What ending a user's sign-ins found.
#[derive(Debug, Clone, Copy)]
pub struct Ended {
    /// Server-side session records deleted.
    pub sessions: usize,
    /// Token families (code exchange, `/oauth2/pat`) revoked.
    pub token_sign_ins: usize,
    /// One-time codes (of a CLI/SPA sign-in) dropped before they were exchanged.
    pub codes: usize,
}

/// End every sign-in of `user_id`, however it was made, on every replica: the revocation list
/// ends everything signed in until now wherever it is checked, and the user's token families
/// are revoked as well, so their refreshes and access tokens stop even where a replica's copy
/// of the list is a moment old, and their one-time codes not yet exchanged are dropped. The
/// records, not the list's times, are what end them everywhere at once, even on a replica whose
/// clock is behind the one that signed them in. Used by the admin revoke, "sign out
/// everywhere" and the webhooks that end a user.
pub async fn end_user(rt: &Runtime, user_id: &str, now: u64) -> Result<Ended, StoreError> {
    let families = rt.tokens.store.user_families(user_id, now).await?;
    let sessions = rt.sessions.end_all(user_id, now).await?;
    for (id, _) in &families {
        end_family(rt, id, now).await?;
    }
    let codes = rt.tokens.store.drop_user_codes(user_id, now).await?;
    Ok(Ended {
        sessions,
        token_sign_ins: families.len(),
        codes,
    })
}

/// Revoke one token family: its refresh token and the access tokens minted from it.
pub async fn end_family(rt: &Runtime, id: &str, now: u64) -> Result<(), StoreError> {
    match rt.tokens.issuer().revoke(id, now).await {
        Ok(()) => Ok(()),
        Err(crate::tokens::refresh::RefreshError::Store(e)) => Err(e),
        Err(e) => Err(StoreError::Unavailable(e.to_string())),
    }
}
