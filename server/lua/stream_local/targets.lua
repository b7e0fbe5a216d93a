-- stream_local.targets: updates of an activity's `to` targets (stream-feeds-api.md
-- section 11), `POST feed_targets/{slug}/{id}/activity_to_targets/`.
--
-- What it does:
--   * update(ctx): the body is one change or a JSON array of them (at most 100). Each
--     change names an activity added to the path's feed (by `id`, or by `foreign_id` and
--     `time`) and gives `new_targets` (replaces `to`) or `added_targets` and/or
--     `removed_targets`; an empty list counts as absent, and a "user:bob <token>" entry
--     is its feed id. The stored `to` becomes the new list (no `to` key once it is
--     empty), and the deliveries become exactly what an add with the new `to` would have
--     made (stream_local.feedstore.retarget). Answers 201
--     {"activity":{...},"added":[...],"removed":[...]} for the first change.
--   * Every change of a request runs in one BEGIN IMMEDIATE transaction: all are applied
--     (later items synchronously too) or none, and the answer names the first failure.
--
-- Server choices (section 11): an activity that is not one added to the path's feed is
-- 404 code 16; no list, new_targets with another list, a feed both added and removed,
-- more than 100 targets after the change: 400 code 4 naming the field; removing a feed
-- that is not a target is ignored; a user token only for its own feeds, adding only
-- targets an add of it could name (section 2).
--
-- What it deliberately does not do: no change of any other field (stream_local.updates),
-- no transitive fan-out (followers of followers get nothing, as with adds).

local json = require "stream_local.json"
local reply = require "stream_local.reply"
local request = require "stream_local.request"
local config = require "stream_local.config"
local db = require "stream_local.db"
local feedstore = require "stream_local.feedstore"
local activity = require "stream_local.activity"
local feeds = require "stream_local.feeds"
local guards = require "stream_local.guards"

local ipairs, pcall, error, setmetatable, getmetatable = ipairs, pcall, error, setmetatable, getmetatable
local concat, format = table.concat, string.format

local M = {}

local MAX_ITEMS = 100

-- A check that fails inside the transaction raises a Rejection: the transaction rolls
-- back and the request is answered with it.
local Rejection = {}

local function reject(status, detail, fields)
  error(setmetatable({ status = status, detail = detail, fields = fields }, Rejection), 0)
end

-- reading a change -------------------------------------------------------------------

