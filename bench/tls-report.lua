-- bench/tls-report.lua: the tables of bench/tls from its result file.
--
--   lua5.4 bench/tls-report.lua bench/out/tls.txt
--
-- Medians over the repetitions; a ratio is the median of the ratios within each
-- repetition (the two sides ran one right after the other). Connections and handshakes
-- are the server's count (its access log), per 10,000 calls of the client.
local file = assert(arg[1], "usage: tls-report.lua RESULTS")

local rows, notes = {}, {}
for l in io.lines(file) do
  if l:match("^#") then
    notes[#notes + 1] = l
  elseif l:match("^part=") then
    local t = {}
    for k, v in l:gmatch("(%S+)=(%S+)") do t[k] = tonumber(v) or v end
    rows[#rows + 1] = t
  end
end

local function median(x)
  if #x == 0 then return nil end
  table.sort(x)
  local m = (#x + 1) / 2
  return (x[math.floor(m)] + x[math.ceil(m)]) / 2
end

-- the rows of one part, case, scheme and client
local function pick(part, case, scheme, client)
  local out = {}
  for _, t in ipairs(rows) do
    if t.part == part and t.case == case and t.scheme == scheme and t.client == client then
      out[#out + 1] = t
    end
  end
  return out
end

local function med(list, field)
  local x = {}
  for _, t in ipairs(list) do x[#x + 1] = t[field] end
  return median(x)
end

-- median over the repetitions of f(a, b) for the rows of a and b of one repetition
local function paired(a, b, f)
  local by, x = {}, {}
  for _, t in ipairs(b) do by[t.rep] = t end
  for _, t in ipairs(a) do
    if by[t.rep] then x[#x + 1] = f(t, by[t.rep]) end
  end
  return median(x)
end
local function rps_ratio(a, b) return a.rps / b.rps end

local function fmt(v, pat)
  if v == nil then return "" end
  local s = string.format(pat or "%.0f", v)
  if not pat then s = s:reverse():gsub("(%d%d%d)(%d)", "%1,%2"):reverse() end
  return s
end

-- the server's count over a run (medians): "calls: connections / handshakes (resumed)",
-- and the handshakes per 10,000 calls
local function conn_cell(list)
  local c, h, r, n = med(list, "conns"), med(list, "handshakes"), med(list, "resumed"), med(list, "requests")
  if not n or n == 0 then return " | " end
  return string.format("%s: %s / %s (%s) | %s", fmt(n), fmt(c), fmt(h), fmt(r), fmt(h * 10000 / n, "%.2f"))
end

local MODES = { { "get-seq", "sequential" }, { "get-par32", "32 in flight" } }
local NAMES = { raw = "raw libcurl", lua = "lua-stream (curl)", js = "getstream JS" }

for _, l in ipairs(notes) do print(l) end
local any_proc = false
for _, t in ipairs(rows) do any_proc = any_proc or t.part == "proc" end
if any_proc then
print()
print("Clients (one process each): requests/s and CPU per call, HTTPS and plain HTTP")
print()
print("| mode | client | https req/s | http req/s | https / http | CPU/call https | CPU/call http | TLS CPU/call"
  .. " | https calls: connections / handshakes (resumed) | handshakes per 10,000 calls |")
print("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|")
for _, m in ipairs(MODES) do
  for _, c in ipairs({ "raw", "lua", "js" }) do
    local s, p = pick("proc", m[1], "https", c), pick("proc", m[1], "http", c)
    if #s > 0 then
      print(string.format("| %s | %s | %s | %s | %s | %s µs | %s µs | %s µs | %s |", m[2], NAMES[c],
        fmt(med(s, "rps")), fmt(med(p, "rps")), fmt(paired(s, p, rps_ratio), "%.2f"),
        fmt(med(s, "cpu_us"), "%.1f"), fmt(med(p, "cpu_us"), "%.1f"),
        fmt(paired(s, p, function(a, b) return a.cpu_us - b.cpu_us end), "%+.1f"), conn_cell(s)))
    end
  end
end
print()
print("Ratios of requests/s (paired), lua-stream against its peers")
print()
print("| mode | lua / raw https | lua / raw http | lua / JS https | lua / JS http"
  .. " | CPU lua / raw https | CPU JS / lua https |")
print("|---|--:|--:|--:|--:|--:|--:|")
for _, m in ipairs(MODES) do
  local function r(scheme, other)
    return paired(pick("proc", m[1], scheme, "lua"), pick("proc", m[1], scheme, other), rps_ratio)
  end
  local ls, rs = pick("proc", m[1], "https", "lua"), pick("proc", m[1], "https", "raw")
  local js = pick("proc", m[1], "https", "js")
  print(string.format("| %s | %s | %s | %s | %s | %s | %s |", m[2],
    fmt(r("https", "raw"), "%.2f"), fmt(r("http", "raw"), "%.2f"),
    fmt(r("https", "js"), "%.1f"), fmt(r("http", "js"), "%.1f"),
    fmt(paired(ls, rs, function(a, b) return a.cpu_us / b.cpu_us end), "%.2f"),
    fmt(paired(js, ls, function(a, b) return a.cpu_us / b.cpu_us end), "%.1f")))
end
end

local any_ngx = false
for _, t in ipairs(rows) do any_ngx = any_ngx or t.part == "ngx" end
if not any_ngx then return end
print()
print("ngx transport inside nginx (wrk into one worker; CPU per call is that worker's;"
  .. " connections / handshakes counted in the timed run)")
print()
print("| wrk connections | handler | https req/s | http req/s | https / http | CPU/call https | CPU/call http"
  .. " | stream / cosocket https | stream / cosocket http"
  .. " | https calls: connections / handshakes (resumed) | handshakes per 10,000 calls |")
print("|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
for _, c in ipairs({ 1, 32 }) do
  local case = "get-c" .. c
  for _, h in ipairs({ "stream", "cosocket" }) do
    local s, p = pick("ngx", case, "https", h), pick("ngx", case, "http", h)
    local function vs(scheme)
      if h ~= "stream" then return "" end
      return fmt(paired(pick("ngx", case, scheme, "stream"), pick("ngx", case, scheme, "cosocket"), rps_ratio), "%.2f")
    end
    print(string.format("| %d | %s | %s | %s | %s | %s µs | %s µs | %s | %s | %s |", c,
      h == "stream" and "lua-stream (ngx)" or "cosocket + cjson",
      fmt(med(s, "rps")), fmt(med(p, "rps")), fmt(paired(s, p, rps_ratio), "%.2f"),
      fmt(med(s, "cpu_us"), "%.1f"), fmt(med(p, "cpu_us"), "%.1f"), vs("https"), vs("http"), conn_cell(s)))
  end
end
