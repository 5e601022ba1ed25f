//! Living with a running gate: reload the config on SIGHUP, drain on SIGTERM.
//!
//! Signals are taken on a thread of their own (registered before the listeners open, so an
//! early SIGHUP cannot kill the process) and handed to Pingora through a
//! [`ShutdownSignalWatch`]:
//!
//! - `SIGHUP`: read the config file again. A valid one is swapped in whole (the next request
//!   uses it; connections and requests under way are untouched); an invalid one is refused with
//!   every problem logged, and the old config stays. So is one that changes a key a reload
//!   cannot apply (listeners, threads, the session store, …): the log names them and says a
//!   restart is needed. Nothing the process remembers is lost (see `Runtime::reloaded`).
//! - `SIGTERM`: Pingora stops accepting connections and ends keep-alives; requests in flight
//!   may finish for up to `server.shutdown_grace`. The process exits 0 as soon as none is left
//!   (Pingora alone would always wait the whole grace period), or when the grace period is over.
//! - `SIGINT`: fast stop; a second signal during a drain stops at once.
//! - `SIGQUIT`: an in-place upgrade ([`super::upgrade`]). Once a new process (`run --upgrade`)
//!   listens on `server.upgrade_sock`, the listening sockets go to it; this process accepts for
//!   Pingora's 5 s close window more, then drains like on `SIGTERM`. With no new process
//!   waiting, the signal is refused and this process keeps serving.

use super::Live;
use crate::config::Settings;
use crate::runtime::Runtime;
use arc_swap::ArcSwap;
use async_trait::async_trait;
use pingora::server::{ExecutionPhase, ShutdownSignal, ShutdownSignalWatch};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
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

/// Set once this process has started to stop: its responses then close their connections.
static STOPPING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Has this process started to stop (SIGTERM, or its listeners are going to a new process)?
/// From the start of an upgrade's close window, not only once Pingora stops accepting: so
/// kept-alive clients move to the new process on a `Connection: close` of ours, instead of
/// racing Pingora's close of idle connections at the end of the window.
pub(super) fn stopping() -> bool {
    STOPPING.load(Ordering::Relaxed)
}

/// How many proxied or answered requests are under way right now.
pub fn in_flight() -> usize {
    IN_FLIGHT.load(Ordering::Relaxed)
}

/// Keys that are read once, at start (what a reload cannot apply), rendered for comparison.
/// The values may hold secrets (a Redis password): compared, never logged.
fn start_only(s: &Settings) -> Vec<(&'static str, String)> {
    // How the store reaches Redis, as validated (`""` and unset are the same).
    let redis = s.session.store.redis.as_ref();
    let postgres = s.session.store.postgres.as_ref();
    vec![
        ("server.listen", s.listen.to_string()),
        ("server.admin_listen", format!("{:?}", s.admin_listen)),
        ("server.threads", s.threads.to_string()),
        (
            "server.tls_cert",
            format!("{:?}", s.tls.as_ref().map(|t| &t.cert)),
        ),
        (
            "server.tls_key",
            format!("{:?}", s.tls.as_ref().map(|t| &t.key)),
        ),
        (
            "server.http_redirect_listen",
            format!("{:?}", s.http_redirect_listen),
        ),
        (
            "server.client_timeout",
            format!("{:?}", s.limits.client_timeout),
        ),
        ("server.shutdown_grace", format!("{:?}", s.shutdown_grace)),
        ("server.upgrade_sock", s.upgrade_sock.display().to_string()),
        ("server.h2c", s.h2c.to_string()),
        ("log.level", s.log_level.clone()),
        ("log.format", format!("{:?}", s.log_format)),
        // The store is opened once: the records, codes and revocations live in it.
        ("session.store", format!("{:?}", s.config.session.store)),
        (
            "session.redis_url",
            format!("{:?}", redis.and_then(|r| r.url.as_deref())),
        ),
        (
            "session.sentinel_urls",
            format!(
                "{:?}",
                redis.map(|r| &r.sentinel_urls[..]).unwrap_or_default()
            ),
        ),
        (
            "session.redis_cluster_urls",
            format!(
                "{:?}",
                redis.map(|r| &r.cluster_urls[..]).unwrap_or_default()
            ),
        ),
        (
            "session.sentinel_master",
            format!("{:?}", redis.and_then(|r| r.sentinel_master.as_deref())),
        ),
        (
            "session.redis_ca_file",
            format!("{:?}", redis.and_then(|r| r.ca_pem.as_deref())),
        ),
        (
            "session.redis_timeout",
            format!(
                "{:?}",
                redis.map_or(s.config.session.redis_timeout.0, |r| r.timeout)
            ),
        ),
        (
            "session.postgres_url",
            format!("{:?}", postgres.map(|p| &p.url)),
        ),
        (
            "session.postgres_ca_file",
            format!("{:?}", postgres.and_then(|p| p.ca_pem.as_deref())),
        ),
        (
            "session.postgres_timeout",
            format!("{:?}", postgres.map(|p| p.timeout)),
        ),
        (
            "session.postgres_pool_size",
            format!("{:?}", postgres.map(|p| p.pool_size)),
        ),
        (
            "session.postgres_schema",
            format!("{:?}", postgres.map(|p| &p.schema)),
        ),
        (
            "session.redis_prefix",
            redis
                .map_or(&s.config.session.redis_prefix, |r| &r.prefix)
                .clone(),
        ),
    ]
}

