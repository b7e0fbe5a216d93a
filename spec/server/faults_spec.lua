-- Test aids of the local server: X-Stream-Local-Connection on every answer, the fault
-- headers and the programmed faults of /_local/faults, which work only with
-- STREAM_LOCAL_FAULTS=1.

local server = require "helpers.server"
local http = require "helpers.http"
local socket = require "socket"
local cjson = require "cjson"

local ALL_FAULT_HEADERS = {
  ["X-Stream-Local-Delay"] = "1500",
  ["X-Stream-Local-Status"] = "503",
  ["X-Stream-Local-Reset-After"] = "30",
  ["X-Stream-Local-Drop"] = "1",
  ["X-Stream-Local-Raise"] = "1",
  ["X-Stream-Local-Redirect"] = "302",
  ["X-Stream-Local-Location"] = "http://example.com/",
  ["X-Stream-Local-Garbage"] = "1",
  ["X-Stream-Local-Truncate"] = "10",
  ["X-Stream-Local-Drip"] = "1500",
  ["X-Stream-Local-Drip-Bytes"] = "1",
  ["X-Stream-Local-Oversize"] = "33554432",
}

local function decodes(text)
  return (pcall(cjson.decode, text or ""))
end

describe("local server test aids", function()
  describe("with STREAM_LOCAL_FAULTS=1", function()
    local s, api

    -- program(spec_json) -> status, decoded answer of POST /_local/faults
    local function program(body)
      local st, raw = http.request("POST", s.url .. "/_local/faults", { body = body })
      local ok, v = pcall(cjson.decode, raw or "")
      return st, ok and v or nil, raw
    end

    local function queued()
      local st, raw = http.request("GET", s.url .. "/_local/faults")
      assert.are.equal(200, st, raw)
      return cjson.decode(raw).faults
    end

    setup(function()
      s = server.start({ faults = true })
      api = http.api(s)
      api:call("POST", "user/", { body = '{"id":"f-1"}' })
    end)

    teardown(function()
      if s then s:stop() end
    end)

    before_each(function()
      http.request("DELETE", s.url .. "/_local/faults")
    end)

    describe("per-request headers", function()
      it("X-Stream-Local-Delay delays the answer by that many ms", function()
        local t0 = socket.gettime()
        local st = api:call("GET", "user/f-1/", { headers = { ["X-Stream-Local-Delay"] = "400" } })
        local took = socket.gettime() - t0
        assert.are.equal(200, st)
        assert.is_true(took >= 0.4, "took " .. took)
        assert.is_true(took < 2, "took " .. took)
      end)

      it("a delayed request does not hold up others on the same worker", function()
        local slow = { headers = api:headers({ ["X-Stream-Local-Delay"] = "800" }) }
        local list = { { "GET", api:url("user/f-1/"), slow } }
        for i = 2, 6 do
          list[i] = { "GET", api:url("user/f-1/"), { headers = api:headers() } }
        end
        local t0 = socket.gettime()
        local results = http.concurrent(list)
        local took = socket.gettime() - t0
        for _, r in ipairs(results) do assert.are.equal(200, r.status) end
        assert.is_true(took >= 0.8 and took < 2.5, "took " .. took)
      end)

      it("lets a client time out on a delayed answer", function()
        local st, _, _, _, code = api:call("GET", "user/f-1/",
          { headers = { ["X-Stream-Local-Delay"] = "3000" }, timeout = 0.3 })
        assert.are.equal(0, st)
        assert.are.equal(28, code) -- curl: operation timed out
      end)

      for _, c in ipairs({ { 503, -1, "ServiceUnavailable" }, { 500, -1, "InternalServerError" },
        { 502, -1, "BadGateway" }, { 429, 9, "RateLimitReached" }, { 400, 4, "InputException" } }) do
        it("X-Stream-Local-Status: " .. c[1] .. " forces that status with a Stream body", function()
          local st, body, _, h = api:call("GET", "user/f-1/",
            { headers = { ["X-Stream-Local-Status"] = tostring(c[1]) } })
          assert.are.equal(c[1], st)
          assert.are.equal(c[1], body.status_code)
          assert.are.equal(c[2], body.code)
          assert.are.equal(c[3], body.exception)
          assert.is_string(body.duration)
          assert.is_string(h["x-ratelimit-reset"])
          if c[1] == 429 then
            assert.are.equal("0", h["x-ratelimit-remaining"])
            assert.are.equal(0, tonumber(h["x-ratelimit-reset"]) % 60)
          end
        end)
      end

      it("X-Stream-Local-Reset-After sets X-RateLimit-Reset of a forced 429 to now + seconds", function()
        local now = os.time()
        local st, body, _, h = api:call("GET", "user/f-1/",
          { headers = { ["X-Stream-Local-Status"] = "429", ["X-Stream-Local-Reset-After"] = "30" } })
        assert.are.equal(429, st)
        assert.are.equal(9, body.code)
        assert.are.equal("0", h["x-ratelimit-remaining"])
        local reset = tonumber(h["x-ratelimit-reset"])
        assert.is_true(reset >= now + 29 and reset <= now + 32, "reset " .. tostring(reset) .. " now " .. now)
        -- 0 means "now"; out of range is ignored (the window's end)
        _, _, _, h = api:call("GET", "user/f-1/",
          { headers = { ["X-Stream-Local-Status"] = "429", ["X-Stream-Local-Reset-After"] = "0" } })
        assert.is_true(math.abs(tonumber(h["x-ratelimit-reset"]) - os.time()) <= 2)
        _, _, _, h = api:call("GET", "user/f-1/",
          { headers = { ["X-Stream-Local-Status"] = "429", ["X-Stream-Local-Reset-After"] = "-5" } })
        assert.are.equal(0, tonumber(h["x-ratelimit-reset"]) % 60)
      end)

      it("forced statuses apply before auth and routing, and outside 400..599 are ignored", function()
        local forced = { headers = { ["X-Stream-Local-Status"] = "503" } }
        assert.are.equal(503, (http.request("GET", s.url .. "/nowhere", forced)))
        assert.are.equal(200, (api:call("GET", "user/f-1/", { headers = { ["X-Stream-Local-Status"] = "200" } })))
        assert.are.equal(200, (api:call("GET", "user/f-1/", { headers = { ["X-Stream-Local-Status"] = "abc" } })))
      end)

      it("Delay and Status combine into a slow error", function()
        local t0 = socket.gettime()
        local st = api:call("GET", "user/f-1/",
          { headers = { ["X-Stream-Local-Delay"] = "200", ["X-Stream-Local-Status"] = "503" } })
        assert.are.equal(503, st)
        assert.is_true(socket.gettime() - t0 >= 0.2)
      end)

      it("an unexpected Lua error becomes 500 code -1 InternalServerError (X-Stream-Local-Raise)", function()
        local st, body, raw, h = api:call("GET", "user/f-1/", { headers = { ["X-Stream-Local-Raise"] = "1" } })
        assert.are.equal(500, st)
        assert.is_table(body, raw)
        assert.are.equal(-1, body.code)
        assert.are.equal("InternalServerError", body.exception)
        assert.is_string(h["x-ratelimit-limit"])
        assert.matches("raised on purpose", s:error_log(), 1, true)
        assert.are.equal(200, (api:call("GET", "user/f-1/")))
      end)

      it("X-Stream-Local-Drop: 1 closes the connection without an answer", function()
        local st, _, _, _, code = api:call("GET", "user/f-1/", { headers = { ["X-Stream-Local-Drop"] = "1" } })
        assert.are.equal(0, st)
        assert.are.equal(52, code) -- curl: empty reply from server
      end)

      it("X-Stream-Local-Redirect answers that 3xx with the request's own URL as Location", function()
        local st, body, _, h = api:call("GET", "user/f-1/", { query = "x=1",
          headers = { ["X-Stream-Local-Redirect"] = "302" } })
        assert.are.equal(302, st)
        assert.are.equal(api:url("user/f-1/", { query = "x=1" }), h["location"])
        assert.are.equal(302, body.status_code)
        assert.is_string(body.detail)
        assert.is_string(h["x-stream-local-connection"])
      end)

      it("X-Stream-Local-Location chooses the Location; other 3xx values are ignored", function()
        for _, code in ipairs({ 301, 303, 307, 308 }) do
          local st, _, _, h = api:call("POST", "user/", { body = '{"id":"f-r"}',
            headers = { ["X-Stream-Local-Redirect"] = tostring(code),
              ["X-Stream-Local-Location"] = "http://elsewhere.example/api/v1.0/user/" } })
          assert.are.equal(code, st)
          assert.are.equal("http://elsewhere.example/api/v1.0/user/", h["location"])
        end
        assert.are.equal(200, (api:call("GET", "user/f-1/", { headers = { ["X-Stream-Local-Redirect"] = "304" } })))
        assert.are.equal(200, (api:call("GET", "user/f-1/", { headers = { ["X-Stream-Local-Redirect"] = "404" } })))
      end)

      it("X-Stream-Local-Garbage: 1 answers 200 with a body that is not JSON", function()
        local st, body, raw, h = api:call("GET", "user/f-1/", { headers = { ["X-Stream-Local-Garbage"] = "1" } })
        assert.are.equal(200, st)
        assert.is_nil(body)
        assert.matches("^<html>", raw)
        assert.are.equal("application/json", h["content-type"])
        assert.are.equal(tostring(#raw), h["content-length"])
      end)

      it("X-Stream-Local-Truncate sends fewer bytes than Content-Length, then closes", function()
        local st, body, raw, h, code = api:call("GET", "user/f-1/",
          { headers = { ["X-Stream-Local-Truncate"] = "20" } })
        assert.are.equal(200, st)
        assert.are.equal(18, code) -- curl: partial file
        assert.is_nil(body)
        assert.are.equal(20, #raw)
        assert.are.equal('{"id":"f-1","created', raw)
        assert.is_true(tonumber(h["content-length"]) > 20)
        -- 0: headers only; more than the body: all but the last byte
        st, body, raw, h, code = api:call("GET", "user/f-1/", { headers = { ["X-Stream-Local-Truncate"] = "0" } })
        assert.are.same({ 200, 18, "" }, { st, code, raw or "" })
        assert.is_nil(body)
        assert.is_true(tonumber(h["content-length"]) > 20)
        st, body, raw, h, code = api:call("GET", "user/f-1/", { headers = { ["X-Stream-Local-Truncate"] = "100000" } })
        assert.are.same({ 200, 18 }, { st, code })
        assert.is_nil(body)
        assert.are.equal(tonumber(h["content-length"]) - 1, #raw)
      end)

      it("X-Stream-Local-Drip sends a user body a few bytes at a time over that many ms", function()
        local t0 = socket.gettime()
        local st, body, raw = api:call("GET", "user/f-1/", { headers = { ["X-Stream-Local-Drip"] = "600" } })
        local took = socket.gettime() - t0
        assert.are.equal(200, st, raw)
        assert.are.equal("f-1", body.id)
        assert.are.equal("drip", body.data.local_fault)
        assert.is_string(body.created_at)
        assert.is_true(took >= 0.55 and took < 3, "took " .. took)
        -- a client that gives up half way has headers and part of the body
        local st2, _, part, h, code = api:call("GET", "user/f-1/", { timeout = 0.5,
          headers = { ["X-Stream-Local-Drip"] = "1500", ["X-Stream-Local-Drip-Bytes"] = "2" } })
        assert.are.equal(28, code)
        assert.are.equal(200, st2)
        assert.are.equal(tostring(#raw), h["content-length"])
        assert.is_true(#part > 0 and #part < #raw, "received " .. #part .. " of " .. #raw)
      end)

      it("X-Stream-Local-Oversize answers a valid JSON user of exactly that many bytes", function()
        local size = 32 * 1024 * 1024
        local st, raw, h, code = http.request("GET", api:url("user/f-1/"),
          { headers = api:headers({ ["X-Stream-Local-Oversize"] = tostring(size) }), timeout = 60 })
        assert.are.equal(0, code, h["x-curl-error"])
        assert.are.equal(200, st)
        assert.are.equal(tostring(size), h["content-length"])
        assert.are.equal(size, #raw)
        local v = cjson.decode(raw)
        assert.are.equal("f-1", v.id)
        assert.are.equal("oversize", v.data.local_fault)
        assert.are.equal(string.rep("x", #v.data.pad), v.data.pad)
        -- smaller than the skeleton: the skeleton alone
        st, raw = http.request("GET", api:url("user/f-1/"),
          { headers = api:headers({ ["X-Stream-Local-Oversize"] = "1" }) })
        assert.are.equal(200, st)
        assert.are.equal("", cjson.decode(raw).data.pad)
      end)
    end)

    describe("programmed faults (/_local/faults)", function()
      it("a status fault hits the next count requests, then the server answers normally", function()
        local st, ans = program('{"fault":"status","status":503,"count":2}')
        assert.are.equal(201, st)
        assert.are.same({ { fault = "status", status = 503, left = 2 } }, ans.faults)
        assert.are.equal(503, (api:call("GET", "user/f-1/")))
        assert.are.same({ { fault = "status", status = 503, left = 1 } }, queued())
        local st2, body = api:call("GET", "user/f-1/")
        assert.are.equal(503, st2)
        assert.are.equal("ServiceUnavailable", body.exception)
        assert.are.same({}, queued())
        assert.are.equal(200, (api:call("GET", "user/f-1/")))
      end)

      it("queued faults are taken in order, one per request, on any route", function()
        program('{"fault":"status","status":502}')
        program('{"fault":"status","status":504,"count":2}')
        program('{"fault":"redirect","status":307}')
        assert.are.equal(3, #queued())
        assert.are.equal(502, (http.request("GET", s.url .. "/nowhere")))
        assert.are.equal(504, (api:call("POST", "user/", { body = '{"id":"f-q"}' })))
        assert.are.equal(504, (api:call("GET", "user/f-1/")))
        assert.are.equal(307, (api:call("GET", "user/f-1/")))
        assert.are.equal(200, (api:call("GET", "user/f-1/")))
      end)

      it("a request with fault headers uses them and leaves the queue alone", function()
        program('{"fault":"status","status":503}')
        assert.are.equal(500, (api:call("GET", "user/f-1/", { headers = { ["X-Stream-Local-Status"] = "500" } })))
        assert.are.equal(1, #queued())
        assert.are.equal(503, (api:call("GET", "user/f-1/")))
      end)

      it("DELETE clears the queue", function()
        program('{"fault":"drop","count":5}')
        local st, raw = http.request("DELETE", s.url .. "/_local/faults")
        assert.are.equal(200, st)
        assert.are.same({}, cjson.decode(raw).faults)
        assert.are.equal(200, (api:call("GET", "user/f-1/")))
      end)

      it("a programmed 429 carries X-RateLimit-Reset = now + reset_after", function()
        program('{"fault":"status","status":429,"reset_after":120}')
        local now = os.time()
        local st, body, _, h = api:call("GET", "user/f-1/")
        assert.are.equal(429, st)
        assert.are.equal("RateLimitReached", body.exception)
        assert.are.equal("0", h["x-ratelimit-remaining"])
        local reset = tonumber(h["x-ratelimit-reset"])
        assert.is_true(reset >= now + 119 and reset <= now + 122, "reset " .. reset)
      end)

      it("delay, alone or before another fault", function()
        program('{"fault":"delay","ms":300}')
        program('{"fault":"status","status":503,"delay":300}')
        assert.are.same({ { fault = "delay", delay = 300, left = 1 },
          { fault = "status", status = 503, delay = 300, left = 1 } }, queued())
        local t0 = socket.gettime()
        assert.are.equal(200, (api:call("GET", "user/f-1/")))
        assert.is_true(socket.gettime() - t0 >= 0.3)
        t0 = socket.gettime()
        assert.are.equal(503, (api:call("GET", "user/f-1/")))
        assert.is_true(socket.gettime() - t0 >= 0.3)
      end)

      it("drop and raise", function()
        program('{"fault":"drop"}')
        program('{"fault":"raise"}')
        local st, _, _, _, code = api:call("GET", "user/f-1/")
        assert.are.same({ 0, 52 }, { st, code })
        local st2, body = api:call("GET", "user/f-1/")
        assert.are.equal(500, st2)
        assert.are.equal(-1, body.code)
        assert.matches("programmed raise", s:error_log(), 1, true)
      end)

      it("redirect, with and without a location", function()
        program('{"fault":"redirect"}')
        program('{"fault":"redirect","status":308,"location":"https://example.com/x/"}')
        local st, _, _, h = api:call("DELETE", "user/f-1/")
        assert.are.equal(302, st)
        assert.are.equal(api:url("user/f-1/"), h["location"])
        st, _, _, h = api:call("GET", "user/f-1/")
        assert.are.equal(308, st)
        assert.are.equal("https://example.com/x/", h["location"])
        assert.are.equal(200, (api:call("GET", "user/f-1/")))
      end)

      it("garbage, truncate and drip", function()
        program('{"fault":"garbage"}')
        program('{"fault":"truncate","bytes":7}')
        program('{"fault":"drip","ms":400,"bytes":16}')
        local st, _, raw = api:call("GET", "user/f-1/")
        assert.are.equal(200, st)
        assert.is_false(decodes(raw))
        local _, _, part, _, code = api:call("GET", "user/f-1/")
        assert.are.same({ 18, '{"id":"' }, { code, part })
        local t0 = socket.gettime()
        local st3, body = api:call("GET", "user/f-1/")
        assert.are.equal(200, st3)
        assert.are.equal("drip", body.data.local_fault)
        assert.is_true(socket.gettime() - t0 >= 0.35)
      end)

      it("oversize", function()
        program('{"fault":"oversize","bytes":100000}')
        local st, raw = http.request("GET", api:url("user/f-1/"), { headers = api:headers() })
        assert.are.equal(200, st)
        assert.are.equal(100000, #raw)
        assert.are.equal("oversize", cjson.decode(raw).data.local_fault)
      end)

      it("each queued use is consumed exactly once across workers and concurrent requests", function()
        program('{"fault":"status","status":503,"count":10}')
        local list = {}
        for i = 1, 30 do list[i] = { "GET", api:url("user/f-1/"), { headers = api:headers() } } end
        local results = http.concurrent(list)
        local n503, n200 = 0, 0
        for _, r in ipairs(results) do
          if r.status == 503 then n503 = n503 + 1 elseif r.status == 200 then n200 = n200 + 1 end
        end
        assert.are.same({ 10, 20 }, { n503, n200 })
        assert.are.same({}, queued())
      end)

      it("refuses a bad fault with 400 naming the field, and other methods with 405", function()
        for _, c in ipairs({
          { '{"fault":"bogus"}', "fault" },
          { '{"status":503}', "fault" },
          { '{"fault":"status"}', "status" },
          { '{"fault":"status","status":200}', "status" },
          { '{"fault":"status","status":"503"}', "status" },
          { '{"fault":"status","status":503,"count":0}', "count" },
          { '{"fault":"status","status":503,"count":1.5}', "count" },
          { '{"fault":"redirect","status":304}', "status" },
          { '{"fault":"oversize"}', "bytes" },
          { '{"fault":"delay"}', "ms" },
          { '{"fault":"drip","ms":-1}', "ms" },
        }) do
          local st, ans, raw = program(c[1])
          assert.are.equal(400, st, c[1])
          assert.are.equal(4, ans.code, raw)
          assert.is_table(ans.exception_fields[c[2]], c[1] .. " -> " .. raw)
        end
        assert.are.equal(400, (program("[1]")))
        assert.are.equal(400, (program("{")))
        assert.are.same({}, queued())
        local st, raw, h = http.request("PUT", s.url .. "/_local/faults", { body = "{}" })
        assert.are.equal(405, st, raw)
        assert.are.equal("GET, POST, DELETE", h["allow"])
      end)
    end)
  end)

  describe("without STREAM_LOCAL_FAULTS", function()
    local s, api

    setup(function()
      s = server.start()
      api = http.api(s)
      api:call("POST", "user/", { body = '{"id":"nf-1"}' })
    end)

    teardown(function()
      if s then s:stop() end
    end)

    it("ignores every fault header", function()
      local t0 = socket.gettime()
      local st, body, raw, h, code = api:call("GET", "user/nf-1/", { headers = ALL_FAULT_HEADERS })
      assert.are.equal(0, code)
      assert.are.equal(200, st, raw)
      assert.are.equal("nf-1", body.id)
      assert.is_nil(h["location"])
      assert.are.equal(tostring(#raw), h["content-length"])
      assert.is_true(socket.gettime() - t0 < 1.4) -- the delay header asks for 1.5 s
      for name, value in pairs(ALL_FAULT_HEADERS) do
        st = api:call("GET", "user/nf-1/", { headers = { [name] = value } })
        assert.are.equal(200, st, name)
      end
    end)

    it("has no /_local/faults: 404, and nothing gets programmed", function()
      local st, raw = http.request("POST", s.url .. "/_local/faults",
        { body = '{"fault":"status","status":503,"count":5}' })
      assert.are.equal(404, st, raw)
      assert.are.equal(404, (http.request("GET", s.url .. "/_local/faults")))
      assert.are.equal(200, (api:call("GET", "user/nf-1/")))
    end)

    it("sends X-Stream-Local-Connection on every answer, the same number on a kept-alive connection", function()
      local urls = { api:url("user/nf-1/"), api:url("user/nobody/"), api:url("user/nf-1/", { api_key = "bad" }) }
      local r = http.request_many("GET", urls, { headers = api:headers() })
      assert.are.equal(3, #r)
      assert.are.same({ 200, 404, 401 }, { r[1].status, r[2].status, r[3].status })
      local conn = r[1].headers["x-stream-local-connection"]
      assert.matches("^%d+$", conn)
      assert.are.equal(conn, r[2].headers["x-stream-local-connection"])
      assert.are.equal(conn, r[3].headers["x-stream-local-connection"])
      assert.are.equal("3", r[3].headers["x-stream-local-connection-requests"])
      local _, _, _, h = api:call("GET", "user/nf-1/")
      assert.are_not.equal(conn, h["x-stream-local-connection"])
    end)

    it("sends it on nginx's own errors too (413)", function()
      local _, _, _, h = api:call("POST", "user/", { body = string.rep("x", 1100000) })
      assert.matches("^%d+$", h["x-stream-local-connection"])
    end)
  end)
end)
