//! The one page layout and its small building blocks.

/// Escape text for HTML element content and double-quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

pub fn button_link(href: &str, label: &str) -> String {
    format!(
        r#"<a class="button" href="{}">{}</a>"#,
        escape(href),
        escape(label)
    )
}

/// A form button: sign-out is a POST so a stray link or image cannot trigger it.
pub fn post_button(action: &str, label: &str) -> String {
    format!(
        r#"<form method="post" action="{}"><button class="button" type="submit">{}</button></form>"#,
        escape(action),
        escape(label)
    )
}

/// `title` is plain text; `message_html` and `actions_html` are already escaped HTML.
pub fn page(title: &str, message_html: &str, actions_html: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · Gatehouse</title>
<style>
body{{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:#f6f8fa;color:#1f2328;display:flex;min-height:100vh;align-items:center;justify-content:center}}
main{{background:#fff;border:1px solid #d0d7de;border-radius:12px;padding:2rem;max-width:28rem;width:calc(100% - 3rem);box-sizing:border-box;margin:1rem}}
h1{{font-size:1.4rem;margin:0 0 .75rem}}
p{{margin:0 0 1.25rem}}
.button{{display:inline-block;background:#1f2328;color:#fff;border:0;border-radius:6px;padding:.6rem 1.1rem;font:inherit;text-decoration:none;cursor:pointer}}
.button:hover{{background:#32383f}}
form{{margin:0}}
footer{{margin-top:1.5rem;font-size:.8rem;color:#59636e}}
</style></head>
<body><main><h1>{title}</h1><p>{message_html}</p>{actions_html}<footer>Gatehouse</footer></main></body></html>
"#,
        title = escape(title),
    )
}
