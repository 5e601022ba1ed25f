//! Identity isolation under load: many people's sessions at once through one gate, over
//! keep-alive connections shared between them, with anonymous and bearer requests mixed in.
//! Every answer must carry exactly the identity of the credential that sent it.
//!
//! Loopback only, bounded: a fixed duration and a fixed number of requests in flight.
//!
//! This file is its own test binary, not a module of `tests/integration/`: its load test must
//! check more than `FLOOR` answers in `LOAD_FOR`, and run beside the other integration tests (the
//! fuzz smoke's CPU-bound mutation run among them) on a 2-core machine it checked 918, against
//! 4,300 alone. It shares the harness only.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail by panicking"
)]

#[path = "integration/common/mod.rs"]
mod common;

use common::*;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// People signed in through the real sign-in flow against the mock GitHub.
const SIGNED_IN: usize = 50;
/// Extra sessions with cookies minted with the session key (not GitHub users).
const MINTED: usize = 10;
/// Of the signed-in people, how many also use a bearer access token (from `/oauth2/pat`) and
/// how many a raw GitHub token (`accept_github_tokens`).
const PAT_JWT: usize = 10;
const RAW_GITHUB: usize = 10;
/// Workers sharing one pooled HTTP client, and workers each owning one raw keep-alive
/// connection that carries different people's requests one after another.
const POOLED_WORKERS: usize = 48;
const RAW_WORKERS: usize = 16;
const LOAD_FOR: Duration = Duration::from_secs(6);
/// Below this many checked answers the run proves too little.
const FLOOR: u64 = 1000;

const ORGS: usize = 5;
const TEAMS: usize = 3;

/// A credential and the identity the upstream must see for it.
#[derive(Clone, Debug)]
struct Who {
    /// The request header that carries the credential: `cookie` or `authorization`.
    header: &'static str,
    value: String,
    login: String,
    id: String,
    groups: BTreeSet<String>,
    email: Option<String>,
    kind: &'static str,
}

fn login_of(i: usize) -> String {
    format!("load-user-{i:02}")
}

fn id_of(i: usize) -> u64 {
    8_100_000 + i as u64
}

/// The groups the gate's config asks about that `i` belongs to.
fn groups_of(i: usize) -> BTreeSet<String> {
    let mut g = BTreeSet::from(["databio".to_string(), format!("grp-{}", i % ORGS)]);
    if i % 4 != 0 {
        g.insert(format!("databio/t{}", i % TEAMS));
    }
    g
}

async fn mock_post(h: &Harness, path: &str) -> serde_json::Value {
    let r = plain_client()
        .post(format!("{}{path}", h.mock_url))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{path}: {}", r.status());
    r.json().await.unwrap_or(serde_json::Value::Null)
}

fn gate_options() -> GateOptions {
    let orgs: Vec<String> = (0..ORGS).map(|o| format!("\"grp-{o}\"")).collect();
    let teams: Vec<String> = (0..TEAMS).map(|t| format!("\"databio/t{t}\"")).collect();
    GateOptions {
        allowed_users: vec![],
        access_extra: format!(
            r#"allowed_orgs = ["databio", {orgs}]
allowed_teams = [{teams}]
# Short, so membership re-checks (and refreshed cookies) happen during the run.
refresh_interval = "3s"

[[rules]]
path = "/echo/public/**"
policy = "public"

[tokens]
accept_github_tokens = true

[limits]
auth_per_minute = 0
"#,
            orgs = orgs.join(", "),
            teams = teams.join(", "),
        ),
        ..GateOptions::default()
    }
}

