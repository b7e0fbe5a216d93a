-- stream_local.app: the request entry points of the local Stream server.
--
-- What it does:
--   * handle() (content_by_lua for every path): connection test header, rate-limit
--     counting and headers, test faults, routing on the raw request path, slash-less
--     redirects, 404/405, api_key (401), rate limit (429), token (401/403), then the
--     users handler. Everything runs under xpcall: an unexpected Lua error becomes
--     500 code -1 with a Stream-style body (and a line in the error log).
--   * nginx_error() (the target of error_page): turns nginx's own error pages
--     (413 body too large, 400, 414, ...) into Stream-style JSON bodies with the same
--     headers as every other answer.
--
-- What it deliberately does not do: no endpoints besides users, no CORS/OPTIONS, no HEAD
-- (405), no percent-decoding other than of the id segment.

local config = require "stream_local.config"
local reply = require "stream_local.reply"
local ratelimit = require "stream_local.ratelimit"
local faults = require "stream_local.faults"
local auth = require "stream_local.auth"
local users = require "stream_local.users"

-- luacheck: globals ngx
local ngx = ngx
local type, ipairs, xpcall, tonumber, concat = type, ipairs, xpcall, tonumber, table.concat
local traceback = debug.traceback

local M = {}

-- path pattern -> { METHOD = handler }; patterns match the raw path (no query)
local ROUTES = {
  { "^/api/v1%.0/user/$", { POST = users.add } },
  { "^/api/v1%.0/user/([^/]+)/$", { GET = users.get, PUT = users.update, DELETE = users.delete } },
  { "^/api/v1%.0/users/$", { POST = users.add_many, GET = users.get_many, DELETE = users.delete_many } },
}
-- slash-less forms of the same paths, answered with a redirect like the real service
local REDIRECTS = {
  "^/api/v1%.0/user$",
  "^/api/v1%.0/user/[^/]+$",
  "^/api/v1%.0/users$",
}
local ALLOW = {}
for _, r in ipairs(ROUTES) do
  local names = {}
  for _, m in ipairs({ "GET", "POST", "PUT", "DELETE" }) do
    if r[2][m] then names[#names + 1] = m end
  end
  ALLOW[r[1]] = concat(names, ", ")
end

local function first(v)
  if type(v) == "table" then v = v[1] end
  if type(v) ~= "string" then return nil end
  return v
end

local function split_uri()
  local raw = ngx.var.request_uri or "/"
  local path, query = raw:match("^([^?]*)%??(.*)$")
  return path, query
end

local function dispatch()
  reply.start()
  reply.common_headers()
  local args = ngx.req.get_uri_args(200)
  local api_key = first(args.api_key)
  local limited = ratelimit.count(api_key or "")
  if faults.apply() then return end

  local method = ngx.req.get_method()
  local path, query = split_uri()

  local route, captured
  for _, r in ipairs(ROUTES) do
    local c = path:match(r[1])
    if c then
      route, captured = r, c
      break
    end
  end

  if not route then
    for _, pattern in ipairs(REDIRECTS) do
      if path:find(pattern) then
        local location = path .. "/" .. (query ~= "" and ("?" .. query) or "")
        local host = ngx.var.http_host or (ngx.var.server_addr .. ":" .. ngx.var.server_port)
        ngx.header["Location"] = ngx.var.scheme .. "://" .. host .. location
        return reply.error(301, "moved permanently to " .. location ..
          " (Stream API paths end with a slash; a client following this redirect may lose a request body)")
      end
    end
    return reply.error(404, "no such endpoint: " .. method .. " " .. path)
  end

  local handler = route[2][method]
  if not handler then
    ngx.header["Allow"] = ALLOW[route[1]]
    return reply.error(405, "method " .. method .. " is not allowed on " .. path ..
      " (allowed: " .. ALLOW[route[1]] .. ")")
  end

  local ok, status, detail = auth.api_key(api_key)
  if not ok then return reply.error(status, detail) end

  if limited then
    return reply.error(429, "rate limit reached: " .. config.rate_limit ..
      " requests per minute for this api key")
  end

  local principal, code, exception
  principal, status, detail, code, exception = auth.authenticate(method)
  if not principal then return reply.error(status, detail, nil, code, exception) end

  local id
  if type(captured) == "string" and route[1]:find("%(") then
    id = ngx.unescape_uri(captured)
  end
  return handler({ method = method, args = args, principal = principal, id = id })
end

local function on_error(err)
  return traceback(err, 2)
end

function M.handle()
  local ok, err = xpcall(dispatch, on_error)
  if not ok then
    ngx.log(ngx.ERR, "stream-local: unexpected error: ", err)
    if not ngx.headers_sent then
      ngx.header["Allow"] = nil
      ngx.header["Location"] = nil
      reply.error(500, "internal server error (see the server's error log)")
    end
  end
end

local NGINX_DETAILS = {
  [400] = "bad request",
  [404] = "no such endpoint",
  [405] = "method not allowed",
  [408] = "request timeout",
  [411] = "a Content-Length or chunked body is required",
  [413] = "the request body is too large (limit 1 MiB)",
  [414] = "the request URI is too long",
  [494] = "request headers too large",
  [500] = "internal server error (see the server's error log)",
  [502] = "bad gateway",
  [503] = "service unavailable",
  [504] = "gateway timeout",
}

-- error_page target: location ~ ^/__stream_local_error/(\d+)$
function M.nginx_error()
  local ok, err = xpcall(function()
    reply.start()
    local status = tonumber(ngx.var.uri:match("(%d+)$")) or 500
    local _, query = split_uri()
    local api_key = first(ngx.decode_args(query or "", 50).api_key)
    ratelimit.count(api_key or "")
    return reply.error(status, NGINX_DETAILS[status] or "error")
  end, on_error)
  if not ok then
    ngx.log(ngx.ERR, "stream-local: error while answering an nginx error: ", err)
  end
end

return M
