//! Starting and stopping the Pingora server.

use super::{lifecycle, redirect_http, tls, upgrade, Gate};
use crate::runtime::Runtime;
use pingora::protocols::l4::stream::L4BufferSettings;
use pingora::server::configuration::{Opt, ServerConf};
use pingora::server::{RunArgs, Server, ShutdownSignalWatch};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("server.listen: cannot listen on {addr}: {reason} — fix: stop the other process using it or choose another address")]
    Listen { addr: String, reason: String },
    #[error("server.admin_listen: cannot listen on {addr}: {reason} — fix: stop the other process using it or choose another address")]
    AdminListen { addr: String, reason: String },
    #[error("upstream: {0} — fix: give a PEM file with the CA certificate(s) of the upstream")]
    Upstream(String),
    #[error("server.http_redirect_listen: cannot listen on {addr}: {reason} — fix: stop the other process using it or choose another address (ports below 1024 need root or CAP_NET_BIND_SERVICE)")]
    RedirectListen { addr: String, reason: String },
    #[error("{0}")]
    Tls(String),
    #[error("cannot watch for signals: {0}")]
    Signals(std::io::Error),
    #[error("--upgrade: nothing listens on {addr} (server.listen), so there is no running Gatehouse to take the listening sockets from — fix: start Gatehouse without --upgrade, or upgrade with the same server.listen as the running one")]
    NothingToUpgrade { addr: String },
    #[error("server.upgrade_sock: {problem} — fix: {fix}")]
    UpgradeSock { problem: String, fix: &'static str },
}

/// Whether this process starts afresh or takes over from a running one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Bind the listeners.
    Fresh,
    /// `run --upgrade`: take the listening sockets from the running process over
    /// `server.upgrade_sock` (it hands them over on SIGQUIT).
    Upgrade,
}

/// Pingora's server settings for the gate (and for `examples/floor_proxy.rs`, which measures
/// Pingora alone with the same settings). Each choice here was A/B'd with `bench/run.sh`
/// (bench/README.md, "Where a request's time goes").
pub fn server_conf(threads: usize, grace_secs: u64) -> ServerConf {
    ServerConf {
        threads,
        grace_period_seconds: Some(grace_secs),
        graceful_shutdown_timeout_seconds: Some(1),
        // Idle upstream connections kept for reuse, across all upstreams. Pingora's 128 is
        // fewer than the requests a busy gate has in flight: at 1,024 client connections most
        // upstream connections were closed after one request and reopened for the next
        // (about 2,500 in TIME_WAIT after 5 s of load, 71 with this pool), costing 8-12% more
        // CPU per request (bench/README.md, "Where a request's time goes").
        upstream_keepalive_pool_size: 1024,
        ..ServerConf::default()
    }
}

/// A plain-TCP listener for `addr`, as the gate opens it.
pub fn listener(addr: &str) -> pingora::listeners::ListenerConfig {
    // No L4 read buffer: the HTTP layer buffers anyway, and Pingora's default 64 KiB per
    // connection was most of the memory at 1,000 connections (bench/README.md).
    pingora::listeners::ListenerConfig::tcp(addr.to_string())
        .l4_buffer(L4BufferSettings::new(0, 1460))
}

/// Serve until a signal (SIGINT fast, SIGTERM graceful) or `shutdown` says stop.
pub fn serve(
    rt: Arc<Runtime>,
    shutdown: Option<Box<dyn ShutdownSignalWatch>>,
) -> Result<(), ServeError> {
    serve_with(rt, shutdown, None, Start::Fresh)
}

/// [`serve`] the config read from `config`, reloading that file on SIGHUP; `start` says
/// whether to bind the listeners or take them from a running Gatehouse.
pub fn serve_reloading(rt: Arc<Runtime>, config: PathBuf, start: Start) -> Result<(), ServeError> {
    serve_with(rt, None, Some(config), start)
}

/// Pingora retries a busy port for 30 s and then panics; find out now and say so clearly.
fn check_ports_free(rt: &Runtime) -> Result<(), ServeError> {
    let addr = rt.settings.listen;
    std::net::TcpListener::bind(addr).map_err(|e| ServeError::Listen {
        addr: addr.to_string(),
        reason: e.to_string(),
    })?;
    if let Some(admin) = rt.settings.admin_listen {
        std::net::TcpListener::bind(admin).map_err(|e| ServeError::AdminListen {
            addr: admin.to_string(),
            reason: e.to_string(),
        })?;
    }
    if let Some(redirect) = rt.settings.http_redirect_listen {
        std::net::TcpListener::bind(redirect).map_err(|e| ServeError::RedirectListen {
            addr: redirect.to_string(),
            reason: e.to_string(),
        })?;
    }
    Ok(())
}