-- target_list(node, name, where, errors, unconfigured) -> feed ids (no repeats) | nil
-- when absent or empty
local function target_list(node, name, where, errors, unconfigured)
  local v = node:get(name)
  if v == nil or v == json.null then return nil end
  if json.kind(v) ~= "array" then
    errors[#errors + 1] = { where .. name, "must be a list of feed ids" }
    return nil
  end
  if v.n > config.max_to then
    errors[#errors + 1] = { where .. name, format("at most %d feed ids", config.max_to) }
    return nil
  end
  local list, seen = {}, {}
  for i = 1, v.n do
    local f = activity.target_feed(v[i])
    local slug, why, bad_slug = config.feed_parts(f)
    if bad_slug then
      unconfigured[#unconfigured + 1] = bad_slug
    elseif not slug then
      errors[#errors + 1] = { where .. name, why }
    elseif not seen[f] then
      seen[f] = true
      list[#list + 1] = f
    end
  end
  return list[1] and list or nil
end

local function check_lists(c, where, errors)
  if not (c.new or c.added or c.removed) then
    errors[#errors + 1] = { where .. "new_targets",
      "give new_targets, or added_targets and/or removed_targets (a non-empty list of feed ids)" }
  elseif c.new and (c.added or c.removed) then
    errors[#errors + 1] = { where .. "new_targets", "cannot be given with added_targets or removed_targets" }
  elseif c.added and c.removed then
    local adding = {}
    for _, f in ipairs(c.added) do adding[f] = true end
    for _, f in ipairs(c.removed) do
      if adding[f] then
        errors[#errors + 1] = { where .. "removed_targets", f .. " is in added_targets too" }
      end
    end
  end
end

-- parse_change(node, where, errors, unconfigured) -> { target, new, added, removed }
local function parse_change(node, where, errors, unconfigured)
  if json.kind(node) ~= "object" then
    errors[#errors + 1] = { where == "" and "body" or where:sub(1, -2), "must be a JSON object" }
    return nil
  end
  local n0 = #errors
  local c = {
    target = activity.locate(node, where, errors),
    new = target_list(node, "new_targets", where, errors, unconfigured),
    added = target_list(node, "added_targets", where, errors, unconfigured),
    removed = target_list(node, "removed_targets", where, errors, unconfigured),
    where = where,
  }
  if #errors == n0 then check_lists(c, where, errors) end
  return c
end

-- changes() -> list of changes | nil after answering 400
local function changes()
  local tree, detail = request.json_body()
  if tree == nil then
    reply.error(400, detail)
    return nil
  end
  local errors, unconfigured, list = {}, {}, {}
  if json.kind(tree) == "array" then
    if tree.n == 0 or tree.n > MAX_ITEMS then
      errors[1] = { "body", format("a batch is a list of 1 to %d changes", MAX_ITEMS) }
    end
    for i = 1, not errors[1] and tree.n or 0 do
      list[i] = parse_change(tree[i], format("[%d].", i - 1), errors, unconfigured)
    end
  else
    list[1] = parse_change(tree, "", errors, unconfigured)
  end
  if unconfigured[1] then return nil, guards.not_configured(unconfigured[1]) end
  if errors[1] then return nil, reply.invalid(errors) end
  return list
end

-- applying a change --------------------------------------------------------------------

-- old_targets(body, held) -> the targets of the add being updated (held: the feeds that
-- add made targets, as feedstore.home_targets lists them), in the order of the stored
-- `to` where it names them (another add of the same activity may have stored its own)
local function old_targets(body, held)
  local list, left = {}, {}
  for _, f in ipairs(held) do left[f] = true end
  local to = json.parse(body).values.to
  for i = 1, json.kind(to) == "array" and to.n or 0 do
    if left[to[i]] then
      left[to[i]] = nil
      list[#list + 1] = to[i]
    end
  end
  for _, f in ipairs(held) do
    if left[f] then list[#list + 1] = f end
  end
  return list
end

local function set_of(list)
  local set = {}
  for _, f in ipairs(list or {}) do set[f] = true end
  return set
end

-- retargeted(old, c) -> new `to`, added, removed (section 11: after new_targets, the new
-- ones not there before and the old ones not kept)
local function retargeted(old, c)
  local was = set_of(old)
  local new, added, removed = {}, {}, {}
  -- with new_targets an old target stays when listed, otherwise when not removed
  local listed = set_of(c.new or c.removed)
  for _, f in ipairs(old) do
    local kept = (c.new and listed[f]) or (not c.new and not listed[f])
    if kept then new[#new + 1] = f else removed[#removed + 1] = f end
  end
  for _, f in ipairs(c.new or c.added or {}) do
    if not was[f] then
      new[#new + 1] = f
      added[#added + 1] = f
    end
  end
  return new, added, removed
end

local function quoted_list(list)
  local out = {}
  for i, f in ipairs(list) do out[i] = json.quote(f) end
  return "[" .. concat(out, ",") .. "]"
end

-- apply(principal, feed_id, c) -> the answer's text
local function apply(principal, feed_id, c)
  local a = feedstore.get(c.target.id)
  -- every feed the activity was added to is a home of its own, with its own targets
  local held = a and (not c.target.foreign_id or a.foreign_id == c.target.foreign_id)
    and feedstore.home_targets(a.id, feed_id)
  if not held then
    reject(404, c.target.foreign_id and ("no activity with foreign_id " .. json.quote(c.target.foreign_id)
      .. " and that time in the feed " .. feed_id) or ("no activity " .. c.target.id .. " in the feed " .. feed_id))
  end
  local new, added, removed = retargeted(old_targets(a.body, held), c)
  local field = c.where .. (c.new and "new_targets" or "added_targets")
  if #new > config.max_to then
    reject(400, "invalid input", { { field, format("at most %d targets after the change", config.max_to) } })
  end
  local ok, why = feeds.may_send(principal, added)
  if not ok then reject(403, why) end
  a.body = activity.with_to(a.head, a.body, new)
  if #a.body > config.max_activity_bytes then
    reject(400, "invalid input", { { field, format("the activity would be %d bytes, the limit is %d bytes",
      #a.body, config.max_activity_bytes) } })
  end
  feedstore.retarget(feed_id, a, added, removed)
  return '{"activity":' .. feedstore.activity_json(a.head, a.body, "null") .. ',"added":' .. quoted_list(added)
    .. ',"removed":' .. quoted_list(removed) .. "}"
end

local function apply_all(principal, feed_id, list)
  local first
  for i, c in ipairs(list) do
    local text = apply(principal, feed_id, c)
    if i == 1 then first = text end
  end
  return first
end

function M.update(ctx)
  local uid, feed_id = ctx.uid, ctx.feed_id
  local list = changes()
  if not list then return end
  if not ctx.principal.server and ctx.principal.user_id ~= uid then
    return reply.error(403, "user " .. ctx.principal.user_id .. " may not change the targets of activities of "
      .. feed_id)
  end
  local ok, res = pcall(db.write, apply_all, ctx.principal, feed_id, list)
  if ok then return reply.send(201, res) end
  if getmetatable(res) ~= Rejection then error(res, 0) end
  if res.status == 400 and res.fields then return reply.invalid(res.fields) end
  return reply.error(res.status, res.detail, res.fields)
end

-- routes (assembled by stream_local.app) -----------------------------------------

M.ROUTES = {
  { pattern = [[^/api/v1\.0/feed_targets/(?<slug>[^/]+)/(?<user>[^/]+)/activity_to_targets/$]],
    resource = "feed_targets", feed_id = guards.path_feed, guards = { guards.feed_path },
    methods = { POST = M.update } },
}

return M
