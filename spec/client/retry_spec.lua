-- Retries, back-off and call budgets against the local server's faults.
local stream = require "stream"
local server = require "helpers.server"
local capture = require "helpers.capture"
local H = require "helpers.client"

local faulty, timed = H.faulty, H.timed

describe("retries", function()
  local s

  setup(function() s = server.start({ faults = true }) end)
  teardown(function() if s then s:stop() end end)

  it("repeats an idempotent request after 503, with back-off, and counts attempts", function()
    local c = faulty(s, { "X-Stream-Local-Status: 503" }, { retries = 3 })
    local res, err, elapsed = timed(function() return c:user("x"):get() end)
    assert.is_nil(res)
    assert.equal(503, err.status)
    assert.equal(4, err.attempts)
    assert.is_true(err.retryable)
    -- back-off of at least half of 0.1 + 0.2 + 0.4 s
    assert.is_true(elapsed >= 0.33, "took " .. elapsed)
    assert.equal(4, c:stats().requests)
    c:close()
  end)

  it("never repeats a plain create after an answer", function()
    local c = faulty(s, { "X-Stream-Local-Status: 503" })
    local _, err = c:user("x"):create({})
    assert.equal(503, err.status)
    assert.equal(1, err.attempts)
    assert.equal(1, c:stats().requests)
    c:close()
  end)

  it("repeats get-or-create, which cannot change the outcome", function()
    local c = faulty(s, { "X-Stream-Local-Status: 502" }, { retries = 1 })
    local _, err = c:user("x"):get_or_create({})
    assert.equal(502, err.status)
    assert.equal(2, err.attempts)
    c:close()
  end)

  it("does not repeat 4xx answers other than 429", function()
    local c = H.server_client(s)
    local _, err = c:user(H.uid("missing")):get()
    assert.equal(404, err.status)
    assert.equal(1, err.attempts)
    c:close()
  end)

  it("repeats even a create when the connection could not be made", function()
    local port = capture.free_port()
    local c = stream.connect("k", "secret-0123456789", "1", {
      base_url = "http://127.0.0.1:" .. port .. "/", retries = 2 })
    local _, err = c:user("x"):create({})
    assert.equal("transport", err.kind)
    assert.equal(3, err.attempts)
    c:close()
  end)

  it("says err.sent == false when the connection was refused: nothing arrived", function()
    local port = capture.free_port()
    local c = stream.connect("k", "secret-0123456789", "1", {
      base_url = "http://127.0.0.1:" .. port .. "/", retries = 0 })
    local _, err = c:user("x"):create({})
    assert.equal("transport", err.kind)
    assert.is_false(err.sent)
    assert.equal("connect", err.reason)
    c:close()
  end)

  it("says err.sent == true for a timeout after the request was written", function()
    local c = faulty(s, { "X-Stream-Local-Delay: 3000" }, { timeout = 0.3, retries = 0 })
    local _, err = c:user("x"):create({})
    assert.equal("timeout", err.kind)
    assert.is_true(err.sent)
    assert.equal("transfer", err.reason)
    c:close()
  end)

  it("says err.sent == true for an answer and false for a refused argument", function()
    local c = H.server_client(s)
    local _, err = c:user(H.uid("missing")):get()
    assert.is_true(err.sent)
    _, err = c:user("bad id"):get()
    assert.equal("invalid", err.kind)
    assert.is_false(err.sent)
    c:close()
  end)

  it("does not repeat with retries = 0", function()
    local c = faulty(s, { "X-Stream-Local-Status: 503" }, { retries = 0 })
    local _, err = c:user("x"):get()
    assert.equal(1, err.attempts)
    c:close()
  end)

  it("keeps a call within total_timeout, retries and waits included", function()
    local c = faulty(s, { "X-Stream-Local-Delay: 3000" }, { timeout = 0.4, total_timeout = 1, retries = 5 })
    local res, err, elapsed = timed(function() return c:user("x"):get() end)
    assert.is_nil(res)
    assert.equal("timeout", err.kind)
    assert.is_true(err.attempts >= 2, "attempts " .. err.attempts)
    assert.is_true(elapsed < 1.3, "took " .. elapsed)
    c:close()
  end)

  it("keeps a single attempt within its timeout", function()
    local c = faulty(s, { "X-Stream-Local-Delay: 3000" }, { timeout = 0.25, retries = 0 })
    local _, err, elapsed = timed(function() return c:user("x"):get() end)
    assert.equal("timeout", err.kind)
    assert.is_true(elapsed >= 0.24 and elapsed < 0.6, "took " .. elapsed)
    c:close()
  end)

  it("backs off without blocking the other tasks", function()
    -- Each call backs off 0.35 to 0.7 s in all; four of them one after the
    -- other would need at least 1.4 s.
    local bad = faulty(s, { "X-Stream-Local-Status: 503" }, { retries = 3 })
    local fns = {}
    for i = 1, 4 do fns[i] = function() local _, e = bad:user("x"):get(); return e.attempts end end
    local results, _, elapsed = timed(function() return bad:parallel(fns) end)
    for i = 1, 4 do assert.equal(4, results[i][1]) end
    assert.is_true(elapsed < 1.2, "took " .. elapsed)
    bad:close()
  end)
end)
