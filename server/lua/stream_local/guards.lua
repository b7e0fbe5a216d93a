-- stream_local.guards: the checks more than one area runs, written once.
--
-- What it does:
--   * server_only(detail) -> a route guard: answers 403 `detail` unless the token is a
--     server token (the batch endpoints of users, feeds and collections).
--   * feed_path(ctx) -> a route guard for feed/{slug}/{user}/... paths: the slug's form,
--     its feed group being configured (400 code 6) and the user id; sets ctx.slug,
--     ctx.uid and ctx.feed_id ("slug:id") for the handler.
--   * run(list, ctx) -> true | false after one of the route's guards answered; stream_local.app
--     runs a route's guards once, after authentication and before its handler.
--   * path_feed, any_feed, named_feeds: the feed_id rules a route names (the feed id a
--     token's `feed_id` claim must cover, as a function of the path's params).
--   * not_configured(slug): the answer for a feed group this app does not have.
--   * data_json(node, field, errors, rule) -> the compact JSON of a `data` object, the
--     one rule users, reactions and collections share, with its differences as data.
--   * RESERVED, reserved_message(k): the activity fields a client may not set.
--
-- What it deliberately does not do: no handler logic, no database access.

local json = require "stream_local.json"
local reply = require "stream_local.reply"
local config = require "stream_local.config"
local ids = require "stream_local.ids"

local ipairs, format = ipairs, string.format

local M = {}

-- feed_id rules ------------------------------------------------------------------

-- the feed of feed/{slug}/{user}/... as JWT claims name it: "useralice"
function M.path_feed(params)
  return params.slug .. params.user
end

-- routes outside one feed whose tokens must carry feed_id "*" (or none): a token scoped
-- to one feed covers that feed's paths only (stream-feeds-api.md section 2)
function M.any_feed()
  return "*"
end

-- routes whose handler checks the feeds the body or query names against a scoped token
-- (batch calls, activity updates, activities by id): no one feed to pin here
function M.named_feeds()
  return nil
end

-- route guards -------------------------------------------------------------------

function M.server_only(detail)
  return function(ctx)
    if ctx.principal.server then return true end
    reply.error(403, detail)
    return false
  end
end

function M.not_configured(slug)
  return reply.error(400, "The following feeds are not configured: '" .. slug .. "'. This could be the cause "
    .. "of a typo, but otherwise you should configure them on the dashboard of this app.", nil, 6,
    "FeedConfigException")
end

function M.feed_path(ctx)
  local slug, uid = ctx.params.slug, ctx.params.user
  if not slug:find("^[A-Za-z0-9_]+$") then
    reply.invalid({ { "feed_slug", "invalid feed slug " .. json.quote(slug) .. ": use A-Z, a-z, 0-9 and _" } })
    return false
  end
  if not config.feed_groups[slug] then
    M.not_configured(slug)
    return false
  end
  if not ids.valid_user_id(uid) then
    reply.invalid({ { "user_id", "invalid feed user id " .. json.quote(uid) .. ": " .. ids.USER_ID_RULE } })
    return false
  end
  ctx.slug, ctx.uid, ctx.feed_id = slug, uid, slug .. ":" .. uid
  return true
end

function M.run(list, ctx)
  if not list then return true end
  for _, guard in ipairs(list) do
    if not guard(ctx) then return false end
  end
  return true
end

-- data objects -------------------------------------------------------------------

local function kind_words(kind)
  return kind == "array" and "an array" or ("a " .. kind)
end

-- data_json(node, field, errors, rule) -> compact JSON text | nil (after adding
-- { field, message } to errors). rule (all optional): non_empty (absent, null and {}
-- are refused; else absent and null read as "{}"), name_kind (the message names the
-- wrong type), max_bytes (a limit on the compact text).
function M.data_json(node, field, errors, rule)
  local kind = json.kind(node)
  if (node == nil or kind == "null") and not rule.non_empty then return "{}" end
  if kind ~= "object" or (rule.non_empty and not node.keys[1]) then
    local msg = rule.non_empty and "data must be a non-empty JSON object" or "data must be a JSON object"
    if rule.name_kind then msg = msg .. ", not " .. kind_words(kind) end
    errors[#errors + 1] = { field, msg }
    return nil
  end
  local text = json.encode(node)
  if rule.max_bytes and #text > rule.max_bytes then
    errors[#errors + 1] = { field, format("data is %d bytes, the limit is %d bytes", #text, rule.max_bytes) }
    return nil
  end
  return text
end

-- activity fields ----------------------------------------------------------------

-- the fields no activity may carry. "named": the server sets them on an add (id, origin),
-- and an update names its activity by them, so updates refuse them with their own
-- message; "reserved": refused everywhere with reserved_message.
M.RESERVED = { id = "named", origin = "named", activity_id = "reserved", activity = "reserved",
  analytics = "reserved", extra_context = "reserved", is_read = "reserved", is_seen = "reserved",
  score = "reserved", site_id = "reserved" }

function M.reserved_message(k)
  return k .. " is a reserved field and cannot be set"
end

return M
