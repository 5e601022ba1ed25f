//! The token endpoints: a program's one-time code ([`send_code`]), and
//! `POST /oauth2/token` (code → tokens), `/oauth2/refresh` (rotate) and `/oauth2/pat` (GitHub
//! personal access token → session and tokens).

use super::facts::RequestFacts;
use super::profile;
use crate::github::GithubError;
use crate::pages::Refusal;
use crate::reply::Reply;
use crate::runtime::Runtime;
use crate::session::SessionClaims;
use crate::store::{StoreError, TokenOrigin};
use crate::tokens::refresh::RefreshError;
use crate::tokens::{digest, random_token, CodeGrant, CodeTake};
use base64::Engine;
use http::request::Parts;
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// One-time codes live this long.
pub const CODE_TTL_SECS: u64 = 60;

/// The token endpoints' refusals, in OAuth's words (`invalid_grant`, …).
fn error(status: u16, code: &'static str, message: impl Into<String>) -> Reply {
    Refusal::api(status, code, message).reply(false)
}

/// `uri` with `params` appended to its query.
pub fn with_query(uri: &str, params: &[(&str, &str)]) -> String {
    match url::Url::parse(uri) {
        Ok(mut url) => {
            url.query_pairs_mut().extend_pairs(params);
            url.to_string()
        }
        Err(_) => uri.to_string(),
    }
}

/// Mint a one-time code for `grant` (living [`CODE_TTL_SECS`] from `now`) and send the browser
/// to the client's redirect URI with it and the client's `state`.
pub async fn send_code(rt: &Runtime, mut grant: CodeGrant, state: Option<&str>, now: u64) -> Reply {
    let code = random_token();
    grant.expires_at = now + CODE_TTL_SECS;
    if let Err(e) = rt.tokens.put_code(&digest(&code), &grant).await {
        tracing::warn!(error = %e, "could not store a one-time code");
        return Refusal::GithubUnavailable {
            start_url: rt.start_url("/"),
        }
        .reply(true);
    }
    let mut params = vec![("code", code.as_str())];
    if let Some(state) = state {
        params.push(("state", state));
    }
    Reply::redirect(with_query(&grant.client_redirect_uri, &params))
}

/// SPAs on another origin call the token endpoints with `fetch`: answer the configured
/// clients' origins (and their preflights). No cookies are involved, so no credentials mode.
pub fn with_cors(rt: &Runtime, req: &Parts, reply: Reply) -> Reply {
    let origin = req
        .headers
        .get(http::header::ORIGIN)
        .and_then(|v| v.to_str().ok());
    let reply = reply.header("Vary", "Origin");
    match rt.tokens.cors_origin(origin) {
        Some(origin) => reply
            .header("Access-Control-Allow-Origin", origin.to_string())
            .header("Access-Control-Allow-Methods", "POST")
            .header("Access-Control-Allow-Headers", "content-type")
            .header("Access-Control-Max-Age", "600"),
        None => reply,
    }
}

fn parse_json<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, Reply> {
    serde_json::from_slice(body).map_err(|e| {
        error(
            400,
            "invalid_request",
            format!("the body must be JSON: {e}"),
        )
    })
}

#[derive(Deserialize)]
struct TokenRequest {
    code: String,
    client_redirect_uri: String,
    code_verifier: Option<String>,
}

