-- The exact requests the feed methods send (method, path, query, body), seen
-- by a capture peer; the answers' meaning is in feeds_spec (the local server).
local stream = require "stream"
local capture = require "helpers.capture"

local function request_line(req)
  return req:match("^([^\r\n]*)")
end

local function body_of(req)
  return req:match("\r\n\r\n(.*)$")
end

-- Sends each call to a fresh capture peer and returns the raw requests.
local function sent(calls, answer)
  local peer = capture.start({ status = 201, body = answer or '{"duration":"0.1ms","results":[],"next":""}',
    count = #calls })
  local c = stream.connect("key", "secret-for-wire-specs-0123456789", "1",
    { base_url = peer.url, retries = 0 })
  for _, call in ipairs(calls) do call(c) end
  c:close()
  local reqs = peer.requests()
  peer.stop()
  return reqs
end

describe("feed requests on the wire", function()
  it("add_activity posts the activity with references for handles and an ISO time", function()
    local reqs = sent({ function(c)
      local alice = c:user("alice")
      assert(c:feed("user", "alice"):add_activity({
        actor = alice, verb = "post", object = "post:1", time = 1795860000.5,
        to = { c:feed("timeline", "bob"), "notification:carl" },
        extra = { nested = { who = c:user("dan") } },
      }))
    end })
    assert.equal("POST /api/v1.0/feed/user/alice/?api_key=key HTTP/1.1", request_line(reqs[1]))
    local body = stream.json.decode(body_of(reqs[1]))
    assert.equal("SU:alice", body.actor)
    assert.equal("2026-11-28T10:00:00.500000", body.time)
    assert.same({ "timeline:bob", "notification:carl" }, body.to)
    assert.equal("SU:dan", body.extra.nested.who)
    assert.equal("application/json", capture.header(reqs[1], "[Cc]ontent%-[Tt]ype"))
  end)

  it("leaves the caller's activity table unchanged", function()
    local activity
    sent({ function(c)
      activity = { actor = c:user("alice"), verb = "post", object = "x", time = 0 }
      assert(c:feed("user", "alice"):add_activity(activity))
    end })
    assert.equal("stream.user", getmetatable(activity.actor).__name)
    assert.equal(0, activity.time)
  end)

  it("add_activities posts {activities = [...]} in order", function()
    local reqs = sent({ function(c)
      assert(c:feed("user:alice"):add_activities({
        { actor = "SU:alice", verb = "a", object = "1" },
        { actor = "SU:alice", verb = "b", object = "2" },
      }))
    end })
    local body = stream.json.decode(body_of(reqs[1]))
    assert.equal("a", body.activities[1].verb)
    assert.equal("b", body.activities[2].verb)
  end)

  it("get sends paging options sorted after api_key, on the enrich path when asked", function()
    local reqs = sent({
      function(c) assert(c:feed("user", "alice"):get({ limit = 2, offset = 1 })) end,
      function(c) assert(c:feed("user", "alice"):get({ id_lt = "a-b", enrich = true })) end,
      function(c)
        assert(c:feed("user", "alice"):get({
          reactions = { own = true, recent = true, counts = true, kinds = { "like", "comment" },
            recent_limit = 3 },
          user_id = c:user("bob"),
        }))
      end,
    })
    assert.equal("GET /api/v1.0/feed/user/alice/?api_key=key&limit=2&offset=1 HTTP/1.1",
      request_line(reqs[1]))
    assert.equal("GET /api/v1.0/enrich/feed/user/alice/?api_key=key&id_lt=a-b HTTP/1.1",
      request_line(reqs[2]))
    assert.equal("GET /api/v1.0/enrich/feed/user/alice/?api_key=key&reactionKindsFilter=like%2Ccomment"
      .. "&recentReactionsLimit=3&user_id=bob&withOwnReactions=true&withReactionCounts=true"
      .. "&withRecentReactions=true HTTP/1.1", request_line(reqs[3]))
  end)

  it("notification reads send mark_read and mark_seen as true or group id lists", function()
    local reqs = sent({
      function(c) assert(c:feed("notification", "al"):get({ mark_read = true })) end,
      function(c) assert(c:feed("notification", "al"):get({ mark_seen = { "g1.like_2026-11-28", "g2" } })) end,
    })
    assert.equal("GET /api/v1.0/feed/notification/al/?api_key=key&mark_read=true HTTP/1.1",
      request_line(reqs[1]))
    assert.equal("GET /api/v1.0/feed/notification/al/?api_key=key&mark_seen=g1.like_2026-11-28%2Cg2 HTTP/1.1",
      request_line(reqs[2]))
  end)

  it("remove_activity deletes by id, or by foreign id with foreign_id=1", function()
    local reqs = sent({
      function(c) assert(c:feed("user", "alice"):remove_activity("0b6e3c9a-1b2c-11ef-8080-800100000001")) end,
      function(c) assert(c:feed("user", "alice"):remove_activity({ foreign_id = "post:1" })) end,
    })
    assert.equal("DELETE /api/v1.0/feed/user/alice/0b6e3c9a-1b2c-11ef-8080-800100000001/?api_key=key HTTP/1.1",
      request_line(reqs[1]))
    assert.equal("DELETE /api/v1.0/feed/user/alice/post:1/?api_key=key&foreign_id=1 HTTP/1.1",
      request_line(reqs[2]))
  end)

  it("follow, unfollow, followers, following and follow_stats", function()
    local reqs = sent({
      function(c) assert(c:feed("timeline", "bob"):follow(c:feed("user", "alice"), { activity_copy_limit = 0 })) end,
      function(c) assert(c:feed("timeline", "bob"):follow("user:carl")) end,
      function(c) assert(c:feed("timeline", "bob"):unfollow("user:alice", { keep_history = true })) end,
      function(c) assert(c:feed("user", "alice"):followers({ limit = 5, offset = 10 })) end,
      function(c) assert(c:feed("timeline", "bob"):following({ filter = { "user:alice", c:feed("user", "x") } })) end,
      function(c) assert(c:feed("user", "alice"):follow_stats({ followers_slugs = { "timeline" } })) end,
    })
    assert.equal("POST /api/v1.0/feed/timeline/bob/follows/?api_key=key HTTP/1.1", request_line(reqs[1]))
    assert.equal('{"target":"user:alice","activity_copy_limit":0}', body_of(reqs[1]))
    assert.equal('{"target":"user:carl"}', body_of(reqs[2]))
    assert.equal("DELETE /api/v1.0/feed/timeline/bob/follows/user:alice/?api_key=key&keep_history=1 HTTP/1.1",
      request_line(reqs[3]))
    assert.equal("GET /api/v1.0/feed/user/alice/followers/?api_key=key&limit=5&offset=10 HTTP/1.1",
      request_line(reqs[4]))
    assert.equal("GET /api/v1.0/feed/timeline/bob/follows/?api_key=key&filter=user%3Aalice%2Cuser%3Ax HTTP/1.1",
      request_line(reqs[5]))
    assert.equal("GET /api/v1.0/stats/follow/?api_key=key&followers=user%3Aalice"
      .. "&followers_slugs=timeline&following=user%3Aalice HTTP/1.1", request_line(reqs[6]))
  end)

  it("get_activities by ids or by foreign id and time, plain or enriched", function()
    local reqs = sent({
      function(c) assert(c:get_activities({ ids = { "a", "b" } })) end,
      function(c)
        assert(c:get_activities({ foreign_id_times = { { foreign_id = "post:1", time = 0 } } },
          { enrich = true }))
      end,
    })
    assert.equal("GET /api/v1.0/activities/?api_key=key&ids=a%2Cb HTTP/1.1", request_line(reqs[1]))
    assert.equal("GET /api/v1.0/enrich/activities/?api_key=key&foreign_ids=post%3A1"
      .. "&timestamps=1970-01-01T00%3A00%3A00.000000 HTTP/1.1", request_line(reqs[2]))
  end)
end)

describe("feed checks before sending", function()
  local c
  setup(function()
    c = stream.connect("key", "secret-for-wire-specs-0123456789", "1",
      { base_url = "http://127.0.0.1:9/" })
  end)
  teardown(function() c:close() end)

  it("a bad slug or id is invalid on use, with a hint for 'user:1' as a slug", function()
    local f = c:feed("user:1", "x")
    local res, err = f:get()
    assert.is_nil(res)
    assert.equal("invalid", err.kind)
    assert.matches('feed%("user", "1"%)', err.detail)
    res, err = c:feed("user", "a/b"):add_activity({ actor = "x", verb = "v", object = "o" })
    assert.is_nil(res)
    assert.equal("invalid", err.kind)
    assert.matches("feed id", err.detail)
  end)

  it("an activity over 10 kB is invalid", function()
    local _, err = c:feed("user", "a"):add_activity({ actor = "x", verb = "v", object = ("o"):rep(10300) })
    assert.equal("invalid", err.kind)
    assert.matches("over the 10240%-byte limit", err.detail)
  end)

  it("a user handle with a bad id inside an activity is invalid", function()
    local _, err = c:feed("user", "a"):add_activity({ actor = c:user("bad id"), verb = "v", object = "o" })
    assert.equal("invalid", err.kind)
    assert.matches("^activity: ", err.detail)
  end)

  it("wrong argument types raise at the caller", function()
    assert.has_error(function() c:feed("user", "a"):add_activity("x") end,
      "feed:add_activity: activity must be a table, got string")
    assert.has_error(function() c:feed("user", "a"):get({ limit = "2" }) end)
    assert.has_error(function() c:feed("user", "a"):get({ nope = 1 }) end,
      "feed:get: unknown option 'nope'")
    assert.has_error(function() c:feed("user", "a").get() end,
      "feed:get: called with '.' instead of ':'")
    assert.has_error(function() c:feed("user", "a"):follow(42) end)
    for _, f in ipairs({
      function() c:feed({}) end,
      function() c:feed("user") end,
      function() c:user("a"):feed(true) end,
      function() c:feed("user", "a"):get({ limit = 1.5 }) end,
      function() c:feed("user", "a"):pages({ reactions = { nope = true } }) end,
      function() c:get_activities({ ids = "a" }) end,
      -- options checked by the method itself, not by a helper
      function() c:feed("user", "a"):follow("user:b", { limit = 1 }) end,
      function() c:feed("user", "a"):unfollow("user:b", { keep = true }) end,
      function() c:feed("user", "a"):followers({ nope = 1 }) end,
      function() c:feed("user", "a"):following({ nope = 1 }) end,
      function() c:feed("user", "a"):follow_stats({ nope = 1 }) end,
    }) do
      local ok, e = pcall(f)
      assert.is_false(ok)
      assert.matches("feeds_wire_spec%.lua:%d+: ", e)
    end
  end)
end)
