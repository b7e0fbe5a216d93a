-- spec/openresty/support.lua: what the OpenResty specs share.
--
--   local S = require "openresty.support"
--   local ex = S.example({ base_url =, api_key =, api_secret =, ca_file =, env = {} })
--       -- examples/openresty/run --daemon with one worker; ex.url, ex.prefix, ex:stop()
--   local ng = S.nginx(http_block)   -- an nginx of its own (one worker) whose http{}
--       -- block is http_block with @PORT@, @PREFIX@ and @ROOT@ filled in; ng.url, ng:stop();
--       -- Lua modules come from lua/ and spec/, stream/core.so from build/jit
--   status, body, headers = S.request(method, url [, {headers =, body =, timeout =}])
--   results, seconds = S.concurrent(list)   -- list of {method, url [, opts]}: all sent at
--       -- once over their own connections, answers read as they come (one process, select)
--   S.json_request(method, url, opts) -> status, decoded body (lua-cjson), headers, raw
--
-- Every nginx started here is stopped by :stop(), and when the Lua state closes (a
-- failing spec cannot leave one behind). Ports are free loopback ports, never 80.
local socket = require "socket"
local cjson = require "cjson.safe"
local server = require "helpers.server"

local M = {}
M.root = server.root
M.free_port = server.free_port

