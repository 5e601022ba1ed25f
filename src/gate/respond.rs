//! Writing a [`Reply`] through Pingora.

use crate::reply::Reply;
use pingora::http::ResponseHeader;
use pingora::proxy::Session;

pub async fn write_reply(session: &mut Session, reply: Reply) -> pingora::Result<()> {
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
