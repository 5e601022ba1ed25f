//! Who may do what: allow-lists, roles and `[[rules]]`, compiled once at config load into hash
//! sets, bit sets and a path trie, so a decision costs microseconds however large the config.
//!
//! A decision has two steps so public paths never touch the session: [`Policy::rule_for`] finds the
//! deciding rule from the request alone; [`Policy::judge`] then weighs the identity, if needed.

mod admission;
pub mod explain;
mod glob;
pub mod host;
mod index;
pub mod path;
mod roles;
mod rules;

pub use crate::identity::RoleSet;
pub use admission::Admission;
pub use roles::RoleTable;
pub use rules::{Found, Rule, RuleAccess, RuleSet, Target};

pub use crate::config::{host_pattern, is_github_login};
use crate::config::{
    AccessSettings, Config, ConfigProblem, GroupsHeader, RoleSection, RuleSection,
};
use crate::identity::Identity;
use http::Method;
use std::borrow::Cow;
use std::collections::BTreeMap;

/// The compiled policy.
#[derive(Debug, Default)]
pub struct Policy {
    pub admission: Admission,
    pub roles: RoleTable,
    pub rules: RuleSet,
    pub membership: MembershipPlan,
    /// Each `[[routes]]` entry's own rules and allow-lists, by route index.
    pub routes: Vec<RoutePolicy>,
}

/// What a route adds: rules checked before the top-level ones, and allow-lists that replace
/// `[access]`'s on that route.
#[derive(Debug, Default)]
pub struct RoutePolicy {
    pub admission: Option<Admission>,
    pub rules: RuleSet,
}

/// What to ask GitHub at sign-in and at each re-check.
#[derive(Debug, Default, Clone)]
pub struct MembershipPlan {
    /// Lower-case org logins: one `GET /user/memberships/orgs/{org}` each.
    pub orgs: Vec<String>,
    /// Lower-case (org, slug): one `GET /orgs/{org}/teams/{slug}/memberships/{login}` each.
    pub teams: Vec<(String, String)>,
    /// Also list every org of the user (`groups_header = "all"`, or owner rules need it).
    pub list_orgs: bool,
    /// Also list every team of the user (`groups_header = "all"`).
    pub list_teams: bool,
}

impl MembershipPlan {
    pub fn needs_read_org(&self) -> bool {
        !self.orgs.is_empty() || !self.teams.is_empty() || self.list_orgs || self.list_teams
    }
}

/// The outcome of a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Pass, with the identity's headers.
    Allow,
    /// Pass without any identity (a public path).
    Public,
    /// Sign in first (302 for browsers, 401 for API clients).
    Login,
    /// 403, or 404 when the rule hides.
    Deny { hide: bool },
}

impl Verdict {
    /// The words `check-config --explain` prints.
    pub fn describe(self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::Public => "allow (public: no sign-in needed)",
            Verdict::Login => "login",
            Verdict::Deny { hide: false } => "deny 403",
            Verdict::Deny { hide: true } => "hide 404",
        }
    }
}

impl Policy {
    /// The rule that decides `target`; `None` means the default (admitted users only).
    pub fn rule_for<'r, 'p>(&'r self, target: &Target<'p>) -> Option<Found<'r, 'p>> {
        self.rule_on_route(None, target)
    }

    /// The same for a request going to route `route` (an index into `[[routes]]`, `None`:
    /// `[upstream]`): that route's own rules first. ("Route" always means where a request
    /// goes; finding the deciding rule is not routing.)
    pub fn rule_on_route<'r, 'p>(
        &'r self,
        route: Option<usize>,
        target: &Target<'p>,
    ) -> Option<Found<'r, 'p>> {
        route
            .and_then(|r| self.routes.get(r))
            .and_then(|r| r.rules.find(target))
            .or_else(|| self.rules.find(target))
    }

