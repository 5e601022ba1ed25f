//! The per-request policy decision at scale: 10,000 `[[rules]]` and 100,000 allowed users
//! (target: a median of at most 2 µs per decision).
//!
//! A "decide" iteration does what `auth::access::check` does for a request: normalize the path,
//! lower-case the host, find the deciding rule, ask whether an identity is needed, judge, and for
//! an allowed user compute the role names. The session cookie is not read (that cost belongs to
//! the session benchmarks); the identity is built once up front. Also measured: path
//! normalization alone, and loading (parsing and compiling) the whole config.
//!
//! Also: adversarial paths against rules with several `**` (`globstar/*`): 1.6 KB and 8 KB of
//! `/a/a/…` that no rule matches, which a backtracking matcher needs seconds or more for.
//!
//! Run it with:
//!
//! ```text
//! cargo bench --bench policy
//! cargo bench --bench policy -- --warm-up-time 1 --measurement-time 3   # quicker
//! ```

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a bench whose setup fails stops with the reason"
)]

use criterion::{criterion_group, criterion_main, Criterion};
use gatehouse::config::{load_str, Settings};
use gatehouse::identity::Identity;
use gatehouse::policy::{path, Policy, Target, Verdict};
use http::Method;
use std::borrow::Cow;
use std::fmt::Write;
use std::hint::black_box;

const RULES: usize = 10_000;
const USERS: usize = 100_000;
/// Rules at `i % REGEX_EVERY == REGEX_AT` are `path_regex` rules: 20 of them, spread out.
const REGEX_EVERY: usize = 500;
const REGEX_AT: usize = 137;
/// The `/{owner}/**` rule, near the end.
const OWNER_RULE: usize = 9_995;

/// The config text: 100,000 allowed users, a few roles, 10,000 rules of mixed kinds.
fn config_text() -> String {
    let mut t = String::with_capacity(8 << 20);
    t.push_str(
        r#"
[github]
client_id = "id"
client_secret = "secret"

[session]
secrets = ["BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc="]

[access]
admin_users = ["user00000", "user00001", "user00002", "user00003"]
"#,
    );
    t.push_str("allowed_users = [");
    for u in 0..USERS {
        write!(t, "\"user{u:05}\",").unwrap();
    }
    t.push_str("]\n\n[roles.editor]\nusers = [");
    // Every 7th user is an editor (user04242 among them).
    for u in (0..USERS).step_by(7) {
        write!(t, "\"user{u:05}\",").unwrap();
    }
    t.push_str("]\n\n[roles.ops]\norgs = [\"acme\"]\nteams = [\"acme/ops\"]\n\n");

    for i in 0..RULES {
        t.push_str("[[rules]]\n");
        if i == OWNER_RULE {
            // Writes under /{owner} are for that owner; reads fall through to the default.
            t.push_str(
                "path = \"/{owner}/**\"\n\
                 methods = [\"POST\", \"PUT\", \"PATCH\", \"DELETE\"]\n\
                 owner_methods = [\"POST\", \"PUT\", \"PATCH\", \"DELETE\"]\n\n",
            );
            continue;
        }
        if i % REGEX_EVERY == REGEX_AT {
            if (i / REGEX_EVERY) % 2 == 0 {
                writeln!(t, "path_regex = '^/rx{i}/[0-9]+/(detail|summary)$'").unwrap();
                t.push_str("allow = [\"role:ops\"]\n\n");
            } else {
                writeln!(
                    t,
                    "path_regex = '^/reports/{i}/(?P<year>[0-9]{{4}})/[^/]+\\.csv$'"
                )
                .unwrap();
                t.push_str("host = \"reports.example.com\"\npolicy = \"authenticated\"\n\n");
            }
            continue;
        }
        match i % 4 {
            0 => {
                writeln!(t, "path = \"/svc{i}/**\"").unwrap();
                writeln!(
                    t,
                    "allow = [\"role:editor\", \"user:user{:05}\"]",
                    i * 7 % USERS
                )
                .unwrap();
            }
            1 => {
                writeln!(t, "path = \"/api/{i}/*/items\"").unwrap();
                t.push_str("methods = [\"GET\", \"POST\"]\n");
                t.push_str("allow = [\"role:editor\", \"team:acme/ops\"]\n");
            }
            2 => {
                writeln!(t, "path = \"/pub{i}/**\"").unwrap();
                if i % 10 == 2 {
                    t.push_str("host = \"app.example.com\"\n");
                }
                t.push_str("policy = \"public\"\n");
            }
            _ => {
                writeln!(t, "path = \"/deny{i}/*.bak\"").unwrap();
                if i % 3 == 0 {
                    t.push_str("host = \"*.internal.example.com\"\n");
                }
                if i % 8 == 7 {
                    t.push_str("hide = true\n");
                }
                t.push_str("policy = \"deny\"\n");
            }
        }
        t.push('\n');
    }
    t
}

