-- stream_local.app: the request entry points of the local Stream server.
--
-- What it does:
--   * Assembles the route list once, from the routes each area lists next to its
--     handlers (M.ROUTES of stream_local.users, feeds, updates, collections, targets,
--     reactions), in the order of AREAS, and checks every route as it loads.
--   * handle() (content_by_lua for every path): connection test header, rate-limit
--     counting and headers, test faults, routing on the raw request path, slash-less
--     redirects, 404/405, api_key (401), rate limit (429), token and its scope
--     (401/403), the route's guards, then its handler. Everything runs under xpcall: an
--     unexpected Lua error becomes 500 code -1 with a Stream-style body (and a line in
--     the error log).
--   * nginx_error() (the target of error_page): turns nginx's own error pages
--     (413 body too large, 400, 414, ...) into Stream-style JSON bodies with the same
--     headers as every other answer.
--
-- What it deliberately does not do: no CORS/OPTIONS, no HEAD (405), no percent-decoding
-- other than of the captured path segments.

local config = require "stream_local.config"
local reply = require "stream_local.reply"
local ratelimit = require "stream_local.ratelimit"
local faults = require "stream_local.faults"
local auth = require "stream_local.auth"
local request = require "stream_local.request"
local guards = require "stream_local.guards"

-- luacheck: globals ngx
local ngx = ngx
local type, ipairs, pairs, next, xpcall, tonumber, concat = type, ipairs, pairs, next, xpcall, tonumber,
  table.concat
local traceback = debug.traceback

local M = {}

-- The areas, in the order their routes are tried: each is a module stream_local.<name>
-- that lists its routes (M.ROUTES) next to its handlers; within an area its list's order
-- holds (reaction lookups before reaction ids, follows before activity ids). A new area
-- is one line here.
local AREAS = {
  "users",
  "feeds",
  "updates",
  "collections",
  "targets",
  "reactions",
  "personalization",
  "analytics",
  "moderation",
  "og",
  "files",
}

-- A route, as data: a PCRE `pattern` over the raw path (no query) whose named captures
-- become ctx.params (percent-decoded); `resource`, the token scope it needs (one name or
-- a list; `*` always covers); `feed_id`, the rule giving the feed id a token's `feed_id`
-- claim must cover (stream_local.guards: path_feed, any_feed, named_feeds), which every
-- route must have, so a route added later cannot forget it; `guards`, checks run once
-- after authentication and before the handler (stream_local.guards); and `methods`,
-- METHOD -> handler; `token = false` for the few routes whose credential is not in the
-- headers (the analytics redirect's JWT is a query value; the local test aids need the
-- api_key only): their handler checks it. Slash-less forms of these paths get a redirect like the real service.
-- A path two areas list (activities/: reads in feeds, full updates in updates) is one
-- route with the methods of both, at the place of its first listing; both must name the
-- same resource, feed_id rule and guards.

local METHOD_ORDER = { "GET", "POST", "PUT", "DELETE" }

-- the checks every route passes when the server loads
local function check_route(area, r)
  local where = "stream_local.app: route " .. tostring(r.pattern) .. " of " .. area
  assert(type(r.pattern) == "string", where .. ": no pattern")
  assert(r.feed_id, "stream_local.app: a route without a feed_id rule: " .. r.pattern)
  assert(r.resource, where .. ": no resource")
  assert(type(r.methods) == "table" and next(r.methods), where .. ": no methods")
  for m in pairs(r.methods) do
    local known = false
    for _, k in ipairs(METHOD_ORDER) do known = known or k == m end
    assert(known, where .. ": unknown method " .. tostring(m))
  end
end

local function same_scope(a, b)
  local ra = type(a.resource) == "table" and concat(a.resource, ",") or a.resource
  local rb = type(b.resource) == "table" and concat(b.resource, ",") or b.resource
  return ra == rb and a.feed_id == b.feed_id and a.guards == b.guards and a.token == b.token
end

