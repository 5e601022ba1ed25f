//! The PostgreSQL store on a real PostgreSQL started by the test: the conformance suite every
//! store passes, migrations (idempotent, and safe when replicas start at once), and an outage
//! that is a quick error and recovers without a new store.

use crate::common::postgres::{available, PgServer};

use gatehouse::config::{PostgresOptions, PostgresTls};
use gatehouse::store::{conformance, PostgresStore, Store};
use std::time::{Duration, Instant};

fn options(pg: &PgServer) -> PostgresOptions {
    PostgresOptions {
        url: pg.url(),
        tls: PostgresTls::Disable,
        ca_pem: None,
        timeout: Duration::from_millis(500),
        pool_size: 8,
        schema: "gatehouse".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store_passes_the_store_suite_twice_on_one_database() {
    if !available("postgres_store_passes_the_store_suite") {
        return;
    }
    let pg = PgServer::start();
    let store = PostgresStore::new(options(&pg)).unwrap();
    conformance::run(&store).await;
    // A second process on the same database: the schema is there, keys are new.
    let again = PostgresStore::new(options(&pg)).unwrap();
    conformance::run(&again).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_run_once_when_stores_start_at_once() {
    if !available("migrations_run_once_when_stores_start_at_once") {
        return;
    }
    let pg = PgServer::start();
    let stores: Vec<PostgresStore> = (0..4)
        .map(|_| PostgresStore::new(options(&pg)).unwrap())
        .collect();
    let runs = futures_util::future::join_all(stores.iter().map(|s| s.migrate())).await;
    let mut applied: Vec<Vec<i32>> = runs.into_iter().map(|r| r.unwrap().applied).collect();
    applied.sort();
    let all: Vec<i32> = gatehouse::store::postgres::migrations::MIGRATIONS
        .iter()
        .map(|m| m.0)
        .collect();
    assert_eq!(
        applied.pop().unwrap(),
        all,
        "one store applied every migration"
    );
    assert!(
        applied.iter().all(Vec::is_empty),
        "the others found nothing to do: {applied:?}"
    );
    for s in &stores {
        s.ping().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_down_is_a_quick_error_and_up_again_recovers_without_a_new_store() {
    if !available("postgres_down_is_a_quick_error") {
        return;
    }
    let mut pg = PgServer::start();
    let store = PostgresStore::new(options(&pg)).unwrap();
    store.ping().await.unwrap();
    pg.kill();
    let started = Instant::now();
    let err = store.ping().await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(err.to_string().contains("unavailable"), "{err}");
    pg.restart();
    let deadline = Instant::now() + Duration::from_secs(5);
    while store.ping().await.is_err() {
        assert!(Instant::now() < deadline, "no recovery");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    conformance::run(&store).await;
}
