//! The Pingora `ProxyHttp` service: wires the auth check, identity headers and upstream
//! together. It holds no auth logic of its own.

mod client_ip;
mod headers;
mod lifecycle;
mod redirect_http;
mod respond;
mod server;
mod tls;
mod upgrade;
mod websocket;

pub use lifecycle::in_flight;
pub use server::{listener, serve, serve_reloading, server_conf, ServeError, Start};

use crate::auth::{
    self,
    access::{Access, Granted},
    client_kind::is_browser_navigation,
    facts::{DenyAs, Judge, Kept, RequestFacts},
};
use crate::clock::unix_now;
use crate::config::UpstreamTarget;
use crate::limits;
use crate::observe::{self, Decision};
use crate::pages::{Denied, Refusal};
use crate::runtime::Runtime;
use crate::session::cookies::strip_own_cookies;
use crate::tokens::assertion::AssertionSubject;
use arc_swap::ArcSwap;
use async_trait::async_trait;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::HttpPeer;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::utils::tls::{parse_x509, WrappedX509};
use pingora::{Error, ErrorSource, ErrorType};
use std::sync::Arc;

/// The signed identity sent upstream.
pub const ASSERTION_HEADER: &str = "x-gatehouse-jwt-assertion";
use std::time::Instant;

/// The whole request body of one of Gatehouse's own POST endpoints, or `None` when it is
/// larger than `limit`.
async fn read_body(session: &mut Session, limit: usize) -> pingora::Result<Option<bytes::Bytes>> {
    let mut body = bytes::BytesMut::new();
    while let Some(chunk) = session.read_request_body().await? {
        if body.len() + chunk.len() > limit {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body.freeze()))
}

/// A 400 for a request target the rules could not judge as sent: not origin-form (`/…`),
/// absolute-form or `*`, or not UTF-8. Pingora would forward such bytes as they came, so the
/// app could act on a path the gate never saw.
fn unjudgeable_target(req: &RequestHeader) -> Option<Refusal> {
    let raw = req.raw_path();
    let judgeable = req.raw_path_is_utf8()
        && (raw.first() == Some(&b'/') || req.uri.scheme().is_some() || raw == b"*");
    (!judgeable).then(|| Refusal::BadPath {
        reason: "the request target is not a path starting with `/`, or is not UTF-8".into(),
    })
}

/// Answer with `denied` (a page or JSON, as `browser` says) and count it.
async fn refuse(
    session: &mut Session,
    ctx: &mut RequestCtx,
    denied: Denied,
    browser: bool,
) -> pingora::Result<bool> {
    ctx.decision = Decision::of_refusal(&denied.refusal, denied.as_page(browser));
    observe::metrics().refused(&denied.refusal);
    respond::write_reply(session, denied.reply(browser)).await?;
    Ok(true)
}

/// Pingora's per-request modules every gate has (`examples/floor_proxy.rs` too).
pub fn downstream_modules(modules: &mut pingora::modules::http::HttpModules) {
    // Pingora's default: compression present, off.
    modules.add_module(pingora::modules::http::compression::ResponseCompressionBuilder::enable(0));
}

pub struct Gate {
    /// The config in force. A reload (SIGHUP) swaps it whole; each request takes one snapshot
    /// in `new_ctx` and uses it in every phase, so no request mixes two configs.
    live: Arc<ArcSwap<Live>>,
}

/// One config's runtime parts: the app and its upstream peers, always swapped together.
pub struct Live {
    pub rt: Arc<Runtime>,
    /// `[upstream]`, for requests no route takes.
    fallback: Option<HttpPeer>,
    /// One per `[[routes]]` entry, same order.
    routes: Vec<HttpPeer>,
    /// Each route's request counters, same order (`[upstream]` uses the default ones).
    route_counters: Vec<observe::RequestCounters>,
}

