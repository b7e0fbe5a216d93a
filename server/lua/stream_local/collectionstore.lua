-- stream_local.collectionstore: the collection entries in the `collections` table of the
-- SQLite database (stream_local.db), and their answer text. stream_local.collections (the
-- handlers) and stream_local.enrich (`SO:` references) both read it.
--
-- What it does:
--   * row(name, id) -> { user_id, created_us, updated_us, data } | nil
--   * entry_json(name, id, row) -> the entry as JSON text: id, collection, foreign_id,
--     data, created_at, updated_at (`user_id` is stored, never shown)
--   * entry(name, id) -> that text | nil, for enrichment and reads
--   * insert(name, id, owner, data) -> row; replace(name, id, old, data) -> row (data
--     replaced, updated_at at least 1 µs after the old one, so it always moves);
--     delete(name, id). These run inside the caller's transaction (db.write).
--
-- What it deliberately does not do: no validation, no ownership checks (the handlers'),
-- no transactions of its own.

local db = require "stream_local.db"
local json = require "stream_local.json"
local userstore = require "stream_local.userstore"

local M = {}

local GET = "SELECT user_id, created_us, updated_us, data FROM collections WHERE collection = ? AND id = ?"

function M.row(name, id)
  return db.one(GET, name, id)
end

function M.entry_json(name, id, row)
  return '{"id":' .. json.quote(id) .. ',"collection":' .. json.quote(name)
    .. ',"foreign_id":' .. json.quote(name .. ":" .. id) .. ',"data":' .. row[4]
    .. ',"created_at":"' .. userstore.timestamp(row[2]) .. '","updated_at":"' .. userstore.timestamp(row[3]) .. '"}'
end

function M.entry(name, id)
  local row = db.one(GET, name, id)
  return row and M.entry_json(name, id, row) or nil
end

local function later(old_us)
  local now = userstore.now_us()
  if old_us and now <= old_us then now = old_us + 1 end
  return now
end

function M.insert(name, id, owner, data)
  local now = userstore.now_us()
  db.exec("INSERT INTO collections (collection, id, user_id, created_us, updated_us, data)"
    .. " VALUES (?, ?, ?, ?, ?, ?)", name, id, owner, now, now, data)
  return { owner, now, now, data }
end

function M.replace(name, id, old, data)
  local now = later(old[3])
  db.exec("UPDATE collections SET updated_us = ?, data = ? WHERE collection = ? AND id = ?", now, data, name, id)
  return { old[1], old[2], now, data }
end

function M.delete(name, id)
  db.exec("DELETE FROM collections WHERE collection = ? AND id = ?", name, id)
end

return M
