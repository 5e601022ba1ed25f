//! The one page layout and its small building blocks.

/// Escape text for HTML element content and double-quoted attributes (shared with the mock
/// GitHub through the leaf crate `gatehouse-base`).
pub use gatehouse_base::html::escape;

pub fn button_link(href: &str, label: &str) -> String {
    format!(
        r#"<a class="button" href="{}">{}</a>"#,
        escape(href),
        escape(label)
    )
}

/// A quieter link styled as a secondary button.
pub fn secondary_link(href: &str, label: &str) -> String {
    format!(
        r#"<a class="button secondary" href="{}">{}</a>"#,
        escape(href),
        escape(label)
    )
}

/// A form button: sign-out is a POST so a stray link or image cannot trigger it.
pub fn post_button(action: &str, label: &str) -> String {
    post_form(action, &[], label)
}

/// A form button that posts `fields` (hidden inputs) as `application/x-www-form-urlencoded`.
pub fn post_form(action: &str, fields: &[(&str, &str)], label: &str) -> String {
    let inputs: String = fields
        .iter()
        .map(|(name, value)| {
            format!(
                r#"<input type="hidden" name="{}" value="{}">"#,
                escape(name),
                escape(value)
            )
        })
        .collect();
    format!(
        r#"<form method="post" action="{}">{inputs}<button class="button" type="submit">{}</button></form>"#,
        escape(action),
        escape(label)
    )
}

/// GitHub's mark (Octicons `mark-github`, MIT), inline so the page needs nothing external.
pub const GITHUB_MARK: &str = r#"<svg class="mark" aria-hidden="true" viewBox="0 0 16 16" width="18" height="18"><path fill="currentColor" d="M8 0C3.58 0 0 3.58 0 8c0 3.54 2.29 6.53 5.47 7.59.4.07.55-.17.55-.38 0-.19-.01-.82-.01-1.49-2.01.37-2.53-.49-2.69-.94-.09-.23-.48-.94-.82-1.13-.28-.15-.68-.52-.01-.53.63-.01 1.08.58 1.23.82.72 1.21 1.87.87 2.33.66.07-.52.28-.87.51-1.07-1.78-.2-3.64-.89-3.64-3.95 0-.87.31-1.59.82-2.15-.08-.2-.36-1.02.08-2.12 0 0 .67-.21 2.2.82.64-.18 1.32-.27 2-.27.68 0 1.36.09 2 .27 1.53-1.04 2.2-.82 2.2-.82.44 1.1.16 1.92.08 2.12.51.56.82 1.27.82 2.15 0 3.07-1.87 3.75-3.65 3.95.29.25.54.73.54 1.48 0 1.07-.01 1.93-.01 2.2 0 .21.15.46.55.38A8.013 8.013 0 0016 8c0-4.42-3.58-8-8-8z"/></svg>"#;

/// `title` is plain text; `message_html` and `actions_html` are already escaped HTML.
pub fn page(title: &str, message_html: &str, actions_html: &str) -> String {
    layout(
        title,
        &format!(
            "<h1>{}</h1><p>{message_html}</p>{actions_html}",
            escape(title)
        ),
    )
}

/// The whole document around `main_html` (already escaped HTML, including its heading).
/// Everything is inline: no fonts, scripts or stylesheets from anywhere else, and the layout
/// holds at 360 px wide.
pub fn layout(title: &str, main_html: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · Gatehouse</title>
<style>
body{{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:#f6f8fa;color:#1f2328;display:flex;min-height:100vh;align-items:center;justify-content:center}}
main{{background:#fff;border:1px solid #d0d7de;border-radius:12px;padding:2rem;max-width:30rem;width:calc(100% - 2rem);box-sizing:border-box;margin:1rem;overflow-wrap:anywhere}}
h1{{font-size:1.4rem;margin:0 0 .75rem}}
h2{{font-size:1rem;margin:1.25rem 0 .5rem}}
p{{margin:0 0 1.25rem}}
ul{{margin:0 0 1.25rem;padding-left:1.25rem}}
li{{margin:0 0 .6rem}}
.button{{display:inline-flex;align-items:center;gap:.5rem;background:#1f2328;color:#fff;border:0;border-radius:6px;padding:.6rem 1.1rem;font:inherit;text-decoration:none;cursor:pointer;margin:0 .5rem .5rem 0}}
.button:hover{{background:#32383f}}
.button.secondary{{background:#f6f8fa;color:#1f2328;border:1px solid #d0d7de}}
.actions{{display:flex;flex-wrap:wrap;align-items:center}}
form{{margin:0}}
.logo{{display:block;max-width:100%;max-height:64px;margin:0 0 1rem}}
.app{{font-size:.85rem;color:#59636e;margin:0 0 .25rem}}
.note{{font-size:.9rem;color:#59636e}}
.custom{{white-space:pre-line;background:#f6f8fa;border-radius:6px;padding:.75rem}}
.who{{display:flex;align-items:center;gap:1rem;margin:0 0 1rem}}
.who h1{{margin:0}}
.avatar{{position:relative;flex:none;width:64px;height:64px;border-radius:50%;background:#d0d7de;color:#1f2328;font-size:1.75rem;line-height:64px;text-align:center;overflow:hidden}}
.avatar img{{position:absolute;inset:0;width:64px;height:64px}}
.avatar img::after{{content:attr(data-initial);position:absolute;inset:0;background:#d0d7de}}
dl{{display:grid;grid-template-columns:minmax(5rem,auto) 1fr;gap:.4rem 1rem;margin:0 0 1.25rem}}
dt{{color:#59636e}}
dd{{margin:0;min-width:0}}
.chip{{display:inline-block;background:#ddf4ff;color:#0969da;border-radius:2em;padding:0 .6rem;margin:0 .3rem .3rem 0;font-size:.9rem}}
.none{{color:#59636e}}
code{{font:.9em ui-monospace,SFMono-Regular,Menlo,monospace;background:#f6f8fa;border-radius:4px;padding:0 .2em}}
footer{{margin-top:1.5rem;font-size:.8rem;color:#59636e}}
@media (max-width:420px){{main{{padding:1.25rem;margin:.5rem;width:calc(100% - 1rem)}}}}
</style></head>
<body><main>{main_html}<footer>Gatehouse</footer></main></body></html>
"#,
        title = escape(title),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn pages_are_self_contained() {
        let html = page("T", "m", &button_link("/x", "Go"));
        for external in ["<script", "<link", "@import", "url(", "src=\"http"] {
            assert!(!html.contains(external), "{external}");
        }
        assert!(html.contains("width=device-width"));
    }
}
