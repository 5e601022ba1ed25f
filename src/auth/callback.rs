//! `GET /oauth2/callback?code&state`: check the state against this browser's login cookie, trade
//! the code for a token, read the user, and set the session cookie.

use super::facts::RequestFacts;
use super::login_state::{self, LoginState};
use super::profile;
use super::query_param;
use crate::github::GithubError;
use crate::observe::{metrics, LoginResult};
use crate::pages::Refusal;
use crate::reply::Reply;
use crate::runtime::Runtime;
use crate::session::cookies::{find_cookie, set_cookie};
use crate::session::{SessionClaims, WriteError};

pub async fn callback(rt: &Runtime, facts: &RequestFacts<'_>, now: u64) -> Reply {
    let (req, browser) = (facts.req, facts.browser);
    let start_url = rt.start_url("/");
    let expired = || Refusal::LoginExpired {
        start_url: start_url.clone(),
    };
    // GitHub sends an operator's mistake (a callback URL that does not match the app's, a
    // suspended app) to the app's registered callback, which may be another host or path
    // than the one this browser's login cookie was set for: say what it is even when the
    // state cannot be checked. (A page only: nothing is signed in or out.)
    let operator_error = query_param(req, "error").filter(|e| is_operator_mistake(e));
    let Some(state) = query_param(req, "state").filter(|s| login_state::is_well_formed(s)) else {
        login_failed(LoginResult::FailedState, "state missing or malformed");
        return match operator_error {
            Some(error) => misconfigured(req, error, false).reply(browser),
            None => expired().reply(browser),
        };
    };
    let login_cookie = login_state::cookie_name(&rt.sessions.cookie.name, &state);
    let clear_login = set_cookie(&rt.sessions.cookie, &login_cookie, "", &rt.callback_path, 0);

    let pending: Option<LoginState> = find_cookie(&req.headers, &login_cookie)
        .and_then(|v| rt.sessions.open_json(v))
        .filter(|p: &LoginState| p.state == state && now < p.exp);
    let Some(pending) = pending else {
        login_failed(
            LoginResult::FailedState,
            "state missing, unknown or expired",
        );
        let refusal = match operator_error {
            Some(error) => misconfigured(req, error, false),
            None => expired(),
        };
        return refusal.reply(browser).cookies([clear_login]);
    };
    match rt
        .sessions
        .store
        .consume_state(&crate::tokens::digest(&state), pending.exp, now)
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            tracing::warn!(reason = "state replayed", "sign-in refused");
            login_failed(LoginResult::FailedState, "state replayed");
            return expired().reply(browser).cookies([clear_login]);
        }
        Err(e) => {
            login_failed(LoginResult::FailedOther, "session store unavailable");
            return super::credentials::store_unavailable(&e).reply(browser);
        }
    }
    let start_url = rt.start_url(&pending.rd);

    if let Some(error) = operator_error {
        return misconfigured(req, error, true)
            .reply(browser)
            .cookies([clear_login]);
    }
    if let Some(error) = query_param(req, "error") {
        let reason = match error.as_str() {
            "access_denied" => "access was not granted at GitHub".to_string(),
            other => format!(
                "GitHub reported `{}`",
                other
                    .chars()
                    .filter(|c| !c.is_control())
                    .take(80)
                    .collect::<String>()
            ),
        };
        login_failed(LoginResult::FailedGithubRefused, &reason);
        return Refusal::LoginFailed { reason, start_url }
            .reply(browser)
            .cookies([clear_login]);
    }
    let Some(code) = query_param(req, "code").filter(|c| !c.is_empty()) else {
        login_failed(LoginResult::FailedOther, "no code from GitHub");
        return expired().reply(browser).cookies([clear_login]);
    };

    let claims = match exchange(rt, &code, &pending.verifier, now).await {
        Ok(claims) => claims,
        Err(e) => {
            let failure = failure_for(rt, e, &pending.rd);
            return failure.reply(browser).cookies([clear_login]);
        }
    };
    let admitted = profile::admitted(rt, &claims);
    let result = match admitted {
        true => LoginResult::Succeeded,
        false => LoginResult::Denied,
    };
    metrics().login(result);
    tracing::info!(
        target: "gatehouse::audit",
        event = "login",
        result = result.as_str(),
        login = %claims.login,
        user_id = %claims.user_id,
        via = if pending.client.is_some() { "client" } else { "browser" },
        "sign-in succeeded{}", if admitted { "" } else { ", but not allowed here" }
    );
    if let Some(client) = pending.client {
        return super::client_confirm::finish_client_login(rt, client, claims, admitted, now)
            .await
            .cookies([clear_login]);
    }
    // Not-admitted people get a session too: they then see a 403 that names the account and
    // offers sign-out, instead of bouncing through GitHub again.
    match rt.sessions.create(&claims, req, facts.client_ip, now).await {
        Ok(mut cookies) => {
            cookies.push(clear_login);
            cookies.extend(super::loop_guard::clear(rt, req, facts.client_ip));
            match pending.handoff {
                Some(back) => super::handoff::send(rt, back, claims, cookies, now).await,
                None => Reply::redirect(pending.rd).cookies(cookies),
            }
        }
        // (A new session is never "ended meanwhile"; said as it is if it ever were.)
        Err(e @ (WriteError::TooLarge | WriteError::Ended)) => Refusal::LoginFailed {
            reason: e.to_string(),
            start_url,
        }
        .reply(browser)
        .cookies([clear_login]),
        Err(WriteError::Store(e)) => super::credentials::store_unavailable(&e)
            .reply(browser)
            .cookies([clear_login]),
    }
}