    /// The allow-lists that apply on route `route`.
    pub fn admission_on(&self, route: Option<usize>) -> &Admission {
        route
            .and_then(|r| self.routes.get(r))
            .and_then(|r| r.admission.as_ref())
            .unwrap_or(&self.admission)
    }

    /// Whether judging this request needs to know who is asking. `false` means the session
    /// cookie is never read.
    pub fn needs_identity(found: Option<&Found<'_, '_>>, method: &Method) -> bool {
        match found.map(|f| f.rule) {
            Some(rule) if rule.owner_decides(method) => true,
            Some(rule) => !matches!(rule.access, RuleAccess::Public | RuleAccess::Deny),
            None => true,
        }
    }

    pub fn judge(
        &self,
        found: Option<&Found<'_, '_>>,
        method: &Method,
        who: Option<&Identity>,
    ) -> Verdict {
        self.judge_on(None, found, method, who)
    }

    /// [`Policy::judge`] on route `route`, whose own allow-lists may apply.
    pub fn judge_on(
        &self,
        route: Option<usize>,
        found: Option<&Found<'_, '_>>,
        method: &Method,
        who: Option<&Identity>,
    ) -> Verdict {
        let rule = found.map(|f| f.rule);
        let deny = Verdict::Deny {
            hide: rule.is_some_and(|r| r.hide),
        };
        let owner_decides = rule.is_some_and(|r| r.owner_decides(method));
        match rule.map(|r| &r.access) {
            Some(RuleAccess::Deny) => return deny,
            Some(RuleAccess::Public) if !owner_decides => return Verdict::Public,
            _ => {}
        }
        let Some(who) = who else {
            return Verdict::Login;
        };
        if !self.admission_on(route).admits(who) {
            return deny;
        }
        if owner_decides {
            let owner = found.and_then(|f| f.owner);
            return if owner.is_some_and(|o| owns(who, o)) {
                Verdict::Allow
            } else {
                deny
            };
        }
        match rule.map(|r| &r.access) {
            Some(RuleAccess::Allow(grants)) if !grants.admit(who, self.roles.roles_of(who)) => deny,
            _ => Verdict::Allow,
        }
    }

    /// The role names of an admitted user, for `X-Forwarded-Roles` and userinfo.
    pub fn role_names(&self, who: &Identity) -> Vec<String> {
        self.roles.names(self.roles.roles_of(who))
    }
}

/// Is `owner` (a path segment) this user, or an org they belong to?
fn owns(who: &Identity, owner: &str) -> bool {
    owner.eq_ignore_ascii_case(&who.login)
        || who
            .groups
            .iter()
            .any(|g| !g.contains('/') && g.eq_ignore_ascii_case(owner))
}

/// Why a request path must be refused (400) under its deciding rule, if it must: what apps
/// read in different ways passes only where the rule opts in.
pub fn path_refusal(
    normal: &path::NormalizedPath<'_>,
    rule: Option<&Rule>,
) -> Option<&'static str> {
    if normal.ambiguous && !rule.is_some_and(|r| r.allow_encoded_path) {
        return Some("the path holds %2F, %5C, %00, %25, an escaped control character, `;` or `\\`, which apps behind a gate read in different ways");
    }
    if normal.folded && !rule.is_some_and(|r| r.allow_folded_segments) {
        return Some("a path segment ends in a dot or a space, which some servers drop (reading `/admin./x` as `/admin/x`)");
    }
    None
}

/// `Host` without its port, lower-case, without a trailing dot: what `host` rules compare
/// against. A value that is not a host name comes back lower-cased as it is (requests with one
/// are refused before any rule is asked; this form serves `check-config --explain` and labels).
pub fn host_name(host: &str) -> String {
    match host::canonical_host(host.as_bytes()) {
        Ok(h) => h.name.into_owned(),
        Err(_) => host.to_ascii_lowercase(),
    }
}

