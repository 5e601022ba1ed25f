//! The shipped deployment files are tested, not just written.
//!
//! - `config.example.toml` and every Gatehouse config under `deploy/` (including the TOML inside
//!   the Kubernetes ConfigMap) pass `gatehouse check-config` with only the documented
//!   environment set, and fail with the right keys named without it.
//! - The Dockerfile, compose file, Kubernetes manifests and README agree with each other and
//!   with the binary (ports, probes, paths, commands, every config key documented).
//! - When nginx is installed: the nginx config passes `nginx -t`, and a real nginx running it
//!   in front of the real binary, the mock GitHub and the demo app signs people in and passes
//!   their identity to the app.

mod common;
use common::{browser, free_port, location};

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A valid session secret: base64 of 32 bytes.
const SESSION_SECRET: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const CLIENT_ID: &str = "deploy-test-client-id";
const CLIENT_SECRET: &str = "deploy-test-client-secret-value";
const NGINX: &str = "/usr/sbin/nginx";

/// Configs that deliberately admit nobody until `GITHUB_USERS` says who.
const NEEDS_GITHUB_USERS: &[&str] = &["deploy/docker/gatehouse.toml"];
/// Configs run inside a container: they must listen on all interfaces.
const CONTAINER_CONFIGS: &[&str] = &[
    "deploy/docker/gatehouse.toml",
    "deploy/compose/gatehouse.toml",
    "deploy/kubernetes/configmap.yaml",
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
/// YAML files holding a `gatehouse.toml: |` block are extracted into `scratch`.
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
        match path.extension().and_then(|e| e.to_str()) {
            Some("toml") => found.push((rel, path)),
            Some("yaml" | "yml") => {
                let yaml = std::fs::read_to_string(&path).unwrap();
                if let Some(toml) = yaml_block_scalar(&yaml, "gatehouse.toml") {
                    let out = scratch.join(rel.replace('/', "__") + ".toml");
                    std::fs::write(&out, toml).unwrap();
                    found.push((rel, out));
                }
            }
            _ => {}
        }
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
}

