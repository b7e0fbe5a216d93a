-- stream_local.analytics: the analytics endpoints (stream-feeds-api.md section 16).
--
-- What it does:
--   POST /analytics/v1.0/engagement/   {"content_list":[engagement...]} (201 {"duration"})
--   POST /analytics/v1.0/impression/   one impression object or an array of them (201)
--   GET  /analytics/redirect/ and /analytics/v1.0/redirect/
--        ?api_key&url&events&authorization&auth_type=jwt: verifies the JWT of the
--        `authorization` value (resource `redirect_and_track` or `*`, action `*`; 403
--        otherwise), checks `url` (http or https with a host; 400 otherwise), stores the
--        `events` (a JSON array of objects; 400 otherwise) and answers 302 to `url`
--        with a JSON body {"location","duration"}.
--   GET|DELETE /_local/analytics/[?kind=]   a test aid: every event kept, in arrival
--        order (stream_local.analyticsstore.list_json), or all of them removed. It
--        needs the api_key only. Its answers and the 201s above name the worker that
--        answered (X-Stream-Local-Worker: its pid).
--   Every field is checked by the rule tables below: a missing or wrong one is 400 code
--   4 naming it (`content_list[0].label`). Tokens: server tokens with resource
--   `analytics` or `*` and feed_id `*`; user tokens track their own events only (an
--   event naming another user in `user_data` is 403 code 17, nothing kept). Events are
--   stored in SQLite, so every worker sees them.
--
-- What it deliberately does not do: no counting, no dashboards; events are readable
-- nowhere but /_local/analytics/.

local json = require "stream_local.json"
local reply = require "stream_local.reply"
local request = require "stream_local.request"
local auth = require "stream_local.auth"
local guards = require "stream_local.guards"
local analyticsstore = require "stream_local.analyticsstore"

-- luacheck: globals ngx
local ngx = ngx
local ipairs, format = ipairs, string.format

local M = {}

-- the most events one request may carry
M.MAX_EVENTS = 1000

-- value checks ---------------------------------------------------------------------

local kind = json.kind

local function text(v) return kind(v) == "string" and v ~= "" end
local function number(v) return kind(v) == "number" end
local function any_string(v) return kind(v) == "string" end

local function content(v)
  return text(v) or (kind(v) == "object" and text(v:get("foreign_id")))
end

local function user_data(v)
  if text(v) or number(v) then return true end
  if kind(v) ~= "object" then return false end
  local alias = v:get("alias")
  return (text(v:get("id")) or number(v:get("id"))) and (alias == nil or any_string(alias))
end

local function features(v)
  if kind(v) ~= "array" then return false end
  for i = 1, v.n do
    local f = v[i]
    if kind(f) ~= "object" or not any_string(f:get("group")) or not any_string(f:get("value")) then
      return false
    end
  end
  return true
end

local function tracked_at(v)
  return kind(v) == "string" and v:find("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d") ~= nil
end

local function content_list(v)
  if kind(v) ~= "array" or v.n == 0 or v.n > M.MAX_EVENTS then return false end
  for i = 1, v.n do
    if not content(v[i]) then return false end
  end
  return true
end

-- rule tables: { field, check, message, required }
local MSG = {
  text = "must be a non-empty string",
  content = "must be a foreign id string or an object with a non-empty foreign_id",
  user_data = 'must be a user id (string or number) or an object {"id", "alias"}',
  string = "must be a string",
  number = "must be a number",
  features = 'must be an array of {"group": string, "value": string}',
  tracked_at = "must be an RFC 3339 time such as 2026-12-06T10:00:00Z",
  content_list = "must be a non-empty array (at most 1000) of foreign id strings or objects with a foreign_id",
}
local COMMON = {
  { "user_data", user_data, MSG.user_data }, { "feed_id", any_string, MSG.string },
  { "location", any_string, MSG.string }, { "position", number, MSG.number },
  { "features", features, MSG.features }, { "tracked_at", tracked_at, MSG.tracked_at },
}
local ENGAGEMENT = { { "label", text, MSG.text, true }, { "content", content, MSG.content, true },
  { "boost", number, MSG.number }, { "score", number, MSG.number } }
