-- stream_local.personalization: the personalization endpoints (stream-feeds-api.md
-- section 15), answered from configuration: no personalization is computed.
--
-- What it does:
--   GET|POST|DELETE /personalization/v1.0/{resource}/   the canned answer that
--       STREAM_LOCAL_PERSONALIZATION ({"<name>": <answer>}, stream_local.config) holds
--       for the resource, as a 200 body (below); an unknown resource is 404 code 16.
--       Server tokens only (resource `personalization` or `*`, feed_id `*`). A POST body
--       may be raw JSON, wrapped in {"data": ...} or absent (all in the query); when
--       present it must be JSON (400 code 4 naming `body`) and is not kept.
--   GET /api/v1.0/enrich/personalization/feed/?feed_slug=&user_id=&endpoint=&ranking=
--       &limit=&offset= and the enrich flags: the feed `feed_slug:user_id` newest first,
--       enriched as an enriched feed read is (stream_local.feeds' page), with
--       `limit`, `offset` and `version` "local"; `next` pages by offset. A user token
--       reads its own user's only (403 code 17 with the service's detail); an
--       `endpoint`, when given, must be a name of STREAM_LOCAL_PERSONALIZATION (404
--       code 16 otherwise); `ranking` is accepted and ignored.
--
-- How a canned answer becomes the body: an object is sent with its own keys, in their
-- order (a `duration` key dropped, the server adds its own), followed by whichever of
-- app_id (1), results ([]), next (""), limit and offset (the query's, default 10 and 0)
-- and version ("local") it lacks; an array is the `results` of that body; any other
-- value is its one result.
--
-- What it deliberately does not do: no ranking, no paging of canned results, no
-- storage of what POST or DELETE send.

local json = require "stream_local.json"
local reply = require "stream_local.reply"
local request = require "stream_local.request"
local config = require "stream_local.config"
local ids = require "stream_local.ids"
local auth = require "stream_local.auth"
local guards = require "stream_local.guards"
local rules = require "stream_local.rules"
local enrich = require "stream_local.enrich"
local feeds = require "stream_local.feeds"

local ipairs, concat, format = ipairs, table.concat, string.format

local M = {}

M.NOT_ALLOWED = "You do not have permission to do this, you got this error because there are no policies "
  .. "allowing this request on this application. Please consult the documentation https://getstream.io/docs/"

-- resource calls: limit and offset only tune the canned answer, so they never refuse
local CANNED_PAGE = { { name = "limit", default = 10, min = 0, max = 1000000000, lenient = true },
  { name = "offset", default = 0, min = 0, max = 1000000000, lenient = true } }

local function unknown(what, name)
  return reply.error(404, "no personalization " .. what .. " named " .. json.quote(name)
    .. " (STREAM_LOCAL_PERSONALIZATION names them)")
end

-- canned_body(answer, page) -> the JSON text of the 200 body, without duration
local function canned_body(answer, page)
  local kind = json.kind(answer)
  local parts, has = {}, {}
  if kind == "object" then
    for _, k in ipairs(answer.keys) do
      if k ~= "duration" then
        parts[#parts + 1] = json.quote(k) .. ":" .. json.encode(answer.values[k])
        has[k] = true
      end
    end
  end
  local results = kind == "array" and json.encode(answer)
    or (kind == "object" and "[]" or "[" .. json.encode(answer) .. "]")
  local defaults = { { "app_id", format("%d", config.app_id) }, { "results", results }, { "next", '""' },
    { "limit", format("%d", page.limit) }, { "offset", format("%d", page.offset) }, { "version", '"local"' } }
  for _, d in ipairs(defaults) do
    if not has[d[1]] then parts[#parts + 1] = json.quote(d[1]) .. ":" .. d[2] end
  end
  return "{" .. concat(parts, ",") .. "}"
end

function M.resource(ctx)
  local name = ctx.params.resource
  local answer = config.personalization[name]
  if answer == nil then return unknown("resource", name) end
  if ctx.method == "POST" then
    local text = request.read_body()
    if text ~= "" then
      local tree, msg, pos = json.parse(text)
      if tree == nil then
        return reply.invalid({ { "body", format("invalid JSON in the request body: %s at byte %d", msg, pos) } })
      end
    end
  end
  return reply.send(200, canned_body(answer, rules.query(ctx.args, CANNED_PAGE, {})))
end

-- the personalized feed ----------------------------------------------------------

local FEED_SLUG = { name = "feed_slug", message = "must be a configured feed group such as user",
  parse = function(v) return v:find("^[A-Za-z0-9_]+$") and v or nil end }
local USER_ID = { name = "user_id", message = ids.USER_ID_RULE,
  parse = function(v) return ids.valid_user_id(v) and v or nil end }
local FEED_QUERY = { FEED_SLUG, USER_ID, feeds.READ_PAGE[1], feeds.READ_PAGE[2] }

local NEXT_DROP = { api_key = true, limit = true, offset = true }

-- feed_query(ctx) -> the checked query values | nil after answering
local function feed_query(ctx)
  local errors = {}
  local q = rules.query(ctx.args, FEED_QUERY, errors)
  enrich.check(ctx.args, errors)
  for _, rule in ipairs({ FEED_SLUG, USER_ID }) do
    if q[rule.name] == nil and request.arg(ctx.args, rule.name) == nil then
      errors[#errors + 1] = { rule.name, "is required" }
    end
  end
  if errors[1] then
    reply.invalid(errors)
    return nil
  end
  if not config.feed_groups[q.feed_slug] then
    guards.not_configured(q.feed_slug)
    return nil
  end
  return q
end

function M.feed(ctx)
  local q = feed_query(ctx)
  if not q then return end
  local principal, feed_id = ctx.principal, q.feed_slug .. ":" .. q.user_id
  if principal.user_id and principal.user_id ~= q.user_id then return reply.error(403, M.NOT_ALLOWED) end
  if not auth.covers_feed(principal, feed_id) then
    return reply.error(403, "the token's feed_id claim does not cover the feed " .. feed_id)
  end
  local endpoint = request.arg(ctx.args, "endpoint")
  if endpoint and endpoint ~= "" and config.personalization[endpoint] == nil then
    return unknown("endpoint", endpoint)
  end
  local out, last_id = feeds.page(ctx, feed_id, {}, q.limit, q.offset, true)
  local next_url = ""
  if last_id then
    next_url = "/api/v1.0/enrich/personalization/feed/?" .. request.next_query(ctx.query,
      { "limit=" .. q.limit, "offset=" .. (q.offset + q.limit) }, NEXT_DROP)
  end
  return reply.send(200, '{"results":[' .. concat(out, ",") .. '],"next":' .. json.quote(next_url)
    .. format(',"limit":%d,"offset":%d,"version":"local"}', q.limit, q.offset))
end

-- routes (assembled by stream_local.app) --------------------------------------------

local SERVER = { guards.server_only("personalization resources need a server token") }

M.ROUTES = {
  { pattern = [[^/personalization/v1\.0/(?<resource>[^/]+(?:/[^/]+)*)/$]], resource = "personalization",
    feed_id = guards.any_feed, guards = SERVER,
    methods = { GET = M.resource, POST = M.resource, DELETE = M.resource } },
  -- the handler checks the feed the query names against a feed-scoped token
  { pattern = [[^/api/v1\.0/enrich/personalization/feed/$]], resource = { "personalization", "feed" },
    feed_id = guards.named_feeds, methods = { GET = M.feed } },
}

return M
