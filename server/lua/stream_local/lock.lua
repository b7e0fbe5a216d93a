-- stream_local.lock: a named lock shared by every nginx worker.
--
-- What it does: with_lock(name, fn, ...) takes the entry `name` in the
-- `stream_local_locks` shared dict with safe_add (polled with a non-blocking
-- ngx.sleep), runs fn(...), releases the lock whatever fn did, and returns fn's results
-- or re-raises its error. A lock whose holder died expires after LOCK_TTL seconds;
-- waiting longer than LOCK_WAIT raises.
--
-- What it deliberately does not do: no re-entrancy (taking a lock twice in one request
-- waits for itself and times out), no fairness, no use inside a SQLite transaction
-- (those must never yield).

-- luacheck: globals ngx
local ngx = ngx
local error, pcall, tostring = error, pcall, tostring

local M = {}

local LOCK_WAIT = 5
local LOCK_TTL = 10

function M.with_lock(name, fn, ...)
  local dict = ngx.shared.stream_local_locks
  local deadline = ngx.now() + LOCK_WAIT
  while true do
    local ok, err = dict:safe_add(name, true, LOCK_TTL)
    if ok then break end
    if err ~= "exists" then error("lock " .. name .. ": " .. tostring(err), 0) end
    if ngx.now() > deadline then error("timed out waiting for the lock " .. name, 0) end
    ngx.sleep(0.001)
  end
  local ok, a, b = pcall(fn, ...)
  dict:delete(name)
  if not ok then error(a, 0) end
  return a, b
end

return M
