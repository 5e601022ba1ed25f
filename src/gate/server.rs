//! Starting and stopping the Pingora server.

use super::Gate;
use crate::app::App;
use pingora::server::configuration::ServerConf;
use pingora::server::{RunArgs, Server, ShutdownSignalWatch};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("server.listen: cannot listen on {addr}: {reason} — fix: stop the other process using it or choose another address")]
    Listen { addr: String, reason: String },
    #[error("server.admin_listen: cannot listen on {addr}: {reason} — fix: stop the other process using it or choose another address")]
    AdminListen { addr: String, reason: String },
    #[error("upstream: {0} — fix: give a PEM file with the CA certificate(s) of the upstream")]
    Upstream(String),
}

/// Serve until a signal (SIGINT fast, SIGTERM graceful) or `shutdown` says stop.
pub fn serve(
    app: Arc<App>,
    shutdown: Option<Box<dyn ShutdownSignalWatch>>,
) -> Result<(), ServeError> {
    let addr = app.settings.listen;
    let gate = Gate::new(app.clone()).map_err(ServeError::Upstream)?;
    // Pingora retries a busy port for 30 s and then panics; find out now and say so clearly.
    std::net::TcpListener::bind(addr).map_err(|e| ServeError::Listen {
        addr: addr.to_string(),
        reason: e.to_string(),
    })?;
    if let Some(admin) = app.settings.admin_listen {
        std::net::TcpListener::bind(admin).map_err(|e| ServeError::AdminListen {
            addr: admin.to_string(),
            reason: e.to_string(),
        })?;
    }
    let conf = ServerConf {
        threads: app.settings.threads,
        grace_period_seconds: Some(1),
        graceful_shutdown_timeout_seconds: Some(10),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    // Clients must send each request header within server.client_timeout (Pingora 0.9 has no
    // such option: the wrapper caps the keep-alive timer that governs header reads).
    let mut service = pingora::services::listening::Service::new(
        "gatehouse".to_string(),
        crate::limits::ClientTimeout::new(
            pingora::proxy::http_proxy(&server.configuration, gate),
            app.settings.limits.client_timeout,
        ),
    );
    service.add_tcp(&addr.to_string());
    server.add_service(service);
    if let Some(admin) = app.settings.admin_listen {
        // A service of the same server: it stops when the gate stops.
        server.add_service(crate::observe::admin::service(&admin.to_string()));
        tracing::info!(%admin, "metrics at http://{admin}/metrics");
    }
    tracing::info!(%addr, "gatehouse listening");
    let mut args = RunArgs::default();
    if let Some(signal) = shutdown {
        args.shutdown_signal = signal;
    }
    server.run(args);
    Ok(())
}
