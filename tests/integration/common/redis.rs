//! A real `redis-server` (Debian package) on an ephemeral loopback port, owned by the test:
//! plain, TLS-only (`rediss://`), in Sentinel mode, or three masters of a Redis Cluster; plus the few gate helpers the Redis
//! tests share.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const REDIS_SERVER: &str = "redis-server";

pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
    dir: tempfile::TempDir,
    extra: Vec<String>,
    /// Serves only TLS on `port` ([`RedisServer::start_tls`]).
    tls: bool,
    /// Sentinel mode, with this (writable) config file ([`RedisServer::start_sentinel`]).
    sentinel_conf: Option<PathBuf>,
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Is `redis-server` installed? When it is not: fail under CI (`.ci/run` installs it), skip
/// (with a note) on a developer machine.
pub fn available(test: &str) -> bool {
    let found = Command::new(REDIS_SERVER)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "{test}: redis-server is not installed (apt-get install redis-server)"
        );
        eprintln!("SKIPPED {test}: redis-server is not installed (apt-get install redis-server)");
    }
    found
}

impl RedisServer {
    /// Start Redis with no persistence on a free port; waits until it answers.
    pub fn start() -> RedisServer {
        RedisServer::start_with(&[])
    }

    /// Like [`RedisServer::start`] with extra `redis-server` arguments.
    pub fn start_with(extra: &[&str]) -> RedisServer {
        let mut server = RedisServer {
            port: super::free_port(),
            child: None,
            dir: tempfile::tempdir().unwrap(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
            tls: false,
            sentinel_conf: None,
        };
        server.run();
        server
    }

    /// Redis serving only TLS on `port` (plain port off), with this certificate and key (PEM
    /// files); clients are not asked for certificates.
    pub fn start_tls(cert: &Path, key: &Path, ca: &Path) -> RedisServer {
        let port = super::free_port();
        let path = |p: &Path| p.display().to_string();
        let mut server = RedisServer {
            port,
            child: None,
            dir: tempfile::tempdir().unwrap(),
            extra: vec![
                "--port".into(),
                "0".into(),
                "--tls-port".into(),
                port.to_string(),
                "--tls-cert-file".into(),
                path(cert),
                "--tls-key-file".into(),
                path(key),
                "--tls-ca-cert-file".into(),
                path(ca),
                "--tls-auth-clients".into(),
                "no".into(),
            ],
            tls: true,
            sentinel_conf: None,
        };
        server.run();
        server
    }

    /// A Sentinel (`redis-server CONF --sentinel`) watching the master at
    /// `127.0.0.1:master_port` as `master_name`, alone enough to fail it over (quorum 1),
    /// quickly: down after 1 s.
    pub fn start_sentinel(master_name: &str, master_port: u16) -> RedisServer {
        let port = super::free_port();
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("sentinel.conf");
        // Sentinel rewrites its config file (known replicas, epochs): it must be writable.
        std::fs::write(
            &conf,
            format!(
                "port {port}\nbind 127.0.0.1\ndir {dir}\n\
                 sentinel monitor {master_name} 127.0.0.1 {master_port} 1\n\
                 sentinel down-after-milliseconds {master_name} 1000\n\
                 sentinel failover-timeout {master_name} 3000\n",
                dir = dir.path().display()
            ),
        )
        .unwrap();
        let mut server = RedisServer {
            port,
            child: None,
            dir,
            extra: vec![],
            tls: false,
            sentinel_conf: Some(conf),
        };
        server.run();
        server
    }

    /// `redis://127.0.0.1:PORT`, or `rediss://` for [`RedisServer::start_tls`].
    pub fn url(&self) -> String {
        let scheme = if self.tls { "rediss" } else { "redis" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// The `[session]` lines of a gate on this Redis, with sessions in `store` ("redis", or
    /// "cookie" to share only codes, tokens and revocations), sealed with [`store_secret`].
    pub fn session_config(&self, store: &str) -> String {
        format!(
            "store = \"{store}\"\nredis_url = \"{}\"\nstore_secrets = [\"{}\"]\n",
            self.url(),
            store_secret()
        )
    }

    fn run(&mut self) {
        let mut cmd = Command::new(REDIS_SERVER);
        match &self.sentinel_conf {
            Some(conf) => {
                cmd.arg(conf).arg("--sentinel");
            }
            None => {
                cmd.args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
                    .args(["--dir"])
                    .arg(self.dir.path())
                    .args(["--port", &self.port.to_string()]);
            }
        }
        cmd.args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        self.child = Some(cmd.spawn().expect("start redis-server"));
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kill it (as a crash would: no shutdown, nothing saved).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Start it again on the same port (empty, as after a crash without persistence).
    pub fn restart(&mut self) {
        self.stop();
        self.run();
    }
}

/// A Redis Cluster of three masters on loopback ports, every slot assigned, with `replicas`
/// replicas per master.
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Start three `--cluster-enabled` servers, join them with `redis-cli --cluster create`,
    /// and wait until every node reports `cluster_state:ok`.
    pub fn start() -> RedisCluster {
        RedisCluster::start_with_replicas(0)
    }

    /// Like [`RedisCluster::start`], `replicas` replicas per master; nodes fail over after 1 s.
    pub fn start_with_replicas(replicas: usize) -> RedisCluster {
        let nodes: Vec<RedisServer> = (0..3 * (1 + replicas))
            .map(|_| {
                RedisServer::start_with(&[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    "1000",
                ])
            })
            .collect();
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let out = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
            .output()
            .expect("run redis-cli --cluster create");
        assert!(
            out.status.success(),
            "redis-cli --cluster create: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let cluster = RedisCluster { nodes };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !cluster
            .nodes
            .iter()
            .all(|n| cluster_ok(n.port) && synced(n.port))
        {
            assert!(Instant::now() < deadline, "the cluster did not become ok");
            std::thread::sleep(Duration::from_millis(50));
        }
        cluster
    }

    /// `redis://127.0.0.1:PORT` of every node (the seed list for `session.redis_cluster_urls`).
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }

    /// The `[session]` lines of a gate on this cluster (like [`RedisServer::session_config`]).
    pub fn session_config(&self, store: &str) -> String {
        format!(
            "store = \"{store}\"\nredis_cluster_urls = {:?}\nstore_secrets = [\"{}\"]\n",
            self.urls(),
            store_secret()
        )
    }
}

/// `redis-cli -p PORT ARGS…`'s output ("" when it cannot run).
pub fn redis_cli(port: u16, args: &[&str]) -> String {
    Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// Does the node on `port` say `cluster_state:ok`?
pub fn cluster_ok(port: u16) -> bool {
    redis_cli(port, &["cluster", "info"]).contains("cluster_state:ok")
}

/// Is the node on `port` a master, or a replica whose link to its master is up?
fn synced(port: u16) -> bool {
    let info = redis_cli(port, &["info", "replication"]);
    info.contains("role:master") || info.contains("master_link_status:up")
}

/// A CA and a certificate it signed for `127.0.0.1` / `localhost`: (CA PEM, cert PEM, key PEM).
pub fn ca_and_server_cert() -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "gatehouse test CA");
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let mut params =
        CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "127.0.0.1");
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    (ca_cert.pem(), cert.pem(), key.serialize_pem())
}

/// Sign `login` in on `h` with a fresh browser; the session cookie's value.
pub async fn signed_in(h: &super::Harness, login: &str) -> String {
    let r = h.sign_in(&super::browser(), login, "/").await;
    assert_eq!(r.status(), 302, "sign-in of {login}: {}", h.log());
    super::session_cookie(&r)
}

/// GET `url` carrying exactly `cookie` as an API client; the status.
pub async fn status_with(url: &str, cookie: &str) -> u16 {
    super::get_with_session(url, cookie).await.status().as_u16()
}

/// Run one command on `redis` (e.g. `FLUSHALL`, `EXISTS key`) and read its answer.
pub async fn redis_cmd<T: ::redis::FromRedisValue>(redis: &RedisServer, args: &[&str]) -> T {
    let mut c = ::redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let mut cmd = ::redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query_async(&mut c).await.unwrap()
}

/// Poll until `url` with `cookie` answers `want`; returns how long that took.
pub async fn until_status(url: &str, cookie: &str, want: u16, limit: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let got = status_with(url, cookie).await;
        if got == want {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "{url} still answers {got}, not {want}, after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The store key of the Redis tests, separate from the cookie key (`KEY_A`).
pub fn store_secret() -> String {
    super::b64(&[3; 32])
}