impl Live {
    pub fn new(rt: Arc<Runtime>) -> Result<Live, String> {
        let fallback = rt.settings.upstream.as_ref().map(peer_for).transpose()?;
        let routes = rt
            .settings
            .routes
            .iter()
            .map(|r| peer_for(&r.target))
            .collect::<Result<Vec<_>, _>>()?;
        let route_counters = rt
            .settings
            .routes
            .iter()
            .map(|r| observe::metrics().requests_for(&r.name))
            .collect();
        Ok(Live {
            rt,
            fallback,
            routes,
            route_counters,
        })
    }
}

impl Gate {
    pub fn new(rt: Arc<Runtime>) -> Result<Gate, String> {
        Ok(Gate {
            live: Arc::new(ArcSwap::from_pointee(Live::new(rt)?)),
        })
    }

    /// The handle a reload stores a new [`Live`] through.
    pub fn live(&self) -> Arc<ArcSwap<Live>> {
        self.live.clone()
    }
}

/// The Pingora peer for one app: built once, cloned per request (connections are pooled).
fn peer_for(up: &UpstreamTarget) -> Result<HttpPeer, String> {
    // SNI only matters over TLS; an empty one costs nothing when the peer is cloned per request.
    let sni = if up.tls {
        up.sni.clone()
    } else {
        String::new()
    };
    let mut peer = HttpPeer::new(up.addr, up.tls, sni);
    peer.options.connection_timeout = Some(up.connect_timeout);
    peer.options.read_timeout = Some(up.read_timeout);
    if up.h2c {
        // HTTP/2 only: over plaintext there is no ALPN, so "2 or 1.1" would mean 1.1.
        peer.options.set_http_version(2, 2);
        // Pingora's default is one stream per connection.
        peer.options.max_h2_streams = 100;
    }
    if let Some(path) = &up.ca_file {
        use rustls::pki_types::{pem::PemObject, CertificateDer};
        let certs = CertificateDer::pem_file_iter(path)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| format!("{path}: not a PEM certificate file ({e})"))?;
        if certs.is_empty() {
            return Err(format!("{path}: holds no certificate"));
        }
        let ca: Vec<WrappedX509> = certs
            .into_iter()
            .map(|der| WrappedX509::new(der.to_vec(), parse_x509))
            .collect();
        peer.options.ca = Some(Arc::from(ca.into_boxed_slice()));
    }
    Ok(peer)
}

/// What one request learned on its way through the phases.
pub struct RequestCtx {
    /// Set once the access check lets the request through; `None` means it did not (yet).
    granted: Option<Granted>,
    /// Who the client is (the peer, or what a trusted proxy says): limits and forwarded headers.
    client: client_ip::ClientInfo,
    /// What the later phases keep of the request's facts (read once in `request_filter`):
    /// the route for metrics and the access log, browser or API client for error pages.
    kept: Kept,
    started: Instant,
    /// How the gate answered (metrics and the access log); `Error` until request_filter knows.
    decision: Decision,
    /// When the upstream was chosen, and how long until its response headers came.
    upstream_started: Option<Instant>,
    upstream_took: Option<std::time::Duration>,
    /// The config this request is judged and routed by (see [`Gate::live`]).
    live: Arc<Live>,
    /// Counts the request as in flight until it is dropped (SIGTERM drains them).
    _in_flight: lifecycle::InFlight,
    /// Set once the connection was upgraded (websocket) for an identity whose session ends:
    /// the gate closes it then.
    upgraded: Option<websocket::Upgraded>,
}

