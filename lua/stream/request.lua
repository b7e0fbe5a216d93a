-- stream.request: the one pipeline every API area sends through.
--
-- Client.new builds one Pipeline per client (request.new) and keeps it as
-- `client.pipeline`; the API areas (users, feeds, activities, reactions,
-- collections, batch) check their arguments, describe a request and hand
-- it to `pipeline:send(desc)`. A description:
--   { method = "GET" | "POST" | "PUT" | "DELETE",
--     path = "user/alice/",          -- relative to the service's base URL, ids checked
--     service = "api",               -- which base URL (request.new's `services`);
--                                    -- "api" (the client's base_url) when nil
--     query = { key = value, ... },  -- string, number or boolean values, or nil
--     raw_query = "a=1&b=2",         -- already escaped, appended as it is
--     body = '{"id":...}',           -- JSON text; or a Lua table the pipeline
--                                    -- encodes (an object's keys in the table's
--                                    -- own order: ordered bodies are built with
--                                    -- request.object/array); or, with content_type,
--                                    -- raw bytes (a string); or nil
--     content_type = "image/png",    -- the body is raw bytes of this type
--     body_parts = {prefix, {path =, size =}, suffix},
--                                    -- instead of body (with content_type): a
--                                    -- file streamed from disk between two
--                                    -- strings (the transport contract, curl.lua)
--     headers = { ["X-A"] = "v" },   -- extra request headers, or nil
--     idempotent = true }            -- may it be sent again after it may
--                                    -- have reached the server?
-- The pipeline turns it into a URL (api_key first, then the query in key
-- order, every key and value percent-escaped, then raw_query), encodes a
-- table body with the core's codec (a value JSON cannot hold is an
-- `invalid` error naming the field, and nothing is sent), gives the
-- transport `headers` (desc.headers plus Content-Type = content_type; nil
-- when there are neither), sends it through the scheduler and transport,
-- applies total_timeout as a deadline that shortens each attempt, asks
-- retry.lua whether and when to send again, decodes a 2xx answer and builds
-- every error (errors.lua) with the description's method and path and the
-- transport's `sent`.
--
-- It raises only for a malformed description (a bug in an API module).
-- Errors are built by errors.lua, which runs every text from outside
-- through the client's scrub before anything is cut, so no secret or token
-- (nor a part of one) can appear there.
--
-- The pipeline gets everything it uses when it is built (codec, scheduler,
-- clock, settings, base URLs, api_key, scrubber, wall clock, random source,
-- signer): it reads no field of the client. Besides `send` it lends the
-- areas the core's JSON codec (`encode`, `decode`), its file scan
-- (`file_contains`, for upload boundaries), the wall clock
-- (`epoch`), the scrubber (`scrub`) and HS256 with the client's secret
-- (`sign`, for tokens an area hands out; `scoped`, for the tokens of the
-- other services, signed once), and `url` (a description's full URL).
--
-- With the options on_request / on_response set, the pipeline's send is
-- the hooked send below, which calls into hooks.lua (hooks.lua says what
-- the hooks get); without them the pipeline is exactly as described above.

local errors = require "stream.errors"
local retry = require "stream.retry"
local check = require "stream.check"
local hooks = require "stream.hooks"

local request = {}

local Pipeline = {}
Pipeline.__index = Pipeline
Pipeline.__name = "stream.pipeline"

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

---------------------------------------------------------------- bodies

-- The JSON text of an array of JSON texts (request.object's counterpart,
-- for a body that is a list: follow_many's).
function request.array(texts)
  return "[" .. table.concat(texts, ",") .. "]"
end

-- request.object's general case (see below).
local function members(...)
  local n = select("#", ...)
  if n % 2 == 1 then n = n + 1 end
  while n > 0 and select(n, ...) == nil do n = n - 2 end
  -- the last member closes the object in the same concatenation: a large
  -- value (a list of activities) is copied once more, not once per member
  local s, sep = "{", '"'
  for i = 1, n, 2 do
    local name, v = select(i, ...)
    if v ~= nil then
      if type(v) == "table" then v = request.array(v) end
      if i + 1 == n then return s .. sep .. name .. '":' .. v .. "}" end
      s, sep = s .. sep .. name .. '":' .. v, ',"'
    end
  end
  return "{}"
end

-- The JSON text of an object whose members are given in order: name,
-- value, name, value, ... A value is JSON text already encoded (and
-- checked: an object encoded once for its size check, a quoted id), a list
-- of such texts (sent as an array), or nil (the member is left out). Names
-- are the areas' own constants or checked ids (a collection name), never
-- escaped. This is the one place where bodies are spliced from JSON text:
-- the members go in the order given, so the bytes sent are the same on
-- every run (a Lua table's keys would come in lua_next's order).
-- request.object for exactly two members given as text, without the
-- vararg frame (a user's body on every create: about a third cheaper).
function request.pair(n1, v1, n2, v2)
  return '{"' .. n1 .. '":' .. v1 .. ',"' .. n2 .. '":' .. v2 .. "}"
end

function request.object(n1, v1, n2, v2, ...)
  -- one or two members given as text (a user's body): one concatenation
  if (...) == nil and type(v1) == "string" then
    if n2 == nil then return '{"' .. n1 .. '":' .. v1 .. "}" end
    if type(v2) == "string" then return '{"' .. n1 .. '":' .. v1 .. ',"' .. n2 .. '":' .. v2 .. "}" end
  end
  return members(n1, v1, n2, v2, ...)
end

-- A body that is not a string, as JSON text: a table is encoded (nil, err
-- (`invalid`, naming the member JSON cannot hold) when it cannot be);
-- anything else raises.
local function table_body(core, desc)
  local body = desc.body
  if type(body) ~= "table" or desc.content_type ~= nil then
    error("stream.request: body must be JSON text, a table, or raw bytes (a string) with content_type", 3)
  end
  local text, msg = core.json_encode(body, "")
  if text then return text end
  msg = msg:gsub("^%.", "")
  local field = msg:match("^([%w_]+)") or "body"
  return nil, errors.invalid(msg, field, { method = desc.method, path = desc.path })
end

---------------------------------------------------------------- descriptions

-- The base URL of a description; raises for an unknown method, service or
-- path. (Checks that read only what the common request has: every field
-- read is paid by every call.)
local function check_desc(services, desc)
  if not METHODS[desc.method] then
    error("stream.request: unknown method '" .. tostring(desc.method) .. "'", 3)
  end
  local path = desc.path
  if type(path) ~= "string" or path:byte(-1) ~= SLASH then
    error("stream.request: path must be a string ending in '/'", 3)
  end
  local base = services[desc.service or "api"]
  if not base then
    error("stream.request: unknown service '" .. tostring(desc.service) .. "'", 3)
  end
  return base
end

-- The transport's header map of a description that has headers or a
-- content_type: the headers, plus Content-Type (a copy then: the
-- description's table is left as it is). Raises for wrong types.
local function headers_of(desc)
  local ct, h = desc.content_type, desc.headers
  if h ~= nil and type(h) ~= "table" then
    error("stream.request: headers must be a table of names and values", 3)
  end
  if ct == nil then return h end
  if type(ct) ~= "string" then
    error("stream.request: content_type must be a string", 3)
  end
  local out = { ["Content-Type"] = ct }
  if h then
    for k, v in pairs(h) do
      if k ~= "Content-Type" then out[k] = v end
    end
  end
  return out
end

-- A description's body_parts, checked; raises when malformed.
local function parts_of(desc)
  local p = desc.body_parts
  if desc.body ~= nil or desc.content_type == nil or type(p) ~= "table" or type(p[1]) ~= "string"
    or type(p[2]) ~= "table" or type(p[2].path) ~= "string" or type(p[2].size) ~= "number"
    or type(p[3]) ~= "string" then
    error("stream.request: body_parts must be {prefix, {path =, size =}, suffix}, with content_type and no body", 4)
  end
  return p
end

---------------------------------------------------------------- sending

-- What errors.lua needs to build an error of this request: its method and
-- path, whether it may be sent twice, and the client's scrubber (errors.lua
-- is the one place that cleans text from outside). Made on failures only.
local function error_info(self, req, desc)
  return { method = desc.method, path = desc.path, idempotent = req.idempotent, scrub = self._scrub }
end

-- One attempt, given what sched:send answered: the decoded answer, or
-- nil, err. (The caller sends, so the hooked send can count the raw answer.)
local function attempt(self, req, desc, res, fail)
  if not res then
    return nil, errors.from_transport(fail, error_info(self, req, desc))
  end
  local status, raw = res.status, res.body
  local decode = self._core.json_decode
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
  return nil, errors.from_response(status, decode(raw), raw, res.headers, error_info(self, req, desc))
end

-- After attempt n failed with err: the seconds to wait before the next
-- attempt and retry.lua's context (made at the first failure, passed back
-- in after), or nil when the call ends with err.
local function backoff(self, req, err, n, deadline, ctx)
  local s = self._settings
  err.attempts = n
  if n > s.retries then return nil end
  ctx = ctx or { idempotent = req.idempotent, max_wait = s.max_retry_wait, random = self._random }
  ctx.epoch = self._epoch()
  local delay = retry.delay(err, n, ctx)
  if not delay then return nil end
  if deadline and self._clock:now() + delay >= deadline - DEADLINE_MARGIN then return nil end
  return delay, ctx
end

-- pipeline:send(desc): the decoded answer, or nil, err. Sends the request,
-- retrying where retry.lua allows, within total_timeout. Raises for a
-- malformed description, and on a closed client (at the caller of the
-- area method that sent).
-- The transport request of a description: req | nil, err (a body JSON
-- cannot hold). Raises for a malformed description, and on a closed
-- client, at the caller of the area method that sent (prepare <- send <-
-- area method <- caller).
local function prepare(self, desc)
  if self._closed then
    error("stream: " .. tostring(desc.method) .. " " .. tostring(desc.path) .. " on a closed client", 4)
  end
  local base = check_desc(self._services, desc)
  local body, headers = desc.body, nil
  if desc.headers ~= nil or desc.content_type ~= nil then headers = headers_of(desc) end
  if body ~= nil and type(body) ~= "string" then
    local err
    body, err = table_body(self._core, desc)
    if not body then return nil, err end
  end
  -- four fields, as every request has (a fifth would double the table's
  -- hash part on every call); headers only on the requests that have them
  local req = {
    method = desc.method, url = request.url(base, self._key_query, desc), body = body,
    idempotent = desc.idempotent == true,
  }
  if headers then req.headers = headers end
  if desc.body_parts ~= nil then req.body_parts = parts_of(desc) end
  return req
end

function Pipeline:send(desc)
  local req, perr = prepare(self, desc)
  if not req then return nil, perr end
  local s, clock = self._settings, self._clock
  local deadline = s.total_timeout and (clock:now() + s.total_timeout)
  local ctx -- made at the first failure: the common path allocates nothing more
  local n = 0
  while true do
    n = n + 1
    if deadline then req.timeout = math.min(s.timeout, deadline - clock:now()) end
    local res, err = attempt(self, req, desc, self._sched:send(req))
    if res ~= nil then return res end
    local delay
    delay, ctx = backoff(self, req, err, n, deadline, ctx)
    if not delay then return nil, err end
    self._sched:sleep(delay)
  end
end

-- (upvalues: read on every hooked call)
local hook_area, hook_before, hook_finish = hooks.area_of, hooks.before, hooks.finish

-- pipeline:send when a hook is set (request.new puts it on the pipeline
-- itself, so a pipeline without hooks runs Pipeline.send as it is, with
-- nothing added): Pipeline.send's loop with the hooks folded in (prepare
-- makes the request and raises for both): on_request before
-- each attempt (hooks.before), the attempts, body bytes and last answer
-- counted in locals, and on_response once at the end (hooks.finish), also
-- when the pipeline refused the body (no attempt).
local function hooked_send(self, desc)
  local h, s, clock = self._hooks, self._settings, self._clock
  local start = h.now()
  local req, perr = prepare(self, desc)
  -- the area remembered by path (hooks.area_of) is looked up here first:
  -- a function call less per call
  local area = desc.area or (desc.service == nil and h.areas[desc.path]) or hook_area(h, desc)
  if not req then
    hook_finish(h, desc, area, start, 0, nil, perr, 0, 0)
    return nil, perr
  end
  -- every attempt sends the same body
  local size, p = req.body and #req.body or 0, req.body_parts
  if p ~= nil then size = #p[1] + p[2].size + #p[3] end
  local deadline = s.total_timeout and (clock:now() + s.total_timeout)
  local on_request, ctx, n, received = h.on_request, nil, 0, 0
  while true do
    n = n + 1
    if deadline then req.timeout = math.min(s.timeout, deadline - clock:now()) end
    local out = on_request and hook_before(h, desc, area, req, n) or req
    local last, fail = self._sched:send(out)
    if last then received = received + #last.body end
    local res, err = attempt(self, req, desc, last, fail)
    if res ~= nil then
      hook_finish(h, desc, area, start, n, last, nil, size, received)
      return res
    end
    local delay
    delay, ctx = backoff(self, req, err, n, deadline, ctx)
    if not delay then
      hook_finish(h, desc, area, start, n, last, err, size, received)
      return nil, err
    end
    self._sched:sleep(delay)
  end
end

---------------------------------------------------------------- what the areas borrow

-- The core's encoder: JSON text, or nil, message (naming `field`'s path).
function Pipeline:encode(value, field)
  -- a string JSON keeps as it is (no control character, '"', '\\' or
  -- byte above 127: checked ids, kinds, feed ids) is quoted here, as the
  -- codec would, without a call into C
  if type(value) == "string" and not value:find('[%c"\\\128-\255]') then
    return '"' .. value .. '"'
  end
  return self._core.json_encode(value, field)
end

-- Whether the file at `path` holds the bytes `needle` (the core reads it
-- through a fixed buffer): true | false | nil, message when unreadable.
function Pipeline:file_contains(path, needle)
  return self._core.file_contains(path, needle)
end

-- The core's decoder: the value, or nil, message.
function Pipeline:decode(text)
  return self._core.json_decode(text)
end

-- Seconds since 1970 (the client's wall clock; token expiry, rate-limit resets).
function Pipeline:epoch()
  return self._epoch()
end

-- Text from outside with every secret and token of the client replaced.
function Pipeline:scrub(text)
  return self._scrub(text)
end

-- An HS256 JWT of the payload (JSON text) signed with the API secret.
-- Raises at the caller of the area method `fname` when the client holds a
-- token instead of the secret.
function Pipeline:sign(payload, fname)
  if not self._sign then
    error(fname .. " needs the API secret; this client holds a " .. self._holds, 3)
  end
  return self._sign(payload)
end

-- The token of a service scope (`payload`, JSON claims), signed with the
-- API secret once per client and kept for every later call; raises at the
-- caller of the area method `fname` when the client holds a token instead
-- (`level` as error() counts it from the function that calls scoped; 2,
-- its caller, by default).
function Pipeline:scoped(payload, fname, level)
  if not self._scoped then
    error(fname .. " needs the API secret; this client holds a " .. self._holds, (level or 2) + 1)
  end
  return self._scoped(payload)
end

-- The full URL of a description, as send would build it (for a link the
-- caller follows elsewhere: analytics' tracking links); sends nothing.
function Pipeline:url(desc)
  return request.url(check_desc(self._services, desc), self._key_query, desc)
end

-- After this every send raises (the client is closed).
function Pipeline:close()
  self._closed = true
end

function Pipeline.__tostring()
  return "stream.pipeline"
end

-- request.new{core =, sched =, transport =, settings =, services =,
--   key_query =, scrub =, epoch =, random =, sign =, scoped =, holds =}: core gives
-- the codec, transport the clock (now), sched sends and sleeps; settings are
-- the resolved options (timeout, total_timeout, retries, max_retry_wait);
-- services maps a service name to its base URL ("api" is required);
-- key_query is "?api_key=..." escaped; scrub cleans text from outside;
-- sign(payload) signs with the secret, scoped(payload) too but once per
-- payload (both nil for a token client, whose kind `holds` names in the
-- raise).
function request.new(o)
  if type(o.services) ~= "table" or type(o.services.api) ~= "string" then
    error("stream.request: services must map \"api\" to a base URL", 2)
  end
  local services = {}
  for name, url in pairs(o.services) do services[name] = url end
  local self = setmetatable({
    _core = o.core, _sched = o.sched, _clock = o.transport, _settings = o.settings,
    _services = services, _key_query = o.key_query, _scrub = o.scrub,
    _epoch = o.epoch or os.time, _random = o.random or math.random,
    _sign = o.sign, _scoped = o.scoped, _holds = o.holds or "token", _closed = false,
  }, Pipeline)
  self._hooks = hooks.new(o.settings or {}, o.transport, o.scrub, o.core and o.core.monotime)
  if self._hooks then self.send = hooked_send end
  return self
end

request.Pipeline = Pipeline
return request
