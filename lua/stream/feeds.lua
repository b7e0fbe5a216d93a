-- stream.feeds: a light handle per feed (`client:feed("user", "alice")`)
-- with activities, reads, paging and follows; changes to an activity's `to`
-- targets (described in batch.lua); and tokens scoped to the feed.
--
-- Every method checks what it was given and describes one request for the
-- client's pipeline (client.pipeline:send); sending, retries, decoding and errors
-- are the pipeline's. Retry safety is part of each description: reads,
-- removes, follows, unfollows and target updates may be repeated; an add
-- only when it carries both foreign_id and time (Stream then replaces
-- instead of adding). feed:token signs and sends nothing.
--
-- A handle holds no state but its names. A slug or id that breaks Stream's
-- rules is reported by the first method called (`invalid`, nothing sent);
-- a wrong argument type raises at once.

local errors = require "stream.errors"
local check = require "stream.check"
local rules = require "stream.rules"
local activities = require "stream.activities"
local paging = require "stream.paging"
local handles = require "stream.handles"
local batch = require "stream.batch"
local request = require "stream.request"

local feeds = {}

-- The handle type is handles.lua's (inside an activity a feed handle is its
-- "slug:id", as in `to`); its methods are here.
local Feed = handles.Feed

function Feed.__tostring(f)
  return "stream.feed " .. f.id
end

-- nil when slug and id are fine, else an "invalid" error.
feeds.problem = handles.feed_problem

local function self_check(self, fname)
  check.self(self, Feed, fname, 3)
end

-- client:feed("user", "alice") or client:feed("user:alice")
feeds.handle = handles.feed

-- A feed named by a handle or a "slug:id" string, as "slug:id"; nil, err
-- (handles.target_id).
feeds.target_id = handles.target_id
local target_id = feeds.target_id

-- Options of a public method, checked from the method itself: a problem
-- raises at its caller (called from a helper one call deeper: level 3).
local function check_opts(opts, allowed, fname, level)
  local out = check.opts(opts, allowed, fname, (level or 2) + 1)
  return out
end

function Feed:_path(suffix)
  return "feed/" .. self.slug .. "/" .. self.user_id .. "/" .. (suffix or "")
end

-- The feed's path, or nil, err naming the refused request as rules.info
-- names it (a bad slug or id cut and shown, never raw).
local function checked(self, method, suffix)
  local err = feeds.problem(self.slug, self.user_id)
  if err then
    local info = rules.info(method, "feed", self.slug, self.user_id)
    if suffix then info.path = info.path .. suffix end
    err.method, err.path = info.method, info.path
    return nil, err
  end
  return self:_path(suffix)
end

---------------------------------------------------------------- activities

function Feed:add_activity(activity)
  self_check(self, "feed:add_activity")
  if type(activity) ~= "table" then
    error("feed:add_activity: activity must be a table, got " .. type(activity), 2)
  end
  local path, err = checked(self, "POST")
  if not path then return nil, err end
  local body
  body, err = activities.encode(self.client, activity, "activity", { method = "POST", path = path })
  if not body then return nil, err end
  return self.client.pipeline:send({
    method = "POST", path = path, body = body,
    idempotent = activities.replaceable(activity),
  })
end

function Feed:add_activities(list)
  self_check(self, "feed:add_activities")
  if type(list) ~= "table" then
    error("feed:add_activities: expected a list of activity tables, got " .. type(list), 2)
  end
  local path, err = checked(self, "POST")
  if not path then return nil, err end
  local info = { method = "POST", path = path }
  if #list == 0 then
    return nil, errors.invalid("the list of activities must not be empty", "activities", info)
  end
  local parts, idempotent = {}, true
  for i = 1, #list do
    local a = list[i]
    if type(a) ~= "table" then
      error("feed:add_activities: item " .. i .. " must be a table, got " .. type(a), 2)
    end
    local text
    text, err = activities.encode(self.client, a, "activities[" .. i .. "]", info)
    if not text then return nil, err end
    parts[i] = text
    idempotent = idempotent and activities.replaceable(a)
  end
  return self.client.pipeline:send({
    method = "POST", path = path, body = request.object("activities", parts),
    idempotent = idempotent,
  })
end

-- feed:remove_activity(id) or feed:remove_activity({foreign_id = "post:1"})
function Feed:remove_activity(which)
  self_check(self, "feed:remove_activity")
  local key, query
  if type(which) == "table" then
    if type(which.foreign_id) ~= "string" then
      error("feed:remove_activity: expected an activity id or {foreign_id = \"...\"}", 2)
    end
    key, query = which.foreign_id, { foreign_id = 1 }
  elseif type(which) == "string" then
    key = which
  else
    error("feed:remove_activity: expected an activity id or {foreign_id = \"...\"}, got "
      .. type(which), 2)
  end
  local path, err = checked(self, "DELETE")
  if not path then return nil, err end
  -- the key goes in the path: a foreign id here follows the activity id rule
  err = rules.activity_id(key, query and "foreign_id" or "id", { method = "DELETE", path = path },
    query and "foreign_id" or "activity id")
  if err then return nil, err end
  return self.client.pipeline:send({
    method = "DELETE", path = path .. key .. "/", query = query, idempotent = true,
  })
