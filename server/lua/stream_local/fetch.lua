-- stream_local.fetch: a small HTTP/1.1 GET client on the nginx worker's cosockets, for
-- the open graph scraper (stream_local.og).
--
-- What it does:
--   * get(url, opts) -> response | nil, why. One total deadline for the whole fetch
--     (connect, TLS, every read, every redirect: opts.timeout seconds, default 4),
--     following up to opts.redirects (default 5) redirects (301, 302, 303, 307, 308;
--     absolute, scheme-relative and relative Locations), sending `User-Agent:
--     opts.user_agent`, `Accept-Encoding: identity` and `Connection: close`.
--     response: { status, headers (lower-case name -> last value), body, url (the final
--     URL), truncated (the body reached the cap) }.
--   * Bodies by Content-Length, chunked, or until the peer closes, never more than
--     opts.max_body bytes (default 2 MiB): a larger body is cut at the cap and the
--     connection closed, so a page of any size or one that never ends costs at most the
--     cap or the deadline. opts.want_body(status, headers) may refuse the body (a
--     non-HTML answer): it is then not read at all.
--   * https through ngx's TLS (sslhandshake with SNI, certificate verification off: this
--     is a local test server, and nginx has no CA bundle configured for cosockets).
--   * Host names: IPv4 literals and `localhost` directly; other names through the C
--     library's getaddrinfo (LuaJIT FFI), which blocks the worker while it runs: the
--     server has no `resolver` configured, and a test server scrapes few pages.
--   * resolve(base, ref): a reference made absolute against a base URL (RFC 3986's
--     merge, dot segments removed).
--
-- What it deliberately does not do: no keep-alive, no proxies, no cookies, no
-- compression, no IPv6 host names (bracketed IPv6 literals are passed to nginx as is).

local ffi = require "ffi"

-- luacheck: globals ngx
local ngx = ngx
local tonumber, concat, min, floor, format = tonumber, table.concat, math.min, math.floor, string.format

local M = {}

local MAX_LINE = 16384     -- a status, header or chunk-size line
local MAX_HEADERS = 200
local READ = 65536

pcall(ffi.cdef, [[
struct stream_local_addrinfo {
  int ai_flags; int ai_family; int ai_socktype; int ai_protocol;
  uint32_t ai_addrlen; void *ai_addr; char *ai_canonname;
  struct stream_local_addrinfo *ai_next;
};
int getaddrinfo(const char *node, const char *service,
                const struct stream_local_addrinfo *hints, struct stream_local_addrinfo **res);
void freeaddrinfo(struct stream_local_addrinfo *res);
]])

-- address(host) -> an IPv4 address text nginx can connect to | nil, why
local function address(host)
  if host:find("^%d+%.%d+%.%d+%.%d+$") or host:sub(1, 1) == "[" then return host end
  if host:lower() == "localhost" then return "127.0.0.1" end
  local hints = ffi.new("struct stream_local_addrinfo")
  hints.ai_family, hints.ai_socktype = 2, 1          -- AF_INET, SOCK_STREAM
  local res = ffi.new("struct stream_local_addrinfo *[1]")
  if ffi.C.getaddrinfo(host, nil, hints, res) ~= 0 or res[0] == nil then
    return nil, "cannot resolve " .. host
  end
  local b = ffi.cast("const uint8_t *", res[0].ai_addr) + 4   -- sockaddr_in's sin_addr
  local ip = b[0] .. "." .. b[1] .. "." .. b[2] .. "." .. b[3]
  ffi.C.freeaddrinfo(res[0])
  return ip
end

-- parse(url) -> { scheme, host, port, target, authority } | nil
function M.parse(url)
  local scheme, authority, rest = url:match("^(%a[%w+.-]*)://([^/?#]*)(.*)$")
  if not scheme then return nil end
  scheme = scheme:lower()
  local hostport = authority:gsub("^.*@", "")
  if hostport:find("[%c%s]") then return nil end
  local host, port = hostport:match("^(%[[^%]]*%]):?(%d*)$")
  if not host then host, port = hostport:match("^([^:]*):?(%d*)$") end
  if not host or not (host:find("^[%w._-]+$") or host:find("^%[[%x:.]+%]$")) then return nil end
  port = tonumber(port) or (scheme == "https" and 443 or 80)
  if port < 1 or port > 65535 then return nil end
  -- no byte of the URL may end the request line or start a header
  local target = rest:gsub("#.*$", ""):gsub("[%c%s\128-\255]", function(c) return format("%%%02X", c:byte()) end)
  if target == "" or target:sub(1, 1) == "?" then target = "/" .. target end
  return { scheme = scheme, host = host, port = port, target = target, authority = hostport }
