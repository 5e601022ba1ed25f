//! `gatehouse demo`: the mock GitHub, a demo app, and the gate in front, all on loopback, with
//! nothing to register. It goes through the same config loader as a real deployment.

use base64::Engine;
use gatehouse::config::ConfigError;
use gatehouse::runtime::Runtime;
use gatehouse_mock_github::github::{MockApp, MockGithub};
use gatehouse_mock_github::upstream::serve_demo_upstream;
use rand::RngCore;
use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(
        "cannot listen on {addr}: {source} — fix: pass --listen 127.0.0.1:PORT with a free port"
    )]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot start the demo's background servers: {0}")]
    Runtime(std::io::Error),
    #[error("the embedded demo config is invalid (a bug): {0}")]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Setup(String),
}

fn random_b64(len: usize) -> String {
    let mut bytes = vec![0u8; len];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A fresh P-256 key as PKCS#8 PEM, as `openssl genpkey -algorithm EC` would write it.
fn assertion_key_pem() -> Result<String, DemoError> {
    use p256::pkcs8::{EncodePrivateKey, LineEnding};
    p256::SecretKey::random(&mut p256::elliptic_curve::rand_core::OsRng)
        .to_pkcs8_pem(LineEnding::LF)
        .map(|pem| pem.to_string())
        .map_err(|e| DemoError::Setup(format!("making the demo's assertion key: {e}")))
}

fn bind(addr: SocketAddr) -> Result<TcpListener, DemoError> {
    let listener = TcpListener::bind(addr).map_err(|source| DemoError::Listen { addr, source })?;
    listener
        .set_nonblocking(true)
        .map_err(|source| DemoError::Listen { addr, source })?;
    Ok(listener)
}

/// The demo's config; the same text a person would write, with the mock's addresses filled in.
pub fn demo_config(
    gate: SocketAddr,
    mock: SocketAddr,
    upstream: SocketAddr,
    client_secret: &str,
) -> String {
    format!(
        r#"
[server]
listen = "{gate}"
public_url = "http://{gate}"

[upstream]
url = "http://{upstream}"

[github]
client_id = "gatehouse-demo"
client_secret = "{client_secret}"
web_url = "http://{mock}"
api_url = "http://{mock}/api/v3"

[session]
secrets = ["{key}"]

[access]
allowed_users = ["octocat", "hubot"]
allowed_orgs = ["databio"]
allowed_teams = ["databio/core"]
admin_users = ["octocat"]

# Try /admin as octocat (admin) and as monalisa (hidden: 404), /public signed out,
# and POST to /monalisa/x as monalisa (her namespace) or as octocat (403).
[[rules]]
path = "/public/**"
policy = "public"

[[rules]]
path = "/admin/**"
allow = ["role:admin"]
hide = true

[[rules]]
path = "/{{owner}}/**"
owner_methods = ["POST", "PUT", "PATCH", "DELETE"]
"#,
        key = random_b64(32),
    )
}

/// Run the demo until interrupted. `listen` with port 0 picks a free port.
pub fn run(listen: SocketAddr) -> Result<(), DemoError> {
    let gate_addr = if listen.port() == 0 {
        bind(listen)?.local_addr().map_err(DemoError::Runtime)?
    } else {
        listen
    };
    let loopback: SocketAddr = ([127, 0, 0, 1], 0).into();
    let mock_listener = bind(loopback)?;
    let upstream_listener = bind(loopback)?;
    let mock_addr = mock_listener.local_addr().map_err(DemoError::Runtime)?;
    let upstream_addr = upstream_listener.local_addr().map_err(DemoError::Runtime)?;

    let client_secret = random_b64(24);
    let mock = MockGithub::demo();
    mock.add_app(MockApp {
        client_id: "gatehouse-demo".into(),
        client_secret: client_secret.clone(),
        callback_url: format!("http://{gate_addr}/oauth2/callback"),
    });

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(DemoError::Runtime)?;
    runtime.spawn(async move {
        match tokio::net::TcpListener::from_std(mock_listener) {
            Ok(l) => {
                if let Err(e) = mock.serve(l).await {
                    tracing::error!(error = %e, "mock GitHub stopped");
                }
            }
            Err(e) => tracing::error!(error = %e, "mock GitHub could not start"),
        }
    });
    runtime.spawn(async move {
        match tokio::net::TcpListener::from_std(upstream_listener) {
            Ok(l) => {
                if let Err(e) = serve_demo_upstream(l).await {
                    tracing::error!(error = %e, "demo app stopped");
                }
            }
            Err(e) => tracing::error!(error = %e, "demo app could not start"),
        }
    });

    let text = demo_config(gate_addr, mock_addr, upstream_addr, &client_secret);
    let mut settings = gatehouse::runtime::load_str(&text, "the demo config", &|_| None)?;
    // The key a deployment keeps in `upstream.assertion_key_file`; a demo lives for one run, so
    // a key made here is the configured one, and the gate has nothing to warn about.
    settings.assertion.key_pems = vec![assertion_key_pem()?];
    let rt = Runtime::new(settings).map_err(|e| DemoError::Setup(e.to_string()))?;

    // A closed stdout (piped into `head`, say) must not stop the demo.
    let _ = writeln!(
        std::io::stdout().lock(),
        "\nGatehouse demo\n\n  open      http://{gate_addr}/\n  sign in   on the mock GitHub page (nothing to register) as
              octocat   allowed by login, in org databio and team databio/core
              monalisa  allowed as a member of org databio
              hubot     allowed by login (its databio invitation is still pending)
              mallory   signed in but not allowed: the 403 page\n\n  mock GitHub  http://{mock_addr}  (API under /api/v3)\n  demo app     http://{upstream_addr}  (behind the gate; shows the identity headers it gets)\n\nCtrl-C stops everything.\n"
    );
    let result =
        gatehouse::gate::serve(Arc::new(rt), None).map_err(|e| DemoError::Setup(e.to_string()));
    runtime.shutdown_background();
    result
}
