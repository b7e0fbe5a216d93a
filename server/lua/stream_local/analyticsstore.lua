-- stream_local.analyticsstore: the analytics events received (stream-feeds-api.md section
-- 16), in the `analytics_events` table of the SQLite database (stream_local.db), so every
-- nginx worker sees every event whichever worker took it.
--
-- What it does:
--   * add(list): list of { kind, user_id | nil, event JSON text }, stored in one
--     BEGIN IMMEDIATE transaction, in order.
--   * list_json(kind | nil) -> the JSON text of GET /_local/analytics/:
--     {"results":[{"seq","kind","user_id","received_at","event"}...],"count"}, arrival
--     order; kind (engagement, impression or redirect) keeps that kind only.
--   * clear() -> the number of events removed.
--
-- What it deliberately does not do: no validation (stream_local.analytics'), no
-- aggregation, no expiry.

local db = require "stream_local.db"
local json = require "stream_local.json"
local userstore = require "stream_local.userstore"

local ipairs, concat, format = ipairs, table.concat, string.format

local M = {}

function M.add(list)
  local now = userstore.now_us()
  return db.write(function()
    for _, e in ipairs(list) do
      db.exec("INSERT INTO analytics_events (kind, user_id, received_us, event) VALUES (?, ?, ?, ?)",
        e[1], e[2], now, e[3])
    end
    return #list
  end)
end

local SELECT = "SELECT seq, kind, user_id, received_us, event FROM analytics_events"

function M.list_json(kind)
  local rows = kind and db.rows(SELECT .. " WHERE kind = ? ORDER BY seq", kind)
    or db.rows(SELECT .. " ORDER BY seq")
  local out = {}
  for i, r in ipairs(rows) do
    out[i] = format('{"seq":%d,"kind":%s,"user_id":%s,"received_at":"%s","event":%s}', r[1], json.quote(r[2]),
      r[3] and json.quote(r[3]) or "null", userstore.timestamp(r[4]), r[5])
  end
  return '{"results":[' .. concat(out, ",") .. format('],"count":%d}', #out)
end

function M.clear()
  return db.write(function() return db.exec("DELETE FROM analytics_events") end)
end

return M
