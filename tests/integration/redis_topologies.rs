//! The two Redis topologies beyond a plain `redis://`, against real Debian `redis-server`s:
//! TLS (`rediss://` with a private CA, `session.redis_ca_file`) and Sentinel (a master, a
//! replica and a sentinel), including a failover that the same `RedisStore` follows.

use crate::common::redis::{available, ca_and_server_cert, signed_in, status_with, RedisServer};
use crate::common::*;

use gatehouse::store::{
    conformance, RedisOptions, RedisStore, SessionRecord, SessionRecords, Store,
};
use std::time::{Duration, Instant};

const MASTER: &str = "mymaster";

fn options() -> RedisOptions {
    RedisOptions {
        url: None,
        sentinel_urls: vec![],
        sentinel_master: None,
        cluster_urls: vec![],
        ca_pem: None,
        timeout: Duration::from_millis(500),
        max_waiting: 64,
        prefix: "topo:".into(),
    }
}

/// The store key, separate from the cookie key ([`KEY_A`]).
fn store_secret() -> String {
    b64(&[5; 32])
}

/// A TLS-only Redis with a certificate from a private CA; the CA's PEM and its file.
struct TlsRedis {
    server: RedisServer,
    ca_pem: String,
    ca_file: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

fn tls_redis() -> TlsRedis {
    let (ca, cert, key) = ca_and_server_cert();
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, pem: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, pem).unwrap();
        path
    };
    let (ca_file, cert_file, key_file) = (
        file("ca.pem", &ca),
        file("cert.pem", &cert),
        file("key.pem", &key),
    );
    let server = RedisServer::start_tls(&cert_file, &key_file, &ca_file);
    assert!(server.url().starts_with("rediss://127.0.0.1:"));
    TlsRedis {
        server,
        ca_pem: ca,
        ca_file,
        _dir: dir,
    }
}

#[tokio::test]
async fn rediss_with_the_configured_ca_passes_the_suite() {
    if !available("rediss_with_the_configured_ca_passes_the_suite") {
        return;
    }
    gatehouse::install_crypto_provider();
    let tls = tls_redis();
    let store = RedisStore::new(RedisOptions {
        url: Some(tls.server.url()),
        ca_pem: Some(tls.ca_pem.clone().into_bytes()),
        ..options()
    });
    store.ping().await.expect("TLS with the private CA");
    conformance::run(&store).await;
}

