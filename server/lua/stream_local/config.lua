-- stream_local.config: the server's settings, read once from the environment.
--
-- What it does: reads STREAM_API_KEY, STREAM_API_SECRET, STREAM_LOCAL_RATE_LIMIT and
-- STREAM_LOCAL_FAULTS (made visible to nginx workers by `env` directives in the generated
-- nginx.conf) and exposes them with their defaults, plus the fixed limits of the server.
--
-- What it deliberately does not do: no reloading, no config files, no validation beyond
-- turning malformed numbers into "off" (server/start validates what the user typed).

local getenv, tonumber = os.getenv, tonumber

local function env(name, default)
  local v = getenv(name)
  if v == nil or v == "" then return default end
  return v
end

local M = {}

M.api_key = env("STREAM_API_KEY", "local-api-key")
M.api_secret = env("STREAM_API_SECRET", "local-api-secret-change-me-0123456789")

-- Requests per api key and minute. nil: not enforced (headers still sent, see below).
local rl = tonumber(env("STREAM_LOCAL_RATE_LIMIT", ""))
if rl and rl >= 1 then
  M.rate_limit = math.floor(rl)
else
  M.rate_limit = nil
end
-- the limit advertised in X-RateLimit-Limit when no limit is enforced
M.rate_limit_display = M.rate_limit or 1000

M.faults = env("STREAM_LOCAL_FAULTS", "") == "1"

-- fixed limits (stream-api.md section 3 and the server choices in server/README.md)
M.max_user_bytes = 10240 -- compact {"id":...,"data":...}
M.max_batch = 1000 -- users per batch add, ids per batch get/delete
M.max_delay_ms = 60000 -- X-Stream-Local-Delay cap

return M
