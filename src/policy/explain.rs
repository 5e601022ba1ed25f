//! `gatehouse check-config --explain`: a dry run of one decision, saying which rule decided and
//! why, for a person given on the command line (no GitHub call: memberships are supplied).

use super::{path, Target, Verdict};
use crate::config::Settings;
use crate::identity::Identity;
use crate::routing::{self, Destination};
use http::Method;
use std::fmt::Write;

/// A made-up request and who makes it.
pub struct Question<'a> {
    /// `None`: an anonymous visitor.
    pub user: Option<&'a str>,
    pub user_id: Option<u64>,
    /// Org logins and `org/team` slugs the user belongs to.
    pub groups: Vec<String>,
    pub method: Method,
    pub host: Option<&'a str>,
    pub path: &'a str,
}

/// The report `--explain` prints.
pub fn explain(settings: &Settings, policy: &super::Policy, q: &Question<'_>) -> String {
    let mut out = String::new();
    let who = q.user.map(|login| {
        let mut identity = Identity::github(
            &q.user_id.map_or_else(String::new, |id| id.to_string()),
            login,
        );
        identity.groups = q.groups.iter().map(|g| g.to_ascii_lowercase()).collect();
        identity
    });
    let _ = writeln!(
        out,
        "request:  {} {}{}",
        q.method,
        q.host.map_or(String::new(), |h| format!("//{h}")),
        q.path
    );
    let _ = writeln!(
        out,
        "who:      {}",
        who.as_ref().map_or("anonymous".to_string(), |w| {
            let groups = if w.groups.is_empty() {
                "no orgs or teams".to_string()
            } else {
                w.groups.join(", ")
            };
            format!("{} ({groups})", w.login)
        })
    );
    let normal = match path::normalize(q.path) {
        Ok(n) => n,
        Err(e) => {
            let _ = writeln!(out, "decision: 400 bad request\nwhy:      {e}");
            return out;
        }
    };
    if normal.path != q.path {
        let _ = writeln!(out, "path:     normalized to {}", normal.path);
    }
    let host = q.host.map(super::host_name);
    let target = Target {
        method: &q.method,
        host: host.as_deref(),
        path: &normal.path,
    };
    let route = match routing::select(
        &settings.routes,
        settings.upstream.is_some(),
        target.host,
        target.path,
    ) {
        Destination::Route(route) => route,
        Destination::Nowhere => {
            let _ = writeln!(
                out,
                "decision: 404 (no route takes this host and path, and there is no [upstream])"
            );
            return out;
        }
    };
    if let Some(r) = route.and_then(|i| settings.routes.get(i)) {
        let _ = writeln!(out, "route:    {} → {}", r.name, r.target.url);
    }
    let found = policy.rule_on_route(route, &target);
    let rule_text = found.as_ref().map_or(
        "default (no rule matches: admitted users only)".to_string(),
        |f| match &f.rule.scope {
            Some(scope) => format!("{scope} rule #{} {}", f.rule.number, f.rule.text),
            None => format!("rule #{} {}", f.rule.number, f.rule.text),
        },
    );
    if let Some(why) = super::path_refusal(&normal, found.as_ref().map(|f| f.rule)) {
        let _ = writeln!(
            out,
            "decision: 400 bad request\nrule:     {rule_text}\nwhy:      {why}; the deciding rule does not set allow_encoded_path / allow_folded_segments = true"
        );
        return out;
    }
    let verdict = policy.judge_on(route, found.as_ref(), &q.method, who.as_ref());
    let _ = writeln!(out, "decision: {}", verdict.describe());
    let _ = writeln!(out, "rule:     {rule_text}");
    if let Some(who) = who
        .as_ref()
        .filter(|w| policy.admission_on(route).admits(w))
    {
        let _ = writeln!(out, "roles:    {}", policy.role_names(who).join(", "));
    }
    let why = match (verdict, &who) {
        (Verdict::Public, _) => "the rule is public: no sign-in, no cookie read".to_string(),
        (Verdict::Login, _) => "an anonymous visitor must sign in first (302 for browsers, 401 for API clients)".to_string(),
        (Verdict::Deny { .. }, Some(w)) if !policy.admission_on(route).admits(w) => format!(
            "{} matches none of the allow-lists (allowed_users, allowed_user_ids, allowed_orgs, allowed_teams)",
            w.login
        ),
        (Verdict::Deny { .. }, _) if found.as_ref().is_some_and(|f| f.rule.owner_decides(&q.method)) => format!(
            "{} is an owner method here and the path's owner `{}` is neither the user nor one of their orgs",
            q.method,
            found.as_ref().and_then(|f| f.owner).unwrap_or("?")
        ),
        (Verdict::Deny { .. }, _) => "the rule lets nobody here, or no grant in its allow list matches".to_string(),
        (Verdict::Allow, _) => "the user is admitted and the rule lets them pass".to_string(),
    };
    let _ = writeln!(out, "why:      {why}");
    out
}
