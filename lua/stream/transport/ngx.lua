-- stream.transport.ngx: the transport for OpenResty / lua-nginx-module.
-- HTTP/1.1 over nginx cosockets (ngx.socket.tcp), so a call yields the
-- current request's coroutine instead of blocking the nginx worker.
-- Same contract as stream.transport.curl (documented at its top). This
-- file is the nginx adapter: phases, connections and their pool, TLS,
-- proxies, semaphores, stats and the stale-connection rule; the HTTP/1.1
-- wire code (request text, status line, headers, body framings, the size
-- cap) is transport/http1.lua.
--
-- What it does:
-- - one connection per request at a time, taken from and given back to
--   nginx's per-worker keep-alive pool (setkeepalive); the pool is named
--   after scheme, host, port, TLS verification and proxy, so connections of
--   different trust settings never mix. stats().connects counts connections
--   opened (sock:getreusedtimes() == 0), so a pooled one is not counted;
-- - TLS with sslhandshake(host name as SNI, verify): the trusted CAs are
--   nginx's `lua_ssl_trusted_certificate` (a ca_file option cannot be set
--   per client here; it is ignored, with a warning in the error log, and
--   verification stays on against nginx's list);
-- - Content-Length, chunked and read-until-close answers, 1xx skipped,
--   answers capped at max_response_bytes and their headers at
--   max_header_bytes, no redirect followed, header names
--   lower-cased with the last one winning (as the curl transport returns
--   them); a pooled connection that turns out closed is replaced by a new
--   one when the request could not be sent on it, or (only for a request
--   the client marked idempotent) when nothing came back;
-- - one deadline per request (its timeout, from the start of the call):
--   connecting, sending and every read are given only what is left of it,
--   and the reads come back with each arrival (http1.lua), so a server
--   that drips bytes cannot hold a call past it;
-- - light threads for the scheduler: context() (ngx.ctx, where the scheduler
--   keeps each request's tasks), spawn() (ngx.thread.spawn: every task of
--   parallel/go is a light thread of its request) and signal() (an
--   ngx.semaphore its tasks post when they finish); submit() runs one
--   request in a light thread and perform(wait) waits on a semaphore, for
--   direct use by one request at a time;
-- - close() cannot cut an exchange in flight short (only the thread reading
--   a cosocket may close it): such a request ends when its answer is read or
--   its timeout passes, then fails with reason "closed";
-- - host names are looked up in /etc/hosts first (read once per worker),
--   then by nginx's `resolver`;
-- - an http:// proxy (absolute-form requests; CONNECT for https targets);
-- - a request's own headers (req.headers) in its text, each replacing a
--   fixed header of the same name (http1.lua's header rules, as curl's).
-- - a body streamed from a file (req.body_parts): the file is opened
--   before any I/O (one that cannot be is kind "invalid", reason "file")
--   and read and sent 64 KiB at a time after the request text
--   (http1.send_stream), so it is never whole in memory.
--
-- What it deliberately does not do: gzip (no Accept-Encoding is sent),
-- HTTP/2, redirects, per-client CA files, SOCKS proxies. It refuses to run
-- in nginx phases where cosockets are disabled (init, init_worker, set,
-- header_filter, body_filter, log, balancer, ...): there a call fails at once,
-- before any I/O, as kind "invalid" with reason "phase", and the message
-- names the phase and the remedy (ngx.timer.at).

local ngx = ngx -- luacheck: ignore 113 (the nginx API, a global inside nginx)
local http1 = require "stream.transport.http1"
local config = require "stream.config"

local find, sub, byte = string.find, string.sub, string.byte
local pack = table.pack or function(...) return { n = select("#", ...), ... } end
local unpack = table.unpack or unpack -- luacheck: ignore 143

local M = {}
M.__index = M
M.name = "ngx"

local STALE_RETRIES = 3 -- pooled connections tried before a fresh one must do
-- ngx.sleep's resolution; ngx.sleep(0) would spin (and warn) on stock nginx.
local MIN_SLEEP = 0.001

