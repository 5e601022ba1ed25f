//! A code for a loopback redirect (`tokens.allow_loopback`) goes out only after the person
//! confirms it on a page that names the account, the program and the exact address. GitHub
//! re-approves an app it knows without asking, so otherwise any local program listening on some
//! port could get a code for the person just by making them follow a link.
//!
//! The grant waits in the store under a key no code can reach; the page carries its id, and
//! the browser a sealed cookie naming the same id. Only a same-origin POST (refused cross-site
//! like every state change, see `same_origin`) with both trades it for a real one-time code, so
//! neither a crafted link nor another site's form can skip the question.
//!
//! [`finish_client_login`] is where every program's sign-in goes after GitHub: a listed
//! `client_redirect_uri` gets its code at once, a loopback one after this question.

use super::facts::RequestFacts;
use super::login_state::{self, ClientLogin};
use super::token::{send_code, with_query, CODE_TTL_SECS};
use crate::pages::{client_confirm_page, ClientConfirm, Refusal};
use crate::reply::Reply;
use crate::runtime::Runtime;
use crate::session::cookies::{find_cookie, set_cookie};
use crate::session::SessionClaims;
use crate::tokens::{digest, random_token, ClientRedirect, CodeGrant, CodeTake};
use serde::{Deserialize, Serialize};

/// How long the question stays open.
const CONFIRM_TTL_SECS: u64 = 300;

/// What the browser's cookie holds (sealed) while the question is open.
#[derive(Serialize, Deserialize)]
struct PendingConfirm {
    id: String,
    /// The client's `state`, echoed back with the code.
    state: Option<String>,
    exp: u64,
}

/// The store key of a pending grant: a code's key is a bare digest (no `.`), so no code sent
/// to `/oauth2/token` can ever reach it.
fn store_key(id: &str) -> String {
    format!("confirm.{}", digest(id))
}

/// Per-question cookie name (two sign-ins at once do not overwrite each other); it starts with
/// `<name>_login`, so it is one of Gatehouse's cookies and never reaches the app.
fn cookie_name(session_cookie: &str, id: &str) -> String {
    let tag: String = id.chars().take(12).collect();
    format!("{session_cookie}_login_confirm_{tag}")
}

fn action(rt: &Runtime) -> String {
    format!("{}/confirm", rt.settings.proxy_prefix)
}

/// After GitHub: send the client its one-time code (or why there is none). A loopback client
/// (`tokens.allow_loopback`) gets it only once the person confirms (see `client_confirm`).
pub async fn finish_client_login(
    rt: &Runtime,
    client: ClientLogin,
    claims: SessionClaims,
    admitted: bool,
    now: u64,
) -> Reply {
    // Judged again: the config may have been reloaded since `/oauth2/start`.
    let Some(kind) = rt
        .tokens
        .client_redirect(client.client_id.as_deref(), &client.redirect_uri)
    else {
        return Refusal::BadRequest {
            reason: "client_redirect_uri is no longer one this gate may send codes to; start the sign-in again".into(),
        }
        .reply(true);
    };
    if !admitted {
        // Whoever listens on a loopback port may not be the person: it learns no login.
        let refusal = match kind {
            ClientRedirect::Listed => format!("{} is not allowed here", claims.login),
            ClientRedirect::Loopback => "this GitHub account is not allowed here".to_string(),
        };
        let mut params = vec![
            ("error", "access_denied"),
            ("error_description", refusal.as_str()),
        ];
        if let Some(state) = &client.state {
            params.push(("state", state));
        }
        return Reply::redirect(with_query(&client.redirect_uri, &params));
    }
    // Made after any revocation of this very second, so the code is not born ended.
    let claims = match rt.sessions.after_revocation(&claims).await {
        Ok(claims) => claims,
        Err(e) => {
            tracing::warn!(error = %e, "could not read the revocation list for a sign-in");
            return Refusal::StoreUnavailable.reply(true);
        }
    };
    let grant = CodeGrant {
        session: claims,
        client_redirect_uri: client.redirect_uri.clone(),
        code_challenge: client.code_challenge.clone(),
        expires_at: now + CODE_TTL_SECS,
        client_id: client.client_id.clone(),
    };
    match kind {
        ClientRedirect::Loopback => ask(rt, grant, client, now).await,
        ClientRedirect::Listed => send_code(rt, grant, client.state.as_deref(), now).await,
    }
}

