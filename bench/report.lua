-- wrk script for bench/run.sh: prints one machine-readable RESULT line at the end.
-- Latencies are in microseconds. `status` counts responses with a status >= 400 (wrk's
-- "Non-2xx or 3xx responses"); connect/read/write/timeout are socket errors.
-- Request headers come from wrk's -H flags; this script adds no per-request Lua work.
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d duration_us=%d connect=%d read=%d write=%d status=%d timeout=%d " ..
    "p50=%d p99=%d p999=%d max=%d\n",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9), latency.max))
end
