//! [`RequestFacts`]: a request as the gate reads it, once, before anything is decided: who the
//! client is, whether it is a browser navigation, which method, host and path the rules judge
//! (canonical), which `[[routes]]` entry takes it, and which credential it carries. The access
//! decision ([`super::access::decide`]), the credential checks and Gatehouse's own endpoints
//! read these facts instead of working them out again from the request.
//!
//! The facts borrow from the request header (nothing is copied: a canonical path or host is
//! only allocated when it differs from what the client sent). Pingora keeps the request header
//! in its session, so what the later phases need (client address, browser or not, route) is
//! kept in the request's context as [`Kept`].
//!
//! Forward-auth (`/oauth2/auth`) judges the request a proxy in front names in its
//! `X-Forwarded-*` / `X-Original-*` headers, and userinfo judges no request at all: both build
//! their facts through the same constructor, [`RequestFacts::read`], with another [`Judge`].

use super::client_kind::is_browser_navigation;
use crate::policy::host::{canonical_host, CanonicalHost, HostError};
use crate::policy::path::{self, NormalizedPath, PathError};
use crate::routing::{self, Destination, RouteId};
use crate::runtime::Runtime;
use http::request::Parts;
use http::Method;
use std::net::IpAddr;

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
    /// Nobody's path: only "is this an admitted user" (userinfo, `me`, admin).
    IdentityOnly,
}

/// How to answer someone who may not pass.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum DenyAs {
    /// Login redirect or page for browser navigations, JSON for API clients.
    Negotiate,
    /// Always JSON and 401/403 (userinfo, forward-auth, admin).
    Api,
}

/// The `Host` the judged request names.
pub enum HostFact<'r> {
    /// None named (or none judged: [`Judge::IdentityOnly`]).
    Absent,
    /// Two or more `Host` headers: servers pick different ones.
    Repeated,
    /// Not a host name the rules can judge.
    Invalid(HostError),
    Canonical(CanonicalHost<'r>),
}

/// An `Authorization` scheme, compared without regard to case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Bearer,
    /// `token` (GitHub's own spelling for its tokens).
    Token,
    Basic,
    /// Another scheme: the app's business, not Gatehouse's.
    Other,
}

/// The `Authorization` header, as found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authorization<'r> {
    Absent,
    /// More than one: apps pick different copies, so the gate would judge one and forward the
    /// other.
    Repeated,
    NotText,
    Given {
        scheme: Scheme,
        /// What follows the scheme, trimmed.
        credential: &'r str,
    },
}

impl<'r> Authorization<'r> {
    fn of(req: &'r Parts) -> Authorization<'r> {
        let mut values = req.headers.get_all(http::header::AUTHORIZATION).iter();
        let (Some(value), None) = (values.next(), values.next()) else {
            return match req.headers.contains_key(http::header::AUTHORIZATION) {
                true => Authorization::Repeated,
                false => Authorization::Absent,
            };
        };
        let Ok(value) = value.to_str() else {
            return Authorization::NotText;
        };
        let value = value.trim();
        let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
        let scheme = if scheme.eq_ignore_ascii_case("bearer") {
            Scheme::Bearer
        } else if scheme.eq_ignore_ascii_case("token") {
            Scheme::Token
        } else if scheme.eq_ignore_ascii_case("basic") {
            Scheme::Basic
        } else {
            Scheme::Other
        };
        Authorization::Given {
            scheme,
            credential: rest.trim(),
        }
    }
}

/// A request as the gate read it (see the module docs).
pub struct RequestFacts<'r> {
    /// The request itself: header values (cookies, the credential) are read from it, never
    /// copied.
    pub req: &'r Parts,
    /// The client's address as the gate resolved it (`gate::client_ip`: the peer, or what a
    /// trusted proxy says); `None` only where there is no TCP peer. Rate limits, API-key
    /// budgets, the sign-in loop diagnosis and session records use it.
    pub client_ip: Option<IpAddr>,
    /// Answer refusals with pages and sign-in redirects (a browser navigation, asking where
    /// browsers are answered) rather than JSON.
    pub browser: bool,
    /// Which request the rules judge.
    pub judge: Judge<'r>,
    /// The judged method.
    pub method: &'r Method,
    pub host: HostFact<'r>,
    /// The judged path, normalized (`Err`: it cannot be).
    pub path: Result<NormalizedPath<'r>, PathError>,
    /// Where the judged request goes; `None` when it is not routed (nobody's path, or a host
    /// or path that cannot be read).
    pub route: Option<Destination>,
    pub authorization: Authorization<'r>,
    /// Whether any rule or route looks at hosts (else [`RequestFacts::rules_host`] is `None`).
    host_matters: bool,
}