/// Create the people in the mock GitHub, sign them in, mint the rest; every credential.
async fn credentials(h: &Harness) -> Vec<Who> {
    for o in 0..ORGS {
        mock_post(h, &format!("/_mock/orgs/grp-{o}")).await;
    }
    for t in 0..TEAMS {
        mock_post(h, &format!("/_mock/orgs/databio/teams/t{t}")).await;
    }
    for i in 0..SIGNED_IN {
        let login = login_of(i);
        mock_post(h, &format!("/_mock/users/{login}?id={}", id_of(i))).await;
        mock_post(h, &format!("/_mock/orgs/databio/members/{login}")).await;
        mock_post(h, &format!("/_mock/orgs/grp-{}/members/{login}", i % ORGS)).await;
        if i % 4 != 0 {
            mock_post(
                h,
                &format!("/_mock/orgs/databio/teams/t{}/members/{login}", i % TEAMS),
            )
            .await;
        }
    }
    // Sign in eight at a time through /oauth2/start, the mock's consent page and the callback.
    let mut whos = Vec::new();
    for batch in (0..SIGNED_IN).collect::<Vec<_>>().chunks(8) {
        let signed = futures_util::future::join_all(batch.iter().map(|&i| async move {
            let r = h.sign_in(&browser(), &login_of(i), "/").await;
            assert_eq!(r.status(), 302, "sign-in of {}", login_of(i));
            (i, session_cookie(&r))
        }))
        .await;
        for (i, cookie) in signed {
            let claims = claims_in(&cookie);
            assert_eq!(claims.login, login_of(i));
            assert_eq!(claims.user_id, id_of(i).to_string());
            let groups: BTreeSet<String> = claims.groups.iter().cloned().collect();
            assert_eq!(groups, groups_of(i), "{}", login_of(i));
            whos.push(Who {
                header: "cookie",
                value: format!("_gatehouse={cookie}"),
                login: login_of(i),
                id: id_of(i).to_string(),
                groups,
                email: Some(format!("{}@example.com", login_of(i))),
                kind: "cookie",
            });
        }
    }
    // Cookies minted with the key: not GitHub users, so their memberships are not re-checked
    // (refreshed_at ahead of the run).
    for m in 0..MINTED {
        let login = format!("minted-{m:02}");
        let mut claims = claims_for(&login, 8_200_000 + m as u64);
        claims.groups = vec!["databio".into(), format!("grp-{}", m % ORGS)];
        claims.refreshed_at = now() + 3600;
        whos.push(Who {
            header: "cookie",
            value: format!("_gatehouse={}", mint(KEY_A, &claims)),
            groups: claims.groups.iter().cloned().collect(),
            email: claims.email.clone(),
            login,
            id: claims.user_id.clone(),
            kind: "minted",
        });
    }
    // Bearer tokens: a gate access token traded for a personal access token, and raw GitHub
    // tokens the gate checks at GitHub (and caches by hash).
    for i in 0..PAT_JWT + RAW_GITHUB {
        let pat = mock_post(h, &format!("/_mock/users/{}/tokens", login_of(i))).await["token"]
            .as_str()
            .unwrap()
            .to_string();
        let (kind, token) = if i < PAT_JWT {
            let (status, pair) =
                post_json(h, "/oauth2/pat", serde_json::json!({"token": pat})).await;
            assert_eq!(status, 200, "{pair}");
            (
                "bearer-jwt",
                pair["access_token"].as_str().unwrap().to_string(),
            )
        } else {
            ("bearer-github", pat)
        };
        whos.push(Who {
            header: "authorization",
            value: format!("Bearer {token}"),
            login: login_of(i),
            id: id_of(i).to_string(),
            groups: groups_of(i),
            email: Some(format!("{}@example.com", login_of(i))),
            kind,
        });
    }
    whos
}

#[derive(Default)]
struct Tally {
    checked: AtomicU64,
    anonymous: AtomicU64,
    mismatches: AtomicU64,
    errors: AtomicU64,
    refreshed_cookies: AtomicU64,
    closed_keepalive: AtomicU64,
    by_kind: Mutex<std::collections::BTreeMap<&'static str, u64>>,
    first_problems: Mutex<Vec<String>>,
}

impl Tally {
    fn problem(&self, counter: &AtomicU64, what: String) {
        counter.fetch_add(1, Ordering::Relaxed);
        let mut first = self.first_problems.lock().unwrap();
        if first.len() < 20 {
            first.push(what);
        }
    }
}

/// One answer as the upstream echoed it: status, the identity headers it received, and any
/// session cookies the gate set.
struct Answer {
    status: u16,
    echo: serde_json::Value,
    set_cookies: Vec<String>,
}

/// The identity headers the upstream got, as (user, user id, groups, email).
fn seen_identity(
    echo: &serde_json::Value,
) -> (Option<&str>, Option<&str>, Option<&str>, Option<&str>) {
    (
        upstream_header(echo, "x-forwarded-user"),
        upstream_header(echo, "x-forwarded-user-id"),
        upstream_header(echo, "x-forwarded-groups"),
        upstream_header(echo, "x-forwarded-email"),
    )
}

