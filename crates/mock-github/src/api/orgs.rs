//! Org and team membership endpoints.
//!
//! Without `read:org` GitHub hides private memberships: the membership calls answer 404, and
//! `/user/orgs` (which `user` also opens) refuses with 403. Only `active` memberships grant
//! anything; `pending` ones are visible through the membership endpoints so clients can tell
//! the difference.
//!
//! What an org keeps from a token, as GitHub does: with OAuth App access restrictions on and
//! the app not approved, the org is left out of the lists and its own endpoints answer 403 with
//! GitHub's restriction message; with SAML single sign-on enforced and the token not authorized
//! for it, a member's lists leave the org out (`X-GitHub-SSO: partial-results`) and its own
//! endpoints answer 403 with `X-GitHub-SSO: required; url=…`.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use rand::distr::{Alphanumeric, SampleString};
use serde_json::{json, Value};

use super::super::data::{MemberState, Org};
use super::super::state::{is_github_app, State, TokenGrant};
use super::ctx::Ctx;
use super::error::{message_with_status, not_found};
use super::json as shapes;
use super::paginate::paginate;

const LIST_ORGS_DOCS: &str =
    "https://docs.github.com/rest/orgs/orgs#list-organizations-for-the-authenticated-user";
const MEMBERSHIP_DOCS: &str = "https://docs.github.com/rest/orgs/members#get-an-organization-membership-for-the-authenticated-user";
const TEAM_MEMBERSHIP_DOCS: &str =
    "https://docs.github.com/rest/teams/members#get-team-membership-for-a-user";

/// An OAuth token with `read:org`, or any GitHub App user token (what such a token sees is
/// decided per org: [`app_sees`]).
fn reads_orgs(ctx: &Ctx<'_>) -> bool {
    is_app(ctx) || ctx.token.scopes.allows("read:org")
}

fn is_app(ctx: &Ctx<'_>) -> bool {
    is_github_app(&ctx.token.client_id)
}

/// A GitHub App user token sees an org's memberships only where the app is installed with
/// Members: read; other tokens as their scopes say.
fn app_sees(ctx: &Ctx<'_>, org: &Org) -> bool {
    !is_app(ctx) || org.installed_apps.contains(&ctx.token.client_id)
}

fn list_url(ctx: &Ctx<'_>) -> String {
    format!("{}{}", ctx.api_base, ctx.path)
}

/// What an org lets a token see.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Seen {
    Visible,
    /// OAuth App access restrictions, and this app is not approved (personal tokens are not
    /// OAuth apps: restrictions do not apply to them).
    Restricted,
    /// SAML single sign-on, and the token is not authorized for it (members only).
    SsoRequired,
}

fn seen(org: &Org, token: &TokenGrant, login: &str) -> Seen {
    // GitHub Apps are not subject to OAuth App access restrictions.
    if org.oauth_app_restrictions
        && !token.client_id.is_empty()
        && !is_github_app(&token.client_id)
        && !org.approved_apps.contains(&token.client_id)
    {
        return Seen::Restricted;
    }
    let member = org.member(login).is_some();
    if org.saml_sso && member && !token.sso_orgs.contains(&org.login.to_ascii_lowercase()) {
        return Seen::SsoRequired;
    }
    Seen::Visible
}

/// GitHub's refusal for an org the token may not see, or `None` when it may.
fn refusal(ctx: &Ctx<'_>, st: &mut State, org: &Org, login: &str, docs: &str) -> Option<Response> {
    match seen(org, &ctx.token, login) {
        Seen::Visible => None,
        Seen::Restricted => {
            let message = format!(
                "Although you appear to have the correct authorization credentials, the `{}` organization has enabled OAuth App access restrictions, meaning that data access to third-parties is limited. For more information on these restrictions, including how to enable this app, visit https://docs.github.com/articles/restricting-access-to-your-organization-s-data/",
                org.login
            );
            Some(with_accepted(message_with_status(
                StatusCode::FORBIDDEN,
                &message,
                docs,
            )))
        }
        Seen::SsoRequired => {
            let request = Alphanumeric.sample_string(&mut rand::rng(), 40);
            st.sso_requests.insert(
                request.clone(),
                (
                    ctx.token.user_id,
                    ctx.token.client_id.clone(),
                    org.login.to_ascii_lowercase(),
                ),
            );
            let credential = if ctx.token.client_id.is_empty() {
                "personal token"
            } else {
                "OAuth token"
            };
            let message = format!("Resource protected by organization SAML enforcement. You must grant your {credential} access to this organization.");
            let mut response =
                with_accepted(message_with_status(StatusCode::FORBIDDEN, &message, docs));
            let sso = format!(
                "required; url={}/orgs/{}/sso?authorization_request={request}",
                ctx.web_base, org.login
            );
            if let Ok(value) = HeaderValue::from_str(&sso) {
                response.headers_mut().insert("x-github-sso", value);
            }
            Some(response)
        }
    }
}

/// The scopes the org endpoints accept, as GitHub names them on its answers.
fn with_accepted(mut response: Response) -> Response {
    response.headers_mut().insert(
        "x-accepted-oauth-scopes",
        HeaderValue::from_static("read:org"),
    );
    response
}

