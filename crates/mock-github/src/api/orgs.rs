//! Org and team membership endpoints.
//!
//! Without `read:org` GitHub hides private memberships: the org list is empty and the
//! other calls answer 404. Only `active` memberships grant anything; `pending` ones are
//! visible through the membership endpoints so clients can tell the difference.

use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::super::data::{MemberState, Org};
use super::ctx::Ctx;
use super::error::not_found;
use super::json as shapes;
use super::paginate::paginate;

fn reads_orgs(ctx: &Ctx<'_>) -> bool {
    ctx.token.scopes.allows("read:org")
}

fn list_url(ctx: &Ctx<'_>) -> String {
    format!("{}{}", ctx.api_base, ctx.path)
}

/// Orgs where the token's user is an active member, mapped by `f` (with the login).
fn map_active_orgs<T>(ctx: &Ctx<'_>, f: impl Fn(&Org, &str) -> Vec<T>) -> Vec<T> {
    let st = ctx.shared.lock();
    let login = st
        .user_by_id(ctx.token.user_id)
        .map(|u| u.login.clone())
        .unwrap_or_default();
    st.orgs
        .iter()
        .filter(|o| {
            o.member(&login)
                .is_some_and(|m| m.state == MemberState::Active)
        })
        .flat_map(|o| f(o, &login))
        .collect()
}

/// `GET /user/orgs`: orgs where the user is an active member.
pub(super) fn list(ctx: &Ctx<'_>) -> Response {
    let items: Vec<Value> = if reads_orgs(ctx) {
        map_active_orgs(ctx, |o, _| vec![shapes::org(o, &ctx.api_base)])
    } else {
        Vec::new()
    };
    paginate(items, &list_url(ctx), ctx.query.as_deref())
}

/// `GET /user/teams`: teams in orgs where the user is an active member.
pub(super) fn teams(ctx: &Ctx<'_>) -> Response {
    if !reads_orgs(ctx) {
        return not_found();
    }
    let items: Vec<Value> = map_active_orgs(ctx, |o, login| {
        o.teams
            .iter()
            .filter(|t| t.members.iter().any(|m| m.eq_ignore_ascii_case(login)))
            .map(|t| shapes::team(o, t, &ctx.api_base, &ctx.web_base))
            .collect()
    });
    paginate(items, &list_url(ctx), ctx.query.as_deref())
}

/// `GET /user/memberships/orgs/{org}`: active or pending; 404 when not a member.
pub(super) fn membership(ctx: &Ctx<'_>, org: &str) -> Response {
    if !reads_orgs(ctx) {
        return not_found();
    }
    let st = ctx.shared.lock();
    let (Some(user), Some(org)) = (st.user_by_id(ctx.token.user_id), st.org(org)) else {
        return not_found();
    };
    let Some(member) = org.member(&user.login) else {
        return not_found();
    };
    let api = &ctx.api_base;
    Json(json!({
        "url": format!("{api}/orgs/{}/memberships/{}", org.login, user.login),
        "state": member.state.as_str(),
        "role": member.role.as_str(),
        "organization_url": format!("{api}/orgs/{}", org.login),
        "organization": shapes::org(org, api),
        "user": shapes::simple_user(user, api, &ctx.web_base),
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
    let st = ctx.shared.lock();
    let (Some(caller), Some(org)) = (st.user_by_id(ctx.token.user_id), st.org(org)) else {
        return not_found();
    };
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
