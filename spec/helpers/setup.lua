-- Runs before the specs. With STREAM_SPEC_AGGRESSIVE_GC=1 (the valgrind
-- and sanitizer runs) the collector runs far more often than usual, so
-- finalizers and userdata lifetimes are exercised on every few allocations.
math.randomseed(os.time())
if os.getenv("STREAM_SPEC_AGGRESSIVE_GC") == "1" then
  if _VERSION == "Lua 5.4" then
    collectgarbage("incremental", 10, 400)
  else
    collectgarbage("setpause", 10)
    collectgarbage("setstepmul", 400)
  end
end
