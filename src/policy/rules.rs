//! `[[rules]]`: compiled once at load into a [`RuleSet`] whose `find` returns the first rule
//! (in file order) matching a request's method, host and normalized path.

use super::glob::{self, Segment};
use super::index::{PathIndex, RuleId};
use super::roles::RoleTable;
use super::{is_github_login, lower};
use crate::config::{ConfigProblem, RuleSection};
use crate::identity::Identity;
use crate::identity::RoleSet;
use http::Method;
use regex::{Regex, RegexBuilder};
use std::collections::HashSet;

/// What a rule lets through (before owner methods are considered).
#[derive(Debug)]
pub enum RuleAccess {
    /// No sign-in at all: the cookie is not even read.
    Public,
    /// Any admitted user.
    Authenticated,
    /// Nobody.
    Deny,
    /// Admitted users matching any grant.
    Allow(Grants),
}

/// `allow = ["role:admin", "org:databio", "team:databio/core", "user:octocat"]`
#[derive(Debug, Default)]
pub struct Grants {
    roles: RoleSet,
    users: HashSet<String>,
    /// Org logins and `org/team` slugs, lower-case.
    groups: HashSet<String>,
}

impl Grants {
    pub fn admit(&self, identity: &Identity, roles: RoleSet) -> bool {
        roles.intersects(self.roles)
            || self.users.contains(lower(&identity.login).as_ref())
            || identity.groups.iter().any(|g| self.groups.contains(g))
    }
}

#[derive(Debug)]
enum HostPattern {
    Exact(String),
    /// `*.example.com` → `.example.com`
    Suffix(String),
}

impl HostPattern {
    fn matches(&self, host: &str) -> bool {
        match self {
            HostPattern::Exact(h) => host == h,
            HostPattern::Suffix(s) => host.len() > s.len() && host.ends_with(s.as_str()),
        }
    }
}

#[derive(Debug)]
pub struct Rule {
    /// 1-based position in the file, as `check-config --explain` prints it.
    pub number: usize,
    /// `None` for top-level `[[rules]]`; the route's key (`routes[2]`) for a route's own rules.
    pub scope: Option<String>,
    /// The rule as written, on one line.
    pub text: String,
    pub access: RuleAccess,
    pub hide: bool,
    pub allow_encoded_path: bool,
    pub allow_folded_segments: bool,
    /// Empty: every method.
    methods: Vec<Method>,
    host: Option<HostPattern>,
    owner: Option<OwnerScope>,
    regex: Option<Regex>,
}

#[derive(Debug)]
struct OwnerScope {
    /// Which path segment (glob rules) names the owner; regex rules use the `owner` group.
    segment: Option<usize>,
    methods: Vec<Method>,
}

impl Rule {
    /// Must the owner check decide this method?
    pub fn owner_decides(&self, method: &Method) -> bool {
        self.owner
            .as_ref()
            .is_some_and(|o| o.methods.contains(method))
    }

    fn accepts(&self, method: &Method, host: Option<&str>) -> bool {
        (self.methods.is_empty() || self.methods.contains(method))
            && self
                .host
                .as_ref()
                .is_none_or(|p| host.is_some_and(|h| p.matches(h)))
    }

    /// The owner named in `path` (normalized, original case), for rules that have owner methods.
    pub fn owner_in<'p>(&self, segments: &[&'p str], path: &'p str) -> Option<&'p str> {
        let scope = self.owner.as_ref()?;
        match (scope.segment, &self.regex) {
            (Some(at), _) => segments.get(at).copied(),
            (None, Some(re)) => re
                .captures(path)
                .and_then(|c| c.name("owner"))
                .map(|m| m.as_str()),
            (None, None) => None,
        }
    }
}

/// A request as rules see it.
pub struct Target<'a> {
    pub method: &'a Method,
    /// Lower-case, without port.
    pub host: Option<&'a str>,
    /// Normalized, original case.
    pub path: &'a str,
}

#[derive(Debug, Default)]
pub struct RuleSet {
    rules: Vec<Rule>,
    index: PathIndex,
    /// Ids of `path_regex` rules, ascending (the index cannot hold them).
    regex_rules: Vec<RuleId>,
    case_sensitive: bool,
    uses_host: bool,
}

