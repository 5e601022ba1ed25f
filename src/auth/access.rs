//! The per-request decision: normalize the path, find the deciding rule, and only when the rule
//! needs it read the session (re-checking memberships when they are due) and judge the person.

use super::client_kind::is_browser_navigation;
use super::credentials::{self, Credential};
use super::recheck::Outcome;
use crate::identity::Identity;
use crate::pages::Failure;
use crate::policy::host::{canonical_host, CanonicalHost};
use crate::policy::{path, path_refusal, Policy, Target, Verdict};
use crate::reply::Reply;
use crate::routing::{self, Destination, RouteId};
use crate::runtime::Runtime;
use crate::session::{SessionClaims, WriteError};
use http::request::Parts;
use http::Method;

// Lives on the stack for one request; boxing would cost an allocation on every request.
#[allow(clippy::large_enum_variant)]
pub enum Access {
    Allow(Granted),
    Deny(Reply),
}

/// What an allowed request carries on.
#[derive(Debug, Default)]
pub struct Granted {
    /// Which app the request goes to.
    pub route: RouteId,
    /// `None` on a public path: no identity headers go upstream.
    pub identity: Option<Identity>,
    /// The normalized path, when it differs from what the client sent: the upstream gets it.
    pub normalized_path: Option<String>,
    /// The canonical `Host` the rules judged (lower case, no trailing dot or empty port), when
    /// it differs from what the client sent: the upstream gets it.
    pub canonical_host: Option<String>,
    /// `Set-Cookie` values for the response (a session refreshed by a re-check).
    pub set_cookies: Vec<String>,
    /// The `Authorization` header held Gatehouse's credential; it must not reach the upstream.
    pub consumed_authorization: bool,
}

/// How to answer someone who may not pass.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum DenyAs {
    /// Login redirect or page for browser navigations, JSON for API clients.
    Negotiate,
    /// Always JSON and 401/403 (userinfo, forward-auth).
    Api,
}

/// Which request the rules judge.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Judge<'a> {
    /// The request itself (proxied traffic).
    Request,
    /// The request a proxy in front asks about (forward-auth): method, host and URI from its
    /// `X-Forwarded-*` / `X-Original-*` headers.
    Forwarded {
        method: &'a Method,
        host: Option<&'a str>,
        uri: &'a str,
    },
    /// Nobody's path: only "is this an admitted user" (userinfo).
    IdentityOnly,
}

