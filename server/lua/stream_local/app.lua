-- stream_local.app: the request entry points of the local Stream server.
--
-- What it does:
--   * handle() (content_by_lua for every path): connection test header, rate-limit
--     counting and headers, test faults, routing on the raw request path, slash-less
--     redirects, 404/405, api_key (401), rate limit (429), token and its scope
--     (401/403), then the route's handler (stream_local.users,
--     stream_local.feeds, stream_local.reactions, stream_local.updates,
--     stream_local.targets, stream_local.collections). Everything runs under xpcall: an unexpected Lua error
--     becomes 500 code -1 with a Stream-style body (and a line in the error log).
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
local users = require "stream_local.users"
local feeds = require "stream_local.feeds"
local reactions = require "stream_local.reactions"
local updates = require "stream_local.updates"
local targets = require "stream_local.targets"
local collections = require "stream_local.collections"
local request = require "stream_local.request"
local guards = require "stream_local.guards"

-- luacheck: globals ngx
local ngx = ngx
local type, ipairs, pairs, xpcall, tonumber, concat = type, ipairs, pairs, xpcall, tonumber, table.concat
local traceback = debug.traceback

local M = {}

-- The routes, as data. Each: a PCRE `pattern` over the raw path (no query) whose named
-- captures become ctx.params (percent-decoded); `resource`, the token scope it needs
-- (one name or a list; `*` always covers); `feed_id`, a function of the params giving
-- the feed id a token's `feed_id` claim must cover (the joined id of the route's feed,
-- "*" for routes on no one feed, nil where the handler checks the feeds it is given);
-- every route has one, so a route added later cannot forget it; `guards`, checks run once
-- after authentication and before the handler (stream_local.guards); and `methods`,
-- METHOD -> handler. Slash-less forms of these paths get a redirect like the real service.

-- the feed of feed/{slug}/{user}/... as JWT claims name it: "useralice"
local function path_feed(params)
  return params.slug .. params.user
end

-- routes outside one feed whose tokens must carry feed_id "*" (or none): a token scoped
-- to one feed covers that feed's paths only (stream-feeds-api.md section 2)
local function any_feed()
  return "*"
end

-- routes whose handler checks the feeds the body or query names against a scoped token
-- (batch calls, activity updates, activities by id): no one feed to pin here
local function named_feeds()
  return nil
end

local FEED = { guards.feed_path }
local BATCH_USERS = { guards.server_only("batch user endpoints need a server token (resource users or *)") }
local BATCH_FEEDS = { guards.server_only("batch feed endpoints need a server token") }
local BATCH_COLLECTIONS = {
  guards.server_only("batch collection endpoints need a server token (resource collections or *)") }

