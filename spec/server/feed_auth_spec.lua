-- Token scopes and user-token policies on the feed endpoints of the local server
-- (stream-feeds-api.md section 2, checklist item 16).

local server = require "helpers.server"
local http = require "helpers.http"

describe("local server feed auth", function()
  local s, api

  setup(function()
    s = server.start({ feed_groups = "user,timeline,notification" })
    api = http.api(s)
  end)

  teardown(function()
    if s then s:stop() end
  end)

  local function scope(resource, action, feed_id)
    return api:token('{"resource":"' .. resource .. '","action":"' .. action .. '","feed_id":"' .. feed_id .. '"}')
  end

  local function user(id)
    return api:token('{"user_id":"' .. id .. '"}')
  end

  local function status(method, path, token, body, query)
    local st, b, raw = api:call(method, path, { token = token, body = body, query = query })
    if st == 403 then
      assert.are.equal(17, b.code, raw)
      assert.are.equal("NotAllowedException", b.exception)
    end
    return st
  end

  local ACT = '{"actor":"SU:alice","verb":"v","object":"o"}'

  describe("scopes", function()
    it("the wildcard covers every feed call", function()
      local w = scope("*", "*", "*")
      assert.are.equal(201, status("POST", "feed/user/alice/", w, ACT))
      assert.are.equal(200, status("GET", "feed/user/alice/", w))
      assert.are.equal(200, status("GET", "enrich/feed/user/alice/", w))
      assert.are.equal(201, status("POST", "feed/timeline/alice/follows/", w, '{"target":"user:bob"}'))
      assert.are.equal(200, status("GET", "feed/timeline/alice/follows/", w))
      assert.are.equal(200, status("GET", "feed/user/bob/followers/", w))
      assert.are.equal(200, status("DELETE", "feed/timeline/alice/follows/user:bob/", w))
      assert.are.equal(200, status("GET", "stats/follow/", w, nil, "followers=user:bob"))
      assert.are.equal(200, status("GET", "activities/", w, nil, "ids=00000000-0000-1000-8000-000000000000"))
      assert.are.equal(200, status("DELETE", "feed/user/alice/x/", w, nil, "foreign_id=1"))
    end)

    it("accepts the per-operation scopes the official clients sign", function()
      assert.are.equal(201, status("POST", "feed/user/alice/", scope("feed", "write", "useralice"), ACT))
      assert.are.equal(200, status("GET", "feed/user/alice/", scope("feed", "read", "useralice")))
      assert.are.equal(200, status("GET", "enrich/feed/user/alice/", scope("feed", "read", "useralice")))
      assert.are.equal(200, status("DELETE", "feed/user/alice/x/", scope("feed", "delete", "useralice"), nil,
        "foreign_id=1"))
      assert.are.equal(201, status("POST", "feed/timeline/alice/follows/",
        scope("follower", "write", "timelinealice"), '{"target":"user:bob"}'))
      assert.are.equal(200, status("GET", "feed/timeline/alice/follows/",
        scope("follower", "read", "timelinealice")))
      assert.are.equal(200, status("GET", "feed/user/bob/followers/", scope("follower", "read", "userbob")))
      assert.are.equal(200, status("DELETE", "feed/timeline/alice/follows/user:bob/",
        scope("follower", "delete", "timelinealice")))
      assert.are.equal(200, status("GET", "activities/", scope("activities", "read", "*"), nil,
        "ids=00000000-0000-1000-8000-000000000000"))
      assert.are.equal(200, status("GET", "feed/user/alice/", scope("feed", "*", "*")))
      assert.are.equal(200, status("GET", "feed/user/alice/", scope("*", "read", "useralice")))
    end)

    it("refuses a scope that does not cover the call with 403 code 17", function()
      local _, before = api:call("GET", "feed/user/alice/")
      -- another feed
      assert.are.equal(403, status("GET", "feed/user/alice/", scope("feed", "read", "userbob")))
      assert.are.equal(403, status("POST", "feed/user/alice/", scope("feed", "write", "timelinealice"), ACT))
      -- another action
      assert.are.equal(403, status("POST", "feed/user/alice/", scope("feed", "read", "useralice"), ACT))
      assert.are.equal(403, status("DELETE", "feed/user/alice/x/", scope("feed", "write", "useralice")))
      assert.are.equal(403, status("GET", "feed/user/alice/", scope("feed", "delete", "*")))
      -- another resource
      assert.are.equal(403, status("GET", "feed/user/alice/", scope("follower", "read", "useralice")))
      assert.are.equal(403, status("POST", "feed/timeline/alice/follows/",
        scope("feed", "write", "timelinealice"), '{"target":"user:bob"}'))
      assert.are.equal(403, status("GET", "feed/user/alice/", scope("users", "*", "*")))
      assert.are.equal(403, status("GET", "activities/", scope("feed", "read", "*"), nil, "ids=x"))
      assert.are.equal(403, status("GET", "user/alice/", scope("feed", "*", "*")))
      -- nothing was written by the refused adds
      local _, after = api:call("GET", "feed/user/alice/")
      assert.are.same(before.results, after.results)
    end)
  end)

  describe("user tokens", function()
    it("read any user feed and their own timeline; another user's timeline is 403", function()
      assert.are.equal(200, status("GET", "feed/user/bob/", user("carol")))
      assert.are.equal(200, status("GET", "enrich/feed/user/bob/", user("carol")))
      assert.are.equal(200, status("GET", "feed/timeline/carol/", user("carol")))
      assert.are.equal(403, status("GET", "feed/timeline/bob/", user("carol")))
      assert.are.equal(403, status("GET", "enrich/feed/timeline/bob/", user("carol")))
    end)

    it("add to their own feeds only, and only with actor SU:<own id>", function()
      local own = '{"actor":"SU:carol","verb":"v","object":"o"}'
      assert.are.equal(201, status("POST", "feed/user/carol/", user("carol"), own))
      local plain = '{"actor":"carol","verb":"v","object":"o"}'
      local other = '{"actor":"SU:bob","verb":"v","object":"o"}'
      assert.are.equal(403, status("POST", "feed/user/carol/", user("carol"), plain))
      assert.are.equal(403, status("POST", "feed/user/carol/", user("carol"), other))
      assert.are.equal(403, status("POST", "feed/user/bob/", user("carol"), own))
      assert.are.equal(403, status("POST", "feed/user/carol/", user("carol"),
        '{"activities":[{"actor":"SU:carol","verb":"v","object":"o"},{"actor":"SU:bob","verb":"v","object":"o"}]}'))
      local _, b = api:call("GET", "feed/user/carol/")
      assert.are.equal(1, #b.results)
    end)

    it("send `to` their own feeds and others' notification feeds only", function()
      assert.are.equal(201, status("POST", "feed/user/carol/", user("carol"),
        '{"actor":"SU:carol","verb":"v","object":"o","to":["timeline:carol","notification:bob"]}'))
      assert.are.equal(403, status("POST", "feed/user/carol/", user("carol"),
        '{"actor":"SU:carol","verb":"v","object":"o","to":["user:bob"]}'))
    end)

    it("remove from their own feeds only", function()
      assert.are.equal(200, status("DELETE", "feed/user/carol/x/", user("carol"), nil, "foreign_id=1"))
      assert.are.equal(403, status("DELETE", "feed/user/bob/x/", user("carol"), nil, "foreign_id=1"))
    end)

    it("follow, unfollow and list follows only for their own feeds", function()
      assert.are.equal(201, status("POST", "feed/timeline/carol/follows/", user("carol"), '{"target":"user:bob"}'))
      assert.are.equal(403, status("POST", "feed/timeline/bob/follows/", user("carol"), '{"target":"user:carol"}'))
      assert.are.equal(200, status("GET", "feed/timeline/carol/follows/", user("carol")))
      assert.are.equal(403, status("GET", "feed/timeline/bob/follows/", user("carol")))
      assert.are.equal(200, status("GET", "feed/user/carol/followers/", user("carol")))
      assert.are.equal(403, status("GET", "feed/user/bob/followers/", user("carol")))
      assert.are.equal(403, status("DELETE", "feed/timeline/bob/follows/user:carol/", user("carol")))
      assert.are.equal(200, status("DELETE", "feed/timeline/carol/follows/user:bob/", user("carol")))
    end)
  end)

  it("logged no unexpected Lua errors", function()
    local log = s:error_log()
    assert.is_nil(log:find("unexpected error", 1, true), log)
    assert.is_nil(log:find("lua entry thread aborted", 1, true), log)
  end)
end)
