-- bench/soak_openresty.lua: the nginx soak (run it with bench/soak-openresty; not part of
-- `make test`). nginx with SOAK_OR_WORKERS workers (default 2), each holding ONE client
-- made in init_worker_by_lua (bench/soak_openresty_app.lua), in front of a private local
-- server; SOAK_OR_CLIENTS (default 12) concurrent HTTP clients keep requests in flight for
-- SOAK_OR_SECONDS (default 20), mixing plain calls, client:parallel with ngx.sleep in the
-- tasks, parallel writes read back, go/step, and a per-request client closed while its
-- calls are in flight. SOAK_OR_SEED fixes the request arguments.
--
-- Violations (any one fails the run, exit status 1):
--   hang      no full answer within SOAK_OR_DEADLINE seconds (default 15)
--   status    an answer other than 200 (the handler's error is printed)
--   wrong     values other than the ones the request's arguments determine
--   worker    an answer from a worker that was not there at the start, a worker pid
--             that changed, or "signal" / "exited on" / [alert] / [error] in nginx's error log
-- Prints one line per operation (count, p50, p99, max in ms) and a last line
-- "soak-openresty: PASS ..." or "soak-openresty: FAIL ...".
local ROOT = assert(os.getenv("SOAK_OR_ROOT"), "run bench/soak-openresty")
package.path = ROOT .. "/spec/?.lua;" .. package.path
local socket = require "socket"
local cjson = require "cjson.safe"
local server = require "helpers.server"
local S = require "openresty.support"
local burst = require "openresty.burst"

local function num(name, default)
  local v = os.getenv(name)
  if v == nil or v == "" then return default end
  return assert(tonumber(v), name .. " must be a number")
end

local SECONDS = num("SOAK_OR_SECONDS", 20)
local CLIENTS = num("SOAK_OR_CLIENTS", 12)
local WORKERS = num("SOAK_OR_WORKERS", 2)
local DEADLINE = num("SOAK_OR_DEADLINE", 15)
local SEED = num("SOAK_OR_SEED", os.time())
local USERS = 16
math.randomseed(SEED)

-- operation, weight, tasks per request
local MIX = {
  { "plain", 3, 1 }, { "parallel", 4, 6 }, { "write", 2, 3 }, { "go", 2, 4 }, { "close", 1, 4 },
}

---------------------------------------------------------------- nginx

local function q(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function module_dir()
  for _, d in ipairs({ "/usr/share/nginx/modules", "/usr/lib/nginx/modules" }) do
    if S.read_file(d .. "/ngx_http_lua_module.so") then return d end
  end
  error("libnginx-mod-http-lua is missing")
end

local function conf_text(prefix, port, s)
  local md = module_dir()
  return table.concat({
    "load_module " .. md .. "/ndk_http_module.so;",
    "load_module " .. md .. "/ngx_http_lua_module.so;",
    io.popen("id -u"):read("*l") == "0" and "user root root;" or "",
    "worker_processes " .. WORKERS .. ";", "daemon on;",
    "pid " .. prefix .. "/logs/nginx.pid;", "error_log " .. prefix .. "/logs/error.log warn;",
    "events { worker_connections 1024; }",
    "http {", "  access_log off;",
    "  client_body_temp_path " .. prefix .. "/logs/body;",
    "  lua_package_path '" .. ROOT .. "/bench/?.lua;" .. ROOT .. "/lua/?.lua;" .. ROOT .. "/lua/?/init.lua;;';",
    "  lua_package_cpath '" .. ROOT .. "/build/jit/?.so;;';",
    ("  init_worker_by_lua_block { require('soak_openresty_app').init_worker(%q, %q, %q) }")
      :format(s.base_url, s.api_key, s.api_secret),
    "  server {", "    listen 127.0.0.1:" .. port .. " backlog=512;",
    "    location /soak/ { content_by_lua_block { require('soak_openresty_app').run() } }",
    "  }", "}",
  }, "\n")
end

-- nginx in a private prefix; returns {url =, prefix =, stop =}.
local function start_nginx(s)
  local prefix = os.tmpname()
  os.remove(prefix)
  assert(os.execute("mkdir -p " .. q(prefix .. "/logs") .. " " .. q(prefix .. "/conf")))
  local port = S.free_port()
  local f = assert(io.open(prefix .. "/conf/nginx.conf", "w"))
  f:write(conf_text(prefix, port, s))
  f:close()
  local ok = os.execute("nginx -p " .. q(prefix .. "/") .. " -c " .. q(prefix .. "/conf/nginx.conf")
    .. " -e " .. q(prefix .. "/logs/error.log"))
  local ng = { url = "http://127.0.0.1:" .. port, prefix = prefix }
  function ng.stop()
    local pid = (S.read_file(prefix .. "/logs/nginx.pid") or ""):match("%d+")
    if pid then os.execute("kill -TERM " .. pid .. "; sleep 0.5") end
    os.execute("rm -rf " .. q(prefix))
  end
  assert(ok == true or ok == 0, "nginx did not start: " .. (S.read_file(prefix .. "/logs/error.log") or ""))
  for _ = 1, 250 do
    local c = socket.connect("127.0.0.1", port)
    if c then c:close() return ng end
    socket.sleep(0.02)
  end
  ng.stop()
  error("nginx does not answer")
end

---------------------------------------------------------------- requests

-- The request's arguments and the values a correct answer holds.
local function plan(op, n, i)
  local seed = math.random(0, 1e6)
  local nonce = ("%d-%d-%d"):format(SEED, i, seed)
  local path = ("/soak/%s?n=%d&users=%d&seed=%d&nonce=%s"):format(op, n, USERS, seed, nonce)
  local want = {}
  for j = 1, n do
    if op == "write" then
      want[j] = nonce .. ":" .. j
    elseif op ~= "close" then
      want[j] = (seed * 7 + j * 13) % USERS + 1
    end
  end
  return path, want
end

local function pick_op()
  local total = 0
  for _, m in ipairs(MIX) do total = total + m[2] end
  local r = math.random() * total
  for _, m in ipairs(MIX) do
    r = r - m[2]
    if r <= 0 then return m[1], m[3] end
  end
  return MIX[1][1], MIX[1][3]
end

-- One request over its own connection, sent at once, read as it comes (HTTP/1.0: the
-- answer ends when the connection closes, never chunked).
local function start_request(ng, i)
  local op, n = pick_op()
  local path, want = plan(op, n, i)
  local c = assert(socket.tcp())
  c:settimeout(5)
  assert(c:connect("127.0.0.1", tonumber(ng.url:match(":(%d+)$"))))
  assert(c:send("GET " .. path .. " HTTP/1.0\r\nHost: soak\r\n\r\n"))
  c:settimeout(0)
  return { sock = c, op = op, n = n, want = want, path = path, parts = {}, t0 = socket.gettime() }
end

---------------------------------------------------------------- checks

local violations, counts, times = {}, {}, {}
local MAX_LISTED = 20

local function violation(kind, text)
  violations[kind] = (violations[kind] or 0) + 1
  violations.list = violations.list or {}
  if #violations.list < MAX_LISTED then violations.list[#violations.list + 1] = kind .. ": " .. text end
end

local function same(a, b)
  if #a ~= #b then return false end
  for i = 1, #a do
    if a[i] ~= b[i] then return false end
  end
  return true
end

-- Checks one finished request; `pids` are the workers seen at the start.
local function check(r, raw, pids)
  local seconds = socket.gettime() - r.t0
  counts[r.op] = (counts[r.op] or 0) + 1
  times[r.op] = times[r.op] or {}
  times[r.op][#times[r.op] + 1] = seconds
  local status, body = raw:match("^HTTP/1%.%d (%d+).-\r\n\r\n(.*)$")
  local res = body and cjson.decode(body)
  if status ~= "200" then
    return violation("status", r.path .. " -> " .. tostring(status) .. " " .. tostring(body or raw):sub(1, 300))
  end
  if type(res) ~= "table" or not pids[res.pid] then
    return violation("worker", r.path .. " answered by " .. tostring(res and res.pid))
  end
  local values = res.values or {}
  if r.op == "close" then
    for j = 1, r.n do
      if values[j] ~= "ok" and values[j] ~= "closed" and values[j] ~= "late" then
        return violation("wrong", r.path .. " -> " .. tostring(body))
      end
    end
  elseif not same(values, r.want) then
    violation("wrong", r.path .. " -> " .. tostring(body))
  end
end

---------------------------------------------------------------- the run

local function finish(inflight, k, pids)
  local r = inflight[k]
  r.sock:close()
  table.remove(inflight, k)
  check(r, table.concat(r.parts), pids)
end

-- Reads what arrived; true when the request is over (answered, or past its deadline).
local function poll(r, pids, inflight, k)
  local data, err, partial = r.sock:receive(65536)
  local chunk = data or partial
  if chunk and chunk ~= "" then r.parts[#r.parts + 1] = chunk end
  if err == "closed" then
    finish(inflight, k, pids)
    return true
  end
  if socket.gettime() - r.t0 > DEADLINE then
    r.sock:close()
    table.remove(inflight, k)
    counts[r.op] = (counts[r.op] or 0) + 1
    violation("hang", r.path .. " (no full answer in " .. DEADLINE .. " s)")
    return true
  end
  return false
end

-- Keeps CLIENTS requests in flight until SECONDS have passed, then lets them finish.
local function drive(ng, pids)
  local inflight, started = {}, 0
  local stop_at = socket.gettime() + SECONDS
  while true do
    while #inflight < CLIENTS and socket.gettime() < stop_at do
      started = started + 1
      inflight[#inflight + 1] = start_request(ng, started)
    end
    if #inflight == 0 then break end
    local socks = {}
    for i, r in ipairs(inflight) do socks[i] = r.sock end
    socket.select(socks, nil, 0.05)
    for k = #inflight, 1, -1 do poll(inflight[k], pids, inflight, k) end
  end
  return started
end

local function percentile(list, p)
  table.sort(list)
  return list[math.max(1, math.ceil(#list * p))] or 0
end

local function log_problems(ng, pids)
  local now = {}
  for _, pid in ipairs(burst.worker_pids(ng.prefix)) do now[#now + 1] = pid end
  local before = {}
  for pid in pairs(pids) do before[#before + 1] = pid end
  table.sort(before)
  if not same(now, before) then
    violation("worker", "workers were " .. table.concat(before, ",") .. ", now " .. table.concat(now, ","))
  end
  local log = S.read_file(ng.prefix .. "/logs/error.log") or ""
  for line in log:gmatch("[^\n]+") do
    if line:find("signal", 1, true) or line:find("exited on", 1, true) or line:find("[alert]", 1, true)
      or line:find("[error]", 1, true) then
      violation("worker", line:sub(1, 300))
    end
  end
end

local function summary(started, seconds)
  for _, m in ipairs(MIX) do
    local t = times[m[1]] or {}
    print(("  %-9s %6d requests  p50 %6.1f ms  p99 %6.1f ms  max %6.1f ms"):format(m[1],
      counts[m[1]] or 0, percentile(t, 0.5) * 1000, percentile(t, 0.99) * 1000, percentile(t, 1) * 1000))
  end
  local n = 0
  for _, kind in ipairs({ "hang", "status", "wrong", "worker" }) do n = n + (violations[kind] or 0) end
  for _, line in ipairs(violations.list or {}) do print("  violation " .. line) end
  print(("soak-openresty: %s %d requests in %.1f s (%d clients, %d workers, seed %d): hangs %d, status %d,"
    .. " wrong %d, worker %d"):format(n == 0 and "PASS" or "FAIL", started, seconds, CLIENTS, WORKERS, SEED,
    violations.hang or 0, violations.status or 0, violations.wrong or 0, violations.worker or 0))
  return n == 0
end

-- The worker pids, from answers (each worker answers some of many requests).
local function worker_pids(ng)
  local pids = {}
  for _, pid in ipairs(burst.worker_pids(ng.prefix)) do pids[pid] = true end
  local urls = {}
  for i = 1, 8 do urls[i] = ng.url .. "/soak/setup?users=" .. USERS end
  for _, a in ipairs(burst.curls(urls, 20)) do
    assert(a.status == 200, "setup failed: " .. a.body)
  end
  return pids
end

local function main()
  local s = server.start({ workers = 2 })
  local ok, ng = pcall(start_nginx, s)
  if not ok then
    s:stop()
    error(ng, 0)
  end
  local passed
  ok = xpcall(function()
    local pids = worker_pids(ng)
    local t0 = socket.gettime()
    local started = drive(ng, pids)
    local seconds = socket.gettime() - t0
    log_problems(ng, pids)
    passed = summary(started, seconds)
  end, function(e) print("soak-openresty: FAIL " .. debug.traceback(tostring(e))) end)
  ng.stop()
  s:stop()
  os.exit(ok and passed and 0 or 1)
end

main()
