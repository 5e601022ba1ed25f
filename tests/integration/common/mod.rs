//! Test harness: the mock GitHub and the demo app in-process, the real `gatehouse` binary as a
//! child process, all on ephemeral 127.0.0.1 ports.
#![allow(dead_code)]

pub mod clock;
pub mod postgres;
pub mod python;
pub mod redis;
pub mod scrape;
pub mod tally;

use base64::Engine;
use gatehouse::config::SessionKey;
use gatehouse::session::{KeyRing, SessionClaims};
use gatehouse_mock_github::{serve_demo_upstream, MockApp, MockGithub};
use std::io::Read;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const CLIENT_ID: &str = "test-client-id";
pub const CLIENT_SECRET: &str = "test-client-secret";
/// Test session keys (base64 of 32 bytes): KEY_A, KEY_B.
pub const KEY_A: [u8; 32] = [7; 32];
pub const KEY_B: [u8; 32] = [9; 32];

pub fn b64(key: &[u8; 32]) -> String {
    base64::engine::general_purpose::STANDARD.encode(key)
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `[access]` extra of the adversarial tests: octocat is the admin, `/echo/public/**` is
/// public and `/echo/admin/**` is for admins, hidden (404) from everyone else.
pub const ECHO_ADMIN_RULES: &str = r#"
admin_users = ["octocat"]

[[rules]]
path = "/echo/public/**"
policy = "public"

[[rules]]
path = "/echo/admin/**"
allow = ["role:admin"]
hide = true
"#;

/// What to put in the gate's config.
pub struct GateOptions {
    pub allowed_users: Vec<&'static str>,
    /// Keys in `session.secrets` order (first encrypts).
    pub keys: Vec<[u8; 32]>,
    /// Extra TOML appended to `[access]`.
    pub access_extra: String,
    /// Environment variables for the child.
    pub env: Vec<(&'static str, String)>,
    /// Upstream address; default the in-process demo app.
    pub upstream: Option<SocketAddr>,
    /// The client secret the gate is configured with; default the one the mock expects.
    pub client_secret: &'static str,
    /// The GitHub app's client id (registered at the mock); one starting with `Iv` is a
    /// GitHub App (expiring tokens with refresh tokens), else an OAuth App.
    pub client_id: &'static str,
    /// Extra TOML appended to `[session]`.
    pub session_extra: String,
    /// Extra TOML appended to `[github]`.
    pub github_extra: String,
    /// Open an admin listener (`server.admin_listen`) for `/metrics`: see [`Harness::admin`].
    pub admin: bool,
}

impl Default for GateOptions {
    fn default() -> Self {
        GateOptions {
            allowed_users: vec!["OctoCat", "monalisa", "hubot"],
            keys: vec![KEY_A],
            access_extra: String::new(),
            env: vec![],
            upstream: None,
            client_secret: CLIENT_SECRET,
            client_id: CLIENT_ID,
            session_extra: String::new(),
            github_extra: String::new(),
            admin: false,
        }
    }
}

pub struct Harness {
    pub gate: String,
    pub gate_addr: SocketAddr,
    pub upstream_addr: SocketAddr,
    pub mock: MockGithub,
    pub mock_url: String,
    pub child: Child,
    pub dir: tempfile::TempDir,
    /// PEM of the self-signed certificate the gate serves ([`Harness::start_tls`]); `None`: http.
    pub tls_cert_pem: Option<String>,
    /// The environment the gate was started with.
    pub env: Vec<(&'static str, String)>,
    /// `http://127.0.0.1:PORT` of the admin listener ([`GateOptions::admin`]).
    pub admin: Option<String>,
}

/// `gatehouse run --config CONFIG`, logging to `log`, with a hermetic environment plus `env`.
fn gate_command(
    config: &std::path::Path,
    log: &std::path::Path,
    env: &[(&str, String)],
) -> Command {
    let mut cmd = Command::new(binary());
    cmd.args(["run", "--config"])
        .arg(config)
        .env("RUST_LOG", "info")
        .env_remove("GITHUB_USERS")
        .env_remove("GH_CLIENT_ID")
        .env_remove("GH_CLIENT_SECRET")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Another gate process on the same config (same public URL, GitHub, upstream and store),
/// listening on its own port: a second replica behind a load balancer.
pub struct Replica {
    pub gate: String,
    pub child: Child,
    log: std::path::PathBuf,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Replica {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.gate)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Wait for the process to exit, at most `limit`; its status and when.
    pub async fn wait_exit(&mut self, limit: Duration) -> (std::process::ExitStatus, Instant) {
        let log = self.log.clone();
        wait_exit(&mut self.child, limit, || {
            std::fs::read_to_string(&log).unwrap_or_default()
        })
        .await
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub async fn start_mock() -> (MockGithub, SocketAddr) {
    let mock = MockGithub::demo();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(mock.clone().serve(listener));
    (mock, addr)
}

pub async fn start_upstream() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve_demo_upstream(listener));
    addr
}

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_gatehouse")
}

impl Harness {
    pub async fn start(opts: GateOptions) -> Harness {
        Harness::start_with_server(opts, "").await
    }

    /// Like [`Harness::start`], with `server_extra` (TOML lines) added to `[server]`.
    pub async fn start_with_server(opts: GateOptions, server_extra: &str) -> Harness {
        Harness::start_inner(opts, server_extra, false).await
    }

    /// Like [`Harness::start_with_server`], serving HTTPS with a self-signed certificate for
    /// 127.0.0.1 made for this run (`server.tls_cert`/`tls_key`; `public_url` is https). Talk
    /// to it with [`Harness::client_builder`].
    pub async fn start_tls(opts: GateOptions, server_extra: &str) -> Harness {
        Harness::start_inner(opts, server_extra, true).await
    }

    async fn start_inner(opts: GateOptions, server_extra: &str, tls: bool) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let scheme = if tls { "https" } else { "http" };
        let mut server_extra = server_extra.to_string();
        let admin = opts.admin.then(|| {
            let addr = format!("127.0.0.1:{}", free_port());
            server_extra.push_str(&format!("\nadmin_listen = \"{addr}\"\n"));
            format!("http://{addr}")
        });
        let tls_cert_pem = tls.then(|| {
            let (cert, key) = self_signed_cert();
            let cert_path = dir.path().join("cert.pem");
            let key_path = dir.path().join("key.pem");
            std::fs::write(&cert_path, &cert).unwrap();
            std::fs::write(&key_path, key).unwrap();
            server_extra.push_str(&format!(
                "\ntls_cert = {:?}\ntls_key = {:?}\n",
                cert_path.display().to_string(),
                key_path.display().to_string()
            ));
            cert
        });
        let (mock, mock_addr) = start_mock().await;
        let upstream = match opts.upstream {
            Some(a) => a,
            None => start_upstream().await,
        };
        let port = free_port();
        let gate_addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        mock.add_app(MockApp {
            client_id: opts.client_id.into(),
            client_secret: CLIENT_SECRET.into(),
            callback_url: format!("{scheme}://{gate_addr}/oauth2/callback"),
        });
        let users: Vec<String> = opts
            .allowed_users
            .iter()
            .map(|u| format!("\"{u}\""))
            .collect();
        let secrets: Vec<String> = opts
            .keys
            .iter()
            .map(|k| format!("\"{}\"", b64(k)))
            .collect();
        let config = format!(
            r#"
[server]
listen = "{gate_addr}"
public_url = "{scheme}://{gate_addr}"
threads = 2
{server_extra}

[upstream]
url = "http://{upstream}"

[github]
client_id = "{client_id}"
client_secret = "${{TEST_GH_SECRET}}"
web_url = "http://{mock_addr}"
api_url = "http://{mock_addr}/api/v3"
timeout = "3s"
{github_extra}

[session]
secrets = [{secrets}]
{session_extra}

[access]
allowed_users = [{users}]
{extra}
"#,
            secrets = secrets.join(", "),
            users = users.join(", "),
            extra = opts.access_extra,
            client_id = opts.client_id,
            github_extra = opts.github_extra,
            session_extra = opts.session_extra,
        );
        let config_path = dir.path().join("gatehouse.toml");
        std::fs::write(&config_path, config).unwrap();
        let mut env = opts.env.clone();
        env.push(("TEST_GH_SECRET", opts.client_secret.to_string()));
        let child = gate_command(&config_path, &dir.path().join("gate.log"), &env)
            .spawn()
            .expect("start gatehouse");
        let harness = Harness {
            env,
            gate: format!("{scheme}://{gate_addr}"),
            gate_addr,
            upstream_addr: upstream,
            mock,
            mock_url: format!("http://{mock_addr}"),
            child,
            dir,
            tls_cert_pem,
            admin,
        };
        harness.wait_ready().await;
        harness
    }

    /// Wait for the gate to exit, at most `limit`; its status and when.
    pub async fn wait_exit(&mut self, limit: Duration) -> (std::process::ExitStatus, Instant) {
        let log = self.dir.path().join("gate.log");
        wait_exit(&mut self.child, limit, || {
            std::fs::read_to_string(&log).unwrap_or_default()
        })
        .await
    }

    /// `gatehouse run --upgrade` on this gate's config and environment: a new process that
    /// takes the listening sockets from the running one once that gets SIGQUIT. Returns at once;
    /// its log is `gate-upgrade.log`.
    pub fn spawn_upgrade(&self) -> Replica {
        let log = self.dir.path().join("gate-upgrade.log");
        let child = gate_command(&self.dir.path().join("gatehouse.toml"), &log, &self.env)
            .arg("--upgrade")
            .spawn()
            .expect("start gatehouse run --upgrade");
        Replica {
            gate: self.gate.clone(),
            child,
            log,
        }
    }

    /// Start a replica of this gate (see [`Replica`]); returns once it answers `/ping`.
    pub async fn spawn_replica(&self, name: &str) -> Replica {
        self.spawn_replica_with(name, |config| config).await
    }

    /// Like [`Harness::spawn_replica`], with the config passed through `patch` first (e.g. to
    /// reach Redis another way).
    pub async fn spawn_replica_with(
        &self,
        name: &str,
        patch: impl FnOnce(String) -> String,
    ) -> Replica {
        self.spawn_replica_env(name, patch, &[]).await
    }

    /// Like [`Harness::spawn_replica_with`], with `env` added to the replica's environment (e.g.
    /// [`clock::behind`] to run it on a clock that differs from the others').
    pub async fn spawn_replica_env(
        &self,
        name: &str,
        patch: impl FnOnce(String) -> String,
        env: &[(&'static str, String)],
    ) -> Replica {
        let config =
            patch(std::fs::read_to_string(self.dir.path().join("gatehouse.toml")).unwrap());
        let addr = format!("127.0.0.1:{}", free_port());
        let config = config.replacen(
            &format!("listen = \"{}\"", self.gate_addr),
            &format!("listen = \"{addr}\""),
            1,
        );
        let path = self.dir.path().join(format!("gatehouse-{name}.toml"));
        std::fs::write(&path, config).unwrap();
        let log = self.dir.path().join(format!("gate-{name}.log"));
        let child = gate_command(&path, &log, &[self.env.as_slice(), env].concat())
            .spawn()
            .expect("start replica");
        let replica = Replica {
            gate: format!("http://{addr}"),
            child,
            log,
        };
        let client = plain_client();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = client.get(replica.url("/ping")).send().await {
                if r.status() == 200 {
                    return replica;
                }
            }
            assert!(
                Instant::now() < deadline,
                "replica did not start:\n{}",
                replica.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn log(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(self.dir.path().join("gate.log")) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }

    /// A client builder without cookies that does not follow redirects and trusts the gate's
    /// certificate when it serves TLS.
    pub fn client_builder(&self) -> reqwest::ClientBuilder {
        gatehouse::install_crypto_provider();
        let builder = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none());
        match &self.tls_cert_pem {
            Some(pem) => builder
                .add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).unwrap()),
            None => builder,
        }
    }

    async fn wait_ready(&self) {
        let client = self.client_builder().build().unwrap();
        // It takes milliseconds; the bound is for a machine busy compiling beside the tests.
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(r) = client.get(format!("{}/ping", self.gate)).send().await {
                if r.status() == 200 {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("gatehouse did not become ready; log:\n{}", self.log());
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.gate)
    }

    /// Sign in through the mock GitHub as `login`, landing on `rd`. Returns the callback response
    /// (a 302 on success). The client keeps the cookies.
    pub async fn sign_in(
        &self,
        client: &reqwest::Client,
        login: &str,
        rd: &str,
    ) -> reqwest::Response {
        let callback = self.authorize(client, login, rd).await;
        client.get(callback).send().await.unwrap()
    }

    /// Run `/oauth2/start` and the mock's consent form; returns the callback URL GitHub sends
    /// the browser to (not yet visited).
    pub async fn authorize(&self, client: &reqwest::Client, login: &str, rd: &str) -> String {
        let start = client
            .get(self.url("/oauth2/start"))
            .query(&[("rd", rd)])
            .send()
            .await
            .unwrap();
        assert_eq!(start.status(), 302, "start should redirect to GitHub");
        let authorize = location(&start);
        assert!(authorize.starts_with(&self.mock_url), "{authorize}");
        consent(client, &authorize, login).await
    }
}

/// Submit the mock GitHub's consent form for `authorize` (where the gate sent the browser) as
/// `login`. Returns the callback URL GitHub sends the browser back to.
pub async fn consent(client: &reqwest::Client, authorize: &str, login: &str) -> String {
    let url = url::Url::parse(authorize).unwrap();
    let mut form: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    form.push(("login".into(), login.into()));
    let r = client
        .post(format!(
            "{}/login/oauth/authorize",
            url.origin().ascii_serialization()
        ))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302, "mock consent should redirect back");
    location(&r)
}

/// Start `cmd` with stdout piped; every line arrives on the receiver. Stdout keeps being read,
/// so the child never writes into a closed pipe.
pub fn spawn_reading_stdout(cmd: &mut Command) -> (Child, std::sync::mpsc::Receiver<String>) {
    use std::io::BufRead;
    let mut child = cmd.stdout(Stdio::piped()).spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    (child, rx)
}

/// `gatehouse login --no-browser` for `gate`: the child, its stderr lines, and the start URL
/// it printed.
pub fn start_cli_login(
    gate: &str,
    config_dir: &std::path::Path,
) -> (Child, std::sync::mpsc::Receiver<String>, String) {
    use std::io::BufRead;
    let mut child = Command::new(binary())
        .args(["login", "--url", gate, "--no-browser", "--timeout", "30s"])
        .env("GATEHOUSE_CONFIG_DIR", config_dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // Lossy: the point of some tests is what bytes the command prints.
        let mut reader = std::io::BufReader::new(stderr);
        let mut line = Vec::new();
        while reader.read_until(b'\n', &mut line).unwrap_or(0) > 0 {
            let _ = tx.send(String::from_utf8_lossy(&line).into_owned());
            line.clear();
        }
    });
    let start = std::iter::from_fn(|| rx.recv_timeout(Duration::from_secs(20)).ok())
        .find_map(|l| {
            l.trim_end()
                .strip_prefix("Open this URL to sign in: ")
                .map(str::to_string)
        })
        .expect("login prints the URL to open");
    (child, rx, start)
}

/// All the command printed, once it has exited: the reader thread may still be passing on the
/// last lines, so wait for it to see the end of the pipe (bounded) rather than take what is there.
pub fn everything_printed(lines: std::sync::mpsc::Receiver<String>) -> String {
    std::iter::from_fn(|| lines.recv_timeout(Duration::from_secs(10)).ok()).collect()
}

/// A websocket app: first sends the request headers it got (JSON), then echoes every message.
/// Counts the upgrades it accepted.
#[allow(clippy::result_large_err)] // tungstenite's handshake callback type
pub async fn ws_echo_upstream() -> (SocketAddr, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let upgrades = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = upgrades.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let count = count.clone();
            tokio::spawn(async move {
                let (tx, rx) = std::sync::mpsc::channel();
                let callback =
                    move |req: &tokio_tungstenite::tungstenite::handshake::server::Request,
                          resp: tokio_tungstenite::tungstenite::handshake::server::Response| {
                        let headers: serde_json::Map<String, serde_json::Value> = req
                            .headers()
                            .iter()
                            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("?").into()))
                            .collect();
                        let _ = tx.send(serde_json::Value::Object(headers).to_string());
                        Ok(resp)
                    };
                let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await else {
                    return;
                };
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let headers = rx.recv().unwrap();
                if futures_util::SinkExt::send(
                    &mut ws,
                    tokio_tungstenite::tungstenite::Message::Text(headers.into()),
                )
                .await
                .is_err()
                {
                    return;
                }
                while let Some(Ok(msg)) = futures_util::StreamExt::next(&mut ws).await {
                    let echo = matches!(
                        msg,
                        tokio_tungstenite::tungstenite::Message::Text(_)
                            | tokio_tungstenite::tungstenite::Message::Binary(_)
                    );
                    if matches!(msg, tokio_tungstenite::tungstenite::Message::Close(_))
                        || (echo && futures_util::SinkExt::send(&mut ws, msg).await.is_err())
                    {
                        return;
                    }
                }
            });
        }
    });
    (addr, upgrades)
}