#[test]
fn every_shipped_config_passes_check_config_with_the_documented_environment() {
    let scratch = tempfile::tempdir().unwrap();
    let configs = shipped_configs(scratch.path());
    let names: BTreeSet<&str> = configs.iter().map(|(n, _)| n.as_str()).collect();
    for expected in [
        "config.example.toml",
        "deploy/docker/gatehouse.toml",
        "deploy/kubernetes/configmap.yaml",
        "deploy/compose/gatehouse.toml",
        "deploy/nginx/gatehouse.toml",
        "deploy/systemd/gatehouse.toml",
    ] {
        assert!(
            names.contains(expected),
            "{expected} is missing; found {names:?}"
        );
    }
    let secrets = [
        ("GH_CLIENT_ID", CLIENT_ID),
        ("GH_CLIENT_SECRET", CLIENT_SECRET),
        ("GATEHOUSE_SESSION_SECRET", SESSION_SECRET),
    ];
    for (name, path) in &configs {
        let mut env = secrets.to_vec();
        if NEEDS_GITHUB_USERS.contains(&name.as_str()) {
            // Fail closed: without GITHUB_USERS nobody is admitted, and check-config says so.
            let out = check_config(path, &env);
            let stderr = text(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{name} without GITHUB_USERS");
            assert!(stderr.contains("access.allowed_users"), "{name}: {stderr}");
            env.push(("GITHUB_USERS", "octocat, monalisa"));
        }
        let out = check_config(path, &env);
        let stdout = text(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{name} should pass check-config\nstdout:\n{stdout}\nstderr:\n{}",
            text(&out.stderr)
        );
        assert!(stdout.contains("is valid"), "{name}: {stdout}");
        // The effective config is printed with secrets masked.
        for secret in [CLIENT_SECRET, SESSION_SECRET] {
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

#[test]
fn config_example_sets_every_key_and_the_readme_documents_it() {
    let example: toml::Table = toml::from_str(&read("config.example.toml")).unwrap();
    let readme = read("README.md");
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
            readme.contains(&format!("[{section}]")) && readme.contains(&format!("`{key}`")),
            "README.md's config reference lacks [{section}] `{key}`"
        );
    }
    // Optional keys are shown commented out in the example and documented in the README.
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
        assert!(readme.contains(word), "README.md lacks {word}");
    }
    for key in ["cookie_secure", "cookie_domain"] {
        assert!(example_text.contains(&format!("# {key} = ")), "{key}");
        assert!(readme.contains(&format!("`{key}`")), "{key}");
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
        "GITHUB_USERS",
        "GATEHOUSE_CONFIG",
        "RUST_LOG",
        "deploy/nginx/",
    ] {
        assert!(readme.contains(needle), "README.md should mention {needle}");
    }
    for dir in ["kubernetes", "compose", "nginx", "systemd", "docker"] {
        assert!(
            root().join("deploy").join(dir).join("README.md").is_file(),
            "deploy/{dir}/README.md"
        );
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
        "cargo build --release --locked",
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

#[test]
fn kubernetes_compose_and_systemd_agree_with_the_binary() {
    let deployment = read("deploy/kubernetes/deployment.yaml");
    for needle in [
        "path: /ping",
        "path: /ready",
        "containerPort: 4180",
        "secretRef:",
        "mountPath: /etc/gatehouse",
        "\"--config\", \"/etc/gatehouse/gatehouse.toml\"",
    ] {
        assert!(
            deployment.contains(needle),
            "deployment.yaml lacks {needle}"
        );
    }
    let secret = read("deploy/kubernetes/secret.yaml");
    let compose_env = read("deploy/compose/.env.example");
    let systemd_env = read("deploy/systemd/env.example");
    for var in [
        "GH_CLIENT_ID",
        "GH_CLIENT_SECRET",
        "GATEHOUSE_SESSION_SECRET",
    ] {
        assert!(
            secret.contains(&format!("{var}:")),
            "secret.yaml lacks {var}"
        );
        assert!(
            compose_env.contains(&format!("{var}=")),
            ".env.example: {var}"
        );
        assert!(
            systemd_env.contains(&format!("{var}=")),
            "env.example: {var}"
        );
    }
    // Every manifest in the directory is applied by the kustomization, and only those.
    let kustomization = read("deploy/kubernetes/kustomization.yaml");
    for entry in std::fs::read_dir(root().join("deploy/kubernetes")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if name.ends_with(".yaml") && name != "kustomization.yaml" {
            assert!(
                kustomization.contains(&format!("- {name}")),
                "kustomization.yaml does not list {name}"
            );
        }
    }
    let compose = read("deploy/compose/docker-compose.yml");
    for needle in [
        "\"4180:4180\"",
        "./gatehouse.toml:/etc/gatehouse/gatehouse.toml:ro",
        "network_mode: \"service:gatehouse\"",
        "env_file: .env",
    ] {
        assert!(
            compose.contains(needle),
            "docker-compose.yml lacks {needle}"
        );
    }
    let unit = read("deploy/systemd/gatehouse.service");
    for needle in [
        "ExecStart=/usr/local/bin/gatehouse run --config /etc/gatehouse/gatehouse.toml",
        "EnvironmentFile=/etc/gatehouse/env",
        "DynamicUser=yes",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
    ] {
        assert!(unit.contains(needle), "gatehouse.service lacks {needle}");
    }
}

// ---- nginx -------------------------------------------------------------------------------

fn nginx_available() -> bool {
    if Path::new(NGINX).exists() {
        true
    } else {
        println!("note: {NGINX} not found; skipping the nginx checks");
        false
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

/// deploy/nginx/nginx.conf with its log, pid and listen paths moved into `dir`, and the two
/// upstreams pointed at the given ports.
fn adapted_nginx_conf(dir: &Path, listen: u16, gate: u16, app: u16) -> PathBuf {
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let what = "deploy/nginx/nginx.conf";
    let mut conf = read(what);
    assert!(conf.contains("auth_request /oauth2/auth;"), "{what}");
    for header in ["user", "email", "groups"] {
        assert!(
            conf.contains(&format!("$upstream_http_x_auth_request_{header};")),
            "{what} should pass X-Auth-Request-{header}"
        );
    }
    conf = conf.replace("/var/log/nginx/", &format!("{}/", logs.display()));
    conf = replace_once(
        &conf,
        "pid /run/nginx.pid;",
        &format!("pid {}/nginx.pid;", dir.display()),
        what,
    );
    conf = replace_once(
        &conf,
        "listen 80;",
        &format!("listen 127.0.0.1:{listen};"),
        what,
    );
    conf = replace_once(
        &conf,
        "server 127.0.0.1:4180;",
        &format!("server 127.0.0.1:{gate};"),
        what,
    );
    conf = replace_once(
        &conf,
        "server 127.0.0.1:8080;",
        &format!("server 127.0.0.1:{app};"),
        what,
    );
    // Temporary files of a test run stay in the scratch directory.
    let temp: String = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]
        .iter()
        .map(|t| format!("    {t}_temp_path {}/{t}_temp;\n", dir.display()))
        .collect();
    conf = replace_once(&conf, "http {\n", &format!("http {{\n{temp}"), what);
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

#[test]
fn nginx_conf_passes_nginx_t() {
    if !nginx_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let conf = adapted_nginx_conf(dir.path(), free_port(), 4180, 8080);
    let out = nginx_command(dir.path(), &conf)
        .arg("-t")
        .output()
        .expect("run nginx -t");
    assert!(
        out.status.success(),
        "nginx -t failed:\n{}{}",
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
/// the callback sends the browser.
async fn sign_in_through_nginx(
    client: &reqwest::Client,
    site: &str,
    mock: SocketAddr,
    path: &str,
    login: &str,
) -> String {
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
    location(&landed)
}

/// The shipped nginx.conf and deploy/nginx/gatehouse.toml, run for real: nginx on a free port,
/// `gatehouse run` beside it, the mock GitHub, and the demo app (which echoes its headers).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_auth_request_signs_in_and_passes_identity() {
    if !nginx_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (nginx_port, gate_port) = (free_port(), free_port());
    let site = format!("http://127.0.0.1:{nginx_port}");

    let app_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let app_port = app_listener.local_addr().unwrap().port();
    tokio::spawn(gatehouse::mock::serve_demo_upstream(app_listener));

    let mock = gatehouse::mock::MockGithub::demo();
    mock.add_app(gatehouse::mock::MockApp {
        client_id: CLIENT_ID.into(),
        client_secret: CLIENT_SECRET.into(),
        callback_url: format!("{site}/oauth2/callback"),
    });
    let mock_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mock_addr = mock_listener.local_addr().unwrap();
    tokio::spawn(mock.serve(mock_listener));

    // deploy/nginx/gatehouse.toml with test addresses and the mock GitHub.
    let what = "deploy/nginx/gatehouse.toml";
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
    let config_path = dir.path().join("gatehouse.toml");
    std::fs::write(&config_path, config).unwrap();
    let gate_log = dir.path().join("gatehouse.log");
    let _gate = KillOnDrop(
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

    let conf = adapted_nginx_conf(dir.path(), nginx_port, gate_port, app_port);
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

    // The forward-auth endpoint is internal to nginx.
    let outside = common::plain_client()
        .get(format!("{site}/oauth2/auth"))
        .send()
        .await
        .unwrap();
    assert_eq!(outside.status(), 404, "/oauth2/auth must not be reachable");

    // octocat (allowed_users) signs in and lands where they started.
    let octocat = browser();
    let landed = sign_in_through_nginx(
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
    let echoed: serde_json::Value = echoed.json().await.unwrap();
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
    let roles: serde_json::Value = octocat
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
