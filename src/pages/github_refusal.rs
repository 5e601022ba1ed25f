//! [`GithubRefusal`]: GitHub declined to tell Gatehouse something it needs about a person (a
//! membership, or anything at all while rate-limited), named the way GitHub named it, with who
//! can fix it and the link GitHub gave. Rendered as part of
//! [`Refusal::GithubRefused`](super::Refusal::GithubRefused).

use super::html::{self, escape};
use serde_json::{json, Value};

/// Why GitHub would not answer, read from its status, headers and message (never the status
/// alone). None of these means "not a member": each is "could not confirm".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GithubRefusal {
    /// The org has OAuth App access restrictions on and has not approved this app.
    /// `request_url`: where a member asks the owners for approval; `approve_url`: where an
    /// owner grants it.
    AccessRestricted {
        org: String,
        request_url: String,
        approve_url: String,
    },
    /// The org enforces SAML single sign-on and the token is not authorized for it;
    /// `sso_url` is the one GitHub sent in `X-GitHub-SSO` (it expires after an hour).
    SsoRequired { org: String, sso_url: String },
    /// The token lacks `scope` (GitHub's `X-OAuth-Scopes` lists `granted`): the person must
    /// sign in again to grant it.
    ScopeMissing { scope: String, granted: String },
    /// GitHub's rate limit: `secondary` (too many requests at once) or the hourly budget;
    /// GitHub asks for no retry before `retry_after` seconds.
    RateLimited { secondary: bool, retry_after: u64 },
}