/// A self-signed certificate for `127.0.0.1` and `localhost`: (certificate PEM, key PEM).
pub fn self_signed_cert() -> (String, String) {
    let made =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .unwrap();
    (made.cert.pem(), made.signing_key.serialize_pem())
}

/// A browser-like client that keeps cookies and does not follow redirects.
pub fn browser() -> reqwest::Client {
    gatehouse::install_crypto_provider();
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A client without cookies that does not follow redirects.
pub fn plain_client() -> reqwest::Client {
    gatehouse::install_crypto_provider();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The body of a GET to `url`.
pub async fn get_text(client: &reqwest::Client, url: impl reqwest::IntoUrl) -> String {
    client.get(url).send().await.unwrap().text().await.unwrap()
}

/// A browser navigation (`Accept: text/html`) to `url`.
pub async fn navigate(client: &reqwest::Client, url: impl reqwest::IntoUrl) -> reqwest::Response {
    client
        .get(url)
        .header("accept", "text/html")
        .send()
        .await
        .unwrap()
}

/// GET `url` with exactly the session cookie `cookie` (value only), as an API client.
pub async fn get_with_session(url: &str, cookie: &str) -> reqwest::Response {
    plain_client()
        .get(url)
        .header("accept", "application/json")
        .header("cookie", format!("_gatehouse={cookie}"))
        .send()
        .await
        .unwrap()
}

pub fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get("location")
        .expect("a Location header")
        .to_str()
        .unwrap()
        .to_string()
}

pub fn set_cookies(r: &reqwest::Response) -> Vec<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect()
}

