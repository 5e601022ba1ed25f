//! The shipped deployment files are tested, not just written.
//!
//! - `config.example.toml` and every Gatehouse config under `deploy/` (including the TOML inside
//!   the Kubernetes ConfigMaps) pass `gatehouse check-config` with only the documented
//!   environment set, and fail with the right keys named without it.
//! - The Dockerfile: stages, non-root user, a `HEALTHCHECK` that runs a subcommand the binary
//!   really has, config path and port consistent with the config it copies; and
//!   `gatehouse healthcheck` itself against a running gate (0 when up, 1 when not).
//! - Kubernetes (`sidecar.yaml`, `gateway.yaml`): every resource against the Kubernetes
//!   schemas with `kubernetes-validate --strict`, and every workload hardened, probed, sized and
//!   wired to its ConfigMap, Secret and Services.
//! - Compose: `docker-compose config`, and the services wired to each other and to the config.
//! - systemd: `systemd-analyze verify` and `security --offline`, and the hardening directives.
//! - nginx: `auth_request.conf` passes `nginx -t`, and a real nginx running it in front of the
//!   real binary, the mock GitHub and the demo app signs people in, passes their identity to
//!   the app and refuses those not admitted, and websockets open through it.
//! - Prometheus: `deploy/prometheus/alerts.yml` passes `promtool check rules`, its unit tests
//!   (`alerts_test.yml`) pass `promtool test rules`, and every metric it names is one a running
//!   gate exposes.
//!
//! The tools (nginx, kubernetes-validate, docker-compose, systemd-analyze, promtool) are installed by
//! `.ci/run`; a check whose tool is missing is skipped with a note, except under `CI=true`,
//! where it fails.

use crate::common;
use crate::common::{browser, free_port, location};

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A valid session secret: base64 of 32 bytes.
const SESSION_SECRET: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
/// A valid store secret (encrypts GitHub tokens in Redis): base64 of 32 other bytes.
const STORE_SECRET: &str = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";
const WEBHOOK_SECRET: &str = "deploy-test-webhook-secret";
const CLIENT_ID: &str = "deploy-test-client-id";
const CLIENT_SECRET: &str = "deploy-test-client-secret-value";
const NGINX: &str = "/usr/sbin/nginx";

/// Secrets only some configs use: set for a config that mentions `${NAME}`.
const OPTIONAL_SECRETS: &[(&str, &str)] = &[
    ("GATEHOUSE_STORE_SECRET", STORE_SECRET),
    ("GH_WEBHOOK_SECRET", WEBHOOK_SECRET),
];
/// Configs that deliberately admit nobody until `GITHUB_USERS` says who.
const NEEDS_GITHUB_USERS: &[&str] = &["deploy/docker/gatehouse.toml"];
/// Configs run inside a container: they must listen on all interfaces.
const CONTAINER_CONFIGS: &[&str] = &[
    "deploy/docker/gatehouse.toml",
    "deploy/compose/gatehouse.toml",
    "deploy/kubernetes/sidecar.yaml",
    "deploy/kubernetes/gateway.yaml",
];
/// Configs that keep sessions in Redis.
const REDIS_CONFIGS: &[&str] = &[
    "deploy/compose/gatehouse.toml",
    "deploy/kubernetes/gateway.yaml",
];
/// Upstream host names that resolve only inside a cluster (`check-config` resolves upstream
/// hosts), and the loopback stand-in used for them here: (file, in the file, stand-in).
const HOST_STAND_INS: &[(&str, &str, &str)] = &[
    (
        "deploy/kubernetes/gateway.yaml",
        "url = \"http://myapp:8080\"",
        "url = \"http://127.0.0.1:8080\"",
    ),
    (
        "deploy/kubernetes/gateway.yaml",
        "upstream = \"http://grafana.monitoring:3000\"",
        "upstream = \"http://127.0.0.1:3000\"",
    ),
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("cannot read {rel}: {e}"))
}

fn binary() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gatehouse"));
    // Hermetic: nothing from the developer's shell leaks into the configs under test.
    for (name, _) in std::env::vars() {
        if name.starts_with("GATEHOUSE_")
            || name.starts_with("GH_")
            || name.starts_with("GITHUB_")
            || name == "RUST_LOG"
        {
            cmd.env_remove(name);
        }
    }
    cmd
}

fn check_config(path: &Path, env: &[(&str, &str)]) -> Output {
    let mut cmd = binary();
    cmd.arg("check-config").arg("--config").arg(path);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run gatehouse check-config")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Whether a tool a check needs is here. Missing: under CI the test fails (`.ci/run` should
/// have installed it); elsewhere the check is skipped with a note.
fn tool_available(tool: &str, found: bool) -> bool {
    if !found {
        assert!(
            !in_ci(),
            "{tool} is missing: .ci/run installs it, and CI must not skip this check"
        );
        println!("note: {tool} not found; skipping this check (.ci/run installs it)");
    }
    found
}

fn on_path(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// The venv `.ci/run` installs kubernetes-validate into (PyYAML comes with it):
/// `$GATEHOUSE_CI_VENV`, else `~/.cache/gatehouse-ci-venv`.
fn ci_venv() -> Option<PathBuf> {
    let dir = match std::env::var_os("GATEHOUSE_CI_VENV") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME")?).join(".cache/gatehouse-ci-venv"),
    };
    dir.join("bin/kubernetes-validate").is_file().then_some(dir)
}

/// Every document of a YAML file as JSON, parsed by PyYAML (a real YAML parser).
fn yaml_documents(venv: &Path, path: &Path) -> Vec<Value> {
    let out = Command::new(venv.join("bin/python"))
        .args([
            "-c",
            "import json, sys, yaml\n\
             docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d is not None]\n\
             json.dump(docs, sys.stdout)",
        ])
        .arg(path)
        .output()
        .expect("run the venv's python");
    assert!(
        out.status.success(),
        "{} is not valid YAML:\n{}",
        path.display(),
        text(&out.stderr)
    );
    match serde_json::from_slice(&out.stdout).unwrap() {
        Value::Array(docs) => docs,
        other => panic!("expected a list of documents, got {other}"),
    }
}

/// Replace `from` with `to`, insisting `from` occurs exactly once, so a changed file breaks
/// the test loudly instead of silently testing something else.
fn replace_once(text: &str, from: &str, to: &str, what: &str) -> String {
    assert_eq!(
        text.matches(from).count(),
        1,
        "{what}: expected exactly one `{from}`"
    );
    text.replacen(from, to, 1)
}

/// The `${NAME}` references of a text that have no `:-default`.
fn required_variables(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let unescaped = text.replace("$$", "");
    let mut rest = unescaped.as_str();
    while let Some(start) = rest.find("${") {
        rest = &rest[start + 2..];
        let Some(end) = rest.find('}') else { break };
        let inner = &rest[..end];
        if !inner.contains(":-") {
            found.insert(inner.to_string());
        }
        rest = &rest[end..];
    }
    found
}

/// A `gatehouse check-config` run with the secrets a config needs.
fn check_config_with_secrets(name: &str, path: &Path) -> Output {
    let mut env = vec![
        ("GH_CLIENT_ID", CLIENT_ID),
        ("GH_CLIENT_SECRET", CLIENT_SECRET),
        ("GATEHOUSE_SESSION_SECRET", SESSION_SECRET),
    ];
    let config = std::fs::read_to_string(path).unwrap();
    for (var, value) in OPTIONAL_SECRETS {
        if config.contains(&format!("${{{var}}}")) {
            env.push((var, value));
        }
    }
    if NEEDS_GITHUB_USERS.contains(&name) {
        env.push(("GITHUB_USERS", "octocat, monalisa"));
    }
    check_config(path, &env)
}

/// The effective config `check-config` prints, as TOML.
fn effective_config(name: &str, path: &Path) -> toml::Table {
    let out = check_config_with_secrets(name, path);
    assert!(
        out.status.success(),
        "{name} should pass check-config:\n{}",
        text(&out.stderr)
    );
    let body: String = text(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    toml::from_str(&body).expect("check-config prints TOML")
}

fn toml_str<'a>(table: &'a toml::Table, section: &str, key: &str) -> &'a str {
    table
        .get(section)
        .and_then(|s| s.get(key))
        .and_then(|v| v.as_str())
        .unwrap_or_else(|| panic!("[{section}] {key} is not a string in {table:#?}"))
}

/// The port of an `IP:PORT` or a URL.
fn port_of(addr: &str) -> u16 {
    if addr.contains("://") {
        let url = url::Url::parse(addr).unwrap();
        return url.port_or_known_default().unwrap();
    }
    addr.rsplit(':').next().unwrap().parse().unwrap()
}

/// The block scalar under `key: |` in a YAML file, de-indented (enough YAML for a ConfigMap).
fn yaml_block_scalar(yaml: &str, key: &str) -> Option<String> {
    let mut lines = yaml.lines();
    let key_indent = loop {
        let line = lines.next()?;
        let trimmed = line.trim_start();
        if let Some(rest) = trimmed.strip_prefix(key) {
            let rest = rest.trim();
            if rest == ": |" || rest == ": |-" || rest == ": |+" {
                break line.len() - trimmed.len();
            }
        }
    };
    let mut body: Vec<&str> = Vec::new();
    for line in lines {
        let indent = line.len() - line.trim_start().len();
        if !line.trim().is_empty() && indent <= key_indent {
            break;
        }
        body.push(line);
    }
    let block_indent = body
        .iter()
        .find(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())?;
    let mut out = String::new();
    for line in body {
        out.push_str(line.get(block_indent..).unwrap_or(""));
        out.push('\n');
    }
    Some(out)
}

