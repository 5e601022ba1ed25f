//! `GET /.well-known/oauth-authorization-server` (RFC 8414): what an OAuth 2.0 client needs to
//! find the authorize, token and revocation endpoints and what they accept. Never gated, like
//! the JWKS.

use crate::reply::Reply;
use crate::runtime::Runtime;

/// Where the document is published (RFC 8414 §3).
pub const METADATA_PATH: &str = "/.well-known/oauth-authorization-server";

/// The document: `issuer` is the public URL without a trailing slash (RFC 8414 §3.3: the
/// issuer the well-known URL is built from), every endpoint under `server.proxy_prefix`.
pub fn document(rt: &Runtime) -> serde_json::Value {
    let issuer = rt.settings.public_url.as_str().trim_end_matches('/');
    let at = |path: &str| format!("{issuer}{}{path}", rt.settings.proxy_prefix);
    let auth_methods = ["none", "client_secret_basic", "client_secret_post"];
    serde_json::json!({
        "issuer": issuer,
        "authorization_endpoint": at("/authorize"),
        "token_endpoint": at("/token"),
        "revocation_endpoint": at("/revoke"),
        "jwks_uri": format!("{issuer}{}", super::JWKS_PATH),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": auth_methods,
        "revocation_endpoint_auth_methods_supported": auth_methods,
    })
}

/// The document as served: cacheable for five minutes, like the JWKS.
pub fn metadata(rt: &Runtime) -> Reply {
    Reply::json(200, &document(rt)).replace_header("Cache-Control", "public, max-age=300")
}