fn load(text: &str) -> Settings {
    match load_str(text, "bench.toml", &|_| None) {
        Ok(settings) => settings,
        Err(e) => panic!("the bench config is refused: {e}"),
    }
}

/// What a decision hands on: the verdict, the role names (allowed users) and the rewritten path.
type Decision = (Verdict, Vec<String>, Option<String>, Option<usize>);

/// One request, decided as `auth::access::check` decides it (identity already known).
fn decide(policy: &Policy, method: &Method, host: &str, raw: &str, who: &Identity) -> Decision {
    let normal = path::normalize(raw).expect("bench paths are valid");
    let host = host.to_ascii_lowercase();
    let target = Target {
        method,
        host: Some(&host),
        path: &normal.path,
    };
    let found = policy.rule_for(&target);
    let number = found.as_ref().map(|f| f.rule.number);
    if normal.ambiguous && !found.as_ref().is_some_and(|f| f.rule.allow_encoded_path) {
        return (Verdict::Deny { hide: false }, Vec::new(), None, number);
    }
    let normalized_path = match &normal.path {
        Cow::Owned(p) => Some(p.clone()),
        Cow::Borrowed(_) => None,
    };
    if !Policy::needs_identity(found.as_ref(), method) {
        let verdict = policy.judge(found.as_ref(), method, None);
        return (verdict, Vec::new(), normalized_path, number);
    }
    let verdict = policy.judge(found.as_ref(), method, Some(who));
    let roles = match verdict {
        Verdict::Allow | Verdict::Public => policy.role_names(who),
        _ => Vec::new(),
    };
    (verdict, roles, normalized_path, number)
}

struct Case {
    name: &'static str,
    method: Method,
    host: &'static str,
    path: String,
    /// 1-based rule number expected to decide, and the verdict.
    rule: Option<usize>,
    verdict: Verdict,
}

fn cases() -> Vec<Case> {
    let late = 9_989; // an `/api/{i}/*/items` rule
    assert_eq!(late % 4, 1);
    vec![
        Case {
            name: "decide/hit_early_rule",
            method: Method::GET,
            host: "app.example.com",
            path: "/svc8/dashboard/settings".into(),
            rule: Some(9),
            verdict: Verdict::Allow,
        },
        Case {
            name: "decide/hit_late_rule",
            method: Method::GET,
            host: "App.Example.com",
            path: format!("/api/{late}/v2/items"),
            rule: Some(late + 1),
            verdict: Verdict::Allow,
        },
        Case {
            name: "decide/default_no_rule",
            method: Method::GET,
            host: "app.example.com",
            path: "/nothing/matches/this/path".into(),
            rule: None,
            verdict: Verdict::Allow,
        },
        Case {
            name: "decide/owner_write",
            method: Method::POST,
            host: "app.example.com",
            path: "/user04242/project/issues".into(),
            rule: Some(OWNER_RULE + 1),
            verdict: Verdict::Allow,
        },
        Case {
            name: "decide/public",
            method: Method::GET,
            host: "app.example.com",
            path: "/pub6/assets/app.js".into(),
            rule: Some(7),
            verdict: Verdict::Public,
        },
    ]
}

