#!/usr/bin/env bash
# Gatehouse load harness: Gatehouse against nginx proxy_pass, on loopback, on one machine.
# Details, knobs and how to read the table: bench/README.md.
#
#   bench/run.sh                 # full run (~8 min on 2 cores): main table + scaling
#   QUICK=1 bench/run.sh         # ~1-2 min: main table only, 1 round of 3 s
#
# Installs nothing. Needs: wrk, nginx (Debian: apt-get install -y wrk nginx), cargo.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")

QUICK=${QUICK:-0}
if [[ $QUICK == 1 ]]; then
  DURATION=${DURATION:-3}; ROUNDS=${ROUNDS:-1}; SCALING=${SCALING:-0}; WORKERS2=${WORKERS2:-0}
  STARTUP_RUNS=${STARTUP_RUNS:-1}
else
  DURATION=${DURATION:-4}; ROUNDS=${ROUNDS:-4}; SCALING=${SCALING:-1}; WORKERS2=${WORKERS2:-1}
  STARTUP_RUNS=${STARTUP_RUNS:-3}
fi
CONNS=${CONNS:-64}                    # connections of the main table
WRK_THREADS=${WRK_THREADS:-2}         # wrk -t
WORKERS=${WORKERS:-1}                 # nginx proxy worker_processes = Gatehouse server.threads
UPSTREAM_WORKERS=${UPSTREAM_WORKERS:-1}
WARMUP=${WARMUP:-1}                   # seconds of unmeasured load per target before round 1
SCALE_CONNS=${SCALE_CONNS:-"64 256 1024"}
SCALE_USERS=${SCALE_USERS:-"10 1000 100000"}
SCALE_RULES=${SCALE_RULES:-"10 10000"}
PORT_BASE=${PORT_BASE:-18400}         # uses PORT_BASE .. PORT_BASE+30 on 127.0.0.1
BUILD=${BUILD:-1}                     # 0: use the binaries already built
REDIS=${REDIS:-1}                     # 1: add "session in Redis" (needs redis-server)
PG=${PG:-1}                           # 1: add "session in PostgreSQL" (needs postgresql)
KEEP=${KEEP:-0}                       # 1: keep the work directory (configs, logs, raw results)
HOLD=${HOLD:-0}                       # 1: start everything, print how to reach it, wait (profiling)
BIN=${GATEHOUSE_BIN:-$ROOT/target/production/gatehouse}
COMPARE_BIN=${COMPARE_BIN:-}          # a second gatehouse binary: adds its public/cookie rows
FLOOR=${FLOOR:-1}                     # 1: the "Pingora alone" row (examples/floor_proxy.rs)
FLOOR_BIN=${FLOOR_BIN:-$ROOT/target/production/examples/floor_proxy}
O2P_BIN=${O2P_BIN:-}                  # an oauth2-proxy binary: adds its rows (none when unset)
MINT=${MINT_BIN:-$ROOT/target/debug/examples/mint_cookie}
SUFFIX=$([[ $QUICK == 1 ]] && echo -quick || true)
OUT=${OUT:-$HERE/results/$(date +%Y-%m-%d)-$(hostname -s)$SUFFIX.md}

die() { echo "bench/run.sh: $*" >&2; exit 1; }
log() { echo "[bench $(date +%H:%M:%S)] $*" >&2; }

