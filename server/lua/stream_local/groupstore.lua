-- stream_local.groupstore: the groups of aggregated and notification feeds, kept at
-- write time in SQLite (tables in stream_local.schema), so a read costs its page.
--
-- What it does:
--   * settle(): run at the end of every write transaction that changes feed rows
--     (stream_local.feedstore wraps its writes with it). Triggers on feed_items and
--     activities record what changed: `group_pending` (feed, activity) for a row that
--     arrived, moved in time, or whose activity got a new body or time; `group_dirty`
--     (feed, group) for a row that went. settle gives each pending row of a grouped
--     feed its group key (stream_local.aggformat, the feed group's format) and actor,
--     then recomputes the summary row (`feed_groups`) of every group that changed:
--     activity and distinct actor counts, first and last arrival, the newest activity
--     (by place) with its sort key and verb. A group with no row left goes.
--   * `grouped_feeds` records, per feed, the format (and this module's VERSION) its
--     keys were computed under. A feed without that record, or with another format (a
--     kept database file from before, or a server started with another
--     STREAM_LOCAL_AGGREGATION_FORMATS), is regrouped whole once: ensure(feed) does it
--     before a read, settle before a write touches it. A feed whose group is flat, or
--     whose format does not compile, keeps no groups (adds still go through; the read
--     answers 400, stream_local.groups).
--   * page(feed_id, bounds, limit, offset), find(feed_id, gid, notification),
--     members(feed_id, grp, limit), unmarked(feed_id, read_mark, seen_mark),
--     newest_update(feed_id), by_id(feed_id, gid): the reads stream_local.groups makes,
--     each an index range over one feed's groups or one group's rows.
--
-- Invariants: after every write transaction a current feed's feed_groups rows are
-- exactly what grouping its rows at read time would give; group_pending and
-- group_dirty are empty between transactions (unless an older server wrote the file,
-- which ensure() then settles).
--
-- What it deliberately does not do: no caching outside SQLite (workers share the file),
-- no marks (group_marks stays stream_local.feedstore's).

local json = require "stream_local.json"
local config = require "stream_local.config"
local db = require "stream_local.db"
local aggformat = require "stream_local.aggformat"

local ipairs, pairs, concat = ipairs, pairs, table.concat

local M = {}

-- bumped when the keys a format gives change (aggformat fixes), so kept files regroup
M.VERSION = "1"

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

local compiled = {} -- format text -> template | false

-- grouping(feed_id) -> { id, slug, uid, template, state } when the feed's group is
-- aggregated or notification with a format that compiles, else nil
local function grouping(feed_id)
  local slug, uid = feed_id:match("^([^:]*):(.*)$")
  local kind = slug and config.feed_groups[slug]
  if kind ~= "aggregated" and kind ~= "notification" then return nil end
  local fmt = config.aggregation_formats[slug] or aggformat.DEFAULT
  if compiled[fmt] == nil then compiled[fmt] = aggformat.compile(fmt) or false end
  if not compiled[fmt] then return nil end
  return { id = feed_id, slug = slug, uid = uid, template = compiled[fmt], state = M.VERSION .. "\n" .. fmt }
end

-- key_of(g, body, time_us) -> group key, actor of an activity in the feed
local function key_of(g, body, time_us)
  local tree
  local env = { time_us = time_us, feed = { group = g.slug, user_id = g.uid } }
  env.lookup = function(name)
    if HEAD_STRINGS[name] then return string_value(body, name) end
    tree = tree or json.parse(body)
    return tree.values[name]
  end
  return aggformat.render(g.template, env), string_value(body, "actor") or ""
end

local MARK_DIRTY = "INSERT OR IGNORE INTO group_dirty (feed_id, grp) VALUES (?, ?)"
local SET_KEY = "UPDATE feed_items SET grp = ?, actor = ? WHERE feed_id = ? AND activity_id = ?"

-- summarize(feed_id, grp): the group's summary row from its rows, or none when empty
local function summarize(feed_id, grp)
  local s = db.one([[SELECT count(*), count(DISTINCT actor), min(added_us), max(added_us) FROM feed_items
    WHERE feed_id = ? AND grp = ?]], feed_id, grp)
  if s[1] == 0 then
    db.exec("DELETE FROM feed_groups WHERE feed_id = ? AND grp = ?", feed_id, grp)
    return
  end
  local n = db.one([[SELECT fi.activity_id, fi.sk, a.body FROM feed_items fi JOIN activities a ON a.id = fi.activity_id
    WHERE fi.feed_id = ? AND fi.grp = ? ORDER BY fi.time_us DESC, fi.sk DESC LIMIT 1]], feed_id, grp)
  db.exec([[INSERT OR REPLACE INTO feed_groups (feed_id, grp, newest_id, newest_sk, verb, activity_count,
    actor_count, created_us, updated_us) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)]], feed_id, grp, n[1], n[2],
    string_value(n[3], "verb") or "", s[1], s[2], s[3], s[4])
end

-- regroup(g): every row of the feed keyed again and every group summarized again
local function regroup(g)
  db.exec("DELETE FROM feed_groups WHERE feed_id = ?", g.id)
  local keys = {}
  for _, r in ipairs(db.rows([[SELECT fi.activity_id, a.body, a.time_us FROM feed_items fi
    JOIN activities a ON a.id = fi.activity_id WHERE fi.feed_id = ?]], g.id)) do
    local key, actor = key_of(g, r[2], r[3])
    db.exec(SET_KEY, key, actor, g.id, r[1])
    keys[key] = true
  end
  for key in pairs(keys) do summarize(g.id, key) end
  db.exec("DELETE FROM group_pending WHERE feed_id = ?", g.id)
  db.exec("DELETE FROM group_dirty WHERE feed_id = ?", g.id)
  db.exec("INSERT OR REPLACE INTO grouped_feeds (feed_id, state) VALUES (?, ?)", g.id, g.state)
end

-- rekey(g, activity_id): one pending row's key; its old and new groups are dirty
local function rekey(g, activity_id)
  local r = db.one([[SELECT fi.grp, a.body, a.time_us FROM feed_items fi JOIN activities a ON a.id = fi.activity_id
    WHERE fi.feed_id = ? AND fi.activity_id = ?]], g.id, activity_id)
  if not r then return end
  local key, actor = key_of(g, r[2], r[3])
  db.exec(SET_KEY, key, actor, g.id, activity_id)
  if r[1] and r[1] ~= key then db.exec(MARK_DIRTY, g.id, r[1]) end
  db.exec(MARK_DIRTY, g.id, key)
end

local function current(g)
  local row = db.one("SELECT state FROM grouped_feeds WHERE feed_id = ?", g.id)
  return row ~= nil and row[1] == g.state
end

-- settle_feed(feed_id, activity_ids): the pending rows of one feed
local function settle_feed(feed_id, activity_ids)
  local g = grouping(feed_id)
  if not g then
    db.exec("DELETE FROM grouped_feeds WHERE feed_id = ?", feed_id)
    db.exec("DELETE FROM feed_groups WHERE feed_id = ?", feed_id)
  elseif not current(g) then
    regroup(g)
  else
    for _, id in ipairs(activity_ids) do rekey(g, id) end
  end
end

-- settle(): inside a write transaction, the pending rows keyed and the dirty groups
-- summarized (see the top of this file)
function M.settle()
  local pending = db.rows("SELECT feed_id, activity_id FROM group_pending")
  if pending[1] then
    db.exec("DELETE FROM group_pending")
    local by_feed, order = {}, {}
    for _, r in ipairs(pending) do
      local list = by_feed[r[1]]
      if not list then
        list = {}
        by_feed[r[1]], order[#order + 1] = list, r[1]
      end
      list[#list + 1] = r[2]
    end
    for _, feed_id in ipairs(order) do settle_feed(feed_id, by_feed[feed_id]) end
  end
  local dirty = db.rows("SELECT feed_id, grp FROM group_dirty")
  if not dirty[1] then return end
  db.exec("DELETE FROM group_dirty")
  local ok = {}
  for _, r in ipairs(dirty) do
    if ok[r[1]] == nil then
      local g = grouping(r[1])
      ok[r[1]] = g ~= nil and current(g)
    end
    if ok[r[1]] then summarize(r[1], r[2]) end
  end
end

-- ensure(feed_id) -> whether the feed keeps groups (its format compiles); before a
-- read: a feed not current (never grouped, another format) or with work left by a
-- writer that did not settle is brought up to date in one write transaction
function M.ensure(feed_id)
  local g = grouping(feed_id)
  if not g then return false end
  local fresh = db.read(function()
    return current(g) and not db.one("SELECT 1 FROM group_pending WHERE feed_id = ? LIMIT 1", feed_id)
      and not db.one("SELECT 1 FROM group_dirty WHERE feed_id = ? LIMIT 1", feed_id)
  end)
  if not fresh then
    db.write(function()
      M.settle()
      if not current(g) then regroup(g) end
    end)
  end
  return true
end

-- reads ------------------------------------------------------------------------------

-- a group row: { grp, newest_id, newest_sk, verb, activity_count, actor_count,
-- created_us, updated_us, read_us, seen_us } (the marks of its own key, nil when none)
local GROUP_COLUMNS = [[g.grp, g.newest_id, g.newest_sk, g.verb, g.activity_count, g.actor_count, g.created_us,
  g.updated_us, m.read_us, m.seen_us FROM feed_groups g
  LEFT JOIN group_marks m ON m.feed_id = g.feed_id AND m.grp = g.grp]]
local PLACE = "(g.updated_us, g.newest_sk, g.grp)"

-- page(feed_id, bounds, limit, offset) -> group rows in read order (newest update
-- first, then newest sort key, then key, all descending); bounds: list of { op, row }
-- keeping the groups whose place compares so with that group row's
function M.page(feed_id, bounds, limit, offset)
  local where, args = { "g.feed_id = ?" }, { feed_id }
  for _, b in ipairs(bounds) do
    where[#where + 1] = PLACE .. " " .. b[1] .. " (?, ?, ?)"
    args[#args + 1], args[#args + 2], args[#args + 3] = b[2][8], b[2][3], b[2][1]
  end
  args[#args + 1], args[#args + 2] = limit, offset
  return db.rows("SELECT " .. GROUP_COLUMNS .. " WHERE " .. concat(where, " AND ")
    .. " ORDER BY g.updated_us DESC, g.newest_sk DESC, g.grp DESC LIMIT ? OFFSET ?", unpack(args))
end

local function group_row(feed_id, grp)
  return db.one("SELECT " .. GROUP_COLUMNS .. " WHERE g.feed_id = ? AND g.grp = ?", feed_id, grp)
end

-- find(feed_id, gid, notification) -> the group row a cursor names | nil: its current
-- id, else (an id taken before the group got a newer activity) the group of that key,
-- or, for an id without a key, the group holding that activity
function M.find(feed_id, gid, notification)
  local key = gid:match("^[^.]*%.(.+)$")
  if key then return group_row(feed_id, key) end
  if not notification then
    local row = db.one("SELECT " .. GROUP_COLUMNS .. " WHERE g.feed_id = ? AND g.newest_id = ?", feed_id, gid)
    if row then return row end
  end
  local member = db.one("SELECT grp FROM feed_items WHERE feed_id = ? AND activity_id = ?", feed_id, gid:lower())
  return member and member[1] and group_row(feed_id, member[1])
end

-- by_id(feed_id, gid) -> the updated time of the notification group whose id is
-- exactly gid (`<newest activity id>.<key>`) | nil
function M.by_id(feed_id, gid)
  local act, key = gid:match("^([^.]*)%.(.+)$")
  if not key then return nil end
  local row = db.one("SELECT updated_us FROM feed_groups WHERE feed_id = ? AND grp = ? AND newest_id = ?",
    feed_id, key, act)
  return row and row[1]
end

-- members(feed_id, grp, limit) -> the group's newest rows { id, sk, added_us, origin,
-- head, body, time_us }, newest (by place) first
function M.members(feed_id, grp, limit)
  return db.rows([[SELECT a.id, fi.sk, fi.added_us, fi.origin, a.head, a.body, a.time_us
    FROM feed_items fi JOIN activities a ON a.id = fi.activity_id WHERE fi.feed_id = ? AND fi.grp = ?
    ORDER BY fi.time_us DESC, fi.sk DESC LIMIT ?]], feed_id, grp, limit)
end

-- newest_update(feed_id) -> the latest arrival of any group | nil when no group
function M.newest_update(feed_id)
  return db.one("SELECT max(updated_us) FROM feed_groups WHERE feed_id = ?", feed_id)[1]
end

-- unmarked(feed_id, read_mark, seen_mark) -> unread, unseen: the groups whose own
-- mark and the feed-wide one (nil: none) are both below their latest arrival. Only the
-- groups newer than the feed-wide mark are counted (an index range), and their own
-- marks looked up only when the feed has marks of single groups.
local UNMARKED = {
  [false] = "SELECT count(*) FROM feed_groups g WHERE g.feed_id = ? AND g.updated_us > ?",
  read = [[SELECT count(*) FROM feed_groups g WHERE g.feed_id = ? AND g.updated_us > ? AND NOT EXISTS
    (SELECT 1 FROM group_marks m WHERE m.feed_id = g.feed_id AND m.grp = g.grp AND m.read_us >= g.updated_us)]],
  seen = [[SELECT count(*) FROM feed_groups g WHERE g.feed_id = ? AND g.updated_us > ? AND NOT EXISTS
    (SELECT 1 FROM group_marks m WHERE m.feed_id = g.feed_id AND m.grp = g.grp AND m.seen_us >= g.updated_us)]],
}
function M.unmarked(feed_id, read_mark, seen_mark)
  local own = db.one("SELECT 1 FROM group_marks WHERE feed_id = ? AND grp <> '' LIMIT 1", feed_id) ~= nil
  return db.one(UNMARKED[own and "read"], feed_id, read_mark or -1)[1],
    db.one(UNMARKED[own and "seen"], feed_id, seen_mark or -1)[1]
end

return M
