-- stream.client: one connection to Stream. Holds the credentials, the
-- resolved options, the transport and the scheduler, and builds the
-- pipeline (request.lua: URL, retries, deadline, decoding, errors) that the
-- API modules send through: `client.pipeline`, a public field. The modules
-- use only it and the client's public fields and methods.
--
-- Credentials live in a private weak table, never in a field of the client
-- object, so dumping a client (pairs, inspect, tostring) shows no secret.
-- Every error text from outside is scrubbed of the secret and the tokens
-- before it reaches the caller. The endpoints themselves are in users.lua,
-- feeds.lua, activities.lua, reactions.lua, collections.lua,
-- personalization.lua, analytics.lua, moderation.lua, files.lua and og.lua; option and
-- environment parsing in config.lua.

local errors = require "stream.errors"
local users = require "stream.users"
local scheduler = require "stream.scheduler"
local config = require "stream.config"
local check = require "stream.check"
local request = require "stream.request"
local feeds = require "stream.feeds"
local activities = require "stream.activities"
local reactions = require "stream.reactions"
local collections = require "stream.collections"
local batch = require "stream.batch"
local personalization = require "stream.personalization"
local analytics = require "stream.analytics"
local moderation = require "stream.moderation"
local files = require "stream.files"
local og = require "stream.og"

local Client = {}
Client.__index = Client
Client.__name = "stream.client"

local VERSION = config.VERSION
local CLIENT_NAME = "stream-lua-client-" .. VERSION

-- client -> { secret = ..., token = ... }; weak so a client can be collected.
local private = setmetatable({}, { __mode = "k" })

-- The JWT server-side clients send: one token for every endpoint.
local SERVER_CLAIMS = '{"resource":"*","action":"*","feed_id":"*"}'

-- Secrets shorter than this are not scrubbed: a secret of a few characters
-- would blank ordinary words; Stream's secrets and every token are longer.
local MIN_SCRUB = 8
local REDACTED = "[redacted]"

