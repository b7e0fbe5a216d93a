-- A request's own headers (req.headers) and bodies of any bytes through the
-- curl transport, against a peer that records every request byte for byte
-- (helpers/recorder.lua). The same cases through the ngx transport inside
-- nginx are spec/openresty/headers_spec.lua.
local core = require "stream.core"
local T = require "stream.transport.curl"
local recorder = require "helpers.recorder"

local values = recorder.values

local SETTINGS = {
  timeout = 5, connect_timeout = 5, max_response_bytes = 1048576,
  headers = { Authorization = "a.b.c", ["stream-auth-type"] = "jwt", Accept = "application/json",
    ["User-Agent"] = "headers-spec/1" },
  body_headers = { ["Content-Type"] = "application/json" },
}

local function transport(extra)
  local s = {}
  for k, v in pairs(SETTINGS) do s[k] = v end
  for k, v in pairs(extra or {}) do s[k] = v end
  return T.new(core, s)
end

-- Every byte value, NUL first and last, and a run of NULs.
local BINARY = (function()
  local b = {}
  for i = 0, 255 do b[#b + 1] = string.char(i) end
  return "\0" .. table.concat(b) .. string.rep("\0", 64) .. "\r\n\r\nend\0"
end)()

describe("curl transport: a request's own headers", function()
  local peer, t

  setup(function()
    peer = recorder.start()
  end)
  teardown(function()
    if t then t:close() end
    if peer then peer.stop() end
  end)
  before_each(function()
    t = transport({ max_connections = 1 }) -- one pooled easy handle for every request
  end)
  after_each(function()
    t:close()
  end)

  -- Sends req and answers the request the peer recorded for it.
  local function send(req)
    local before = #peer.requests()
    req.url = req.url or (peer.url .. "/p/")
    local res, err = t:request(req)
    assert(res, err and err.message)
    assert.equal(200, res.status)
    local seen = peer.requests()
    assert.equal(before + 1, #seen)
    return seen[#seen]
  end

  it("sends an extra header besides the transport's own", function()
    local r = send({ method = "GET", headers = { ["X-Trace"] = "t-1" } })
    assert.same({ "t-1" }, values(r.head, "x-trace"))
    assert.same({ "a.b.c" }, values(r.head, "authorization"))
    assert.same({ "application/json" }, values(r.head, "accept"))
    assert.same({}, values(r.head, "content-type"))
  end)

  it("replaces a fixed header of the same name in any case, never doubles it", function()
    local ct = "multipart/form-data; boundary=----x1"
    local r = send({ method = "POST", body = "--x--", headers = { ["content-type"] = ct } })
    assert.same({ ct }, values(r.head, "content-type"))
    assert.same({ "5" }, values(r.head, "content-length"))
    assert.same({}, values(r.head, "expect"))
    r = send({ method = "GET", headers = { ACCEPT = "image/png", ["user-agent"] = "other/2" } })
    assert.same({ "image/png" }, values(r.head, "accept"))
    assert.same({ "other/2" }, values(r.head, "user-agent"))
    assert.same({ "a.b.c" }, values(r.head, "authorization"))
  end)

  it("sends a header with an empty value as an empty header", function()
    local r = send({ method = "GET", headers = { ["X-Empty"] = "" } })
    assert.same({ "" }, values(r.head, "x-empty"))
  end)

  it("sends bodies with NUL bytes byte-exact with their Content-Length", function()
    for _, idempotent in ipairs({ true, false }) do -- a copied body and a `once` one
      local r = send({ method = "POST", body = BINARY, idempotent = idempotent })
      assert.equal(BINARY, r.body)
      assert.same({ tostring(#BINARY) }, values(r.head, "content-length"))
      r = send({ method = "PUT", body = BINARY, idempotent = idempotent,
        headers = { ["Content-Type"] = "application/octet-stream" } })
      assert.equal(BINARY, r.body)
      assert.same({ tostring(#BINARY) }, values(r.head, "content-length"))
      assert.same({ "application/octet-stream" }, values(r.head, "content-type"))
    end
  end)

  it("refuses a value with CR LF as 'invalid' and sends nothing", function()
    local before = #peer.requests()
    local res, err = t:request({ method = "POST", url = peer.url .. "/p/", body = "{}",
      headers = { ["X-Evil"] = "a\r\nInjected: 1" } })
    assert.is_nil(res)
    assert.equal("invalid", err.kind)
    assert.is_false(err.sent)
    assert.equal("header", err.reason)
    assert.matches("X-Evil", err.message, 1, true)
    assert.not_matches("Injected", err.message, 1, true)
    send({ method = "GET" }) -- the peer has answered it: anything sent before is recorded
    local seen = peer.requests()
    assert.equal(before + 1, #seen)
    assert.not_matches("Injected", seen[#seen].raw, 1, true)
  end)

  it("refuses other names and values HTTP does not allow, and the transport's own", function()
    local bad = {
      { ["X-A"] = "a\nb" }, { ["X-A"] = "a\rb" }, { ["X-A"] = "a\0b" }, { ["X-A"] = "a\127" },
      { ["X A"] = "v" }, { ["X:A"] = "v" }, { [""] = "v" }, { ["X\r\nA"] = "v" },
      { ["X-A"] = 1 }, { [1] = "v" }, { ["X-A"] = true },
      { Host = "elsewhere" }, { ["content-length"] = "1" }, { ["Transfer-Encoding"] = "chunked" },
      { ["X-A"] = "1", ["x-a"] = "2" },
    }
    local before = #peer.requests()
    for i, headers in ipairs(bad) do
      local res, err = t:request({ method = "GET", url = peer.url .. "/p/", headers = headers })
      assert.is_nil(res, i)
      assert.equal("invalid", err.kind, i)
      assert.is_false(err.sent, i)
      assert.equal("header", err.reason, i)
    end
    local res, err = t:request({ method = "GET", url = peer.url .. "/p/", headers = "X-A: 1" })
    assert.is_nil(res)
    assert.equal("invalid", err.kind)
    send({ method = "GET" })
    assert.equal(before + 1, #peer.requests())
  end)

  it("allows tab and bytes above 127 in a value", function()
    local r = send({ method = "GET", headers = { ["X-A"] = "a\tb \195\169" } })
    assert.same({ "a\tb \195\169" }, values(r.head, "x-a"))
  end)

  it("sends a request without req.headers as before, with an empty map the same bytes", function()
    local get = send({ method = "GET" })
    local post = send({ method = "POST", body = "{}" })
    assert.same({ "application/json" }, values(post.head, "content-type"))
    assert.same({}, values(get.head, "content-type"))
    assert.same({}, values(post.head, "expect"))
    assert.equal(get.head, send({ method = "GET", headers = {} }).head)
    assert.equal(post.head, send({ method = "POST", body = "{}", headers = {} }).head)
  end)

  it("leaves nothing of a request's own headers on the pooled handle", function()
    local plain_get = send({ method = "GET" }).head
    local plain_post = send({ method = "POST", body = "{}" }).head
    send({ method = "POST", body = "{}", headers = { ["Content-Type"] = "text/plain", ["X-B"] = "1" } })
    assert.equal(plain_get, send({ method = "GET" }).head)
    send({ method = "GET", headers = { ["X-C"] = "1" } })
    assert.equal(plain_post, send({ method = "POST", body = "{}" }).head)
    send({ method = "GET", headers = { ["X-C"] = "1" } })
    assert.equal(plain_get, send({ method = "GET" }).head)
  end)

  it("hands a refused submit back finished, listed by the next perform", function()
    local ok = t:submit({ method = "GET", url = peer.url .. "/p/", headers = { ["X-Ok"] = "1" } })
    local bad = t:submit({ method = "GET", url = peer.url .. "/p/", headers = { ["X-A"] = "\n" } })
    assert.is_true(bad:done())
    assert.equal(0, t:timeout())
    local res, err = bad:result()
    assert.is_nil(res)
    assert.equal("invalid", err.kind)
    assert.is_false(err.sent)
    local listed = {}
    local started = core.monotime()
    while not (listed[ok] and listed[bad]) do
      local done = {}
      local _, n = t:perform(1, done)
      for i = 1, n do listed[done[i]] = true end
      assert.is_true(core.monotime() - started < 5)
    end
    assert.equal(200, assert(ok:result()).status)
    local seen = peer.requests()
    assert.same({ "1" }, values(seen[#seen].head, "x-ok"))
  end)
end)

describe("curl transport under the scheduler", function()
  it("resumes a task whose request is refused, beside tasks whose requests go out", function()
    local scheduler = require "stream.scheduler"
    local peer = recorder.start()
    local t = transport()
    local sched = scheduler.new(t)
    local function call(headers)
      return function()
        local res, err = sched:send({ method = "GET", url = peer.url .. "/s/", headers = headers })
        return res and res.status or err.kind
      end
    end
    local results = sched:run_all({ call({ ["X-N"] = "1" }), call({ ["X-A"] = "\r\n" }), call(nil),
      call({ Host = "x" }), call({ ["X-N"] = "2" }) }, 5)
    local got = {}
    for i, r in ipairs(results) do got[i] = r[1] end
    assert.same({ 200, "invalid", 200, "invalid", 200 }, got)
    assert.equal(3, #peer.requests())
    sched:close()
    t:close()
    peer.stop()
  end)
end)

describe("stream.core http: a call's own header list", function()
  local peer
  setup(function() peer = recorder.start() end)
  teardown(function() if peer then peer.stop() end end)

  local function http()
    return core.http_new({ timeout = 5, connect_timeout = 5, max_response_bytes = 65536,
      max_connections = 1, headers = { "Accept: application/json" },
      body_headers = { "Content-Type: application/json", "Expect:" } })
  end

  it("raises for a list that is not one of strings, and the next call is whole", function()
    local h = http()
    assert.has_error(function() h:request("GET", peer.url .. "/", nil, nil, false, { "X-A: 1", {} }) end,
      "stream.http: headers must be a list of strings")
    assert.has_error(function() h:submit("GET", peer.url .. "/", nil, nil, false, "X-A: 1") end)
    local res = assert(h:request("GET", peer.url .. "/", nil, nil, false, { "X-B: 2" }))
    assert.equal(200, res.status)
    local seen = peer.requests()
    assert.same({ "2" }, values(seen[#seen].head, "x-b"))
    assert.same({}, values(seen[#seen].head, "x-a"))
    h:close()
  end)

  it("sends no header of the shared lists with an empty list", function()
    local h = http()
    assert(h:request("POST", peer.url .. "/", "{}", nil, false, {}))
    local seen = peer.requests()
    assert.same({ "*/*" }, values(seen[#seen].head, "accept")) -- libcurl's own
    assert.not_equal("application/json", values(seen[#seen].head, "content-type")[1])
    h:close()
  end)

  it("frees the list of a request in flight when the client closes or it is collected", function()
    local h = http()
    local r = h:submit("GET", peer.url .. "/", nil, nil, false, { "X-C: 3" })
    h:close()
    local res, err = r:result()
    assert.is_nil(res)
    assert.equal("closed", err.reason)
    h = http()
    h:submit("GET", peer.url .. "/", nil, nil, false, { "X-D: 4" })
    h = nil -- luacheck: ignore 311
    collectgarbage()
    collectgarbage()
  end)
end)
