//! The configuration reference: one description per config key, rendered as
//! `docs/src/reference/config.md`.
//!
//! The tests below hold the descriptions to the parser in both directions, so the page cannot
//! drift from the code:
//! - the page is exactly what [`render`] makes (`GATEHOUSE_BLESS=1` rewrites it);
//! - every key the parser accepts is described: the set of accepted keys of each section is
//!   read from serde's own "unknown field, expected one of …" answer, section by section;
//! - every described key is accepted, with its example value, and every key marked required is
//!   refused when missing;
//! - defaults are not written here but read from the parser (an empty section deserialized and
//!   serialized back), so they cannot disagree with it;
//! - the environment fallbacks are the ones `overlay_env` reads, each changing exactly its key;
//! - every TOML snippet of `config.example.toml` (commented-out keys included), the README and
//!   the manual is accepted by the parser.

use super::schema::Config;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// Where the generated page lives, from the repository root.
pub const PAGE: &str = "docs/src/reference/config.md";

/// The command that rewrites the page.
pub const REGENERATE: &str = "GATEHOUSE_BLESS=1 cargo test --lib config::reference";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    /// `[section]`: a table of keys.
    Section,
    /// `[[section]]`: an array of tables, each with the same keys.
    TableArray,
    /// `[section.NAME]`: a table of tables named by the user, each with the same keys.
    Map,
    /// A value.
    Value,
}

/// One config key (or section) as the reference describes it.
#[derive(Clone, Copy, Debug)]
struct Key {
    /// The dotted path: `server.listen`; entries of a `[[…]]` section are written without an
    /// index (`routes.name`), the name of a `[roles.NAME]` table as `NAME`.
    path: &'static str,
    kind: Kind,
    /// What the value is, for people: `string`, `duration`, `list of strings`, …
    ty: &'static str,
    /// A valid TOML value for the key (values only).
    example: &'static str,
    /// The parser refuses an entry without it.
    required: bool,
    /// Said after the parser's default, e.g. `(then GH_CLIENT_ID)` comes from `env`.
    default_note: &'static str,
    /// The environment variable the key falls back to, and how.
    env: Option<(&'static str, &'static str)>,
    /// Markdown: one table cell for a value; the introduction for a section.
    doc: &'static str,
    /// A section whose entries take the same keys as another (`routes.rules` and `rules`).
    same_as: Option<&'static str>,
}

const VALUE: Key = Key {
    path: "",
    kind: Kind::Value,
    ty: "string",
    example: "\"x\"",
    required: false,
    default_note: "",
    env: None,
    doc: "",
    same_as: None,
};

const SECTION: Key = Key {
    kind: Kind::Section,
    ty: "table",
    example: "",
    ..VALUE
};

const TABLE_ARRAY: Key = Key {
    kind: Kind::TableArray,
    ty: "array of tables",
    example: "",
    ..VALUE
};

const DURATION: Key = Key {
    ty: "duration",
    example: "\"30s\"",
    ..VALUE
};

const BOOL: Key = Key {
    ty: "boolean",
    example: "true",
    ..VALUE
};

const STRINGS: Key = Key {
    ty: "list of strings",
    example: "[\"a\"]",
    ..VALUE
};

