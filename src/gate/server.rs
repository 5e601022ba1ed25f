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
}

/// Serve until a signal (SIGINT fast, SIGTERM graceful) or `shutdown` says stop.
pub fn serve(
    app: Arc<App>,
    shutdown: Option<Box<dyn ShutdownSignalWatch>>,
) -> Result<(), ServeError> {
    let addr = app.settings.listen;
    // Pingora retries a busy port for 30 s and then panics; find out now and say so clearly.
    std::net::TcpListener::bind(addr).map_err(|e| ServeError::Listen {
        addr: addr.to_string(),
        reason: e.to_string(),
    })?;
    let conf = ServerConf {
        threads: app.settings.threads,
        grace_period_seconds: Some(1),
        graceful_shutdown_timeout_seconds: Some(10),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let mut service = pingora::proxy::http_proxy_service_with_name(
        &server.configuration,
        Gate::new(app),
        "gatehouse",
    );
    service.add_tcp(&addr.to_string());
    server.add_service(service);
    tracing::info!(%addr, "gatehouse listening");
    let mut args = RunArgs::default();
    if let Some(signal) = shutdown {
        args.shutdown_signal = signal;
    }
    server.run(args);
    Ok(())
}
