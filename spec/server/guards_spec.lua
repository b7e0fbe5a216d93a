-- The route guards of the local server (stream_local.guards, declared per route in
-- stream_local.app): they run once, after authentication and before the handler, so
-- a refused request is refused the same way on every route that declares them, before
-- its body or query is read.

local server = require "helpers.server"
local http = require "helpers.http"

describe("local server route guards", function()
  local s, api, user

  setup(function()
    s = server.start()
    api = http.api(s)
    user = api:token('{"user_id":"alice"}')
  end)

  teardown(function()
    if s then s:stop() end
  end)

  local BATCH = {
    { "POST", "users/", "batch user endpoints need a server token (resource users or *)" },
    { "GET", "users/", "batch user endpoints need a server token (resource users or *)" },
    { "DELETE", "users/", "batch user endpoints need a server token (resource users or *)" },
    { "POST", "feed/add_to_many/", "batch feed endpoints need a server token" },
    { "POST", "follow_many/", "batch feed endpoints need a server token" },
    { "POST", "unfollow_many/", "batch feed endpoints need a server token" },
    { "POST", "collections/", "batch collection endpoints need a server token (resource collections or *)" },
    { "GET", "collections/", "batch collection endpoints need a server token (resource collections or *)" },
    { "DELETE", "collections/", "batch collection endpoints need a server token (resource collections or *)" },
  }

  it("refuses a user token on every batch route with its area's 403, before reading a broken body", function()
    for _, c in ipairs(BATCH) do
      local st, b, raw = api:call(c[1], c[2], { token = user, body = "{" })
      assert.are.equal(403, st, c[1] .. " " .. c[2] .. ": " .. tostring(raw))
      assert.are.equal(c[3], b.detail, c[1] .. " " .. c[2])
    end
  end)

  local FEED_ROUTES = {
    { "GET", "feed/%s/alice/" },
    { "POST", "feed/%s/alice/" },
    { "GET", "enrich/feed/%s/alice/" },
    { "DELETE", "feed/%s/alice/some-id/" },
    { "GET", "feed/%s/alice/followers/" },
    { "GET", "feed/%s/alice/follows/" },
    { "POST", "feed/%s/alice/follows/" },
    { "DELETE", "feed/%s/alice/follows/user:bob/" },
    { "POST", "feed_targets/%s/alice/activity_to_targets/" },
  }

  it("answers a feed group this app lacks with 400 code 6 on every feed route", function()
    for _, c in ipairs(FEED_ROUTES) do
      local path = c[2]:format("nosuchgroup")
      local st, b, raw = api:call(c[1], path, { body = "{" })
      assert.are.equal(400, st, c[1] .. " " .. path .. ": " .. tostring(raw))
      assert.are.equal(6, b.code, path)
      assert.are.equal("FeedConfigException", b.exception, path)
      assert.truthy(b.detail:find("'nosuchgroup'", 1, true), path)
    end
  end)

  it("refuses a malformed slug and a bad feed user id with 400 code 4 on every feed route", function()
    for _, c in ipairs(FEED_ROUTES) do
      for _, path in ipairs({ c[2]:format("bad-slug"), (c[2]:format("user"):gsub("/alice/", "/bad%%20id/")) }) do
        local st, b, raw = api:call(c[1], path, { body = "{" })
        assert.are.equal(400, st, c[1] .. " " .. path .. ": " .. tostring(raw))
        assert.are.equal(4, b.code, path)
      end
    end
  end)
end)
