-- stream.activities: what feeds, activities by id and (later) activity
-- updates share: turning a caller's activity table into the JSON Stream
-- stores, and turning read options into the wire's query.
--
-- What it does:
--   * References: a handle that names something Stream can enrich (a user
--     handle, a feed handle, a collection entry) may stand anywhere inside an
--     activity; it is sent as its reference string ("SU:alice", "user:alice").
--     Only the tables on the way to a handle are copied: an activity without
--     handles is encoded as it is, and the caller's table is never changed.
--   * `time` given as a number of epoch seconds is sent as UTC ISO 8601 with
--     microseconds and no offset ("2026-11-28T10:00:00.123456"), the form
--     Stream returns.
--   * A user-token client fills a missing `actor` with its own reference.
--   * The 10 kB activity limit is checked on the encoded text, before sending.
--   * Read options (paging, enrichment, reaction flags) become the query of
--     `feed/...`, `enrich/feed/...` and `activities/` reads.
--
-- What it deliberately does not do: no check of required fields or reserved
-- names (Stream answers those with field-by-field 400s, and its rules move);
-- no time zone guessing (a string `time` is sent as it is).

local errors = require "stream.errors"
local check = require "stream.check"
local rules = require "stream.rules"
local handles = require "stream.handles"
local request = require "stream.request"

local activities = {}

activities.MAX_BYTES = rules.OBJECT_BYTES
local MAX_DEPTH = 1000

-- metatable -> function(handle) -> reference string, or nil, err: the
-- handle types of handles.lua (user, feed, collection entry).
local ref_of = handles.refs

-- Lets a module declare a handle type whose values are sent as references.
activities.register_ref = handles.register_ref

-- Returns v with every handle replaced by its reference; tables without a
-- handle below them come back as they are (same table). A cycle or a table
-- nested too deep is left alone for the encoder to name.
local function replace(v, depth, onpath)
  if type(v) ~= "table" then return v end
  local mt = getmetatable(v)
  local fn = mt and ref_of[mt]
  if fn then
    local ref, err = fn(v)
    if not ref then error(err, 0) end
    return ref
  end
  if onpath[v] or depth > MAX_DEPTH then return v end
  onpath[v] = true
  local copy
  for k, x in pairs(v) do
    local y = replace(x, depth + 1, onpath)
    if y ~= x then
      if not copy then
        copy = {}
        for k2, x2 in pairs(v) do copy[k2] = x2 end
        setmetatable(copy, mt)
      end
      copy[k] = y
    end
  end
  onpath[v] = nil
  return copy or v
end

-- "2026-11-28T10:00:00.123456" for epoch seconds (UTC, microseconds).
local MAX_EPOCH = 253402300799 -- 9999-12-31T23:59:59
function activities.iso_time(t)
  if type(t) ~= "number" or t ~= t or t < 0 or t > MAX_EPOCH then
    return nil
  end
  local sec = math.floor(t)
  local us = math.floor((t - sec) * 1e6 + 0.5)
  if us >= 1000000 then sec, us = sec + 1, us - 1000000 end
  return os.date("!%Y-%m-%dT%H:%M:%S", sec) .. string.format(".%06d", us)
end

-- A `time` value as the wire wants it: strings as they are, epoch numbers
-- formatted; nil, err for anything else.
function activities.time_value(t, field, info)
  if type(t) == "string" then return t end
  local s = activities.iso_time(t)
  if s then return s end
  return nil, errors.invalid(string.format(
    "%s must be an ISO 8601 string or epoch seconds between 0 and year 9999, got %s",
    field, type(t) == "number" and tostring(t) or type(t)), field, info)
end

