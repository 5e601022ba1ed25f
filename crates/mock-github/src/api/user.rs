//! `GET /user` and `GET /user/emails`.

use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::ctx::Ctx;
use super::error::not_found;
use super::json as shapes;
use super::paginate::paginate;

pub(super) fn me(ctx: &Ctx<'_>) -> Response {
    let st = ctx.shared.lock();
    match st.user_by_id(ctx.token.user_id) {
        Some(user) => Json(shapes::full_user(user, &ctx.api_base, &ctx.web_base)).into_response(),
        None => not_found(),
    }
}

/// Needs `user:email` (or `user`); GitHub answers 404, not 403, without it.
pub(super) fn emails(ctx: &Ctx<'_>) -> Response {
    // A GitHub App reads them with its Email addresses: read permission (assumed granted).
    if !(ctx.token.scopes.allows("user:email")
        || super::super::state::is_github_app(&ctx.token.client_id))
    {
        return not_found();
    }
    let items: Vec<Value> = {
        let st = ctx.shared.lock();
        let Some(user) = st.user_by_id(ctx.token.user_id) else {
            return not_found();
        };
        user.emails
            .iter()
            .map(|e| {
                // GitHub reports visibility for the primary address only.
                let visibility = e
                    .visibility
                    .clone()
                    .or_else(|| e.primary.then(|| "private".to_string()));
                json!({
                    "email": e.email,
                    "primary": e.primary,
                    "verified": e.verified,
                    "visibility": visibility,
                })
            })
            .collect()
    };
    paginate(
        items,
        &format!("{}{}", ctx.api_base, ctx.path),
        ctx.query.as_deref(),
    )
}
