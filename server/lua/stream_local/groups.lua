-- stream_local.groups: reads of aggregated and notification feeds (stream-feeds-api.md
-- section 9).
--
-- What it does: check(args, errors) checks the form of the cursors; read(ctx, feed)
-- answers GET [enrich/]feed/{slug}/{id}/ for a feed whose group is aggregated or
-- notification (stream_local.feeds checked the path, limit, offset, cursor form and the
-- token's right to read). The groups are kept at write time (stream_local.groupstore:
-- each row's key under the group's aggregation format, stream_local.aggformat; default
-- `<verb>_<YYYY-MM-DD>` of the activity's time, STREAM_LOCAL_AGGREGATION_FORMATS per
-- group), so updates, removals and unfollows show in groups at once, and a read costs
-- its page: index ranges over the feed's groups and each shown group's newest rows. A
-- format that does not parse makes the read 400 code 14 JinjaRuntimeException. Each
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
-- unread and unseen again with nothing written to the marks at delivery.
--
-- What it deliberately does not do: no ranking, no realtime.

local json = require "stream_local.json"
local reply = require "stream_local.reply"
local request = require "stream_local.request"
local rules = require "stream_local.rules"
local config = require "stream_local.config"
local ids = require "stream_local.ids"
local db = require "stream_local.db"
local feedstore = require "stream_local.feedstore"
local groupstore = require "stream_local.groupstore"
local enrich = require "stream_local.enrich"

-- luacheck: globals ngx
local ngx = ngx
local ipairs, tostring, concat = ipairs, tostring, table.concat
local quote = json.quote

local M = {}

-- each cursor keeps the groups on one side of the group it names, in the read order:
-- id_lt / id_lte the ones after it (older), id_gt / id_gte the ones before it (newer);
-- the read order is descending, so "after" is a smaller place
local CURSORS = { { "id_lt", "<" }, { "id_lte", "<=" }, { "id_gt", ">" }, { "id_gte", ">=" } }

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

-- window(feed_id, notification, args, errors) -> bounds for groupstore.page
local function window(feed_id, notification, args, errors)
  local bounds = {}
  for _, c in ipairs(CURSORS) do
    local v = request.arg(args, c[1])
    if v and v ~= "" then
      local row = groupstore.find(feed_id, v, notification)
      if not row then
        errors[#errors + 1] = { c[1], "no group of this feed has the id " .. v }
      else
        bounds[#bounds + 1] = { c[2], row }
      end
    end
  end
  return bounds
end

-- marks_wanted(feed_id, args, name) -> list of { group key, us } to mark | nil
local function marks_wanted(feed_id, args, name)
  local v = request.joined(args, name)
  if not v then return nil end
  local out = {}
  if v == "true" or v == "True" or v == "1" then
    local newest = groupstore.newest_update(feed_id)
    if newest then out[1] = { "", newest } end
    return out
  end
  for gid in v:gmatch("[^,]+") do
    local updated = groupstore.by_id(feed_id, gid)
    if updated then out[#out + 1] = { gid:match("^[^.]*%.(.+)$"), updated } end
  end
  return out
end

-- marked(feed_mark, own, updated): a group is marked while its own mark or the
-- feed-wide one covers its latest arrival; never marked means no mark at all
local function marked(feed_mark, own, updated)
  local m = feed_mark
  if own and (not m or own > m) then m = own end
  return m ~= nil and m >= updated
end

-- group(feed_id, row, notification) -> a shown group: its row's fields, id and newest
-- activities
local function group(feed_id, row, notification)
  return { key = row[1], id = notification and (row[2] .. "." .. row[1]) or row[2], verb = row[4],
    count = row[5], actor_count = row[6], created = row[7], updated = row[8], read_us = row[9], seen_us = row[10],
    members = groupstore.members(feed_id, row[1], config.max_group_activities) }
end

-- take(feed, notification, args, errors) -> { list = the page's groups, more = whether
-- groups follow it, unread, unseen } (one snapshot; with mark_read / mark_seen in a
-- notification feed, one write transaction)
local function take(feed, notification, args, errors)
  local feed_id = feed.id
  local function run()
    local bounds = window(feed_id, notification, args, errors)
    if errors[1] then return nil end
    local rows = groupstore.page(feed_id, bounds, feed.limit + 1, feed.offset)
    local page = { list = {}, more = rows[feed.limit + 1] ~= nil }
    for i = 1, math.min(#rows, feed.limit) do page.list[i] = group(feed_id, rows[i], notification) end
    if not notification then return page end
    local marks = feedstore.marks(feed_id)[""] or {}
    for _, g in ipairs(page.list) do
      g.is_read = marked(marks.read, g.read_us, g.updated)
      g.is_seen = marked(marks.seen, g.seen_us, g.updated)
    end
    page.unread, page.unseen = groupstore.unmarked(feed_id, marks.read, marks.seen)
    for _, flag in ipairs({ "read", "seen" }) do
      local wanted = marks_wanted(feed_id, args, "mark_" .. flag)
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
  for i, r in ipairs(g.members) do
    local text = feedstore.activity_json(r[5], r[6], r[4] and quote(r[4]) or "null")
    acts[i] = enricher and enricher:activity(text) or text
  end
  local parts = {
    '{"id":', quote(g.id), ',"verb":', quote(g.verb), ',"group":', quote(g.key),
    ',"activity_count":', g.count, ',"actor_count":', g.actor_count,
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
  if not groupstore.ensure(feed.id) then
    return reply.error(400, "the format contains syntax errors", nil, 14, "JinjaRuntimeException")
  end
  local errors = {}
  local page = take(feed, notification, ctx.args, errors)
  if errors[1] then return reply.invalid(errors) end
  local list = page.list
  local enricher = ctx.params.enrich and enrich.new(ctx)
  local out = {}
  -- the enrichment of the whole page reads one snapshot (one transaction, not one per
  -- activity)
  db.read(function()
    for i, g in ipairs(list) do out[i] = group_json(g, notification, enricher) end
  end)
  local next_url = ""
  if page.more then
    local lead = { "id_lt=" .. ngx.escape_uri(list[#list].id), "limit=" .. feed.limit }
    next_url = "/api/v1.0/" .. (ctx.params.enrich and "enrich/" or "") .. "feed/" .. feed.slug .. "/" .. feed.uid
      .. "/?" .. request.next_query(ctx.query, lead, NEXT_DROP)
  end
  local text = '{"results":[' .. concat(out, ",") .. '],"next":' .. quote(next_url)
  if notification then
    text = text .. ',"unseen":' .. page.unseen .. ',"unread":' .. page.unread
  end
  return reply.send(200, text .. "}")
end

return M
