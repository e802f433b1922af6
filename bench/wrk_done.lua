-- wrk's done() hook for the bench scripts (loaded with dofile by wrk_event.lua and
-- wrk_recommend.lua): one machine-readable line that bench/ingest.py's parse_wrk reads,
--   BENCH_RESULT requests=N non2xx=N connect=N read=N write=N timeout=N p50_us=N p99_us=N
-- (non2xx: wrk's own count of statuses above 399).

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH_RESULT requests=%d non2xx=%d connect=%d read=%d write=%d timeout=%d "
      .. "p50_us=%d p99_us=%d\n",
    summary.requests, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99)
  ))
end