/// `POST /oauth2/token`
pub async fn token(rt: &Runtime, body: &[u8], now: u64) -> Reply {
    let req: TokenRequest = match parse_json(body) {
        Ok(r) => r,
        Err(reply) => return reply,
    };
    let grant = match rt.tokens.take_code(&digest(&req.code), now).await {
        Ok(CodeTake::Granted(grant)) => *grant,
        Ok(CodeTake::AlreadyUsed) => {
            tracing::warn!("a one-time code was presented twice");
            return error(
                400,
                "invalid_grant",
                "the code was already used; sign in again",
            );
        }
        Ok(CodeTake::Unknown) => {
            return error(
                400,
                "invalid_grant",
                "the code is unknown or expired (codes live 60 s); sign in again",
            )
        }
        Err(e) => return unavailable(e),
    };
    if grant.client_redirect_uri != req.client_redirect_uri {
        return error(
            400,
            "invalid_grant",
            "client_redirect_uri differs from the one the code was issued for",
        );
    }
    match (&grant.code_challenge, &req.code_verifier) {
        (Some(challenge), Some(verifier)) if s256(verifier) == *challenge => {}
        (Some(_), Some(_)) => {
            return error(
                400,
                "invalid_grant",
                "code_verifier does not match the code_challenge",
            )
        }
        (Some(_), None) => {
            return error(
                400,
                "invalid_grant",
                "code_verifier is missing (a code_challenge was sent)",
            )
        }
        (None, Some(_)) => {
            return error(
                400,
                "invalid_request",
                "code_verifier sent, but no code_challenge was sent to /oauth2/start",
            )
        }
        (None, None) => {}
    }
    // Signed out everywhere, or ended by an admin or a webhook, after the code was issued:
    // the code is as over as the sign-in it stands for.
    match sign_in_ended(rt, &grant.session).await {
        Ok(false) => {}
        Ok(true) => {
            tracing::info!(
                target: "gatehouse::audit",
                event = "token_refused",
                reason = "the sign-in was ended before its code was exchanged",
                login = %grant.session.login,
                user_id = %grant.session.user_id,
                "one-time code refused"
            );
            return error(
                400,
                "invalid_grant",
                "this sign-in was ended (signed out everywhere, or revoked) before the code was exchanged; sign in again",
            );
        }
        Err(e) => return unavailable(e),
    }
    let issued = rt
        .tokens
        .issuer()
        .start(&grant.session, TokenOrigin::CodeExchange, now)
        .await;
    match issued {
        Ok(pair) => {
            tracing::info!(login = %grant.session.login, "tokens issued for a one-time code");
            Reply::json(200, &pair.json())
        }
        Err(e) => refresh_failure(e),
    }
}

/// Has this sign-in ended: on the revocation list (its floor included), or past `session.ttl`
/// as configured now? (A fresh copy of the list; `Err` when the store cannot say, and the
/// caller refuses.)
async fn sign_in_ended(rt: &Runtime, session: &SessionClaims) -> Result<bool, StoreError> {
    if crate::clock::unix_now() >= rt.sessions.ends_at(session.iat) {
        return Ok(true);
    }
    let mark = rt
        .sessions
        .revocations
        .mark(rt.sessions.store.as_ref(), &session.user_id)
        .await?;
    Ok(mark.is_some_and(|m| session.iat <= m.end_before))
}