/// Signs `login` in with a fresh browser on `h`; the session cookie value.
pub async fn session_of(h: &Harness, login: &str) -> String {
    let r = h.sign_in(&browser(), login, "/").await;
    assert_eq!(r.status(), 302, "sign-in of {login}: {}", h.log());
    session_cookie(&r)
}

/// A call to the mock GitHub's control API (`/_mock/…`) that must succeed; its JSON answer
/// (`Null` when it has none).
pub async fn mock_call(h: &Harness, method: reqwest::Method, path: &str) -> serde_json::Value {
    let r = plain_client()
        .request(method, format!("{}{path}", h.mock_url))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{path}: {}", r.status());
    r.json().await.unwrap_or_default()
}

/// The `_gatehouse` cookie value set by a response.
pub fn session_cookie(r: &reqwest::Response) -> String {
    set_cookies(r)
        .iter()
        .find_map(|c| c.strip_prefix("_gatehouse="))
        .map(|c| c.split(';').next().unwrap().to_string())
        .expect("a session cookie")
}

/// Mint a session cookie with a key, as any JOSE library holding the key could.
pub fn mint(key: [u8; 32], claims: &SessionClaims) -> String {
    let ring = KeyRing::new(&[SessionKey(key)]);
    ring.seal(&serde_json::to_vec(claims).unwrap()).unwrap()
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub fn claims_for(login: &str, id: u64) -> SessionClaims {
    let now = now();
    SessionClaims {
        user_id: id.to_string(),
        login: login.into(),
        name: None,
        email: Some(format!("{login}@example.com")),
        avatar_url: None,
        groups: vec![],
        roles: vec![],
        iat: now,
        exp: now + 3600,
        refreshed_at: now,
        github_token: None,
        github_refresh: None,
        session_id: None,
    }
}

/// The JSON the demo app's `/echo` returns.
pub async fn echo(
    client: &reqwest::Client,
    url: String,
    headers: &[(&str, &str)],
) -> (u16, serde_json::Value) {
    let mut req = client.get(url).header("accept", "application/json");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let body = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body)),
    )
}

