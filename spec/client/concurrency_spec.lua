-- client:parallel, client:go / step / wait / pending / timeout over one
-- multi handle, against the real local server.
local stream = require "stream"
local socket = require "socket"
local server = require "helpers.server"
local H = require "helpers.client"

describe("client:parallel", function()
  local s, client

  setup(function()
    s = server.start({ faults = true })
    client = H.server_client(s)
  end)

  teardown(function()
    if client then client:close() end
    if s then s:stop() end
  end)

  it("returns one packed result per function, in order", function()
    local ids = {}
    local fns = {}
    for i = 1, 10 do
      ids[i] = H.uid("par")
      fns[i] = function() return client:user(ids[i]):create({ i = i }) end
    end
    local results = client:parallel(fns)
    assert.equal(10, #results)
    for i = 1, 10 do
      assert.equal(ids[i], results[i][1].id)
      assert.equal(i, results[i][1].data.i)
    end
  end)

  it("isolates errors: nil, err and raised errors leave the others alone", function()
    local id = H.uid("iso")
    assert(client:user(id):create({}))
    local results = client:parallel({
      function() return client:user(id):get() end,
      function() return client:user(H.uid("missing")):get() end,
      function() error("boom") end,
      function() return client:user("bad id"):get() end,
      function() return 1, nil, 3 end,
    })
    assert.equal(id, results[1][1].id)
    assert.is_nil(results[2][1])
    assert.equal(404, results[2][2].status)
    assert.is_true(results[3].raised)
    assert.matches("boom", results[3][2])
    assert.equal("invalid", results[4][2].kind)
    assert.equal(3, results[5].n)
    assert.equal(3, results[5][3])
  end)

  it("runs many functions on at most max_in_flight coroutines, raises and own yields included", function()
    local id = H.uid("run")
    assert(client:user(id):create({}))
    local seen, nseen = {}, 0
    local fns = {}
    for i = 1, 60 do
      fns[i] = function()
        local co = coroutine.running()
        if not seen[co] then seen[co] = true; nseen = nseen + 1 end
        if i % 7 == 0 then error("boom " .. i) end
        if i % 5 == 0 then coroutine.yield("own") end
        local res, err = client:user(id):get()
        return res and res.id, err, i
      end
    end
    local results = client:parallel(fns, { max_in_flight = 4 })
    assert.equal(60, #results)
    for i = 1, 60 do
      if i % 7 == 0 then
        assert.is_true(results[i].raised)
        assert.matches("boom " .. i, results[i][2])
      else
        assert.is_nil(results[i].raised)
        assert.equal(3, results[i].n)
        assert.equal(id, results[i][1])
        assert.equal(i, results[i][3])
      end
    end
    -- a function that raised takes its coroutine with it; the others reuse theirs
    assert.is_true(nseen <= 4 + 8, "coroutines: " .. nseen)
  end)

  it("runs a mixed workload of 200 calls with every result checked", function()
    local n = 50
    local ids = {}
    for i = 1, n do ids[i] = H.uid("mix") end
    local fns = {}
    for i = 1, n do
      fns[i] = function()
        local u = client:user(ids[i])
        local a = assert(u:create({ step = 1, i = i }))
        local b = assert(u:get())
        local c = assert(u:update({ step = 2, i = i }))
        local d = assert(u:delete())
        return a.data.step, b.data.i, c.data.step, d.duration ~= nil
      end
    end
    local results = client:parallel(fns, { max_in_flight = 16 })
    for i = 1, n do
      local r = results[i]
      assert.is_nil(r.raised, tostring(r[2]))
      assert.same({ n = 4, 1, i, 2, true }, r)
    end
    -- and all are gone
    local left = assert(client.users:get_many(ids))
    assert.equal(0, #left.users)
  end)

  it("overlaps slow requests: 32 calls of 200 ms take well under 32 x 200 ms", function()
    local slow = stream.connect(s.api_key, s.api_secret, "1", {
      base_url = s.base_url, transport = H.transport({ "X-Stream-Local-Delay: 200" }),
    })
    local id = H.uid("slow")
    assert(client:user(id):create({}))
    local fns = {}
    for i = 1, 32 do fns[i] = function() return slow:user(id):get() end end
    local t0 = socket.gettime()
    local results = slow:parallel(fns)
    local elapsed = socket.gettime() - t0
    for i = 1, 32 do assert.equal(id, results[i][1].id) end
    assert.is_true(elapsed < 32 * 0.2 / 4, "took " .. elapsed .. " s")
    assert.is_true(elapsed >= 0.19, "took " .. elapsed)
    slow:close()
  end)

  it("bounds the functions running at once with max_in_flight", function()
    local slow = stream.connect(s.api_key, s.api_secret, "1", {
      base_url = s.base_url, transport = H.transport({ "X-Stream-Local-Delay: 100" }),
    })
    local id = H.uid("bound")
    assert(client:user(id):create({}))
    local running, peak = 0, 0
    local fns = {}
    for i = 1, 12 do
      fns[i] = function()
        running = running + 1
        if running > peak then peak = running end
        local r = slow:user(id):get()
        running = running - 1
        return r
      end
    end
    local results = slow:parallel(fns, { max_in_flight = 4 })
    assert.equal(4, peak)
    assert.equal(12, #results)
    slow:close()
  end)

  it("bounds connections with max_connections; the other requests queue", function()
    local slow = stream.connect(s.api_key, s.api_secret, "1", {
      base_url = s.base_url, max_connections = 2,
      transport = H.transport({ "X-Stream-Local-Delay: 100" }),
    })
    local id = H.uid("conn")
    assert(client:user(id):create({}))
    local fns = {}
    for i = 1, 8 do fns[i] = function() return slow:user(id):get() end end
    local t0 = socket.gettime()
    local results = slow:parallel(fns)
    local elapsed = socket.gettime() - t0
    for i = 1, 8 do assert.equal(id, results[i][1].id) end
    assert.equal(2, slow:stats().connects)
    -- 8 requests of 100 ms over 2 connections: at least 4 rounds
    assert.is_true(elapsed >= 0.38, "took " .. elapsed)
    slow:close()
  end)

  it("keeps its kept-alive connections through a long run of 32 at a time", function()
    local c = stream.connect(s.api_key, s.api_secret, "1", { base_url = s.base_url })
    local user = c:user(H.uid("churn"))
    assert(user:get_or_create({}))
    local left = 2000
    local fns = {}
    for i = 1, 32 do
      fns[i] = function()
        while left > 0 do
          left = left - 1
          assert(user:get())
        end
      end
    end
    c:parallel(fns)
    local st = c:stats()
    assert.equal(2001, st.requests)
    -- one connection per function; none closed and reopened between bursts
    assert.is_true(st.connects <= 32, st.connects .. " connections opened")
    c:close()
  end)

  it("keeps calls from a coroutine it did not start blocking", function()
    local id = H.uid("own-co")
    assert(client:user(id):create({}))
    local co = coroutine.create(function()
      return client:user(id):get()
    end)
    local ok, res = coroutine.resume(co)
    assert.is_true(ok)
    assert.equal("dead", coroutine.status(co))
    assert.equal(id, res.id)
  end)

  it("raises on misuse", function()
    assert.has_error(function() client:parallel("x") end)
    assert.has_error(function() client:parallel({ 1 }) end)
    assert.has_error(function() client:parallel({}, { max_in_flight = 0 }) end)
    assert.has_error(function() client:parallel({}, { limit = 2 }) end)
    assert.same({}, client:parallel({}))
  end)
end)

describe("client:go / step / wait", function()
  local s, client

  setup(function()
    s = server.start({ faults = true })
    client = stream.connect(s.api_key, s.api_secret, "1", {
      base_url = s.base_url, transport = H.transport({ "X-Stream-Local-Delay: 150" }),
    })
  end)

  teardown(function()
    if client then client:close() end
    if s then s:stop() end
  end)

  it("counts pending tasks and step(0) never blocks", function()
    assert.is_nil(client:timeout())
    assert.same({ 0, 0 }, { client:pending() })
    local tasks = {}
    for i = 1, 5 do
      tasks[i] = client:go(function(n) return client:user(H.uid("go")):create({ n = n }) end, i)
    end
    local count, in_flight = client:pending()
    assert.equal(5, count)
    assert.equal(5, in_flight)
    local t = client:timeout()
    assert.is_number(t)
    assert.is_true(t >= 0 and t <= 0.05)
    local t0 = socket.gettime()
    for _ = 1, 20 do client:step(0) end
    assert.is_true(socket.gettime() - t0 < 0.1, "step(0) blocked")
    client:wait()
    assert.same({ 0, 0 }, { client:pending() })
    for i = 1, 5 do
      assert.is_true(tasks[i]:done())
      local res = tasks[i]:result()
      assert.equal(i, res.data.n)
    end
  end)

  it("runs from a game loop with bounded steps", function()
    local id = H.uid("loop")
    local got
    client:go(function()
      assert(client:user(id):create({ hp = 10 }))
      got = assert(client:user(id):get())
    end)
    local frames = 0
    while client:pending() > 0 and frames < 1000 do
      client:step(0.01)
      frames = frames + 1
    end
    assert.equal(10, got.data.hp)
    assert.is_true(frames > 1)
  end)

  it("resumes a task that yields on its own at the next step", function()
    local seen = {}
    client:go(function()
      seen[#seen + 1] = "a"
      coroutine.yield("mine")
      seen[#seen + 1] = "b"
    end)
    assert.same({ "a" }, seen)
    client:step(0)
    assert.same({ "a", "b" }, seen)
  end)
end)
