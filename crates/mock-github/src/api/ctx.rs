//! `Ctx`: what an endpoint handler of the REST API knows about its request.

use super::super::state::{Shared, TokenGrant};

/// What a handler needs to know about the request.
pub(super) struct Ctx<'a> {
    pub(super) shared: &'a Shared,
    pub(super) token: TokenGrant,
    /// e.g. "http://127.0.0.1:5000/api/v3", for absolute URLs in bodies and Link headers.
    pub(super) api_base: String,
    /// e.g. "http://127.0.0.1:5000", for html_url.
    pub(super) web_base: String,
    /// The path after the prefix, e.g. "/user/orgs".
    pub(super) path: String,
    pub(super) query: Option<String>,
}
