//! `GET /oauth2/start?rd=PATH`: send the browser to GitHub with `state` and PKCE S256; and a
//! program's sign-in, there or at `GET /oauth2/authorize` (RFC 6749 §4.1.1).

use super::facts::RequestFacts;
use super::handoff;
use super::login_state::{self, ClientLogin, LoginState, LOGIN_TTL_SECS};
use super::loop_guard::LoopGuard;
use super::query_param;
use super::redirect::safe_redirect;
use super::token::with_query;
use crate::pages::Refusal;
use crate::reply::Reply;
use crate::runtime::Runtime;
use crate::session::cookies::set_cookie;
use crate::tokens::{clients, ClientRedirect};
use http::request::Parts;

/// Longest `client_name` kept (characters).
const MAX_CLIENT_NAME: usize = 60;

/// `rd` comes from the query, or from `X-Auth-Request-Redirect` as oauth2-proxy accepts it
/// (nginx `auth_request` setups pass the original `$request_uri` there, unescaped).
/// The client address tells cookieless browsers apart for the loop diagnosis.
pub fn start(rt: &Runtime, facts: &RequestFacts<'_>, now: u64) -> Reply {
    begin(rt, facts, false, now)
}

/// `GET /oauth2/authorize`: the RFC 6749 authorization endpoint, a program's sign-in only.
pub fn authorize(rt: &Runtime, facts: &RequestFacts<'_>, now: u64) -> Reply {
    begin(rt, facts, true, now)
}

fn begin(rt: &Runtime, facts: &RequestFacts<'_>, standard: bool, now: u64) -> Reply {
    let req = facts.req;
    let client = match client_login(rt, req, standard, facts.browser) {
        Ok(client) => client,
        Err(reply) => return reply,
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

/// A program's sign-in, read before any GitHub round-trip: RFC 6749 §4.1.1 (`response_type=code`,
/// `client_id`, `redirect_uri`, `state`) with PKCE (`code_challenge`, RFC 7636), or the older
/// `client_redirect_uri`, an alias of `redirect_uri`. `standard`: the `/authorize` endpoint,
/// where `response_type` and `client_id` are required. `Ok(None)`: a browser's own sign-in.
///
/// A `client_id` or `redirect_uri` that is not allowed is shown to the person, never redirected
/// to (§4.1.2.1); later mistakes go back to a standard client as `?error=`.
fn client_login(
    rt: &Runtime,
    req: &Parts,
    standard: bool,
    browser: bool,
) -> Result<Option<ClientLogin>, Reply> {
    let show = |reason: String| Refusal::BadRequest { reason }.reply(browser);
    let client_id = query_param(req, "client_id").filter(|id| !id.is_empty());
    let asked =
        query_param(req, "redirect_uri").or_else(|| query_param(req, "client_redirect_uri"));
    if asked.is_none() && client_id.is_none() && !standard {
        return Ok(None);
    }
    if standard && client_id.is_none() {
        return Err(show("client_id is missing (RFC 6749 section 4.1.1)".into()));
    }
    let only = || {
        client_id
            .as_deref()
            .and_then(|id| clients::only_redirect(&rt.tokens.settings, id))
    };
    let Some(redirect_uri) = asked.or_else(only) else {
        return Err(show(
            "redirect_uri is missing, and the client has no single registered one to use".into(),
        ));
    };
    let Some(kind) = rt
        .tokens
        .client_redirect(client_id.as_deref(), &redirect_uri)
    else {
        tracing::info!("sign-in refused: redirect_uri not allowed for the client");
        return Err(show(
            "redirect_uri is not one this gate may send codes to for this client (its redirect_uris in [[tokens.clients]], tokens.client_redirect_uris, or loopback with tokens.allow_loopback)".into(),
        ));
    };
    let state = query_param(req, "state");
    if state.as_ref().is_some_and(|s| s.len() > 512) {
        return Err(show("state is longer than 512 characters".into()));
    }
    // From here on the address is trusted: a standard client hears of its mistakes there
    // (`/oauth2/start` shows them, as it always has).
    let back = |error: &str, description: &str| {
        if !standard {
            return Err(show(description.to_string()));
        }
        let mut params = vec![("error", error), ("error_description", description)];
        if let Some(state) = &state {
            params.push(("state", state));
        }
        Err(Reply::redirect(with_query(&redirect_uri, &params)))
    };
    match query_param(req, "response_type").as_deref() {
        Some("code") => {}
        None if !standard => {}
        None => {
            return back(
                "invalid_request",
                "response_type is missing; send response_type=code",
            )
        }
        Some(_) => {
            return back(
                "unsupported_response_type",
                "only response_type=code is supported",
            )
        }
    }
    let code_challenge = query_param(req, "code_challenge");
    // Any local program can listen on a loopback port, and a public client has no secret: only
    // the one holding the verifier may trade the code.
    let public = !client_id
        .as_deref()
        .is_some_and(|id| clients::is_confidential(&rt.tokens.settings, id));
    let registered = client_id
        .as_deref()
        .is_some_and(|id| clients::registered(&rt.tokens.settings, id).is_some());
    if code_challenge.is_none() && (kind == ClientRedirect::Loopback || (registered && public)) {
        tracing::info!("sign-in refused: a public or loopback client without PKCE");
        return back(
            "invalid_request",
            "this client needs PKCE: send code_challenge (the base64url SHA-256 of a fresh code_verifier) with code_challenge_method=S256, then code_verifier to the token endpoint",
        );
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
            return back(
                "invalid_request",
                "code_challenge must be 43 base64url characters (S256 of the verifier)",
            )
        }
        _ => {
            return back(
                "invalid_request",
                "PKCE needs code_challenge with code_challenge_method=S256 (plain is not accepted)",
            )
        }
    }
    // Shown to the person, who cannot tell programs apart otherwise; text only, bounded.
    let name = query_param(req, "client_name")
        .or_else(|| client_id.clone())
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
        client_id,
    }))
}
