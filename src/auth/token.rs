//! The token endpoints: a program's one-time code ([`send_code`]), and
//! `POST /oauth2/token` (RFC 6749: `grant_type=authorization_code`, code → tokens, and
//! `grant_type=refresh_token`, rotate; a form or the older JSON body), `/oauth2/refresh` (the
//! older JSON refresh), `/oauth2/revoke` (RFC 7009) and `/oauth2/pat` (GitHub personal access
//! token → session and tokens).

use super::facts::RequestFacts;
use super::profile;
use super::token_request::{oauth_error, Dialect, TokenParams};
use crate::github::GithubError;
use crate::pages::Refusal;
use crate::reply::Reply;
use crate::runtime::Runtime;
use crate::session::SessionClaims;
use crate::store::{StoreError, TokenOrigin};
use crate::tokens::refresh::RefreshError;
use crate::tokens::{clients, digest, random_token, ClientAuth, CodeGrant, CodeTake};
use base64::Engine;
use http::request::Parts;
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// One-time codes live this long.
pub const CODE_TTL_SECS: u64 = 60;

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
        oauth_error(
            Dialect::Legacy,
            400,
            "invalid_request",
            format!("the body must be JSON: {e}"),
        )
    })
}

/// `POST /oauth2/token`: `grant_type=authorization_code` or `refresh_token` (RFC 6749 §4.1.3,
/// §6), as a form or as the older JSON body (whose `grant_type` may be left out).
pub async fn token(rt: &Runtime, req: &Parts, body: &[u8], now: u64) -> Reply {
    let (params, auth) = match read_request(rt, req, body, Dialect::Rfc6749) {
        Ok(read) => read,
        Err(reply) => return reply,
    };
    let inferred = match (params.json, params.get("refresh_token")) {
        (true, Some(_)) if params.get("code").is_none() => Some("refresh_token"),
        (true, _) => Some("authorization_code"),
        (false, _) => None,
    };
    let reply = match params.get("grant_type").or(inferred) {
        Some("authorization_code") => code_grant(rt, &params, &auth, now).await,
        Some("refresh_token") => match params.get("refresh_token") {
            Some(token) => refresh_grant(rt, token, &params, &auth, Dialect::Rfc6749, now).await,
            None => oauth_error(
                Dialect::Rfc6749,
                400,
                "invalid_request",
                "refresh_token is missing",
            ),
        },
        Some(_) => oauth_error(
            Dialect::Rfc6749,
            400,
            "unsupported_grant_type",
            "grant_type must be authorization_code or refresh_token",
        ),
        None => oauth_error(
            Dialect::Rfc6749,
            400,
            "invalid_request",
            "grant_type is missing",
        ),
    };
    // RFC 6749 §5.1: never cached (Cache-Control: no-store is on every answer already).
    reply.header("Pragma", "no-cache")
}

/// 401 `invalid_client`: a confidential client's secret is wrong or missing.
fn invalid_client(dialect: Dialect) -> Reply {
    oauth_error(
        dialect,
        401,
        "invalid_client",
        "client authentication failed (a registered confidential client sends its secret with HTTP Basic or client_secret)",
    )
}

/// What the request's client credentials prove; `Err` (401 `invalid_client`) when they are
/// wrong.
/// A token request's parameters and the client they authenticate, or the reply refusing it.
fn read_request(
    rt: &Runtime,
    req: &Parts,
    body: &[u8],
    dialect: Dialect,
) -> Result<(TokenParams, ClientAuth), Reply> {
    let params = TokenParams::read(req, body, dialect)?;
    let auth = client_auth(rt, &params, dialect)?;
    Ok((params, auth))
}

fn client_auth(rt: &Runtime, params: &TokenParams, dialect: Dialect) -> Result<ClientAuth, Reply> {
    let auth = clients::authenticate(
        &rt.tokens.settings,
        params.client_id.as_deref(),
        params.client_secret.as_deref(),
    );
    if auth != ClientAuth::Failed {
        return Ok(auth);
    }
    tracing::info!(
        target: "gatehouse::audit",
        event = "client_auth_refused",
        client_id = params.client_id.as_deref().unwrap_or(""),
        "a client's credentials were refused"
    );
    Err(invalid_client(dialect))
}

