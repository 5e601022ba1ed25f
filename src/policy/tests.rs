use super::*;
use crate::config::{ConfigError, Settings};
use crate::runtime::load_str;

const BASE: &str = r#"
[github]
client_id = "id"
client_secret = "secret"
[session]
secrets = ["BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc="]
"#;

fn load(extra: &str) -> Result<Settings, ConfigError> {
    load_str(&format!("{BASE}\n{extra}"), "test.toml", &|_| None)
}

fn policy(extra: &str) -> Policy {
    match load(extra) {
        Ok(s) => from_config(&s.config).unwrap_or_else(|p| panic!("{p:?}")),
        Err(e) => panic!("{e}"),
    }
}

fn problems(extra: &str) -> String {
    match load(extra) {
        Ok(_) => panic!("config should be refused"),
        Err(e) => e.to_string(),
    }
}

fn user(login: &str, groups: &[&str]) -> Identity {
    let mut who = Identity::github("1", login);
    who.groups = groups.iter().map(|g| g.to_string()).collect();
    who
}

fn decide(p: &Policy, method: &str, path: &str, who: Option<&Identity>) -> Verdict {
    let method = Method::from_bytes(method.as_bytes()).unwrap();
    let target = Target {
        method: &method,
        host: Some("app.example.com"),
        path,
    };
    let found = p.rule_for(&target);
    p.judge(found.as_ref(), &method, who)
}

const HUB: &str = r#"
[access]
allowed_users = ["octocat", "monalisa", "mallory"]
allowed_orgs = ["databio"]
admin_users = ["octocat"]

[roles.editor]
teams = ["databio/core"]

[[rules]]
path = "/public/**"
policy = "public"

[[rules]]
path = "/admin/**"
allow = ["role:admin"]
hide = true

[[rules]]
path = "/vault/**"
policy = "deny"

[[rules]]
path = "/api/*/items"
methods = ["POST"]
allow = ["role:editor", "user:monalisa"]

[[rules]]
path = "/{owner}/**"
owner_methods = ["POST", "PUT", "PATCH", "DELETE"]
"#;

#[test]
fn first_matching_rule_decides() {
    let p = policy(HUB);
    let octo = user("octocat", &["databio"]);
    let mona = user("monalisa", &[]);
    let core = user("someone", &["databio", "databio/core"]);
    let outsider = user("eve", &[]);
    assert_eq!(decide(&p, "GET", "/public/x", None), Verdict::Public);
    assert_eq!(decide(&p, "GET", "/public", None), Verdict::Public);
    assert_eq!(decide(&p, "GET", "/admin", None), Verdict::Login);
    assert_eq!(decide(&p, "GET", "/admin/x", Some(&octo)), Verdict::Allow);
    assert_eq!(
        decide(&p, "GET", "/admin/x", Some(&mona)),
        Verdict::Deny { hide: true }
    );
    assert_eq!(
        decide(&p, "GET", "/vault/x", Some(&octo)),
        Verdict::Deny { hide: false }
    );
    assert_eq!(
        decide(&p, "GET", "/vault", None),
        Verdict::Deny { hide: false }
    );
    assert_eq!(
        decide(&p, "POST", "/api/v1/items", Some(&core)),
        Verdict::Allow
    );
    assert_eq!(
        decide(&p, "POST", "/api/v1/items", Some(&mona)),
        Verdict::Allow
    );
    // GET is not in the rule's methods: the owner rule (admitted users) decides.
    assert_eq!(
        decide(&p, "GET", "/api/v1/items", Some(&octo)),
        Verdict::Allow
    );
    assert_eq!(
        decide(&p, "GET", "/anything", Some(&outsider)),
        Verdict::Deny { hide: false }
    );
}

#[test]
fn owner_methods_need_the_owner() {
    let p = policy(HUB);
    let octo = user("octocat", &["databio"]);
    let mona = user("monalisa", &[]);
    assert_eq!(
        decide(&p, "POST", "/octocat/proj", Some(&octo)),
        Verdict::Allow
    );
    assert_eq!(
        decide(&p, "POST", "/OctoCat/proj", Some(&octo)),
        Verdict::Allow
    );
    assert_eq!(
        decide(&p, "DELETE", "/databio/proj", Some(&octo)),
        Verdict::Allow
    );
    assert_eq!(
        decide(&p, "POST", "/monalisa/proj", Some(&octo)),
        Verdict::Deny { hide: false }
    );
    assert_eq!(
        decide(&p, "PUT", "/databio/proj", Some(&mona)),
        Verdict::Deny { hide: false }
    );
    assert_eq!(
        decide(&p, "GET", "/databio/proj", Some(&mona)),
        Verdict::Allow
    );
    assert_eq!(decide(&p, "POST", "/databio/proj", None), Verdict::Login);
}

