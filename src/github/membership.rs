//! Memberships: the targeted checks for the orgs and teams the policy names (one call each, all
//! at once, so a user in 150 orgs costs no more than one in 2 and the whole check takes one
//! round-trip), plus the full paginated lists when `groups_header = "all"` or owner rules need them.

use super::{GithubClient, GithubError};
use crate::policy::MembershipPlan;
use futures_util::future::try_join_all;
use serde::Deserialize;

/// At most this many pages of 100 (10,000 orgs or teams): a bound, not a real-world limit.
const MAX_PAGES: usize = 100;

#[derive(Deserialize)]
struct OrgItem {
    login: String,
}

#[derive(Deserialize)]
struct TeamItem {
    slug: String,
    organization: OrgItem,
}

impl GithubClient {
    /// The user's groups as the policy needs them: lower-case org logins and `org/team` slugs,
    /// sorted, without duplicates.
    pub async fn memberships(
        &self,
        token: &str,
        login: &str,
        plan: &MembershipPlan,
    ) -> Result<Vec<String>, GithubError> {
        let orgs = try_join_all(plan.orgs.iter().map(|org| async move {
            Ok::<_, GithubError>(self.org_member(token, org).await?.then(|| org.clone()))
        }));
        let teams = try_join_all(plan.teams.iter().map(|(org, team)| async move {
            let member = self.team_member(token, org, team, login).await?;
            Ok::<_, GithubError>(member.then(|| format!("{org}/{team}")))
        }));
        let all_orgs = async {
            if !plan.list_orgs {
                return Ok(Vec::new());
            }
            let items: Vec<OrgItem> = self.list_all("GET /user/orgs", "user/orgs", token).await?;
            Ok(items.into_iter().map(|o| o.login).collect())
        };
        let all_teams = async {
            if !plan.list_teams {
                return Ok(Vec::new());
            }
            let items: Vec<TeamItem> = self
                .list_all("GET /user/teams", "user/teams", token)
                .await?;
            Ok::<_, GithubError>(
                items
                    .into_iter()
                    .map(|t| format!("{}/{}", t.organization.login, t.slug))
                    .collect::<Vec<_>>(),
            )
        };
        let (orgs, teams, all_orgs, all_teams) =
            futures_util::try_join!(orgs, teams, all_orgs, all_teams)?;
        let mut groups: Vec<String> = orgs
            .into_iter()
            .chain(teams)
            .flatten()
            .chain(all_orgs)
            .chain(all_teams)
            .map(|g| g.to_ascii_lowercase())
            .collect();
        groups.sort();
        groups.dedup();
        Ok(groups)
    }

    /// Every item of a paginated list, following `Link: <…>; rel="next"` to the end. Only links
    /// under `api_url` are followed, so a token is never sent anywhere else.
    async fn list_all<T: serde::de::DeserializeOwned>(
        &self,
        call: &'static str,
        path: &str,
        token: &str,
    ) -> Result<Vec<T>, GithubError> {
        let mut url = self
            .api_url
            .join(&format!("{path}?per_page=100"))
            .map_err(|e| GithubError::Setup(format!("github.api_url: {e}")))?;
        let mut items = Vec::new();
        for _ in 0..MAX_PAGES {
            let response = self.get_url(call, url.clone(), token).await?;
            let status = response.status();
            if !status.is_success() {
                return Err(super::api::status_error(call, status));
            }
            let next = next_link(response.headers());
            let page: Vec<T> = super::api::read_json(call, response).await?;
            items.extend(page);
            match next.and_then(|n| url.join(&n).ok()) {
                Some(n) if n.as_str().starts_with(self.api_url.as_str()) => url = n,
                Some(_) => {
                    return Err(GithubError::BadResponse(format!(
                        "{call}: the next-page link leaves github.api_url"
                    )))
                }
                None => return Ok(items),
            }
        }
        Err(GithubError::BadResponse(format!(
            "{call}: more than {MAX_PAGES} pages"
        )))
    }
}

/// The `rel="next"` target of a `Link` header.
fn next_link(headers: &reqwest::header::HeaderMap) -> Option<String> {
    headers
        .get_all(reqwest::header::LINK)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|part| {
            let (target, params) = part.split_once(';')?;
            let is_next = params
                .split(';')
                .any(|p| matches!(p.trim(), "rel=\"next\"" | "rel=next"));
            is_next.then(|| {
                target
                    .trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_string()
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_next_link() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert(
            reqwest::header::LINK,
            "<https://api.github.com/user/orgs?page=2>; rel=\"next\", <https://api.github.com/user/orgs?page=5>; rel=\"last\""
                .parse()
                .unwrap(),
        );
        assert_eq!(
            next_link(&h).as_deref(),
            Some("https://api.github.com/user/orgs?page=2")
        );
        h.insert(
            reqwest::header::LINK,
            "<https://api.github.com/user/orgs?page=1>; rel=\"prev\""
                .parse()
                .unwrap(),
        );
        assert_eq!(next_link(&h), None);
    }
}
