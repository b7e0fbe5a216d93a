-- client.analytics: tracking calls and tracking links, on the wire (a
-- recording peer), the checks made before sending, and against the real
-- local server.
local stream = require "stream"
local core = require "stream.core"
local config = require "stream.config"
local server = require "helpers.server"
local recorder = require "helpers.recorder"
local H = require "helpers.client"

local SECRET = "secret-for-analytics-0123456789"

local function unescape(s)
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

-- The query of a URL as a table (values unescaped).
local function query_of(url)
  local q = {}
  for k, v in url:match("%?(.*)$"):gmatch("([^&=]+)=([^&]*)") do q[k] = unescape(v) end
  return q
end

local ENGAGEMENT = { label = "click", content = { foreign_id = "post:1" }, user_data = "alice",
  feed_id = "user:alice", position = 2, features = { { group = "topic", value = "go" } } }
local IMPRESSION = { content_list = { "post:1", { foreign_id = "post:2" } },
  user_data = { id = "alice", alias = "Al" }, feed_id = "timeline:alice" }

describe("analytics service URLs", function()
  it("has a host of its own, with the location's prefix", function()
    local s = config.services({}, config.base_url({}))
    assert.equal("https://analytics.stream-io-api.com/analytics/v1.0/", s.analytics)
    assert.equal("https://analytics.stream-io-api.com/analytics/", s.redirect)
    local o = { location = "eu-west" }
    assert.equal("https://eu-west-analytics.stream-io-api.com/analytics/v1.0/",
      config.services(o, config.base_url(o)).analytics)
  end)
end)

describe("analytics on the wire", function()
  local peer, c

  before_each(function()
    peer = recorder.start()
    c = stream.connect("key", SECRET, "1", { base_url = peer.url, retries = 0 })
  end)
  after_each(function()
    c:close()
    peer.stop()
  end)

  it("tracks engagements and impressions with the service's own token, signed once", function()
    assert(c.analytics:track_engagements({ ENGAGEMENT }))
    assert(c.analytics:track_impressions({ IMPRESSION, IMPRESSION }))
    local reqs = peer.requests()
    assert.equal("POST /analytics/v1.0/engagement/?api_key=key HTTP/1.1", recorder.line(reqs[1]))
    assert.same({ content_list = { ENGAGEMENT } }, core.json_decode(reqs[1].body))
    assert.equal("POST /analytics/v1.0/impression/?api_key=key HTTP/1.1", recorder.line(reqs[2]))
    assert.same({ IMPRESSION, IMPRESSION }, core.json_decode(reqs[2].body))
    local token = recorder.one(reqs[1], "Authorization")
    assert.same({ resource = "analytics", action = "*", feed_id = "*", user_id = "*" }, H.claims(token))
    assert.equal(token, recorder.one(reqs[2], "Authorization"))
  end)

  it("refuses bad events with nothing sent, and raises for wrong types", function()
    local cases = {
      { "track_engagements", {}, "engagements" },
      { "track_engagements", { { content = "post:1" } }, "engagements[1].label" },
      { "track_engagements", { { label = "click" } }, "engagements[1].content" },
      { "track_engagements", { { label = "click", content = { id = 1 } } }, "engagements[1].content" },
      { "track_impressions", { { content_list = {} } }, "impressions[1].content_list" },
      { "track_impressions", { IMPRESSION, { content_list = { "" } } }, "impressions[2].content_list[1]" },
      { "track_impressions", { [2] = IMPRESSION }, "impressions" },
    }
    for _, case in ipairs(cases) do
      local res, err = c.analytics[case[1]](c.analytics, case[2])
      assert.is_nil(res)
      assert.equal("invalid", err.kind)
      assert.equal(case[3], next(err.fields))
    end
    assert.has_error(function() c.analytics:track_engagements("click") end,
      "analytics:track_engagements: expected a list of engagements, got string")
    assert.has_error(function() c.analytics:track_impressions({ "post:1" }) end,
      "analytics:track_impressions: each impression must be a table, got string")
    assert.has_error(function() c.analytics.track_impressions({ IMPRESSION }) end)
    assert.same({}, peer.requests())
  end)

  it("builds a signed tracking link and sends nothing", function()
    local url = assert(c.analytics:redirect_url("https://example.com/a?b=1&c=2", { IMPRESSION, ENGAGEMENT }))
    assert.equal(peer.url .. "/analytics/redirect/?api_key=key&url=", url:sub(1, #peer.url + 37))
    local q = query_of(url)
    assert.equal("https://example.com/a?b=1&c=2", q.url)
    assert.equal("jwt", q.auth_type)
    assert.same({ IMPRESSION, ENGAGEMENT }, core.json_decode(q.events))
    assert.same({ resource = "redirect_and_track", action = "*", feed_id = "*", user_id = "*" },
      H.claims(q.authorization))
    assert.equal(q.authorization, query_of(assert(c.analytics:redirect_url("http://x.test/", {}))).authorization)
    assert.equal("[]", query_of(c.analytics:redirect_url("http://x.test/", {})).events)
    local res, err = c.analytics:redirect_url("javascript:alert(1)", {})
    assert.is_nil(res)
    assert.equal("target_url", next(err.fields))
    assert.has_error(function() c.analytics:redirect_url(nil, {}) end,
      "analytics:redirect_url: target_url must be a string, got nil")
    assert.same({}, peer.requests())
  end)

  it("a user-token client tracks with its own token and cannot sign links", function()
    local token = c:create_user_token("alice")
    local u = stream.connect("key", token, "1", { base_url = peer.url })
    assert(u.analytics:track_impressions({ IMPRESSION }))
    assert.equal(token, recorder.one(peer.requests()[1], "Authorization"))
    assert.has_error(function() u.analytics:redirect_url("https://example.com/", {}) end,
      "analytics:redirect_url needs the API secret; this client holds a user token")
    u:close()
  end)

  it("the tokens never appear in an error's text", function()
    local d = stream.connect("key", SECRET, "1", { base_url = "http://127.0.0.1:1/", retries = 0 })
    local _, err = d.analytics:track_engagements({ ENGAGEMENT })
    assert.equal("transport", err.kind)
    assert.is_nil(tostring(err):find("eyJ", 1, true))
    d:close()
  end)
end)

describe("analytics against the local server", function()
  local s, client

  setup(function()
    s = server.start({ faults = true })
    client = H.server_client(s)
  end)
  teardown(function()
    if client then client:close() end
    if s then s:stop() end
  end)

  it("tracks engagements and impressions", function()
    assert(client.analytics:track_engagements({ ENGAGEMENT }))
    assert(client.analytics:track_impressions({ IMPRESSION }))
  end)

  it("a tracking link redirects to its target", function()
    local url = assert(client.analytics:redirect_url("https://example.com/landing", { IMPRESSION }))
    local p = io.popen("curl -s -o /dev/null -w '%{http_code} %{redirect_url}' '" .. url .. "'")
    local out = p:read("*a")
    p:close()
    assert.equal("302 https://example.com/landing", out)
  end)

  it("a user token tracks its own events", function()
    local c = H.token_client(s, client:create_user_token("alice"))
    assert(c.analytics:track_impressions({ IMPRESSION }))
    c:close()
  end)

  it("is never sent again after it may have reached the server", function()
    local c = H.faulty(s, { "X-Stream-Local-Status: 503" }, { retries = 2 })
    local _, err = c.analytics:track_engagements({ ENGAGEMENT })
    assert.equal(1, err.attempts)
    assert.is_false(err.retryable)
    c:close()
  end)
end)
