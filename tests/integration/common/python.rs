//! `.ci/run`'s Python venv, where the pinned Python packages the tests drive live (Flask and
//! Django for the differential tests, authlib for the OAuth 2.0 client test).

use std::path::PathBuf;
use std::process::{Command, Stdio};

/// `~/.cache/<rel>`.
pub fn home_cache(rel: &str) -> Option<PathBuf> {
    Some(
        PathBuf::from(std::env::var_os("HOME")?)
            .join(".cache")
            .join(rel),
    )
}

/// `.ci/run`'s venv python (`$GATEHOUSE_DIFF_PYTHON`, else `$GATEHOUSE_CI_VENV/bin/python`, else
/// `~/.cache/gatehouse-ci-venv/bin/python`), if it can import `module`.
pub fn python_with(module: &str) -> Result<PathBuf, String> {
    let python = match std::env::var_os("GATEHOUSE_DIFF_PYTHON") {
        Some(p) => PathBuf::from(p),
        None => match std::env::var_os("GATEHOUSE_CI_VENV") {
            Some(venv) => PathBuf::from(venv).join("bin/python"),
            None => home_cache("gatehouse-ci-venv/bin/python").ok_or("no HOME")?,
        },
    };
    let imports = Command::new(&python)
        .args(["-c", &format!("import {module}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    match imports {
        true => Ok(python),
        false => Err(format!("{} cannot import {module}", python.display())),
    }
}

/// Running under CI (`CI=true`), where a test must not skip for a missing tool.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}
