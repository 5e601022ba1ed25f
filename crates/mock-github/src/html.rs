//! Self-contained HTML: escaping and a page shell with inline CSS (no external assets).

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

/// The same escaping as Gatehouse's own pages.
pub(super) use gatehouse_base::html::escape;

const STYLE: &str = "body{font-family:-apple-system,system-ui,sans-serif;background:#f6f8fa;\
color:#1f2328;margin:0;padding:1rem}main{max-width:34rem;margin:2rem auto;background:#fff;\
border:1px solid #d0d7de;border-radius:8px;padding:1.25rem}h1{font-size:1.35rem;margin-top:0}\
.note{color:#59636e;font-size:.9rem}.user{display:flex;flex-wrap:wrap;align-items:center;\
justify-content:space-between;gap:.5rem;border-top:1px solid #d0d7de;padding:.75rem 0}\
.user form{margin:0}button,.button{font:inherit;padding:.5rem .9rem;border-radius:6px;\
border:1px solid #1f883d;background:#1f883d;color:#fff;cursor:pointer;text-decoration:none;\
display:inline-block}.cancel{background:#f6f8fa;color:#1f2328;border-color:#d0d7de}\
.error{color:#d1242f}code{word-break:break-all}table{border-collapse:collapse;width:100%}\
td,th{text-align:left;border-top:1px solid #d0d7de;padding:.4rem;vertical-align:top;\
word-break:break-all}";

/// A complete page; `title` is escaped here, `body` must already be escaped HTML.
pub(super) fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let title = escape(title);
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<title>{title}</title><style>{STYLE}</style></head><body><main><h1>{title}</h1>{body}\
</main></body></html>"
    );
    (status, Html(html)).into_response()
}

/// An error page with one escaped message.
pub(super) fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    page(
        status,
        title,
        &format!("<p class=\"error\">{}</p>", escape(message)),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            super::escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
