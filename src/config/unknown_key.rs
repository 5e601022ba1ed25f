//! A key the config does not know, named by its full path (`access.allowed_user`), with the
//! nearest key that section does know ("did you mean `access.allowed_users`?").

use super::problem::ConfigProblem;

/// The problem for a failed deserialisation at `path` (dotted, as serde_path_to_error gives
/// it), whose message is serde's; `None` when it is not an unknown-key error.
pub fn problem(path: &str, message: &str) -> Option<ConfigProblem> {
    let rest = message.strip_prefix("unknown field `")?;
    let (key, rest) = rest.split_once('`')?;
    // serde names the expected keys between backticks: "expected one of `a`, `b`".
    let expected: Vec<&str> = rest.split('`').skip(1).step_by(2).collect();
    let section = section_of(path, key);
    let full = |k: &str| match section {
        Some(s) => format!("{s}.{k}"),
        None => k.to_string(),
    };
    let fix = match nearest(key, &expected) {
        Some(near) => format!(
            "did you mean `{}`? (config.example.toml lists every key)",
            full(near)
        ),
        None => "remove or rename the key; config.example.toml lists every key".to_string(),
    };
    Some(ConfigProblem::new(full(key), "unknown key", fix))
}

/// The table the unknown key sits in: `path` ends with the key itself when serde_path_to_error
/// saw it, else it is the table's own path; `.` (the root) is no section.
fn section_of<'a>(path: &'a str, key: &str) -> Option<&'a str> {
    let table = match path.strip_suffix(key) {
        Some(rest) if rest.is_empty() || rest.ends_with('.') => rest.trim_end_matches('.'),
        _ => path,
    };
    (!table.is_empty() && table != ".").then_some(table)
}

/// The expected key closest to `key`, when it is close enough to be a slip of the keyboard.
fn nearest<'a>(key: &str, expected: &[&'a str]) -> Option<&'a str> {
    expected
        .iter()
        .map(|k| (strsim::damerau_levenshtein(key, k), *k))
        .filter(|(d, k)| *d <= (k.len().max(key.len()) / 3).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_full_path_and_the_nearest_key() {
        let p = problem(
            "access.allowed_user",
            "unknown field `allowed_user`, expected one of `allowed_users`, `allowed_orgs`",
        )
        .unwrap();
        assert_eq!(p.key, "access.allowed_user");
        assert!(
            p.fix.starts_with("did you mean `access.allowed_users`?"),
            "{p}"
        );
        let top = problem(
            "sesion",
            "unknown field `sesion`, expected one of `session`, `server`",
        )
        .unwrap();
        assert_eq!(top.key, "sesion");
        assert!(top.fix.starts_with("did you mean `session`?"), "{top}");
        let far = problem("server.zzz", "unknown field `zzz`, expected `listen`").unwrap();
        assert!(far.fix.starts_with("remove or rename"), "{far}");
        assert!(problem("server.listen", "invalid type: integer").is_none());
    }
}