pub fn upstream_header<'a>(echo: &'a serde_json::Value, name: &str) -> Option<&'a str> {
    echo["headers"][name].as_str()
}

impl Harness {
    /// Stop the gate, rewrite its config with `patch` (e.g. to set keys outside `[access]`),
    /// and start it again on the same address with the default test environment.
    pub async fn restart_with(&mut self, patch: impl FnOnce(String) -> String) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let config_path = self.dir.path().join("gatehouse.toml");
        let config = std::fs::read_to_string(&config_path).unwrap();
        std::fs::write(&config_path, patch(config)).unwrap();
        let env = [("TEST_GH_SECRET", CLIENT_SECRET.to_string())];
        self.child = gate_command(&config_path, &self.dir.path().join("gate.log"), &env)
            .spawn()
            .expect("restart gatehouse");
        self.wait_ready().await;
    }
}

/// The claims inside a session cookie sealed with [`KEY_A`].
pub fn claims_in(cookie: &str) -> SessionClaims {
    let plain = KeyRing::new(&[SessionKey(KEY_A)]).open(cookie).unwrap();
    serde_json::from_slice(&plain).unwrap()
}

/// The query parameters of `url`.
pub fn query_of(url: &str) -> std::collections::HashMap<String, String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

/// POST `body` as JSON to the gate; the status and the JSON answer (`Null` if none).
pub async fn post_json(
    h: &Harness,
    path: &str,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    let r = plain_client()
        .post(h.url(path))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(serde_json::Value::Null))
}

