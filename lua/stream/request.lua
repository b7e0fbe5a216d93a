-- stream.request: the one pipeline every API area sends through.
--
-- An API module (users.lua; feeds and reactions the same way) checks its
-- arguments and describes the request:
--   { method = "GET" | "POST" | "PUT" | "DELETE",
--     path = "user/alice/",          -- relative to the base URL, ids checked
--     query = { key = value, ... },  -- string, number or boolean values, or nil
--     raw_query = "a=1&b=2",         -- already escaped, appended as it is
--     body = '{"id":...}',           -- JSON text, or nil
--     idempotent = true }            -- may it be sent again after it may
--                                    -- have reached the server?
-- and calls client:_request(desc). This module turns the description into
-- a URL (api_key first, then the query in key order, every key and value
-- percent-escaped, then raw_query), sends it through the client's
-- scheduler and transport, applies total_timeout as a deadline that
-- shortens each attempt, asks retry.lua whether and when to send again,
-- decodes a 2xx answer and builds every error (errors.lua) with the
-- description's method and path and the transport's `sent`.
--
-- It raises only for a malformed description (a bug in an API module).
-- Errors are built by errors.lua, which runs every text from outside
-- through the client's scrub before anything is cut, so no secret or token
-- (nor a part of one) can appear there.

local errors = require "stream.errors"
local retry = require "stream.retry"
local check = require "stream.check"

local request = {}

local METHODS = { GET = true, POST = true, PUT = true, DELETE = true }
-- A retry must start this long before the deadline to be worth sending.
local DEADLINE_MARGIN = 0.001
local SLASH = ("/"):byte()

local function query_value(v, key)
  local t = type(v)
  if t == "string" then return v end
  if t == "boolean" then return v and "true" or "false" end
  if t == "number" then
    if v == math.floor(v) and v >= -2^53 and v <= 2^53 then return string.format("%d", v) end
    return string.format("%.17g", v)
  end
  error("stream.request: query value '" .. tostring(key) .. "' is a " .. t, 4)
end

-- The full URL of a description; `key_query` is "?api_key=..." (escaped).
function request.url(base, key_query, desc)
  local url = base .. desc.path .. key_query
  local q = desc.query
  if q then
    local keys = {}
    for k in pairs(q) do keys[#keys + 1] = k end
    table.sort(keys)
    local parts = { url }
    for i, k in ipairs(keys) do
      parts[i + 1] = "&" .. check.escape(k) .. "=" .. check.escape(query_value(q[k], k))
    end
    url = table.concat(parts)
  end
  if desc.raw_query and desc.raw_query ~= "" then url = url .. "&" .. desc.raw_query end
  return url
end

local function check_desc(desc)
  if not METHODS[desc.method] then
    error("stream.request: unknown method '" .. tostring(desc.method) .. "'", 3)
  end
  if type(desc.path) ~= "string" or desc.path:byte(-1) ~= SLASH then
    error("stream.request: path must be a string ending in '/'", 3)
  end
  if desc.body ~= nil and type(desc.body) ~= "string" then
    error("stream.request: body must be JSON text", 3)
  end
end

-- What errors.lua needs to build an error of this request: its method and
-- path, whether it may be sent twice, and the client's scrubber (errors.lua
-- is the one place that cleans text from outside). Made on failures only.
local function error_info(client, req, desc)
  return {
    method = desc.method, path = desc.path, idempotent = req.idempotent,
    scrub = function(text) return client:_scrub(text) end,
  }
end

-- One attempt: the decoded answer, or nil, err.
local function attempt(client, req, desc)
  local res, fail = client._sched:send(req)
  if not res then
    return nil, errors.from_transport(fail, error_info(client, req, desc))
  end
  local status, raw = res.status, res.body
  local decode = client._core.json_decode
  if status >= 200 and status < 300 then
    local value, msg = decode(raw)
    if value == nil then
      return nil, errors.new("decode", "answer is not valid JSON: " .. msg, {
        status = status, method = desc.method, path = desc.path,
        rate_limit = errors.rate_limit(res.headers),
      })
    end
    return value
  end
  return nil, errors.from_response(status, decode(raw), raw, res.headers, error_info(client, req, desc))
end

-- Sends the description, retrying where retry.lua allows, within the
-- client's total_timeout. The decoded answer, or nil, err.
function request.perform(client, desc)
  check_desc(desc)
  local s = client._settings
  local t = client._transport
  local req = {
    method = desc.method,
    url = request.url(client.base_url, client._key_query, desc),
    body = desc.body,
    idempotent = desc.idempotent == true,
  }
  local deadline = s.total_timeout and (t:now() + s.total_timeout)
  local ctx -- made at the first failure: the common path allocates nothing more
  local n = 0
  while true do
    n = n + 1
    if deadline then req.timeout = math.min(s.timeout, deadline - t:now()) end
    local res, err = attempt(client, req, desc)
    if res ~= nil then return res end
    err.attempts = n
    if n > s.retries then return nil, err end
    ctx = ctx or { idempotent = req.idempotent, max_wait = s.max_retry_wait, random = client._random }
    ctx.epoch = client._epoch()
    local delay = retry.delay(err, n, ctx)
    if not delay then return nil, err end
    if deadline and t:now() + delay >= deadline - DEADLINE_MARGIN then return nil, err end
    client._sched:sleep(delay)
  end
end

return request
