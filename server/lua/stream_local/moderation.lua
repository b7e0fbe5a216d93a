-- stream_local.moderation: flagging users, activities and reactions for review
-- (stream-feeds-api.md section 17).
--
-- What it does:
--   POST /api/v1.0/moderation/flag/ (also without the final slash: clients call it so)
--     {"user_id", "entity_type", "entity_id", "reason"?, "custom"?} -> 201 with the
--     flag: flag_id (UUID), entity_type, entity_id, user_id, reason, custom (when
--     given), created_at, duration. `user_id` is the reporting user; entity_type is
--     stream:user, stream:feeds:v2:activity or stream:feeds:v2:reaction, whose entity
--     must exist in its store (404 code 16 otherwise). A missing, empty or mistyped
--     field, or another type, is 400 code 4 naming it; `reason` is a string or null,
--     `custom` an object or null. Server tokens only (resource `moderation` or `*`,
--     feed_id `*`); user tokens are 403 code 17. Flagging the same entity again adds
--     another flag.
--
-- What it deliberately does not do: no automated moderation (moderation_template is
-- ignored), no review queue, no unflagging.

local json = require "stream_local.json"
local reply = require "stream_local.reply"
local request = require "stream_local.request"
local guards = require "stream_local.guards"
local moderationstore = require "stream_local.moderationstore"

local ipairs = ipairs

local M = {}

local kind = json.kind
local TYPES = moderationstore.TYPES

local REQUIRED = { "user_id", "entity_type", "entity_id" }

-- fields(body) -> the flag's fields | nil, errors
local function fields(body)
  local errors, f = {}, {}
  for _, name in ipairs(REQUIRED) do
    local v = body:get(name)
    if kind(v) ~= "string" or v == "" then
      errors[#errors + 1] = { name, "is required and must be a non-empty string" }
    end
    f[name] = v
  end
  if kind(f.entity_type) == "string" and f.entity_type ~= "" and not TYPES[f.entity_type] then
    errors[#errors + 1] = { "entity_type",
      "must be stream:user, stream:feeds:v2:activity or stream:feeds:v2:reaction" }
  end
  local reason, custom = body:get("reason"), body:get("custom")
  if reason ~= nil and reason ~= json.null and kind(reason) ~= "string" then
    errors[#errors + 1] = { "reason", "must be a string" }
  end
  if custom ~= nil and custom ~= json.null and kind(custom) ~= "object" then
    errors[#errors + 1] = { "custom", "must be a JSON object" }
  end
  if errors[1] then return nil, errors end
  f.reason = kind(reason) == "string" and reason or nil
  f.custom = kind(custom) == "object" and json.encode(custom) or nil
  return f
end

function M.flag()
  local body, detail = request.json_object()
  if not body then return reply.invalid({ { "body", detail } }) end
  local f, errors = fields(body)
  if not f then return reply.invalid(errors) end
  if not moderationstore.exists(f.entity_type, f.entity_id) then
    return reply.error(404, f.entity_type .. " " .. f.entity_id .. " does not exist")
  end
  return reply.send(201, moderationstore.add(f))
end

-- routes (assembled by stream_local.app) ------------------------------------------

M.ROUTES = {
  { pattern = [[^/api/v1\.0/moderation/flag/?$]], resource = "moderation", feed_id = guards.any_feed,
    guards = { guards.server_only("moderation needs a server token") }, methods = { POST = M.flag } },
}

return M
