//! Session administration for holders of the `admin` role:
//! `GET /oauth2/admin/sessions?user=LOGIN`, `DELETE /oauth2/admin/sessions/{id}` and
//! `DELETE /oauth2/admin/users/{login}/sessions`. Every kind of sign-in is listed and ended
//! ([`super::sign_ins`]). Listings never include secrets: a session's id is the record's store
//! key, a hash that cannot be turned back into a cookie; a token family's id is public (every
//! access token carries it) and useless without the refresh secret.

use super::access::{decide, Access, Granted};
use super::facts::{DenyAs, Judge, RequestFacts};
use super::query_param;
use crate::identity::Identity;
use crate::pages::{Denied, Refusal};
use crate::reply::Reply;
use crate::runtime::Runtime;
use crate::store::StoreError;
use http::request::Parts;
use http::Method;
use serde_json::json;

/// Answer `/oauth2/admin/…` (`rest` is what follows `/admin`).
pub async fn handle(
    rt: &Runtime,
    facts: &RequestFacts<'_>,
    rest: &str,
    now: u64,
) -> Result<Reply, Denied> {
    let req = facts.req;
    let judged = RequestFacts::read(rt, req, facts.client_ip, Judge::IdentityOnly, DenyAs::Api);
    let admin = match decide(rt, &judged, now).await {
        Access::Allow(Granted {
            identity: Some(identity),
            ..
        }) if identity.roles.iter().any(|r| r == "admin") => identity,
        Access::Allow(Granted {
            identity: Some(_), ..
        }) => {
            return Ok(error(
                403,
                "forbidden",
                "session administration needs the admin role (access.admin_users)",
            ))
        }
        Access::Allow(_) => return Ok(error(401, "unauthorized", "sign in as an admin first")),
        Access::Deny(denied) => return Err(denied),
    };
    let segments: Vec<&str> = rest.trim_start_matches('/').split('/').collect();
    let result = match (&req.method, segments.as_slice()) {
        (&Method::GET, ["sessions"]) => list(rt, req, now).await,
        (&Method::DELETE, ["sessions", id]) => revoke_one(rt, &admin, id, now).await,
        (&Method::DELETE, ["users", login, "sessions"]) => {
            revoke_user(rt, &admin, login, now).await
        }
        (_, ["sessions"] | ["sessions", _] | ["users", _, "sessions"]) => {
            return Ok(error(
                405,
                "method_not_allowed",
                "use GET to list and DELETE to revoke",
            ))
        }
        _ => return Ok(error(404, "not_found", "no such admin endpoint")),
    };
    Ok(result.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "session store unavailable for an admin request");
        Refusal::api_store_unavailable(&e).reply(false)
    }))
}

/// Session administration's refusals (always JSON).
fn error(status: u16, code: &'static str, message: &str) -> Reply {
    Refusal::api(status, code, message).reply(false)
}

fn needs_records() -> Reply {
    error(
        409,
        "sessions_not_stored",
        "with session.store = \"cookie\" browser sessions live only in their cookies and cannot be revoked one by one (token sign-ins can, by the id the listing shows); set session.store = \"redis\" (or \"memory\"), or revoke all of a user's sessions with DELETE /oauth2/admin/users/{login}/sessions",
    )
}

/// A login as given in a path or query, if it could be a GitHub login.
fn login_param(text: &str) -> Option<String> {
    let login = percent_encoding::percent_decode_str(text)
        .decode_utf8()
        .ok()?
        .to_ascii_lowercase();
    crate::policy::is_github_login(&login).then_some(login)
}

async fn list(rt: &Runtime, req: &Parts, now: u64) -> Result<Reply, StoreError> {
    let Some(login) = query_param(req, "user").as_deref().and_then(login_param) else {
        return Ok(error(
            400,
            "bad_request",
            "name the user whose sessions to list: ?user=LOGIN",
        ));
    };
    let listed = match rt.sessions.store.user_id_for(&login).await? {
        Some(user_id) => super::sign_ins::of_user(rt, &login, &user_id, now).await?,
        None => Vec::new(),
    };
    let mut answer = json!({
        "sessions": listed,
        "cookie_sessions_listed": rt.sessions.server_side(),
    });
    if !rt.sessions.server_side() {
        // Say so rather than pretend the list is whole.
        answer["note"] = json!(
            "with session.store = \"cookie\" browser sessions live only in their cookies and are not listed; DELETE /oauth2/admin/users/{login}/sessions still ends them"
        );
    }
    Ok(Reply::json(200, &answer))
}

fn id_ok(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// End one sign-in by its listed id: a server-side session, or a token family (its refresh
/// token and the access tokens minted from it).
async fn revoke_one(
    rt: &Runtime,
    admin: &Identity,
    id: &str,
    now: u64,
) -> Result<Reply, StoreError> {
    if !id_ok(id) {
        return Ok(error(404, "not_found", "no session has that id"));
    }
    if id.starts_with(crate::tokens::github_tokens::LISTING_PREFIX) {
        return Ok(error(
            409,
            "not_revocable_alone",
            "a raw GitHub token is GitHub's: revoke it at GitHub, or end all of the user's sign-ins with DELETE /oauth2/admin/users/{login}/sessions (its next use then asks GitHub again)",
        ));
    }
    if rt.sessions.server_side() {
        if let Some(record) = rt.sessions.end_record(id).await? {
            audit_one(admin, &record.claims, "session");
            return Ok(Reply::json(
                200,
                &json!({"revoked": 1, "kind": "session", "user": record.claims.login}),
            ));
        }
    }
    if let Some(family) = rt.tokens.store.family(id, now).await? {
        super::sign_ins::end_family(rt, id, now).await?;
        let kind = family.origin.as_str();
        audit_one(admin, &family.session, kind);
        return Ok(Reply::json(
            200,
            &json!({"revoked": 1, "kind": kind, "user": family.session.login}),
        ));
    }
    if !rt.sessions.server_side() {
        return Ok(needs_records());
    }
    Ok(error(
        404,
        "not_found",
        "no session has that id (it may have ended already)",
    ))
}

fn audit_one(admin: &Identity, claims: &crate::session::SessionClaims, kind: &str) {
    tracing::info!(
        target: "gatehouse::audit",
        event = "session_revoked",
        by = %admin.login,
        login = %claims.login,
        user_id = %claims.user_id,
        kind,
        "an admin revoked a session"
    );
}

async fn revoke_user(
    rt: &Runtime,
    admin: &Identity,
    login: &str,
    now: u64,
) -> Result<Reply, StoreError> {
    let Some(login) = login_param(login) else {
        return Ok(error(400, "bad_request", "that is not a GitHub login"));
    };
    let Some(user_id) = rt.sessions.store.user_id_for(&login).await? else {
        return Ok(error(
            404,
            "not_found",
            "this gate knows no sign-in by that login (within the session lifetime)",
        ));
    };
    let ended = super::sign_ins::end_user(rt, &user_id, now).await?;
    tracing::info!(
        target: "gatehouse::audit",
        event = "sessions_revoked",
        by = %admin.login,
        login = %login,
        user_id = %user_id,
        sessions = ended.sessions,
        token_sign_ins = ended.token_sign_ins,
        codes = ended.codes,
        "an admin ended every session of a user"
    );
    Ok(Reply::json(
        200,
        &json!({
            "user": login,
            "user_id": user_id,
            "sessions_ended": ended.sessions,
            "token_sign_ins_ended": ended.token_sign_ins,
            "codes_ended": ended.codes,
            "tokens_ended": true,
        }),
    ))
}