/// After GitHub, for a loopback client: keep `grant` aside and ask the person.
pub async fn ask(rt: &Runtime, mut grant: CodeGrant, client: ClientLogin, now: u64) -> Reply {
    let id = random_token();
    grant.expires_at = now + CONFIRM_TTL_SECS;
    if let Err(e) = rt.tokens.put_code(&store_key(&id), &grant).await {
        tracing::warn!(error = %e, "could not store a pending client sign-in");
        return Refusal::StoreUnavailable.reply(true);
    }
    let pending = PendingConfirm {
        id: id.clone(),
        state: client.state,
        exp: grant.expires_at,
    };
    let Some(sealed) = rt.sessions.seal_json(&pending) else {
        return Reply::text(500, "could not seal the pending sign-in");
    };
    let path = action(rt);
    let cookie = set_cookie(
        &rt.sessions.cookie,
        &cookie_name(&rt.sessions.cookie.name, &id),
        &sealed,
        &path,
        CONFIRM_TTL_SECS as i64,
    );
    client_confirm_page(&ClientConfirm {
        action: &path,
        id: &id,
        login: &grant.session.login,
        client_name: client.name.as_deref(),
        redirect_uri: &grant.client_redirect_uri,
        app_name: &rt.settings.pages.app_name,
    })
    .cookies([cookie])
}

/// `POST {prefix}/confirm` (form `id`): the person said yes; send the program its code.
pub async fn confirm(rt: &Runtime, facts: &RequestFacts<'_>, body: &[u8], now: u64) -> Reply {
    let (req, browser) = (facts.req, facts.browser);
    let gone = || {
        Refusal::BadRequest {
            reason: "this sign-in confirmation is unknown, already used or expired (it lasts 5 minutes); start the sign-in again from the program, e.g. `gatehouse login`".into(),
        }
        .reply(browser)
    };
    let id = url::form_urlencoded::parse(body)
        .find(|(k, _)| k == "id")
        .map(|(_, v)| v.into_owned())
        .filter(|id| login_state::is_well_formed(id));
    let Some(id) = id else {
        return gone();
    };
    let name = cookie_name(&rt.sessions.cookie.name, &id);
    let clear = set_cookie(&rt.sessions.cookie, &name, "", &action(rt), 0);
    let pending: Option<PendingConfirm> = find_cookie(&req.headers, &name)
        .and_then(|v| rt.sessions.open_json(v))
        .filter(|p: &PendingConfirm| p.id == id && now < p.exp);
    let Some(pending) = pending else {
        tracing::info!(
            target: "gatehouse::audit",
            event = "client_confirm_refused",
            reason = "no matching confirmation cookie in this browser",
            "a client sign-in confirmation was refused"
        );
        return gone().cookies([clear]);
    };
    let grant = match rt.tokens.take_code(&store_key(&id), now).await {
        Ok(CodeTake::Granted(grant)) => *grant,
        Ok(CodeTake::AlreadyUsed | CodeTake::Unknown) => return gone().cookies([clear]),
        Err(e) => {
            return super::credentials::store_unavailable(&e)
                .reply(browser)
                .cookies([clear])
        }
    };
    tracing::info!(
        target: "gatehouse::audit",
        event = "client_confirmed",
        login = %grant.session.login,
        user_id = %grant.session.user_id,
        redirect = %grant.client_redirect_uri,
        "a sign-in was sent to a program on the person's computer"
    );
    let mut reply = send_code(rt, grant, pending.state.as_deref(), now).await;
    // See Other: the browser follows a POST's redirect with a GET.
    if reply.status == 302 {
        reply.status = 303;
    }
    reply.cookies([clear])
}