-- Replaces every occurrence of the client's secrets in text.
function Client:_scrub(text)
  if type(text) ~= "string" then return text end
  local p = private[self]
  if not p then return text end
  for _, s in ipairs(p.hidden) do
    local i = #s >= MIN_SCRUB and text:find(s, 1, true)
    while i do
      text = text:sub(1, i - 1) .. REDACTED .. text:sub(i + #s)
      i = text:find(s, i + #REDACTED, true)
    end
  end
  return text
end

local function check_open(self, fname, level)
  if self._closed then
    error("stream: " .. fname .. " on a closed client", (level or 2) + 1)
  end
end

-- Driving the scheduler from inside one of its own tasks would wait for
-- that very task: a caller bug, raised at once.
local function check_outside(self, fname)
  if self._sched:inside() then
    error(fname .. ": called from inside a task of this client (go/parallel); a task cannot "
      .. "wait for the scheduler that runs it: return from the task instead", 3)
  end
end

-- The base URL of each service a request description may name: "api" is
-- the client's base_url; settings.services may add others (name -> URL).
local function services_of(settings)
  local out = { api = settings.base_url }
  for name, url in pairs(settings.services or {}) do
    if name ~= "api" then out[name] = url end
  end
  return out
end

-- What the transport is made with: the resolved options it needs and the
-- headers every request carries (Content-Type for requests with a body).
local function transport_settings(o, auth)
  return {
    timeout = o.timeout,
    connect_timeout = o.connect_timeout,
    max_response_bytes = o.max_response_bytes,
    max_header_bytes = o.max_header_bytes,
    max_connections = o.max_connections,
    ca_file = o.ca_file,
    verify = o.verify,
    proxy = o.proxy,
    headers = {
      ["Authorization"] = auth,
      ["stream-auth-type"] = "jwt",
      ["X-Stream-Client"] = CLIENT_NAME,
      ["Accept"] = "application/json",
      ["User-Agent"] = o.user_agent,
    },
    body_headers = { ["Content-Type"] = "application/json" },
  }
end

-- What the pipeline signs with the secret (nil for a token client): any
-- payload (`sign`, feed:token), and the tokens of the services (`scoped`),
-- each signed once per client and payload, then kept in the private table
-- and scrubbed like the client's own token.
local function signers(core, p)
  if not p.secret then return nil, nil end
  local function sign(payload) return core.hs256(p.secret, payload) end
  p.scoped = {}
  local function scoped(payload)
    local t = p.scoped[payload]
    if not t then
      t = sign(payload)
      p.scoped[payload] = t
      p.hidden[#p.hidden + 1] = t
    end
    return t
  end
  return sign, scoped
end

-- settings (from stream.connect, already checked): api_key, secret or
-- token (+ claims), app_id, base_url, options; optionally services (more
-- base URLs by name); for the unit specs also epoch (a wall clock) and
-- random (a [0, 1) source).
function Client.new(core, settings, transport_mod)
  local self = setmetatable({}, Client)
  local p = { hidden = {} }
  local auth
  if settings.token then
    auth = settings.token
    p.token = settings.token
    p.hidden[1] = settings.token
    -- a token scoped to one feed (feed:token) names no user
    self.auth_mode = settings.feed_scope and "feed_token" or "user_token"
    self.feed_scope = settings.feed_scope
  else
    auth = core.hs256(settings.secret, SERVER_CLAIMS)
    p.secret = settings.secret
    p.hidden[1] = settings.secret
    p.hidden[2] = auth
    self.auth_mode = "server"
  end
  private[self] = p
  self._core = core
  self.api_key = settings.api_key
  self.app_id = settings.app_id
  self.base_url = settings.base_url
  local o = config.resolve(settings.options or {})
  self._transport = transport_mod.new(core, transport_settings(o, auth))
  self._sched = scheduler.new(self._transport)
  local sign, scoped = signers(core, p)
  self.pipeline = request.new({
    core = core, sched = self._sched, transport = self._transport, settings = o,
    services = services_of(settings),
    key_query = "?api_key=" .. check.escape(settings.api_key),
    scrub = function(text) return self:_scrub(text) end,
    epoch = settings.epoch or os.time, random = settings.random or math.random,
    sign = sign, scoped = scoped,
    holds = self.auth_mode:gsub("_", " "),
  })
  self.users = users.collection(self)
  self.reactions = reactions.collection(self)
  self.collections = collections.new(self)
  self.personalization = personalization.new(self)
  self.analytics = analytics.new(self)
  self.moderation = moderation.new(self)
  self.files = files.new(self, "files")
  self.images = files.new(self, "images")
  if settings.claims and type(settings.claims.user_id) == "string" then
    self.user_id = settings.claims.user_id
    self.current_user = users.handle(self, settings.claims.user_id)
  end
  return self
end

-- Sends a request description (request.lua says what it holds) and
-- returns the decoded answer, or nil, err: client.pipeline:send, kept for
-- callers that used this name. The API modules send through the pipeline.
function Client:_request(desc)
  return self.pipeline:send(desc)
end

function Client:user(id)
  check.self(self, Client, "client:user")
  check_open(self, "client:user")
  local user = users.handle(self, id, 2) -- not a tail call: errors point at our caller
  return user
end

-- client:feed("user", "alice") or client:feed("user:alice")
function Client:feed(slug, id)
  check.self(self, Client, "client:feed")
  check_open(self, "client:feed")
  local feed = feeds.handle(self, slug, id) -- not a tail call: errors point at our caller
  return feed
end

-- client:get_activities({ids = {...}} | {foreign_id_times = {...}} [, opts])
function Client:get_activities(which, opts)
  check.self(self, Client, "client:get_activities")
  check_open(self, "client:get_activities")
  local res, err = activities.get_activities(self, which, opts)
  return res, err
end

-- client:activity_partial_update({id = | foreign_id =, time =, set =, unset =})
function Client:activity_partial_update(change)
  check.self(self, Client, "client:activity_partial_update")
  check_open(self, "client:activity_partial_update")
  local res, err = activities.partial_update(self, change)
  return res, err
end

-- client:activities_partial_update({change, ...})
function Client:activities_partial_update(changes)
  check.self(self, Client, "client:activities_partial_update")
  check_open(self, "client:activities_partial_update")
  local res, err = activities.partial_updates(self, changes)
  return res, err
end

-- client:update_activities({activity with foreign_id and time, ...})
function Client:update_activities(list)
  check.self(self, Client, "client:update_activities")
  check_open(self, "client:update_activities")
  local res, err = activities.update_all(self, list)
  return res, err
end

-- client:add_to_many(activity, {feed, ...}); batch.lua
function Client:add_to_many(activity, list)
  check.self(self, Client, "client:add_to_many")
  check_open(self, "client:add_to_many")
  local res, err = batch.add_to_many(self, activity, list)
  return res, err
end

-- client:follow_many({{source =, target =}, ...} [, {activity_copy_limit = n}])
function Client:follow_many(list, opts)
  check.self(self, Client, "client:follow_many")
  check_open(self, "client:follow_many")
  local res, err = batch.follow_many(self, list, opts)
  return res, err
end

-- client:unfollow_many({{source =, target = [, keep_history = true]}, ...})
function Client:unfollow_many(list)
  check.self(self, Client, "client:unfollow_many")
  check_open(self, "client:unfollow_many")
  local res, err = batch.unfollow_many(self, list)
  return res, err
end

-- client:personalized_feed({feed_slug =, user_id =, endpoint =, ranking =,
-- limit =, offset =, enrich =, reactions =}); personalization.lua
function Client:personalized_feed(opts)
  check.self(self, Client, "client:personalized_feed")
  check_open(self, "client:personalized_feed")
  local res, err = personalization.feed(self, opts)
  return res, err
end

-- client:flag_user(target_id, {user_id =, reason =}); moderation.lua
function Client:flag_user(target, opts)
  check.self(self, Client, "client:flag_user")
  check_open(self, "client:flag_user")
  local res, err = moderation.flag_user(self, target, opts)
  return res, err
end

-- client:og(url): the Open Graph data of a page; og.lua
function Client:og(url)
  check.self(self, Client, "client:og")
  check_open(self, "client:og")
  local res, err = og.scrape(self, url, "client:og")
  return res, err
end

-- Get-or-create of the token's own user; its data is never overwritten.
function Client:set_user(data)
  check.self(self, Client, "client:set_user")
  if self.auth_mode ~= "user_token" or not self.current_user then
    error("client:set_user needs a client made with a user token (it has a user_id claim)", 2)
  end
  if data ~= nil and type(data) ~= "table" then
    error("client:set_user: data must be a table, got " .. type(data), 2)
  end
  if data ~= nil and data.id ~= nil then
    -- the token's user id is the id: a copy without it, the caller's table untouched
    local copy = {}
    for k, v in pairs(data) do
      if k ~= "id" then copy[k] = v end
    end
    data = copy
  end
  return self.current_user:get_or_create(data)
end

local TOKEN_OPTS = { expires_in = true }

-- A token for one user, signed with the API secret (server side only).
function Client:create_user_token(user_id, extra_claims, opts)
  check.self(self, Client, "client:create_user_token")
  local p = private[self]
  if not p or not p.secret then
    error("client:create_user_token needs the API secret; this client holds a "
      .. self.auth_mode:gsub("_", " "), 2)
  end
  if type(user_id) ~= "string" then
    error("client:create_user_token: user_id must be a string, got " .. type(user_id), 2)
  end
  if extra_claims ~= nil and type(extra_claims) ~= "table" then
    error("client:create_user_token: extra_claims must be a table, got " .. type(extra_claims), 2)
  end
  opts = check.opts(opts, TOKEN_OPTS, "client:create_user_token")
  local bad = check.id(user_id, "user_id")
  if bad then return nil, bad end
  local claims = {}
  if extra_claims then
    for k, v in pairs(extra_claims) do
      if k == "user_id" then
        error("client:create_user_token: extra_claims may not set user_id", 2)
      end
      claims[k] = v
    end
  end
  claims.user_id = user_id
  if opts.expires_in ~= nil then
    local e = opts.expires_in
    if type(e) ~= "number" or e <= 0 or e ~= e then
      error("client:create_user_token: expires_in must be a positive number of seconds", 2)
    end
    claims.exp = math.floor(os.time() + e)
  end
  local payload, msg = self._core.json_encode(claims, "claims")
  if not payload then
    return nil, errors.invalid(msg, "claims")
  end
  return self._core.hs256(p.secret, payload)
end

---------------------------------------------------------------- concurrency

local PARALLEL_OPTS = { max_in_flight = true }

-- Runs each function in its own task; users calls inside them run
-- concurrently. Returns one entry per function, in order: a packed list of
-- what it returned ({n = ..., ...}); a function that raised gives
-- {n = 2, nil, error_value, raised = true}. One failure never stops the others,
-- nor does a close from one of them (calls in flight end as "closed").
-- Inside nginx each task is a light thread of the calling request, so one
-- client may serve any number of concurrent requests (scheduler.lua).
function Client:parallel(fns, opts)
  check.self(self, Client, "client:parallel")
  check_open(self, "client:parallel")
  check_outside(self, "client:parallel")
  if type(fns) ~= "table" then
    error("client:parallel: expected a list of functions, got " .. type(fns), 2)
  end
  local n = #fns
  for i = 1, n do
    if type(fns[i]) ~= "function" then
      error("client:parallel: item " .. i .. " is a " .. type(fns[i]) .. ", not a function", 2)
    end
  end
  opts = check.opts(opts, PARALLEL_OPTS, "client:parallel")
  local m = opts.max_in_flight
  if m ~= nil and (type(m) ~= "number" or m < 1 or m ~= math.floor(m)) then
    error("client:parallel: max_in_flight must be a positive integer", 2)
  end
  return self._sched:run_all(fns, m or n)
end

-- Starts fn(...) in a task without waiting; users calls inside it yield.
-- Returns the task (task:done(), task:result()). Drive with client:step.
function Client:go(fn, ...)
  check.self(self, Client, "client:go")
  check_open(self, "client:go")
  if type(fn) ~= "function" then
    error("client:go: expected a function, got " .. type(fn), 2)
  end
  return self._sched:spawn(fn, nil, ...)
end

-- Drives pending requests for at most `timeout` seconds (default 0: never
-- block) and resumes the tasks whose requests finished. Returns the number
-- of unfinished tasks. On a closed client it drains: each call still in
-- flight ends with nil, err (reason "closed").
function Client:step(timeout)
  check.self(self, Client, "client:step")
  check_outside(self, "client:step")
  if timeout ~= nil and (type(timeout) ~= "number" or timeout < 0) then
    error("client:step: timeout must be a number of seconds >= 0", 2)
  end
  return self._sched:step(timeout or 0)
end

-- Runs until no task is left (on a closed client too, as step).
function Client:wait()
  check.self(self, Client, "client:wait")
  check_outside(self, "client:wait")
  self._sched:wait()
end

-- Unfinished tasks, and requests in flight among them.
function Client:pending()
  check.self(self, Client, "client:pending")
  return self._sched:pending()
end

-- Seconds an outside event loop may sleep before calling step again
-- (0: now; nil: nothing is pending).
function Client:timeout()
  check.self(self, Client, "client:timeout")
  return self._sched:timeout()
end

-- Puts this client's calls on a foreign event loop: `adapter` is the loop's
-- side (stream.loop.luv and stream.loop.cqueues make one; lua/stream/loop.lua
-- says what it must offer), `who` names the caller in errors (which point
-- at the caller's caller: the adapters' attach calls this).
function Client.attach_loop(self, adapter, who)
  who = who or "client:attach_loop"
  if getmetatable(self) ~= Client then
    error(who .. ": expects a client made by stream.connect, got " .. type(self), 3)
  end
  if self._closed then error(who .. ": the client is closed", 3) end
  require("stream.loop").install(self._sched, self._transport, adapter, who, 4)
end

-- Connection figures of the transport: requests sent, connections opened.
function Client:stats()
  check.self(self, Client, "client:stats")
  return self._transport:stats()
end

-- Calls in flight (in tasks of this client, or, under nginx, anywhere) end
-- with nil, err (reason "closed"); parallel still returns its results and
-- step/wait drain the tasks. The scheduler learns of it first, so it stops
-- driving the transport before the transport goes.
function Client:close()
  check.self(self, Client, "client:close")
  if not self._closed then
    self._closed = true
    if self.pipeline then self.pipeline:close() end
    if self._sched then self._sched:close() end
    self._transport:close()
  end
end

Client.__close = Client.close
Client.__gc = Client.close

function Client:__tostring()
  local who = self.auth_mode == "server" and "server-side"
      or self.feed_scope and ("feed token for " .. self.feed_scope)
      or ("user token" .. (self.user_id and (" for " .. self.user_id) or ""))
  return string.format("stream.client (api_key=%s, %s, %s%s)", self.api_key, who,
    self.base_url, self._closed and ", closed" or "")
end

Client.VERSION = VERSION
Client.CLIENT_NAME = CLIENT_NAME
return Client
