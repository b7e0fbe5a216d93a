-- stream.analytics: `client.analytics`, the analytics service's tracking
-- calls (`POST /analytics/v1.0/engagement/` and `impression/`) and signed
-- tracking links (`/analytics/redirect/?...`, built here, never requested).
--
-- A server-side client sends the tracking calls with a token of their own
-- scope (resource "analytics", action, feed_id and user_id "*"), signed once
-- per client; a user-token client sends its own token (the service takes
-- its user's events). `redirect_url` signs a "redirect_and_track" token with
-- the API secret (once per client): a token client raises.
-- Checks, nothing sent when they fail (`invalid`): a non-empty list; an
-- engagement's `label` (a non-empty string) and `content` (a foreign id
-- string, or a table with one in `foreign_id`); an impression's non-empty
-- `content_list` of such contents; a tracking link's target is an http(s)
-- URL. Wrong types raise. Retry safety: a tracking call is sent again only
-- when nothing reached the server (the service would count it twice).

local errors = require "stream.errors"
local check = require "stream.check"

local analytics = {}

local SERVICE = "analytics"
local CLAIMS = '{"resource":"analytics","action":"*","feed_id":"*","user_id":"*"}'
local REDIRECT_CLAIMS = '{"resource":"redirect_and_track","action":"*","feed_id":"*","user_id":"*"}'

local Analytics = {}
Analytics.__index = Analytics
Analytics.__name = "stream.analytics"

function Analytics.__tostring()
  return "stream.analytics"
end

function analytics.new(client)
  return setmetatable({ client = client }, Analytics)
end

-- Raises unless `list` is a table of tables (`what` names an item); nil,
-- or an `invalid` error when it is not a non-empty list (keys 1..n).
local function list_arg(list, fname, what, info)
  if type(list) ~= "table" then
    check.raise(fname .. ": expected a list of " .. what .. "s, got " .. type(list), 4)
  end
  local n = 0
  for _, v in pairs(list) do
    n = n + 1
    if type(v) ~= "table" then
      check.raise(fname .. ": each " .. what .. " must be a table, got " .. type(v), 4)
    end
  end
  if n == 0 or n ~= #list then
    return errors.invalid(what .. "s must be a non-empty list", what .. "s", info)
  end
end

-- nil when `c` names content (a foreign id string, or a table with one in
-- `foreign_id`), else an error naming `field`.
local function content_problem(c, field, info)
  local fid = type(c) == "table" and c.foreign_id or c
  if type(fid) ~= "string" or fid == "" then
    return errors.invalid(field .. " must be a foreign id string or a table with a foreign_id",
      field, info)
  end
end

local function engagement_problem(e, i, info)
  local field = "engagements[" .. i .. "]"
  if type(e.label) ~= "string" or e.label == "" then
    return errors.invalid(field .. ".label must be a non-empty string", field .. ".label", info)
  end
  return content_problem(e.content, field .. ".content", info)
end

local function impression_problem(m, i, info)
  local field = "impressions[" .. i .. "].content_list"
  local list = m.content_list
  if type(list) ~= "table" or #list == 0 then
    return errors.invalid(field .. " must be a non-empty list", field, info)
  end
  for k = 1, #list do
    local err = content_problem(list[k], field .. "[" .. k .. "]", info)
    if err then return err end
  end
end

-- Checks the list, then sends `body(list)` to `path` of the service.
local function track(self, list, fname, what, problem, path, body)
  local info = { method = "POST", path = path }
  local err = list_arg(list, fname, what, info)
  if err then return nil, err end
  for i = 1, #list do
    err = problem(list[i], i, info)
    if err then return nil, err end
  end
  local client = self.client
  local headers
  if client.auth_mode == "server" then
    headers = { Authorization = client.pipeline:scoped(CLAIMS, fname, 3) }
  end
  return client.pipeline:send({ method = "POST", service = SERVICE, path = path, body = body(list),
    headers = headers, idempotent = false })
end

local function engagements_body(list) return { content_list = list } end
local function impressions_body(list) return list end

-- analytics:track_engagements({engagement, ...}) -> {duration =}
function Analytics:track_engagements(list)
  local fname = "analytics:track_engagements"
  check.self(self, Analytics, fname)
  local res, err = track(self, list, fname, "engagement", engagement_problem, "engagement/",
    engagements_body)
  return res, err
end

-- analytics:track_impressions({impression, ...}) -> {duration =}
function Analytics:track_impressions(list)
  local fname = "analytics:track_impressions"
  check.self(self, Analytics, fname)
  local res, err = track(self, list, fname, "impression", impression_problem, "impression/",
    impressions_body)
  return res, err
end

-- analytics:redirect_url(target_url, {event, ...}) -> a link to the
-- service that records the events, then redirects to target_url; nothing
-- is sent. nil, err for a target that is not an http(s) URL or events JSON
-- cannot hold.
function Analytics:redirect_url(target, events)
  local fname = "analytics:redirect_url"
  check.self(self, Analytics, fname)
  if type(target) ~= "string" then
    check.raise(fname .. ": target_url must be a string, got " .. type(target), 2)
  end
  if type(events) ~= "table" then
    check.raise(fname .. ": events must be a list of tables, got " .. type(events), 2)
  end
  local pipe = self.client.pipeline
  local token = pipe:scoped(REDIRECT_CLAIMS, fname)
  local info = { method = "GET", path = "redirect/" }
  if not target:find("^[Hh][Tt][Tt][Pp][Ss]?://[^/%s]") or target:find("%c") then
    return nil, errors.invalid("target_url must be an http(s) URL", "target_url", info)
  end
  local text, msg = "[]", nil
  if next(events) ~= nil then text, msg = pipe:encode(events, "events") end
  if not text then return nil, errors.invalid(msg, "events", info) end
  if text:sub(1, 1) ~= "[" then
    return nil, errors.invalid("events must be a list", "events", info)
  end
  return pipe:url({ method = "GET", service = "redirect", path = "redirect/",
    raw_query = "url=" .. check.escape(target) .. "&auth_type=jwt&authorization=" .. token
      .. "&events=" .. check.escape(text) })
end

return analytics