-- Phases (ngx.get_phase()) whose code may use cosockets, light threads,
-- semaphores and ngx.sleep. "preread" is the stream subsystem's.
local YIELDABLE = {
  rewrite = true, access = true, content = true, timer = true,
  ssl_cert = true, ssl_session_fetch = true, ssl_client_hello = true, preread = true,
}

local has_semaphore, semaphore = pcall(require, "ngx.semaphore")
if not has_semaphore then semaphore = nil end

-- nil when requests can be made now, else why not.
local function phase_problem()
  local phase = ngx.get_phase()
  if YIELDABLE[phase] then return nil end
  return "cannot send a request from nginx's " .. phase .. " phase: cosockets are disabled there"
    .. " (the call would have to block the worker); make the call from rewrite, access, content"
    .. " or timer code, e.g. run it later with ngx.timer.at(0, function() ... end)"
end

local ms = http1.ms

---------------------------------------------------------------- addresses

local hosts -- name -> address from /etc/hosts (IPv4 first), read once per worker

local function load_hosts()
  local v4, v6 = {}, {}
  local f = io.open("/etc/hosts", "r")
  if f then
    for line in f:lines() do
      line = line:gsub("#.*$", "")
      local addr, names = line:match("^%s*(%S+)%s+(.-)%s*$")
      if addr then
        local is_v4 = addr:find("^%d+%.%d+%.%d+%.%d+$") ~= nil
        local is_v6 = not is_v4 and addr:find(":", 1, true) ~= nil
        for name in names:gmatch("%S+") do
          name = name:lower()
          if is_v4 and not v4[name] then v4[name] = addr end
          if is_v6 and not v6[name] then v6[name] = "[" .. addr .. "]" end
        end
      end
    end
    f:close()
  end
  local t = {}
  for name, addr in pairs(v6) do t[name] = addr end
  for name, addr in pairs(v4) do t[name] = addr end
  return t
end

-- The address to connect to: IP literals as they are, /etc/hosts names
-- as listed there, anything else by name (nginx's resolver).
local function address(host)
  if host:find("^%d+%.%d+%.%d+%.%d+$") or host:sub(1, 1) == "[" then return host end
  hosts = hosts or load_hosts()
  return hosts[host:lower()] or host
end

-- scheme, host, port, host header, target | nil, message
-- The request target of what follows the authority, or nil when it holds
-- a space or '#'.
local function target_of(target)
  if target == "" then
    target = "/"
  elseif target:byte(1) ~= 47 then -- "/"
    target = "/" .. target
  end
  if target:find("[%s#]") then return nil end
  return target
end

local function parse_url(url)
  local scheme, authority, target = url:match("^(%a[%w+.%-]*)://([^/?#]*)(.*)$")
  if not scheme then return nil, "malformed URL" end
  scheme = scheme:lower()
  if scheme ~= "http" and scheme ~= "https" then
    return nil, "unsupported URL scheme '" .. scheme .. "'"
  end
  if authority:find("@", 1, true) then return nil, "credentials in the URL are not supported" end
  local host, port
  if authority:sub(1, 1) == "[" then
    host, port = authority:match("^(%[[%x:.]+%])(.*)$")
  else
    host, port = authority:match("^([^:]+)(.*)$")
  end
  if not host or not (port == "" or port:find("^:%d+$")) then
    return nil, "malformed host in URL"
  end
  local default = scheme == "https" and 443 or 80
  port = port == "" and default or tonumber(port:sub(2))
  if port < 1 or port > 65535 then return nil, "port out of range in URL" end
  target = target_of(target)
  if not target then return nil, "spaces or '#' in the URL" end
  local host_header = host:lower() .. (port == default and "" or (":" .. port))
  return scheme, host:lower(), port, host_header, target
end

-- An http:// proxy URL: host, port (1080 when not given, as libcurl), and
-- the Proxy-Authorization line when it carries credentials.
local function parse_proxy(proxy)
  local scheme, rest = proxy:match("^(%a+)://([^/?#]+)/?$")
  if not scheme or scheme:lower() ~= "http" then
    error("stream.ngx: option 'proxy' must be an http://[user:password@]host[:port] URL"
      .. " (the ngx transport supports HTTP proxies only)", 3)
  end
  local user, hostport = rest:match("^(.*)@([^@]*)$")
  hostport = hostport or rest
  local host, port = hostport:match("^([^:]+):?(%d*)$")
  if not host then error("stream.ngx: option 'proxy' has a malformed host", 3) end
  local p = { host = host:lower(), port = tonumber(port) or 1080 }
  if user and user ~= "" then
    local cred = user:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end)
    p.auth = "Proxy-Authorization: Basic " .. ngx.encode_base64(cred) .. "\r\n"
  end
  p.name = p.host .. ":" .. p.port
  return p
