//! Rotating every secret and key the way the runbook says (docs/src/operations/key-rotation.md),
//! on two replicas sharing Redis, while a bounded request loop runs against both: session
//! secrets (and the access-token keys derived from them), store secrets, ES256 token keys and
//! assertion keys, the GitHub client secret and the webhook secret. Each step is a rolling
//! reload (`SIGHUP` to one replica, a moment with the two disagreeing, then the other) or a
//! change at GitHub, and not one request of the loop may fail in any step.
//!
//! The loop, on both replicas in turn: a session cookie and a bearer token on `/echo` (200,
//! with an identity assertion that verifies against the JWKS an app cached), a refresh of the
//! token pair (whose new access token must verify against the JWKS a client cached, with
//! ES256), a webhook `ping` signed as GitHub signs it now, and a browser sign-in started on one
//! replica and finished on the other.
//!
//! Dropping an old secret is allowed only once what it made has expired (`session.ttl`,
//! `tokens.access_ttl`): the tests stand for that wait by giving the loop credentials made
//! after the promotion before the old secret goes.

use crate::common::redis::{available, redis_cmd, RedisServer};
use crate::common::*;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Session secrets (`S1` is what the harness starts with).
const S1: [u8; 32] = KEY_A;
const S2: [u8; 32] = [11; 32];
/// Store secrets (`T1` is the Redis tests' store secret).
const T1: [u8; 32] = [3; 32];
const T2: [u8; 32] = [4; 32];
const W1: &str = "webhook-secret-one";
const W2: &str = "webhook-secret-two";
const C2: &str = "test-client-secret-rotated";
/// Request-loop tasks (each keeps its own credentials).
const TASKS: usize = 2;

/// What the outside world of the gates holds, shared with the request loop.
struct World {
    gates: [String; 2],
    /// `iss` of the gates' tokens and assertions: the public URL.
    issuer: String,
    /// `aud` of the identity assertion: the upstream's URL.
    audience: String,
    /// The secret GitHub signs webhook deliveries with now.
    webhook_secret: Mutex<String>,
    /// The JWKS an app (or a client) fetched and caches (for `max-age`).
    jwks: Mutex<JwkSet>,
}

/// What one loop task signs in with.
#[derive(Clone)]
struct Creds {
    cookie: String,
    pair: Value,
}

/// `secrets = [...]` as the config writes it, for text edits.
fn keys_line(name: &str, keys: &[[u8; 32]]) -> String {
    let quoted: Vec<String> = keys.iter().map(|k| format!("\"{}\"", b64(k))).collect();
    format!("\n{name} = [{}]", quoted.join(", "))
}

fn files_line(name: &str, files: &[&PathBuf]) -> String {
    let quoted: Vec<String> = files
        .iter()
        .map(|f| format!("{:?}", f.display().to_string()))
        .collect();
    format!("\n{name} = [{}]", quoted.join(", "))
}

/// A new PKCS#8 PEM P-256 key in `dir`.
fn key_file(dir: &std::path::Path, name: &str) -> PathBuf {
    use p256::pkcs8::{EncodePrivateKey, LineEnding};
    let key = p256::SecretKey::random(&mut p256::elliptic_curve::rand_core::OsRng);
    let path = dir.join(name);
    std::fs::write(&path, key.to_pkcs8_pem(LineEnding::LF).unwrap().as_bytes()).unwrap();
    path
}

#[allow(unsafe_code, reason = "kill(2) has no safe wrapper in libc")]
fn sighup(child: &std::process::Child) {
    // SAFETY: kill(2) on our own child's pid, with a valid signal number.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGHUP) };
    assert_eq!(rc, 0, "kill(SIGHUP)");
}

/// Two replicas on one Redis, assertion keys `A1`/`A2` and (for ES256) token keys `K1`/`K2`.
struct Fleet {
    a: Harness,
    b: Replica,
    world: Arc<World>,
    admin: [String; 2],
    keys: tempfile::TempDir,
    redis: RedisServer,
}