pub async fn check(
    rt: &Runtime,
    req: &Parts,
    judge: Judge<'_>,
    now: u64,
    deny_as: DenyAs,
) -> Access {
    // Decided only on the way out: admitted requests never pay for it.
    let browser = || deny_as == DenyAs::Negotiate && is_browser_navigation(req);
    let policy = &rt.policy;
    let (method, host, raw_path) = match judge {
        Judge::Request => (&req.method, request_host(req), req.uri.path()),
        Judge::Forwarded { method, host, uri } => (
            method,
            host.map_or(Host::Absent, |h| Host::Given(h.as_bytes())),
            uri.split(['?', '#']).next().unwrap_or("/"),
        ),
        Judge::IdentityOnly => (&req.method, Host::Absent, "/"),
    };
    if req
        .headers
        .get_all(http::header::AUTHORIZATION)
        .iter()
        .nth(1)
        .is_some()
    {
        // Apps pick different copies; the gate would judge one and forward the other.
        return Access::Deny(
            Failure::BadRequest {
                reason: "the request has more than one Authorization header".into(),
            }
            .reply(browser()),
        );
    }
    if let Some(reason) = method_refusal(method) {
        return Access::Deny(Failure::BadRequest { reason }.reply(browser()));
    }
    let host = match host {
        Host::Given(raw) => match canonical_host(raw) {
            Ok(h) => Some(h),
            Err(e) => {
                return Access::Deny(
                    Failure::BadRequest {
                        reason: e.to_string(),
                    }
                    .reply(browser()),
                )
            }
        },
        Host::Absent => None,
        Host::Repeated => {
            return Access::Deny(
                Failure::BadRequest {
                    reason: "the request has more than one Host header".into(),
                }
                .reply(browser()),
            )
        }
    };
    if host.is_none() && rt.host_matters && judge != Judge::IdentityOnly {
        return Access::Deny(
            Failure::BadRequest {
                reason: "the request names no host (forward-auth: the proxy must send X-Forwarded-Host), and this gate decides by host".into(),
            }
            .reply(browser()),
        );
    }
    let canonical_host = host
        .as_ref()
        .filter(|h| h.changed)
        .map(CanonicalHost::header_value);
    let normal = match path::normalize(raw_path) {
        Ok(n) => n,
        Err(e) => {
            return Access::Deny(
                Failure::BadPath {
                    reason: e.to_string(),
                }
                .reply(browser()),
            );
        }
    };
    // Gatehouse's own endpoints are recognised by the path as sent; another spelling of one
    // (`/%6Fauth2/start`, `//oauth2/userinfo`) would otherwise go to the app as the real thing.
    if judge == Judge::Request && super::is_own_path(rt, &normal.path) {
        return Access::Deny(
            Failure::BadPath {
                reason: "it names one of Gatehouse's own endpoints in another spelling; use its plain path".into(),
            }
            .reply(browser()),
        );
    }
    let target = Target {
        method,
        host: host
            .as_ref()
            .filter(|_| rt.host_matters)
            .map(|h| h.name.as_ref()),
        path: &normal.path,
    };
    let route = match judge {
        Judge::IdentityOnly => None,
        _ => match routing::select(
            &rt.settings.routes,
            rt.settings.upstream.is_some(),
            target.host,
            target.path,
        ) {
            Destination::Route(route) => route,
            Destination::Nowhere => return Access::Deny(Failure::NotFound.reply(browser())),
        },
    };
    let found = match judge {
        Judge::IdentityOnly => None,
        _ => policy.route_on(route, &target),
    };
    if let Some(reason) = path_refusal(&normal, found.as_ref().map(|f| f.rule)) {
        return Access::Deny(
            Failure::BadPath {
                reason: reason.into(),
            }
            .reply(browser()),
        );
    }
    let normalized_path = match &normal.path {
        std::borrow::Cow::Owned(p) => Some(p.clone()),
        std::borrow::Cow::Borrowed(_) => None,
    };
    if !Policy::needs_identity(found.as_ref(), method) {
        return match policy.judge_on(route, found.as_ref(), method, None) {
            Verdict::Public => Access::Allow(Granted {
                route,
                identity: None,
                normalized_path,
                canonical_host,
                set_cookies: Vec::new(),
                consumed_authorization: credentials::is_gatehouse_credential(rt, req),
            }),
            verdict => Access::Deny(refusal(rt, req, verdict, None, browser())),
        };
    }

    let mut set_cookies = Vec::new();
    let credential = match credentials::identify(rt, req, now).await {
        Ok(credential) => credential,
        Err(reply) => return Access::Deny(reply),
    };
    let consumed_authorization = credentials::consumed_authorization(&credential)
        || credentials::is_gatehouse_credential(rt, req);
    let identity = match credential {
        Credential::Session(claims) => {
            match current_claims(rt, req, claims, now, browser(), &mut set_cookies).await {
                Ok(claims) => claims.map(Identity::from),
                Err(reply) => return Access::Deny(reply.cookies(set_cookies)),
            }
        }
        Credential::Token(identity) => Some(identity),
        Credential::Anonymous => None,
    };
    let verdict = policy.judge_on(route, found.as_ref(), method, identity.as_ref());
    match (verdict, identity) {
        (Verdict::Allow | Verdict::Public, Some(mut identity)) => {
            identity.roles = policy.role_names(&identity);
            Access::Allow(Granted {
                route,
                identity: Some(identity),
                normalized_path,
                canonical_host,
                set_cookies,
                consumed_authorization,
            })
        }
        (verdict, identity) => Access::Deny(
            refusal(rt, req, verdict, identity.as_ref(), browser()).cookies(set_cookies),
        ),
    }
}

/// How long a request waits for a due membership re-check while the last known memberships
/// may still serve.
const RECHECK_PATIENCE: std::time::Duration = std::time::Duration::from_secs(1);

