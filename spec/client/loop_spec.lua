-- stream.loop.luv and stream.loop.cqueues: a client's calls on a foreign
-- event loop, against the real local server (its X-Stream-Local-Delay
-- makes each answer slow, so a loop that blocked on a call would miss its
-- own timer for at least that long).
local server = require "helpers.server"
local H = require "helpers.client"

-- Under valgrind or the sanitizers (which set STREAM_SPEC_AGGRESSIVE_GC) the
-- loop's own callbacks run tens of times slower: there the specs check what
-- the calls answer, not the timings.
local timed = os.getenv("STREAM_SPEC_AGGRESSIVE_GC") == nil

local function fast(cond, what)
  if timed then assert.is_true(cond, what) end
end

-- What each loop gives the specs: attach, start a coroutine the loop runs,
-- a repeating timer, run until nothing is left, and a clock.
local LOOPS = {}

do
  local uv = require "luv"
  LOOPS.luv = {
    new = function() return {} end,
    attach = function(_, client) return require("stream.loop.luv").attach(client) end,
    go = function(_, fn) coroutine.wrap(fn)() end,
    every = function(_, seconds, fn)
      local t = uv.new_timer()
      t:start(math.floor(seconds * 1000), math.floor(seconds * 1000), function()
        if not fn() then t:stop(); t:close() end
      end)
    end,
    run = function() uv.run() end,
    now = function() return uv.hrtime() / 1e9 end,
    sleep = function(_, seconds)
      local co, t = coroutine.running(), uv.new_timer()
      t:start(math.floor(seconds * 1000), 0, function() t:close(); coroutine.resume(co) end)
      coroutine.yield()
    end,
  }
end

do
  local cqueues = require "cqueues"
  LOOPS.cqueues = {
    new = function() return { cq = cqueues.new() } end,
    attach = function(L, client) return require("stream.loop.cqueues").attach(client, L.cq) end,
    go = function(L, fn) L.cq:wrap(fn) end,
    every = function(L, seconds, fn)
      L.cq:wrap(function()
        repeat cqueues.sleep(seconds) until not fn()
      end)
    end,
    run = function(L) assert(L.cq:loop()) end,
    now = function() return cqueues.monotime() end,
    sleep = function(_, seconds) cqueues.sleep(seconds) end,
  }
end

-- A 10 ms ticker that runs while `busy()` says so: how many ticks, and the
-- longest time between two.
local function ticker(L, busy)
  local t = { ticks = 0, gap = 0 }
  local last = L.now()
  L:every(0.01, function()
    local now = L.now()
    t.gap = math.max(t.gap, now - last)
    last = now
    t.ticks = t.ticks + 1
    return busy()
  end)
  return t
end