impl Fleet {
    /// `tokens`: the `[tokens]` lines (HS256 derived from the session secrets when empty).
    async fn start(tokens: impl FnOnce(&std::path::Path) -> String) -> Fleet {
        let redis = RedisServer::start();
        let keys = tempfile::tempdir().unwrap();
        let tokens = tokens(keys.path());
        let a1 = key_file(keys.path(), "a1.pem");
        key_file(keys.path(), "a2.pem");
        let admin_a = format!("127.0.0.1:{}", free_port());
        let admin_b = format!("127.0.0.1:{}", free_port());
        let mut a = Harness::start_with_server(
            GateOptions {
                keys: vec![S1],
                session_extra: redis.session_config("redis"),
                github_extra: format!("webhook_secret = \"{W1}\"\nrevoke_on_sign_out = true\n"),
                access_extra: format!("\n[limits]\nauth_per_minute = 0\n\n[tokens]\n{tokens}\n"),
                ..GateOptions::default()
            },
            &format!("admin_listen = \"{admin_a}\""),
        )
        .await;
        // `[upstream]` is the harness's; its assertion keys go in by a restart.
        a.restart_with(|c| {
            c.replacen(
                "[upstream]",
                &format!("[upstream]{}", files_line("assertion_key_files", &[&a1])),
                1,
            )
        })
        .await;
        let b = a
            .spawn_replica_with("b", |c| c.replace(&admin_a, &admin_b))
            .await;
        let world = Arc::new(World {
            gates: [a.gate.clone(), b.gate.clone()],
            issuer: a.gate.clone(),
            audience: format!("http://{}", a.upstream_addr),
            webhook_secret: Mutex::new(W1.to_string()),
            jwks: Mutex::new(JwkSet { keys: vec![] }),
        });
        let fleet = Fleet {
            a,
            b,
            world,
            admin: [admin_a, admin_b],
            keys,
            redis,
        };
        fleet.apps_fetch_the_jwks().await;
        fleet
    }

    fn key(&self, name: &str) -> PathBuf {
        self.keys.path().join(name)
    }

    fn config_files(&self) -> [PathBuf; 2] {
        [
            self.a.dir.path().join("gatehouse.toml"),
            self.a.dir.path().join("gatehouse-b.toml"),
        ]
    }

    /// A rolling reload: each replica's config gets `edits` (text replacements) and a SIGHUP,
    /// one after the other, with the fleet disagreeing for a while in between.
    async fn roll(&self, edits: &[(String, String)]) {
        let [path_a, path_b] = self.config_files();
        reload(&self.a.child, &path_a, edits, || self.a.log()).await;
        // One replica on the new config, the other on the old, under load.
        tokio::time::sleep(Duration::from_millis(400)).await;
        reload(&self.b.child, &path_b, edits, || self.b.log()).await;
        tokio::time::sleep(Duration::from_millis(400)).await;
    }

    /// The JWKS cache of apps and clients expires (`max-age`) and is fetched again.
    async fn apps_fetch_the_jwks(&self) {
        let r = plain_client()
            .get(format!("{}/.well-known/jwks.json", self.world.gates[1]))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        *self.world.jwks.lock().unwrap() = r.json().await.unwrap();
    }

