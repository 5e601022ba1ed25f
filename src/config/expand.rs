//! `${VAR}` and `${VAR:-default}` expansion inside every string of the TOML document.
//!
//! Expansion runs on parsed values, not on the raw text, so a value containing quotes or
//! newlines can never change the document's structure.

use std::collections::BTreeSet;

/// Expand every string in `value` using `lookup`. Returns the names of variables that were
/// referenced without a default and are not set (they expand to "").
pub fn expand_value(
    value: &mut toml::Value,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<BTreeSet<String>, String> {
    let mut missing = BTreeSet::new();
    walk(value, "", lookup, &mut missing)?;
    Ok(missing)
}

fn walk(
    value: &mut toml::Value,
    key: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    missing: &mut BTreeSet<String>,
) -> Result<(), String> {
    match value {
        toml::Value::String(s) => {
            *s = expand_str(s, lookup, missing).map_err(|e| format!("{key}: {e}"))?;
        }
        toml::Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                walk(item, &format!("{key}[{i}]"), lookup, missing)?;
            }
        }
        toml::Value::Table(table) => {
            for (name, item) in table.iter_mut() {
                let path = if key.is_empty() {
                    name.clone()
                } else {
                    format!("{key}.{name}")
                };
                walk(item, &path, lookup, missing)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Expand one string. `$$` is a literal `$`; a lone `$` not followed by `{` stays as it is.
pub fn expand_str(
    input: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    missing: &mut BTreeSet<String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(stripped) = after.strip_prefix('$') {
            out.push('$');
            rest = stripped;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body.find('}').ok_or_else(|| {
                format!("unclosed `${{` in \"{input}\"; write ${{VAR}} or ${{VAR:-default}}")
            })?;
            let inner = &body[..end];
            let (name, default) = match inner.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (inner, None),
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!(
                    "`${{{inner}}}` is not a valid variable reference; names use A-Z, 0-9 and _"
                ));
            }
            match (lookup(name).filter(|v| !v.is_empty()), default) {
                (Some(v), _) => out.push_str(&v),
                (None, Some(d)) => out.push_str(d),
                (None, None) => {
                    missing.insert(name.to_string());
                }
            }
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOST" => Some("example.com".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    fn run(s: &str) -> (String, BTreeSet<String>) {
        let mut missing = BTreeSet::new();
        let out = expand_str(s, &env, &mut missing).unwrap();
        (out, missing)
    }

    #[test]
    fn expands_set_unset_and_defaults() {
        assert_eq!(run("https://${HOST}/x").0, "https://example.com/x");
        assert_eq!(run("${NOPE:-fallback}").0, "fallback");
        assert_eq!(run("${EMPTY:-fallback}").0, "fallback");
        let (out, missing) = run("a${NOPE}b");
        assert_eq!(out, "ab");
        assert!(missing.contains("NOPE"));
        assert_eq!(run("cost $5 and $$HOME").0, "cost $5 and $HOME");
    }

    #[test]
    fn rejects_malformed_references() {
        let mut m = BTreeSet::new();
        assert!(expand_str("${OPEN", &env, &mut m).is_err());
        assert!(expand_str("${bad name}", &env, &mut m).is_err());
    }

    #[test]
    fn walks_nested_values_and_names_the_key() {
        let mut v: toml::Value = toml::from_str("[a]\nlist = [\"${HOST}\", \"${BROKEN\"]").unwrap();
        let err = expand_value(&mut v, &env).unwrap_err();
        assert!(err.starts_with("a.list[1]:"), "{err}");
    }
}
