//! The Redis store on a real Redis Cluster (three masters that the test starts with
//! `redis-server --cluster-enabled yes` and `redis-cli --cluster create`): the store suite,
//! with every key under the one hash tag `{PREFIX}`; and two gate replicas sharing it.

use crate::common::redis::{available, RedisCluster};
use crate::replicas::{sessions_cross_replicas, webhooks_cut_off_everywhere};

use gatehouse::store::{conformance, RedisOptions, RedisStore, Store};
use std::time::Duration;

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
    let out = std::process::Command::new("redis-cli")
        .args(["-p", &port.to_string(), "--scan"])
        .output()
        .expect("redis-cli --scan");
    String::from_utf8_lossy(&out.stdout)
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
