-- spec/helpers/http.lua: a small HTTP and JWT toolkit for specs, built on the curl and
-- openssl command-line tools.
--
-- What it does:
--   * request(method, url, opts) -> status, body, headers (lowercased names), curl_exit
--     opts: headers = { Name = value } (value "" sends an empty header), body = string
--     (sent from a temp file, Content-Type: application/json unless given), timeout (s),
--     curl_args = { extra, raw, curl, args }.
--     status is 0 when curl could not get an answer (then curl_exit says why).
--   * request_many(method, urls, opts): one curl process, so one kept-alive connection;
--     returns a list of { status = n, headers = {...} }.
--   * concurrent(list): runs { method, url, opts } requests as parallel curl processes;
--     returns a list of { status, body } in the same order.
--   * jwt(payload_json [, secret [, header_json]]) signs an HS256 token with
--     `openssl dgst -hmac`, and b64url(s) encodes with `openssl base64`: a third
--     implementation, independent of the client's C code and of the server's Lua.
--
-- What it deliberately does not do: no Lua HTTP or crypto of its own, no JSON
-- (specs decode with lua-cjson or compare text), no cookies, no redirects followed.

local M = {}

local function q(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end
M.shell_quote = q

local function tmp()
  return os.tmpname()
end

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end
M.read_file = read_file

local function write_file(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

-- run(cmd) -> stdout, exit code
local function run(cmd)
  local p = assert(io.popen(cmd, "r"))
  local out = p:read("*a")
  local _, _, code = p:close()
  return out, code or 0
end
M.run = run

-- parse the last header block of a -D dump
local function parse_headers(text)
  local blocks = {}
  for block in (text or ""):gsub("\r\n", "\n"):gmatch("(HTTP/[^\n]*\n.-)\n\n") do
    blocks[#blocks + 1] = block
  end
  return blocks
end

local function headers_table(block)
  local h = {}
  if not block then return h end
  for line in block:gmatch("[^\n]+") do
    local name, value = line:match("^([^:%s]+):%s*(.-)%s*$")
    if name then
      name = name:lower()
      if h[name] then h[name] = h[name] .. ", " .. value else h[name] = value end
    end
  end
  return h
end

local function base_args(method, opts, files)
  local a = { "curl", "-s", "-S", "--noproxy", q("*"), "--http1.1",
    "--max-time", tostring(opts.timeout or 10), "-H", q("Expect:") }
  if method == "HEAD" then
    a[#a + 1] = "-I"
  else
    a[#a + 1] = "-X"
    a[#a + 1] = q(method)
  end
  local has_ct = false
  for name, value in pairs(opts.headers or {}) do
    if name:lower() == "content-type" then has_ct = true end
    a[#a + 1] = "-H"
    if value == "" then
      a[#a + 1] = q(name .. ";")
    else
      a[#a + 1] = q(name .. ": " .. value)
    end
  end
  if opts.body then
    files.body = tmp()
    write_file(files.body, opts.body)
    a[#a + 1] = "--data-binary"
    a[#a + 1] = q("@" .. files.body)
    if not has_ct then
      a[#a + 1] = "-H"
      a[#a + 1] = q("Content-Type: application/json")
    end
  end
  for _, extra in ipairs(opts.curl_args or {}) do
    a[#a + 1] = q(extra)
  end
  return a
end

local function cleanup(files)
  for _, f in pairs(files) do os.remove(f) end
end

function M.request(method, url, opts)
  opts = opts or {}
  local files = { out = tmp(), hdr = tmp(), err = tmp() }
  local a = base_args(method, opts, files)
  for _, x in ipairs({ "-o", q(files.out), "-D", q(files.hdr), "-w", q("%{http_code}"), q(url) }) do
    a[#a + 1] = x
  end
  local out, code = run(table.concat(a, " ") .. " 2>" .. q(files.err))
  local status = tonumber(out) or 0
  local body = read_file(files.out)
  local blocks = parse_headers(read_file(files.hdr))
  local headers = headers_table(blocks[#blocks])
  if code ~= 0 then headers["x-curl-error"] = read_file(files.err) end
  cleanup(files)
  return status, body, headers, code
end

function M.request_many(method, urls, opts)
  opts = opts or {}
  local files = { hdr = tmp(), err = tmp() }
  local a = base_args(method, opts, files)
  for _, x in ipairs({ "-D", q(files.hdr), "-w", q("%{http_code}\\n") }) do a[#a + 1] = x end
  for _, url in ipairs(urls) do
    a[#a + 1] = "-o"
    a[#a + 1] = "/dev/null"
    a[#a + 1] = q(url)
  end
  local out = run(table.concat(a, " ") .. " 2>" .. q(files.err))
  local blocks = parse_headers(read_file(files.hdr))
  local results = {}
  local i = 0
  for code in out:gmatch("(%d+)\n") do
    i = i + 1
    results[i] = { status = tonumber(code), headers = headers_table(blocks[i]) }
  end
  cleanup(files)
  return results
end

-- concurrent({ {method, url, opts}, ... }) -> { {status=, body=}, ... }
function M.concurrent(list)
  local files, script = {}, {}
  for i, r in ipairs(list) do
    local f = { out = tmp(), code = tmp() }
    local a = base_args(r[1], r[3] or {}, f)
    for _, x in ipairs({ "-o", q(f.out), "-w", q("%{http_code}"), q(r[2]) }) do a[#a + 1] = x end
    script[#script + 1] = table.concat(a, " ") .. " >" .. q(f.code) .. " 2>/dev/null &"
    files[i] = f
  end
  script[#script + 1] = "wait"
  local sh = tmp()
  write_file(sh, table.concat(script, "\n") .. "\n")
  run("sh " .. q(sh))
  os.remove(sh)
  local results = {}
  for i, f in ipairs(files) do
    results[i] = { status = tonumber(read_file(f.code)) or 0, body = read_file(f.out) }
    cleanup(f)
  end
  return results
end

-- JWT ------------------------------------------------------------------------

local function b64_to_url(s)
  return (s:gsub("%s", ""):gsub("%+", "-"):gsub("/", "_"):gsub("=", ""))
end

function M.b64url(s)
  local f = tmp()
  write_file(f, s)
  local out, code = run("openssl base64 -A -in " .. q(f))
  os.remove(f)
  assert(code == 0, "openssl base64 failed")
  return b64_to_url(out)
end

local function hex(s)
  return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

function M.hmac_sha256_b64url(msg, secret)
  local f = tmp()
  write_file(f, msg)
  local out, code = run("openssl dgst -sha256 -mac HMAC -macopt " .. q("hexkey:" .. hex(secret))
    .. " -binary " .. q(f) .. " | openssl base64 -A")
  os.remove(f)
  assert(code == 0, "openssl dgst failed")
  return b64_to_url(out)
end

M.DEFAULT_SECRET = "local-api-secret-change-me-0123456789"

local cache = {}
function M.jwt(payload_json, secret, header_json)
  secret = secret or M.DEFAULT_SECRET
  header_json = header_json or '{"alg":"HS256","typ":"JWT"}'
  local key = header_json .. "\0" .. payload_json .. "\0" .. secret
  if not cache[key] then
    local input = M.b64url(header_json) .. "." .. M.b64url(payload_json)
    cache[key] = input .. "." .. M.hmac_sha256_b64url(input, secret)
  end
  return cache[key]
end

-- API shorthand for specs against the local server ---------------------------

M.SERVER_CLAIMS = '{"resource":"*","action":"*","feed_id":"*"}'

local Api = {}
Api.__index = Api

-- api(server) -> object with :call(method, path, opts)
--   path is relative to server.base_url ("user/x/"); opts: query ("a=b&c=d", api_key is
--   added unless opts.api_key == false or a string to use instead), body, headers
--   (merged over the auth headers), token (default: a server token), auth = false (no
--   Authorization / stream-auth-type headers).
-- returns status, decoded body (lua-cjson, nil when not JSON), raw body, headers
function M.api(server)
  return setmetatable({ server = server }, Api)
end

function Api:url(path, opts)
  opts = opts or {}
  local params = {}
  if opts.api_key ~= false then
    params[#params + 1] = "api_key=" .. (opts.api_key or self.server.api_key)
  end
  if opts.query then params[#params + 1] = opts.query end
  local url = self.server.base_url .. path
  if params[1] then url = url .. "?" .. table.concat(params, "&") end
  return url
end

function Api:token(claims)
  return M.jwt(claims or M.SERVER_CLAIMS, self.server.api_secret)
end

-- headers(extra) -> the auth headers (server token) merged with extra
function Api:headers(extra)
  local h = { Authorization = self:token(), ["stream-auth-type"] = "jwt" }
  for k, v in pairs(extra or {}) do h[k] = v end
  return h
end

function Api:call(method, path, opts)
  opts = opts or {}
  local headers = {}
  if opts.auth ~= false then
    headers["Authorization"] = opts.token or self:token()
    headers["stream-auth-type"] = "jwt"
  end
  for k, v in pairs(opts.headers or {}) do headers[k] = v end
  local status, body, h, code = M.request(method, self:url(path, opts),
    { headers = headers, body = opts.body, timeout = opts.timeout, curl_args = opts.curl_args })
  local decoded
  if body and body ~= "" then
    local ok, v = pcall(require("cjson").decode, body)
    if ok then decoded = v end
  end
  return status, decoded, body, h, code
end

return M
