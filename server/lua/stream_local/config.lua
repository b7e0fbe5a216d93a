-- stream_local.config: the server's settings, read once from the environment.
--
-- What it does: reads STREAM_API_KEY, STREAM_API_SECRET, STREAM_LOCAL_RATE_LIMIT,
-- STREAM_LOCAL_FAULTS, STREAM_LOCAL_FEED_GROUPS, STREAM_LOCAL_AGGREGATION_FORMATS,
-- STREAM_LOCAL_DB, STREAM_LOCAL_MEMORY, STREAM_LOCAL_SQLITE and
-- STREAM_LOCAL_PERSONALIZATION (made visible to nginx
-- workers by `env` directives in the generated nginx.conf) and exposes them with their
-- defaults, plus the fixed limits of the server; feed_parts checks a feed id against the
-- configured groups.
--
-- What it deliberately does not do: no reloading, no config files, no validation beyond
-- turning malformed numbers into "off" (server/start validates what the user typed) and
-- refusing aggregation formats for groups that cannot use them.

local json = require "stream_local.json"
local ids = require "stream_local.ids"
local getenv, tonumber, tostring, type, ipairs, error = os.getenv, tonumber, tostring, type, ipairs, error

local function env(name, default)
  local v = getenv(name)
  if v == nil or v == "" then return default end
  return v
end

local M = {}

M.api_key = env("STREAM_API_KEY", "local-api-key")
M.api_secret = env("STREAM_API_SECRET", "local-api-secret-change-me-0123456789")

-- Requests per api key and minute. nil: not enforced (headers still sent, see below).
local per_minute = tonumber(env("STREAM_LOCAL_RATE_LIMIT", ""))
if per_minute and per_minute >= 1 then
  M.rate_limit = math.floor(per_minute)
else
  M.rate_limit = nil
end
-- the limit advertised in X-RateLimit-Limit when no limit is enforced
M.rate_limit_display = M.rate_limit or 1000

M.faults = env("STREAM_LOCAL_FAULTS", "") == "1"

