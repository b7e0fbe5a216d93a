-- stream_local.feedstore: activities, feed contents and follows in the SQLite database
-- (tables in stream_local.schema).
--
-- What it does:
--   * add(feed_id, list): one transaction for the whole list, fan-out included. Each
--     activity is stored once (activities row) and delivered as feed_items rows: to the
--     feed (origin NULL), to every `to` target (origin NULL), to every follower of the
--     feed (origin = the feed) and of each target (origin = that target). A repeated
--     (feed, activity) pair is ignored, so an activity reaching a feed twice is there once.
--     Same id (same foreign_id and time) replaces the stored fields; an activity without
--     a foreign id whose content (digest) or id equals a stored one is that one, in
--     every feed (its id comes from its content, stream_local.activity).
--   * Homes: every feed an activity is added to is a home of it, recorded with the `to`
--     targets of that add in the table `direct` (who holds it directly, and through
--     which home). Removing it from one home takes what that home brought and leaves
--     what another still brings; a row's origin is always a feed that still holds it.
--   * read(feed_id, bounds, limit, offset): newest first by place (time to the
--     microsecond, then sort key), joined to the activity; the caller asks for one row
--     more than it shows to know about a next page. place(feed_id, id): where a cursor
--     naming an activity of the feed stands.
--   * retarget(home, a, added, removed): a target update (stream_local.targets) of
--     home's add: the new body, the holds of removed targets through that home gone
--     (their rows and their followers' copies with them unless something else brings
--     them), added targets and their followers served, exactly as an add with the new
--     `to` would have left it. home_targets(id, feed_id): that add's targets.
--   * insert_alone(a): an activity in no feed (a full update of an unknown one).
--   * remove(feed_id, activity_id): the feed's row goes with every direct hold it had;
--     from its last home, every copy goes and the activity with them; otherwise each
--     row that came only through what went goes, and one that another holder still
--     brings stays (with that holder as its origin). remove_all(id): from every feed.
--   * add_to_many, follow_many, unfollow_many: the same, for many feeds or pairs in one
--     transaction.
--   * rewrite(id, head, body, digest): an update's new body, in place.
--   * get(id): the stored activity (id, head, body, feed_id = one feed it was added to,
--     "" for none, foreign_id, sk, time_us); homes(id): every feed it was added to;
--     held_by(id, joined): whether a feed, named as token claims name it, holds it.
--   * marks(feed_id), set_marks(feed_id, flag, list): the read/seen marks of a
--     notification feed's groups (stream_local.groups).
--   * Every write ends with stream_local.groupstore.settle in its transaction, so the
--     groups of aggregated and notification feeds follow each change of their rows.
--   * follow/unfollow/followers/following/follow_count: follows rows; a follow copies
--     the target's own newest activities (origin NULL there) with origin = the target; an
--     unfollow without keep_history removes the copies that came from the target, but
--     for those the feed still gets another way (it holds them, or follows a holder).
--
-- Invariants: every feed_items row points at an existing activities row; a row with
-- origin NULL has a `direct` row for its feed; every activity in a feed has a home; a write either
-- happens whole or not at all (stream_local.db.write); reads never see half of a write
-- (SQLite snapshot isolation in WAL mode).
--
-- What it deliberately does not do: no validation (stream_local.feeds does it), no JSON
-- parsing, no enrichment, no permission checks, no transitive fan-out (followers of a
-- follower get nothing, as with the service).

local db = require "stream_local.db"
local clock = require "stream_local.clock"
local groupstore = require "stream_local.groupstore"

local concat = table.concat
local ipairs = ipairs

local M = {}

-- write(fn, ...): fn in one write transaction, whose changes to feed rows regroup the
-- aggregated and notification feeds they touch before it commits
local function settled(fn, ...)
  local a, b = fn(...)
  groupstore.settle()
  return a, b
end
local function write(fn, ...)
  return db.write(settled, fn, ...)
