-- client.personalization and client:personalized_feed: the requests on the
-- wire (a recording peer), the checks made before sending, the service URLs,
-- and the calls against the real local server.
local stream = require "stream"
local config = require "stream.config"
local server = require "helpers.server"
local recorder = require "helpers.recorder"
local H = require "helpers.client"

local SECRET = "secret-for-personalization-0123456789"

describe("personalization service URLs", function()
  it("has a host of its own, with the location's prefix", function()
    assert.equal("https://personalization.stream-io-api.com/personalization/v1.0/",
      config.services({}, config.base_url({})).personalization)
    local o = { location = "us-east" }
    assert.equal("https://us-east-personalization.stream-io-api.com/personalization/v1.0/",
      config.services(o, config.base_url(o)).personalization)
  end)

  it("keeps a base_url's scheme, host and port", function()
    local o = { base_url = "http://127.0.0.1:8123/api/v1.0/" }
    local s = config.services(o, config.base_url(o))
    assert.equal("http://127.0.0.1:8123/personalization/v1.0/", s.personalization)
    assert.equal("http://127.0.0.1:8123/analytics/v1.0/", s.analytics)
  end)
end)

describe("personalization requests on the wire", function()
  local peer, c

  before_each(function()
    peer = recorder.start()
    c = stream.connect("key", SECRET, "1", { base_url = peer.url, retries = 0 })
  end)
  after_each(function()
    c:close()
    peer.stop()
  end)

  it("get, post and delete go to the service with its own token, signed once", function()
    assert(c.personalization:get("follow_recommendations", { user_id = "alice", limit = 5 }))
    assert(c.personalization:post("user/events", { source = "app" }, { liked = { "post:1" } }))
    assert(c.personalization:delete("follow_recommendations", { user_id = "alice" }))
    local reqs = peer.requests()
    assert.equal("GET /personalization/v1.0/follow_recommendations/?api_key=key&limit=5&user_id=alice HTTP/1.1",
      recorder.line(reqs[1]))
    assert.equal("POST /personalization/v1.0/user/events/?api_key=key&source=app HTTP/1.1", recorder.line(reqs[2]))
    assert.equal('{"data":{"liked":["post:1"]}}', reqs[2].body)
    assert.equal("DELETE /personalization/v1.0/follow_recommendations/?api_key=key&user_id=alice HTTP/1.1",
      recorder.line(reqs[3]))
    local token = recorder.one(reqs[1], "Authorization")
    assert.same({ resource = "personalization", action = "*", feed_id = "*", user_id = "*" }, H.claims(token))
    assert.equal(token, recorder.one(reqs[2], "Authorization"))
    assert.equal(token, recorder.one(reqs[3], "Authorization"))
  end)

  it("the personalized feed is an API read with the client's own token", function()
    assert(c:personalized_feed({ feed_slug = "timeline", user_id = c:user("alice"), endpoint = "home",
      ranking = "popular", limit = 3, offset = 6, reactions = { counts = true } }))
    local r = peer.requests()[1]
    assert.equal("GET /api/v1.0/enrich/personalization/feed/?api_key=key&endpoint=home&feed_slug=timeline"
      .. "&limit=3&offset=6&ranking=popular&user_id=alice&withReactionCounts=true HTTP/1.1", recorder.line(r))
    assert.same({ resource = "*", action = "*", feed_id = "*" }, H.claims(recorder.one(r, "Authorization")))
  end)

  it("refuses bad values with nothing sent, and raises for wrong types", function()
    local res, err = c.personalization:get("a b")
    assert.is_nil(res)
    assert.equal("invalid", err.kind)
    assert.equal("resource", next(err.fields))
    res, err = c.personalization:delete("")
    assert.is_nil(res)
    assert.equal("invalid", err.kind)
    res, err = c.personalization:post("x", nil, { big = ("x"):rep(20000) })
    assert.is_nil(res)
    assert.equal("data", next(err.fields))
    res, err = c:personalized_feed({ feed_slug = "user:alice" })
    assert.is_nil(res)
    assert.equal("feed_slug", next(err.fields))
    res, err = c:personalized_feed({ limit = 0 })
    assert.equal("limit", next(err.fields))
    assert.is_nil(res)
    assert.has_error(function() c.personalization:get(42) end,
      "personalization:get: resource must be a string, got number")
    assert.has_error(function() c.personalization:get("x", { f = {} }) end)
    assert.has_error(function() c.personalization:post("x", nil, "data") end)
    assert.has_error(function() c:personalized_feed({ nope = 1 }) end,
      "client:personalized_feed: unknown option 'nope'")
    assert.has_error(function() c.personalization.get("x") end)
    assert.same({}, peer.requests())
  end)

end)