/// The keys whose values differ between the running settings and new ones.
fn changed_start_only(running: &Settings, new: &Settings) -> Vec<&'static str> {
    start_only(running)
        .into_iter()
        .zip(start_only(new))
        .filter(|((_, was), (_, now))| was != now)
        .map(|((key, _), _)| key)
        .collect()
}

/// Reads the config file again and swaps it in.
pub(super) struct Reloader {
    path: PathBuf,
    live: Arc<ArcSwap<Live>>,
}

impl Reloader {
    pub(super) fn new(path: PathBuf, live: Arc<ArcSwap<Live>>) -> Reloader {
        Reloader { path, live }
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
        let old = self.live.load_full();
        // All of the file or none of it: half of a config in force matches no file.
        let changed = changed_start_only(&old.rt.settings, &settings);
        if !changed.is_empty() {
            for key in &changed {
                tracing::error!(config = %path, key, "config reload: {key} changed, which a reload cannot apply: it needs a restart (or an in-place upgrade, `gatehouse run --upgrade`)");
            }
            return Err(format!(
                "{} changed, which needs a restart (or an in-place upgrade, `gatehouse run --upgrade`); put the running value back in {path} to reload the rest; still serving the previous config",
                changed.join(", ")
            ));
        }
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

/// What SIGQUIT needs: where the new process listens, and Pingora's phases (to start the
/// drain once the close window is over).
pub(super) struct Handover {
    pub(super) sock: PathBuf,
    pub(super) phases: tokio::sync::broadcast::Receiver<ExecutionPhase>,
}

/// Where the process is in its life, as the signal thread sees it.
const SERVING: u8 = 0;
/// SIGQUIT came; waiting for a new process on the upgrade socket.
const HANDING_OVER: u8 = 1;
/// Stopping: SIGTERM, or the sockets went to a new process.
const DRAINING: u8 = 2;

/// Start the signal thread: SIGHUP reloads through `reload` (left at its default, ending the
/// process, when `None`), SIGTERM drains for up to `grace`, SIGQUIT hands the listeners over
/// through `handover`. Returns the watch for Pingora.
pub(super) fn start_signals(
    reload: Option<Reloader>,
    grace: Duration,
    handover: Handover,
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
    let state = Arc::new(AtomicU8::new(SERVING));
    std::thread::Builder::new()
        .name("gatehouse-signals".into())
        .spawn(move || {
            runtime.block_on(async move {
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
                            if state.swap(DRAINING, Ordering::SeqCst) == DRAINING {
                                continue;
                            }
                            STOPPING.store(true, Ordering::Relaxed);
                            tracing::info!(
                                in_flight = in_flight(),
                                grace_s = grace.as_secs(),
                                "SIGTERM: no new connections; draining requests in flight"
                            );
                            let _ = tx.send(ShutdownSignal::GracefulTerminate);
                            tokio::spawn(exit_when_drained(grace));
                        }
                        _ = int.recv() => {
                            if state.load(Ordering::SeqCst) == DRAINING {
                                tracing::warn!(in_flight = in_flight(), "SIGINT during the drain: stopping now");
                                exit_now();
                            }
                            let _ = tx.send(ShutdownSignal::FastShutdown);
                        }
                        _ = quit.recv() => {
                            if state
                                .compare_exchange(SERVING, HANDING_OVER, Ordering::SeqCst, Ordering::SeqCst)
                                .is_err()
                            {
                                tracing::info!("SIGQUIT: already handing over or stopping");
                                continue;
                            }
                            tokio::spawn(hand_over(
                                handover.sock.clone(),
                                handover.phases.resubscribe(),
                                Arc::clone(&state),
                                tx.clone(),
                                grace,
                            ));
                        }
                    }
                }
            })
        })?;
    Ok(Box::new(Watch(tokio::sync::Mutex::new(rx))))
}