/// Every key, in the order of the page. Parents come before their keys.
const KEYS: &[Key] = &[
    // ---- [server] ----------------------------------------------------------------------
    Key {
        path: "server",
        doc: "Where Gatehouse listens and how it is reached.",
        ..SECTION
    },
    Key {
        path: "server.listen",
        example: "\"0.0.0.0:4180\"",
        doc: "address to listen on (`IP:PORT`, not a URL); `\"0.0.0.0:4180\"` in a container. \
              Read at start only.",
        ..VALUE
    },
    Key {
        path: "server.public_url",
        example: "\"https://app.example.com\"",
        doc: "the URL people open: scheme, host, port, no path. GitHub sends people back to \
              `public_url` + `/oauth2/callback` (register exactly that URL). `https` makes the \
              session cookie `Secure`.",
        ..VALUE
    },
    Key {
        path: "server.proxy_prefix",
        example: "\"/oauth2\"",
        doc: "path prefix of Gatehouse's own endpoints (letters, digits, `-_.`); oauth2-proxy \
              calls it `proxy_prefix` too. `gatehouse login` needs the default.",
        ..VALUE
    },
    Key {
        path: "server.threads",
        ty: "integer",
        example: "2",
        doc: "worker threads; `0` means one per CPU. Read at start only.",
        ..VALUE
    },
    Key {
        path: "server.trusted_proxies",
        example: "[\"10.0.0.0/8\", \"127.0.0.1/32\"]",
        doc: "proxies in front of Gatehouse, as CIDRs or addresses. Only when the TCP peer is \
              one of them are its `X-Forwarded-For`, `-Proto` and `-Host` believed: the client \
              is then the right-most `X-Forwarded-For` address that is not a trusted proxy, and \
              the upstream gets the proxy's `X-Forwarded-For` with the proxy appended (never \
              replaced) and its `-Proto`/`-Host`. From anyone else those headers are replaced, \
              so client addresses in rate limits and logs cannot be forged. A catch-all entry \
              (`0.0.0.0/0`, `::/0`) loads with a warning (in the log and in `check-config`): it \
              lets every client pick its own address.",
        ..STRINGS
    },
    Key {
        path: "server.max_header_bytes",
        ty: "integer",
        example: "65536",
        doc: "requests whose header fields add up to more bytes than this get 431 (page or \
              JSON); so do cookies over 16 KiB. Pingora itself answers 400 past 1 MiB or 256 \
              fields. At least `4096`.",
        ..VALUE
    },
    Key {
        path: "server.client_timeout",
        doc: "how long a client may stall while sending a request's header before the \
              connection is closed (whole seconds, at least `1s`); also how long an idle \
              keep-alive connection stays open. Read at start only.",
        ..DURATION
    },
    Key {
        path: "server.admin_listen",
        example: "\"127.0.0.1:9180\"",
        doc: "`IP:PORT` of the admin listener: Prometheus metrics at `GET /metrics` (see \
              [Metrics](metrics.md)); never served on `listen`. Keep it on loopback or a \
              private network: metrics are not behind the gate. Read at start only.",
        ..VALUE
    },
    Key {
        path: "server.tls_cert",
        example: "\"/etc/gatehouse/tls/fullchain.pem\"",
        doc: "PEM certificate chain (server certificate first, then intermediates). With \
              `tls_key`, `listen` serves HTTPS, offering HTTP/2 (clients without it get \
              HTTP/1.1); `public_url` must then be `https`. Checked by `check-config` \
              (readable, a matching key). Read at start only. See [TLS](../operations/tls.md).",
        ..VALUE
    },
    Key {
        path: "server.tls_key",
        example: "\"/etc/gatehouse/tls/privkey.pem\"",
        doc: "PEM private key of `tls_cert` (PKCS#8, PKCS#1 or SEC1). Read at start only.",
        ..VALUE
    },
    Key {
        path: "server.hsts",
        example: "\"max-age=31536000; includeSubDomains\"",
        doc: "with TLS: the `Strict-Transport-Security` value sent with every response, \
              Gatehouse's own and the app's, e.g. `\"max-age=31536000; includeSubDomains\"` \
              (`max-age` required)",
        ..VALUE
    },
    Key {
        path: "server.http_redirect_listen",
        example: "\"0.0.0.0:80\"",
        doc: "with TLS: `IP:PORT` of a plain-http listener answering every request with 308 to \
              the https `public_url` (same path and query; the request's `Host` is ignored), \
              e.g. `\"0.0.0.0:80\"`. Read at start only.",
        ..VALUE
    },
    Key {
        path: "server.shutdown_grace",
        doc: "on SIGTERM, how long requests in flight may take to finish (whole seconds); \
              Gatehouse exits 0 as soon as none is left, and ends the rest when the time is up \
              (see [Reloads and shutdown](../operations/reloads.md)). Read at start only.",
        ..DURATION
    },
    Key {
        path: "server.h2c",
        example: "true",
        doc: "accept HTTP/2 without TLS (h2c, \"prior knowledge\": the client starts with \
              HTTP/2's preface, as `curl --http2-prior-knowledge`, gRPC clients and service \
              meshes do) on the plain listener, besides HTTP/1.1 (`Upgrade: h2c` is not \
              supported). Off: such a client is answered 400 and a warning naming this key is \
              logged. Not with `tls_cert` (over TLS, HTTP/2 is offered by ALPN). While a \
              connection's first 24 bytes are awaited (to tell the two apart), \
              `server.client_timeout` does not apply yet. Read at start only.",
        ..BOOL
    },
    Key {
        path: "server.upgrade_sock",
        example: "\"/run/gatehouse/upgrade.sock\"",
        doc: "Unix socket over which `gatehouse run --upgrade` takes the listening sockets \
              from the running Gatehouse, which hands them over on `SIGQUIT` (old and new \
              process must name the same path). Its directory must exist, belong to \
              Gatehouse's user and be writable by no one else: whoever listens there receives \
              the listeners (systemd: `RuntimeDirectory=gatehouse`, \
              `RuntimeDirectoryMode=0700`). An absolute path of at most 107 bytes. Used only by \
              upgrades; see [Upgrades and reloads](../operations/upgrades-and-reloads.md). \
              Read at start only.",
        ..VALUE
    },
    // ---- [upstream] --------------------------------------------------------------------
    Key {
        path: "upstream",
        doc: "The app behind the gate (with `[[routes]]`: the app for requests no route takes).",
        ..SECTION
    },
    Key {
        path: "upstream.url",
        example: "\"http://127.0.0.1:8080\"",
        default_note: "`http://127.0.0.1:8080` when there are no `[[routes]]`",
        doc: "the app: `http` or `https`, host and port, no path (requests keep their own \
              path). The host name is resolved once, at start. With `[[routes]]` and no `url`, \
              requests no route takes get 404.",
        ..VALUE
    },
    Key {
        path: "upstream.connect_timeout",
        doc: "time to connect to the app (not zero)",
        ..DURATION
    },
    Key {
        path: "upstream.read_timeout",
        doc: "time to wait for each read from the app (not zero); a websocket silent both ways \
              for 60 s, or this if shorter, is closed",
        ..DURATION
    },
    Key {
        path: "upstream.jwt_assertion",
        doc: "send `X-Gatehouse-Jwt-Assertion`, an ES256 JWT of the identity, with every \
              proxied request ([signed identity](../concepts/signed-identity.md)); `false` \
              turns it off and empties the JWKS",
        ..BOOL
    },
    Key {
        path: "upstream.name",
        example: "\"my-app\"",
        default_note: "the upstream URL",
        doc: "the assertion's `aud`; unset: `url` without a trailing slash, e.g. \
              `\"http://127.0.0.1:8080\"`",
        ..VALUE
    },
    Key {
        path: "upstream.assertion_key_file",
        example: "\"/etc/gatehouse/assertion.pem\"",
        default_note: "a new key at every start",
        doc: "PEM of an EC P-256 private key for the assertion (PKCS#8 `BEGIN PRIVATE KEY` or \
              SEC1 `BEGIN EC PRIVATE KEY`); unset: a new key at every start (logged as a \
              warning). Give every replica the same file. One key; to rotate, use \
              `assertion_key_files` instead (not both).",
        ..VALUE
    },
    Key {
        path: "upstream.assertion_key_files",
        example: "[\"/etc/gatehouse/assertion-new.pem\", \"/etc/gatehouse/assertion.pem\"]",
        default_note: "the one key of `assertion_key_file`",
        doc: "several assertion keys (PEM, as for `assertion_key_file`): the **first** signs, \
              all are published in `/.well-known/jwks.json` with their `kid`, so apps learn a \
              new key before it signs ([rotation](../operations/key-rotation.md#the-assertion-key))",
        ..STRINGS
    },
    Key {
        path: "upstream.ca_file",
        example: "\"/etc/gatehouse/internal-ca.pem\"",
        default_note: "the system's roots",
        doc: "PEM CA bundle to verify an `https` upstream with (SNI is the URL's host)",
        ..VALUE
    },
    Key {
        path: "upstream.h2c",
        example: "true",
        doc: "speak HTTP/2 without TLS (prior knowledge) to the `http://` upstream, for an app \
              that asks for it, e.g. a gRPC server; trailers and streaming bodies pass both \
              ways. Default: HTTP/1.1. Not with an https upstream.",
        ..BOOL
    },
    // ---- [[routes]] --------------------------------------------------------------------
    Key {
        path: "routes",
        doc: "Several apps behind one gate. Each entry sends some requests to its own app. A \
              route matches by `host` (exact, or `*.example.com`; port ignored) and/or \
              `path_prefix` (`/grafana` takes `/grafana` and `/grafana/…`, not `/grafanax`; \
              ASCII case ignored). The most specific host wins, then the longest prefix; \
              requests no route takes go to `[upstream]` (or get 404 when it has no `url`). \
              Paths are not rewritten: the app sees the full path. See the \
              [gateway guide](../guides/gateway.md).",
        ..TABLE_ARRAY
    },
    Key {
        path: "routes.name",
        example: "\"grafana\"",
        default_note: "host + prefix",
        doc: "shown in logs, metrics (`route` label) and `check-config --explain`; the `aud` of \
              the route's `X-Gatehouse-Jwt-Assertion`",
        ..VALUE
    },
    Key {
        path: "routes.host",
        example: "\"wiki.example.com\"",
        default_note: "any host",
        doc: "`app.example.com` or `*.example.com`",
        ..VALUE
    },
    Key {
        path: "routes.path_prefix",
        example: "\"/grafana\"",
        default_note: "`/`",
        doc: "a plain path (no wildcards, no `.`/`..` segments): this path and everything under it",
        ..VALUE
    },
    Key {
        path: "routes.upstream",
        example: "\"http://127.0.0.1:3000\"",
        required: true,
        doc: "the app's URL, as `[upstream] url`",
        ..VALUE
    },
    Key {
        path: "routes.connect_timeout",
        default_note: "`[upstream]`'s",
        doc: "time to connect to this app",
        ..DURATION
    },
    Key {
        path: "routes.read_timeout",
        default_note: "`[upstream]`'s",
        doc: "time to wait for each read from this app",
        ..DURATION
    },
    Key {
        path: "routes.ca_file",
        example: "\"/etc/gatehouse/internal-ca.pem\"",
        default_note: "`[upstream]`'s",
        doc: "CA bundle for an `https` app",
        ..VALUE
    },
    Key {
        path: "routes.h2c",
        example: "true",
        doc: "as `upstream.h2c`, for this route's upstream (not inherited from `[upstream]`).",
        ..BOOL
    },
    Key {
        path: "routes.allowed_users",
        default_note: "`[access]`'s",
        doc: "when any of `allowed_users`, `allowed_orgs`, `allowed_teams` is set, they replace \
              `[access]`'s allow-lists on this route",
        ..STRINGS
    },
    Key {
        path: "routes.allowed_orgs",
        default_note: "`[access]`'s",
        doc: "as `allowed_users`",
        ..STRINGS
    },
    Key {
        path: "routes.allowed_teams",
        example: "[\"databio/core\"]",
        default_note: "`[access]`'s",
        doc: "as `allowed_users`",
        ..STRINGS
    },
    Key {
        path: "routes.rules",
        same_as: Some("rules"),
        doc: "Rules checked before the top-level `[[rules]]`, for requests on this route; the \
              same keys as [`[[rules]]`](#rules).",
        ..TABLE_ARRAY
    },
    // ---- [github] ----------------------------------------------------------------------
    Key {
        path: "github",
        doc: "The GitHub OAuth app ([GitHub setup](../github/oauth-app.md)) and GitHub's \
              addresses.",
        ..SECTION
    },
    Key {
        path: "github.client_id",
        example: "\"Iv1.0123456789abcdef\"",
        env: Some(("GH_CLIENT_ID", "when `github.client_id` is empty")),
        doc: "the OAuth app's client id",
        ..VALUE
    },
    Key {
        path: "github.client_secret",
        ty: "secret string",
        example: "\"${GH_CLIENT_SECRET}\"",
        env: Some(("GH_CLIENT_SECRET", "when `github.client_secret` is empty")),
        doc: "the OAuth app's client secret; never printed",
        ..VALUE
    },
    Key {
        path: "github.client_secret_previous",
        ty: "secret string",
        example: "\"${GH_CLIENT_SECRET_OLD:-}\"",
        doc: "the app's other client secret while it is rotated (GitHub keeps both valid until \
              one is deleted): a code exchange GitHub refuses with `incorrect_client_credentials` \
              is tried once with this one (and so is a token revocation at sign-out that GitHub \
              answers 404); `gatehouse_github_client_secret_total{secret}` counts which one \
              GitHub took for sign-ins ([rotation](../operations/key-rotation.md#the-github-client-secret))",
        ..VALUE
    },
    Key {
        path: "github.web_url",
        example: "\"https://ghe.example.com\"",
        doc: "GitHub's web address (Enterprise: `https://ghe.example.com`)",
        ..VALUE
    },
    Key {
        path: "github.api_url",
        example: "\"https://ghe.example.com/api/v3\"",
        doc: "the REST API (Enterprise: `https://ghe.example.com/api/v3`)",
        ..VALUE
    },
    Key {
        path: "github.scopes",
        example: "[\"read:user\", \"user:email\"]",
        doc: "OAuth scopes; empty means `read:user`, `user:email`. `read:org` is added whenever \
              the config names an org or team (`allowed_orgs`, `allowed_teams`, a role's \
              `orgs`/`teams`, an `org:`/`team:` grant in a rule), `groups_header = \"all\"`, or \
              a rule has `owner_methods`.",
        ..STRINGS
    },
    Key {
        path: "github.timeout",
        doc: "timeout of each call to GitHub (sign-in and membership re-checks); not zero",
        ..DURATION
    },
    Key {
        path: "github.revoke_on_sign_out",
        doc: "at sign-out, also revoke the person's GitHub token at GitHub \
              (`DELETE /applications/{client_id}/token`), so the app's authorization ends too",
        ..BOOL
    },
    Key {
        path: "github.webhook_secret",
        ty: "secret string",
        example: "\"${GH_WEBHOOK_SECRET:-}\"",
        env: Some(("GH_WEBHOOK_SECRET", "when `github.webhook_secret` is empty")),
        doc: "the secret of a GitHub webhook sent to `/oauth2/github/webhook` \
              ([webhooks](../github/webhooks.md)); empty: webhooks are off",
        ..VALUE
    },
    Key {
        path: "github.webhook_secret_previous",
        ty: "secret string",
        example: "\"${GH_WEBHOOK_SECRET_OLD:-}\"",
        doc: "a second webhook secret whose signatures are also accepted while the webhook's \
              secret is changed at GitHub ([rotation](../operations/key-rotation.md#the-webhook-secret))",
        ..VALUE
    },
    // ---- [session] ---------------------------------------------------------------------
    Key {
        path: "session",
        doc: "The session cookie and where sessions live ([Sessions](../concepts/sessions.md), \
              [Session cookie](cookie.md), [Redis](../operations/redis.md)). The session store \
              (where sessions live, and the Redis connection) is set up at start: a reload \
              keeps it, so changing it takes a restart.",
        ..SECTION
    },
    Key {
        path: "session.secrets",
        ty: "list of secret strings",
        example: "[\"${GATEHOUSE_SESSION_SECRET}\"]",
        env: Some((
            "GATEHOUSE_SESSION_SECRET",
            "when `session.secrets` is empty (or all its entries are)",
        )),
        doc: "base64 (standard or URL-safe) of 32 random bytes each, from `gatehouse \
              gen-secret`. The first encrypts; all decrypt (see \
              [rotation](../operations/key-rotation.md#session-secrets)).",
        ..VALUE
    },
    Key {
        path: "session.cookie_name",
        example: "\"_gatehouse\"",
        doc: "the session cookie's name (letters, digits, `_-.`); a large session is split into \
              `<name>_0`, `<name>_1`, …",
        ..VALUE
    },
    Key {
        path: "session.ttl",
        example: "\"7d\"",
        doc: "how long a sign-in lasts (at least `1m`), counted from the sign-in as configured \
              now: shortening it also shortens sessions, access and refresh tokens already out",
        ..DURATION
    },
    Key {
        path: "session.cookie_secure",
        default_note: "`Secure` exactly when `public_url` is https",
        doc: "the cookie's `Secure` attribute",
        ..BOOL
    },
    Key {
        path: "session.cookie_domain",
        example: "\".example.com\"",
        default_note: "this host only",
        doc: "the cookie's `Domain` attribute, e.g. `\".example.com\"`. Leave it unset unless \
              you must: a sibling subdomain you do not control could then toss cookies.",
        ..VALUE
    },
    Key {
        path: "session.store",
        example: "\"redis\"",
        doc: "where sessions live: `\"cookie\"` (all in the encrypted cookie), `\"memory\"` (a \
              record in this process; the cookie holds only its id), `\"redis\"` (a record in \
              Redis shared by replicas) or `\"postgres\"` (a row in PostgreSQL shared by \
              replicas). Read at start only.",
        ..VALUE
    },
    Key {
        path: "session.redis_url",
        example: "\"redis://127.0.0.1:6379\"",
        env: Some((
            "GATEHOUSE_REDIS_URL",
            "when `session.redis_url` is unset or empty",
        )),
        doc: "`redis://[:PASSWORD@]HOST:PORT[/DB]`, or `rediss://` for TLS. Also usable with \
              `store = \"cookie\"`: codes, refresh tokens, sign-in states and the revocation \
              list are then shared through Redis. With Sentinel, it only gives the password \
              and db. Read at start only.",
        ..VALUE
    },
    Key {
        path: "session.sentinel_urls",
        example: "[\"redis://10.0.0.5:26379\"]",
        doc: "Redis Sentinel addresses (`redis://HOST:26379`), with `sentinel_master`; the \
              master is looked up, and looked up again after a failover. Read at start only.",
        ..STRINGS
    },
    Key {
        path: "session.sentinel_master",
        example: "\"mymaster\"",
        doc: "the master's name in the sentinels' `sentinel monitor NAME …` line. Read at \
              start only.",
        ..VALUE
    },
    Key {
        path: "session.redis_cluster_urls",
        example: "[\"redis://10.0.0.5:7000\", \"redis://10.0.0.6:7000\"]",
        doc: "Redis Cluster seed nodes (`redis://[:PASSWORD@]HOST:PORT`, or `rediss://` for \
              every node); not with `redis_url` or Sentinel. The other nodes are found from \
              these, and a failover is followed. Every key carries the hash tag \
              `{redis_prefix}`, so the transactions and scripts that touch several keys run \
              on one shard. Read at start only.",
        ..STRINGS
    },
    Key {
        path: "session.redis_ca_file",
        example: "\"/etc/gatehouse/redis-ca.pem\"",
        default_note: "the system's roots",
        doc: "PEM CA bundle for `rediss://`; not with Sentinel, which uses the system's roots. \
              Read at start only.",
        ..VALUE
    },
    Key {
        path: "session.redis_timeout",
        example: "\"1s\"",
        doc: "bound on each Redis call, connecting included (at most `30s`); a stalled Redis \
              then means a quick 503. Read at start only.",
        ..DURATION
    },
    Key {
        path: "session.redis_prefix",
        example: "\"gate-a:\"",
        doc: "prefix of every key Gatehouse writes, so several gates can share one Redis. \
              Read at start only.",
        ..VALUE
    },
    Key {
        path: "session.postgres_url",
        example: "\"postgres://gatehouse:PASSWORD@db.internal:5432/gatehouse?sslmode=verify-full\"",
        env: Some((
            "GATEHOUSE_POSTGRES_URL",
            "when `session.postgres_url` is unset or empty",
        )),
        doc: "`postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE`. `sslmode=require` or \
              `verify-full` (the default for a non-loopback host) use TLS with the certificate \
              chain and host name checked; `disable` (the default on loopback) is plain TCP; \
              `prefer`, `allow` and `verify-ca` are refused. `sslrootcert=PATH` is read like \
              `postgres_ca_file`. Also usable with `store = \"cookie\"`, like `redis_url`. \
              Read at start only.",
        ..VALUE
    },
    Key {
        path: "session.postgres_ca_file",
        example: "\"/etc/gatehouse/postgres-ca.pem\"",
        default_note: "the system's roots",
        doc: "PEM CA bundle PostgreSQL's certificate is checked against. Read at start only.",
        ..VALUE
    },
    Key {
        path: "session.postgres_timeout",
        example: "\"1s\"",
        doc: "bound on each PostgreSQL call: waiting for a pooled connection, connecting and \
              the query (also set as the server's `statement_timeout`), at most `30s`; a \
              stalled database then means a quick 503. Read at start only.",
        ..DURATION
    },
    Key {
        path: "session.postgres_pool_size",
        ty: "integer",
        example: "32",
        doc: "connections each replica keeps to PostgreSQL at most (1 to 1000). Read at start \
              only.",
        ..VALUE
    },
    Key {
        path: "session.postgres_schema",
        example: "\"gate_a\"",
        doc: "the schema Gatehouse's tables live in (made if missing), so several gates can \
              share one database. Read at start only.",
        ..VALUE
    },
    Key {
        path: "session.store_secrets",
        ty: "list of secret strings",
        example: "[\"${GATEHOUSE_STORE_SECRET}\"]",
        env: Some((
            "GATEHOUSE_STORE_SECRET",
            "when `session.store_secrets` is empty (or all its entries are)",
        )),
        doc: "base64 of 32 bytes each, **not** one of `secrets`: encrypts GitHub tokens in \
              server-side records, one-time codes and refresh families (first encrypts, all \
              decrypt). Required with `store = \"redis\"` or `\"postgres\"`; with `\"memory\"`, unset means a \
              key made when the process starts, for records (kept across reloads; codes and \
              families then use `secrets`)",
        ..VALUE
    },
    // ---- [pages] -----------------------------------------------------------------------
    Key {
        path: "pages",
        doc: "What the sign-in page and `/oauth2/me` show. Every key is optional.",
        ..SECTION
    },
    Key {
        path: "pages.app_name",
        example: "\"Team wiki\"",
        default_note: "the host of `public_url`",
        doc: "the app's name, in the sign-in page's heading and on `/oauth2/me` (at most 80 \
              characters)",
        ..VALUE
    },
    Key {
        path: "pages.logo_url",
        example: "\"https://example.com/logo.png\"",
        doc: "a logo above the sign-in button: an `https://` URL or a \
              `data:image/png;base64,…` (also `jpeg`, `gif`, `webp`, `svg+xml`) URL of at most \
              64 KiB. The pages load nothing else from anywhere, so other schemes are a config \
              error.",
        ..VALUE
    },
    Key {
        path: "pages.message",
        example: "\"Members of the databio organization only.\"",
        doc: "a short plain-text note on the sign-in page, e.g. who may sign in (at most 500 \
              characters; line breaks are kept)",
        ..VALUE
    },
    // ---- [access] ----------------------------------------------------------------------
    Key {
        path: "access",
        doc: "Who is admitted. A GitHub user is admitted when they match **any** allow-list. At \
              least one list must be non-empty unless `allow_any_github_user = true`; an empty \
              allow-list is a config error. Being admitted is needed for every path that is not \
              public; rules can narrow it further. See \
              [Access, roles and rules](../concepts/policy.md).",
        ..SECTION
    },
    Key {
        path: "access.allowed_users",
        example: "[\"octocat\"]",
        env: Some((
            "GITHUB_USERS",
            "always: logins added to `access.allowed_users`, separated by commas and/or \
             whitespace",
        )),
        doc: "GitHub logins, case-insensitive",
        ..STRINGS
    },
    Key {
        path: "access.allowed_user_ids",
        ty: "list of integers",
        example: "[583231]",
        doc: "numeric GitHub user ids (survive renames)",
        ..VALUE
    },
    Key {
        path: "access.allowed_orgs",
        example: "[\"databio\"]",
        doc: "organizations whose **active** members are admitted (pending invitations do not \
              count)",
        ..STRINGS
    },
    Key {
        path: "access.allowed_teams",
        example: "[\"databio/core\"]",
        doc: "teams as `\"org/team-slug\"`, active members only",
        ..STRINGS
    },
    Key {
        path: "access.allow_any_github_user",
        doc: "admit every GitHub account (must be said explicitly)",
        ..BOOL
    },
    Key {
        path: "access.admin_users",
        example: "[\"octocat\"]",
        doc: "logins that get the role `admin` (which also opens the admin API)",
        ..STRINGS
    },
    Key {
        path: "access.default_roles",
        example: "[\"viewer\"]",
        doc: "roles every admitted user gets (admins too; not machines)",
        ..STRINGS
    },
    Key {
        path: "access.groups_header",
        example: "\"all\"",
        doc: "what `X-Forwarded-Groups` lists. `\"policy\"`: the orgs and teams this config \
              names (one targeted GitHub call each; with owner rules, also every org of the \
              user). `\"all\"`: every org and team of the user (GitHub's paginated lists).",
        ..VALUE
    },
    Key {
        path: "access.refresh_interval",
        example: "\"10m\"",
        doc: "how old memberships may get before the next request re-checks them at GitHub (at \
              least `1s`); see [re-checks](../concepts/membership-rechecks.md)",
        ..DURATION
    },
    Key {
        path: "access.stale_grace",
        example: "\"1h\"",
        doc: "while GitHub cannot be asked, the last known memberships keep working this long \
              past `refresh_interval`; then requests get 503 until GitHub answers",
        ..DURATION
    },
    Key {
        path: "access.case_sensitive_paths",
        doc: "rule paths match ignoring ASCII case (many apps treat `/Admin` as `/admin`); \
              `true` matches case exactly",
        ..BOOL
    },
    // ---- [roles.NAME] ------------------------------------------------------------------
    Key {
        path: "roles",
        kind: Kind::Map,
        ty: "table of tables",
        example: "",
        doc: "Who holds role `NAME`, besides `admin_users` (role `admin`) and `default_roles` \
              (everyone admitted). Roles are only given to admitted users; they grant access \
              through rules (`allow = [\"role:NAME\"]`) and are sent to the app in \
              `X-Forwarded-Roles`. Names use letters, digits, `-`, `_`, `.`; at most 128 \
              distinct role names.",
        ..VALUE
    },
    Key {
        path: "roles.NAME.users",
        example: "[\"monalisa\"]",
        doc: "GitHub logins",
        ..STRINGS
    },
    Key {
        path: "roles.NAME.orgs",
        example: "[\"databio\"]",
        doc: "orgs whose active members hold the role",
        ..STRINGS
    },
    Key {
        path: "roles.NAME.teams",
        example: "[\"databio/core\"]",
        doc: "teams as `\"org/team-slug\"`, active members",
        ..STRINGS
    },
    // ---- [[rules]] ---------------------------------------------------------------------
    Key {
        path: "rules",
        doc: "Rules are checked in file order; the **first** rule that matches the request's \
              method, host and path decides. When no rule matches, admitted users pass and \
              everyone else does not. Each rule has exactly one of `path` and `path_regex`, and \
              exactly one of `policy` and `allow` (a rule with `owner_methods` may have \
              neither). How rules decide, and `check-config --explain`: \
              [Access, roles and rules](../concepts/policy.md#rules).",
        ..TABLE_ARRAY
    },
    Key {
        path: "rules.path",
        example: "\"/admin/**\"",
        doc: "a glob: `*` is one segment, `**` zero or more segments (so `/admin/**` also \
              matches `/admin`), `{owner}` one segment that names the owner, `*` inside a \
              segment matches within it (`/static/*.css`); in normal form (`/a/b`, not `/a//b`)",
        ..VALUE
    },
    Key {
        path: "rules.path_regex",
        example: "\"^/files/[0-9]+$\"",
        doc: "instead of `path`: a Rust regex matched against the whole normalized path (anchor \
              it with `^…$`). A named group `(?P<owner>…)` names the owner.",
        ..VALUE
    },
    Key {
        path: "rules.methods",
        example: "[\"PUT\", \"DELETE\"]",
        default_note: "every method",
        doc: "e.g. `[\"PUT\", \"DELETE\"]` (any case, compared upper-case)",
        ..STRINGS
    },
    Key {
        path: "rules.host",
        example: "\"*.example.com\"",
        default_note: "every host",
        doc: "`\"app.example.com\"` or `\"*.example.com\"` (subdomains only); the request's port \
              is ignored",
        ..VALUE
    },
    Key {
        path: "rules.policy",
        example: "\"public\"",
        doc: "`\"public\"` (anyone, no sign-in; the session cookie is not even read), \
              `\"authenticated\"` (admitted users), or `\"deny\"` (nobody: 403 for everyone, \
              anonymous included; 404 with `hide`)",
        ..VALUE
    },
    Key {
        path: "rules.allow",
        example: "[\"role:admin\", \"team:databio/core\"]",
        doc: "instead of `policy`: admitted users matching any of `\"role:NAME\"`, \
              `\"org:ORG\"`, `\"team:ORG/SLUG\"`, `\"user:LOGIN\"`",
        ..STRINGS
    },
    Key {
        path: "rules.owner_methods",
        example: "[\"POST\", \"PUT\", \"PATCH\", \"DELETE\"]",
        doc: "these methods only for the path's owner: the user's own login, or an org they \
              belong to. Other methods follow `policy`/`allow` (default `\"authenticated\"`). \
              Needs `{owner}` in `path` or an `owner` group in `path_regex`.",
        ..STRINGS
    },
    Key {
        path: "rules.hide",
        doc: "`true`: answer 404 instead of 403, so the path's existence is not revealed",
        ..BOOL
    },
    Key {
        path: "rules.allow_encoded_path",
        doc: "`true`: let paths with `%2F`, `%5C`, `%00`, `%25`, an escaped control character \
              (`%0A`, `%09`, …), `;` or `\\` through when this rule decides (they get 400 \
              otherwise)",
        ..BOOL
    },
    Key {
        path: "rules.allow_folded_segments",
        doc: "`true`: let paths with a segment ending in a dot or a space (`/files/v1./x`, \
              `/a%20/x`) through when this rule decides (they get 400 otherwise, because IIS \
              and some Java stacks read `/admin./x` as `/admin/x`)",
        ..BOOL
    },
    // ---- [tokens] ----------------------------------------------------------------------
    Key {
        path: "tokens",
        doc: "Tokens for scripts, CLIs and single-page apps ([Tokens](../concepts/tokens.md)). \
              `access_ttl` is at least `10s`, and `refresh_ttl` longer than `access_ttl`.",
        ..SECTION
    },
    Key {
        path: "tokens.access_ttl",
        example: "\"5m\"",
        doc: "lifetime of access tokens (JWTs, checked with zero clock leeway)",
        ..DURATION
    },
    Key {
        path: "tokens.refresh_ttl",
        example: "\"12h\"",
        doc: "lifetime of a refresh token; each refresh starts a new one",
        ..DURATION
    },
    Key {
        path: "tokens.signing_alg",
        example: "\"ES256\"",
        doc: "`\"HS256\"` or `\"ES256\"`; tokens claiming another algorithm (or `none`) are \
              refused",
        ..VALUE
    },
    Key {
        path: "tokens.hmac_secret",
        ty: "secret string",
        example: "\"${GATEHOUSE_TOKEN_SECRET}\"",
        default_note: "derived from the session secrets",
        doc: "base64 of ≥ 32 bytes for HS256; unset: one key derived from each session secret, \
              the first secret's signs and every one verifies (tokens name theirs by `kid`), so \
              reordering `session.secrets` never breaks a token \
              ([rotation](../operations/key-rotation.md#session-secrets))",
        ..VALUE
    },
    Key {
        path: "tokens.signing_key_file",
        example: "\"/etc/gatehouse/tokens.pem\"",
        doc: "PEM of an EC P-256 private key (PKCS#8 or SEC1) for ES256; one key; to rotate, \
              use `signing_key_files` instead (not both)",
        ..VALUE
    },
    Key {
        path: "tokens.signing_key_files",
        example: "[\"/etc/gatehouse/tokens-new.pem\", \"/etc/gatehouse/tokens.pem\"]",
        default_note: "the one key of `signing_key_file`",
        doc: "several ES256 keys (PEM): the **first** signs, all verify Gatehouse's access \
              tokens and are published in `/.well-known/jwks.json` with their `kid` \
              ([rotation](../operations/key-rotation.md#token-signing-keys))",
        ..STRINGS
    },
    Key {
        path: "tokens.client_redirect_uris",
        example: "[\"https://spa.example.com/callback\"]",
        doc: "where a client not registered in `[[tokens.clients]]` may have one-time codes sent \
              (`redirect_uri`, or `client_redirect_uri`, at `/oauth2/authorize` or \
              `/oauth2/start`): absolute URIs without a fragment (`https://…`, or a native app's \
              `com.example.app:/cb`), compared as text, exactly (no normalizing); their origins \
              may call `/oauth2/token`, `/oauth2/refresh` and `/oauth2/revoke` (CORS)",
        ..STRINGS
    },
    Key {
        path: "tokens.allow_loopback",
        doc: "also allow `http://127.0.0.1`, `http://localhost` and `http://[::1]`, any port and \
              path (RFC 8252), for `gatehouse login`. Such a sign-in must send a PKCE \
              challenge, and the code goes out only after the person confirms on a page naming \
              the program and the address ([why](../guides/cli-login.md#why-the-confirmation))",
        ..BOOL
    },
    Key {
        path: "tokens.accept_github_tokens",
        doc: "accept raw GitHub tokens as `Authorization: Bearer`/`token`, checked at GitHub \
              and cached 5 min by hash",
        ..BOOL
    },
    Key {
        path: "tokens.oidc_issuers",
        doc: "`[[tokens.oidc_issuers]]`: trust an OIDC issuer's tokens, e.g. GitHub Actions, so \
              CI jobs need no stored secret ([CI jobs](../guides/ci-oidc.md)). Entries are \
              tried in order; the first that accepts a token wins. For GitHub's Actions issuers \
              `claims` must pin `repository_owner_id`, `repository_id`, `repository_owner` or \
              `repository`.",
        ..TABLE_ARRAY
    },
    Key {
        path: "tokens.oidc_issuers.issuer",
        example: "\"https://token.actions.githubusercontent.com\"",
        required: true,
        doc: "the tokens' `iss`, exactly",
        ..VALUE
    },
    Key {
        path: "tokens.oidc_issuers.audience",
        example: "\"https://app.example.com\"",
        required: true,
        doc: "the tokens' `aud` (or one of them)",
        ..VALUE
    },
    Key {
        path: "tokens.oidc_issuers.jwks_url",
        example: "\"https://token.actions.githubusercontent.com/.well-known/jwks\"",
        required: true,
        doc: "where the issuer's keys are fetched (on first use, again after an hour, and for \
              an unknown `kid` at most once per 10 s)",
        ..VALUE
    },
    Key {
        path: "tokens.oidc_issuers.claims",
        ty: "table of strings",
        example: "{ repository_id = \"123456789\", ref = \"refs/heads/main\" }",
        doc: "each claim must equal this string exactly, e.g. `repository_id = \"123456789\"`; \
              an entry without `claims` for another issuer loads with a warning",
        ..VALUE
    },
    Key {
        path: "tokens.oidc_issuers.roles",
        example: "[\"deployer\"]",
        doc: "the roles the tokens hold (exactly these; defined roles only)",
        ..STRINGS
    },
    Key {
        path: "tokens.oidc_issuers.leeway",
        doc: "clock leeway for `exp`, `nbf` and `iat`",
        ..DURATION
    },
    Key {
        path: "tokens.clients",
        doc: "`[[tokens.clients]]`: OAuth 2.0 clients registered by id (RFC 6749), for \
              `/oauth2/authorize` and the token and revocation endpoints \
              ([OAuth 2.0 clients](../guides/oauth2-clients.md)). A `client_id` not listed here \
              falls back to `tokens.client_redirect_uris` and `tokens.allow_loopback`.",
        ..TABLE_ARRAY
    },
    Key {
        path: "tokens.clients.client_id",
        example: "\"my-cli\"",
        required: true,
        doc: "letters, digits, `-_.`, unique; the `client_id` the client sends",
        ..VALUE
    },
    Key {
        path: "tokens.clients.redirect_uris",
        example: "[\"http://127.0.0.1/callback\"]",
        required: true,
        doc: "where codes may go, compared as text; a loopback entry (`http://127.0.0.1/…`, \
              `http://[::1]/…`, `http://localhost/…`) matches any port (RFC 8252 section 7.3) \
              and its code goes out only after the person confirms. Web origins here may call \
              the token endpoints (CORS)",
        ..STRINGS
    },
    Key {
        path: "tokens.clients.client_secret_hash",
        ty: "secret string",
        example: "\"sha256$AKMUbXRR$mlLAqe0v\"",
        doc: "a confidential client: `sha256$SALT$HASH` of its secret (the `hash` `gatehouse \
              hash-key` prints; the key it prints is the secret). The client authenticates with \
              HTTP Basic or `client_secret`. Without it the client is public and must use PKCE",
        ..VALUE
    },
    // ---- [[api_keys]] ------------------------------------------------------------------
    Key {
        path: "api_keys",
        doc: "Machine-to-machine credentials, sent as HTTP Basic `name:key`; `gatehouse \
              hash-key` prints a new key and its entry ([API keys](../concepts/api-keys.md)).",
        ..TABLE_ARRAY
    },
    Key {
        path: "api_keys.name",
        example: "\"nightly\"",
        required: true,
        doc: "letters, digits, `-_.`, unique; the Basic-auth user name",
        ..VALUE
    },
    Key {
        path: "api_keys.hash",
        ty: "secret string",
        example: "\"sha256$AKMUbXRR$mlLAqe0v\"",
        required: true,
        doc: "`sha256$SALT$HASH` from `gatehouse hash-key`, never the key",
        ..VALUE
    },
    Key {
        path: "api_keys.roles",
        example: "[\"viewer\"]",
        doc: "the roles the key holds (exactly these; defined roles only)",
        ..STRINGS
    },
    // ---- [limits] ----------------------------------------------------------------------
    Key {
        path: "limits",
        doc: "Rate limits per client IP (IPv6: per /64), the address as \
              `server.trusted_proxies` resolves it. Past a limit the answer is 429 with \
              `Retry-After` (a page for browsers, else JSON `{\"error\": \"rate_limited\", \
              \"message\", \"retry_after\"}`). With `tokens.accept_github_tokens`, each raw \
              GitHub token Gatehouse has to ask GitHub about (not one it remembers) takes from \
              a per-address budget of the same size as `auth_per_minute` / `burst`, counted \
              apart; past it, 429 without asking GitHub, so made-up tokens cannot spend the \
              gate's GitHub rate limit.",
        ..SECTION
    },
    Key {
        path: "limits.auth_per_minute",
        ty: "integer",
        example: "60",
        doc: "requests a minute to `/oauth2/start`, `/oauth2/authorize`, `/oauth2/callback`, \
              `/oauth2/confirm`, `/oauth2/token`, `/oauth2/refresh`, `/oauth2/revoke` and \
              `/oauth2/pat`; `0` turns the limit off",
        ..VALUE
    },
    Key {
        path: "limits.burst",
        ty: "integer",
        example: "10",
        doc: "how many of those may come at once before the per-minute rate applies (at least 1)",
        ..VALUE
    },
    Key {
        path: "limits.api_key_failures_per_minute",
        ty: "integer",
        example: "5",
        doc: "failed API-key attempts a minute (as many at once), counted per address **and \
              key name** for wrong keys given with a configured name, and per address for \
              attempts naming no configured key; past it the attempts that budget covers get \
              429, unchecked, until it allows another. So guessing from a shared address never \
              locks out the other keys used from it. `0` turns it off",
        ..VALUE
    },
    // ---- [log] -------------------------------------------------------------------------
    Key {
        path: "log",
        doc: "Logs go to stderr ([Logs](../operations/logs.md)). Read at start only, except \
              `access_log`.",
        ..SECTION
    },
    Key {
        path: "log.level",
        example: "\"gatehouse=debug,info\"",
        doc: "`error`, `warn`, `info`, `debug`, `trace`, or a filter such as \
              `\"gatehouse=debug,info\"`. `RUST_LOG` wins when set.",
        ..VALUE
    },
    Key {
        path: "log.format",
        example: "\"json\"",
        doc: "`\"pretty\"` (lines for people) or `\"json\"` (one JSON object per line, fields at \
              the top level)",
        ..VALUE
    },
    Key {
        path: "log.access_log",
        doc: "one INFO line per request on target `gatehouse::access`; `false` turns it off \
              (audit events stay)",
        ..BOOL
    },
];