/// The session's claims after a membership re-check when one is due. `Ok(None)`: the session
/// ended (token revoked); `Err`: GitHub has been unreachable for longer than the grace.
async fn current_claims(
    rt: &Runtime,
    req: &Parts,
    mut claims: SessionClaims,
    now: u64,
    browser: bool,
    set_cookies: &mut Vec<String>,
) -> Result<Option<SessionClaims>, Reply> {
    let access = &rt.settings.access;
    let due_at = claims
        .refreshed_at
        .saturating_add(access.refresh_interval.as_secs());
    // A webhook (or an admin) asked every session of this user to ask GitHub again now.
    let requested = rt.sessions.recheck_requested(&claims);
    if now < due_at && requested.is_none() {
        return Ok(Some(claims));
    }
    // While the last known memberships may still serve (within stale_grace) and no
    // revocation asked for this re-check, a slow GitHub delays a request by at most
    // RECHECK_PATIENCE: past it, the request is served on them and the re-check finishes in
    // the background for the session's next request.
    let within_grace = now < due_at.saturating_add(access.stale_grace.as_secs());
    let patience = (requested.is_none() && within_grace).then_some(RECHECK_PATIENCE);
    let Some((outcome, checked_at)) = rt
        .rechecks
        .run(rt, &claims, now, requested.unwrap_or(0), patience)
        .await
    else {
        tracing::debug!(login = %claims.login, "re-check still running; serving the last known memberships");
        return Ok(Some(claims));
    };
    match outcome {
        Outcome::Fresh { login, groups } => {
            claims.login = login;
            claims.groups = groups;
            claims.refreshed_at = checked_at;
            let identity = Identity::from(claims.clone());
            claims.roles = if rt.policy.admission.admits(&identity) {
                rt.policy.role_names(&identity)
            } else {
                Vec::new()
            };
            // Not stored (too large, or the store failed) means the next request re-checks
            // again; still correct.
            match rt.sessions.update(&claims, req, now).await {
                Ok(cookies) => set_cookies.extend(cookies),
                // Signed out or revoked while GitHub was asked: the session is over, and the
                // write did not bring it back.
                Err(WriteError::Ended) => {
                    tracing::info!(login = %claims.login, "session ended during its re-check");
                    set_cookies.extend(rt.sessions.clear(&req.headers));
                    return Ok(None);
                }
                Err(e) => tracing::warn!(error = %e, "could not store re-checked memberships"),
            }
            Ok(Some(claims))
        }
        Outcome::Revoked => {
            tracing::info!(
                target: "gatehouse::audit",
                event = "session_revoked",
                reason = "GitHub no longer accepts the sign-in",
                login = %claims.login,
                user_id = %claims.user_id,
                "session ended: GitHub no longer accepts the sign-in"
            );
            if let Err(e) = rt.sessions.end(&claims).await {
                tracing::warn!(error = %e, "could not delete an ended session from the store");
            }
            set_cookies.extend(rt.sessions.clear(&req.headers));
            Ok(None)
        }
        Outcome::Unavailable if now < due_at.saturating_add(access.stale_grace.as_secs()) => {
            Ok(Some(claims))
        }
        Outcome::Unavailable => {
            tracing::warn!(login = %claims.login, "access refused: memberships could not be re-checked within access.stale_grace");
            Err(Failure::MembershipUnconfirmed.reply(browser))
        }
    }
}

/// The answer for a verdict that does not let the request through.
fn refusal(
    rt: &Runtime,
    req: &Parts,
    verdict: Verdict,
    identity: Option<&Identity>,
    browser: bool,
) -> Reply {
    if let Verdict::Deny { hide } = verdict {
        tracing::info!(
            target: "gatehouse::audit",
            event = "denied",
            status = if hide { 404 } else { 403 },
            login = identity.map_or("-", |i| i.login.as_str()),
            method = %req.method,
            path = req.uri.path(),
            "access denied by rule"
        );
    }
    match verdict {
        Verdict::Deny { hide: true } => Failure::NotFound.reply(browser),
        Verdict::Deny { hide: false } => Failure::Forbidden {
            login: identity.map(|i| i.login.clone()),
            sign_out_url: format!("{}/sign_out", rt.settings.proxy_prefix),
        }
        .reply(browser),
        // Allow without an identity cannot happen; answer it as "sign in" (fail closed).
        Verdict::Login | Verdict::Allow | Verdict::Public => {
            let rd = req.uri.path_and_query().map_or("/", |pq| pq.as_str());
            let start_url = rt.start_url(rd);
            if browser {
                Reply::redirect(start_url)
            } else {
                Failure::SignInRequired {
                    sign_in_url: start_url,
                }
                .reply(false)
            }
        }
    }
}

/// The host a request names, as sent.
enum Host<'a> {
    Given(&'a [u8]),
    Absent,
    /// Two or more `Host` headers: servers pick different ones.
    Repeated,
}

/// The `Host` the client asked for (HTTP/1.1 header, or the authority of an absolute URI).
fn request_host(req: &Parts) -> Host<'_> {
    let mut hosts = req.headers.get_all(http::header::HOST).iter();
    match (hosts.next(), hosts.next()) {
        (Some(h), None) => Host::Given(h.as_bytes()),
        (Some(_), Some(_)) => Host::Repeated,
        (None, _) => match req.uri.authority() {
            Some(a) => Host::Given(a.as_str().as_bytes()),
            None => Host::Absent,
        },
    }
}

/// Method names are case-sensitive (RFC 9110 §9.1), but Django, Flask, Symfony and Laravel
/// upper-case whatever arrives: `post` would be judged as one method and run as another. So a
/// method with a lower-case letter is refused rather than guessed at.
fn method_refusal(method: &Method) -> Option<String> {
    let name = method.as_str();
    name.bytes().any(|b| b.is_ascii_lowercase()).then(|| {
        format!(
            "the method `{name}` is not in upper case; methods are case-sensitive, send `{}`",
            name.to_ascii_uppercase()
        )
    })
}