-- assemble(areas) -> the route list: every area's routes in order, shared paths merged,
-- each with its Allow header value and its resource as a list
local function assemble(areas)
  local list, by_pattern = {}, {}
  for _, area in ipairs(areas) do
    for _, r in ipairs(require("stream_local." .. area).ROUTES) do
      check_route(area, r)
      local seen = by_pattern[r.pattern]
      if seen then
        assert(same_scope(seen, r), "stream_local.app: " .. r.pattern .. " differs in scope between areas")
        for m, handler in pairs(r.methods) do
          assert(not seen.methods[m], "stream_local.app: " .. m .. " " .. r.pattern .. " listed twice")
          seen.methods[m] = handler
        end
      else
        seen = { pattern = r.pattern, resource = r.resource, feed_id = r.feed_id, guards = r.guards,
          token = r.token, methods = {} }
        for m, handler in pairs(r.methods) do seen.methods[m] = handler end
        by_pattern[r.pattern] = seen
        list[#list + 1] = seen
      end
    end
  end
  for _, r in ipairs(list) do
    local names = {}
    for _, m in ipairs(METHOD_ORDER) do
      if r.methods[m] then names[#names + 1] = m end
    end
    r.allow = concat(names, ", ")
    if type(r.resource) == "string" then r.resource = { r.resource } end
  end
  return list
end

local ROUTES = assemble(AREAS)
M.ROUTES = ROUTES

-- route(path) -> route, params | nil
local function route(path)
  for _, r in ipairs(ROUTES) do
    local m = ngx.re.match(path, r.pattern, "jo")
    if m then
      local params = {}
      for k, v in pairs(m) do
        if type(k) == "string" and v then params[k] = ngx.unescape_uri(v) end
      end
      return r, params
    end
  end
  return nil
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
  local api_key = request.first(args.api_key)
  local limited = ratelimit.count(api_key or "")
  if faults.apply() then return end

  local method = ngx.req.get_method()
  local path, query = split_uri()

  local r, params = route(path)
  if not r then
    if path:sub(-1) ~= "/" and route(path .. "/") then
      -- a path, never built from the Host header, so no request can point it elsewhere
      local location = path .. "/" .. (query ~= "" and ("?" .. query) or "")
      ngx.header["Location"] = location
      return reply.error(301, "moved permanently to " .. location ..
        " (Stream API paths end with a slash; a client following this redirect may lose a request body)")
    end
    return reply.error(404, "no such endpoint: " .. method .. " " .. path)
  end

  local handler = r.methods[method]
  if not handler then
    ngx.header["Allow"] = r.allow
    return reply.error(405, "method " .. method .. " is not allowed on " .. path ..
      " (allowed: " .. r.allow .. ")")
  end

  local ok, status, detail = auth.api_key(api_key)
  if not ok then return reply.error(status, detail) end

  if limited then
    return reply.error(429, "rate limit reached: " .. config.rate_limit ..
      " requests per minute for this api key")
  end

  local principal, code, exception
  if r.token ~= false then
    principal, status, detail, code, exception = auth.authenticate(method, r.resource, r.feed_id(params))
    if not principal then return reply.error(status, detail, nil, code, exception) end
  end

  local ctx = { method = method, args = args, principal = principal, params = params,
    id = params.id, path = path, query = query }
  if not guards.run(r.guards, ctx) then return end
  return handler(ctx)
end

local function on_error(err)
  if type(err) == "table" and err.storage_full then return err end
  return traceback(err, 2)
end

-- init_worker(): per-worker state: a random seed of its own (reaction and collection
-- ids are random) and its database connection
function M.init_worker()
  math.randomseed(ngx.worker.pid() * 1000003 + math.floor(ngx.now() * 1000) % 1000000007)
  require("stream_local.db").open()
end

function M.handle()
  local ok, err = xpcall(dispatch, on_error)
  if not ok and type(err) == "table" then
    -- the database reached STREAM_LOCAL_MEMORY; the transaction was rolled back
    ngx.log(ngx.WARN, "stream-local: storage full (STREAM_LOCAL_MEMORY)")
    if not ngx.headers_sent then
      reply.error(507, "the local server's storage is full (STREAM_LOCAL_MEMORY); nothing was written")
    end
  elseif not ok then
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
    local api_key = request.first(ngx.decode_args(query or "", 50).api_key)
    ratelimit.count(api_key or "")
    return reply.error(status, NGINX_DETAILS[status] or "error")
  end, on_error)
  if not ok then
    ngx.log(ngx.ERR, "stream-local: error while answering an nginx error: ", err)
  end
end

return M
