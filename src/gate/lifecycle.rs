//! Living with a running gate: reload the config on SIGHUP, drain on SIGTERM.
//!
//! Signals are taken on a thread of their own (registered before the listeners open, so an
//! early SIGHUP cannot kill the process) and handed to Pingora through a
//! [`ShutdownSignalWatch`]:
//!
//! - `SIGHUP`: read the config file again. A valid one is swapped in whole (the next request
//!   uses it; connections and requests under way are untouched); an invalid one is refused with
//!   every problem logged, and the old config stays. Keys read only at start are named in a
//!   warning: they need a restart.
//! - `SIGTERM`: Pingora stops accepting connections and ends keep-alives; requests in flight
//!   may finish for up to `server.shutdown_grace`. The process exits 0 as soon as none is left
//!   (Pingora alone would always wait the whole grace period), or when the grace period is over.
//! - `SIGINT`: fast stop; a second signal during a drain stops at once. `SIGQUIT`: Pingora's
//!   graceful upgrade (the listening sockets go to a new process).

use super::Live;
use crate::config::Settings;
use crate::runtime::Runtime;
use arc_swap::ArcSwap;
use async_trait::async_trait;
use pingora::server::{ShutdownSignal, ShutdownSignalWatch};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

/// Requests between `new_ctx` and the end of their logging phase.
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// Held by each request's context: it counts as in flight until dropped.
pub(super) struct InFlight(());

impl InFlight {
    pub(super) fn start() -> InFlight {
        IN_FLIGHT.fetch_add(1, Ordering::Relaxed);
        InFlight(())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        IN_FLIGHT.fetch_sub(1, Ordering::Relaxed);
    }
}

/// How many proxied or answered requests are under way right now.
pub fn in_flight() -> usize {
    IN_FLIGHT.load(Ordering::Relaxed)
}

/// Keys that are read once, at start, rendered for comparison.
fn start_only(s: &Settings) -> Vec<(&'static str, String)> {
    vec![
        ("server.listen", s.listen.to_string()),
        ("server.admin_listen", format!("{:?}", s.admin_listen)),
        ("server.threads", s.threads.to_string()),
        ("server.tls_cert / server.tls_key", format!("{:?}", s.tls)),
        (
            "server.http_redirect_listen",
            format!("{:?}", s.http_redirect_listen),
        ),
        (
            "server.client_timeout",
            format!("{:?}", s.limits.client_timeout),
        ),
        ("server.shutdown_grace", format!("{:?}", s.shutdown_grace)),
        ("log.level", s.log_level.clone()),
        ("log.format", format!("{:?}", s.log_format)),
    ]
}

/// Reads the config file again and swaps it in.
pub(super) struct Reloader {
    path: PathBuf,
    live: Arc<ArcSwap<Live>>,
    /// [`start_only`] of the config the process started with.
    started: Vec<(&'static str, String)>,
}

impl Reloader {
    pub(super) fn new(path: PathBuf, live: Arc<ArcSwap<Live>>) -> Reloader {
        let started = start_only(&live.load().rt.settings);
        Reloader {
            path,
            live,
            started,
        }
    }

    /// Load, check and swap in the config file. `Err` says why the old config stays.
    pub(super) fn reload(&self) -> Result<(), String> {
        let path = self.path.display().to_string();
        let settings = crate::runtime::load_file(&self.path).map_err(|e| {
            for p in &e.problems {
                tracing::error!(config = %path, key = %p.key, "config reload: {p}");
            }
            format!(
                "{path} has {} problem(s); still serving the previous config",
                e.problems.len()
            )
        })?;
        for ((key, was), (_, now)) in self.started.iter().zip(start_only(&settings)) {
            if *was != now {
                tracing::warn!(config = %path, key, "config reload: {key} changed, which takes effect only after a restart; the rest of the new config is in force");
            }
        }
        let old = self.live.load_full();
        let rt = Runtime::reloaded(&old.rt, settings)
            .map_err(|e| format!("{e}; still serving the previous config"))?;
        let live = Live::new(Arc::new(rt))
            .map_err(|e| format!("upstream: {e}; still serving the previous config"))?;
        self.live.store(Arc::new(live));
        Ok(())
    }