# --- tools -----------------------------------------------------------------------------------
PATH=$PATH:/usr/sbin:/sbin
missing=()
for tool in wrk nginx cargo awk; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if ((${#missing[@]})); then
  die "missing: ${missing[*]} — install with: apt-get install -y wrk nginx (and Rust from rustup.rs for cargo)"
fi
[[ -n ${EPOCHREALTIME:-} ]] || die "needs bash 5 (EPOCHREALTIME)"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" || true
(( $(ulimit -n) > 2200 )) || log "warning: open-file limit $(ulimit -n) is low for 1,024 connections"
CLK_TCK=$(getconf CLK_TCK)

# --- build -----------------------------------------------------------------------------------
if [[ $BUILD == 1 ]]; then
  log "cargo build --profile production (gatehouse, as shipped) and the mint_cookie example"
  (cd "$ROOT" && cargo build --profile production --bin gatehouse && cargo build --example mint_cookie) \
    || die "the build failed"
  if [[ $FLOOR == 1 ]]; then
    (cd "$ROOT" && cargo build --profile production --example floor_proxy) || die "the build failed"
  fi
fi
[[ -x $BIN ]] || die "no binary at $BIN (run without BUILD=0)"
[[ -x $MINT ]] || die "no $MINT (run without BUILD=0)"
[[ -z $COMPARE_BIN || -x $COMPARE_BIN ]] || die "COMPARE_BIN=$COMPARE_BIN is not an executable"
if [[ $FLOOR == 1 && ! -x $FLOOR_BIN ]]; then
  log "no floor_proxy at $FLOOR_BIN: no \"Pingora alone\" row (run without BUILD=0, or FLOOR=0)"
  FLOOR=0
fi

# --- processes and the work directory ---------------------------------------------------------
WORK=$(mktemp -d /tmp/gatehouse-bench.XXXXXX)
chmod 755 "$WORK"
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [[ $KEEP == 1 ]]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# The status code of one GET (HTTP/1.1, Connection: close), or nothing when no answer.
# Extra arguments are header lines. Pure bash, so polling costs no process start.
http_status() {
  local port=$1 path=$2 fd line req h
  shift 2
  req="GET $path HTTP/1.1\r\nHost: 127.0.0.1:$port\r\nConnection: close\r\n"
  for h in "$@"; do req+="$h\r\n"; done
  exec {fd}<>"/dev/tcp/127.0.0.1/$port" || return 1
  printf '%b\r\n' "$req" >&"$fd" || { exec {fd}>&-; return 1; }
  IFS= read -r -t 5 line <&"$fd" || true
  exec {fd}>&-
  line=${line%$'\r'}
  line=${line#HTTP/1.? }
  echo "${line%% *}"
}

now_us() { echo "${EPOCHREALTIME/./}"; }

start_nginx() { # name conf port
  local name=$1 conf=$2 port=$3 i
  port_free "$port" || die "port $port is in use (set PORT_BASE)"
  nginx -p "$WORK" -c "$conf" -e "$WORK/$name.error.log" -g 'daemon off;' 2>>"$WORK/$name.stderr" &
  PIDS+=($!)
  eval "PID_$name=$!"
  for i in $(seq 100); do
    port_free "$port" || return 0
    sleep 0.05
  done
  cat "$WORK/$name.stderr" "$WORK/$name.error.log" >&2 2>/dev/null || true
  die "nginx ($name) did not start"
}

# Start Gatehouse with a config; sets PID_<name> and READY_<name> (ms from exec to the first
# 200 for a cookie-authenticated proxied request).
start_gatehouse() { # name config port [binary]
  local name=$1 conf=$2 port=$3 bin=${4:-$BIN} t0 status="" pid
  port_free "$port" || die "port $port is in use (set PORT_BASE)"
  t0=$(now_us)
  env -u RUST_LOG -u GITHUB_USERS "$bin" run --config "$conf" 2>"$WORK/$name.log" &
  pid=$!
  PIDS+=("$pid")
  eval "PID_$name=$pid"
  while [[ $status != 200 ]]; do
    kill -0 "$pid" 2>/dev/null || { tail -20 "$WORK/$name.log" >&2; die "gatehouse ($name) exited"; }
    if (( $(now_us) - t0 > 60000000 )); then
      tail -20 "$WORK/$name.log" >&2
      die "gatehouse ($name) gave no 200 to an authenticated request within 60 s (last: ${status:-no answer})"
    fi
    status=$(http_status "$port" /app/dashboard "Cookie: $COOKIE" 2>/dev/null || true)
  done
  eval "READY_$name=$(( ($(now_us) - t0) / 1000 ))"
}

# oauth2-proxy's rows (O2P_BIN): o2p_start.
# shellcheck source=bench/o2p.sh
source "$HERE/o2p.sh"

stop_pid() {
  local pid keep=()
  kill -TERM "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
  for pid in "${PIDS[@]}"; do [[ $pid == "$1" ]] || keep+=("$pid"); done
  PIDS=("${keep[@]}")
}

# Kilobytes; "-" when not running.
peak_rss_kb() { awk '/^VmHWM/ {print $2; f=1} END {if (!f) print "-"}' "/proc/$1/status" 2>/dev/null || echo -; }
# Child process ids (nginx workers).
children() { pgrep -P "$1" || true; }
# utime+stime clock ticks of pids and their child processes (nginx workers).
cpu_ticks() {
  local pid total=0 t
  for pid in "$@"; do
    for t in $pid $(children "$pid"); do
      total=$(( total + $(awk '{print $14 + $15}' "/proc/$t/stat" 2>/dev/null || echo 0) ))
    done
  done
  echo "$total"
}

# --- configs ----------------------------------------------------------------------------------
UP_PORT=$PORT_BASE
NGX_PORT=$((PORT_BASE + 1))
GH_PORT=$((PORT_BASE + 2))
FWD_PORT=$((PORT_BASE + 3))
FWD_SHIPPED_PORT=$((PORT_BASE + 4))
NGX2_PORT=$((PORT_BASE + 5))
GH2_PORT=$((PORT_BASE + 6))
START_PORT=$((PORT_BASE + 7))
CMP_PORT=$((PORT_BASE + 8))
LOG_PORT=$((PORT_BASE + 9))
SCALE_PORT=$((PORT_BASE + 10))
O2P_PORT=$((PORT_BASE + 25))
REDIS_PORT=$((PORT_BASE + 28))
GHR_PORT=$((PORT_BASE + 29))
PG_PORT=$((PORT_BASE + 26))
GHP_PORT=$((PORT_BASE + 27))
FLOOR_PORT=$((PORT_BASE + 24))

SESSION_SECRET="BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=" # 32 bytes of 7: a test key
HMAC_SECRET="CwsLCwsLCwsLCwsLCwsLCwsLCwsLCwsLCwsLCwsLCws="   # 32 bytes of 11
STORE_SECRET="DQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0="  # 32 bytes of 13: the Redis store key

"$BIN" hash-key --name bench >"$WORK/api-key.txt" 2>/dev/null || die "gatehouse hash-key failed"
API_KEY=$(head -1 "$WORK/api-key.txt")
API_KEY_HASH=$(sed -n 's/^hash = "\(.*\)"$/\1/p' "$WORK/api-key.txt")
[[ $API_KEY == gk_* && -n $API_KEY_HASH ]] || die "unexpected hash-key output: $(cat "$WORK/api-key.txt")"
BASIC=$(printf 'bench:%s' "$API_KEY" | base64 -w0)

# users N: a TOML list of N logins, "bench" last.
users_list() { awk -v n="$1" 'BEGIN { for (i = 1; i < n; i++) printf "\"user%06d\", ", i; printf "\"bench\"" }'; }

# rules N: N [[rules]] of mixed kinds (globs with roles, methods, hosts, public, deny, and a
# path_regex every 500th), none of which matches /app/dashboard: every request walks to the
# default decision, the worst case for a lookup that scans.
rules_toml() {
  awk -v n="$1" 'BEGIN {
    for (i = 0; i < n; i++) {
      print "[[rules]]"
      if (i % 500 == 137) { printf "path_regex = \x27^/rx%d/[0-9]+/(detail|summary)$\x27\nallow = [\"role:editor\"]\n\n", i; continue }
      k = i % 4
      if (k == 0) printf "path = \"/svc%d/**\"\nallow = [\"role:editor\", \"user:user%06d\"]\n\n", i, i % 1000
      else if (k == 1) printf "path = \"/api/%d/*/items\"\nmethods = [\"GET\", \"POST\"]\nallow = [\"role:editor\"]\n\n", i
      else if (k == 2) printf "path = \"/pub%d/**\"\n%spolicy = \"public\"\n\n", i, (i % 10 == 2 ? "host = \"app.example.com\"\n" : "")
      else printf "path = \"/deny%d/*.bak\"\npolicy = \"deny\"\n\n", i
    }
  }'
}

# gatehouse_config file port threads users [rules] [access_log]
# The access log is off like nginx's (one row measures Gatehouse's default, on).
gatehouse_config() {
  local file=$1 port=$2 threads=$3 users=$4 rules=${5:-0} access_log=${6:-false}
  {
    cat <<EOF
[server]
listen = "127.0.0.1:$port"
public_url = "http://127.0.0.1:$port"
threads = $threads

[upstream]
url = "http://127.0.0.1:$UP_PORT"

[github]
client_id = "bench-client"
client_secret = "bench-secret"

[session]
secrets = ["$SESSION_SECRET"]

[access]
allowed_users = [$(users_list "$users")]

[roles.editor]
users = ["user000007"]

[tokens]
hmac_secret = "$HMAC_SECRET"
access_ttl = "12h"
refresh_ttl = "1d"

[[api_keys]]
name = "bench"
hash = "$API_KEY_HASH"
roles = ["viewer"]   # a key without roles is admitted nowhere

[[rules]]
path = "/public/**"
policy = "public"

EOF
    ((rules > 1)) && rules_toml $((rules - 1))
    printf '[log]\nlevel = "info"\naccess_log = %s\n' "$access_log"
  } >"$file"
}

upstream_conf() {
  cat <<EOF
worker_processes $UPSTREAM_WORKERS;
pid $WORK/upstream.pid;
worker_rlimit_nofile 65536;
events { worker_connections 16384; }
http {
    access_log off;
    keepalive_requests 10000000;
    server {
        listen 127.0.0.1:$UP_PORT backlog=4096;
        location / {
            default_type text/plain;
            return 200 "upstream ok\n";
        }
    }
}
EOF
}

# The X-Forwarded-*/X-Real-IP headers Gatehouse sets, set by nginx too (same upstream request).
PROXY_HEADERS='
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Real-IP $remote_addr;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $host;'

proxy_conf() { # name port workers
  cat <<EOF
worker_processes $3;
pid $WORK/$1.pid;
worker_rlimit_nofile 65536;
events { worker_connections 16384; }
http {
    access_log off;
    keepalive_requests 10000000;
    upstream app {
        server 127.0.0.1:$UP_PORT;
        keepalive 1024;           # the size of Gatehouse's upstream pool (gate/server.rs)
        keepalive_requests 10000000;
    }
    server {
        listen 127.0.0.1:$2 backlog=4096;
        location / {
            proxy_pass http://app;$PROXY_HEADERS
        }
    }
}
EOF
}

# nginx auth_request in front, as deploy/nginx/auth_request.conf (trimmed to what a request uses).
# keepalive=1: HTTP/1.1 with a connection pool to Gatehouse; 0: as deploy/nginx ships it
# (no proxy_http_version in /oauth2/auth, so nginx opens a new connection per check).
forward_auth_conf() { # name port keepalive
  local to_gate=""
  [[ $3 == 1 ]] && to_gate='
            proxy_http_version 1.1;
            proxy_set_header Connection "";'
  cat <<EOF
worker_processes $WORKERS;
pid $WORK/$1.pid;
worker_rlimit_nofile 65536;
events { worker_connections 16384; }
http {
    access_log off;
    keepalive_requests 10000000;
    upstream gatehouse {
        server 127.0.0.1:$GH_PORT;
        keepalive 128;
    }
    upstream app {
        server 127.0.0.1:$UP_PORT;
        keepalive 1024;
        keepalive_requests 10000000;
    }
    map \$http_cookie \$app_cookie {
        default \$http_cookie;
        "~^(?<before>(?:.*;)?)\\s*_gatehouse=[^;]*;?\\s*(?<after>.*)\$" "\$before\$after";
    }
    server {
        listen 127.0.0.1:$2 backlog=4096;
        location = /oauth2/auth {
            internal;
            proxy_pass http://gatehouse;$to_gate
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header Host \$host;
            proxy_set_header X-Original-URI \$request_uri;
            proxy_set_header X-Original-Method \$request_method;
            proxy_set_header X-Forwarded-Host \$host;
            proxy_set_header X-Forwarded-Uri "";
            proxy_set_header X-Forwarded-Method "";
        }
        location / {
            auth_request /oauth2/auth;
            auth_request_set \$gatehouse_user    \$upstream_http_x_auth_request_user;
            auth_request_set \$gatehouse_user_id \$upstream_http_x_auth_request_user_id;
            auth_request_set \$gatehouse_email   \$upstream_http_x_auth_request_email;
            auth_request_set \$gatehouse_groups  \$upstream_http_x_auth_request_groups;
            auth_request_set \$gatehouse_roles   \$upstream_http_x_auth_request_roles;
            proxy_set_header X-Forwarded-User   \$gatehouse_user;
            proxy_set_header X-Forwarded-User-Id \$gatehouse_user_id;
            proxy_set_header X-Forwarded-Preferred-Username \$gatehouse_user;
            proxy_set_header X-Forwarded-Email  \$gatehouse_email;
            proxy_set_header X-Forwarded-Groups \$gatehouse_groups;
            proxy_set_header X-Forwarded-Roles  \$gatehouse_roles;
            proxy_set_header Cookie \$app_cookie;
            proxy_pass http://app;$PROXY_HEADERS
        }
    }
}
EOF
}

# --- start everything -------------------------------------------------------------------------
log "work directory $WORK"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
upstream_conf >"$WORK/upstream.conf"
start_nginx upstream "$WORK/upstream.conf" "$UP_PORT"
proxy_conf nginx "$NGX_PORT" "$WORKERS" >"$WORK/nginx.conf"
start_nginx nginx "$WORK/nginx.conf" "$NGX_PORT"

gatehouse_config "$WORK/gatehouse.toml" "$GH_PORT" "$WORKERS" 10
"$MINT" "$WORK/gatehouse.toml" bench 4242 >"$WORK/creds.sh" || die "mint_cookie failed"
# shellcheck disable=SC1091
source "$WORK/creds.sh" # COOKIE=_gatehouse=…, BEARER=…
[[ -n ${COOKIE:-} && -n ${BEARER:-} ]] || die "mint_cookie printed no credentials"

start_gatehouse gh "$WORK/gatehouse.toml" "$GH_PORT"
gatehouse_config "$WORK/gatehouse-log.toml" "$LOG_PORT" "$WORKERS" 10 0 true
start_gatehouse ghlog "$WORK/gatehouse-log.toml" "$LOG_PORT"
# The same gate with server-side sessions in a local Redis: the row beside "session cookie"
# is the extra cost of a Redis-backed request.
if [[ $REDIS == 1 ]] && command -v redis-server >/dev/null; then
  port_free "$REDIS_PORT" || die "port $REDIS_PORT is in use (set PORT_BASE)"
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
    --dir "$WORK" >"$WORK/redis.log" 2>&1 &
  PIDS+=($!)
  PID_redis=$!
  for _ in $(seq 100); do port_free "$REDIS_PORT" || break; sleep 0.05; done
  gatehouse_config "$WORK/gatehouse-redis.toml" "$GHR_PORT" "$WORKERS" 10
  sed -i "/^secrets = /a store = \"redis\"\nredis_url = \"redis://127.0.0.1:$REDIS_PORT\"\nstore_secrets = [\"$STORE_SECRET\"]" \
    "$WORK/gatehouse-redis.toml"
  "$MINT" "$WORK/gatehouse-redis.toml" bench 4242 >"$WORK/creds-redis.sh" || die "mint_cookie (redis) failed"
  COOKIE_REDIS=$(sed -n 's/^COOKIE=//p' "$WORK/creds-redis.sh")
  COOKIE=$COOKIE_REDIS start_gatehouse ghr "$WORK/gatehouse-redis.toml" "$GHR_PORT"
elif [[ $REDIS == 1 ]]; then
  log "redis-server not found: no Redis row (apt-get install -y redis-server, or REDIS=0)"
  REDIS=0
fi
# The same with sessions in a local PostgreSQL (initdb + postgres in the work directory; as
# root, run as the `postgres` user, since PostgreSQL refuses root).
PG_BIN=$(compgen -G '/usr/lib/postgresql/*/bin/initdb' | sort -V | tail -1 | xargs -r dirname)
if [[ $PG == 1 && -n $PG_BIN ]]; then
  port_free "$PG_PORT" || die "port $PG_PORT is in use (set PORT_BASE)"
  as_pg=()
  if [[ $(id -u) == 0 ]]; then
    as_pg=(setpriv --reuid=postgres --regid=postgres --init-groups --)
    mkdir -p "$WORK/pg" && chown postgres:postgres "$WORK/pg"
  fi
  "${as_pg[@]}" "$PG_BIN/initdb" -D "$WORK/pg/data" -A trust -U gatehouse -E UTF8 --locale=C \
    --no-sync --no-instructions >"$WORK/initdb.log" 2>&1 || die "initdb failed (see $WORK/initdb.log)"
  # Durable commits (the default), as in production; fsync off only for the bench's disk.
  "${as_pg[@]}" "$PG_BIN/postgres" -D "$WORK/pg/data" -k "$WORK/pg" -p "$PG_PORT" \
    -c listen_addresses=127.0.0.1 >"$WORK/postgres.log" 2>&1 &
  PIDS+=($!)
  PID_pg=$!
  for _ in $(seq 200); do "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" && break; sleep 0.05; done
  gatehouse_config "$WORK/gatehouse-pg.toml" "$GHP_PORT" "$WORKERS" 10
  sed -i "/^secrets = /a store = \"postgres\"\npostgres_url = \"postgres://gatehouse@127.0.0.1:$PG_PORT/postgres\"\nstore_secrets = [\"$STORE_SECRET\"]" \
    "$WORK/gatehouse-pg.toml"
  "$MINT" "$WORK/gatehouse-pg.toml" bench 4242 >"$WORK/creds-pg.sh" || die "mint_cookie (postgres) failed"
  COOKIE_PG=$(sed -n 's/^COOKIE=//p' "$WORK/creds-pg.sh")
  COOKIE=$COOKIE_PG start_gatehouse ghp "$WORK/gatehouse-pg.toml" "$GHP_PORT"
elif [[ $PG == 1 ]]; then
  log "PostgreSQL not found: no PostgreSQL row (apt-get install -y postgresql, or PG=0)"
  PG=0
fi
forward_auth_conf fwd "$FWD_PORT" 1 >"$WORK/fwd.conf"
start_nginx fwd "$WORK/fwd.conf" "$FWD_PORT"
if [[ $QUICK != 1 ]]; then
  forward_auth_conf fwd_shipped "$FWD_SHIPPED_PORT" 0 >"$WORK/fwd_shipped.conf"
  start_nginx fwd_shipped "$WORK/fwd_shipped.conf" "$FWD_SHIPPED_PORT"
fi
# Pingora's generic proxy with no gate work and the gate's server settings: the floor under
# Gatehouse. It answers every path from the upstream, so start_gatehouse's check passes.
if [[ $FLOOR == 1 ]]; then
  gatehouse_config "$WORK/floor.toml" "$FLOOR_PORT" "$WORKERS" 10
  start_gatehouse floor "$WORK/floor.toml" "$FLOOR_PORT" "$FLOOR_BIN"
fi
if [[ -n $COMPARE_BIN ]]; then
  gatehouse_config "$WORK/gatehouse-cmp.toml" "$CMP_PORT" "$WORKERS" 10
  start_gatehouse cmp "$WORK/gatehouse-cmp.toml" "$CMP_PORT" "$COMPARE_BIN"
fi
o2p_start "$O2P_PORT"
if [[ $WORKERS2 == 1 ]]; then
  proxy_conf nginx2 "$NGX2_PORT" 2 >"$WORK/nginx2.conf"
  start_nginx nginx2 "$WORK/nginx2.conf" "$NGX2_PORT"
  gatehouse_config "$WORK/gatehouse2.toml" "$GH2_PORT" 2 10
  start_gatehouse gh2 "$WORK/gatehouse2.toml" "$GH2_PORT"
fi

# --- scenarios --------------------------------------------------------------------------------
# Each: label, port, path, expected status, connections, the Gatehouse pid whose RSS to report
# (or -), the pids whose CPU time is "the proxy's", header lines.
declare -A S_LABEL S_PORT S_PATH S_EXPECT S_CONNS S_RSS S_CPU S_HDR
scenario() { # key label port path expect conns rss_pid cpu_pids [header...]
  local key=$1
  S_LABEL[$key]=$2; S_PORT[$key]=$3; S_PATH[$key]=$4; S_EXPECT[$key]=$5; S_CONNS[$key]=$6
  S_RSS[$key]=$7; S_CPU[$key]=$8
  shift 8
  local h all=""
  for h in "$@"; do all+="$h"$'\n'; done
  S_HDR[$key]=$all
}

C="Cookie: $COOKIE"
MAIN=(upstream nginx public cookie cookie_log bearer apikey fwd redirect)
scenario upstream "upstream directly (ceiling)" "$UP_PORT" /app/dashboard 200 "$CONNS" - "$PID_upstream" "$C"
scenario nginx "nginx proxy_pass (reference)" "$NGX_PORT" /app/dashboard 200 "$CONNS" - "$PID_nginx" "$C"
scenario public "Gatehouse, public rule" "$GH_PORT" /public/app.js 200 "$CONNS" "$PID_gh" "$PID_gh"
scenario cookie "Gatehouse, session cookie" "$GH_PORT" /app/dashboard 200 "$CONNS" "$PID_gh" "$PID_gh" "$C"
if [[ $REDIS == 1 ]]; then
  MAIN=(upstream nginx public cookie cookie_redis cookie_log bearer apikey fwd redirect)
  scenario cookie_redis "Gatehouse, session in Redis (store = \"redis\")" "$GHR_PORT" /app/dashboard 200 \
    "$CONNS" "$PID_ghr" "$PID_ghr $PID_redis" "Cookie: $COOKIE_REDIS"
fi
if [[ $PG == 1 ]]; then
  MAIN=("${MAIN[@]/cookie_log/cookie_pg cookie_log}")
  read -r -a MAIN <<<"${MAIN[*]}"
  scenario cookie_pg "Gatehouse, session in PostgreSQL (store = \"postgres\")" "$GHP_PORT" /app/dashboard 200 \
    "$CONNS" "$PID_ghp" "$PID_ghp $PID_pg" "Cookie: $COOKIE_PG"
fi
if [[ $FLOOR == 1 ]]; then
  MAIN=("${MAIN[@]/nginx/nginx floor}")
  read -r -a MAIN <<<"${MAIN[*]}"
  scenario floor "Pingora ProxyHttp alone, no gate work (examples/floor_proxy.rs)" "$FLOOR_PORT" /app/dashboard 200 \
    "$CONNS" "$PID_floor" "$PID_floor" "$C"
fi
scenario cookie_log "Gatehouse, session cookie, access log on (its default)" "$LOG_PORT" /app/dashboard 200 \
  "$CONNS" "$PID_ghlog" "$PID_ghlog" "$C"
scenario bearer "Gatehouse, Bearer access token" "$GH_PORT" /app/dashboard 200 "$CONNS" "$PID_gh" "$PID_gh" \
  "Authorization: Bearer $BEARER"
scenario apikey "Gatehouse, API key" "$GH_PORT" /app/dashboard 200 "$CONNS" "$PID_gh" "$PID_gh" \
  "Authorization: Basic $BASIC"
scenario fwd "nginx auth_request → Gatehouse /oauth2/auth" "$FWD_PORT" /app/dashboard 200 "$CONNS" "$PID_gh" \
  "$PID_fwd $PID_gh" "$C"
scenario redirect "Gatehouse, anonymous → 302 to login" "$GH_PORT" /app/dashboard 302 "$CONNS" "$PID_gh" "$PID_gh" \
  "Accept: text/html,application/xhtml+xml,*/*;q=0.8"
if [[ $QUICK != 1 ]]; then
  MAIN+=(fwd_shipped)
  scenario fwd_shipped "… as deploy/nginx ships it (no keepalive to Gatehouse)" "$FWD_SHIPPED_PORT" \
    /app/dashboard 200 "$CONNS" "$PID_gh" "$PID_fwd_shipped $PID_gh" "$C"
fi
if [[ -n $COMPARE_BIN ]]; then
  MAIN+=(public_cmp cookie_cmp)
  scenario public_cmp "COMPARE_BIN, public rule" "$CMP_PORT" /public/app.js 200 "$CONNS" "$PID_cmp" "$PID_cmp"
  scenario cookie_cmp "COMPARE_BIN, session cookie" "$CMP_PORT" /app/dashboard 200 "$CONNS" "$PID_cmp" \
    "$PID_cmp" "$C"
fi
# oauth2-proxy: its CPU column is its process; the RSS column stays Gatehouse's.
if [[ -n $PID_o2p ]]; then
  MAIN+=(o2p_public)
  scenario o2p_public "oauth2-proxy, public route (--skip-auth-route)" "$O2P_PORT" /public/app.js 200 \
    "$CONNS" - "$PID_o2p"
  if [[ -n $O2P_COOKIE ]]; then
    MAIN+=(o2p_cookie)
    scenario o2p_cookie "oauth2-proxy, session cookie" "$O2P_PORT" /app/dashboard 200 "$CONNS" - \
      "$PID_o2p" "Cookie: $O2P_COOKIE"
  fi
fi
W2=()
if [[ $WORKERS2 == 1 ]]; then
  W2=(nginx_w2 public_w2 cookie_w2)
  scenario nginx_w2 "nginx proxy_pass, 2 workers" "$NGX2_PORT" /app/dashboard 200 "$CONNS" - "$PID_nginx2" "$C"
  scenario public_w2 "Gatehouse public rule, 2 threads" "$GH2_PORT" /public/app.js 200 "$CONNS" "$PID_gh2" "$PID_gh2"
  scenario cookie_w2 "Gatehouse session cookie, 2 threads" "$GH2_PORT" /app/dashboard 200 "$CONNS" "$PID_gh2" \
    "$PID_gh2" "$C"
fi

CONN_SET=()
USER_SET=()
RULE_SET=()
if [[ $SCALING == 1 ]]; then
  port=$SCALE_PORT
  for c in $SCALE_CONNS; do
    ((c == CONNS)) && continue # the main table's nginx and cookie rows
    # A Gatehouse of its own per count, so its peak RSS is that count's (glibc keeps freed
    # memory, so a process that once held 1,024 connections stays that large).
    gatehouse_config "$WORK/conns$c.toml" "$port" "$WORKERS" 10
    start_gatehouse "conns$c" "$WORK/conns$c.toml" "$port"
    eval "pid=\$PID_conns$c"
    CONN_SET+=("nginx_c$c" "cookie_c$c")
    scenario "nginx_c$c" "nginx proxy_pass, $c connections" "$NGX_PORT" /app/dashboard 200 "$c" - "$PID_nginx" "$C"
    scenario "cookie_c$c" "Gatehouse session cookie, $c connections" "$port" /app/dashboard 200 "$c" \
      "$pid" "$pid" "$C"
    port=$((port + 1))
    if [[ $FLOOR == 1 ]]; then
      # Pingora alone at the same count, its own process too: how much of the gate's CPU and
      # peak RSS at this count is Pingora's before Gatehouse adds anything.
      gatehouse_config "$WORK/floor_c$c.toml" "$port" "$WORKERS" 10
      start_gatehouse "floor_c$c" "$WORK/floor_c$c.toml" "$port" "$FLOOR_BIN"
      eval "pid=\$PID_floor_c$c"
      CONN_SET+=("floor_c$c")
      scenario "floor_c$c" "Pingora ProxyHttp alone, $c connections" "$port" /app/dashboard 200 "$c" \
        "$pid" "$pid" "$C"
      port=$((port + 1))
    fi
  done
  for u in $SCALE_USERS; do
    log "generating and starting Gatehouse with $u allowed users"
    gatehouse_config "$WORK/users$u.toml" "$port" "$WORKERS" "$u"
    start_gatehouse "users$u" "$WORK/users$u.toml" "$port"
    eval "pid=\$PID_users$u"
    USER_SET+=("users$u")
    scenario "users$u" "$u allowed users" "$port" /app/dashboard 200 "$CONNS" "$pid" "$pid" "$C"
    port=$((port + 1))
  done
  for r in $SCALE_RULES; do
    log "generating and starting Gatehouse with $r rules"
    gatehouse_config "$WORK/rules$r.toml" "$port" "$WORKERS" 10 "$r"
    start_gatehouse "rules$r" "$WORK/rules$r.toml" "$port"
    eval "pid=\$PID_rules$r"
    RULE_SET+=("rules$r")
    scenario "rules$r" "$r rules" "$port" /app/dashboard 200 "$CONNS" "$pid" "$pid" "$C"
    port=$((port + 1))
  done
fi

ALL=("${MAIN[@]}" "${W2[@]}" "${CONN_SET[@]}" "${USER_SET[@]}" "${RULE_SET[@]}")

# Every scenario answers what it should before anything is measured.
for key in "${ALL[@]}"; do
  mapfile -t hdrs < <(printf '%s' "${S_HDR[$key]}")
  got=$(http_status "${S_PORT[$key]}" "${S_PATH[$key]}" "${hdrs[@]}" || true)
  [[ $got == "${S_EXPECT[$key]}" ]] ||
    die "scenario '${S_LABEL[$key]}' answered ${got:-nothing}, expected ${S_EXPECT[$key]} (logs: KEEP=1, $WORK)"
done

if [[ $HOLD == 1 ]]; then
  echo "Everything is up (Ctrl-C stops it). Credentials: source $WORK/creds.sh"
  for key in "${ALL[@]}"; do
    printf '  %-10s http://127.0.0.1:%s%s  %s\n' "$key" "${S_PORT[$key]}" "${S_PATH[$key]}" \
      "$(tr '\n' ' ' <<<"${S_HDR[$key]}" | cut -c1-40)"
  done
  echo "  gatehouse pid $PID_gh (port $GH_PORT), nginx proxy pid $PID_nginx, upstream pid $PID_upstream"
  while :; do sleep 3600 & PIDS+=($!); wait $!; done # `wait` lets Ctrl-C/TERM through at once
fi

# --- measuring --------------------------------------------------------------------------------
RAW=$WORK/raw.tsv
: >"$RAW"
run_wrk() { # key seconds record(0/1) round
  local key=$1 secs=$2 record=$3 round=${4:-0} args=() h out line cpu0 cpu1 rss
  while IFS= read -r h; do [[ -n $h ]] && args+=(-H "$h"); done <<<"${S_HDR[$key]}"
  [[ ${S_RSS[$key]} != - ]] && echo 5 >"/proc/${S_RSS[$key]}/clear_refs" 2>/dev/null || true
  # shellcheck disable=SC2086
  cpu0=$(cpu_ticks ${S_CPU[$key]})
  out=$(wrk -t"$WRK_THREADS" -c"${S_CONNS[$key]}" -d"${secs}s" --timeout 5s --latency \
    -s "$HERE/report.lua" "${args[@]}" "http://127.0.0.1:${S_PORT[$key]}${S_PATH[$key]}" 2>&1) ||
    die "wrk failed for ${S_LABEL[$key]}: $out"
  # shellcheck disable=SC2086
  cpu1=$(cpu_ticks ${S_CPU[$key]})
  [[ $record == 1 ]] || return 0
  rss=-
  [[ ${S_RSS[$key]} != - ]] && rss=$(peak_rss_kb "${S_RSS[$key]}")
  line=$(grep '^RESULT ' <<<"$out") || die "no RESULT from wrk for ${S_LABEL[$key]}: $out"
  echo "$out" >>"$WORK/wrk-$key.txt"
  # key round requests duration_us errors p50 p99 p999 rss_kb cpu_ticks
  awk -v key="$key" -v round="$round" -v rss="$rss" -v cpu=$((cpu1 - cpu0)) '{
    for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
    errors = v["connect"] + v["read"] + v["write"] + v["status"] + v["timeout"]
    print key, round, v["requests"], v["duration_us"], errors, v["p50"], v["p99"], v["p999"], rss, cpu
  }' OFS='\t' <<<"$line" >>"$RAW"
  log "$(printf '%s, round %s: %s' "${S_LABEL[$key]}" "$round" \
    "$(awk -F'\t' 'END {printf "%.0f req/s, p99 %.2f ms, errors %d", $3 / ($4 / 1e6), $7 / 1000, $5}' "$RAW")")"
}

total=$(( ${#ALL[@]} * (ROUNDS * DURATION + WARMUP) ))
log "measuring ${#ALL[@]} scenarios × $ROUNDS round(s) × ${DURATION}s (about $((total / 60 + 1)) min)"
for key in "${ALL[@]}"; do
  ((WARMUP > 0)) && run_wrk "$key" "$WARMUP" 0
done
# Rounds alternate direction (A B C … C B A …) so drift cancels between scenarios.
for round in $(seq "$ROUNDS"); do
  if ((round % 2 == 1)); then order=("${ALL[@]}"); else order=(); for ((i = ${#ALL[@]} - 1; i >= 0; i--)); do order+=("${ALL[$i]}"); done; fi
  for key in "${order[@]}"; do run_wrk "$key" "$DURATION" 1 "$round"; done
done

# First successful request after start: a fresh process each time, main config.
STARTUP=()
gatehouse_config "$WORK/startup.toml" "$START_PORT" "$WORKERS" 10
for i in $(seq "$STARTUP_RUNS"); do
  start_gatehouse "start$i" "$WORK/startup.toml" "$START_PORT"
  eval "STARTUP+=(\$READY_start$i)"
  eval "stop_pid \$PID_start$i"
  for _ in $(seq 100); do port_free "$START_PORT" && break; sleep 0.05; done
done

# --- report -----------------------------------------------------------------------------------
# Mean over rounds of requests/s and of each percentile; errors summed; RSS the highest.
summary() { # key → "rps p50_us p99_us p999_us errors rss_kb cpu_us_per_req rounds_min rounds_max"
  awk -F'\t' -v key="$1" -v tck="$CLK_TCK" '$1 == key {
      n++; r = $3 / ($4 / 1e6); rps += r; p50 += $6; p99 += $7; p999 += $8; err += $5
      if ($9 != "-" && $9 > rss) rss = $9
      if (n == 1 || r < lo) lo = r; if (r > hi) hi = r
      cpu += $10; req += $3
    }
    END {
      if (!n) { print "- - - - - - - - -"; exit }
      printf "%.0f %.0f %.0f %.0f %d %s %.1f %.0f %.0f\n", rps / n, p50 / n, p99 / n, p999 / n, err,
        (rss ? rss : "-"), cpu / tck * 1e6 / req, lo, hi
    }' "$RAW"
}
ms() { awk -v us="$1" 'BEGIN { printf "%.2f", us / 1000 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
mb() { [[ $1 == - ]] && echo - || awk -v kb="$1" 'BEGIN { printf "%.1f", kb / 1024 }'; }

declare -A RPS P99
row() { # key reference_key
  local key=$1 ref=$2 rps p50 p99 p999 err rss cpu lo hi rrps rp99 spread
  read -r rps p50 p99 p999 err rss cpu lo hi <<<"$(summary "$key")"
  RPS[$key]=$rps; P99[$key]=$p99
  read -r rrps _ rp99 _ <<<"$(summary "$ref")"
  spread=$([[ $lo == "$hi" ]] && echo "$rps" || echo "$lo–$hi")
  printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "${S_LABEL[$key]}" "$rps" "$spread" \
    "$(ratio "$rps" "$rrps")" "$(ms "$p50")" "$(ms "$p99")" "$(ratio "$p99" "$rp99")" "$(ms "$p999")" "$err" \
    "$(mb "$rss")" "$cpu"
}
HEAD='| Scenario | req/s | min–max of rounds | ×nginx req/s | p50 ms | p99 ms | ×nginx p99 | p99.9 ms | errors | Gatehouse peak RSS MB | proxy CPU µs/req |
|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|'

verdict() { if awk -v a="$1" -v op="$2" -v b="$3" 'BEGIN { exit !(op == "ge" ? a >= b : a <= b) }'; then echo met; else echo MISSED; fi; }

{
  commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
  dirty=$(git -C "$ROOT" --no-optional-locks status --porcelain 2>/dev/null | grep -c . || true)
  echo "# Gatehouse benchmark — $(date '+%Y-%m-%d %H:%M %Z') on $(hostname -s)"
  echo
  echo "- Commit $commit$([[ $dirty != 0 ]] && echo " plus $dirty uncommitted file(s)"); $(nproc) CPUs" \
    "($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)), Linux $(uname -r)," \
    "$(nginx -v 2>&1 | sed 's/.*: //'), $(wrk -v 2>&1 | head -1 | awk '{print "wrk " $2}')."
  echo "- Everything on 127.0.0.1 on this one machine: wrk -t$WRK_THREADS, ${DURATION}s per round," \
    "$ROUNDS round(s) alternating A→Z, Z→A, ${WARMUP}s warm-up each; $CONNS connections unless said."
  echo "- Upstream: nginx \`return 200\` (12-byte body), $UPSTREAM_WORKERS worker. Proxies: nginx" \
    "worker_processes = Gatehouse server.threads = $WORKERS (the 2-thread rows: 2); nginx keepalive 1024" \
    "to the upstream (Gatehouse's upstream pool size); access logs off in both (nginx access_log off," \
    "Gatehouse [log] access_log = false) except the row that says otherwise."
  echo "- Every request carries the same session cookie (nginx rows too), except the public," \
    "Bearer, API-key and redirect rows. The redirect row expects 302; errors = socket errors +" \
    "responses ≥ 400. RSS: VmHWM, reset before each round (glibc keeps freed memory, so each" \
    "connection count has a Gatehouse process of its own). CPU: utime+stime of the proxy" \
    "(nginx master+workers, Gatehouse, or both for auth_request) per request."
  if [[ -n $PID_o2p ]]; then
    echo "- oauth2-proxy rows: $O2P_VERSION; GitHub provider, cookie sessions (cookie minted" \
      "offline by bench/o2p_cookie.py), request log off, GOMAXPROCS=$WORKERS; /public/ by" \
      "--skip-auth-route.$([[ -z $O2P_COOKIE ]] && echo " No session-cookie row: the minted cookie was refused.")"
  fi
  echo "- Load average (1/5/15 min) before: $LOAD_BEFORE; after: $(cut -d' ' -f1-3 /proc/loadavg)" \
    "(anything else running on the machine shows up here and in the numbers)."
  echo
  echo "## Main scenarios"
  echo
  echo "$HEAD"
  for key in "${MAIN[@]}"; do row "$key" nginx; done
  if ((${#W2[@]})); then
    echo
    echo "## 2 worker processes / threads (upstream still 1 worker)"
    echo
    echo "$HEAD"
    for key in "${W2[@]}"; do row "$key" nginx_w2; done
  fi
  if [[ $SCALING == 1 ]]; then
    echo
    echo "## Connections (session cookie vs nginx at the same count)"
    echo
    echo "$HEAD"
    for c in $SCALE_CONNS; do
      if ((c == CONNS)); then
        row nginx nginx; row cookie nginx
        if [[ $FLOOR == 1 ]]; then row floor nginx; fi
        continue
      fi
      row "nginx_c$c" "nginx_c$c"
      row "cookie_c$c" "nginx_c$c"
      if [[ $FLOOR == 1 ]]; then row "floor_c$c" "nginx_c$c"; fi
    done
    echo
    echo "## Allowed users and rules (session cookie; ratios to nginx at $CONNS connections)"
    echo
    echo "$HEAD"
    for key in "${USER_SET[@]}" "${RULE_SET[@]}"; do row "$key" nginx; done
  fi
  echo
  echo "## Start-up: first successful request after exec (ms)"
  echo
  echo "- Main config, $STARTUP_RUNS fresh start(s): ${STARTUP[*]} ms (target ≤ 100)."
  if [[ $SCALING == 1 ]]; then
    line="- Scaling configs:"
    for key in "${USER_SET[@]}" "${RULE_SET[@]}"; do
      eval "line+=\" ${S_LABEL[$key]} \${READY_$key} ms;\""
    done
    echo "$line"
  fi
  echo
  echo "## Targets (docs/src/development/benchmarks.md)"
  echo
  echo "| Target | Measured | |"
  echo "|---|---|---|"
  rps_ratio=$(ratio "${RPS[cookie]}" "${RPS[nginx]}")
  p99_ratio=$(ratio "${P99[cookie]}" "${P99[nginx]}")
  echo "| Cookie req/s ≥ 0.9× nginx at $CONNS | ${rps_ratio}× | $(verdict "$rps_ratio" ge 0.9) |"
  echo "| Cookie p99 ≤ 1.2× nginx at $CONNS | ${p99_ratio}× | $(verdict "$p99_ratio" le 1.2) |"
  if [[ $SCALING == 1 && " $SCALE_CONNS " == *" 256 "* ]]; then
    k=$( ((CONNS == 256)) && echo "" || echo _c256)
    rps_ratio=$(ratio "${RPS[cookie$k]}" "${RPS[nginx$k]}")
    p99_ratio=$(ratio "${P99[cookie$k]}" "${P99[nginx$k]}")
    echo "| Cookie req/s ≥ 0.9× nginx at 256 | ${rps_ratio}× | $(verdict "$rps_ratio" ge 0.9) |"
    echo "| Cookie p99 ≤ 1.2× nginx at 256 | ${p99_ratio}× | $(verdict "$p99_ratio" le 1.2) |"
  fi
  if [[ $SCALING == 1 && " $SCALE_CONNS " == *" 1024 "* ]]; then
    k=$( ((CONNS == 1024)) && echo "" || echo _c1024)
    read -r _ _ _ _ _ rss _ <<<"$(summary "cookie$k")"
    below=""
    if [[ $FLOOR == 1 ]]; then
      read -r _ _ _ _ _ floor_rss _ <<<"$(summary "floor$k")"
      below=" (Pingora alone: $(mb "$floor_rss") MB)"
    fi
    echo "| Peak RSS ≤ 40 MB at 1,024 connections | $(mb "$rss") MB$below | $(verdict "$(mb "$rss")" le 40) |"
  fi
  # Proxy CPU per request at $CONNS connections, with what Pingora alone costs on the same
  # settings: the part of each number that is below Gatehouse.
  cpu_of() { local c; read -r _ _ _ _ _ _ c _ <<<"$(summary "$1")"; echo "$c"; }
  floor_cpu=""
  if [[ $FLOOR == 1 ]]; then floor_cpu=" (Pingora alone: $(cpu_of floor) µs)"; fi
  for target in "cookie 25 Session-cookie" "public 20 Public-rule"; do
    read -r key most what <<<"$target"
    cpu=$(cpu_of "$key")
    echo "| ${what/-/ } proxy CPU ≤ $most µs per request at $CONNS | $cpu µs$floor_cpu | $(verdict "$cpu" le "$most") |"
  done
  log_cpu=$(cpu_of cookie_log)
  log_ratio=$(ratio "$log_cpu" "$(cpu_of cookie)")
  echo "| Access log on (the default) ≤ 1.15× the CPU of log off | ${log_ratio}× ($log_cpu µs) | $(verdict "$log_ratio" le 1.15) |"
  worst=$(printf '%s\n' "${STARTUP[@]}" | sort -n | tail -1)
  echo "| First successful request ≤ 100 ms after start | ${worst} ms (worst of ${#STARTUP[@]}) | $(verdict "$worst" le 100) |"
  echo
  echo "Reproduce: \`$(env | grep -E '^(QUICK|DURATION|ROUNDS|CONNS|SCALING|WORKERS|WORKERS2|UPSTREAM_WORKERS|WRK_THREADS|WARMUP)=' | tr '\n' ' ')bench/run.sh\`"
} >"$WORK/report.md"

mkdir -p "$(dirname "$OUT")"
cp "$WORK/report.md" "$OUT"
cat "$OUT"
log "written to ${OUT#"$ROOT"/}"
