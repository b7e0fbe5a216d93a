-- spec/openresty/ngx_cases.lua: runs inside the nginx that transport_spec.lua starts.
--
--   location /up/...  upstream()  answers the transport under test: chunked, close-delimited,
--                                 big, slow, redirect, echo (what was sent), status
--   location /t       run()       runs ?case=NAME against those answers with the ngx transport
--                                 and answers a JSON summary that the spec checks
--
-- Nothing here asserts: the spec does, on the summaries.
local ngx = ngx -- luacheck: ignore 113 (the nginx API, a global inside nginx)
local core = require "stream.core"
local T = require "stream.transport.ngx"

local M = {}

local function now()
  return core.monotime()
end

---------------------------------------------------------------- upstream

function M.upstream()
  local uri = ngx.var.uri
  local args = ngx.req.get_uri_args()
  ngx.header["X-Connection"] = ngx.var.connection
  if uri == "/up/chunked" then
    for i = 1, 5 do
      ngx.print(("chunk%d;"):format(i))
      ngx.flush(true)
    end
  elseif uri == "/up/close-delimited" then
    ngx.print(string.rep("c", 20000))
    ngx.flush(true)
    ngx.print("end")
  elseif uri == "/up/big" then
    local n = tonumber(args.n)
    ngx.header["Content-Length"] = n
    ngx.print(string.rep("b", n))
  elseif uri == "/up/big-chunked" then
    local n = tonumber(args.n)
    while n > 0 do
      local k = math.min(n, 65536)
      ngx.print(string.rep("k", k))
      ngx.flush(true)
      n = n - k
    end
  elseif uri == "/up/slow" then
    ngx.sleep(tonumber(args.ms) / 1000)
    ngx.header["Content-Length"] = 4
    ngx.print("slow")
  elseif uri == "/up/redirect" then
    ngx.status = 302
    ngx.header["Location"] = "http://example.invalid/elsewhere"
    ngx.print("{}")
  elseif uri == "/up/drop-reused" then
    if tonumber(ngx.var.connection_requests) > 1 then return ngx.exit(444) end
    ngx.print("fresh")
  elseif uri == "/up/status" then
    ngx.status = tonumber(args.s)
    ngx.print('{"status":' .. args.s .. '}')
  else -- /up/echo, /up/no-keepalive: what arrived, and on which connection
    ngx.req.read_body()
    ngx.header["X-Dup"] = { "first", "last" }
    ngx.header["X-Mixed-Case"] = "Value"
    local body = core.json_encode({
      request_line = ngx.var.request,
      headers = ngx.req.get_headers(100, true),
      body = ngx.req.get_body_data() or "",
      connection = tonumber(ngx.var.connection),
    })
    ngx.header["Content-Length"] = #body
    ngx.print(body)
  end
end

---------------------------------------------------------------- cases

local function base()
  return "http://127.0.0.1:" .. ngx.var.server_port
end

local function new(opts)
  local s = {
    timeout = 5, connect_timeout = 2, max_response_bytes = 16 * 1024 * 1024,
    headers = { Authorization = "a.b.c", ["stream-auth-type"] = "jwt", Accept = "application/json",
      ["User-Agent"] = "cases/1" },
    body_headers = { ["Content-Type"] = "application/json" },
  }
  for k, v in pairs(opts or {}) do s[k] = v end
  return T.new(core, s)
end

-- A transport request.
local function rq(method, url, body, timeout)
  return { method = method, url = url, body = body, timeout = timeout }
end

-- {status =, body =, headers =} | nil, {kind =, message =, sent =, reason =}  ->  a table
local function summary(res, err)
  if res then
    return { status = res.status, body = res.body, headers = res.headers }
  end
  return { kind = err.kind, message = err.message, sent = err.sent, reason = err.reason }
end

local function echo(t, method, path, body)
  local s = summary(t:request(rq(method, base() .. path, body)))
  if s.status then s.echo = core.json_decode(s.body) end
  return s
end

local cases = {}

function cases.chunked()
  return summary(new():request(rq("GET", base() .. "/up/chunked")))
end

function cases.close_delimited()
  local t = new()
  local a = summary(t:request(rq("GET", base() .. "/up/close-delimited")))
  a.size = a.body and #a.body
  a.tail = a.body and a.body:sub(-3)
  a.body = nil
  local b = echo(t, "GET", "/up/echo")
  return { first = a, next_connection = b.echo.connection, stats = t:stats() }
end

