//! The store suite (src/store/conformance.rs) against both stores: the in-memory one and a
//! real `redis-server`; and what the Redis store does when Redis goes away and comes back.

use crate::common::redis::{available, RedisServer};

use gatehouse::store::{conformance, MemoryStore, RedisOptions, RedisStore, SessionRecords, Store};
use std::time::{Duration, Instant};

fn options(url: String) -> RedisOptions {
    RedisOptions {
        url: Some(url),
        sentinel_urls: vec![],
        sentinel_master: None,
        cluster_urls: vec![],
        ca_pem: None,
        timeout: Duration::from_millis(500),
        max_waiting: 64,
        prefix: "suite:".into(),
    }
}

#[tokio::test]
async fn the_memory_store_passes_the_suite() {
    conformance::run(&MemoryStore::default()).await;
}

#[tokio::test]
async fn the_redis_store_passes_the_same_suite() {
    if !available("the_redis_store_passes_the_same_suite") {
        return;
    }
    let redis = RedisServer::start();
    let store = RedisStore::new(options(redis.url()));
    conformance::run(&store).await;
    // Twice: keys from the first run must not confuse the second.
    conformance::run(&store).await;
}

#[tokio::test]
async fn redis_down_is_a_quick_error_and_up_again_recovers_without_a_new_store() {
    if !available("redis_down_is_a_quick_error_and_up_again_recovers_without_a_new_store") {
        return;
    }
    let mut redis = RedisServer::start();
    let store = RedisStore::new(options(redis.url()));
    store.ping().await.expect("up");

    redis.stop();
    for _ in 0..5 {
        let asked = Instant::now();
        let err = store.ping().await.expect_err("Redis is down");
        assert!(
            asked.elapsed() < Duration::from_millis(1500),
            "a down Redis must answer within the timeout, took {:?}",
            asked.elapsed()
        );
        assert!(err.to_string().contains("unavailable"), "{err}");
        assert!(
            store.session("x", 0).await.is_err(),
            "fail closed, not 'no session'"
        );
    }

    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.ping().await.is_err() {
        assert!(
            Instant::now() < deadline,
            "the store did not reconnect by itself"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    conformance::run(&store).await;
}

#[tokio::test]
async fn a_stalled_redis_cannot_pile_up_requests() {
    if !available("a_stalled_redis_cannot_pile_up_requests") {
        return;
    }
    // A listener that accepts and never answers: a stalled Redis.
    let stalled = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = stalled.local_addr().unwrap();
    let _hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = stalled.accept().await {
            held.push(socket);
        }
    });
    let store = std::sync::Arc::new(RedisStore::new(RedisOptions {
        max_waiting: 8,
        ..options(format!("redis://{addr}"))
    }));
    let started = Instant::now();
    let calls: Vec<_> = (0..64)
        .map(|i| {
            let store = std::sync::Arc::clone(&store);
            tokio::spawn(async move { store.session(&format!("k{i}"), 0).await })
        })
        .collect();
    let mut refused_at_once = 0;
    for call in calls {
        let result = call.await.unwrap();
        let err = result.expect_err("a stalled Redis never yields a session");
        if err.to_string().contains("too many requests are waiting") {
            refused_at_once += 1;
        }
    }
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "every call ends within the timeout: {:?}",
        started.elapsed()
    );
    assert!(
        refused_at_once >= 64 - 8,
        "beyond the bound, calls are refused at once ({refused_at_once} were)"
    );
}
