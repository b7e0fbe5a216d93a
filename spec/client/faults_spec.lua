-- The client against each fault the local server can inject: the error
-- kind, how many attempts were made and how long the call took.
local stream = require "stream"
local server = require "helpers.server"
local capture = require "helpers.capture"
local http = require "helpers.http"
local H = require "helpers.client"

local connect, timed = H.faulty, H.timed

-- Queues faults for the next requests that carry no fault header.
local function program(s, fault)
  local body = require("stream").json.encode(fault)
  local status = http.request("POST", s.url .. "/_local/faults", { body = body })
  assert.equal(201, status)
end

describe("faults", function()
  local s

  setup(function() s = server.start({ faults = true }) end)
  teardown(function() if s then s:stop() end end)
  before_each(function() http.request("DELETE", s.url .. "/_local/faults") end)

  it("dropped connection: transport, retried when idempotent", function()
    local c = connect(s, { "X-Stream-Local-Drop: 1" }, { retries = 2 })
    local res, err, elapsed = timed(function() return c:user("x"):get() end)
    assert.is_nil(res)
    assert.equal("transport", err.kind)
    assert.equal(3, err.attempts)
    assert.is_true(elapsed < 2, "took " .. elapsed)
    local _, err2 = c:user("x"):create({})
    assert.equal("transport", err2.kind)
    assert.equal(1, err2.attempts) -- it may have been stored: never sent twice
    c:close()
  end)

  it("dropped on a reused connection: a create is not re-sent, even by libcurl", function()
    -- libcurl re-sends a request by itself when a reused connection dies before any
    -- answer byte; for a create the server may have stored, that would be a duplicate
    local c = connect(s, nil, { retries = 2 })
    local id = H.uid("once")
    assert.equal(404, select(2, c:user(id):get()).status) -- the connection is now reused
    program(s, { fault = "drop", count = 1 })
    local res, err = c:user(id):create({ v = 1 })
    assert.is_nil(res)
    assert.equal("transport", err.kind)
    assert.is_true(err.sent)
    assert.equal(1, err.attempts)
    assert.equal(404, select(2, c:user(id):get()).status)
    -- an idempotent request on a reused connection still gets through
    program(s, { fault = "drop", count = 1 })
    assert(c:user(id):create({ v = 2 }, { get_or_create = true }))
    c:close()
  end)

  it("dropped once, then answered: the retry succeeds", function()
    local c = connect(s)
    local id = H.uid("drop")
    assert(c:user(id):create({ v = 1 }))
    program(s, { fault = "drop", count = 1 })
    local got, err = c:user(id):get()
    assert.is_nil(err)
    assert.equal(1, got.data.v)
    c:close()
  end)

  it("server error 500: api, not retried", function()
    local c = connect(s, { "X-Stream-Local-Raise: 1" })
    local _, err = c:user("x"):get()
    assert.equal("api", err.kind)
    assert.equal(500, err.status)
    assert.equal(1, err.attempts)
    assert.is_false(err.retryable)
    c:close()
  end)

  it("503 twice, then answered: retried with back-off", function()
    local c = connect(s, nil, { retries = 3 })
    local id = H.uid("flap")
    assert(c:user(id):create({ v = 2 }))
    program(s, { fault = "status", status = 503, count = 2 })
    local got, err, elapsed = timed(function() return c:user(id):update({ v = 3 }) end)
    assert.is_nil(err)
    assert.equal(3, got.data.v)
    -- back-off of at least half of 0.1 + 0.2 s
    assert.is_true(elapsed >= 0.14, "took " .. elapsed)
    c:close()
  end)

  it("429 with a near reset: waits for it, then succeeds, even for a create", function()
    local c = connect(s, nil, { max_retry_wait = 5 })
    program(s, { fault = "status", status = 429, reset_after = 1, count = 1 })
    local id = H.uid("rl")
    local got, err, elapsed = timed(function() return c:user(id):create({ v = 1 }) end)
    assert.is_nil(err)
    assert.equal(id, got.id)
    -- X-RateLimit-Reset has one-second resolution
    assert.is_true(elapsed < 2.5, "took " .. elapsed)
    c:close()
  end)

  it("429 with a far reset: the error carries its rate_limit at once", function()
    local c = connect(s, { "X-Stream-Local-Status: 429", "X-Stream-Local-Reset-After: 60" },
      { max_retry_wait = 5 })
    local _, err, elapsed = timed(function() return c:user("x"):get() end)
    assert.equal("api", err.kind)
    assert.equal(429, err.status)
    assert.equal(1, err.attempts)
    assert.equal(0, err.rate_limit.remaining)
    assert.is_true(err.rate_limit.reset >= os.time() + 50)
    assert.is_true(elapsed < 0.5, "took " .. elapsed)
    c:close()
  end)

  it("truncated body: transport, retried when idempotent, never for a create", function()
    local c = connect(s, { "X-Stream-Local-Truncate: 20" }, { retries = 1 })
    local _, err = c:user("x"):get()
    assert.equal("transport", err.kind)
    assert.equal(2, err.attempts)
    local _, err2 = c:user("x"):create({})
    assert.equal("transport", err2.kind)
    assert.equal(1, err2.attempts)
    c:close()
  end)

  it("non-JSON body on 200: decode, not retried", function()
    local c = connect(s, { "X-Stream-Local-Garbage: 1" })
    local _, err = c:user("x"):get()
    assert.equal("decode", err.kind)
    assert.equal(200, err.status)
    assert.equal(1, err.attempts)
    assert.matches("byte", err.detail)
    c:close()
  end)

  it("slow drip within the timeout: the answer arrives whole", function()
    local c = connect(s, { "X-Stream-Local-Drip: 600", "X-Stream-Local-Drip-Bytes: 8" }, { timeout = 3 })
    local got, err, elapsed = timed(function() return c:user("drip"):get() end)
    assert.is_nil(err)
    assert.equal("drip", got.id)
    assert.is_true(elapsed >= 0.4, "took " .. elapsed)
    c:close()
  end)

  it("slow drip beyond the timeout: timeout within the budget", function()
    local c = connect(s, { "X-Stream-Local-Drip: 5000" }, { timeout = 0.5, retries = 0 })
    local _, err, elapsed = timed(function() return c:user("drip"):get() end)
    assert.equal("timeout", err.kind)
    assert.equal(1, err.attempts)
    assert.is_true(elapsed >= 0.45 and elapsed < 1.5, "took " .. elapsed)
    c:close()
  end)

  it("delay beyond the timeout, with retries: bounded by total_timeout", function()
    local c = connect(s, { "X-Stream-Local-Delay: 5000" },
      { timeout = 0.3, total_timeout = 1, retries = 10 })
    local _, err, elapsed = timed(function() return c:user("x"):get() end)
    assert.equal("timeout", err.kind)
    assert.is_true(err.attempts >= 2)
    assert.is_true(elapsed < 1.4, "took " .. elapsed)
    c:close()
  end)

  it("oversized body: an error naming the limit, not retried, and no memory blow-up", function()
    local c = connect(s, { "X-Stream-Local-Oversize: 8388608" }, { max_response_bytes = 1048576 })
    local before = collectgarbage("count")
    local _, err = c:user("big"):get()
    assert.equal("transport", err.kind)
    assert.is_false(err.retryable)
    assert.equal(1, err.attempts)
    assert.matches("max_response_bytes", err.detail)
    assert.is_true(collectgarbage("count") - before < 4096)
    -- the same client goes on working
    c:close()
    local ok = connect(s)
    assert(ok:user(H.uid("after")):create({}))
    ok:close()
  end)

  it("a body under the limit but larger than usual comes back whole", function()
    local c = connect(s, { "X-Stream-Local-Oversize: 200000" })
    local got, err = c:user("big"):get()
    assert.is_nil(err)
    assert.equal("big", got.id)
    c:close()
  end)

  it("redirect: api error naming the location, not followed", function()
    local c = connect(s, { "X-Stream-Local-Redirect: 307", "X-Stream-Local-Location: http://other.invalid/x/" })
    local _, err = c:user("x"):update({ a = 1 })
    assert.equal("api", err.kind)
    assert.equal(307, err.status)
    assert.matches("other%.invalid", err.detail)
    assert.equal(1, err.attempts)
    c:close()
  end)
end)