local IMPRESSION = { { "content_list", content_list, MSG.content_list, true } }
for _, r in ipairs(COMMON) do
  ENGAGEMENT[#ENGAGEMENT + 1] = r
  IMPRESSION[#IMPRESSION + 1] = r
end

-- check(node, rules, prefix, errors): adds { "<prefix>field", message } for each
-- field the node gets wrong (null reads as absent)
local function check(node, rules, prefix, errors)
  if kind(node) ~= "object" then
    errors[#errors + 1] = { prefix == "" and "body" or prefix:sub(1, -2), "must be a JSON object" }
    return
  end
  for _, r in ipairs(rules) do
    local v = node:get(r[1])
    if v == nil or v == json.null then
      if r[4] then errors[#errors + 1] = { prefix .. r[1], "is required" } end
    elseif not r[2](v) then
      errors[#errors + 1] = { prefix .. r[1], r[3] }
    end
  end
end

-- user_of(event) -> the user id an event names (user_data, its id, or user_id) | nil
local function user_of(event)
  if kind(event) ~= "object" then return nil end
  local u = event:get("user_data")
  if kind(u) == "object" then u = u:get("id") end
  if u == nil or u == json.null then u = event:get("user_id") end
  if kind(u) == "number" then return u.text end
  return kind(u) == "string" and u or nil
end

-- keep(ctx, kind_name, list): store the events after the user-token rule; answers
local function keep(ctx, kind_name, list)
  local me = ctx.principal.user_id
  local rows = {}
  for i, e in ipairs(list) do
    local who = user_of(e)
    if me and who and who ~= me then
      return reply.error(403, "user " .. me .. " may track only its own events, not those of " .. who)
    end
    rows[i] = { kind_name, who or me, json.encode(e) }
  end
  analyticsstore.add(rows)
  ngx.header["X-Stream-Local-Worker"] = ngx.worker.pid()
  return reply.send(201, "{}")
end

-- handlers -------------------------------------------------------------------------

function M.engagement(ctx)
  local body, detail = request.json_object()
  if not body then return reply.invalid({ { "body", detail } }) end
  local list = body:get("content_list")
  if kind(list) ~= "array" or list.n == 0 or list.n > M.MAX_EVENTS then
    return reply.invalid({ { "content_list", "must be a non-empty array (at most 1000) of engagements" } })
  end
  local errors, events = {}, {}
  for i = 1, list.n do
    check(list[i], ENGAGEMENT, format("content_list[%d].", i - 1), errors)
    events[i] = list[i]
  end
  if errors[1] then return reply.invalid(errors) end
  return keep(ctx, "engagement", events)
end

function M.impression(ctx)
  local body, detail = request.json_body()
  if body == nil then return reply.invalid({ { "body", detail } }) end
  local events, errors = {}, {}
  if kind(body) == "array" then
    if body.n == 0 or body.n > M.MAX_EVENTS then
      return reply.invalid({ { "body", "must be an impression or a non-empty array (at most 1000) of them" } })
    end
    for i = 1, body.n do
      check(body[i], IMPRESSION, format("[%d].", i - 1), errors)
      events[i] = body[i]
    end
  else
    check(body, IMPRESSION, "", errors)
    events[1] = body
  end
  if errors[1] then return reply.invalid(errors) end
  return keep(ctx, "impression", events)
end

-- the redirect ---------------------------------------------------------------------

-- an absolute http(s) URL with a host, and nothing a header line could not carry
local function redirect_url(v)
  return v and v:find("^[Hh][Tt][Tt][Pp][Ss]?://[^/?#%s]+") and not v:find("[%c%s]") and v or nil
end

-- redirect_events(text) -> the list of events | nil, message
local function redirect_events(value)
  if value == nil or value == "" then return {} end
  local tree = json.parse(value)
  if kind(tree) ~= "array" or tree.n > M.MAX_EVENTS then
    return nil, "must be a JSON array (at most 1000) of impressions and engagements"
  end
  local list = {}
  for i = 1, tree.n do
    if kind(tree[i]) ~= "object" then return nil, format("item %d must be a JSON object", i - 1) end
    list[i] = tree[i]
  end
  return list
end

function M.redirect(ctx)
  local args = ctx.args
  local auth_type = request.arg(args, "auth_type") or request.arg(args, "stream-auth-type")
  if auth_type and auth_type:lower() ~= "jwt" then
    return reply.error(403, "unsupported auth_type (only jwt is supported)")
  end
  local claims, why = auth.query_token(request.arg(args, "authorization"), "redirect_and_track", "*")
  if not claims then return reply.error(403, why) end
  local url = redirect_url(request.arg(args, "url"))
  if not url then return reply.invalid({ { "url", "must be an http or https URL with a host" } }) end
  local events, msg = redirect_events(request.arg(args, "events"))
  if not events then return reply.invalid({ { "events", msg } }) end
  local who = claims:get("user_id")
  who = (kind(who) == "string" and who ~= "*") and who or nil
  local rows = {}
  for i, e in ipairs(events) do
    rows[i] = { e:get("label") ~= nil and "engagement" or "impression", user_of(e) or who, json.encode(e) }
  end
  rows[#rows + 1] = { "redirect", who, '{"url":' .. json.quote(url) .. "}" }
  analyticsstore.add(rows)
  ngx.header["Location"] = url
  return reply.send(302, '{"location":' .. json.quote(url) .. "}")
end

-- the test aid -----------------------------------------------------------------------

local KINDS = { engagement = true, impression = true, redirect = true }

function M.local_events(ctx)
  local k = request.arg(ctx.args, "kind")
  if k == "" then k = nil end
  if k and not KINDS[k] then
    return reply.invalid({ { "kind", "must be engagement, impression or redirect" } })
  end
  ngx.header["X-Stream-Local-Worker"] = ngx.worker.pid()
  if ctx.method == "DELETE" then
    return reply.send(200, format('{"removed":%d}', analyticsstore.clear()))
  end
  return reply.send(200, analyticsstore.list_json(k))
end

-- routes (assembled by stream_local.app) ------------------------------------------

local any_feed = guards.any_feed

M.ROUTES = {
  { pattern = [[^/analytics/v1\.0/engagement/$]], resource = "analytics", feed_id = any_feed,
    methods = { POST = M.engagement } },
  { pattern = [[^/analytics/v1\.0/impression/$]], resource = "analytics", feed_id = any_feed,
    methods = { POST = M.impression } },
  -- the JWT is the `authorization` query value: the handler checks it
  { pattern = [[^/analytics/(?:v1\.0/)?redirect/$]], resource = "redirect_and_track", feed_id = any_feed,
    token = false, methods = { GET = M.redirect } },
  { pattern = [[^/_local/analytics/$]], resource = "_local", feed_id = any_feed, token = false,
    methods = { GET = M.local_events, DELETE = M.local_events } },
}

return M
