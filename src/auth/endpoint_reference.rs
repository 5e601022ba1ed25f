//! The endpoints reference page (docs/src/reference/endpoints.md) against the endpoint table:
//! its summary block is generated from [`super::endpoints()`] (`GATEHOUSE_BLESS=1` rewrites
//! it), and every path its hand-written table describes is an endpoint of the table, and the
//! other way round, so neither can drift from what the gate serves.

use super::endpoints::{endpoints, Endpoint};
use std::path::PathBuf;

const PAGE: &str = "docs/src/reference/endpoints.md";
const BEGIN: &str = "<!-- BEGIN generated from src/auth/endpoints.rs: GATEHOUSE_BLESS=1 cargo test --lib auth::endpoint_reference -->";
const END: &str = "<!-- END generated -->";

fn page_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(PAGE)
}

/// The summary table, one row per endpoint, with the default prefix.
fn render() -> String {
    let mut out = String::from(
        "| path | methods | rate-limited | body cap | CORS | a state-changing request must carry | what it is |\n|---|---|---|---|---|---|---|\n",
    );
    for e in endpoints() {
        out.push_str(&row(e));
    }
    out
}

fn row(e: &Endpoint) -> String {
    let methods = if e.any_method {
        "any".to_string()
    } else {
        e.methods.join(", ")
    };
    let body = if e.max_body >= 1024 * 1024 {
        format!("{} MiB", e.max_body / (1024 * 1024))
    } else {
        format!("{} KiB", e.max_body / 1024)
    };
    let same_origin = match e.same_origin {
        None => "— (not checked)".to_string(),
        Some(takes) if e.cors => format!(
            "this site's origin or a configured token client's; {}",
            takes.describe()
        ),
        Some(takes) => format!("this site's origin; {}", takes.describe()),
    };
    format!(
        "| `{}` | {methods} | {} | {body} | {} | {same_origin} | {} |\n",
        e.path_under("/oauth2"),
        if e.rate_limited { "yes" } else { "no" },
        if e.cors { "yes" } else { "no" },
        e.description.replace('|', "\\|"),
    )
}

/// The block between the markers, as the page has it.
fn block(page: &str) -> Option<(usize, usize)> {
    let start = page.find(BEGIN)? + BEGIN.len() + 1;
    let end = page[start..].find(END)? + start;
    Some((start, end))
}

#[test]
fn the_summary_block_is_what_the_endpoint_table_renders() {
    let page = std::fs::read_to_string(page_path()).expect("the endpoints page");
    let (start, end) =
        block(&page).unwrap_or_else(|| panic!("{PAGE} has no block between `{BEGIN}` and `{END}`"));
    let want = render();
    if std::env::var_os("GATEHOUSE_BLESS").is_some() {
        let page = format!("{}{want}{}", &page[..start], &page[end..]);
        std::fs::write(page_path(), page).expect("rewrite the endpoints page");
        return;
    }
    assert!(
        page[start..end] == want,
        "{PAGE}'s endpoint table differs from src/auth/endpoints.rs; regenerate it with:\n    \
         GATEHOUSE_BLESS=1 cargo test --lib auth::endpoint_reference\n--- page\n{}\n--- table\n{want}",
        &page[start..end]
    );
}

#[test]
fn the_hand_written_table_describes_exactly_the_served_endpoints() {
    let page = std::fs::read_to_string(page_path()).expect("the endpoints page");
    let (start, _) = block(&page).expect("the generated block");
    // Rows of the hand-written table: "| `/oauth2/start?rd=PATH` | GET | …".
    let described: std::collections::BTreeSet<String> = page[..start]
        .lines()
        .filter_map(|l| l.strip_prefix("| `/"))
        .map(|l| {
            let path: String = l
                .chars()
                .take_while(|c| !matches!(c, '`' | '?' | ' '))
                .collect();
            format!("/{path}")
        })
        .collect();
    let served = |path: &str| {
        endpoints().iter().any(|e| {
            let p = e.path_under("/oauth2");
            match p.strip_suffix('…') {
                Some(family) => path.starts_with(family),
                None => p == path,
            }
        })
    };
    for path in &described {
        assert!(
            served(path),
            "{PAGE} describes `{path}`, which is not in src/auth/endpoints.rs"
        );
    }
    for e in endpoints() {
        let p = e.path_under("/oauth2");
        let family = p.strip_suffix('…');
        assert!(
            described
                .iter()
                .any(|d| family.map_or(d == &p, |f| d.starts_with(f))),
            "{PAGE}'s table does not describe `{p}` (src/auth/endpoints.rs serves it)"
        );
    }
}