end

---------------------------------------------------------------- reads

local GET_OPTS = activities.PAGING_OPTS

local function read_desc(self, opts, fname)
  opts = check_opts(opts, GET_OPTS, fname, 3)
  local path, err = checked(self, "GET")
  local query, enrich = activities.read_query(opts, fname, true, 3, { method = "GET", path = path })
  if not path then return nil, err end
  if not query then return nil, enrich end
  if enrich then path = "enrich/" .. path end
  return { method = "GET", path = path, query = query, idempotent = true }
end

-- feed:get([opts]) -> {results =, next =, duration =}
function Feed:get(opts)
  self_check(self, "feed:get")
  local desc, err = read_desc(self, opts, "feed:get")
  if not desc then return nil, err end
  return self.client.pipeline:send(desc)
end

local function follow_link(pipe)
  return function(path, raw)
    return pipe:send({ method = "GET", path = path, raw_query = raw, idempotent = true })
  end
end

-- The pages of a read (desc, or nil, err from read_desc): the first
-- request, then the server's next links.
local function walk(self, desc, err)
  local client = self.client
  local pipe = client.pipeline
  local first = function()
    if not desc then return nil, err end
    return pipe:send(desc)
  end
  return paging.pages(client, first, follow_link(pipe),
    { method = "GET", path = desc and desc.path or self:_path() })
end

-- for page, err in feed:pages([opts]) do ... end
function Feed:pages(opts)
  self_check(self, "feed:pages")
  local desc, err = read_desc(self, opts, "feed:pages")
  return walk(self, desc, err)
end

-- for activity, err in feed:each([opts]) do ... end
function Feed:each(opts)
  self_check(self, "feed:each")
  local desc, err = read_desc(self, opts, "feed:each")
  return paging.each(walk(self, desc, err))
end

---------------------------------------------------------------- follows

local FOLLOW_OPTS = { activity_copy_limit = true }
local UNFOLLOW_OPTS = { keep_history = true }
local LIST_OPTS = { limit = true, offset = true }
local FOLLOWING_OPTS = { limit = true, offset = true, filter = true }
local STATS_OPTS = { followers_slugs = true, following_slugs = true }

-- feed:follow(target [, {activity_copy_limit = n}])
function Feed:follow(target, opts)
  self_check(self, "feed:follow")
  opts = check_opts(opts, FOLLOW_OPTS, "feed:follow")
  local n = opts.activity_copy_limit
  if n ~= nil and (type(n) ~= "number" or n ~= math.floor(n) or n < 0 or n > 1000) then
    error("feed:follow: activity_copy_limit must be an integer in [0, 1000]", 2)
  end
  local path, err = checked(self, "POST", "follows/")
  if not path then return nil, err end
  local t
  t, err = target_id(target, "feed:follow", { method = "POST", path = path })
  if not t then return nil, err end
  local pipe = self.client.pipeline
  return pipe:send({
    method = "POST", path = path, idempotent = true,
    body = request.object("target", pipe:encode(t), "activity_copy_limit", n and string.format("%d", n)),
  })
end

-- feed:unfollow(target [, {keep_history = true}])
function Feed:unfollow(target, opts)
  self_check(self, "feed:unfollow")
  opts = check_opts(opts, UNFOLLOW_OPTS, "feed:unfollow")
  if opts.keep_history ~= nil and type(opts.keep_history) ~= "boolean" then
    error("feed:unfollow: keep_history must be a boolean", 2)
  end
  local path, err = checked(self, "DELETE", "follows/")
  if not path then return nil, err end
  local t
  t, err = target_id(target, "feed:unfollow", { method = "DELETE", path = path })
  if not t then return nil, err end
  return self.client.pipeline:send({
    method = "DELETE", path = path .. t .. "/",
    query = opts.keep_history and { keep_history = 1 } or nil, idempotent = true,
  })
end

