//! `GET /oauth2/start?rd=PATH`: send the browser to GitHub with `state` and PKCE S256.

use super::login_state::{self, LoginState, LOGIN_TTL_SECS};
use super::query_param;
use super::redirect::safe_redirect;
use crate::app::App;
use crate::reply::Reply;
use crate::session::cookies::set_cookie;
use http::request::Parts;

/// `rd` comes from the query, or from `X-Auth-Request-Redirect` as oauth2-proxy accepts it
/// (nginx `auth_request` setups pass the original `$request_uri` there, unescaped).
pub fn start(app: &App, req: &Parts, now: u64) -> Reply {
    let from_header = || {
        req.headers
            .get("x-auth-request-redirect")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let rd = safe_redirect(
        query_param(req, "rd").or_else(from_header).as_deref(),
        &app.settings.public_url,
        &app.settings.proxy_prefix,
    );
    let state = login_state::new_state();
    let login = app.github.start_login(&state);
    let sealed = app.sessions.seal_json(&LoginState {
        state: state.clone(),
        verifier: login.pkce_verifier,
        rd,
        exp: now + LOGIN_TTL_SECS,
    });
    let Some(sealed) = sealed else {
        return Reply::text(500, "could not seal the sign-in state");
    };
    let cookie = set_cookie(
        &app.sessions.cookie,
        &login_state::cookie_name(&app.sessions.cookie.name, &state),
        &sealed,
        &app.callback_path,
        LOGIN_TTL_SECS as i64,
    );
    Reply::redirect(login.authorize_url).cookies([cookie])
}
