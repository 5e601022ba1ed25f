//! `GET|POST /login/oauth/authorize`: the consent page and code issuance.
//!
//! Both methods validate everything (client, redirect_uri, PKCE) because the POST comes
//! from a browser form anyone can forge. Errors are pages, except the ones GitHub sends to the
//! app's *registered* callback URL (`redirect_uri_mismatch`, `application_suspended`, with
//! `error_description`, `error_uri` and the `state`), so a bad redirect_uri can not be used to
//! bounce users elsewhere.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Form, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use url::Url;

use super::data::MemberState;
use super::html::{error_page, escape, page};
use super::scopes::Scopes;
use super::state::{self, Grant, Shared};
use super::{pkce, redirect};

/// Query of the GET, and fields of the form POST (which adds `login`).
#[derive(Debug, Default, Deserialize)]
pub(super) struct AuthorizeParams {
    client_id: Option<String>,
    redirect_uri: Option<String>,
    scope: Option<String>,
    state: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    /// GitHub's account hint; on the POST, the user picked.
    login: Option<String>,
}

impl AuthorizeParams {
    /// The OAuth parameters to carry through the form, skipping absent ones so that
    /// "redirect_uri not given" stays not given.
    fn carried(&self) -> Vec<(&'static str, &str)> {
        [
            ("client_id", &self.client_id),
            ("redirect_uri", &self.redirect_uri),
            ("scope", &self.scope),
            ("state", &self.state),
            ("code_challenge", &self.code_challenge),
            ("code_challenge_method", &self.code_challenge_method),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_deref().map(|v| (k, v)))
        .collect()
    }
}

/// The outcome of validation: where the browser goes next.
struct Checked {
    client_id: String,
    redirect: Url,
}

/// Why the request is refused: an error page, or GitHub's OAuth error sent to the app's
/// registered callback (`to_callback`).
struct Refusal {
    status: StatusCode,
    title: &'static str,
    message: String,
    /// Boxed: a `Url` is large, and the `Ok` side is the common one.
    to_callback: Option<Box<Url>>,
}

impl Refusal {
    fn new(status: StatusCode, title: &'static str, message: impl Into<String>) -> Refusal {
        Refusal {
            status,
            title,
            message: message.into(),
            to_callback: None,
        }
    }

    fn page(&self) -> Response {
        match &self.to_callback {
            Some(url) => (StatusCode::FOUND, [(header::LOCATION, url.to_string())]).into_response(),
            None => error_page(self.status, self.title, &self.message),
        }
    }
}

/// An OAuth error GitHub sends to the app's registered callback (its description and
/// documentation path as GitHub's troubleshooting page gives them), keeping the `state`.
fn to_callback(registered: &Url, error: &'static str, state: Option<&str>) -> Refusal {
    let (description, anchor) = match error {
        "application_suspended" => (
            "Your application has been suspended. Contact support@github.com.",
            "application-suspended",
        ),
        "redirect_uri_mismatch" => (
            "The redirect_uri MUST match the registered callback URL for this application.",
            "redirect-uri-mismatch",
        ),
        _ => (
            "The user has denied your application access.",
            "access-denied",
        ),
    };
    let uri = format!("/apps/building-integrations/setting-up-and-registering-oauth-apps/troubleshooting-authorization-request-errors/#{anchor}");
    let url = with_params(
        registered.clone(),
        &[
            ("error", Some(error)),
            ("error_description", Some(description)),
            ("error_uri", Some(&uri)),
            ("state", state),
        ],
    );
    Refusal {
        to_callback: Some(Box::new(url)),
        ..Refusal::new(StatusCode::FOUND, "Redirect", description)
    }
}

/// Validate client, redirect_uri and PKCE the way GitHub does.
fn check(shared: &Shared, p: &AuthorizeParams) -> Result<Checked, Refusal> {
    let client_id = p.client_id.clone().unwrap_or_default();
    let callback = shared
        .lock()
        .apps
        .get(&client_id)
        .map(|app| app.callback_url.clone());
    let Some(callback) = callback else {
        return Err(Refusal::new(
            StatusCode::NOT_FOUND,
            "Not Found (mock GitHub)",
            "No OAuth app with this client_id is registered.",
        ));
    };
    let registered = redirect::check_callback(&callback).map_err(|msg| {
        Refusal::new(
            StatusCode::BAD_REQUEST,
            "Unusable callback URL (mock GitHub)",
            &msg,
        )
    })?;
    let failure = shared.lock().failure;
    if let Some(error) = failure.and_then(|f| f.authorize_error()) {
        return Err(to_callback(&registered, error, p.state.as_deref()));
    }
    // GitHub sends a mismatch to the registered callback; a redirect_uri that is not even a
    // URL gets a page.
    let redirect = match redirect::resolve(&callback, p.redirect_uri.as_deref()) {
        Ok(url) => url,
        Err(_)
            if p.redirect_uri
                .as_deref()
                .is_some_and(|u| Url::parse(u).is_ok()) =>
        {
            return Err(to_callback(
                &registered,
                "redirect_uri_mismatch",
                p.state.as_deref(),
            ))
        }
        Err(msg) => {
            return Err(Refusal::new(
                StatusCode::BAD_REQUEST,
                "Redirect URI mismatch (mock GitHub)",
                &msg,
            ))
        }
    };
    if let Some(challenge) = &p.code_challenge {
        if p.code_challenge_method.as_deref() != Some("S256") {
            return Err(Refusal::new(
                StatusCode::BAD_REQUEST,
                "Unsupported code challenge method (mock GitHub)",
                "code_challenge_method must be S256; GitHub does not support plain.",
            ));
        }
        if !pkce::valid_challenge(challenge) {
            return Err(Refusal::new(
                StatusCode::BAD_REQUEST,
                "Invalid code challenge (mock GitHub)",
                "code_challenge must be the 43-character base64url SHA-256 of the verifier.",
            ));
        }
    }
    Ok(Checked {
        client_id,
        redirect,
    })
}

