//! Gatehouse's own endpoints (declared once, in the endpoint table: [`endpoints`](mod@endpoints)), and the
//! per-request access decision the gate asks for everything else ([`access::decide`]), both
//! reading the request's [`facts::RequestFacts`].

pub mod access;
mod admin;
mod callback;
mod client_confirm;
pub mod client_kind;
mod credentials;
#[cfg(test)]
mod endpoint_reference;
pub mod endpoints;
pub mod facts;
mod handoff;
mod login_state;
pub mod loop_guard;
pub mod metadata;
mod profile;
pub mod redirect;
mod same_origin;
mod sign_ins;
mod sign_out;
mod small;
mod start;
mod token;
mod token_recheck;
mod token_request;
mod webhook;

pub use endpoints::{answer, endpoints, own_endpoint, Answered, Endpoint, Own, JWKS_PATH};
pub use metadata::METADATA_PATH;

use crate::reply::Reply;
use crate::runtime::Runtime;
use facts::{Judge, RequestFacts};
use http::request::Parts;

/// Is this path (as sent) Gatehouse's own rather than the upstream's?
pub fn is_own_path(rt: &Runtime, path: &str) -> bool {
    own_endpoint(rt, path).is_some()
}

/// Answer a request for one of Gatehouse's own endpoints read here (`client_ip` as the gate
/// resolved it): the entry point for benchmarks and tests that start from an `http` request.
/// The gate itself reads the facts once and calls [`answer`].
pub async fn handle(
    rt: &Runtime,
    req: &Parts,
    body: &[u8],
    now: u64,
    client_ip: Option<std::net::IpAddr>,
) -> Reply {
    let Some(own) = own_endpoint(rt, req.uri.path()) else {
        return crate::pages::Refusal::NotFound.reply(client_kind::is_browser_navigation(req));
    };
    let facts = RequestFacts::read(rt, req, client_ip, Judge::Request, own.deny_as());
    answer(rt, own, &facts, body, now).await.reply
}

/// `/.well-known/jwks.json`: the public keys of the identity assertion and, with ES256, of
/// the access tokens: every configured key, so a new key is known before it signs.
fn jwks(rt: &Runtime) -> Reply {
    let assertion = rt
        .tokens
        .assertion
        .as_ref()
        .map_or(&[][..], |a| a.public_keys());
    let mut keys: Vec<&serde_json::Value> = Vec::new();
    // One key may serve both; list it once.
    for key in assertion.iter().chain(rt.tokens.access.public_keys()) {
        if !keys.iter().any(|k| k["kid"] == key["kid"]) {
            keys.push(key);
        }
    }
    Reply::json(200, &serde_json::json!({ "keys": keys }))
        .replace_header("Cache-Control", "public, max-age=300")
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
