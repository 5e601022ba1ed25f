//! Gate processes on a clock that differs from the machine's, as replicas on hosts whose
//! clocks drifted apart: libfaketime (Debian `faketime`) preloaded into the child shifts what
//! it reads as the wall clock, and nothing else (its monotonic clock stays true).

use std::path::PathBuf;

/// libfaketime's multi-threaded build, wherever the distribution put it
/// (`/usr/lib/<multiarch>/faketime/` on Debian).
fn library() -> Option<PathBuf> {
    let in_lib = |dir: PathBuf| dir.join("faketime/libfaketimeMT.so.1");
    std::fs::read_dir("/usr/lib")
        .ok()?
        .flatten()
        .map(|entry| in_lib(entry.path()))
        .chain([in_lib(PathBuf::from("/usr/lib"))])
        .find(|path| path.exists())
}

/// Is libfaketime installed? In CI it must be (`.ci/run` installs it); elsewhere the test is
/// skipped, and says so.
pub fn available(test: &str) -> bool {
    let found = library().is_some();
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "{test}: libfaketime is not installed (apt-get install faketime)"
        );
        eprintln!("SKIPPED {test}: libfaketime is not installed (apt-get install faketime)");
    }
    found
}

/// The environment that puts a child's wall clock `secs` seconds behind the machine's.
pub fn behind(secs: u64) -> Vec<(&'static str, String)> {
    vec![
        (
            "LD_PRELOAD",
            library().map_or_else(String::new, |p| p.display().to_string()),
        ),
        ("FAKETIME", format!("-{secs}s")),
        ("DONT_FAKE_MONOTONIC", "1".to_string()),
    ]
}