/// Check `answer` against `who` (None: anonymous on a public path); a description of every
/// difference.
fn check(who: Option<&Who>, nonce: &str, answer: &Answer) -> Result<(), String> {
    if answer.status != 200 {
        return Err(format!("status {}: {}", answer.status, answer.echo));
    }
    // The answer is for this request, not another one's.
    if answer.echo["query"].as_str() != Some(&format!("n={nonce}")) {
        return Err(format!(
            "answer for another request: query {:?}, sent n={nonce}",
            answer.echo["query"]
        ));
    }
    let (user, id, groups, email) = seen_identity(&answer.echo);
    let Some(who) = who else {
        return match (user, id, groups, email) {
            (None, None, None, None) => Ok(()),
            seen => Err(format!("anonymous request carried an identity: {seen:?}")),
        };
    };
    let seen_groups: BTreeSet<String> = groups
        .unwrap_or("")
        .split(',')
        .filter(|g| !g.is_empty())
        .map(str::to_string)
        .collect();
    let mut diffs = Vec::new();
    if user != Some(who.login.as_str()) {
        diffs.push(format!("user {user:?}"));
    }
    if id != Some(who.id.as_str()) {
        diffs.push(format!("user id {id:?}"));
    }
    if seen_groups != who.groups {
        diffs.push(format!("groups {groups:?}"));
    }
    if email != who.email.as_deref() {
        diffs.push(format!("email {email:?}"));
    }
    // A refreshed session cookie handed back must be this person's.
    for c in &answer.set_cookies {
        if let Some(v) = c.strip_prefix("_gatehouse=") {
            let v = v.split(';').next().unwrap_or("");
            if !v.is_empty() {
                let claims = claims_in(v);
                if claims.login != who.login || claims.user_id != who.id {
                    diffs.push(format!(
                        "Set-Cookie for {} ({})",
                        claims.login, claims.user_id
                    ));
                }
            }
        }
    }
    match diffs.is_empty() {
        true => Ok(()),
        false => Err(format!(
            "{} {} ({}) saw: {}",
            who.kind,
            who.login,
            who.id,
            diffs.join(", ")
        )),
    }
}

/// What a worker sends next: a person's request (with a forged identity header now and then,
/// which the gate must replace) or an anonymous one on the public path.
fn next_request(whos: &[Who], n: u64) -> (Option<&Who>, String, bool) {
    // A cheap deterministic scramble so neighbours in time are different people.
    let x = n.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17);
    let anonymous = x % 5 == 0;
    let forge = x % 7 == 0;
    let path = if anonymous {
        format!("/echo/public/{}", x % 1000)
    } else {
        format!("/echo/app/{}", x % 1000)
    };
    let who = (!anonymous).then(|| &whos[(x >> 8) as usize % whos.len()]);
    (who, path, forge)
}

fn record(tally: &Tally, who: Option<&Who>, nonce: &str, answer: &Answer) {
    tally.checked.fetch_add(1, Ordering::Relaxed);
    if who.is_none() {
        tally.anonymous.fetch_add(1, Ordering::Relaxed);
    }
    if answer
        .set_cookies
        .iter()
        .any(|c| c.starts_with("_gatehouse=") && !c.starts_with("_gatehouse=;"))
    {
        tally.refreshed_cookies.fetch_add(1, Ordering::Relaxed);
    }
    *tally
        .by_kind
        .lock()
        .unwrap()
        .entry(who.map_or("anonymous", |w| w.kind))
        .or_default() += 1;
    if let Err(e) = check(who, nonce, answer) {
        tally.problem(&tally.mismatches, e);
    }
}