/// `GET`: the page listing every user with a "Sign in as" button.
pub(super) async fn show(
    State(shared): State<Arc<Shared>>,
    Query(p): Query<AuthorizeParams>,
) -> Response {
    let checked = match check(&shared, &p) {
        Ok(c) => c,
        Err(refusal) => return refusal.page(),
    };
    let hidden: String = p
        .carried()
        .iter()
        .map(|(k, v)| {
            format!(
                "<input type=\"hidden\" name=\"{k}\" value=\"{}\">",
                escape(v)
            )
        })
        .collect();
    let mut users = user_rows(&shared, &hidden);
    // GitHub's `login` parameter suggests an account: list it first.
    if let Some(hint) = p.login.as_deref() {
        users.sort_by_key(|(login, _)| !login.eq_ignore_ascii_case(hint));
    }
    let rows: String = users.into_iter().map(|(_, row)| row).collect();
    let scopes = Scopes::parse(p.scope.as_deref()).joined(", ");
    let scopes = if scopes.is_empty() {
        "(none)".to_string()
    } else {
        scopes
    };
    let cancel = with_params(
        checked.redirect,
        &[
            ("error", Some("access_denied")),
            ("error_description", Some("The user has denied your application access.")),
            ("error_uri", Some("https://docs.github.com/apps/managing-oauth-apps/troubleshooting-authorization-request-errors/#access-denied")),
            ("state", p.state.as_deref()),
        ],
    );
    let body = format!(
        "<p class=\"note\">This is a mock of GitHub for tests and demos, not GitHub. \
The app <code>{}</code> asks for scopes <code>{}</code>. Pick who you are:</p>{rows}\
<p><a class=\"button cancel\" href=\"{}\">Cancel</a></p>",
        escape(&checked.client_id),
        escape(&scopes),
        escape(cancel.as_str()),
    );
    page(StatusCode::OK, "Sign in to GitHub (mock)", &body)
}

/// One row per user: (login, html).
fn user_rows(shared: &Shared, hidden: &str) -> Vec<(String, String)> {
    let state = shared.lock();
    state
        .users
        .iter()
        .map(|user| {
            let orgs: Vec<String> = state
                .orgs
                .iter()
                .filter_map(|org| {
                    let member = org.member(&user.login)?;
                    let teams: Vec<&str> = org
                        .teams
                        .iter()
                        .filter(|t| {
                            t.members
                                .iter()
                                .any(|m| m.eq_ignore_ascii_case(&user.login))
                        })
                        .map(|t| t.slug.as_str())
                        .collect();
                    let mut text = org.login.clone();
                    if !teams.is_empty() {
                        text.push_str(&format!(" (teams: {})", teams.join(", ")));
                    }
                    if member.state == MemberState::Pending {
                        text.push_str(" (invitation pending)");
                    }
                    Some(text)
                })
                .collect();
            let orgs = if orgs.is_empty() {
                "no orgs".to_string()
            } else {
                orgs.join("; ")
            };
            let login = escape(&user.login);
            let row = format!(
                "<div class=\"user\"><div><strong>{login}</strong> {}<br>\
<span class=\"note\">{}</span></div>\
<form method=\"post\" action=\"/login/oauth/authorize\">{hidden}\
<input type=\"hidden\" name=\"login\" value=\"{login}\">\
<button type=\"submit\">Sign in as {login}</button></form></div>",
                escape(user.name.as_deref().unwrap_or("")),
                escape(&orgs),
            );
            (user.login.clone(), row)
        })
        .collect()
}

/// `POST`: the user picked an account; issue a one-time code and redirect back.
pub(super) async fn submit(
    State(shared): State<Arc<Shared>>,
    Form(p): Form<AuthorizeParams>,
) -> Response {
    let checked = match check(&shared, &p) {
        Ok(c) => c,
        Err(refusal) => return refusal.page(),
    };
    let code = {
        let mut st = shared.lock();
        let Some(user_id) = p
            .login
            .as_deref()
            .and_then(|l| st.user_by_login(l))
            .map(|u| u.id)
        else {
            drop(st);
            return error_page(
                StatusCode::BAD_REQUEST,
                "Unknown user (mock GitHub)",
                "Pick one of the listed users.",
            );
        };
        st.issue_code(Grant {
            client_id: checked.client_id,
            redirect_uri: p.redirect_uri.clone(),
            scopes: Scopes::parse(p.scope.as_deref()),
            challenge: p.code_challenge.clone(),
            user_id,
            expires: Instant::now() + state::CODE_TTL,
        })
    };
    let target = with_params(
        checked.redirect,
        &[("code", Some(code.as_str())), ("state", p.state.as_deref())],
    );
    (StatusCode::FOUND, [(header::LOCATION, target.to_string())]).into_response()
}

/// Append query parameters, keeping any query already on the redirect URI.
fn with_params(mut url: Url, params: &[(&str, Option<&str>)]) -> Url {
    {
        let mut query = url.query_pairs_mut();
        for (k, v) in params {
            if let Some(v) = v {
                query.append_pair(k, v);
            }
        }
    }
    url
}

#[cfg(test)]
mod tests {
    use super::with_params;
    use url::Url;

    #[test]
    fn keeps_existing_query_and_encodes() {
        let url = Url::parse("http://h/cb?x=1").unwrap();
        let out = with_params(
            url,
            &[("code", Some("c")), ("state", Some("a b&c")), ("n", None)],
        );
        assert_eq!(out.as_str(), "http://h/cb?x=1&code=c&state=a+b%26c");
    }
}