/// Send `request` byte for byte (clients would clean up paths and headers first) and read what
/// comes back until the gate closes the connection or `wait` passes. Lossy UTF-8.
pub async fn raw_exchange(addr: SocketAddr, request: &[u8], wait: Duration) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    // The gate may answer and close before reading everything: a failed write is an answer too.
    let _ = s.write_all(request).await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(wait, s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// One response read off a raw connection: status, head (lower-cased names) and body text.
#[derive(Debug, Clone, Default)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON (the demo app's `/echo`), or `Null`.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.body.trim()).unwrap_or(serde_json::Value::Null)
    }
}

/// Status codes of every response in `raw` (a status line starts a line; bodies here are JSON or
/// HTML, where a line never starts with `HTTP/1.`).
pub fn raw_statuses(raw: &str) -> Vec<u16> {
    raw.split("\r\n")
        .filter_map(|line| line.strip_prefix("HTTP/1."))
        .filter_map(|rest| rest.get(2..5).and_then(|c| c.parse().ok()))
        .collect()
}

/// The first response in `raw` (status 0: none came); a chunked body is joined.
pub fn parse_raw(raw: &str) -> RawResponse {
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((raw, ""));
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut response = RawResponse {
        status,
        headers,
        body: String::new(),
    };
    response.body = if response
        .header("transfer-encoding")
        .is_some_and(|te| te.eq_ignore_ascii_case("chunked"))
    {
        dechunk(body)
    } else {
        match response
            .header("content-length")
            .and_then(|l| l.parse::<usize>().ok())
        {
            Some(len) => body.get(..len).unwrap_or(body).to_string(),
            None => body.to_string(),
        }
    };
    response
}

