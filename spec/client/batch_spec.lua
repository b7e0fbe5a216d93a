-- Batch calls and target updates against the real local server, over real
-- HTTP: what each call does to the feeds, read back with plain reads.
local server = require "helpers.server"
local H = require "helpers.client"
local shape = require "helpers.shape"
local ids_of = shape.ids_of

-- The `to` list of an activity, sorted (Stream keeps no order for it).
local function sorted(list)
  local copy = {}
  for i, v in ipairs(list or {}) do copy[i] = v end
  table.sort(copy)
  return copy
end

describe("batch calls (server-side client)", function()
  local s, client

  setup(function()
    s = server.start()
    client = H.server_client(s)
  end)

  teardown(function()
    if client then client:close() end
    if s then s:stop() end
  end)

  -- Fresh feeds for one spec: user:<run>-<name> for each name.
  local function feeds(...)
    local run = H.uid("b")
    local out = {}
    for i, name in ipairs({ ... }) do out[i] = client:feed("user", run .. "-" .. name) end
    return table.unpack(out)
  end

  describe("client:add_to_many", function()
    it("adds one activity to every feed with one id, and their followers get it", function()
      local a, b = feeds("a", "b")
      local timeline = client:feed("timeline", a.user_id)
      assert(timeline:follow(a))
      local res = assert(client:add_to_many({ actor = client:user("referee"), verb = "won",
        object = "match:1", time = 1795860000 }, { a, b.id }))
      assert.is_string(res.duration)
      local in_a = assert(a:get()).results
      local in_b = assert(b:get()).results
      assert.equal(1, #in_a)
      assert.equal(1, #in_b)
      assert.equal(in_a[1].id, in_b[1].id)
      assert.equal("SU:referee", in_a[1].actor)
      assert.equal("2026-11-28T10:00:00.000000", in_a[1].time)
      local copied = assert(timeline:get()).results
      assert.same({ in_a[1].id }, ids_of(copied))
      assert.equal(a.id, copied[1].origin)
    end)

    it("with foreign_id and time, sending it again replaces it in every feed", function()
      local a, b = feeds("a", "b")
      local act = { actor = "SU:x", verb = "scored", object = "goal:1", foreign_id = "goal:1",
        time = 1795860000, minute = 10 }
      assert(client:add_to_many(act, { a, b }))
      act.minute = 11
      assert(client:add_to_many(act, { a, b }))
      for _, f in ipairs({ a, b }) do
        local results = assert(f:get()).results
        assert.equal(1, #results)
        assert.equal(11, results[1].minute)
      end
    end)

    it("returns the server's 400 code 6 for a group that is not configured", function()
      local a = feeds("a")
      local res, err = client:add_to_many({ actor = "SU:x", verb = "v", object = "o" },
        { a, "nosuchgroup:x" })
      assert.is_nil(res)
      assert.equal(400, err.status)
      assert.equal(6, err.code)
      assert.same({}, assert(a:get()).results) -- nothing written
    end)
  end)

  describe("client:follow_many and client:unfollow_many", function()
    local source, added
    setup(function()
      source = feeds("star")
      added = {}
      for i = 1, 3 do
        added[i] = assert(source:add_activity({ actor = "SU:star", verb = "post", object = tostring(i) })).id
      end
    end)

    it("follows every pair; activity_copy_limit bounds the copies of each", function()
      local run = H.uid("t")
      local t1, t2 = client:feed("timeline", run .. "-1"), client:feed("timeline", run .. "-2")
      assert(client:follow_many({ { source = t1, target = source }, { source = t2.id, target = source.id } },
        { activity_copy_limit = 1 }))
      for _, t in ipairs({ t1, t2 }) do
        local results = assert(t:get()).results
        assert.same({ added[3] }, ids_of(results))
        assert.equal(source.id, results[1].origin)
      end
      local t3 = client:feed("timeline", run .. "-3")
      assert(client:follow_many({ { source = t3, target = source } }, { activity_copy_limit = 0 }))
      assert.same({}, assert(t3:get()).results)
      local followers = {}
      for _, row in ipairs(assert(source:followers()).results) do followers[#followers + 1] = row.feed_id end
      assert.same(sorted({ t1.id, t2.id, t3.id }), sorted(followers))
      -- later activities reach every follower
      local later = assert(source:add_activity({ actor = "SU:star", verb = "post", object = "4" }))
      assert.equal(later.id, assert(t3:get()).results[1].id)
    end)

    it("copies up to the default without activity_copy_limit", function()
      local t = client:feed("timeline", H.uid("d"))
      assert(client:follow_many({ { source = t, target = source } }))
      local got = ids_of(assert(t:get()).results)
      for _, id in ipairs(added) do assert.truthy(table.concat(got, ","):find(id, 1, true)) end
    end)

    it("unfollows every pair; keep_history keeps the copies of the items that set it", function()
      local run = H.uid("u")
      local keep, drop = client:feed("timeline", run .. "-k"), client:feed("timeline", run .. "-d")
      assert(client:follow_many({ { source = keep, target = source }, { source = drop, target = source } }))
      local before = #assert(keep:get()).results
      assert.is_true(before >= 3)
      assert(client:unfollow_many({ { source = keep, target = source, keep_history = true },
        { source = drop.id, target = source.id } }))
      assert.equal(before, #assert(keep:get()).results)
      assert.same({}, assert(drop:get()).results)
      assert.same({}, assert(keep:following()).results)
      assert.same({}, assert(drop:following()).results)
      -- unfollowing pairs that are not followed is not an error
      assert(client:unfollow_many({ { source = drop, target = source } }))
    end)

    it("returns the server's 400 for a feed following itself, with nothing written", function()
      local t = client:feed("timeline", H.uid("self"))
      local res, err = client:follow_many({ { source = t, target = source }, { source = t, target = t } })
      assert.is_nil(res)
      assert.equal(400, err.status)
      assert.equal(4, err.code)
      assert.same({}, assert(t:following()).results)
    end)
  end)

  describe("feed:update_activity_to_targets", function()
    it("replaces the targets with new_targets; dropped targets lose the activity", function()
      local f, b, c, d = feeds("owner", "b", "c", "d")
      local act = assert(f:add_activity({ actor = "SU:x", verb = "tweet", object = "1",
        foreign_id = "tweet:1", time = 1795860000, to = { b, c } }))
      local res = assert(f:update_activity_to_targets({ foreign_id = "tweet:1", time = 1795860000,
        new_targets = { d, c.id } }))
      assert.equal(act.id, res.activity.id)
      assert.same(sorted({ c.id, d.id }), sorted(res.activity.to))
      assert.same({ d.id }, res.added)
      assert.same({ b.id }, res.removed)
      assert.same({}, assert(b:get()).results)
      assert.same({ act.id }, ids_of(assert(d:get()).results))
      assert.same({ act.id }, ids_of(assert(c:get()).results))
    end)

    it("adds and removes targets by activity id, and is safe to send again", function()
      local f, b, c = feeds("owner", "b", "c")
      local act = assert(f:add_activity({ actor = "SU:x", verb = "tweet", object = "1", to = { b } }))
      local change = { id = act.id, added_targets = { c }, removed_targets = { b } }
      local res = assert(f:update_activity_to_targets(change))
      assert.same({ c.id }, res.activity.to)
      res = assert(f:update_activity_to_targets(change))
      assert.same({ c.id }, res.activity.to)
      assert.same({}, assert(b:get()).results)
      assert.same({ act.id }, ids_of(assert(c:get()).results))
    end)

    it("answers 404 for an activity that is not in the feed", function()
      local f = feeds("owner")
      local res, err = f:update_activity_to_targets({ foreign_id = "never", time = 0,
        new_targets = { "user:b" } })
      assert.is_nil(res)
      assert.equal(404, err.status)
      assert.equal("POST", err.method)
      assert.matches("^feed_targets/user/", err.path)
    end)
  end)
end)
