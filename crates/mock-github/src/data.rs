//! The users/orgs/apps TOML that seeds the mock GitHub: its shape as types (read and checked
//! by `validate`).
//!
//! Format (see demo_users.toml for a full example):
//! ```toml
//! [[apps]]                      # optional; apps can also be added at run time
//! client_id = "demo-client-id"
//! client_secret = "demo-client-secret"
//! callback_url = "http://127.0.0.1:4180/oauth2/callback"
//!
//! [[users]]
//! login = "octocat"             # GitHub login rules: letters, digits, single inner hyphens
//! id = 583231                   # unique numeric id
//! name = "The Octocat"          # optional
//! avatar_url = "https://..."    # optional, default https://avatars.githubusercontent.com/u/{id}?v=4
//! public_email = "..."          # optional, the `email` field of GET /user (default null)
//! site_admin = false            # optional
//! emails = [ { email = "octocat@example.com", primary = true, verified = true } ]
//!
//! [[orgs]]
//! login = "databio"
//! id = 1001                     # optional, derived when omitted
//! members = [ { login = "octocat", state = "active", role = "admin" },
//!             { login = "hubot", state = "pending" } ]   # state default active, role default member
//! oauth_app_restrictions = false  # optional: OAuth apps see nothing of the org unless approved
//! approved_apps = []              # optional: client_ids the owners approved
//! saml_sso = false                # optional: members' tokens need a single sign-on authorization
//! installed_apps = []             # optional: GitHub App client_ids installed with Members: read
//!   [[orgs.teams]]
//!   slug = "core"
//!   name = "Core"               # optional, default = slug
//!   members = ["octocat"]       # must be members of the org
//! ```
//! Unknown keys are errors so a typo cannot silently change what a test exercises.

use serde::Deserialize;

/// A registered OAuth app.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MockApp {
    pub client_id: String,
    pub client_secret: String,
    pub callback_url: String,
}

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct MockData {
    #[serde(default)]
    pub apps: Vec<MockApp>,
    #[serde(default)]
    pub users: Vec<User>,
    #[serde(default)]
    pub orgs: Vec<Org>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct User {
    pub login: String,
    pub id: u64,
    pub name: Option<String>,
    pub avatar_url: Option<String>,
    pub public_email: Option<String>,
    #[serde(default)]
    pub site_admin: bool,
    #[serde(default)]
    pub emails: Vec<Email>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Email {
    pub email: String,
    #[serde(default)]
    pub primary: bool,
    #[serde(default)]
    pub verified: bool,
    /// "public" or "private"; GitHub reports null for non-primary addresses.
    pub visibility: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Org {
    pub login: String,
    /// 0 means "derive one".
    #[serde(default)]
    pub id: u64,
    pub name: Option<String>,
    pub description: Option<String>,
    #[serde(default)]
    pub members: Vec<Member>,
    #[serde(default)]
    pub teams: Vec<Team>,
    /// OAuth App access restrictions: OAuth apps not in `approved_apps` get nothing of the
    /// org (its list entries are left out, its own endpoints answer 403).
    #[serde(default)]
    pub oauth_app_restrictions: bool,
    #[serde(default)]
    pub approved_apps: Vec<String>,
    /// SAML single sign-on enforced: a member's token must be authorized for the org
    /// (`/orgs/{org}/sso`) before it sees the org's data.
    #[serde(default)]
    pub saml_sso: bool,
    /// GitHub Apps (client ids) installed on the org with the Members: read permission: only
    /// their user tokens see the org's memberships (GitHub Apps have no OAuth scopes).
    #[serde(default)]
    pub installed_apps: Vec<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Member {
    pub login: String,
    #[serde(default)]
    pub state: MemberState,
    #[serde(default)]
    pub role: OrgRole,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(super) enum MemberState {
    #[default]
    Active,
    /// Invited but not accepted: GitHub reports it, but it grants nothing.
    Pending,
}

impl MemberState {
    pub fn as_str(self) -> &'static str {
        match self {
            MemberState::Active => "active",
            MemberState::Pending => "pending",
        }
    }

    pub fn parse(text: &str) -> Option<MemberState> {
        match text {
            "active" => Some(MemberState::Active),
            "pending" => Some(MemberState::Pending),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(super) enum OrgRole {
    #[default]
    Member,
    Admin,
}

impl OrgRole {
    pub fn as_str(self) -> &'static str {
        match self {
            OrgRole::Member => "member",
            OrgRole::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<OrgRole> {
        match text {
            "member" => Some(OrgRole::Member),
            "admin" => Some(OrgRole::Admin),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Team {
    pub slug: String,
    pub name: Option<String>,
    /// 0 means "derive one".
    #[serde(default)]
    pub id: u64,
    pub description: Option<String>,
    #[serde(default)]
    pub members: Vec<String>,
}

impl User {
    pub fn avatar(&self) -> String {
        match &self.avatar_url {
            Some(url) => url.clone(),
            None => format!("https://avatars.githubusercontent.com/u/{}?v=4", self.id),
        }
    }
}

impl Org {
    pub fn member(&self, login: &str) -> Option<&Member> {
        self.members
            .iter()
            .find(|m| m.login.eq_ignore_ascii_case(login))
    }

    pub fn team(&self, slug: &str) -> Option<&Team> {
        self.teams
            .iter()
            .find(|t| t.slug.eq_ignore_ascii_case(slug))
    }
}
