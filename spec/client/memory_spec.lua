-- Memory on large reads from the local server: a walk over a 100,000-activity
-- feed holds one page at a time, and an enriched page of large users is
-- measured against max_response_bytes (over: a transport error, reason
-- "limit", not retried; under: decoded whole).
local server = require "helpers.server"
local H = require "helpers.client"

local function rss_kb()
  local f = io.open("/proc/self/status", "r")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return tonumber(s:match("VmRSS:%s*(%d+)"))
end

describe("feed:each over a 100,000-activity feed", function()
  local probe = io.open("/proc/self/status", "r")
  if not probe then return end
  probe:close()
  local s
  setup(function() s = server.start({}) end)
  teardown(function() s:stop() end)

  it("yields every activity once, newest first, with RSS flat after the first pages", function()
    -- Under valgrind or the sanitizers (which set STREAM_SPEC_AGGRESSIVE_GC) the
    -- client is many times slower and RSS measures the tool's own shadow memory
    -- and quarantine: a fifth of the feed, and no RSS bound.
    local instrumented = os.getenv("STREAM_SPEC_AGGRESSIVE_GC") ~= nil
    local TOTAL = instrumented and 20000 or 100000
    local BATCH, TASKS = 100, 8
    local c = H.server_client(s, { max_connections = TASKS })
    local feed = c:feed("user", H.uid("walk"))
    local fns = {}
    for t = 1, TASKS do
      fns[t] = function()
        for b = t, math.floor(TOTAL / BATCH), TASKS do
          local list = {}
          for i = 1, BATCH do
            list[i] = { actor = "SU:walker", verb = "post", object = "o:" .. ((b - 1) * BATCH + i) }
          end
          assert(feed:add_activities(list))
        end
      end
    end
    for _, r in ipairs(c:parallel(fns)) do assert.is_falsy(r.raised, tostring(r[2])) end

    local seen, n, last_time = {}, 0, nil
    local samples = {}
    collectgarbage()
    for a, err in feed:each({ limit = 100 }) do
      assert(a, tostring(err))
      n = n + 1
      local k = tonumber(a.object:match("^o:(%d+)$"))
      assert.is_nil(seen[k], "activity " .. a.object .. " yielded twice")
      seen[k] = true
      -- newest first is by `time` (to the microsecond; ids carry milliseconds only)
      if last_time then assert.is_true(a.time <= last_time, "not newest first at " .. n) end
      last_time = a.time
      if n % (TOTAL / 20) == 0 and n >= TOTAL / 5 then samples[#samples + 1] = rss_kb() end
      if n > TOTAL then break end
    end
    assert.equal(TOTAL, n)
    local lo, hi = math.huge, 0
    for _, v in ipairs(samples) do lo, hi = math.min(lo, v), math.max(hi, v) end
    assert.is_true(#samples >= 10)
    -- `seen` grows by design (about 40 bytes a key); the pages must not:
    -- allow what `seen` takes plus 1 MiB
    local set_kb = math.floor(TOTAL * 40 / 1024)
    if not instrumented then
      assert.is_true(hi - lo <= set_kb + 1024, string.format("RSS %d..%d kB", lo, hi))
    end
    c:close()
  end)
end)

describe("an enriched page of 100 activities with large users", function()
  local s, c, feed
  local PAD = 9000
  setup(function()
    s = server.start({})
    c = H.server_client(s, { max_connections = 16 })
    feed = c:feed("user", H.uid("bigusers"))
    local list = {}
    local fns = {}
    for i = 1, 100 do
      local id = H.uid("big" .. i)
      fns[i] = function()
        assert(c:user(id):create({ pad = string.rep(string.char(97 + i % 26), PAD), n = i }))
      end
      list[i] = { actor = c:user(id), verb = "post", object = "o:" .. i }
    end
    for _, r in ipairs(c:parallel(fns)) do assert(not r.raised, tostring(r[2])) end
    assert(feed:add_activities(list))
  end)
  teardown(function() c:close(); s:stop() end)

  it("decodes whole when the answer is under max_response_bytes", function()
    local big = H.server_client(s, { max_response_bytes = 4 * 1024 * 1024 })
    local res = assert(big:feed(feed.slug, feed.user_id):get({ limit = 100, enrich = true }))
    assert.equal(100, #res.results)
    for _, a in ipairs(res.results) do
      assert.is_table(a.actor)
      assert.equal(PAD, #a.actor.data.pad)
    end
    big:close()
  end)

  it("is a transport error with reason limit, sent once, when the answer is over it", function()
    local small = H.server_client(s, { max_response_bytes = 256 * 1024, retries = 3 })
    local before = small:stats().requests or 0
    local res, err = small:feed(feed.slug, feed.user_id):get({ limit = 100, enrich = true })
    assert.is_nil(res)
    assert.equal("transport", err.kind)
    assert.equal("limit", err.reason)
    assert.is_false(err.retryable)
    assert.equal(1, err.attempts)
    assert.equal(before + 1, small:stats().requests)
    -- the plain page (references, not users) is far under the cap
    assert(small:feed(feed.slug, feed.user_id):get({ limit = 100 }))
    -- and the walk with each stops with the same error, once
    local got = {}
    for a, e in small:feed(feed.slug, feed.user_id):each({ limit = 100, enrich = true }) do
      got[#got + 1] = e and e.reason or a
    end
    assert.same({ "limit" }, got)
    small:close()
  end)
end)
