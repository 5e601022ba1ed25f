//! `server.http_redirect_listen`: a plain-http listener that sends every request to the https
//! `public_url` with the same path and query (308, so methods and bodies are kept). The
//! target host is always `public_url`'s, never the request's `Host`, so it cannot be turned
//! into an open redirect.

use super::Live;
use arc_swap::ArcSwap;
use async_trait::async_trait;
use http::Response;
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use pingora::services::listening::Service;
use std::sync::Arc;

pub(super) struct RedirectApp {
    /// The config in force: a reload that changes `public_url` changes the target.
    live: Arc<ArcSwap<Live>>,
}

/// `https://host[:port]` of `public_url` + the request's path and query.
fn location(public_url: &url::Url, req: &http::Uri) -> String {
    let origin = public_url.origin().ascii_serialization();
    let target = req
        .path_and_query()
        .map(|pq| pq.as_str())
        .filter(|pq| pq.starts_with('/'))
        .unwrap_or("/");
    format!("{origin}{target}")
}

#[async_trait]
impl ServeHttp for RedirectApp {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let live = self.live.load();
        let to = location(&live.rt.settings.public_url, &session.req_header().uri);
        Response::builder()
            .status(308)
            .header(http::header::LOCATION, to)
            .header(http::header::CONTENT_LENGTH, 0)
            .body(Vec::new())
            .unwrap_or_default()
    }
}

/// The redirect service on `addr`, one thread (it only writes a header).
pub(super) fn service(addr: &str, live: Arc<ArcSwap<Live>>) -> Service<RedirectApp> {
    let mut service = Service::new("gatehouse http redirect".to_string(), RedirectApp { live });
    service.threads = Some(1);
    service.add_tcp(addr);
    service
}

#[cfg(test)]
mod tests {
    use super::location;

    #[test]
    fn keeps_path_and_query_and_uses_public_url_host() {
        let public = url::Url::parse("https://app.example.com").unwrap();
        let uri: http::Uri = "/a/b?x=1&y=%2F".parse().unwrap();
        assert_eq!(
            location(&public, &uri),
            "https://app.example.com/a/b?x=1&y=%2F"
        );
        let public = url::Url::parse("https://app.example.com:8443/").unwrap();
        let uri: http::Uri = "http://evil.example/x".parse().unwrap();
        assert_eq!(location(&public, &uri), "https://app.example.com:8443/x");
        let uri: http::Uri = "*".parse().unwrap();
        assert_eq!(location(&public, &uri), "https://app.example.com:8443/");
    }
}
