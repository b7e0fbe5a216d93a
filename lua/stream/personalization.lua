-- stream.personalization: `client.personalization` (the resources of the
-- personalization service: GET, POST and DELETE on
-- `/personalization/v1.0/<resource>/`) and the personalized feed
-- (`client:personalized_feed`, `GET enrich/personalization/feed/` on the
-- API).
--
-- Resource calls are server-side only: they go to the "personalization"
-- service with a token of their own scope (resource "personalization",
-- action, feed_id and user_id "*"), signed once per client; a token client
-- raises. The personalized feed is an API read: a server-side client sends
-- its usual token, a user-token client its own (the server refuses another
-- user's feed with 403), and its user is the default `user_id`.
-- Checks, nothing sent when they fail (`invalid`): a resource is one or more
-- '/'-separated segments of A-Z a-z 0-9 _ -; params are a table of string,
-- number or boolean values under string keys (another type raises); POST
-- data is a JSON object, sent as {"data": {...}}. Retry safety: GET and
-- DELETE may be repeated, POST only when nothing was sent.

local errors = require "stream.errors"
local check = require "stream.check"
local rules = require "stream.rules"
local activities = require "stream.activities"

local personalization = {}

local SERVICE = "personalization"
local CLAIMS = '{"resource":"personalization","action":"*","feed_id":"*","user_id":"*"}'

local Personalization = {}
Personalization.__index = Personalization
Personalization.__name = "stream.personalization"

function Personalization.__tostring()
  return "stream.personalization"
end

function personalization.new(client)
  return setmetatable({ client = client }, Personalization)
end

-- The resource's path ("a/b" -> "a/b/"), or nil, err; a non-string raises.
local function resource_path(resource, fname, method)
  if type(resource) ~= "string" then
    check.raise(fname .. ": resource must be a string, got " .. type(resource), 4)
  end
  local path = resource:gsub("^/+", ""):gsub("/+$", "")
  local info = rules.info(method, path)
  if path == "" then
    return nil, errors.invalid("resource must not be empty", "resource", info)
  end
  for seg in (path .. "/"):gmatch("([^/]*)/") do
    local err = check.id(seg, "resource", info)
    if err then return nil, err end
  end
  return path .. "/"
end

-- params as a query map (a copy); raises for a non-table, a non-string key
-- or a value that is not a string, number or boolean.
local function query_of(params, fname)
  if params == nil then return nil end
  if type(params) ~= "table" then
    check.raise(fname .. ": params must be a table, got " .. type(params), 4)
  end
  local q = {}
  for k, v in pairs(params) do
    local t = type(v)
    if type(k) ~= "string" or (t ~= "string" and t ~= "number" and t ~= "boolean") then
      check.raise(fname .. ": params." .. tostring(k) .. " must be a string, number or boolean "
        .. "under a string key, got " .. t, 4)
    end
    q[k] = v
  end
  return q
end

local function call(self, method, resource, params, fname, body)
  local path, err = resource_path(resource, fname, method)
  local query = query_of(params, fname)
  local pipe = self.client.pipeline
  local token = pipe:scoped(CLAIMS, fname, 3)
  if not path then return nil, err end
  return pipe:send({ method = method, service = SERVICE, path = path, query = query, body = body,
    headers = { Authorization = token }, idempotent = method ~= "POST" })
end

-- personalization:get(resource [, params]) -> the service's answer
function Personalization:get(resource, params)
  check.self(self, Personalization, "personalization:get")
  local res, err = call(self, "GET", resource, params, "personalization:get")
  return res, err
end

-- personalization:post(resource [, params] [, data]); data is sent as
-- {"data": data}
function Personalization:post(resource, params, data)
  local fname = "personalization:post"
  check.self(self, Personalization, fname)
  check.data_arg(data, fname, 2, "data")
  local body
  if data ~= nil then
    local text, err = rules.object(self.client.pipeline, data, "data",
      rules.info("POST", tostring(resource)), 10, "data")
    if not text then return nil, err end
    body = '{"data":' .. text .. "}"
  end
  local res, err = call(self, "POST", resource, params, fname, body)
  return res, err
end

-- personalization:delete(resource [, params])
function Personalization:delete(resource, params)
  check.self(self, Personalization, "personalization:delete")
  local res, err = call(self, "DELETE", resource, params, "personalization:delete")
  return res, err
end

---------------------------------------------------------------- personalized feed

local FEED_OPTS = { feed_slug = true, user_id = true, endpoint = true, ranking = true,
  limit = true, offset = true, enrich = true, reactions = true }
local FEED_PATH = "enrich/personalization/feed/"

-- A text option (`key`) as a query value: nil when absent, the value, or
-- nil, err when it breaks `rule` (check.id or check.slug); other types raise.
local function text_option(v, key, rule, fname, info)
  if v == nil then return nil end
  if type(v) ~= "string" then
    check.raise(fname .. ": option '" .. key .. "' must be a string, got " .. type(v), 4)
  end
  local err = rule(v, key, info)
  if err then return nil, err end
  return v
end

-- personalized_feed(opts) -> {results =, next =, limit =, offset =, version =, duration =}
function personalization.feed(client, opts)
  local fname = "client:personalized_feed"
  opts = check.opts(opts, FEED_OPTS, fname, 3)
  local info = { method = "GET", path = FEED_PATH }
  local user = opts.user_id
  if user == nil and client.current_user then user = client.user_id end
  local q, err = activities.read_query({ limit = opts.limit, offset = opts.offset, enrich = opts.enrich,
    reactions = opts.reactions, user_id = user }, fname, true, 3, info)
  if not q then return nil, err end
  for _, o in ipairs({ { "feed_slug", check.slug }, { "endpoint", check.id }, { "ranking", check.id } }) do
    q[o[1]], err = text_option(opts[o[1]], o[1], o[2], fname, info)
    if err then return nil, err end
  end
  return client.pipeline:send({ method = "GET", path = FEED_PATH, query = q, idempotent = true })
end

return personalization
