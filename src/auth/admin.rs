//! Session administration for holders of the `admin` role:
//! `GET /oauth2/admin/sessions?user=LOGIN`, `DELETE /oauth2/admin/sessions/{id}` and
//! `DELETE /oauth2/admin/users/{login}/sessions`. Listings never include secrets: the id is
//! the record's store key, a hash that cannot be turned back into a cookie.

use super::access::{check, Access, DenyAs, Granted, Judge};
use super::query_param;
use crate::app::App;
use crate::identity::Identity;
use crate::reply::Reply;
use crate::store::StoreError;
use http::request::Parts;
use http::Method;
use serde_json::json;

/// Answer `/oauth2/admin/…` (`rest` is what follows `/admin`).
pub async fn handle(app: &App, req: &Parts, rest: &str, now: u64) -> Reply {
    let admin = match check(app, req, Judge::IdentityOnly, now, DenyAs::Api).await {
        Access::Allow(Granted {
            identity: Some(identity),
            ..
        }) if identity.roles.iter().any(|r| r == "admin") => identity,
        Access::Allow(Granted {
            identity: Some(_), ..
        }) => {
            return error(
                403,
                "forbidden",
                "session administration needs the admin role (access.admin_users)",
            )
        }
        Access::Allow(_) => return error(401, "unauthorized", "sign in as an admin first"),
        Access::Deny(reply) => return reply,
    };
    let segments: Vec<&str> = rest.trim_start_matches('/').split('/').collect();
    let result = match (&req.method, segments.as_slice()) {
        (&Method::GET, ["sessions"]) => list(app, req, now).await,
        (&Method::DELETE, ["sessions", id]) => revoke_one(app, &admin, id).await,
        (&Method::DELETE, ["users", login, "sessions"]) => {
            revoke_user(app, &admin, login, now).await
        }
        (_, ["sessions"] | ["sessions", _] | ["users", _, "sessions"]) => {
            return error(
                405,
                "method_not_allowed",
                "use GET to list and DELETE to revoke",
            )
        }
        _ => return error(404, "not_found", "no such admin endpoint"),
    };
    result.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "session store unavailable for an admin request");
        error(503, "store_unavailable", &e.to_string()).header("Retry-After", "5")
    })
}

fn error(status: u16, code: &str, message: &str) -> Reply {
    Reply::json(status, &json!({"error": code, "message": message}))
}

fn needs_records() -> Reply {
    error(
        409,
        "sessions_not_stored",
        "with session.store = \"cookie\" sessions live only in browsers and cannot be listed or revoked one by one; set session.store = \"redis\" (or \"memory\"), or revoke all of a user's sessions with DELETE /oauth2/admin/users/{login}/sessions",
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

async fn list(app: &App, req: &Parts, now: u64) -> Result<Reply, StoreError> {
    if !app.sessions.server_side() {
        return Ok(needs_records());
    }
    let Some(login) = query_param(req, "user").as_deref().and_then(login_param) else {
        return Ok(error(
            400,
            "bad_request",
            "name the user whose sessions to list: ?user=LOGIN",
        ));
    };
    let Some(user_id) = app.sessions.store.user_id_for(&login).await? else {
        return Ok(Reply::json(200, &json!({"sessions": []})));
    };
    let mut sessions = app.sessions.store.user_sessions(&user_id, now).await?;
    sessions.sort_by_key(|(_, r)| std::cmp::Reverse(r.last_seen));
    let listed: Vec<serde_json::Value> = sessions
        .into_iter()
        .map(|(id, r)| {
            json!({
                "id": id,
                "user": r.claims.login,
                "user_id": r.claims.sub,
                "created_at": r.created_at,
                "last_seen": r.last_seen,
                "expires_at": r.claims.exp,
                "ip": r.ip,
                "user_agent": r.user_agent,
            })
        })
        .collect();
    Ok(Reply::json(200, &json!({ "sessions": listed })))
}

async fn revoke_one(app: &App, admin: &Identity, id: &str) -> Result<Reply, StoreError> {
    if !app.sessions.server_side() {
        return Ok(needs_records());
    }
    let id_ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !id_ok {
        return Ok(error(404, "not_found", "no session has that id"));
    }
    Ok(match app.sessions.end_record(id).await? {
        Some(record) => {
            tracing::info!(
                target: "gatehouse::audit",
                event = "session_revoked",
                by = %admin.login,
                login = %record.claims.login,
                user_id = %record.claims.sub,
                "an admin revoked a session"
            );
            Reply::json(200, &json!({"revoked": 1, "user": record.claims.login}))
        }
        None => error(
            404,
            "not_found",
            "no session has that id (it may have ended already)",
        ),
    })
}

async fn revoke_user(
    app: &App,
    admin: &Identity,
    login: &str,
    now: u64,
) -> Result<Reply, StoreError> {
    let Some(login) = login_param(login) else {
        return Ok(error(400, "bad_request", "that is not a GitHub login"));
    };
    let Some(user_id) = app.sessions.store.user_id_for(&login).await? else {
        return Ok(error(
            404,
            "not_found",
            "this gate knows no sign-in by that login (within the session lifetime)",
        ));
    };
    let ended = app.sessions.end_all(&user_id, now).await?;
    tracing::info!(
        target: "gatehouse::audit",
        event = "sessions_revoked",
        by = %admin.login,
        login = %login,
        user_id = %user_id,
        sessions = ended,
        "an admin ended every session of a user"
    );
    Ok(Reply::json(
        200,
        &json!({"user": login, "user_id": user_id, "sessions_ended": ended, "tokens_ended": true}),
    ))
}