/// Every Gatehouse config shipped: (name relative to the repo, path of a TOML file to check).
/// YAML files holding a `gatehouse.toml: |` block are extracted into `scratch`; cluster-only
/// host names get their loopback stand-ins (`HOST_STAND_INS`).
fn shipped_configs(scratch: &Path) -> Vec<(String, PathBuf)> {
    let mut found = vec![(
        "config.example.toml".to_string(),
        root().join("config.example.toml"),
    )];
    let mut stack = vec![root().join("deploy")];
    let mut files = Vec::new();
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    for path in files {
        let rel = path
            .strip_prefix(root())
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let mut toml = match path.extension().and_then(|e| e.to_str()) {
            Some("toml") => std::fs::read_to_string(&path).unwrap(),
            Some("yaml" | "yml") => {
                match yaml_block_scalar(&std::fs::read_to_string(&path).unwrap(), "gatehouse.toml")
                {
                    Some(toml) => toml,
                    None => continue,
                }
            }
            _ => continue,
        };
        let stand_ins: Vec<_> = HOST_STAND_INS.iter().filter(|s| s.0 == rel).collect();
        if stand_ins.is_empty() && path.extension().is_some_and(|e| e == "toml") {
            found.push((rel, path));
            continue;
        }
        for (_, from, to) in stand_ins {
            toml = replace_once(&toml, from, to, &rel);
        }
        let out = scratch.join(rel.replace('/', "__") + ".toml");
        std::fs::write(&out, toml).unwrap();
        found.push((rel, out));
    }
    found
}

#[test]
fn yaml_block_scalar_extraction() {
    let yaml = "data:\n  gatehouse.toml: |\n    [a]\n    b = 1\n\n      c = 2\n  other: x\n";
    assert_eq!(
        yaml_block_scalar(yaml, "gatehouse.toml").unwrap(),
        "[a]\nb = 1\n\n  c = 2\n"
    );
    assert!(yaml_block_scalar("a: b\n", "gatehouse.toml").is_none());
    assert_eq!(
        required_variables("a = \"${A}\" b = \"${B:-x}\" c = [\"${C}\", \"$${D}\"]"),
        ["A", "C"].map(String::from).into()
    );
}