end

---------------------------------------------------------------- transport

local warned_ca = {}

-- The clock when the core has no monotonic one.
local function ngx_clock()
  ngx.update_time()
  return ngx.now()
end

-- settings: timeout, connect_timeout, max_response_bytes (resolved values),
-- max_header_bytes (config.lua's default when not given, as in the curl
-- transport), ca_file, verify, proxy, max_connections, headers and
-- body_headers (maps).
-- Each transport's header text and lines (see M.new), by transport.
local heads_of = setmetatable({}, { __mode = "k" })

function M.new(core, settings)
  if type(ngx) ~= "table" or type(ngx.get_phase) ~= "function" then
    error("stream.ngx: the ngx transport runs only inside nginx (lua-nginx-module)", 2)
  end
  for _, k in ipairs({ "timeout", "connect_timeout", "max_response_bytes" }) do
    if type(settings[k]) ~= "number" then
      error("stream.ngx: setting '" .. k .. "' must be a number (the client resolves it)", 2)
    end
  end
  local self = setmetatable({
    core = core,
    _timeout = settings.timeout,
    _connect_timeout = settings.connect_timeout,
    _verify = settings.verify ~= false,
    _max_response = settings.max_response_bytes,
    _max_header = settings.max_header_bytes or config.DEFAULTS.max_header_bytes,
    _max_connections = settings.max_connections,
    _requests = 0, _connects = 0, _in_flight = 0, _closed = false,
  }, M)
  self._now = core and core.monotime or ngx_clock
  -- what every exchange reads (http1.reader), made once
  self._limits = { now = self._now, max = self._max_response, max_head = self._max_header }
  self._origins, self._norigins = {}, 0
  local head, lines = http1.header_text(settings.headers, "headers")
  local body_head, body_lines = http1.header_text(settings.body_headers, "body_headers")
  -- the header text, and the same lines by name for requests with headers of
  -- their own: they carry the Authorization token, so they are kept in
  -- heads_of (private to this module), never in a field of the transport
  local fixed = http1.named_lines(lines)
  for i = 1, #body_lines do lines[#lines + 1] = body_lines[i] end
  heads_of[self] = { head = head, head_body = head .. body_head, fixed = fixed,
    fixed_body = http1.named_lines(lines) }
  if settings.proxy then self._proxy = parse_proxy(settings.proxy) end
  if settings.ca_file and not warned_ca[settings.ca_file] then
    warned_ca[settings.ca_file] = true
    ngx.log(ngx.WARN, "stream: option ca_file (", settings.ca_file, ") is ignored under nginx;",
      " TLS is verified against lua_ssl_trusted_certificate")
  end
  return self
end

local function check_open(self)
  if self._closed then error("stream.ngx: transport is closed", 3) end
end

local function now(self)
  return self._now()
end

-- Connection slots when max_connections is set: a semaphore per transport.
local function acquire(self, deadline)
  if not self._max_connections then return true end
  if semaphore then
    if not self._slots then self._slots = semaphore.new(self._max_connections) end
    local left = deadline - now(self)
    if left <= 0 then return false end
    return self._slots:wait(left) and true or false
  end
  while (self._busy or 0) >= self._max_connections do
    if now(self) >= deadline then return false end
    ngx.sleep(MIN_SLEEP)
  end
  self._busy = (self._busy or 0) + 1
  return true
end

