//! `/oauth2/sign_out[?rd=PATH][&everywhere=1]`: end this session (its server-side record
//! too), or with `everywhere=1` every session and token of the user on every replica; with
//! `github.revoke_on_sign_out`, also revoke the GitHub token at GitHub.

use super::query_param;
use super::redirect::safe_redirect;
use crate::app::App;
use crate::reply::Reply;
use http::request::Parts;

/// Lands on `rd`, or on the sign-in page (landing on `/` would sign the person straight back
/// in through GitHub). The cookie is cleared whatever happens; when the server side could not
/// be told, the person is told so (503) instead of being shown a sign-out that did not happen.
pub async fn sign_out(app: &App, req: &Parts, now: u64) -> Reply {
    let target = match query_param(req, "rd") {
        Some(rd) => safe_redirect(
            Some(&rd),
            &app.settings.public_url,
            &app.settings.proxy_prefix,
        ),
        None => format!("{}/sign_in", app.settings.proxy_prefix),
    };
    let everywhere = query_param(req, "everywhere").is_some_and(|v| v == "1" || v == "true");
    let clear = app.sessions.clear(&req.headers);
    let ended = match app.sessions.read(&req.headers, now).await {
        Ok(ended) => ended,
        Err(e) => return super::credentials::store_unavailable(req, &e).cookies(clear),
    };
    let Some(claims) = ended else {
        return Reply::redirect(target).cookies(clear);
    };
    let result = if everywhere {
        app.sessions.end_all(&claims.sub, now).await.map(|_| ())
    } else {
        app.sessions.end(&claims).await
    };
    tracing::info!(
        target: "gatehouse::audit",
        event = "logout",
        login = %claims.login,
        user_id = %claims.sub,
        everywhere,
        "signed out{}", if everywhere { " everywhere" } else { "" }
    );
    if app.settings.github.revoke_on_sign_out {
        if let Some(token) = &claims.ght {
            match app.github.revoke_token(token).await {
                Ok(()) => tracing::info!(
                    target: "gatehouse::audit",
                    event = "github_token_revoked",
                    login = %claims.login,
                    "GitHub token revoked at sign-out"
                ),
                Err(e) => {
                    tracing::warn!(error = %e, login = %claims.login, "could not revoke the GitHub token at sign-out")
                }
            }
        }
    }
    match result {
        Ok(()) => Reply::redirect(target).cookies(clear),
        Err(e) => super::credentials::store_unavailable(req, &e).cookies(clear),
    }
}
