//! Differential tests: real app stacks behind the real gate, asked the same request.
//!
//! Flask/Werkzeug, Django, Express and nginx (apps in `tests/integration/differential/`) each
//! serve, routed the way that stack routes: a public route (`/public/…`), admin-only routes
//! (`/admin/…`, `/wiki/Special:Admin/…`, `/café/…`, `/c++/…`), an owner route (`/<owner>/notes`:
//! anyone admitted reads, only the owner writes), an admin virtual host (`admin.example.com`) and a
//! catch-all. Every handler names itself (`X-Handler`) and says what the app saw: method, path,
//! host, the cookies it parsed, the raw `Cookie` and `Authorization` headers and the identity
//! headers it reads. The gate in front of it has rules saying the same thing ([`RULES`]).
//!
//! About a thousand request variants per stack (method case, percent-escapes of every byte, dot,
//! slash and trailing-dot/space segments, host spellings, duplicate and folded headers, cookie
//! headers with non-ASCII neighbours, Gatehouse's cookies in odd shapes, tokens) go through the
//! gate as raw bytes, sent by monalisa (admitted, not an admin) or by an anonymous visitor. A
//! variant disagrees when:
//! - the app ran a handler the rules refuse to that sender ([`may_reach`] restates the rules), or
//! - the app received a Gatehouse credential: a cookie named as Gatehouse's (`_gatehouse`, its
//!   chunks `_gatehouse_N`, `_gatehouse_loop`, `_gatehouse_login_*`), or the value of the
//!   session, of an access token or of the GitHub token the gate accepts, anywhere in the bytes
//!   the app was sent (a recording relay sits between the gate and the app), or
//! - the app read an identity (`X-Forwarded-User`, `-Roles`, `-Groups`) other than the one the
//!   gate gives the sender.
//!
//! Every disagreement is listed (stack, class, raw request, gate status, handler, what the app
//! saw) and the test fails at the end if there is any; a summary line per stack gives the number
//! of variants per class (`cargo test --test integration differential:: -- --nocapture` shows it on
//! success). Before the run, requests sent straight to the app (past the gate) must be flagged, so
//! the oracle is known to see what it looks for; a few plain requests through the gate must reach
//! their handlers, so a harness that reaches nothing cannot pass.
//!
//! The stacks are installed by `.ci/run`, pinned: Flask, Werkzeug and Django in the CI venv
//! (`$GATEHOUSE_DIFF_PYTHON`, else `$GATEHOUSE_CI_VENV/bin/python`, else
//! `~/.cache/gatehouse-ci-venv/bin/python`); Express, cookie-parser and vhost from npm
//! (`$GATEHOUSE_DIFF_NODE_PATH`, else `~/.cache/gatehouse-ci-node/node_modules`) for the
//! machine's `node`; nginx from Debian (`/usr/sbin/nginx`). A missing stack is skipped with a
//! note, except under `CI=true`, where it fails.

use crate::common::python::{home_cache, in_ci, python_with};
use crate::common::{
    free_port, mock_pat, parse_raw, plain_client, raw_exchange, session_cookie, GateOptions,
    Harness, RawResponse, Recorder,
};

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The admitted, non-admin user every signed-in variant is sent as.
const LOGIN: &str = "monalisa";
const NGINX: &str = "/usr/sbin/nginx";
/// Time for one stack's variants; each stack must finish well under a minute.
const BUDGET: Duration = Duration::from_secs(45);
/// How long to wait for one answer.
const WAIT: Duration = Duration::from_secs(3);

/// The gate's rules for the apps; [`may_reach`] is the same policy, restated per handler.
const RULES: &str = r#"
admin_users = ["octocat"]

[[rules]]
host = "admin.example.com"
path = "/**"
allow = ["role:admin"]

[[rules]]
path = "/public/**"
policy = "public"

[[rules]]
path = "/admin/**"
allow = ["role:admin"]

[[rules]]
path = "/wiki/Special:Admin/**"
allow = ["role:admin"]

[[rules]]
path = "/café/**"
allow = ["role:admin"]

[[rules]]
path = "/c++/**"
allow = ["role:admin"]

[[rules]]
path = "/{owner}/**"
owner_methods = ["POST", "PUT", "PATCH", "DELETE"]

[[rules]]
path = "/**"
policy = "authenticated"

[tokens]
hmac_secret = "ZGlmZmVyZW50aWFsLXRlc3RzLWhtYWMtc2VjcmV0LTMyYg=="
accept_github_tokens = true
"#;