    /// Credentials for each loop task, made now (`/oauth2/pat`: a cookie and a token pair).
    async fn fresh_creds(&self) -> Vec<Creds> {
        let mut creds = Vec::new();
        for i in 0..TASKS {
            let pat = mock_pat(&self.a, "monalisa").await;
            let r = plain_client()
                .post(format!("{}/oauth2/pat", self.world.gates[i % 2]))
                .json(&json!({ "token": pat }))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "pat sign-in: {}", self.a.log());
            let cookie = session_cookie(&r);
            creds.push(Creds {
                cookie,
                pair: r.json().await.unwrap(),
            });
        }
        creds
    }

    /// Start the request loop with `creds` (one task each).
    fn load(&self, creds: Vec<Creds>) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = creds
            .into_iter()
            .enumerate()
            .map(|(i, creds)| {
                let (world, stop) = (Arc::clone(&self.world), Arc::clone(&stop));
                tokio::spawn(run_loop(world, stop, creds, i))
            })
            .collect();
        Load {
            stop,
            tasks,
            started: Instant::now(),
        }
    }

    /// `gatehouse_github_client_secret_total{secret}` summed over both replicas.
    async fn client_secret_count(&self, secret: &str) -> u64 {
        let mut total = 0;
        for admin in &self.admin {
            let text = get_text(&plain_client(), format!("http://{admin}/metrics")).await;
            let series = format!("gatehouse_github_client_secret_total{{secret=\"{secret}\"}} ");
            total += text
                .lines()
                .find_map(|l| l.strip_prefix(series.as_str()))
                .map_or(0, |v| v.trim().parse::<u64>().unwrap());
        }
        total
    }

    /// A browser sign-in started on each replica and finished on the other, while the loop
    /// runs (so each step has some, however slow the loop).
    async fn sign_in_on_each(&self) {
        let [a, b] = &self.world.gates;
        for (here, there) in [(a, b), (b, a)] {
            let signed_in = browser_sign_in_ok(&self.world, here, there).await;
            assert_eq!(signed_in, Ok(()), "sign-in from {here} to {there}");
        }
        tokio::time::sleep(Duration::from_millis(400)).await;
    }

    /// Both replicas take a webhook delivery signed with `secret`.
    async fn every_gate_takes(&self, secret: &str) {
        for gate in &self.world.gates {
            assert_eq!(ping(&plain_client(), gate, secret).await, Ok(200), "{gate}");
        }
        tokio::time::sleep(Duration::from_millis(400)).await;
    }

    /// How many values in Redis hold something sealed with store key `key` (a compact JWE
    /// whose header names it).
    async fn sealed_in_redis(&self, key: [u8; 32]) -> usize {
        let header = format!(
            r#"{{"alg":"dir","enc":"A256GCM","kid":"{}"}}"#,
            gatehouse::session::key_id(&key)
        );
        let header =
            base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, header);
        let keys: Vec<String> = redis_cmd(&self.redis, &["KEYS", "*"]).await;
        let mut found = 0;
        for key in &keys {
            let kind: String = redis_cmd(&self.redis, &["TYPE", key]).await;
            let values: Vec<String> = match kind.as_str() {
                "string" => vec![redis_cmd(&self.redis, &["GET", key]).await],
                "hash" => redis_cmd(&self.redis, &["HGETALL", key]).await,
                _ => vec![],
            };
            found += values.iter().filter(|v| v.contains(&header)).count();
        }
        found
    }
}