/// The text above the tables.
const INTRO: &str = "\
The config is TOML, read from `--config FILE`, else `$GATEHOUSE_CONFIG`, else \
`./gatehouse.toml`. `config.example.toml` at the root of the repository sets every key to its \
default, with a comment. `gatehouse check-config` validates a file and prints the effective \
config with secrets hidden.

- **Unknown keys are errors** (a typo cannot silently change behaviour), and `check-config` \
reports every problem at once, each with the key, what is wrong and how to fix it \
([Troubleshooting](../operations/troubleshooting.md)).
- **`${VAR}` and `${VAR:-default}`** work in every string value (including list items). An \
empty variable counts as unset; an unset variable without a default becomes `\"\"` (and an \
error about the key then names the variable); `$$` is a literal `$`. Numbers and booleans \
cannot use `${...}`.
- **Durations** are strings: `\"90s\"`, `\"15m\"`, `\"12h\"`, `\"7d\"`, `\"1h 30m\"` (defaults are \
shown as `check-config` prints them, e.g. `\"7days\"`).
- **Reloads**: `SIGHUP` reads the file again. A file that changes a key marked *read at start \
only* is refused as a whole, the running config stays, and the log names the keys: apply them \
with a restart or an in-place upgrade \
([Upgrades and reloads](../operations/upgrades-and-reloads.md)).
- Some keys fall back to [environment variables](#environment-fallbacks) when the file leaves \
them empty.";

fn key(path: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| k.path == path)
}