/// A chunked body, joined (as far as it is well formed).
fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let size = size.split(';').next().unwrap_or("").trim();
        let Ok(len) = usize::from_str_radix(size, 16) else {
            break;
        };
        if len == 0 {
            break;
        }
        let Some(chunk) = after.get(..len) else {
            out.push_str(after);
            break;
        };
        out.push_str(chunk);
        rest = after.get(len + 2..).unwrap_or("");
    }
    out
}

/// A raw `GET path` with `Connection: close` and `extra` header lines (each ending in `\r\n`).
pub async fn raw_get_with(h: &Harness, path: &str, extra: &str) -> RawResponse {
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nAccept: application/json\r\nConnection: close\r\n{extra}\r\n",
        h.gate_addr
    );
    parse_raw(&raw_exchange(h.gate_addr, request.as_bytes(), Duration::from_secs(5)).await)
}

/// A compact JWE with any protected header (`header_json`, used verbatim as the AAD, as RFC 7516
/// says), encrypting `plaintext` under `key` with A256GCM: what a forger, or a careless JOSE
/// library, could produce.
pub fn seal_with_header(key: [u8; 32], header_json: &str, plaintext: &[u8]) -> String {
    use aes_gcm::aead::{AeadInOut, KeyInit};
    use aes_gcm::{Aes256Gcm, Nonce};
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header_b64 = b64.encode(header_json);
    let cipher = Aes256Gcm::new(&key.into());
    let iv = [42u8; 12];
    let mut buf = plaintext.to_vec();
    let tag = cipher
        .encrypt_inout_detached(
            &Nonce::from(iv),
            header_b64.as_bytes(),
            buf.as_mut_slice().into(),
        )
        .unwrap();
    format!(
        "{header_b64}..{}.{}.{}",
        b64.encode(iv),
        b64.encode(&buf),
        b64.encode(tag.as_slice())
    )
}

