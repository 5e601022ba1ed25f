//! A tiny HTTP/1.1 listener on `127.0.0.1:0` for the browser's redirect (RFC 8252 §7.3).
//!
//! Each connection is read in its own task (browsers open spare connections that never send
//! anything), answered 404/405 unless it is `GET /callback`, and callback requests are handed to
//! the login flow, which answers them itself once it knows how the sign-in went.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// The path the gate redirects the browser to.
pub const CALLBACK_PATH: &str = "/callback";
/// Largest request head read; longer ones are answered 431.
const MAX_HEAD: usize = 16 * 1024;
/// How long one connection may take to send its request head.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The listener; accepting stops when it is dropped.
pub struct Loopback {
    addr: SocketAddr,
    callbacks: mpsc::Receiver<PendingCallback>,
    accept_task: JoinHandle<()>,
}

/// A `GET /callback?…` request waiting for its answer.
pub struct PendingCallback {
    /// The raw query string (after `?`, without a fragment).
    pub query: String,
    stream: TcpStream,
}

impl Loopback {
    /// Listen on 127.0.0.1 on a port the OS picks.
    pub async fn bind() -> std::io::Result<Loopback> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let (tx, callbacks) = mpsc::channel(8);
        let accept_task = tokio::spawn(accept_loop(listener, tx));
        Ok(Loopback {
            addr,
            callbacks,
            accept_task,
        })
    }

    /// `http://127.0.0.1:PORT/callback`.
    pub fn redirect_uri(&self) -> String {
        format!("http://{}{CALLBACK_PATH}", self.addr)
    }

    /// The next `GET /callback` request (`None` only if the listener died).
    pub async fn next_callback(&mut self) -> Option<PendingCallback> {
        self.callbacks.recv().await
    }
}

impl Drop for Loopback {
    fn drop(&mut self) {
        self.accept_task.abort();
    }
}

impl PendingCallback {
    /// Answer the browser with an HTML page and close the connection.
    pub async fn respond(mut self, status: u16, html: &str) {
        let _ = write_response(&mut self.stream, status, "text/html; charset=utf-8", html).await;
    }
}

async fn accept_loop(listener: TcpListener, tx: mpsc::Sender<PendingCallback>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(serve_connection(stream, tx.clone()));
            }
            // Out of file descriptors and the like: wait a little rather than spin.
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

async fn serve_connection(mut stream: TcpStream, tx: mpsc::Sender<PendingCallback>) {
    let head = match tokio::time::timeout(READ_TIMEOUT, read_head(&mut stream)).await {
        Ok(Ok(Some(head))) => head,
        Ok(Ok(None)) => {
            let _ = write_text(&mut stream, 431, "request head too large\n").await;
            return;
        }
        Ok(Err(_)) | Err(_) => return,
    };
    match parse_request_line(&head) {
        Some(Request {
            method,
            path,
            query,
        }) if path == CALLBACK_PATH => {
            if method != "GET" {
                let _ = write_text(&mut stream, 405, "only GET is served here\n").await;
                return;
            }
            let pending = PendingCallback {
                query: query.to_string(),
                stream,
            };
            // If login already finished, the pending request is dropped (connection closed).
            let _ = tx.send(pending).await;
        }
        Some(_) => {
            let _ = write_text(&mut stream, 404, "not found\n").await;
        }
        None => {
            let _ = write_text(&mut stream, 400, "bad request\n").await;
        }
    }
}

/// Read up to the blank line ending the head; `None` when it exceeds [`MAX_HEAD`].
async fn read_head(stream: &mut TcpStream) -> std::io::Result<Option<String>> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.windows(4).any(|w| w == b"\r\n\r\n") || buf.windows(2).any(|w| w == b"\n\n") {
            return Ok(Some(String::from_utf8_lossy(&buf).into_owned()));
        }
        if buf.len() > MAX_HEAD {
            return Ok(None);
        }
    }
}

/// The parts of an HTTP/1.x request line this listener cares about.
#[derive(Debug, PartialEq, Eq)]
pub struct Request<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
}

/// `GET /callback?code=…&state=… HTTP/1.1` → method, path, query (fragment dropped).
pub fn parse_request_line(head: &str) -> Option<Request<'_>> {
    let line = head.lines().next()?;
    let mut parts = line.split(' ');
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || !version.starts_with("HTTP/1.") || !target.starts_with('/') {
        return None;
    }
    let target = target.split('#').next().unwrap_or(target);
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    Some(Request {
        method,
        path,
        query,
    })
}

async fn write_text(stream: &mut TcpStream, status: u16, body: &str) -> std::io::Result<()> {
    write_response(stream, status, "text/plain; charset=utf-8", body).await
}

async fn write_response(
    stream: &mut TcpStream,
    status: u16,
    content_type: &str,
    body: &str,
) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        _ => "Error",
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\n\
         Content-Type: {content_type}\r\n\
         Content-Length: {}\r\n\
         Cache-Control: no-store\r\n\
         Referrer-Policy: no-referrer\r\n\
         X-Content-Type-Options: nosniff\r\n\
         Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'\r\n\
         Connection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.flush().await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines_split_into_method_path_query() {
        assert_eq!(
            parse_request_line("GET /callback?code=a&state=b HTTP/1.1\r\nHost: x\r\n\r\n"),
            Some(Request {
                method: "GET",
                path: "/callback",
                query: "code=a&state=b"
            })
        );
        assert_eq!(
            parse_request_line("GET /favicon.ico HTTP/1.1\r\n\r\n").map(|r| r.path),
            Some("/favicon.ico")
        );
        assert_eq!(parse_request_line("GET http://x/ HTTP/1.1\r\n\r\n"), None);
        assert_eq!(parse_request_line("nonsense\r\n\r\n"), None);
    }

    #[tokio::test]
    async fn loopback_answers_other_paths_404_and_hands_over_the_callback() {
        let mut loopback = Loopback::bind().await.unwrap();
        let uri = loopback.redirect_uri();
        assert!(uri.starts_with("http://127.0.0.1:") && uri.ends_with("/callback"));
        let addr = loopback.addr;

        // A spare connection that never sends anything must not block the others.
        let _idle = TcpStream::connect(addr).await.unwrap();

        let mut other = TcpStream::connect(addr).await.unwrap();
        other
            .write_all(b"GET /favicon.ico HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        other.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 404 "), "{answer}");

        let browser = tokio::spawn(async move {
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.write_all(b"GET /callback?code=c&state=s HTTP/1.1\r\nHost: x\r\n\r\n")
                .await
                .unwrap();
            let mut answer = String::new();
            s.read_to_string(&mut answer).await.unwrap();
            answer
        });
        let pending = loopback.next_callback().await.unwrap();
        assert_eq!(pending.query, "code=c&state=s");
        pending.respond(200, "<p>ok</p>").await;
        let answer = browser.await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        assert!(answer.ends_with("<p>ok</p>"));
    }
}