end

-- remove_dots(path): RFC 3986 section 5.2.4
local function remove_dots(path)
  local out = {}
  for seg in (path .. "/"):gmatch("([^/]*)/") do out[#out + 1] = seg end
  local last = out[#out]
  out[#out] = nil
  if path:sub(-1) ~= "/" then out[#out + 1] = last else out[#out + 1] = "" end
  local stack = {}
  for i, seg in ipairs(out) do
    if seg == ".." then
      if #stack > 1 then stack[#stack] = nil end
      if i == #out then stack[#stack + 1] = "" end
    elseif seg == "." then
      if i == #out then stack[#stack + 1] = "" end
    else
      stack[#stack + 1] = seg
    end
  end
  return concat(stack, "/")
end

function M.resolve(base, ref)
  ref = ref:gsub("^%s+", ""):gsub("%s+$", "")
  if ref:find("^%a[%w+.-]*:") then return ref end
  local scheme, authority, path, query = base:match("^(%a[%w+.-]*://)([^/?#]*)([^?#]*)(%??[^#]*)")
  if not scheme then return ref end
  if ref:sub(1, 2) == "//" then return scheme:sub(1, -3) .. ref end
  if ref == "" then return scheme .. authority .. path .. query end
  local rpath, rest = ref:match("^([^?#]*)(.*)$")
  if rpath == "" then
    if rest:sub(1, 1) == "#" then return scheme .. authority .. path .. query .. rest end
    return scheme .. authority .. (path == "" and "/" or path) .. rest
  end
  if rpath:sub(1, 1) ~= "/" then
    local dir = path:match("^(.*/)") or "/"
    rpath = dir .. rpath
  end
  return scheme .. authority .. remove_dots(rpath) .. rest
end

-- reader: buffered reads on a socket under one deadline --------------------------------

local Reader = {}
Reader.__index = Reader

local function left_ms(deadline)
  ngx.update_time()
  return floor((deadline - ngx.now()) * 1000)
end

function Reader:fill()
  local ms = left_ms(self.deadline)
  if ms <= 0 then return nil, "timeout" end
  self.sock:settimeout(ms)
  local data, err = self.sock:receiveany(READ)
  if not data then return nil, err end
  self.buf = self.buf .. data
  return true
end

function Reader:line()
  while true do
    local e = self.buf:find("\n", 1, true)
    if e then
      local line = self.buf:sub(1, e - 1):gsub("\r$", "")
      self.buf = self.buf:sub(e + 1)
      return line
    end
    if #self.buf > MAX_LINE then return nil, "line too long" end
    local ok, err = self:fill()
    if not ok then return nil, err end
  end
end

-- some(n) -> up to n bytes (at least one) | nil, err ("closed" at the end of the stream)
function Reader:some(n)
  if self.buf == "" then
    local ok, err = self:fill()
    if not ok then return nil, err end
  end
  local s = self.buf:sub(1, n)
  self.buf = self.buf:sub(n + 1)
  return s
end

-- body readers: each appends to parts while the cap allows; true when the body ended,
-- "cap" when cut at the cap, nil, err on failure

local function take(r, parts, want, cap)
  while want > 0 do
    if cap.left <= 0 then return "cap" end
    local s, err = r:some(min(want, cap.left, READ))
    if not s then return nil, err end
    parts[#parts + 1] = s
    want, cap.left = want - #s, cap.left - #s
  end
  return true
end

local function read_chunked(r, parts, cap)
  while true do
    local line, err = r:line()
    if not line then return nil, err end
    local size = tonumber(line:match("^%s*(%x+)"), 16)
    if not size then return nil, "bad chunk size" end
    if size == 0 then return true end
    local ok, why = take(r, parts, size, cap)
    if ok ~= true then return ok, why end
    local crlf
    crlf, err = r:line()
    if not crlf then return nil, err end
  end
end

local function read_to_close(r, parts, cap)
  while true do
    if cap.left <= 0 then return "cap" end
    local s, err = r:some(min(cap.left, READ))
    if not s then
      if err == "closed" then return true end
      return nil, err
    end
    parts[#parts + 1] = s
    cap.left = cap.left - #s
  end
end

local function read_head(r)
  local status_line, err = r:line()
  if not status_line then return nil, err end
  local status = tonumber(status_line:match("^HTTP/%d%.%d%s+(%d%d%d)"))
  if not status then return nil, "not an HTTP response" end
  local headers = {}
  for _ = 1, MAX_HEADERS do
    local line
    line, err = r:line()
    if not line then return nil, err end
    if line == "" then return status, headers end
    local name, value = line:match("^([^:]+):%s*(.-)%s*$")
    if name then headers[name:lower()] = value end
  end
  return nil, "too many headers"
end

local function read_body(r, status, headers, max_body)
  if status < 200 or status == 204 or status == 304 then return "", false end
  local parts, cap = {}, { left = max_body }
  local ok, err
  local te, len = (headers["transfer-encoding"] or ""):lower(), headers["content-length"]
  if te:find("chunked", 1, true) then
    ok, err = read_chunked(r, parts, cap)
  elseif len then
    local n = tonumber(len:match("^%d+$"))
    if not n then return nil, "bad Content-Length" end
    ok, err = take(r, parts, n, cap)
  else
    ok, err = read_to_close(r, parts, cap)
  end
  if not ok then return nil, err end
  return concat(parts), ok == "cap"
end

-- one request, on a new connection -----------------------------------------------------

local function connect(u, deadline)
  local ip, why = address(u.host)
  if not ip then return nil, why end
  local sock = ngx.socket.tcp()
  local ms = left_ms(deadline)
  if ms <= 0 then return nil, "timeout" end
  sock:settimeout(ms)
  local ok, err = sock:connect(ip, u.port)
  if not ok then return nil, err end
  if u.scheme == "https" then
    sock:settimeout(math.max(left_ms(deadline), 1))
    local host = u.host:find("^[%d.]+$") and nil or u.host
    ok, err = sock:sslhandshake(nil, host, false)
    if not ok then sock:close() return nil, err end
  end
  return sock
end

local function once(u, opts, deadline)
  local sock, err = connect(u, deadline)
  if not sock then return nil, err end
  sock:settimeout(math.max(left_ms(deadline), 1))
  local sent
  sent, err = sock:send({ "GET ", u.target, " HTTP/1.1\r\nHost: ", u.authority,
    "\r\nUser-Agent: ", opts.user_agent or "stream-local", "\r\nAccept: text/html,application/xhtml+xml,*/*;q=0.8",
    "\r\nAccept-Encoding: identity\r\nConnection: close\r\n\r\n" })
  if not sent then sock:close() return nil, err end
  local r = setmetatable({ sock = sock, buf = "", deadline = deadline }, Reader)
  local status, headers = read_head(r)
  if not status then sock:close() return nil, headers end
  local res = { status = status, headers = headers, body = "", truncated = false }
  local wanted = status < 300 or status >= 400
  if wanted and opts.want_body then wanted = opts.want_body(status, headers) end
  if wanted then
    res.body, res.truncated = read_body(r, status, headers, opts.max_body or 2097152)
    if not res.body then sock:close() return nil, res.truncated end
  end
  sock:close()
  return res
end

local REDIRECT = { [301] = true, [302] = true, [303] = true, [307] = true, [308] = true }

function M.get(url, opts)
  opts = opts or {}
  ngx.update_time()
  local deadline = ngx.now() + (opts.timeout or 4)
  for _ = 0, opts.redirects or 5 do
    local u = M.parse(url)
    if not u or (u.scheme ~= "http" and u.scheme ~= "https") then return nil, "not an http(s) URL: " .. url end
    local res, err = once(u, opts, deadline)
    if not res then return nil, err end
    local location = res.headers.location
    if not (REDIRECT[res.status] and location and location ~= "") then
      res.url = url
      return res
    end
    url = M.resolve(url, location)
  end
  return nil, "too many redirects"
end

return M