/// The protected header Gatehouse writes for `key` (README.md "Session cookie").
pub fn standard_header(key: &[u8; 32]) -> String {
    format!(
        r#"{{"alg":"dir","enc":"A256GCM","kid":"{}"}}"#,
        gatehouse::session::key_id(key)
    )
}

/// Per-connection byte logs of a [`Recorder`].
type Streams = std::sync::Arc<std::sync::Mutex<Vec<std::sync::Arc<std::sync::Mutex<Vec<u8>>>>>>;

/// A TCP relay in front of `target` that keeps every byte each connection sent upstream (and
/// got back), so a test can see exactly which requests reached the app (pipelined and smuggled
/// ones included).
pub struct Recorder {
    pub addr: SocketAddr,
    connections: Streams,
    answers: Streams,
}

impl Recorder {
    pub async fn start(target: SocketAddr) -> Recorder {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let answers = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let all = connections.clone();
        let all_answers = answers.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(upstream) = tokio::net::TcpStream::connect(target).await else {
                    continue;
                };
                let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
                all.lock().unwrap().push(seen.clone());
                let answered = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
                all_answers.lock().unwrap().push(answered.clone());
                let (mut client_read, mut client_write) = client.into_split();
                let (mut up_read, mut up_write) = upstream.into_split();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 16 * 1024];
                    while let Ok(n) = client_read.read(&mut buf).await {
                        if n == 0 || up_write.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                        seen.lock().unwrap().extend_from_slice(&buf[..n]);
                    }
                    let _ = up_write.shutdown().await;
                });
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 16 * 1024];
                    while let Ok(n) = up_read.read(&mut buf).await {
                        if n == 0 || client_write.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                        answered.lock().unwrap().extend_from_slice(&buf[..n]);
                    }
                    let _ = client_write.shutdown().await;
                });
            }
        });
        Recorder {
            addr,
            connections,
            answers,
        }
    }

    /// Everything sent upstream so far, per connection (lossy UTF-8).
    pub fn sent(&self) -> Vec<String> {
        self.connections
            .lock()
            .unwrap()
            .iter()
            .map(|c| String::from_utf8_lossy(&c.lock().unwrap()).into_owned())
            .collect()
    }

    /// Raw bytes sent upstream so far, all connections.
    pub fn sent_bytes(&self) -> Vec<Vec<u8>> {
        self.connections
            .lock()
            .unwrap()
            .iter()
            .map(|c| c.lock().unwrap().clone())
            .collect()
    }

    /// Request lines (`METHOD target HTTP/1.x`) the app received.
    pub fn request_lines(&self) -> Vec<String> {
        self.sent()
            .iter()
            .flat_map(|c| c.split("\r\n").map(str::to_string).collect::<Vec<_>>())
            .filter(|l| {
                let mut words = l.split(' ');
                matches!(
                    (words.next(), words.next(), words.next(), words.next()),
                    (Some(m), Some(_), Some(v), None)
                        if !m.is_empty() && m.bytes().all(|b| b.is_ascii_uppercase()) && v.starts_with("HTTP/1.")
                )
            })
            .collect()
    }

    /// Everything the app answered so far, all connections (lossy UTF-8).
    pub fn answered(&self) -> String {
        self.answers
            .lock()
            .unwrap()
            .iter()
            .map(|c| String::from_utf8_lossy(&c.lock().unwrap()).into_owned())
            .collect()
    }

    pub fn clear(&self) {
        for c in self.connections.lock().unwrap().iter() {
            c.lock().unwrap().clear();
        }
        for c in self.answers.lock().unwrap().iter() {
            c.lock().unwrap().clear();
        }
    }
}

/// The `github.webhook_secret` of [`webhook_options`].
pub const TEST_WEBHOOK_SECRET: &str = "webhook-secret-for-tests";

/// `[github]` lines that turn webhooks on with [`TEST_WEBHOOK_SECRET`].
pub fn webhook_options() -> String {
    format!("webhook_secret = \"{TEST_WEBHOOK_SECRET}\"\n")
}

/// Deliver GitHub webhook `event` with `body` to the gate, signed as GitHub signs it
/// (`X-Hub-Signature-256` with [`TEST_WEBHOOK_SECRET`]); the status.
pub async fn deliver_webhook(h: &Harness, event: &str, body: &serde_json::Value) -> u16 {
    deliver_webhook_as(h, event, body, Some(&delivery_id()))
        .await
        .0
}