fn serve_with(
    rt: Arc<Runtime>,
    shutdown: Option<Box<dyn ShutdownSignalWatch>>,
    config: Option<PathBuf>,
    start: Start,
) -> Result<(), ServeError> {
    let addr = rt.settings.listen;
    let gate = Gate::new(rt.clone()).map_err(ServeError::Upstream)?;
    let live = gate.live();
    let upgrade_sock = &rt.settings.upgrade_sock;
    match start {
        Start::Fresh => check_ports_free(&rt)?,
        // The running process holds the ports; they come over the upgrade socket.
        Start::Upgrade => upgrade::check_new_side(addr, upgrade_sock)?,
    }
    let tls = match &rt.settings.tls {
        Some(files) => {
            Some(tls::listener_settings(&addr.to_string(), files).map_err(ServeError::Tls)?)
        }
        None => None,
    };
    let grace = rt.settings.shutdown_grace;
    // On SIGTERM Pingora stops accepting and then waits grace_period_seconds while requests
    // in flight finish (the signal thread exits sooner once none is left); then it shuts the
    // runtimes down, which ends whatever still runs, allowing a moment for threads to stop.
    // SIGQUIT first hands the listening sockets to the process waiting on upgrade_sock.
    let conf = ServerConf {
        upgrade_sock: upgrade_sock.display().to_string(),
        ..server_conf(rt.settings.threads, grace.as_secs())
    };
    let opt = Opt {
        upgrade: start == Start::Upgrade,
        ..Opt::default()
    };
    let mut server = Server::new_with_opt_and_conf(Some(opt), conf);
    // Before the listeners open (and before an upgrade waits for them): a SIGHUP must never
    // find the default action (exit) in place.
    let shutdown = match shutdown {
        Some(watch) => watch,
        None => {
            let reload = config.map(|path| lifecycle::Reloader::new(path, live.clone()));
            let handover = lifecycle::Handover {
                sock: upgrade_sock.clone(),
                phases: server.watch_execution_phase(),
            };
            lifecycle::start_signals(reload, grace, handover).map_err(ServeError::Signals)?
        }
    };
    if start == Start::Upgrade {
        tracing::info!(
            upgrade_sock = %upgrade_sock.display(),
            "upgrade: waiting up to {}s for the running Gatehouse to hand over its listening sockets: send it SIGQUIT now",
            upgrade::HANDOVER_WAIT.as_secs()
        );
    }
    // With --upgrade, this receives the sockets (or exits 1 when none come).
    server.bootstrap();
    if start == Start::Upgrade {
        tracing::info!("upgrade: listening sockets received");
    }
    // Clients must send each request header within server.client_timeout (Pingora 0.9 has no
    // such option: the wrapper caps the keep-alive timer that governs header reads).
    let mut proxy = pingora::proxy::http_proxy(&server.configuration, gate);
    if rt.settings.h2c {
        // Pingora peeks at each plain connection for HTTP/2's preface; anything else is 1.1.
        let mut options = pingora::apps::HttpServerOptions::default();
        options.h2c = true;
        proxy.server_options = Some(options);
    }
    let mut service = pingora::services::listening::Service::new(
        "gatehouse".to_string(),
        crate::limits::ClientTimeout::new(proxy, rt.settings.limits.client_timeout),
    );
    match tls {
        // HTTPS, with HTTP/2 offered by ALPN.
        Some(settings) => service.add_tls_with_settings(&addr.to_string(), None, settings),
        None => service.add_listener(listener(&addr.to_string())),
    }
    server.add_service(service);
    if let Some(redirect) = rt.settings.http_redirect_listen {
        server.add_service(redirect_http::service(&redirect.to_string(), live.clone()));
        tracing::info!(%redirect, "redirecting http://{redirect} to {}", rt.settings.public_url);
    }
    if let Some(admin) = rt.settings.admin_listen {
        // A service of the same server: it stops when the gate stops.
        let sessions = rt
            .sessions
            .server_side()
            .then(|| Arc::clone(&rt.sessions.store));
        server.add_service(crate::observe::admin::service(&admin.to_string(), sessions));
        tracing::info!(%admin, "metrics at http://{admin}/metrics");
    }
    let scheme = if rt.settings.tls.is_some() {
        "https"
    } else {
        "http"
    };
    tracing::info!(%addr, scheme, h2c = rt.settings.h2c, "gatehouse listening");
    server.run(RunArgs {
        shutdown_signal: shutdown,
    });
    Ok(())
}