/// The rule that decides a request, and the path split as it was matched.
pub struct Found<'r, 'p> {
    pub rule: &'r Rule,
    pub owner: Option<&'p str>,
}

impl RuleSet {
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether any rule looks at the host (so the request's host need not be read otherwise).
    pub fn uses_host(&self) -> bool {
        self.uses_host
    }

    pub fn has_owner_rules(&self) -> bool {
        self.rules.iter().any(|r| r.owner.is_some())
    }

    /// The first rule matching `target`, if any.
    pub fn find<'r, 'p>(&'r self, target: &Target<'p>) -> Option<Found<'r, 'p>> {
        if self.rules.is_empty() {
            return None;
        }
        let folded;
        let match_path =
            if !self.case_sensitive && target.path.bytes().any(|b| b.is_ascii_uppercase()) {
                folded = target.path.to_ascii_lowercase();
                folded.as_str()
            } else {
                target.path
            };
        let segments: Vec<&str> = match_path.split('/').filter(|s| !s.is_empty()).collect();
        let accept = |id: RuleId| self.rules[id as usize].accepts(target.method, target.host);
        let mut best = self.index.first_match(&segments, RuleId::MAX, &accept);
        for &id in self.regex_rules.iter().take_while(|&&id| id < best) {
            let rule = &self.rules[id as usize];
            if accept(id)
                && rule
                    .regex
                    .as_ref()
                    .is_some_and(|re| re.is_match(target.path))
            {
                best = id;
                break;
            }
        }
        let rule = self.rules.get(best as usize)?;
        // The owner keeps the request's case; segments line up with the folded copy.
        let owner = rule.owner.as_ref().and_then(|_| {
            let original: Vec<&'p str> = target.path.split('/').filter(|s| !s.is_empty()).collect();
            rule.owner_in(&original, target.path)
        });
        Some(Found { owner, rule })
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }
}

/// Everything compiling needs besides the rules themselves.
pub struct CompileContext<'a> {
    pub roles: &'a RoleTable,
    pub case_sensitive: bool,
    /// Where the rules sit in the config: `"rules"` or `"routes[2].rules"`.
    pub key: &'a str,
}

pub fn compile(
    sections: &[RuleSection],
    cx: &CompileContext,
    problems: &mut Vec<ConfigProblem>,
) -> RuleSet {
    let mut set = RuleSet {
        case_sensitive: cx.case_sensitive,
        ..RuleSet::default()
    };
    for (i, section) in sections.iter().enumerate() {
        let mut report = |field: &str, problem: String, fix: &str| {
            problems.push(ConfigProblem::new(
                format!("{}[{i}].{field}", cx.key),
                format!("rule #{} ({}): {problem}", i + 1, describe(section)),
                fix,
            ))
        };
        let Some((rule, segments)) = compile_one(i, section, cx, &mut report) else {
            continue;
        };
        let id = set.rules.len() as RuleId;
        match segments {
            Some(segments) => set.index.insert(&segments, id),
            None => set.regex_rules.push(id),
        }
        set.uses_host |= rule.host.is_some();
        set.rules.push(rule);
    }
    set
}