/// `s` in ASCII lower case, copying only when it has capitals.
pub(crate) fn lower(s: &str) -> Cow<'_, str> {
    if s.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(s.to_ascii_lowercase())
    } else {
        Cow::Borrowed(s)
    }
}

/// A route's own allow-lists (validated) and rules, as the config gives them.
pub struct RouteInput<'c> {
    /// `routes[2].rules`
    pub key: String,
    pub access: Option<AccessSettings>,
    pub rules: &'c [RuleSection],
}

/// The policy a config asks for (its `[access]`, `[roles]`, `[[rules]]` and each route's own
/// allow-lists and rules), or every problem in them. It reads the config as written, so
/// `check-config` can list these problems beside the sections' own even when those fail; the
/// sections' problems (a malformed allow-list entry) are `config`'s to report, not repeated here.
pub fn from_config(config: &Config) -> Result<Policy, Vec<ConfigProblem>> {
    let mut reported_by_config = Vec::new();
    let access = crate::config::check_access(config, &mut reported_by_config);
    let admissions = crate::config::route_admissions(config, &mut reported_by_config);
    let routes: Vec<RouteInput<'_>> = admissions
        .into_iter()
        .zip(&config.routes)
        .enumerate()
        .map(|(i, (access, route))| RouteInput {
            key: format!("routes[{i}].rules"),
            access,
            rules: &route.rules,
        })
        .collect();
    let mut problems = Vec::new();
    let policy = compile(
        &access,
        &config.roles,
        &config.rules,
        &routes,
        &mut problems,
    );
    check_granted_roles(config, &policy, &mut problems);
    if problems.is_empty() {
        Ok(policy)
    } else {
        Err(problems)
    }
}

/// Roles that OIDC issuers and API keys grant must be roles the policy knows.
fn check_granted_roles(config: &Config, policy: &Policy, problems: &mut Vec<ConfigProblem>) {
    let granted = config
        .tokens
        .oidc_issuers
        .iter()
        .enumerate()
        .flat_map(|(i, o)| {
            o.roles
                .iter()
                .map(move |r| (format!("tokens.oidc_issuers[{i}].roles"), r.trim()))
        })
        .chain(config.api_keys.iter().flat_map(|k| {
            k.roles
                .iter()
                .map(move |r| (format!("api_keys[{}].roles", k.name.trim()), r.trim()))
        }));
    for (key, role) in granted {
        if policy.roles.index(role).is_none() {
            problems.push(ConfigProblem::new(
                key,
                format!("`{role}` is not a role"),
                "define it in [roles.NAME] or access.default_roles, or use \"admin\"",
            ));
        }
    }
}

