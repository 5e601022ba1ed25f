//! Memberships: the targeted checks for the orgs and teams the policy names (one call each, all
//! at once, so a user in 150 orgs costs no more than one in 2 and the whole check takes one
//! round-trip), plus the full paginated lists when `groups_header = "all"` or owner rules need them.

use super::{GithubClient, GithubError};
use crate::pages::GithubRefusal;
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

/// What GitHub said about the memberships the policy asks about: the groups it confirmed
/// (lower-case orgs and `org/team` slugs, sorted, without duplicates), and what it would not
/// say (an org's app restrictions, SAML single sign-on, a missing scope): those memberships are
/// unknown, not absent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Memberships {
    pub groups: Vec<String>,
    pub refused: Vec<GithubRefusal>,
}

/// One membership check: a member or not, or GitHub would not say (a rate limit stops the
/// whole check instead: nothing GitHub says then can be trusted to be complete).
async fn checked<T>(
    check: impl std::future::Future<Output = Result<T, GithubError>>,
) -> Result<Result<T, GithubRefusal>, GithubError> {
    match check.await {
        Ok(answer) => Ok(Ok(answer)),
        Err(GithubError::Refused(refusal))
            if !matches!(refusal, GithubRefusal::RateLimited { .. }) =>
        {
            Ok(Err(refusal))
        }
        Err(e) => Err(e),
    }
}

impl GithubClient {
    /// The user's groups as the policy needs them, and what GitHub would not say.
    pub async fn memberships(
        &self,
        token: &str,
        login: &str,
        plan: &MembershipPlan,
    ) -> Result<Memberships, GithubError> {
        let orgs = try_join_all(plan.orgs.iter().map(|org| async move {
            let member = checked(self.org_member(token, org)).await?;
            Ok::<_, GithubError>(member.map(|m| m.then(|| org.clone())))
        }));
        let teams = try_join_all(plan.teams.iter().map(|(org, team)| async move {
            let member = checked(self.team_member(token, org, team, login)).await?;
            Ok::<_, GithubError>(member.map(|m| m.then(|| format!("{org}/{team}"))))
        }));
        let all_orgs = async {
            if !plan.list_orgs {
                return Ok(Ok(Vec::new()));
            }
            let items =
                checked(self.list_all::<OrgItem>("GET /user/orgs", "user/orgs", token)).await?;
            Ok(items.map(|items| items.into_iter().map(|o| o.login).collect()))
        };
        let all_teams = async {
            if !plan.list_teams {
                return Ok(Ok(Vec::new()));
            }
            let items =
                checked(self.list_all::<TeamItem>("GET /user/teams", "user/teams", token)).await?;
            Ok::<_, GithubError>(items.map(|items| {
                items
                    .into_iter()
                    .map(|t| format!("{}/{}", t.organization.login, t.slug))
                    .collect::<Vec<_>>()
            }))
        };
        let (orgs, teams, all_orgs, all_teams) =
            futures_util::try_join!(orgs, teams, all_orgs, all_teams)?;
        let mut out = Memberships::default();
        let answers = orgs
            .into_iter()
            .chain(teams)
            .map(|a| a.map(|g| g.into_iter().collect::<Vec<_>>()))
            .chain([all_orgs, all_teams]);
        for answer in answers {
            match answer {
                Ok(groups) => out.groups.extend(groups),
                Err(refusal) => out.refused.push(refusal),
            }
        }
        for g in &mut out.groups {
            g.make_ascii_lowercase();
        }
        out.groups.sort();
        out.groups.dedup();
        out.refused.dedup();
        Ok(out)
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
            if !response.status().is_success() {
                return Err(self.refused(call, response, false).await);
            }
            if let Some(orgs) = super::refusal::sso_partial_results(response.headers()) {
                tracing::warn!(call, org_ids = %orgs, "GitHub left out orgs that enforce SAML single sign-on this sign-in is not authorized for");
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
