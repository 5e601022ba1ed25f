//! Roles: who holds which, compiled into hash maps of bit sets so finding a person's roles costs
//! a few lookups however many users the config lists.

use super::lower;
use crate::identity::{Identity, IdentityKind, RoleSet};
use std::collections::HashMap;

/// At most this many distinct role names (a bit each).
pub const MAX_ROLES: usize = 128;

#[derive(Debug, Default)]
pub struct RoleTable {
    /// Bit `i` of a [`RoleSet`] is `names[i]`.
    names: Vec<String>,
    by_user: HashMap<String, RoleSet>,
    /// Keyed by lower-case org login or `org/team` slug.
    by_group: HashMap<String, RoleSet>,
    /// Every admitted user holds these.
    default: RoleSet,
}

impl RoleTable {
    /// The bit for `name`, adding the name if new; `None` past [`MAX_ROLES`].
    pub fn define(&mut self, name: &str) -> Option<usize> {
        if let Some(i) = self.index(name) {
            return Some(i);
        }
        if self.names.len() == MAX_ROLES {
            return None;
        }
        self.names.push(name.to_string());
        Some(self.names.len() - 1)
    }

    pub fn index(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    pub fn grant_default(&mut self, bit: usize) {
        self.default = self.default.with(bit);
    }

    /// `login` must be lower-case.
    pub fn grant_user(&mut self, login: &str, bit: usize) {
        let set = self.by_user.entry(login.to_string()).or_default();
        *set = set.with(bit);
    }

    /// `group` must be a lower-case org login or `org/team` slug.
    pub fn grant_group(&mut self, group: &str, bit: usize) {
        let set = self.by_group.entry(group.to_string()).or_default();
        *set = set.with(bit);
    }

    /// The roles of an admitted GitHub user.
    pub fn roles_of(&self, identity: &Identity) -> RoleSet {
        if let IdentityKind::Service(roles) = identity.kind {
            return roles;
        }
        let mut set = self.default;
        if let Some(s) = self.by_user.get(lower(&identity.login).as_ref()) {
            set = set.union(*s);
        }
        for group in &identity.groups {
            if let Some(s) = self.by_group.get(group) {
                set = set.union(*s);
            }
        }
        set
    }

    /// The names in `set`, in the order the config defined them.
    pub fn names(&self, set: RoleSet) -> Vec<String> {
        self.names
            .iter()
            .enumerate()
            .filter(|(i, _)| set.intersects(RoleSet::default().with(*i)))
            .map(|(_, n)| n.clone())
            .collect()
    }

    /// The roles `names` denote (unknown names are skipped).
    pub fn set_of<'a>(&self, names: impl IntoIterator<Item = &'a str>) -> RoleSet {
        names
            .into_iter()
            .filter_map(|n| self.index(n))
            .fold(RoleSet::default(), RoleSet::with)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_come_from_defaults_users_and_groups() {
        let mut t = RoleTable::default();
        let viewer = t.define("viewer").unwrap();
        let admin = t.define("admin").unwrap();
        let editor = t.define("editor").unwrap();
        t.grant_default(viewer);
        t.grant_user("octocat", admin);
        t.grant_group("databio/core", editor);
        let mut who = Identity::github("1", "OctoCat");
        assert_eq!(t.names(t.roles_of(&who)), ["viewer", "admin"]);
        who.groups = vec!["databio/core".into()];
        assert_eq!(t.names(t.roles_of(&who)), ["viewer", "admin", "editor"]);
        assert_eq!(t.set_of(["editor"]), RoleSet::default().with(editor));
    }

    #[test]
    fn at_most_max_roles() {
        let mut t = RoleTable::default();
        for i in 0..MAX_ROLES {
            assert!(t.define(&format!("r{i}")).is_some());
        }
        assert_eq!(t.define("one-more"), None);
        assert_eq!(t.define("r5"), Some(5));
    }
}
