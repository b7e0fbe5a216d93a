-- stream.retry: the one policy for sending a request again. The request
-- pipeline (request.lua) asks `delay` after each failed attempt; errors.lua
-- asks `retryable` for the `err.retryable` flag callers see.
--
-- Only what repeating cannot change is repeated:
-- - a transport failure or a timeout, when the request is idempotent or
--   provably never reached the server (err.sent == false);
-- - 502, 503 and 504 for idempotent requests;
-- - a 429 for any request (it was refused, not done) when the rate limit
--   resets within max_retry_wait seconds;
-- - never an answer over max_response_bytes (it would be as large again).
-- Waits grow exponentially with jitter: BACKOFF_BASE * 2^(n-1), capped at
-- BACKOFF_CAP, times a random factor in [1 - JITTER, 1].
--
-- Pure functions: the clock and the random source are parameters, so the
-- unit specs drive this with fixed values.

local retry = {}

-- Statuses after which the same request may succeed when sent again.
retry.STATUS = { [429] = true, [502] = true, [503] = true, [504] = true }
-- Of those, the ones that may have been caused by (or hidden) the request
-- being processed: only idempotent requests are sent again after them.
local IDEMPOTENT_ONLY = { [502] = true, [503] = true, [504] = true }

retry.BACKOFF_BASE = 0.1   -- seconds before the first retry (before jitter)
retry.BACKOFF_CAP = 2      -- the longest back-off between two attempts
retry.JITTER = 0.5         -- share of the back-off taken off at random
retry.RESET_SLACK = 0.1    -- at most this much added to a rate-limit reset

-- Whether an error is worth sending again at all (err.retryable).
function retry.retryable(e)
  if e.kind == "transport" or e.kind == "timeout" then
    return e.reason ~= "limit"
  end
  return e.status ~= nil and retry.STATUS[e.status] == true
end

-- The back-off before attempt n + 1; random() in [0, 1).
function retry.backoff(n, random)
  local full = math.min(retry.BACKOFF_CAP, retry.BACKOFF_BASE * 2 ^ (n - 1))
  return full * (1 - retry.JITTER + retry.JITTER * random())
end

-- Seconds to wait before sending again after attempt n failed with err, or
-- nil when it must not be sent again. ctx: idempotent (boolean),
-- max_wait (seconds), epoch (seconds since 1970, for X-RateLimit-Reset),
-- random (a function giving [0, 1)).
function retry.delay(err, n, ctx)
  if not retry.retryable(err) then return nil end
  if err.kind == "transport" or err.kind == "timeout" then
    if ctx.idempotent or err.sent == false then return retry.backoff(n, ctx.random) end
    return nil
  end
  if err.status == 429 then
    local reset = err.rate_limit and err.rate_limit.reset
    if not reset then return nil end
    local wait = math.max(0, reset - ctx.epoch) + ctx.random() * retry.RESET_SLACK
    if wait <= ctx.max_wait then return wait end
    return nil
  end
  if IDEMPOTENT_ONLY[err.status] and ctx.idempotent then
    return retry.backoff(n, ctx.random)
  end
  return nil
end

return retry
