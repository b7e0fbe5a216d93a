-- examples/openresty/metrics.lua: per-call figures of the Stream client in
-- Prometheus' text format, fed by the client's on_response hook.
--
--   stream.connect({on_response = metrics.on_response})
--   GET /metrics -> metrics.serve()
--
-- Every worker adds into one ngx.shared dict (`lua_shared_dict
-- stream_metrics` in nginx.conf), so one scrape sees the whole server: a
-- count and a latency histogram per area and status (an HTTP status, or
-- the error kind of a call that got no answer: "timeout", "transport").

local ngx = ngx -- luacheck: ignore 113 (the nginx API, a global inside nginx)

local M = {}

-- Upper bounds of the latency buckets, in seconds.
M.BUCKETS = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10 }

local function dict()
  return ngx.shared.stream_metrics
end

-- The hook: one call's figures into the shared dict (incr is atomic
-- across workers; never yields).
function M.on_response(info)
  local d = dict()
  local labels = info.area .. "\t" .. tostring(info.status or info.kind or "unknown")
  d:incr("n\t" .. labels, 1, 0)
  d:incr("s\t" .. labels, info.duration, 0)
  for i, le in ipairs(M.BUCKETS) do
    if info.duration <= le then d:incr("b\t" .. labels .. "\t" .. i, 1, 0) end
  end
end

local function label_text(area, status, le)
  local s = '{area="' .. area .. '",status="' .. status .. '"'
  if le then s = s .. ',le="' .. le .. '"' end
  return s .. "}"
end

-- The lines of one (area, status) series.
local function series(out, d, area, status)
  local labels = area .. "\t" .. status
  local count = d:get("n\t" .. labels) or 0
  for i, le in ipairs(M.BUCKETS) do
    out[#out + 1] = "stream_request_duration_seconds_bucket" .. label_text(area, status, le) .. " "
      .. (d:get("b\t" .. labels .. "\t" .. i) or 0)
  end
  out[#out + 1] = "stream_request_duration_seconds_bucket" .. label_text(area, status, "+Inf") .. " " .. count
  out[#out + 1] = "stream_request_duration_seconds_sum" .. label_text(area, status) .. " "
    .. string.format("%.6f", d:get("s\t" .. labels) or 0)
  out[#out + 1] = "stream_request_duration_seconds_count" .. label_text(area, status) .. " " .. count
end

-- The exposition text of everything counted so far.
function M.text()
  local d = dict()
  local keys = {}
  for _, k in ipairs(d:get_keys(0)) do
    local area, status = k:match("^n\t([^\t]+)\t([^\t]+)$")
    if area then keys[#keys + 1] = { area, status } end
  end
  table.sort(keys, function(a, b) return a[1] < b[1] or (a[1] == b[1] and a[2] < b[2]) end)
  local out = {
    "# HELP stream_requests_total Calls to Stream, by API area and status (or error kind).",
    "# TYPE stream_requests_total counter",
  }
  for _, k in ipairs(keys) do
    local n = d:get("n\t" .. k[1] .. "\t" .. k[2]) or 0
    out[#out + 1] = "stream_requests_total" .. label_text(k[1], k[2]) .. " " .. n
  end
  out[#out + 1] = "# HELP stream_request_duration_seconds Time of a call to Stream, retries included."
  out[#out + 1] = "# TYPE stream_request_duration_seconds histogram"
  for _, k in ipairs(keys) do series(out, d, k[1], k[2]) end
  return table.concat(out, "\n") .. "\n"
end

-- GET /metrics.
function M.serve()
  ngx.status = 200
  ngx.header["Content-Type"] = "text/plain; version=0.0.4"
  ngx.print(M.text())
end

return M
