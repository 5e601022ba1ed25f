//! `DELETE /applications/{client_id}/token`: revoke a user token (used at sign-out).

use axum::body::{to_bytes, Body};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::super::credentials::basic_credentials;
use super::super::state::Shared;
use super::error::{message, not_found};

#[derive(Deserialize)]
struct RevokeBody {
    access_token: String,
}

/// Basic auth must be the app's own id and secret; GitHub hides failures as 404.
pub(super) async fn revoke(
    shared: &Shared,
    headers: &HeaderMap,
    client_id: &str,
    body: Body,
) -> Response {
    let authorized = basic_credentials(headers).is_some_and(|candidates| {
        let st = shared.lock();
        candidates
            .iter()
            .any(|(id, secret)| id == client_id && st.app_accepting(id, secret).is_some())
    });
    if !authorized {
        return not_found();
    }
    let parsed = match to_bytes(body, 64 * 1024).await {
        Ok(bytes) => serde_json::from_slice::<RevokeBody>(&bytes).ok(),
        Err(_) => None,
    };
    let Some(parsed) = parsed else {
        return message(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid request.\n\n\"access_token\" wasn't supplied.",
            "https://docs.github.com/rest/apps/oauth-applications#delete-an-app-token",
        );
    };
    let mut st = shared.lock();
    match st.tokens.get(&parsed.access_token) {
        Some(grant) if grant.client_id == client_id => {
            st.tokens.remove(&parsed.access_token);
            StatusCode::NO_CONTENT.into_response()
        }
        _ => not_found(),
    }
}