/// The stacks run one at a time: each is timed, and the machine is small.
static ONE_STACK_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flask_behind_the_gate() {
    differential(Stack::Flask).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn django_behind_the_gate() {
    differential(Stack::Django).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn express_behind_the_gate() {
    differential(Stack::Express).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_behind_the_gate() {
    differential(Stack::Nginx).await;
}

// ---- the run ------------------------------------------------------------------------------

async fn differential(stack: Stack) {
    let _one = ONE_STACK_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let Some(command) = available(stack, stack.command(port, dir.path())) else {
        return;
    };
    let app = App::start(stack, command, port, dir.path()).await;
    let recorder = Recorder::start(app.addr).await;
    let h = Harness::start(GateOptions {
        upstream: Some(recorder.addr),
        access_extra: RULES.into(),
        ..GateOptions::default()
    })
    .await;
    let creds = Creds::sign_in(&h).await;
    let mut run = Run {
        stack,
        gate: h.gate_addr,
        recorder: &recorder,
        creds: &creds,
        oracle: Oracle::default(),
    };
    run.oracle_sees_a_bypass(&app).await;
    run.oracle = run.controls().await;

    let started = Instant::now();
    let mut tally: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut failures = Vec::new();
    let (mut signed_in, mut anonymous) = (0, 0);
    for variant in variants() {
        if started.elapsed() > BUDGET {
            failures.push(format!(
                "[{}] stopped after {BUDGET:?}: the variants did not finish in time",
                stack.name()
            ));
            break;
        }
        let report = run.check(&variant).await;
        let counts = tally.entry(variant.class).or_default();
        counts.0 += 1;
        match variant.sender {
            Sender::User => signed_in += 1,
            Sender::Anonymous => anonymous += 1,
        }
        if let Some(report) = report {
            counts.1 += 1;
            failures.push(report);
        }
    }
    println!(
        "differential {}: {} variants ({signed_in} as {LOGIN}, {anonymous} anonymous) in {:.1} s, {} disagree",
        stack.name(),
        signed_in + anonymous,
        started.elapsed().as_secs_f64(),
        failures.len()
    );
    for (class, (sent, failed)) in &tally {
        println!("  {class}: {sent} sent, {failed} disagree");
    }
    assert!(
        failures.is_empty(),
        "{} of {} variants: the {} app did what the gate should have refused, or got a Gatehouse \
         credential ({{S}}: {LOGIN}'s session cookie, {{S0}}/{{S1}} its halves, {{A}}: an access \
         token, {{G}}: the GitHub token):\n\n{}\n",
        failures.len(),
        signed_in + anonymous,
        stack.name(),
        failures.join("\n\n")
    );
}

/// One stack's run: where to send, what the app was sent, and the oracle.
struct Run<'a> {
    stack: Stack,
    gate: SocketAddr,
    recorder: &'a Recorder,
    creds: &'a Creds,
    oracle: Oracle,
}

impl Run<'_> {
    /// Send `variant` through the gate; a readable report when the app disagrees with it.
    async fn check(&self, variant: &Variant) -> Option<String> {
        let (response, upstream) = self.exchange(self.gate, variant).await;
        let seen = Seen::from_response(self.stack, &response);
        let problems = self
            .oracle
            .judge(variant.sender, &seen, &upstream, self.creds);
        (!problems.is_empty()).then(|| self.report(variant, &response, &seen, &problems))
    }

    /// Send `variant` to `to` (the gate, or the relay in front of the app); the answer and the
    /// bytes the app was sent meanwhile.
    async fn exchange(&self, to: SocketAddr, variant: &Variant) -> (RawResponse, Vec<u8>) {
        self.recorder.clear();
        let raw = raw_exchange(to, &variant.render(to, self.creds), WAIT).await;
        let response = parse_raw(&raw);
        // The relay logs a request just after passing it on: when the app answered, wait until
        // the request is in the log.
        let deadline = Instant::now() + Duration::from_secs(1);
        let mut sent = self.recorder.sent_bytes().concat();
        while sent.is_empty() && response.header("x-handler").is_some() && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(2)).await;
            sent = self.recorder.sent_bytes().concat();
        }
        (response, sent)
    }

    fn report(
        &self,
        variant: &Variant,
        response: &RawResponse,
        seen: &Seen,
        problems: &[String],
    ) -> String {
        let redact = |s: &str| self.creds.redact(s);
        let sender = match variant.sender {
            Sender::User => LOGIN,
            Sender::Anonymous => "anonymous",
        };
        let mut out = format!(
            "[{}] {} as {sender}: {}\n    gate answered {}; ",
            self.stack.name(),
            variant.class,
            redact(&variant.display()),
            response.status
        );
        match &seen.handler {
            Some(handler) => out.push_str(&redact(&format!(
                "the app ran `{handler}` and saw {} {:?} host {:?} owner {:?}, cookies {:?}, \
                 Cookie {:?}, Authorization {:?}, user {:?} roles {:?} groups {:?}",
                seen.method.as_deref().unwrap_or("?"),
                seen.path.as_deref().unwrap_or("?"),
                seen.host.as_deref().unwrap_or("?"),
                seen.owner,
                seen.cookies,
                seen.cookie_headers,
                seen.authorization,
                seen.user,
                seen.roles,
                seen.groups
            ))),
            None => out.push_str("no handler ran"),
        }
        for problem in problems {
            out.push_str("\n    - ");
            out.push_str(&redact(problem));
        }
        out
    }

    /// Sent straight to the app, past the gate, a request for an admin page with the session
    /// cookie, an access token and a forged identity must be flagged on every count: the
    /// oracle reads this stack's answers and would see a disagreement.
    async fn oracle_sees_a_bypass(&self, app: &App) {
        let variant = req("bypass", Sender::User, "GET", "/admin/x")
            .credentials(&[b"Cookie: a=1; _gatehouse={S}", b"Authorization: Bearer {A}"])
            .header(b"X-Forwarded-User: octocat");
        let (response, upstream) = self.exchange(self.recorder.addr, &variant).await;
        let seen = Seen::from_response(self.stack, &response);
        let oracle = Oracle {
            owners: vec![LOGIN.into()],
            ..Oracle::default()
        };
        let problems = oracle.judge(Sender::User, &seen, &upstream, self.creds);
        let found = |what: &str| problems.iter().any(|p| p.contains(what));
        assert!(
            found("ran `admin`")
                && found("parsed the cookie `_gatehouse`")
                && found("the session cookie's value")
                && found("an access token")
                && found("read the identity"),
            "{}: the oracle missed a request sent past the gate (app log {}):\n{}",
            self.stack.name(),
            app.log.display(),
            self.report(&variant, &response, &seen, &problems)
        );
    }

    /// Plain requests reach their handlers through the gate, and the app reads the identity the
    /// gate gives `LOGIN`: the oracle's owners, roles and groups come from here.
    async fn controls(&self) -> Oracle {
        let expect = |variant: Variant, handler: &'static str| async move {
            let (response, _) = self.exchange(self.gate, &variant).await;
            let seen = Seen::from_response(self.stack, &response);
            assert_eq!(
                seen.handler.as_deref(),
                Some(handler),
                "{}: a plain request should reach `{handler}`: {}, answered {} {}",
                self.stack.name(),
                self.creds.redact(&variant.display()),
                response.status,
                response.body
            );
            seen
        };
        expect(
            req("control", Sender::Anonymous, "GET", "/public/x"),
            "public",
        )
        .await;
        let me = expect(req("control", Sender::User, "GET", "/x"), "catchall").await;
        assert_eq!(
            me.user.as_deref(),
            Some(LOGIN),
            "{}: identity",
            self.stack.name()
        );
        let groups = me.groups.clone();
        let orgs = groups.iter().flat_map(|g| g.split(',')).map(str::trim);
        let mut owners: Vec<String> = orgs
            .filter(|g| !g.is_empty() && !g.contains('/'))
            .map(String::from)
            .collect();
        owners.push(LOGIN.into());
        expect(
            req("control", Sender::User, "GET", "/monalisa/notes"),
            "owner_read",
        )
        .await;
        expect(
            req("control", Sender::User, "POST", "/monalisa/notes"),
            "owner_write",
        )
        .await;
        for org in owners.iter().filter(|o| *o != LOGIN) {
            let path = format!("/{org}/notes");
            expect(req("control", Sender::User, "PUT", path), "owner_write").await;
        }
        Oracle {
            owners,
            roles: me.roles,
            groups,
        }
    }
}

// ---- the oracle ---------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Sender {
    /// `LOGIN`, by any credential the variant carries (a mangled one included).
    User,
    /// No credential of anyone.
    Anonymous,
}

