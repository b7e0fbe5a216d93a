-- stream_local.ratelimit: per-api-key, per-minute request counting and the
-- X-RateLimit-* headers.
--
-- What it does: counts every request (errors included) under "rl:<api_key>:<minute>" in
-- the shared dict with an atomic incr (init 0, ttl of two minutes), then sets
--   X-RateLimit-Limit      the per-minute limit (STREAM_LOCAL_RATE_LIMIT, or 1000 when off)
--   X-RateLimit-Remaining  limit - count, never below 0
--   X-RateLimit-Reset      UTC epoch seconds at which the current minute window ends
-- and tells the caller whether the request is over the limit (only when a limit is set).
--
-- What it deliberately does not do: no 15-minute or hourly windows, no per-endpoint
-- limits, no sliding window: a fixed window aligned to the wall-clock minute.

local config = require "stream_local.config"

-- luacheck: globals ngx
local ngx = ngx
local floor = math.floor

local M = {}

local function set_headers(limit, remaining, reset)
  ngx.header["X-RateLimit-Limit"] = limit
  ngx.header["X-RateLimit-Remaining"] = remaining
  ngx.header["X-RateLimit-Reset"] = reset
end

-- count(api_key) -> limited (boolean)
function M.count(api_key)
  local now = ngx.time()
  local window = floor(now / 60) * 60
  local reset = window + 60
  local limit = config.rate_limit_display
  local dict = ngx.shared.stream_local_meta
  local n, err = dict:incr("rl:" .. api_key .. ":" .. window, 1, 0, 120)
  if not n then
    ngx.log(ngx.WARN, "rate-limit counter: ", err)
    n = 1
  end
  local remaining = limit - n
  if remaining < 0 then remaining = 0 end
  set_headers(limit, remaining, reset)
  return config.rate_limit ~= nil and n > config.rate_limit
end

-- headers for answers produced outside the normal flow (nginx errors, forced 429)
function M.exhausted()
  local window = floor(ngx.time() / 60) * 60
  set_headers(config.rate_limit_display, 0, window + 60)
end

return M