/// Needs the lead's Redis store keys (`[session] store = "redis"`, `redis_url`,
/// `store_secrets`, `[github] webhook_secret`) for compose/gatehouse.toml and gateway.yaml.
#[test]
fn every_shipped_config_passes_check_config_with_the_documented_environment() {
    let scratch = tempfile::tempdir().unwrap();
    let configs = shipped_configs(scratch.path());
    let names: BTreeSet<&str> = configs.iter().map(|(n, _)| n.as_str()).collect();
    for expected in [
        "config.example.toml",
        "deploy/docker/gatehouse.toml",
        "deploy/kubernetes/sidecar.yaml",
        "deploy/kubernetes/gateway.yaml",
        "deploy/compose/gatehouse.toml",
        "deploy/nginx/gatehouse.toml",
        "deploy/systemd/gatehouse.toml",
    ] {
        assert!(
            names.contains(expected),
            "{expected} is missing; found {names:?}"
        );
    }
    for (name, path) in &configs {
        if NEEDS_GITHUB_USERS.contains(&name.as_str()) {
            // Fail closed: without GITHUB_USERS nobody is admitted, and check-config says so.
            let out = check_config(
                path,
                &[
                    ("GH_CLIENT_ID", CLIENT_ID),
                    ("GH_CLIENT_SECRET", CLIENT_SECRET),
                    ("GATEHOUSE_SESSION_SECRET", SESSION_SECRET),
                ],
            );
            let stderr = text(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{name} without GITHUB_USERS");
            assert!(stderr.contains("access.allowed_users"), "{name}: {stderr}");
        }
        let out = check_config_with_secrets(name, path);
        let stdout = text(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{name} should pass check-config\nstdout:\n{stdout}\nstderr:\n{}",
            text(&out.stderr)
        );
        assert!(stdout.contains("is valid"), "{name}: {stdout}");
        // The effective config is printed with secrets masked.
        for secret in [CLIENT_SECRET, SESSION_SECRET, STORE_SECRET, WEBHOOK_SECRET] {
            assert!(
                !stdout.contains(secret),
                "{name} printed a secret:\n{stdout}"
            );
        }
        assert!(stdout.contains("(set, hidden)"), "{name}: {stdout}");
        if CONTAINER_CONFIGS.contains(&name.as_str()) {
            assert!(
                stdout.contains("listen = \"0.0.0.0:4180\""),
                "{name} runs in a container and must listen on 0.0.0.0:4180:\n{stdout}"
            );
        }
        let redis = stdout.contains("store = \"redis\"");
        assert_eq!(
            redis,
            REDIS_CONFIGS.contains(&name.as_str()),
            "{name}: store = \"redis\" expected exactly in {REDIS_CONFIGS:?}:\n{stdout}"
        );
    }
}

#[test]
fn every_shipped_config_fails_clearly_without_the_environment() {
    let scratch = tempfile::tempdir().unwrap();
    for (name, path) in shipped_configs(scratch.path()) {
        let out = check_config(&path, &[]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {stderr}");
        for key in [
            "github.client_id",
            "github.client_secret",
            "session.secrets",
        ] {
            assert!(stderr.contains(key), "{name} should name {key}:\n{stderr}");
        }
        assert!(stderr.contains("gatehouse gen-secret"), "{name}: {stderr}");
    }
}

/// `section.key` for every key `check-config` prints for the example config, i.e. every key
/// of the schema that has a value.
fn effective_keys() -> Vec<(String, String)> {
    let out = check_config(
        &root().join("config.example.toml"),
        &[
            ("GH_CLIENT_ID", CLIENT_ID),
            ("GH_CLIENT_SECRET", CLIENT_SECRET),
            ("GATEHOUSE_SESSION_SECRET", SESSION_SECRET),
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let body: String = stdout
        .lines()
        .filter(|l| !l.starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    let value: toml::Table = toml::from_str(&body).expect("check-config prints TOML");
    let mut keys = Vec::new();
    for (section, table) in value {
        // `[roles.NAME]` and `[[rules]]` are the user's own; the example shows them commented.
        let Some(table) = table.as_table().filter(|_| section != "roles") else {
            continue;
        };
        for key in table.keys() {
            keys.push((section.clone(), key.clone()));
        }
    }
    keys
}

/// The manual's configuration reference (generated from `src/config/reference.rs`, whose unit
/// tests hold it to the parser).
const CONFIG_REFERENCE: &str = "docs/src/reference/config.md";

#[test]
fn config_example_sets_every_key_and_the_config_reference_documents_it() {
    let example: toml::Table = toml::from_str(&read("config.example.toml")).unwrap();
    let reference = read(CONFIG_REFERENCE);
    let keys = effective_keys();
    assert!(
        keys.len() >= 20,
        "check-config printed too few keys: {keys:?}"
    );
    for (section, key) in keys {
        assert!(
            example
                .get(&section)
                .and_then(|s| s.as_table())
                .is_some_and(|s| s.contains_key(&key)),
            "config.example.toml lacks [{section}] {key}: add it with its default and a comment"
        );
        assert!(
            reference.contains(&format!("[{section}]")) && reference.contains(&format!("`{key}`")),
            "{CONFIG_REFERENCE} lacks [{section}] `{key}`"
        );
    }
    // Optional keys are shown commented out in the example and documented in the reference.
    let example_text = read("config.example.toml");
    for marker in [
        "# [roles.",
        "# [[rules]]",
        "owner_methods",
        "path_regex",
        "allow_encoded_path",
        "hide",
    ] {
        assert!(
            example_text.contains(marker),
            "config.example.toml lacks {marker}"
        );
        let word = marker.trim_start_matches("# ");
        assert!(reference.contains(word), "{CONFIG_REFERENCE} lacks {word}");
    }
    for key in ["cookie_secure", "cookie_domain"] {
        assert!(example_text.contains(&format!("# {key} = ")), "{key}");
        assert!(reference.contains(&format!("`{key}`")), "{key}");
    }
}

#[test]
fn readme_has_the_two_commands_and_prerequisites() {
    let readme = read("README.md");
    for needle in [
        "cargo run --release -- demo",
        "cargo test --all-targets",
        "cmake",
        "http://127.0.0.1:4180",
        "gatehouse check-config",
        "gatehouse gen-secret",
        "GH_CLIENT_ID",
        "GH_CLIENT_SECRET",
        "GATEHOUSE_SESSION_SECRET",
        "deploy/nginx/",
    ] {
        assert!(readme.contains(needle), "README.md should mention {needle}");
    }
    // The environment variables are in the manual's reference pages.
    let environment = read("docs/src/reference/environment.md") + &read(CONFIG_REFERENCE);
    for needle in [
        "GH_CLIENT_ID",
        "GH_CLIENT_SECRET",
        "GATEHOUSE_SESSION_SECRET",
        "GITHUB_USERS",
        "GATEHOUSE_CONFIG",
        "RUST_LOG",
    ] {
        assert!(
            environment.contains(needle),
            "docs/src/reference/environment.md or {CONFIG_REFERENCE} should mention {needle}"
        );
    }
    for dir in [
        "kubernetes",
        "compose",
        "nginx",
        "caddy",
        "traefik",
        "systemd",
        "docker",
    ] {
        assert!(
            root().join("deploy").join(dir).join("README.md").is_file(),
            "deploy/{dir}/README.md"
        );
        assert!(
            read("docs/src/guides/single-host.md").contains(&format!("deploy/{dir}/"))
                || read("docs/src/guides/kubernetes-sidecar.md")
                    .contains(&format!("deploy/{dir}/"))
                || read("docs/src/guides/forward-auth.md").contains(&format!("deploy/{dir}/")),
            "a deployment guide in docs/src/guides should point at deploy/{dir}/"
        );
    }
}

// ---- Dockerfile and `gatehouse healthcheck` ----------------------------------------------

/// One build stage: its `FROM` line and the instructions after it.
struct Stage {
    from: String,
    lines: Vec<String>,
}

/// The Dockerfile's stages, with `\`-continued lines joined and comments dropped.
fn dockerfile_stages() -> Vec<Stage> {
    let mut joined = Vec::new();
    let mut current = String::new();
    for line in read("Dockerfile").lines() {
        let trimmed = line.trim();
        if current.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part.trim_end());
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                joined.push(std::mem::take(&mut current));
            }
        }
    }
    let mut stages: Vec<Stage> = Vec::new();
    for line in joined {
        if let Some(from) = line.strip_prefix("FROM ") {
            stages.push(Stage {
                from: from.trim().to_string(),
                lines: Vec::new(),
            });
        } else {
            stages
                .last_mut()
                .expect("an instruction before the first FROM")
                .lines
                .push(line);
        }
    }
    stages
}

impl Stage {
    /// The arguments of every `INSTRUCTION ...` line of this stage.
    fn all(&self, instruction: &str) -> Vec<&str> {
        let prefix = format!("{instruction} ");
        self.lines
            .iter()
            .filter_map(|l| l.strip_prefix(&prefix))
            .map(str::trim)
            .collect()
    }

    fn one(&self, instruction: &str) -> &str {
        let all = self.all(instruction);
        assert_eq!(
            all.len(),
            1,
            "the final stage should have one {instruction}"
        );
        all[0]
    }
}

#[test]
fn dockerfile_builds_with_cmake_and_copies_files_that_exist() {
    let dockerfile = read("Dockerfile");
    let install = dockerfile
        .lines()
        .find(|l| l.contains("apt-get install"))
        .expect("the builder installs packages");
    assert!(install.contains("cmake"), "{install}");
    for needle in [
        "FROM rust:1-bookworm AS builder",
        // The shipped build: fat LTO (Cargo.toml's production profile).
        "cargo build --profile production --locked",
        "ENV GATEHOUSE_CONFIG=/etc/gatehouse/gatehouse.toml",
        "COPY deploy/docker/gatehouse.toml /etc/gatehouse/gatehouse.toml",
        "EXPOSE 4180",
        r#"ENTRYPOINT ["/usr/local/bin/gatehouse"]"#,
        r#"CMD ["run"]"#,
    ] {
        assert!(dockerfile.contains(needle), "Dockerfile lacks {needle}");
    }
    // Every file copied from the build context exists.
    for line in dockerfile.lines().map(str::trim) {
        let Some(args) = line.strip_prefix("COPY ") else {
            continue;
        };
        if args.contains("--from=") {
            continue;
        }
        let parts: Vec<&str> = args.split_whitespace().collect();
        for source in &parts[..parts.len() - 1] {
            assert!(
                root().join(source).exists(),
                "Dockerfile copies {source}, which does not exist"
            );
        }
    }
    let ignore = read(".dockerignore");
    assert!(
        ignore
            .lines()
            .any(|l| l.trim() == "target/" || l.trim() == "target"),
        ".dockerignore must exclude target/"
    );
}

/// Multi-stage, a small shell-less final image, non-root, and a final stage whose config path,
/// port and HEALTHCHECK agree with the config it copies and the binary it runs.
#[test]
fn dockerfile_final_stage_is_small_non_root_and_checks_itself() {
    let stages = dockerfile_stages();
    assert!(stages.len() >= 2, "the Dockerfile should be multi-stage");
    assert!(
        stages[0].from.ends_with(" AS builder"),
        "first stage: {}",
        stages[0].from
    );
    let last = stages.last().unwrap();
    assert!(
        last.from.starts_with("gcr.io/distroless/"),
        "the final image should be distroless (no shell, no package manager): {}",
        last.from
    );
    assert!(
        last.all("RUN").is_empty(),
        "the final stage cannot RUN anything: it has no shell"
    );
    // The binary comes from the builder; nothing else of the toolchain does.
    let from_builder: Vec<&str> = last
        .all("COPY")
        .into_iter()
        .filter(|c| c.starts_with("--from="))
        .collect();
    assert_eq!(
        from_builder,
        ["--from=builder /usr/local/bin/gatehouse /usr/local/bin/gatehouse"]
    );

    // Non-root: the distroless `nonroot` user (uid 65532), by name or number.
    let user = last.one("USER");
    let name = user.split(':').next().unwrap();
    assert!(
        name == "nonroot" || name.parse::<u32>().is_ok_and(|uid| uid != 0),
        "USER {user} is root"
    );
    assert!(last.from.ends_with(":nonroot"), "{}", last.from);

    // The config: GATEHOUSE_CONFIG names a file the final stage copies from the repository.
    let config_path = last
        .one("ENV")
        .strip_prefix("GATEHOUSE_CONFIG=")
        .expect("ENV GATEHOUSE_CONFIG=...");
    assert_eq!(config_path, "/etc/gatehouse/gatehouse.toml");
    let source = last
        .all("COPY")
        .into_iter()
        .filter_map(|c| c.strip_suffix(&format!(" {config_path}")))
        .next()
        .unwrap_or_else(|| panic!("nothing is copied to {config_path}"));
    assert!(root().join(source).is_file(), "{source}");

    // EXPOSE is the port the copied config listens on.
    let config = effective_config(source, &root().join(source));
    let listen = toml_str(&config, "server", "listen");
    let exposed: u16 = last.one("EXPOSE").parse().unwrap();
    assert_eq!(port_of(listen), exposed, "EXPOSE vs {source}'s listen");

    // ENTRYPOINT is the binary the builder stage copied.
    let entrypoint: Vec<String> = serde_json::from_str(last.one("ENTRYPOINT")).unwrap();
    assert_eq!(entrypoint, ["/usr/local/bin/gatehouse"]);

    // HEALTHCHECK, exec form (there is no shell): the same binary, a subcommand it has, whose
    // default URL is /ping on the exposed port, and a timeout longer than the check's own.
    let healthcheck = last.one("HEALTHCHECK");
    let (options, command) = healthcheck
        .split_once("CMD ")
        .expect("HEALTHCHECK [OPTIONS] CMD [...]");
    let command: Vec<String> = serde_json::from_str(command.trim())
        .unwrap_or_else(|e| panic!("HEALTHCHECK must use the exec form (no shell): {e}"));
    assert_eq!(command[0], entrypoint[0]);
    assert_eq!(command[1..], ["healthcheck"]);
    let help = binary().args(&command[1..]).arg("--help").output().unwrap();
    assert!(
        help.status.success(),
        "the binary has no `{}` subcommand: {}",
        command[1..].join(" "),
        text(&help.stderr)
    );
    let help = text(&help.stdout);
    assert!(
        help.contains(&format!("[default: http://127.0.0.1:{exposed}/ping]")),
        "{help}"
    );
    assert!(help.contains("[default: 2s]"), "{help}");
    let timeout = options
        .split_whitespace()
        .find_map(|o| o.strip_prefix("--timeout="))
        .expect("HEALTHCHECK --timeout=...");
    assert!(
        humantime::parse_duration(timeout).unwrap() > Duration::from_secs(2),
        "HEALTHCHECK --timeout={timeout} should outlast the check's own 2s"
    );
}

fn healthcheck(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut cmd = binary();
    cmd.arg("healthcheck").args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run gatehouse healthcheck");
    assert!(
        out.stdout.is_empty(),
        "healthcheck prints nothing on stdout"
    );
    (out.status.code(), text(&out.stderr))
}

/// `gatehouse healthcheck` against the real binary: 0 when it serves `/ping`, 1 with a
/// one-line reason when it does not (wrong path, nothing listening, no answer in time).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthcheck_exits_0_when_the_gate_is_up_and_1_when_not() {
    let gate = common::Harness::start(common::GateOptions::default()).await;
    let ping = gate.url("/ping");

    assert_eq!(
        healthcheck(&["--url", &ping], &[]),
        (Some(0), String::new())
    );
    // The URL from the environment (what the image's HEALTHCHECK uses when the port changes).
    assert_eq!(
        healthcheck(&[], &[("GATEHOUSE_HEALTHCHECK_URL", &ping)]),
        (Some(0), String::new())
    );
    // A path that is not 200 (the gate wants a sign-in there) is unhealthy.
    let (code, stderr) = healthcheck(&["--url", &gate.url("/oauth2/userinfo")], &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("answered 401"), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");

    // The gate stopped: nothing listens there any more.
    drop(gate);
    let (code, stderr) = healthcheck(&["--url", &ping], &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.starts_with("gatehouse healthcheck: "), "{stderr}");
    assert!(stderr.contains("cannot connect"), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");

    // A process that accepts connections but never answers is unhealthy after the timeout.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/ping", silent.local_addr().unwrap());
    let started = Instant::now();
    let (code, stderr) = healthcheck(&["--url", &url, "--timeout", "1s"], &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("no answer within 1s"), "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the timeout held"
    );

    // Nonsense is refused before any request.
    let (code, stderr) = healthcheck(&["--url", "localhost:4180/ping"], &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("http://"), "{stderr}");
}

/// A gate serving HTTPS with a self-signed certificate is checked too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthcheck_checks_a_gate_serving_https() {
    let gate = common::Harness::start_tls(common::GateOptions::default(), "").await;
    assert!(gate.url("/ping").starts_with("https://"));
    assert_eq!(
        healthcheck(&["--url", &gate.url("/ping")], &[]),
        (Some(0), String::new())
    );
}

// ---- Kubernetes ----------------------------------------------------------------------------

const KUBERNETES_FILES: &[&str] = &["sidecar.yaml", "gateway.yaml"];

fn kubernetes_dir() -> PathBuf {
    root().join("deploy/kubernetes")
}

/// kubernetes-validate (schemas bundled, so offline) with `--strict`: unknown fields are
/// errors, not ignored.
fn kubernetes_validate(venv: &Path, files: &[PathBuf]) -> Output {
    Command::new(venv.join("bin/kubernetes-validate"))
        .arg("--strict")
        .args(files)
        .output()
        .expect("run kubernetes-validate")
}

#[test]
fn kubernetes_manifests_pass_strict_schema_validation() {
    let venv = ci_venv();
    if !tool_available("kubernetes-validate", venv.is_some()) {
        return;
    }
    let venv = venv.unwrap();
    let mut files: Vec<String> = std::fs::read_dir(kubernetes_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml") || n.ends_with(".yml"))
        .collect();
    files.sort();
    let mut expected: Vec<String> = KUBERNETES_FILES.iter().map(|s| s.to_string()).collect();
    expected.sort();
    assert_eq!(files, expected, "every manifest here is validated below");

    let paths: Vec<PathBuf> = files.iter().map(|f| kubernetes_dir().join(f)).collect();
    let out = kubernetes_validate(&venv, &paths);
    let report = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(
        out.status.success(),
        "kubernetes-validate failed:\n{report}"
    );
    assert!(
        !report.contains("WARN") && !report.contains("ERROR"),
        "every resource must have a schema and pass it:\n{report}"
    );
    // Each resource of each file was checked (not skipped).
    for path in &paths {
        for doc in yaml_documents(&venv, path) {
            let kind = doc["kind"].as_str().unwrap().to_lowercase();
            let name = doc["metadata"]["name"].as_str().unwrap();
            let line = format!("{} passed for resource {kind}/{name}", path.display());
            assert!(report.contains(&line), "missing `{line}` in:\n{report}");
        }
    }

    // The validator really is strict: a misspelled security field fails it.
    let scratch = tempfile::tempdir().unwrap();
    let broken = scratch.path().join("broken.yaml");
    let sidecar = read("deploy/kubernetes/sidecar.yaml");
    std::fs::write(
        &broken,
        sidecar.replace("readOnlyRootFilesystem:", "readOnlyRootFileSystem:"),
    )
    .unwrap();
    let out = kubernetes_validate(&venv, &[broken]);
    assert!(
        !out.status.success(),
        "a misspelled field must fail --strict"
    );
    assert!(
        text(&out.stdout).contains("readOnlyRootFileSystem"),
        "{}",
        text(&out.stdout)
    );
}

/// The resources of one manifest, by kind and name.
struct Manifest {
    file: &'static str,
    docs: Vec<Value>,
}

impl Manifest {
    fn load(venv: &Path, file: &'static str) -> Manifest {
        Manifest {
            file,
            docs: yaml_documents(venv, &kubernetes_dir().join(file)),
        }
    }

    fn of_kind(&self, kind: &str) -> Vec<&Value> {
        self.docs.iter().filter(|d| d["kind"] == kind).collect()
    }

    fn get(&self, kind: &str, name: &str) -> &Value {
        self.docs
            .iter()
            .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("{}: no {kind} {name}", self.file))
    }

    /// The gatehouse.toml of the ConfigMap, parsed.
    fn gatehouse_config(&self) -> (String, toml::Table) {
        let maps: Vec<&Value> = self
            .of_kind("ConfigMap")
            .into_iter()
            .filter(|m| m["data"].get("gatehouse.toml").is_some())
            .collect();
        assert_eq!(
            maps.len(),
            1,
            "{}: one ConfigMap with gatehouse.toml",
            self.file
        );
        let source = maps[0]["data"]["gatehouse.toml"].as_str().unwrap();
        // The line-based extraction check-config is run on sees the same text as YAML does.
        assert_eq!(
            yaml_block_scalar(
                &read(&format!("deploy/kubernetes/{}", self.file)),
                "gatehouse.toml"
            )
            .as_deref(),
            Some(source),
            "{}",
            self.file
        );
        (
            maps[0]["metadata"]["name"].as_str().unwrap().to_string(),
            toml::from_str(source).unwrap(),
        )
    }

    /// Services that select a workload's pods: (service, its port named `port_name`).
    fn services_for(&self, pod_labels: &Value) -> Vec<&Value> {
        self.of_kind("Service")
            .into_iter()
            .filter(|s| {
                let selector = s["spec"]["selector"].as_object().unwrap();
                !selector.is_empty() && selector.iter().all(|(k, v)| &pod_labels[k] == v)
            })
            .collect()
    }
}

/// A container's `env` entries: name → `value` or `secret:NAME/KEY`.
fn container_env(container: &Value) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    for e in container["env"].as_array().into_iter().flatten() {
        let name = e["name"].as_str().unwrap().to_string();
        let value = match (&e["value"], &e["valueFrom"]["secretKeyRef"]) {
            (Value::String(v), _) => v.clone(),
            (_, Value::Object(r)) => format!(
                "secret:{}/{}",
                r["name"].as_str().unwrap(),
                r["key"].as_str().unwrap()
            ),
            _ => panic!("env {name}: a value or a secretKeyRef"),
        };
        env.insert(name, value);
    }
    assert!(
        container.get("envFrom").is_none(),
        "{}: name each variable (env), so the container gets only what it uses",
        container["name"]
    );
    env
}

/// The shell command at the start of `text`: its first line and the lines `\` continues it on.
fn shell_command(text: &str) -> String {
    let mut command = String::new();
    for line in text.lines() {
        command.push_str(line);
        command.push('\n');
        if !line.trim_end().ends_with('\\') {
            break;
        }
    }
    command
}

fn duration_secs(text: &str) -> u64 {
    humantime::parse_duration(text).unwrap().as_secs()
}

/// Every workload: non-root, read-only root filesystem, no capabilities, no privilege
/// escalation, default seccomp, requests and limits. Every Gatehouse container: probes on
/// /ping and /ready, its config from the ConfigMap in the same file, every `${VAR}` the config
/// needs from the Secret (the one the file's `kubectl create secret` comment creates).
fn check_workloads(m: &Manifest, secret: &str) -> Vec<(Value, toml::Table)> {
    let (config_map, config) = m.gatehouse_config();
    let config_text = m.get("ConfigMap", &config_map)["data"]["gatehouse.toml"]
        .as_str()
        .unwrap()
        .to_string();
    let create_secret = read(&format!("deploy/kubernetes/{}", m.file));
    let create_secret = &create_secret[create_secret
        .find(&format!("kubectl create secret generic {secret} "))
        .unwrap_or_else(|| panic!("{}: no `kubectl create secret generic {secret}`", m.file))..];
    let readme = read("deploy/kubernetes/README.md");
    let readme_secret = &readme[readme
        .find(&format!("kubectl create secret generic {secret} "))
        .unwrap_or_else(|| panic!("README.md: no `kubectl create secret generic {secret}`"))..];
    let shutdown_grace = duration_secs(
        config
            .get("server")
            .and_then(|s| s.get("shutdown_grace"))
            .and_then(|v| v.as_str())
            .unwrap_or("10s"),
    );

    let mut gatehouses = Vec::new();
    let workloads: Vec<&Value> = m
        .of_kind("Deployment")
        .into_iter()
        .chain(m.of_kind("StatefulSet"))
        .collect();
    assert!(!workloads.is_empty(), "{}", m.file);
    for workload in workloads {
        let what = format!("{} {}", m.file, workload["metadata"]["name"]);
        let pod = &workload["spec"]["template"]["spec"];
        let pod_labels = &workload["spec"]["template"]["metadata"]["labels"];
        let selector = workload["spec"]["selector"]["matchLabels"]
            .as_object()
            .unwrap();
        assert!(
            selector.iter().all(|(k, v)| &pod_labels[k] == v),
            "{what}: the selector matches the pod's labels"
        );
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{what}");
        assert_eq!(
            pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault",
            "{what}"
        );
        assert_eq!(pod["automountServiceAccountToken"], false, "{what}");
        let grace = pod["terminationGracePeriodSeconds"].as_u64().unwrap_or(30);
        for container in pod["containers"].as_array().unwrap() {
            let what = format!("{what} container {}", container["name"]);
            let sc = &container["securityContext"];
            assert_eq!(sc["runAsNonRoot"], true, "{what}");
            assert_eq!(sc["allowPrivilegeEscalation"], false, "{what}");
            assert_eq!(sc["readOnlyRootFilesystem"], true, "{what}");
            assert_eq!(
                sc["capabilities"]["drop"],
                serde_json::json!(["ALL"]),
                "{what}"
            );
            assert!(sc.get("privileged").is_none_or(|p| p == false), "{what}");
            for (bound, resource) in [
                ("requests", "cpu"),
                ("requests", "memory"),
                ("limits", "cpu"),
                ("limits", "memory"),
            ] {
                assert!(
                    container["resources"][bound][resource].is_string(),
                    "{what}: resources.{bound}.{resource}"
                );
            }
            // Probes for every container but the sample app, which stands for the user's own.
            assert!(
                container["name"] == "app"
                    || (container["livenessProbe"].is_object()
                        && container["readinessProbe"].is_object()),
                "{what}: liveness and readiness probes"
            );
            if container["name"] != "gatehouse" {
                continue;
            }

            // Gatehouse: the image's binary with the ConfigMap's file.
            assert_eq!(
                container["args"],
                serde_json::json!(["run", "--config", "/etc/gatehouse/gatehouse.toml"]),
                "{what}"
            );
            let mount = container["volumeMounts"]
                .as_array()
                .unwrap()
                .iter()
                .find(|v| v["mountPath"] == "/etc/gatehouse")
                .unwrap_or_else(|| panic!("{what}: nothing mounted at /etc/gatehouse"));
            assert_eq!(mount["readOnly"], true, "{what}");
            let volume = pod["volumes"]
                .as_array()
                .unwrap()
                .iter()
                .find(|v| v["name"] == mount["name"])
                .unwrap();
            assert_eq!(volume["configMap"]["name"], config_map.as_str(), "{what}");

            // The port the config listens on, named `http`, probed on /ping and /ready.
            let port = port_of(toml_str(&config, "server", "listen"));
            let ports = container["ports"].as_array().unwrap();
            assert!(
                ports
                    .iter()
                    .any(|p| p["name"] == "http" && p["containerPort"] == port),
                "{what}: containerPort {port} named http"
            );
            for (probe, path) in [("livenessProbe", "/ping"), ("readinessProbe", "/ready")] {
                let get = &container[probe]["httpGet"];
                assert_eq!(get["path"], path, "{what}: {probe}");
                assert_eq!(get["port"], "http", "{what}: {probe}");
            }
            assert!(
                grace > shutdown_grace,
                "{what}: terminationGracePeriodSeconds {grace} must outlast shutdown_grace {shutdown_grace}s"
            );

            // Every variable the config needs, and the three Gatehouse reads anyway, come
            // from the Secret, and the Secret's creation command sets each.
            let env = container_env(container);
            let mut needed = required_variables(&config_text);
            needed.extend(
                [
                    "GH_CLIENT_ID",
                    "GH_CLIENT_SECRET",
                    "GATEHOUSE_SESSION_SECRET",
                ]
                .map(String::from),
            );
            for var in &needed {
                assert_eq!(
                    env.get(var).map(String::as_str),
                    Some(format!("secret:{secret}/{var}").as_str()),
                    "{what}: {var} from Secret {secret}"
                );
                for (doc, text) in [(m.file, create_secret), ("README.md", readme_secret)] {
                    let command = shell_command(text);
                    assert!(
                        command.contains(&format!("--from-literal={var}=")),
                        "{doc}: `kubectl create secret generic {secret}` lacks {var}"
                    );
                }
            }
            for (var, value) in &env {
                if let Some(rest) = value.strip_prefix("secret:") {
                    assert!(needed.contains(var), "{what}: {var} ({rest}) is not used");
                }
            }

            // A Service sends traffic to the `http` port.
            let services = m.services_for(pod_labels);
            assert!(
                services.iter().any(|s| s["spec"]["ports"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|p| p["targetPort"] == "http")),
                "{what}: no Service targets port http"
            );
            gatehouses.push((workload.clone(), config.clone()));
        }
    }
    assert!(!gatehouses.is_empty(), "{}: no gatehouse container", m.file);
    gatehouses
}

#[test]
fn kubernetes_sidecar_is_hardened_probed_and_wired() {
    let venv = ci_venv();
    if !tool_available("kubernetes-validate's venv (PyYAML)", venv.is_some()) {
        return;
    }
    let m = Manifest::load(&venv.unwrap(), "sidecar.yaml");
    let gatehouses = check_workloads(&m, "gatehouse");
    assert_eq!(gatehouses.len(), 1);
    let (deployment, config) = &gatehouses[0];
    // The app is in the same pod, reached over loopback on the port it listens on.
    let containers = deployment["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap();
    let names: Vec<&str> = containers
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["app", "gatehouse"]);
    let upstream = toml_str(config, "upstream", "url");
    assert!(upstream.starts_with("http://127.0.0.1:"), "{upstream}");
    let app_port = port_of(upstream).to_string();
    assert!(
        containers[0]["args"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == app_port.as_str()),
        "the app listens on {app_port}"
    );
    assert_eq!(toml_str(config, "session", "store"), "cookie");
    // Only Gatehouse's port is admitted into the pod.
    let policy = &m.of_kind("NetworkPolicy")[0]["spec"];
    assert_eq!(
        policy["ingress"][0]["ports"],
        serde_json::json!([{"protocol": "TCP", "port": 4180}])
    );
}

#[test]
fn kubernetes_gateway_has_three_replicas_sharing_redis() {
    let venv = ci_venv();
    if !tool_available("kubernetes-validate's venv (PyYAML)", venv.is_some()) {
        return;
    }
    let m = Manifest::load(&venv.unwrap(), "gateway.yaml");
    let gatehouses = check_workloads(&m, "gatehouse-gateway");
    assert_eq!(gatehouses.len(), 1);
    let (deployment, config) = &gatehouses[0];
    assert_eq!(deployment["spec"]["replicas"], 3);
    let pdb = &m.of_kind("PodDisruptionBudget")[0]["spec"];
    assert_eq!(
        pdb["selector"]["matchLabels"],
        deployment["spec"]["selector"]["matchLabels"]
    );

    // The session store: Redis, at a Service of this file selecting the Redis pods, on the
    // port the Redis container listens on.
    assert_eq!(toml_str(config, "session", "store"), "redis");
    let redis_url = toml_str(config, "session", "redis_url");
    assert_eq!(redis_url, "redis://gatehouse-redis:6379");
    let store_secrets = config["session"]["store_secrets"].as_array().unwrap();
    assert_eq!(store_secrets[0].as_str(), Some("${GATEHOUSE_STORE_SECRET}"));
    assert_eq!(
        toml_str(config, "github", "webhook_secret"),
        "${GH_WEBHOOK_SECRET}"
    );
    let url = url::Url::parse(redis_url).unwrap();
    let service = m.get("Service", url.host_str().unwrap());
    let service_port = &service["spec"]["ports"][0];
    assert_eq!(service_port["port"], url.port().unwrap());
    let redis = m.get("StatefulSet", "gatehouse-redis");
    let redis_labels = &redis["spec"]["template"]["metadata"]["labels"];
    assert!(
        m.services_for(redis_labels)
            .iter()
            .any(|s| s["metadata"]["name"] == service["metadata"]["name"]),
        "Service {} selects the Redis pods",
        service["metadata"]["name"]
    );
    let redis_container = &redis["spec"]["template"]["spec"]["containers"][0];
    assert!(redis_container["ports"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["name"] == service_port["targetPort"] && p["containerPort"] == 6379));
    // Redis keeps its data on a volume, and only the gateway's pods reach it.
    assert_eq!(
        redis_container["volumeMounts"][0]["name"],
        redis["spec"]["volumeClaimTemplates"][0]["metadata"]["name"]
    );
    let policy = m
        .of_kind("NetworkPolicy")
        .into_iter()
        .find(|p| {
            p["spec"]["podSelector"]["matchLabels"] == redis["spec"]["selector"]["matchLabels"]
        })
        .expect("a NetworkPolicy for the Redis pods");
    assert_eq!(
        policy["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"],
        deployment["spec"]["selector"]["matchLabels"]
    );
}

// ---- Docker Compose --------------------------------------------------------------------------

#[test]
fn compose_file_is_valid_and_wires_gatehouse_to_redis_and_the_app() {
    let compose = read("deploy/compose/docker-compose.yml");
    for needle in [
        "\"4180:4180\"",
        "./gatehouse.toml:/etc/gatehouse/gatehouse.toml:ro",
        "network_mode: \"service:gatehouse\"",
        "env_file: .env",
        "condition: service_healthy",
    ] {
        assert!(
            compose.contains(needle),
            "docker-compose.yml lacks {needle}"
        );
    }
    // .env.example names every variable gatehouse.toml needs.
    let config_text = read("deploy/compose/gatehouse.toml");
    let config: toml::Table = toml::from_str(&config_text).unwrap();
    let env_example = read("deploy/compose/.env.example");
    let mut needed = required_variables(&config_text);
    needed.extend(
        [
            "GH_CLIENT_ID",
            "GH_CLIENT_SECRET",
            "GATEHOUSE_SESSION_SECRET",
        ]
        .map(String::from),
    );
    for var in &needed {
        assert!(
            env_example
                .lines()
                .any(|l| l.starts_with(&format!("{var}="))),
            ".env.example lacks {var}"
        );
    }

    // docker-compose's own validation of the file (offline: `config` talks to no daemon).
    let docker_compose = on_path("docker-compose");
    if tool_available("docker-compose", docker_compose.is_some()) {
        let scratch = tempfile::tempdir().unwrap();
        for file in ["docker-compose.yml", "gatehouse.toml"] {
            std::fs::copy(
                root().join("deploy/compose").join(file),
                scratch.path().join(file),
            )
            .unwrap();
        }
        std::fs::copy(
            root().join("deploy/compose/.env.example"),
            scratch.path().join(".env"),
        )
        .unwrap();
        let out = Command::new(docker_compose.unwrap())
            .args(["-f", "docker-compose.yml", "config", "--quiet"])
            .current_dir(scratch.path())
            .env_remove("COMPOSE_FILE")
            .env_remove("DOCKER_HOST")
            .output()
            .expect("run docker-compose config");
        assert!(
            out.status.success(),
            "docker-compose config rejects docker-compose.yml:\n{}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
    }

    // The services, read by a YAML parser.
    let venv = ci_venv();
    if !tool_available("kubernetes-validate's venv (PyYAML)", venv.is_some()) {
        return;
    }
    let doc = yaml_documents(
        &venv.unwrap(),
        &root().join("deploy/compose/docker-compose.yml"),
    )
    .remove(0);
    let services = doc["services"].as_object().unwrap();
    let names: BTreeSet<&str> = services.keys().map(String::as_str).collect();
    assert_eq!(names, BTreeSet::from(["gatehouse", "redis", "app"]));
    let gatehouse = &services["gatehouse"];
    let redis = &services["redis"];
    let app = &services["app"];

    // Gatehouse: published on the port its config listens on; read-only, no capabilities;
    // starts once Redis answers.
    let listen = port_of(toml_str(&config, "server", "listen"));
    assert_eq!(
        gatehouse["ports"],
        serde_json::json!([format!("{listen}:{listen}")])
    );
    for service in [gatehouse, redis] {
        assert_eq!(service["read_only"], true, "{service}");
        assert_eq!(service["cap_drop"], serde_json::json!(["ALL"]), "{service}");
        assert_eq!(
            service["security_opt"],
            serde_json::json!(["no-new-privileges:true"]),
            "{service}"
        );
    }
    assert_eq!(
        gatehouse["depends_on"]["redis"]["condition"],
        "service_healthy"
    );

    // Sessions in the redis service, on the port it listens on; not published; data on a
    // named volume; a health check the gatehouse service waits for.
    assert_eq!(toml_str(&config, "session", "store"), "redis");
    let redis_url = url::Url::parse(toml_str(&config, "session", "redis_url")).unwrap();
    assert_eq!(
        redis_url.host_str(),
        Some("redis"),
        "the compose service's name"
    );
    assert_eq!(redis_url.port(), Some(6379));
    assert!(redis.get("ports").is_none(), "Redis must not be published");
    assert!(
        redis["user"].as_str().is_some_and(|u| !u.starts_with("0")),
        "Redis runs as its own user"
    );
    let volume = redis["volumes"][0].as_str().unwrap();
    let (volume_name, mount) = volume.split_once(':').unwrap();
    assert_eq!(mount, "/data");
    assert!(doc["volumes"].get(volume_name).is_some(), "{volume_name}");
    let probe = redis["healthcheck"]["test"].to_string();
    assert!(
        probe.contains("redis-cli") && probe.contains("ping"),
        "{probe}"
    );

    // The app shares Gatehouse's network namespace, on the port the upstream names.
    assert_eq!(app["network_mode"], "service:gatehouse");
    let upstream = toml_str(&config, "upstream", "url");
    assert!(upstream.starts_with("http://127.0.0.1:"), "{upstream}");
    let app_port = port_of(upstream).to_string();
    assert!(
        app["command"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == app_port.as_str()),
        "the app listens on {app_port}"
    );
    assert!(
        app.get("ports").is_none(),
        "the app is reachable only through the gate"
    );
}

#[test]
fn env_examples_list_the_secrets() {
    let compose_env = read("deploy/compose/.env.example");
    let systemd_env = read("deploy/systemd/env.example");
    for var in [
        "GH_CLIENT_ID",
        "GH_CLIENT_SECRET",
        "GATEHOUSE_SESSION_SECRET",
    ] {
        assert!(
            compose_env.contains(&format!("{var}=")),
            ".env.example: {var}"
        );
        assert!(
            systemd_env.contains(&format!("{var}=")),
            "env.example: {var}"
        );
    }
}

// ---- systemd ---------------------------------------------------------------------------------

#[test]
fn systemd_unit_is_hardened_and_passes_systemd_analyze() {
    let unit = read("deploy/systemd/gatehouse.service");
    let lines: Vec<&str> = unit
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let service = lines
        .iter()
        .skip_while(|l| **l != "[Service]")
        .skip(1)
        .take_while(|l| !l.starts_with('['))
        .copied()
        .collect::<Vec<&str>>();
    let values = |key: &str| -> Vec<&str> {
        service
            .iter()
            .filter_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .collect()
    };
    for line in [
        "ExecStartPre=/usr/local/bin/gatehouse check-config --config /etc/gatehouse/gatehouse.toml",
        "ExecStart=/usr/local/bin/gatehouse run --config /etc/gatehouse/gatehouse.toml",
        "EnvironmentFile=/etc/gatehouse/env",
        "DynamicUser=yes",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "PrivateDevices=yes",
        "ProtectKernelTunables=yes",
        "ProtectKernelModules=yes",
        "ProtectKernelLogs=yes",
        "ProtectControlGroups=yes",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
        "RestrictNamespaces=yes",
        "RestrictSUIDSGID=yes",
        "LockPersonality=yes",
        "MemoryDenyWriteExecute=yes",
        "SystemCallArchitectures=native",
        "SystemCallFilter=@system-service",
    ] {
        assert!(
            service.contains(&line),
            "gatehouse.service [Service] lacks {line}"
        );
    }
    // Reload: validate, then SIGHUP (Gatehouse re-reads its config on SIGHUP).
    assert_eq!(
        values("ExecReload"),
        [
            "/usr/local/bin/gatehouse check-config --config /etc/gatehouse/gatehouse.toml",
            "/bin/kill -HUP $MAINPID"
        ]
    );
    // Stop: SIGTERM, and time for the config's shutdown_grace.
    assert_eq!(values("KillSignal"), ["SIGTERM"]);
    let config: toml::Table = toml::from_str(&read("deploy/systemd/gatehouse.toml")).unwrap();
    let grace = duration_secs(
        config
            .get("server")
            .and_then(|s| s.get("shutdown_grace"))
            .and_then(|v| v.as_str())
            .unwrap_or("10s"),
    );
    let timeout = duration_secs(values("TimeoutStopSec")[0]);
    assert!(
        timeout > grace,
        "TimeoutStopSec={timeout}s must outlast shutdown_grace ({grace}s)"
    );
    // No capabilities while the config listens on an unprivileged port.
    assert!(port_of(toml_str(&config, "server", "listen")) >= 1024);
    assert_eq!(values("CapabilityBoundingSet"), [""]);
    assert_eq!(values("AmbientCapabilities"), [""]);

    let analyze = on_path("systemd-analyze");
    if !tool_available("systemd-analyze", analyze.is_some()) {
        return;
    }
    let analyze = analyze.unwrap();
    // The unit as installed, with the binary where this build put it (verify checks that
    // every command exists and is executable).
    let scratch = tempfile::tempdir().unwrap();
    let path = scratch.path().join("gatehouse.service");
    std::fs::write(
        &path,
        unit.replace("/usr/local/bin/gatehouse", env!("CARGO_BIN_EXE_gatehouse")),
    )
    .unwrap();
    let out = Command::new(&analyze)
        .arg("verify")
        .arg(&path)
        .env("SYSTEMD_LOG_COLOR", "0")
        .output()
        .expect("run systemd-analyze verify");
    let report = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "systemd-analyze verify:\n{report}");
    // Unknown or misspelled keys are only warned about: none may be.
    assert!(
        report.trim().is_empty(),
        "systemd-analyze verify complains:\n{report}"
    );
    // Overall exposure (0 safest .. 10): at most 2.0 ("OK").
    let out = Command::new(&analyze)
        .args(["security", "--offline=yes", "--threshold=20", "--no-pager"])
        .arg(&path)
        .output()
        .expect("run systemd-analyze security");
    assert!(
        out.status.success(),
        "systemd-analyze security: exposure above 2.0:\n{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

// ---- nginx -------------------------------------------------------------------------------

fn nginx_available() -> bool {
    tool_available(NGINX, Path::new(NGINX).exists())
}

/// deploy/nginx/auth_request.conf written into `dir`, its listen port and two upstreams pointed
/// at the given ports.
fn adapted_site(dir: &Path, listen: u16, gate: u16, app: u16) -> PathBuf {
    let what = "deploy/nginx/auth_request.conf";
    let mut site = read(what);
    assert!(site.contains("auth_request /oauth2/auth;"), "{what}");
    for header in ["user", "email", "groups"] {
        assert!(
            site.contains(&format!("$upstream_http_x_auth_request_{header};")),
            "{what} should pass X-Auth-Request-{header}"
        );
    }
    // A site for an existing nginx: nothing of the main context or `events` of its own.
    for main_only in ["events ", "http ", "pid ", "worker_processes ", "user "] {
        assert!(
            !site.lines().any(|l| l.trim_start().starts_with(main_only)),
            "{what} belongs inside nginx's http block: no `{main_only}`"
        );
    }
    site = replace_once(
        &site,
        "listen 80;",
        &format!("listen 127.0.0.1:{listen};"),
        what,
    );
    site = replace_once(
        &site,
        "server 127.0.0.1:4180;",
        &format!("server 127.0.0.1:{gate};"),
        what,
    );
    site = replace_once(
        &site,
        "server 127.0.0.1:8080;",
        &format!("server 127.0.0.1:{app};"),
        what,
    );
    let path = dir.join("auth_request.conf");
    std::fs::write(&path, site).unwrap();
    path
}

/// A minimal nginx.conf whose `http` block includes the site, with logs, pid and temporary
/// files in `dir`, so the test runs it without touching the system's nginx.
fn nginx_main_conf(dir: &Path, site: &Path) -> PathBuf {
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let d = dir.display();
    let temp: String = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]
        .iter()
        .map(|t| format!("    {t}_temp_path {d}/{t}_temp;\n"))
        .collect();
    let conf = format!(
        "worker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/logs/error.log warn;\n\
         events {{\n    worker_connections 256;\n}}\n\
         http {{\n    access_log {d}/logs/access.log;\n{temp}    include {};\n}}\n",
        site.display()
    );
    let path = dir.join("nginx.conf");
    std::fs::write(&path, conf).unwrap();
    path
}

fn nginx_command(dir: &Path, conf: &Path) -> Command {
    let mut cmd = Command::new(NGINX);
    cmd.arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(conf)
        .arg("-e")
        .arg(dir.join("logs/error.log"));
    cmd
}

fn nginx_t(dir: &Path, conf: &Path) {
    let out = nginx_command(dir, conf)
        .arg("-t")
        .output()
        .expect("run nginx -t");
    assert!(
        out.status.success(),
        "nginx -t failed for {}:\n{}{}",
        conf.display(),
        text(&out.stdout),
        text(&out.stderr)
    );
}

#[test]
fn nginx_auth_request_conf_passes_nginx_t() {
    if !nginx_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let site = adapted_site(dir.path(), free_port(), 4180, 8080);
    nginx_t(dir.path(), &nginx_main_conf(dir.path(), &site));

    // Dropped into Debian's stock nginx.conf where its conf.d/*.conf go, beside the default
    // site: no directive of the file clashes with the stock ones. (As root only: the stock
    // file opens /var/log/nginx and names a user to switch to.)
    let stock = Path::new("/etc/nginx/nginx.conf");
    let include = "include /etc/nginx/conf.d/*.conf;";
    // SAFETY: geteuid has no preconditions and cannot fail.
    #[allow(unsafe_code, reason = "geteuid(2) has no safe wrapper in libc")]
    let root_user = unsafe { libc::geteuid() } == 0;
    if !root_user || !stock.is_file() {
        println!("note: not root or no /etc/nginx/nginx.conf; skipping the stock nginx.conf check");
        return;
    }
    let stock = std::fs::read_to_string(stock).unwrap();
    assert!(
        stock.contains(include),
        "Debian's nginx.conf includes conf.d"
    );
    let shipped = dir.path().join("shipped.conf");
    std::fs::write(&shipped, read("deploy/nginx/auth_request.conf")).unwrap();
    let conf = dir.path().join("stock-nginx.conf");
    std::fs::write(
        &conf,
        stock.replace(include, &format!("include {};", shipped.display())),
    )
    .unwrap();
    // nginx's own prefix, so the stock file's relative module paths resolve.
    let out = Command::new(NGINX)
        .arg("-t")
        .arg("-c")
        .arg(&conf)
        .output()
        .expect("run nginx -t");
    assert!(
        out.status.success(),
        "nginx -t failed with auth_request.conf in Debian's nginx.conf:\n{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// Stops a child process when the test ends, however it ends. SIGTERM first and a short wait,
/// so an nginx master takes its workers down with it; SIGKILL if it lingers.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn wait_for_port(port: u16, what: &str, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "{what} did not start on port {port}; log:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

/// Sign in through nginx and the mock GitHub as `login`, starting from `path`; returns where
/// the callback sends the browser and the value of the session cookie it set.
async fn sign_in_through_nginx(
    client: &reqwest::Client,
    site: &str,
    mock: SocketAddr,
    path: &str,
    login: &str,
) -> (String, String) {
    let page = client
        .get(format!("{site}{path}"))
        .header("Accept", "text/html")
        .send()
        .await
        .unwrap();
    // Signed out: nginx hands the request to /oauth2/start, which sends the browser to GitHub.
    assert_eq!(page.status(), 302, "signed out: nginx should redirect");
    let authorize = url::Url::parse(&location(&page)).unwrap();
    assert_eq!(authorize.port(), Some(mock.port()), "{authorize}");
    let callback = common::consent(client, authorize.as_str(), login).await;
    assert!(
        callback.starts_with(&format!("{site}/oauth2/callback?")),
        "{callback}"
    );
    let landed = client.get(callback).send().await.unwrap();
    assert_eq!(landed.status(), 302, "callback should set the session");
    (location(&landed), common::session_cookie(&landed))
}

/// `gatehouse run` with a shipped config (`config_file`, e.g. deploy/nginx/gatehouse.toml) beside
/// a proxy serving `site`, the app on `app_port`, and the mock GitHub: what every "proxy in
/// front, Gatehouse beside it" test starts.
struct GateBeside {
    gate_port: u16,
    gate_log: PathBuf,
    mock_addr: SocketAddr,
    gate: KillOnDrop,
}

async fn gate_beside(config_file: &str, dir: &Path, site: &str, app_port: u16) -> GateBeside {
    let gate_port = free_port();

    let mock = gatehouse_mock_github::MockGithub::demo();
    mock.add_app(gatehouse_mock_github::MockApp {
        client_id: CLIENT_ID.into(),
        client_secret: CLIENT_SECRET.into(),
        callback_url: format!("{site}/oauth2/callback"),
    });
    let mock_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mock_addr = mock_listener.local_addr().unwrap();
    tokio::spawn(mock.serve(mock_listener));

    // The shipped config with test addresses and the mock GitHub.
    let what = config_file;
    let mut config = read(what);
    config = replace_once(
        &config,
        "listen = \"127.0.0.1:4180\"",
        &format!("listen = \"127.0.0.1:{gate_port}\""),
        what,
    );
    config = replace_once(
        &config,
        "public_url = \"https://app.example.com\"",
        &format!("public_url = \"{site}\""),
        what,
    );
    config = replace_once(
        &config,
        "url = \"http://127.0.0.1:8080\"",
        &format!("url = \"http://127.0.0.1:{app_port}\""),
        what,
    );
    config = replace_once(
        &config,
        "[github]\n",
        &format!(
            "[github]\nweb_url = \"http://{mock_addr}\"\napi_url = \"http://{mock_addr}/api/v3\"\n"
        ),
        what,
    );
    let config_path = dir.join("gatehouse.toml");
    std::fs::write(&config_path, config).unwrap();
    let gate_log = dir.join("gatehouse.log");
    let gate = KillOnDrop(
        binary()
            .args(["run", "--config"])
            .arg(&config_path)
            .env("GH_CLIENT_ID", CLIENT_ID)
            .env("GH_CLIENT_SECRET", CLIENT_SECRET)
            .env("GATEHOUSE_SESSION_SECRET", SESSION_SECRET)
            .env("GITHUB_USERS", "monalisa")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&gate_log).unwrap())
            .spawn()
            .expect("start gatehouse"),
    );

    GateBeside {
        gate_port,
        gate_log,
        mock_addr,
        gate,
    }
}

/// The shipped deploy/nginx files running for real: nginx on a free port in front of the app on
/// `app_port`, `gatehouse run` beside it with deploy/nginx/gatehouse.toml, and the mock GitHub.
/// Both processes stop when this is dropped.
struct NginxSite {
    /// `http://127.0.0.1:PORT`: nginx.
    site: String,
    gate_log: PathBuf,
    mock_addr: SocketAddr,
    _dir: tempfile::TempDir,
    _gate: KillOnDrop,
    _nginx: KillOnDrop,
}

impl NginxSite {
    async fn start(app_port: u16) -> NginxSite {
        let dir = tempfile::tempdir().unwrap();
        let nginx_port = free_port();
        let site = format!("http://127.0.0.1:{nginx_port}");
        let GateBeside {
            gate_port,
            gate_log,
            mock_addr,
            gate: _gate,
        } = gate_beside("deploy/nginx/gatehouse.toml", dir.path(), &site, app_port).await;

        let site_conf = adapted_site(dir.path(), nginx_port, gate_port, app_port);
        let conf = nginx_main_conf(dir.path(), &site_conf);
        let nginx_log = dir.path().join("logs/error.log");
        let _nginx = KillOnDrop(
            nginx_command(dir.path(), &conf)
                .args(["-g", "daemon off;"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start nginx"),
        );
        wait_for_port(gate_port, "gatehouse", &gate_log).await;
        wait_for_port(nginx_port, "nginx", &nginx_log).await;
        NginxSite {
            site,
            gate_log,
            mock_addr,
            _dir: dir,
            _gate,
            _nginx,
        }
    }
}

/// The shipped auth_request.conf and deploy/nginx/gatehouse.toml, run for real: nginx on a free port,
/// `gatehouse run` beside it, the mock GitHub, and the demo app (which echoes its headers).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_auth_request_signs_in_and_passes_identity() {
    if !nginx_available() {
        return;
    }
    let app_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let app_port = app_listener.local_addr().unwrap().port();
    tokio::spawn(gatehouse_mock_github::serve_demo_upstream(app_listener));
    // Keep it whole: dropping it stops nginx and the gate.
    let running = NginxSite::start(app_port).await;
    let (site, mock_addr) = (running.site.clone(), running.mock_addr);

    // The forward-auth endpoint is internal to nginx.
    let outside = common::plain_client()
        .get(format!("{site}/oauth2/auth"))
        .send()
        .await
        .unwrap();
    assert_eq!(outside.status(), 404, "/oauth2/auth must not be reachable");

    // octocat (allowed_users) signs in and lands where they started.
    let octocat = browser();
    let (landed, _) = sign_in_through_nginx(
        &octocat,
        &site,
        mock_addr,
        "/echo/private?x=1&y=2",
        "octocat",
    )
    .await;
    assert_eq!(
        landed, "/echo/private?x=1&y=2",
        "the whole query survives sign-in"
    );
    let echoed = octocat
        .get(format!("{site}/echo/private"))
        .header("X-Forwarded-User", "mallory")
        .header("X-Auth-Request-User", "mallory")
        .header("X-Forwarded-Email", "mallory@example.com")
        .header("Remote-User", "mallory")
        .send()
        .await
        .unwrap();
    assert_eq!(echoed.status(), 200);
    let echoed: Value = echoed.json().await.unwrap();
    let headers = &echoed["headers"];
    assert_eq!(headers["x-auth-request-user"], "octocat", "{echoed:#}");
    assert_eq!(headers["x-forwarded-user"], "octocat", "{echoed:#}");
    assert_eq!(headers["x-forwarded-user-id"], "583231", "{echoed:#}");
    assert_eq!(headers["x-auth-request-email"], "octocat@example.com");
    assert_eq!(headers["x-forwarded-email"], "octocat@example.com");
    assert!(headers.get("remote-user").is_none(), "{echoed:#}");
    assert!(
        headers.get("cookie").is_none(),
        "session cookie reached the app: {echoed:#}"
    );

    // monalisa comes in through GITHUB_USERS; mallory is signed in but not allowed.
    let monalisa = browser();
    sign_in_through_nginx(&monalisa, &site, mock_addr, "/echo/m", "monalisa").await;
    let ok = monalisa.get(format!("{site}/echo/m")).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    // Rules see the original method and URI through nginx; a client-sent second spelling
    // of them changes nothing.
    let write = |path: &str| {
        monalisa
            .post(format!("{site}{path}"))
            .header("x-forwarded-uri", "/echo/monalisa/x")
            .header("x-forwarded-method", "GET")
            .send()
    };
    assert_eq!(write("/echo/monalisa/x").await.unwrap().status(), 200);
    assert_eq!(write("/echo/octocat/x").await.unwrap().status(), 403);
    let roles: Value = octocat
        .get(format!("{site}/echo/roles"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        roles["headers"]["x-forwarded-roles"], "viewer,admin",
        "{roles:#}"
    );
    let mallory = browser();
    sign_in_through_nginx(&mallory, &site, mock_addr, "/echo/x", "mallory").await;
    let denied = mallory.get(format!("{site}/echo/x")).send().await.unwrap();
    assert_eq!(denied.status(), 403, "mallory is not allowed");

    // Signing out through nginx ends the session.
    let out = octocat
        .get(format!("{site}/oauth2/sign_out"))
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 302);
    let again = octocat
        .get(format!("{site}/echo/private"))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 302, "signed out: back to sign-in");
}

/// Websockets through the shipped auth_request.conf: a signed-in browser's upgrade reaches the
/// app and tunnels both ways (nginx must pass `Upgrade` and `Connection: upgrade` on); a
/// signed-out one is sent to sign in and never reaches the app.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_auth_request_passes_websockets() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::{client::IntoClientRequest, Message};
    if !nginx_available() {
        return;
    }
    let (app, upgrades) = common::ws_echo_upstream().await;
    // Keep it whole: dropping it stops nginx and the gate.
    let running = NginxSite::start(app.port()).await;
    let (site, mock_addr) = (running.site.clone(), running.mock_addr);
    let request = |cookie: Option<&str>| {
        let mut req = format!("{}/echo/socket", site.replacen("http", "ws", 1))
            .into_client_request()
            .unwrap();
        if let Some(cookie) = cookie {
            let cookie = format!("_gatehouse={cookie}");
            req.headers_mut().insert("cookie", cookie.parse().unwrap());
        }
        req
    };

    // Signed out: no tunnel, and the app never saw an upgrade.
    match tokio_tungstenite::connect_async(request(None)).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => {
            assert_eq!(r.status(), 302, "signed out: sent to sign in")
        }
        other => panic!("a signed-out websocket got through: {other:?}"),
    }
    assert_eq!(upgrades.load(std::sync::atomic::Ordering::SeqCst), 0);

    let (_, cookie) =
        sign_in_through_nginx(&browser(), &site, mock_addr, "/echo/socket", "octocat").await;
    let (mut ws, response) = tokio_tungstenite::connect_async(request(Some(&cookie)))
        .await
        .unwrap_or_else(|e| {
            panic!(
                "a signed-in websocket did not open through nginx: {e:?}\ngate log:\n{}",
                std::fs::read_to_string(&running.gate_log).unwrap_or_default()
            )
        });
    assert_eq!(response.status(), 101);
    // The app's first message: the headers it got, with the identity nginx passed on.
    let first = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .expect("the app speaks first")
        .unwrap()
        .unwrap();
    let headers: Value = serde_json::from_str(first.to_text().unwrap()).unwrap();
    assert_eq!(headers["x-forwarded-user"], "octocat", "{headers:#}");
    assert_eq!(headers["upgrade"], "websocket", "{headers:#}");
    assert!(headers.get("cookie").is_none(), "{headers:#}");
    ws.send(Message::Text("ping through nginx".into()))
        .await
        .unwrap();
    let echo = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .expect("the app echoes")
        .unwrap()
        .unwrap();
    assert_eq!(echo.to_text().unwrap(), "ping through nginx");
    assert_eq!(upgrades.load(std::sync::atomic::Ordering::SeqCst), 1);
}