/// SIGQUIT: once a new process waits on `sock`, let Pingora send it the listening sockets;
/// then, after Pingora's close window (both processes accept meanwhile), drain and exit.
async fn hand_over(
    sock: PathBuf,
    mut phases: tokio::sync::broadcast::Receiver<ExecutionPhase>,
    state: Arc<AtomicU8>,
    tx: mpsc::UnboundedSender<ShutdownSignal>,
    grace: Duration,
) {
    tracing::info!(upgrade_sock = %sock.display(), "SIGQUIT: waiting for the new process to take the listening sockets");
    let waiting = super::upgrade::new_process_waiting(&sock, super::upgrade::HANDOVER_WAIT).await;
    if let Err(why) = waiting {
        tracing::error!("SIGQUIT refused: {why}; still serving");
        let _ = state.compare_exchange(HANDING_OVER, SERVING, Ordering::SeqCst, Ordering::SeqCst);
        return;
    }
    // A SIGTERM or SIGINT meanwhile wins.
    if state
        .compare_exchange(HANDING_OVER, DRAINING, Ordering::SeqCst, Ordering::SeqCst)
        .is_err()
    {
        return;
    }
    tracing::info!(
        in_flight = in_flight(),
        grace_s = grace.as_secs(),
        "SIGQUIT: handing the listening sockets to the new process; this one stops accepting after Pingora's 5 s close window, then drains requests in flight"
    );
    STOPPING.store(true, Ordering::Relaxed);
    let _ = tx.send(ShutdownSignal::GracefulUpgrade);
    loop {
        match phases.recv().await {
            Ok(ExecutionPhase::ShutdownGracePeriod) => break,
            Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        }
    }
    exit_when_drained(grace).await;
}

/// Exit 0 at once, after writing the access lines still waiting for their batch.
fn exit_now() -> ! {
    crate::observe::logs::flush();
    std::process::exit(0)
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
                exit_now();
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tracing::warn!(
        in_flight = in_flight(),
        "shutdown_grace is over: ending the requests still in flight"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(server: &str, session: &str) -> Settings {
        let text = format!(
            r#"
[server]
{server}
[github]
client_id = "id"
client_secret = "secret"
[session]
secrets = ["AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="]
{session}
[access]
allowed_users = ["OctoCat"]
"#
        );
        crate::config::load_str(&text, "t", &|_| None).unwrap()
    }

    #[test]
    fn a_reload_names_every_key_only_a_restart_applies() {
        let running = settings("", "");
        assert!(changed_start_only(&running, &settings("", "")).is_empty());
        // Keys a reload applies are not named.
        assert!(changed_start_only(
            &running,
            &settings("max_header_bytes = 65536\ntls_cert = \"\"", "ttl = \"1h\"")
        )
        .is_empty());
        let new = settings(
            "listen = \"127.0.0.1:9\"\nupgrade_sock = \"/run/x/u.sock\"",
            "store = \"redis\"\nredis_url = \"redis://:pw@10.0.0.1:6379\"\nredis_prefix = \"g:\"\nstore_secrets = [\"ERITFBUWFxgZGhscHR4fICEiIyQlJicoKSorLC0uLzA=\"]",
        );
        assert_eq!(
            changed_start_only(&running, &new),
            [
                "server.listen",
                "server.upgrade_sock",
                "session.store",
                "session.redis_url",
                "session.redis_prefix"
            ]
        );
    }
}
