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
    let Some(state) = query_param(req, "state").filter(|s| login_state::is_well_formed(s)) else {
        login_failed(LoginResult::FailedState, "state missing or malformed");
        return expired().reply(browser);
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
        return expired().reply(browser).cookies([clear_login]);
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
            let failure = failure_for(&e, start_url);
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
            cookies.extend(super::loop_guard::clear(rt, req));
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

/// What the person sees when GitHub could not finish the sign-in, logged at the right level.
fn failure_for(e: &GithubError, start_url: String) -> Refusal {
    match e {
        // A cut-off or unreadable answer is GitHub failing, not the person being refused.
        e if e.is_unavailable() || matches!(e, GithubError::BadResponse(_)) => {
            tracing::warn!(error = %e, "sign-in failed: GitHub unavailable");
            login_failed(LoginResult::FailedGithubUnavailable, "GitHub unavailable");
            Refusal::GithubUnavailable { start_url }
        }
        GithubError::OAuth { error, .. } if error == "bad_verification_code" => {
            login_failed(LoginResult::FailedCode, "GitHub refused the code");
            Refusal::LoginExpired { start_url }
        }
        // incorrect_client_credentials, redirect_uri_mismatch, …: our own settings are wrong.
        GithubError::OAuth { error, .. } => {
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
        let token = rt.github.exchange_code(code, verifier).await?;
        profile::session_claims(rt, &token, now).await
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