local function release(self)
  if not self._max_connections then return end
  if self._slots then self._slots:post(1) else self._busy = self._busy - 1 end
end

-- A failure before any byte of the request was written.
local function unsent(kind, message, reason)
  return nil, { kind = kind, message = message, sent = false, reason = reason or "connect" }
end

-- Opens a tunnel through the proxy to host:port. true | nil, err
local function connect_tunnel(self, sock, host, port, deadline, timeout_ms)
  local p = self._proxy
  local authority = host .. ":" .. port
  local ok, err = sock:send("CONNECT " .. authority .. " HTTP/1.1\r\nHost: " .. authority .. "\r\n"
    .. (p.auth or "") .. "\r\n")
  if not ok then return nil, err end
  -- the proxy says nothing after its answer until the TLS handshake starts,
  -- so the reader cannot take bytes that belong to the tunnel
  local rd = http1.reader(sock, self._limits, deadline, timeout_ms)
  local line
  line, err = rd:head_line()
  if not line then
    http1.release(rd)
    return nil, err
  end
  local status = tonumber(line:match("^HTTP/%d%.%d (%d%d%d)"))
  local f
  ok, f = http1.read_headers(rd, {})
  http1.release(rd)
  if not ok then return nil, f.message end
  if status ~= 200 then
    return nil, "proxy answered CONNECT with " .. tostring(status or line:sub(1, 60))
  end
  return true
end