/// Apply `edits` to one replica's config file and reload it; returns once it is in force.
async fn reload(
    child: &std::process::Child,
    path: &std::path::Path,
    edits: &[(String, String)],
    log: impl Fn() -> String,
) {
    let mut text = std::fs::read_to_string(path).unwrap();
    for (from, to) in edits {
        assert!(text.contains(from.as_str()), "{from:?} is not in\n{text}");
        text = text.replacen(from.as_str(), to, 1);
    }
    std::fs::write(path, text).unwrap();
    let reloads = log().matches("config reloaded").count();
    sighup(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while log().matches("config reloaded").count() <= reloads {
        assert!(Instant::now() < deadline, "no reload:\n{}", log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A running request loop.
struct Load {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<(Creds, usize, Vec<String>)>>,
    started: Instant,
}

impl Load {
    /// Stop the loop: no request of `step` may have failed. The credentials as the loop left
    /// them (refreshed).
    async fn finish(self, step: &str) -> Vec<Creds> {
        // A short step still gets a fair number of requests.
        let least = Duration::from_millis(1000);
        if let Some(rest) = least.checked_sub(self.started.elapsed()) {
            tokio::time::sleep(rest).await;
        }
        self.stop.store(true, Ordering::Relaxed);
        let (mut creds, mut requests, mut failures) = (Vec::new(), 0, Vec::new());
        for task in self.tasks {
            let (c, n, f) = task.await.unwrap();
            creds.push(c);
            requests += n;
            failures.extend(f);
        }
        assert!(
            failures.is_empty(),
            "{step}: {} of {requests} requests failed: {:#?}",
            failures.len(),
            &failures[..failures.len().min(8)]
        );
        // A floor low enough for a loaded CI machine: the loop ran through the step.
        assert!(requests >= 10, "{step}: only {requests} requests");
        eprintln!("{step}: {requests} requests, 0 failed");
        creds
    }
}

/// One loop task: until `stop`, the probes of the module comment on both replicas in turn.
async fn run_loop(
    world: Arc<World>,
    stop: Arc<AtomicBool>,
    mut creds: Creds,
    task: usize,
) -> (Creds, usize, Vec<String>) {
    let client = plain_client();
    let (mut requests, mut failures) = (0usize, Vec::new());
    let mut i = task;
    while !stop.load(Ordering::Relaxed) {
        let here = world.gates[i % 2].as_str();
        let there = world.gates[(i + 1) % 2].as_str();
        let cookie = format!("_gatehouse={}", creds.cookie);
        let bearer = format!(
            "Bearer {}",
            creds.pair["access_token"].as_str().unwrap_or("")
        );
        let mut outcomes = vec![
            echo_ok(&world, &client, here, "cookie", &cookie).await,
            echo_ok(&world, &client, there, "authorization", &bearer).await,
        ];
        requests += 2;
        match i % 8 {
            3 => {
                requests += 1;
                match refreshed(&world, &client, here, &creds.pair).await {
                    Ok(pair) => creds.pair = pair,
                    Err(e) => outcomes.push(Err(e)),
                }
            }
            5 => {
                requests += 1;
                outcomes.push(webhook_ok(&world, &client, there).await);
            }
            7 => {
                requests += 5;
                outcomes.push(browser_sign_in_ok(&world, here, there).await);
            }
            _ => {}
        }
        failures.extend(outcomes.into_iter().filter_map(Result::err));
        i += 1;
    }
    (creds, requests, failures)
}

/// `GET /echo` with `header: value` answers 200, with an assertion the app can verify.
async fn echo_ok(
    world: &World,
    client: &reqwest::Client,
    gate: &str,
    header: &str,
    value: &str,
) -> Result<(), String> {
    let r = client
        .get(format!("{gate}/echo"))
        .header(header, value)
        .header("accept", "application/json")
        .send()
        .await
        .map_err(|e| format!("{gate} {header}: {e}"))?;
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    if status != 200 {
        return Err(format!("{gate} {header}: {status} {body}"));
    }
    let assertion = upstream_header(&body, "x-gatehouse-jwt-assertion")
        .ok_or_else(|| format!("{gate} {header}: no assertion"))?;
    verified(world, assertion, &world.audience).map_err(|e| format!("{gate} assertion: {e}"))
}

/// Verify an ES256 JWT of the gates against the JWKS cached in `world`, as an app does.
fn verified(world: &World, token: &str, audience: &str) -> Result<(), String> {
    let kid = decode_header(token)
        .map_err(|e| e.to_string())?
        .kid
        .ok_or("no kid")?;
    let jwks = world.jwks.lock().unwrap();
    let jwk = jwks
        .find(&kid)
        .ok_or_else(|| format!("kid {kid} is not in the JWKS the app cached"))?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_issuer(&[&world.issuer]);
    validation.set_audience(&[audience]);
    decode::<Value>(token, &key, &validation)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// `POST /oauth2/refresh`: the next pair; with ES256 its access token verifies against the
/// JWKS the client cached.
async fn refreshed(
    world: &World,
    client: &reqwest::Client,
    gate: &str,
    pair: &Value,
) -> Result<Value, String> {
    let r = client
        .post(format!("{gate}/oauth2/refresh"))
        .json(&json!({ "refresh_token": pair["refresh_token"] }))
        .send()
        .await
        .map_err(|e| format!("{gate} refresh: {e}"))?;
    let status = r.status().as_u16();
    let next: Value = r.json().await.unwrap_or(Value::Null);
    if status != 200 {
        return Err(format!("{gate} refresh: {status} {next}"));
    }
    let access = next["access_token"].as_str().unwrap_or("");
    let alg = decode_header(access).map_err(|e| e.to_string())?.alg;
    if alg == Algorithm::ES256 {
        verified(world, access, "gatehouse").map_err(|e| format!("{gate} access token: {e}"))?;
    }
    Ok(next)
}

/// `X-Hub-Signature-256` of `body` with `secret`, as GitHub signs deliveries.
fn github_signature(secret: &str, body: &[u8]) -> String {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

/// A webhook `ping` signed with `secret`; the status.
async fn ping(client: &reqwest::Client, gate: &str, secret: &str) -> Result<u16, String> {
    let body =
        serde_json::to_vec(&json!({"zen": "Keep it logically awesome.", "hook_id": 1})).unwrap();
    let r = client
        .post(format!("{gate}/oauth2/github/webhook"))
        .header("content-type", "application/json")
        .header("x-github-event", "ping")
        .header("x-github-delivery", delivery_id())
        .header("x-hub-signature-256", github_signature(secret, &body))
        .body(body)
        .send()
        .await
        .map_err(|e| format!("{gate} webhook: {e}"))?;
    Ok(r.status().as_u16())
}

/// A `ping` signed as GitHub signs now is taken.
async fn webhook_ok(world: &World, client: &reqwest::Client, gate: &str) -> Result<(), String> {
    let secret = world.webhook_secret.lock().unwrap().clone();
    match ping(client, gate, &secret).await? {
        200 => Ok(()),
        status => Err(format!("{gate} webhook: {status}")),
    }
}

/// A browser sign-in started on `here`, back from GitHub on `there` (a load balancer may send
/// the callback to either), whose cookie then works on `here`.
async fn browser_sign_in_ok(world: &World, here: &str, there: &str) -> Result<(), String> {
    let browser = browser();
    let start = browser
        .get(format!("{here}/oauth2/start?rd=/echo"))
        .send()
        .await
        .map_err(|e| format!("{here} start: {e}"))?;
    if start.status() != 302 {
        return Err(format!("{here} start: {}", start.status()));
    }
    let callback = consent(&browser, &location(&start), "monalisa").await;
    let callback = callback.replacen(&world.issuer, there, 1);
    let done = browser
        .get(&callback)
        .send()
        .await
        .map_err(|e| format!("{there} callback: {e}"))?;
    if done.status() != 302 || !location(&done).ends_with("/echo") {
        let status = done.status();
        return Err(format!(
            "{there} callback: {status} {}",
            done.text().await.unwrap_or_default()
        ));
    }
    let cookie = format!("_gatehouse={}", session_cookie(&done));
    echo_ok(world, &plain_client(), here, "cookie", &cookie).await
}

fn skip(test: &str) -> bool {
    !available(test)
}

/// `session.secrets`: add S2 everywhere, promote it, drop S1. The access-token HMAC keys are
/// derived from the session secrets (no `tokens.hmac_secret`): a bearer token one replica
/// signed after its promotion works on the other, not yet promoted, and the reverse.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_secrets_rotate_across_replicas_without_a_failed_request() {
    if skip("session_secrets_rotate_across_replicas_without_a_failed_request") {
        return;
    }
    let f = Fleet::start(|_| String::new()).await;
    let step = |from: &[[u8; 32]], to: &[[u8; 32]]| {
        vec![(keys_line("secrets", from), keys_line("secrets", to))]
    };
    let creds = f.fresh_creds().await;
    let load = f.load(creds);
    f.roll(&step(&[S1], &[S1, S2])).await;
    let creds = load.finish("session secrets: add S2").await;
    let load = f.load(creds);
    f.roll(&step(&[S1, S2], &[S2, S1])).await;
    load.finish("session secrets: promote S2").await;
    // `session.ttl` later, every cookie and token in use was made with S2.
    let creds = f.fresh_creds().await;
    let kid = |cookie: &str| {
        let header = cookie.split('.').next().unwrap();
        let header =
            base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, header)
                .unwrap();
        serde_json::from_slice::<Value>(&header).unwrap()["kid"].clone()
    };
    assert!(creds
        .iter()
        .all(|c| kid(&c.cookie) == gatehouse::session::key_id(&S2).as_str()));
    let load = f.load(creds);
    f.roll(&step(&[S2, S1], &[S2])).await;
    load.finish("session secrets: drop S1").await;
}

/// `session.store_secrets`: the GitHub tokens sealed in session records and refresh families
/// stay readable on both replicas while the store key is added, promoted and dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_secrets_rotate_across_replicas_without_a_failed_request() {
    if skip("store_secrets_rotate_across_replicas_without_a_failed_request") {
        return;
    }
    let f = Fleet::start(|_| String::new()).await;
    let step = |from: &[[u8; 32]], to: &[[u8; 32]]| {
        vec![(
            keys_line("store_secrets", from),
            keys_line("store_secrets", to),
        )]
    };
    let load = f.load(f.fresh_creds().await);
    f.roll(&step(&[T1], &[T1, T2])).await;
    let creds = load.finish("store secrets: add T2").await;
    assert_eq!(
        f.sealed_in_redis(T2).await,
        0,
        "T2 seals nothing before it is first"
    );
    assert!(f.sealed_in_redis(T1).await > 0);
    let load = f.load(creds);
    f.roll(&step(&[T1, T2], &[T2, T1])).await;
    load.finish("store secrets: promote T2").await;
    assert!(f.sealed_in_redis(T2).await > 0, "T2 seals once it is first");
    let load = f.load(f.fresh_creds().await);
    f.roll(&step(&[T2, T1], &[T2])).await;
    load.finish("store secrets: drop T1").await;
}

/// `tokens.signing_key_files` (ES256) and `upstream.assertion_key_files`: the new keys are
/// published in the JWKS first, apps and clients fetch it, then the new keys sign; tokens and
/// assertions verify against what they cached at every step.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_and_assertion_keys_rotate_across_replicas_without_a_failed_request() {
    if skip("token_and_assertion_keys_rotate_across_replicas_without_a_failed_request") {
        return;
    }
    let f = Fleet::start(|dir| {
        let k1 = key_file(dir, "k1.pem");
        key_file(dir, "k2.pem");
        format!(
            "signing_alg = \"ES256\"{}",
            files_line("signing_key_files", &[&k1])
        )
    })
    .await;
    let (k1, k2, a1, a2) = (
        f.key("k1.pem"),
        f.key("k2.pem"),
        f.key("a1.pem"),
        f.key("a2.pem"),
    );
    let step = |from: [&[&PathBuf]; 2], to: [&[&PathBuf]; 2]| {
        vec![
            (
                files_line("signing_key_files", from[0]),
                files_line("signing_key_files", to[0]),
            ),
            (
                files_line("assertion_key_files", from[1]),
                files_line("assertion_key_files", to[1]),
            ),
        ]
    };
    let jwks_kids = || {
        let jwks = f.world.jwks.lock().unwrap();
        jwks.keys
            .iter()
            .map(|k| k.common.key_id.clone().unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(jwks_kids().len(), 2, "one assertion key, one token key");

    let load = f.load(f.fresh_creds().await);
    f.roll(&step([&[&k1], &[&a1]], [&[&k1, &k2], &[&a1, &a2]]))
        .await;
    let creds = load.finish("token and assertion keys: add K2, A2").await;
    // Apps and clients fetch the JWKS again once their copy expires (max-age): both new keys
    // are in it before either signs.
    f.apps_fetch_the_jwks().await;
    assert_eq!(jwks_kids().len(), 4);

    let load = f.load(creds);
    f.roll(&step(
        [&[&k1, &k2], &[&a1, &a2]],
        [&[&k2, &k1], &[&a2, &a1]],
    ))
    .await;
    load.finish("token and assertion keys: promote K2, A2")
        .await;
    let load = f.load(f.fresh_creds().await);
    f.roll(&step([&[&k2, &k1], &[&a2, &a1]], [&[&k2], &[&a2]]))
        .await;
    load.finish("token and assertion keys: drop K1, A1").await;
    f.apps_fetch_the_jwks().await;
    assert_eq!(jwks_kids().len(), 2);
}

/// `github.client_secret`: the new secret goes in the config (with the old one as
/// `client_secret_previous`) before or after it exists at GitHub; a code exchange GitHub
/// refuses with one is tried with the other, and the metric shows when the old one stops being
/// used, so it can be deleted at GitHub and then from the config.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_github_client_secret_rotates_across_replicas_without_a_failed_sign_in() {
    if skip("the_github_client_secret_rotates_across_replicas_without_a_failed_sign_in") {
        return;
    }
    let f = Fleet::start(|_| String::new()).await;
    let configured = "client_secret = \"${TEST_GH_SECRET}\"".to_string();
    let both = format!("client_secret = \"{C2}\"\nclient_secret_previous = \"{CLIENT_SECRET}\"");
    let load = f.load(f.fresh_creds().await);
    f.roll(&[(configured, both.clone())]).await;
    f.sign_in_on_each().await;
    let creds = load
        .finish("client secret: C2 configured, GitHub knows only C1")
        .await;
    let old_used = f.client_secret_count("previous").await;
    assert!(
        old_used > 0,
        "sign-ins went through with the previous secret"
    );
    // Revoking the GitHub token at sign-out also falls back to the previous secret.
    let cookie = session_of(&f.a, "hubot").await;
    let before = github_tokens(&f).await;
    let out = plain_client()
        .get(format!("{}/oauth2/sign_out", f.world.gates[1]))
        .header("cookie", format!("_gatehouse={cookie}"))
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 302);
    assert_eq!(
        github_tokens(&f).await + 1,
        before,
        "the token was revoked at GitHub"
    );

    let load = f.load(creds);
    f.a.mock.set_client_secrets(CLIENT_ID, &[CLIENT_SECRET, C2]);
    f.sign_in_on_each().await;
    let creds = load.finish("client secret: GitHub generates C2").await;
    let old_used = f.client_secret_count("previous").await;
    let new_used = f.client_secret_count("current").await;

    let load = f.load(creds);
    f.a.mock.set_client_secrets(CLIENT_ID, &[C2]);
    f.sign_in_on_each().await;
    let creds = load.finish("client secret: GitHub deletes C1").await;
    assert_eq!(f.client_secret_count("previous").await, old_used);
    assert!(f.client_secret_count("current").await > new_used);

    let load = f.load(creds);
    f.roll(&[(both, format!("client_secret = \"{C2}\""))]).await;
    load.finish("client secret: C1 dropped from the config")
        .await;
}

/// How many tokens the mock GitHub holds.
async fn github_tokens(f: &Fleet) -> u64 {
    let stats: Value = plain_client()
        .get(format!("{}/_mock/stats", f.a.mock_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    stats["tokens"].as_u64().unwrap()
}

/// `github.webhook_secret`: the new secret goes in the config with the old one as
/// `webhook_secret_previous`, GitHub is switched to the new one, then the old one is dropped;
/// deliveries are taken all along, and the old secret is refused at the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_secret_rotates_across_replicas_without_a_refused_delivery() {
    if skip("the_webhook_secret_rotates_across_replicas_without_a_refused_delivery") {
        return;
    }
    let f = Fleet::start(|_| String::new()).await;
    let one = format!("webhook_secret = \"{W1}\"");
    let both = format!("webhook_secret = \"{W2}\"\nwebhook_secret_previous = \"{W1}\"");
    let load = f.load(f.fresh_creds().await);
    f.roll(&[(one, both.clone())]).await;
    f.every_gate_takes(W1).await;
    let creds = load
        .finish("webhook secret: W2 configured, W1 accepted too")
        .await;

    let load = f.load(creds);
    *f.world.webhook_secret.lock().unwrap() = W2.to_string();
    f.every_gate_takes(W2).await;
    let creds = load.finish("webhook secret: GitHub signs with W2").await;

    let load = f.load(creds);
    f.roll(&[(both, format!("webhook_secret = \"{W2}\""))])
        .await;
    load.finish("webhook secret: W1 dropped").await;
    for gate in &f.world.gates {
        assert_eq!(ping(&plain_client(), gate, W1).await, Ok(401), "{gate}");
        assert_eq!(ping(&plain_client(), gate, W2).await, Ok(200), "{gate}");
    }
}
