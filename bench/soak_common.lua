-- bench/soak_common.lua: what the soaks share (bench/soak.lua for users,
-- bench/soak_feeds.lua for feeds): settings from the environment, the
-- faults they program into the local server, the error classification and
-- the violation tally, and VmRSS. Not a benchmark itself.
--
--   local C = dofile(ROOT .. "/bench/soak_common.lua")
--   C.env(name [, default]) ; C.num(name [, default])
--   local faults = C.faults{ core =, stream =, server =, rate =, random =, on_fault = fn(name) }
--   faults.maybe()            -- with probability `rate`, queues one fault for the next request(s)
--   faults.ctl(method [, body]) -- the /_local/faults endpoint (DELETE clears, GET lists)
--   faults.close()
--   C.SHORT_DELAY, C.LONG_DELAY, C.SETTLE  -- ms ranges of the delay faults; seconds a task
--                                             waits after an uncertain write
--   C.refused(err), C.err_key(err), C.bump(t, k), C.violations(counts, max) -> violation, list
--   C.note_raised(results, counts, list, max)  -- tasks of client:parallel that raised
--   C.rss_kb()
local M = {}

function M.env(name, default)
  local v = os.getenv(name)
  if v == nil or v == "" then return default end
  return v
end

function M.num(name, default)
  local v = M.env(name)
  if v == nil then return default end
  return assert(tonumber(v), name .. " must be a number")
end

M.SHORT_DELAY = { 10, 150 } -- ms, answered before the client's 0.5 s timeout
M.LONG_DELAY = { 600, 900 } -- ms, the client gives up first
-- after an uncertain write a task waits this long, so a request the server
-- still handles cannot land after the task's next write
M.SETTLE = M.LONG_DELAY[2] / 1000 + 0.6

-- The faults, by weight: 503, dropped connections, short and long delays,
-- truncated answers, 429 with a reset 0 or 1 s ahead.
function M.faults(o)
  local random = o.random
  local control = o.core.http_new({ timeout = 5, connect_timeout = 2, max_response_bytes = 1024 * 1024,
    headers = {}, body_headers = { "Content-Type: application/json" } })
  local url = o.server .. "/_local/faults"
  local function ctl(method, body)
    local res, err = control:request(method, url, body)
    if not res or res.status >= 300 then
      error("control endpoint: " .. (res and (res.status .. " " .. res.body) or err.message), 0)
    end
    return res.body
  end
  local function between(r) return random(r[1], r[2]) end
  local list = {
    { 30, "503", function() return { fault = "status", status = 503, count = random(1, 2) } end },
    { 20, "drop", function() return { fault = "drop" } end },
    { 15, "short delay", function() return { fault = "delay", ms = between(M.SHORT_DELAY) } end },
    { 5, "long delay", function() return { fault = "delay", ms = between(M.LONG_DELAY) } end },
    { 15, "truncate", function() return { fault = "truncate", bytes = random(0, 60) } end },
    { 15, "429", function() return { fault = "status", status = 429, reset_after = random(0, 1) } end },
  }
  local total = 0
  for _, f in ipairs(list) do total = total + f[1] end
  local function maybe()
    if random() >= o.rate then return end
    local r = random() * total
    for _, f in ipairs(list) do
      r = r - f[1]
      if r < 0 then
        ctl("POST", o.stream.json.encode(f[3]()))
        o.on_fault(f[2])
        return
      end
    end
  end
  return { ctl = ctl, maybe = maybe, close = function() control:close() end }
end

-- The error proves the request was not applied: refused before sending, or
-- one attempt answered 4xx.
function M.refused(err)
  return err.kind == "invalid" or (err.kind == "api" and err.status < 500 and (err.attempts or 1) == 1)
end

function M.err_key(err)
  if err.kind == "api" then return "api " .. tostring(err.status) end
  return err.kind
end

function M.bump(t, k) t[k] = (t[k] or 0) + 1 end

-- violation(fmt, ...) counts into counts.violations and keeps the first
-- `max` messages in the returned list.
function M.violations(counts, max)
  local list = {}
  return function(fmt, ...)
    counts.violations = counts.violations + 1
    if #list < max then list[#list + 1] = string.format(fmt, ...) end
  end, list
end

-- Counts the tasks of client:parallel's `results` that raised, keeping
-- their errors in the violation `list` (at most `max`).
function M.note_raised(results, counts, list, max)
  for k = 1, #results do
    if results[k].raised then
      counts.raised = counts.raised + 1
      if #list < max then list[#list + 1] = "task raised: " .. tostring(results[k][2]) end
    end
  end
end

-- VmRSS of this process in KiB, or nil where /proc is missing.
function M.rss_kb()
  local f = io.open("/proc/self/status", "r")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return tonumber(s:match("VmRSS:%s*(%d+)"))
end

return M
