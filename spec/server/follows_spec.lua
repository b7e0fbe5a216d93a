-- Follows and fan-out of the local server (stream-feeds-api.md sections 3 and 4,
-- checklist items 9-12): copies with origin, unfollow, followers/following, follow
-- stats, user follow counts, `to` targets.

local server = require "helpers.server"
local http = require "helpers.http"
local cjson = require "cjson"

local TIMESTAMP = "^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%d%d%d%dZ$"

describe("local server follows", function()
  local s, api

  setup(function()
    s = server.start({ feed_groups = "user,timeline,notification" })
    api = http.api(s)
  end)

  teardown(function()
    if s then s:stop() end
  end)

  local function ok(method, path, opts)
    local st, b, raw = api:call(method, path, opts)
    assert.is_true(st == 200 or st == 201, raw)
    return b, st
  end

  local function add(feed, i, extra)
    return ok("POST", "feed/" .. feed .. "/", { body = '{"actor":"a","verb":"v","object":"o:' .. i .. '"'
      .. (extra or "") .. "}" })
  end

  local function follow(feed, target, limit)
    local body = '{"target":"' .. target .. '"' .. (limit and (',"activity_copy_limit":' .. limit) or "") .. "}"
    local b, st = ok("POST", "feed/" .. feed .. "/follows/", { body = body })
    assert.are.equal(201, st)
    return b
  end

  local function items(feed, query)
    return ok("GET", "feed/" .. feed .. "/", { query = query }).results
  end

  local function objects(list)
    local out = {}
    for i, a in ipairs(list) do out[i] = a.object end
    return out
  end

  local function origins(list)
    local out = {}
    for i, a in ipairs(list) do out[i] = a.origin end
    return out
  end

  describe("follow", function()
    it("answers 201 {duration} and copies the target's activities with origin = the target", function()
      add("user/a1", 1)
      add("user/a1", 2)
      local b = follow("timeline/a1", "user:a1")
      assert.is_string(b.duration)
      assert.are.equal(1, #(function()
        local k = {}
        for name in pairs(b) do k[#k + 1] = name end
        return k
      end)())
      local got = items("timeline/a1")
      assert.are.same({ "o:2", "o:1" }, objects(got))
      assert.are.same({ "user:a1", "user:a1" }, origins(got))
      assert.are.same({ cjson.null, cjson.null }, origins(items("user/a1")))
    end)

    it("activity_copy_limit 0 copies none, 1 the newest; above 1000 is 400", function()
      add("user/a2", 1)
      add("user/a2", 2)
      follow("timeline/b2", "user:a2", 0)
      assert.are.same({}, items("timeline/b2"))
      follow("timeline/c2", "user:a2", 1)
      assert.are.same({ "o:2" }, objects(items("timeline/c2")))
      local st, b = api:call("POST", "feed/timeline/d2/follows/",
        { body = '{"target":"user:a2","activity_copy_limit":1001}' })
      assert.are.equal(400, st)
      assert.are.equal(4, b.code)
      assert.are.same({ "activity_copy_limit must be a non-negative number not greater than 1000" },
        b.exception_fields.activity_copy_limit)
      st = api:call("POST", "feed/timeline/d2/follows/", { body = '{"target":"user:a2","activity_copy_limit":-1}' })
      assert.are.equal(400, st)
      assert.are.same({}, ok("GET", "feed/timeline/d2/follows/").results)
    end)

    it("copies at most 100 by default", function()
      local list = {}
      for i = 1, 100 do list[i] = '{"actor":"a","verb":"v","object":"o:' .. i .. '"}' end
      ok("POST", "feed/user/a3/", { body = '{"activities":[' .. table.concat(list, ",") .. "]}" })
      ok("POST", "feed/user/a3/", { body = '{"actor":"a","verb":"v","object":"o:101"}' })
      follow("timeline/a3", "user:a3")
      local first = items("timeline/a3", "limit=100")
      assert.are.equal(100, #first)
      assert.are.equal("o:101", first[1].object)
      assert.are.equal("", ok("GET", "feed/timeline/a3/", { query = "limit=100" }).next)
    end)

    it("following again is not an error; a feed may not follow itself (400)", function()
      follow("timeline/a4", "user:a4")
      follow("timeline/a4", "user:a4")
      assert.are.equal(1, #ok("GET", "feed/timeline/a4/follows/").results)
      local st, b = api:call("POST", "feed/user/a4/follows/", { body = '{"target":"user:a4"}' })
      assert.are.equal(400, st)
      assert.are.equal(4, b.code)
      st = api:call("POST", "feed/user/a4/follows/", { body = '{"target":"nonsense"}' })
      assert.are.equal(400, st)
      st = api:call("POST", "feed/user/a4/follows/", { body = '{}' })
      assert.are.equal(400, st)
    end)

    it("works under the following/ alias too", function()
      add("user/a5", 1)
      ok("POST", "feed/timeline/a5/following/", { body = '{"target":"user:a5"}' })
      assert.are.same({ "o:1" }, objects(items("timeline/a5")))
      ok("DELETE", "feed/timeline/a5/following/user:a5/")
      assert.are.same({}, items("timeline/a5"))
    end)
  end)

  describe("fan-out", function()
    it("an add reaches every follower with origin = the feed; removal at the source removes copies", function()
      follow("timeline/f1", "user:src1")
      follow("timeline/f2", "user:src1")
      local a = add("user/src1", 1)
      for _, f in ipairs({ "timeline/f1", "timeline/f2" }) do
        local got = items(f)
        assert.are.equal(a.id, got[1].id)
        assert.are.equal("user:src1", got[1].origin)
      end
      ok("DELETE", "feed/user/src1/" .. a.id .. "/")
      assert.are.same({}, items("timeline/f1"))
      assert.are.same({}, items("timeline/f2"))
    end)

    it("removing a copy from a follower leaves the source alone", function()
      follow("timeline/g1", "user:src2")
      local a = add("user/src2", 1)
      ok("DELETE", "feed/timeline/g1/" .. a.id .. "/")
      assert.are.same({}, items("timeline/g1"))
      assert.are.equal(a.id, items("user/src2")[1].id)
    end)

    it("`to` targets get the activity with origin null, their followers with origin = the target", function()
      follow("timeline/h1", "user:tgt")
      follow("timeline/h2", "user:src3")
      local a = add("user/src3", 1, ',"to":["user:tgt","notification:n1"]')
      local t = items("user/tgt")
      assert.are.equal(a.id, t[1].id)
      assert.are.equal(cjson.null, t[1].origin)
      assert.are.same({ "user:tgt", "notification:n1" }, t[1].to)
      assert.are.equal(cjson.null, items("notification/n1")[1].origin)
      assert.are.equal("user:tgt", items("timeline/h1")[1].origin)
      assert.are.equal("user:src3", items("timeline/h2")[1].origin)
      ok("DELETE", "feed/user/src3/" .. a.id .. "/")
      for _, f in ipairs({ "user/tgt", "notification/n1", "timeline/h1", "timeline/h2" }) do
        assert.are.same({}, items(f))
      end
    end)

    it("an activity reaching a feed through two follows appears there once", function()
      follow("timeline/i1", "user:src4")
      follow("timeline/i1", "user:tgt4")
      local a = add("user/src4", 1, ',"to":["user:tgt4"]')
      local got = items("timeline/i1")
      assert.are.equal(1, #got)
      assert.are.equal(a.id, got[1].id)
    end)
  end)

  describe("unfollow", function()
    it("removes the copies, answers 200 {duration}; keep_history keeps them", function()
      add("user/u1", 1)
      follow("timeline/u1", "user:u1")
      follow("timeline/u2", "user:u1")
      local b, st = ok("DELETE", "feed/timeline/u1/follows/user:u1/")
      assert.are.equal(200, st)
      assert.is_string(b.duration)
      assert.are.same({}, items("timeline/u1"))
      for _, v in ipairs({ "1", "true", "True" }) do
        follow("timeline/u2", "user:u1")
        ok("DELETE", "feed/timeline/u2/follows/user:u1/", { query = "keep_history=" .. v })
        assert.are.same({ "o:1" }, objects(items("timeline/u2")))
      end
      -- no longer following: new activities do not arrive
      add("user/u1", 2)
      assert.are.same({ "o:1" }, objects(items("timeline/u2")))
    end)

    it("of a pair that is not followed is not an error", function()
      local _, st = ok("DELETE", "feed/timeline/u3/follows/user:nobody/")
      assert.are.equal(200, st)
    end)
  end)

  describe("followers and following", function()
    setup(function()
      follow("timeline/l1", "user:star")
      follow("timeline/l2", "user:star")
      follow("timeline/l3", "user:star")
      follow("timeline/l1", "user:other")
    end)

    it("rows have feed_id, target_id, created_at, updated_at, newest follow first", function()
      local rows = ok("GET", "feed/user/star/followers/").results
      assert.are.equal(3, #rows)
      assert.are.same({ "timeline:l3", "timeline:l2", "timeline:l1" },
        { rows[1].feed_id, rows[2].feed_id, rows[3].feed_id })
      for _, r in ipairs(rows) do
        assert.are.equal("user:star", r.target_id)
        assert.matches(TIMESTAMP, r.created_at)
        assert.matches(TIMESTAMP, r.updated_at)
      end
      rows = ok("GET", "feed/timeline/l1/follows/").results
      assert.are.same({ "user:other", "user:star" }, { rows[1].target_id, rows[2].target_id })
      rows = ok("GET", "feed/timeline/l1/following/").results
      assert.are.equal(2, #rows)
    end)

    it("limit and offset page; filter narrows to the listed targets; nothing gives []", function()
      local rows = ok("GET", "feed/user/star/followers/", { query = "limit=1&offset=1" }).results
      assert.are.equal(1, #rows)
      assert.are.equal("timeline:l2", rows[1].feed_id)
      rows = ok("GET", "feed/timeline/l1/follows/", { query = "filter=user:star,user:nope" }).results
      assert.are.equal(1, #rows)
      assert.are.equal("user:star", rows[1].target_id)
      assert.are.same({}, ok("GET", "feed/timeline/l1/follows/", { query = "filter=user:nope" }).results)
      assert.are.same({}, ok("GET", "feed/user/lonely/followers/").results)
      assert.are.same({}, ok("GET", "feed/timeline/lonely/follows/").results)
      local st = api:call("GET", "feed/user/star/followers/", { query = "limit=501" })
      assert.are.equal(400, st)
    end)
  end)

  describe("follow stats and user follow counts", function()
    setup(function()
      follow("timeline/s1", "user:stat")
      follow("timeline/s2", "user:stat")
      follow("notification/s3", "user:stat")
      follow("timeline/stat", "user:x1")
      follow("timeline/stat", "user:x2")
      follow("timeline/stat", "notification:x3")
    end)

    it("counts every group unless narrowed by the slug lists", function()
      local b = ok("GET", "stats/follow/", { query = "followers=user:stat&following=timeline:stat" })
      assert.are.same({ followers = { count = 3, feed = "user:stat" },
        following = { count = 3, feed = "timeline:stat" } }, b.results)
      b = ok("GET", "stats/follow/", { query = "followers=user:stat&following=timeline:stat"
        .. "&followers_slugs=timeline&following_slugs=user,timeline" })
      assert.are.same({ followers = { count = 2, feed = "user:stat" },
        following = { count = 2, feed = "timeline:stat" } }, b.results)
      local st = api:call("GET", "stats/follow/")
      assert.are.equal(400, st)
    end)

    it("user follow counts follow the timeline -> user rule", function()
      ok("POST", "user/", { body = '{"id":"stat","data":{}}' })
      local u = ok("GET", "user/stat/", { query = "with_follow_counts=true" })
      assert.are.equal(2, u.followers_count)
      assert.are.equal(2, u.following_count)
      ok("DELETE", "feed/timeline/s1/follows/user:stat/")
      u = ok("GET", "user/stat/", { query = "with_follow_counts=1" })
      assert.are.equal(1, u.followers_count)
      u = ok("GET", "user/stat/")
      assert.is_nil(u.followers_count)
    end)
  end)

  it("logged no unexpected Lua errors", function()
    local log = s:error_log()
    assert.is_nil(log:find("unexpected error", 1, true), log)
    assert.is_nil(log:find("lua entry thread aborted", 1, true), log)
  end)
end)
