//! The `gatehouse` command line. Parsing and wiring only; everything else is in the library
//! and the crates it ships with (the mock GitHub, the CLI client). `gatehouse demo`'s wiring is
//! in demo.rs.

mod demo;

use anyhow::Context;
use base64::Engine;
use clap::{Parser, Subcommand};
use gatehouse::{config, gate, runtime::Runtime};
use gatehouse_mock_github as mock;
use rand::RngCore;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

/// mimalloc rather than glibc malloc: about 20% less CPU per proxied request in
/// `bench/run.sh`, for about 10–15 MB more peak RSS (bench/README.md, "Where a request's time
/// goes").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "gatehouse",
    version,
    about = "GitHub sign-in in front of any web app, on Pingora"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve (config from --config, $GATEHOUSE_CONFIG, or ./gatehouse.toml).
    Run {
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Take the listening sockets from the running Gatehouse (send it SIGQUIT within 6 s) over
        /// server.upgrade_sock: an in-place upgrade without a refused connection.
        #[arg(long)]
        upgrade: bool,
    },
    /// Zero-setup demo: mock GitHub + demo app + the gate, on loopback.
    Demo {
        #[arg(long, default_value = "127.0.0.1:4180")]
        listen: SocketAddr,
    },
    /// Validate a config and print it with secrets masked; exit 1 listing every problem.
    CheckConfig {
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Instead of printing the config, say how it decides one request (a dry run).
        #[arg(long, requires = "path")]
        explain: bool,
        #[command(flatten)]
        question: ExplainArgs,
    },
    /// Create or update the PostgreSQL schema of `session.postgres_url` and exit (to run ahead
    /// of a deploy; the gate also does it at start).
    Migrate {
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Print a fresh session secret (base64 of 32 random bytes).
    GenSecret,
    /// Print a new random API key (stdout, first line) and its `[[api_keys]]` entry, which holds
    /// only a salted hash of the key.
    HashKey {
        /// The key's name: the user name of its HTTP Basic credentials.
        #[arg(long)]
        name: String,
        /// Roles the key grants.
        #[arg(long, value_delimiter = ',')]
        roles: Vec<String>,
    },
    /// A local fake GitHub (OAuth + the REST calls Gatehouse uses) for your own CI.
    MockGithub {
        /// Users, orgs and teams (TOML); the demo data when left out.
        #[arg(long)]
        users: Option<PathBuf>,
        #[arg(long, default_value = "127.0.0.1:4181")]
        listen: SocketAddr,
        /// Where the REST API lives: "/api/v3" like GitHub Enterprise, "" like api.github.com.
        #[arg(long, default_value = "/api/v3")]
        api_prefix: String,
        #[arg(long, default_value = "mock-client-id")]
        client_id: String,
        #[arg(long, default_value = "mock-client-secret")]
        client_secret: String,
        #[arg(long, default_value = "http://127.0.0.1:4180/oauth2/callback")]
        callback_url: String,
    },
    /// Sign in to a gate from the command line (browser + loopback redirect, PKCE).
    Login {
        /// The gate's URL, e.g. https://app.example.com.
        #[arg(long)]
        url: String,
        /// Only print the sign-in URL (also: env GATEHOUSE_NO_BROWSER).
        #[arg(long)]
        no_browser: bool,
        /// How long to wait for the browser to finish signing in.
        #[arg(long, default_value = "120s", value_parser = gatehouse_client::parse_timeout)]
        timeout: std::time::Duration,
    },
    /// Print a valid access token for a gate (refreshing it when needed).
    Token {
        #[arg(long)]
        url: String,
    },
    /// Exit 0 when a running Gatehouse answers 200 on /ping, else 1 with the reason (for
    /// Docker's HEALTHCHECK in the shell-less image).
    Healthcheck {
        #[arg(long, env = "GATEHOUSE_HEALTHCHECK_URL", default_value = gatehouse::healthcheck::DEFAULT_URL)]
        url: String,
        #[arg(long, default_value = "2s", value_parser = gatehouse_client::parse_timeout)]
        timeout: std::time::Duration,
    },
}