#[async_trait]
impl ProxyHttp for Gate {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx {
            granted: None,
            client: client_ip::ClientInfo::default(),
            kept: Kept::default(),
            started: Instant::now(),
            decision: Decision::Error,
            upstream_started: None,
            upstream_took: None,
            live: self.live.load_full(),
            _in_flight: lifecycle::InFlight::start(),
            upgraded: None,
        }
    }

    async fn request_filter(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<bool> {
        let now = unix_now();
        let live = Arc::clone(&ctx.live);
        let rt = &live.rt;
        let peer = session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.ip());
        let budget = &rt.settings.limits;
        ctx.client =
            client_ip::resolve(peer, &session.req_header().headers, &budget.trusted_proxies);
        // Refused before the request is read: it could not be.
        let req = session.req_header();
        let early = match limits::header_excess(&req.headers, budget.max_header_bytes) {
            Some(excess) => Some(Refusal::from(excess)),
            None => unjudgeable_target(req),
        };
        if let Some(refusal) = early {
            let browser = is_browser_navigation(req);
            return refuse(session, ctx, refusal.into(), browser).await;
        }
        if let Some(own) = auth::own_endpoint(rt, req.uri.path()) {
            ctx.decision = Decision::Endpoint;
            let body = if req.method == http::Method::POST {
                let limit = own.max_body();
                match read_body(session, limit).await? {
                    Some(body) => body,
                    None => {
                        let denied = Denied::from(Refusal::BodyTooLarge { limit });
                        respond::write_reply(session, denied.reply(false)).await?;
                        return Ok(true);
                    }
                }
            } else {
                bytes::Bytes::new()
            };
            let req = session.req_header();
            let facts = RequestFacts::read(rt, req, ctx.client.ip, Judge::Request, own.deny_as());
            ctx.kept = facts.kept();
            let answered = auth::answer(rt, own, &facts, &body, now).await;
            ctx.decision = answered.decision;
            respond::write_reply(session, answered.reply).await?;
            return Ok(true);
        }
        let facts = RequestFacts::read(rt, req, ctx.client.ip, Judge::Request, DenyAs::Negotiate);
        ctx.kept = facts.kept();
        match auth::access::decide(rt, &facts, now).await {
            Access::Allow(granted) => {
                ctx.decision = match granted.identity {
                    Some(_) => Decision::Allowed,
                    None => Decision::Public,
                };
                ctx.granted = Some(granted);
                Ok(false)
            }
            Access::Deny(denied) => {
                let browser = facts.browser;
                refuse(session, ctx, denied, browser).await
            }
        }
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<Box<HttpPeer>> {
        ctx.upstream_started = Some(Instant::now());
        let route = ctx.granted.as_ref().and_then(|g| g.route);
        let peer = match route {
            Some(i) => ctx.live.routes.get(i),
            None => ctx.live.fallback.as_ref(),
        };
        // Fail closed: the access check only lets through requests that have somewhere to go.
        peer.cloned()
            .map(Box::new)
            .ok_or_else(|| Error::explain(ErrorType::InternalError, "no upstream for this request"))
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        upstream: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<()> {
        let live = Arc::clone(&ctx.live);
        let rt = &live.rt;
        headers::strip_reserved(upstream);
        match strip_own_cookies(&upstream.headers, &rt.sessions.cookie.name) {
            Some(rest) if rest.is_empty() => {
                upstream.remove_header(&http::header::COOKIE);
            }
            Some(rest) => {
                upstream.insert_header(http::header::COOKIE, rest)?;
            }
            None => {}
        }
        // Fail closed: this phase only runs after request_filter let the request through.
        let granted = ctx.granted.as_ref().ok_or_else(|| {
            Error::explain(
                ErrorType::InternalError,
                "no access decision for an upstream request",
            )
        })?;
        if granted.consumed_authorization {
            // Gatehouse's own credential (token, API key) is not the app's business.
            upstream.remove_header(&http::header::AUTHORIZATION);
        }
        if let Some(identity) = &granted.identity {
            headers::add_identity(upstream, identity)?;
            if let Some(signer) = rt.tokens.assertion_for(granted.route) {
                let subject = AssertionSubject {
                    sub: &identity.user_id,
                    login: &identity.login,
                    email: identity.email.as_deref(),
                    groups: &identity.groups,
                    roles: &identity.roles,
                };
                let jwt = signer.assertion(&subject, unix_now()).map_err(|e| {
                    Error::explain(ErrorType::InternalError, format!("identity assertion: {e}"))
                })?;
                upstream.insert_header(ASSERTION_HEADER, jwt)?;
            }
        }
        // The upstream acts on exactly the path the decision was made on, in origin form (an
        // absolute-form target goes out as its path).
        let rewrite = match (&granted.normalized_path, upstream.uri.scheme()) {
            (Some(path), _) => Some(path.as_str()),
            (None, Some(_)) => Some(upstream.uri.path()),
            (None, None) => None,
        };
        if let Some(path) = rewrite {
            let uri = match upstream.uri.query() {
                Some(q) => format!("{path}?{q}"),
                None => path.to_string(),
            };
            let uri = uri.parse::<http::Uri>().map_err(|e| {
                Error::explain(ErrorType::InternalError, format!("normalized path: {e}"))
            })?;
            upstream.set_uri(uri);
        }
        // The app gets the host the rules judged (`Admin.Example.com.` → `admin.example.com`).
        if let Some(host) = &granted.canonical_host {
            upstream.insert_header(http::header::HOST, host.as_str())?;
        }
        let req = session.req_header();
        let host = match (&granted.canonical_host, req.headers.get(http::header::HOST)) {
            (Some(canonical), _) => Some(canonical.as_str()),
            (None, Some(h)) => h.to_str().ok(),
            (None, None) => req.uri.authority().map(|a| a.as_str()),
        };
        // An HTTP/2 client names the host in `:authority`, which the origin-form rewrite above
        // drops: the app (and an HTTP/2 upstream's own `:authority`) gets it as `Host`.
        if upstream.headers.get(http::header::HOST).is_none() {
            if let Some(host) = host {
                upstream.insert_header(http::header::HOST, host)?;
            }
        }
        headers::add_forwarded(upstream, &ctx.client, rt.public_scheme, host)?;
        Ok(())
    }

    async fn response_filter(
        &self,
        session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<()> {
        if let (Some(started), None) = (ctx.upstream_started, ctx.upstream_took) {
            ctx.upstream_took = Some(started.elapsed());
        }
        if upstream_response.status == http::StatusCode::SWITCHING_PROTOCOLS {
            let ends = ctx.granted.as_ref().and_then(|g| g.identity.as_ref());
            if let Some(identity) = ends {
                ctx.upgraded = websocket::on_upgrade(session, identity, ctx.started);
            }
        }
        respond::close_when_stopping(session);
        headers::drop_own_set_cookies(upstream_response, &ctx.live.rt.sessions.cookie.name)?;
        headers::drop_cookie_clearing(upstream_response)?;
        // A membership re-check refreshed the session: the browser gets the new cookie.
        if let Some(granted) = &ctx.granted {
            for cookie in &granted.set_cookies {
                upstream_response.append_header(http::header::SET_COOKIE, cookie.as_str())?;
            }
        }
        Ok(())
    }

    async fn request_body_filter(
        &self,
        session: &mut Session,
        _body: &mut Option<bytes::Bytes>,
        _end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<()> {
        match &mut ctx.upgraded {
            Some(up) => {
                // The config in force now, not the request's: a reload may have removed the
                // API key (or issuer) that opened the tunnel.
                websocket::watch(&self.live.load().rt, up);
                websocket::check(session, up)
            }
            None => Ok(()),
        }
    }

    fn response_body_filter(
        &self,
        session: &mut Session,
        _body: &mut Option<bytes::Bytes>,
        _end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<Option<std::time::Duration>> {
        match &mut ctx.upgraded {
            Some(up) => {
                websocket::watch(&self.live.load().rt, up);
                websocket::check(session, up).map(|()| None)
            }
            None => Ok(None),
        }
    }

    fn init_downstream_modules(&self, modules: &mut pingora::modules::http::HttpModules) {
        downstream_modules(modules);
        if self.live.load().rt.settings.tls.is_some() {
            modules.add_module(Box::new(tls::HstsBuilder {
                live: self.live.clone(),
            }));
        }
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut RequestCtx,
    ) -> FailToProxy {
        if ctx.upgraded.as_ref().is_some_and(|up| up.expired()) {
            tracing::info!(
                user = ctx
                    .granted
                    .as_ref()
                    .and_then(|g| g.identity.as_ref())
                    .map_or("-", |i| i.login.as_str()),
                "websocket closed: its session has ended"
            );
            websocket::close_expired(session).await;
            return FailToProxy {
                error_code: 0,
                can_reuse_downstream: false,
            };
        }
        let code = match (e.esource(), e.etype()) {
            (_, ErrorType::HTTPStatus(code)) => *code,
            (ErrorSource::Upstream, _) => 502,
            (
                ErrorSource::Downstream,
                ErrorType::WriteError | ErrorType::ReadError | ErrorType::ConnectionClosed,
            ) => 0,
            (ErrorSource::Downstream, _) => 400,
            _ => 500,
        };
        // Pingora closes the connection after a failure; say so, or a client may reuse it.
        session.set_keepalive(None);
        if code >= 500 {
            observe::metrics().error(match code {
                502 => observe::ErrorCause::Upstream,
                _ => observe::ErrorCause::Other,
            });
        }
        if code == 502 {
            tracing::warn!(error = %e, "upstream unavailable");
            let reply = Refusal::UpstreamUnavailable.reply(ctx.kept.browser);
            // The response may already be under way; then there is nothing more to say.
            let _ = respond::write_reply(session, reply).await;
        } else if code > 0 {
            let _ = session.respond_error(code).await;
        }
        FailToProxy {
            error_code: code,
            can_reuse_downstream: false,
        }
    }

    fn suppress_error_log(&self, _session: &Session, ctx: &RequestCtx, e: &Error) -> bool {
        // A websocket outliving its session was closed on purpose (and logged as such).
        if ctx.upgraded.as_ref().is_some_and(|up| up.expired()) {
            return true;
        }
        // A client hanging up is routine, not an error worth a log line per request.
        e.esource() == &ErrorSource::Downstream
            && matches!(
                e.etype(),
                ErrorType::ConnectionClosed | ErrorType::ReadError | ErrorType::WriteError
            )
    }

    async fn logging(&self, session: &mut Session, _e: Option<&Error>, ctx: &mut RequestCtx) {
        let metrics = observe::metrics();
        let live = Arc::clone(&ctx.live);
        // The route the request's facts named (read once, in request_filter).
        let route = match &ctx.granted {
            Some(granted) => granted.route,
            None => ctx.kept.route,
        };
        match route.and_then(|i| live.route_counters.get(i)) {
            Some(counters) => counters.record(ctx.decision),
            None => metrics.requests().record(ctx.decision),
        }
        if let Some(took) = ctx.upstream_took {
            metrics.upstream(took);
        }
        if !live.rt.settings.access_log {
            return;
        }
        let route_name = route
            .and_then(|i| live.rt.settings.routes.get(i))
            .map_or(observe::DEFAULT_ROUTE, |r| r.name.as_str());
        let status = session.response_written().map_or(0, |r| r.status.as_u16());
        let req = session.req_header();
        let ms = |d: std::time::Duration| d.as_micros() as f64 / 1000.0;
        // Path only: query strings can carry codes and tokens.
        tracing::info!(
            target: observe::logs::ACCESS_TARGET,
            route = route_name,
            method = %req.method,
            path = req.uri.path(),
            status,
            user = ctx
                .granted
                .as_ref()
                .and_then(|g| g.identity.as_ref())
                .map_or("-", |i| i.login.as_str()),
            decision = ctx.decision.as_str(),
            latency_ms = ms(ctx.started.elapsed()),
            upstream_ms = ctx.upstream_took.map(ms),
        );
    }
}