// ---- Prometheus alerting rules --------------------------------------------------------------

/// promtool: `$GATEHOUSE_PROMTOOL` (what `.ci/run` exports), else on `PATH`, else where
/// `.ci/run` unpacks it.
fn promtool() -> Option<PathBuf> {
    let from_env = std::env::var_os("GATEHOUSE_PROMTOOL").map(PathBuf::from);
    let cached = std::env::var_os("HOME")
        .map(|home| PathBuf::from(home).join(".cache/gatehouse-ci-promtool/usr/bin/promtool"));
    [from_env, on_path("promtool"), cached]
        .into_iter()
        .flatten()
        .find(|p| p.is_file())
}

fn run_promtool(promtool: &Path, args: &[&str]) {
    let out = Command::new(promtool)
        .args(args)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/prometheus"))
        .output()
        .expect("run promtool");
    assert!(
        out.status.success(),
        "promtool {}:\n{}{}",
        args.join(" "),
        text(&out.stdout),
        text(&out.stderr)
    );
}

#[test]
fn prometheus_alert_rules_pass_promtool_and_their_unit_tests() {
    let found = promtool();
    if !tool_available("promtool", found.is_some()) {
        return;
    }
    let promtool = found.unwrap();
    run_promtool(&promtool, &["check", "rules", "alerts.yml"]);
    run_promtool(&promtool, &["test", "rules", "alerts_test.yml"]);
}

