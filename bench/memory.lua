-- bench/memory.lua: does lua-stream's memory stay flat over many calls?
--
--   lua5.4 bench/memory.lua [GETS]      (default: BENCH_GETS, else 100000)
--
-- One client, GETS sequential user:get() calls against BENCH_BASE_URL (the fixed-
-- response nginx, so it is fast), every answer checked. VmRSS (from /proc/self/status)
-- and the Lua heap (collectgarbage("count"), no forced collection: what the program
-- would really hold) are read after the first 10,000 calls and at the end; the
-- largest RSS seen at the ten checkpoints in between is kept too. The target: RSS
-- at the end within 1 MiB (1024 KiB) of RSS after 10,000. Prints one line:
--   bench kind=memory gets=.. seconds=.. rss_10k_kib=.. rss_end_kib=.. delta_kib=.. ...
package.path = "bench/?.lua;" .. package.path
local B = require "common"

local gets = tonumber(arg[1]) or tonumber(os.getenv("BENCH_GETS")) or 100000
assert(gets >= 10000, "GETS must be at least 10000")
local client = B.client()
local me = client:user("bench-user")
local every = gets // 10
local errors, rss10k, lua10k, max_rss = 0, nil, nil, 0
local t0 = B.now()
for i = 1, gets do
  if not me:get() then errors = errors + 1 end
  if i == 10000 then
    rss10k, lua10k = B.rss_kib(), collectgarbage("count")
  end
  if i % every == 0 then
    local r = B.rss_kib()
    if r > max_rss then max_rss = r end
  end
end
local dt = B.now() - t0
local rss_end = B.rss_kib()
B.emit({ "kind", "gets", "seconds", "rss_10k_kib", "rss_end_kib", "delta_kib" }, {
  kind = "memory", gets = gets, seconds = string.format("%.1f", dt),
  rss_10k_kib = rss10k, rss_end_kib = rss_end, delta_kib = rss_end - rss10k,
  rss_max_kib = max_rss, lua_10k_kib = string.format("%.0f", lua10k),
  lua_end_kib = string.format("%.0f", collectgarbage("count")), errors = errors,
  connects = client:stats().connects,
})
client:close()
os.exit(errors == 0 and 0 or 1)