/// The request `check-config --explain` asks about.
#[derive(clap::Args)]
struct ExplainArgs {
    /// GitHub login making the request; leave out for an anonymous visitor.
    #[arg(long)]
    user: Option<String>,
    /// Numeric GitHub id of --user (for access.allowed_user_ids).
    #[arg(long)]
    user_id: Option<u64>,
    /// Orgs --user belongs to, comma-separated.
    #[arg(long, value_delimiter = ',')]
    orgs: Vec<String>,
    /// Teams --user belongs to, as org/team-slug, comma-separated.
    #[arg(long, value_delimiter = ',')]
    teams: Vec<String>,
    /// Take --user's id, orgs and teams from a mock GitHub users file (`demo`: the embedded
    /// demo data) instead of --user-id/--orgs/--teams.
    #[arg(long, requires = "user")]
    mock_users: Option<PathBuf>,
    /// Request path, e.g. /admin/x.
    #[arg(long)]
    path: Option<String>,
    #[arg(long, default_value = "GET")]
    method: String,
    /// Host the request is for (for rules with `host`).
    #[arg(long)]
    host: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run { config, upgrade } => run(config, upgrade),
        Command::Demo { listen } => {
            init_logging("info");
            demo::run(listen).map_err(anyhow::Error::from)
        }
        Command::CheckConfig {
            config,
            explain,
            question,
        } => return check_config(config, explain.then_some(question)),
        Command::HashKey { name, roles } => {
            if !gatehouse::tokens::api_keys::is_key_name(&name) {
                eprintln!(
                    "--name: use letters, digits, `-`, `_` or `.` (it is the Basic-auth user name)"
                );
                return ExitCode::from(2);
            }
            let (key, hash) = gatehouse::tokens::api_keys::new_key();
            let roles: Vec<String> = roles.iter().map(|r| format!("{:?}", r.trim())).collect();
            println!("{key}");
            eprintln!(
                "# The key above goes to the client (HTTP Basic {name}:KEY); it is shown only now."
            );
            eprintln!("# Add this entry to the config; it holds only a salted hash of the key:");
            println!(
                "\n[[api_keys]]\nname = {name:?}\nhash = {hash:?}\nroles = [{}]",
                roles.join(", ")
            );
            Ok(())
        }
        Command::Migrate { config } => migrate(config),
        Command::GenSecret => {
            let mut key = [0u8; 32];
            rand::rng().fill_bytes(&mut key);
            println!("{}", base64::engine::general_purpose::STANDARD.encode(key));
            Ok(())
        }
        Command::MockGithub {
            users,
            listen,
            api_prefix,
            client_id,
            client_secret,
            callback_url,
        } => mock_github(
            users,
            listen,
            api_prefix,
            mock::github::MockApp {
                client_id,
                client_secret,
                callback_url,
            },
        ),
        Command::Login {
            url,
            no_browser,
            timeout,
        } => gatehouse_client::login(&url, no_browser, timeout).map_err(anyhow::Error::from),
        Command::Healthcheck { url, timeout } => {
            return match gatehouse::healthcheck::check(&url, timeout) {
                Ok(()) => ExitCode::SUCCESS,
                Err(reason) => {
                    let reason = reason.replace('\n', " ");
                    eprintln!(
                        "gatehouse healthcheck: {}",
                        gatehouse::observe::escape::terminal_text(&reason)
                    );
                    ExitCode::FAILURE
                }
            };
        }
        Command::Token { url } => gatehouse_client::token(&url)
            .map(|token| println!("{token}"))
            .map_err(anyhow::Error::from),
    };
    // `run` and `demo` return once the server stops: write the access lines still waiting.
    gatehouse::observe::logs::flush();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Error texts can quote what a server or a browser sent.
            let text = format!("{e:#}");
            eprintln!(
                "gatehouse: {}",
                gatehouse::observe::escape::terminal_text(&text)
            );
            ExitCode::FAILURE
        }
    }
}

fn config_path(arg: Option<PathBuf>) -> PathBuf {
    arg.unwrap_or_else(|| PathBuf::from(config::default_config_path()))
}

fn init_logging(default_level: &str) {
    gatehouse::observe::logs::init(default_level, Default::default());
}

fn run(config: Option<PathBuf>, upgrade: bool) -> anyhow::Result<()> {
    let path = config_path(config);
    let settings = gatehouse::runtime::load_file(&path)?;
    gatehouse::observe::logs::init(&settings.log_level, settings.log_format);
    if let Some(options) = settings.session.store.postgres.clone() {
        // Migrate before serving; if the database is down, the store tries again before its
        // first use (the gate reports not-ready meanwhile).
        if let Err(e) = migrate_postgres(options) {
            tracing::warn!(error = %e, "PostgreSQL schema not migrated at start; will try again");
        }
    }
    let rt = Runtime::new(settings)?;
    let start = if upgrade {
        gate::Start::Upgrade
    } else {
        gate::Start::Fresh
    };
    // SIGHUP reads this file again.
    gate::serve_reloading(Arc::new(rt), path, start)?;
    Ok(())
}

