-- Notification and aggregated feeds of the local server (stream-feeds-api.md section 9):
-- groups by verb and day, their ids, counts, times and order, paging by group, read and
-- seen marks, copies by follow, `to` and reaction target_feeds, enriched reads inside
-- groups, the follow ban and the user-token rules.

local server = require "helpers.server"
local http = require "helpers.http"
local cjson = require "cjson"
local shape = require "helpers.shape"
local keys, ids_of = shape.keys, shape.ids_of

local GROUP_KEYS = "activities,activity_count,actor_count,created_at,group,id,updated_at,verb"
local NOTIFICATION_KEYS = "activities,activity_count,actor_count,created_at,group,id,is_read,is_seen,updated_at,verb"

local TIME = "^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%d%d%d%d$"

describe("local server notification and aggregated feeds", function()
  local s, api

  setup(function()
    s = server.start({ feed_groups = { "user", "timeline", "notification:notification", "digest:aggregated" } })
    api = http.api(s)
  end)

  teardown(function()
    if s then s:stop() end
  end)

  local function call(method, path, opts)
    local st, b, raw = api:call(method, path, opts)
    assert.is_true(st == 200 or st == 201, raw)
    return b, raw
  end

  local function add(feed, body)
    return call("POST", "feed/" .. feed .. "/", { body = cjson.encode(body) })
  end

  local function read(feed, query, opts)
    opts = opts or {}
    opts.query = query
    return call("GET", "feed/" .. feed .. "/", opts)
  end

  local function act(actor, verb, object, extra)
    local a = { actor = actor, verb = verb, object = object }
    for k, v in pairs(extra or {}) do a[k] = v end
    return a
  end

  describe("groups", function()
    it("group activities by verb and day, with the exact keys and counts", function()
      local a1 = add("notification/g1", act("SU:a", "like", "o1", { time = "2026-11-20T10:00:00" }))
      local a2 = add("notification/g1", act("SU:b", "like", "o2", { time = "2026-11-20T23:59:59.999999" }))
      local a3 = add("notification/g1", act("SU:a", "like", "o3", { time = "2026-11-20T05:00:00" }))
      local c1 = add("notification/g1", act("SU:a", "comment", "o4", { time = "2026-11-20T11:00:00" }))
      local d1 = add("notification/g1", act("SU:a", "like", "o5", { time = "2026-11-21T00:00:00" }))
      local b, raw = read("notification/g1")
      assert.are.equal("duration,next,results,unread,unseen", keys(b), raw)
      assert.are.equal("", b.next)
      assert.are.equal(3, #b.results)
      for _, g in ipairs(b.results) do
        assert.are.equal(NOTIFICATION_KEYS, keys(g))
        assert.matches(TIME, g.created_at)
        assert.matches(TIME, g.updated_at)
        assert.is_false(g.is_read)
        assert.is_false(g.is_seen)
      end
      -- newest arrival first: the d1 group, then comment, then the first like group
      local gd, gc, gl = b.results[1], b.results[2], b.results[3]
      assert.are.same({ "like_2026-11-21", "comment_2026-11-20", "like_2026-11-20" }, { gd.group, gc.group, gl.group })
      assert.are.equal(d1.id .. ".like_2026-11-21", gd.id)
      assert.are.equal(c1.id .. ".comment_2026-11-20", gc.id)
      assert.are.equal("like", gl.verb)
      assert.are.equal(3, gl.activity_count)
      assert.are.equal(2, gl.actor_count)
      -- activities inside newest (by time) first, and the id names the newest
      assert.are.same({ a2.id, a1.id, a3.id }, ids_of(gl.activities))
      assert.are.equal(a2.id .. ".like_2026-11-20", gl.id)
      assert.are.equal(3, b.unread)
      assert.are.equal(3, b.unseen)
      -- each activity is the activity as a flat read shows it
      a1.duration = nil
      assert.are.same(a1, gl.activities[2])
      assert.are.same(cjson.null, gl.activities[2].origin)
    end)

    it("take the day of the activity's time in UTC, also before 1970", function()
      add("notification/g2", act("SU:a", "v", "o", { time = "2026-11-20T01:00:00+05:00" }))
      add("notification/g2", act("SU:a", "w", "o", { time = "1969-12-31T23:59:59.5" }))
      local b = read("notification/g2")
      local names = { b.results[1].group, b.results[2].group }
      table.sort(names)
      assert.are.same({ "v_2026-11-19", "w_1969-12-31" }, names)
    end)

    it("time a group by the arrival of its activities, not by their time", function()
      add("notification/g3", act("SU:a", "v", "o1", { time = "2020-01-01T00:00:00" }))
      local first = read("notification/g3").results[1]
      assert.are.equal(first.created_at, first.updated_at)
      assert.is_true(first.created_at > "2026-01-01", first.created_at)
      add("notification/g3", act("SU:b", "v", "o2", { time = "2020-01-01T01:00:00" }))
      local g = read("notification/g3").results[1]
      assert.are.equal(first.created_at, g.created_at)
      assert.is_true(g.updated_at > first.updated_at)
      -- a backdated activity of another group arriving later puts its group first
      add("notification/g3", act("SU:a", "old", "o3", { time = "2001-01-01T00:00:00" }))
      assert.are.equal("old_2001-01-01", read("notification/g3").results[1].group)
    end)

    it("show at most the 15 newest activities of a group and count them all", function()
      local list = {}
      for i = 1, 17 do
        list[i] = act("SU:u" .. (i % 4), "many", "o" .. i, { time = string.format("2026-11-20T10:00:%02d", i) })
      end
      local stored = call("POST", "feed/notification/g4/", { body = cjson.encode({ activities = list }) }).activities
      local g = read("notification/g4").results[1]
      assert.are.equal(17, g.activity_count)
      assert.are.equal(4, g.actor_count)
      assert.are.equal(15, #g.activities)
      assert.are.equal(stored[17].id, g.activities[1].id)
      assert.are.equal(stored[3].id, g.activities[15].id)
    end)

    it("follow updates and removals of their activities", function()
      local a = add("notification/g5", act("SU:a", "v", "o1", { time = "2026-11-20T10:00:00" }))
      add("notification/g5", act("SU:a", "v", "o2", { time = "2026-11-20T11:00:00" }))
      call("POST", "activity/", { body = cjson.encode({ id = a.id, set = { verb = "w" } }) })
      local b = read("notification/g5")
      assert.are.equal(2, #b.results)
      call("DELETE", "feed/notification/g5/" .. a.id .. "/")
      b = read("notification/g5")
      assert.are.equal(1, #b.results)
      assert.are.equal("v_2026-11-20", b.results[1].group)
    end)
  end)

  describe("aggregated feeds", function()
    it("answer groups without marks, the group id being the newest activity's id", function()
      local a1 = add("digest/x1", act("SU:a", "v", "o1", { time = "2026-11-20T10:00:00" }))
      local a2 = add("digest/x1", act("SU:b", "v", "o2", { time = "2026-11-20T12:00:00" }))
      local b, raw = read("digest/x1", "mark_read=true&mark_seen=true")
      assert.are.equal("duration,next,results", keys(b), raw)
      assert.are.equal(1, #b.results)
      assert.are.equal(GROUP_KEYS, keys(b.results[1]))
      assert.are.equal(a2.id, b.results[1].id)
      assert.are.same({ a2.id, a1.id }, ids_of(b.results[1].activities))
      assert.are.equal("v_2026-11-20", b.results[1].group)
    end)
  end)

  describe("aggregated paging", function()
    it("takes aggregated group ids as cursors, also ids taken before the group grew", function()
      for i = 1, 3 do add("digest/x2", act("SU:a", "w" .. i, "o")) end
      local gids = ids_of(read("digest/x2").results)
      assert.are.same({ gids[2], gids[3] }, ids_of(read("digest/x2", "id_lt=" .. gids[1]).results))
      -- the w2 group grows: its id changes and it comes first; the old id still names it
      local newer = add("digest/x2", act("SU:b", "w2", "o2"))
      local now = ids_of(read("digest/x2").results)
      assert.are.same({ newer.id, gids[1], gids[3] }, now)
      assert.are.same({ gids[1], gids[3] }, ids_of(read("digest/x2", "id_lt=" .. gids[2]).results))
    end)
  end)

  describe("paging", function()
    local gids

    setup(function()
      -- five groups, one verb each, added oldest first
      for i = 1, 5 do add("notification/p1", act("SU:a", "v" .. i, "o", { time = "2026-11-20T10:00:00" })) end
      gids = ids_of(read("notification/p1").results)
    end)

    it("counts groups with limit and offset, newest first", function()
      assert.are.equal(5, #gids)
      assert.matches("%.v5_2026%-11%-20$", gids[1])
      assert.are.same({ gids[1], gids[2] }, ids_of(read("notification/p1", "limit=2").results))
      assert.are.same({ gids[2], gids[3] }, ids_of(read("notification/p1", "limit=2&offset=1").results))
      assert.are.same({}, read("notification/p1", "offset=5").results)
    end)

    it("takes group ids as cursors", function()
      assert.are.same({ gids[3], gids[4], gids[5] }, ids_of(read("notification/p1", "id_lt=" .. gids[2]).results))
      assert.are.same({ gids[2], gids[3] }, ids_of(read("notification/p1", "id_lte=" .. gids[2] .. "&limit=2").results))
      assert.are.same({ gids[1], gids[2] }, ids_of(read("notification/p1", "id_gt=" .. gids[3]).results))
      assert.are.same({ gids[1], gids[2], gids[3] }, ids_of(read("notification/p1", "id_gte=" .. gids[3]).results))
      local both = "id_gte=" .. gids[3] .. "&id_lte=" .. gids[3]
      assert.are.same({ gids[3] }, ids_of(read("notification/p1", both).results))
    end)

    it("gives a next that leads through every group once, then \"\"", function()
      local seen, path, query = {}, "feed/notification/p1/", "limit=2"
      for _ = 1, 5 do
        local b = call("GET", path, { query = query })
        for _, g in ipairs(b.results) do seen[#seen + 1] = g.id end
        if b.next == "" then break end
        assert.is_nil(b.next:find("api_key", 1, true))
        path, query = b.next:match("^/api/v1%.0/([^?]+)%?(.*)$")
        assert.is_not_nil(path, b.next)
      end
      assert.are.same(gids, seen)
    end)

    it("refuses a cursor that is not a group id of the feed, and bad limits", function()
      local st, b = api:call("GET", "feed/notification/p1/", { query = "id_lt=nonsense" })
      assert.are.equal(400, st)
      assert.are.equal(4, b.code)
      assert.is_not_nil(b.exception_fields.id_lt)
      local unknown = "00000000-0000-1000-8000-000000000000.x_2026-01-01"
      st, b = api:call("GET", "feed/notification/p1/", { query = "id_lt=" .. unknown })
      assert.are.equal(400, st)
      assert.is_not_nil(b.exception_fields.id_lt)
      st = api:call("GET", "feed/notification/p1/", { query = "limit=101" })
      assert.are.equal(400, st)
    end)
  end)

  describe("marks", function()
    it("mark_read=true marks every group after the answer; mark_seen stays apart", function()
      add("notification/m1", act("SU:a", "v1", "o"))
      add("notification/m1", act("SU:a", "v2", "o"))
      local b = read("notification/m1", "mark_read=true")
      assert.are.equal(2, b.unread)
      assert.are.equal(2, b.unseen)
      assert.is_false(b.results[1].is_read)
      b = read("notification/m1")
      assert.are.equal(0, b.unread)
      assert.are.equal(2, b.unseen)
      for _, g in ipairs(b.results) do
        assert.is_true(g.is_read)
        assert.is_false(g.is_seen)
      end
      for _, v in ipairs({ "1", "True" }) do
        read("notification/m1", "mark_seen=" .. v)
        assert.are.equal(0, read("notification/m1").unseen)
      end
    end)

    it("a comma list marks the groups it names, and only them", function()
      for i = 1, 3 do add("notification/m2", act("SU:a", "v" .. i, "o")) end
      local gids = ids_of(read("notification/m2").results)
      local b = read("notification/m2", "mark_seen=" .. gids[1] .. "," .. gids[3])
      assert.are.equal(3, b.unseen)
      b = read("notification/m2")
      assert.are.equal(1, b.unseen)
      assert.are.equal(3, b.unread)
      assert.are.same({ true, false, true }, { b.results[1].is_seen, b.results[2].is_seen, b.results[3].is_seen })
      -- false, an unknown id or a stale id mark nothing
      read("notification/m2", "mark_read=false")
      read("notification/m2", "mark_read=00000000-0000-1000-8000-000000000000.v2_2026-01-01")
      assert.are.equal(3, read("notification/m2").unread)
    end)

    it("a group that receives a new activity is unread and unseen again", function()
      add("notification/m3", act("SU:a", "like", "o1"))
      add("notification/m3", act("SU:a", "follow", "o2"))
      read("notification/m3", "mark_read=true&mark_seen=true")
      local b = read("notification/m3")
      assert.are.equal(0, b.unread)
      assert.are.equal(0, b.unseen)
      local old = b.results[2]
      assert.are.equal("like", old.verb)
      add("notification/m3", act("SU:b", "like", "o3"))
      b = read("notification/m3")
      assert.are.equal(1, b.unread)
      assert.are.equal(1, b.unseen)
      local g = b.results[1]
      assert.are.equal("like", g.verb)
      assert.is_false(g.is_read)
      assert.is_false(g.is_seen)
      assert.are_not.equal(old.id, g.id)
      assert.is_true(b.results[2].is_read)
      -- the stale id of the group marks nothing; its new id marks it
      read("notification/m3", "mark_read=" .. old.id)
      assert.are.equal(1, read("notification/m3").unread)
      read("notification/m3", "mark_read=" .. g.id)
      assert.are.equal(0, read("notification/m3").unread)
    end)
  end)

  describe("copies", function()
    it("a notification feed may follow a flat feed; copies carry origin", function()
      add("user/src1", act("SU:src1", "post", "o1"))
      call("POST", "feed/notification/c1/follows/", { body = '{"target":"user:src1"}' })
      add("user/src1", act("SU:src1", "post", "o2"))
      local b = read("notification/c1")
      assert.are.equal(1, #b.results)
      assert.are.equal(2, b.results[1].activity_count)
      for _, a in ipairs(b.results[1].activities) do assert.are.equal("user:src1", a.origin) end
      call("DELETE", "feed/notification/c1/follows/user:src1/")
      assert.are.same({}, read("notification/c1").results)
    end)

    it("`to` targets and reaction target_feeds land in groups", function()
      local a = add("user/c2", act("SU:c2", "post", "o", { to = { "notification:c2n", "digest:c2n" } }))
      local g = read("notification/c2n").results[1]
      assert.are.equal(a.id, g.activities[1].id)
      assert.are.equal(cjson.null, g.activities[1].origin)
      assert.are.equal(a.id, read("digest/c2n").results[1].id)
      local r = call("POST", "reaction/", { body = cjson.encode({ kind = "like", activity_id = a.id, user_id = "c2r",
        target_feeds = { "notification:c2n" } }) })
      local b = read("notification/c2n")
      assert.are.equal(2, #b.results)
      assert.are.equal("like", b.results[1].verb)
      assert.are.equal("SR:" .. r.id, b.results[1].activities[1].reaction)
    end)
  end)

  describe("enriched reads", function()
    it("enrich each activity in a group exactly as a flat enriched read does, reaction flags included", function()
      call("POST", "user/", { body = '{"id":"en1","data":{"name":"En"}}' })
      local a = add("user/en1", act("SU:en1", "post", "o", { to = { "notification:en2" } }))
      call("POST", "reaction/", { body = cjson.encode({ kind = "like", activity_id = a.id, user_id = "en1" }) })
      local flags = "withOwnReactions=true&withRecentReactions=true&withReactionCounts=true"
      local flat = call("GET", "enrich/feed/user/en1/", { query = flags }).results[1]
      local b = call("GET", "enrich/feed/notification/en2/", { query = flags })
      local inside = b.results[1].activities[1]
      flat.origin, inside.origin = nil, nil
      assert.are.same(flat, inside)
      assert.are.equal("En", inside.actor.data.name)
      assert.are.equal(1, inside.reaction_counts.like)
      -- a plain read keeps the reference
      assert.are.equal("SU:en1", read("notification/en2").results[1].activities[1].actor)
    end)

    it("keep the enrich path and flags in next", function()
      add("notification/en3", act("SU:a", "x1", "o"))
      add("notification/en3", act("SU:a", "x2", "o"))
      local b = call("GET", "enrich/feed/notification/en3/",
        { query = "limit=1&withReactionCounts=true&mark_seen=true" })
      assert.matches("^/api/v1%.0/enrich/feed/notification/en3/%?id_lt=", b.next)
      assert.is_not_nil(b.next:find("withReactionCounts=true", 1, true))
      assert.is_nil(b.next:find("mark_seen", 1, true))
    end)
  end)

  describe("follows", function()
    it("notification and aggregated feeds cannot be followed (400 code 4 naming the target)", function()
      for _, target in ipairs({ "notification:f1", "digest:f1" }) do
        local st, b, raw = api:call("POST", "feed/timeline/f2/follows/", { body = '{"target":"' .. target .. '"}' })
        assert.are.equal(400, st, raw)
        assert.are.equal(4, b.code)
        assert.is_not_nil(b.exception_fields.target)
        assert.is_not_nil(b.detail:find(target, 1, true), b.detail)
        st, b = api:call("POST", "follow_many/", { body = '[{"source":"timeline:f2","target":"' .. target .. '"}]' })
        assert.are.equal(400, st)
        assert.are.equal(4, b.code)
      end
      assert.are.same({}, call("GET", "feed/timeline/f2/follows/").results)
    end)
  end)

  describe("user tokens", function()
    local function user(id) return api:token('{"user_id":"' .. id .. '"}') end

    it("are refused another's notification feed (403) only after the query is checked (400)", function()
      local st = api:call("GET", "feed/notification/ut1/", { token = user("ut2"), query = "id_lt=nonsense" })
      assert.are.equal(400, st)
      st = api:call("GET", "feed/notification/ut1/", { token = user("ut2"), query = "limit=0" })
      assert.are.equal(400, st)
    end)

    it("read and mark their own notification feed, not another's", function()
      add("notification/ut1", act("SU:x", "v", "o"))
      local st, b, raw = api:call("GET", "feed/notification/ut1/", { token = user("ut1"), query = "mark_read=true" })
      assert.are.equal(200, st, raw)
      assert.are.equal(1, b.unread)
      assert.are.equal(0, read("notification/ut1").unread)
      st, b = api:call("GET", "feed/notification/ut1/", { token = user("ut2") })
      assert.are.equal(403, st)
      assert.are.equal(17, b.code)
      st = api:call("GET", "enrich/feed/notification/ut1/", { token = user("ut2"), query = "mark_seen=true" })
      assert.are.equal(403, st)
      assert.are.equal(1, read("notification/ut1").unseen)
    end)

    it("make their notification feed follow a user feed, and send to others' notification feeds", function()
      local st, _, raw = api:call("POST", "feed/notification/ut3/follows/",
        { token = user("ut3"), body = '{"target":"user:ut4"}' })
      assert.are.equal(201, st, raw)
      st, _, raw = api:call("POST", "feed/user/ut4/", { token = user("ut4"),
        body = '{"actor":"SU:ut4","verb":"hi","object":"o","to":["notification:ut5"]}' })
      assert.are.equal(201, st, raw)
      assert.are.equal(1, #read("notification/ut3").results)
      assert.are.equal(1, #read("notification/ut5").results)
      st = api:call("POST", "feed/user/ut4/", { token = user("ut4"),
        body = '{"actor":"SU:ut4","verb":"hi","object":"o","to":["digest:ut5"]}' })
      assert.are.equal(403, st)
    end)
  end)

  describe("concurrency (2 workers)", function()
    it("marking reads racing adds always answer counts that agree with their groups", function()
      local auth = { Authorization = api:token(), ["stream-auth-type"] = "jwt" }
      local list = {}
      for i = 1, 30 do
        if i % 3 == 0 then
          list[#list + 1] = { "GET", api:url("feed/notification/race/", { query = "mark_read=true&mark_seen=true" }),
            { headers = auth, timeout = 30 } }
        else
          list[#list + 1] = { "POST", api:url("feed/notification/race/"), { headers = auth, timeout = 30,
            body = cjson.encode(act("SU:a", "v" .. (i % 7), "o" .. i)) } }
        end
      end
      for _, r in ipairs(http.concurrent(list)) do
        assert.is_true(r.status == 200 or r.status == 201, r.body)
        if r.status == 200 then
          local b = cjson.decode(r.body)
          local unread, unseen = 0, 0
          for _, g in ipairs(b.results) do
            if not g.is_read then unread = unread + 1 end
            if not g.is_seen then unseen = unseen + 1 end
          end
          assert.are.same({ unread, unseen }, { b.unread, b.unseen })
        end
      end
      local b = read("notification/race")
      local total = 0
      for _, g in ipairs(b.results) do total = total + g.activity_count end
      assert.are.equal(20, total)
      assert.are.equal(7, #b.results)
      read("notification/race", "mark_read=true")
      assert.are.equal(0, read("notification/race").unread)
    end)
  end)

  it("logged no Lua errors", function()
    local log = s:error_log()
    assert.is_nil(log:find("[error]", 1, true), log)
    assert.is_nil(log:find("lua entry thread aborted", 1, true), log)
  end)
end)

describe("local server default feed groups", function()
  local s, api

  setup(function()
    s = server.start()
    api = http.api(s)
  end)

  teardown(function()
    if s then s:stop() end
  end)

  it("are user and timeline (flat) and notification (notification)", function()
    for _, feed in ipairs({ "user/d1", "timeline/d1" }) do
      local st, b = api:call("GET", "feed/" .. feed .. "/")
      assert.are.equal(200, st)
      assert.are.equal("duration,next,results", keys(b))
    end
    local st, b = api:call("GET", "feed/notification/d1/")
    assert.are.equal(200, st)
    assert.are.equal("duration,next,results,unread,unseen", keys(b))
    st, b = api:call("GET", "feed/aggregated/d1/")
    assert.are.equal(400, st)
    assert.are.equal(6, b.code)
  end)
end)