/// What the rules let each sender reach, and the identity the gate gives `LOGIN`.
#[derive(Default)]
struct Oracle {
    /// Whose notes `LOGIN` may write: the login and its orgs (compared ignoring ASCII case).
    owners: Vec<String>,
    roles: Option<String>,
    groups: Option<String>,
}

/// Whether [`RULES`] let `sender` reach `handler` (for `owner_write`, on the notes of
/// `owner` as the app read it).
fn may_reach(handler: &str, owner: Option<&str>, sender: Sender, owners: &[String]) -> bool {
    match (sender, handler) {
        (_, "public") => true,
        (Sender::Anonymous, _) => false,
        (Sender::User, "owner_read" | "catchall") => true,
        (Sender::User, "owner_write") => {
            owner.is_some_and(|o| owners.iter().any(|mine| mine.eq_ignore_ascii_case(o)))
        }
        // admin, wiki_admin, cafe_admin, plus_admin, admin_vhost, and anything unknown.
        _ => false,
    }
}

/// Gatehouse's own cookie names (default `session.cookie_name`): the session, its chunks, the
/// redirect-loop guard and the sign-in state. Quotes and blanks around a name are ignored, as
/// lax parsers do.
fn is_gatehouse_cookie(name: &str) -> bool {
    let name = name.trim_matches(|c: char| c.is_ascii_whitespace() || c == '"');
    let Some(rest) = name.strip_prefix("_gatehouse") else {
        return false;
    };
    match rest.strip_prefix('_') {
        None => rest.is_empty(),
        Some(suffix) => {
            suffix == "loop"
                || suffix.starts_with("login")
                || (!suffix.is_empty() && suffix.bytes().all(|b| b.is_ascii_digit()))
        }
    }
}

impl Oracle {
    /// Every way this exchange breaks the gate's promise.
    fn judge(&self, sender: Sender, seen: &Seen, upstream: &[u8], creds: &Creds) -> Vec<String> {
        let mut problems = Vec::new();
        if let Some(handler) = &seen.handler {
            if !may_reach(handler, seen.owner.as_deref(), sender, &self.owners) {
                let whose = match (handler.as_str(), &seen.owner) {
                    ("owner_write", Some(owner)) => format!(" for owner {owner:?}"),
                    _ => String::new(),
                };
                let who = match sender {
                    Sender::User => LOGIN,
                    Sender::Anonymous => "an anonymous visitor",
                };
                problems.push(format!(
                    "the app ran `{handler}`{whose}, which the rules refuse to {who}"
                ));
            }
            for (name, _) in &seen.cookies {
                if is_gatehouse_cookie(name) {
                    problems.push(format!("the app parsed the cookie `{name}`"));
                }
            }
            self.judge_identity(sender, seen, &mut problems);
        }
        for name in cookie_names_sent(upstream) {
            if is_gatehouse_cookie(&name) {
                problems.push(format!("the app was sent the cookie `{name}`"));
            }
        }
        for (what, secret) in creds.secrets() {
            if contains(upstream, secret.as_bytes()) {
                problems.push(format!("the app was sent {what}"));
            }
        }
        problems.dedup();
        problems
    }

    /// The identity the app reads is the one the gate gives the sender, or none.
    fn judge_identity(&self, sender: Sender, seen: &Seen, problems: &mut Vec<String>) {
        let given = |header: &str, value: &Option<String>, gate_gives: Option<&str>| {
            let ok = match (sender, value) {
                (_, None) => true,
                (Sender::Anonymous, Some(_)) => false,
                (Sender::User, Some(v)) => Some(v.as_str()) == gate_gives,
            };
            (!ok).then(|| format!("the app read the identity {header}: {value:?}"))
        };
        problems.extend(given("X-Forwarded-User", &seen.user, Some(LOGIN)));
        problems.extend(given(
            "X-Forwarded-Roles",
            &seen.roles,
            self.roles.as_deref(),
        ));
        problems.extend(given(
            "X-Forwarded-Groups",
            &seen.groups,
            self.groups.as_deref(),
        ));
    }
}

