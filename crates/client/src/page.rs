//! The small self-contained HTML pages the loopback listener answers the browser with.

use gatehouse_base::html::escape;

/// A whole HTML page with `heading` and `text` (both escaped).
pub fn page(heading: &str, text: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{h} · Gatehouse</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;\
         padding:0 1rem;color:#222}}h1{{font-size:1.4rem}}p{{line-height:1.5}}</style>\
         </head><body><h1>{h}</h1><p>{t}</p></body></html>\n",
        h = escape(heading),
        t = escape(text),
    )
}

/// The page after tokens were stored.
pub fn signed_in(origin: &str) -> String {
    page(
        "Signed in — you can close this tab",
        &format!("The command line is now signed in to {origin}. Return to your terminal."),
    )
}

/// A page saying the sign-in failed and why.
pub fn failed(reason: &str) -> String {
    page("Sign-in failed", reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_escape_what_they_show() {
        let html = failed("<script>x</script> & more");
        assert!(html.contains("&lt;script&gt;x&lt;/script&gt; &amp; more"));
        assert!(!html.contains("<script>"));
        assert!(signed_in("https://a.example").contains("Signed in — you can close this tab"));
    }
}