for _, name in ipairs({ "luv", "cqueues" }) do
  local proto = LOOPS[name]

  describe("stream.loop." .. name, function()
    local s, id, L

    setup(function()
      s = server.start({ faults = true })
      id = H.uid("loop")
      local c = H.server_client(s)
      assert(c:user(id):create({ name = "looped" }))
      c:close()
    end)

    teardown(function()
      if s then s:stop() end
    end)

    before_each(function()
      L = setmetatable(proto.new(), { __index = proto })
    end)

    -- A client whose every answer comes `ms` late, attached to L.
    local function slow_client(ms, opts)
      local c = H.faulty(s, ms and { "X-Stream-Local-Delay: " .. ms } or nil, opts)
      assert.equal(c, L:attach(c))
      return c
    end

    -- n coroutines of the loop, each getting the user with client c: got[i]
    -- is {res, err} of the i-th, and state.left counts the ones not done yet.
    local function start_gets(c, n)
      local got, state = {}, { left = n }
      for i = 1, n do
        L:go(function()
          got[i] = { c:user(id):get() }
          state.left = state.left - 1
        end)
      end
      return got, state
    end

    it("runs 100 concurrent gets, each suspending its coroutine only, while a 10 ms timer fires", function()
      local c = slow_client(200)
      local t0 = L.now()
      local results, state = start_gets(c, 100)
      local tick = ticker(L, function() return state.left > 0 end)
      L:run()
      local elapsed = L.now() - t0
      assert.equal(0, state.left)
      for i = 1, 100 do
        assert.is_table(results[i][1], tostring(results[i][2]))
        assert.equal(id, results[i][1].id)
      end
      -- 100 calls of 200 ms on at most 64 connections: two rounds, not 100
      fast(elapsed < 100 * 0.2 / 4, "took " .. elapsed)
      -- the loop never waited out a call: every gap is shorter than one answer
      fast(tick.gap < 0.15, "longest gap between ticks " .. tick.gap)
      fast(tick.ticks >= 10, tick.ticks .. " ticks")
      c:close()
    end)

    it("keeps blocking calls outside the loop's coroutines, and drives the loop's calls meanwhile", function()
      local c = slow_client(100)
      local got, state = start_gets(c, 10)
      -- the main thread's call blocks, and the ten loop calls progress under it
      local user = assert(c:user(id):get())
      assert.equal(id, user.id)
      L:run()
      assert.equal(0, state.left)
      for i = 1, 10 do assert.equal(id, got[i][1].id) end
      -- and the loop goes on with the sockets the blocking call left
      local again
      L:go(function() again = c:user(id):get() end)
      L:run()
      assert.equal(id, again.id)
      c:close()
    end)

    it("runs parallel from a loop coroutine on the loop", function()
      local c = slow_client(200)
      local results, finished
      L:go(function()
        local fns = {}
        for i = 1, 20 do fns[i] = function() return c:user(id):get() end end
        results = c:parallel(fns, { max_in_flight = 10 })
        finished = true
      end)
      local tick = ticker(L, function() return not finished end)
      L:run()
      assert.equal(20, #results)
      for i = 1, 20 do assert.equal(id, results[i][1].id) end
      -- (plain Lua 5.1 cannot yield inside pcall: there parallel blocks the loop)
      if require("stream.loop").parallel_on_loop then
        fast(tick.gap < 0.15, "longest gap between ticks " .. tick.gap)
        fast(tick.ticks >= 20, tick.ticks .. " ticks")
      end
      c:close()
    end)

    it("waits out retries' back-off on the loop", function()
      local c = H.faulty(s, { "X-Stream-Local-Status: 503" }, { retries = 3 })
      L:attach(c)
      local res, err, finished
      L:go(function()
        res, err = c:user(id):get()
        finished = true
      end)
      local tick = ticker(L, function() return not finished end)
      L:run()
      assert.is_nil(res)
      assert.equal(503, err.status)
      assert.equal(4, err.attempts)
      -- at least half of 0.1 + 0.2 + 0.4 s of back-off, with the timer firing
      fast(tick.ticks >= 15, tick.ticks .. " ticks")
      fast(tick.gap < 0.15, "longest gap between ticks " .. tick.gap)
      c:close()
    end)

    it("ends the calls in flight as 'closed' when the client closes", function()
      local c = slow_client(3000)
      local got, state = start_gets(c, 5)
      L:go(function()
        L:sleep(0.1)
        c:close()
      end)
      local t0 = L.now()
      L:run()
      fast(L.now() - t0 < 2, "the loop waited for the slow answers")
      assert.equal(0, state.left)
      for i = 1, 5 do
        local res, err = got[i][1], got[i][2]
        assert.is_nil(res)
        assert.equal("closed", err.reason)
        assert.equal("GET", err.method)
      end
    end)

    it("refuses what it cannot attach", function()
      local mod = require("stream.loop." .. name)
      assert.has_error(function() mod.attach({}) end)
      local c = slow_client(nil)
      local ok, err = pcall(L.attach, L, c)
      assert.is_false(ok)
      assert.matches("already attached", err)
      c:close()
      local closed = H.server_client(s)
      closed:close()
      ok, err = pcall(L.attach, L, closed)
      assert.is_false(ok)
      assert.matches("closed", err)
      local own = H.server_client(s, { transport = {
        new = function(core, settings)
          local t = require("stream.transport.curl").new(core, settings)
          t.watch = false
          t.name = "own"
          return t
        end,
      } })
      ok, err = pcall(L.attach, L, own)
      assert.is_false(ok)
      assert.matches("transport %(own%)", err)
      own:close()
    end)
  end)
end

describe("stream.loop with no loop given", function()
  it("luv takes luv's default loop; cqueues the controller running the caller", function()
    local s = server.start({})
    local c = H.server_client(s)
    assert.equal(c, require("stream.loop.luv").attach(c))
    c:close()
    local cqueues = require "cqueues"
    local cq = cqueues.new()
    local c2 = H.server_client(s)
    local ok, err = pcall(require("stream.loop.cqueues").attach, c2)
    assert.is_false(ok)
    assert.matches("give a controller", err)
    local id = H.uid("cq")
    assert(c2:user(id):create({}))
    local attached
    cq:wrap(function()
      require("stream.loop.cqueues").attach(c2)
      attached = assert(c2:user(id):get())
    end)
    local loop_ok, loop_err = cq:loop()
    c2:close()
    s:stop()
    assert(loop_ok, loop_err)
    assert.equal(id, attached.id)
  end)
end)