end

local INSERT_ACTIVITY = [[INSERT OR REPLACE INTO activities (id, sk, feed_id, foreign_id, time_us, digest, head, body)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)]]
local PUT = [[INSERT OR IGNORE INTO feed_items (feed_id, activity_id, sk, time_us, origin, added_us)
VALUES (?, ?, ?, ?, ?, ?)]]
local PUT_FOLLOWERS = [[INSERT OR IGNORE INTO feed_items (feed_id, activity_id, sk, time_us, origin, added_us)
SELECT feed_id, ?, ?, ?, ?, ? FROM follows WHERE target_id = ?]]

local PUT_DIRECT = "INSERT OR IGNORE INTO direct (activity_id, feed_id, home) VALUES (?, ?, ?)"

-- deliver(a, feed, home, now): the activity sits directly in feed (origin NULL) because
-- of the add into home (feed = home: that add itself; else a `to` target of it), and
-- the feed's followers get it with origin = feed. Rows that exist already keep their
-- origin and arrival time: the first delivery of a feed decides its origin.
local function deliver(a, feed, home, now)
  db.exec(PUT_DIRECT, a.id, feed, home)
  db.exec(PUT, feed, a.id, a.sk, a.time_us, nil, now)
  db.exec(PUT_FOLLOWERS, a.id, a.sk, a.time_us, feed, now, feed)
end

-- fan_out(home, a, to, now): an add's deliveries, in its order (the feed and its
-- followers, then each target and its followers)
local function fan_out(home, a, to, now)
  deliver(a, home, home, now)
  for _, t in ipairs(to or {}) do
    if t ~= home then deliver(a, t, home, now) end
  end
end

-- resettle(where, keep_origin, ...): after paths that brought an activity into feeds
-- went away (a removal, a removed target, an unfollow), each row `fi` that `where`
-- selects stays while something still brings it: the feed holds it directly (origin
-- becomes NULL), or follows a feed that does (origin becomes that feed); else it goes.
-- keep_origin: a row whose origin still holds the activity directly is left as it is
-- (a copy kept by keep_history after an unfollow included).
local HELD_HERE = "EXISTS (SELECT 1 FROM direct d WHERE d.activity_id = fi.activity_id AND d.feed_id = fi.feed_id)"
local HELD_BY_ORIGIN = "EXISTS (SELECT 1 FROM direct d WHERE d.activity_id = fi.activity_id AND d.feed_id = fi.origin)"
local FOLLOWED_HOLDER = [[(SELECT d.feed_id FROM direct d JOIN follows f ON f.target_id = d.feed_id
  WHERE d.activity_id = fi.activity_id AND f.feed_id = fi.feed_id ORDER BY f.seq LIMIT 1)]]
local function resettle(where, keep_origin, ...)
  if keep_origin then where = where .. " AND NOT " .. HELD_BY_ORIGIN end
  db.exec("DELETE FROM feed_items AS fi WHERE " .. where .. " AND NOT " .. HELD_HERE .. " AND " .. FOLLOWED_HOLDER
    .. " IS NULL", ...)
  db.exec("UPDATE feed_items AS fi SET origin = CASE WHEN " .. HELD_HERE .. " THEN NULL ELSE " .. FOLLOWED_HOLDER
    .. " END WHERE " .. where, ...)
end