/// Compile roles and rules; every problem goes to `problems` with its key and fix.
pub fn compile(
    access: &AccessSettings,
    roles: &BTreeMap<String, RoleSection>,
    rules: &[RuleSection],
    routes: &[RouteInput<'_>],
    problems: &mut Vec<ConfigProblem>,
) -> Policy {
    let table = compile_roles(access, roles, problems);
    let rule_set = rules::compile(
        rules,
        &rules::CompileContext {
            roles: &table,
            case_sensitive: access.case_sensitive_paths,
            key: "rules",
        },
        problems,
    );
    let route_policies: Vec<RoutePolicy> = routes
        .iter()
        .map(|r| RoutePolicy {
            admission: r.access.as_ref().map(Admission::new),
            rules: rules::compile(
                r.rules,
                &rules::CompileContext {
                    roles: &table,
                    case_sensitive: access.case_sensitive_paths,
                    key: &r.key,
                },
                problems,
            ),
        })
        .collect();
    let mut orgs: Vec<String> = access.allowed_orgs.clone();
    let mut teams: Vec<(String, String)> = access.allowed_teams.clone();
    for route in routes.iter().filter_map(|r| r.access.as_ref()) {
        orgs.extend(route.allowed_orgs.iter().cloned());
        teams.extend(route.allowed_teams.iter().cloned());
    }
    let named = roles
        .values()
        .flat_map(|r| {
            r.orgs
                .iter()
                .chain(&r.teams)
                .map(|g| g.trim().to_ascii_lowercase())
        })
        .chain(rules::named_groups(rules))
        .chain(routes.iter().flat_map(|r| rules::named_groups(r.rules)));
    for group in named {
        match group.split_once('/') {
            Some((org, slug)) => teams.push((org.to_string(), slug.to_string())),
            None => orgs.push(group),
        }
    }
    orgs.sort();
    orgs.dedup();
    teams.sort();
    teams.dedup();
    let all = access.groups_header == GroupsHeader::All;
    Policy {
        admission: Admission::new(access),
        membership: MembershipPlan {
            orgs,
            teams,
            list_orgs: all
                || rule_set.has_owner_rules()
                || route_policies.iter().any(|r| r.rules.has_owner_rules()),
            list_teams: all,
        },
        roles: table,
        rules: rule_set,
        routes: route_policies,
    }
}

fn compile_roles(
    access: &AccessSettings,
    roles: &BTreeMap<String, RoleSection>,
    problems: &mut Vec<ConfigProblem>,
) -> RoleTable {
    let mut table = RoleTable::default();
    for (i, name) in access.default_roles.iter().enumerate() {
        if let Some(bit) = define_role(
            &mut table,
            name.trim(),
            format!("access.default_roles[{i}]"),
            problems,
        ) {
            table.grant_default(bit);
        }
    }
    if let Some(admin) = define_role(&mut table, "admin", "access.admin_users".into(), problems) {
        for login in &access.admin_users {
            table.grant_user(login, admin);
        }
    }
    for (name, role) in roles {
        let Some(bit) = define_role(&mut table, name, format!("roles.{name}"), problems) else {
            continue;
        };
        for (i, login) in role.users.iter().enumerate() {
            if is_github_login(login.trim()) {
                table.grant_user(&login.trim().to_ascii_lowercase(), bit);
            } else {
                problems.push(ConfigProblem::new(
                    format!("roles.{name}.users[{i}]"),
                    format!("`{login}` is not a GitHub login"),
                    "use the login as shown on github.com/LOGIN",
                ));
            }
        }
        for (i, org) in role.orgs.iter().enumerate() {
            if is_github_login(org.trim()) {
                table.grant_group(&org.trim().to_ascii_lowercase(), bit);
            } else {
                problems.push(ConfigProblem::new(
                    format!("roles.{name}.orgs[{i}]"),
                    format!("`{org}` is not a GitHub organization login"),
                    "use the org's login as in github.com/ORG",
                ));
            }
        }
        for (i, team) in role.teams.iter().enumerate() {
            match team.trim().split_once('/') {
                Some((org, slug)) if is_github_login(org) && is_github_login(slug) => {
                    table.grant_group(&team.trim().to_ascii_lowercase(), bit)
                }
                _ => problems.push(ConfigProblem::new(
                    format!("roles.{name}.teams[{i}]"),
                    format!("`{team}` is not \"org/team-slug\""),
                    "write the org login and the team slug, e.g. \"databio/core\"",
                )),
            }
        }
    }
    table
}

fn define_role(
    table: &mut RoleTable,
    name: &str,
    key: String,
    problems: &mut Vec<ConfigProblem>,
) -> Option<usize> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if !ok {
        problems.push(ConfigProblem::new(
            key,
            format!("`{name}` is not a role name"),
            "use letters, digits, `-`, `_` or `.`",
        ));
        return None;
    }
    let bit = table.define(name);
    if bit.is_none() {
        problems.push(ConfigProblem::new(
            key,
            format!("more than {} roles are defined", roles::MAX_ROLES),
            "merge roles; Gatehouse keeps each person's roles in one 128-bit set",
        ));
    }
    bit
}

#[cfg(test)]
mod tests;