local ROUTES = {
  { pattern = [[^/api/v1\.0/user/$]], resource = "users", feed_id = any_feed,
    methods = { POST = users.add } },
  { pattern = [[^/api/v1\.0/user/(?<id>[^/]+)/$]], resource = "users", feed_id = any_feed,
    methods = { GET = users.get, PUT = users.update, DELETE = users.delete } },
  { pattern = [[^/api/v1\.0/users/$]], resource = "users", feed_id = any_feed, guards = BATCH_USERS,
    methods = { POST = users.add_many, GET = users.get_many, DELETE = users.delete_many } },

  { pattern = [[^/api/v1\.0/feed/(?<slug>[^/]+)/(?<user>[^/]+)/(?:follows|following)/$]],
    resource = "follower", feed_id = path_feed, guards = FEED,
    methods = { GET = feeds.following, POST = feeds.follow } },
  { pattern = [[^/api/v1\.0/feed/(?<slug>[^/]+)/(?<user>[^/]+)/(?:follows|following)/(?<target>[^/]+)/$]],
    resource = "follower", feed_id = path_feed, guards = FEED, methods = { DELETE = feeds.unfollow } },
  { pattern = [[^/api/v1\.0/feed/(?<slug>[^/]+)/(?<user>[^/]+)/followers/$]],
    resource = "follower", feed_id = path_feed, guards = FEED, methods = { GET = feeds.followers } },
  { pattern = [[^/api/v1\.0/feed/(?<slug>[^/]+)/(?<user>[^/]+)/$]],
    resource = "feed", feed_id = path_feed, guards = FEED, methods = { GET = feeds.read, POST = feeds.add } },
  { pattern = [[^/api/v1\.0/(?<enrich>enrich/)feed/(?<slug>[^/]+)/(?<user>[^/]+)/$]],
    resource = "feed", feed_id = path_feed, guards = FEED, methods = { GET = feeds.read } },
  { pattern = [[^/api/v1\.0/feed/(?<slug>[^/]+)/(?<user>[^/]+)/(?<activity_id>[^/]+)/$]],
    resource = "feed", feed_id = path_feed, guards = FEED, methods = { DELETE = feeds.remove } },
  { pattern = [[^/api/v1\.0/activities/$]],
    resource = "activities", feed_id = named_feeds, methods = { GET = feeds.get_activities, POST = updates.full } },
  { pattern = [[^/api/v1\.0/(?<enrich>enrich/)activities/$]],
    resource = "activities", feed_id = named_feeds, methods = { GET = feeds.get_activities } },
  { pattern = [[^/api/v1\.0/activity/$]],
    resource = "activities", feed_id = named_feeds, methods = { POST = updates.partial } },
  { pattern = [[^/api/v1\.0/feed/add_to_many/$]],
    resource = "feed", feed_id = named_feeds, guards = BATCH_FEEDS,
    methods = { POST = feeds.add_to_many } },
  { pattern = [[^/api/v1\.0/follow_many/$]],
    resource = "follower", feed_id = named_feeds, guards = BATCH_FEEDS,
    methods = { POST = feeds.follow_many } },
  { pattern = [[^/api/v1\.0/unfollow_many/$]],
    resource = "follower", feed_id = named_feeds, guards = BATCH_FEEDS,
    methods = { POST = feeds.unfollow_many } },
  { pattern = [[^/api/v1\.0/collections/$]], resource = "collections", feed_id = any_feed,
    guards = BATCH_COLLECTIONS,
    methods = { POST = collections.upsert_many, GET = collections.select_many, DELETE = collections.delete_many } },
  { pattern = [[^/api/v1\.0/collections/(?<name>[^/]+)/$]], resource = "collections", feed_id = any_feed,
    methods = { POST = collections.add } },
  { pattern = [[^/api/v1\.0/collections/(?<name>[^/]+)/(?<id>[^/]+)/$]], resource = "collections", feed_id = any_feed,
    methods = { GET = collections.get, PUT = collections.update, DELETE = collections.delete } },
  -- also without the final slash: the Ruby client calls it so and follows no redirect
  { pattern = [[^/api/v1\.0/stats/follow/?$]],
    resource = { "follower", "feed" }, feed_id = any_feed, methods = { GET = feeds.follow_stats } },
  { pattern = [[^/api/v1\.0/feed_targets/(?<slug>[^/]+)/(?<user>[^/]+)/activity_to_targets/$]],
    resource = "feed_targets", feed_id = path_feed, guards = FEED, methods = { POST = targets.update } },

  -- reactions (stream_local.reactions); the lookups and get_many come before reaction ids
  { pattern = [[^/api/v1\.0/reaction/$]], resource = "reactions", feed_id = any_feed,
    methods = { POST = reactions.add } },
  { pattern = [[^/api/v1\.0/reaction/get_many/$]], resource = "reactions", feed_id = any_feed,
    methods = { GET = reactions.get_many } },
  { pattern = [[^/api/v1\.0/reaction/(?<lookup>activity_id|user_id|reaction_id)/(?<value>[^/]+)/(?:(?<kind>[^/]+)/)?$]],
    resource = "reactions", feed_id = any_feed, methods = { GET = reactions.filter } },
  { pattern = [[^/api/v1\.0/reaction/(?<id>[^/]+)/restore/$]], resource = "reactions", feed_id = any_feed,
    methods = { PUT = reactions.restore } },
  { pattern = [[^/api/v1\.0/reaction/(?<id>[^/]+)/$]], resource = "reactions", feed_id = any_feed,
    methods = { GET = reactions.get, PUT = reactions.update, DELETE = reactions.delete } },
}
M.ROUTES = ROUTES

for _, r in ipairs(ROUTES) do
  assert(r.feed_id, "stream_local.app: a route without a feed_id rule: " .. r.pattern)
  local names = {}
  for _, m in ipairs({ "GET", "POST", "PUT", "DELETE" }) do
    if r.methods[m] then names[#names + 1] = m end
  end
  r.allow = concat(names, ", ")
  if type(r.resource) == "string" then r.resource = { r.resource } end
end

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
  local feed_id = r.feed_id and r.feed_id(params) or nil
  principal, status, detail, code, exception = auth.authenticate(method, r.resource, feed_id)
  if not principal then return reply.error(status, detail, nil, code, exception) end

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