-- Feed groups: STREAM_LOCAL_FEED_GROUPS, a comma list of `name` (flat) or
-- `name:flat|aggregated|notification` items; M.feed_groups maps each name to its type.
M.DEFAULT_FEED_GROUPS = "user,timeline,notification:notification"
M.FEED_TYPES = { flat = true, aggregated = true, notification = true }
M.feed_groups, M.feed_group_list = {}, {}
for item in env("STREAM_LOCAL_FEED_GROUPS", M.DEFAULT_FEED_GROUPS):gmatch("[^,%s]+") do
  local name, kind = item:match("^([A-Za-z0-9_]+):?(%a*)$")
  if kind == "" then kind = "flat" end
  if name and M.FEED_TYPES[kind] and not M.feed_groups[name] then
    M.feed_groups[name] = kind
    M.feed_group_list[#M.feed_group_list + 1] = name
  end
end

-- Aggregation formats (stream-feeds-api.md section 12): STREAM_LOCAL_AGGREGATION_FORMATS,
-- a JSON object {"<group>": "<format>"}; M.aggregation_formats maps a group to its
-- format. A value that is no such object, or a group that is not configured or is
-- flat, stops the server at start (the error reaches server/start's output through
-- nginx's log): a typo there would otherwise leave the default in place unnoticed.
-- Whether a format parses is found out when the feed is read, as the service does.
local function aggregation_formats(text)
  local out = {}
  if not text then return out end
  local where = "STREAM_LOCAL_AGGREGATION_FORMATS: "
  local tree = json.parse(text)
  if not tree or json.kind(tree) ~= "object" then
    error(where .. 'must be a JSON object {"<group>": "<format>"}', 0)
  end
  for _, group in ipairs(tree.keys) do
    local fmt = tree.values[group]
    local kind = M.feed_groups[group]
    if type(fmt) ~= "string" then error(where .. "the format of " .. group .. " must be a string", 0) end
    if not kind then
      error(where .. group .. " is not a feed group of STREAM_LOCAL_FEED_GROUPS", 0)
    elseif kind == "flat" then
      error(where .. group .. " is flat; formats apply to aggregated and notification groups", 0)
    end
    out[group] = fmt
  end
  return out
end
M.aggregation_formats = aggregation_formats(env("STREAM_LOCAL_AGGREGATION_FORMATS", nil))

-- Personalization (stream-feeds-api.md section 15): STREAM_LOCAL_PERSONALIZATION, a JSON
-- object {"<name>": <canned answer>}; M.personalization maps each name to its answer's
-- parsed tree (stream_local.json). A name is a resource of /personalization/v1.0/<name>/
-- and an `endpoint` of the personalized feed. A value that is no JSON object stops the
-- server at start, like a bad aggregation format.
local function personalization(text)
  local out = {}
  if not text then return out end
  local tree = json.parse(text)
  if not tree or json.kind(tree) ~= "object" then
    error('STREAM_LOCAL_PERSONALIZATION: must be a JSON object {"<name>": <canned answer>}', 0)
  end
  for _, name in ipairs(tree.keys) do out[name] = tree.values[name] end
  return out
end
M.personalization = personalization(env("STREAM_LOCAL_PERSONALIZATION", nil))
-- the app_id of personalization answers (the real service's is the app's number)
M.app_id = 1

-- feed_parts("user:alice") -> slug, id | nil, message | nil, nil, unconfigured_slug: a
-- feed id from a body or a query (`to`, follow targets, target_feeds, stats), checked.
function M.feed_parts(text)
  if type(text) ~= "string" then return nil, "must be a feed id such as user:alice" end
  local slug, id = text:match("^([^:]*):(.*)$")
  if not slug or not slug:find("^[A-Za-z0-9_]+$") then
    return nil, "invalid feed id " .. json.quote(text) .. ": expected <slug>:<id> such as user:alice"
  end
  if not ids.valid_user_id(id) then
    return nil, "invalid feed id " .. json.quote(text) .. ": the id " .. ids.USER_ID_RULE
  end
  if not M.feed_groups[slug] then return nil, nil, slug end
  return slug, id
end

-- receives_from_others(slug): may a user token send activities (`to`, target_feeds)
-- to another user's feed of this group? Notification groups, and the group named
-- `notification` whatever its type (stream-feeds-api.md section 2 names it).
function M.receives_from_others(slug)
  return slug == "notification" or M.feed_groups[slug] == "notification"
end

-- The SQLite database: STREAM_LOCAL_DB keeps it across restarts; unset, it is a
-- throw-away file inside the server's prefix (stream_local.db).
M.db_path = env("STREAM_LOCAL_DB", nil)
M.sqlite_library = env("STREAM_LOCAL_SQLITE", "libsqlite3.so.0") -- found by the dynamic loader
M.busy_timeout_ms = 10000

-- STREAM_LOCAL_MEMORY: the most the database may hold, "512m", "2g", "65536k" or bytes.
local function size(text)
  local n, unit = tostring(text):lower():match("^(%d+)([kmg]?)b?$")
  if not n then return nil end
  local mult = ({ [""] = 1, k = 1024, m = 1024 ^ 2, g = 1024 ^ 3 })[unit]
  return tonumber(n) * mult
end
M.max_db_bytes = size(env("STREAM_LOCAL_MEMORY", "1g")) or 1024 ^ 3

-- fixed limits (stream-api.md section 3 and the server choices in server/README.md)
M.max_user_bytes = 10240 -- compact {"id":...,"data":...}
M.max_batch = 1000 -- users per batch add, ids per batch get/delete
M.max_delay_ms = 60000 -- X-Stream-Local-Delay cap
M.max_activity_bytes = 10240 -- compact JSON of an activity as stored
M.max_to = 100 -- `to` targets per activity
M.max_activities = 100 -- activities per add-many and ids per activities-by-id
M.default_limit, M.max_limit = 25, 100 -- feed reads (activities, or groups)
M.max_group_activities = 15 -- activities shown per aggregated/notification group
M.default_follow_limit, M.max_follow_limit = 25, 500 -- followers/following
M.default_copy_limit, M.max_copy_limit = 100, 1000 -- activity_copy_limit
M.max_follow_many = 2500 -- pairs per follow_many / unfollow_many

return M
