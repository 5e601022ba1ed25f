//! The small endpoints: sign-in page, userinfo, "who am I", forward-auth. Those that ask who is
//! asking run the access decision on facts of their own (built like every request's, with
//! another [`Judge`]) and return its denial for the endpoint table to render.

use super::access::{decide, Access, Granted};
use super::client_kind::is_browser_navigation;
use super::facts::{DenyAs, Judge, RequestFacts};
use super::query_param;
use super::redirect::safe_redirect;
use crate::pages::{me_page, sign_in_page, Denied, Refusal};
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

/// "Is this an admitted user", asked of `facts`' request (no path judged).
async fn who(rt: &Runtime, facts: &RequestFacts<'_>, now: u64, deny_as: DenyAs) -> Access {
    let judged = RequestFacts::read(rt, facts.req, facts.client_ip, Judge::IdentityOnly, deny_as);
    decide(rt, &judged, now).await
}

/// `GET /oauth2/userinfo`: JSON of the current identity.
pub async fn userinfo(rt: &Runtime, facts: &RequestFacts<'_>, now: u64) -> Result<Reply, Denied> {
    match who(rt, facts, now, DenyAs::Api).await {
        Access::Allow(Granted {
            identity: Some(identity),
            set_cookies,
            ..
        }) => Ok(Reply::json(200, &identity.userinfo_json()).cookies(set_cookies)),
        Access::Allow(_) => Err(Denied::json(Refusal::SignInRequired {
            sign_in_url: rt.start_url("/"),
        })),
        Access::Deny(denied) => Err(denied),
    }
}

/// `GET /oauth2/me`: "who am I". A browser gets a page (or, signed out, the login redirect);
/// an API client the same JSON as `/oauth2/userinfo` (or 401).
pub async fn me(rt: &Runtime, facts: &RequestFacts<'_>, now: u64) -> Result<Reply, Denied> {
    match who(rt, facts, now, DenyAs::Negotiate).await {
        Access::Allow(Granted {
            identity: Some(identity),
            set_cookies,
            ..
        }) => {
            let reply = if facts.browser {
                let sign_out = format!("{}/sign_out", rt.settings.proxy_prefix);
                me_page(&rt.settings.pages, &identity, now, &sign_out)
            } else {
                Reply::json(200, &identity.userinfo_json())
            };
            Ok(reply.cookies(set_cookies))
        }
        Access::Allow(_) => Err(Refusal::SignInRequired {
            sign_in_url: rt.start_url("/"),
        }
        .into()),
        Access::Deny(denied) => Err(denied),
    }
}

