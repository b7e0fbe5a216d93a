-- Runs before the specs. With STREAM_SPEC_AGGRESSIVE_GC=1 (the valgrind
-- and sanitizer runs) the collector runs far more often than usual: a
-- cycle starts as soon as the heap has grown by half, steps are large, and
-- a full collection follows every test, so finalizers (__gc of clients,
-- requests, codec buffers) run while the next test is using the core.
math.randomseed(os.time())
if os.getenv("STREAM_SPEC_AGGRESSIVE_GC") == "1" then
  if _VERSION == "Lua 5.4" then
    collectgarbage("incremental", 100, 400)
  else
    collectgarbage("setpause", 100)
    collectgarbage("setstepmul", 400)
  end
  require("busted").subscribe({ "test", "end" }, function()
    collectgarbage()
    collectgarbage()
    return nil, true
  end)
end