    fn on_sighup(&self) {
        tracing::info!(config = %self.path.display(), "SIGHUP: reloading the config");
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.reload()));
        crate::observe::metrics().reload(match outcome {
            Ok(Ok(())) => crate::observe::ReloadResult::Applied,
            _ => crate::observe::ReloadResult::Refused,
        });
        match outcome {
            Ok(Ok(())) => {
                tracing::info!(config = %self.path.display(), "config reloaded: new requests use it")
            }
            Ok(Err(why)) => tracing::error!("config reload refused: {why}"),
            Err(_) => tracing::error!(
                "config reload failed unexpectedly; still serving the previous config"
            ),
        }
    }
}

/// Hands the shutdown signals the signal thread took to Pingora's main loop.
struct Watch(tokio::sync::Mutex<mpsc::UnboundedReceiver<ShutdownSignal>>);

#[async_trait]
impl ShutdownSignalWatch for Watch {
    async fn recv(&self) -> ShutdownSignal {
        let signal = self.0.lock().await.recv().await;
        signal.unwrap_or(ShutdownSignal::FastShutdown)
    }
}

/// Start the signal thread: SIGHUP reloads through `reload` (left at its default, ending the
/// process, when `None`), SIGTERM drains for up to `grace`. Returns the watch for Pingora.
pub(super) fn start_signals(
    reload: Option<Reloader>,
    grace: Duration,
) -> std::io::Result<Box<dyn ShutdownSignalWatch>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // Registered now, before the listeners open.
    let (mut hup, mut term, mut int, mut quit) = {
        let _guard = runtime.enter();
        let hup = match reload {
            Some(_) => Some(signal(SignalKind::hangup())?),
            None => None,
        };
        (
            hup,
            signal(SignalKind::terminate())?,
            signal(SignalKind::interrupt())?,
            signal(SignalKind::quit())?,
        )
    };
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::Builder::new()
        .name("gatehouse-signals".into())
        .spawn(move || {
            runtime.block_on(async move {
                let mut draining = false;
                loop {
                    let hangup = async {
                        match hup.as_mut() {
                            Some(s) => s.recv().await,
                            None => std::future::pending().await,
                        }
                    };
                    tokio::select! {
                        _ = hangup => {
                            if let Some(r) = &reload {
                                r.on_sighup();
                            }
                        }
                        _ = term.recv() => {
                            if draining {
                                continue;
                            }
                            draining = true;
                            tracing::info!(
                                in_flight = in_flight(),
                                grace_s = grace.as_secs(),
                                "SIGTERM: no new connections; draining requests in flight"
                            );
                            let _ = tx.send(ShutdownSignal::GracefulTerminate);
                            tokio::spawn(exit_when_drained(grace));
                        }
                        _ = int.recv() => {
                            if draining {
                                tracing::warn!(in_flight = in_flight(), "SIGINT during the drain: stopping now");
                                std::process::exit(0);
                            }
                            let _ = tx.send(ShutdownSignal::FastShutdown);
                        }
                        _ = quit.recv() => {
                            let _ = tx.send(ShutdownSignal::GracefulUpgrade);
                        }
                    }
                }
            })
        })?;
    Ok(Box::new(Watch(tokio::sync::Mutex::new(rx))))
}

/// Exit 0 once no request is in flight. Pingora itself ends the process when `grace` is over.
async fn exit_when_drained(grace: Duration) {
    let deadline = Instant::now() + grace;
    // Let connections accepted just before the signal present their request.
    tokio::time::sleep(Duration::from_millis(100)).await;
    while Instant::now() < deadline {
        if in_flight() == 0 {
            // The last response's bytes leave the socket buffers.
            tokio::time::sleep(Duration::from_millis(100)).await;
            if in_flight() == 0 {
                tracing::info!("drained: every request in flight has finished; exiting");
                std::process::exit(0);
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tracing::warn!(
        in_flight = in_flight(),
        "shutdown_grace is over: ending the requests still in flight"
    );
}