/// The parent of a key path: `routes` for `routes.name`, `roles` for `roles.NAME.users`.
fn parent(path: &str) -> Option<&str> {
    let (head, _) = path.rsplit_once('.')?;
    Some(head.strip_suffix(".NAME").unwrap_or(head))
}

fn last(path: &str) -> &str {
    path.rsplit('.').next().unwrap_or(path)
}

/// The keys directly inside a section (`None`: the top level).
fn children(section: Option<&str>) -> Vec<&'static Key> {
    let section = section.map(|s| key(s).and_then(|k| k.same_as).unwrap_or(s));
    KEYS.iter().filter(|k| parent(k.path) == section).collect()
}

/// How a section is written in TOML: `[server]`, `[[routes]]`, `[roles.NAME]`.
fn header(k: &Key) -> String {
    match k.kind {
        Kind::Section => format!("[{}]", k.path),
        Kind::TableArray => format!("[[{}]]", k.path),
        Kind::Map => format!("[{}.NAME]", k.path),
        Kind::Value => k.path.to_string(),
    }
}

// ---- Building TOML values along key paths ------------------------------------------------

/// The table a path's entries live in, created as needed: `[[…]]` sections get one entry (with
/// its required keys), `[x.NAME]` tables one table named `example`.
fn table_at<'v>(root: &'v mut toml::Table, section: &str) -> &'v mut toml::Table {
    let mut table = root;
    let mut walked = String::new();
    for segment in section.split('.').filter(|s| *s != "NAME") {
        if !walked.is_empty() {
            walked.push('.');
        }
        walked.push_str(segment);
        let k = key(&walked).unwrap_or_else(|| panic!("{walked} is not a documented section"));
        let slot = table.entry(segment.to_string());
        table = match k.kind {
            Kind::Section => slot
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                .as_table_mut()
                .unwrap(),
            Kind::TableArray => {
                let array = slot
                    .or_insert_with(|| toml::Value::Array(vec![]))
                    .as_array_mut()
                    .unwrap();
                if array.is_empty() {
                    array.push(toml::Value::Table(required_entry(&walked)));
                }
                array[0].as_table_mut().unwrap()
            }
            Kind::Map => slot
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                .as_table_mut()
                .unwrap()
                .entry("example")
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                .as_table_mut()
                .unwrap(),
            Kind::Value => panic!("{walked} is a value, not a section"),
        };
    }
    table
}

