-- wrk script for bench/loadgen.py: GET prefix .. sku .. suffix with a random catalog sku
-- per request (args: prefix, suffix, sku count; count 0 means the fixed path prefix),
-- then one machine-readable result line.

local prefix, suffix, count

function init(args)
  prefix, suffix, count = args[1], args[2] or "", tonumber(args[3] or "0")
  math.randomseed(os.time() + math.floor(os.clock() * 1000000))
end

function request()
  if count > 0 then
    local sku = string.format("BENCH-%06d", math.random(0, count - 1))
    return wrk.format("GET", prefix .. sku .. suffix)
  end
  return wrk.format("GET", prefix)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, '
    .. '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.status, e.timeout))
end
