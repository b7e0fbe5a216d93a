-- stream_local.updates: activity updates (stream-feeds-api.md section 10).
--
-- What it does:
--   * partial(ctx), `POST activity/` {"changes":[{"id"} or {"foreign_id","time"}, "set",
--     "unset"]}: each change names one stored activity; `set` keys are dotted paths whose
--     missing objects are created, `unset` lists dotted paths to remove (a path that is
--     not there is not an error). Set is applied before unset. Answers 201
--     {"activities":[...]} with each activity as it is after its change, in request order.
--     The single form the Go and Ruby clients send, one change as the whole body
--     ({"id","set","unset"} without "changes"), is answered with that activity itself.
--   * full(ctx), `POST activities/` {"activities":[...]}: each activity, with its
--     `foreign_id` and `time`, replaces the stored activity those two name; one that
--     does not exist is stored by its id in no feed (section 10, server choice).
--     Answers 201 {"duration"}.
--   * A token whose feed_id claim is not `*` changes only activities added to that feed
--     and to no other (403 code 17 for the whole request otherwise).
--   * One BEGIN IMMEDIATE transaction per request: everything or nothing is written.
--     Checks that need the stored activity (404, 403, the size limit) run inside it and
--     roll it back; checks of the body alone run before it.
--
-- Invariants: the stored body keeps the key order of section 3 (id, foreign_id, time,
-- actor, verb, target, object, to, then custom keys in their order; a newly set key goes
-- last); an activity's id, foreign_id, time and `to` (and so its sort key and where it
-- was delivered) never change here; the body is rewritten in the one activities row
-- every feed copy points at, so feeds, followers' copies, `to` targets, activities by id
-- and enriched reads all see the change.
--
-- What it deliberately does not do: no re-delivery (an update never adds the activity
-- to a feed or removes it from one; stream_local.targets changes `to`), no creation by
-- a partial update (an unknown activity is 404 there), no realtime notifications.

local json = require "stream_local.json"
local reply = require "stream_local.reply"
local request = require "stream_local.request"
local config = require "stream_local.config"
local ids = require "stream_local.ids"
local db = require "stream_local.db"
local feedstore = require "stream_local.feedstore"
local activity = require "stream_local.activity"
local auth = require "stream_local.auth"
local guards = require "stream_local.guards"

local type, ipairs, pairs, pcall, error = type, ipairs, pairs, pcall, error
local concat, format = table.concat, string.format

local M = {}

-- fields an update may never touch, and fields no activity may carry
local FIXED = { id = true, foreign_id = true, time = true, origin = true, to = true }
-- (id and origin, reserved on an add, are FIXED here: an update names its activity by them)
local RESERVED = {}
for k, why in pairs(guards.RESERVED) do
  if why == "reserved" then RESERVED[k] = true end
end
-- string fields of every activity, in output order after id, foreign_id and time
local STRINGS = { "actor", "verb", "target", "object" }
local CORE = { id = true, foreign_id = true, time = true, actor = true, verb = true, target = true,
  object = true, to = true, origin = true }

local invalid = reply.invalid

-- A check that fails inside the transaction raises a Rejection: the transaction is rolled
-- back and the request answered with it.
local Rejection = {}
Rejection.__index = Rejection

local function reject(status, detail, fields)
  error(setmetatable({ status = status, detail = detail, fields = fields }, Rejection), 0)
end

local function remove_key(obj, key)
  if obj.values[key] == nil then return end
  obj.values[key] = nil
  for i, k in ipairs(obj.keys) do
    if k == key then
      table.remove(obj.keys, i)
      return
    end
  end
end

