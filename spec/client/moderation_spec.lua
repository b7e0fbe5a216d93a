-- client.moderation:flag and client:flag_user: on the wire (a recording
-- peer), the checks made before sending, and against the real local server.
local stream = require "stream"
local server = require "helpers.server"
local recorder = require "helpers.recorder"
local H = require "helpers.client"

local SECRET = "secret-for-moderation-0123456789"

describe("moderation on the wire", function()
  local peer, c

  before_each(function()
    peer = recorder.start()
    c = stream.connect("key", SECRET, "1", { base_url = peer.url, retries = 0 })
  end)
  after_each(function()
    c:close()
    peer.stop()
  end)

  it("flags an activity, a reaction and a user", function()
    assert(c.moderation:flag({ entity_type = "stream:feeds:v2:activity", entity_id = "a-1",
      user_id = c:user("bob"), reason = "spam", custom = { note = "ads" } }))
    assert(c.moderation:flag({ entity_type = "stream:feeds:v2:reaction", entity_id = "r-1", user_id = "bob" }))
    assert(c:flag_user(c:user("carl"), { user_id = "bob", reason = "abuse" }))
    local reqs = peer.requests()
    assert.equal("POST /api/v1.0/moderation/flag/?api_key=key HTTP/1.1", recorder.line(reqs[1]))
    assert.equal('{"user_id":"bob","entity_type":"stream:feeds:v2:activity","entity_id":"a-1",'
      .. '"reason":"spam","custom":{"note":"ads"}}', reqs[1].body)
    assert.equal('{"user_id":"bob","entity_type":"stream:feeds:v2:reaction","entity_id":"r-1"}', reqs[2].body)
    assert.equal('{"user_id":"bob","entity_type":"stream:user","entity_id":"carl","reason":"abuse"}',
      reqs[3].body)
  end)

  it("refuses bad values with nothing sent, and raises for misuse", function()
    local cases = {
      { { entity_type = "stream:chat", entity_id = "x", user_id = "bob" }, "entity_type" },
      { { entity_type = "stream:user", entity_id = "", user_id = "bob" }, "entity_id" },
      { { entity_type = "stream:feeds:v2:activity", entity_id = "a/b", user_id = "bob" }, "entity_id" },
      { { entity_type = "stream:user", entity_id = "carl", user_id = "b ob" }, "user_id" },
      { { entity_type = "stream:user", entity_id = "carl", user_id = "bob", custom = { b = ("x"):rep(20000) } },
        "custom" },
    }
    for _, case in ipairs(cases) do
      local res, err = c.moderation:flag(case[1])
      assert.is_nil(res)
      assert.equal("invalid", err.kind)
      assert.equal(case[2], next(err.fields))
    end
    local res, err = c:flag_user("ca rl", { user_id = "bob" })
    assert.is_nil(res)
    assert.equal("entity_id", next(err.fields))
    assert.has_error(function() c:flag_user("carl") end,
      "client:flag_user: options with user_id (the reporting user) are required, got nil")
    assert.has_error(function() c:flag_user("carl", {}) end,
      "client:flag_user: user_id (the reporting user) is required")
    assert.has_error(function() c.moderation:flag({ entity_id = "x", user_id = "bob" }) end,
      "moderation:flag: entity_type must be a string, got nil")
    assert.has_error(function() c.moderation:flag({ entity_type = "stream:user", user_id = "bob" }) end,
      "moderation:flag: entity_id must be a string, got nil")
    assert.has_error(function() c:flag_user("carl", { user_id = "bob", reason = 1 }) end,
      "client:flag_user: reason must be a string, got number")
    assert.has_error(function() c:flag_user("carl", { user_id = "bob", why = "x" }) end,
      "client:flag_user: unknown option 'why'")
    assert.same({}, peer.requests())
  end)

  it("raises on a user-token client, which the service refuses", function()
    local u = stream.connect("key", c:create_user_token("bob"), "1", { base_url = peer.url })
    assert.has_error(function() u:flag_user("carl", { user_id = "bob" }) end,
      "client:flag_user needs the API secret (moderation is server-side only); this client holds a user token")
    u:close()
    assert.same({}, peer.requests())
  end)
end)

describe("moderation against the local server", function()
  local s, client

  setup(function()
    s = server.start({ faults = true })
    client = H.server_client(s)
  end)
  teardown(function()
    if client then client:close() end
    if s then s:stop() end
  end)

  it("flags a user and an activity; an unknown entity is a 404", function()
    local carl, bob = H.uid("carl"), H.uid("bob")
    assert(client:user(carl):create({ name = "Carl" }))
    local f = assert(client:flag_user(carl, { user_id = bob, reason = "spam" }))
    assert.equal("stream:user", f.entity_type)
    assert.equal(carl, f.entity_id)
    assert.equal(bob, f.user_id)
    assert.equal(36, #f.flag_id)
    local act = assert(client:feed("user", carl):add_activity({ actor = "SU:" .. carl, verb = "post", object = "x" }))
    assert(client.moderation:flag({ entity_type = "stream:feeds:v2:activity", entity_id = act.id, user_id = bob }))
    local res, err = client:flag_user(H.uid("nobody"), { user_id = bob })
    assert.is_nil(res)
    assert.equal(404, err.status)
  end)

  it("is never sent again after it may have reached the server", function()
    local c = H.faulty(s, { "X-Stream-Local-Status: 503" }, { retries = 2 })
    local _, err = c:flag_user("carl", { user_id = "bob" })
    assert.equal(1, err.attempts)
    assert.is_false(err.retryable)
    c:close()
  end)
end)