/// `GET /oauth2/auth`: for nginx `auth_request`, Traefik and Caddy forward-auth. The rules judge
/// the original request, which the proxy names in `X-Original-URI` (nginx) or
/// `X-Forwarded-Uri` (Traefik, Caddy), with `X-Original-Method`/`X-Forwarded-Method` and
/// `X-Forwarded-Host`; without them only "is this an admitted user" is asked. A sign-in that a
/// refusal offers returns to that original URI.
///
/// nginx gets 401/403 only (it understands nothing else). Caddy and Traefik hand the answer
/// to the client as it is, so there a browser navigation is sent to sign in (302) and shown
/// refusals as pages; API clients get JSON everywhere.
pub async fn forward_auth(
    rt: &Runtime,
    facts: &RequestFacts<'_>,
    now: u64,
) -> Result<Reply, Denied> {
    let req = facts.req;
    // Each proxy sets its own spelling and passes the client's other headers through, so two
    // spellings that disagree mean someone is trying to choose what gets judged.
    let header = |names: &[&str]| -> Result<Option<&str>, Refusal> {
        // Every copy of both: a proxy that appends instead of replacing would otherwise let
        // the client's own copy be the one judged.
        let values: Vec<&str> = names
            .iter()
            .flat_map(|n| req.headers.get_all(*n))
            .map(|v| v.to_str().unwrap_or("\u{0}"))
            .collect();
        match values.split_first() {
            Some((first, rest)) if rest.iter().any(|v| v != first) => Err(Refusal::BadPath {
                reason: format!("{} appear more than once and disagree", names.join(" / ")),
            }),
            _ => Ok(values.first().copied()),
        }
    };
    let forwarded = (|| {
        let method = header(&["x-original-method", "x-forwarded-method"])?;
        let uri = header(&["x-original-uri", "x-forwarded-uri"])?;
        let host = header(&["x-forwarded-host"])?;
        Ok::<_, Refusal>((method, uri, host))
    })();
    let (method, uri, host) = match forwarded {
        Ok(found) => found,
        Err(refusal) => return as_forward_auth_answer(refusal.into()),
    };
    let method = match method.map(|m| Method::from_bytes(m.as_bytes())) {
        None => Method::GET,
        Some(Ok(m)) => m,
        Some(Err(_)) => {
            return as_forward_auth_answer(
                Refusal::BadPath {
                    reason: "the forwarded method is not an HTTP method".into(),
                }
                .into(),
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
    let rd = safe_redirect(uri, &rt.settings.public_url, &rt.settings.proxy_prefix);
    let browser = passes_answers_on(req)
        && (method == Method::GET || method == Method::HEAD)
        && is_browser_navigation(req);
    let judged = RequestFacts::read(rt, req, facts.client_ip, judge, DenyAs::Api);
    match decide(rt, &judged, now).await {
        Access::Allow(Granted {
            identity: None,
            set_cookies,
            ..
        }) => Ok(Reply::empty(202).cookies(set_cookies)),
        Access::Allow(Granted {
            identity: Some(identity),
            set_cookies,
            ..
        }) => {
            let mut reply = Reply::empty(202)
                .header("X-Auth-Request-User", identity.login.clone())
                .header("X-Auth-Request-User-Id", identity.user_id.clone())
                .header("X-Auth-Request-Preferred-Username", identity.login.clone());
            // An empty header is not "no groups" to every app (and Caddy copies it as is):
            // a list that is empty is not sent.
            for (name, list) in [
                ("X-Auth-Request-Groups", &identity.groups),
                ("X-Auth-Request-Roles", &identity.roles),
            ] {
                if !list.is_empty() {
                    reply = reply.header(name, list.join(","));
                }
            }
            if let Some(email) = &identity.email {
                reply = reply.header("X-Auth-Request-Email", email.clone());
            }
            Ok(reply.cookies(set_cookies))
        }
        Access::Deny(mut denied) => {
            if let Refusal::SignInRequired { sign_in_url } = &mut denied.refusal {
                *sign_in_url = rt.start_url(&rd);
            }
            if !browser || !denied.as_page(true) {
                return as_forward_auth_answer(denied);
            }
            Ok(match denied.refusal {
                // Absolute: Traefik resolves a relative `Location` against the gate's own
                // address, which the browser cannot reach.
                Refusal::SignInRequired { sign_in_url } => Reply::redirect(format!(
                    "{}{sign_in_url}",
                    rt.settings.public_url.origin().ascii_serialization()
                ))
                .cookies(denied.set_cookies),
                _ => denied.reply(true),
            })
        }
    }
}

/// Does the proxy asking hand any answer on to the client? Caddy's `forward_auth` and Traefik's
/// `forwardAuth` do, and say so by `X-Forwarded-Method` (the shipped configs also by
/// `?proxy=caddy` / `?proxy=traefik`); nginx's `auth_request` (`X-Original-URI`, or
/// `?proxy=nginx`) turns anything but 2xx, 401 and 403 into a 500.
fn passes_answers_on(req: &Parts) -> bool {
    match query_param(req, "proxy").as_deref() {
        Some("caddy" | "traefik") => true,
        Some(_) => false,
        None => {
            req.headers.contains_key("x-forwarded-method")
                && !req.headers.contains_key("x-original-uri")
        }
    }
}

/// nginx `auth_request` understands only 2xx, 401 and 403 (anything else becomes a 500): a
/// hidden path or a refused address is a plain "no" to the proxy, which shows its own page
/// (the JSON body still says why).
fn as_forward_auth_answer(denied: Denied) -> Result<Reply, Denied> {
    match denied.refusal {
        Refusal::BadRequest { .. } | Refusal::BadPath { .. } | Refusal::NotFound => {
            let mut reply = denied.reply(false);
            reply.status = 403;
            Ok(reply)
        }
        _ => Err(denied),
    }
}
