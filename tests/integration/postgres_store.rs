//! The PostgreSQL store on a real PostgreSQL started by the test: the conformance suite every
//! store passes, migrations (idempotent, and safe when replicas start at once), an outage that
//! is a quick error and recovers without a new store; and through running gates: two replicas
//! sharing sessions, sign-out and webhook removals, two gates starting at once on an empty
//! database, and a database killed mid-test (503 and not-ready, then service again).

use crate::common::postgres::{available, PgServer};
use crate::common::redis::{signed_in, status_with, until_status};
use crate::common::*;
use crate::replicas::{sessions_cross_replicas, shared_gate, webhooks_cut_off_everywhere};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_sessions_cross_replicas_and_sign_out_on_b_ends_it_on_a() {
    if !available("postgres_sessions_cross_replicas") {
        return;
    }
    let pg = PgServer::start();
    sessions_cross_replicas(pg.session_config()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_signed_webhooks_cut_users_off_on_every_replica() {
    if !available("postgres_signed_webhooks_cut_users_off") {
        return;
    }
    let pg = PgServer::start();
    webhooks_cut_off_everywhere(pg.session_config()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gates_starting_at_once_on_an_empty_database_share_one_schema() {
    if !available("two_gates_starting_at_once") {
        return;
    }
    let pg = PgServer::start();
    let (a, b) = tokio::join!(
        Harness::start(shared_gate(pg.session_config(), "")),
        Harness::start(shared_gate(pg.session_config(), ""))
    );
    for gate in [&a, &b] {
        let deadline = Instant::now() + Duration::from_secs(10);
        while plain_client()
            .get(gate.url("/ready"))
            .send()
            .await
            .unwrap()
            .status()
            != 200
        {
            assert!(Instant::now() < deadline, "not ready: {}", gate.log());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let cookie = signed_in(&a, "monalisa").await;
    assert_eq!(status_with(&b.url("/echo"), &cookie).await, 200);
    let out = std::process::Command::new("psql")
        .arg(pg.url())
        .args([
            "-tAc",
            "SELECT count(*), max(version) FROM gatehouse.schema_migrations",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let latest = gatehouse::store::postgres::migrations::MIGRATIONS.len();
    assert_eq!(
        text.trim(),
        format!("{latest}|{latest}"),
        "one schema, each migration once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_killed_is_503_and_not_ready_then_service_resumes_by_itself() {
    if !available("postgres_killed_is_503") {
        return;
    }
    let mut pg = PgServer::start();
    let a = Harness::start(shared_gate(pg.session_config(), "")).await;
    let cookie = signed_in(&a, "monalisa").await;
    assert_eq!(status_with(&a.url("/echo"), &cookie).await, 200);
    let ready = || async { plain_client().get(a.url("/ready")).send().await.unwrap() };
    assert_eq!(ready().await.status(), 200);

    pg.kill();
    let took = until_status(&a.url("/echo"), &cookie, 503, Duration::from_secs(3)).await;
    println!("database killed: 503 after {took:?}");
    let not_ready = ready().await;
    assert_eq!(not_ready.status(), 503);
    let text = not_ready.text().await.unwrap();
    assert!(text.contains("session store unavailable"), "{text}");
    assert!(
        !text.contains("postgres://gatehouse@"),
        "no URL in /ready: {text}"
    );

    // The database comes back (crash recovery): the gate uses it again, no restart, and the
    // session, which the database kept, works again.
    pg.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    while ready().await.status() != 200 {
        assert!(Instant::now() < deadline, "not ready again: {}", a.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status_with(&a.url("/echo"), &cookie).await, 200);
    assert!(!a.log().contains("panicked"), "{}", a.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_full_with_a_private_ca_works_and_other_roots_are_refused() {
    if !available("postgres_verify_full") {
        return;
    }
    gatehouse::install_crypto_provider();
    let (ca, cert, key) = redis::ca_and_server_cert();
    let pg = PgServer::start_tls(&cert, &key);
    let tls = |ca: &str| PostgresOptions {
        tls: PostgresTls::VerifyFull,
        ca_pem: Some(ca.as_bytes().to_vec()),
        ..options(&pg)
    };
    let store = PostgresStore::new(tls(&ca)).unwrap();
    store.ping().await.expect("TLS with the private CA");
    conformance::run(&store).await;
    let (other_ca, _, _) = redis::ca_and_server_cert();
    let refused = PostgresStore::new(tls(&other_ca)).unwrap();
    let started = Instant::now();
    let err = refused.ping().await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(err.to_string().contains("unavailable"), "{err}");
}

#[test]
fn the_url_decides_tls_and_prefer_is_refused() {
    let env_url = |url: &str| {
        let toml = format!(
            "[server]\npublic_url = \"https://gate.example.com\"\n[github]\nclient_id = \"x\"\n\
             client_secret = \"y\"\n[session]\nsecrets = [\"{}\"]\nstore = \"postgres\"\n\
             store_secrets = [\"{}\"]\n[access]\nallowed_users = [\"a\"]\n",
            b64(&KEY_A),
            redis::store_secret()
        );
        let url = url.to_string();
        gatehouse::config::load_str(&toml, "test", &move |var| {
            (var == "GATEHOUSE_POSTGRES_URL").then(|| url.clone())
        })
    };
    let from_env = env_url("postgres://g@db.internal/db").unwrap();
    assert_eq!(
        from_env.session.store.postgres.unwrap().url,
        "postgres://g@db.internal/db",
        "GATEHOUSE_POSTGRES_URL applies when postgres_url is unset"
    );
    let check = |url: &str| {
        let toml = format!(
            "[server]\npublic_url = \"https://gate.example.com\"\n[github]\nclient_id = \"x\"\n\
             client_secret = \"y\"\n[session]\nsecrets = [\"{}\"]\nstore = \"postgres\"\n\
             postgres_url = \"{url}\"\nstore_secrets = [\"{}\"]\n[access]\nallowed_users = [\"a\"]\n",
            b64(&KEY_A),
            redis::store_secret()
        );
        gatehouse::config::load_str(&toml, "test", &|_| None)
    };
    let tls_of = |url: &str| check(url).unwrap().session.store.postgres.unwrap().tls;
    assert_eq!(tls_of("postgres://g@127.0.0.1/db"), PostgresTls::Disable);
    assert_eq!(
        tls_of("postgres://g@db.internal/db"),
        PostgresTls::VerifyFull
    );
    assert_eq!(
        tls_of("postgres://g@db.internal/db?sslmode=require"),
        PostgresTls::VerifyFull
    );
    let stripped = check("postgres://g:pw@db.internal/db?sslmode=verify-full&application_name=x")
        .unwrap()
        .session
        .store
        .postgres
        .unwrap()
        .url;
    assert!(
        !stripped.contains("sslmode") && stripped.contains("application_name=x"),
        "{stripped}"
    );
    let missing = env_url("").unwrap_err().to_string();
    assert!(
        missing.contains("session.postgres_url") && missing.contains("GATEHOUSE_POSTGRES_URL"),
        "{missing}"
    );
    let err = check("postgres://g:pw@db.internal/db?sslmode=prefer")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("session.postgres_url") && err.contains("sslmode=prefer"),
        "{err}"
    );
    assert!(!err.contains(":pw@"), "the password is masked: {err}");
}

#[test]
fn gatehouse_migrate_makes_the_schema_then_finds_nothing_to_do() {
    if !available("gatehouse_migrate") {
        return;
    }
    let pg = PgServer::start();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gatehouse.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\npublic_url = \"https://gate.example.com\"\n[github]\nclient_id = \"x\"\n\
             client_secret = \"y\"\n[session]\nsecrets = [\"{}\"]\n{}[access]\nallowed_users = [\"a\"]\n",
            b64(&KEY_A),
            pg.session_config()
        ),
    )
    .unwrap();
    let migrate = || {
        let out = std::process::Command::new(binary())
            .arg("migrate")
            .arg("--config")
            .arg(&config)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    };
    let latest = gatehouse::store::postgres::migrations::MIGRATIONS.len();
    assert_eq!(
        migrate().trim(),
        format!("migrated the schema from version 0 to {latest}")
    );
    assert_eq!(
        migrate().trim(),
        format!("the schema is at version {latest}: nothing to do")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_rows_are_ignored_and_pruned_by_the_store_itself() {
    if !available("expired_rows_are_pruned") {
        return;
    }
    use gatehouse::store::{SessionRecord, SessionRecords};
    let pg = PgServer::start();
    let store = PostgresStore::new(options(&pg)).unwrap();
    let now = gatehouse::clock::unix_now();
    let mut claims: gatehouse::claims::SessionClaims = serde_json::from_value(serde_json::json!({
        "sub": "77", "login": "old", "groups": [], "iat": 1, "exp": now - 10, "refreshed_at": 1
    }))
    .unwrap();
    let record = |claims: &gatehouse::claims::SessionClaims| SessionRecord {
        claims: claims.clone(),
        sealed_token: None,
        created_at: 1,
        last_seen: 1,
        ip: None,
        user_agent: None,
    };
    store
        .put_session("expired", &record(&claims))
        .await
        .unwrap();
    claims.exp = now + 600;
    store.put_session("live", &record(&claims)).await.unwrap();
    assert!(
        store.session("expired", now).await.unwrap().is_none(),
        "reads ignore it"
    );
    assert_eq!(store.count_sessions(now).await.unwrap(), 1);
    let rows = || {
        let out = std::process::Command::new("psql")
            .arg(pg.url())
            .args([
                "-tAc",
                "SELECT string_agg(key, ',' ORDER BY key) FROM gatehouse.sessions",
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    // The first calls of a process prune (then about once a minute), in the background.
    let deadline = Instant::now() + Duration::from_secs(5);
    while rows() != "live" {
        assert!(Instant::now() < deadline, "not pruned: {}", rows());
        store.ping().await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_database_cannot_pile_up_requests() {
    // A listener that accepts and never answers: a stalled PostgreSQL.
    let stalled = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = stalled.local_addr().unwrap();
    let _hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = stalled.accept().await {
            held.push(socket);
        }
    });
    let store = std::sync::Arc::new(
        PostgresStore::new(PostgresOptions {
            url: format!("postgres://gatehouse@{addr}/postgres"),
            tls: PostgresTls::Disable,
            ca_pem: None,
            timeout: Duration::from_millis(500),
            pool_size: 4,
            schema: "gatehouse".into(),
        })
        .unwrap(),
    );
    let started = Instant::now();
    let calls: Vec<_> = (0..64)
        .map(|i| {
            let store = std::sync::Arc::clone(&store);
            tokio::spawn(async move {
                use gatehouse::store::SessionRecords;
                store.session(&format!("k{i}"), 0).await
            })
        })
        .collect();
    for call in calls {
        let err = call
            .await
            .unwrap()
            .expect_err("a stalled database never yields a session");
        assert!(err.to_string().contains("unavailable"), "{err}");
    }
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "every call ends within the timeout: {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_takers_of_one_code_and_racing_refreshes_have_one_winner() {
    if !available("racing_takers_have_one_winner") {
        return;
    }
    use gatehouse::store::{CodeGrant, CodeGrants, CodeTake, RefreshFamilies, RefreshFamily};
    let pg = PgServer::start();
    let store = std::sync::Arc::new(PostgresStore::new(options(&pg)).unwrap());
    let now = gatehouse::clock::unix_now();
    let claims: gatehouse::claims::SessionClaims = serde_json::from_value(serde_json::json!({
        "sub": "5", "login": "racer", "groups": [], "iat": 1, "exp": now + 600, "refreshed_at": 1
    }))
    .unwrap();
    for round in 0..5 {
        let code = format!("race-{round}");
        let grant = CodeGrant {
            session: claims.clone(),
            client_redirect_uri: "http://127.0.0.1:1/cb".into(),
            code_challenge: None,
            expires_at: now + 60,
            client_id: None,
        };
        store.put_code(&code, &grant).await.unwrap();
        let takers: Vec<_> = (0..8)
            .map(|_| {
                let (store, code) = (std::sync::Arc::clone(&store), code.clone());
                tokio::spawn(async move { store.take_code(&code, now).await.unwrap() })
            })
            .collect();
        let (mut granted, mut used) = (0, 0);
        for t in takers {
            match t.await.unwrap() {
                CodeTake::Granted(_) => granted += 1,
                CodeTake::AlreadyUsed => used += 1,
                CodeTake::Unknown => panic!("a racing taker was told the code is unknown"),
            }
        }
        assert_eq!((granted, used), (1, 7), "round {round}");

        let id = format!("family-{round}");
        let family = RefreshFamily {
            generation: 1,
            secret_hash: "h1".into(),
            session: claims.clone(),
            expires_at: now + 600,
            mac_key: String::new(),
            origin: Default::default(),
            issued_at: now,
            client_id: None,
        };
        store.put_family(&id, &family).await.unwrap();
        let refreshes: Vec<_> = (0..8)
            .map(|i| {
                let (store, id) = (std::sync::Arc::clone(&store), id.clone());
                let next = RefreshFamily {
                    generation: 2,
                    secret_hash: format!("h2-{i}"),
                    ..family.clone()
                };
                tokio::spawn(async move { store.advance_family(&id, 1, &next).await.unwrap() })
            })
            .collect();
        let mut won = 0;
        for r in refreshes {
            won += usize::from(r.await.unwrap());
        }
        assert_eq!(
            won, 1,
            "two refreshes with one token cannot both win (round {round})"
        );
    }
}
