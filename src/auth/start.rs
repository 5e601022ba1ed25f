//! `GET /oauth2/start?rd=PATH`: send the browser to GitHub with `state` and PKCE S256.

use super::facts::RequestFacts;
use super::handoff;
use super::login_state::{self, ClientLogin, LoginState, LOGIN_TTL_SECS};
use super::loop_guard::LoopGuard;
use super::query_param;
use super::redirect::safe_redirect;
use crate::pages::Refusal;
use crate::reply::Reply;
use crate::runtime::Runtime;
use crate::session::cookies::set_cookie;
use crate::tokens::ClientRedirect;
use http::request::Parts;

/// Longest `client_name` kept (characters).
const MAX_CLIENT_NAME: usize = 60;

/// `rd` comes from the query, or from `X-Auth-Request-Redirect` as oauth2-proxy accepts it
/// (nginx `auth_request` setups pass the original `$request_uri` there, unescaped).
/// The client address tells cookieless browsers apart for the loop diagnosis.
pub fn start(rt: &Runtime, facts: &RequestFacts<'_>, now: u64) -> Reply {
    let req = facts.req;
    let client = match client_login(rt, req) {
        Ok(client) => client,
        Err(refusal) => return refusal.reply(facts.browser),
    };
    let from_header = || {
        req.headers
            .get("x-auth-request-redirect")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let asked = query_param(req, "rd").or_else(from_header);
    // Another host of the routes: the sign-in happens on the public host, which hands the
    // session back (`handoff`).
    let elsewhere = client
        .is_none()
        .then(|| handoff::other_host(rt, facts))
        .flatten();
    if let Some(origin) = elsewhere {
        return handoff::start_elsewhere(rt, &origin, asked.as_deref());
    }
    let handoff = match client {
        None => handoff::accepted_return(rt, asked.as_deref(), query_param(req, "handoff")),
        Some(_) => None,
    };
    let rd = match handoff {
        Some(_) => "/".to_string(),
        None => safe_redirect(
            asked.as_deref(),
            &rt.settings.public_url,
            &rt.settings.proxy_prefix,
        ),
    };
    // A browser that keeps coming back without its cookies gets a diagnosis, not GitHub again.
    let loop_cookies = if client.is_none() {
        match LoopGuard::global().check(rt, facts, &rd, now) {
            Ok(cookies) => cookies,
            Err(page) => return page,
        }
    } else {
        Vec::new()
    };
    let state = login_state::new_state();
    let login = rt.github.start_login(&state);
    let sealed = rt.sessions.seal_json(&LoginState {
        state: state.clone(),
        verifier: login.pkce_verifier,
        rd,
        exp: now + LOGIN_TTL_SECS,
        client,
        handoff,
    });
    let Some(sealed) = sealed else {
        return Reply::text(500, "could not seal the sign-in state");
    };
    let cookie = set_cookie(
        &rt.sessions.cookie,
        &login_state::cookie_name(&rt.sessions.cookie.name, &state),
        &sealed,
        &rt.callback_path,
        LOGIN_TTL_SECS as i64,
    );
    crate::observe::metrics().login(crate::observe::LoginResult::Started);
    Reply::redirect(login.authorize_url)
        .cookies([cookie])
        .cookies(loop_cookies)
}

/// `client_redirect_uri` (+ `state`, `code_challenge`, `code_challenge_method`) for the
/// code-for-token exchange, checked before any GitHub round-trip.
fn client_login(rt: &Runtime, req: &Parts) -> Result<Option<ClientLogin>, Refusal> {
    let Some(redirect_uri) = query_param(req, "client_redirect_uri") else {
        return Ok(None);
    };
    let refuse = |reason: String| Refusal::BadRequest { reason };
    let Some(kind) = rt.tokens.client_redirect(&redirect_uri) else {
        tracing::info!("sign-in refused: client_redirect_uri not allowed");
        return Err(refuse(
            "client_redirect_uri is not one this gate may send codes to (tokens.client_redirect_uris, or loopback with tokens.allow_loopback)".into(),
        ));
    };
    let code_challenge = query_param(req, "code_challenge");
    // Any local program can listen on a loopback port: only the one holding the verifier may
    // trade the code.
    if kind == ClientRedirect::Loopback && code_challenge.is_none() {
        tracing::info!("sign-in refused: loopback client_redirect_uri without PKCE");
        return Err(refuse(
            "a loopback client_redirect_uri needs PKCE: send code_challenge (the base64url SHA-256 of a fresh code_verifier) with code_challenge_method=S256, then code_verifier to /oauth2/token".into(),
        ));
    }
    match (
        code_challenge.as_deref(),
        query_param(req, "code_challenge_method").as_deref(),
    ) {
        (None, None) => {}
        (Some(c), Some("S256"))
            if c.len() == 43
                && c.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') => {}
        (Some(_), Some("S256")) => {
            return Err(refuse(
                "code_challenge must be 43 base64url characters (S256 of the verifier)".into(),
            ))
        }
        _ => {
            return Err(refuse(
                "PKCE needs code_challenge with code_challenge_method=S256 (plain is not accepted)"
                    .into(),
            ))
        }
    }
    let state = query_param(req, "state");
    if state.as_ref().is_some_and(|s| s.len() > 512) {
        return Err(refuse("state is longer than 512 characters".into()));
    }
    // Shown to the person, who cannot tell programs apart otherwise; text only, bounded.
    let name = query_param(req, "client_name")
        .map(|n| {
            n.chars()
                .filter(|c| !crate::observe::escape::is_unsafe(*c))
                .take(MAX_CLIENT_NAME)
                .collect::<String>()
                .trim()
                .to_string()
        })
        .filter(|n| !n.is_empty());
    Ok(Some(ClientLogin {
        redirect_uri,
        state,
        code_challenge,
        name,
    }))
}
