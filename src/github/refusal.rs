//! Reading GitHub's refusals instead of taking every 403 for "not a member": an org's OAuth App
//! access restrictions, SAML single sign-on, a token without `read:org`, and the primary and
//! secondary rate limits. GitHub gives no error code for any of them, so each is recognised by
//! its headers and message, in octokit's order (rate limits first), never by the status alone.

use crate::pages::GithubRefusal;
use reqwest::header::HeaderMap;
use url::Url;

/// GitHub's phrase for an org's OAuth App access restrictions (the org is in backticks before it).
const RESTRICTED: &str = "organization has enabled OAuth App access restrictions";
/// The start of the refusal `/user/orgs` gives a token without `read:org` or `user`.
const NEEDS_READ_ORG: &str = "You need at least read:org scope";
/// Scopes that reveal private org memberships (`read:org` and the broader ones).
const READS_ORGS: [&str; 3] = ["read:org", "write:org", "admin:org"];
/// When a secondary limit gives neither `retry-after` nor a reset: GitHub says wait a minute.
const SECONDARY_WAIT: u64 = 60;

/// Where the links in a refusal point: GitHub's web UI for this app.
pub(super) struct Links<'a> {
    pub web_url: &'a Url,
    pub client_id: &'a str,
}

impl Links<'_> {
    fn web(&self, path: &str) -> String {
        format!("{}/{path}", self.web_url.as_str().trim_end_matches('/'))
    }
}

/// What GitHub answered, as far as telling refusals apart needs.
pub(super) struct Answer<'a> {
    pub status: u16,
    pub headers: &'a HeaderMap,
    /// The body's `message` ("" when there is none).
    pub message: &'a str,
    /// A membership call: GitHub hides private memberships from tokens without `read:org`
    /// behind a 404, so a 404 to such a token proves nothing.
    pub membership: bool,
}

/// The refusal GitHub's answer names, if any (`now`: unix seconds, for the rate-limit reset).
pub(super) fn classify(answer: &Answer<'_>, links: &Links<'_>, now: u64) -> Option<GithubRefusal> {
    let Answer {
        status,
        headers,
        message,
        membership,
    } = *answer;
    if matches!(status, 403 | 429) {
        if let Some(limited) = rate_limit(status, headers, message, now) {
            return Some(limited);
        }
    }
    if status == 403 {
        if let Some(sso_url) = sso_required(headers) {
            return Some(GithubRefusal::SsoRequired {
                org: org_of_sso_url(&sso_url).unwrap_or_default(),
                sso_url,
            });
        }
        if message.contains(RESTRICTED) {
            let org = org_in_backticks(message).unwrap_or_default();
            return Some(GithubRefusal::AccessRestricted {
                request_url: links.web(&format!(
                    "settings/connections/applications/{}",
                    links.client_id
                )),
                approve_url: links.web(&format!(
                    "organizations/{org}/settings/oauth_application_policy"
                )),
                org,
            });
        }
        if message.starts_with(NEEDS_READ_ORG) || lacks_accepted_scope(headers) {
            return Some(scope_missing(headers));
        }
    }
    if status == 404 && membership && lacks_read_org(headers) {
        return Some(scope_missing(headers));
    }
    None
}

/// Does the refusal leave `group` (a lower-case org or `org/team`) unknown?
pub fn covers(refusal: &GithubRefusal, group: &str) -> bool {
    match refusal.org() {
        Some(org) => {
            let org = org.to_ascii_lowercase();
            group == org || group.strip_prefix(&org).is_some_and(|t| t.starts_with('/'))
        }
        // A missing scope or a rate limit hides every membership.
        None => true,
    }
}

/// octokit's order: a message saying "secondary rate" is the secondary limit (wait
/// `retry-after`, else until the reset if the budget is spent, else a minute); else
/// `x-ratelimit-remaining: 0` is the primary limit (wait until `x-ratelimit-reset`). A 429
/// with neither is still a rate limit, of the secondary kind.
fn rate_limit(status: u16, headers: &HeaderMap, message: &str, now: u64) -> Option<GithubRefusal> {
    let number = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    let exhausted = number("x-ratelimit-remaining") == Some(0);
    let until_reset = number("x-ratelimit-reset").map(|reset| reset.saturating_sub(now) + 1);
    let secondary = message.to_ascii_lowercase().contains("secondary rate");
    let retry_after = if secondary || (status == 429 && !exhausted) {
        number("retry-after")
            .or(until_reset.filter(|_| exhausted))
            .unwrap_or(SECONDARY_WAIT)
    } else if exhausted {
        until_reset.unwrap_or(SECONDARY_WAIT)
    } else {
        return None;
    };
    Some(GithubRefusal::RateLimited {
        secondary: secondary || !exhausted,
        retry_after: retry_after.max(1),
    })
}