/// GitHub's `organization` `member_removed` event body for user `login` (GitHub id `id`).
pub fn member_removed(org: &str, login: &str, id: u64) -> serde_json::Value {
    serde_json::json!({
        "action": "member_removed",
        "membership": {"state": "active", "role": "member", "user": {"login": login, "id": id}},
        "organization": {"login": org, "id": 2000001},
        "sender": {"login": "octocat", "id": 583231}
    })
}

/// A personal access token for `login` (with `read:org`), minted by the mock GitHub.
pub async fn mock_pat(h: &Harness, login: &str) -> String {
    mock_pat_with(h, login, "").await
}

/// Like [`mock_pat`], with `query` (e.g. `?scopes=read:user,user:email`) passed to the mock.
pub async fn mock_pat_with(h: &Harness, login: &str, query: &str) -> String {
    let minted: serde_json::Value = plain_client()
        .post(format!("{}/_mock/users/{login}/tokens{query}", h.mock_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    minted["token"].as_str().unwrap().to_string()
}

/// A loopback client sign-in (`tokens.allow_loopback`) stops at a confirmation page after
/// GitHub: click its button as the person would (a same-origin POST). `asked` is the callback's
/// answer; returns where the browser is then sent (the program's address with the code).
pub async fn confirm_loopback_sign_in(
    h: &Harness,
    browser: &reqwest::Client,
    asked: reqwest::Response,
) -> String {
    assert_eq!(asked.status(), 200, "a confirmation page");
    let page = asked.text().await.unwrap();
    let marker = r#"name="id" value=""#;
    let at = page.find(marker).expect("the confirmation form") + marker.len();
    let id = page[at..].split('"').next().unwrap().to_string();
    let confirmed = browser
        .post(h.url("/oauth2/confirm"))
        .header("origin", &h.gate)
        .form(&[("id", id)])
        .send()
        .await
        .unwrap();
    assert_eq!(confirmed.status(), 303, "the confirmation sends the code");
    location(&confirmed)
}

/// A fresh `X-GitHub-Delivery` id, shaped like GitHub's (a GUID).
pub fn delivery_id() -> String {
    let b: [u8; 16] = rand::random();
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// Like [`deliver_webhook`] with the given `X-GitHub-Delivery` (`None`: the header is left
/// out), e.g. to replay a delivery; the status and the JSON answer.
pub async fn deliver_webhook_as(
    h: &Harness,
    event: &str,
    body: &serde_json::Value,
    delivery: Option<&str>,
) -> (u16, serde_json::Value) {
    use hmac::Mac;
    let body = serde_json::to_vec(body).unwrap();
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(TEST_WEBHOOK_SECRET.as_bytes()).unwrap();
    mac.update(&body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut req = plain_client()
        .post(h.url("/oauth2/github/webhook"))
        .header("content-type", "application/json")
        .header("x-github-event", event)
        .header("x-hub-signature-256", format!("sha256={hex}"));
    if let Some(id) = delivery {
        req = req.header("x-github-delivery", id);
    }
    let r = req.body(body).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(serde_json::Value::Null))
}

/// Send `signal` to a child process (a gate).
#[allow(unsafe_code, reason = "kill(2) has no safe wrapper in libc")]
pub fn signal(child: &Child, signal: libc::c_int) {
    // SAFETY: kill(2) on our own child's pid, with a valid signal number.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, signal) };
    assert_eq!(rc, 0, "kill({signal})");
}

/// Wait for `child` to exit, at most `limit` (else fail showing `log()`); its status and when.
pub async fn wait_exit(
    child: &mut Child,
    limit: Duration,
    log: impl Fn() -> String,
) -> (std::process::ExitStatus, Instant) {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return (status, Instant::now());
        }
        assert!(
            Instant::now() < deadline,
            "still running {limit:?} later; log:\n{}",
            log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An upstream whose `/slow?ms=N` answers `done` after N ms.
pub async fn slow_upstream() -> SocketAddr {
    use axum::extract::Query;
    use axum::routing::get;
    #[derive(serde::Deserialize)]
    struct Wait {
        ms: u64,
    }
    let app = axum::Router::new().route(
        "/slow",
        get(|Query(w): Query<Wait>| async move {
            tokio::time::sleep(Duration::from_millis(w.ms)).await;
            "done"
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}