impl GithubRefusal {
    /// The metric label and log field.
    pub fn reason(&self) -> &'static str {
        match self {
            GithubRefusal::AccessRestricted { .. } => "access_restricted",
            GithubRefusal::SsoRequired { .. } => "sso_required",
            GithubRefusal::ScopeMissing { .. } => "scope_missing",
            GithubRefusal::RateLimited {
                secondary: false, ..
            } => "rate_limited",
            GithubRefusal::RateLimited {
                secondary: true, ..
            } => "secondary_rate_limited",
        }
    }

    /// Every [`reason`](Self::reason), for metric series created up front.
    pub const REASONS: [&'static str; 5] = [
        "access_restricted",
        "sso_required",
        "scope_missing",
        "rate_limited",
        "secondary_rate_limited",
    ];

    /// The JSON `error` code.
    pub fn code(&self) -> &'static str {
        match self {
            GithubRefusal::AccessRestricted { .. } => "github_access_restricted",
            GithubRefusal::SsoRequired { .. } => "github_sso_required",
            GithubRefusal::ScopeMissing { .. } => "github_scope_missing",
            GithubRefusal::RateLimited { .. } => "github_rate_limited",
        }
    }

    /// The org GitHub named, if the refusal is about one.
    pub fn org(&self) -> Option<&str> {
        match self {
            GithubRefusal::AccessRestricted { org, .. }
            | GithubRefusal::SsoRequired { org, .. } => Some(org),
            _ => None,
        }
    }

    /// 403 when someone must act (an owner, or the person); 503 while GitHub rate-limits.
    pub fn status(&self) -> u16 {
        match self {
            GithubRefusal::RateLimited { .. } => 503,
            _ => 403,
        }
    }

    /// Seconds before trying again is any use (only rate limits have them).
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            GithubRefusal::RateLimited { retry_after, .. } => Some((*retry_after).max(1)),
            _ => None,
        }
    }

    pub(super) fn title(&self) -> &'static str {
        match self {
            GithubRefusal::AccessRestricted { .. } => "Organization approval needed",
            GithubRefusal::SsoRequired { .. } => "Single sign-on required",
            GithubRefusal::ScopeMissing { .. } => "Sign in again to grant access",
            GithubRefusal::RateLimited { .. } => "GitHub is limiting requests",
        }
    }

    /// What happened, who can fix it and how, in plain text.
    pub(super) fn message(&self) -> String {
        match self {
            GithubRefusal::AccessRestricted {
                org,
                request_url,
                approve_url,
            } => format!(
                "The GitHub organization {org} restricts which apps may see its data, and it has not approved this site's sign-in app, so GitHub would not say whether you are a member. Who can fix it: an owner of {org}. Ask them for approval at {request_url} (GitHub sends them the request); an owner approves the app at {approve_url}. Once it is approved, choose Try again and you get in at once."
            ),
            GithubRefusal::SsoRequired { org, sso_url } => format!(
                "The GitHub organization {org} requires single sign-on, and your sign-in to this site is not authorized for it yet, so GitHub would not say whether you are a member. Who can fix it: you. Sign in to {org}'s single sign-on at {sso_url} (the link GitHub gave, valid for an hour), then choose Try again."
            ),
            GithubRefusal::ScopeMissing { scope, granted } => format!(
                "This site now needs to see your organization memberships, and your GitHub sign-in did not grant it the {scope} permission (it has: {}). Who can fix it: you. Choose Try again to sign in again and approve the access GitHub asks for.",
                if granted.is_empty() { "none" } else { granted }
            ),
            GithubRefusal::RateLimited {
                secondary,
                retry_after,
            } => format!(
                "GitHub is limiting how often this site may ask it ({}), so your access could not be confirmed right now. Nothing about your access has changed. Who can fix it: nobody needs to; try again in {retry_after} second{}. If it keeps happening, tell the site's operator.",
                if *secondary {
                    "too many requests in a short time"
                } else {
                    "the hourly budget of requests is used up"
                },
                if *retry_after == 1 { "" } else { "s" }
            ),
        }
    }

    /// The fields the JSON answer adds to `error` and `message`.
    pub(super) fn json_fields(&self, body: &mut Value) {
        body["reason"] = json!(self.reason());
        if let Some(org) = self.org() {
            body["org"] = json!(org);
        }
        match self {
            GithubRefusal::AccessRestricted {
                request_url,
                approve_url,
                ..
            } => {
                body["approval_request_url"] = json!(request_url);
                body["owner_approval_url"] = json!(approve_url);
            }
            GithubRefusal::SsoRequired { sso_url, .. } => body["sso_url"] = json!(sso_url),
            GithubRefusal::ScopeMissing { scope, granted } => {
                body["missing_scope"] = json!(scope);
                body["granted_scopes"] = json!(granted);
            }
            GithubRefusal::RateLimited { .. } => {
                body["retry_after"] = json!(self.retry_after());
            }
        }
    }

    /// The page: the message, the link GitHub gave, and Try again (`retry_url`).
    pub(super) fn page(&self, retry_url: &str) -> String {
        let link = match self {
            GithubRefusal::AccessRestricted { request_url, .. } => {
                html::secondary_link(request_url, "Request approval")
            }
            GithubRefusal::SsoRequired { org, sso_url } => {
                html::secondary_link(sso_url, &format!("Single sign-on for {org}"))
            }
            _ => String::new(),
        };
        html::page(
            self.title(),
            &escape(&self.message()),
            &format!(
                r#"<div class="actions">{}{link}</div>"#,
                html::button_link(retry_url, "Try again")
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::super::Refusal;
    use super::*;

    fn refused(refusal: GithubRefusal) -> Refusal {
        Refusal::GithubRefused {
            refusal: Box::new(refusal),
            retry_url: "/oauth2/start?rd=%2F&x=1".into(),
        }
    }

    #[test]
    fn each_refusal_says_who_fixes_it_with_githubs_link_escaped() {
        let sso = refused(GithubRefusal::SsoRequired {
            org: "databio".into(),
            sso_url: "https://github.com/orgs/databio/sso?authorization_request=a\"<b".into(),
        });
        let page = sso.reply(true);
        assert_eq!(page.status, 403);
        let html = std::str::from_utf8(&page.body).unwrap();
        assert!(html.contains("Single sign-on required"), "{html}");
        assert!(html.contains("Who can fix it: you"), "{html}");
        assert!(
            html.contains("a&quot;&lt;b") && !html.contains("a\"<b"),
            "{html}"
        );
        assert!(
            html.contains(r#"href="/oauth2/start?rd=%2F&amp;x=1">Try again"#),
            "{html}"
        );
        let json: Value = serde_json::from_slice(&sso.reply(false).body).unwrap();
        assert_eq!(json["error"], "github_sso_required");
        assert_eq!(json["org"], "databio");
        assert_eq!(json["retry_url"], "/oauth2/start?rd=%2F&x=1");
    }

    #[test]
    fn a_rate_limit_is_a_503_with_retry_after() {
        let limited = refused(GithubRefusal::RateLimited {
            secondary: false,
            retry_after: 42,
        });
        let r = limited.reply(false);
        assert_eq!(r.status, 503);
        assert!(r.headers.contains(&("Retry-After", "42".into())));
        let json: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(json["retry_after"], 42);
        assert_eq!(json["reason"], "rate_limited");
        assert_eq!(
            crate::observe::Decision::of_refusal(&limited, true),
            crate::observe::Decision::Error
        );
    }
}
