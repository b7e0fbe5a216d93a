-- examples/openresty/profiles.lua: a small profile API on top of Stream's
-- users, served by nginx + lua-nginx-module (see nginx.conf.in and run).
--
--   GET    /profiles/<id>[?follow_counts=1]  the profile                     200 | 404
--   POST   /profiles/<id>[?get_or_create=1]  create; the JSON body is data    201 | 409
--   PUT    /profiles/<id>                    replace the data                 200 | 404
--   DELETE /profiles/<id>                    delete                           204 | 404
--   GET    /profiles/<id>/ref                {"ref":"SU:<id>"} (nothing sent)
--   GET    /profiles?ids=a,b                 {"profiles":[...]} (unknown ids left out)
--   POST   /profiles                         {"profiles":[{"id":..,"data":{..}}],"override":false}
--   DELETE /profiles?ids=a,b                 {"deleted":[...]}
--   GET    /profiles-parallel?ids=a,b,c      each profile fetched concurrently (client:parallel)
--   GET    /timeline/<id>[?limit=n&id_lt=x]  <id>'s timeline, enriched: every actor is
--                                            the poster's current profile, or a missing
--                                            reference ({"error":"ReferenceNotFound",...})
--   POST   /tokens/<id>                      {"token":...}: a user token for <id>
--   GET | POST | PUT | DELETE /me            the caller's own profile, with
--                                            "Authorization: Bearer <user token>"
--   GET    /_stats                           this worker's connection figures
--   GET    /metrics                          every call to Stream, counted by area and
--                                            status with latency buckets (metrics.lua,
--                                            fed by the client's on_response hook)
--
-- Errors are JSON {"error":{"kind","status","code","message"}}: 400 invalid
-- input, 401 no or malformed user token, 403 not allowed, 404 unknown, 409
-- exists, 413 body too large, 429 rate limited, 502 Stream failed or could
-- not be reached, 504 Stream timed out.
--
-- Client lifetimes: one server-side client per worker, made in
-- init_worker_by_lua (connections are pooled per worker by nginx anyway)
-- and used by every request, client:parallel included (each request's
-- tasks are light threads of that request); a client per request only
-- where the request brings its own credentials (a user token).

local ngx = ngx -- luacheck: ignore 113 (the nginx API, a global inside nginx)
local stream = require "stream"
local metrics = require "metrics"

local M = {}

local json_encode, json_decode = stream.json.encode, stream.json.decode

-- The per-worker server-side client and its options.
local client, client_error
local options = {}

local function number_env(name)
  local v = tonumber(os.getenv(name) or "")
  return v
end

function M.init_worker()
  options = {
    timeout = number_env("PROFILES_TIMEOUT"),
    retries = number_env("PROFILES_RETRIES"),
    on_response = metrics.on_response,
  }
  local ok, c = pcall(stream.connect, options)
  if ok then
    client = c
  else
    client_error = tostring(c)
    ngx.log(ngx.ERR, "profiles: no Stream client: ", client_error)
  end
end

---------------------------------------------------------------- answers

-- Sends the answer and ends the handler (ngx.exit does not return here).
local function reply(status, value)
  ngx.status = status
  if value == nil then
    ngx.send_headers()
    return ngx.exit(ngx.OK)
  end
  local body = assert(json_encode(value))
  ngx.header["Content-Type"] = "application/json"
  ngx.header["Content-Length"] = #body
  ngx.print(body)
  return ngx.exit(ngx.OK)
end

local function fail(status, kind, message, extra)
  local e = { kind = kind, status = status, message = message }
  for k, v in pairs(extra or {}) do e[k] = v end
  return reply(status, { error = e })
end

-- What a Stream API status becomes here.
local API_STATUS = { [400] = 400, [403] = 403, [404] = 404, [409] = 409, [413] = 413, [429] = 429 }

-- Maps a stream error to an HTTP answer.
local function stream_error(err)
  local status
  if err.kind == "invalid" then
    status = 400
  elseif err.kind == "timeout" then
    status = 504
  elseif err.kind == "api" then
    status = API_STATUS[err.status] or 502
  else -- transport, decode
    status = 502
  end
  if status == 429 and err.rate_limit and err.rate_limit.reset then
    ngx.header["Retry-After"] = math.max(0, err.rate_limit.reset - ngx.time())
  end
  if status >= 500 then ngx.log(ngx.WARN, "profiles: ", tostring(err)) end
  return fail(status, err.kind, err.detail, {
    upstream_status = err.status, code = err.code, fields = err.fields,
  })
end

-- The profile as answered: the Stream user without the timing field.
local function profile(user)
  user.duration = nil
  return user
end

local function truthy(v)
  return v == "1" or v == "true" or v == "True"
end

-- The request body as a JSON value; nil for an empty body. Answers 400/413 itself.
local function body_json()
  ngx.req.read_body()
  local text = ngx.req.get_body_data()
  if text == nil then
    if ngx.req.get_body_file() then
      fail(413, "invalid", "request body too large")
    end
    return nil
  end
  local value, err = json_decode(text)
  if value == nil then
    fail(400, "invalid", "the body is not JSON: " .. tostring(err))
  end
  return value
end

local function body_object()
  local v = body_json()
  if v ~= nil and (type(v) ~= "table" or getmetatable(v) == stream.core.array_mt) then
    fail(400, "invalid", "the body must be a JSON object")
  end
  return v
end

local function ids_arg()
  local ids = ngx.req.get_uri_args().ids
  if type(ids) ~= "string" or ids == "" then
    fail(400, "invalid", "give the ids as ?ids=a,b,c")
  end
  local list = {}
  for id in ids:gmatch("[^,]+") do list[#list + 1] = id end
  return list
end

---------------------------------------------------------------- routes

local function one_profile(c, method, id)
  local args = ngx.req.get_uri_args()
  local user = c:user(id)
  local res, err
  if method == "GET" then
    res, err = user:get({ with_follow_counts = truthy(args.follow_counts) or nil })
    if not res then return stream_error(err) end
    return reply(200, profile(res))
  elseif method == "POST" then
    local data = body_object()
    res, err = user:create(data, { get_or_create = truthy(args.get_or_create) or nil })
    if not res then return stream_error(err) end
    return reply(201, profile(res))
  elseif method == "PUT" then
    local data = body_object()
    res, err = user:update(data)
    if not res then return stream_error(err) end
    return reply(200, profile(res))
  elseif method == "DELETE" then
    res, err = user:delete()
    if not res then return stream_error(err) end
    return reply(204)
  end
  ngx.header["Allow"] = "GET, POST, PUT, DELETE"
  return fail(405, "invalid", "method not allowed")
end

local function many_profiles(c, method)
  if method == "GET" then
    local res, err = c.users:get_many(ids_arg())
    if not res then return stream_error(err) end
    for _, u in ipairs(res.users) do profile(u) end
    return reply(200, { profiles = stream.array(res.users) })
  elseif method == "POST" then
    local body = body_object() or {}
    local list = body.profiles
    if type(list) ~= "table" or body.override ~= nil and type(body.override) ~= "boolean" then
      return fail(400, "invalid", 'the body must be {"profiles":[{"id":...,"data":{...}}],"override":false}')
    end
    for i, p in ipairs(list) do
      if type(p) ~= "table" or type(p.id) ~= "string" or (p.data ~= nil and type(p.data) ~= "table") then
        return fail(400, "invalid", "profiles[" .. i .. "] must be {\"id\":\"...\",\"data\":{...}}")
      end
    end
    local res, err = c.users:add_many(list, { override = body.override or nil })
    if not res then return stream_error(err) end
    for _, u in ipairs(res.created_users) do profile(u) end
    return reply(201, { profiles = stream.array(res.created_users) })
  elseif method == "DELETE" then
    local res, err = c.users:delete_many(ids_arg())
    if not res then return stream_error(err) end
    return reply(200, { deleted = stream.array(res.deleted_user_ids) })
  end
  ngx.header["Allow"] = "GET, POST, DELETE"
  return fail(405, "invalid", "method not allowed")
end

-- Every profile of ?ids= fetched at once: the calls run concurrently, as
-- light threads of this request, on the worker's client (other requests
-- running their own parallel on it meanwhile do not meet these tasks).
local function parallel_profiles(c)
  local ids = ids_arg()
  local fns = {}
  for i, id in ipairs(ids) do
    fns[i] = function() return c:user(id):get() end
  end
  local results = c:parallel(fns, { max_in_flight = 32 })
  local out, missing = {}, {}
  for i, r in ipairs(results) do
    if r[1] then
      out[#out + 1] = profile(r[1])
    elseif r.raised then
      return fail(500, "internal", tostring(r[2]))
    elseif r[2].kind == "api" and r[2].status == 404 then
      missing[#missing + 1] = ids[i]
    else
      return stream_error(r[2])
    end
  end
  return reply(200, { profiles = stream.array(out), missing = stream.array(missing) })
end

local function user_token()
  local auth = ngx.var.http_authorization or ""
  local token = auth:match("^[Bb]earer%s+([%w_%-]+%.[%w_%-]+%.[%w_%-]+)%s*$")
  if not token then
    return nil, "send the user token as Authorization: Bearer <token>"
  end
  local ok, c = pcall(stream.connect, client.api_key, token, client.app_id, {
    base_url = client.base_url, timeout = options.timeout, retries = options.retries,
    on_response = options.on_response,
  })
  if not ok or c.auth_mode ~= "user_token" or not c.current_user then
    return nil, "the bearer token is not a user token with a user_id"
  end
  return c
end

-- The caller's own profile, acting with the caller's user token: Stream
-- itself refuses what the token may not do.
local function me(method)
  local c, why = user_token()
  if not c then
    ngx.header["WWW-Authenticate"] = "Bearer"
    return fail(401, "invalid", why)
  end
  local res, err
  if method == "GET" then
    res, err = c.current_user:get()
  elseif method == "POST" then
    res, err = c:set_user(body_object())
  elseif method == "PUT" then
    res, err = c.current_user:update(body_object())
  elseif method == "DELETE" then
    res, err = c.current_user:delete()
  else
    ngx.header["Allow"] = "GET, POST, PUT, DELETE"
    return fail(405, "invalid", "method not allowed")
  end
  c:close()
  if not res then return stream_error(err) end
  if method == "DELETE" then return reply(204) end
  return reply(method == "POST" and 201 or 200, profile(res))
end

-- The timeline of user <id>, enriched by Stream: old activities show the
-- posters' current profiles; a deleted poster is a missing reference, and
-- the read still succeeds.
local function timeline(c, id)
  local args = ngx.req.get_uri_args()
  local limit = args.limit and tonumber(args.limit)
  if args.limit and not (limit and limit >= 1 and limit <= 100 and limit == math.floor(limit)) then
    return fail(400, "invalid", "limit must be an integer in [1, 100]")
  end
  local id_lt = args.id_lt
  if id_lt ~= nil and type(id_lt) ~= "string" then
    return fail(400, "invalid", "give id_lt once")
  end
  local res, err = c:feed("timeline", id):get({ enrich = true, limit = limit, id_lt = id_lt })
  if not res then return stream_error(err) end
  local missing = 0
  for _, a in ipairs(res.results) do
    if stream.is_missing(a.actor) then missing = missing + 1 end
  end
  return reply(200, { activities = stream.array(res.results), missing_actors = missing,
    more = res.next ~= "" })
end

local function token_for(c, id)
  local token, err = c:create_user_token(id)
  if not token then return stream_error(err) end
  return reply(201, { user_id = id, token = token })
end

function M.handle()
  if not client then
    return fail(500, "internal", "no Stream client: " .. tostring(client_error))
  end
  local method = ngx.req.get_method()
  local uri = ngx.var.uri
  local id = uri:match("^/profiles/([^/]+)$")
  if id then return one_profile(client, method, id) end
  id = uri:match("^/profiles/([^/]+)/ref$")
  if id and method == "GET" then
    local ref, err = client.users:ref(id)
    if not ref then return stream_error(err) end
    return reply(200, { ref = ref })
  end
  if uri == "/profiles" or uri == "/profiles/" then return many_profiles(client, method) end
  if uri == "/profiles-parallel" and method == "GET" then return parallel_profiles(client) end
  id = uri:match("^/timeline/([^/]+)$")
  if id and method == "GET" then return timeline(client, id) end
  id = uri:match("^/tokens/([^/]+)$")
  if id and method == "POST" then return token_for(client, id) end
  if uri == "/me" then return me(method) end
  if uri == "/metrics" and method == "GET" then return metrics.serve() end
  if uri == "/_stats" and method == "GET" then
    local s = client:stats()
    return reply(200, { pid = ngx.worker.pid(), requests = s.requests, connects = s.connects,
      in_flight = s.in_flight, transport = client._transport.name })
  end
  return fail(404, "invalid", "no such route: " .. method .. " " .. uri)
end

---------------------------------------------------------------- phases

-- What happens when a call is made where nginx has no cosockets: the
-- header filter below tries one and puts the error it gets into a header.
-- (The remedy, for work that need not hold up the answer, is a timer:
-- ngx.timer.at(0, function() client:user(id):get() end).)
function M.header_filter_demo()
  local _, err = client:user("phase-demo"):get()
  ngx.header["X-Profiles-Call-Error"] = err and tostring(err) or "none"
end

function M.hello()
  return reply(200, { hello = "the response headers carry the error of a call made in header_filter" })
end

return M
