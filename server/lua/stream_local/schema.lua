-- stream_local.schema: the SQLite schema of the local server, as one script.
--
-- Tables and what they hold:
--   users        one row per user: id, created/updated (µs since the epoch), data (JSON text)
--   activities   one row per activity, wherever it was delivered: the id, its sort key
--                `sk`, one feed it was added to (`feed_id`, "user:alice"; "" for none:
--                the table `direct` names every one), foreign_id
--                ("" when none), time (µs), a digest of its fields (activities without a
--                foreign id, to store an identical add once) and `body`: the compact JSON
--                object in output key order, without `origin`; `head` is the byte length
--                of its part up to the `object` value, where `origin` is spliced in.
--   feed_items   which activity is in which feed: (feed_id, activity_id) unique, the
--                activity's `time_us` and `sk` copied for the ordered reads (its place:
--                time to the microsecond, then id), and `origin` (NULL in the
--                feed it was added to and in `to` targets, the source feed id in copies
--                made by following), `added_us` (when the activity arrived in that
--                feed: the times of aggregated and notification groups), and in
--                aggregated and notification feeds `grp` (the row's group key under the
--                feed group's format) and `actor` (its activity's actor, "" for none).
--   direct       where each activity sits directly (origin NULL), and why: (activity_id,
--                feed_id, home): `home` is a feed it was added to (feed_id = home for that
--                feed's own row, a `to` target of that add otherwise). Every feed an
--                activity was added to is a home of its own: removing it from one home
--                takes only what that home brought, and a feed keeps a row while a
--                direct holder it follows (or being one itself) still justifies it.
--                Created by an upgrade below, so a kept file gets it filled.
--   follows      (feed_id follows target_id), slugs split out for the stats filters,
--                created/updated µs, and `seq` to order follows made in one microsecond.
--   reactions    one row per reaction (stream_local.reactionstore): id, `seq` (creation
--                order, the order of every reaction list and cursor), activity_id,
--                parent ("" for top-level), depth (1..3), user_id, kind, created/updated
--                µs, deleted µs (NULL unless soft-deleted), data (JSON text),
--                target_feeds and target_feeds_extra_data (JSON text or NULL).
--   reaction_kinds  every kind an activity ('a:<id>') or a reaction ('r:<id>') has had
--                a reaction of, so reaction_counts and children_counts keep it at 0.
--   collections  one row per collection entry, keyed (collection, id): the owner
--                `user_id` (NULL when none), created/updated µs and data (JSON text).
--   group_marks  read and seen marks of notification feeds, keyed (feed_id, group):
--                a group is read (seen) while its mark is at least the arrival time of
--                its newest arrival (NULL: never marked); group "" is the feed-wide
--                mark of mark_read=true / mark_seen=true.
--   feed_groups  one row per group of an aggregated or notification feed, kept at write
--                time (stream_local.groupstore): (feed_id, grp), the newest activity (by
--                place) and its sort key, its verb, activity and distinct actor counts,
--                first and last arrival (µs); read newest update first.
--   grouped_feeds  the format (with stream_local.groupstore's VERSION) a feed's `grp`
--                keys and groups were made under; a feed without it, or with another,
--                is regrouped whole before it is read or written.
--   analytics_events  every analytics event received (stream_local.analyticsstore), in
--                arrival order (`seq`): its kind (engagement, impression, redirect), the
--                user it names (NULL for none), when it arrived (µs) and the event as
--                compact JSON text, so every worker sees every event.
--   moderation_flags  one row per flag (stream_local.moderationstore): a random UUID, the
--                reporting user, entity type and id, reason and custom (JSON text or
--                NULL) and created µs.
--   files        one row per uploaded file or image (stream_local.filestore): a random
--                UUID (also the name of its bytes on disk), the owner (the token's user,
--                NULL for server tokens), the file name, content type, size in bytes and
--                whether it is an image (uploaded through images/ or made from one).
--   group_pending, group_dirty  filled by the triggers below inside a write, emptied
--                by stream_local.groupstore.settle before it commits: rows to key again
--                (arrived, moved, their activity rewritten) and groups that lost a row.
--
-- Sort key: `sk` is 15 hex digits of the 60-bit time inside the activity id, then its
-- remaining 8 bytes in hex, so text order is (time, rest) order; ids themselves are
-- never compared as strings (their low time bits come first). Ids carry milliseconds
-- only, so feeds order by (time_us, sk): activities added within one millisecond read
-- back in time order.
--
-- Aggregated and notification feeds are feed_items rows like flat feeds; their groups
-- are kept beside them at write time (feed_groups), so a read costs its page. Triggers
-- note every change of a feed's rows or of an activity's body or time, whichever write
-- makes it (adds, fan-out, follows, removals, resettles, updates, target updates), and
-- stream_local.groupstore settles them in the same transaction.

local M = {}

M.VERSION = 1

M.SQL = [[
CREATE TABLE IF NOT EXISTS users (
  id TEXT PRIMARY KEY,
  created_us INTEGER NOT NULL,
  updated_us INTEGER NOT NULL,
  data TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS activities (
  id TEXT PRIMARY KEY,
  sk TEXT NOT NULL,
  feed_id TEXT NOT NULL,
  foreign_id TEXT NOT NULL,
  time_us INTEGER NOT NULL,
  digest TEXT,
  head INTEGER NOT NULL,
  body TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS activities_by_foreign_id ON activities (foreign_id, feed_id)
  WHERE foreign_id <> '';
CREATE INDEX IF NOT EXISTS activities_by_digest ON activities (digest) WHERE digest IS NOT NULL;
CREATE TABLE IF NOT EXISTS feed_items (
  feed_id TEXT NOT NULL,
  activity_id TEXT NOT NULL,
  sk TEXT NOT NULL,
  origin TEXT,
  added_us INTEGER NOT NULL DEFAULT 0,
  time_us INTEGER NOT NULL DEFAULT 0,
  grp TEXT,
  actor TEXT,
  PRIMARY KEY (feed_id, activity_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS feed_items_by_activity ON feed_items (activity_id);
CREATE TABLE IF NOT EXISTS follows (
  feed_id TEXT NOT NULL,
  target_id TEXT NOT NULL,
  feed_slug TEXT NOT NULL,
  target_slug TEXT NOT NULL,
  created_us INTEGER NOT NULL,
  updated_us INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  PRIMARY KEY (feed_id, target_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS follows_by_target ON follows (target_id, seq);
CREATE INDEX IF NOT EXISTS follows_by_feed ON follows (feed_id, seq);
CREATE INDEX IF NOT EXISTS follows_by_seq ON follows (seq);
CREATE TABLE IF NOT EXISTS reactions (
  id TEXT PRIMARY KEY,
  seq INTEGER NOT NULL UNIQUE,
  activity_id TEXT NOT NULL,
  parent TEXT NOT NULL,
  depth INTEGER NOT NULL,
  user_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  created_us INTEGER NOT NULL,
  updated_us INTEGER NOT NULL,
  deleted_us INTEGER,
  data TEXT NOT NULL,
  target_feeds TEXT,
  extra TEXT
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS reactions_by_activity ON reactions (activity_id, parent, kind, seq);
CREATE INDEX IF NOT EXISTS reactions_by_parent ON reactions (parent, kind, seq);
CREATE INDEX IF NOT EXISTS reactions_by_user ON reactions (user_id, kind, seq);
CREATE TABLE IF NOT EXISTS reaction_kinds (
  owner TEXT NOT NULL,
  kind TEXT NOT NULL,
  seq INTEGER NOT NULL,
  PRIMARY KEY (owner, kind)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS collections (
  collection TEXT NOT NULL,
  id TEXT NOT NULL,
  user_id TEXT,
  created_us INTEGER NOT NULL,
  updated_us INTEGER NOT NULL,
  data TEXT NOT NULL,
  PRIMARY KEY (collection, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS group_marks (
  feed_id TEXT NOT NULL,
  grp TEXT NOT NULL,
  read_us INTEGER,
  seen_us INTEGER,
  PRIMARY KEY (feed_id, grp)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS feed_groups (
  feed_id TEXT NOT NULL,
  grp TEXT NOT NULL,
  newest_id TEXT NOT NULL,
  newest_sk TEXT NOT NULL,
  verb TEXT NOT NULL,
  activity_count INTEGER NOT NULL,
  actor_count INTEGER NOT NULL,
  created_us INTEGER NOT NULL,
  updated_us INTEGER NOT NULL,
  PRIMARY KEY (feed_id, grp)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS feed_groups_by_place ON feed_groups (feed_id, updated_us, newest_sk, grp);
CREATE TABLE IF NOT EXISTS grouped_feeds (feed_id TEXT PRIMARY KEY, state TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS group_pending (
  feed_id TEXT NOT NULL,
  activity_id TEXT NOT NULL,
  PRIMARY KEY (feed_id, activity_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS group_dirty (
  feed_id TEXT NOT NULL,
  grp TEXT NOT NULL,
  PRIMARY KEY (feed_id, grp)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS analytics_events (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  kind TEXT NOT NULL,
  user_id TEXT,
  received_us INTEGER NOT NULL,
  event TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS moderation_flags (
  flag_id TEXT PRIMARY KEY,
  user_id TEXT NOT NULL,
  entity_type TEXT NOT NULL,
  entity_id TEXT NOT NULL,
  reason TEXT,
  custom TEXT,
  created_us INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS files (
  id TEXT PRIMARY KEY,
  owner TEXT,
  name TEXT NOT NULL,
  content_type TEXT NOT NULL,
  size INTEGER NOT NULL,
  image INTEGER NOT NULL,
  created_us INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', '1');
]]

-- Columns added since a database file could first be kept (STREAM_LOCAL_DB): each
-- `probe` fails on an older file, which then gets `apply`.
M.UPGRADES = {
  { probe = "SELECT added_us FROM feed_items LIMIT 0",
    apply = "ALTER TABLE feed_items ADD COLUMN added_us INTEGER NOT NULL DEFAULT 0;" },
  { probe = "SELECT time_us FROM feed_items LIMIT 0",
    apply = [[ALTER TABLE feed_items ADD COLUMN time_us INTEGER NOT NULL DEFAULT 0;
UPDATE feed_items SET time_us = coalesce((SELECT a.time_us FROM activities a WHERE a.id = feed_items.activity_id), 0);
DROP INDEX IF EXISTS feed_items_by_time;]] },
  { probe = "SELECT home FROM direct LIMIT 0",
    apply = [[BEGIN IMMEDIATE;
CREATE TABLE direct (
  activity_id TEXT NOT NULL,
  feed_id TEXT NOT NULL,
  home TEXT NOT NULL,
  PRIMARY KEY (activity_id, feed_id, home)
) WITHOUT ROWID;
INSERT OR IGNORE INTO direct (activity_id, feed_id, home)
  SELECT fi.activity_id, fi.feed_id, a.feed_id FROM feed_items fi JOIN activities a ON a.id = fi.activity_id
  WHERE fi.origin IS NULL AND a.feed_id <> '';
COMMIT;]] },
  { probe = "SELECT grp, actor FROM feed_items LIMIT 0",
    apply = [[ALTER TABLE feed_items ADD COLUMN grp TEXT;
ALTER TABLE feed_items ADD COLUMN actor TEXT;]] },
}

-- Indexes and triggers over columns an upgrade may have added: created after the
-- upgrades ran. The triggers record what stream_local.groupstore.settle regroups, for
-- the feeds of grouped (aggregated and notification) feed groups only: a flat feed's
-- writes pay one lookup in grouped_slugs and no group index (their rows have no grp).
-- M.grouped_slugs_sql refills grouped_slugs from the configuration at every start, and
-- the triggers are made anew each time.
M.INDEXES = [[
CREATE INDEX IF NOT EXISTS feed_items_by_place ON feed_items (feed_id, time_us, sk);
DROP INDEX IF EXISTS feed_items_by_group;
CREATE INDEX IF NOT EXISTS feed_items_in_group ON feed_items (feed_id, grp, time_us, sk, added_us, actor)
  WHERE grp IS NOT NULL;
CREATE TABLE IF NOT EXISTS grouped_slugs (slug TEXT PRIMARY KEY) WITHOUT ROWID;
DROP TRIGGER IF EXISTS feed_items_arrive;
DROP TRIGGER IF EXISTS feed_items_move;
DROP TRIGGER IF EXISTS feed_items_leave;
DROP TRIGGER IF EXISTS activities_stored;
DROP TRIGGER IF EXISTS activities_changed;
CREATE TRIGGER feed_items_arrive AFTER INSERT ON feed_items
WHEN substr(new.feed_id, 1, instr(new.feed_id, ':') - 1) IN (SELECT slug FROM grouped_slugs) BEGIN
  INSERT OR IGNORE INTO group_pending (feed_id, activity_id) VALUES (new.feed_id, new.activity_id);
END;
CREATE TRIGGER feed_items_move AFTER UPDATE OF time_us, sk, added_us ON feed_items
WHEN substr(new.feed_id, 1, instr(new.feed_id, ':') - 1) IN (SELECT slug FROM grouped_slugs) BEGIN
  INSERT OR IGNORE INTO group_pending (feed_id, activity_id) VALUES (new.feed_id, new.activity_id);
END;
CREATE TRIGGER feed_items_leave AFTER DELETE ON feed_items WHEN old.grp IS NOT NULL BEGIN
  INSERT OR IGNORE INTO group_dirty (feed_id, grp) VALUES (old.feed_id, old.grp);
END;
CREATE TRIGGER activities_stored AFTER INSERT ON activities BEGIN
  INSERT OR IGNORE INTO group_pending (feed_id, activity_id)
    SELECT feed_id, activity_id FROM feed_items
    WHERE activity_id = new.id AND substr(feed_id, 1, instr(feed_id, ':') - 1) IN (SELECT slug FROM grouped_slugs);
END;
CREATE TRIGGER activities_changed AFTER UPDATE OF head, body, time_us ON activities BEGIN
  INSERT OR IGNORE INTO group_pending (feed_id, activity_id)
    SELECT feed_id, activity_id FROM feed_items
    WHERE activity_id = new.id AND substr(feed_id, 1, instr(feed_id, ':') - 1) IN (SELECT slug FROM grouped_slugs);
END;
]]

-- grouped_slugs_sql(feed_groups) -> the SQL that makes grouped_slugs hold exactly the
-- feed groups (name -> type, stream_local.config) whose type is aggregated or
-- notification
function M.grouped_slugs_sql(feed_groups)
  local names = {}
  for name, kind in pairs(feed_groups) do
    if kind == "aggregated" or kind == "notification" then
      names[#names + 1] = "('" .. name:gsub("'", "''") .. "')"
    end
  end
  table.sort(names)
  local sql = "DELETE FROM grouped_slugs;"
  if names[1] then sql = sql .. "INSERT INTO grouped_slugs (slug) VALUES " .. table.concat(names, ",") .. ";" end
  return sql
end

return M
