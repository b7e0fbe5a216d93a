-- stream.moderation: `client.moderation:flag` and `client:flag_user`, a
-- user reporting a user, an activity or a reaction (`POST moderation/flag/`
-- on the API).
--
-- Server-side only: the client's token (resource, action and feed_id "*")
-- covers the call; a token client raises, since the service refuses every
-- flag it sends. Checks, nothing sent when they fail (`invalid`): the
-- entity type is one of ENTITY_TYPES; a user's id follows the user id
-- rule, an activity's or a reaction's the activity id rule; the reporting
-- `user_id` (an id or a user handle) the user id rule; `custom` a JSON
-- object of at most 10240 bytes. Wrong types and a missing entity or
-- reporter raise. Retry safety: a flag is sent again only when nothing
-- reached the server.

local errors = require "stream.errors"
local check = require "stream.check"
local rules = require "stream.rules"
local request = require "stream.request"

local moderation = {}

local PATH = "moderation/flag/"
local USER = "stream:user"
local ENTITY_TYPES = {
  [USER] = "user",
  ["stream:feeds:v2:activity"] = "activity",
  ["stream:feeds:v2:reaction"] = "reaction",
}
local FLAG_KEYS = { entity_type = true, entity_id = true, user_id = true, reason = true, custom = true }
local FLAG_USER_KEYS = { user_id = true, reason = true, custom = true }

local Moderation = {}
Moderation.__index = Moderation
Moderation.__name = "stream.moderation"

function Moderation.__tostring()
  return "stream.moderation"
end

function moderation.new(client)
  return setmetatable({ client = client }, Moderation)
end

-- The entity's id as text, or nil, err; a missing or mistyped id raises.
local function entity_id(kind, id, fname, info, lv)
  if kind == "user" then id = rules.user_of(id) or id end
  id = check.id_arg(id, fname, lv + 1, "entity_id")
  if kind == "user" then return id, check.id(id, "entity_id", info) end
  return id, rules.activity_id(id, "entity_id", info)
end

-- The body of a flag (JSON text, members in a fixed order), or nil, err. Raises for misuse at level `lv`, as
-- check.raise counts it here (the caller of the public method).
local function flag_body(client, f, fname, lv)
  if client.auth_mode ~= "server" then
    check.raise(fname .. " needs the API secret (moderation is server-side only); this client holds a "
      .. client.auth_mode:gsub("_", " "), lv)
  end
  local info = { method = "POST", path = PATH }
  if type(f.entity_type) ~= "string" then
    check.raise(fname .. ": entity_type must be a string, got " .. type(f.entity_type), lv)
  end
  local kind = ENTITY_TYPES[f.entity_type]
  if not kind then
    return nil, errors.invalid("entity_type " .. check.shown(f.entity_type)
      .. " must be stream:user, stream:feeds:v2:activity or stream:feeds:v2:reaction", "entity_type", info)
  end
  local id, err = entity_id(kind, f.entity_id, fname, info, lv)
  if err then return nil, err end
  if f.user_id == nil then check.raise(fname .. ": user_id (the reporting user) is required", lv) end
  local reporter
  reporter, err = rules.user_option(f.user_id, "user_id", fname, info, lv)
  if err then return nil, err end
  if f.reason ~= nil and type(f.reason) ~= "string" then
    check.raise(fname .. ": reason must be a string, got " .. type(f.reason), lv)
  end
  local custom
  if f.custom ~= nil then
    check.data_arg(f.custom, fname, lv, "custom")
    custom, err = rules.object(client.pipeline, f.custom, "custom", info, 0, "custom")
    if not custom then return nil, err end
  end
  local pipe, reason = client.pipeline, nil
  if f.reason then
    local msg
    reason, msg = pipe:encode(f.reason, "reason")
    if not reason then return nil, errors.invalid(msg, "reason", info) end
  end
  return request.object("user_id", pipe:encode(reporter), "entity_type", pipe:encode(f.entity_type),
    "entity_id", pipe:encode(id), "reason", reason, "custom", custom)
end

local function send(client, f, fname, lv)
  local body, err = flag_body(client, f, fname, lv + 1)
  if not body then return nil, err end
  return client.pipeline:send({ method = "POST", path = PATH, body = body, idempotent = false })
end

-- moderation:flag({entity_type =, entity_id =, user_id =, reason =, custom =})
-- -> the flag (flag_id, entity_type, entity_id, user_id, reason, created_at, duration)
function Moderation:flag(f)
  local fname = "moderation:flag"
  check.self(self, Moderation, fname)
  if type(f) ~= "table" then
    check.raise(fname .. ": expected a table, got " .. type(f), 2)
  end
  f = check.opts(f, FLAG_KEYS, fname, 2)
  local res, err = send(self.client, f, fname, 3)
  return res, err
end

-- client:flag_user(target, {user_id =, reason =, custom =}): target is a
-- user id or a user handle.
function moderation.flag_user(client, target, opts)
  local fname = "client:flag_user"
  if type(opts) ~= "table" then
    check.raise(fname .. ": options with user_id (the reporting user) are required, got "
      .. type(opts), 3)
  end
  local f = check.opts(opts, FLAG_USER_KEYS, fname, 3)
  f.entity_type, f.entity_id = USER, target
  local res, err = send(client, f, fname, 4)
  return res, err
end

return moderation
