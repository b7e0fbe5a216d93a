-- stream_local.userstore: the user records, in the SQLite database (stream_local.db) that
-- also holds feeds and follows, so every nginx worker sees the same users and
-- enrichment and follow counts read one consistent store.
--
-- What it does:
--   * One `users` row per user: id, created_us, updated_us (µs since the epoch, from the
--     real-time clock) and data (compact JSON text). A record is the table
--     { created = µs, updated = µs, data = json_text }.
--   * add() is INSERT OR IGNORE inside one transaction, so of two concurrent creates of
--     one id exactly one wins, whichever worker runs it; update/upsert/delete are one
--     transaction each, so an update cannot resurrect a user deleted meanwhile or mix
--     two records.
--   * Timestamps: microseconds of the wall clock; an update's updated_at is at least
--     1 µs after the previous one, so it always moves.
--   * A full database raises { storage_full = true } (stream_local.db) and writes nothing.
--
-- What it deliberately does not do: no multi-user transactions (a batch is atomic per
-- user only), no cascade on delete (activities keep their `SU:` references, which
-- enrichment then reports as missing).

local db = require "stream_local.db"
local clock = require "stream_local.clock"
local json = require "stream_local.json"

local floor = math.floor
local format = string.format

local M = {}

function M.now_us()
  return clock.realtime_us()
end

-- timestamp(µs) -> "2026-11-26T17:02:16.131234Z"
function M.timestamp(us)
  local sec = floor(us / 1000000)
  return os.date("!%Y-%m-%dT%H:%M:%S", sec) .. format(".%06dZ", us - sec * 1000000)
end

local function record(row)
  if not row then return nil end
  return { created = row[1], updated = row[2], data = row[3] }
end

-- user_json(id, record [, extra]) -> the user object as JSON text
-- extra: a JSON fragment (`"k":v,...`) appended after data.
function M.user_json(id, rec, extra)
  return '{"id":' .. json.quote(id)
    .. ',"created_at":"' .. M.timestamp(rec.created)
    .. '","updated_at":"' .. M.timestamp(rec.updated)
    .. '","data":' .. rec.data
    .. (extra and ("," .. extra) or "") .. "}"
end

local GET = "SELECT created_us, updated_us, data FROM users WHERE id = ?"

-- get(id) -> record | nil
function M.get(id)
  return record(db.one(GET, id))
end

local function add_tx(id, data_json)
  local existing = db.one(GET, id)
  if existing then return record(existing), false end
  local now = M.now_us()
  db.exec("INSERT INTO users (id, created_us, updated_us, data) VALUES (?, ?, ?, ?)", id, now, now, data_json)
  return { created = now, updated = now, data = data_json }, true
end

-- add(id, data_json) -> record, true (created) | existing_record, false
function M.add(id, data_json)
  return db.write(add_tx, id, data_json)
end

local function replace_tx(id, data_json, create)
  local old = db.one(GET, id)
  if not old then
    if not create then return nil end
    return (add_tx(id, data_json))
  end
  local now = M.now_us()
  if now <= old[2] then now = old[2] + 1 end
  db.exec("UPDATE users SET updated_us = ?, data = ? WHERE id = ?", now, data_json, id)
  return { created = old[1], updated = now, data = data_json }
end

-- update(id, data_json) -> new record | nil (unknown id)
function M.update(id, data_json)
  return db.write(replace_tx, id, data_json, false)
end

-- upsert(id, data_json) -> record (created or replaced; created_at kept)
function M.upsert(id, data_json)
  return db.write(replace_tx, id, data_json, true)
end

-- delete(id) -> true | false (unknown id)
function M.delete(id)
  return db.write(function() return db.exec("DELETE FROM users WHERE id = ?", id) > 0 end)
end

-- follow_counts(id) -> followers, following (the timeline -> user rule)
function M.follow_counts(id)
  local followers = db.one("SELECT count(*) FROM follows WHERE target_id = ? AND feed_slug = 'timeline'",
    "user:" .. id)[1]
  local following = db.one("SELECT count(*) FROM follows WHERE feed_id = ? AND target_slug = 'user'",
    "timeline:" .. id)[1]
  return followers, following
end

return M