/// One entry of a `[[…]]` section holding only its required keys.
fn required_entry(section: &str) -> toml::Table {
    children(Some(section))
        .into_iter()
        .filter(|k| k.required)
        .map(|k| (last(k.path).to_string(), example(k)))
        .collect()
}

fn example(k: &Key) -> toml::Value {
    let doc: toml::Table = toml::from_str(&format!("v = {}", k.example))
        .unwrap_or_else(|e| panic!("{}: the example {} is not TOML: {e}", k.path, k.example));
    doc["v"].clone()
}

/// A config with one entry in every `[[…]]` and `[x.NAME]` section, holding only required keys.
fn skeleton() -> toml::Table {
    let mut root = toml::Table::new();
    for k in KEYS.iter().filter(|k| k.kind != Kind::Value) {
        table_at(&mut root, k.path);
    }
    root
}

fn parse(root: toml::Table) -> Result<Config, String> {
    toml::Value::Table(root)
        .try_into::<Config>()
        .map_err(|e| e.message().to_string())
}

/// The value at a key path in a serialized config (entries: the first; names: `example`).
fn lookup<'v>(root: &'v toml::Table, path: &str) -> Option<&'v toml::Value> {
    let segments: Vec<&str> = path.split('.').collect();
    let mut table = root;
    let mut value = None;
    for (i, segment) in segments.iter().enumerate() {
        let segment = if *segment == "NAME" {
            "example"
        } else {
            segment
        };
        let mut found = table.get(segment)?;
        if let toml::Value::Array(entries) = found {
            if i + 1 < segments.len() {
                found = entries.first()?;
            }
        }
        value = Some(found);
        if let toml::Value::Table(t) = found {
            table = t;
        }
    }
    value
}