pub(super) fn s256(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

#[derive(Deserialize)]
struct RefreshRequest {
    refresh_token: String,
}

/// `POST /oauth2/refresh`: re-applies the allow rules with fresh memberships, so someone removed
/// cannot refresh.
pub async fn refresh(rt: &Runtime, body: &[u8], now: u64) -> Reply {
    let req: RefreshRequest = match parse_json(body) {
        Ok(r) => r,
        Err(reply) => return reply,
    };
    let issuer = rt.tokens.issuer();
    let (family_id, family) = match issuer.redeem(&req.refresh_token, now).await {
        Ok(found) => found,
        Err(e) => return refresh_failure(e),
    };
    // Signed out everywhere, ended by an admin, or the app's authorization revoked: the
    // family ends too.
    match sign_in_ended(rt, &family.session).await {
        Ok(false) => {}
        Ok(true) => {
            let _ = issuer.revoke(&family_id, now).await;
            return error(
                401,
                "invalid_grant",
                "this sign-in was ended (signed out everywhere, or revoked); sign in again",
            );
        }
        Err(e) => return unavailable(e),
    }
    let Some(github_token) = family.session.github_token.as_deref() else {
        return error(
            401,
            "invalid_grant",
            "this sign-in cannot be refreshed; sign in again",
        );
    };
    let mut claims = match profile::session_claims(rt, github_token, now).await {
        Ok(claims) if claims.user_id == family.session.user_id => claims,
        Ok(_) | Err(GithubError::Status { status: 401, .. }) => {
            tracing::info!(
                target: "gatehouse::audit",
                event = "refresh_refused",
                reason = "GitHub no longer accepts the sign-in; its tokens are revoked",
                login = %family.session.login,
                user_id = %family.session.user_id,
                "refresh refused"
            );
            let _ = issuer.revoke(&family_id, now).await;
            return error(
                401,
                "invalid_grant",
                "GitHub no longer accepts this sign-in; sign in again",
            );
        }
        // GitHub would not say (an org's restrictions, single sign-on, a scope, a rate
        // limit): not "no longer allowed", so nothing is revoked.
        Err(GithubError::Refused(refusal)) => {
            return profile::refused(rt, refusal, "/").reply(false);
        }
        Err(e) => {
            tracing::warn!(error = %e, "refresh: GitHub unavailable");
            return Refusal::Api {
                status: 503,
                error: "github_unavailable",
                message: "GitHub could not be asked to confirm access; try again shortly".into(),
                retry_after: Some(30),
            }
            .reply(false);
        }
    };
    if !profile::admitted(rt, &claims) {
        tracing::info!(
            target: "gatehouse::audit",
            event = "refresh_refused",
            reason = "no longer allowed; the sign-in's tokens are revoked",
            login = %claims.login,
            user_id = %claims.user_id,
            "refresh refused"
        );
        let _ = issuer.revoke(&family_id, now).await;
        return error(
            403,
            "access_denied",
            format!("{} is no longer allowed here", claims.login),
        );
    }
    // The sign-in keeps its start and end: refreshing does not extend it.
    claims.iat = family.session.iat;
    claims.exp = family
        .session
        .exp
        .min(rt.sessions.ends_at(family.session.iat));
    match issuer.rotate(&family_id, &family, &claims, now).await {
        Ok(pair) => Reply::json(200, &pair.json()),
        Err(e) => refresh_failure(e),
    }
}

#[derive(Deserialize)]
struct PatRequest {
    token: String,
}

/// `POST /oauth2/pat`: a GitHub personal access token in, a session cookie and tokens out.
pub async fn pat(rt: &Runtime, facts: &RequestFacts<'_>, body: &[u8], now: u64) -> Reply {
    let req = facts.req;
    let pat: PatRequest = match parse_json(body) {
        Ok(r) => r,
        Err(reply) => return reply,
    };
    let claims = match profile::session_for_github_token(rt, pat.token.trim(), now).await {
        Ok(claims) => claims,
        Err(failure) => return failure.reply(false),
    };
    if !profile::admitted(rt, &claims) {
        crate::observe::metrics().login(crate::observe::LoginResult::Denied);
        tracing::info!(
            target: "gatehouse::audit",
            event = "login",
            result = "denied",
            login = %claims.login,
            user_id = %claims.user_id,
            via = "pat",
            "personal access token refused: not allowed"
        );
        return Refusal::Forbidden {
            login: Some(claims.login),
            sign_out_url: format!("{}/sign_out", rt.settings.proxy_prefix),
        }
        .reply(false);
    }
    // A sign-in made now, after any revocation of this second (the cookie below agrees).
    let claims = match rt.sessions.after_revocation(&claims).await {
        Ok(claims) => claims,
        Err(e) => return super::credentials::store_unavailable(&e).reply(facts.browser),
    };
    let pair = match rt
        .tokens
        .issuer()
        .start(&claims, TokenOrigin::Pat, now)
        .await
    {
        Ok(pair) => pair,
        Err(e) => return refresh_failure(e),
    };
    crate::observe::metrics().login(crate::observe::LoginResult::Succeeded);
    tracing::info!(
        target: "gatehouse::audit",
        event = "login",
        result = "succeeded",
        login = %claims.login,
        user_id = %claims.user_id,
        via = "pat",
        "signed in with a personal access token"
    );
    let cookies = match rt.sessions.create(&claims, req, facts.client_ip, now).await {
        Ok(cookies) => cookies,
        Err(crate::session::WriteError::Store(e)) => {
            return super::credentials::store_unavailable(&e).reply(facts.browser)
        }
        // The token pair still works without a cookie.
        Err(crate::session::WriteError::TooLarge | crate::session::WriteError::Ended) => Vec::new(),
    };
    Reply::json(200, &pair.json()).cookies(cookies)
}

fn refresh_failure(e: RefreshError) -> Reply {
    match e {
        RefreshError::Malformed | RefreshError::Unknown => {
            error(401, "invalid_grant", e.to_string())
        }
        RefreshError::Reused => {
            crate::observe::metrics().refresh_token_reused();
            tracing::warn!(
                target: "gatehouse::audit",
                event = "refresh_token_reused",
                reason = "an old refresh token came back: it was copied; every token of its sign-in is revoked",
                "refresh token reused: the sign-in is revoked"
            );
            error(401, "invalid_grant", e.to_string())
        }
        RefreshError::Store(e) => unavailable(e),
        RefreshError::Sign(m) => {
            tracing::error!(error = %m, "could not sign a token");
            crate::observe::metrics().error(crate::observe::ErrorCause::Other);
            error(500, "server_error", "could not sign a token")
        }
    }
}

fn unavailable(e: StoreError) -> Reply {
    tracing::warn!(error = %e, "token store unavailable");
    crate::observe::metrics().error(crate::observe::ErrorCause::Store);
    Refusal::Unavailable {
        error: "store_unavailable",
        message: "the token store is unavailable; try again shortly",
    }
    .reply(false)
}
