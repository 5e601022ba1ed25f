//! ARCHITECTURE.md's module table is the rule: each top-level module of `src/` may import only
//! the modules its row names, and the rows form layers (no circles). This reads the code's
//! `crate::…` paths (outside comments and test modules) and fails, naming file and import, when
//! the code and the table disagree, so the picture in ARCHITECTURE.md cannot drift.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `module → modules it may import`, from the table rows "| `name` | … | `a`, `b` |".
fn declared() -> BTreeMap<String, BTreeSet<String>> {
    let text = std::fs::read_to_string(root().join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let start = text
        .find("<!-- module-table -->")
        .expect("ARCHITECTURE.md marks its module table with <!-- module-table -->");
    let mut table = BTreeMap::new();
    for line in text[start..].lines().skip(1) {
        let line = line.trim();
        if !line.starts_with('|') {
            if table.is_empty() {
                continue;
            }
            break;
        }
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        let Some(name) = cells
            .first()
            .and_then(|c| c.strip_prefix('`'))
            .and_then(|c| c.strip_suffix('`'))
        else {
            continue;
        };
        let may = cells.last().copied().unwrap_or_default();
        let allowed = may
            .split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect();
        table.insert(name.to_string(), allowed);
    }
    assert!(
        !table.is_empty(),
        "ARCHITECTURE.md's module table has no rows"
    );
    table
}

/// Top-level modules: `src/NAME.rs` and `src/NAME/`, but not the crate roots.
fn modules(src: &Path) -> BTreeSet<String> {
    std::fs::read_dir(src)
        .expect("src/")
        .filter_map(|e| {
            let e = e.ok()?;
            let name = e.file_name().into_string().ok()?;
            let name = match name.strip_suffix(".rs") {
                Some(stem) => stem.to_string(),
                None if e.path().is_dir() => name,
                None => return None,
            };
            (name != "lib" && name != "main").then_some(name)
        })
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("a source folder").flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file without comments and without its `#[cfg(test)]` module (unit tests may
/// use anything); whole files that are test modules (`tests.rs`, `*_tests.rs`) count as none.
fn production_code(path: &Path) -> String {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    if name == "tests.rs" || name.ends_with("_tests.rs") {
        return String::new();
    }
    let text = std::fs::read_to_string(path).expect("a source file");
    let code = match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => &text[..],
    };
    code.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The top-level modules a piece of code names through `crate::`.
fn imports(code: &str, known: &BTreeSet<String>) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            for item in group.split(',') {
                found.insert(ident(item.trim()));
            }
        } else {
            found.insert(ident(rest));
        }
    }
    found.retain(|m| known.contains(m));
    found
}

#[test]
fn every_module_imports_only_what_architecture_md_allows() {
    let src = root().join("src");
    let known = modules(&src);
    let table = declared();
    let mut wrong = Vec::new();
    for module in &known {
        let Some(allowed) = table.get(module) else {
            wrong.push(format!(
                "src/{module}: no row in ARCHITECTURE.md's module table"
            ));
            continue;
        };
        let mut files = Vec::new();
        let dir = src.join(module);
        if dir.is_dir() {
            rust_files(&dir, &mut files);
        } else {
            files.push(src.join(format!("{module}.rs")));
        }
        for file in files {
            for import in imports(&production_code(&file), &known) {
                if &import != module && !allowed.contains(&import) {
                    wrong.push(format!(
                        "{}: imports `{import}`, which ARCHITECTURE.md does not allow `{module}`",
                        file.strip_prefix(root()).unwrap_or(&file).display()
                    ));
                }
            }
        }
    }
    for name in table.keys() {
        if !known.contains(name) {
            wrong.push(format!(
                "ARCHITECTURE.md names `{name}`, which is not a module of src/"
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "the code and ARCHITECTURE.md disagree (change the code, or the table and its reasons):\n  {}",
        wrong.join("\n  ")
    );
}

#[test]
fn the_module_table_has_no_circles() {
    let table = declared();
    // Depth-first search for a back edge; the path so far is the circle's witness.
    fn visit(
        m: &str,
        table: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|p| p == m) {
            let mut circle = path[at..].to_vec();
            circle.push(m.to_string());
            return Some(circle);
        }
        if done.contains(m) {
            return None;
        }
        path.push(m.to_string());
        for next in table.get(m).into_iter().flatten() {
            if let Some(circle) = visit(next, table, path, done) {
                return Some(circle);
            }
        }
        path.pop();
        done.insert(m.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for m in table.keys() {
        if let Some(circle) = visit(m, &table, &mut Vec::new(), &mut done) {
            panic!(
                "ARCHITECTURE.md's module table has a circle: {}",
                circle.join(" → ")
            );
        }
    }
}

#[test]
fn the_import_reader_sees_paths_and_groups_and_skips_comments() {
    let known: BTreeSet<String> = ["config", "store", "policy"]
        .into_iter()
        .map(String::from)
        .collect();
    let code = production_code_of(
        "use crate::config::Settings;\nuse crate::{store::Store, policy};\n// crate::x\n",
    );
    assert_eq!(
        imports(&code, &known),
        ["config", "policy", "store"]
            .into_iter()
            .map(String::from)
            .collect()
    );
    assert!(imports(&production_code_of("// uses crate::store\n"), &known).is_empty());
}

fn production_code_of(text: &str) -> String {
    let dir = tempfile::tempdir().expect("a temp dir");
    let file = dir.path().join("x.rs");
    std::fs::write(&file, text).expect("write");
    production_code(&file)
}