/// The defaults, as the parser fills them in and `check-config` prints them: of every key in
/// the skeleton (one entry per `[[…]]` section), or of an empty file.
fn defaults_of(root: toml::Table) -> toml::Table {
    let config = parse(root).expect("the config parses");
    match toml::Value::try_from(&config).expect("a config serializes") {
        toml::Value::Table(t) => t,
        _ => unreachable!(),
    }
}

fn defaults() -> toml::Table {
    defaults_of(skeleton())
}

// ---- Rendering ---------------------------------------------------------------------------

fn inline(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => serde_json::to_string(s).unwrap(),
        toml::Value::Array(items) => {
            let items: Vec<String> = items.iter().map(inline).collect();
            format!("[{}]", items.join(", "))
        }
        toml::Value::Table(t) if t.is_empty() => "{}".to_string(),
        other => other.to_string(),
    }
}

fn default_cell(k: &Key, defaults: &toml::Table) -> String {
    if k.kind != Kind::Value {
        // A section's own default: what its parent holds when the file leaves it out (the
        // skeleton has an entry).
        let mut root = toml::Table::new();
        if let Some(section) = parent(k.path) {
            table_at(&mut root, section);
        }
        return match lookup(&defaults_of(root), k.path) {
            Some(value) => format!("`{}`", inline(value)),
            None => "unset".to_string(),
        };
    }
    if k.required {
        return "required".to_string();
    }
    let mut cell = match lookup(defaults, k.path) {
        // A secret serializes masked; unset, it is empty.
        Some(toml::Value::String(s)) if k.ty.contains("secret") && s == "(not set)" => {
            "`\"\"`".to_string()
        }
        Some(value) => format!("`{}`", inline(value)),
        None => "unset".to_string(),
    };
    if !k.default_note.is_empty() {
        let _ = write!(cell, ": {}", k.default_note);
    }
    if let Some((var, _)) = k.env {
        let _ = write!(cell, " (then `{var}`)");
    }
    cell
}