/// Names of the cookies in every `Cookie` line of the request bytes the app was sent (folded
/// lines joined), split on `;` and `,` as the laxest parsers split.
fn cookie_names_sent(upstream: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(upstream);
    let mut lines: Vec<String> = Vec::new();
    for line in text.split("\r\n") {
        match (line.starts_with([' ', '\t']), lines.last_mut()) {
            (true, Some(last)) => last.push_str(line),
            _ => lines.push(line.to_string()),
        }
    }
    lines
        .iter()
        .filter_map(|l| l.split_once(':'))
        .filter(|(name, _)| name.trim().eq_ignore_ascii_case("cookie"))
        .flat_map(|(_, value)| {
            value
                .split([';', ','])
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .map(|pair| pair.split('=').next().unwrap_or("").trim().to_string())
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

// ---- what the app saw ---------------------------------------------------------------------

/// What a handler reported; `handler` is `None` when no handler ran (the gate answered, or
/// the stack refused the request before routing it).
#[derive(Default, Debug)]
struct Seen {
    handler: Option<String>,
    method: Option<String>,
    path: Option<String>,
    host: Option<String>,
    owner: Option<String>,
    cookies: Vec<(String, String)>,
    cookie_headers: Vec<String>,
    authorization: Vec<String>,
    user: Option<String>,
    roles: Option<String>,
    groups: Option<String>,
}

impl Seen {
    fn from_response(stack: Stack, response: &RawResponse) -> Seen {
        let Some(handler) = response.header("x-handler") else {
            return Seen::default();
        };
        let mut seen = match stack {
            Stack::Nginx => Seen::from_nginx_headers(response),
            _ => Seen::from_json(&response.body),
        };
        seen.handler = Some(handler.to_string());
        seen
    }

    /// The JSON the Python and Node apps answer (none for `HEAD`).
    fn from_json(body: &str) -> Seen {
        let json: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
        let text = |key: &str| json[key].as_str().map(String::from);
        let texts = |key: &str| -> Vec<String> {
            json[key]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default()
        };
        let cookies = json["cookies"]
            .as_array()
            .map(|pairs| {
                pairs
                    .iter()
                    .map(|p| {
                        let part = |i: usize| p[i].as_str().unwrap_or("").to_string();
                        (part(0), part(1))
                    })
                    .collect()
            })
            .unwrap_or_default();
        Seen {
            handler: None,
            method: text("method"),
            path: text("path"),
            host: text("host"),
            owner: text("owner"),
            cookies,
            cookie_headers: texts("cookie_headers"),
            authorization: texts("authorization"),
            user: text("user"),
            roles: text("roles"),
            groups: text("groups"),
        }
    }

    /// nginx says what it saw in `X-Seen-*` headers; it has no list of parsed cookies, so the
    /// pairs are `$http_cookie` split on `;` as `$cookie_NAME` reads them.
    fn from_nginx_headers(response: &RawResponse) -> Seen {
        let header = |name: &str| response.header(name).map(String::from);
        let cookie = header("x-seen-cookie");
        let cookies = cookie
            .iter()
            .flat_map(|c| c.split(';'))
            .map(|pair| {
                let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                (name.trim().to_string(), value.trim().to_string())
            })
            .collect();
        Seen {
            handler: None,
            method: header("x-seen-method"),
            path: header("x-seen-path"),
            host: header("x-seen-host"),
            owner: header("x-seen-owner"),
            cookies,
            cookie_headers: cookie.into_iter().collect(),
            authorization: header("x-seen-authorization").into_iter().collect(),
            user: header("x-seen-user"),
            roles: header("x-seen-roles"),
            groups: header("x-seen-groups"),
        }
    }
}

// ---- credentials --------------------------------------------------------------------------

/// `LOGIN`'s credentials, from a GitHub personal access token the gate accepted.
struct Creds {
    /// The `_gatehouse` cookie's value.
    session: String,
    /// A Gatehouse access token (a bearer JWT).
    access: String,
    /// The GitHub token itself (the gate accepts GitHub tokens as bearer credentials).
    github: String,
}

impl Creds {
    async fn sign_in(h: &Harness) -> Creds {
        let github = mock_pat(h, LOGIN).await;
        let r = plain_client()
            .post(h.url("/oauth2/pat"))
            .json(&serde_json::json!({ "token": github }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "PAT sign-in for {LOGIN}");
        let session = session_cookie(&r);
        let pair: serde_json::Value = r.json().await.unwrap();
        let access = pair["access_token"].as_str().unwrap().to_string();
        Creds {
            session,
            access,
            github,
        }
    }

    /// The session split in two, as the gate splits a large cookie into `_gatehouse_0`, `_1`.
    fn session_halves(&self) -> (&str, &str) {
        self.session.split_at(self.session.len() / 2)
    }

    /// Values that must never reach the app, and how a report names them. The session is
    /// looked for by halves, so a chunked or re-joined copy is found too.
    fn secrets(&self) -> [(&'static str, &str); 4] {
        let (first, second) = self.session_halves();
        [
            ("the session cookie's value", first),
            ("the session cookie's value", second),
            ("an access token", &self.access),
            ("the GitHub token", &self.github),
        ]
    }

    /// `template` with `{S}` (session), `{S0}`/`{S1}` (its halves), `{A}` (access token) and
    /// `{G}` (GitHub token) filled in.
    fn fill(&self, template: &[u8]) -> Vec<u8> {
        let (first, second) = self.session_halves();
        let mut out = template.to_vec();
        for (mark, value) in [
            ("{S0}", first),
            ("{S1}", second),
            ("{S}", self.session.as_str()),
            ("{A}", self.access.as_str()),
            ("{G}", self.github.as_str()),
        ] {
            out = replace_all(&out, mark.as_bytes(), value.as_bytes());
        }
        out
    }

    /// `text` with the credentials named instead of spelled out.
    fn redact(&self, text: &str) -> String {
        let (first, second) = self.session_halves();
        text.replace(&self.session, "<session>")
            .replace(first, "<session-part-0>")
            .replace(second, "<session-part-1>")
            .replace(&self.access, "<access-token>")
            .replace(&self.github, "<github-token>")
    }
}

fn replace_all(haystack: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut i = 0;
    while i < haystack.len() {
        if haystack[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(haystack[i]);
            i += 1;
        }
    }
    out
}

// ---- variants -----------------------------------------------------------------------------

/// One request, byte for byte, and who sends it.
#[derive(Clone)]
struct Variant {
    class: &'static str,
    sender: Sender,
    method: Vec<u8>,
    target: Vec<u8>,
    /// `Host` lines; empty: `Host: <where it is sent>`.
    hosts: Vec<Vec<u8>>,
    /// `Cookie`/`Authorization` lines with `{S}`-style marks (see [`Creds::fill`]); `None`:
    /// the sender's own (`LOGIN`'s session cookie, or nothing).
    credentials: Option<Vec<Vec<u8>>>,
    extra: Vec<Vec<u8>>,
}

fn req(
    class: &'static str,
    sender: Sender,
    method: impl AsRef<[u8]>,
    target: impl AsRef<[u8]>,
) -> Variant {
    Variant {
        class,
        sender,
        method: method.as_ref().to_vec(),
        target: target.as_ref().to_vec(),
        hosts: Vec::new(),
        credentials: None,
        extra: Vec::new(),
    }
}

impl Variant {
    fn hosts(mut self, lines: &[&[u8]]) -> Variant {
        self.hosts = lines.iter().map(|l| l.to_vec()).collect();
        self
    }

    /// Send these credential lines instead; the sender is `LOGIN` when any carries one of
    /// `LOGIN`'s credentials, else anonymous.
    fn credentials(mut self, lines: &[&[u8]]) -> Variant {
        self.sender = if lines
            .iter()
            .any(|l| contains(l, b"{S") || contains(l, b"{A}") || contains(l, b"{G}"))
        {
            Sender::User
        } else {
            Sender::Anonymous
        };
        self.credentials = Some(lines.iter().map(|l| l.to_vec()).collect());
        self
    }

    fn header(mut self, line: &[u8]) -> Variant {
        self.extra.push(line.to_vec());
        self
    }

    fn is_write(&self) -> bool {
        ["POST", "PUT", "PATCH", "DELETE"]
            .iter()
            .any(|m| self.method.eq_ignore_ascii_case(m.as_bytes()))
    }

    /// The header lines that make this variant what it is (marks not filled in).
    fn own_lines(&self) -> Vec<Vec<u8>> {
        let credentials = match (&self.credentials, self.sender) {
            (Some(lines), _) => lines.clone(),
            (None, Sender::User) => vec![b"Cookie: _gatehouse={S}".to_vec()],
            (None, Sender::Anonymous) => Vec::new(),
        };
        self.hosts
            .iter()
            .chain(&credentials)
            .chain(&self.extra)
            .cloned()
            .collect()
    }

    fn render(&self, to: SocketAddr, creds: &Creds) -> Vec<u8> {
        let mut out = [&self.method[..], b" ", &self.target, b" HTTP/1.1\r\n"].concat();
        if self.hosts.is_empty() {
            out.extend_from_slice(format!("Host: {to}\r\n").as_bytes());
        }
        out.extend_from_slice(b"Accept: application/json\r\nConnection: close\r\n");
        if self.is_write() {
            out.extend_from_slice(b"Content-Length: 0\r\n");
        }
        for line in self.own_lines() {
            out.extend_from_slice(&creds.fill(&line));
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out
    }

    /// `METHOD target | header | …`, bytes outside printable ASCII as `\xNN`.
    fn display(&self) -> String {
        let mut out = format!("{} {}", escape(&self.method), escape(&self.target));
        for line in self.own_lines() {
            out.push_str(" | ");
            out.push_str(&escape(&line));
        }
        out
    }
}

fn escape(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| match b {
            b'\r' => "\\r".to_string(),
            b'\n' => "\\n".to_string(),
            0x20..=0x7e => (b as char).to_string(),
            _ => format!("\\x{b:02x}"),
        })
        .collect()
}

/// Every variant, class by class, each sent once.
fn variants() -> Vec<Variant> {
    let mut sent = BTreeSet::new();
    [
        percent_escapes(),
        method_case(),
        dot_and_slash_segments(),
        host_spellings(),
        identity_headers(),
        cookie_shapes(),
        bearer_credentials(),
    ]
    .concat()
    .into_iter()
    .filter(|v| sent.insert((v.sender, v.display())))
    .collect()
}

/// Paths the rules guard, each character (but `/`; and each byte of a multi-byte one) spelled
/// as `%XX`, `%xx` and `%25XX` (double), and every byte escaped at once.
const ESCAPED_PATHS: &[(&str, &str)] = &[
    ("GET", "/admin/x"),
    ("GET", "/admin"),
    ("GET", "/wiki/Special:Admin/x"),
    ("GET", "/café/x"),
    ("GET", "/c++/x"),
    ("POST", "/octocat/notes"),
];

/// More spellings: UTF-8 escapes against literal UTF-8, Latin-1, decomposed accents, `+`,
/// the ambiguous escapes, and deeper encodings.
const ESCAPED_EXTRA: &[(&str, &[u8])] = &[
    ("GET", b"/caf%C3%A9/x"),
    ("GET", b"/caf%c3%a9/x"),
    ("GET", b"/caf%E9/x"),
    ("GET", b"/caf%e9/x"),
    ("GET", b"/cafe%CC%81/x"),
    ("GET", b"/CAF%C3%89/x"),
    ("GET", b"/caf\xc3\xa9/x"),
    ("GET", b"/caf\xe9/x"),
    ("GET", b"/caf%C3%A9%2Fx"),
    ("GET", b"/c%2B%2B/x"),
    ("GET", b"/c%2b+/x"),
    ("GET", b"/c+%2B/x"),
    ("GET", b"/c%20%20/x"),
    ("GET", b"/wiki/Special%3AAdmin/x"),
    ("GET", b"/wiki/Special%3aAdmin/x"),
    ("GET", b"/wiki/Special%253AAdmin/x"),
    ("GET", b"/wiki/Special%25253AAdmin/x"),
    ("GET", b"/wiki%2FSpecial:Admin/x"),
    ("GET", b"/wiki%2fSpecial%3AAdmin/x"),
    ("GET", b"/wiki/Special:Admin%2Fx"),
    ("GET", b"/wiki/Special\xef\xbc\x9aAdmin/x"),
    ("GET", b"/wiki/Special%EF%BC%9AAdmin/x"),
    ("GET", b"/%2561dmin/x"),
    ("GET", b"/%252561dmin/x"),
    ("GET", b"/%u0061dmin/x"),
    ("GET", b"/%C1%A1dmin/x"),
    ("GET", b"/%E0%81%A1dmin/x"),
    ("GET", b"/admin%2Fx"),
    ("GET", b"/admin%2fx"),
    ("GET", b"/admin%5Cx"),
    ("GET", b"/admin%5cx"),
    ("GET", b"/admin%00/x"),
    ("GET", b"/admin/x%00"),
    ("GET", b"/admin%25/x"),
    ("GET", b"/admin%/x"),
    ("GET", b"/admin%2/x"),
    ("GET", b"/admin%zz/x"),
    ("POST", b"/octocat%2Fnotes"),
    ("POST", b"/octocat/notes%00"),
    ("POST", b"/octocat%00/notes"),
    ("POST", b"/octocat%25/notes"),
    ("POST", b"/%6Fctocat/notes"),
    ("POST", b"/OCTOCAT/notes"),
    ("POST", b"/octocat/%6Eotes"),
    ("POST", b"/octocat/notes%2F"),
    ("POST", b"/octocat/notes%3Bx"),
];

fn percent_escapes() -> Vec<Variant> {
    let mut out = Vec::new();
    let spellings: [fn(u8) -> String; 3] = [
        |b| format!("%{b:02X}"),
        |b| format!("%{b:02x}"),
        |b| format!("%25{b:02X}"),
    ];
    let escape_with = |bytes: &[u8], spell: fn(u8) -> String| -> Vec<u8> {
        bytes.iter().flat_map(|&b| spell(b).into_bytes()).collect()
    };
    for (method, path) in ESCAPED_PATHS {
        let bytes = path.as_bytes();
        let mut targets = BTreeSet::new();
        for (at, c) in path.char_indices().filter(|(_, c)| *c != '/') {
            // The whole character, and each byte of a multi-byte one alone (the rest raw).
            let end = at + c.len_utf8();
            let bytes_alone = (at..end).filter(|_| c.len_utf8() > 1).map(|i| i..i + 1);
            let spans = std::iter::once(at..end).chain(bytes_alone);
            for span in spans {
                for spell in spellings {
                    let escaped = escape_with(&bytes[span.clone()], spell);
                    targets.insert([&bytes[..span.start], &escaped, &bytes[span.end..]].concat());
                }
            }
        }
        // Every byte but the slashes.
        for spell in &spellings[..2] {
            let all = path
                .split('/')
                .map(|segment| escape_with(segment.as_bytes(), *spell));
            targets.insert(all.collect::<Vec<_>>().join(&b'/'));
        }
        for target in targets {
            out.push(req("percent-escape", Sender::User, method, target));
        }
    }
    for (method, target) in ESCAPED_EXTRA {
        for sender in [Sender::User, Sender::Anonymous] {
            out.push(req("percent-escape", sender, method, target));
        }
    }
    out
}

/// Standard methods in every case, on someone else's notes (a write is the owner's only).
const METHODS: &[&str] = &[
    "post", "Post", "pOST", "POST", "put", "Put", "PUT", "patch", "Patch", "PATCH", "delete",
    "Delete", "DELETE", "get", "Get", "GET", "head", "HEAD", "options", "OPTIONS",
];

fn method_case() -> Vec<Variant> {
    let mut out = Vec::new();
    let others = [
        "/octocat/notes",
        "/OctoCat/notes",
        "/octocat/notes/",
        "/octocat/Notes",
        "/%6Fctocat/notes",
    ];
    // Own notes and an org's: writes are allowed there, so these show the oracle allows them.
    let own = ["/monalisa/notes", "/databio/notes"];
    for method in METHODS {
        for path in others.iter().chain(&own) {
            out.push(req("method-case", Sender::User, method, path));
        }
        out.push(req(
            "method-case",
            Sender::Anonymous,
            method,
            "/monalisa/notes",
        ));
        out.push(req("method-case", Sender::User, method, "/admin/x"));
    }
    out
}

/// Dot, slash, backslash, `;` and trailing-dot/space segments around guarded paths.
const SEGMENTS: &[(&str, &[u8])] = &[
    ("GET", b"/admin./x"),
    ("GET", b"/admin../x"),
    ("GET", b"/admin.../x"),
    ("GET", b"/admin%2e/x"),
    ("GET", b"/admin%2E/x"),
    ("GET", b"/admin%20/x"),
    ("GET", b"/admin%20%20/x"),
    ("GET", b"/admin.%20/x"),
    ("GET", b"/admin%20./x"),
    ("GET", b"/admin%09/x"),
    ("GET", b"/admin%0A/x"),
    ("GET", b"/admin%0d/x"),
    ("GET", b"/admin%0b/x"),
    ("GET", b"/admin%c2%a0/x"),
    ("GET", b"/admin /x"),
    ("GET", b"/admin\t/x"),
    ("GET", b"/admin;x/y"),
    ("GET", b"/admin;/x"),
    ("GET", b"/admin/;/x"),
    ("GET", b"/;/admin/x"),
    ("GET", b"/admin;jsessionid=1/x"),
    ("GET", b"/admin\\x"),
    ("GET", b"\\admin\\x"),
    ("GET", b"/admin\\"),
    ("GET", b"/public/../admin/x"),
    ("GET", b"/public/%2e%2e/admin/x"),
    ("GET", b"/public/%2E%2E/admin/x"),
    ("GET", b"/public/.%2e/admin/x"),
    ("GET", b"/public/%2e./admin/x"),
    ("GET", b"/public/..%2fadmin/x"),
    ("GET", b"/public/..%2Fadmin/x"),
    ("GET", b"/public/..%5cadmin/x"),
    ("GET", b"/public/..\\admin/x"),
    ("GET", b"/public%2f..%2fadmin/x"),
    ("GET", b"/public/%252e%252e/admin/x"),
    ("GET", b"/public/..;/admin/x"),
    ("GET", b"/public/x/../../admin/x"),
    ("GET", b"/public/./../admin/x"),
    ("GET", b"/public/.../admin/x"),
    ("GET", b"/public/..%00/admin/x"),
    ("GET", b"/public/..%c0%af/admin/x"),
    ("GET", b"/public/..%ef%bc%8fadmin/x"),
    ("GET", b"//admin/x"),
    ("GET", b"///admin/x"),
    ("GET", b"/./admin/x"),
    ("GET", b"/admin/./x"),
    ("GET", b"/x/../admin/x"),
    ("GET", b"/admin/x/.."),
    ("GET", b"/%2e/admin/x"),
    ("GET", b"/%2e%2e/admin/x"),
    ("GET", b"/../admin/x"),
    ("GET", b"/admin?/x"),
    ("GET", b"/admin#/x"),
    ("GET", b"/ADMIN/x"),
    ("GET", b"/Admin/x"),
    ("GET", b"admin/x"),
    ("GET", b"*"),
    ("GET", b"http://127.0.0.1/admin/x"),
    ("GET", b"/wiki/Special:Admin./x"),
    ("GET", b"/wiki/Special:Admin%20/x"),
    ("GET", b"/wiki/Special:Admin;x/y"),
    ("GET", b"/wiki//Special:Admin/x"),
    ("GET", b"/wiki/./Special:Admin/x"),
    ("GET", b"/wiki/x/../Special:Admin/x"),
    ("GET", b"/wiki/special:admin/x"),
    ("GET", b"/wiki/Special:ADMIN/x"),
    ("GET", b"/public/../wiki/Special:Admin/x"),
    ("GET", b"/public/..%2fwiki/Special:Admin/x"),
    ("GET", b"/caf\xc3\xa9./x"),
    ("GET", b"/caf%C3%A9%20/x"),
    ("GET", b"/c++./x"),
    ("GET", b"/c++%20/x"),
    ("POST", b"/octocat./notes"),
    ("POST", b"/octocat%20/notes"),
    ("POST", b"/octocat%2e/notes"),
    ("POST", b"/octocat/notes;x"),
    ("POST", b"/octocat;x/notes"),
    ("POST", b"/octocat/./notes"),
    ("POST", b"/octocat//notes"),
    ("POST", b"//octocat/notes"),
    ("POST", b"/x/../octocat/notes"),
    ("POST", b"/public/../octocat/notes"),
    ("POST", b"/monalisa/../octocat/notes"),
    ("POST", b"/monalisa/..%2foctocat/notes"),
    ("POST", b"/monalisa%2f..%2foctocat/notes"),
    ("POST", b"/octocat/notes/."),
    ("POST", b"/octocat/notes/x/.."),
    ("POST", b"/octocat\\notes"),
];

fn dot_and_slash_segments() -> Vec<Variant> {
    let mut out = Vec::new();
    for (method, target) in SEGMENTS {
        for sender in [Sender::User, Sender::Anonymous] {
            out.push(req("dot-slash-segment", sender, method, target));
        }
    }
    out
}

/// Spellings of the admin host: case, trailing dots, ports, blanks and junk.
const ADMIN_HOSTS: &[&[u8]] = &[
    b"admin.example.com",
    b"ADMIN.EXAMPLE.COM",
    b"Admin.Example.Com",
    b"admin.example.com.",
    b"ADMIN.example.com.",
    b"admin.example.com..",
    b"admin.example.com:",
    b"admin.example.com:80",
    b"admin.example.com:8080",
    b"admin.example.com:0080",
    b"admin.example.com:443",
    b"admin.example.com:65536",
    b"admin.example.com.:80",
    b"admin.example.com.:",
    b"admin.example.com:80.",
    b"admin.example.com.:80.",
    b"ADMIN.EXAMPLE.COM.:8080",
    b"admin.example.com:80:80",
    b" admin.example.com",
    b"admin.example.com ",
    b"admin.example.com\t",
    b"admin.example.com\xc2\xa0",
    b"admin%2eexample.com",
    b"admin.example.com%2e",
    b"admin.example.com/",
    b"admin.example.com/x",
    b"x@admin.example.com",
    b"admin.example.com@127.0.0.1",
    b"[admin.example.com]",
    b"admin.example.com;x",
    b"admin.example.com,127.0.0.1",
    b"127.0.0.1,admin.example.com",
    b"admin\xe3\x80\x82example.com",
    b"xn--admin.example.com",
];

/// Several `Host` lines, and the other headers some stacks take a host from.
const HOST_LINES: &[&[&[u8]]] = &[
    &[b"Host: 127.0.0.1", b"Host: admin.example.com"],
    &[b"Host: admin.example.com", b"Host: 127.0.0.1"],
    &[b"Host: 127.0.0.1", b"host: admin.example.com"],
    &[b"HOST: admin.example.com"],
    &[b"host:admin.example.com"],
    &[b"Host:  admin.example.com  "],
    &[b"Host : admin.example.com"],
    &[b"Host: 127.0.0.1\r\n admin.example.com"],
    &[b"Host:\r\n admin.example.com"],
    &[b"Host: 127.0.0.1", b"X-Forwarded-Host: admin.example.com"],
    &[b"Host: 127.0.0.1", b"X_Forwarded_Host: admin.example.com"],
    &[b"Host: 127.0.0.1", b"Forwarded: host=admin.example.com"],
    &[b"Host: 127.0.0.1", b"X-Host: admin.example.com"],
    &[b"Host: 127.0.0.1", b"X-Original-Host: admin.example.com"],
];

/// Absolute-form request targets naming the admin host (RFC 9112: they win over `Host`).
const ABSOLUTE_TARGETS: &[&[u8]] = &[
    b"http://admin.example.com/x",
    b"http://ADMIN.example.com/x",
    b"http://admin.example.com./x",
    b"http://admin.example.com:80/x",
    b"https://admin.example.com/x",
    b"http://admin.example.com/public/x",
    b"HTTP://admin.example.com/x",
    b"http://x@admin.example.com/x",
];

fn host_spellings() -> Vec<Variant> {
    let mut out = Vec::new();
    for sender in [Sender::User, Sender::Anonymous] {
        for path in ["/x", "/public/x"] {
            for host in ADMIN_HOSTS {
                let line = [b"Host: ", *host].concat();
                out.push(req("host", sender, "GET", path).hosts(&[&line]));
            }
            for lines in HOST_LINES {
                out.push(req("host", sender, "GET", path).hosts(lines));
            }
        }
        for target in ABSOLUTE_TARGETS {
            out.push(req("host", sender, "GET", target).hosts(&[b"Host: 127.0.0.1"]));
        }
    }
    out
}

/// Identity headers a client might forge, in the spellings stacks fold together.
const FORGED_IDENTITY: &[&[&[u8]]] = &[
    &[b"X-Forwarded-User: octocat"],
    &[b"x-forwarded-user: octocat"],
    &[b"X-FORWARDED-USER: octocat"],
    &[b"X_Forwarded_User: octocat"],
    &[b"x_forwarded_user: octocat"],
    &[b"X-Forwarded_User: octocat"],
    &[b"X-Forwarded-User:octocat"],
    &[b"X-Forwarded-User : octocat"],
    &[b"X-Forwarded-User: octocat", b"X-Forwarded-User: octocat"],
    &[b"X-Forwarded-User: monalisa\r\n octocat"],
    &[b"X-Forwarded-User:\r\n\toctocat"],
    &[b"X-Forwarded-Roles: admin"],
    &[b"X_Forwarded_Roles: admin"],
    &[b"X-Forwarded-Roles: viewer,admin"],
    &[b"X-Forwarded-Groups: octocat"],
    &[b"X_Forwarded_Groups: octocat"],
    &[b"X-Forwarded-Groups: databio\r\n ,octocat"],
];

fn identity_headers() -> Vec<Variant> {
    let mut out = Vec::new();
    for sender in [Sender::User, Sender::Anonymous] {
        for path in ["/x", "/public/x", "/octocat/notes"] {
            for lines in FORGED_IDENTITY {
                let mut v = req("identity-header", sender, "GET", path);
                for line in lines.iter() {
                    v = v.header(line);
                }
                out.push(v);
            }
        }
    }
    out
}

/// `Cookie` headers carrying `LOGIN`'s session (`{S}`, or in chunks `{S0}`, `{S1}`) or other
/// Gatehouse cookies beside non-ASCII, quoted, oddly placed and split neighbours.
const COOKIE_SHAPES: &[&[&[u8]]] = &[
    &[b"Cookie: _gatehouse={S}"],
    &[b"Cookie: name=Jos\xc3\xa9; _gatehouse={S}"],
    &[b"Cookie: _gatehouse={S}; name=Jos\xc3\xa9"],
    &[b"Cookie: name=Jos\xe9; _gatehouse={S}"],
    &[b"Cookie: name=\"Jos\xc3\xa9\"; _gatehouse={S}"],
    &[b"Cookie: na\xc3\xafve=1; _gatehouse={S}"],
    &[b"Cookie: emoji=\xf0\x9f\x8d\xaa; _gatehouse={S}"],
    &[b"Cookie: a=\"b;c\"; _gatehouse={S}"],
    &[b"Cookie: a=\"b; _gatehouse={S}\""],
    &[b"Cookie: _gatehouse=\"{S}\""],
    &[b"Cookie: a=1;_gatehouse={S}"],
    &[b"Cookie: a=1 ; _gatehouse={S}"],
    &[b"Cookie:  _gatehouse={S}"],
    &[b"Cookie: _gatehouse ={S}"],
    &[b"Cookie: _gatehouse= {S}"],
    &[b"Cookie: ;_gatehouse={S}"],
    &[b"Cookie: _gatehouse={S};"],
    &[b"Cookie: a=1,_gatehouse={S}"],
    &[b"Cookie: a=1, _gatehouse={S}"],
    &[b"Cookie: $Version=1; _gatehouse={S}; $Path=/"],
    &[b"Cookie: _gatehouse={S}; _gatehouse=x"],
    &[b"Cookie: _gatehouse=x; _gatehouse={S}"],
    &[b"Cookie: a=b\tc; _gatehouse={S}"],
    &[b"Cookie: a=1", b"Cookie: _gatehouse={S}"],
    &[b"Cookie: _gatehouse={S}", b"Cookie: name=Jos\xc3\xa9"],
    &[b"Cookie: name=Jos\xc3\xa9", b"Cookie: _gatehouse={S}"],
    &[b"Cookie: a=1; _gatehouse={S}", b"Cookie: b=Jos\xc3\xa9"],
    &[b"cookie: _gatehouse={S}"],
    &[b"COOKIE: name=Jos\xc3\xa9; _gatehouse={S}"],
    &[b"Cookie: name=Jos\xc3\xa9;\r\n _gatehouse={S}"],
    &[b"Cookie: _gatehouse_0={S0}; _gatehouse_1={S1}"],
    &[b"Cookie: name=Jos\xc3\xa9; _gatehouse_0={S0}; _gatehouse_1={S1}"],
    &[b"Cookie: _gatehouse_0={S0}", b"Cookie: _gatehouse_1={S1}"],
    &[b"Cookie: _gatehouse_1={S1}; _gatehouse_0={S0}"],
    &[b"Cookie: _gatehouse_loop=1.1700000000; _gatehouse={S}"],
    &[b"Cookie: name=Jos\xc3\xa9; _gatehouse_loop=1.1700000000"],
    &[b"Cookie: _gatehouse_login_x=abc; _gatehouse={S}"],
    &[b"Cookie: name=Jos\xc3\xa9; _gatehouse_login_x=abc"],
    &[b"Cookie: _gatehouse_loop=1"],
    &[b"Cookie: _gatehouse_login_abc=1"],
    &[b"Cookie: _gatehouse_7=x"],
];

fn cookie_shapes() -> Vec<Variant> {
    let mut out = Vec::new();
    for path in ["/public/x", "/x", "/monalisa/notes", "/admin/x"] {
        for lines in COOKIE_SHAPES {
            out.push(req("cookie", Sender::User, "GET", path).credentials(lines));
        }
    }
    out
}

/// Tokens the gate accepts, in the `Authorization` spellings clients use.
const BEARERS: &[&[&[u8]]] = &[
    &[b"Authorization: Bearer {A}"],
    &[b"Authorization: bearer {A}"],
    &[b"authorization: BEARER {A}"],
    &[b"Authorization: Bearer  {A}"],
    &[b"Authorization: Bearer {G}"],
    &[b"Authorization: token {G}"],
    &[
        b"Authorization: Bearer {A}",
        b"Authorization: Basic dXNlcjpwYXNz",
    ],
    &[
        b"Authorization: Basic dXNlcjpwYXNz",
        b"Authorization: Bearer {A}",
    ],
    &[b"Authorization: Bearer {A}", b"Cookie: name=Jos\xc3\xa9"],
    &[b"Cookie: _gatehouse={S}", b"Authorization: Bearer {A}"],
];

fn bearer_credentials() -> Vec<Variant> {
    let mut out = Vec::new();
    for path in ["/public/x", "/x", "/monalisa/notes"] {
        for lines in BEARERS {
            out.push(req("authorization", Sender::User, "GET", path).credentials(lines));
        }
    }
    out
}

// ---- the stacks ---------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Stack {
    Flask,
    Django,
    Express,
    Nginx,
}

impl Stack {
    fn name(self) -> &'static str {
        match self {
            Stack::Flask => "flask",
            Stack::Django => "django",
            Stack::Express => "express",
            Stack::Nginx => "nginx",
        }
    }

    /// The command that serves this stack's app on 127.0.0.1:`port`, or why it cannot run here.
    fn command(self, port: u16, dir: &Path) -> Result<Command, String> {
        let app = |file: &str| root().join("tests/integration/differential").join(file);
        let python_app = |module: &str, file: &str| {
            python_with(module).map(|python| {
                let mut cmd = Command::new(python);
                cmd.arg(app(file)).arg(port.to_string());
                cmd
            })
        };
        match self {
            Stack::Flask => python_app("flask", "flask_app.py"),
            Stack::Django => python_app("django", "django_app.py"),
            Stack::Express => node_modules().map(|modules| {
                let mut cmd = Command::new("node");
                cmd.env("NODE_PATH", modules)
                    .arg(app("express_app.js"))
                    .arg(port.to_string());
                cmd
            }),
            Stack::Nginx => {
                if !Path::new(NGINX).is_file() {
                    return Err(format!("{NGINX} is not installed"));
                }
                let conf = std::fs::read_to_string(app("nginx.conf")).unwrap();
                let conf = conf
                    .replace("@PORT@", &port.to_string())
                    .replace("@DIR@", &dir.display().to_string());
                let path = dir.join("nginx.conf");
                std::fs::write(&path, conf).unwrap();
                let mut cmd = Command::new(NGINX);
                cmd.arg("-p")
                    .arg(dir)
                    .arg("-c")
                    .arg(&path)
                    .arg("-e")
                    .arg(dir.join("error.log"));
                Ok(cmd)
            }
        }
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `.ci/run`'s node_modules holding Express and its middleware, if `node` is here too.
fn node_modules() -> Result<PathBuf, String> {
    let modules = match std::env::var_os("GATEHOUSE_DIFF_NODE_PATH") {
        Some(p) => PathBuf::from(p),
        None => home_cache("gatehouse-ci-node/node_modules").ok_or("no HOME")?,
    };
    let node = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !node {
        return Err("node is not installed".into());
    }
    match ["express", "cookie-parser", "vhost"]
        .iter()
        .find(|m| !modules.join(m).join("package.json").is_file())
    {
        Some(missing) => Err(format!("{missing} is not in {}", modules.display())),
        None => Ok(modules),
    }
}

/// The stack's command, or `None` after saying why it is skipped (under CI: fail instead).
fn available(stack: Stack, found: Result<Command, String>) -> Option<Command> {
    match found {
        Ok(command) => Some(command),
        Err(why) => {
            assert!(
                !in_ci(),
                "{}: {why}; .ci/run installs it, and CI must not skip this test",
                stack.name()
            );
            println!(
                "note: skipping the {} differential test: {why} (.ci/run installs it)",
                stack.name()
            );
            None
        }
    }
}

/// A stack's app, running; stopped (by its own process handle) when dropped.
struct App {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl App {
    async fn start(stack: Stack, mut command: Command, port: u16, dir: &Path) -> App {
        let log = dir.join(format!("{}.log", stack.name()));
        let out = std::fs::File::create(&log).unwrap();
        let child = command
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("start the {} app: {e}", stack.name()));
        let mut app = App {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            log,
        };
        app.wait_ready(stack).await;
        app
    }

    /// Until `/public/ready` reaches the `public` handler.
    async fn wait_ready(&mut self, stack: Stack) {
        let request = format!(
            "GET /public/ready HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.addr
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "the {} app exited ({status}); log:\n{}",
                    stack.name(),
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            if tokio::net::TcpStream::connect(self.addr).await.is_ok() {
                let raw = raw_exchange(self.addr, request.as_bytes(), WAIT).await;
                if parse_raw(&raw).header("x-handler") == Some("public") {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "the {} app did not answer on {}; log:\n{}",
                stack.name(),
                self.addr,
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