async fn pooled_worker(
    client: reqwest::Client,
    base: String,
    whos: Arc<Vec<Who>>,
    tally: Arc<Tally>,
    worker: u64,
    until: Instant,
) {
    let mut n = worker << 32;
    while Instant::now() < until {
        n += 1;
        let (who, path, forge) = next_request(&whos, n);
        let nonce = format!("{worker}-{n}");
        let mut req = client
            .get(format!("{base}{path}?n={nonce}"))
            .header("accept", "application/json");
        if let Some(who) = who {
            req = req.header(who.header, &who.value);
        }
        if forge {
            req = req
                .header("x-forwarded-user", "forged")
                .header("x-forwarded-user-id", "1")
                .header("x-forwarded-groups", "forged-org");
        }
        let sent = async {
            let r = req.send().await?;
            let status = r.status().as_u16();
            let set_cookies = set_cookies(&r);
            let body = r.text().await?;
            Ok::<_, reqwest::Error>(Answer {
                status,
                echo: serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body)),
                set_cookies,
            })
        };
        match tokio::time::timeout(Duration::from_secs(10), sent).await {
            Ok(Ok(answer)) => record(&tally, who, &nonce, &answer),
            Ok(Err(e)) => tally.problem(&tally.errors, format!("pooled request: {e}")),
            Err(_) => tally.problem(&tally.errors, "pooled request timed out".into()),
        }
    }
}

/// Read one HTTP/1.1 response (Content-Length or chunked) from a keep-alive connection.
async fn read_response(
    reader: &mut BufReader<tokio::net::TcpStream>,
) -> std::io::Result<(Answer, bool)> {
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    let mut line = String::new();
    reader.read_line(&mut line).await?;
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad(&format!("status line {line:?}")))?;
    let mut length = None;
    let mut chunked = false;
    let mut close = false;
    let mut set_cookies = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line).await?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let Some((k, v)) = l.split_once(':') else {
            return Err(bad(&format!("header {l:?}")));
        };
        let v = v.trim();
        match k.to_ascii_lowercase().as_str() {
            "content-length" => length = v.parse::<usize>().ok(),
            "transfer-encoding" => chunked = v.eq_ignore_ascii_case("chunked"),
            "connection" => close = v.eq_ignore_ascii_case("close"),
            "set-cookie" => set_cookies.push(v.to_string()),
            _ => {}
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            line.clear();
            reader.read_line(&mut line).await?;
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                .map_err(|_| bad(&format!("chunk size {line:?}")))?;
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).await?;
            body.extend_from_slice(&chunk[..size]);
            if size == 0 {
                break;
            }
        }
    } else {
        let mut chunk = vec![0; length.ok_or_else(|| bad("no length"))?];
        reader.read_exact(&mut chunk).await?;
        body = chunk;
    }
    let text = String::from_utf8_lossy(&body).into_owned();
    Ok((
        Answer {
            status,
            echo: serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
            set_cookies,
        },
        close,
    ))
}