/// May the request's client use a code or sign-in issued to `issued_to`? The same client (it
/// must name itself when `must_name`, as RFC 6749 §4.1.3 asks at the code exchange), and a
/// confidential one authenticated (§6).
fn issued_to_caller(
    rt: &Runtime,
    issued_to: Option<&str>,
    params: &TokenParams,
    auth: &ClientAuth,
    must_name: bool,
    dialect: Dialect,
) -> Result<(), Reply> {
    let Some(id) = issued_to else {
        return Ok(());
    };
    if clients::is_confidential(&rt.tokens.settings, id)
        && !(params.client_id.as_deref() == Some(id) && *auth == ClientAuth::Authenticated)
    {
        return Err(invalid_client(dialect));
    }
    match params.client_id.as_deref() {
        Some(named) if named != id => Err(oauth_error(
            dialect,
            400,
            "invalid_grant",
            "this was issued to another client_id",
        )),
        None if must_name => Err(oauth_error(
            dialect,
            400,
            "invalid_request",
            "client_id is missing (the code was issued to a client that named itself)",
        )),
        _ => Ok(()),
    }
}

/// `grant_type=authorization_code`: the one-time code, its redirect URI and PKCE verifier, and
/// the client it was issued to.
async fn code_grant(rt: &Runtime, params: &TokenParams, auth: &ClientAuth, now: u64) -> Reply {
    let error = |status, code, message: &str| {
        oauth_error(Dialect::Rfc6749, status, code, message.to_string())
    };
    let Some(code) = params.get("code") else {
        return error(400, "invalid_request", "code is missing");
    };
    // A client with a single registered address may leave it out at both steps (RFC 6749
    // §4.1.3 asks for it only when the authorize request named it).
    let implied = params
        .client_id
        .as_deref()
        .and_then(|id| clients::only_redirect(&rt.tokens.settings, id));
    let Some(redirect_uri) = params.get("redirect_uri").or(implied.as_deref()) else {
        return error(
            400,
            "invalid_request",
            "redirect_uri is missing (the one the code was sent to)",
        );
    };
    let grant = match rt.tokens.take_code(&digest(code), now).await {
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
    if grant.client_redirect_uri != redirect_uri {
        return error(
            400,
            "invalid_grant",
            "redirect_uri differs from the one the code was issued for",
        );
    }
    if let Err(reply) = issued_to_caller(
        rt,
        grant.client_id.as_deref(),
        params,
        auth,
        true,
        Dialect::Rfc6749,
    ) {
        return reply;
    }
    match (&grant.code_challenge, params.get("code_verifier")) {
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
                "code_verifier sent, but no code_challenge was sent with the authorize request",
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
        .start(
            &grant.session,
            TokenOrigin::CodeExchange,
            grant.client_id.clone(),
            now,
        )
        .await;
    match issued {
        Ok(pair) => {
            tracing::info!(login = %grant.session.login, "tokens issued for a one-time code");
            Reply::json(200, &pair.json())
        }
        Err(e) => refresh_failure(e, Dialect::Rfc6749),
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

/// `POST /oauth2/refresh`: the older JSON refresh, answered with the statuses it always had.
pub async fn refresh(rt: &Runtime, req: &Parts, body: &[u8], now: u64) -> Reply {
    let (params, auth) = match read_request(rt, req, body, Dialect::Legacy) {
        Ok(read) => read,
        Err(reply) => return reply,
    };
    match params.get("refresh_token") {
        Some(token) => refresh_grant(rt, token, &params, &auth, Dialect::Legacy, now).await,
        None => oauth_error(
            Dialect::Legacy,
            400,
            "invalid_request",
            "refresh_token is missing",
        ),
    }
}

/// Rotate a refresh token: re-applies the allow rules with fresh memberships, so someone removed
/// cannot refresh.
async fn refresh_grant(
    rt: &Runtime,
    token: &str,
    params: &TokenParams,
    auth: &ClientAuth,
    dialect: Dialect,
    now: u64,
) -> Reply {
    let error =
        |status, code, message: &str| oauth_error(dialect, status, code, message.to_string());
    let issuer = rt.tokens.issuer();
    let (family_id, family) = match issuer.redeem(token, now).await {
        Ok(found) => found,
        Err(e) => return refresh_failure(e, dialect),
    };
    if let Err(reply) = issued_to_caller(
        rt,
        family.client_id.as_deref(),
        params,
        auth,
        false,
        dialect,
    ) {
        return reply;
    }
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
    if family.session.github_token.is_none() {
        return error(
            401,
            "invalid_grant",
            "this sign-in cannot be refreshed; sign in again",
        );
    }
    let fetched = async {
        // An expiring GitHub token (GitHub Apps) is renewed first; the new pair is kept.
        let mut session = family.session.clone();
        rt.rechecks
            .renew_if_due(&rt.github, &mut session, now)
            .await?;
        let token = session.github_token.as_deref().unwrap_or_default();
        let mut claims = profile::session_claims(rt, token, now).await?;
        claims.github_refresh = session.github_refresh;
        Ok::<_, GithubError>(claims)
    };
    let mut claims = match fetched.await {
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
            &format!("{} is no longer allowed here", claims.login),
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
        Err(e) => refresh_failure(e, dialect),
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
        .start(&claims, TokenOrigin::Pat, None, now)
        .await
    {
        Ok(pair) => pair,
        Err(e) => return refresh_failure(e, Dialect::Legacy),
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

/// `POST /oauth2/revoke` (RFC 7009): ends the sign-in a refresh or access token belongs to,
/// with every token of it. 200 whatever the token was (unknown, expired, already revoked, not
/// Gatehouse's), so the answer tells a caller nothing; only a refused client or a store that
/// cannot answer is an error.
pub async fn revoke(rt: &Runtime, req: &Parts, body: &[u8], now: u64) -> Reply {
    let (params, auth) = match read_request(rt, req, body, Dialect::Rfc6749) {
        Ok(read) => read,
        Err(reply) => return reply,
    };
    let Some(token) = params.get("token") else {
        return oauth_error(Dialect::Rfc6749, 400, "invalid_request", "token is missing");
    };
    // The hint only says where to look first (§2.1); both kinds are tried.
    let issuer = rt.tokens.issuer();
    let found = match issuer.redeem(token, now).await {
        Ok(found) => Some(found),
        // An old generation: `redeem` has revoked the family already.
        Err(RefreshError::Reused) => None,
        Err(RefreshError::Store(e)) => return unavailable(e),
        Err(_) => match rt.tokens.access.verify(token) {
            Ok(claims) => match rt.tokens.family(&claims.family, now).await {
                Ok(family) => family.map(|f| (claims.family, f)),
                Err(e) => return unavailable(e),
            },
            Err(_) => None,
        },
    };
    let Some((family_id, family)) = found else {
        return Reply::empty(200).header("Pragma", "no-cache");
    };
    // §2.1: only the client the token was issued to may revoke it.
    if let Err(reply) = issued_to_caller(
        rt,
        family.client_id.as_deref(),
        &params,
        &auth,
        false,
        Dialect::Rfc6749,
    ) {
        return reply;
    }
    match issuer.revoke(&family_id, now).await {
        Ok(()) => tracing::info!(
            target: "gatehouse::audit",
            event = "token_revoked",
            client_id = params.client_id.as_deref().unwrap_or(""),
            login = %family.session.login,
            "a client revoked its tokens"
        ),
        Err(RefreshError::Store(e)) => return unavailable(e),
        Err(e) => return refresh_failure(e, Dialect::Rfc6749),
    }
    Reply::empty(200).header("Pragma", "no-cache")
}

fn refresh_failure(e: RefreshError, dialect: Dialect) -> Reply {
    match e {
        RefreshError::Malformed | RefreshError::Unknown => {
            oauth_error(dialect, 401, "invalid_grant", e.to_string())
        }
        RefreshError::Reused => {
            crate::observe::metrics().refresh_token_reused();
            tracing::warn!(
                target: "gatehouse::audit",
                event = "refresh_token_reused",
                reason = "an old refresh token came back: it was copied; every token of its sign-in is revoked",
                "refresh token reused: the sign-in is revoked"
            );
            oauth_error(dialect, 401, "invalid_grant", e.to_string())
        }
        RefreshError::Store(e) => unavailable(e),
        RefreshError::Sign(m) => {
            tracing::error!(error = %m, "could not sign a token");
            crate::observe::metrics().error(crate::observe::ErrorCause::Other);
            oauth_error(dialect, 500, "server_error", "could not sign a token")
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
