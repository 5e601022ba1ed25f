//! GitHub's JSON shapes for users, orgs and teams (the fields clients commonly read).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Value};

use super::super::data::{Org, Team, User};

/// GitHub's legacy global node id: base64 of "0" + len(kind) + ":" + kind + id,
/// e.g. "04:User583231" or "012:Organization1".
fn node_id(kind: &str, id: u64) -> String {
    STANDARD.encode(format!("0{}:{kind}{id}", kind.len()))
}

/// The short "simple user" object embedded in other objects.
pub(super) fn simple_user(user: &User, api: &str, web: &str) -> Value {
    let login = &user.login;
    json!({
        "login": login,
        "id": user.id,
        "node_id": node_id("User", user.id),
        "avatar_url": user.avatar(),
        "gravatar_id": "",
        "url": format!("{api}/users/{login}"),
        "html_url": format!("{web}/{login}"),
        "organizations_url": format!("{api}/users/{login}/orgs"),
        "repos_url": format!("{api}/users/{login}/repos"),
        "type": "User",
        "user_view_type": "public",
        "site_admin": user.site_admin,
    })
}

/// GET /user: the simple object plus the profile fields.
pub(super) fn full_user(user: &User, api: &str, web: &str) -> Value {
    let mut value = simple_user(user, api, web);
    if let Value::Object(map) = &mut value {
        let extra = json!({
            "name": user.name,
            "company": null,
            "blog": "",
            "location": null,
            "email": user.public_email,
            "hireable": null,
            "bio": null,
            "twitter_username": null,
            "public_repos": 0,
            "public_gists": 0,
            "followers": 0,
            "following": 0,
            "created_at": "2011-01-25T18:44:36Z",
            "updated_at": "2024-01-01T00:00:00Z",
        });
        if let Value::Object(extra) = extra {
            map.extend(extra);
        }
    }
    value
}

pub(super) fn org(org: &Org, api: &str) -> Value {
    let login = &org.login;
    json!({
        "login": login,
        "id": org.id,
        "node_id": node_id("Organization", org.id),
        "url": format!("{api}/orgs/{login}"),
        "repos_url": format!("{api}/orgs/{login}/repos"),
        "events_url": format!("{api}/orgs/{login}/events"),
        "hooks_url": format!("{api}/orgs/{login}/hooks"),
        "issues_url": format!("{api}/orgs/{login}/issues"),
        "members_url": format!("{api}/orgs/{login}/members{{/member}}"),
        "public_members_url": format!("{api}/orgs/{login}/public_members{{/member}}"),
        "avatar_url": format!("https://avatars.githubusercontent.com/u/{}?v=4", org.id),
        "description": org.description,
    })
}

pub(super) fn team(org_obj: &Org, team: &Team, api: &str, web: &str) -> Value {
    let mut organization = org(org_obj, api);
    if let Value::Object(map) = &mut organization {
        map.insert("name".into(), json!(org_obj.name));
        map.insert("html_url".into(), json!(format!("{web}/{}", org_obj.login)));
        map.insert("type".into(), json!("Organization"));
    }
    json!({
        "id": team.id,
        "node_id": node_id("Team", team.id),
        "url": format!("{api}/teams/{}", team.id),
        "html_url": format!("{web}/orgs/{}/teams/{}", org_obj.login, team.slug),
        "name": team.name.as_deref().unwrap_or(&team.slug),
        "slug": team.slug,
        "description": team.description,
        "privacy": "closed",
        "notification_setting": "notifications_enabled",
        "permission": "pull",
        "members_url": format!("{api}/teams/{}/members{{/member}}", team.id),
        "repositories_url": format!("{api}/teams/{}/repos", team.id),
        "parent": null,
        "organization": organization,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn node_id_matches_github() {
        // octocat's real legacy node id.
        assert_eq!(super::node_id("User", 583231), "MDQ6VXNlcjU4MzIzMQ==");
        assert_eq!(
            super::node_id("Organization", 1),
            "MDEyOk9yZ2FuaXphdGlvbjE="
        );
    }
}
