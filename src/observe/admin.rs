//! The admin listener (`server.admin_listen`): `GET /metrics` in Prometheus text format. A
//! Pingora service of its own, so it starts and stops with the gate's server and never shares
//! the public listener.

use async_trait::async_trait;
use http::Response;
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use pingora::services::listening::Service;
use std::sync::Arc;

use crate::store::Store;

pub struct AdminApp {
    /// The store of server-side sessions, counted at each scrape (`None`: cookie sessions).
    sessions: Option<Arc<dyn Store>>,
}

#[async_trait]
impl ServeHttp for AdminApp {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let req = session.req_header();
        let (status, content_type, body) = match (req.method.as_str(), req.uri.path()) {
            ("GET" | "HEAD", "/metrics") => {
                self.check_ready().await;
                self.count_sessions().await;
                (
                    200,
                    super::metrics::CONTENT_TYPE,
                    super::metrics().render().into_bytes(),
                )
            }
            (_, "/metrics") => (405, "text/plain", b"GET only\n".to_vec()),
            _ => (404, "text/plain", b"not found: try /metrics\n".to_vec()),
        };
        let mut response = Response::builder()
            .status(status)
            .header(http::header::CONTENT_TYPE, content_type)
            .header(http::header::CONTENT_LENGTH, body.len())
            .header(http::header::CACHE_CONTROL, "no-store");
        if status == 405 {
            response = response.header(http::header::ALLOW, "GET, HEAD");
        }
        response.body(body).unwrap_or_default()
    }
}

impl AdminApp {
    /// `gatehouse_sessions_active`, as the store has it now (left as it was if it cannot say).
    /// `gatehouse_ready`: what `/ready` would answer now (the store answers a ping; with
    /// cookie sessions there is nothing to wait for).
    async fn check_ready(&self) {
        let ready = match &self.sessions {
            Some(store) => store.ping().await.is_ok(),
            None => true,
        };
        super::metrics().set_ready(ready);
    }

    async fn count_sessions(&self) {
        let Some(store) = &self.sessions else { return };
        match store.count_sessions(crate::clock::unix_now()).await {
            Ok(n) => super::metrics()
                .sessions_active()
                .set(i64::try_from(n).unwrap_or(i64::MAX)),
            Err(e) => tracing::warn!(error = %e, "could not count sessions for /metrics"),
        }
    }
}

/// The admin service listening on `addr`, one thread (a scrape every few seconds needs no more).
/// `sessions`: the store to count server-side sessions in, if sessions are server-side.
pub fn service(addr: &str, sessions: Option<Arc<dyn Store>>) -> Service<AdminApp> {
    let mut service = Service::new("gatehouse admin".to_string(), AdminApp { sessions });
    service.threads = Some(1);
    service.add_tcp(addr);
    service
}
