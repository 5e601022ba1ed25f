//! Gatehouse: a reverse-proxy authentication gate on Pingora. It signs people in with GitHub,
//! keeps their session in an encrypted cookie, and forwards allowed requests to the app with
//! identity headers. The public contract (CLI, config keys, endpoints, headers, cookie format,
//! status codes) is documented in the manual's reference pages (docs/src/reference/); how the
//! code is put together is in ARCHITECTURE.md.

pub mod auth;
pub mod claims;
pub mod clock;
pub mod config;
pub mod gate;
pub mod github;
pub mod healthcheck;
pub mod identity;
pub mod limits;
pub mod observe;
pub mod opaque;
pub mod pages;
pub mod policy;
pub mod reply;
pub mod routing;
pub mod runtime;
pub mod session;
pub mod store;
pub mod tokens;

/// Make ring (which Pingora already uses) the process-wide TLS crypto provider, so only one
/// provider is compiled. Call before building any HTTPS client; calling again is harmless.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
