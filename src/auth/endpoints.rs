//! The small endpoints: sign-in page, sign-out, userinfo, forward-auth.

use super::access::{check, Access, DenyAs};
use super::query_param;
use super::redirect::safe_redirect;
use crate::app::App;
use crate::pages::{sign_in_page, Failure};
use crate::reply::Reply;
use http::request::Parts;

pub fn sign_in(app: &App, req: &Parts) -> Reply {
    let rd = safe_redirect(
        query_param(req, "rd").as_deref(),
        &app.settings.public_url,
        &app.settings.proxy_prefix,
    );
    let host = app.settings.public_url.host_str().unwrap_or("This app");
    sign_in_page(host, &app.start_url(&rd))
}

/// Ends the session and lands on `rd`, or on the sign-in page (landing on `/` would sign the
/// person straight back in through GitHub).
pub fn sign_out(app: &App, req: &Parts) -> Reply {
    let target = match query_param(req, "rd") {
        Some(rd) => safe_redirect(
            Some(&rd),
            &app.settings.public_url,
            &app.settings.proxy_prefix,
        ),
        None => format!("{}/sign_in", app.settings.proxy_prefix),
    };
    Reply::redirect(target).cookies(app.sessions.clear(&req.headers))
}

/// `GET /oauth2/userinfo`: JSON of the current identity.
pub fn userinfo(app: &App, req: &Parts, now: u64) -> Reply {
    match check(app, req, now, DenyAs::Api) {
        Access::Allow(identity) => Reply::json(200, &identity.userinfo_json()),
        Access::Deny(reply) => reply,
    }
}

/// `GET /oauth2/auth`: for nginx `auth_request`, Traefik and Caddy forward-auth. Always 401
/// (never a redirect) when signed out, so the proxy in front decides what to do.
pub fn forward_auth(app: &App, req: &Parts, now: u64) -> Reply {
    match check(app, req, now, DenyAs::Api) {
        Access::Allow(identity) => {
            let mut reply = Reply::empty(202)
                .header("X-Auth-Request-User", identity.login.clone())
                .header("X-Auth-Request-User-Id", identity.user_id.clone())
                .header("X-Auth-Request-Preferred-Username", identity.login.clone())
                .header("X-Auth-Request-Groups", identity.groups.join(","));
            if let Some(email) = &identity.email {
                reply = reply.header("X-Auth-Request-Email", email.clone());
            }
            reply
        }
        Access::Deny(reply) => reply,
    }
}

pub fn not_found(browser: bool) -> Reply {
    Failure::NotFound.reply(browser)
}