local function q(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local read_file = require("helpers.http").read_file
M.read_file = read_file

local running = {}
M._sentinel = setmetatable({}, { __gc = function()
  for n in pairs(running) do n:stop() end
end })

---------------------------------------------------------------- HTTP client

local function dechunk(body)
  local out, pos = {}, 1
  while true do
    local size_hex, after = body:match("^(%x+)[^\r\n]*\r\n()", pos)
    if not size_hex then return nil end
    local size = tonumber(size_hex, 16)
    if size == 0 then break end
    out[#out + 1] = body:sub(after, after + size - 1)
    pos = after + size + 2
  end
  return table.concat(out)
end

local function parse_response(raw)
  local head, body = raw:match("^(.-)\r\n\r\n(.*)$")
  if not head then return 0, raw, {} end
  local status = tonumber(head:match("^HTTP/%d%.%d (%d%d%d)"))
  local headers = {}
  for name, value in head:gmatch("\r\n([^:\r\n]+):[ \t]*([^\r\n]*)") do
    headers[name:lower()] = value
  end
  if (headers["transfer-encoding"] or ""):lower():find("chunked", 1, true) then
    body = dechunk(body) or body
  end
  return status or 0, body, headers
end

local function request_text(method, url, opts)
  local host, port, path = url:match("^http://([^:/]+):(%d+)(.*)$")
  assert(host, "only http://host:port/ URLs: " .. url)
  if path == "" then path = "/" end
  local lines = { method .. " " .. path .. " HTTP/1.1", "Host: " .. host .. ":" .. port, "Connection: close" }
  for k, v in pairs(opts.headers or {}) do lines[#lines + 1] = k .. ": " .. v end
  local body = opts.body
  if body then
    lines[#lines + 1] = "Content-Length: " .. #body
    if not (opts.headers and opts.headers["Content-Type"]) then
      lines[#lines + 1] = "Content-Type: application/json"
    end
  end
  return host, tonumber(port), table.concat(lines, "\r\n") .. "\r\n\r\n" .. (body or "")
end

-- One request over its own connection (Connection: close).
function M.request(method, url, opts)
  opts = opts or {}
  local host, port, text = request_text(method, url, opts)
  local c = assert(socket.tcp())
  c:settimeout(opts.timeout or 10)
  assert(c:connect(host, port))
  assert(c:send(text))
  local raw, err, partial = c:receive("*a")
  c:close()
  raw = raw or partial
  assert(raw and raw ~= "", "no answer from " .. url .. ": " .. tostring(err))
  return parse_response(raw)
end

function M.read_json(text)
  return cjson.decode(text)
end

function M.json_request(method, url, opts)
  local status, body, headers = M.request(method, url, opts)
  return status, cjson.decode(body), headers, body
end

-- Sends every request at once, each over its own connection, and reads the
-- answers as they arrive. Returns { {status =, body =, headers =, seconds =}, ... }
-- in order and the wall time from the first send to the last answer.
function M.concurrent(list, timeout)
  local conns, pending = {}, {}
  local start = socket.gettime()
  for i, r in ipairs(list) do
    local host, port, text = request_text(r[1], r[2], r[3] or {})
    local c = assert(socket.tcp())
    c:settimeout(5)
    assert(c:connect(host, port))
    assert(c:send(text))
    c:settimeout(0)
    conns[i] = { sock = c, parts = {} }
    pending[#pending + 1] = c
  end
  local by_sock = {}
  for i, c in ipairs(conns) do by_sock[c.sock] = i end
  local results = {}
  local deadline = start + (timeout or 10)
  while #pending > 0 do
    local left = deadline - socket.gettime()
    assert(left > 0, "concurrent requests timed out")
    local readable = socket.select(pending, nil, left)
    for _, s in ipairs(readable) do
      local i = by_sock[s]
      local data, err, partial = s:receive(65536)
      local chunk = data or partial
      if chunk and chunk ~= "" then conns[i].parts[#conns[i].parts + 1] = chunk end
      if err == "closed" then
        s:close()
        local status, body, headers = parse_response(table.concat(conns[i].parts))
        results[i] = { status = status, body = body, headers = headers, seconds = socket.gettime() - start }
        for k, p in ipairs(pending) do
          if p == s then table.remove(pending, k) break end
        end
      end
    end
  end
  return results, socket.gettime() - start
end

---------------------------------------------------------------- nginx

local Nginx = {}
Nginx.__index = Nginx

local function alive(pid)
  return os.execute("kill -0 " .. pid .. " 2>/dev/null") == true
end

function Nginx:stop()
  if self.stopped then return end
  self.stopped = true
  running[self] = nil
  if self.stop_command then
    os.execute(self.stop_command .. " >/dev/null 2>&1")
    return
  end
  local pid = (read_file(self.prefix .. "/logs/nginx.pid") or ""):match("%d+")
  if pid then
    os.execute("kill -TERM " .. pid .. " 2>/dev/null")
    for _ = 1, 250 do
      if not alive(pid) then break end
      socket.sleep(0.02)
    end
  end
  os.execute("rm -rf " .. q(self.prefix))
end

function Nginx:error_log()
  return read_file(self.prefix .. "/logs/error.log") or ""
end

local function wait_port(port)
  for _ = 1, 250 do
    local c = socket.connect("127.0.0.1", port)
    if c then c:close() return true end
    socket.sleep(0.02)
  end
  return false
end

local MODULE_DIR = (function()
  for _, d in ipairs({ "/usr/share/nginx/modules", "/usr/lib/nginx/modules" }) do
    if read_file(d .. "/ngx_http_lua_module.so") then return d end
  end
  return "/usr/lib/nginx/modules"
end)()

-- An nginx with one worker whose http{} block is `http_block` (tried on
-- another port when some other program takes the chosen one meanwhile).
function M.nginx(http_block, main_block)
  local last
  for _ = 1, 3 do
    local ok, n = pcall(M.nginx_once, http_block, main_block)
    if ok then return n end
    last = n
    if not tostring(n):find("Address already in use", 1, true) then break end
  end
  error(last, 2)
end

-- stream/core.so for nginx's LuaJIT, built when missing (`make LUA_VERSION=jit`).
function M.ensure_jit_core()
  if read_file(M.root .. "/build/jit/stream/core.so") then return end
  local ok = os.execute("make -C " .. q(M.root) .. " --no-print-directory LUA_VERSION=jit >/dev/null")
  assert(ok == true or ok == 0, "could not build build/jit/stream/core.so (make LUA_VERSION=jit)")
end

function M.nginx_once(http_block, main_block)
  M.ensure_jit_core()
  local port = M.free_port()
  local prefix = os.tmpname()
  os.remove(prefix)
  assert(os.execute("mkdir -p " .. q(prefix .. "/logs") .. " " .. q(prefix .. "/conf")))
  local user = io.popen("id -u"):read("*l") == "0" and "user root root;" or ""
  local function fill(s)
    return (s:gsub("@PORT@", tostring(port)):gsub("@PREFIX@", prefix):gsub("@ROOT@", M.root))
  end
  local conf = table.concat({
    "load_module " .. MODULE_DIR .. "/ndk_http_module.so;",
    "load_module " .. MODULE_DIR .. "/ngx_http_lua_module.so;",
    user,
    "worker_processes 1;",
    "daemon on;",
    "pid " .. prefix .. "/logs/nginx.pid;",
    "error_log " .. prefix .. "/logs/error.log warn;",
    fill(main_block or ""),
    "events { worker_connections 256; }",
    "http {",
    "  access_log off;",
    "  client_body_temp_path " .. prefix .. "/logs/body;",
    "  proxy_temp_path " .. prefix .. "/logs/proxy;",
    "  fastcgi_temp_path " .. prefix .. "/logs/fastcgi;",
    "  uwsgi_temp_path " .. prefix .. "/logs/uwsgi;",
    "  scgi_temp_path " .. prefix .. "/logs/scgi;",
    "  lua_package_path '" .. M.root .. "/lua/?.lua;" .. M.root .. "/lua/?/init.lua;" .. M.root
      .. "/spec/?.lua;;';",
    "  lua_package_cpath '" .. M.root .. "/build/jit/?.so;;';",
    fill(http_block),
    "}",
  }, "\n")
  return M.start_conf(conf, port, prefix)
end

-- Starts nginx on a whole nginx.conf of the caller's (it must write its pid to
-- PREFIX/logs/nginx.pid and listen on `port`) in `prefix`, which holds logs/ and conf/;
-- `env` (a map) is the environment nginx starts with, for `env NAME;` lines.
function M.start_conf(conf, port, prefix, env)
  local f = assert(io.open(prefix .. "/conf/nginx.conf", "w"))
  f:write(conf)
  f:close()
  local vars = {}
  for k, v in pairs(env or {}) do vars[#vars + 1] = k .. "=" .. q(v) end
  local ok = os.execute((vars[1] and "env " .. table.concat(vars, " ") .. " " or "")
    .. "nginx -p " .. q(prefix .. "/") .. " -c " .. q(prefix .. "/conf/nginx.conf")
    .. " -e " .. q(prefix .. "/logs/error.log") .. " 2>" .. q(prefix .. "/logs/start.log"))
  local n = setmetatable({ port = port, url = "http://127.0.0.1:" .. port, prefix = prefix }, Nginx)
  running[n] = true
  if not (ok == true or ok == 0) or not wait_port(port) then
    local log = (read_file(prefix .. "/logs/start.log") or "") .. n:error_log()
    n:stop()
    error("nginx did not start: " .. log, 0)
  end
  return n
end

-- The example of examples/openresty, started with its own run script
-- (--daemon, one worker) against the given upstream.
function M.example(opts)
  opts = opts or {}
  local env = {
    "STREAM_BASE_URL=" .. q(opts.base_url),
    "STREAM_API_KEY=" .. q(opts.api_key or "local-api-key"),
    "STREAM_API_SECRET=" .. q(opts.api_secret or "local-api-secret-change-me-0123456789"),
  }
  for k, v in pairs(opts.env or {}) do env[#env + 1] = k .. "=" .. q(v) end
  local args = { "--daemon", "--workers", "1" }
  if opts.ca_file then args[#args + 1] = "--ca-file"; args[#args + 1] = q(opts.ca_file) end
  local errf = os.tmpname()
  local p = assert(io.popen("env " .. table.concat(env, " ") .. " " .. q(M.root .. "/examples/openresty/run")
    .. " " .. table.concat(args, " ") .. " 2>" .. q(errf)))
  local out = p:read("*a")
  local ok = p:close()
  local err = read_file(errf) or ""
  os.remove(errf)
  local vars = {}
  for k, v in out:gmatch("([%w_]+)=([^\n]*)") do vars[k] = v end
  if not ok or not vars.PROFILES_PREFIX then
    error("examples/openresty/run failed: " .. err .. out, 2)
  end
  local n = setmetatable({
    url = vars.PROFILES_URL, prefix = vars.PROFILES_PREFIX,
    stop_command = q(M.root .. "/examples/openresty/run") .. " --stop " .. q(vars.PROFILES_PREFIX),
  }, Nginx)
  running[n] = true
  return n
end

return M
