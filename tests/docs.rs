//! The manual (`docs/`) held to the code and to itself:
//! - the CLI reference (`docs/src/reference/cli.md`) holds the real binary's `--help` of every
//!   subcommand, and its hand-written table names exactly those subcommands;
//! - every relative link and `#anchor` in `docs/src/`, `README.md`, `SECURITY.md` (and
//!   `ARCHITECTURE.md` when present) resolves, links in the book stay inside the book, and every
//!   page is listed in `SUMMARY.md`;
//! - the README shows the commands a newcomer needs, `.ci/run`'s test command included.
//!
//! The config reference is checked by the unit tests in `src/config/reference.rs`.
//! `GATEHOUSE_BLESS=1 cargo test --test docs cli_reference` rewrites the generated part of the
//! CLI page.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};
use std::process::Command;

const CLI_PAGE: &str = "docs/src/reference/cli.md";
const BEGIN: &str = "<!-- BEGIN GENERATED from `gatehouse --help`; do not edit. Regenerate with: GATEHOUSE_BLESS=1 cargo test --test docs cli_reference -->";
const END: &str = "<!-- END GENERATED -->";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

// ---- CLI reference -----------------------------------------------------------------------

/// `gatehouse ARGS`, with an empty environment so defaults taken from variables (e.g.
/// `GATEHOUSE_HEALTHCHECK_URL`) show as they are, not as this machine has them.
fn help(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(args)
        .env_clear()
        .output()
        .expect("run gatehouse");
    assert!(out.status.success(), "gatehouse {args:?}: {out:?}");
    let text = String::from_utf8(out.stdout).expect("help is UTF-8");
    // Without trailing blanks, which editors strip.
    let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
    lines.join("\n")
}

/// The subcommands `gatehouse --help` lists (without `help`).
fn subcommands(top: &str) -> Vec<String> {
    let list = top
        .split_once("Commands:\n")
        .expect("`gatehouse --help` lists its commands")
        .1;
    list.lines()
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(String::from)
        .collect()
}

fn render_cli() -> String {
    let top = help(&["--help"]);
    let mut out = format!(
        "{BEGIN}\n\n### `gatehouse`\n\n```text\n{}\n```\n",
        top.trim_end()
    );
    for name in subcommands(&top) {
        let text = help(&[&name, "--help"]);
        out.push_str(&format!(
            "\n### `gatehouse {name}`\n\n```text\n{}\n```\n",
            text.trim_end()
        ));
    }
    out.push('\n');
    out.push_str(END);
    out
}

#[test]
fn cli_reference_is_the_binarys_help() {
    let page = read(CLI_PAGE);
    let start = page.find(BEGIN).expect("the CLI page has the BEGIN marker");
    let end = page.find(END).expect("the CLI page has the END marker") + END.len();
    let want = render_cli();
    if std::env::var_os("GATEHOUSE_BLESS").is_some() {
        let new = format!("{}{want}{}", &page[..start], &page[end..]);
        std::fs::write(root().join(CLI_PAGE), new).unwrap();
        return;
    }
    assert!(
        page[start..end] == want,
        "{CLI_PAGE} does not hold the binary's current --help; regenerate it with:\n    \
         GATEHOUSE_BLESS=1 cargo test --test docs cli_reference"
    );
}

#[test]
fn cli_reference_table_names_every_subcommand() {
    let page = read(CLI_PAGE);
    let table = &page[..page.find(BEGIN).expect("BEGIN marker")];
    let named: BTreeSet<String> = table
        .lines()
        .filter(|l| l.starts_with("| `gatehouse "))
        .filter_map(|l| l["| `gatehouse ".len()..].split([' ', '`']).next())
        .map(String::from)
        .collect();
    let real: BTreeSet<String> = subcommands(&help(&["--help"])).into_iter().collect();
    assert_eq!(
        named, real,
        "the table at the top of {CLI_PAGE} must have a row for each subcommand, and only those"
    );
}

// ---- Links and anchors -------------------------------------------------------------------

/// Markdown files whose links are checked: the book's pages and the top-level documents.
fn checked_files() -> Vec<PathBuf> {
    let mut files = book_pages();
    for top in ["README.md", "SECURITY.md", "ARCHITECTURE.md"] {
        let path = root().join(top);
        if path.is_file() {
            files.push(path);
        }
    }
    files
}

fn book_src() -> PathBuf {
    root().join("docs/src")
}

fn book_pages() -> Vec<PathBuf> {
    let mut pages = Vec::new();
    let mut stack = vec![book_src()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "md") {
                pages.push(path);
            }
        }
    }
    pages.sort();
    pages
}