/// Markdown heading anchors as mdBook makes them (tests/integration/docs.rs checks links against
/// the same).
fn anchor(heading: &str) -> String {
    heading
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

/// The whole page.
pub fn render() -> String {
    let defaults = defaults();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Configuration\n\n<!-- Generated from src/config/reference.rs; do not edit. \
         Regenerate with: {REGENERATE} -->\n\n{INTRO}\n"
    );
    let sections: Vec<&Key> = KEYS.iter().filter(|k| k.kind != Kind::Value).collect();
    out.push_str("Sections: ");
    let links: Vec<String> = sections
        .iter()
        .map(|k| {
            let h = header(k);
            format!("[`{h}`](#{})", anchor(&h))
        })
        .collect();
    out.push_str(&links.join(", "));
    out.push_str(", [environment fallbacks](#environment-fallbacks).\n");
    for section in sections {
        let _ = writeln!(out, "\n## `{}`\n\n{}", header(section), section.doc);
        if section.same_as.is_some() {
            continue;
        }
        out.push_str("\n| key | type | default | meaning |\n|---|---|---|---|\n");
        for k in children(Some(section.path)) {
            let meaning = if k.kind == Kind::Value {
                k.doc.to_string()
            } else {
                let h = header(k);
                format!("entries of [`{h}`](#{}), below", anchor(&h))
            };
            let _ = writeln!(
                out,
                "| `{}` | {} | {} | {meaning} |",
                last(k.path),
                k.ty,
                default_cell(k, &defaults),
            );
        }
    }
    out.push_str(
        "\n## Environment fallbacks\n\nThese apply even when the file does not mention the key, \
         so a Kubernetes ConfigMap can hold the config and a Secret the credentials. Any other \
         variable can be used through `${VAR}`; variables that are not config keys are in \
         [Environment variables](environment.md).\n\n| variable | key | applies |\n|---|---|---|\n",
    );
    for k in KEYS {
        if let Some((var, when)) = k.env {
            let _ = writeln!(out, "| `{var}` | `{}` | {when} |", k.path);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::path::{Path, PathBuf};

    fn repo() -> &'static Path {
        Path::new(env!("CARGO_MANIFEST_DIR"))
    }

    #[test]
    fn the_page_is_what_the_reference_renders() {
        let path = repo().join(PAGE);
        let want = render();
        if std::env::var_os("GATEHOUSE_BLESS").is_some() {
            std::fs::write(&path, &want).unwrap();
            return;
        }
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        if have != want {
            let line = have
                .lines()
                .zip(want.lines())
                .position(|(a, b)| a != b)
                .unwrap_or_else(|| have.lines().count().min(want.lines().count()));
            panic!(
                "{PAGE} differs from src/config/reference.rs (first at line {}); regenerate \
                 it with:\n    {REGENERATE}",
                line + 1
            );
        }
    }

    /// The keys serde accepts in the table at `section` (`None`: the top level), from its
    /// answer to a key it does not know.
    fn accepted(section: Option<&str>) -> BTreeSet<String> {
        const PROBE: &str = "zz_not_a_key";
        let mut root = skeleton();
        let table = match section {
            Some(s) => table_at(&mut root, s),
            None => &mut root,
        };
        table.insert(PROBE.into(), toml::Value::Integer(0));
        let err = parse(root).expect_err("an unknown key must be refused");
        let list = err
            .split_once(&format!("unknown field `{PROBE}`, "))
            .unwrap_or_else(|| panic!("{section:?}: not an unknown-field error: {err}"))
            .1;
        if list.starts_with("there are no fields") {
            return BTreeSet::new();
        }
        list.split('`')
            .skip(1)
            .step_by(2)
            .map(String::from)
            .collect()
    }

    #[test]
    fn every_key_the_parser_accepts_is_documented_and_no_other() {
        let mut sections: Vec<Option<&str>> = vec![None];
        sections.extend(
            KEYS.iter()
                .filter(|k| k.kind != Kind::Value)
                .map(|k| Some(k.path)),
        );
        for section in sections {
            let parser = accepted(section);
            let documented: BTreeSet<String> = children(section)
                .iter()
                .map(|k| last(k.path).to_string())
                .collect();
            let missing: Vec<_> = parser.difference(&documented).collect();
            let unknown: Vec<_> = documented.difference(&parser).collect();
            assert!(
                missing.is_empty() && unknown.is_empty(),
                "section {}: keys the parser accepts but the reference lacks: {missing:?}; keys \
                 the reference names but the parser refuses: {unknown:?}. Describe them in \
                 src/config/reference.rs, then: {REGENERATE}",
                section.unwrap_or("(top level)")
            );
        }
    }

    #[test]
    fn every_documented_key_is_accepted_with_its_example() {
        parse(skeleton()).expect("the skeleton config parses");
        for k in KEYS.iter().filter(|k| k.kind == Kind::Value) {
            let mut root = skeleton();
            let section = parent(k.path);
            let table = match section {
                Some(s) => table_at(&mut root, s),
                None => &mut root,
            };
            table.insert(last(k.path).to_string(), example(k));
            if let Err(e) = parse(root) {
                panic!("{} = {}: refused by the parser: {e}", k.path, k.example);
            }
        }
    }

    #[test]
    fn required_keys_are_required_and_types_match_the_defaults() {
        let defaults = defaults();
        for k in KEYS.iter().filter(|k| k.kind == Kind::Value) {
            if k.required {
                let section = parent(k.path).unwrap();
                let mut root = skeleton();
                table_at(&mut root, section).remove(last(k.path));
                match parse(root) {
                    Err(e) => assert!(e.contains("missing field"), "{}: {e}", k.path),
                    // Not required by the parser: check-config must refuse the entry instead.
                    Ok(_) => {
                        let mut root: toml::Table = toml::from_str(VALID).unwrap();
                        table_at(&mut root, section).remove(last(k.path));
                        let text = toml::to_string(&root).unwrap();
                        let err = super::super::load_str(&text, "test", &|_| None)
                            .expect_err(k.path)
                            .to_string();
                        assert!(err.contains(last(k.path)), "{}: {err}", k.path);
                    }
                }
                continue;
            }
            let Some(value) = lookup(&defaults, k.path) else {
                continue;
            };
            let ty_ok = match value {
                toml::Value::String(_) => {
                    ["string", "duration"].iter().any(|t| k.ty.ends_with(t))
                        && !k.ty.starts_with("list")
                }
                toml::Value::Integer(_) => k.ty == "integer",
                toml::Value::Boolean(_) => k.ty == "boolean",
                toml::Value::Array(_) => k.ty.starts_with("list of"),
                toml::Value::Table(_) => k.ty.starts_with("table"),
                _ => false,
            };
            assert!(
                ty_ok,
                "{}: documented as {} but defaults to {value}",
                k.path, k.ty
            );
        }
    }

    /// A config check-config accepts, to which sections are added.
    const VALID: &str = r#"
        [github]
        client_id = "Iv1.0123456789abcdef"
        client_secret = "0123456789abcdef0123456789abcdef01234567"
        [session]
        secrets = ["AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="]
        [access]
        allowed_users = ["octocat"]
    "#;

    #[test]
    fn the_valid_base_config_is_valid() {
        super::super::load_str(VALID, "test", &|_| None).unwrap();
    }

    /// A config's leaves as `path → value`, to see which a change touched.
    fn leaves(value: &toml::Value, path: String, out: &mut BTreeMap<String, String>) {
        match value {
            toml::Value::Table(t) => {
                for (k, v) in t {
                    let p = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    leaves(v, p, out);
                }
            }
            other => {
                out.insert(path, other.to_string());
            }
        }
    }

    fn flat(config: &Config) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        leaves(
            &toml::Value::try_from(config).unwrap(),
            String::new(),
            &mut out,
        );
        out
    }

    #[test]
    fn environment_fallbacks_are_the_ones_the_loader_reads() {
        let asked = RefCell::new(BTreeSet::new());
        super::super::overlay_env(&mut Config::default(), &|name| {
            asked.borrow_mut().insert(name.to_string());
            None
        });
        let documented: BTreeSet<String> = KEYS
            .iter()
            .filter_map(|k| k.env.map(|(v, _)| v.to_string()))
            .collect();
        assert_eq!(
            asked.into_inner(),
            documented,
            "the variables overlay_env reads differ from the reference's `env` entries; then: \
             {REGENERATE}"
        );
        let before = flat(&Config::default());
        for k in KEYS {
            let Some((var, _)) = k.env else { continue };
            let mut config = Config::default();
            super::super::overlay_env(&mut config, &|name| {
                (name == var).then(|| "octocat".to_string())
            });
            let after = flat(&config);
            let changed: BTreeSet<&str> = before
                .keys()
                .chain(after.keys())
                .filter(|p| before.get(*p) != after.get(*p))
                .map(String::as_str)
                .collect();
            assert_eq!(
                changed,
                BTreeSet::from([k.path]),
                "{var} should set exactly {}",
                k.path
            );
        }
    }

    /// The `toml` fenced blocks of a Markdown file, with the line each starts on.
    fn toml_blocks(text: &str) -> Vec<(usize, String)> {
        struct Open {
            start: usize,
            fence: String,
            body: Option<String>,
        }
        let mut blocks = Vec::new();
        let mut open: Option<Open> = None;
        for (n, line) in text.lines().enumerate() {
            let trimmed = line.trim_start();
            let fence: String = trimmed.chars().take_while(|c| *c == '`').collect();
            let info = trimmed[fence.len()..].trim();
            match open.take() {
                None => {
                    if fence.len() >= 3 && !info.contains('`') {
                        open = Some(Open {
                            start: n + 1,
                            body: (info == "toml").then(String::new),
                            fence,
                        });
                    }
                }
                Some(mut block) => {
                    if fence.len() >= block.fence.len() && info.is_empty() {
                        if let Some(body) = block.body {
                            blocks.push((block.start, body));
                        }
                    } else {
                        if let Some(body) = &mut block.body {
                            body.push_str(line);
                            body.push('\n');
                        }
                        open = Some(block);
                    }
                }
            }
        }
        blocks
    }

    fn markdown_files() -> Vec<PathBuf> {
        let mut files = vec![repo().join("README.md"), repo().join("SECURITY.md")];
        let mut stack = vec![repo().join("docs/src")];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "md") {
                    files.push(path);
                }
            }
        }
        files.sort();
        files
    }

    #[test]
    fn every_toml_block_in_the_docs_is_accepted_by_the_parser() {
        let mut seen = 0;
        for file in markdown_files() {
            let text = std::fs::read_to_string(&file).unwrap();
            for (line, block) in toml_blocks(&text) {
                seen += 1;
                // Blocks are snippets; unindent them as written inside list items.
                let indent = block
                    .lines()
                    .filter(|l| !l.trim().is_empty())
                    .map(|l| l.len() - l.trim_start().len())
                    .min()
                    .unwrap_or(0);
                let body: String = block
                    .lines()
                    .map(|l| format!("{}\n", l.get(indent..).unwrap_or("")))
                    .collect();
                if let Err(e) = toml::from_str::<Config>(&body) {
                    panic!(
                        "{}:{line}: this TOML block is not a valid Gatehouse config: {}",
                        file.strip_prefix(repo()).unwrap().display(),
                        e.message()
                    );
                }
            }
        }
        assert!(seen >= 10, "found only {seen} TOML blocks");
    }

    #[test]
    fn the_readme_minimal_config_passes_check_config() {
        let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
        let (_, first) = toml_blocks(&readme)
            .into_iter()
            .next()
            .expect("README.md shows a minimal config");
        let env = |name: &str| match name {
            "GH_CLIENT_ID" => Some("Iv1.0123456789abcdef".to_string()),
            "GH_CLIENT_SECRET" => Some("0123456789abcdef0123456789abcdef01234567".to_string()),
            "GATEHOUSE_SESSION_SECRET" => {
                Some("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=".to_string())
            }
            _ => None,
        };
        if let Err(e) = crate::runtime::load_str(&first, "README.md", &env) {
            panic!("README.md's minimal config fails check-config:\n{e}");
        }
    }

    #[test]
    fn every_dotted_key_the_docs_name_is_real() {
        let sections: BTreeSet<&str> = KEYS
            .iter()
            .filter(|k| !k.path.contains('.'))
            .map(|k| k.path)
            .collect();
        let mut files = markdown_files();
        files.push(repo().join("config.example.toml"));
        let mut checked = 0;
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            let words = text.split(|c: char| {
                !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.')
            });
            for word in words {
                let word = word.trim_matches('.');
                let Some((section, _)) = word.split_once('.') else {
                    continue;
                };
                // Host and file names such as `github.com` or `pages.md`.
                let suffix = last(word);
                if !sections.contains(section)
                    || ["com", "md", "toml", "yaml", "rs", "json", "pem"].contains(&suffix)
                {
                    continue;
                }
                checked += 1;
                // `roles.editor` names a role table; `roles.editor.users` a key in it.
                let named;
                let word = if key(section).is_some_and(|k| k.kind == Kind::Map) {
                    let mut parts: Vec<&str> = word.split('.').collect();
                    if parts.len() == 2 {
                        continue;
                    }
                    parts[1] = "NAME";
                    named = parts.join(".");
                    named.as_str()
                } else {
                    word
                };
                let same_as = parent(word)
                    .and_then(key)
                    .and_then(|p| p.same_as)
                    .map(|s| format!("{s}.{}", last(word)));
                assert!(
                    key(word).is_some() || same_as.as_deref().and_then(key).is_some(),
                    "{}: `{word}` is not a config key (the keys are in {PAGE})",
                    file.strip_prefix(repo()).unwrap().display()
                );
            }
        }
        assert!(checked > 100, "found only {checked} dotted keys");
    }

    /// `key = value` lines of config.example.toml, commented out or not, with their section.
    fn example_lines() -> Vec<(usize, String, String, String)> {
        let text = std::fs::read_to_string(repo().join("config.example.toml")).unwrap();
        let mut section = String::new();
        let mut found = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim_start_matches('#').trim();
            if let Some(h) = line
                .strip_prefix("[[")
                .and_then(|h| h.split_once("]]"))
                .or_else(|| line.strip_prefix('[').and_then(|h| h.split_once(']')))
            {
                if h.1.trim().is_empty() || h.1.trim().starts_with('#') {
                    section = h.0.trim().to_string();
                    if let Some(role) = section.strip_prefix("roles.") {
                        assert!(!role.contains('.'), "{section}");
                        section = "roles.NAME".into();
                    }
                }
                continue;
            }
            let Some((name, value)) = line.split_once('=') else {
                continue;
            };
            let name = name.trim();
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            {
                continue;
            }
            found.push((
                n + 1,
                section.clone(),
                name.to_string(),
                value.trim().to_string(),
            ));
        }
        found
    }

    #[test]
    fn every_key_in_config_example_is_real_even_commented_out() {
        let text = std::fs::read_to_string(repo().join("config.example.toml")).unwrap();
        toml::from_str::<Config>(&text).expect("config.example.toml parses");
        let lines = example_lines();
        assert!(lines.len() >= 60, "found only {} keys", lines.len());
        for (n, section, name, value) in lines {
            let path = format!("{section}.{name}");
            let documented = key(&path).or_else(|| {
                let same = key(&section)?.same_as?;
                key(&format!("{same}.{name}"))
            });
            assert!(
                documented.is_some(),
                "config.example.toml:{n}: `{path}` is not a config key"
            );
            let mut root = skeleton();
            let parsed: toml::Table = toml::from_str(&format!("v = {value}"))
                .unwrap_or_else(|e| panic!("config.example.toml:{n}: {value}: {e}"));
            table_at(&mut root, &section).insert(name.clone(), parsed["v"].clone());
            if let Err(e) = parse(root) {
                panic!("config.example.toml:{n}: {path} = {value}: {e}");
            }
        }
    }
}
