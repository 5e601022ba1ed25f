//! Sign-in on every host the gate serves. GitHub sends every sign-in back to one callback URL,
//! on `public_url`'s host, and cookies belong to one host; so a browser on another `[[routes]]`
//! host signs in on the public host and is handed back with a one-time code:
//!
//! 1. `/oauth2/start` on the other host sets a binding cookie there (a random verifier, host
//!    only) and sends the browser to `/oauth2/start` on the public host with `rd` (the full URL
//!    to return to) and `handoff` (the verifier's SHA-256).
//! 2. The public host's start accepts `rd` only for a host the routes serve, on
//!    `public_url`'s scheme and port, and keeps it with the challenge in the sealed sign-in
//!    state; the GitHub round trip and the callback are the usual ones.
//! 3. The callback sets the session on the public host as always, then keeps the session as a
//!    one-time code (60 s, bound to the other host's origin and to the challenge) and sends the
//!    browser to `/oauth2/handoff?code=` on the other host.
//! 4. `/oauth2/handoff` uses the code up, checks that it was made for this host and that this
//!    browser holds the verifier (so a code sent to someone else's browser signs nobody in as
//!    its owner), sets the session on this host and lands on `rd`.

use super::facts::{HostFact, RequestFacts};
use super::login_state::LOGIN_TTL_SECS;
use super::query_param;
use super::redirect::safe_redirect;
use super::token::{s256, CODE_TTL_SECS};
use crate::claims::SessionClaims;
use crate::pages::Refusal;
use crate::reply::Reply;
use crate::runtime::Runtime;
use crate::session::cookies::{find_cookie, set_cookie, CookieSettings};
use crate::session::WriteError;
use crate::tokens::{digest, random_token, CodeGrant, CodeTake};
use serde::{Deserialize, Serialize};
use url::Url;

/// Where a sign-in started on another host returns, kept in the sealed sign-in state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Return {
    /// The full URL to land on (origin of a served host, and a safe path).
    pub url: String,
    /// SHA-256 (base64url) of the verifier in the other host's binding cookie.
    pub challenge: String,
}

/// The binding cookie: it starts with `<name>_login`, so it is Gatehouse's and never reaches
/// the app.
fn cookie_name(rt: &Runtime) -> String {
    format!("{}_login_handoff", rt.sessions.cookie.name)
}

/// Host-only: `session.cookie_domain` need not cover the other host.
fn binding_cookie(rt: &Runtime, value: &str, max_age: i64) -> String {
    let host_only = CookieSettings {
        domain: None,
        ..rt.sessions.cookie.clone()
    };
    set_cookie(
        &host_only,
        &cookie_name(rt),
        value,
        &handoff_path(rt),
        max_age,
    )
}

/// Where the binding cookie is sent: this endpoint only.
fn handoff_path(rt: &Runtime) -> String {
    format!("{}/handoff", rt.settings.proxy_prefix)
}

/// Store key of a hand-off code, apart from the token endpoint's codes: one can never be
/// traded for tokens at `/oauth2/token`.
fn store_key(code: &str) -> String {
    format!("handoff.{}", digest(code))
}

/// Does a `[[routes]]` entry name `host` (exactly, or as `*.parent`)?
fn served(rt: &Runtime, host: &str) -> bool {
    rt.settings.routes.iter().any(|r| match r.host.as_deref() {
        Some(parent) if parent.starts_with('.') => host.ends_with(parent),
        Some(exact) => exact == host,
        None => false,
    })
}

/// `public_url` with its host replaced by `host`: the origin of another served host (same
/// scheme and port as the public one: they share the listener).
fn origin_for(rt: &Runtime, host: &str) -> Option<Url> {
    let public = &rt.settings.public_url;
    let mut origin = public.clone();
    origin.set_host(Some(host)).ok()?;
    origin.set_path("/");
    origin.set_query(None);
    Some(origin)
}

/// The origin of this request when it is for a host the routes serve other than the public
/// one; `None` for the public host (or any host the routes do not name).
pub fn other_host(rt: &Runtime, facts: &RequestFacts<'_>) -> Option<Url> {
    let HostFact::Canonical(host) = &facts.host else {
        return None;
    };
    let public = &rt.settings.public_url;
    let same_port = host
        .port
        .is_none_or(|p| Some(p) == public.port_or_known_default());
    let is_public = public.host_str() == Some(host.name.as_ref());
    (same_port && !is_public && served(rt, &host.name))
        .then(|| origin_for(rt, &host.name))
        .flatten()
}

/// `/oauth2/start` on another served host: bind this browser, then sign in on the public host.
pub fn start_elsewhere(rt: &Runtime, origin: &Url, rd: Option<&str>) -> Reply {
    let path = safe_redirect(rd, origin, &rt.settings.proxy_prefix);
    let Ok(back) = origin.join(&path) else {
        return Reply::text(500, "could not build the return address");
    };
    let verifier = random_token();
    let mut start = rt.settings.public_url.clone();
    start.set_path(&format!("{}/start", rt.settings.proxy_prefix));
    start
        .query_pairs_mut()
        .append_pair("rd", back.as_str())
        .append_pair("handoff", &s256(&verifier));
    Reply::redirect(start.to_string()).cookies([binding_cookie(
        rt,
        &verifier,
        LOGIN_TTL_SECS as i64,
    )])
}

