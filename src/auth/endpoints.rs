//! The small endpoints: sign-in page, sign-out, userinfo, forward-auth.

use super::access::{check, Access, DenyAs, Granted, Judge};
use super::query_param;
use super::redirect::safe_redirect;
use crate::pages::{me_page, sign_in_page, Failure};
use crate::reply::Reply;
use crate::runtime::Runtime;
use http::request::Parts;
use http::Method;

pub fn sign_in(rt: &Runtime, req: &Parts) -> Reply {
    let rd = safe_redirect(
        query_param(req, "rd").as_deref(),
        &rt.settings.public_url,
        &rt.settings.proxy_prefix,
    );
    sign_in_page(&rt.settings.pages, &rt.start_url(&rd))
}

/// `GET /oauth2/userinfo`: JSON of the current identity.
pub async fn userinfo(rt: &Runtime, req: &Parts, now: u64) -> Reply {
    match check(rt, req, Judge::IdentityOnly, now, DenyAs::Api).await {
        Access::Allow(Granted {
            identity: Some(identity),
            set_cookies,
            ..
        }) => Reply::json(200, &identity.userinfo_json()).cookies(set_cookies),
        Access::Allow(_) => Failure::SignInRequired {
            sign_in_url: rt.start_url("/"),
        }
        .reply(false),
        Access::Deny(reply) => reply,
    }
}

/// `GET /oauth2/me`: "who am I". A browser gets a page (or, signed out, the login redirect);
/// an API client the same JSON as `/oauth2/userinfo` (or 401).
pub async fn me(rt: &Runtime, req: &Parts, browser: bool, now: u64) -> Reply {
    match check(rt, req, Judge::IdentityOnly, now, DenyAs::Negotiate).await {
        Access::Allow(Granted {
            identity: Some(identity),
            set_cookies,
            ..
        }) => {
            let reply = if browser {
                let sign_out = format!("{}/sign_out", rt.settings.proxy_prefix);
                me_page(&rt.settings.pages, &identity, now, &sign_out)
            } else {
                Reply::json(200, &identity.userinfo_json())
            };
            reply.cookies(set_cookies)
        }
        Access::Allow(_) => {
            let start_url = rt.start_url("/");
            if browser {
                Reply::redirect(start_url)
            } else {
                Failure::SignInRequired {
                    sign_in_url: start_url,
                }
                .reply(false)
            }
        }
        Access::Deny(reply) => reply,
    }
}

/// `GET /oauth2/auth`: for nginx `auth_request`, Traefik and Caddy forward-auth. Always 401
/// (never a redirect) when signed out, so the proxy in front decides what to do. The rules judge
/// the original request, which the proxy names in `X-Original-URI` (nginx) or
/// `X-Forwarded-Uri` (Traefik, Caddy), with `X-Original-Method`/`X-Forwarded-Method` and
/// `X-Forwarded-Host`; without them only "is this an admitted user" is asked.
pub async fn forward_auth(rt: &Runtime, req: &Parts, now: u64) -> Reply {
    // Each proxy sets its own spelling and passes the client's other headers through, so two
    // spellings that disagree mean someone is trying to choose what gets judged.
    let header = |names: &[&str]| -> Result<Option<&str>, Reply> {
        // Every copy of both: a proxy that appends instead of replacing would otherwise let
        // the client's own copy be the one judged.
        let values: Vec<&str> = names
            .iter()
            .flat_map(|n| req.headers.get_all(*n))
            .map(|v| v.to_str().unwrap_or("\u{0}"))
            .collect();
        match values.split_first() {
            Some((first, rest)) if rest.iter().any(|v| v != first) => Err(Failure::BadPath {
                reason: format!("{} appear more than once and disagree", names.join(" / ")),
            }
            .reply(false)),
            _ => Ok(values.first().copied()),
        }
    };
    let forwarded = (|| {
        let method = header(&["x-original-method", "x-forwarded-method"])?;
        let uri = header(&["x-original-uri", "x-forwarded-uri"])?;
        let host = header(&["x-forwarded-host"])?;
        Ok::<_, Reply>((method, uri, host))
    })();
    let (method, uri, host) = match forwarded {
        Ok(found) => found,
        Err(reply) => return as_forward_auth_answer(reply),
    };
    let method = match method.map(|m| Method::from_bytes(m.as_bytes())) {
        None => Method::GET,
        Some(Ok(m)) => m,
        Some(Err(_)) => {
            return as_forward_auth_answer(
                Failure::BadPath {
                    reason: "the forwarded method is not an HTTP method".into(),
                }
                .reply(false),
            )
        }
    };
    let judge = match uri {
        Some(uri) => Judge::Forwarded {
            method: &method,
            host,
            uri,
        },
        None => Judge::IdentityOnly,
    };
    match check(rt, req, judge, now, DenyAs::Api).await {
        Access::Allow(Granted {
            identity: None,
            set_cookies,
            ..
        }) => Reply::empty(202).cookies(set_cookies),
        Access::Allow(Granted {
            identity: Some(identity),
            set_cookies,
            ..
        }) => {
            let mut reply = Reply::empty(202)
                .header("X-Auth-Request-User", identity.login.clone())
                .header("X-Auth-Request-User-Id", identity.user_id.clone())
                .header("X-Auth-Request-Preferred-Username", identity.login.clone())
                .header("X-Auth-Request-Groups", identity.groups.join(","))
                .header("X-Auth-Request-Roles", identity.roles.join(","));
            if let Some(email) = &identity.email {
                reply = reply.header("X-Auth-Request-Email", email.clone());
            }
            reply.cookies(set_cookies)
        }
        Access::Deny(reply) => as_forward_auth_answer(reply),
    }
}

/// nginx `auth_request` understands only 2xx, 401 and 403 (anything else becomes a 500): a
/// hidden path or a refused address is a plain "no" to the proxy, which shows its own page.
fn as_forward_auth_answer(mut reply: Reply) -> Reply {
    if matches!(reply.status, 400 | 404) {
        reply.status = 403;
    }
    reply
}

pub fn not_found(browser: bool) -> Reply {
    Failure::NotFound.reply(browser)
}