-- limit (the server's follow_limit range) and offset of a follows list:
-- the query, or nil, err.
local function list_query(opts, fname, info)
  local q = {}
  local ok, err = rules.paging(opts, q, "follow_limit", fname, info, 3)
  if not ok then return nil, err end
  return q
end

-- feed:followers([{limit =, offset =}]) -> {results = {row...}, duration =}
function Feed:followers(opts)
  self_check(self, "feed:followers")
  opts = check_opts(opts, LIST_OPTS, "feed:followers")
  local path, err = checked(self, "GET", "followers/")
  local q, bad = list_query(opts, "feed:followers", { method = "GET", path = path })
  if not path then return nil, err end
  if not q then return nil, bad end
  return self.client.pipeline:send({ method = "GET", path = path, query = q, idempotent = true })
end

-- feed:following([{limit =, offset =, filter = {"user:bob", ...}}])
function Feed:following(opts)
  self_check(self, "feed:following")
  opts = check_opts(opts, FOLLOWING_OPTS, "feed:following")
  local path, err = checked(self, "GET", "follows/")
  local q, bad = list_query(opts, "feed:following", { method = "GET", path = path })
  if not path then return nil, err end
  if not q then return nil, bad end
  if opts.filter ~= nil then
    if type(opts.filter) ~= "table" then
      error("feed:following: option 'filter' must be a list of feed handles or \"slug:id\" strings", 2)
    end
    local list = {}
    for i = 1, #opts.filter do
      local t
      t, err = target_id(opts.filter[i], "feed:following", { method = "GET", path = path })
      if not t then return nil, err end
      list[i] = t
    end
    if #list > 0 then q.filter = table.concat(list, ",") end
  end
  return self.client.pipeline:send({ method = "GET", path = path, query = q, idempotent = true })
end

local function slug_list(list, key, fname, info)
  if type(list) ~= "table" then
    error(fname .. ": option '" .. key .. "' must be a list of feed slugs", 3)
  end
  for i = 1, #list do
    local s = list[i]
    if type(s) ~= "string" then
      error(fname .. ": " .. key .. "[" .. i .. "] must be a string", 3)
    end
    local err = check.slug(s, key, info)
    if err then
      err.detail = key .. "[" .. i .. "]: " .. err.detail
      return nil, err
    end
  end
  return table.concat(list, ",")
end

-- feed:follow_stats([{followers_slugs = {...}, following_slugs = {...}}])
function Feed:follow_stats(opts)
  self_check(self, "feed:follow_stats")
  opts = check_opts(opts, STATS_OPTS, "feed:follow_stats")
  local info = { method = "GET", path = "stats/follow/" }
  local err = feeds.problem(self.slug, self.user_id, info)
  if err then return nil, err end
  local q = { followers = self.id, following = self.id }
  for _, key in ipairs({ "followers_slugs", "following_slugs" }) do
    if opts[key] ~= nil then
      local v
      v, err = slug_list(opts[key], key, "feed:follow_stats", info)
      if not v then return nil, err end
      if v ~= "" then q[key] = v end
    end
  end
  return self.client.pipeline:send({ method = "GET", path = "stats/follow/", query = q, idempotent = true })
end

---------------------------------------------------------------- targets and tokens

-- feed:update_activity_to_targets({foreign_id =, time = | id =, new_targets =
--   | added_targets =, removed_targets =}) -> {activity =, added =, removed =}
function Feed:update_activity_to_targets(change)
  self_check(self, "feed:update_activity_to_targets")
  local res, err = batch.update_to_targets(self, change)
  return res, err
end

local TOKEN_OPTS = { read_only = true, expires_in = true }

-- feed:token([{read_only = true, expires_in = seconds}]) -> a JWT scoped to
-- this feed, for a browser or a game client; signed here, nothing is sent.
-- The claims are the ones the official clients sign for a feed: resource
-- "*", action "read" or "*", feed_id the slug and id joined ("useralice").
function Feed:token(opts)
  self_check(self, "feed:token")
  opts = check_opts(opts, TOKEN_OPTS, "feed:token")
  if opts.read_only ~= nil and type(opts.read_only) ~= "boolean" then
    error("feed:token: read_only must be a boolean", 2)
  end
  local e = opts.expires_in
  if e ~= nil and (type(e) ~= "number" or e ~= e or e <= 0 or e == math.huge) then
    error("feed:token: expires_in must be a positive number of seconds", 2)
  end
  local client = self.client
  if client.auth_mode ~= "server" then
    error("feed:token needs the API secret; this client holds a "
      .. client.auth_mode:gsub("_", " "), 2)
  end
  local err = feeds.problem(self.slug, self.user_id)
  if err then return nil, err end
  local pipe = client.pipeline
  local payload = request.object("resource", '"*"', "action", opts.read_only and '"read"' or '"*"',
    "feed_id", pipe:encode(self.slug .. self.user_id),
    "exp", e and string.format("%d", math.floor(pipe:epoch() + e)))
  local token = pipe:sign(payload, "feed:token")
  return token
end

feeds.Feed = Feed
return feeds