#[tokio::test]
async fn rediss_with_other_roots_is_a_quick_error_never_a_panic() {
    if !available("rediss_with_other_roots_is_a_quick_error_never_a_panic") {
        return;
    }
    gatehouse::install_crypto_provider();
    let tls = tls_redis();
    let (other_ca, _, _) = ca_and_server_cert();
    let cases = [
        ("the system's roots", tls.server.url(), None),
        ("another CA", tls.server.url(), Some(other_ca.into_bytes())),
        // Plain Redis protocol to a TLS port: no answer the client understands.
        (
            "plain redis:// to the TLS port",
            tls.server.url().replacen("rediss://", "redis://", 1),
            None,
        ),
    ];
    for (what, url, ca_pem) in cases {
        if url.starts_with("rediss://") {
            // What lies under the store's "no answer": the certificate is refused.
            let client = match &ca_pem {
                Some(pem) => ::redis::Client::build_with_tls(
                    url.as_str(),
                    ::redis::TlsCertificates {
                        client_tls: None,
                        root_cert: Some(pem.clone()),
                    },
                ),
                None => ::redis::Client::open(url.as_str()),
            }
            .unwrap();
            let direct = client.get_multiplexed_async_connection().await.err();
            let direct = direct.map(|e| e.to_string()).unwrap_or_default();
            println!("{what}, a direct connection: {direct}");
            assert!(
                direct.contains("invalid peer certificate"),
                "{what}: {direct}"
            );
        }
        let store_url_is_tls = url.starts_with("rediss://");
        let store = RedisStore::new(RedisOptions {
            url: Some(url),
            ca_pem,
            ..options()
        });
        for _ in 0..3 {
            let asked = Instant::now();
            let err = store.ping().await.expect_err(what);
            let took = asked.elapsed();
            println!("{what}: {err} (after {took:?})");
            assert!(
                took < Duration::from_millis(1500),
                "{what}: must fail within the timeout, took {took:?}"
            );
            assert!(err.to_string().contains("unavailable"), "{what}: {err}");
            if store_url_is_tls {
                assert!(
                    err.to_string().contains("certificate"),
                    "{what}: the operator is told the real reason: {err}"
                );
            }
            assert!(
                store.session("x", 0).await.is_err(),
                "{what}: fail closed, not 'no session'"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gate_on_rediss_with_redis_ca_file_signs_in_and_serves() {
    if !available("a_gate_on_rediss_with_redis_ca_file_signs_in_and_serves") {
        return;
    }
    let tls = tls_redis();
    let h = Harness::start(GateOptions {
        session_extra: format!(
            "store = \"redis\"\nredis_url = \"{}\"\nredis_ca_file = {:?}\nstore_secrets = [\"{}\"]\n",
            tls.server.url(),
            tls.ca_file.display().to_string(),
            store_secret()
        ),
        ..GateOptions::default()
    })
    .await;
    let cookie = signed_in(&h, "monalisa").await;
    assert_eq!(
        status_with(&h.url("/echo"), &cookie).await,
        200,
        "{}",
        h.log()
    );

    // The session really is in the TLS Redis.
    gatehouse::install_crypto_provider();
    let client = ::redis::Client::build_with_tls(
        tls.server.url(),
        ::redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(tls.ca_pem.clone().into_bytes()),
        },
    )
    .unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = ::redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut c)
        .await
        .unwrap();
    assert!(
        keys.iter().any(|k| k.contains("sess:")),
        "a session key in Redis: {keys:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Sentinel

/// A master, one replica of it, and one sentinel watching the master as [`MASTER`].
struct SentinelSet {
    master: RedisServer,
    replica: RedisServer,
    sentinel: RedisServer,
}

async fn connect(url: &str) -> ::redis::aio::MultiplexedConnection {
    ::redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// Poll `check` every 50 ms until it holds; fail after `limit`.
async fn until<F, Fut>(what: &str, limit: Duration, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < limit, "{what}: not after {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    started.elapsed()
}

async fn replication_info(url: &str) -> String {
    let Ok(client) = ::redis::Client::open(url) else {
        return String::new();
    };
    let Ok(Ok(mut c)) = tokio::time::timeout(
        Duration::from_millis(500),
        client.get_multiplexed_async_connection(),
    )
    .await
    else {
        return String::new();
    };
    ::redis::cmd("INFO")
        .arg("replication")
        .query_async(&mut c)
        .await
        .unwrap_or_default()
}

/// The master's port according to the sentinel.
async fn sentinel_master_port(sentinel: &RedisServer) -> Option<u16> {
    let mut c = connect(&sentinel.url()).await;
    let addr: Option<(String, u16)> = ::redis::cmd("SENTINEL")
        .arg("get-master-addr-by-name")
        .arg(MASTER)
        .query_async(&mut c)
        .await
        .ok()?;
    addr.map(|(_, port)| port)
}

async fn sentinel_set() -> SentinelSet {
    let master = RedisServer::start();
    let replica = RedisServer::start_with(&["--replicaof", "127.0.0.1", &master.port.to_string()]);
    until(
        "replica linked to its master",
        Duration::from_secs(10),
        || async {
            replication_info(&replica.url())
                .await
                .contains("master_link_status:up")
        },
    )
    .await;
    // Started once the replica is linked, so its first INFO of the master lists the replica
    // (the next one would be 10 s later).
    let sentinel = RedisServer::start_sentinel(MASTER, master.port);
    let replica_port = replica.port.to_string();
    until(
        "sentinel knows the replica",
        Duration::from_secs(10),
        || async {
            let mut c = connect(&sentinel.url()).await;
            let replicas: Vec<std::collections::HashMap<String, String>> = ::redis::cmd("SENTINEL")
                .arg("replicas")
                .arg(MASTER)
                .query_async(&mut c)
                .await
                .unwrap_or_default();
            replicas.iter().any(|r| {
                r.get("port") == Some(&replica_port)
                    && r.get("flags").is_some_and(|f| f == "slave")
                    && r.get("master-link-status").is_some_and(|s| s == "ok")
            })
        },
    )
    .await;
    SentinelSet {
        master,
        replica,
        sentinel,
    }
}

fn sentinel_store(set: &SentinelSet) -> RedisStore {
    RedisStore::new(RedisOptions {
        sentinel_urls: vec![set.sentinel.url()],
        sentinel_master: Some(MASTER.into()),
        ..options()
    })
}

pub(crate) fn record(user: &str) -> SessionRecord {
    let now = gatehouse::clock::unix_now();
    let mut claims = claims_for(user, 4242);
    claims.exp = now + 3600;
    SessionRecord {
        claims,
        sealed_token: None,
        created_at: now,
        last_seen: now,
        ip: None,
        user_agent: None,
    }
}

#[tokio::test]
async fn sentinel_finds_the_master_and_passes_the_suite() {
    if !available("sentinel_finds_the_master_and_passes_the_suite") {
        return;
    }
    let set = sentinel_set().await;
    assert_eq!(
        sentinel_master_port(&set.sentinel).await,
        Some(set.master.port)
    );
    let store = sentinel_store(&set);
    conformance::run(&store).await;
    // The writes went to the master (the replica only copies them).
    let info = replication_info(&set.master.url()).await;
    assert!(info.contains("role:master"), "{info}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_failover_the_same_store_follows_the_new_master() {
    if !available("after_a_failover_the_same_store_follows_the_new_master") {
        return;
    }
    let mut set = sentinel_set().await;
    let store = sentinel_store(&set);
    store
        .put_session("before-failover", &record("monalisa"))
        .await
        .expect("written to the first master");

    let killed = Instant::now();
    set.master.stop();
    let old_port = set.master.port;
    let promoted = until(
        "sentinel promotes the replica",
        Duration::from_secs(15),
        || async {
            sentinel_master_port(&set.sentinel)
                .await
                .is_some_and(|p| p != old_port)
        },
    )
    .await;
    assert_eq!(
        sentinel_master_port(&set.sentinel).await,
        Some(set.replica.port),
        "the replica is the new master"
    );
    println!("sentinel switched to the replica {promoted:?} after the master was killed");

    // The same store, not a new one: it finds the new master by itself.
    let switched = Instant::now();
    let mut errors = 0;
    loop {
        match store.put_session("after-failover", &record("hubot")).await {
            Ok(()) => break,
            Err(e) => {
                errors += 1;
                assert!(
                    switched.elapsed() < Duration::from_secs(10),
                    "the store did not follow the failover: {e}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    println!(
        "the store wrote to the new master {:?} after the switch ({:?} after the kill, {errors} failed calls)",
        switched.elapsed(),
        killed.elapsed()
    );
    let now = gatehouse::clock::unix_now();
    assert!(store
        .session("after-failover", now)
        .await
        .unwrap()
        .is_some());
    conformance::run(&store).await;
    let info = replication_info(&set.replica.url()).await;
    assert!(info.contains("role:master"), "{info}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gate_on_sentinel_keeps_serving_a_session_through_a_failover() {
    if !available("a_gate_on_sentinel_keeps_serving_a_session_through_a_failover") {
        return;
    }
    let mut set = sentinel_set().await;
    let h = Harness::start(GateOptions {
        session_extra: format!(
            "store = \"redis\"\nsentinel_urls = [\"{}\"]\nsentinel_master = \"{MASTER}\"\nstore_secrets = [\"{}\"]\n",
            set.sentinel.url(),
            store_secret()
        ),
        ..GateOptions::default()
    })
    .await;
    let cookie = signed_in(&h, "monalisa").await;
    let echo = h.url("/echo");
    assert_eq!(status_with(&echo, &cookie).await, 200, "{}", h.log());
    // Replication is asynchronous: make sure the session reached the replica before the crash.
    let mut c = connect(&set.master.url()).await;
    let acked: i64 = ::redis::cmd("WAIT")
        .arg(1)
        .arg(1000)
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(acked, 1, "the replica has the session");

    let killed = Instant::now();
    set.master.stop();
    let mut seen = std::collections::BTreeMap::<u16, usize>::new();
    loop {
        let status = status_with(&echo, &cookie).await;
        *seen.entry(status).or_default() += 1;
        // The first quarter second may still be served from the gate's copy of the record;
        // what counts is 200 again after the outage showed.
        if status == 200 && seen.contains_key(&503) {
            break;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(20),
            "the gate did not follow the failover: {seen:?}\n{}",
            h.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "the gate served the session again {:?} after the master was killed; statuses meanwhile: {seen:?}",
        killed.elapsed()
    );
    assert!(
        seen.keys().all(|s| [200, 503].contains(s)),
        "during the failover: unavailable, never signed out or let through: {seen:?}"
    );
    assert_eq!(
        sentinel_master_port(&set.sentinel).await,
        Some(set.replica.port)
    );
    // New sign-ins land on the new master too.
    let other = signed_in(&h, "hubot").await;
    assert_eq!(status_with(&echo, &other).await, 200);
}