/// `X-GitHub-SSO: required; url=…`: the URL (only `required` goes with a refusal;
/// `partial-results` comes on answers that left orgs out).
fn sso_required(headers: &HeaderMap) -> Option<String> {
    let value = headers.get("x-github-sso")?.to_str().ok()?;
    let mut parts = value.split(';').map(str::trim);
    if parts.next()? != "required" {
        return None;
    }
    parts
        .find_map(|p| p.strip_prefix("url="))
        .map(str::to_string)
}

/// The org ids of `X-GitHub-SSO: partial-results; organizations=1,2` on an answer that left
/// those orgs out.
pub(super) fn sso_partial_results(headers: &HeaderMap) -> Option<String> {
    let value = headers.get("x-github-sso")?.to_str().ok()?;
    let mut parts = value.split(';').map(str::trim);
    if parts.next()? != "partial-results" {
        return None;
    }
    parts
        .find_map(|p| p.strip_prefix("organizations="))
        .map(str::to_string)
}

/// `…/orgs/ORG/sso?authorization_request=…` → `ORG`.
fn org_of_sso_url(url: &str) -> Option<String> {
    let url = Url::parse(url).ok()?;
    let mut segments = url.path_segments()?;
    while let Some(segment) = segments.next() {
        if segment == "orgs" {
            let org = segments.next()?;
            return (segments.next() == Some("sso")).then(|| org.to_string());
        }
    }
    None
}

/// "… the `ORG` organization has enabled …" → `ORG` (GitHub logins: letters, digits, hyphens).
fn org_in_backticks(message: &str) -> Option<String> {
    let (_, rest) = message.split_once('`')?;
    let (org, _) = rest.split_once('`')?;
    let valid = !org.is_empty()
        && org.len() <= 39
        && org.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    valid.then(|| org.to_string())
}

fn scopes(headers: &HeaderMap, name: &str) -> Option<Vec<String>> {
    let value = headers.get(name)?.to_str().ok()?;
    Some(
        value
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
    )
}

/// A classic token (it has `X-OAuth-Scopes`) without any scope that reveals org memberships.
fn lacks_read_org(headers: &HeaderMap) -> bool {
    scopes(headers, "x-oauth-scopes")
        .is_some_and(|granted| !granted.iter().any(|s| READS_ORGS.contains(&s.as_str())))
}

/// GitHub named the scopes the call accepts, and the token has none of them.
fn lacks_accepted_scope(headers: &HeaderMap) -> bool {
    match (
        scopes(headers, "x-oauth-scopes"),
        scopes(headers, "x-accepted-oauth-scopes"),
    ) {
        (Some(granted), Some(accepted)) if !accepted.is_empty() => {
            !accepted.iter().any(|a| granted.contains(a))
        }
        _ => false,
    }
}