fn compile_one(
    i: usize,
    s: &RuleSection,
    cx: &CompileContext,
    report: &mut impl FnMut(&str, String, &str),
) -> Option<(Rule, Option<Vec<Segment>>)> {
    let problems_before = std::cell::Cell::new(0usize);
    let mut fail = |field: &str, problem: String, fix: &str| {
        problems_before.set(problems_before.get() + 1);
        report(field, problem, fix);
    };
    let (segments, regex) = match (&s.path, &s.path_regex) {
        (Some(_), Some(_)) => {
            fail(
                "path",
                "has both `path` and `path_regex`".into(),
                "keep one: a glob in `path`, or a regular expression in `path_regex`",
            );
            (None, None)
        }
        (None, None) => {
            fail(
                "path",
                "matches nothing: it has neither `path` nor `path_regex`".into(),
                "add path = \"/some/**\" (glob) or path_regex = \"^/...\"",
            );
            (None, None)
        }
        (Some(path), None) => match glob::parse(path, cx.case_sensitive) {
            Ok(segments) => (Some(segments), None),
            Err(e) => {
                fail(
                    "path",
                    e,
                    "write a glob like \"/admin/**\" (`*` = one segment, `**` = any number, `{owner}` = the owner segment)",
                );
                (None, None)
            }
        },
        (None, Some(pattern)) => match RegexBuilder::new(pattern)
            .case_insensitive(!cx.case_sensitive)
            .size_limit(1 << 20)
            .build()
        {
            Ok(re) => (None, Some(re)),
            Err(e) => {
                fail(
                    "path_regex",
                    format!("is not a valid regular expression: {e}"),
                    "fix the expression (Rust `regex` syntax; anchor it with ^ and $)",
                );
                (None, None)
            }
        },
    };
    let methods = parse_methods(&s.methods, "methods", &mut fail);
    let owner_methods = parse_methods(&s.owner_methods, "owner_methods", &mut fail);
    let host = s.host.as_deref().and_then(|h| parse_host(h, &mut fail));
    let access = parse_access(s, cx.roles, &mut fail);

    let owner = if owner_methods.is_empty() {
        None
    } else {
        let segment = segments.as_deref().and_then(glob::owner_position);
        let regex_owner = regex
            .as_ref()
            .is_some_and(|re| re.capture_names().any(|n| n == Some("owner")));
        if segment.is_none() && !regex_owner {
            fail(
                "owner_methods",
                "is set but the path names no owner".into(),
                "put an `{owner}` segment in path (e.g. \"/{owner}/**\") or a `(?P<owner>...)` group in path_regex",
            );
        }
        Some(OwnerScope {
            segment,
            methods: owner_methods,
        })
    };
    if problems_before.get() > 0 || (segments.is_none() && regex.is_none()) {
        return None;
    }
    let rule = Rule {
        number: i + 1,
        scope: cx.key.strip_suffix(".rules").map(str::to_string),
        text: describe(s),
        access: access?,
        hide: s.hide,
        allow_encoded_path: s.allow_encoded_path,
        allow_folded_segments: s.allow_folded_segments,
        methods,
        host,
        owner,
        regex,
    };
    Some((rule, segments))
}

fn parse_methods(
    names: &[String],
    field: &str,
    fail: &mut impl FnMut(&str, String, &str),
) -> Vec<Method> {
    let mut methods = Vec::new();
    for name in names {
        let upper = name.trim().to_ascii_uppercase();
        match Method::from_bytes(upper.as_bytes()) {
            Ok(m) if !upper.is_empty() => methods.push(m),
            _ => fail(
                field,
                format!("`{name}` is not an HTTP method"),
                "write methods like \"GET\", \"POST\", \"DELETE\"",
            ),
        }
    }
    methods
}

fn parse_host(host: &str, fail: &mut impl FnMut(&str, String, &str)) -> Option<HostPattern> {
    let Some(pattern) = super::host_pattern(host) else {
        fail(
            "host",
            format!("`{host}` is not a host name"),
            "write a name like \"app.example.com\" or \"*.example.com\" (no port, no scheme)",
        );
        return None;
    };
    Some(if pattern.starts_with('.') {
        HostPattern::Suffix(pattern)
    } else {
        HostPattern::Exact(pattern)
    })
}

fn parse_access(
    s: &RuleSection,
    roles: &RoleTable,
    fail: &mut impl FnMut(&str, String, &str),
) -> Option<RuleAccess> {
    let policy = match s.policy.as_deref().map(str::trim) {
        None => None,
        Some("public") => Some(RuleAccess::Public),
        Some("authenticated") => Some(RuleAccess::Authenticated),
        Some("deny") => Some(RuleAccess::Deny),
        Some(other) => {
            fail(
                "policy",
                format!("`{other}` is not a policy"),
                "use policy = \"public\", \"authenticated\" or \"deny\", or list who may in allow = [...]",
            );
            return None;
        }
    };
    match (policy, &s.allow) {
        (Some(_), Some(_)) => {
            fail(
                "allow",
                "has both `policy` and `allow`".into(),
                "keep one: `policy` for everyone/admitted/nobody, or `allow` for a list",
            );
            None
        }
        (Some(p), None) => Some(p),
        // Owner rules read naturally without a policy: other methods are for admitted users.
        (None, None) if !s.owner_methods.is_empty() => Some(RuleAccess::Authenticated),
        (None, None) => {
            fail(
                "policy",
                "says nothing about who may pass".into(),
                "add policy = \"public\" | \"authenticated\" | \"deny\", or allow = [\"role:admin\", ...]",
            );
            None
        }
        (None, Some(list)) => parse_grants(list, roles, fail).map(RuleAccess::Allow),
    }
}