/// Errors GitHub sends to the callback that the person did not choose and cannot fix: the
/// operator's. GitHub documents the first two; the others are RFC 6749's words for a client
/// the provider will not serve as configured. (`access_denied` is the person's own choice;
/// anything unknown is shown as GitHub's words.)
fn is_operator_mistake(error: &str) -> bool {
    matches!(
        error,
        "redirect_uri_mismatch"
            | "application_suspended"
            | "unauthorized_client"
            | "invalid_scope"
            | "unsupported_response_type"
    )
}

/// The operator-facing "Sign-in is misconfigured" page for an error GitHub sent to the
/// callback, logged with GitHub's description; counted as `failed_misconfigured` only when
/// the state proved it came from a sign-in this gate started (anyone can type the URL).
fn misconfigured(req: &http::request::Parts, error: String, verified: bool) -> Refusal {
    let description = query_param(req, "error_description")
        .map(|d| {
            d.chars()
                .filter(|c| !c.is_control())
                .take(200)
                .collect::<String>()
        })
        .unwrap_or_default();
    tracing::error!(
        error = %error,
        description = %description,
        state_verified = verified,
        "GitHub refused to start the sign-in because of this gate's OAuth app: {}",
        match error.as_str() {
            "redirect_uri_mismatch" => "the callback URL registered for the OAuth app at GitHub does not match this gate's (server.public_url + the callback path)",
            "application_suspended" => "GitHub has suspended the OAuth app (github.client_id)",
            _ => "check github.client_id and the OAuth app's settings at GitHub",
        }
    );
    if verified {
        login_failed(
            LoginResult::FailedMisconfigured,
            "GitHub rejected the OAuth app",
        );
    }
    Refusal::GatewayMisconfigured { error }
}

/// What the person sees when GitHub could not finish the sign-in, logged at the right level.
fn failure_for(rt: &Runtime, e: GithubError, rd: &str) -> Refusal {
    let start_url = rt.start_url(rd);
    match e {
        GithubError::Refused(refusal) => {
            login_failed(LoginResult::FailedUnconfirmed, refusal.reason());
            profile::refused(rt, refusal, rd)
        }
        // A cut-off or unreadable answer is GitHub failing, not the person being refused.
        e if e.is_unavailable() || matches!(e, GithubError::BadResponse(_)) => {
            tracing::warn!(error = %e, "sign-in failed: GitHub unavailable");
            login_failed(LoginResult::FailedGithubUnavailable, "GitHub unavailable");
            Refusal::GithubUnavailable { start_url }
        }
        GithubError::OAuth { ref error, .. } if error == "bad_verification_code" => {
            login_failed(LoginResult::FailedCode, "GitHub refused the code");
            Refusal::LoginExpired { start_url }
        }
        // incorrect_client_credentials, redirect_uri_mismatch, …: our own settings are wrong.
        GithubError::OAuth { ref error, .. } => {
            tracing::error!(error = %e, "GitHub rejected the OAuth settings: check github.client_id, github.client_secret and the app's callback URL");
            login_failed(
                LoginResult::FailedMisconfigured,
                "GitHub rejected the OAuth settings",
            );
            Refusal::GatewayMisconfigured {
                error: error.clone(),
            }
        }
        e => {
            tracing::warn!(error = %e, "sign-in failed");
            login_failed(LoginResult::FailedOther, "unexpected answer from GitHub");
            Refusal::LoginFailed {
                reason: e.to_string(),
                start_url,
            }
        }
    }
}

/// Trade the code for a GitHub token and learn who it belongs to. The whole sign-in gets
/// twice `github.timeout` (each call already has one), so several slow calls in a row cannot
/// keep the person waiting much longer than a single one.
async fn exchange(
    rt: &Runtime,
    code: &str,
    verifier: &str,
    now: u64,
) -> Result<SessionClaims, GithubError> {
    let limit = rt.settings.github.timeout.saturating_mul(2);
    let calls = async {
        let tokens = rt.github.exchange_code(code, verifier, now).await?;
        let mut claims = profile::session_claims(rt, &tokens.access_token, now).await?;
        tokens.keep_in(&mut claims);
        Ok(claims)
    };
    tokio::time::timeout(limit, calls)
        .await
        .unwrap_or_else(|_| {
            Err(GithubError::Unreachable(format!(
                "GitHub did not finish the sign-in within {limit:?}"
            )))
        })
}

/// Count a failed sign-in and record it as an audit event (no secrets: `reason` is our text).
fn login_failed(result: LoginResult, reason: &str) {
    metrics().login(result);
    tracing::info!(
        target: "gatehouse::audit",
        event = "login",
        result = result.as_str(),
        reason,
        "sign-in failed"
    );
}
