//! Fuzz smoke test (issue 8). The fuzz targets' bodies (fuzz/src/targets.rs) are compiled in here
//! too, so plain `cargo test` checks their invariants on:
//!
//! - every file of `fuzz/corpus/<target>/` and `fuzz/regressions/<target>/` (crashes that were
//!   found once stay fixed);
//! - a short in-process mutational run per target (random mutations of the corpus, fixed seed;
//!   `GATEHOUSE_FUZZ_ITERS` and `GATEHOUSE_FUZZ_SEED` change it);
//! - when `GATEHOUSE_FUZZ_SECONDS` is set and `cargo fuzz` is installed: real coverage-guided
//!   libFuzzer runs through `fuzz/run.sh` for that many seconds per target.
//!
//! The long runs are `fuzz/run.sh [SECONDS]`; see fuzz/README.md.

#[path = "../../fuzz/src/targets.rs"]
mod targets;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::Instant;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .filter(|p| {
                    !p.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with('.'))
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// Run one input; `Err` with the panic message when an invariant broke.
fn run_one(target: targets::Target, data: &[u8]) -> Result<(), String> {
    catch_unwind(AssertUnwindSafe(|| target(data))).map_err(|e| {
        e.downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "panic".to_string())
    })
}

#[test]
fn corpus_and_regressions_replay() {
    let mut failures = Vec::new();
    for (name, target) in targets::TARGETS {
        let corpus = files_in(&fuzz_dir().join("corpus").join(name));
        assert!(!corpus.is_empty(), "fuzz/corpus/{name}/ has no seeds");
        let regressions = files_in(&fuzz_dir().join("regressions").join(name));
        for file in corpus.iter().chain(&regressions) {
            let data = std::fs::read(file).unwrap();
            if let Err(e) = run_one(*target, &data) {
                failures.push(format!("{}: {e}", file.display()));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "invariants broken:\n{}",
        failures.join("\n")
    );
}

/// The valid seeds still open and verify: a change of the cookie or token format shows here
/// (regenerate with `cargo test --test integration fuzz_smoke::write_seed_corpus -- --ignored`).
#[test]
fn valid_seeds_are_still_valid() {
    let corpus = fuzz_dir().join("corpus");
    let read = |t: &str, f: &str| std::fs::read_to_string(corpus.join(t).join(f)).unwrap();
    let ring = targets::ring();
    for file in ["jwe", "jwe_old_key"] {
        assert!(ring.open(&read("session_cookie", file)).is_ok(), "{file}");
    }
    assert!(ring
        .open(&read("session_cookie", "jwe_foreign_key"))
        .is_err());
    let [(_, hs), (_, es)] = targets::verifiers();
    assert!(hs.verify(&read("bearer_token", "hs256")).is_ok());
    assert!(es.verify(&read("bearer_token", "es256")).is_ok());
    assert!(hs.verify(&read("bearer_token", "es256")).is_err());
    assert!(hs.verify(&read("bearer_token", "expired_hs256")).is_err());
    assert!(hs.verify(&read("bearer_token", "alg_none")).is_err());
}

// ---------------------------------------------------------------------------------------------
// In-process mutational run: no coverage feedback, but cheap, deterministic and toolchain-free.

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn dictionary(target: &str) -> &'static [&'static str] {
    match target {
        "session_cookie" => &[
            ".",
            "..",
            "=",
            ";",
            "; ",
            " ",
            "\"",
            "\n",
            "_gatehouse",
            "_gatehouse_0=",
            "_gatehouse_1=",
            "_gatehouse_7=",
            "_gatehouse_login=",
            "eyJ",
            "A",
            "-",
            "_",
            "==",
        ],
        "bearer_token" => &[
            ".",
            "=",
            "eyJ",
            "eyJhbGciOiJIUzI1NiJ9",
            "eyJhbGciOiJFUzI1NiJ9",
            "eyJhbGciOiJub25lIn0",
            "eyJpc3MiOiJodHRwczovL2dhdGUuZnV6ei50ZXN0In0",
            "-",
            "_",
            "A",
        ],
        "config_load" => &[
            "[",
            "]",
            "[[",
            "]]",
            "=",
            "\"",
            "'",
            "\n",
            "${",
            "}",
            ":-",
            "$$",
            "[server]\n",
            "[session]\n",
            "[github]\n",
            "[access]\n",
            "[[rules]]\n",
            "[roles.x]\n",
            "[[routes]]\n",
            "[tokens]\n",
            "[upstream]\n",
            "listen = ",
            "public_url = ",
            "proxy_prefix = ",
            "path = ",
            "allow = ",
            "true",
            "\"1h\"",
            "0",
            "-1",
            "99999999999999999999",
            "1e400",
            "\"http://127.0.0.1:1\"",
            "\"/**\"",
            "\"{owner}\"",
            "\"role:admin\"",
            "\"team:a/b\"",
            "secrets = ",
            "ttl = ",
            "\"0s\"",
        ],
        "path_normalize" => &[
            "/", ".", "..", "/..", "/.", "%", "%2e", "%2E", "%2f", "%2F", "%5c", "%00", "%25", ";",
            "\\", "%41", "%7e", "\u{e9}", "//",
        ],
        "safe_redirect" => &[
            "/",
            "//",
            "\\",
            "%2F",
            "%2f",
            "%5C",
            "%25",
            "%09",
            "%0a",
            "\t",
            "http:",
            "https:",
            "https://app.example.com",
            "http://127.0.0.1:4180",
            "@",
            "#",
            "?",
            "/oauth2",
            "/_auth",
            "/me",
            "javascript:",
            ":",
            "..",
            "%2e",
            "\u{3000}",
            "\u{a0}",
            "%E3%80%80",
        ],
        _ => &[],
    }
}

fn mutate(rng: &mut Rng, data: &mut Vec<u8>, pool: &[Vec<u8>], dict: &[&str]) {
    const CHARS: &[u8] = b"/.%;\\=\"[]{}$:-_~#?@\t\n 0aAfF";
    for _ in 0..1 + rng.below(4) {
        let len = data.len();
        let at = rng.below(len + 1);
        match rng.below(10) {
            0 if len > 0 => {
                let i = rng.below(len);
                data[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                data[i] = rng.next() as u8;
            }
            2 => data.insert(at, rng.next() as u8),
            3 if len > 0 => {
                let end = (at + 1 + rng.below(8)).min(len);
                data.drain(at.min(len - 1)..end);
            }
            4 | 5 if !dict.is_empty() => {
                let word = dict[rng.below(dict.len())].as_bytes();
                if rng.below(2) == 0 || at == len {
                    data.splice(at..at, word.iter().copied());
                } else {
                    let end = (at + word.len()).min(len);
                    data.splice(at..end, word.iter().copied());
                }
            }
            6 if !pool.is_empty() => {
                let other = &pool[rng.below(pool.len())];
                let from = rng.below(other.len() + 1);
                let to = (from + rng.below(64)).min(other.len());
                data.splice(at..at, other[from..to].iter().copied());
            }
            7 if len > 0 => {
                let from = rng.below(len);
                let to = (from + 1 + rng.below(16)).min(len);
                let copy = data[from..to].to_vec();
                data.splice(at..at, copy);
            }
            8 => data.insert(at, CHARS[rng.below(CHARS.len())]),
            9 if len > 0 => data.truncate(rng.below(len)),
            _ => data.push(CHARS[rng.below(CHARS.len())]),
        }
    }
    data.truncate(8192);
}

#[test]
fn in_process_mutation_run() {
    let iters: usize = std::env::var("GATEHOUSE_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let seed: u64 = std::env::var("GATEHOUSE_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x9E37_79B9_7F4A_7C15);
    let out_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz-smoke");
    let mut failures = Vec::new();
    let mut total = 0;
    for (name, target) in targets::TARGETS {
        let started = Instant::now();
        let mut rng = Rng((seed ^ ((name.len() as u64) << 32)) | 1);
        let mut pool: Vec<Vec<u8>> = files_in(&fuzz_dir().join("corpus").join(name))
            .iter()
            .chain(&files_in(&fuzz_dir().join("regressions").join(name)))
            .map(|f| std::fs::read(f).unwrap())
            .collect();
        pool.push(Vec::new());
        let seeds = pool.len();
        let dict = dictionary(name);
        for _ in 0..iters {
            let mut input = pool[rng.below(pool.len())].clone();
            mutate(&mut rng, &mut input, &pool, dict);
            if let Err(e) = run_one(*target, &input) {
                std::fs::create_dir_all(out_dir.join(name)).unwrap();
                let file = out_dir.join(name).join(format!("crash-{}", failures.len()));
                std::fs::write(&file, &input).unwrap();
                failures.push(format!("{name}: {e}\n  input saved as {}", file.display()));
                break;
            }
            // Keep some mutants around so mutations compound (a crude stand-in for coverage).
            if rng.below(8) == 0 {
                if pool.len() < 512 {
                    pool.push(input);
                } else {
                    let i = seeds + rng.below(pool.len() - seeds);
                    pool[i] = input;
                }
            }
            total += 1;
        }
        eprintln!("{name}: {iters} inputs in {:.1?}", started.elapsed());
    }
    eprintln!("in-process fuzz: {total} inputs (seed {seed})");
    assert!(
        failures.is_empty(),
        "invariants broken (add the input to fuzz/regressions/<target>/ once fixed):\n{}",
        failures.join("\n")
    );
}

/// Real libFuzzer runs, opt-in:
/// `GATEHOUSE_FUZZ_SECONDS=15 cargo test --test integration fuzz_smoke::`.
/// Needs `cargo fuzz`; the first build of the fuzz crate takes minutes.
#[test]
fn libfuzzer_runs_when_asked() {
    let Some(seconds) = std::env::var("GATEHOUSE_FUZZ_SECONDS")
        .ok()
        .filter(|v| !v.is_empty() && v != "0")
    else {
        eprintln!("GATEHOUSE_FUZZ_SECONDS is not set: no libFuzzer run (fuzz/run.sh does them)");
        return;
    };
    let status = std::process::Command::new("bash")
        .arg(fuzz_dir().join("run.sh"))
        .arg(&seconds)
        .env_remove("CARGO_TARGET_DIR")
        .status()
        .expect("run fuzz/run.sh");
    assert!(status.success(), "fuzz/run.sh {seconds} failed: {status}");
}

/// Writes the seed corpus from `targets::seed_corpus` (valid cookies and bearers are made with
/// the fixtures, so they must be regenerated when the formats change).
#[test]
#[ignore = "writes fuzz/corpus; run by hand"]
fn write_seed_corpus() {
    for (target, name, bytes) in targets::seed_corpus() {
        let dir = fuzz_dir().join("corpus").join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}
