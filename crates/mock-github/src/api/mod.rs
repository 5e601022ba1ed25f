//! The REST API under the prefix: counting, fault injection, the User-Agent rule,
//! token authentication, then a small hand-written router.
//!
//! Hand-written rather than axum routes so every request under the prefix, matched or
//! not, goes through the same checks in GitHub's order and is counted.

mod apps;
mod ctx;
mod error;
mod json;
mod orgs;
mod paginate;
mod user;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use percent_encoding::percent_decode_str;

use self::ctx::Ctx;
use self::error::{message, not_found, REST_DOCS};
use super::credentials::{token_header, TokenHeader};
use super::fault;
use super::state::{FailMode, Failure, Shared, TokenGrant};

fn bad_credentials() -> Response {
    message(StatusCode::UNAUTHORIZED, "Bad credentials", REST_DOCS)
}

/// Fallback handler of the whole mock: REST calls under `api_prefix`, 404 elsewhere.
pub(super) async fn dispatch(shared: Arc<Shared>, api_prefix: Arc<str>, req: Request) -> Response {
    let Some(rest) = strip_prefix(req.uri().path(), &api_prefix) else {
        return not_found();
    };
    shared.api_requests.fetch_add(1, Ordering::Relaxed);
    let failure = shared.lock().failure.filter(|f| f.hits_rest());
    if let Some(f) = failure {
        let status_reply =
            |status| message(status, "Failure injected by POST /_mock/fail", REST_DOCS);
        let cut_off = r#"{"login":"octocat","id":5832"#;
        if let Some(response) = fault::inject(f, status_reply, cut_off).await {
            return response;
        }
    }
    if !req.headers().contains_key(header::USER_AGENT) {
        return forbidden_without_user_agent();
    }
    let segments: Vec<String> = rest
        .trim_start_matches('/')
        .split('/')
        .map(|s| percent_decode_str(s).decode_utf8_lossy().into_owned())
        .collect();
    let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
    if let (&Method::DELETE, ["applications", client_id, "token"]) = (req.method(), segs.as_slice())
    {
        let (parts, body) = req.into_parts();
        return apps::revoke(&shared, &parts.headers, client_id, body).await;
    }
    let token = match authenticate(&shared, req.headers()) {
        Auth::Missing => None,
        Auth::Bad => return bad_credentials(),
        Auth::Valid(token) => Some(token),
    };
    let is_get = req.method() == Method::GET;
    let Some(token) = token else {
        // Known endpoints need a token; unknown ones are just not there.
        return match (is_get, routed(&segs)) {
            (true, true) => message(
                StatusCode::UNAUTHORIZED,
                "Requires authentication",
                "https://docs.github.com/rest/users/users#get-the-authenticated-user",
            ),
            _ => not_found(),
        };
    };
    if let Some(Failure {
        mode:
            FailMode::RateLimit {
                secondary,
                status,
                wait,
            },
        ..
    }) = failure
    {
        return rate_limited(token.user_id, secondary, status, wait);
    }
    let (web_base, api_base) = bases(req.headers(), &api_prefix);
    // GitHub App user tokens have permissions, not scopes: no X-OAuth-Scopes.
    let scopes =
        (!super::state::is_github_app(&token.client_id)).then(|| token.scopes.joined(", "));
    let ctx = Ctx {
        shared: &shared,
        token,
        api_base,
        web_base,
        path: rest.to_string(),
        query: req.uri().query().map(str::to_string),
    };
    let mut response = if is_get {
        route(&ctx, &segs)
    } else {
        not_found()
    };
    // GitHub tells clients which scopes the token has, and how much of its budget is left.
    if let Some(Ok(value)) = scopes.as_deref().map(HeaderValue::from_str) {
        response.headers_mut().insert("x-oauth-scopes", value);
    }
    rate_limit_headers(&mut response, 4999, unix_now() + 3600);
    fault::hold(failure, response).await
}

/// The hourly budget of a user token.
const RATE_LIMIT: u64 = 5000;

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `x-ratelimit-*`, as on every REST answer.
fn rate_limit_headers(response: &mut Response, remaining: u64, reset: u64) {
    let headers = response.headers_mut();
    for (name, value) in [
        ("x-ratelimit-limit", RATE_LIMIT),
        ("x-ratelimit-remaining", remaining),
        ("x-ratelimit-used", RATE_LIMIT - remaining),
        ("x-ratelimit-reset", reset),
    ] {
        headers.insert(name, HeaderValue::from(value));
    }
    headers.insert("x-ratelimit-resource", HeaderValue::from_static("core"));
}

