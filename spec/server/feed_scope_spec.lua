-- Feed-scoped server tokens on the local server (stream-feeds-api.md sections 2 and 10):
-- a token whose feed_id claim names one feed may not reach other feeds through the batch
-- calls or activity updates (403 code 17 as a whole, nothing written), while its own
-- feed's `to` lists and target updates stay allowed, unsigned targets included. Routes
-- on no one feed (users, reactions, collections, follow stats) are 403 for it, and it
-- reads by id only the activities its feed holds.

local server = require "helpers.server"
local http = require "helpers.http"
local cjson = require "cjson"
local shape = require "helpers.shape"
local ids_of = shape.ids_of

describe("local server feed-scoped server tokens", function()
  local s, api, alice

  setup(function()
    s = server.start()
    api = http.api(s)
    alice = api:token('{"resource":"*","action":"*","feed_id":"useralice"}')
  end)

  teardown(function()
    if s then s:stop() end
  end)

  local function read(feed)
    local st, b, raw = api:call("GET", "feed/" .. feed .. "/")
    assert.are.equal(200, st, raw)
    return b.results
  end

  local function refused(method, path, body, query)
    local st, b, raw = api:call(method, path, { token = alice, body = body, query = query })
    assert.are.equal(403, st, raw)
    assert.are.equal(17, b.code)
    assert.are.equal("NotAllowedException", b.exception)
  end

  local function following(feed)
    local _, b = api:call("GET", "feed/" .. feed .. "/follows/")
    return #b.results
  end

  describe("batch calls", function()
    it("add_to_many reaching another feed is 403 as a whole and adds nothing", function()
      refused("POST", "feed/add_to_many/", '{"activity":{"actor":"a","verb":"v","object":"batch"},'
        .. '"feeds":["user:alice","user:bob"]}')
      assert.are.same({}, read("user/alice"))
      assert.are.same({}, read("user/bob"))
      local st, _, raw = api:call("POST", "feed/add_to_many/", { token = alice,
        body = '{"activity":{"actor":"a","verb":"v","object":"own","to":["user:carol"]},"feeds":["user:alice"]}' })
      assert.are.equal(201, st, raw)
      assert.are.equal(1, #read("user/carol"))
    end)

    it("follow_many and unfollow_many with a pair of another source are 403 as a whole", function()
      refused("POST", "follow_many/", '[{"source":"user:alice","target":"user:x"},'
        .. '{"source":"timeline:alice","target":"user:x"}]')
      assert.are.equal(0, following("user/alice"))
      local st, _, raw = api:call("POST", "follow_many/", { token = alice,
        body = '[{"source":"user:alice","target":"user:x"}]' })
      assert.are.equal(201, st, raw)
      api:call("POST", "feed/timeline/alice/follows/", { body = '{"target":"user:x"}' })
      refused("POST", "unfollow_many/", '[{"source":"user:alice","target":"user:x"},'
        .. '{"source":"timeline:alice","target":"user:x"}]')
      assert.are.equal(1, following("user/alice"))
      assert.are.equal(1, following("timeline/alice"))
    end)
  end)

  describe("activity updates", function()
    local own, other
    setup(function()
      local _, b = api:call("POST", "feed/user/alice/", { token = alice,
        body = '{"actor":"a","verb":"v","object":"o","foreign_id":"sc:1","time":"2026-08-01T00:00:00",'
          .. '"to":["user:dave"]}' })
      own = b
      _, b = api:call("POST", "feed/user/bob/", { body = '{"actor":"a","verb":"v","object":"o",'
        .. '"foreign_id":"sc:2","time":"2026-08-01T00:00:00"}' })
      other = b
    end)

    it("change only activities whose origin feed is the token's feed", function()
      local st, _, raw = api:call("POST", "activity/", { token = alice,
        body = cjson.encode({ changes = { { id = own.id, set = { mood = "ok" } } } }) })
      assert.are.equal(201, st, raw)
      refused("POST", "activity/", cjson.encode({ changes = { { id = own.id, set = { mood = "both" } },
        { id = other.id, set = { mood = "both" } } } }))
      refused("POST", "activities/", '{"activities":[{"actor":"a","verb":"v","object":"changed",'
        .. '"foreign_id":"sc:2","time":"2026-08-01T00:00:00"}]}')
      local _, got = api:call("GET", "activities/", { query = "ids=" .. own.id .. "," .. other.id })
      assert.are.equal("ok", got.results[1].mood)
      assert.is_nil(got.results[2].mood)
      assert.are.equal("o", got.results[2].object)
    end)

    it("a full update of an activity that does not exist is outside any one feed", function()
      refused("POST", "activities/", '{"activities":[{"actor":"a","verb":"v","object":"o",'
        .. '"foreign_id":"sc:none","time":"2026-08-01T00:00:00"}]}')
      local _, got = api:call("GET", "activities/", { query = "foreign_ids=sc:none&timestamps=2026-08-01T00:00:00" })
      assert.are.same({}, got.results)
    end)

    it("its own feed's target updates stay allowed, unsigned targets included", function()
      local st, b, raw = api:call("POST", "feed_targets/user/alice/activity_to_targets/", { token = alice,
        body = '{"foreign_id":"sc:1","time":"2026-08-01T00:00:00","added_targets":["user:erin"]}' })
      assert.are.equal(201, st, raw)
      assert.are.same({ "user:dave", "user:erin" }, b.activity.to)
      assert.are.same({ own.id }, ids_of(read("user/erin")))
      refused("POST", "feed_targets/user/bob/activity_to_targets/",
        '{"foreign_id":"sc:2","time":"2026-08-01T00:00:00","added_targets":["user:erin"]}')
    end)
  end)

  describe("routes on no one feed", function()
    it("refuses the users endpoints (403 code 17) and creates, changes and deletes nothing", function()
      refused("POST", "user/", '{"id":"scoped_u","data":{}}')
      refused("POST", "user/", '{"id":"scoped_u","data":{}}', "get_or_create=true")
      refused("POST", "users/", '{"users":[{"id":"scoped_u","data":{}}]}')
      assert.are.equal(404, (api:call("GET", "user/scoped_u/")))
      assert.are.equal(201, (api:call("POST", "user/", { body = '{"id":"scoped_v","data":{"n":1}}' })))
      refused("GET", "user/scoped_v/")
      refused("PUT", "user/scoped_v/", '{"data":{"n":2}}')
      refused("DELETE", "user/scoped_v/")
      refused("GET", "users/", nil, "ids=scoped_v")
      refused("DELETE", "users/", nil, "ids=scoped_v")
      local st, b = api:call("GET", "user/scoped_v/")
      assert.are.equal(200, st)
      assert.are.same({ n = 1 }, b.data)
    end)

    it("refuses reactions, collections and follow stats, with or without the slash", function()
      refused("POST", "reaction/", '{"kind":"like","activity_id":"00000000-0000-1000-8000-000000000000",'
        .. '"user_id":"alice"}')
      refused("GET", "reaction/get_many/", nil, "ids=00000000-0000-1000-8000-000000000000")
      refused("GET", "reaction/activity_id/00000000-0000-1000-8000-000000000000/")
      refused("POST", "collections/food/", '{"id":"scoped","data":{"n":1}}')
      refused("GET", "collections/", nil, "foreign_ids=food:scoped")
      refused("GET", "stats/follow/", nil, "followers=user:alice&following=user:alice")
      refused("GET", "stats/follow", nil, "followers=user:alice&following=user:alice")
      local _, b = api:call("GET", "collections/", { query = "foreign_ids=food:scoped" })
      assert.are.same({}, b.response.data)
      local _, raw
      _, _, raw = api:call("GET", "user/alice/", { token = alice })
      assert.matches("no one feed", raw, 1, true)
    end)

    describe("activities by id", function()
      local mine, got, elsewhere
      setup(function()
        local _, b = api:call("POST", "feed/user/alice/", { token = alice,
          body = '{"actor":"a","verb":"v","object":"mine","foreign_id":"byid:1","time":"2026-08-02T00:00:00"}' })
        mine = b
        _, b = api:call("POST", "feed/user/carl/", { body = '{"actor":"a","verb":"v","object":"sent",'
          .. '"to":["user:alice"]}' })
        got = b
        _, b = api:call("POST", "feed/user/bob/", { body = '{"actor":"a","verb":"v","object":"elsewhere"}' })
        elsewhere = b
      end)

      local function ids_read(query, enriched)
        local st, b, raw = api:call("GET", (enriched and "enrich/" or "") .. "activities/", { token = alice,
          query = query })
        assert.are.equal(200, st, raw)
        return ids_of(b.results)
      end

      it("reads what its feed holds (added there or sent to it), plain and enriched", function()
        assert.are.same({ mine.id, got.id }, ids_read("ids=" .. mine.id .. "," .. got.id))
        assert.are.same({ mine.id }, ids_read("ids=" .. mine.id, true))
        assert.are.same({ mine.id }, ids_read("foreign_ids=byid:1&timestamps=2026-08-02T00:00:00"))
      end)

      it("is 403 as a whole when one activity is elsewhere or unknown", function()
        refused("GET", "activities/", nil, "ids=" .. mine.id .. "," .. elsewhere.id)
        refused("GET", "enrich/activities/", nil, "ids=" .. elsewhere.id)
        refused("GET", "activities/", nil, "ids=00000000-0000-1000-8000-000000000000")
        refused("GET", "activities/", nil, "foreign_ids=byid:1&timestamps=2026-08-02T00:00:01")
      end)
    end)

    it("changes an activity added to its feed and to another only with a token covering both", function()
      local act = '{"actor":"a","verb":"v","object":"twice","time":"2026-08-03T00:00:00.000007"}'
      local _, one = api:call("POST", "feed/user/alice/", { token = alice, body = act })
      local _, two = api:call("POST", "feed/user/bob/", { body = act })
      assert.are.equal(one.id, two.id)
      refused("POST", "activity/", cjson.encode({ changes = { { id = one.id, set = { mood = "x" } } } }))
      local _, b = api:call("GET", "activities/", { query = "ids=" .. one.id })
      assert.is_nil(b.results[1].mood)
    end)
  end)

  it("logged no unexpected Lua errors", function()
    local log = s:error_log()
    assert.is_nil(log:find("unexpected error", 1, true), log)
    assert.is_nil(log:find("lua entry thread aborted", 1, true), log)
  end)
end)