/// An alert on a metric nobody exposes never fires: every `gatehouse_*` name in alerts.yml
/// must be on a running gate's `/metrics` (a TLS gate, so the certificate gauge is there).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_alert_rules_name_only_metrics_the_gate_exposes() {
    let rules = read("deploy/prometheus/alerts.yml");
    let named: BTreeSet<String> = regex::Regex::new(r"gatehouse_[a-z_]+")
        .unwrap()
        .find_iter(&rules)
        .map(|m| m.as_str().to_string())
        .collect();
    assert!(named.len() >= 8, "{named:?}");
    let h = common::Harness::start_tls(
        common::GateOptions {
            admin: true,
            ..common::GateOptions::default()
        },
        "",
    )
    .await;
    let exposed: BTreeSet<String> = common::scrape::scrape(h.admin.as_deref().unwrap())
        .await
        .keys()
        .map(|series| series.split('{').next().unwrap_or(series).to_string())
        .collect();
    let missing: Vec<&String> = named
        .iter()
        .filter(|name| {
            !["", "_bucket", "_sum", "_count"]
                .iter()
                .any(|suffix| exposed.contains(&format!("{name}{suffix}")))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "alerts.yml names metrics the gate does not expose: {missing:?}\nexposed: {exposed:?}"
    );
}