#[test]
fn roles_and_membership_plan() {
    let p = policy(HUB);
    assert_eq!(p.role_names(&user("octocat", &[])), ["viewer", "admin"]);
    assert_eq!(
        p.role_names(&user("x", &["databio/core"])),
        ["viewer", "editor"]
    );
    assert_eq!(p.membership.orgs, ["databio"]);
    assert_eq!(
        p.membership.teams,
        [("databio".to_string(), "core".to_string())]
    );
    assert!(p.membership.list_orgs, "owner rules need the user's orgs");
    assert!(!p.membership.list_teams);
}

#[test]
fn host_and_regex_rules() {
    let p = policy(
        r#"
[access]
allowed_users = ["octocat"]
[[rules]]
host = "*.example.com"
path = "/metrics"
policy = "deny"
[[rules]]
path_regex = "^/files/[0-9]+$"
policy = "public"
"#,
    );
    assert_eq!(
        decide(&p, "GET", "/metrics", None),
        Verdict::Deny { hide: false }
    );
    assert_eq!(decide(&p, "GET", "/FILES/12", None), Verdict::Public);
    assert_eq!(decide(&p, "GET", "/files/x", None), Verdict::Login);
    let method = Method::GET;
    let other_host = Target {
        method: &method,
        host: Some("example.org"),
        path: "/metrics",
    };
    assert!(p.rule_for(&other_host).is_none());
}

#[test]
fn case_sensitive_paths_can_be_asked_for() {
    let p = policy(
        r#"
[access]
allowed_users = ["octocat"]
case_sensitive_paths = true
[[rules]]
path = "/Public/**"
policy = "public"
"#,
    );
    assert_eq!(decide(&p, "GET", "/Public/x", None), Verdict::Public);
    assert_eq!(decide(&p, "GET", "/public/x", None), Verdict::Login);
}

#[test]
fn bad_rules_are_reported_with_their_number_and_fix() {
    let text = problems(
        r#"
[access]
allowed_users = ["octocat"]
[[rules]]
path = "/a/**b"
policy = "public"
[[rules]]
path = "/b"
allow = ["role:wizard"]
[[rules]]
path = "/c"
policy = "sometimes"
[[rules]]
path = "/d"
policy = "public"
allow = ["user:octocat"]
[[rules]]
path = "/e"
[[rules]]
path_regex = "(unclosed"
policy = "deny"
[[rules]]
path = "/f"
policy = "public"
owner_methods = ["POST"]
"#,
    );
    for expected in [
        "rules[0].path: rule #1",
        "rules[1].allow: rule #2",
        "role:wizard",
        "rules[2].policy: rule #3",
        "`sometimes` is not a policy",
        "rules[3].allow: rule #4",
        "both `policy` and `allow`",
        "rules[4].policy: rule #5",
        "rules[5].path_regex: rule #6",
        "rules[6].owner_methods: rule #7",
        "fix:",
    ] {
        assert!(text.contains(expected), "missing `{expected}` in:\n{text}");
    }
}

#[test]
fn read_org_is_requested_when_rules_name_orgs() {
    let s = load(
        r#"
[access]
allowed_users = ["octocat"]
[[rules]]
path = "/x"
allow = ["org:databio"]
"#,
    )
    .unwrap();
    let scopes = |s: Settings| {
        crate::runtime::Runtime::new(s)
            .unwrap()
            .github
            .scopes()
            .to_vec()
    };
    assert!(scopes(s).iter().any(|s| s == "read:org"));
    let s = load("[access]\nallowed_users = [\"octocat\"]").unwrap();
    assert!(!scopes(s).iter().any(|s| s == "read:org"));
}

#[test]
fn explain_names_the_deciding_rule() {
    let p = load(HUB).unwrap();
    let compiled = from_config(&p.config).unwrap();
    let q = explain::Question {
        user: Some("monalisa"),
        user_id: None,
        groups: vec![],
        method: Method::POST,
        host: None,
        path: "/admin/x",
    };
    let text = explain::explain(&p, &compiled, &q);
    assert!(text.contains("decision: hide 404"), "{text}");
    assert!(text.contains("rule #2"), "{text}");
    let q = explain::Question {
        user: None,
        path: "/public/../admin",
        method: Method::GET,
        ..q
    };
    let text = explain::explain(&p, &compiled, &q);
    assert!(text.contains("normalized to /admin"), "{text}");
    assert!(text.contains("decision: login"), "{text}");
}

#[test]
fn host_loses_its_port_and_case() {
    assert_eq!(host_name("App.Example.com:8443"), "app.example.com");
    assert_eq!(host_name("example.com"), "example.com");
    assert_eq!(host_name("[::1]:4180"), "[::1]");
    assert_eq!(host_name("[::1]"), "[::1]");
}