/// GitHub's rate-limit refusal (injected by `POST /_mock/fail?mode=rate_limit`): the primary
/// one spends the budget until a reset `wait` seconds away (default 60); the secondary one
/// leaves budget and sends `retry-after: wait` only when given ("The Retry-After header can
/// sometimes be blank").
fn rate_limited(user_id: u64, secondary: bool, status: u16, wait: Option<u64>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN);
    let request_id = "C0DE:5EC0:1D2C3B:4A5F6E:6814705C";
    let mut response = if secondary {
        message(
            status,
            &format!("You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID {request_id}."),
            "https://docs.github.com/free-pro-team@latest/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits",
        )
    } else {
        message(
            status,
            &format!("API rate limit exceeded for user ID {user_id}. If you reach out to GitHub Support for help, please include the request ID {request_id}."),
            "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
        )
    };
    let now = unix_now();
    if secondary {
        rate_limit_headers(&mut response, 4990, now + 3600);
        if let Some(wait) = wait {
            response
                .headers_mut()
                .insert("retry-after", HeaderValue::from(wait));
        }
    } else {
        rate_limit_headers(&mut response, 0, now + wait.unwrap_or(60));
    }
    response
}

/// The GET endpoints that need a user token.
fn route(ctx: &Ctx<'_>, segs: &[&str]) -> Response {
    match segs {
        ["user"] => user::me(ctx),
        ["user", "emails"] => user::emails(ctx),
        ["user", "orgs"] => orgs::list(ctx),
        ["user", "teams"] => orgs::teams(ctx),
        ["user", "memberships", "orgs", org] => orgs::membership(ctx, org),
        ["orgs", org, "teams", team, "memberships", login] => {
            orgs::team_membership(ctx, org, team, login)
        }
        _ => not_found(),
    }
}

fn routed(segs: &[&str]) -> bool {
    matches!(
        segs,
        ["user"]
            | ["user", "emails"]
            | ["user", "orgs"]
            | ["user", "teams"]
            | ["user", "memberships", "orgs", _]
            | ["orgs", _, "teams", _, "memberships", _]
    )
}

enum Auth {
    Missing,
    Bad,
    Valid(TokenGrant),
}

/// A header that is present but wrong is refused on every path, as GitHub checks
/// credentials before routing.
fn authenticate(shared: &Shared, headers: &HeaderMap) -> Auth {
    let token = match token_header(headers) {
        TokenHeader::Missing => return Auth::Missing,
        TokenHeader::Malformed => return Auth::Bad,
        TokenHeader::Token(token) => token,
    };
    let st = shared.lock();
    match st.tokens.get(&token) {
        // Tokens of apps that were replaced or users that were removed stop working.
        Some(grant)
            // Personal access tokens (no client_id) belong to no OAuth app.
            // GitHub App user tokens stop working when they expire (8 hours).
            if (grant.client_id.is_empty() || st.apps.contains_key(&grant.client_id))
                && st.user_by_id(grant.user_id).is_some()
                && grant.expires_at.is_none_or(|at| st.now() < at) =>
        {
            Auth::Valid(grant.clone())
        }
        _ => Auth::Bad,
    }
}

fn strip_prefix<'a>(path: &'a str, prefix: &str) -> Option<&'a str> {
    if prefix.is_empty() {
        return Some(path);
    }
    let rest = path.strip_prefix(prefix)?;
    (rest.is_empty() || rest.starts_with('/')).then_some(rest)
}

/// Absolute bases from the Host the client used (the mock serves plain http).
fn bases(headers: &HeaderMap, prefix: &str) -> (String, String) {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let web = format!("http://{host}");
    let api = format!("{web}{prefix}");
    (web, api)
}

fn forbidden_without_user_agent() -> Response {
    (
        StatusCode::FORBIDDEN,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "Request forbidden by administrative rules. Please make sure your request has a User-Agent header \
(https://docs.github.com/en/rest/overview/resources-in-the-rest-api#user-agent-required). \
Check https://developer.github.com for other possible causes.\n",
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::strip_prefix;

    #[test]
    fn prefix_stripping() {
        assert_eq!(strip_prefix("/api/v3/user", "/api/v3"), Some("/user"));
        assert_eq!(strip_prefix("/api/v3x/user", "/api/v3"), None);
        assert_eq!(strip_prefix("/user", "/api/v3"), None);
        assert_eq!(strip_prefix("/user", ""), Some("/user"));
    }
}
