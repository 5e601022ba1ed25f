//! The Redis store on a real Redis Cluster (three masters that the test starts with
//! `redis-server --cluster-enabled yes` and `redis-cli --cluster create`): the store suite,
//! with every key under the one hash tag `{PREFIX}`; two gate replicas sharing it; and the
//! master holding the keys failing over to its replica under the same store.

use crate::common::redis::{available, cluster_ok, redis_cli, RedisCluster};
use crate::redis_topologies::record;
use crate::replicas::{sessions_cross_replicas, webhooks_cut_off_everywhere};

use gatehouse::store::{conformance, RedisOptions, RedisStore, SessionRecords, Store};
use std::time::{Duration, Instant};

fn cluster_store(cluster: &RedisCluster) -> RedisStore {
    RedisStore::new(RedisOptions {
        url: None,
        sentinel_urls: vec![],
        sentinel_master: None,
        cluster_urls: cluster.urls(),
        ca_pem: None,
        timeout: Duration::from_millis(1000),
        max_waiting: 64,
        prefix: "cl:".into(),
    })
}

/// The keys one node holds (`redis-cli --scan`).
fn keys_on(port: u16) -> Vec<String> {
    redis_cli(port, &["--scan"])
        .lines()
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn a_three_master_cluster_passes_the_suite() {
    if !available("a_three_master_cluster_passes_the_suite") {
        return;
    }
    let cluster = RedisCluster::start();
    let store = cluster_store(&cluster);
    store.ping().await.expect("the cluster answers");
    conformance::run(&store).await;
    // Every key the suite left carries the hash tag, so all sit on the one master that owns
    // its slot; and they were written through the cluster, not to a single node by chance.
    let keys: Vec<Vec<String>> = cluster.nodes.iter().map(|n| keys_on(n.port)).collect();
    let holding: Vec<_> = keys.iter().filter(|k| !k.is_empty()).collect();
    assert_eq!(holding.len(), 1, "keys per node: {keys:?}");
    assert!(
        holding[0].iter().all(|k| k.starts_with("{cl:}")),
        "{:?}",
        holding[0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_cluster_sessions_and_logins_cross_replicas_and_sign_out_on_b_ends_it_on_a() {
    if !available("on_a_cluster_sessions_and_logins_cross_replicas") {
        return;
    }
    let cluster = RedisCluster::start();
    sessions_cross_replicas(cluster.session_config("redis")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_cluster_signed_webhooks_cut_users_off_on_every_replica() {
    if !available("on_a_cluster_signed_webhooks_cut_users_off") {
        return;
    }
    let cluster = RedisCluster::start();
    webhooks_cut_off_everywhere(cluster.session_config("redis")).await;
}

/// The masters (address and slots) node `port` believes in, sorted.
fn masters_seen_by(port: u16) -> Vec<String> {
    let mut masters: Vec<String> = redis_cli(port, &["cluster", "nodes"])
        .lines()
        .filter(|l| l.contains("master") && !l.contains("fail"))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            format!(
                "{} {}",
                f.get(1).unwrap_or(&""),
                f.get(8..).unwrap_or(&[]).join(" ")
            )
        })
        .collect();
    masters.sort();
    masters
}

/// Do all these nodes see the same masters owning the same slots?
fn views_agree(ports: &[u16]) -> bool {
    let first = masters_seen_by(ports[0]);
    first.len() == 3 && ports.iter().all(|&p| masters_seen_by(p) == first)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_master_fails_over_the_same_store_keeps_the_session_and_passes_the_suite() {
    if !available("after_a_master_fails_over_the_same_store") {
        return;
    }
    let mut cluster = RedisCluster::start_with_replicas(1);
    let store = cluster_store(&cluster);
    store
        .put_session("k1", &record("monalisa"))
        .await
        .expect("write before the failover");
    // The master that owns the tag's slot; wait until its replica has the write.
    let master = (0..cluster.nodes.len())
        .find(|&i| {
            let port = cluster.nodes[i].port;
            redis_cli(port, &["info", "replication"]).contains("role:master")
                && !keys_on(port).is_empty()
        })
        .expect("a master holds the keys");
    let port = cluster.nodes[master].port;
    assert_eq!(redis_cli(port, &["wait", "1", "2000"]).trim(), "1");

    cluster.nodes[master].stop();
    let started = Instant::now();
    loop {
        match store.session("k1", gatehouse::clock::unix_now()).await {
            Ok(Some(r)) => {
                assert_eq!(r.claims.login, "monalisa");
                break;
            }
            Ok(None) => panic!("the promoted replica lost the session"),
            Err(e) => assert!(
                started.elapsed() < Duration::from_secs(20),
                "no answer 20 s after the master died: {e}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "the store read again {:?} after the master died",
        started.elapsed()
    );
    // Writes are transactions, which the cluster connection sends to the node its slot map
    // names; with a stale map the whole transaction comes back MOVED (aborted: never applied).
    let mut errors = 0;
    while let Err(e) = store.put_session("k2", &record("hubot")).await {
        errors += 1;
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no write 20 s after the master died: {e}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "the store wrote again {:?} after the master died ({errors} failed writes)",
        started.elapsed()
    );
    let alive: Vec<u16> = cluster
        .nodes
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != master)
        .map(|(_, n)| n.port)
        .collect();
    // The nodes agree a little later; until then some answer CLUSTERDOWN (a 503, never an
    // allow). Once they do, the same store passes the whole suite.
    while !alive.iter().all(|&p| cluster_ok(p)) || !views_agree(&alive) {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the cluster is not ok 20 s after the master died"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "every node says cluster_state:ok and sees the same masters {:?} after the master died",
        started.elapsed()
    );
    // A slot map the store fetched while the nodes disagreed may still be stale: such a call
    // fails (aborted, never applied) and makes the store fetch the map again. Once 20 writes
    // in a row pass, the same store runs the whole suite.
    let (mut steady, mut failed) = (0, 0);
    while steady < 20 {
        match store.put_session("k3", &record("octocat")).await {
            Ok(()) => steady += 1,
            Err(e) => {
                (steady, failed) = (0, failed + 1);
                assert!(
                    started.elapsed() < Duration::from_secs(20),
                    "writes still fail 20 s after the master died: {e}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    println!(
        "writes steady {:?} after the master died ({failed} failed after the nodes agreed)",
        started.elapsed()
    );
    conformance::run(&store).await;
}