-- The activity as JSON text, or nil, err ("invalid"). `field` names it in
-- messages ("activity", "activities[3]").
function activities.encode(client, activity, field, info)
  local ok, v = pcall(replace, activity, 1, {})
  if not ok then
    if errors.is_error(v) then
      v.detail = field .. ": " .. v.detail
      return nil, v
    end
    error(v, 0)
  end
  local fill_actor = v.actor == nil and client.auth_mode == "user_token" and client.user_id
  local t = v.time
  if fill_actor or type(t) == "number" then
    if v == activity then
      v = setmetatable({}, getmetatable(activity))
      for k, x in pairs(activity) do v[k] = x end
    end
    if fill_actor then v.actor = "SU:" .. client.user_id end
    if t ~= nil then
      local err
      v.time, err = activities.time_value(t, field .. ".time", info)
      if not v.time then return nil, err end
    end
  end
  local text, msg = client.pipeline:encode(v, field)
  if not text then return nil, errors.invalid(msg, field, info) end
  if text:byte(1) ~= 123 then -- "{"
    return nil, errors.invalid(field .. " must be a table with string keys, not a list", field, info)
  end
  local err = rules.fits(text, field, field, info)
  if err then return nil, err end
  return text
end

-- Whether sending the activity twice stores it once: Stream replaces an
-- activity with the same foreign_id and time.
function activities.replaceable(activity)
  return type(activity.foreign_id) == "string" and activity.foreign_id ~= ""
      and activity.time ~= nil
end

---------------------------------------------------------------- read options

local function is_count(v, min, max)
  return type(v) == "number" and v == math.floor(v) and v >= min and v <= max
end

local function is_flag(v) return v == nil or type(v) == "boolean" end

local REACTION_FLAGS = {
  own = "withOwnReactions",
  recent = "withRecentReactions",
  counts = "withReactionCounts",
  own_children = "withOwnChildren",
}
local REACTION_KEYS = { own = true, recent = true, counts = true, own_children = true,
  kinds = true, recent_limit = true }

local function reaction_query(r, q, fname, level)
  if type(r) ~= "table" then
    error(fname .. ": option 'reactions' must be a table, got " .. type(r), level)
  end
  for k in pairs(r) do
    if not REACTION_KEYS[k] then
      error(fname .. ": unknown key '" .. tostring(k) .. "' in option 'reactions'", level)
    end
  end
  for k, wire in pairs(REACTION_FLAGS) do
    if not is_flag(r[k]) then
      error(fname .. ": reactions." .. k .. " must be a boolean", level)
    end
    if r[k] then q[wire] = true end
  end
  if r.recent_limit ~= nil then
    if not is_count(r.recent_limit, 1, 1000) then
      error(fname .. ": reactions.recent_limit must be an integer in [1, 1000]", level)
    end
    q.recentReactionsLimit = r.recent_limit
  end
  if r.kinds ~= nil then
    if type(r.kinds) ~= "table" or #r.kinds == 0 then
      error(fname .. ": reactions.kinds must be a non-empty list of strings", level)
    end
    for i = 1, #r.kinds do
      if type(r.kinds[i]) ~= "string" then
        error(fname .. ": reactions.kinds[" .. i .. "] must be a string", level)
      end
    end
    q.reactionKindsFilter = table.concat(r.kinds, ",")
  end
end

local function mark_query(opts, q, fname, level)
  for _, key in ipairs({ "mark_read", "mark_seen" }) do
    local v = opts[key]
    if v == true then
      q[key] = true
    elseif type(v) == "table" then
      if #v == 0 then
        error(fname .. ": option '" .. key .. "' must be true or a non-empty list of group ids", level)
      end
      for i = 1, #v do
        if type(v[i]) ~= "string" or v[i] == "" or v[i]:find("[,%c]") then
          error(fname .. ": " .. key .. "[" .. i .. "] must be a group id string", level)
        end
      end
      q[key] = table.concat(v, ",")
    elseif v ~= nil and v ~= false then
      error(fname .. ": option '" .. key .. "' must be true or a list of group ids", level)
    end
  end
end

