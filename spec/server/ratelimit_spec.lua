-- Rate-limit headers (always) and 429 (only with STREAM_LOCAL_RATE_LIMIT set).

local server = require "helpers.server"
local http = require "helpers.http"

local function window_end()
  return (math.floor(os.time() / 60) + 1) * 60
end

describe("local server rate limits", function()
  describe("by default (no limit set)", function()
    local s, api

    setup(function()
      s = server.start()
      api = http.api(s)
    end)

    teardown(function()
      if s then s:stop() end
    end)

    it("sends X-RateLimit-Limit 1000, a counting-down Remaining and Reset on success", function()
      local _, _, _, h1 = api:call("GET", "users/", { query = "ids=x" })
      local _, _, _, h2 = api:call("GET", "users/", { query = "ids=x" })
      assert.are.equal("1000", h1["x-ratelimit-limit"])
      local r1, r2 = tonumber(h1["x-ratelimit-remaining"]), tonumber(h2["x-ratelimit-remaining"])
      assert.is_true(r1 < 1000)
      -- another minute window may have begun between the two requests
      assert.is_true(r2 == r1 - 1 or r2 >= r1)
      local reset = tonumber(h2["x-ratelimit-reset"])
      assert.are.equal(0, reset % 60)
      assert.is_true(reset >= window_end() - 60 and reset <= window_end() + 1)
    end)

    it("sends them on errors too (401, 403, 404, 405, 400, 301, 413)", function()
      local calls = {
        { "GET", "user/x/", { api_key = "wrong" } },
        { "GET", "user/x/", { token = http.jwt(http.SERVER_CLAIMS, "bad") } },
        { "GET", "user/nobody/" },
        { "PATCH", "user/x/" },
        { "POST", "user/", { body = "{" } },
        { "GET", "user/x" },
        { "POST", "user/", { body = string.rep("a", 1100000) } },
      }
      for _, c in ipairs(calls) do
        local st, _, _, h = api:call(c[1], c[2], c[3])
        assert.is_true(st >= 300, c[1] .. " " .. c[2])
        assert.are.equal("1000", h["x-ratelimit-limit"], c[1] .. " " .. c[2])
        assert.is_string(h["x-ratelimit-remaining"])
        assert.is_string(h["x-ratelimit-reset"])
      end
    end)

    it("never answers 429", function()
      local list = {}
      for i = 1, 30 do list[i] = { "GET", api:url("user/nobody/"), { headers = api:headers() } } end
      for _, r in ipairs(http.concurrent(list)) do
        assert.are.equal(404, r.status)
      end
    end)
  end)

  describe("with STREAM_LOCAL_RATE_LIMIT=5", function()
    local s, api

    setup(function()
      s = server.start({ rate_limit = 5 })
      api = http.api(s)
    end)

    teardown(function()
      if s then s:stop() end
    end)

    it("answers 429 code 9 RateLimitReached with Remaining 0 once the limit is passed", function()
      -- stay inside one minute window: wait if the current one is about to end
      if window_end() - os.time() < 2 then
        os.execute("sleep " .. (window_end() - os.time() + 0.2))
      end
      local statuses, last = {}, nil
      for i = 1, 7 do
        local st, body, _, h = api:call("GET", "user/nobody/")
        statuses[i] = st
        if i <= 5 then
          assert.are.equal(tostring(5 - i), h["x-ratelimit-remaining"])
        end
        last = { st = st, body = body, h = h }
      end
      assert.are.same({ 404, 404, 404, 404, 404, 429, 429 }, statuses)
      assert.are.equal(9, last.body.code)
      assert.are.equal("RateLimitReached", last.body.exception)
      assert.are.equal("5", last.h["x-ratelimit-limit"])
      assert.are.equal("0", last.h["x-ratelimit-remaining"])
      assert.are.equal(window_end(), tonumber(last.h["x-ratelimit-reset"]))
    end)

    it("checks the api key before the limit (an unknown key still gets 401)", function()
      local st = api:call("GET", "user/nobody/", { api_key = "other-key" })
      assert.are.equal(401, st)
    end)
  end)
end)