/// The lines of a Markdown file outside fenced code blocks, with their numbers.
fn prose_lines(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut fence: Option<String> = None;
    for (n, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let ticks: String = trimmed
            .chars()
            .take_while(|c| *c == '`' || *c == '~')
            .collect();
        let is_fence =
            ticks.len() >= 3 && ticks.chars().all(|c| c == ticks.chars().next().unwrap());
        match &fence {
            Some(open) => {
                if is_fence && ticks.len() >= open.len() && trimmed[ticks.len()..].trim().is_empty()
                {
                    fence = None;
                }
            }
            None if is_fence && !trimmed[ticks.len()..].contains('`') => fence = Some(ticks),
            None => out.push((n + 1, line)),
        }
    }
    out
}

/// A line with its inline code spans removed.
fn without_code(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(start) = rest.find('`') {
        out.push_str(&rest[..start]);
        let ticks = rest[start..].chars().take_while(|c| *c == '`').count();
        let after = &rest[start + ticks..];
        match after.find(&"`".repeat(ticks)) {
            Some(end) => rest = &after[end + ticks..],
            None => {
                out.push_str(&rest[start..]);
                return out;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Link targets on a line: `[text](target)`, `![alt](target)` and `[label]: target`.
fn link_targets(line: &str) -> Vec<String> {
    let line = without_code(line);
    let mut targets = Vec::new();
    if let Some(rest) = line.trim_start().strip_prefix('[') {
        if let Some((_, target)) = rest.split_once("]: ") {
            targets.push(target.split_whitespace().next().unwrap_or("").to_string());
        }
    }
    let mut rest = line.as_str();
    while let Some(i) = rest.find("](") {
        let after = &rest[i + 2..];
        let mut depth = 0;
        let end = after
            .char_indices()
            .find(|&(_, c)| {
                match c {
                    '(' => depth += 1,
                    ')' if depth == 0 => return true,
                    ')' => depth -= 1,
                    _ => {}
                }
                false
            })
            .map(|(j, _)| j)
            .unwrap_or(after.len());
        let target = after[..end].trim();
        let target = target
            .strip_prefix('<')
            .and_then(|t| t.split_once('>'))
            .map_or_else(
                || target.split_whitespace().next().unwrap_or(""),
                |(t, _)| t,
            );
        targets.push(target.to_string());
        rest = &after[end.min(after.len())..];
    }
    targets
}

/// The id mdBook gives a heading (mdbook-html's `id_from_content`, over the heading's text
/// after smart punctuation); GitHub's differ only in not making `--` a dash first.
fn heading_id(text: &str, smart_punctuation: bool) -> String {
    let mut plain = String::new();
    // Keep the text of links and code; drop emphasis markers.
    let mut rest = text;
    while !rest.is_empty() {
        if let Some(code) = rest.strip_prefix('`') {
            let end = code.find('`').unwrap_or(code.len());
            plain.push_str(&code[..end]);
            rest = code.get(end + 1..).unwrap_or("");
            continue;
        }
        let c = rest.chars().next().unwrap();
        rest = &rest[c.len_utf8()..];
        match c {
            '*' | '[' => {}
            ']' if rest.starts_with('(') => {
                let close = rest.find(')').unwrap_or(rest.len() - 1);
                rest = &rest[close + 1..];
            }
            '-' if smart_punctuation && rest.starts_with('-') => {
                // `--` is an en dash and `---` an em dash: neither is kept in an id.
                rest = rest.trim_start_matches('-');
            }
            _ => plain.push(c),
        }
    }
    plain
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            c if c.is_alphanumeric() || c == '_' || c == '-' => Some(c),
            c if c.is_whitespace() => Some('-'),
            _ => None,
        })
        .collect()
}

/// Every anchor a Markdown file offers: heading ids (numbered when repeated) and explicit
/// `<a id="…">` / `{#…}` ones.
fn anchors(path: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let in_book = path.starts_with(book_src());
    let mut seen = BTreeMap::<String, usize>::new();
    let mut ids = BTreeSet::new();
    for (_, line) in prose_lines(&text) {
        let hashes = line.chars().take_while(|c| *c == '#').count();
        if (1..=6).contains(&hashes) && line[hashes..].starts_with(' ') {
            let mut heading = line[hashes..]
                .trim()
                .trim_end_matches('#')
                .trim()
                .to_string();
            if let Some(i) = heading.find(" {#") {
                let id = heading[i + 3..].trim_end_matches('}').to_string();
                ids.insert(id);
                heading.truncate(i);
                continue;
            }
            let id = heading_id(&heading, in_book);
            let n = seen.entry(id.clone()).or_insert(0);
            ids.insert(if *n == 0 {
                id.clone()
            } else {
                format!("{id}-{n}")
            });
            *n += 1;
        }
        for part in line.split("<a id=\"").skip(1) {
            ids.insert(part.split('"').next().unwrap_or("").to_string());
        }
    }
    ids
}

/// `a/b/../c` → `a/c`, without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

#[test]
fn every_relative_link_and_anchor_resolves() {
    let mut problems = Vec::new();
    let mut checked = 0;
    let mut anchor_cache = BTreeMap::<PathBuf, BTreeSet<String>>::new();
    for file in checked_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        let rel = file.strip_prefix(root()).unwrap().display().to_string();
        let in_book = file.starts_with(book_src());
        for (n, line) in prose_lines(&text) {
            for target in link_targets(line) {
                if target.is_empty() || target.contains("://") || target.starts_with("mailto:") {
                    continue;
                }
                checked += 1;
                let (path_part, anchor) = match target.split_once('#') {
                    Some((p, a)) => (p, Some(a)),
                    None => (target.as_str(), None),
                };
                let dest = if path_part.is_empty() {
                    file.clone()
                } else {
                    normalize(&file.parent().unwrap().join(path_part))
                };
                if !dest.exists() {
                    problems.push(format!("{rel}:{n}: {target}: no such file"));
                    continue;
                }
                if in_book && !dest.starts_with(book_src()) {
                    problems.push(format!(
                        "{rel}:{n}: {target}: leaves docs/src, so the built book cannot serve it; \
                         name the file as `code` instead"
                    ));
                    continue;
                }
                let Some(anchor) = anchor else { continue };
                if dest.extension().is_none_or(|e| e != "md") {
                    problems.push(format!(
                        "{rel}:{n}: {target}: an anchor into a non-Markdown file"
                    ));
                    continue;
                }
                let ids = anchor_cache
                    .entry(dest.clone())
                    .or_insert_with(|| anchors(&dest));
                if !ids.contains(anchor) {
                    problems.push(format!(
                        "{rel}:{n}: {target}: no heading makes #{anchor} (there are: {})",
                        ids.iter().cloned().collect::<Vec<_>>().join(", ")
                    ));
                }
            }
        }
    }
    assert!(checked > 100, "checked only {checked} links");
    assert!(
        problems.is_empty(),
        "broken links:\n{}",
        problems.join("\n")
    );
}

#[test]
fn every_page_is_in_the_summary() {
    let summary_path = book_src().join("SUMMARY.md");
    let summary = std::fs::read_to_string(&summary_path).unwrap();
    let listed: BTreeSet<PathBuf> = prose_lines(&summary)
        .into_iter()
        .flat_map(|(_, l)| link_targets(l))
        .map(|t| normalize(&book_src().join(t)))
        .collect();
    let missing: Vec<String> = book_pages()
        .into_iter()
        .filter(|p| *p != summary_path && !listed.contains(p))
        .map(|p| p.strip_prefix(root()).unwrap().display().to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "pages not in docs/src/SUMMARY.md (mdBook would not build them): {missing:?}"
    );
}

#[test]
fn heading_ids_match_mdbook() {
    // The examples of mdbook-html's own tests, and headings this manual links to.
    assert_eq!(
        heading_id("`--passes`: add more rustdoc passes", true),
        "--passes-add-more-rustdoc-passes"
    );
    assert_eq!(
        heading_id("Method-call 🐙 expressions", true),
        "method-call--expressions"
    );
    assert_eq!(
        heading_id("Which rule decides: `check-config --explain`", true),
        "which-rule-decides-check-config---explain"
    );
    assert_eq!(heading_id("`[roles.NAME]`", true), "rolesname");
    assert_eq!(heading_id("A -- B", true), "a--b");
    assert_eq!(heading_id("A -- B", false), "a----b");
    assert_eq!(
        heading_id("See [the guide](x.md) now", true),
        "see-the-guide-now"
    );
}

// ---- README ------------------------------------------------------------------------------

#[test]
fn readme_has_what_a_newcomer_needs() {
    let readme = read("README.md");
    // The test command is the one .ci/run ends with.
    let ci = read(".ci/run");
    let test_command = ci
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with("cargo test"))
        .expect(".ci/run runs cargo test");
    for needle in [
        "cargo run --release -- demo",
        test_command,
        "sudo apt-get install cmake",
        "brew install cmake",
        "http://127.0.0.1:4180",
        "gatehouse check-config",
        "gatehouse gen-secret",
        "GH_CLIENT_ID",
        "GH_CLIENT_SECRET",
        "GATEHOUSE_SESSION_SECRET",
        "docs/src/SUMMARY.md",
        "SECURITY.md",
    ] {
        assert!(readme.contains(needle), "README.md should mention {needle}");
    }
    assert!(
        readme.len() < 12 * 1024,
        "README.md is {} bytes: keep it to what a newcomer needs and move the rest to docs/",
        readme.len()
    );
}