-- split(path) -> list of segments | nil (an empty segment, or an empty path)
local function split(path)
  if path == "" then return nil end
  local segs = {}
  for seg in (path .. "."):gmatch("([^.]*)%.") do
    if seg == "" then return nil end
    segs[#segs + 1] = seg
  end
  return segs
end

-- check_path(path, verb, errors) -> segments | nil: whether `verb` ("set"/"unset") may
-- touch this path at all, before any stored activity is looked at
local function check_path(path, verb, where, errors)
  local segs = type(path) == "string" and split(path)
  if not segs then
    errors[#errors + 1] = { where .. verb, "each path must be a non-empty string of dot-separated names" }
    return nil
  end
  local root = segs[1]
  if FIXED[root] then
    errors[#errors + 1] = { path, where .. root .. " cannot be " .. (verb == "set" and "set" or "unset")
      .. " by an update" }
    return nil
  end
  if RESERVED[root] then
    errors[#errors + 1] = { path, where .. guards.reserved_message(root) }
    return nil
  end
  if CORE[root] and #segs > 1 then
    errors[#errors + 1] = { path, where .. root .. " is a string; it has no fields to " .. verb }
    return nil
  end
  if verb == "unset" and (root == "actor" or root == "verb" or root == "object") then
    errors[#errors + 1] = { path, where .. root .. " is required and cannot be unset" }
    return nil
  end
  return segs
end

-- compose(tree, id) -> head, body: the stored text of an activity tree in the order of
-- section 3 (origin left out, spliced in by reads at `head`), or nil, errors
local function compose(tree, id)
  local errors = {}
  local v = tree.values
  local text = {}
  for _, k in ipairs(STRINGS) do
    local x = v[k]
    -- a number actor or object is stored as its decimal string, as adds store it
    local numeric = k == "object" or k == "actor"
    if numeric and json.kind(x) == "number" then x = x.text end
    if k == "target" and (x == nil or x == json.null) then x = "" end
    if type(x) ~= "string" then
      errors[#errors + 1] = { k, numeric and (x ~= nil and x ~= json.null)
        and "must be a string (or a number, stored as its decimal string)"
        or (x == nil or x == json.null) and "this field is required" or "must be a string" }
    elseif x == "" and k ~= "target" then
      errors[#errors + 1] = { k, "must not be empty" }
    elseif k == "verb" and #x > 255 then
      errors[#errors + 1] = { k, "must be at most 255 bytes" }
    end
    text[k] = x
  end
  if errors[1] then return nil, errors end
  local core = activity.core_text({ foreign_id = v.foreign_id, time = v.time, actor = text.actor, verb = text.verb,
    target = text.target, object = text.object })
  local tail = activity.tail_text(v.to, tree, CORE)
  local head = '{"id":' .. json.quote(id) .. core
  local body = head .. tail .. "}"
  if #body > config.max_activity_bytes then
    return nil, { { "activity", format("the updated activity is %d bytes, the limit is %d bytes",
      #body, config.max_activity_bytes) } }
  end
  return #head, body
end

-- stored(target) -> the stored activity (feedstore.get) or a 404 rejection
local function stored(target)
  local a = feedstore.get(target.id)
  if not a or (target.foreign_id and a.foreign_id ~= target.foreign_id) then
    if target.foreign_id then
      reject(404, "no activity with foreign_id " .. json.quote(target.foreign_id) .. " and that time")
    end
    reject(404, "no activity with id " .. target.id)
  end
  return a
end

-- check_scope(principal, a): a token whose feed_id claim is not `*` changes only
-- activities whose origin feed (the feed they were added to) is that feed; the change
-- shows in every feed the activity was added to, so each of them must be that feed
local function check_scope(principal, a)
  if not principal.feed_scope then return end
  local homes = feedstore.homes(a.id)
  if not homes[1] then
    reject(403, "the token's feed_id claim covers one feed; activity " .. a.id .. " was added to none")
  end
  for _, f in ipairs(homes) do
    if not auth.covers_feed(principal, f) then
      reject(403, "the token's feed_id claim does not cover " .. f .. ", a feed activity " .. a.id .. " was added to")
    end
  end
end

-- check_owner(principal, actor, what): user tokens update their own activities only
local function check_owner(principal, actor, what)
  if principal.server then return end
  if actor ~= "SU:" .. principal.user_id then
    reject(403, "a user token may only update activities whose actor is SU:" .. principal.user_id
      .. " (" .. what .. ")")
  end
end

-- rewrite(a, tree): store the new body of activity a
local function rewrite(a, tree)
  local head, body = compose(tree, a.id)
  if not head then reject(400, "invalid input: the update would make the activity invalid", body) end
  -- without a foreign id an identical add finds it by its new content
  local digest = a.foreign_id == "" and activity.digest(body) or nil
  feedstore.rewrite(a.id, head, body, digest)
  return head, body
end

-- in_transaction(fn, ...): fn inside one transaction; a Rejection is answered, true on success
local function in_transaction(fn, ...)
  local ok, err = pcall(db.write, fn, ...)
  if ok then return true end
  if getmetatable(err) == Rejection then
    if err.status == 400 and err.fields then return invalid(err.fields) and false end
    reply.error(err.status, err.detail, err.fields)
    return false
  end
  error(err, 0)
end

local function list_of(body, name, errors)
  local list = body:get(name)
  if json.kind(list) ~= "array" then
    errors[#errors + 1] = { name, "must be a list" }
  elseif list.n == 0 then
    errors[#errors + 1] = { name, "must not be empty" }
  elseif list.n > config.max_activities then
    errors[#errors + 1] = { name, format("at most %d per request", config.max_activities) }
  else
    return list
  end
  return nil
end

-- partial update ---------------------------------------------------------------

local function parse_change(node, where, errors)
  local n0 = #errors
  if json.kind(node) ~= "object" then
    errors[#errors + 1] = { where:sub(1, -2), "must be a JSON object" }
    return nil
  end
  local target = activity.locate(node, where, errors)
  local sets, unsets = {}, {}
  local set = node:get("set")
  -- an empty list is an empty set: PHP encodes an empty associative array as []
  if json.kind(set) == "array" and set.n == 0 then set = nil end
  if set ~= nil and set ~= json.null then
    if json.kind(set) ~= "object" then
      errors[#errors + 1] = { where .. "set", "must be an object of paths and values" }
    else
      for _, path in ipairs(set.keys) do
        local segs = check_path(path, "set", where, errors)
        if segs then sets[#sets + 1] = { segs = segs, path = path, value = set.values[path] } end
      end
    end
  end
  local unset = node:get("unset")
  if unset ~= nil and unset ~= json.null then
    if json.kind(unset) ~= "array" then
      errors[#errors + 1] = { where .. "unset", "must be a list of paths" }
    else
      for i = 1, unset.n do
        local segs = check_path(unset[i], "unset", where, errors)
        if segs then unsets[#unsets + 1] = { segs = segs, path = unset[i] } end
      end
    end
  end
  if #errors > n0 then return nil end
  return { target = target, sets = sets, unsets = unsets }
end

local function apply_set(tree, s)
  local obj = tree
  for i = 1, #s.segs - 1 do
    local seg = s.segs[i]
    local child = obj.values[seg]
    if child == nil then
      child = json.object()
      obj:set(seg, child)
    elseif json.kind(child) ~= "object" then
      reject(400, "invalid input", { { s.path, "cannot set " .. s.path .. ": "
        .. concat(s.segs, ".", 1, i) .. " is not an object" } })
    end
    obj = child
  end
  obj:set(s.segs[#s.segs], s.value)
end

local function apply_unset(tree, u)
  local obj = tree
  for i = 1, #u.segs - 1 do
    obj = obj.values[u.segs[i]]
    if json.kind(obj) ~= "object" then return end
  end
  local leaf = u.segs[#u.segs]
  if obj == tree and leaf == "target" then
    obj:set("target", "")
  else
    remove_key(obj, leaf)
  end
end

local function partial_tx(principal, changes)
  local out = {}
  for i, c in ipairs(changes) do
    local a = stored(c.target)
    check_scope(principal, a)
    local tree = json.parse(a.body)
    check_owner(principal, tree.values.actor, "the stored actor")
    for _, s in ipairs(c.sets) do apply_set(tree, s) end
    for _, u in ipairs(c.unsets) do apply_unset(tree, u) end
    check_owner(principal, tree.values.actor, "the actor after the update")
    local head, body = rewrite(a, tree)
    out[i] = feedstore.activity_json(head, body, "null")
  end
  return out
end

function M.partial(ctx)
  local body, detail = request.json_object()
  if not body then return reply.error(400, detail) end
  local errors = {}
  local changes = {}
  -- the single form: the body is one change, answered with the activity itself
  local single = body:get("changes") == nil and (body:get("id") ~= nil or body:get("foreign_id") ~= nil)
  if single then
    changes[1] = parse_change(body, "", errors)
  else
    local list = list_of(body, "changes", errors)
    if list then
      for i = 1, list.n do
        changes[i] = parse_change(list[i], format("changes[%d].", i - 1), errors)
      end
    end
  end
  if errors[1] then return invalid(errors) end
  local out
  local ok = in_transaction(function() out = partial_tx(ctx.principal, changes) end)
  if not ok then return end
  if single then return reply.send(201, out[1]) end
  return reply.send(201, '{"activities":[' .. concat(out, ",") .. "]}")
end

-- full update ------------------------------------------------------------------

-- feed_ids(to) -> a `to` list with each "user:bob <token>" entry as its feed id
local function feed_ids(to)
  local out = json.array()
  for i = 1, to.n do out:push(activity.target_feed(to[i])) end
  return out
end

-- parse_full(node, where, errors) -> { target, tree, where, time_us }
local function parse_full(node, where, errors)
  local n0 = #errors
  if json.kind(node) ~= "object" then
    errors[#errors + 1] = { where:sub(1, -2), "must be a JSON object" }
    return nil
  end
  for _, k in ipairs(node.keys) do
    if RESERVED[k] then errors[#errors + 1] = { where .. k, guards.reserved_message(k) } end
  end
  local fid, time = node:get("foreign_id"), node:get("time")
  if type(fid) ~= "string" or fid == "" then
    errors[#errors + 1] = { where .. "foreign_id",
      "a full update needs the activity's foreign_id (a non-empty string)" }
  end
  local us = ids.parse_time(time)
  if not us then
    errors[#errors + 1] = { where .. "time", time == nil and "a full update needs the activity's time"
      or ids.TIME_RULE }
  end
  local to = node:get("to")
  if to ~= nil and to ~= json.null and json.kind(to) ~= "array" then
    errors[#errors + 1] = { where .. "to", "must be a list of feed ids" }
  end
  if #errors > n0 then return nil end
  if json.kind(to) == "array" then node.values.to = feed_ids(to) end
  local id = ids.activity_id(us, fid)
  local given = node:get("id")
  if given ~= nil and (type(given) ~= "string" or given:lower() ~= id) then
    errors[#errors + 1] = { where .. "id", "does not match the id that foreign_id and time give (" .. id .. ")" }
    return nil
  end
  node.values.time = ids.format_time(us)
  remove_key(node, "origin")
  remove_key(node, "id")
  -- the fields every activity needs, checked before any stored activity is looked at
  local head, problems = compose(node, id)
  if not head then
    for _, e in ipairs(problems) do errors[#errors + 1] = { where .. e[1], e[2] } end
    return nil
  end
  return { target = { id = id, foreign_id = fid }, tree = node, where = where, time_us = us }
end

-- create_alone(principal, f): a full update of an activity that does not exist stores
-- it by its id in no feed (section 10, server choice); a feed-scoped token covers no
-- such activity
local function create_alone(principal, f)
  if not auth.covers_feed(principal, "") then
    reject(403, "the token's feed_id claim covers one feed; activity " .. f.target.id .. " was added to none")
  end
  check_owner(principal, f.tree.values.actor, "the new actor")
  local head, body = compose(f.tree, f.target.id)
  local _, sk = ids.activity_id(f.time_us, f.target.foreign_id)
  feedstore.insert_alone({ id = f.target.id, sk = sk, foreign_id = f.target.foreign_id, time_us = f.time_us,
    head = head, body = body })
end

-- replace(principal, f): a full update of a stored activity
local function replace(principal, f)
  local a = stored(f.target)
  check_scope(principal, a)
  local old = json.parse(a.body)
  check_owner(principal, old.values.actor, "the stored actor")
  check_owner(principal, f.tree.values.actor, "the new actor")
  local to, old_to = f.tree.values.to, old.values.to
  if to == json.null then to = nil end
  local sent = to and json.encode(to)
  if sent and sent ~= (old_to and json.encode(old_to) or "[]") then
    reject(400, "invalid input", { { f.where .. "to", "to cannot be changed by an update" } })
  end
  f.tree.values.to = old_to
  -- the stored time stays to the microsecond (the id only carries milliseconds)
  f.tree.values.time = old.values.time
  rewrite(a, f.tree)
end

local function full_tx(principal, list)
  for _, f in ipairs(list) do
    if feedstore.get(f.target.id) then replace(principal, f) else create_alone(principal, f) end
  end
end

function M.full(ctx)
  local body, detail = request.json_object()
  if not body then return reply.error(400, detail) end
  local errors = {}
  local list = list_of(body, "activities", errors)
  local acts = {}
  if list then
    for i = 1, list.n do
      acts[#acts + 1] = parse_full(list[i], format("activities[%d].", i - 1), errors)
    end
  end
  if errors[1] then return invalid(errors) end
  if not in_transaction(full_tx, ctx.principal, acts) then return end
  return reply.send(201, "{}")
end

-- routes (assembled by stream_local.app) -----------------------------------------

M.ROUTES = {
  -- GET here is stream_local.feeds' activities by id
  { pattern = [[^/api/v1\.0/activities/$]],
    resource = "activities", feed_id = guards.named_feeds, methods = { POST = M.full } },
  { pattern = [[^/api/v1\.0/activity/$]],
    resource = "activities", feed_id = guards.named_feeds, methods = { POST = M.partial } },
}

return M
