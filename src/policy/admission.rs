//! Who is admitted: the allow-lists, compiled once into hash sets so a decision costs the same
//! for 10 allowed users as for 100,000.

use super::lower;
use crate::config::AccessSettings;
use crate::identity::{Identity, IdentityKind};
use std::collections::HashSet;

#[derive(Debug, Default)]
pub struct Admission {
    any_github_user: bool,
    users: HashSet<String>,
    user_ids: HashSet<String>,
    /// Orgs and `org/team` slugs, lower-case, compared against `Identity::groups`.
    groups: HashSet<String>,
}

impl Admission {
    pub fn new(access: &AccessSettings) -> Admission {
        Admission {
            any_github_user: access.allow_any_github_user,
            users: access.allowed_users.iter().cloned().collect(),
            user_ids: access.allowed_user_ids.iter().map(u64::to_string).collect(),
            groups: access
                .allowed_orgs
                .iter()
                .cloned()
                .chain(
                    access
                        .allowed_teams
                        .iter()
                        .map(|(org, team)| format!("{org}/{team}")),
                )
                .collect(),
        }
    }

    /// Does any allow-list match this GitHub user?
    pub fn admits(&self, identity: &Identity) -> bool {
        // Machines skip the allow-lists; one that holds no role is admitted nowhere (fail
        // closed: a key or issuer entry must be given roles to reach anything not public).
        if let IdentityKind::Service(roles) = identity.kind {
            return !roles.is_empty();
        }
        self.any_github_user
            || self.user_ids.contains(&identity.user_id)
            || self.users.contains(lower(&identity.login).as_ref())
            || identity.groups.iter().any(|g| self.groups.contains(g))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(login: &str, id: &str, groups: &[&str]) -> Identity {
        Identity {
            kind: Default::default(),
            user_id: id.into(),
            login: login.into(),
            name: None,
            email: None,
            avatar_url: None,
            groups: groups.iter().map(|g| g.to_string()).collect(),
            roles: vec![],
            expires_at: 0,
            signed_in_at: 0,
            session_record: None,
            source: Default::default(),
        }
    }

    #[test]
    fn any_list_admits_and_logins_ignore_case() {
        let a = Admission::new(&AccessSettings {
            allowed_users: vec!["octocat".into()],
            allowed_user_ids: vec![42],
            allowed_orgs: vec!["databio".into()],
            allowed_teams: vec![("acme".into(), "core".into())],
            ..AccessSettings::default()
        });
        assert!(a.admits(&person("OctoCat", "1", &[])));
        assert!(a.admits(&person("renamed", "42", &[])));
        assert!(a.admits(&person("x", "2", &["databio"])));
        assert!(a.admits(&person("x", "2", &["acme/core"])));
        assert!(!a.admits(&person("x", "2", &["acme", "acme/other"])));
        assert!(!a.admits(&person("mallory", "3", &[])));
    }
}