fn person() -> Identity {
    let mut who = Identity::github("1", "user04242");
    who.groups = vec!["acme".into(), "acme/ops".into()];
    who
}

fn benches(c: &mut Criterion) {
    let text = config_text();
    let settings = load(&text);
    let policy =
        &gatehouse::policy::from_config(&settings.config).expect("the bench rules compile");
    assert_eq!(policy.rules.len(), RULES);
    let who = person();

    for case in cases() {
        let (verdict, roles, _, number) = decide(policy, &case.method, case.host, &case.path, &who);
        assert_eq!(
            (verdict, number),
            (case.verdict, case.rule),
            "{}: {} {} decided unexpectedly",
            case.name,
            case.method,
            case.path
        );
        if verdict == Verdict::Allow {
            assert_eq!(roles, ["viewer", "editor", "ops"], "{}", case.name);
        }
        c.bench_function(case.name, |b| {
            b.iter(|| {
                decide(
                    black_box(policy),
                    black_box(&case.method),
                    black_box(case.host),
                    black_box(&case.path),
                    black_box(&who),
                )
            })
        });
    }

    let clean = "/svc8/dashboard/settings";
    let dirty = "/a//b/../%61dmin";
    assert!(matches!(
        path::normalize(clean).unwrap().path,
        Cow::Borrowed(_)
    ));
    assert_eq!(path::normalize(dirty).unwrap().path, "/a/admin");
    c.bench_function("normalize/clean", |b| {
        b.iter(|| path::normalize(black_box(clean)))
    });
    c.bench_function("normalize/dirty", |b| {
        b.iter(|| path::normalize(black_box(dirty)))
    });

    let mut group = c.benchmark_group("compile");
    group.sample_size(10);
    group.bench_function("10k_rules_100k_users", |b| {
        b.iter(|| load(black_box(&text)))
    });
    group.finish();
}

/// Rules whose several `**` make a backtracking matcher try every way to split a long path.
const GLOBSTAR_RULES: &str = r#"
[github]
client_id = "id"
client_secret = "secret"

[session]
secrets = ["BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc="]

[access]
allowed_users = ["user04242"]

[[rules]]
path = "/**/a/**/a/**/z"
policy = "deny"

[[rules]]
path = "/**/x/**/y/**/z/**/w"
policy = "deny"

[[rules]]
path = "/static/**"
policy = "public"
"#;

fn globstar_benches(c: &mut Criterion) {
    let settings = load(GLOBSTAR_RULES);
    let policy =
        &gatehouse::policy::from_config(&settings.config).expect("the bench rules compile");
    let who = person();
    let miss = |bytes: usize| ("/a".repeat(bytes / 2), Verdict::Allow, None);
    let cases = [
        ("miss_1.6KB", miss(1_600)),
        ("miss_8KB", miss(8_000)),
        (
            "hit_1.6KB",
            (
                format!("{}/z", "/a".repeat(800)),
                Verdict::Deny { hide: false },
                Some(1),
            ),
        ),
    ];
    let mut group = c.benchmark_group("globstar");
    for (name, (path, verdict, rule)) in &cases {
        let get = Method::GET;
        let (got, _, _, number) = decide(policy, &get, "app.example.com", path, &who);
        assert_eq!((got, number), (*verdict, *rule), "{name}");
        group.bench_function(*name, |b| {
            b.iter(|| {
                decide(
                    black_box(policy),
                    black_box(&get),
                    black_box("app.example.com"),
                    black_box(path),
                    black_box(&who),
                )
            })
        });
    }
    group.finish();
}

criterion_group!(policy_benches, benches, globstar_benches);
criterion_main!(policy_benches);
