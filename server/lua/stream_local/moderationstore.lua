-- stream_local.moderationstore: the moderation flags (stream-feeds-api.md section 17) in
-- the `moderation_flags` table of the SQLite database (stream_local.db), and the lookup
-- of the entity a flag names in the stores that hold it.
--
-- What it does:
--   * exists(entity_type, entity_id): a user (stream_local.userstore), an activity
--     (stream_local.feedstore) or a reaction (stream_local.reactionstore) by id.
--   * add(flag) -> the stored row's JSON text (flag_id, entity_type, entity_id,
--     user_id, reason, custom when given, created_at), in one transaction; a repeat of
--     the same reporter and entity is a new flag, never an error.
--
-- What it deliberately does not do: no validation (stream_local.moderation's), no
-- automated moderation, no review states.

local db = require "stream_local.db"
local json = require "stream_local.json"
local userstore = require "stream_local.userstore"
local feedstore = require "stream_local.feedstore"
local reactionstore = require "stream_local.reactionstore"
local reactions_new_id = reactionstore.new_id

local M = {}

local LOOKUP = {
  ["stream:user"] = function(id) return userstore.get(id) end,
  ["stream:feeds:v2:activity"] = function(id) return feedstore.get(id:lower()) end,
  ["stream:feeds:v2:reaction"] = function(id) return reactionstore.get(id) end,
}
M.TYPES = LOOKUP

function M.exists(entity_type, entity_id)
  return db.read(LOOKUP[entity_type], entity_id) ~= nil
end

-- add{ user_id, entity_type, entity_id, reason (text | nil), custom (JSON text | nil) }
function M.add(f)
  local id, now = reactions_new_id(), userstore.now_us()
  db.write(function()
    db.exec("INSERT INTO moderation_flags (flag_id, user_id, entity_type, entity_id, reason, custom, created_us)"
      .. " VALUES (?, ?, ?, ?, ?, ?, ?)", id, f.user_id, f.entity_type, f.entity_id, f.reason, f.custom, now)
  end)
  return '{"flag_id":' .. json.quote(id) .. ',"entity_type":' .. json.quote(f.entity_type)
    .. ',"entity_id":' .. json.quote(f.entity_id) .. ',"user_id":' .. json.quote(f.user_id)
    .. ',"reason":' .. (f.reason and json.quote(f.reason) or "null")
    .. (f.custom and (',"custom":' .. f.custom) or "") .. ',"created_at":"' .. userstore.timestamp(now) .. '"}'
end

return M