-- Read options -> query map, enriched?; nil, err for a run-time value out
-- of range (rules.lua); raises on misuse. `paging` allows limit/offset/
-- cursors (feed reads: the server's feed_limit range); activities by id
-- take none. `info` names the request in an error.
function activities.read_query(opts, fname, paging, level, info)
  level = (level or 1) + 1
  local q, enrich = {}, false
  if opts == nil then return q, enrich end
  if paging then
    local ok, err = rules.paging(opts, q, "feed_limit", fname, info, level)
    if not ok then return nil, err end
    mark_query(opts, q, fname, level + 1)
  end
  if not is_flag(opts.enrich) then
    error(fname .. ": option 'enrich' must be a boolean", level)
  end
  enrich = opts.enrich == true
  if opts.reactions ~= nil then
    reaction_query(opts.reactions, q, fname, level + 1)
    enrich = true
  end
  if opts.user_id ~= nil then
    local u, err = rules.user_option(opts.user_id, "user_id", fname, info, level)
    if not u then return nil, err end
    q.user_id = u
    enrich = true
  end
  return q, enrich
end

activities.READ_OPTS = { enrich = true, reactions = true, user_id = true }
activities.PAGING_OPTS = { limit = true, offset = true, id_lt = true, id_lte = true,
  id_gt = true, id_gte = true, enrich = true, reactions = true, user_id = true,
  mark_read = true, mark_seen = true }

-- A ReferenceNotFound object: what an enriched read puts where a deleted or
-- never-created user, activity, reaction or collection entry was referenced.
function activities.is_missing(v)
  return type(v) == "table" and v.error == "ReferenceNotFound"
end

---------------------------------------------------------------- activities by id

local BY_ID_KEYS = { ids = true, foreign_id_times = true }
local MAX_BY_ID = 100

-- The ids of get_activities into query.ids; an error, or nil. A wrong
-- type raises at the caller of the public method (two calls up).
local function ids_query(list, query, fname, info)
  for i = 1, #list do
    if type(list[i]) ~= "string" then
      error(fname .. ": ids[" .. i .. "] must be a string, got " .. type(list[i]), 4)
    end
    local err = rules.activity_id(list[i], "ids", info, "ids[" .. i .. "]")
    if err then return err end
  end
  query.ids = table.concat(list, ",")
end

-- The foreign_id_times of get_activities into query.foreign_ids and
-- query.timestamps; an error, or nil (raises as ids_query).
local function fid_times_query(list, query, fname, info)
  local fids, times = {}, {}
  for i = 1, #list do
    local e = list[i]
    if type(e) ~= "table" or type(e.foreign_id) ~= "string" or e.time == nil then
      error(fname .. ": foreign_id_times[" .. i .. "] must be {foreign_id = \"...\", time = ...}", 4)
    end
    local field = "foreign_id_times[" .. i .. "]"
    local bad = rules.foreign_id(e.foreign_id, field, info, field .. ".foreign_id")
    if bad then return bad end
    local t, err = activities.time_value(e.time, field .. ".time", info)
    if not t then return err end
    if t:find(",", 1, true) then
      return errors.invalid(field .. ".time must hold no ','", field, info)
    end
    fids[i], times[i] = e.foreign_id, t
  end
  query.foreign_ids = table.concat(fids, ",")
  query.timestamps = table.concat(times, ",")
end

-- client:get_activities({ids = {...}} | {foreign_id_times = {{foreign_id =, time =}, ...}} [, opts])
function activities.get_activities(client, which, opts)
  local fname = "client:get_activities"
  if type(which) ~= "table" then
    error(fname .. ": expected {ids = {...}} or {foreign_id_times = {...}}, got " .. type(which), 3)
  end
  for k in pairs(which) do
    if not BY_ID_KEYS[k] then error(fname .. ": unknown key '" .. tostring(k) .. "'", 3) end
  end
  if (which.ids == nil) == (which.foreign_id_times == nil) then
    error(fname .. ": give exactly one of ids or foreign_id_times", 3)
  end
  opts = check.opts(opts, activities.READ_OPTS, fname, 3)
  local query, enrich = activities.read_query(opts, fname, false, 3, { method = "GET", path = "activities/" })
  if not query then return nil, enrich end
  local path = (enrich and "enrich/" or "") .. "activities/"
  local info = { method = "GET", path = path }
  local list = which.ids or which.foreign_id_times
  if type(list) ~= "table" then
    error(fname .. ": " .. (which.ids and "ids" or "foreign_id_times") .. " must be a list", 3)
  end
  if #list == 0 or #list > MAX_BY_ID then
    return nil, errors.invalid(string.format("between 1 and %d activities may be asked for, got %d",
      MAX_BY_ID, #list), which.ids and "ids" or "foreign_id_times", info)
  end
  local err
  if which.ids then
    err = ids_query(list, query, fname, info)
  else
    err = fid_times_query(list, query, fname, info)
  end
  if err then return nil, err end
  return client.pipeline:send({ method = "GET", path = path, query = query, idempotent = true })
end

---------------------------------------------------------------- updates

local MAX_CHANGES = 100
local CHANGE_KEYS = { id = true, foreign_id = true, time = true, set = true, unset = true }

-- One change as JSON text, or nil, err. `field` names it ("changes[2]").
-- change_json runs four calls below the caller of the public method; the
-- helpers it calls one more.
local LEVEL = 5

-- Raises unless the change is a table of known keys that names its
-- activity one way.
local function check_change(change, fname, field)
  local level = LEVEL + 1
  if type(change) ~= "table" then
    error(fname .. ": " .. field .. " must be a table, got " .. type(change), level)
  end
  for k in pairs(change) do
    if not CHANGE_KEYS[k] then
      error(fname .. ": unknown key '" .. tostring(k) .. "' in " .. field, level)
    end
  end
  if (change.id ~= nil) == (change.foreign_id ~= nil or change.time ~= nil) then
    error(fname .. ": " .. field .. " must name the activity by id, or by foreign_id and time", level)
  end
  if change.id ~= nil and type(change.id) ~= "string" then
    error(fname .. ": " .. field .. ".id must be a string", level)
  end
  if change.id == nil and (type(change.foreign_id) ~= "string" or change.time == nil) then
    error(fname .. ": " .. field .. " needs both foreign_id (a string) and time", level)
  end
end

-- The JSON text of the id, or of the foreign_id and the time, that name
-- the changed activity (one of them nil); nil, nil, nil, err when bad.
local function change_key(pipe, change, field, info)
  if change.id ~= nil then
    local err = rules.activity_id(change.id, "id", info)
    if err then
      err.detail = field .. ": " .. err.detail
      return nil, nil, nil, err
    end
    return pipe:encode(change.id)
  end
  local fid = pipe:encode(change.foreign_id)
  if not fid then
    return nil, nil, nil, errors.invalid(field .. ".foreign_id is not valid UTF-8", "foreign_id", info)
  end
  local t, err = activities.time_value(change.time, field .. ".time", info)
  if not t then return nil, nil, nil, err end
  return nil, fid, pipe:encode(t)
end

-- `set` as a JSON object (handles as references, an epoch `time` as
-- text), or nil, err.
local function set_json(pipe, set, fname, field, info)
  if type(set) ~= "table" then
    error(fname .. ": " .. field .. ".set must be a table, got " .. type(set), LEVEL + 1)
  end
  local ok, v = pcall(replace, set, 1, {})
  if not ok then
    if errors.is_error(v) then
      v.detail = field .. ".set: " .. v.detail
      return nil, v
    end
    error(v, 0)
  end
  if type(v.time) == "number" then
    local copy = {}
    for k, x in pairs(v) do copy[k] = x end
    local err
    copy.time, err = activities.time_value(v.time, field .. ".set.time", info)
    if not copy.time then return nil, err end
    v = copy
  end
  local text, msg = pipe:encode(v, field .. ".set")
  if not text then return nil, errors.invalid(msg, "set", info) end
  if text == "[]" then return "{}" end
  if text:byte(1) ~= 123 then -- "{"
    return nil, errors.invalid(field .. ".set must map keys to values, not be a list", "set", info)
  end
  return text
end

-- `unset` as a list of JSON strings, or nil, err.
local function unset_json(pipe, u, fname, field, info)
  if type(u) ~= "table" then
    error(fname .. ": " .. field .. ".unset must be a list of strings, got " .. type(u), LEVEL + 1)
  end
  for i = 1, #u do
    if type(u[i]) ~= "string" then
      error(fname .. ": " .. field .. ".unset[" .. i .. "] must be a string", LEVEL + 1)
    end
  end
  local quoted = {}
  for i = 1, #u do
    local q = pipe:encode(u[i])
    if not q then
      return nil, errors.invalid(field .. ".unset[" .. i .. "] is not valid UTF-8", "unset", info)
    end
    quoted[i] = q
  end
  return quoted
end

local function change_json(pipe, change, fname, field, info)
  check_change(change, fname, field)
  local id, fid, t, err = change_key(pipe, change, field, info)
  if err then return nil, err end
  if change.set == nil and change.unset == nil then
    error(fname .. ": " .. field .. " changes nothing (give set and/or unset)", LEVEL)
  end
  local set, unset
  if change.set ~= nil then
    set, err = set_json(pipe, change.set, fname, field, info)
    if not set then return nil, err end
  end
  if change.unset ~= nil then
    unset, err = unset_json(pipe, change.unset, fname, field, info)
    if not unset then return nil, err end
  end
  return request.object("id", id, "foreign_id", fid, "time", t, "set", set, "unset", unset)
end

local function changes_request(client, list, fname)
  local info = { method = "POST", path = "activity/" }
  if #list == 0 or #list > MAX_CHANGES then
    return nil, errors.invalid(string.format("between 1 and %d changes may be sent at once, got %d",
      MAX_CHANGES, #list), "changes", info)
  end
  local pipe = client.pipeline
  local parts = {}
  for i = 1, #list do
    local text, err = change_json(pipe, list[i], fname,
      #list == 1 and fname:find("activity_partial") and "change" or ("changes[" .. i .. "]"), info)
    if not text then return nil, err end
    parts[i] = text
  end
  -- setting the same fields again changes nothing: safe to repeat
  return pipe:send({ method = "POST", path = "activity/", idempotent = true,
    body = request.object("changes", parts) })
end

-- client:activity_partial_update({id = | foreign_id =, time =, set =, unset =})
-- -> the updated activity (with duration)
function activities.partial_update(client, change)
  local res, err = changes_request(client, { change }, "client:activity_partial_update")
  if not res then return nil, err end
  local a = type(res.activities) == "table" and res.activities[1]
  if type(a) ~= "table" then
    return nil, errors.new("decode", "the answer holds no updated activity", {
      method = "POST", path = "activity/" })
  end
  a.duration = res.duration
  return a
end

-- client:activities_partial_update(changes) -> {activities = {...}, duration =}
function activities.partial_updates(client, changes)
  if type(changes) ~= "table" then
    error("client:activities_partial_update: changes must be a list of tables, got "
      .. type(changes), 3)
  end
  local res, err = changes_request(client, changes, "client:activities_partial_update")
  return res, err
end

-- client:update_activities(list): full replacement by foreign_id + time.
function activities.update_all(client, list)
  local fname = "client:update_activities"
  if type(list) ~= "table" then
    error(fname .. ": expected a list of activity tables, got " .. type(list), 3)
  end
  local info = { method = "POST", path = "activities/" }
  if #list == 0 or #list > MAX_CHANGES then
    return nil, errors.invalid(string.format("between 1 and %d activities may be updated at once, got %d",
      MAX_CHANGES, #list), "activities", info)
  end
  local parts = {}
  for i = 1, #list do
    local a = list[i]
    if type(a) ~= "table" then
      error(fname .. ": item " .. i .. " must be a table, got " .. type(a), 3)
    end
    if not activities.replaceable(a) then
      return nil, errors.invalid(string.format(
        "activities[%d] needs foreign_id and time: they name the activity it replaces", i),
        "activities", info)
    end
    local text, err = activities.encode(client, a, "activities[" .. i .. "]", info)
    if not text then return nil, err end
    parts[i] = text
  end
  return client.pipeline:send({ method = "POST", path = "activities/", idempotent = true,
    body = request.object("activities", parts) })
end

return activities
