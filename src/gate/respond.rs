//! Writing a [`Reply`] through Pingora.

use crate::reply::Reply;
use pingora::http::ResponseHeader;
use pingora::proxy::Session;

/// Answer with `reply`, unless a response is already under way: then nothing is written and
/// an error is returned, because a second response would be spliced into the first one's body
/// (and its end of stream would pass a truncated body off as complete). The caller must then
/// close the connection, so the client sees the transfer broke.
pub async fn write_reply(session: &mut Session, reply: Reply) -> pingora::Result<()> {
    if session.response_written().is_some() {
        return Err(pingora::Error::explain(
            pingora::ErrorType::InternalError,
            "a response is already under way; not writing another",
        ));
    }
    close_when_stopping(session);
    let head_only = session.req_header().method == http::Method::HEAD;
    let mut header = ResponseHeader::build(reply.status, Some(reply.headers.len() + 1))?;
    for (name, value) in reply.headers {
        header.append_header(name, value)?;
    }
    header.insert_header("Content-Length", reply.body.len().to_string())?;
    let empty = reply.body.is_empty() || head_only;
    session
        .write_response_header(Box::new(header), empty)
        .await?;
    if !empty {
        session.write_response_body(Some(reply.body), true).await?;
    }
    Ok(())
}

/// While this process stops (SIGTERM, or its listeners go to a new process), a response says
/// `Connection: close`: the client then opens its next connection to whoever accepts now,
/// instead of sending a request on one that is about to be closed under it.
pub fn close_when_stopping(session: &mut Session) {
    if super::lifecycle::stopping() || session.is_process_shutting_down() {
        session.set_keepalive(None);
    }
}