-- Gets a connection (pooled or new, TLS done); its timeouts are set once,
-- to what is left of the deadline (the reads lower them, http1.lua).
-- o: the origin (parse_request_url): connect's options (o.pool_opts) and
-- the TLS session of its last handshake (o.session), offered to resume.
-- sock, reused, timeout_ms (the read timeout as set) | nil, failure
local function open(self, scheme, host, port, deadline, o)
  local left = deadline - now(self)
  if left <= 0 then return unsent("timeout", "timed out before connecting to " .. host .. ":" .. port) end
  local sock, err = ngx.socket.tcp()
  if not sock then return unsent("transport", "cannot make a socket: " .. tostring(err)) end
  local to = ms(left)
  sock:settimeouts(ms(math.min(self._connect_timeout, left)), to, to)
  local p = self._proxy
  local chost, cport = host, port
  if p then chost, cport = p.host, p.port end
  local ok
  ok, err = sock:connect(address(chost), cport, o.pool_opts)
  if not ok then
    if err == "timeout" then
      return unsent("timeout", "timed out connecting to " .. chost .. ":" .. cport)
    end
    local hint = ""
    if tostring(err):find("resolver", 1, true) then
      hint = " (set nginx's resolver directive, or list the host in /etc/hosts)"
    end
    return unsent("transport", "could not connect to " .. chost .. ":" .. cport .. ": " .. tostring(err) .. hint)
  end
  local reused = sock:getreusedtimes() or 0
  if reused > 0 then return sock, reused, to end
  self._connects = self._connects + 1
  if p and scheme == "https" then
    ok, err = connect_tunnel(self, sock, host, port, deadline, to)
    if not ok then
      sock:close()
      return unsent(err == "timeout" and "timeout" or "transport",
        "proxy tunnel to " .. host .. ":" .. port .. " failed: " .. tostring(err))
    end
  end
  if scheme == "https" then
    local server_name = host:gsub("^%[(.*)%]$", "%1")
    -- When nginx finishes a handshake at once but the check of the certificate
    -- fails, lua-resty-core raises ("assertion failed!") instead of returning
    -- the error; that is a failed handshake too (nginx's error log has why).
    -- (reused_session must stay nil, not false: with false that case reports
    -- success.) The origin's last session is offered, so a new connection
    -- resumes it where the server keeps sessions instead of a full handshake.
    local ok_call, sess
    ok_call, sess, err = pcall(sock.sslhandshake, sock, o.session, server_name, self._verify)
    if not ok_call then
      sess, err = nil, "the certificate or the handshake was refused (nginx's error log says why; "
        .. tostring(sess) .. ")"
    end
    if not sess then
      o.session = nil
      sock:close()
      return unsent(err == "timeout" and "timeout" or "transport",
        "TLS handshake with " .. host .. ":" .. port .. " failed: " .. tostring(err))
    end
    o.session = sess
  end
  return sock, 0, to
end

-- The pool a connection goes back to: never shared across trust settings.
local function pool_name(self, scheme, host, port)
  local p = self._proxy
  return scheme .. "://" .. host .. ":" .. port .. (self._verify and "" or " noverify")
    .. (p and (" via " .. p.name) or "")
end

-- At most this many origins (scheme://authority) are kept parsed per
-- transport; a client sends every request to its one base URL.
local MAX_ORIGINS = 16

-- parse_request_url for an origin not parsed yet (origin: the URL's, or
-- nil when it has none): o, target | nil, problem.
local function parse_new_origin(self, url, origin)
  local scheme, host, port, host_header, target = parse_url(url)
  if not scheme then return nil, host end
  -- pool_size: the keep-alive pool holds every connection the client may
  -- have open (nginx's default, lua_socket_pool_size, is 30: with more in
  -- flight the extra ones would be closed, and over TLS shaken hands again)
  local o = { scheme, host, port, host_header, pool_opts = { pool = pool_name(self, scheme, host, port),
    pool_size = self._max_connections } }
  if origin and self._norigins < MAX_ORIGINS then
    o.origin, o.n = origin, #origin
    self._origins[origin] = o
    self._norigins = self._norigins + 1
  end
  return o, target
end

-- The parsed origin of a URL and its request target: o, target | nil,
-- problem. o: {scheme, host, port, host_header, session (the last TLS
-- session, see open), pool_opts = {pool =
-- name}} (connect's options), parsed once per origin and transport; the
-- origin of the last request is checked first, by prefix.
local function parse_request_url(self, url)
  local o, rest = self._last_origin, nil
  if o and find(url, o.origin, 1, true) == 1 then
    local c = byte(url, o.n + 1)
    if c == nil or c == 47 or c == 63 or c == 35 then rest = sub(url, o.n + 1) end -- / ? #
  end
  if not rest then
    local origin
    origin, rest = url:match("^(%a[%w+.%-]*://[^/?#]*)(.*)$")
    o = origin and self._origins[origin]
    if not o then return parse_new_origin(self, url, origin) end
  end
  self._last_origin = o
  local target = target_of(rest)
  if not target then return nil, "spaces or '#' in the URL" end
  return o, target
end

-- Whether a failed exchange on a pooled connection may be sent again on a
-- fresh one: the server most likely closed the idle connection. Always when
-- the request could not be written; when nothing came back after it was,
-- only for a request that may be sent twice.
local function stale(req, reused, how)
  if reused == 0 or not how then return false end
  if how == "unsent" then return true end
  local idempotent = req.idempotent
  if idempotent == nil then idempotent = req.method ~= "POST" and req.method ~= "PATCH" end
  return idempotent
end

local function field_line(name, value)
  return name .. ": " .. value .. "\r\n"
end

-- The header text of a request: the transport's own (head, head_body), or
-- with req.headers, the one of them this request uses with its headers
-- merged in (http1.merge_lines) | nil, problem.
local function request_head(self, req)
  local h = heads_of[self]
  if req.headers == nil then return h.head, h.head_body end
  local fields, problem = http1.header_fields(req.headers)
  if not fields then return nil, problem end
  if http1.has_body(req.method, req.body) then
    return "", table.concat(http1.merge_lines(h.fixed_body, fields, field_line))
  end
  return table.concat(http1.merge_lines(h.fixed, fields, field_line)), ""
end

-- The whole request: connection, exchange, keep-alive. Never raises for
-- run-time problems.
local function perform_request(self, req, stream)
  local problem = phase_problem()
  if problem then return unsent("invalid", problem, "phase") end
  local method, url, body = req.method, req.url, req.body
  if stream then body = stream.prefix end
  local head, head_body = request_head(self, req)
  if not head then return unsent("invalid", head_body, "header") end
  local o, target = parse_request_url(self, url)
  if not o then return unsent("transport", target .. ": " .. url:gsub("%?.*$", "")) end
  local scheme, host, port, host_header = o[1], o[2], o[3], o[4]
  self._requests = self._requests + 1
  local deadline = now(self) + (req.timeout or self._timeout)
  local p = self._proxy
  local via_proxy = p and scheme == "http"
  local request = http1.request_text(method, via_proxy and (scheme .. "://" .. host_header .. target) or target,
    host_header, head, head_body, body, via_proxy and p.auth or nil,
    stream and (#stream.prefix + stream.size + #stream.suffix))
  if not acquire(self, deadline) then
    return unsent("timeout", "timed out waiting for one of max_connections (" .. self._max_connections .. ")")
  end
  local attempts = 0
  while true do
    attempts = attempts + 1
    local sock, reused, timeout_ms = open(self, scheme, host, port, deadline, o)
    if not sock then
      release(self)
      return nil, reused
    end
    local res, extra, how = http1.exchange(sock, method, request, self._limits, deadline, timeout_ms, stream)
    if res then
      if not (extra and sock:setkeepalive()) then sock:close() end
      release(self)
      res.reused = reused > 0 -- the table has room for a fourth field
      return res
    end
    sock:close()
    local again = stale(req, reused, how)
    if not (again and attempts <= STALE_RETRIES) then
      release(self)
      if again then
        extra.message = "connection closed by the server before answering: " .. tostring(extra.message)
      end
      -- a request that could not be written on a pooled connection never arrived
      if how == "unsent" and reused > 0 then extra.sent, extra.reason = false, "connect" end
      return nil, extra
    end
  end
end

-- perform_request, with a body streamed from a file (req.body_parts,
-- the contract in transport/curl.lua) opened first and closed after: a
-- file that cannot be opened fails before any I/O.
local function perform(self, req)
  local parts = req.body_parts
  if parts == nil then return perform_request(self, req) end
  local f, msg = io.open(parts[2].path, "rb")
  if not f then return unsent("invalid", "cannot open the file to upload: " .. tostring(msg), "file") end
  local stream = { file = f, size = parts[2].size, prefix = parts[1], suffix = parts[3] }
  local ok, res, err = pcall(perform_request, self, req, stream)
  f:close()
  if not ok then error(res, 0) end
  return res, err
end

-- What a request that was in flight when the client closed ends with. Its
-- exchange could not be cut short (only the thread reading a cosocket may
-- close it), so it ran to its end; `sent` says whether it may have reached
-- the server, as for a transfer curl aborts on close.
local function closed_meanwhile(res, err)
  return nil, {
    kind = "transport", message = "the client was closed while the request was in flight",
    sent = res ~= nil or type(err) ~= "table" or err.sent ~= false, reason = "closed",
  }
end

function M:request(req)
  check_open(self)
  self._in_flight = self._in_flight + 1
  local ok, res, err = pcall(perform, self, req)
  self._in_flight = self._in_flight - 1
  if not ok then error(res, 0) end
  if self._closed then return closed_meanwhile(res, err) end
  return res, err
end

---------------------------------------------------------------- concurrency

local Handle = {}
Handle.__index = Handle
Handle.__name = "stream.ngx.request"

function Handle:done()
  return self.finished
end

function Handle:result()
  if not self.finished then error("stream.ngx: request still in flight", 2) end
  if self.raised then error(self.raised, 0) end
  return unpack(self.res, 1, self.res.n)
end

-- Light threads for the scheduler (scheduler.lua, "threads"): each task of
-- parallel/go is an ngx.thread of the request that started it, so nginx
-- runs the tasks concurrently whatever they wait on (a request, ngx.sleep,
-- a cosocket of their own), and the scheduler keeps its tasks per request
-- in ngx.ctx. submit/perform below stay for direct use of the transport
-- (one request at a time drives them); the scheduler does not use them.

local function get_ctx()
  return ngx.ctx
end

-- ngx.ctx of the running request (nil where there is none), and why light
-- threads cannot start in this phase (nil when they can).
function M.context()
  local ok, ctx = pcall(get_ctx)
  if not ok then ctx = nil end
  local phase = ngx.get_phase()
  if YIELDABLE[phase] then return ctx, nil end
  return ctx, "nginx's " .. phase .. " phase has no light threads; start the work from rewrite,"
    .. " access, content or timer code, e.g. ngx.timer.at(0, function() ... end)"
end

-- fn(...) in a new light thread of the running request. thread | nil, err
function M.spawn(_, fn, ...)
  local ok, th = pcall(ngx.thread.spawn, fn, ...)
  if not ok then return nil, th end
  return th
end

-- Without ngx.semaphore (lua-resty-core missing): a counter polled with
-- ngx.sleep, same methods.
local Poll = {}
Poll.__index = Poll

function Poll:post(n)
  self.n = self.n + (n or 1)
end

function Poll:count()
  return self.n
end

function Poll:wait(seconds)
  ngx.update_time()
  local until_t = ngx.now() + seconds
  while self.n == 0 do
    ngx.update_time()
    if ngx.now() >= until_t then return nil, "timeout" end
    ngx.sleep(MIN_SLEEP)
  end
  self.n = self.n - 1
  return true
end

-- A counting semaphore (0 to start) that tasks post when they finish.
function M.signal()
  if semaphore then return semaphore.new(0) end
  return setmetatable({ n = 0 }, Poll)
end

-- Starts the request in a light thread and returns at once.
function M:submit(req)
  check_open(self)
  local h = setmetatable({ finished = false }, Handle)
  local problem = phase_problem()
  if problem then
    h.res, h.finished = pack(unsent("invalid", problem, "phase")), true
    return h
  end
  if semaphore and not self._signal then self._signal = semaphore.new(0) end
  self._in_flight = self._in_flight + 1
  local function run()
    local r = pack(pcall(perform, self, req))
    if r[1] and self._closed then
      h.res = pack(closed_meanwhile(r[2], r[3]))
    elseif r[1] then
      h.res = pack(unpack(r, 2, r.n))
    else
      h.raised = r[2]
    end
    h.finished = true
    self._in_flight = self._in_flight - 1
    self._finished_count = (self._finished_count or 0) + 1
    if self._signal then self._signal:post(1) end
  end
  local th, err = ngx.thread.spawn(run)
  if not th then
    self._in_flight = self._in_flight - 1
    h.res, h.finished = pack(unsent("transport", "cannot start a light thread: " .. tostring(err))), true
  end
  return h
end

-- Waits at most `wait` seconds for a submitted request to finish (yielding
-- to nginx, never blocking it). Returns the number still in flight.
function M:perform(wait)
  check_open(self)
  wait = wait or 0
  local sig = self._signal
  if sig then
    if sig:count() == 0 and self._in_flight > 0 then
      if wait > 0 then sig:wait(wait) else ngx.sleep(MIN_SLEEP) end
    end
    while sig:count() > 0 do sig:wait(0) end
  elseif self._in_flight > 0 then
    local seen = self._finished_count
    local until_t = now(self) + wait
    repeat
      ngx.sleep(MIN_SLEEP)
    until self._finished_count ~= seen or now(self) >= until_t
  end
  return self._in_flight
end

-- 0 when a request finished since the last perform, else nil (no timer of its own).
function M:timeout()
  if self._signal and self._signal:count() > 0 then return 0 end
  return nil
end

function M:stats()
  return { requests = self._requests, connects = self._connects, in_flight = self._in_flight, closed = self._closed }
end

function M:now()
  return now(self)
end

-- ngx.sleep: yields, the worker goes on. Where nginx cannot sleep without
-- blocking (phases without cosockets) it returns at once: requests made
-- there fail at once anyway.
function M.sleep(_, seconds)
  if seconds > 0 and YIELDABLE[ngx.get_phase()] then ngx.sleep(math.max(seconds, MIN_SLEEP)) end
end

-- Pooled connections belong to the nginx worker, not to the client, so
-- there is nothing to shut. A request in flight runs to its end (no other
-- thread may cut a cosocket short) and then fails with reason "closed".
function M:close()
  self._closed = true
end

return M
