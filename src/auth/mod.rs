//! Gatehouse's own endpoints under the proxy prefix, plus `/ping` and `/ready`, and the
//! per-request access check the gate calls for everything else.

pub mod access;
mod admin;
mod callback;
mod client_confirm;
pub mod client_kind;
mod credentials;
mod endpoints;
mod login_state;
pub mod loop_guard;
mod profile;
mod recheck;
pub mod redirect;
mod same_origin;
mod sign_ins;
mod sign_out;
mod start;
mod token;
mod token_recheck;
mod webhook;

pub use recheck::Rechecks;

use crate::reply::Reply;
use crate::runtime::Runtime;
use http::request::Parts;
use http::Method;

/// Where the upstream assertion's public keys are published.
pub const JWKS_PATH: &str = "/.well-known/jwks.json";

/// Is this request for Gatehouse itself rather than the upstream?
pub fn is_own_path(rt: &Runtime, path: &str) -> bool {
    path == "/ping"
        || path == "/ready"
        || path == JWKS_PATH
        || path
            .strip_prefix(rt.settings.proxy_prefix.as_str())
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// Answer a request for one of Gatehouse's own endpoints; `body` is the request body (read
/// only for POST, bounded by the caller); `client_ip` keys the sign-in and token rate limit.
pub async fn handle(
    rt: &Runtime,
    req: &Parts,
    body: &[u8],
    now: u64,
    client_ip: Option<std::net::IpAddr>,
) -> Reply {
    let path = req.uri.path();
    let browser = client_kind::is_browser_navigation(req);
    let get = req.method == Method::GET || req.method == Method::HEAD;
    let post = req.method == Method::POST;
    if path == "/ping" {
        return Reply::text(200, "OK");
    }
    if path == "/ready" {
        return ready(rt).await;
    }
    if path == JWKS_PATH {
        let keys = rt
            .tokens
            .assertion
            .as_ref()
            .map_or_else(|| serde_json::json!({"keys": []}), |a| a.jwks());
        return Reply::json(200, &keys).replace_header("Cache-Control", "public, max-age=300");
    }
    let endpoint = path
        .strip_prefix(rt.settings.proxy_prefix.as_str())
        .unwrap_or_default();
    let limited = matches!(
        endpoint,
        "/start" | "/callback" | "/confirm" | "/token" | "/refresh" | "/pat"
    );
    if limited && req.method != Method::OPTIONS {
        if let Err(retry) = rt.limits.check_auth(client_ip) {
            tracing::debug!(ip = ?client_ip, endpoint, "rate limited");
            let reply = crate::limits::too_many_requests(retry, browser);
            return match endpoint {
                "/token" | "/refresh" => token::with_cors(rt, req, reply),
                _ => reply,
            };
        }
    }
    if let Some(refusal) = state_change_refusal(rt, req, endpoint, body) {
        return refusal;
    }
    match endpoint {
        "/start" if get => start::start(rt, req, now, client_ip),
        "/callback" if get => callback::callback(rt, req, browser, now).await,
        "/sign_in" if get => endpoints::sign_in(rt, req),
        "/confirm" if post => client_confirm::confirm(rt, req, body, now).await,
        "/sign_out" if get || post => sign_out::sign_out(rt, req, body, now).await,
        "/github/webhook" if post => webhook::handle(rt, req, body, now).await,
        "/github/webhook" => Reply::json(405, &serde_json::json!({"error": "method_not_allowed", "message": "GitHub delivers webhooks with POST"})).header("Allow", "POST"),
        admin if admin.starts_with("/admin/") => admin::handle(rt, req, &admin["/admin".len()..], now).await,
        "/userinfo" if get => endpoints::userinfo(rt, req, now).await,
        "/me" if get => endpoints::me(rt, req, browser, now).await,
        "/auth" if get => endpoints::forward_auth(rt, req, now).await,
        "/token" | "/refresh" if req.method == Method::OPTIONS => token::with_cors(rt, req, Reply::empty(204)),
        "/token" if post => token::with_cors(rt, req, token::token(rt, body, now).await),
        "/refresh" if post => token::with_cors(rt, req, token::refresh(rt, body, now).await),
        "/pat" if post => token::pat(rt, req, body, now).await,
        "/token" | "/refresh" | "/pat" => {
            Reply::json(405, &serde_json::json!({"error": "method_not_allowed", "message": format!("{} is not allowed here; POST JSON", req.method)}))
                .header("Allow", "POST")
        }
        "/start" | "/callback" | "/sign_in" | "/sign_out" | "/userinfo" | "/me" | "/auth" => {
            Reply::json(405, &serde_json::json!({"error": "method_not_allowed", "message": format!("{} is not allowed here", req.method)}))
                .header("Allow", if endpoint == "/sign_out" { "GET, POST" } else { "GET, HEAD" })
        }
        // Only the confirmation page's button: a link must never send a code.
        "/confirm" => Reply::json(405, &serde_json::json!({"error": "method_not_allowed", "message": "confirm a client sign-in with the button on its page (a POST)"}))
            .header("Allow", "POST"),
        _ => endpoints::not_found(browser),
    }
}

/// Every request that may change state (any method but GET, HEAD and OPTIONS) must come from
/// this site, with the body type its endpoint takes; GitHub's webhook is signed instead, and
/// no browser sends it. Wrong methods are refused as cross-site first, which is just as final.
fn state_change_refusal(rt: &Runtime, req: &Parts, endpoint: &str, body: &[u8]) -> Option<Reply> {
    use same_origin::Takes;
    if !same_origin::changes_state(&req.method) || endpoint == "/github/webhook" {
        return None;
    }
    let post = req.method == Method::POST;
    let (takes, cors) = match endpoint {
        "/sign_out" if post => (Takes::FormOrJson, false),
        "/confirm" if post => (Takes::FormOrJson, false),
        "/pat" if post => (Takes::Json, false),
        "/token" | "/refresh" if post => (Takes::Json, true),
        _ => (Takes::Ignored, false),
    };
    let refusal = same_origin::refusal(rt, req, body, takes, cors)?;
    Some(if cors {
        token::with_cors(rt, req, refusal)
    } else {
        refusal
    })
}

/// Bodies larger than this are refused before any handler runs (webhooks can be larger than
/// the JSON of the token endpoints).
pub fn max_body(rt: &Runtime, path: &str) -> usize {
    let webhook = path
        .strip_prefix(rt.settings.proxy_prefix.as_str())
        .is_some_and(|rest| rest == "/github/webhook");
    if webhook {
        1024 * 1024
    } else {
        64 * 1024
    }
}

/// `/ready`: the config is loaded (or this would not answer) and the store answers.
async fn ready(rt: &Runtime) -> Reply {
    match rt.sessions.store.ping().await {
        Ok(()) => Reply::json(200, &serde_json::json!({"status": "ready"})),
        Err(e) => {
            tracing::warn!(error = %e, "not ready: session store unavailable");
            Reply::json(
                503,
                &serde_json::json!({"status": "not_ready", "reason": "session store unavailable", "message": e.to_string()}),
            )
            .header("Retry-After", "5")
        }
    }
}

/// The first value of query parameter `name`, percent-decoded.
pub fn query_param(req: &Parts, name: &str) -> Option<String> {
    let query = req.uri.query()?;
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}
