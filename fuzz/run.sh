#!/usr/bin/env bash
# Coverage-guided fuzzing of Gatehouse with cargo-fuzz (libFuzzer): each target for SECONDS
# (default 120), one after another, then the executions per target and in total.
#
#   fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]
#
# Environment:
#   FUZZ_TARGET_DIR  build directory (default: fuzz/target; ~2 GB)
#   FUZZ_SANITIZER   none (default: the code under test is safe Rust) or address
#   FUZZ_TOOLCHAIN   a rustup toolchain such as `nightly`; default: the active toolchain with
#                    RUSTC_BOOTSTRAP=1, which is enough for cargo-fuzz on stable
#
# New corpus entries go to fuzz/work/<target>/ (not committed), crashes to
# fuzz/artifacts/<target>/, logs to fuzz/logs/<target>.log. Exit status 1 when a target crashed.
set -euo pipefail

secs="${1:-120}"
[ $# -gt 0 ] && shift
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(session_cookie bearer_token config_load path_normalize safe_redirect)
fi

export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$here/target}"
sanitizer="${FUZZ_SANITIZER:-none}"
cargo=(cargo)
if [ -n "${FUZZ_TOOLCHAIN:-}" ]; then
  cargo=(cargo "+$FUZZ_TOOLCHAIN")
else
  export RUSTC_BOOTSTRAP=1
fi
if ! "${cargo[@]}" fuzz --version >/dev/null 2>&1; then
  echo "fuzz/run.sh: cargo-fuzz is missing; install it with: cargo install cargo-fuzz --locked" >&2
  exit 2
fi
# -a: debug assertions (overflow checks) in the code under test.
flags=(-a --sanitizer "$sanitizer")

mkdir -p logs work artifacts
started=$(date +%s)
if ! "${cargo[@]}" fuzz build "${flags[@]}" >logs/build.log 2>&1; then
  tail -n 30 logs/build.log >&2
  echo "fuzz/run.sh: the fuzz build failed (fuzz/logs/build.log)" >&2
  exit 2
fi
echo "build: $(( $(date +%s) - started ))s"
bin="$CARGO_TARGET_DIR/$(rustc -vV | sed -n 's/^host: //p')/release"
total=0
crashed=()
printf '%-16s %14s %10s  %s\n' target executions exec/s result
for t in "${targets[@]}"; do
  mkdir -p "work/$t" "artifacts/$t" "regressions/$t"
  marker="$(mktemp)"
  seeds=("corpus/$t")
  [ -n "$(ls -A "regressions/$t" 2>/dev/null)" ] && seeds+=("regressions/$t")
  status=0
  # The binaries built above, run directly: every target tests the same build, even when the
  # sources change meanwhile (`cargo fuzz run` would rebuild first).
  "$bin/$t" "work/$t" "${seeds[@]}" -artifact_prefix="artifacts/$t/" \
    -max_total_time="$secs" -print_final_stats=1 -timeout=20 -rss_limit_mb=2048 \
    >"logs/$t.log" 2>&1 </dev/null || status=$?
  execs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "logs/$t.log" | tail -n 1 | grep -o '[0-9]*$' || true)"
  execs="${execs:-0}"
  rate="$(( execs / (secs > 0 ? secs : 1) ))"
  found="$(find "artifacts/$t" -type f -newer "$marker" | sort | tr '\n' ' ')"
  rm -f "$marker"
  if [ "$status" -ne 0 ] || [ -n "$found" ]; then
    result="CRASH (exit $status) ${found:-see logs/$t.log}"
    crashed+=("$t")
  else
    result="ok"
  fi
  total=$(( total + execs ))
  printf '%-16s %14s %10s  %s\n' "$t" "$execs" "$rate" "$result"
done
printf '%-16s %14s\n' total "$total"
echo "($secs s per target, sanitizer $sanitizer, $(( $(date +%s) - started ))s in all)"

if [ ${#crashed[@]} -gt 0 ]; then
  echo "crashed: ${crashed[*]}: reproduce with" >&2
  echo "  $bin/TARGET fuzz/artifacts/TARGET/crash-...   (or: cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run ${flags[*]} TARGET artifacts/TARGET/crash-...)" >&2
  echo "then save the input in fuzz/regressions/TARGET/ (tests/integration/fuzz_smoke.rs replays it)" >&2
  exit 1
fi
