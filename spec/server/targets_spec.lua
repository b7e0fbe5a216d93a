-- Updates of an activity's `to` targets on the local server (stream-feeds-api.md
-- section 11): POST feed_targets/{slug}/{id}/activity_to_targets/, its answers, its
-- fan-out (as if the activity had been added with the new `to`), its errors, its batch
-- form and its tokens.

local server = require "helpers.server"
local http = require "helpers.http"
local cjson = require "cjson"
local shape = require "helpers.shape"
local ids_of = shape.ids_of

describe("local server activity_to_targets", function()
  local s, api

  setup(function()
    s = server.start()
    api = http.api(s)
  end)

  teardown(function()
    if s then s:stop() end
  end)

  local n = 0
  -- a fresh name for each use, so tests share no feeds
  local function fresh(prefix)
    n = n + 1
    return prefix .. n
  end

  local function path(feed)
    return (feed:gsub(":", "/")) .. "/"
  end

  local function add(feed, fields)
    local st, b, raw = api:call("POST", "feed/" .. path(feed), { body = cjson.encode(fields) })
    assert.are.equal(201, st, raw)
    return b
  end

  local function read(feed)
    local st, b, raw = api:call("GET", "feed/" .. path(feed))
    assert.are.equal(200, st, raw)
    return b.results, raw
  end

  local function follow(follower, target)
    local st, _, raw = api:call("POST", "feed/" .. path(follower) .. "follows/",
      { body = '{"target":"' .. target .. '"}' })
    assert.are.equal(201, st, raw)
  end

  local function retarget(feed, body, token)
    return api:call("POST", "feed_targets/" .. path(feed) .. "activity_to_targets/",
      { body = type(body) == "string" and body or cjson.encode(body), token = token })
  end

  local function origins(feed)
    local out = {}
    for _, a in ipairs(read(feed)) do out[a.id] = a.origin == cjson.null and "null" or a.origin end
    return out
  end

  local TIME = "2026-07-01T12:00:00.250000"

  describe("a change", function()
    it("replaces `to` with new_targets (found by foreign_id and time): 201 with activity, added, removed", function()
      local owner, t1, t2, f1, f2 = fresh("user:o"), fresh("user:t"), fresh("user:t"), fresh("timeline:f"),
        fresh("timeline:f")
      follow(f1, t1)
      follow(f2, t2)
      local a = add(owner, { actor = "a", verb = "v", object = "o", foreign_id = "post:1", time = TIME, to = { t1 } })
      local st, b, raw = retarget(owner, { foreign_id = "post:1", time = TIME, new_targets = { t2 } })
      assert.are.equal(201, st, raw)
      assert.are.equal("activity,added,duration,removed", shape.keys(b))
      assert.are.same({ t2 }, b.added)
      assert.are.same({ t1 }, b.removed)
      assert.are.equal(a.id, b.activity.id)
      assert.are.same({ t2 }, b.activity.to)
      assert.are.same({}, read(t1))
      assert.are.same({}, read(f1))
      assert.are.same({ [a.id] = "null" }, origins(t2))
      assert.are.same({ [a.id] = t2 }, origins(f2))
      assert.are.same({ t2 }, read(owner)[1].to)
    end)

    it("adds and removes together, found by id or by a time in another zone", function()
      local owner, t1, t2, t3 = fresh("user:o"), fresh("user:t"), fresh("user:t"), fresh("user:t")
      local a = add(owner, { actor = "a", verb = "v", object = "o", foreign_id = "post:2", time = TIME,
        to = { t1, t2 } })
      local st, b, raw = retarget(owner, { id = a.id, added_targets = { t3 }, removed_targets = { t1 } })
      assert.are.equal(201, st, raw)
      assert.are.same({ t3 }, b.added)
      assert.are.same({ t1 }, b.removed)
      assert.are.same({ t2, t3 }, b.activity.to)
      st, b, raw = retarget(owner, { foreign_id = "post:2", time = "2026-07-01T14:00:00.250000+02:00",
        removed_targets = { t2, "user:never" } })
      assert.are.equal(201, st, raw)
      assert.are.same({ t2 }, b.removed, "removing a feed that is no target is ignored")
      assert.are.same({}, b.added)
      assert.are.same({ t3 }, b.activity.to)
      assert.are.same({}, read(t1))
      assert.are.same({}, read(t2))
      assert.are.same({ a.id }, ids_of(read(t3)))
    end)

    it("leaves no `to` key once no target is left; an empty list counts as absent", function()
      local owner, t1, t2 = fresh("user:o"), fresh("user:t"), fresh("user:t")
      local a = add(owner, { actor = "a", verb = "v", object = "o", to = { t1 } })
      local st, b, raw = retarget(owner, '{"id":"' .. a.id .. '","new_targets":[],"added_targets":[],'
        .. '"removed_targets":["' .. t1 .. '"]}')
      assert.are.equal(201, st, raw)
      assert.is_nil(b.activity.to)
      local _, text = read(owner)
      assert.is_nil(text:find('"to"', 1, true), text)
      st, b, raw = retarget(owner, '{"id":"' .. a.id .. '","new_targets":[],"added_targets":["'
        .. t2 .. ' some-token"],"removed_targets":[]}')
      assert.are.equal(201, st, raw)
      assert.are.same({ t2 }, b.activity.to)
      assert.are.same({ a.id }, ids_of(read(t2)))
    end)

    it("fans out exactly as an add with the new `to`: each follower keeps the origin an add would give", function()
      local owner, t1, t2 = fresh("user:o"), fresh("user:t"), fresh("user:t")
      local both, via_t2, via_t1 = fresh("timeline:f"), fresh("timeline:f"), fresh("timeline:f")
      follow(both, owner)
      follow(both, t1)
      follow(via_t2, t1)
      follow(via_t2, t2)
      follow(via_t1, t1)
      local a = add(owner, { actor = "a", verb = "v", object = "o", to = { t1, t2 } })
      assert.are.same({ [a.id] = t1 }, origins(via_t2))
      local st, _, raw = retarget(owner, { id = a.id, removed_targets = { t1 } })
      assert.are.equal(201, st, raw)
      assert.are.same({ [a.id] = owner }, origins(both))
      assert.are.same({ [a.id] = t2 }, origins(via_t2))
      assert.are.same({}, read(via_t1))
      assert.are.same({}, read(t1))
      -- the activity stays where it was added, and its other copies are untouched
      assert.are.same({ [a.id] = "null" }, origins(owner))
      assert.are.same({ [a.id] = "null" }, origins(t2))
    end)

    it("changes the activity everywhere: activities by id and every copy carry the new `to`", function()
      local owner, t1, t2 = fresh("user:o"), fresh("user:t"), fresh("user:t")
      local a = add(owner, { actor = "a", verb = "v", object = "o", to = { t1 } })
      retarget(owner, { id = a.id, added_targets = { t2 } })
      local _, got = api:call("GET", "activities/", { query = "ids=" .. a.id })
      assert.are.same({ t1, t2 }, got.results[1].to)
      assert.are.same({ t1, t2 }, read(t1)[1].to)
    end)
  end)

  describe("the batch form", function()
    it("answers for the first change and applies the later ones too", function()
      local owner, t1, t2 = fresh("user:o"), fresh("user:t"), fresh("user:t")
      local a = add(owner, { actor = "a", verb = "v", object = "a" })
      local b2 = add(owner, { actor = "a", verb = "v", object = "b" })
      local st, b, raw = retarget(owner, { { id = a.id, new_targets = { t1 } }, { id = b2.id, new_targets = { t2 } } })
      assert.are.equal(201, st, raw)
      assert.are.equal(a.id, b.activity.id)
      assert.are.same({ t1 }, b.added)
      assert.are.same({ a.id }, ids_of(read(t1)))
      assert.are.same({ b2.id }, ids_of(read(t2)))
    end)

    it("writes nothing when a change fails", function()
      local owner, t1 = fresh("user:o"), fresh("user:t")
      local a = add(owner, { actor = "a", verb = "v", object = "a" })
      local st, b, raw = retarget(owner, { { id = a.id, new_targets = { t1 } },
        { id = "00000000-0000-1000-8000-000000000000", new_targets = { t1 } } })
      assert.are.equal(404, st, raw)
      assert.are.equal(16, b.code)
      assert.are.same({}, read(t1))
      assert.is_nil(read(owner)[1].to)
    end)
  end)

  describe("errors", function()
    local owner, t1, a
    setup(function()
      owner, t1 = fresh("user:o"), fresh("user:t")
      a = add(owner, { actor = "a", verb = "v", object = "o", foreign_id = "post:e", time = TIME, to = { t1 } })
    end)

    local function refused(feed, body, status, code, field)
      local st, b, raw = retarget(feed, body)
      assert.are.equal(status, st, raw)
      assert.are.equal(code, b.code, raw)
      if field then assert.is_table(b.exception_fields[field], raw) end
    end

    it("an unknown activity, or one the feed only holds as a copy, is 404 code 16", function()
      refused(owner, { foreign_id = "post:e", time = "2026-07-01T12:00:01", new_targets = { "user:x" } }, 404, 16)
      refused(owner, { foreign_id = "post:other", time = TIME, new_targets = { "user:x" } }, 404, 16)
      refused(t1, { id = a.id, new_targets = { "user:x" } }, 404, 16)
    end)

    it("a change without a list, or with lists that contradict each other, is 400 code 4 naming the field", function()
      refused(owner, { id = a.id }, 400, 4, "new_targets")
      refused(owner, { id = a.id, new_targets = {}, added_targets = {} }, 400, 4, "new_targets")
      refused(owner, { id = a.id, new_targets = { "user:x" }, added_targets = { "user:y" } }, 400, 4, "new_targets")
      refused(owner, { id = a.id, added_targets = { "user:x" }, removed_targets = { "user:x" } }, 400, 4,
        "removed_targets")
      refused(owner, { id = a.id, new_targets = "user:x" }, 400, 4, "new_targets")
      refused(owner, { id = a.id, added_targets = { "nofeed" } }, 400, 4, "added_targets")
      refused(owner, { time = TIME, new_targets = { "user:x" } }, 400, 4, "foreign_id")
      refused(owner, { foreign_id = "post:e", time = "yesterday", new_targets = { "user:x" } }, 400, 4, "time")
      refused(owner, '[]', 400, 4)
    end)

    it("more than 100 targets after the change is 400 naming the field; a group not configured is code 6", function()
      local many = {}
      for i = 1, 100 do many[i] = "user:m" .. i end
      refused(owner, { id = a.id, added_targets = many }, 400, 4, "added_targets")
      refused(owner, { id = a.id, added_targets = { "flat:x" } }, 400, 6)
      assert.are.same({ t1 }, read(owner)[1].to)
    end)
  end)

  describe("tokens", function()
    local function scope(resource, action, feed_id)
      return api:token(cjson.encode({ resource = resource, action = action, feed_id = feed_id }))
    end

    it("take resource feed_targets (or *), action write (or *), feed_id the joined id (or *)", function()
      local a = add("user:tok", { actor = "a", verb = "v", object = "o" })
      local body = { id = a.id, added_targets = { "user:tokt" } }
      assert.are.equal(201, (retarget("user:tok", body, scope("feed_targets", "write", "usertok"))))
      assert.are.equal(201, (retarget("user:tok", body, scope("*", "*", "*"))))
      for _, t in ipairs({ scope("feed", "write", "usertok"), scope("feed_targets", "read", "usertok"),
        scope("feed_targets", "write", "userother") }) do
        local st, b, raw = retarget("user:tok", body, t)
        assert.are.equal(403, st, raw)
        assert.are.equal(17, b.code)
      end
    end)

    it("a user token changes its own feeds only, sending to its feeds and others' notification feeds", function()
      local mine = add("user:ut", { actor = "SU:ut", verb = "v", object = "o" })
      local user = api:token('{"user_id":"ut"}')
      local st, _, raw = retarget("user:ut", { id = mine.id, added_targets = { "timeline:ut", "notification:bob" } },
        user)
      assert.are.equal(201, st, raw)
      st = retarget("user:ut", { id = mine.id, added_targets = { "user:bob" } }, user)
      assert.are.equal(403, st)
      assert.are.same({}, read("user:bob"))
      st = retarget("user:ut", { id = mine.id, removed_targets = { "timeline:ut" } }, api:token('{"user_id":"eve"}'))
      assert.are.equal(403, st)
      assert.are.same({ mine.id }, ids_of(read("timeline:ut")))
    end)
  end)

  it("logged no unexpected Lua errors", function()
    local log = s:error_log()
    assert.is_nil(log:find("unexpected error", 1, true), log)
    assert.is_nil(log:find("lua entry thread aborted", 1, true), log)
  end)
end)
