-- Feeds, follows and enriched users against the real local server, over
-- real HTTP: the story a game backend lives by, and every method's answer.
local stream = require "stream"
local server = require "helpers.server"
local H = require "helpers.client"
local shape = require "helpers.shape"
local ids_of = shape.ids_of

describe("feeds (server-side client)", function()
  local s, client

  setup(function()
    s = server.start()
    client = H.server_client(s)
  end)

  teardown(function()
    if client then client:close() end
    if s then s:stop() end
  end)

  describe("feed:add_activity and feed:get", function()
    it("stores the actor as a reference and reads it back newest first", function()
      local alice = client:user(H.uid("alice"))
      assert(alice:create({ name = "Alice" }))
      local feed = alice:feed("user")
      local a1 = assert(feed:add_activity({ actor = alice, verb = "post", object = "post:1" }))
      local a2 = assert(feed:add_activity({ actor = alice, verb = "post", object = 2 }))
      assert.equal("SU:" .. alice.id, a1.actor)
      assert.equal("2", a2.object)
      assert.equal(36, #a1.id)
      local page = assert(feed:get({ limit = 1 }))
      assert.same({ a2.id }, ids_of(page.results))
      assert.is_string(page.next)
      assert.not_equal("", page.next)
      page = assert(feed:get())
      assert.same({ a2.id, a1.id }, ids_of(page.results))
      assert.equal("", page.next)
    end)

    it("sends epoch-second times as UTC with microseconds", function()
      local feed = client:feed("user", H.uid("t"))
      local a = assert(feed:add_activity({ actor = "SU:x", verb = "v", object = "o",
        time = 1795860000.25 }))
      assert.equal("2026-11-28T10:00:00.250000", a.time)
    end)

    it("add_activities returns the activities in request order", function()
      local feed = client:feed("user", H.uid("many"))
      local res = assert(feed:add_activities({
        { actor = "SU:a", verb = "one", object = "1" },
        { actor = "SU:a", verb = "two", object = "2" },
      }))
      assert.equal("one", res.activities[1].verb)
      assert.equal("two", res.activities[2].verb)
    end)

    it("an add with foreign_id and time replaces, so it is safe to repeat", function()
      local feed = client:feed("user", H.uid("fid"))
      local act = { actor = "SU:a", verb = "v", object = "o", foreign_id = "post:9", time = 1795860000 }
      local first = assert(feed:add_activity(act))
      local again = assert(feed:add_activity(act))
      assert.equal(first.id, again.id)
      assert.equal(1, #assert(feed:get()).results)
    end)

    it("remove_activity by id and by foreign id empties the feed", function()
      local feed = client:feed("user", H.uid("rm"))
      local a = assert(feed:add_activity({ actor = "SU:a", verb = "v", object = "1" }))
      assert(feed:add_activity({ actor = "SU:a", verb = "v", object = "2", foreign_id = "post:2" }))
      assert.equal(a.id, assert(feed:remove_activity(a.id)).removed)
      assert.equal("post:2", assert(feed:remove_activity({ foreign_id = "post:2" })).removed)
      assert.same({}, assert(feed:get()).results)
      assert(feed:remove_activity({ foreign_id = "never-added" }))
    end)

    it("answers 400 code 6 for a feed group that is not configured", function()
      local res, err = client:feed("nosuchgroup", "a"):get()
      assert.is_nil(res)
      assert.equal(400, err.status)
      assert.equal(6, err.code)
      assert.equal("FeedConfigException", err.exception)
    end)
  end)

  describe("pages and each", function()
    local feed, added
    setup(function()
      feed = client:feed("user", H.uid("paged"))
      local list = {}
      for i = 1, 7 do list[i] = { actor = "SU:p", verb = "v", object = tostring(i) } end
      added = ids_of(assert(feed:add_activities(list)).activities)
    end)

    it("pages follows next across page boundaries until it is empty", function()
      local seen, pages = {}, 0
      for page, err in feed:pages({ limit = 3 }) do
        assert.is_nil(err)
        pages = pages + 1
        for _, a in ipairs(page.results) do seen[#seen + 1] = a.id end
      end
      assert.equal(3, pages)
      local newest_first = {}
      for i = #added, 1, -1 do newest_first[#newest_first + 1] = added[i] end
      assert.same(newest_first, seen)
    end)

    it("each yields every activity once, newest first", function()
      local seen = {}
      for a, err in feed:each({ limit = 2 }) do
        assert.is_nil(err)
        seen[#seen + 1] = a.object
      end
      assert.same({ "7", "6", "5", "4", "3", "2", "1" }, seen)
    end)

    it("keeps enrichment on every page", function()
      local n = 0
      for page in client:feed("user", feed.user_id):pages({ limit = 3, enrich = true }) do
        for _, a in ipairs(page.results) do
          n = n + 1
          assert.is_true(stream.is_missing(a.actor))
        end
      end
      assert.equal(7, n)
    end)

    it("yields a failure value and err once for a failed request and then ends", function()
      local calls = 0
      for page, err in client:feed("nosuchgroup", "x"):pages() do
        calls = calls + 1
        assert.matches("^stream: walk stopped: ", tostring(page))
        assert.equal(400, err.status)
      end
      assert.equal(1, calls)
    end)
  end)

  describe("follows and enriched timelines", function()
    it("tells the users story: enriched actors, renamed, then deleted", function()
      local carl = client:user(H.uid("carl"))
      local dana = client:user(H.uid("dana"))
      assert(carl:create({ name = "Carl" }))
      assert(dana:create({ name = "Dana" }))
      assert(dana:feed("timeline"):follow(carl:feed("user")))
      local post = assert(carl:feed("user"):add_activity({ actor = carl, verb = "post", object = "level:3" }))

      local plain = assert(dana:feed("timeline"):get())
      assert.equal("SU:" .. carl.id, plain.results[1].actor)
      assert.equal("user:" .. carl.id, plain.results[1].origin)

      local rich = assert(dana:feed("timeline"):get({ enrich = true }))
      local user = assert(carl:get())
      user.duration = nil
      assert.same(user, rich.results[1].actor)
      assert.equal(post.id, rich.results[1].id)

      assert(carl:update({ name = "Carl the Great" }))
      rich = assert(dana:feed("timeline"):get({ enrich = true }))
      assert.equal("Carl the Great", rich.results[1].actor.data.name)

      assert(carl:delete())
      rich = assert(dana:feed("timeline"):get({ enrich = true }))
      local missing = rich.results[1].actor
      assert.is_true(stream.is_missing(missing))
      assert.same({ error = "ReferenceNotFound", reference = "SU:" .. carl.id,
        reference_type = "user", id = carl.id }, missing)
    end)

    it("activity_copy_limit, unfollow and keep_history", function()
      local src = client:feed("user", H.uid("src"))
      for i = 1, 3 do assert(src:add_activity({ actor = "SU:s", verb = "v", object = tostring(i) })) end
      local t1 = client:feed("timeline", H.uid("t1"))
      local t2 = client:feed("timeline", H.uid("t2"))
      assert(t1:follow(src, { activity_copy_limit = 1 }))
      assert(t2:follow(src))
      assert.same({ "3" }, (function()
        local o = {}
        for a in t1:each() do o[#o + 1] = a.object end
        return o
      end)())
      assert.equal(3, #assert(t2:get()).results)
      assert(t1:unfollow(src, { keep_history = true }))
      assert(t2:unfollow("user:" .. src.user_id))
      assert.equal(1, #assert(t1:get()).results)
      assert.same({}, assert(t2:get()).results)
    end)

    it("followers, following with filter, follow_stats and profile counts", function()
      local erin = client:user(H.uid("erin"))
      local finn = client:user(H.uid("finn"))
      assert(erin:create({}))
      assert(finn:create({}))
      assert(finn:feed("timeline"):follow(erin:feed("user")))
      local followers = assert(erin:feed("user"):followers())
      assert.equal(1, #followers.results)
      assert.equal("timeline:" .. finn.id, followers.results[1].feed_id)
      assert.equal("user:" .. erin.id, followers.results[1].target_id)
      local f = assert(finn:feed("timeline"):following({ filter = { erin:feed("user") } }))
      assert.equal(1, #f.results)
      f = assert(finn:feed("timeline"):following({ filter = { "user:nobody" } }))
      assert.same({}, f.results)
      local stats = assert(erin:feed("user"):follow_stats())
      assert.equal(1, stats.results.followers.count)
      assert.equal("user:" .. erin.id, stats.results.followers.feed)
      local profile = assert(erin:get({ with_follow_counts = true }))
      assert.equal(1, profile.followers_count)
      assert.equal(0, profile.following_count)
    end)

    it("get_activities by ids and by foreign id and time, plain and enriched", function()
      local gus = client:user(H.uid("gus"))
      assert(gus:create({ name = "Gus" }))
      local feed = gus:feed("user")
      local a = assert(feed:add_activity({ actor = gus, verb = "v", object = "o",
        foreign_id = "score:1", time = 1795860000 }))
      local by_id = assert(client:get_activities({ ids = { a.id } }))
      a.duration = nil
      assert.same({ a }, by_id.results)
      local by_fid = assert(client:get_activities({
        foreign_id_times = { { foreign_id = "score:1", time = 1795860000 } } }, { enrich = true }))
      assert.equal("Gus", by_fid.results[1].actor.data.name)
    end)
  end)
end)

describe("feeds (user-token client)", function()
  local s, server_client, me, token_client

  setup(function()
    s = server.start()
    server_client = H.server_client(s)
    me = H.uid("me")
    token_client = H.token_client(s, assert(server_client:create_user_token(me)))
  end)

  teardown(function()
    if token_client then token_client:close() end
    if server_client then server_client:close() end
    if s then s:stop() end
  end)

  it("fills a missing actor with its own reference", function()
    local a = assert(token_client:feed("user", me):add_activity({ verb = "post", object = "o" }))
    assert.equal("SU:" .. me, a.actor)
  end)

  it("may not post to another user's feed (403)", function()
    local res, err = token_client:feed("user", "someone-else"):add_activity({ verb = "v", object = "o" })
    assert.is_nil(res)
    assert.equal(403, err.status)
  end)

  it("may read another user's feed but not their timeline", function()
    assert(token_client:feed("user", "someone-else"):get())
    local res, err = token_client:feed("timeline", "someone-else"):get()
    assert.is_nil(res)
    assert.equal(403, err.status)
  end)
end)

describe("feeds: what is sent again after a failure", function()
  local http = require "helpers.http"
  local s, client

  local function program(fault)
    local status = http.request("POST", s.url .. "/_local/faults", { body = stream.json.encode(fault) })
    assert.equal(201, status)
  end

  setup(function()
    s = server.start({ faults = true })
    client = H.server_client(s, { retries = 2 })
  end)
  before_each(function() http.request("DELETE", s.url .. "/_local/faults") end)
  teardown(function()
    if client then client:close() end
    if s then s:stop() end
  end)

  it("never repeats an add without foreign_id and time", function()
    local feed = client:feed("user", H.uid("once"))
    program({ fault = "status", status = 503, count = 1 })
    local res, err = feed:add_activity({ actor = "SU:a", verb = "v", object = "o" })
    assert.is_nil(res)
    assert.equal(503, err.status)
    assert.equal(1, err.attempts)
    program({ fault = "drop", count = 1 })
    res, err = feed:add_activity({ actor = "SU:a", verb = "v", object = "o" })
    assert.is_nil(res)
    assert.equal("transport", err.kind)
    assert.equal(1, err.attempts)
    assert.same({}, assert(feed:get()).results)
  end)

  it("repeats an add with foreign_id and time, which stores it once", function()
    local feed = client:feed("user", H.uid("twice"))
    program({ fault = "status", status = 503, count = 1 })
    local a = assert(feed:add_activity({ actor = "SU:a", verb = "v", object = "o",
      foreign_id = "run:1", time = 1795860000 }))
    assert.equal(1, #assert(feed:get()).results)
    assert.equal(a.id, assert(feed:get()).results[1].id)
  end)

  it("repeats reads, removes, follows and unfollows", function()
    local feed = client:feed("timeline", H.uid("idem"))
    for _, call in ipairs({
      function() return feed:get() end,
      function() return feed:follow("user:someone") end,
      function() return feed:following() end,
      function() return feed:unfollow("user:someone") end,
      function() return feed:remove_activity({ foreign_id = "nothing" }) end,
      function() return client:get_activities({ ids = { "00000000-0000-1000-8080-800000000000" } }) end,
    }) do
      program({ fault = "status", status = 503, count = 2 })
      assert(call())
    end
  end)
end)