describe("compressed answers", function()
  local function gzip_of_zeros(bytes)
    local p = assert(io.popen("head -c " .. bytes .. " /dev/zero | gzip -c"))
    local z = p:read("*a")
    p:close()
    return z
  end

  it("are capped after decompression", function()
    local z = gzip_of_zeros(8 * 1024 * 1024)
    assert.is_true(#z < 100000)
    local peer = capture.start({ status = 200, body = z,
      headers = { ["Content-Encoding"] = "gzip", ["Content-Type"] = "application/json" } })
    local c = stream.connect("k", "s", "1", { base_url = peer.url, max_response_bytes = 1048576 })
    local _, err = c:user("x"):get()
    assert.equal("transport", err.kind)
    assert.matches("max_response_bytes", err.detail)
    assert.equal(1, err.attempts)
    c:close(); peer.stop()
  end)

  it("are decoded when they fit", function()
    local p = assert(io.popen("printf '%s' '{\"id\":\"z\",\"data\":{}}' | gzip -c"))
    local z = p:read("*a"); p:close()
    local peer = capture.start({ status = 200, body = z,
      headers = { ["Content-Encoding"] = "gzip", ["Content-Type"] = "application/json" } })
    local c = stream.connect("k", "s", "1", { base_url = peer.url })
    local got, err = c:user("z"):get()
    assert.is_nil(err)
    assert.equal("z", got.id)
    assert.matches("[Aa]ccept%-[Ee]ncoding: [^\r\n]*gzip", peer.requests()[1])
    c:close(); peer.stop()
  end)
end)