fn parse_grants(
    list: &[String],
    roles: &RoleTable,
    fail: &mut impl FnMut(&str, String, &str),
) -> Option<Grants> {
    let mut grants = Grants::default();
    let mut ok = true;
    if list.is_empty() {
        fail(
            "allow",
            "is empty, so nobody could pass".into(),
            "list who may pass, or write policy = \"deny\" if that is the intent",
        );
        return None;
    }
    for entry in list {
        let entry = entry.trim();
        let valid = match entry.split_once(':') {
            Some(("role", name)) => match roles.index(name) {
                Some(bit) => {
                    grants.roles = grants.roles.with(bit);
                    true
                }
                None => {
                    fail(
                        "allow",
                        format!("`{entry}` names a role nothing grants"),
                        "define it in [roles.NAME], access.default_roles or (for `admin`) access.admin_users",
                    );
                    ok = false;
                    continue;
                }
            },
            Some(("user", login)) if is_github_login(login) => {
                grants.users.insert(login.to_ascii_lowercase());
                true
            }
            Some(("org", org)) if is_github_login(org) => {
                grants.groups.insert(org.to_ascii_lowercase());
                true
            }
            Some(("team", team)) => match team.split_once('/') {
                Some((org, slug)) if is_github_login(org) && is_github_login(slug) => {
                    grants.groups.insert(team.to_ascii_lowercase());
                    true
                }
                _ => false,
            },
            _ => false,
        };
        if !valid {
            fail(
                "allow",
                format!("`{entry}` is not a grant"),
                "write \"role:NAME\", \"org:ORG\", \"team:ORG/SLUG\" or \"user:LOGIN\"",
            );
            ok = false;
        }
    }
    ok.then_some(grants)
}

/// The orgs and `org/team` slugs named in rules' `allow` lists (GitHub must be asked about each).
pub fn named_groups(sections: &[RuleSection]) -> impl Iterator<Item = String> + '_ {
    sections
        .iter()
        .filter_map(|s| s.allow.as_ref())
        .flatten()
        .filter_map(|e| {
            let (kind, value) = e.trim().split_once(':')?;
            matches!(kind, "org" | "team").then(|| value.to_ascii_lowercase())
        })
}

/// The rule on one line, as the config wrote it.
pub fn describe(s: &RuleSection) -> String {
    let quote = |v: &str| serde_json::Value::from(v).to_string();
    let list = |v: &[String]| {
        let items: Vec<String> = v.iter().map(|x| quote(x)).collect();
        format!("[{}]", items.join(", "))
    };
    let mut parts = Vec::new();
    if let Some(p) = &s.path {
        parts.push(format!("path = {}", quote(p)));
    }
    if let Some(p) = &s.path_regex {
        parts.push(format!("path_regex = {}", quote(p)));
    }
    if !s.methods.is_empty() {
        parts.push(format!("methods = {}", list(&s.methods)));
    }
    if let Some(h) = &s.host {
        parts.push(format!("host = {}", quote(h)));
    }
    if let Some(p) = &s.policy {
        parts.push(format!("policy = {}", quote(p)));
    }
    if let Some(a) = &s.allow {
        parts.push(format!("allow = {}", list(a)));
    }
    if !s.owner_methods.is_empty() {
        parts.push(format!("owner_methods = {}", list(&s.owner_methods)));
    }
    if s.hide {
        parts.push("hide = true".into());
    }
    if s.allow_encoded_path {
        parts.push("allow_encoded_path = true".into());
    }
    if s.allow_folded_segments {
        parts.push("allow_folded_segments = true".into());
    }
    format!("{{ {} }}", parts.join(", "))
}
