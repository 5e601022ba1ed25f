# shellcheck shell=bash
# oauth2-proxy beside Gatehouse, for the comparison people ask for (bench/README.md, O2P_BIN).
# Sourced by bench/run.sh, which defines log, port_free, http_status, stop_pid, WORK, PIDS,
# UP_PORT, WORKERS and HERE. A missing or broken oauth2-proxy never fails the run: every
# problem is one log line and fewer rows.

# 32 bytes of 17, base64url: a test key, like the bench's other secrets.
O2P_SECRET=ERERERERERERERERERERERERERERERERERERERERERE

# o2p_start PORT: start "$O2P_BIN" on 127.0.0.1:PORT in front of the bench's upstream (GitHub
# provider, cookie sessions, /public/** skipped as Gatehouse's public rule, request log off like
# every proxy here, GOMAXPROCS = WORKERS like Gatehouse's threads) and mint its session cookie.
# Sets PID_o2p (empty: no oauth2-proxy rows), O2P_COOKIE (empty: no cookie row) and
# O2P_VERSION. Always returns 0.
o2p_start() {
  local port=$1 status="" version
  PID_o2p=""
  O2P_COOKIE=""
  O2P_VERSION=""
  if [[ -z ${O2P_BIN:-} ]]; then
    log "O2P_BIN not set: no oauth2-proxy row"
    return 0
  fi
  if [[ ! -f $O2P_BIN || ! -x $O2P_BIN ]]; then
    log "O2P_BIN=$O2P_BIN is not an executable file: no oauth2-proxy row"
    return 0
  fi
  version=$(timeout 5 "$O2P_BIN" --version 2>&1 </dev/null | head -1 || true)
  if [[ $version != *oauth2-proxy* ]]; then
    log "O2P_BIN=$O2P_BIN is not oauth2-proxy (its --version said: ${version:-nothing}): no oauth2-proxy row"
    return 0
  fi
  if ! port_free "$port"; then
    log "port $port is in use (set PORT_BASE): no oauth2-proxy row"
    return 0
  fi
  GOMAXPROCS=$WORKERS "$O2P_BIN" \
    --provider=github --client-id=bench-client --client-secret=bench-secret \
    --cookie-secret="$O2P_SECRET" --cookie-secure=false \
    --upstream="http://127.0.0.1:$UP_PORT/" --http-address="127.0.0.1:$port" \
    --redirect-url="http://127.0.0.1:$port/oauth2/callback" \
    --email-domain='*' --skip-provider-button --reverse-proxy \
    --skip-auth-route='^/public/' --request-logging=false \
    </dev/null >"$WORK/o2p.log" 2>&1 &
  PIDS+=($!)
  PID_o2p=$!
  for _ in $(seq 200); do # up to 10 s
    status=$(http_status "$port" /ping 2>/dev/null || true)
    [[ $status == 200 ]] && break
    kill -0 "$PID_o2p" 2>/dev/null || break
    sleep 0.05
  done
  if [[ $status != 200 ]]; then
    log "oauth2-proxy gave no 200 on /ping within 10 s (last: ${status:-no answer}): no oauth2-proxy row; its log:"
    tail -5 "$WORK/o2p.log" >&2 || true
    stop_pid "$PID_o2p"
    PID_o2p=""
    return 0
  fi
  # shellcheck disable=SC2034 # read by bench/run.sh's report
  O2P_VERSION=$version
  if ! command -v python3 >/dev/null || ! command -v openssl >/dev/null; then
    log "python3 and openssl mint oauth2-proxy's session cookie: without them only its public-route row"
    return 0
  fi
  O2P_COOKIE=$("$HERE/o2p_cookie.py" "$O2P_SECRET" bench bench@example.com 2>>"$WORK/o2p.log" || true)
  status=$(http_status "$port" /app/dashboard "Cookie: $O2P_COOKIE" 2>/dev/null || true)
  if [[ -z $O2P_COOKIE || $status != 200 ]]; then
    log "oauth2-proxy answered ${status:-nothing} to the minted session cookie (bench/o2p_cookie.py): only its public-route row"
    O2P_COOKIE=""
  fi
  return 0
}