function cases.limits()
  local t = new({ max_response_bytes = 100000 })
  local out = {
    fits = summary(t:request(rq("GET", base() .. "/up/big?n=100000"))),
    over = summary(t:request(rq("GET", base() .. "/up/big?n=100001"))),
    over_chunked = summary(t:request(rq("GET", base() .. "/up/big-chunked?n=300000"))),
    fits_chunked = summary(t:request(rq("GET", base() .. "/up/big-chunked?n=99999"))),
  }
  out.fits.size, out.fits.body = out.fits.body and #out.fits.body, nil
  out.fits_chunked.size, out.fits_chunked.body = out.fits_chunked.body and #out.fits_chunked.body, nil
  out.after = summary(t:request(rq("GET", base() .. "/up/status?s=200")))
  return out
end

function cases.timeout()
  local t = new({ timeout = 0.3 })
  local t0 = now()
  local s = summary(t:request(rq("GET", base() .. "/up/slow?ms=2000")))
  s.seconds = now() - t0
  -- the per-call timeout argument wins over the option
  t0 = now()
  local s2 = summary(t:request(rq("GET", base() .. "/up/slow?ms=2000", nil, 0.1)))
  s2.seconds = now() - t0
  return { option = s, argument = s2 }
end

function cases.refused()
  -- ?port= was free a moment ago: nothing listens there
  return summary(new():request(rq("GET", "http://127.0.0.1:" .. ngx.var.arg_port .. "/x")))
end

function cases.no_resolver()
  return summary(new():request(rq("GET", "http://stream-no-such-host.invalid/x")))
end

function cases.redirect()
  return summary(new():request(rq("POST", base() .. "/up/redirect", "{}")))
end

function cases.headers()
  local t = new()
  return {
    get = echo(t, "GET", "/up/echo?a=1&b=2"),
    post = echo(t, "POST", "/up/echo", '{"x":1}'),
    empty_post = echo(t, "POST", "/up/echo"),
    put = echo(t, "PUT", "/up/echo", "[]"),
    delete = echo(t, "DELETE", "/up/echo"),
  }
end

function cases.keepalive()
  local t = new()
  local conns = {}
  for i = 1, 20 do
    conns[i] = echo(t, "GET", "/up/echo").echo.connection
  end
  local stats = t:stats()
  local after_close = {}
  for i = 1, 2 do
    after_close[i] = echo(t, "GET", "/up/no-keepalive").echo.connection
  end
  return { connections = conns, stats = stats, after_close = after_close, final = t:stats() }
end

function cases.stale()
  -- "localhost" (from /etc/hosts) names a pool of its own, empty so far
  local t = new()
  local url = "http://localhost:" .. ngx.var.server_port
  local first = summary(t:request(rq("GET", url .. "/up/echo")))
  -- on its kept-alive connection the server closes without answering
  local s = summary(t:request(rq("PUT", url .. "/up/drop-reused", "{}")))
  -- a POST is never sent twice: the error comes back (reason "transfer")
  local post = summary(t:request(rq("POST", url .. "/up/drop-reused", "{}")))
  return {
    first = tonumber(first.headers["x-connection"]),
    second = s.headers and tonumber(s.headers["x-connection"]),
    status = s.status, message = s.message, stats = t:stats(), post = post,
  }
end

function cases.submit()
  local t = new()
  local t0 = now()
  local handles = {}
  for i = 1, 8 do
    handles[i] = t:submit(rq("GET", base() .. "/up/slow?ms=300"))
  end
  local during = t:stats().in_flight
  local loops = 0
  while t:perform(1) > 0 do loops = loops + 1 end
  local seconds = now() - t0
  local out = { seconds = seconds, during = during, loops = loops, stats = t:stats(), results = {} }
  for i, h in ipairs(handles) do
    out.results[i] = summary(h:result())
    out.results[i].done = h:done()
  end
  -- perform(0) and timeout() with nothing in flight
  out.idle_perform = t:perform(0)
  out.idle_timeout = t:timeout() or "none"
  return out
end

function cases.max_connections()
  local t = new({ max_connections = 2 })
  local t0 = now()
  local handles = {}
  for i = 1, 6 do
    handles[i] = t:submit(rq("GET", base() .. "/up/slow?ms=200"))
  end
  while t:perform(1) > 0 do end
  local statuses = {}
  for i, h in ipairs(handles) do statuses[i] = (h:result()).status end
  return { seconds = now() - t0, statuses = statuses, stats = t:stats() }
end

function cases.timer()
  local done, result = false, nil
  local url = base() .. "/up/status?s=200" -- ngx.var is not available in timers
  local ok, err = ngx.timer.at(0, function()
    result = summary(new():request(rq("GET", url)))
    result.phase = ngx.get_phase()
    done = true
  end)
  if not ok then return { error = err } end
  local t0 = now()
  while not done and now() - t0 < 5 do ngx.sleep(0.01) end
  return result or { error = "timer did not run" }
end

function cases.sleep()
  local t = new()
  local t0 = now()
  t:sleep(0.2)
  return { seconds = now() - t0 }
end

