-- stream.retry: the one policy for sending a request again. The request
-- pipeline (request.lua) asks `delay` after each failed attempt; errors.lua
-- asks `retryable` for the `err.retryable` flag callers see.
--
-- Only what repeating cannot change is repeated: a call is `retryable`
-- only where sending it again can neither fail for the same reason nor
-- duplicate a write, i.e.
-- - a transport failure or a timeout, when the request is idempotent (its
--   description says so: a read, or a write with its own idempotency key)
--   or provably never reached the server (err.sent == false);
-- - 502, 503 and 504 for idempotent requests;
-- - a 429 for any request (it was refused, not done); it is sent again
--   when the rate limit resets within max_retry_wait seconds;
-- - never an answer over max_response_bytes or max_header_bytes (reason
--   "limit": it would be as large again) nor a malformed answer (reason
--   "malformed": the same server breaks HTTP the same way again).
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

-- Answers that would come back the same when asked again ("closed": the
-- client was closed, every later attempt would fail the same way).
local SAME_AGAIN = { limit = true, malformed = true, closed = true }

-- Whether sending the same call again is sound (err.retryable);
-- idempotent: the request's own flag.
function retry.retryable(e, idempotent)
  if e.kind == "transport" or e.kind == "timeout" then
    if SAME_AGAIN[e.reason] then return false end
    return idempotent == true or e.sent == false
  end
  if e.status == nil or not retry.STATUS[e.status] then return false end
  return idempotent == true or not IDEMPOTENT_ONLY[e.status]
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
  if not retry.retryable(err, ctx.idempotent) then return nil end
  if err.status == 429 then
    local reset = err.rate_limit and err.rate_limit.reset
    if not reset then return nil end
    local wait = math.max(0, reset - ctx.epoch) + ctx.random() * retry.RESET_SLACK
    if wait <= ctx.max_wait then return wait end
    return nil
  end
  return retry.backoff(n, ctx.random)
end

return retry
