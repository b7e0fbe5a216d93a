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

  it("counts the time a request waited for a connection against its timeout", function()
    local slow = stream.connect(s.api_key, s.api_secret, "1", {
      base_url = s.base_url, max_connections = 1, timeout = 0.3, retries = 0,
      transport = H.transport({ "X-Stream-Local-Delay: 1000" }),
    })
    local t0 = socket.gettime()
    local results = slow:parallel({
      function() return slow:user("nobody"):get() end,
      function() return slow:user("nobody"):get() end,
    })
    local elapsed = socket.gettime() - t0
    local first, second = results[1][2], results[2][2]
    assert.equal("timeout", first.kind)
    assert.is_true(first.sent)
    -- the second waited out its whole timeout in the queue: failed there, never sent
    assert.equal("timeout", second.kind)
    assert.is_false(second.sent)
    assert.is_true(elapsed < 0.55, "took " .. elapsed .. " s: the queued one got a timeout of its own")
    assert.equal(1, slow:stats().connects)
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

describe("client:close while requests are in flight", function()
  local s, fast
  local http = require "helpers.http"

  setup(function()
    s = server.start({ faults = true })
    fast = H.server_client(s)
  end)

  teardown(function()
    if fast then fast:close() end
    if s then s:stop() end
  end)

  before_each(function() http.request("DELETE", s.url .. "/_local/faults") end)

  -- Lets `seconds` pass inside a task while the other tasks' transfers go on.
  local function pass(seconds)
    local until_t = socket.gettime() + seconds
    repeat
      socket.sleep(0.005)
      coroutine.yield()
    until socket.gettime() >= until_t
  end

  it("from a parallel task: parallel returns every result, calls in flight end as closed", function()
    local c = H.server_client(s)
    local known = H.uid("known")
    assert(fast:user(known):create({ k = 0 }))
    -- the next three requests (the writes, sent first) are answered after 600 ms
    local status = http.request("POST", s.url .. "/_local/faults",
      { body = '{"fault":"delay","ms":600,"count":3}' })
    assert.equal(201, status)
    local ids = { H.uid("w"), H.uid("w"), H.uid("w") }
    local fns = {}
    for k = 1, 3 do fns[k] = function() return c:user(ids[k]):create({ k = k }) end end
    fns[4] = function()
      pass(0.15)
      local res = c:user(known):get() -- answered at once: done before the close
      c:close()
      return res and res.data.k, "closed it"
    end
    local results = c:parallel(fns)
    assert.equal(4, #results)
    for k = 1, 3 do
      local r = results[k]
      assert.is_nil(r.raised, tostring(r[2]))
      assert.is_nil(r[1])
      assert.equal("closed", r[2].reason, tostring(r[2]))
      assert.equal("transport", r[2].kind)
      -- the write was on the wire: the caller must assume it reached Stream
      assert.is_true(r[2].sent)
      assert.is_false(r[2].retryable)
      assert.equal(1, r[2].attempts)
    end
    assert.same({ n = 2, 0, "closed it" }, results[4])
    -- the writes reached the server: it handles them after their delay
    for k = 1, 3 do
      local res
      for _ = 1, 100 do
        res = fast:user(ids[k]):get()
        if res then break end
        socket.sleep(0.02)
      end
      assert.equal(k, res and res.data.k)
    end
    -- a call started after the close is a caller's bug: it raises
    local ok, e = pcall(function() return c:user(known):get() end)
    assert.is_false(ok)
    assert.matches("on a closed client", e)
  end)

  it("with go tasks pending: step drains them, each call ends as closed", function()
    local c = stream.connect(s.api_key, s.api_secret, "1", {
      base_url = s.base_url, transport = H.transport({ "X-Stream-Local-Delay: 400" }),
    })
    local tasks = {}
    for i = 1, 3 do
      tasks[i] = c:go(function() return c:user(H.uid("gone")):create({ i = i }) end)
    end
    -- a task in a retry back-off: ends with the close too
    tasks[4] = c:go(function()
      return c:user(H.uid("gone")):get()
    end)
    for _ = 1, 5 do c:step(0.01) end
    assert.same({ 4, 4 }, { c:pending() })
    c:close()
    assert.equal(0, c:timeout())
    local steps = 0
    while c:step(0.05) > 0 and steps < 10 do steps = steps + 1 end
    assert.same({ 0, 0 }, { c:pending() })
    assert.is_nil(c:timeout())
    for i = 1, 4 do
      assert.is_true(tasks[i]:done())
      local res, err = tasks[i]:result()
      assert.is_nil(res)
      assert.equal("closed", err.reason, tostring(err))
    end
    c:wait() -- nothing left: returns
  end)

  it("ends a retry back-off at once and sends nothing more", function()
    local c = H.server_client(s, { retries = 5 })
    -- every attempt of the read fails with a 503 (sent again after a back-off)
    local status = http.request("POST", s.url .. "/_local/faults",
      { body = '{"fault":"status","status":503,"count":1}' })
    assert.equal(201, status)
    local task = c:go(function() return c:user(H.uid("retry")):get() end)
    local t0 = socket.gettime()
    for _ = 1, 20 do
      c:step(0.005)
      if c:pending() == 1 and select(2, c:pending()) == 0 then break end -- in its back-off
    end
    c:close()
    local steps = 0
    while c:step(0.05) > 0 and steps < 10 do steps = steps + 1 end
    assert.is_true(task:done())
    local res, err = task:result()
    assert.is_nil(res)
    assert.equal("closed", err.reason, tostring(err))
    assert.is_false(err.sent)
    assert.is_true(socket.gettime() - t0 < 1, "the back-off was waited for")
  end)
end)