describe("personalization with a user token", function()
  it("raises for resource calls and reads its own personalized feed", function()
    local peer = recorder.start()
    local server_side = stream.connect("key", SECRET, "1", { base_url = peer.url })
    local token = server_side:create_user_token("alice")
    local c = stream.connect("key", token, "1", { base_url = peer.url })
    assert.has_error(function() c.personalization:get("follow_recommendations") end,
      "personalization:get needs the API secret; this client holds a user token")
    assert(c:personalized_feed({ feed_slug = "timeline" }))
    local reqs = peer.requests()
    assert.equal(1, #reqs)
    assert.matches("&user_id=alice", recorder.line(reqs[1]), 1, true)
    assert.equal(token, recorder.one(reqs[1], "Authorization"))
    c:close()
    server_side:close()
    peer.stop()
  end)
end)

describe("personalization against the local server", function()
  local s, client

  setup(function()
    s = server.start({ faults = true,
      personalization = '{"follow_recommendations":[{"foreign_id":"user:bob"}]}' })
    client = H.server_client(s)
  end)
  teardown(function()
    if client then client:close() end
    if s then s:stop() end
  end)

  it("reads, posts to and deletes a configured resource", function()
    local res, err = client.personalization:get("follow_recommendations", { user_id = "alice", limit = 3 })
    assert.is_table(res, tostring(err))
    assert.same({ { foreign_id = "user:bob" } }, res.results)
    assert.equal(3, res.limit)
    assert.is_table((client.personalization:post("follow_recommendations", { user_id = "alice" },
      { seen = { "user:bob" } })))
    assert.is_table((client.personalization:delete("follow_recommendations", { user_id = "alice" })))
  end)

  it("an unknown resource is a 404 from the service", function()
    local res, err = client.personalization:get("never_configured", { user_id = "alice" })
    assert.is_nil(res)
    assert.equal("api", err.kind)
    assert.equal(404, err.status)
  end)

  it("the personalized feed of a user, enriched, newest first", function()
    local uid = H.uid("pf")
    local feed = client:feed("user", uid)
    assert(feed:add_activity({ actor = "SU:" .. uid, verb = "post", object = "a" }))
    assert(feed:add_activity({ actor = "SU:" .. uid, verb = "post", object = "b" }))
    local res = assert(client:personalized_feed({ feed_slug = "user", user_id = uid, limit = 1 }))
    assert.equal(1, #res.results)
    assert.equal("b", res.results[1].object)
  end)

  it("a user token reads its own personalized feed, not another user's", function()
    local uid = H.uid("pu")
    local c = H.token_client(s, client:create_user_token(uid))
    assert(c:personalized_feed({ feed_slug = "user" }))
    local res, err = c:personalized_feed({ feed_slug = "user", user_id = "someone_else" })
    assert.is_nil(res)
    assert.equal(403, err.status)
    assert.equal(17, err.code)
    c:close()
  end)

  it("retries get and delete after a 503, never a post", function()
    local c = H.faulty(s, { "X-Stream-Local-Status: 503" }, { retries = 1 })
    local _, err = c.personalization:get("anything")
    assert.equal(2, err.attempts)
    _, err = c.personalization:delete("anything")
    assert.equal(2, err.attempts)
    _, err = c.personalization:post("anything", nil, { a = 1 })
    assert.equal(1, err.attempts)
    assert.is_false(err.retryable)
    _, err = c:personalized_feed({ feed_slug = "user", user_id = "alice" })
    assert.equal(2, err.attempts)
    c:close()
  end)
end)
