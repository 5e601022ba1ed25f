//! Revocations that stick (SECURITY.md "Revocation guarantees"), through running gates and a
//! real `redis-server`: a revocation survives `FLUSHALL`, a restart without persistence and a
//! list rolled back to an older snapshot, and one made after such a loss is seen by every
//! replica (a restarted counter cannot hide it); what nobody can vouch for is refused.
//! Shortening `session.ttl` shortens sessions and tokens already out, and a revocation outlives
//! a ttl lengthened again. A membership re-check never re-creates a session signed out while
//! GitHub was being asked.

use crate::common::redis::{
    available, redis_cmd, signed_in, status_with, store_secret, until_status, RedisServer,
};
use crate::common::*;

use std::time::{Duration, Instant};

/// A gate on `redis` with sessions in `store` ("cookie" or "redis").
fn redis_gate(redis: &RedisServer, store: &str, access_extra: &str) -> GateOptions {
    GateOptions {
        access_extra: access_extra.into(),
        session_extra: redis.session_config(store),
        ..GateOptions::default()
    }
}

/// `url` with `cookie` answers `want` on every try for `during`.
async fn keeps_status(url: &str, cookie: &str, want: u16, during: Duration, what: &str) {
    let started = Instant::now();
    while started.elapsed() < during {
        assert_eq!(status_with(url, cookie).await, want, "{what} ({url})");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sign out everywhere (every session and token of the user) on `gate` with `cookie`.
async fn sign_out_everywhere(gate: &str, cookie: &str) {
    let r = plain_client()
        .post(format!("{gate}/oauth2/sign_out?everywhere=1"))
        .header("cookie", format!("_gatehouse={cookie}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302, "sign out everywhere on {gate}");
}

async fn user_id(gate: &str, cookie: &str) -> String {
    let info: serde_json::Value = get_with_session(&format!("{gate}/oauth2/userinfo"), cookie)
        .await
        .json()
        .await
        .unwrap();
    info["user_id"].as_str().unwrap().to_string()
}

/// A list as an earlier run of this version left it (floor 0), so cookies minted as if issued
/// before the gate started are judged on their own (a first start would end them).
async fn existing_list(redis: &RedisServer) {
    let meta = r#"{"end_before":0,"recheck_before":0,"expires_at":4102444800,"epoch":"earlier","version":1,"change":"c","floor":0,"keep":0}"#;
    let _: () = redis_cmd(redis, &["HSET", "gatehouse:marks:list", "#meta", meta]).await;
}

/// Wait until `log` (read again and again) contains `needle`.
async fn until_logged(log: impl Fn() -> String, needle: &str) {
    let started = Instant::now();
    while !log().contains(needle) {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "`{needle}` never logged:\n{}",
            log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_survives_flushall_and_one_made_after_it_is_seen_by_every_replica() {
    if !available("a_revocation_survives_flushall") {
        return;
    }
    let redis = RedisServer::start();
    let a = Harness::start(redis_gate(&redis, "cookie", "")).await;
    let b = a.spawn_replica("b").await;
    let mona = signed_in(&a, "monalisa").await;
    let octo = signed_in(&a, "octocat").await;
    for gate in [a.url("/echo"), b.url("/echo")] {
        assert_eq!(status_with(&gate, &mona).await, 200);
    }
    sign_out_everywhere(&b.gate, &mona).await;
    until_status(&a.url("/echo"), &mona, 401, Duration::from_secs(1)).await;

    // Both replicas have just read the list; then Redis loses everything.
    for gate in [a.url("/echo"), b.url("/echo")] {
        assert_eq!(status_with(&gate, &octo).await, 200);
    }
    let _: () = redis_cmd(&redis, &["FLUSHALL"]).await;
    for gate in [a.url("/echo"), b.url("/echo")] {
        keeps_status(
            &gate,
            &mona,
            401,
            Duration::from_millis(600),
            "revoked before FLUSHALL",
        )
        .await;
    }
    // The replicas' copies vouched for the lost list: sessions nobody revoked go on.
    for gate in [a.url("/echo"), b.url("/echo")] {
        assert_eq!(
            status_with(&gate, &octo).await,
            200,
            "not revoked: {}",
            a.log()
        );
    }
    assert!(
        a.log().contains("put back") || b.log().contains("put back"),
        "the loss is logged"
    );

    // A sign-in after the loss, revoked on B: A must see it, though the list started anew.
    let hubot = signed_in(&a, "hubot").await;
    for gate in [a.url("/echo"), b.url("/echo")] {
        assert_eq!(status_with(&gate, &hubot).await, 200);
    }
    sign_out_everywhere(&b.gate, &hubot).await;
    let took = until_status(&a.url("/echo"), &hubot, 401, Duration::from_secs(1)).await;
    println!("a revocation after FLUSHALL reached the other replica after {took:?}");
    assert_eq!(status_with(&a.url("/echo"), &mona).await, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_restart_without_persistence_a_fresh_replica_ends_older_sign_ins() {
    if !available("after_a_restart_without_persistence") {
        return;
    }
    let mut redis = RedisServer::start();
    let mut a = Harness::start(redis_gate(&redis, "cookie", "")).await;
    let mona = signed_in(&a, "monalisa").await;
    let octo = signed_in(&a, "octocat").await;
    sign_out_everywhere(&a.gate, &mona).await;
    assert_eq!(status_with(&a.url("/echo"), &mona).await, 401);
    assert_eq!(status_with(&a.url("/echo"), &octo).await, 200);
    // Gate and Redis both restart: no copy of the old list is left anywhere. Not within the
    // second the lost list was made in: sign-ins of that second are dated after its floor, and
    // a floor made in the same second cannot tell them apart (SECURITY.md, "Revocation
    // guarantees", the window).
    let made = now();
    while now() == made {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    a.restart_with(|config| {
        redis.restart();
        config
    })
    .await;
    assert_eq!(
        status_with(&a.url("/echo"), &mona).await,
        401,
        "a revoked cookie stays refused"
    );
    assert_eq!(
        status_with(&a.url("/echo"), &octo).await,
        401,
        "nothing vouches for the lost list: every older sign-in is ended (fail closed)"
    );
    // Signing in again works at once, in the same second as the new list's floor too.
    for login in ["monalisa", "octocat"] {
        let again = signed_in(&a, login).await;
        assert_eq!(status_with(&a.url("/echo"), &again).await, 200, "{login}");
    }
    // The test's Redis keeps nothing across a restart: the gate says so.
    until_logged(|| a.log(), "appendonly is off").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_rolled_back_to_an_older_snapshot_is_put_back_and_hides_no_later_revocation() {
    if !available("a_list_rolled_back_to_an_older_snapshot") {
        return;
    }
    let mut redis = RedisServer::start();
    let a = Harness::start(redis_gate(&redis, "cookie", "")).await;
    let b = a.spawn_replica("b").await;
    let mona = signed_in(&a, "monalisa").await;
    let octo = signed_in(&a, "octocat").await;
    let hubot = signed_in(&a, "hubot").await;
    for gate in [a.url("/echo"), b.url("/echo")] {
        assert_eq!(status_with(&gate, &octo).await, 200);
    }
    // A snapshot, then a revocation it does not hold.
    let _: () = redis_cmd(&redis, &["SAVE"]).await;
    sign_out_everywhere(&b.gate, &mona).await;
    until_status(&a.url("/echo"), &mona, 401, Duration::from_secs(1)).await;

    // Redis crashes and comes back from the snapshot (as RDB persistence, or a failover to a
    // replica that missed the last writes, would): same list, older version.
    redis.restart();
    // A revocation made on B at once, before A reads: its version number is one A has seen.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = plain_client()
            .post(b.url("/oauth2/sign_out?everywhere=1"))
            .header("cookie", format!("_gatehouse={hubot}"))
            .send()
            .await
            .unwrap();
        if r.status() == 302 {
            break;
        }
        assert!(Instant::now() < deadline, "B cannot revoke: {}", b.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let took = until_status(&a.url("/echo"), &hubot, 401, Duration::from_secs(3)).await;
    println!("a revocation after the rollback reached the other replica after {took:?}");
    for gate in [a.url("/echo"), b.url("/echo")] {
        keeps_status(
            &gate,
            &mona,
            401,
            Duration::from_millis(600),
            "revoked after the snapshot",
        )
        .await;
        assert_eq!(
            status_with(&gate, &octo).await,
            200,
            "the same list: no floor"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_kept_by_an_older_gatehouse_is_adopted_and_eviction_settings_are_warned_about() {
    if !available("a_list_kept_by_an_older_gatehouse") {
        return;
    }
    let redis =
        RedisServer::start_with(&["--maxmemory", "100mb", "--maxmemory-policy", "allkeys-lru"]);
    let now = now();
    // What a Gatehouse from before epochs left: marks, a version counter, no epoch.
    let old_mark = format!(
        "{{\"end_before\":{},\"recheck_before\":0,\"expires_at\":{}}}",
        now - 10,
        now + 3600
    );
    let _: () = redis_cmd(&redis, &["HSET", "gatehouse:marks:list", "4242", &old_mark]).await;
    let _: () = redis_cmd(&redis, &["SET", "gatehouse:marks:version", "7"]).await;
    let a = Harness::start(redis_gate(&redis, "cookie", "")).await;
    // Cookies the older Gatehouse issued a minute ago (the test holds the cookie key).
    let issued = |login: &str, id: u64| {
        let mut claims = claims_for(login, id);
        claims.iat = now - 60;
        mint(KEY_A, &claims)
    };
    let revoked = issued("hubot", 4242);
    let kept = issued("monalisa", 4343);
    assert_eq!(
        status_with(&a.url("/echo"), &revoked).await,
        401,
        "its revocations still hold"
    );
    assert_eq!(
        status_with(&a.url("/echo"), &kept).await,
        200,
        "an upgrade signs nobody out"
    );
    until_logged(|| a.log(), "allkeys-lru can evict the revocation list").await;
    // The adopted list now has an epoch, and the old counter still moves for older replicas.
    let meta: String = redis_cmd(&redis, &["HGET", "gatehouse:marks:list", "#meta"]).await;
    assert!(meta.contains("\"epoch\""), "{meta}");
    let version: u64 = redis_cmd(&redis, &["GET", "gatehouse:marks:version"]).await;
    assert!(version > 7, "{version}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shortening_the_ttl_ends_older_sessions_and_tokens_and_marks_outlive_a_lengthened_ttl() {
    if !available("shortening_the_ttl") {
        return;
    }
    let redis = RedisServer::start();
    existing_list(&redis).await;
    let hmac = [5u8; 32];
    let tokens = format!("\n[tokens]\nhmac_secret = \"{}\"\n", b64(&hmac));
    let mut a = Harness::start(redis_gate(&redis, "cookie", &tokens)).await;
    let now = now();
    // A cookie and an access token of a sign-in two hours old, issued under the 7-day default.
    let mut old = claims_for("hubot", 9_999_001);
    // (Memberships just confirmed: no re-check, which this made-up sign-in could not pass.)
    (old.iat, old.refreshed_at, old.exp) = (now - 7200, now, now + 3600);
    let cookie = mint(KEY_A, &old);
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &serde_json::json!({
            "iss": a.gate, "aud": "gatehouse", "sub": "9999001", "login": "hubot",
            "fam": "family", "iat": now, "exp": now + 600, "auth_time": now - 7200,
        }),
        &jsonwebtoken::EncodingKey::from_secret(&hmac),
    )
    .unwrap();
    let bearer = |gate: String| {
        let token = token.clone();
        async move {
            plain_client()
                .get(gate)
                .header("authorization", format!("Bearer {token}"))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(status_with(&a.url("/echo"), &cookie).await, 200);
    assert_eq!(bearer(a.url("/echo")).await, 200);
    let mona = signed_in(&a, "monalisa").await;
    let mona_id = user_id(&a.gate, &mona).await;

    let with_ttl = |ttl: &'static str| {
        move |config: String| {
            config.replacen("[session]\n", &format!("[session]\nttl = \"{ttl}\"\n"), 1)
        }
    };
    a.restart_with(with_ttl("1h")).await;
    assert_eq!(
        status_with(&a.url("/echo"), &cookie).await,
        401,
        "older than the new ttl"
    );
    assert_eq!(bearer(a.url("/echo")).await, 401, "so is its token");
    assert_eq!(
        status_with(&a.url("/echo"), &mona).await,
        200,
        "a recent sign-in lives on"
    );

    // Revoked under the short ttl: the mark must outlive every session the long ttl made.
    sign_out_everywhere(&a.gate, &mona).await;
    let mark: String = redis_cmd(&redis, &["HGET", "gatehouse:marks:list", &mona_id]).await;
    let mark: serde_json::Value = serde_json::from_str(&mark).unwrap();
    let expires_at = mark["expires_at"].as_u64().unwrap();
    assert!(
        expires_at >= now + 7 * 24 * 3600,
        "the mark expires at {expires_at}, before sessions made under the 7-day ttl end"
    );
    a.restart_with(|config| config.replacen("[session]\nttl = \"1h\"\n", "[session]\n", 1))
        .await;
    assert_eq!(status_with(&a.url("/echo"), &mona).await, 401);
    assert_eq!(
        status_with(&a.url("/echo"), &cookie).await,
        200,
        "lengthened again: the old cookie nobody revoked works until its own end"
    );
}

/// A TCP relay to Redis that can hold Redis' answers back: a call's command runs at once, its
/// answer arrives `delay` later. Widens the gap between a read and the write after it.
struct SlowRelay {
    url: String,
    delay_ms: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl SlowRelay {
    async fn start(redis: &RedisServer) -> SlowRelay {
        use std::sync::atomic::Ordering;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let delay_ms = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (target, delay) = (redis.port, delay_ms.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", target)).await else {
                    continue;
                };
                let (mut client_read, mut client_write) = client.into_split();
                let (mut server_read, mut server_write) = server.into_split();
                tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
                });
                let delay = delay.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 16 * 1024];
                    while let Ok(n) = server_read.read(&mut buf).await {
                        let wait = delay.load(Ordering::Relaxed);
                        if wait > 0 {
                            tokio::time::sleep(Duration::from_millis(wait)).await;
                        }
                        if n == 0 || client_write.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        SlowRelay {
            url: format!("redis://{addr}"),
            delay_ms,
        }
    }

    fn hold_answers(&self, ms: u64) {
        self.delay_ms
            .store(ms, std::sync::atomic::Ordering::Relaxed);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recheck_never_recreates_a_session_signed_out_while_it_ran() {
    if !available("a_recheck_never_recreates_a_session") {
        return;
    }
    let redis = RedisServer::start();
    let relay = SlowRelay::start(&redis).await;
    // A reaches Redis through the relay; B, the replica that signs out, directly.
    let on_relay = |url: &str| {
        GateOptions {
        session_extra: format!(
            "store = \"redis\"\nredis_url = \"{url}\"\nredis_timeout = \"5s\"\nstore_secrets = [\"{}\"]\n",
            store_secret()
        ),
        access_extra: "admin_users = [\"octocat\"]\nrefresh_interval = \"1s\"".into(),
        ..GateOptions::default()
    }
    };
    let a = Harness::start(on_relay(&relay.url)).await;
    // B shares A's mock GitHub, so a re-check B makes (refresh_interval is 1 s) asks the
    // GitHub that issued the session's token.
    let b = a
        .spawn_replica_with("b", |config| config.replace(&relay.url, &redis.url()))
        .await;
    let mona = signed_in(&a, "monalisa").await;
    assert_eq!(
        status_with(&b.url("/echo"), &mona).await,
        200,
        "B reads A's sessions: {}",
        b.log()
    );
    // Due for a re-check; GitHub answers within the second a request waits for it.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let fail = plain_client()
        .post(format!("{}/_mock/fail?mode=slow&delay_ms=700", a.mock_url))
        .send()
        .await
        .unwrap();
    assert!(fail.status().is_success());
    let url = a.url("/echo");
    let recheck = {
        let (url, mona) = (url.clone(), mona.clone());
        tokio::spawn(async move { status_with(&url, &mona).await })
    };
    // While GitHub is asked, A's Redis answers start lagging: the re-check's write will read
    // the session (still there), and only hear so after B's sign-out deleted it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    relay.hold_answers(1200);
    tokio::time::sleep(Duration::from_millis(700)).await;
    let r = plain_client()
        .get(b.url("/oauth2/sign_out"))
        .header("cookie", format!("_gatehouse={mona}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let during = recheck.await.unwrap();
    relay.hold_answers(0);
    println!("the request whose re-check raced the sign-out: {during}");
    // The re-check ran (on a loaded machine it may finish after the request stopped waiting).
    until_logged(|| a.log(), "memberships re-checked").await;
    for gate in [&url, &b.url("/echo")] {
        keeps_status(
            gate,
            &mona,
            401,
            Duration::from_millis(600),
            "signed out during the re-check",
        )
        .await;
    }
}
