-- Runs before the specs. With STREAM_SPEC_AGGRESSIVE_GC=1 (the valgrind
-- and sanitizer runs) a full collection follows every test, so finalizers
-- (__gc of clients, requests, codec buffers) run while the next test is
-- using the core. With 2 (the sanitizer run, which is fast enough for it)
-- a new cycle starts when the heap has grown by a tenth since the last one,
-- with large steps (a pause of 100 would collect back to back and make the
-- suite a hundred times slower).
math.randomseed(os.time())
local gc = os.getenv("STREAM_SPEC_AGGRESSIVE_GC")
if gc == "1" or gc == "2" then
  if gc == "2" and _VERSION == "Lua 5.4" then
    collectgarbage("incremental", 110, 400)
  elseif gc == "2" then
    collectgarbage("setpause", 110)
    collectgarbage("setstepmul", 400)
  end
  require("busted").subscribe({ "test", "end" }, function()
    collectgarbage()
    collectgarbage()
    return nil, true
  end)
end