/// One TCP connection kept alive across requests of different people (and anonymous ones),
/// reconnecting only when the gate closes it.
async fn raw_worker(
    addr: std::net::SocketAddr,
    whos: Arc<Vec<Who>>,
    tally: Arc<Tally>,
    worker: u64,
    until: Instant,
    reuses: Arc<AtomicU64>,
) {
    let mut n = worker << 32;
    let mut conn: Option<BufReader<tokio::net::TcpStream>> = None;
    while Instant::now() < until {
        n += 1;
        let (who, path, forge) = next_request(&whos, n);
        let nonce = format!("{worker}-{n}");
        let mut req =
            format!("GET {path}?n={nonce} HTTP/1.1\r\nhost: gate\r\naccept: application/json\r\n");
        if let Some(who) = who {
            req.push_str(&format!("{}: {}\r\n", who.header, who.value));
        }
        if forge {
            req.push_str("x-forwarded-user: forged\r\nx-forwarded-groups: forged-org\r\n");
        }
        req.push_str("\r\n");
        let reused = conn.is_some();
        let mut reader = match conn.take() {
            Some(c) => c,
            None => match tokio::net::TcpStream::connect(addr).await {
                Ok(s) => BufReader::new(s),
                Err(e) => {
                    tally.problem(&tally.errors, format!("connect: {e}"));
                    continue;
                }
            },
        };
        let exchange = async {
            reader.get_mut().write_all(req.as_bytes()).await?;
            read_response(&mut reader).await
        };
        match tokio::time::timeout(Duration::from_secs(10), exchange).await {
            Ok(Ok((answer, close))) => {
                record(&tally, who, &nonce, &answer);
                if reused {
                    reuses.fetch_add(1, Ordering::Relaxed);
                }
                if !close {
                    conn = Some(reader);
                }
            }
            // A kept-alive connection the gate closed in between is routine: retry on a new one
            // (counted, and reported).
            Ok(Err(_)) if reused => {
                tally.closed_keepalive.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Err(e)) => tally.problem(&tally.errors, format!("raw request: {e}")),
            Err(_) => tally.problem(&tally.errors, "raw request timed out".into()),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_carries_the_identity_of_the_request_that_asked() {
    let setup = Instant::now();
    let h = Harness::start(gate_options()).await;
    let whos = Arc::new(credentials(&h).await);
    let setup_took = setup.elapsed();
    let tally = Arc::new(Tally::default());
    let reuses = Arc::new(AtomicU64::new(0));
    // One pool for every pooled worker: its kept-alive connections carry whoever comes next.
    let pooled = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(POOLED_WORKERS)
        .build()
        .unwrap();
    let started = Instant::now();
    let until = started + LOAD_FOR;
    let mut tasks = Vec::new();
    for w in 0..POOLED_WORKERS as u64 {
        tasks.push(tokio::spawn(pooled_worker(
            pooled.clone(),
            h.gate.clone(),
            whos.clone(),
            tally.clone(),
            w,
            until,
        )));
    }
    for w in 0..RAW_WORKERS as u64 {
        tasks.push(tokio::spawn(raw_worker(
            h.gate_addr,
            whos.clone(),
            tally.clone(),
            1000 + w,
            until,
            reuses.clone(),
        )));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let took = started.elapsed();
    let checked = tally.checked.load(Ordering::Relaxed);
    let mismatches = tally.mismatches.load(Ordering::Relaxed);
    let errors = tally.errors.load(Ordering::Relaxed);
    eprintln!(
        "identity isolation: {} credentials ({SIGNED_IN} signed in, {MINTED} minted, {PAT_JWT} bearer JWT, {RAW_GITHUB} raw GitHub token), \
         {POOLED_WORKERS} pooled + {RAW_WORKERS} raw keep-alive workers, setup {setup_took:?}, load {took:?}\n  \
         checked {checked} ({} anonymous; by kind {:?}), raw connection reuses {} (closed by the gate {}), refreshed cookies {}, \
         mismatches {mismatches}, errors {errors}, {:.0} req/s",
        whos.len(),
        tally.anonymous.load(Ordering::Relaxed),
        tally.by_kind.lock().unwrap(),
        reuses.load(Ordering::Relaxed),
        tally.closed_keepalive.load(Ordering::Relaxed),
        tally.refreshed_cookies.load(Ordering::Relaxed),
        checked as f64 / took.as_secs_f64(),
    );
    let problems = tally.first_problems.lock().unwrap().clone();
    assert_eq!(mismatches, 0, "identity mismatches: {problems:#?}");
    assert_eq!(errors, 0, "request errors: {problems:#?}");
    assert!(checked > FLOOR, "only {checked} answers checked");
    assert!(took < LOAD_FOR + Duration::from_secs(11), "{took:?}");
    assert!(
        reuses.load(Ordering::Relaxed) > 100,
        "keep-alive connections were not reused across requests"
    );
    let log = h.log();
    assert!(!log.contains("panicked"), "{log}");
}

/// The checker itself: a swapped identity, a missing group, an identity on an anonymous answer
/// and another request's answer are all caught (so zero mismatches means something).
#[test]
fn the_checker_catches_every_kind_of_mix_up() {
    let who = |i: usize| Who {
        header: "cookie",
        value: String::new(),
        login: login_of(i),
        id: id_of(i).to_string(),
        groups: groups_of(i),
        email: Some(format!("{}@example.com", login_of(i))),
        kind: "cookie",
    };
    let answer = |i: Option<usize>, groups: Option<String>, query: &str| {
        let mut headers = serde_json::Map::new();
        if let Some(i) = i {
            headers.insert("x-forwarded-user".into(), login_of(i).into());
            headers.insert("x-forwarded-user-id".into(), id_of(i).to_string().into());
            headers.insert(
                "x-forwarded-email".into(),
                format!("{}@example.com", login_of(i)).into(),
            );
            let g =
                groups.unwrap_or_else(|| groups_of(i).into_iter().collect::<Vec<_>>().join(","));
            headers.insert("x-forwarded-groups".into(), g.into());
        }
        Answer {
            status: 200,
            echo: serde_json::json!({ "query": query, "headers": headers }),
            set_cookies: vec![],
        }
    };
    assert!(check(Some(&who(1)), "a", &answer(Some(1), None, "n=a")).is_ok());
    assert!(check(None, "a", &answer(None, None, "n=a")).is_ok());
    assert!(check(Some(&who(1)), "a", &answer(Some(2), None, "n=a")).is_err());
    assert!(check(
        Some(&who(1)),
        "a",
        &answer(Some(1), Some("databio".into()), "n=a")
    )
    .is_err());
    assert!(check(Some(&who(1)), "a", &answer(Some(1), None, "n=b")).is_err());
    assert!(check(None, "a", &answer(Some(1), None, "n=a")).is_err());
    assert!(check(Some(&who(1)), "a", &answer(None, None, "n=a")).is_err());
}

/// HTTP/1.1 pipelining: several people's requests written back to back on one connection (as
/// a shared front proxy might). Whatever the gate answers comes in order, each answer with the
/// identity of its own request; requests left unanswered when the gate closes the connection
/// (allowed by RFC 9112 §9.3.2) are sent again on a new one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_of_different_people_keep_their_identities() {
    let h = Harness::start(GateOptions::default()).await;
    let mut whos = Vec::new();
    for login in ["octocat", "monalisa", "hubot"] {
        let r = h.sign_in(&browser(), login, "/").await;
        let cookie = session_cookie(&r);
        let claims = claims_in(&cookie);
        whos.push((login, claims.user_id, format!("_gatehouse={cookie}")));
    }
    let (mut checked, mut connections, mut most_on_one) = (0, 0, 0);
    for round in 0..20 {
        let order: Vec<Option<usize>> = (0..6)
            .map(|k| match (round + k) % 4 {
                3 => None,
                i => Some(i),
            })
            .collect();
        let mut next = 0;
        while next < order.len() {
            connections += 1;
            assert!(connections < 400, "no progress");
            let stream = tokio::net::TcpStream::connect(h.gate_addr).await.unwrap();
            let mut reader = BufReader::new(stream);
            let mut batch = String::new();
            for (k, who) in order.iter().enumerate().skip(next) {
                batch.push_str(&format!(
                    "GET /echo/p?n={round}-{k} HTTP/1.1\r\nhost: gate\r\naccept: application/json\r\nx-forwarded-user: forged\r\n"
                ));
                if let Some(i) = who {
                    batch.push_str(&format!("cookie: {}\r\n", whos[*i].2));
                }
                batch.push_str("\r\n");
            }
            reader.get_mut().write_all(batch.as_bytes()).await.unwrap();
            let mut on_this = 0;
            while next < order.len() {
                let read = tokio::time::timeout(Duration::from_secs(5), read_response(&mut reader))
                    .await
                    .unwrap_or_else(|_| {
                        panic!("round {round}: request {next} neither answered nor closed")
                    });
                // Closed with requests unanswered: send those again.
                let Ok((answer, _)) = read else { break };
                let query = format!("n={round}-{next}");
                match order[next] {
                    Some(i) => {
                        assert_eq!(answer.status, 200, "{}", answer.echo);
                        assert_eq!(answer.echo["query"], query.as_str(), "{}", answer.echo);
                        assert_eq!(
                            upstream_header(&answer.echo, "x-forwarded-user"),
                            Some(whos[i].0)
                        );
                        assert_eq!(
                            upstream_header(&answer.echo, "x-forwarded-user-id"),
                            Some(whos[i].1.as_str())
                        );
                    }
                    // Anonymous on a protected path: refused, never proxied as someone.
                    None => {
                        assert_eq!(answer.status, 401, "{}", answer.echo);
                        let rd = answer.echo["sign_in_url"].as_str().unwrap_or("");
                        assert!(rd.ends_with(&query.replace('=', "%3D")), "{}", answer.echo);
                    }
                }
                checked += 1;
                next += 1;
                on_this += 1;
            }
            most_on_one = most_on_one.max(on_this);
        }
    }
    eprintln!(
        "pipelining: {checked} answers checked over {connections} connections \
         (at most {most_on_one} answers on one pipelined connection)"
    );
    assert_eq!(checked, 120);
    assert!(!h.log().contains("panicked"));
}