/// At the public host's `/oauth2/start`: the return to another host that `rd` and `handoff`
/// ask for, if both are acceptable. `None` sends the sign-in to land on the public host.
pub fn accepted_return(rt: &Runtime, rd: Option<&str>, handoff: Option<String>) -> Option<Return> {
    let challenge = handoff.filter(|c| super::login_state::is_well_formed(c))?;
    let url = Url::parse(rd?).ok()?;
    let host = url.host_str()?.to_ascii_lowercase();
    let public = &rt.settings.public_url;
    let acceptable = url.scheme() == public.scheme()
        && url.port_or_known_default() == public.port_or_known_default()
        && public.host_str() != Some(host.as_str())
        && served(rt, &host);
    if !acceptable {
        tracing::info!(
            reason = "rd names a host the routes do not serve",
            "sign-in hand-off refused; landing on the public host"
        );
        return None;
    }
    let origin = origin_for(rt, &host)?;
    // Absolute `rd` is reduced to a path of that origin, with every open-redirect check.
    let path = safe_redirect(Some(url.as_str()), &origin, &rt.settings.proxy_prefix);
    Some(Return {
        url: origin.join(&path).ok()?.to_string(),
        challenge,
    })
}

/// After the callback: keep `claims` as a one-time code for the other host and send the
/// browser there. `cookies`: the public host's session cookies, set on the way.
pub async fn send(
    rt: &Runtime,
    back: Return,
    claims: SessionClaims,
    cookies: Vec<String>,
    now: u64,
) -> Reply {
    let Ok(url) = Url::parse(&back.url) else {
        return Reply::redirect("/".into()).cookies(cookies);
    };
    // Made after any revocation of this very second, so the code is not born ended.
    let claims = match rt.sessions.after_revocation(&claims).await {
        Ok(claims) => claims,
        Err(e) => return super::credentials::store_unavailable(&e).reply(true),
    };
    let code = random_token();
    let grant = CodeGrant {
        session: claims,
        client_redirect_uri: back.url.clone(),
        code_challenge: Some(back.challenge),
        expires_at: now + CODE_TTL_SECS,
        client_id: None,
    };
    if let Err(e) = rt.tokens.put_code(&store_key(&code), &grant).await {
        return super::credentials::store_unavailable(&e).reply(true);
    }
    let mut finish = url.clone();
    finish.set_path(&handoff_path(rt));
    finish.set_query(None);
    finish.query_pairs_mut().append_pair("code", &code);
    Reply::redirect(finish.to_string()).cookies(cookies)
}

/// `GET /oauth2/handoff?code=` on another served host: trade the code for a session here.
pub async fn finish(rt: &Runtime, facts: &RequestFacts<'_>, now: u64) -> Reply {
    let (req, browser) = (facts.req, facts.browser);
    let clear = binding_cookie(rt, "", 0);
    let refuse = |reason: &'static str, start_url: String| {
        tracing::info!(
            target: "gatehouse::audit",
            event = "handoff_refused",
            reason,
            "a sign-in hand-off to another host was refused"
        );
        Refusal::LoginExpired { start_url }
            .reply(browser)
            .cookies([clear.clone()])
    };
    let Some(origin) = other_host(rt, facts) else {
        return refuse(
            "not a host of the routes other than the public one",
            rt.start_url("/"),
        );
    };
    let Some(code) = query_param(req, "code").filter(|c| !c.is_empty() && c.len() <= 128) else {
        return refuse("no code", rt.start_url("/"));
    };
    let grant = match rt.tokens.take_code(&store_key(&code), now).await {
        Ok(CodeTake::Granted(grant)) => *grant,
        Ok(CodeTake::AlreadyUsed | CodeTake::Unknown) => {
            return refuse("code unknown, used or expired", rt.start_url("/"))
        }
        Err(e) => return super::credentials::store_unavailable(&e).reply(browser),
    };
    let Ok(back) = Url::parse(&grant.client_redirect_uri) else {
        return refuse("unreadable return address", rt.start_url("/"));
    };
    let mut path = back.path().to_string();
    if let Some(query) = back.query() {
        path.push('?');
        path.push_str(query);
    }
    let again = rt.start_url(&path);
    if back.origin() != origin.origin() {
        return refuse("code made for another host", again);
    }
    let verifier = find_cookie(&req.headers, &cookie_name(rt));
    let bound = matches!(
        (verifier, grant.code_challenge.as_deref()),
        (Some(v), Some(challenge)) if s256(v) == challenge
    );
    if !bound {
        return refuse("this browser did not start that sign-in", again);
    }
    match rt
        .sessions
        .create(&grant.session, req, facts.client_ip, now)
        .await
    {
        Ok(cookies) => Reply::redirect(path).cookies(cookies).cookies([clear]),
        Err(e @ (WriteError::TooLarge | WriteError::Ended)) => Refusal::LoginFailed {
            reason: e.to_string(),
            start_url: again,
        }
        .reply(browser)
        .cookies([clear]),
        Err(WriteError::Store(e)) => super::credentials::store_unavailable(&e).reply(browser),
    }
}
