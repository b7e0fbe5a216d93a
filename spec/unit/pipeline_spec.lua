-- The request pipeline's policy (retries, back-off, deadline, URLs, errors)
-- against a scripted transport and a fake clock: every wait and timeout is
-- exact, so the rules are pinned down without a network or real time. The
-- real HTTP behaviour is specified in spec/client/.
local core = require "stream.core"
local Client = require "stream.client"
local request = require "stream.request"
local retry = require "stream.retry"

-- A transport that answers from a script and keeps a fake clock. Each
-- script entry: {status =, body =, headers =} or {fail = {...}}, with
-- `took` seconds of clock time (a request that would take longer than its
-- timeout ends in a timeout after the request was written).
local function fake(script)
  local clock = { t = 100, sleeps = {}, sent = {}, settings = nil }
  local T = {}
  T.__index = T
  function T.new(_, settings)
    clock.settings = settings
    return setmetatable({}, T)
  end
  function T.request(_, req)
    local copy = {}
    for k, v in pairs(req) do copy[k] = v end
    copy.at = clock.t
    clock.sent[#clock.sent + 1] = copy
    local step = table.remove(script, 1) or error("the script has no answer left")
    local took = step.took or 0.01
    local limit = req.timeout or clock.settings.timeout
    if took > limit then
      clock.t = clock.t + limit
      return nil, { kind = "timeout", message = "timed out", sent = true, reason = "transfer" }
    end
    clock.t = clock.t + took
    if step.fail then return nil, step.fail end
    return { status = step.status, body = step.body or "{}", headers = step.headers or {} }
  end
  function T.now() return clock.t end
  function T.sleep(_, s)
    clock.sleeps[#clock.sleeps + 1] = s
    clock.t = clock.t + s
  end
  function T.perform() return 0 end
  function T.timeout() return nil end
  function T.stats() return { requests = #clock.sent } end
  function T.close() end
  return T, clock
end

local function client(script, opts)
  local T, clock = fake(script)
  local c = Client.new(core, {
    api_key = "key one", secret = "a-secret-for-the-unit-specs-0123", base_url = "http://h/api/v1.0/",
    options = opts or {}, epoch = function() return 1000 end, random = function() return 0.5 end,
  }, T)
  return c, clock
end

local REFUSED = { fail = { kind = "transport", message = "refused", sent = false, reason = "connect" } }
local LOST = { fail = { kind = "transport", message = "reset", sent = true, reason = "transfer" } }

describe("request pipeline: retries", function()
  it("sends an idempotent request again after 503, with growing back-off", function()
    local c, clock = client({ { status = 503 }, { status = 503 }, { status = 200, body = '{"id":"a"}' } })
    local res = assert(c:_request({ method = "GET", path = "user/a/", idempotent = true }))
    assert.equal("a", res.id)
    assert.equal(3, #clock.sent)
    -- random() = 0.5: each wait is 75 % of 0.1 * 2^(n-1)
    assert.equal(2, #clock.sleeps)
    assert.near(0.075, clock.sleeps[1], 1e-9)
    assert.near(0.15, clock.sleeps[2], 1e-9)
  end)

  it("never sends a non-idempotent request again once it may have arrived", function()
    for _, step in ipairs({ { status = 503 }, { status = 502 }, LOST,
      { took = 20 } }) do
      local c, clock = client({ step, { status = 201 } })
      local res, err = c:_request({ method = "POST", path = "user/", body = "{}", idempotent = false })
      assert.is_nil(res)
      assert.equal(1, err.attempts)
      assert.equal(1, #clock.sent)
      assert.is_true(err.sent)
    end
  end)

  it("sends a non-idempotent request again when it never left (sent == false)", function()
    local c, clock = client({ REFUSED, { status = 201, body = '{"id":"a"}' } })
    assert(c:_request({ method = "POST", path = "user/", body = "{}", idempotent = false }))
    assert.equal(2, #clock.sent)
  end)

  it("waits for a near rate-limit reset after 429, for any request", function()
    local c, clock = client({ { status = 429, headers = { ["x-ratelimit-reset"] = "1002" } }, { status = 201 } })
    assert(c:_request({ method = "POST", path = "user/", body = "{}", idempotent = false }))
    assert.equal(1, #clock.sleeps)
    assert.near(2 + 0.5 * retry.RESET_SLACK, clock.sleeps[1], 1e-9)
  end)

  it("gives up on a 429 whose reset is beyond max_retry_wait", function()
    local c, clock = client({ { status = 429, headers = { ["x-ratelimit-reset"] = "1060" } } }, { max_retry_wait = 5 })
    local _, err = c:_request({ method = "GET", path = "user/a/", idempotent = true })
    assert.equal(429, err.status)
    assert.equal(1, #clock.sent)
    assert.same({}, clock.sleeps)
  end)

  it("never retries an answer over max_response_bytes", function()
    local c, clock = client({ { fail = { kind = "transport", message = "big", sent = true, reason = "limit" } } })
    local _, err = c:_request({ method = "GET", path = "user/a/", idempotent = true })
    assert.is_false(err.retryable)
    assert.equal("limit", err.reason)
    assert.equal(1, #clock.sent)
  end)

  it("never sends again once the client was closed (reason 'closed'), sent or not", function()
    for _, sent in ipairs({ true, false }) do
      local c, clock = client({ { fail = { kind = "transport", message = "closed", sent = sent, reason = "closed" } } })
      local _, err = c:_request({ method = "GET", path = "user/a/", idempotent = true })
      assert.equal("closed", err.reason)
      assert.equal(sent, err.sent)
      assert.is_false(err.retryable)
      assert.equal(1, #clock.sent)
      assert.same({}, clock.sleeps)
    end
  end)

  it("ends a call in flight on close: the scheduler fails what is sent after it", function()
    local c, clock = client({ REFUSED })
    -- the first attempt is refused; the client is closed during its back-off
    local sleep = c._sched.sleep
    c._sched.sleep = function(sched, seconds)
      c:close()
      return sleep(sched, seconds)
    end
    local _, err = c:_request({ method = "GET", path = "user/a/", idempotent = true })
    assert.equal("closed", err.reason)
    assert.is_false(err.sent)
    assert.equal(2, err.attempts)
    assert.equal(1, #clock.sent)
    assert.same({}, clock.sleeps) -- no back-off waited after the close
  end)

  it("stops after `retries` attempts more than the first", function()
    local c, clock = client({ REFUSED, REFUSED, REFUSED, REFUSED }, { retries = 2 })
    local _, err = c:_request({ method = "GET", path = "user/a/", idempotent = true })
    assert.equal(3, err.attempts)
    assert.equal(3, #clock.sent)
    local c0, clock0 = client({ REFUSED }, { retries = 0 })
    assert.is_nil((c0:_request({ method = "GET", path = "user/a/", idempotent = true })))
    assert.equal(1, #clock0.sent)
  end)

  it("does not retry 4xx answers", function()
    local c, clock = client({ { status = 404, body = '{"code":404}' } })
    local _, err = c:_request({ method = "GET", path = "user/a/", idempotent = true })
    assert.equal(404, err.status)
    assert.is_true(err.sent)
    assert.equal(1, #clock.sent)
  end)
end)

describe("request pipeline: deadline", function()
  it("shortens each attempt to what is left of total_timeout, waits included", function()
    local c, clock = client({ { took = 60 }, { took = 60 }, { took = 60 } },
      { timeout = 0.4, total_timeout = 1.1, retries = 5 })
    local t0 = clock.t
    local _, err = c:_request({ method = "GET", path = "user/a/", idempotent = true })
    assert.equal("timeout", err.kind)
    assert.is_true(err.sent)
    assert.is_true(clock.t - t0 <= 1.1 + 1e-9, "took " .. (clock.t - t0))
    -- 0.4 s, a 0.075 s wait, 0.4 s, a 0.15 s wait, then what is left: 0.075 s
    assert.equal(3, #clock.sent)
    assert.equal(0.4, clock.sent[1].timeout)
    local last = clock.sent[#clock.sent]
    assert.is_true(last.timeout < 0.4 and last.timeout > 0)
    assert.near(0.075, last.timeout, 1e-9)
    assert.is_true(last.at + last.timeout <= t0 + 1.1 + 1e-9)
  end)

  it("does not start a retry whose back-off would end past the deadline", function()
    local c, clock = client({ { status = 503, took = 0.95 }, { status = 200 } }, { timeout = 2, total_timeout = 1 })
    local _, err = c:_request({ method = "GET", path = "user/a/", idempotent = true })
    -- 0.95 s gone, a 0.075 s back-off would end at 1.025 s
    assert.equal(503, err.status)
    assert.equal(1, #clock.sent)
    assert.same({}, clock.sleeps)
  end)

  it("sends no per-attempt timeout without total_timeout (the transport's own applies)", function()
    local c, clock = client({ { status = 200 } })
    assert(c:_request({ method = "GET", path = "user/a/", idempotent = true }))
    assert.is_nil(clock.sent[1].timeout)
    assert.equal(10, clock.settings.timeout)
  end)
end)

describe("request pipeline: descriptions", function()
  it("builds URLs with api_key first and the query in key order, every value escaped", function()
    local c, clock = client({ { status = 200 } })
    assert(c:_request({ method = "GET", path = "users/", idempotent = true,
      query = { z = "a b&c", ids = "x,y", limit = 25, enrich = true, off = false },
      raw_query = "id_lt=abc" }))
    assert.equal("http://h/api/v1.0/users/?api_key=key%20one&enrich=true&ids=x%2Cy&limit=25&off=false"
      .. "&z=a%20b%26c&id_lt=abc", clock.sent[1].url)
    assert.equal("GET", clock.sent[1].method)
    assert.is_true(clock.sent[1].idempotent)
  end)

  it("builds the same URL whatever the table order", function()
    local a = request.url("B/", "?api_key=k", { path = "p/", query = { b = 1, a = 2, c = 3 } })
    local b = request.url("B/", "?api_key=k", { path = "p/", query = { c = 3, a = 2, b = 1 } })
    assert.equal("B/p/?api_key=k&a=2&b=1&c=3", a)
    assert.equal(a, b)
  end)

  it("puts the description's method and path on every error", function()
    local c = client({ REFUSED, { status = 409, body = '{"code":4,"detail":"exists"}' } }, { retries = 0 })
    local _, e1 = c:_request({ method = "DELETE", path = "user/x/", idempotent = true })
    assert.same({ "DELETE", "user/x/", false, "connect" }, { e1.method, e1.path, e1.sent, e1.reason })
    assert.matches("%[DELETE user/x/%]$", tostring(e1))
    local _, e2 = c:_request({ method = "POST", path = "user/", body = "{}" })
    assert.same({ "POST", "user/", 409, true }, { e2.method, e2.path, e2.status, e2.sent })
  end)

  it("raises for a malformed description", function()
    local c = client({})
    assert.has_error(function() c:_request({ method = "PATCH", path = "user/" }) end)
    assert.has_error(function() c:_request({ method = "GET", path = "user" }) end)
    assert.has_error(function() c:_request({ method = "GET", path = "u/", query = { f = {} } }) end)
  end)

  it("gives the transport the headers as a name/value map", function()
    local _, clock = client({})
    local h = clock.settings.headers
    assert.equal("jwt", h["stream-auth-type"])
    assert.equal("application/json", h.Accept)
    assert.matches("^stream%-lua%-client/", h["User-Agent"])
    assert.is_nil(h.Expect) -- libcurl's idiom stays in the curl transport
    assert.same({ ["Content-Type"] = "application/json" }, clock.settings.body_headers)
  end)
end)

describe("users descriptions", function()
  it("mark only what may be sent twice as idempotent", function()
    local script = {}
    for i = 1, 9 do script[i] = { status = 200 } end
    local c, clock = client(script)
    local calls = {
      { function() return c:user("a"):create({}) end, "POST", "user/", false },
      { function() return c:user("a"):get_or_create({}) end, "POST", "user/", true },
      { function() return c:user("a"):get() end, "GET", "user/a/", true },
      { function() return c:user("a"):profile() end, "GET", "user/a/", true },
      { function() return c:user("a"):update({}) end, "PUT", "user/a/", true },
      { function() return c:user("a"):delete() end, "DELETE", "user/a/", true },
      { function() return c.users:add_many({ { id = "a" } }, { override = true }) end, "POST", "users/", false },
      { function() return c.users:get_many({ "a", "b" }) end, "GET", "users/", true },
      { function() return c.users:delete_many({ "a" }) end, "DELETE", "users/", true },
    }
    for i, call in ipairs(calls) do
      call[1]()
      local sent = clock.sent[i]
      assert.equal(call[2], sent.method, i)
      assert.equal("http://h/api/v1.0/" .. call[3], sent.url:match("^[^?]+"), i)
      assert.equal(call[4], sent.idempotent, i)
    end
    assert.matches("&get_or_create=true$", clock.sent[2].url)
    assert.matches("&with_follow_counts=true$", clock.sent[4].url)
    assert.matches("&ids=a%%2Cb$", clock.sent[8].url)
  end)
end)


describe("user:get on one handle", function()
  it("follows a changed id and refuses a bad one every time, sending nothing", function()
    local c, clock = client({ { status = 200 }, { status = 200 }, { status = 200 } })
    local u = c:user("a")
    assert(u:get())
    assert(u:get())
    u.id = "b"
    assert(u:get())
    assert.equal(3, #clock.sent)
    assert.equal("http://h/api/v1.0/user/a/", clock.sent[2].url:match("^[^?]+"))
    assert.equal("http://h/api/v1.0/user/b/", clock.sent[3].url:match("^[^?]+"))
    local bad = c:user("no/such")
    for _ = 1, 2 do
      local res, err = bad:get()
      assert.is_nil(res)
      assert.equal("invalid", err.kind)
      assert.equal("GET", err.method)
    end
    u.id = "b c"
    local res, err = u:get()
    assert.is_nil(res)
    assert.equal("invalid", err.kind)
    assert.equal(3, #clock.sent)
  end)
end)

describe("the client's pipeline", function()
  local function with_services(script, services)
    local T, clock = fake(script)
    local c = Client.new(core, {
      api_key = "k", secret = "a-secret-for-the-unit-specs-0123", base_url = "http://h/api/v1.0/",
      services = services, options = {}, epoch = function() return 1000 end,
    }, T)
    return c, clock
  end

  it("is a public field of the client, and client:_request sends through it", function()
    local c, clock = client({ { status = 200 }, { status = 200 } })
    assert.equal("stream.pipeline", tostring(c.pipeline))
    assert(c.pipeline:send({ method = "GET", path = "a/", idempotent = true }))
    assert(c:_request({ method = "GET", path = "b/", idempotent = true }))
    assert.equal("http://h/api/v1.0/b/?api_key=key%20one", clock.sent[2].url)
  end)

  it("sends to the base URL of the description's service; api is the default", function()
    local c, clock = with_services({ { status = 200 }, { status = 200 } },
      { personalization = "http://p/personalization/v1.0/" })
    assert(c.pipeline:send({ method = "GET", path = "a/", service = "personalization", idempotent = true }))
    assert(c.pipeline:send({ method = "GET", path = "b/", service = "api", idempotent = true }))
    assert.equal("http://p/personalization/v1.0/a/?api_key=k", clock.sent[1].url)
    assert.equal("http://h/api/v1.0/b/?api_key=k", clock.sent[2].url)
  end)

  it("raises for an unknown service: a bug in an area", function()
    local c, clock = client({})
    assert.has_error(function() c.pipeline:send({ method = "GET", path = "a/", service = "nope" }) end,
      "stream.request: unknown service 'nope'")
    assert.equal(0, #clock.sent)
  end)

  it("gives the transport no header map for the common request", function()
    local c, clock = client({ { status = 200 } })
    assert(c.pipeline:send({ method = "POST", path = "a/", body = "{}" }))
    assert.is_nil(clock.sent[1].headers)
  end)

  it("gives the transport the description's headers, and Content-Type for raw bytes", function()
    local c, clock = client({ { status = 200 }, { status = 200 } })
    assert(c.pipeline:send({ method = "POST", path = "a/", headers = { ["X-One"] = "1" }, body = "{}" }))
    assert.same({ ["X-One"] = "1" }, clock.sent[1].headers)
    local extra = { ["X-One"] = "1" }
    assert(c.pipeline:send({ method = "POST", path = "files/", content_type = "image/png",
      headers = extra, body = "\137PNG\r\n\0" }))
    assert.same({ ["X-One"] = "1", ["Content-Type"] = "image/png" }, clock.sent[2].headers)
    assert.equal("\137PNG\r\n\0", clock.sent[2].body)
    assert.same({ ["X-One"] = "1" }, extra) -- the description's table is left as it was
  end)

  it("encodes a table body with the core's codec", function()
    local c, clock = client({ { status = 200 } })
    assert(c.pipeline:send({ method = "POST", path = "a/", body = { ids = { "x", "y" } } }))
    assert.equal('{"ids":["x","y"]}', clock.sent[1].body)
  end)

  it("answers a table body JSON cannot hold with an invalid error naming the field, sending nothing", function()
    local c, clock = client({})
    local res, err = c.pipeline:send({ method = "POST", path = "a/", body = { data = { f = print } } })
    assert.is_nil(res)
    assert.equal("invalid", err.kind)
    assert.matches("^data%.f: ", err.detail)
    assert.is_table(err.fields.data)
    assert.same({ "POST", "a/", false }, { err.method, err.path, err.sent })
    assert.equal(0, #clock.sent)
  end)

  it("raises for a body it cannot send", function()
    local c = client({})
    assert.has_error(function() c.pipeline:send({ method = "POST", path = "a/", body = 1 }) end)
    assert.has_error(function()
      c.pipeline:send({ method = "POST", path = "a/", body = {}, content_type = "image/png" })
    end)
    assert.has_error(function() c.pipeline:send({ method = "POST", path = "a/", headers = "X: 1" }) end)
  end)

  it("raises once the client is closed", function()
    local c = client({})
    c:close()
    assert.has_error(function() c.pipeline:send({ method = "GET", path = "user/a/" }) end,
      "stream: GET user/a/ on a closed client")
  end)

  it("lends the areas the codec, the wall clock, the scrubber and signing", function()
    local c = client({})
    assert.equal('{"a":[1,2]}', c.pipeline:encode({ a = { 1, 2 } }))
    assert.same({ a = 1 }, c.pipeline:decode('{"a":1}'))
    assert.equal(1000, c.pipeline:epoch())
    assert.equal("x [redacted] y", c.pipeline:scrub("x a-secret-for-the-unit-specs-0123 y"))
    local payload = '{"resource":"*"}'
    assert.equal(core.hs256("a-secret-for-the-unit-specs-0123", payload), c.pipeline:sign(payload, "f"))
  end)

  it("refuses to sign for a client that holds a token", function()
    local T = fake({})
    local token = core.hs256("s", '{"user_id":"alice"}')
    local c = Client.new(core, { api_key = "k", token = token, claims = { user_id = "alice" },
      base_url = "http://h/api/v1.0/", options = {} }, T)
    assert.has_error(function() c.pipeline:sign("{}", "feed:token") end,
      "feed:token needs the API secret; this client holds a user token")
  end)
end)

describe("request.object", function()
  it("joins members in the order given, lists as arrays, leaving nil members out", function()
    assert.equal('{"id":"a","data":{"x":1},"users":["1","2"],"override":false}',
      request.object("id", '"a"', "data", '{"x":1}', "skip", nil, "users", { '"1"', '"2"' },
        "override", "false"))
    assert.equal('{"list":[]}', request.object("list", {}))
    assert.equal('{"b":"x"}', request.object("a", nil, "b", '"x"'))
    assert.equal('{"a":"x"}', request.object("a", '"x"', "b", nil))
    assert.equal('{"a":1,"b":2}', request.object("a", "1", "b", "2"))
    assert.equal('{"a":1}', request.object("a", "1"))
    assert.equal("{}", request.object())
  end)
end)