/// Orgs where the token's user is an active member and the token may see, mapped by `f`
/// (with the login); and the ids of those single sign-on left out.
fn map_active_orgs<T>(ctx: &Ctx<'_>, f: impl Fn(&Org, &str) -> Vec<T>) -> (Vec<T>, Vec<u64>) {
    let st = ctx.shared.lock();
    let login = st
        .user_by_id(ctx.token.user_id)
        .map(|u| u.login.clone())
        .unwrap_or_default();
    let active = st.orgs.iter().filter(|o| {
        o.member(&login)
            .is_some_and(|m| m.state == MemberState::Active)
    });
    let mut items = Vec::new();
    let mut sso_hidden = Vec::new();
    for org in active {
        match seen(org, &ctx.token, &login) {
            Seen::Visible => items.extend(f(org, &login)),
            Seen::Restricted => {}
            Seen::SsoRequired => sso_hidden.push(org.id),
        }
    }
    (items, sso_hidden)
}

/// A list answer, saying which orgs single sign-on left out.
fn listed(ctx: &Ctx<'_>, (items, sso_hidden): (Vec<Value>, Vec<u64>)) -> Response {
    let mut response = paginate(items, &list_url(ctx), ctx.query.as_deref());
    if !sso_hidden.is_empty() {
        let ids: Vec<String> = sso_hidden.iter().map(u64::to_string).collect();
        let value = format!("partial-results; organizations={}", ids.join(","));
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().insert("x-github-sso", value);
        }
    }
    response
}

/// `GET /user/orgs`: orgs where the user is an active member. Needs `read:org` or `user`.
pub(super) fn list(ctx: &Ctx<'_>) -> Response {
    if !(reads_orgs(ctx) || ctx.token.scopes.allows("user")) {
        return message_with_status(
            StatusCode::FORBIDDEN,
            "You need at least read:org scope or user scope to list your organizations.",
            LIST_ORGS_DOCS,
        );
    }
    // GitHub answers a GitHub App user token with an empty list, installed or not.
    if is_app(ctx) {
        return listed(ctx, (Vec::new(), Vec::new()));
    }
    let found = map_active_orgs(ctx, |o, _| vec![shapes::org(o, &ctx.api_base)]);
    listed(ctx, found)
}

/// `GET /user/teams`: teams in orgs where the user is an active member.
pub(super) fn teams(ctx: &Ctx<'_>) -> Response {
    if !reads_orgs(ctx) {
        return not_found();
    }
    let found = map_active_orgs(ctx, |o, login| {
        o.teams
            .iter()
            .filter(|t| t.members.iter().any(|m| m.eq_ignore_ascii_case(login)))
            .map(|t| shapes::team(o, t, &ctx.api_base, &ctx.web_base))
            .collect()
    });
    listed(ctx, found)
}

/// `GET /user/memberships/orgs/{org}`: active or pending; 404 when not a member.
pub(super) fn membership(ctx: &Ctx<'_>, org: &str) -> Response {
    if !reads_orgs(ctx) {
        return not_found();
    }
    let mut st = ctx.shared.lock();
    let (Some(user), Some(org)) = (
        st.user_by_id(ctx.token.user_id).cloned(),
        st.org(org).cloned(),
    ) else {
        return not_found();
    };
    if !app_sees(ctx, &org) {
        return not_found();
    }
    if let Some(refused) = refusal(ctx, &mut st, &org, &user.login, MEMBERSHIP_DOCS) {
        return refused;
    }
    let Some(member) = org.member(&user.login) else {
        return not_found();
    };
    let api = &ctx.api_base;
    Json(json!({
        "url": format!("{api}/orgs/{}/memberships/{}", org.login, user.login),
        "state": member.state.as_str(),
        "role": member.role.as_str(),
        "organization_url": format!("{api}/orgs/{}", org.login),
        "organization": shapes::org(&org, api),
        "user": shapes::simple_user(&user, api, &ctx.web_base),
    }))
    .into_response()
}

/// `GET /orgs/{org}/teams/{team_slug}/memberships/{username}`.
///
/// Teams are visible to active org members only, so other callers get 404 like on GitHub.
/// The state follows the org membership: a pending invitee's team membership is pending.
pub(super) fn team_membership(ctx: &Ctx<'_>, org: &str, team: &str, login: &str) -> Response {
    if !reads_orgs(ctx) {
        return not_found();
    }
    let mut st = ctx.shared.lock();
    let (Some(caller), Some(org)) = (
        st.user_by_id(ctx.token.user_id).cloned(),
        st.org(org).cloned(),
    ) else {
        return not_found();
    };
    if !app_sees(ctx, &org) {
        return not_found();
    }
    if let Some(refused) = refusal(ctx, &mut st, &org, &caller.login, TEAM_MEMBERSHIP_DOCS) {
        return refused;
    }
    if !org
        .member(&caller.login)
        .is_some_and(|m| m.state == MemberState::Active)
    {
        return not_found();
    }
    let (Some(team), Some(member)) = (org.team(team), org.member(login)) else {
        return not_found();
    };
    if !team.members.iter().any(|m| m.eq_ignore_ascii_case(login)) {
        return not_found();
    }
    Json(json!({
        "url": format!("{}/teams/{}/memberships/{}", ctx.api_base, team.id, member.login),
        "role": "member",
        "state": member.state.as_str(),
    }))
    .into_response()
}
