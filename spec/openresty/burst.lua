-- spec/openresty/burst.lua: many HTTP requests at once from separate curl processes, as
-- separate clients hitting one nginx would send them.
--
--   local burst = require "openresty.burst"
--   local answers = burst.curls(urls, max_time)
--       -- one curl process per URL, all started at once, each ended by curl itself after
--       -- max_time seconds (so a wedged server makes answers fail, never hangs the caller);
--       -- answers[i] = {status = 200 (0: no answer in time), body = "..."}
--   local pids = burst.worker_pids(prefix)  -- the nginx workers' pids, from /proc
local M = {}

local function q(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

function M.curls(urls, max_time)
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p " .. q(dir)))
  local parts = {}
  for i, url in ipairs(urls) do
    parts[#parts + 1] = ("curl -s -o %s -w '%%{http_code}' --max-time %d %s > %s 2>/dev/null &")
      :format(q(dir .. "/" .. i .. ".body"), max_time, q(url), q(dir .. "/" .. i .. ".code"))
  end
  parts[#parts + 1] = "wait"
  os.execute(table.concat(parts, " "))
  local answers = {}
  for i = 1, #urls do
    answers[i] = {
      status = tonumber(read(dir .. "/" .. i .. ".code") or "") or 0,
      body = read(dir .. "/" .. i .. ".body") or "",
    }
  end
  os.execute("rm -rf " .. q(dir))
  return answers
end

-- The pids of the worker processes of the nginx whose master's pid file is in prefix.
function M.worker_pids(prefix)
  local master = (read(prefix .. "/logs/nginx.pid") or ""):match("%d+")
  if not master then return {} end
  local p = io.popen("pgrep -P " .. master)
  local pids = {}
  for line in p:lines() do pids[#pids + 1] = tonumber(line) end
  p:close()
  table.sort(pids)
  return pids
end

return M