fn scope_missing(headers: &HeaderMap) -> GithubRefusal {
    GithubRefusal::ScopeMissing {
        scope: "read:org".into(),
        granted: scopes(headers, "x-oauth-scopes")
            .unwrap_or_default()
            .join(", "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    fn links() -> (Url, &'static str) {
        (Url::parse("https://github.com").unwrap(), "abc123")
    }

    fn classify_at(
        status: u16,
        h: &[(&'static str, &str)],
        message: &str,
        membership: bool,
    ) -> Option<GithubRefusal> {
        let (web_url, client_id) = links();
        let h = headers(h);
        classify(
            &Answer {
                status,
                headers: &h,
                message,
                membership,
            },
            &Links {
                web_url: &web_url,
                client_id,
            },
            1_000,
        )
    }

    #[test]
    fn the_restriction_names_the_org_and_both_links() {
        let message = "Although you appear to have the correct authorization credentials, the `Data-Bio` organization has enabled OAuth App access restrictions, meaning that data access to third-parties is limited. For more information on these restrictions, including how to enable this app, visit https://docs.github.com/articles/restricting-access-to-your-organization-s-data/";
        let scopes = [
            ("x-oauth-scopes", "read:user, read:org"),
            ("x-accepted-oauth-scopes", "read:org"),
        ];
        assert_eq!(
            classify_at(403, &scopes, message, true),
            Some(GithubRefusal::AccessRestricted {
                org: "Data-Bio".into(),
                request_url: "https://github.com/settings/connections/applications/abc123".into(),
                approve_url:
                    "https://github.com/organizations/Data-Bio/settings/oauth_application_policy"
                        .into(),
            })
        );
    }

    #[test]
    fn sso_takes_the_url_github_gave() {
        let url = "https://github.com/orgs/databio/sso?authorization_request=AZSCKtL4U8";
        let h = [("x-github-sso", &*format!("required; url={url}"))];
        let message = "Resource protected by organization SAML enforcement. You must grant your OAuth token access to this organization.";
        assert_eq!(
            classify_at(403, &h, message, true),
            Some(GithubRefusal::SsoRequired {
                org: "databio".into(),
                sso_url: url.into()
            })
        );
        // partial-results goes with a 200 that left orgs out: not a refusal.
        let h = headers(&[(
            "x-github-sso",
            "partial-results; organizations=21955855,20582480",
        )]);
        assert_eq!(sso_required(&h), None);
        assert_eq!(
            sso_partial_results(&h).as_deref(),
            Some("21955855,20582480")
        );
    }

    #[test]
    fn rate_limits_in_octokits_order_and_never_by_status_alone() {
        let primary = [
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", "1100"),
        ];
        let limited = |secondary, retry_after| {
            Some(GithubRefusal::RateLimited {
                secondary,
                retry_after,
            })
        };
        let message = "API rate limit exceeded for user ID 9535539.";
        assert_eq!(
            classify_at(403, &primary, message, false),
            limited(false, 101)
        );
        assert_eq!(
            classify_at(429, &primary, message, false),
            limited(false, 101)
        );
        let secondary = "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.";
        let h = [("retry-after", "30"), ("x-ratelimit-remaining", "4000")];
        assert_eq!(classify_at(403, &h, secondary, false), limited(true, 30));
        // "The Retry-After header can sometimes be blank": a minute.
        assert_eq!(classify_at(403, &[], secondary, false), limited(true, 60));
        // A 429 is a rate limit whatever it says.
        assert_eq!(classify_at(429, &[], "", false), limited(true, 60));
        // A 403 with budget left and no such message is not.
        let h = [("x-ratelimit-remaining", "4999")];
        assert_eq!(classify_at(403, &h, "Forbidden", false), None);
    }

    #[test]
    fn a_missing_read_org_is_read_from_the_scope_headers() {
        let message = "You need at least read:org scope or user scope to list your organizations.";
        let h = [("x-oauth-scopes", "read:user, user:email")];
        let missing = Some(GithubRefusal::ScopeMissing {
            scope: "read:org".into(),
            granted: "read:user, user:email".into(),
        });
        assert_eq!(classify_at(403, &h, message, false), missing);
        // A membership call's 404 to such a token proves nothing about membership.
        assert_eq!(classify_at(404, &h, "Not Found", true), missing);
        let h = [("x-oauth-scopes", "read:user, read:org")];
        assert_eq!(classify_at(404, &h, "Not Found", true), None);
        // A fine-grained token sends no X-OAuth-Scopes: a 404 is a 404.
        assert_eq!(classify_at(404, &[], "Not Found", true), None);
        let h = [
            ("x-oauth-scopes", "read:user"),
            ("x-accepted-oauth-scopes", "read:org"),
        ];
        assert!(classify_at(403, &h, "Forbidden", true).is_some());
    }

    #[test]
    fn refusals_cover_their_orgs_groups() {
        let sso = GithubRefusal::SsoRequired {
            org: "DataBio".into(),
            sso_url: String::new(),
        };
        assert!(covers(&sso, "databio"));
        assert!(covers(&sso, "databio/core"));
        assert!(!covers(&sso, "databio-other"));
        let limited = GithubRefusal::RateLimited {
            secondary: false,
            retry_after: 1,
        };
        assert!(covers(&limited, "acme"));
    }
}