// ---- Caddy -------------------------------------------------------------------------------

const CADDY: &str = "caddy";

fn caddy_available() -> bool {
    tool_available(CADDY, on_path(CADDY).is_some())
}

/// `caddy` with its state (autosave.json, data) kept in `dir` and the Caddyfile's addresses
/// from the environment.
fn caddy_command(dir: &Path, site: &str, gate_port: u16, app_port: u16) -> Command {
    let mut cmd = Command::new(CADDY);
    cmd.env("HOME", dir)
        .env("XDG_DATA_HOME", dir.join("data"))
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .env("SITE", site)
        .env("GATEHOUSE", format!("127.0.0.1:{gate_port}"))
        .env("APP", format!("127.0.0.1:{app_port}"));
    cmd
}

#[test]
fn caddyfile_passes_caddy_validate() {
    if !caddy_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = caddy_command(dir.path(), "127.0.0.1:8443", 4180, 8080)
        .args(["validate", "--adapter", "caddyfile", "--config"])
        .arg(root().join("deploy/caddy/Caddyfile"))
        .output()
        .expect("run caddy validate");
    assert!(
        out.status.success() && text(&out.stdout).contains("Valid configuration"),
        "caddy validate:\n{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// The shipped deploy/caddy files running for real: Caddy on a free port in front of the app on
/// `app_port`, `gatehouse run` beside it with deploy/caddy/gatehouse.toml, and the mock GitHub.
struct CaddySite {
    site: String,
    gate_log: PathBuf,
    mock_addr: SocketAddr,
    _dir: tempfile::TempDir,
    _gate: KillOnDrop,
    _caddy: KillOnDrop,
}

impl CaddySite {
    async fn start(app_port: u16) -> CaddySite {
        let dir = tempfile::tempdir().unwrap();
        let caddy_port = free_port();
        let site = format!("http://127.0.0.1:{caddy_port}");
        let GateBeside {
            gate_port,
            gate_log,
            mock_addr,
            gate: _gate,
        } = gate_beside("deploy/caddy/gatehouse.toml", dir.path(), &site, app_port).await;
        let caddy_log = dir.path().join("caddy.log");
        let _caddy = KillOnDrop(
            caddy_command(
                dir.path(),
                &format!("127.0.0.1:{caddy_port}"),
                gate_port,
                app_port,
            )
            .args(["run", "--adapter", "caddyfile", "--config"])
            .arg(root().join("deploy/caddy/Caddyfile"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&caddy_log).unwrap())
            .spawn()
            .expect("start caddy"),
        );
        wait_for_port(gate_port, "gatehouse", &gate_log).await;
        wait_for_port(caddy_port, "caddy", &caddy_log).await;
        CaddySite {
            site,
            gate_log,
            mock_addr,
            _dir: dir,
            _gate,
            _caddy,
        }
    }
}

/// Sign in through Caddy as `login`, starting from a browser navigation to `path`.
async fn sign_in_through_caddy(client: &reqwest::Client, site: &str, path: &str, login: &str) {
    let page = client
        .get(format!("{site}{path}"))
        .header("Accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 302, "signed out: sent to sign in");
    let start = client.get(location(&page)).send().await.unwrap();
    let callback = common::consent(client, &location(&start), login).await;
    let landed = client.get(callback).send().await.unwrap();
    assert_eq!(landed.status(), 302, "callback should set the session");
    assert_eq!(location(&landed), path);
}

/// deploy/caddy run for real with Debian's Caddy: a browser is sent to sign in and back to the
/// page it asked for; scripts get 401 JSON naming that page; the app gets Gatehouse's identity
/// headers and none of the client's, no placeholder or empty ones, and no session cookie; a
/// person who is not admitted sees a page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caddy_forward_auth_signs_in_and_passes_identity() {
    if !caddy_available() {
        return;
    }
    let app_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let app_port = app_listener.local_addr().unwrap().port();
    tokio::spawn(gatehouse_mock_github::serve_demo_upstream(app_listener));
    let running = CaddySite::start(app_port).await;
    let (site, mock_addr) = (running.site.clone(), running.mock_addr);

    let outside = common::plain_client()
        .get(format!("{site}/oauth2/auth"))
        .send()
        .await
        .unwrap();
    assert_eq!(outside.status(), 404, "/oauth2/auth must not be reachable");

    // A script: 401 JSON whose sign_in_url returns to the page it asked for.
    let script = common::plain_client()
        .get(format!("{site}/echo/private?x=1&y=2"))
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(script.status(), 401);
    let body: Value = script.json().await.unwrap();
    assert_eq!(
        body["sign_in_url"], "/oauth2/start?rd=%2Fecho%2Fprivate%3Fx%3D1%26y%3D2",
        "{body}"
    );

    // A browser: sent to sign in, at the site, and back to where it started.
    let octocat = browser();
    let page = octocat
        .get(format!("{site}/echo/private?x=1&y=2"))
        .header("Accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(
        page.status(),
        302,
        "signed out: a browser is sent to sign in"
    );
    assert_eq!(
        location(&page),
        format!("{site}/oauth2/start?rd=%2Fecho%2Fprivate%3Fx%3D1%26y%3D2")
    );
    let start = octocat.get(location(&page)).send().await.unwrap();
    assert_eq!(start.status(), 302);
    let authorize = url::Url::parse(&location(&start)).unwrap();
    assert_eq!(authorize.port(), Some(mock_addr.port()), "{authorize}");
    let callback = common::consent(&octocat, authorize.as_str(), "octocat").await;
    let landed = octocat.get(callback).send().await.unwrap();
    assert_eq!(landed.status(), 302, "callback should set the session");
    assert_eq!(location(&landed), "/echo/private?x=1&y=2");

    let echoed = octocat
        .get(format!("{site}/echo/private"))
        .header("X-Auth-Request-User", "mallory")
        .header("X-Auth-Request-Email", "mallory@example.com")
        .header("X-Forwarded-User", "mallory")
        .header("Remote-User", "mallory")
        .send()
        .await
        .unwrap();
    assert_eq!(echoed.status(), 200);
    let echoed: Value = echoed.json().await.unwrap();
    let headers = echoed["headers"].as_object().unwrap();
    assert_eq!(headers["x-auth-request-user"], "octocat", "{echoed:#}");
    assert_eq!(headers["x-auth-request-user-id"], "583231", "{echoed:#}");
    assert_eq!(headers["x-auth-request-email"], "octocat@example.com");
    assert_eq!(
        headers["x-auth-request-roles"], "viewer,admin",
        "{echoed:#}"
    );
    for (name, value) in headers {
        let value = value.as_str().unwrap_or_default();
        assert!(
            !value.contains("mallory") && !value.contains("{http.") && !value.contains("{rp."),
            "{name}: {value}"
        );
        if name.starts_with("x-auth-request-") {
            assert!(!value.is_empty(), "an empty {name} reached the app");
        }
    }
    assert!(!headers.contains_key("x-forwarded-user"), "{echoed:#}");
    assert!(!headers.contains_key("remote-user"), "{echoed:#}");
    let cookie = headers.get("cookie").and_then(Value::as_str).unwrap_or("");
    assert!(
        !cookie.contains("_gatehouse"),
        "session cookie reached the app: {cookie}"
    );

    // The rules judge what Caddy forwards: a client-sent X-Original-URI (nginx's spelling,
    // which Gatehouse would prefer) does not pick what is judged.
    let monalisa = browser();
    sign_in_through_caddy(&monalisa, &site, "/echo/m", "monalisa").await;
    let write = |path: &str| {
        monalisa
            .post(format!("{site}{path}"))
            .header("X-Original-URI", "/echo/monalisa/x")
            .header("X-Original-Method", "GET")
            .send()
    };
    assert_eq!(write("/echo/monalisa/x").await.unwrap().status(), 200);
    assert_eq!(write("/echo/octocat/x").await.unwrap().status(), 403);

    // mallory signs in but is not admitted: a page, not JSON.
    let mallory = browser();
    sign_in_through_caddy(&mallory, &site, "/echo/m", "mallory").await;
    let refused = mallory
        .get(format!("{site}/echo/m"))
        .header("Accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    assert!(refused.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let log = std::fs::read_to_string(&running.gate_log).unwrap();
    assert!(!log.contains("ERROR"), "{log}");
}
