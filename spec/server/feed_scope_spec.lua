-- Feed-scoped server tokens on the local server (stream-feeds-api.md sections 2 and 10):
-- a token whose feed_id claim names one feed may not reach other feeds through the batch
-- calls or activity updates (403 code 17 as a whole, nothing written), while its own
-- feed's `to` lists and target updates stay allowed, unsigned targets included.

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

  it("logged no unexpected Lua errors", function()
    local log = s:error_log()
    assert.is_nil(log:find("unexpected error", 1, true), log)
    assert.is_nil(log:find("lua entry thread aborted", 1, true), log)
  end)
end)
