//! `GET|POST /orgs/{org}/sso?authorization_request=…`: the single sign-on URL GitHub hands out
//! in `X-GitHub-SSO: required; url=…`. Signing in there (the POST; the mock has no identity
//! provider, a button stands for it) authorizes the refused credential for the org and starts
//! the user's SAML session, so tokens the user authorizes afterwards are authorized too.

use std::sync::Arc;

use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::html::{error_page, escape, page};
use super::state::Shared;

#[derive(Deserialize)]
pub(super) struct SsoParams {
    authorization_request: Option<String>,
}

/// The "sign in with your identity provider" page.
pub(super) async fn show(
    State(shared): State<Arc<Shared>>,
    Path(org): Path<String>,
    Query(p): Query<SsoParams>,
) -> Response {
    let Some(request) = known(&shared, &org, p.authorization_request.as_deref()) else {
        return unknown();
    };
    let body = format!(
        "<p class=\"note\">This is a mock of GitHub, not GitHub. The organization <code>{org}</code> \
requires single sign-on: continue to sign in with its identity provider and authorize the \
credential that was refused.</p><form method=\"post\" action=\"/orgs/{org}/sso\">\
<input type=\"hidden\" name=\"authorization_request\" value=\"{}\">\
<button type=\"submit\">Continue</button></form>",
        escape(&request),
        org = escape(&org),
    );
    page(StatusCode::OK, "Single sign-on (mock GitHub)", &body)
}

/// Signed in at the identity provider: the credential is authorized for the org.
pub(super) async fn submit(
    State(shared): State<Arc<Shared>>,
    Path(org): Path<String>,
    Form(p): Form<SsoParams>,
) -> Response {
    let Some(request) = known(&shared, &org, p.authorization_request.as_deref()) else {
        return unknown();
    };
    let mut st = shared.lock();
    let Some((user_id, client_id, org)) = st.sso_requests.remove(&request) else {
        return unknown();
    };
    for grant in st.tokens.values_mut() {
        if grant.user_id == user_id
            && grant.client_id == client_id
            && !grant.sso_orgs.contains(&org)
        {
            grant.sso_orgs.push(org.clone());
        }
    }
    if !st.sso_sessions.contains(&(user_id, org.clone())) {
        st.sso_sessions.push((user_id, org.clone()));
    }
    page(
        StatusCode::OK,
        "Single sign-on complete (mock GitHub)",
        &format!(
            "<p>Your credential is authorized for <code>{}</code>. Go back to the app and try again.</p>",
            escape(&org)
        ),
    )
}

/// The authorization request, if it was handed out for this org.
fn known(shared: &Shared, org: &str, request: Option<&str>) -> Option<String> {
    let request = request?;
    let st = shared.lock();
    let (_, _, for_org) = st.sso_requests.get(request)?;
    for_org
        .eq_ignore_ascii_case(org)
        .then(|| request.to_string())
}

fn unknown() -> Response {
    error_page(
        StatusCode::NOT_FOUND,
        "Not Found (mock GitHub)",
        "This single sign-on link is unknown or was already used; ask the app for a new one.",
    )
}
