//! `POST /login/oauth/access_token`: exchange a code for a token, GitHub style.
//!
//! GitHub answers OAuth errors with HTTP 200 and an `error` field, JSON only when the
//! client sends `Accept: application/json`, else form-encoded. A gate that only looks at
//! the status code would accept an error as a token; the mock reproduces that trap.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use url::form_urlencoded;

use super::credentials::basic_credentials;
use super::fault;
use super::pkce;
use super::state::{Issued, Shared, State as MockState, TokenGrant};

const DOCS: &str = "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/";

/// The form fields GitHub reads.
#[derive(Debug, Default)]
struct TokenRequest {
    client_id: Option<String>,
    client_secret: Option<String>,
    code: Option<String>,
    redirect_uri: Option<String>,
    code_verifier: Option<String>,
    grant_type: Option<String>,
    refresh_token: Option<String>,
}

impl TokenRequest {
    fn parse(body: &[u8]) -> TokenRequest {
        let mut req = TokenRequest::default();
        for (k, v) in form_urlencoded::parse(body) {
            let slot = match k.as_ref() {
                "client_id" => &mut req.client_id,
                "client_secret" => &mut req.client_secret,
                "code" => &mut req.code,
                "redirect_uri" => &mut req.redirect_uri,
                "code_verifier" => &mut req.code_verifier,
                "grant_type" => &mut req.grant_type,
                "refresh_token" => &mut req.refresh_token,
                _ => continue,
            };
            *slot = Some(v.into_owned());
        }
        req
    }
}

/// An OAuth error as GitHub names and describes it.
struct OauthError {
    error: &'static str,
    description: &'static str,
    anchor: &'static str,
}

fn oauth_error(error: &'static str, description: &'static str, anchor: &'static str) -> OauthError {
    OauthError {
        error,
        description,
        anchor,
    }
}

fn bad_code() -> OauthError {
    oauth_error(
        "bad_verification_code",
        "The code passed is incorrect or expired.",
        "bad-verification-code",
    )
}

pub(super) async fn exchange(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let json = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"));
    let req = TokenRequest::parse(&body);
    let failure = shared.lock().failure.filter(|f| f.hits_oauth());
    if let Some(f) = failure {
        let cut_off = r#"{"access_token":"gho_16C7e42F292c69"#;
        if let Some(response) = fault::inject(f, IntoResponse::into_response, cut_off).await {
            return response;
        }
    }
    let outcome = {
        let mut st = shared.lock();
        grant(&mut st, &headers, &req)
    };
    let response = match outcome {
        Ok(issued) => reply(json, &token_fields(issued)),
        Err(e) => {
            let uri = format!("{DOCS}#{}", e.anchor);
            reply(
                json,
                &[
                    ("error", e.error.into()),
                    ("error_description", e.description.into()),
                    ("error_uri", uri.into()),
                ],
            )
        }
    };
    fault::hold(failure, response).await
}

/// A token answer's fields: a GitHub App's adds the expiry and the refresh token (numbers in
/// JSON, as GitHub sends them).
fn token_fields(issued: Issued) -> Vec<(&'static str, serde_json::Value)> {
    let mut fields = vec![("access_token", issued.access_token.into())];
    if let Some((expires_in, refresh_token, refresh_expires_in)) = issued.refresh {
        fields.push(("expires_in", expires_in.into()));
        fields.push(("refresh_token", refresh_token.into()));
        fields.push(("refresh_token_expires_in", refresh_expires_in.into()));
    }
    fields.push(("scope", issued.scope.into()));
    fields.push(("token_type", "bearer".into()));
    fields
}

/// All checks, in GitHub's order, under one lock so a code can not be used twice.
fn grant(
    st: &mut MockState,
    headers: &HeaderMap,
    req: &TokenRequest,
) -> Result<Issued, OauthError> {
    let bad_client = || {
        oauth_error(
            "incorrect_client_credentials",
            "The client_id and/or client_secret passed are incorrect.",
            "incorrect-client-credentials",
        )
    };
    let candidates = basic_credentials(headers).unwrap_or_else(|| {
        vec![(
            req.client_id.clone().unwrap_or_default(),
            req.client_secret.clone().unwrap_or_default(),
        )]
    });
    let (client_id, app) = candidates
        .into_iter()
        .find_map(|(id, secret)| {
            let app = st.app_accepting(&id, &secret)?;
            Some((id, app.clone()))
        })
        .ok_or_else(bad_client)?;
    // Credentials in both the header and the body must agree.
    if req
        .client_id
        .as_ref()
        .is_some_and(|body_id| *body_id != client_id)
    {
        return Err(bad_client());
    }
    if req.grant_type.as_deref() == Some("refresh_token") {
        let token = req.refresh_token.as_deref().unwrap_or_default();
        return st.refresh_user_token(&client_id, token).ok_or_else(|| {
            oauth_error(
                "bad_refresh_token",
                "The refresh token passed is incorrect or expired.",
                "bad-refresh-token",
            )
        });
    }
    if req
        .grant_type
        .as_deref()
        .is_some_and(|g| g != "authorization_code")
    {
        return Err(oauth_error(
            "unsupported_grant_type",
            "The grant type is not supported.",
            "unsupported-grant-type",
        ));
    }
    // Taking the code burns it, even if a later check fails.
    let code = req.code.as_deref().unwrap_or_default();
    let grant = st.take_code(code).ok_or_else(bad_code)?;
    if grant.client_id != client_id {
        return Err(bad_code());
    }
    let expected = grant.redirect_uri.as_deref().unwrap_or(&app.callback_url);
    let given_ok = match (&grant.redirect_uri, &req.redirect_uri) {
        (Some(_), None) => false,
        (_, Some(given)) => given == expected,
        (None, None) => true,
    };
    if !given_ok {
        return Err(oauth_error(
            "redirect_uri_mismatch",
            "The redirect_uri MUST match the registered callback URL for this application.",
            "redirect-uri-mismatch2",
        ));
    }
    if let Some(challenge) = &grant.challenge {
        pkce::verify(challenge, req.code_verifier.as_deref()).map_err(|description| {
            oauth_error(
                "bad_verification_code",
                description,
                "bad-verification-code",
            )
        })?;
    }
    if st.user_by_id(grant.user_id).is_none() {
        return Err(bad_code());
    }
    // Authorizing an app while signed in to an org's single sign-on authorizes its token
    // for that org.
    let sso_orgs = st.sso_sessions_of(grant.user_id);
    Ok(st.issue_user_token(TokenGrant {
        client_id,
        user_id: grant.user_id,
        scopes: grant.scopes,
        sso_orgs,
        expires_at: None,
    }))
}

/// JSON or form-encoded body, always HTTP 200.
fn reply(json: bool, fields: &[(&str, serde_json::Value)]) -> Response {
    if json {
        let map: serde_json::Map<String, serde_json::Value> = fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        return axum::Json(map).into_response();
    }
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields.iter().map(|(k, v)| (*k, text(v))))
        .finish();
    (
        [(
            header::CONTENT_TYPE,
            "application/x-www-form-urlencoded; charset=utf-8",
        )],
        body,
    )
        .into_response()
}
