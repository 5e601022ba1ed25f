//! `server.client_timeout`: how long a client may stall while sending a request's header.
//!
//! Pingora 0.9 has no option for it. While it reads an HTTP/1 request header it waits on each
//! read for the connection's keep-alive timeout: 60 s on a new connection, and none at all on
//! a reused one (HTTP/1.1 keep-alive is "infinite" by default). A stalled read then ends the
//! connection without an answer. This wrapper caps that timeout at `client_timeout` before
//! every request, so a client that sends half a request line and stops is dropped after it,
//! and an idle keep-alive connection is closed after it too. The limit applies to each read,
//! to the second: Pingora offers no deadline for the whole header, so a client trickling a
//! byte just inside the limit is held only by Pingora's 1 MiB header cap. At shutdown, the same
//! wrapper gives connections that were just accepted a moment to send their request.

use async_trait::async_trait;
use pingora::apps::{HttpServerApp, HttpServerOptions, ReusedHttpStream};
use pingora::protocols::http::ServerSession;
use pingora::protocols::Stream;
use pingora::server::ShutdownWatch;
use std::sync::Arc;
use std::time::Duration;

/// How long connections accepted just before the listeners closed have to send their request.
const LAST_ARRIVALS: Duration = Duration::from_secs(1);

/// An HTTP app (the Gate's `HttpProxy`) whose clients must send each request header promptly.
pub struct ClientTimeout<A> {
    inner: Arc<A>,
    /// Whole seconds, at least 1 (Pingora's keep-alive timeout is in seconds; 0 means none).
    secs: u64,
}

impl<A> ClientTimeout<A> {
    pub fn new(inner: A, timeout: Duration) -> ClientTimeout<A> {
        let secs = timeout.as_secs() + u64::from(timeout.subsec_nanos() > 0);
        ClientTimeout {
            inner: Arc::new(inner),
            secs: secs.max(1),
        }
    }

    /// The keep-alive timeout a session should get, given the one Pingora set.
    fn capped(&self, current: Option<u64>) -> Option<u64> {
        match current {
            // Off (shutting down): Pingora's own read timeout applies; leave it.
            None => None,
            // 0 is "no timeout".
            Some(0) => Some(self.secs),
            Some(t) => Some(t.min(self.secs)),
        }
    }
}

#[async_trait]
impl<A> HttpServerApp for ClientTimeout<A>
where
    A: HttpServerApp + Send + Sync + 'static,
{
    async fn process_new_http(
        self: &Arc<Self>,
        mut session: ServerSession,
        shutdown: &ShutdownWatch,
    ) -> Option<ReusedHttpStream> {
        let current = session.get_keepalive();
        let capped = self.capped(current);
        if capped != current {
            session.set_keepalive(capped);
        }
        self.inner.process_new_http(session, shutdown).await
    }

    fn h2_options(&self) -> Option<pingora::protocols::http::v2::server::H2Options> {
        self.inner.h2_options()
    }

    fn server_options(&self) -> Option<&HttpServerOptions> {
        self.inner.server_options()
    }

    /// Called once the listeners stop accepting (SIGTERM, or the end of an upgrade's close
    /// window). Pingora's cleanup drops every connection still waiting for a request header,
    /// including ones accepted a moment before whose request is on its way: they get a moment
    /// to present it first (they are then answered, with `Connection: close`).
    async fn http_cleanup(&self) {
        tokio::time::sleep(LAST_ARRIVALS).await;
        self.inner.http_cleanup().await
    }

    async fn process_custom_session(
        self: Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        self.inner
            .clone()
            .process_custom_session(stream, shutdown)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keepalive_is_capped_never_raised() {
        let t = ClientTimeout::new((), Duration::from_secs(30));
        assert_eq!(t.capped(Some(60)), Some(30));
        assert_eq!(t.capped(Some(0)), Some(30));
        assert_eq!(t.capped(Some(5)), Some(5));
        assert_eq!(t.capped(None), None);
        let t = ClientTimeout::new((), Duration::from_millis(1500));
        assert_eq!(t.capped(Some(0)), Some(2));
    }
}