/// `gatehouse migrate`: the schema at this binary's version, then exit.
fn migrate(config: Option<PathBuf>) -> anyhow::Result<()> {
    let path = config_path(config);
    let settings = gatehouse::runtime::load_file(&path)?;
    gatehouse::observe::logs::init(&settings.log_level, settings.log_format);
    let options = settings.session.store.postgres.clone().context(
        "session.postgres_url (or GATEHOUSE_POSTGRES_URL) is not set: nothing to migrate",
    )?;
    let applied = migrate_postgres(options)?;
    match applied.applied.last() {
        Some(to) => println!("migrated the schema from version {} to {to}", applied.from),
        None => println!("the schema is at version {}: nothing to do", applied.from),
    }
    Ok(())
}

fn migrate_postgres(
    mut options: config::PostgresOptions,
) -> anyhow::Result<gatehouse::store::postgres::migrations::Applied> {
    gatehouse::install_crypto_provider();
    // Another replica may be migrating: wait longer than a request would.
    options.timeout = options.timeout.max(std::time::Duration::from_secs(10));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let store = gatehouse::store::PostgresStore::new(options)?;
        Ok(store.migrate().await?)
    })
}

fn check_config(config: Option<PathBuf>, explain: Option<ExplainArgs>) -> ExitCode {
    let path = config_path(config);
    let loaded = gatehouse::runtime::load_file(&path);
    if let Ok(settings) = &loaded {
        for w in &settings.warnings {
            eprintln!("warning: {w}");
        }
    }
    match loaded {
        Ok(settings) if explain.is_some() => {
            let Some(q) = explain else {
                return ExitCode::SUCCESS;
            };
            let Ok(method) = http::Method::from_bytes(q.method.to_ascii_uppercase().as_bytes())
            else {
                eprintln!("--method: `{}` is not an HTTP method", q.method);
                return ExitCode::from(2);
            };
            let mut user_id = q.user_id;
            let mut groups: Vec<String> = q
                .orgs
                .iter()
                .chain(&q.teams)
                .map(|g| g.trim().to_string())
                .collect();
            if let (Some(file), Some(login)) = (&q.mock_users, &q.user) {
                match explain_memberships(file, login) {
                    Ok((id, found)) => {
                        user_id = Some(id);
                        groups = found;
                    }
                    Err(e) => {
                        eprintln!("--mock-users: {e:#}");
                        return ExitCode::from(2);
                    }
                }
            }
            let question = gatehouse::policy::explain::Question {
                user: q.user.as_deref(),
                user_id,
                groups,
                method,
                host: q.host.as_deref(),
                path: q.path.as_deref().unwrap_or("/"),
            };
            // load_file compiled these rules already; this cannot fail.
            let Ok(policy) = gatehouse::policy::from_config(&settings.config) else {
                return ExitCode::FAILURE;
            };
            print!(
                "{}",
                gatehouse::policy::explain::explain(&settings, &policy, &question)
            );
            ExitCode::SUCCESS
        }
        Ok(settings) => {
            // Secrets are masked by their type; passwords inside URLs here.
            let shown = toml::Value::try_from(&settings.config).map(|mut v| {
                config::redact_toml(&mut v);
                v
            });
            match shown.and_then(|v| toml::to_string_pretty(&v)) {
                Ok(text) => println!(
                    "# effective config of {} (secrets hidden)\n{text}",
                    path.display()
                ),
                Err(e) => println!("# (cannot print the effective config: {e})"),
            }
            println!("# OK: {} is valid", path.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprint!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// `--mock-users FILE|demo`: the id and memberships the mock GitHub would report for `login`.
fn explain_memberships(file: &Path, login: &str) -> anyhow::Result<(u64, Vec<String>)> {
    let mock = if file.as_os_str() == "demo" {
        mock::github::MockGithub::demo()
    } else {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        mock::github::MockGithub::from_toml(&text)?
    };
    mock.memberships_of(login)
        .with_context(|| format!("no user `{login}` in {}", file.display()))
}

fn mock_github(
    users: Option<PathBuf>,
    listen: SocketAddr,
    api_prefix: String,
    rt: mock::github::MockApp,
) -> anyhow::Result<()> {
    init_logging("info");
    let mock = match users {
        Some(path) => {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("--users: cannot read {}", path.display()))?;
            mock::github::MockGithub::from_toml(&text)
                .with_context(|| format!("--users: {} is not a valid users file", path.display()))?
        }
        None => mock::github::MockGithub::demo(),
    }
    .with_api_prefix(&api_prefix);
    mock.add_app(rt.clone());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("--listen: cannot listen on {listen}"))?;
        let addr = listener.local_addr()?;
        println!(
            "mock GitHub on http://{addr}\n  github.web_url = \"http://{addr}\"\n  github.api_url = \"http://{addr}{api_prefix}\"\n  client_id = \"{}\"  callback_url = \"{}\"",
            rt.client_id, rt.callback_url
        );
        mock.serve(listener).await.context("mock GitHub stopped")
    })
}
