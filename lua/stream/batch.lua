-- stream.batch: the calls that touch many feeds at once (stream-feeds-api.md
-- sections 4 and 11): one activity added to many feeds, follows and
-- unfollows in bulk, and changes to the `to` targets of a stored activity.
--
-- What it does: checks every feed named (a feed handle or a "slug:id"
-- string, through handles.target_id, so a feed is accepted or refused here
-- exactly as by feed:follow or an activity's `to`), encodes activities like
-- feed:add_activity, builds the body and describes one request. A bad id,
-- slug or list length is an `invalid` error and nothing is sent; a wrong
-- type raises at the caller of the public method.
--
-- Retry safety: follows, unfollows and target updates leave the same state
-- when repeated, so they may be sent again; add_to_many only when the
-- activity carries both foreign_id and time (Stream then replaces it in
-- every feed instead of adding a second copy).
--
-- What it deliberately does not do: no cap on the number of follows per
-- request (the service's limit is its own; the local server answers 400
-- above it), no check that a feed group exists or that a token's scope
-- covers the feeds (the server answers 400 code 6 and 403).

local errors = require "stream.errors"
local check = require "stream.check"
local rules = require "stream.rules"
local handles = require "stream.handles"
local activities = require "stream.activities"
local request = require "stream.request"

local batch = {}

-- Feeds per add_to_many, and targets per list of a target update.
batch.MAX_FEEDS = 100

local raise = check.raise

-- The feeds of a list as "slug:id" strings, or nil, err. `what` names the
-- list in messages ("feeds"); `level` is where a wrong type is reported,
-- counted (as error() counts) from the function that calls this one.
local function feed_ids(list, fname, what, info, level)
  if type(list) ~= "table" then
    raise(fname .. ": " .. what .. " must be a list of feed handles or \"slug:id\" strings, got "
      .. type(list), level + 1)
  end
  local out = {}
  for i = 1, #list do
    local id, err = handles.target_id(list[i], fname, info, level + 2, what .. "[" .. i .. "]")
    if not id then return nil, err end
    out[i] = id
  end
  return out
end

local function count_problem(n, what, info)
  if n == 0 or n > batch.MAX_FEEDS then
    return errors.invalid(string.format("%s must hold 1 to %d feeds, got %d",
      what, batch.MAX_FEEDS, n), what, info)
  end
end

---------------------------------------------------------------- add to many

-- client:add_to_many(activity, {feed, ...}). Like every public function
-- here it is called by a one-line delegation (client.lua, feeds.lua), so
-- the caller to blame for misuse is level 3 from it.
function batch.add_to_many(client, activity, list)
  local fname = "client:add_to_many"
  if type(activity) ~= "table" then
    raise(fname .. ": activity must be a table, got " .. type(activity), 3)
  end
  local info = { method = "POST", path = "feed/add_to_many/" }
  local ids, err = feed_ids(list, fname, "feeds", info, 3)
  if not ids then return nil, err end
  err = count_problem(#ids, "feeds", info)
  if err then return nil, err end
  local text
  text, err = activities.encode(client, activity, "activity", info)
  if not text then return nil, err end
  local pipe = client.pipeline
  return pipe:send({
    method = "POST", path = info.path,
    body = request.object("activity", text, "feeds", pipe:encode(ids)),
    idempotent = activities.replaceable(activity),
  })
end

---------------------------------------------------------------- follows in bulk

local FOLLOW_KEYS = { source = true, target = true }
local UNFOLLOW_KEYS = { source = true, target = true, keep_history = true }

-- One {source =, target = [, keep_history =]} item as JSON text, or nil,
-- err; raises (at the caller of the public method: `level` 5 from here)
-- for a non-table, an unknown key or a keep_history that is no boolean.
local function relation_json(pipe, item, i, keys, fname, info)
  local where = "follows[" .. i .. "]"
  if type(item) ~= "table" then
    raise(fname .. ": " .. where .. " must be a table {source =, target =}, got " .. type(item), 5)
  end
  for k in pairs(item) do
    if not keys[k] then raise(fname .. ": unknown key '" .. tostring(k) .. "' in " .. where, 5) end
  end
  local kh = item.keep_history
  if kh ~= nil and type(kh) ~= "boolean" then
    raise(fname .. ": " .. where .. ".keep_history must be a boolean", 5)
  end
  local source, err = handles.target_id(item.source, fname, info, 6, where .. ".source")
  if not source then return nil, err end
  local target
  target, err = handles.target_id(item.target, fname, info, 6, where .. ".target")
  if not target then return nil, err end
  -- keep_history only on the items that set it, as the official clients send it
  return request.object("source", pipe:encode(source), "target", pipe:encode(target),
    "keep_history", kh ~= nil and tostring(kh) or nil)
end

-- The bare JSON array of a follow list, or nil, err.
local function relations_body(pipe, list, keys, fname, info)
  if type(list) ~= "table" then
    raise(fname .. ": expected a list of {source =, target =} tables, got " .. type(list), 4)
  end
  if #list == 0 then
    return nil, errors.invalid("the list of follows must not be empty", "follows", info)
  end
  local parts = {}
  for i = 1, #list do
    local text, err = relation_json(pipe, list[i], i, keys, fname, info)
    if not text then return nil, err end
    parts[i] = text
  end
  return request.array(parts)
end

local FOLLOW_MANY_OPTS = { activity_copy_limit = true }

-- client:follow_many({{source =, target =}, ...} [, {activity_copy_limit = n}])
function batch.follow_many(client, list, opts)
  local fname = "client:follow_many"
  opts = check.opts(opts, FOLLOW_MANY_OPTS, fname, 3)
  local n = opts.activity_copy_limit
  if n ~= nil and (type(n) ~= "number" or n ~= math.floor(n) or n < 0 or n > 1000) then
    raise(fname .. ": activity_copy_limit must be an integer in [0, 1000]", 3)
  end
  local info = { method = "POST", path = "follow_many/" }
  local body, err = relations_body(client.pipeline, list, FOLLOW_KEYS, fname, info)
  if not body then return nil, err end
  -- the copy limit travels in the query, as every official client sends it
  return client.pipeline:send({
    method = "POST", path = info.path, body = body, idempotent = true,
    query = n and { activity_copy_limit = n } or nil,
  })
end

-- client:unfollow_many({{source =, target = [, keep_history = true]}, ...})
function batch.unfollow_many(client, list)
  local info = { method = "POST", path = "unfollow_many/" }
  local body, err = relations_body(client.pipeline, list, UNFOLLOW_KEYS, "client:unfollow_many", info)
  if not body then return nil, err end
  return client.pipeline:send({ method = "POST", path = info.path, body = body, idempotent = true })
end

---------------------------------------------------------------- targets

local TARGET_KEYS = { id = true, foreign_id = true, time = true,
  new_targets = true, added_targets = true, removed_targets = true }
local TARGET_LISTS = { "new_targets", "added_targets", "removed_targets" }

-- Raises (at the caller of the public method) unless the change names its
-- activity one way and says how its targets change one way.
local function check_target_change(change, fname)
  if type(change) ~= "table" then
    raise(fname .. ": expected {foreign_id =, time = | id =, new_targets = | added_targets =, "
      .. "removed_targets =}, got " .. type(change), 4)
  end
  for k in pairs(change) do
    if not TARGET_KEYS[k] then raise(fname .. ": unknown key '" .. tostring(k) .. "'", 4) end
  end
  if (change.id ~= nil) == (change.foreign_id ~= nil or change.time ~= nil) then
    raise(fname .. ": name the activity by id, or by foreign_id and time", 4)
  end
  if change.id == nil and (type(change.foreign_id) ~= "string" or change.time == nil) then
    raise(fname .. ": give both foreign_id (a string) and time", 4)
  end
  if change.id ~= nil and type(change.id) ~= "string" then
    raise(fname .. ": id must be a string, got " .. type(change.id), 4)
  end
  if change.new_targets == nil and change.added_targets == nil and change.removed_targets == nil then
    raise(fname .. ": give new_targets, or added_targets and/or removed_targets", 4)
  end
  if change.new_targets ~= nil and (change.added_targets ~= nil or change.removed_targets ~= nil) then
    raise(fname .. ": new_targets replaces every target; it cannot come with added_targets "
      .. "or removed_targets", 4)
  end
end

-- The JSON text of the id, or of the foreign_id and the time, that name
-- the activity (one of them nil); nil, nil, nil, err when bad.
local function activity_key(pipe, change, info)
  if change.id ~= nil then
    local err = rules.activity_id(change.id, "id", info)
    if err then return nil, nil, nil, err end
    return pipe:encode(change.id)
  end
  if change.foreign_id == "" then
    return nil, nil, nil, errors.invalid("foreign_id must not be empty", "foreign_id", info)
  end
  local fid = pipe:encode(change.foreign_id)
  if not fid then
    return nil, nil, nil, errors.invalid("foreign_id is not valid UTF-8", "foreign_id", info)
  end
  local t, err = activities.time_value(change.time, "time", info)
  if not t then return nil, nil, nil, err end
  return nil, fid, pipe:encode(t)
end

-- Each given non-empty list as JSON text (list name -> text); nil, err for
-- a bad feed, a list over the limit or a feed both added and removed.
local function target_members(pipe, change, fname, info)
  local members, sets, any = {}, {}, false
  for _, key in ipairs(TARGET_LISTS) do
    local list = change[key]
    if list ~= nil then
      local ids, err = feed_ids(list, fname, key, info, 4)
      if not ids then return nil, err end
      if #ids > batch.MAX_FEEDS then
        return nil, errors.invalid(string.format("%s must hold at most %d feeds, got %d",
          key, batch.MAX_FEEDS, #ids), key, info)
      end
      sets[key] = {}
      for _, q in ipairs(ids) do sets[key][q] = true end
      -- Stream reads an empty list as no list at all: it is left out
      if #ids > 0 then
        members[key] = pipe:encode(ids)
        any = true
      end
    end
  end
  if not any then
    return nil, errors.invalid("the change names no target feed", TARGET_LISTS[1], info)
  end
  for q in pairs(sets.added_targets or {}) do
    if sets.removed_targets and sets.removed_targets[q] then
      return nil, errors.invalid(string.format("%q is in both added_targets and removed_targets", q),
        "removed_targets", info)
    end
  end
  return members
end

-- feed:update_activity_to_targets(change) -> {activity =, added =, removed =}
function batch.update_to_targets(feed, change)
  local fname = "feed:update_activity_to_targets"
  check_target_change(change, fname)
  local path = "feed_targets/" .. feed.slug .. "/" .. feed.user_id .. "/activity_to_targets/"
  local info = { method = "POST", path = path }
  local err = handles.feed_problem(feed.slug, feed.user_id, info)
  if err then return nil, err end
  local pipe = feed.client.pipeline
  local id, fid, t
  id, fid, t, err = activity_key(pipe, change, info)
  if err then return nil, err end
  local m
  m, err = target_members(pipe, change, fname, info)
  if not m then return nil, err end
  -- the same targets set again change nothing: safe to repeat
  return pipe:send({
    method = "POST", path = path, idempotent = true,
    body = request.object("id", id, "foreign_id", fid, "time", t, "new_targets", m.new_targets,
      "added_targets", m.added_targets, "removed_targets", m.removed_targets),
  })
end

return batch