/// What the phases after `request_filter` need of the facts, owned (the facts borrow from the
/// request header).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Kept {
    pub client_ip: Option<IpAddr>,
    pub browser: bool,
    /// The route the request's metrics and access-log line are labelled with (`None`: the
    /// default label).
    pub route: RouteId,
}

impl<'r> RequestFacts<'r> {
    /// Read `req` (from `client_ip`, as the gate resolved it), judging the request `judge`
    /// names, answered as `deny_as` says.
    pub fn read(
        rt: &Runtime,
        req: &'r Parts,
        client_ip: Option<IpAddr>,
        judge: Judge<'r>,
        deny_as: DenyAs,
    ) -> RequestFacts<'r> {
        let (method, host, raw_path) = match judge {
            Judge::Request => (&req.method, request_host(req), req.uri.path()),
            Judge::Forwarded { method, host, uri } => (
                method,
                host.map_or(HostFact::Absent, |h| host_fact(h.as_bytes())),
                uri.split(['?', '#']).next().unwrap_or("/"),
            ),
            Judge::IdentityOnly => (&req.method, HostFact::Absent, "/"),
        };
        let path = path::normalize(raw_path);
        let host_matters = rt.host_matters;
        let route = match (&judge, &host, &path) {
            (Judge::IdentityOnly, _, _)
            | (_, HostFact::Repeated | HostFact::Invalid(_), _)
            | (_, _, Err(_)) => None,
            (_, host, Ok(normal)) => Some(routing::select(
                &rt.settings.routes,
                rt.settings.upstream.is_some(),
                host_for_rules(host, host_matters),
                &normal.path,
            )),
        };
        RequestFacts {
            req,
            client_ip,
            browser: deny_as == DenyAs::Negotiate && is_browser_navigation(req),
            judge,
            method,
            host,
            path,
            route,
            authorization: Authorization::of(req),
            host_matters,
        }
    }

    /// The host name the rules and routes match (lower case, no port), when any looks at hosts.
    pub fn rules_host(&self) -> Option<&str> {
        host_for_rules(&self.host, self.host_matters)
    }

    /// What the later phases keep.
    pub fn kept(&self) -> Kept {
        Kept {
            client_ip: self.client_ip,
            browser: self.browser,
            route: match self.route {
                Some(Destination::Route(route)) => route,
                Some(Destination::Nowhere) | None => None,
            },
        }
    }
}

fn host_fact(raw: &[u8]) -> HostFact<'_> {
    match canonical_host(raw) {
        Ok(h) => HostFact::Canonical(h),
        Err(e) => HostFact::Invalid(e),
    }
}

/// The `Host` the client asked for (HTTP/1.1 header, or the authority of an absolute URI).
fn request_host(req: &Parts) -> HostFact<'_> {
    let mut hosts = req.headers.get_all(http::header::HOST).iter();
    match (hosts.next(), hosts.next()) {
        (Some(h), None) => host_fact(h.as_bytes()),
        (Some(_), Some(_)) => HostFact::Repeated,
        (None, _) => match req.uri.authority() {
            Some(a) => host_fact(a.as_str().as_bytes()),
            None => HostFact::Absent,
        },
    }
}

/// The host name rules and routes match: the canonical one, and only when any looks at hosts.
fn host_for_rules<'h>(host: &'h HostFact<'_>, host_matters: bool) -> Option<&'h str> {
    match host {
        HostFact::Canonical(h) if host_matters => Some(h.name.as_ref()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(headers: &[(&str, &str)]) -> Parts {
        let mut b = http::Request::builder().method("GET").uri("/x");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    #[test]
    fn authorization_is_read_once_as_sent() {
        let given = |value: &str| match Authorization::of(&parts(&[("authorization", value)])) {
            Authorization::Given { scheme, credential } => Some((scheme, credential.to_string())),
            _ => None,
        };
        assert_eq!(
            given("  BEARER  abc  "),
            Some((Scheme::Bearer, "abc".into()))
        );
        assert_eq!(given("token ghp_x"), Some((Scheme::Token, "ghp_x".into())));
        assert_eq!(given("Basic"), Some((Scheme::Basic, String::new())));
        assert_eq!(given("Negotiate x"), Some((Scheme::Other, "x".into())));
        assert_eq!(Authorization::of(&parts(&[])), Authorization::Absent);
        let twice = parts(&[("authorization", "a"), ("authorization", "b")]);
        assert_eq!(Authorization::of(&twice), Authorization::Repeated);
    }
}
