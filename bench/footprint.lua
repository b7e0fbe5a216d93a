-- bench/footprint.lua: what one client costs in memory.
--
--   lua5.4 bench/footprint.lua
--
-- After `require "stream"` and one throw-away client that made one call (so libcurl,
-- OpenSSL and the Lua modules are loaded and initialised), a full GC, then: VmRSS and
-- collectgarbage("count") before and after creating 1 client (no request yet), after
-- its first user:get() (connection, easy handle, buffers), then after creating 99 more
-- (100 in all) and after one get on each (100 kept-alive connections to BENCH_BASE_URL).
-- Each figure is a difference to the previous state, after a full GC. RSS moves in 4 KiB
-- pages and malloc may reuse freed memory, so the one-client RSS figure is coarse; the
-- 100-client figures divided by 100 are the better per-client estimate. Prints one line:
--   bench kind=footprint one_created_kib=.. one_connected_kib=.. ...
package.path = "bench/?.lua;" .. package.path
local B = require "common"

local function snap()
  collectgarbage("collect")
  collectgarbage("collect")
  return B.rss_kib(), collectgarbage("count")
end

do
  local c = B.client()
  assert(c:user("bench-user"):get())
  c:close()
end
local r0, l0 = snap()
local one = B.client()
local r1, l1 = snap()
assert(one:user("bench-user"):get())
local r2, l2 = snap()
local many = { one }
for i = 2, 100 do many[i] = B.client() end
local r3, l3 = snap()
for i = 2, 100 do assert(many[i]:user("bench-user"):get()) end
local r4, l4 = snap()
local function f(x) return string.format("%.1f", x) end
B.emit({ "kind" }, {
  kind = "footprint",
  one_created_rss_kib = r1 - r0, one_created_lua_kib = f(l1 - l0),
  one_connected_rss_kib = r2 - r1, one_connected_lua_kib = f(l2 - l1),
  hundred_created_rss_kib = r3 - r2 + (r1 - r0), hundred_created_lua_kib = f(l3 - l2 + (l1 - l0)),
  hundred_connected_rss_kib = r4 - r0, hundred_connected_lua_kib = f(l4 - l0),
  per_client_rss_kib = f((r4 - r0) / 100), per_client_lua_kib = f((l4 - l0) / 100),
})
for i = 1, 100 do many[i]:close() end