-- resettle_gone(id, gone, keep_origin): the rows of the activity in the feeds of the
-- list gone (which lost their direct hold) and the copies made from them
local function resettle_gone(id, gone, keep_origin)
  if not gone[1] then return end
  local marks, args = {}, { id }
  for i, f in ipairs(gone) do
    marks[i] = "?"
    args[i + 1], args[#gone + i + 1] = f, f
  end
  marks = concat(marks, ",")
  resettle("fi.activity_id = ? AND (fi.feed_id IN (" .. marks .. ") OR fi.origin IN (" .. marks .. "))",
    keep_origin, unpack(args))
end

local COLUMNS = "id, head, body, feed_id, foreign_id, sk, time_us"
local function activity_of(row)
  if not row then return nil end
  return { id = row[1], head = row[2], body = row[3], feed_id = row[4], foreign_id = row[5], sk = row[6],
    time_us = row[7] }
end

-- same_content(a) -> the stored activity an add without a foreign id is: the same
-- content now (digest, also after an update made it so), else the same id (the same
-- content when it was added)
local function same_content(a)
  return activity_of(db.one("SELECT " .. COLUMNS .. " FROM activities WHERE digest = ?", a.digest))
    or activity_of(db.one("SELECT " .. COLUMNS .. " FROM activities WHERE id = ?", a.id))
end

-- store(feed_id, a): a new activity, or the replacement of the one with its id (same
-- foreign id and time: it keeps its homes, this feed becomes one more, and every copy
-- moves to the new time)
local function store(feed_id, a)
  local owner = db.one("SELECT feed_id FROM activities WHERE id = ?", a.id)
  db.exec(INSERT_ACTIVITY, a.id, a.sk, owner and owner[1] ~= "" and owner[1] or feed_id, a.foreign_id or "",
    a.time_us, a.digest, a.head, a.body)
  if owner then
    db.exec("UPDATE feed_items SET time_us = ? WHERE activity_id = ? AND time_us <> ?", a.time_us, a.id, a.time_us)
  end
end

local function add_tx(feed_id, list)
  local now = clock.realtime_us()
  local out = {}
  for i, a in ipairs(list) do
    local stored = a.digest and same_content(a)
    if stored then
      stored.to = a.to
    else
      store(feed_id, a)
      stored = a
    end
    fan_out(feed_id, stored, stored.to, now)
    out[i] = stored
  end
  return out
end

-- add(feed_id, list of prepared activities) -> list of stored { id, sk, head, body }
function M.add(feed_id, list)
  return write(add_tx, feed_id, list)
end

-- add_to_many(feed_ids, activity) -> stored: one activity delivered to every listed
-- feed (and their followers), all in one transaction; each listed feed is a home of it
function M.add_to_many(feed_ids, a)
  return write(function()
    local stored
    for _, f in ipairs(feed_ids) do stored = add_tx(f, { a })[1] end
    return stored
  end)
end

-- activity_json(head, body, origin_json) -> the activity as every read returns it
function M.activity_json(head, body, origin_json)
  return body:sub(1, head) .. ',"origin":' .. origin_json .. body:sub(head + 1)
end

-- read(feed_id, bounds, limit, offset) -> rows { id, head, body, origin }
-- bounds: list of { op, time_us, sk } with op one of <, <=, >, >=: places compared as
-- (time, sort key)
function M.read(feed_id, bounds, limit, offset)
  local where, args = { "fi.feed_id = ?" }, { feed_id }
  for _, b in ipairs(bounds) do
    where[#where + 1] = "(fi.time_us, fi.sk) " .. b[1] .. " (?, ?)"
    args[#args + 1] = b[2]
    args[#args + 1] = b[3]
  end
  args[#args + 1] = limit
  args[#args + 1] = offset
  local sql = "SELECT a.id, a.head, a.body, fi.origin FROM feed_items fi JOIN activities a ON a.id = fi.activity_id"
    .. " WHERE " .. concat(where, " AND ") .. " ORDER BY fi.time_us DESC, fi.sk DESC LIMIT ? OFFSET ?"
  return db.rows(sql, unpack(args))
end

-- place(feed_id, id) -> the time (µs) of the feed's row of that activity | nil; its
-- sort key is the id's
function M.place(feed_id, id)
  local row = db.one("SELECT time_us FROM feed_items WHERE feed_id = ? AND activity_id = ?", feed_id, id)
  return row and row[1]
end

-- marks(feed_id) -> { [group] = { read = us | nil, seen = us | nil } }; group "" is the
-- whole feed; nil: never marked
function M.marks(feed_id)
  local out = {}
  for _, r in ipairs(db.rows("SELECT grp, read_us, seen_us FROM group_marks WHERE feed_id = ?", feed_id)) do
    out[r[1]] = { read = r[2], seen = r[3] }
  end
  return out
end

-- set_marks(feed_id, flag, list): flag "read" or "seen"; list of { group, us }: each
-- group's mark moves up to us (never down)
local SET_MARK = {
  read = [[INSERT INTO group_marks (feed_id, grp, read_us) VALUES (?, ?, ?)
    ON CONFLICT (feed_id, grp) DO UPDATE SET read_us = max(coalesce(read_us, 0), excluded.read_us)]],
  seen = [[INSERT INTO group_marks (feed_id, grp, seen_us) VALUES (?, ?, ?)
    ON CONFLICT (feed_id, grp) DO UPDATE SET seen_us = max(coalesce(seen_us, 0), excluded.seen_us)]],
}
function M.set_marks(feed_id, flag, list)
  return write(function()
    for _, m in ipairs(list) do db.exec(SET_MARK[flag], feed_id, m[1], m[2]) end
  end)
end

-- get(id) -> { id, head, body, feed_id, foreign_id, sk, time_us } | nil
function M.get(id)
  return activity_of(db.one("SELECT " .. COLUMNS .. " FROM activities WHERE id = ?", id))
end

-- origin(feed_id, id) -> the origin of the feed's row of that activity ("" for NULL) | nil
function M.origin(feed_id, id)
  local row = db.one("SELECT coalesce(origin, '') FROM feed_items WHERE feed_id = ? AND activity_id = ?",
    feed_id, id)
  return row and row[1]
end

-- insert_alone(a): an activity { id, sk, foreign_id, time_us, digest, head, body } stored
-- in no feed (feed_id ""): reads by id find it; an add of the same id later gives it
-- the feed it is added to
function M.insert_alone(a)
  return write(function()
    db.exec(INSERT_ACTIVITY, a.id, a.sk, "", a.foreign_id or "", a.time_us, a.digest, a.head, a.body)
  end)
end

-- rewrite(id, head, body, digest): an activity's new stored body (an update); its id,
-- sort key and deliveries stay, so every feed holding it shows the new body
function M.rewrite(id, head, body, digest)
  return write(function()
    db.exec("UPDATE activities SET head = ?, body = ?, digest = ? WHERE id = ?", head, body, digest, id)
  end)
end

-- retarget(home, a, added, removed): a = { id, sk, time_us, head, body } with the new
-- body; the targets of home's add become what an add with the new `to` would have made:
-- removed targets stop holding it through this home (the rows that nothing else brings
-- go, stream-feeds-api.md section 11), added ones and their followers get it
local function retarget_tx(home, a, added, removed)
  local now = clock.realtime_us()
  db.exec("UPDATE activities SET head = ?, body = ? WHERE id = ?", a.head, a.body, a.id)
  -- the feed itself as a target delivers nothing of its own (an add skips it too)
  local gone = {}
  for _, r in ipairs(removed) do
    if r ~= home then
      db.exec("DELETE FROM direct WHERE activity_id = ? AND feed_id = ? AND home = ?", a.id, r, home)
      gone[#gone + 1] = r
    end
  end
  for _, t in ipairs(added) do
    if t ~= home then deliver(a, t, home, now) end
  end
  resettle_gone(a.id, gone, true)
end

function M.retarget(home, a, added, removed)
  return write(retarget_tx, home, a, added, removed)
end

-- home_targets(id, feed_id) -> the `to` targets (sorted) of the activity's add into
-- feed_id | nil when the activity was not added to that feed
function M.home_targets(id, feed_id)
  local list, home = {}, false
  for _, r in ipairs(db.rows("SELECT feed_id FROM direct WHERE activity_id = ? AND home = ? ORDER BY feed_id",
    id, feed_id)) do
    if r[1] == feed_id then home = true else list[#list + 1] = r[1] end
  end
  return home and list or nil
end

-- homes(id) -> the feeds the activity was added to (sorted; {} for an activity in none)
function M.homes(id)
  local out = {}
  for i, r in ipairs(db.rows("SELECT feed_id FROM direct WHERE activity_id = ? AND feed_id = home ORDER BY feed_id",
    id)) do
    out[i] = r[1]
  end
  return out
end

-- held_by(id, joined) -> whether a feed whose joined id ("useralice", as token claims
-- name feeds) holds the activity in any way (added there, a target, a copy)
function M.held_by(id, joined)
  return db.one("SELECT 1 FROM feed_items WHERE activity_id = ? AND replace(feed_id, ':', '') = ? LIMIT 1",
    id, joined) ~= nil
end

local function purge(id)
  db.exec("DELETE FROM feed_items WHERE activity_id = ?", id)
  db.exec("DELETE FROM direct WHERE activity_id = ?", id)
  db.exec("DELETE FROM activities WHERE id = ?", id)
end

-- remove_one(feed_id, id): the feed's row goes, with every direct hold it had (as a
-- home: its own and its add's targets; as a target of another add: that one); removing
-- it from its last home takes it from every feed; otherwise the rows that came through
-- what went are resettled (a feed keeps the activity while another holder brings it)
local function remove_one(feed_id, id)
  local gone, was_home = {}, false
  for _, r in ipairs(db.rows("SELECT DISTINCT feed_id, feed_id = home FROM direct WHERE activity_id = ?"
    .. " AND (home = ? OR feed_id = ?)", id, feed_id, feed_id)) do
    if r[1] == feed_id then
      was_home = was_home or r[2] == 1
    else
      gone[#gone + 1] = r[1]
    end
  end
  db.exec("DELETE FROM direct WHERE activity_id = ? AND (home = ? OR feed_id = ?)", id, feed_id, feed_id)
  db.exec("DELETE FROM feed_items WHERE feed_id = ? AND activity_id = ?", feed_id, id)
  local home = db.one("SELECT feed_id FROM direct WHERE activity_id = ? AND feed_id = home ORDER BY feed_id LIMIT 1",
    id)
  if was_home and not home then return purge(id) end
  gone[#gone + 1] = feed_id
  resettle_gone(id, gone, true)
  if home then
    db.exec("UPDATE activities SET feed_id = ? WHERE id = ? AND feed_id = ?", home[1], id, feed_id)
  end
end

-- remove(feed_id, activity_id)
function M.remove(feed_id, activity_id)
  return write(remove_one, feed_id, activity_id)
end

-- remove_all(activity_id): the activity from every feed it is in (a reaction's
-- target_feeds activity when the reaction goes)
function M.remove_all(activity_id)
  return write(purge, activity_id)
end

-- remove_foreign(feed_id, foreign_id): every activity of the feed with that foreign id
function M.remove_foreign(feed_id, foreign_id)
  return write(function()
    local rows = db.rows([[SELECT a.id FROM feed_items fi JOIN activities a ON a.id = fi.activity_id
      WHERE fi.feed_id = ? AND a.foreign_id = ?]], feed_id, foreign_id)
    for _, r in ipairs(rows) do remove_one(feed_id, r[1]) end
  end)
end

-- follows --------------------------------------------------------------------

local function slug(feed_id)
  return feed_id:match("^([^:]*)")
end

local function follow_tx(feed_id, target_id, copy_limit)
  local now = clock.realtime_us()
  local row = db.one("SELECT created_us FROM follows WHERE feed_id = ? AND target_id = ?", feed_id, target_id)
  if row then
    db.exec("UPDATE follows SET updated_us = ? WHERE feed_id = ? AND target_id = ?", now, feed_id, target_id)
  else
    local seq = db.one("SELECT coalesce(max(seq), 0) + 1 FROM follows")[1]
    db.exec([[INSERT INTO follows (feed_id, target_id, feed_slug, target_slug, created_us, updated_us, seq)
      VALUES (?, ?, ?, ?, ?, ?, ?)]], feed_id, target_id, slug(feed_id), slug(target_id), now, now, seq)
  end
  if copy_limit > 0 then
    db.exec([[INSERT OR IGNORE INTO feed_items (feed_id, activity_id, sk, time_us, origin, added_us)
      SELECT ?, activity_id, sk, time_us, ?, ? FROM feed_items WHERE feed_id = ? AND origin IS NULL
      ORDER BY time_us DESC, sk DESC LIMIT ?]], feed_id, target_id, now, target_id, copy_limit)
  end
end

function M.follow(feed_id, target_id, copy_limit)
  return write(follow_tx, feed_id, target_id, copy_limit)
end

-- unfollow: the copies that came from the target go, unless the feed still gets the
-- activity another way (it holds it directly, or follows another feed that does)
local function unfollow_tx(feed_id, target_id, keep_history)
  db.exec("DELETE FROM follows WHERE feed_id = ? AND target_id = ?", feed_id, target_id)
  if not keep_history then
    resettle("fi.feed_id = ? AND fi.origin = ?", false, feed_id, target_id)
  end
end

function M.unfollow(feed_id, target_id, keep_history)
  return write(unfollow_tx, feed_id, target_id, keep_history)
end

-- follow_many({ {source, target}, ... }, copy_limit) / unfollow_many({ {source, target,
-- keep_history}, ... }): every pair in one transaction
function M.follow_many(pairs, copy_limit)
  return write(function()
    for _, p in ipairs(pairs) do follow_tx(p[1], p[2], copy_limit) end
  end)
end

function M.unfollow_many(pairs)
  return write(function()
    for _, p in ipairs(pairs) do unfollow_tx(p[1], p[2], p[3]) end
  end)
end

local function in_list(column, list, args)
  local marks = {}
  for i, v in ipairs(list) do
    marks[i] = "?"
    args[#args + 1] = v
  end
  return " AND " .. column .. " IN (" .. concat(marks, ",") .. ")"
end

-- followers(feed_id, limit, offset) / following(feed_id, limit, offset, filter)
-- -> rows { feed_id, target_id, created_us, updated_us }, newest follow first
function M.followers(feed_id, limit, offset)
  return db.rows([[SELECT feed_id, target_id, created_us, updated_us FROM follows WHERE target_id = ?
    ORDER BY seq DESC LIMIT ? OFFSET ?]], feed_id, limit, offset)
end

function M.following(feed_id, limit, offset, filter)
  local args = { feed_id }
  local extra = ""
  if filter and filter[1] then extra = in_list("target_id", filter, args) end
  args[#args + 1] = limit
  args[#args + 1] = offset
  return db.rows("SELECT feed_id, target_id, created_us, updated_us FROM follows WHERE feed_id = ?" .. extra
    .. " ORDER BY seq DESC LIMIT ? OFFSET ?", unpack(args))
end

-- follow_count(side, feed_id, slugs): side "followers" counts follows of feed_id
-- (narrowed to follower slugs), "following" the follows feed_id makes (target slugs)
function M.follow_count(side, feed_id, slugs)
  local args = { feed_id }
  local sql
  if side == "followers" then
    sql = "SELECT count(*) FROM follows WHERE target_id = ?"
    if slugs then sql = sql .. in_list("feed_slug", slugs, args) end
  else
    sql = "SELECT count(*) FROM follows WHERE feed_id = ?"
    if slugs then sql = sql .. in_list("target_slug", slugs, args) end
  end
  return db.one(sql, unpack(args))[1]
end

return M
