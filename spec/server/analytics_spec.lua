-- Analytics on the local server (stream-feeds-api.md section 16): engagements and
-- impressions with their checks and token rules, the redirect (JWT in the query, http(s)
-- urls only), and the events kept where both nginx workers see them (/_local/analytics/).

local server = require "helpers.server"
local http = require "helpers.http"
local cjson = require "cjson"

describe("local server analytics", function()
  local s, api

  setup(function()
    s = server.start({ workers = 2 })
    api = http.api({ base_url = s.url .. "/", api_key = s.api_key, api_secret = s.api_secret })
  end)

  teardown(function()
    if s then s:stop() end
  end)

  local A_TOKEN = '{"resource":"analytics","action":"*","user_id":"*"}'

  local function call(method, path, body, opts)
    opts = opts or {}
    if body ~= nil then opts.body = type(body) == "string" and body or cjson.encode(body) end
    if opts.token == nil and opts.auth ~= false then opts.token = api:token(A_TOKEN) end
    return api:call(method, path, opts)
  end

  local function events(kind)
    local st, b, raw = call("GET", "_local/analytics/", nil, { auth = false, query = kind and ("kind=" .. kind) })
    assert.are.equal(200, st, raw)
    return b
  end

  before_each(function()
    assert.are.equal(200, (call("DELETE", "_local/analytics/", nil, { auth = false })))
  end)

  local function engagement(extra)
    local e = { label = "click", content = { foreign_id = "tweet:1" }, user_data = { id = "alice", alias = "A" },
      feed_id = "user:alice", location = "profile", position = 3, boost = 2, score = 1.5,
      features = { { group = "topic", value = "go" } }, tracked_at = "2026-12-06T10:00:00.000Z" }
    for k, v in pairs(extra or {}) do e[k] = v end
    return e
  end

  describe("engagements", function()
    it("are 201 {duration} and kept whole, with the user they name", function()
      local st, b, raw = call("POST", "analytics/v1.0/engagement/", { content_list = { engagement(),
        engagement({ content = "tweet:2", user_data = "bob" }) } })
      assert.are.equal(201, st, raw)
      assert.are.same({ "duration" }, (function() local k = {} for n in pairs(b) do k[#k + 1] = n end return k end)())
      local got = events("engagement")
      assert.are.equal(2, got.count)
      assert.are.equal("alice", got.results[1].user_id)
      assert.are.equal("bob", got.results[2].user_id)
      assert.are.same(engagement(), got.results[1].event)
      assert.is_number(got.results[1].seq)
      assert.matches("^%d+%-%d+%-%d+T", got.results[1].received_at)
    end)

    it("a missing or wrong field is 400 code 4 naming it, and nothing is kept", function()
      local cases = {
        { { content_list = { engagement({ label = cjson.null }) } }, "content_list[0].label" },
        { { content_list = { engagement({ label = 5 }) } }, "content_list[0].label" },
        { { content_list = { engagement(), engagement({ content = { id = 1 } }) } }, "content_list[1].content" },
        { { content_list = { engagement({ user_data = { alias = "x" } }) } }, "content_list[0].user_data" },
        { { content_list = { engagement({ position = "3" }) } }, "content_list[0].position" },
        { { content_list = { engagement({ features = { { group = 1 } } }) } }, "content_list[0].features" },
        { { content_list = { engagement({ tracked_at = "yesterday" }) } }, "content_list[0].tracked_at" },
        { { content_list = { "click" } }, "content_list[0]" },
        { { content_list = {} }, "content_list" },
        { { label = "click" }, "content_list" },
        { "[1,2]", "body" },
        { '{"content_list":', "body" },
      }
      for _, c in ipairs(cases) do
        local st, b, raw = call("POST", "analytics/v1.0/engagement/", c[1])
        assert.are.equal(400, st, raw)
        assert.are.equal(4, b.code, raw)
        assert.is_table(b.exception_fields[c[2]], raw)
      end
      assert.are.equal(0, events().count)
    end)

    it("refuses a huge list and a huge body", function()
      local list = {}
      for i = 1, 1001 do list[i] = engagement() end
      local st = call("POST", "analytics/v1.0/engagement/", { content_list = list })
      assert.are.equal(400, st)
      st = call("POST", "analytics/v1.0/engagement/", '{"content_list":["' .. ("x"):rep(1100000) .. '"]}')
      assert.are.equal(413, st)
      assert.are.equal(0, events().count)
    end)
  end)

  describe("impressions", function()
    it("take one object or an array of them", function()
      local st, _, raw = call("POST", "analytics/v1.0/impression/",
        { content_list = { "tweet:1", { foreign_id = "tweet:2", extra = 1 } }, user_data = 7, feed_id = "user:x" })
      assert.are.equal(201, st, raw)
      st, _, raw = call("POST", "analytics/v1.0/impression/",
        { { content_list = { "a" } }, { content_list = { "b" }, location = "home" } })
      assert.are.equal(201, st, raw)
      local got = events("impression")
      assert.are.equal(3, got.count)
      assert.are.equal("7", got.results[1].user_id)
    end)

    it("a missing or wrong field is 400 naming it", function()
      for _, c in ipairs({ { {}, "content_list" }, { { content_list = {} }, "content_list" },
          { { content_list = { 1 } }, "content_list" }, { { { content_list = { "a" } }, 5 }, "[1]" },
          { { content_list = { "a" }, features = "x" }, "features" }, { "[]", "body" }, { '"x"', "body" },
          { "false", "body" }, { "null", "body" }, { "0", "body" } }) do
        local st, b, raw = call("POST", "analytics/v1.0/impression/", c[1])
        assert.are.equal(400, st, raw)
        assert.is_table(b.exception_fields[c[2]], raw)
      end
      assert.are.equal(0, events().count)
    end)
  end)

  describe("tokens", function()
    it("take resource analytics or *, and refuse other resources, read actions and feed scopes", function()
      local body = { content_list = { "a" } }
      for _, claims in ipairs({ '{"resource":"*","action":"*","feed_id":"*"}',
          '{"resource":"analytics","action":"write"}' }) do
        assert.are.equal(201, (call("POST", "analytics/v1.0/impression/", body, { token = api:token(claims) })))
      end
      for _, claims in ipairs({ '{"resource":"feed","action":"*","feed_id":"*"}',
          '{"resource":"analytics","action":"read"}', '{"resource":"analytics","action":"*","feed_id":"useralice"}',
          '{"resource":"redirect_and_track","action":"*"}' }) do
        local st, b = call("POST", "analytics/v1.0/impression/", body, { token = api:token(claims) })
        assert.are.equal(403, st, claims)
        assert.are.equal(17, b.code)
      end
      assert.are.equal(401, (call("POST", "analytics/v1.0/impression/", body, { auth = false })))
    end)

    it("user tokens track their own events only", function()
      local alice = api:token('{"user_id":"alice"}')
      assert.are.equal(201, (call("POST", "analytics/v1.0/impression/", { content_list = { "a" } }, { token = alice })))
      assert.are.equal(201, (call("POST", "analytics/v1.0/engagement/",
        { content_list = { engagement() } }, { token = alice })))
      local st, b = call("POST", "analytics/v1.0/engagement/",
        { content_list = { engagement(), engagement({ user_data = "bob" }) } }, { token = alice })
      assert.are.equal(403, st)
      assert.are.equal(17, b.code)
      local got = events()
      assert.are.equal(2, got.count)
      assert.are.equal("alice", got.results[1].user_id)
    end)
  end)

  describe("the redirect", function()
    local function esc(v)
      return (v:gsub("[^%w%-_.~]", function(c) return string.format("%%%02X", c:byte()) end))
    end
    local R_TOKEN = '{"resource":"redirect_and_track","action":"*","user_id":"*"}'
    local function redirect(path, url, token, ev, extra)
      local query = "url=" .. esc(url) .. "&authorization=" .. esc(token or api:token(R_TOKEN))
        .. (ev and ("&events=" .. esc(ev)) or "") .. (extra or "&auth_type=jwt")
      return api:call("GET", path, { auth = false, query = query })
    end

    it("answers 302 to an http(s) url on both paths and keeps the events", function()
      local ev = cjson.encode({ { content_list = { "tweet:1" }, user_id = "alice" },
        { label = "click", content = "tweet:1", foreign_id = "x" } })
      local st, b, raw, h = redirect("analytics/redirect/", "https://example.com/a?b=c", nil, ev)
      assert.are.equal(302, st, raw)
      assert.are.equal("https://example.com/a?b=c", h["location"])
      assert.are.equal("https://example.com/a?b=c", b.location)
      local _
      st, _, raw, h = redirect("analytics/v1.0/redirect/", "http://example.com/", nil, nil, "&stream-auth-type=jwt")
      assert.are.equal(302, st, raw)
      assert.are.equal("http://example.com/", h["location"])
      local got = events()
      assert.are.equal(4, got.count)
      assert.are.same({ "impression", "engagement", "redirect", "redirect" },
        { got.results[1].kind, got.results[2].kind, got.results[3].kind, got.results[4].kind })
      assert.are.equal("alice", got.results[1].user_id)
    end)

    it("a bad token is 403 and does not redirect", function()
      for _, token in ipairs({ "not.a.jwt", "", http.jwt(R_TOKEN, "another-secret-0123456789-0123456789"),
          api:token('{"resource":"analytics","action":"*","user_id":"*"}'),
          api:token('{"resource":"redirect_and_track","action":"read"}') }) do
        local st, b, raw, h = redirect("analytics/redirect/", "https://example.com/", token)
        assert.are.equal(403, st, raw)
        assert.are.equal(17, b.code)
        assert.is_nil(h["location"])
      end
      local st = redirect("analytics/redirect/", "https://example.com/", nil, nil, "&auth_type=basic")
      assert.are.equal(403, st)
      assert.are.equal(0, events().count)
    end)

    it("a url without http(s) scheme and host, or with spaces or control characters, is 400 naming url", function()
      for _, url in ipairs({ "javascript:alert(1)", "ftp://example.com/", "//example.com/", "/local/path",
          "https:///nohost", "http://exa mple.com/", "http://example.com/\r\nSet-Cookie: a=b", "" }) do
        local st, b, raw, h = redirect("analytics/redirect/", url)
        assert.are.equal(400, st, url .. " " .. raw)
        assert.is_table(b.exception_fields.url, raw)
        assert.is_nil(h["location"])
        assert.is_nil(h["set-cookie"])
      end
    end)

    it("events that are not a JSON array of objects are 400 naming events", function()
      for _, ev in ipairs({ "{", '{"a":1}', "[1]", '["x"]' }) do
        local st, b, raw = redirect("analytics/redirect/", "https://example.com/", nil, ev)
        assert.are.equal(400, st, raw)
        assert.is_table(b.exception_fields.events, raw)
      end
      assert.are.equal(0, events().count)
    end)

    it("needs the api_key", function()
      local st = api:call("GET", "analytics/redirect/", { auth = false, api_key = false,
        query = "url=https%3A%2F%2Fexample.com%2F&authorization=" .. api:token(R_TOKEN) })
      assert.are.equal(401, st)
    end)
  end)

  it("events taken by either of the two workers are seen by both", function()
    local writers, readers, n = {}, {}, 0
    for _ = 1, 60 do
      local st, _, _, h = call("POST", "analytics/v1.0/impression/", { content_list = { "w" } })
      assert.are.equal(201, st)
      n = n + 1
      writers[h["x-stream-local-worker"]] = true
      if next(writers, next(writers)) then break end
    end
    assert.is_truthy(next(writers, next(writers)), "both workers took writes")
    for _ = 1, 60 do
      local st, b, _, h = call("GET", "_local/analytics/", nil, { auth = false })
      assert.are.equal(200, st)
      assert.are.equal(n, b.count)
      readers[h["x-stream-local-worker"]] = true
      if next(readers, next(readers)) then break end
    end
    assert.is_truthy(next(readers, next(readers)), "both workers answered reads")
  end)

  it("/_local/analytics/ refuses an unknown kind and a missing api_key", function()
    assert.are.equal(400, (call("GET", "_local/analytics/", nil, { auth = false, query = "kind=nope" })))
    assert.are.equal(401, (call("GET", "_local/analytics/", nil, { auth = false, api_key = false })))
  end)
end)
