-- stream_local.groups: reads of aggregated and notification feeds (stream-feeds-api.md
-- section 9).
--
-- What it does: check(args, errors) checks the form of the cursors; read(ctx, feed)
-- answers GET [enrich/]feed/{slug}/{id}/ for a feed whose group is aggregated or
-- notification (stream_local.feeds checked the path, limit, offset, cursor form and the
-- token's right to read). It takes every activity of the feed (feed_items, the
-- same rows a flat feed reads) and groups them at read time by the key the group's
-- aggregation format gives each activity (stream_local.aggformat; default
-- `<verb>_<YYYY-MM-DD>` of the activity's time, STREAM_LOCAL_AGGREGATION_FORMATS per
-- group): so updates, removals and unfollows show in groups at once. A format that does
-- not parse makes the read 400 code 14 JinjaRuntimeException. Each
-- group: id (the newest activity's id; `<that id>.<group>` in notification feeds), verb,
-- group, activity_count, actor_count (distinct actors), created_at / updated_at (when
-- its first and last activity arrived in this feed), its 15 newest activities (each as
-- a flat read shows it, enriched on enrich/ reads with the same reaction keys), and in
-- notification feeds is_read / is_seen. Groups come newest updated_at first and page by
-- limit, offset and the four cursors with group ids; `next` like flat reads.
-- Notification feeds: mark_read / mark_seen (true, True, 1: every group; else a comma
-- list of group ids) mark after the answer is taken, in the same transaction, so the
-- answer shows the marks as they were; unread / unseen count the groups.
--
-- Marks are arrival times: a group is read while its mark (or the feed-wide one) is at
-- least the arrival time of its newest arrival, so an activity arriving later makes it
-- unread and unseen again with nothing written at delivery.
--
-- What it deliberately does not do: no ranking, no realtime; it reads the whole feed to
-- group it (cost grows with the feed, not the page).

local json = require "stream_local.json"
local reply = require "stream_local.reply"
local request = require "stream_local.request"
local rules = require "stream_local.rules"
local config = require "stream_local.config"
local ids = require "stream_local.ids"
local db = require "stream_local.db"
local feedstore = require "stream_local.feedstore"
local enrich = require "stream_local.enrich"
local aggformat = require "stream_local.aggformat"

-- luacheck: globals ngx
local ngx = ngx
local ipairs, tostring, concat, sort = ipairs, tostring, table.concat, table.sort
local quote = json.quote

local M = {}

-- string_value(body, key) -> the top-level string value of `key` in a stored body. The
-- stored layout puts id, foreign_id, time, actor and verb first, all strings, and a
-- JSON string never holds a bare `"`, so the first `"key":"` is that key.
local function string_value(body, key)
  local _, e = body:find('"' .. key .. '":"', 1, true)
  if not e then return nil end
  local i, escaped = e + 1, false
  while true do
    local j = body:find('["\\]', i)
    if not j then return nil end
    if body:byte(j) == 34 then
      i = j
      break
    end
    escaped = true
    i = j + 2
  end
  local raw = body:sub(e + 1, i - 1)
  if escaped then return json.parse('"' .. raw .. '"') end
  return raw
end

-- the top-level keys every stored activity has as strings, first in its body, which
-- string_value can read without parsing the rest
local HEAD_STRINGS = { id = true, foreign_id = true, actor = true, verb = true, target = true, object = true }

-- group_key(template, feed, r) -> the group of a feed row (feedstore.items) under the
-- feed's format; the body is parsed only when the format names a custom key
local function group_key(template, feed, r)
  local body, tree = r[6], nil
  local env = { time_us = r[7], feed = { group = feed.slug, user_id = feed.uid } }
  env.lookup = function(name)
    if HEAD_STRINGS[name] then return string_value(body, name) end
    tree = tree or json.parse(body)
    return tree.values[name]
  end
  return aggformat.render(template, env)
end

-- build(rows, notification, key_of) -> groups, newest updated first. rows:
-- feedstore.items; key_of(row) -> its group key
local function build(rows, notification, key_of)
  local by_key, list = {}, {}
  for _, r in ipairs(rows) do
    local body = r[6]
    local verb = string_value(body, "verb") or ""
    local key = key_of(r)
    local g = by_key[key]
    if not g then
      g = { key = key, verb = verb, members = {}, actors = {}, actor_count = 0, created = r[3], updated = r[3] }
      by_key[key] = g
      list[#list + 1] = g
    end
    g.members[#g.members + 1] = r
    local actor = string_value(body, "actor") or ""
    if not g.actors[actor] then
      g.actors[actor] = true
      g.actor_count = g.actor_count + 1
    end
    if r[3] < g.created then g.created = r[3] end
    if r[3] > g.updated then g.updated = r[3] end
  end
  for _, g in ipairs(list) do
    g.newest = g.members[1]
    g.id = notification and (g.newest[1] .. "." .. g.key) or g.newest[1]
  end
  sort(list, function(a, b)
    if a.updated ~= b.updated then return a.updated > b.updated end
    if a.newest[2] ~= b.newest[2] then return a.newest[2] > b.newest[2] end
    return a.key > b.key
  end)
  return list
end

-- the group a cursor names: its current id, else (an id taken before the group got a
-- newer activity) the group of that key in notification feeds, or the group holding
-- that activity -> index | false
local function position(list, gid)
  for i, g in ipairs(list) do
    if g.id == gid then return i end
  end
  local act, key = gid:match("^([^.]*)%.(.+)$")
  act = (act or gid):lower()
  for i, g in ipairs(list) do
    if key and g.key == key then return i end
  end
  for i, g in ipairs(list) do
    if not key or g.key == key then
      for _, m in ipairs(g.members) do
        if m[1] == act then return i end
      end
    end
  end
  return false
end

-- each cursor keeps the groups on one side of the group it names, in the read order:
-- id_lt / id_lte the ones after it (older), id_gt / id_gte the ones before it (newer)
local CURSORS = { { "id_lt", "after", 1 }, { "id_lte", "after", 0 }, { "id_gt", "before", 1 },
  { "id_gte", "before", 0 } }

-- the cursors' form as query rules: `<uuid>` or `<uuid>.<group>`
local function group_cursor(v)
  return ids.sort_key(v:match("^([^.]*)")) and v or nil
end
local CURSOR_RULES = {}
for i, c in ipairs(CURSORS) do
  CURSOR_RULES[i] = { name = c[1], parse = group_cursor, message = "must be a group id" }
end

-- check(args, errors): the cursors' form, before anything is read (a value that is not
-- `<uuid>` or `<uuid>.<group>` is 400 naming the parameter)
function M.check(args, errors)
  rules.query(args, CURSOR_RULES, errors)
end

-- window(list, args, errors) -> first, last index the cursors allow
local function window(list, args, errors)
  local lo, hi = 1, #list
  for _, c in ipairs(CURSORS) do
    local v = request.arg(args, c[1])
    if v and v ~= "" then
      local p = position(list, v)
      if not p then
        errors[#errors + 1] = { c[1], "no group of this feed has the id " .. v }
      elseif c[2] == "after" then
        lo = math.max(lo, p + c[3])
      else
        hi = math.min(hi, p - c[3])
      end
    end
  end
  return lo, hi
end

-- marks_wanted(args, name, list) -> list of { group key, us } to mark | nil
local function marks_wanted(args, name, list)
  local v = request.joined(args, name)
  if not v then return nil end
  local out = {}
  if v == "true" or v == "True" or v == "1" then
    local newest = 0
    for _, g in ipairs(list) do
      if g.updated > newest then newest = g.updated end
    end
    if list[1] then out[1] = { "", newest } end
    return out
  end
  local by_id = {}
  for _, g in ipairs(list) do by_id[g.id] = g end
  for gid in v:gmatch("[^,]+") do
    local g = by_id[gid]
    if g then out[#out + 1] = { g.key, g.updated } end
  end
  return out
end

-- marked(marks, key, flag, updated): a group is marked while its own mark or the
-- feed-wide one covers its latest arrival; never marked means no mark at all
local function marked(marks, key, flag, updated)
  local m
  for _, row in ipairs({ marks[""] or false, marks[key] or false }) do
    local us = row and row[flag]
    if us and (not m or us > m) then m = us end
  end
  return m ~= nil and m >= updated
end

-- take(feed, notification, args, errors) -> { list = groups, lo, hi } (one
-- snapshot; with mark_read / mark_seen in a notification feed, one write transaction)
local function take(feed, notification, args, errors)
  local feed_id = feed.id
  local function run()
    local list = build(feedstore.items(feed_id), notification,
      function(r) return group_key(feed.template, feed, r) end)
    local lo, hi = window(list, args, errors)
    local page = { list = list, lo = lo, hi = hi }
    if errors[1] or not notification then return page end
    local marks = feedstore.marks(feed_id)
    for _, g in ipairs(list) do
      g.is_read = marked(marks, g.key, "read", g.updated)
      g.is_seen = marked(marks, g.key, "seen", g.updated)
    end
    for _, flag in ipairs({ "read", "seen" }) do
      local wanted = marks_wanted(args, "mark_" .. flag, list)
      if wanted and wanted[1] then feedstore.set_marks(feed_id, flag, wanted) end
    end
    return page
  end
  local marking = notification and (request.joined(args, "mark_read") or request.joined(args, "mark_seen"))
  if marking then return db.write(run) end
  return db.read(run)
end

local function group_json(g, notification, enricher)
  local acts = {}
  for i = 1, math.min(#g.members, config.max_group_activities) do
    local r = g.members[i]
    local text = feedstore.activity_json(r[5], r[6], r[4] and quote(r[4]) or "null")
    acts[i] = enricher and enricher:activity(text) or text
  end
  local parts = {
    '{"id":', quote(g.id), ',"verb":', quote(g.verb), ',"group":', quote(g.key),
    ',"activity_count":', #g.members, ',"actor_count":', g.actor_count,
    ',"created_at":"', ids.format_time(g.created), '","updated_at":"', ids.format_time(g.updated), '"',
    ',"activities":[', concat(acts, ","), "]",
  }
  if notification then
    parts[#parts + 1] = ',"is_read":' .. tostring(g.is_read) .. ',"is_seen":' .. tostring(g.is_seen)
  end
  parts[#parts + 1] = "}"
  return concat(parts)
end

local NEXT_DROP = { api_key = true, id_lt = true, id_lte = true, limit = true, offset = true,
  mark_read = true, mark_seen = true }

-- read(ctx, feed): feed = { slug, uid, id, kind, limit, offset }
function M.read(ctx, feed)
  local notification = feed.kind == "notification"
  -- a format that does not parse fails the reads of its feeds, never the adds
  -- (the service answers so; the Ruby suite checks it)
  feed.template = aggformat.compile(config.aggregation_formats[feed.slug] or aggformat.DEFAULT)
  if not feed.template then
    return reply.error(400, "the format contains syntax errors", nil, 14, "JinjaRuntimeException")
  end
  local errors = {}
  local page = take(feed, notification, ctx.args, errors)
  if errors[1] then return reply.invalid(errors) end
  local list, lo, hi = page.list, page.lo, page.hi
  local first = lo + feed.offset
  local last = math.min(hi, first + feed.limit - 1)
  local enricher = ctx.params.enrich and enrich.new(ctx)
  local out = {}
  for i = first, last do out[#out + 1] = group_json(list[i], notification, enricher) end
  local next_url = ""
  if last >= first and last < hi then
    local lead = { "id_lt=" .. ngx.escape_uri(list[last].id), "limit=" .. feed.limit }
    next_url = "/api/v1.0/" .. (ctx.params.enrich and "enrich/" or "") .. "feed/" .. feed.slug .. "/" .. feed.uid
      .. "/?" .. request.next_query(ctx.query, lead, NEXT_DROP)
  end
  local text = '{"results":[' .. concat(out, ",") .. '],"next":' .. quote(next_url)
  if notification then
    local unread, unseen = 0, 0
    for _, g in ipairs(list) do
      if not g.is_read then unread = unread + 1 end
      if not g.is_seen then unseen = unseen + 1 end
    end
    text = text .. ',"unseen":' .. unseen .. ',"unread":' .. unread
  end
  return reply.send(200, text .. "}")
end

return M