function cases.proxy()
  -- nginx accepts absolute-form request targets, so this very server can
  -- play an HTTP proxy: the host in the URL is never looked up
  local t = new({ proxy = "http://user%40x:secret@127.0.0.1:" .. ngx.var.server_port })
  return echo(t, "GET", "/up/echo")
end

function cases.bad_url()
  local t = new()
  return {
    scheme = summary(t:request(rq("GET", "ftp://127.0.0.1/x"))),
    host = summary(t:request(rq("GET", "http://:80/x"))),
  }
end

function cases.closed()
  local t = new()
  t:close()
  local ok, err = pcall(t.request, t, rq("GET", base() .. "/up/status?s=200"))
  return { ok = ok, error = tostring(err), stats = t:stats() }
end

-- TLS cases: ?port= is an HTTPS peer whose certificate names "localhost",
-- signed by the CA in lua_ssl_trusted_certificate.
function cases.tls()
  local port = ngx.var.arg_port
  local t = new()
  local out = {
    good = summary(t:request(rq("GET", "https://localhost:" .. port .. "/api/v1.0/user/tls/"))),
    again = summary(t:request(rq("GET", "https://localhost:" .. port .. "/api/v1.0/user/tls/"))),
    mismatch = summary(t:request(rq("GET", "https://127.0.0.1:" .. port .. "/api/v1.0/user/tls/"))),
  }
  out.stats = t:stats()
  local nv = new({ verify = false })
  out.unverified = summary(nv:request(rq("GET", "https://127.0.0.1:" .. port .. "/api/v1.0/user/tls/")))
  out.unverified_stats = nv:stats()
  return out
end

-- Three calls to an HTTPS peer (?port=) that closes every connection after
-- one request: three connections, three handshakes.
function cases.tls_resume()
  local t = new()
  local url = "https://localhost:" .. ngx.var.arg_port .. "/api/v1.0/user/tls/"
  local out = { calls = {} }
  for i = 1, 3 do out.calls[i] = summary(t:request(rq("GET", url))) end
  out.stats = t:stats()
  return out
end

-- Through a CONNECT proxy (?proxy=PORT) to the HTTPS peer (?port=).
function cases.tls_proxy()
  local t = new({ proxy = "http://u:p@127.0.0.1:" .. ngx.var.arg_proxy })
  local url = "https://localhost:" .. ngx.var.arg_port .. "/api/v1.0/user/tls/"
  local out = { first = summary(t:request(rq("GET", url))), second = summary(t:request(rq("GET", url))) }
  out.stats = t:stats()
  return out
end

function cases.choice()
  local stream = require "stream"
  local function name(opts)
    local c = stream.connect("key", "a-secret-for-choice-cases-0123", "1", opts)
    return c._transport.name
  end
  return { default = name(), ngx = name({ transport = "ngx" }), curl = name({ transport = "curl" }) }
end

function cases.ca_file()
  new({ ca_file = "/nonexistent/ca.pem" })
  new({ ca_file = "/nonexistent/ca.pem" })
  return { made = true }
end

function M.run()
  local name = ngx.var.arg_case
  local f = cases[name]
  local body
  if not f then
    body = core.json_encode({ raised = "no case " .. tostring(name) })
  else
    local ok, res = pcall(f)
    body = assert(core.json_encode(ok and res or { raised = tostring(res) }))
  end
  ngx.header["Content-Type"] = "application/json"
  ngx.header["Content-Length"] = #body
  ngx.print(body)
end

-- Calls from init_worker_by_lua and log_by_lua through a whole client:
-- the error text is kept in a shared dict for the /t case "phases".
local function client_call_error(key)
  local stream = require "stream"
  local c = stream.connect("key", "a-secret-for-phase-cases-0123", "1", { base_url = "http://127.0.0.1:9/api/" })
  local res, err = c:user("phase"):get()
  ngx.shared.cases:set(key, res and "no error" or (err.kind .. "|" .. tostring(err)))
end

function M.init_worker()
  client_call_error("init_worker")
end

function M.log()
  client_call_error("log")
end

function cases.phases()
  return { init_worker = ngx.shared.cases:get("init_worker"), log = ngx.shared.cases:get("log") }
end

-- A call from a phase without cosockets (header_filter): the error goes
-- into a response header.
function M.header_filter()
  local t = new()
  local res, err = t:request(rq("GET", base() .. "/up/status?s=200"))
  local h = t:submit(rq("GET", base() .. "/up/status?s=200"))
  local _, err2 = h:result()
  ngx.header["X-Result"] = table.concat({ tostring(res), tostring(err.kind), tostring(err.reason),
    tostring(err.sent), tostring(h:done()), tostring(err2.kind), tostring(t:stats().requests) }, " ")
  ngx.header["X-Message"] = err.message
end

return M
