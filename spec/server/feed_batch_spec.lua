-- The batch feed endpoints the official clients offer beside the per-feed ones:
-- add_to_many, follow_many and unfollow_many (server-side tokens only).

local server = require "helpers.server"
local http = require "helpers.http"

describe("local server batch feed endpoints", function()
  local s, api

  setup(function()
    s = server.start()
    api = http.api(s)
  end)

  teardown(function()
    if s then s:stop() end
  end)

  local function results(feed)
    local st, b, raw = api:call("GET", "feed/" .. feed .. "/")
    assert.are.equal(200, st, raw)
    return b.results
  end

  describe("POST feed/add_to_many/", function()
    it("adds one activity to every listed feed and their followers, 201 {duration}", function()
      api:call("POST", "feed/timeline/w/follows/", { body = '{"target":"user:m2"}' })
      local st, b, raw = api:call("POST", "feed/add_to_many/", { body = '{"activity":{"actor":"a","verb":"v",'
        .. '"object":"o","foreign_id":"many:1","time":"2026-01-01T00:00:00"},"feeds":["user:m1","user:m2"]}' })
      assert.are.equal(201, st, raw)
      assert.is_string(b.duration)
      local one, two, tl = results("user/m1"), results("user/m2"), results("timeline/w")
      assert.are.equal(1, #one)
      assert.are.equal(one[1].id, two[1].id)
      assert.are.equal(one[1].id, tl[1].id)
      assert.are.equal("user:m2", tl[1].origin)
      assert.are.equal("many:1", one[1].foreign_id)
    end)

    it("validates the activity and the feeds, and writes nothing on error", function()
      local st, b = api:call("POST", "feed/add_to_many/", { body = '{"activity":{"actor":"a","verb":"v"},'
        .. '"feeds":["user:m3"]}' })
      assert.are.equal(400, st)
      assert.is_table(b.exception_fields["activity.object"])
      st, b = api:call("POST", "feed/add_to_many/", { body = '{"activity":{"actor":"a","verb":"v","object":"o"},'
        .. '"feeds":"user:m3"}' })
      assert.are.equal(400, st)
      assert.is_table(b.exception_fields.feeds)
      st, b = api:call("POST", "feed/add_to_many/", { body = '{"activity":{"actor":"a","verb":"v","object":"o"},'
        .. '"feeds":["user:m3","flat:x"]}' })
      assert.are.equal(400, st)
      assert.are.equal(6, b.code)
      assert.are.same({}, results("user/m3"))
    end)
  end)

  describe("POST follow_many/ and unfollow_many/", function()
    it("follow every pair, copying activity_copy_limit activities, then unfollow them", function()
      for i = 1, 3 do
        api:call("POST", "feed/user/star/", { body = '{"actor":"a","verb":"v","object":"o' .. i .. '"}' })
      end
      local st, b, raw = api:call("POST", "follow_many/", { query = "activity_copy_limit=2",
        body = '[{"source":"timeline:f1","target":"user:star"},{"source":"timeline:f2","target":"user:star"}]' })
      assert.are.equal(201, st, raw)
      assert.is_string(b.duration)
      assert.are.equal(2, #results("timeline/f1"))
      assert.are.equal(2, #results("timeline/f2"))
      local _, f = api:call("GET", "feed/user/star/followers/")
      assert.are.equal(2, #f.results)
      st = api:call("POST", "unfollow_many/", { body = '[{"source":"timeline:f1","target":"user:star"},'
        .. '{"source":"timeline:f2","target":"user:star","keep_history":true}]' })
      assert.are.equal(201, st)
      assert.are.same({}, results("timeline/f1"))
      assert.are.equal(2, #results("timeline/f2"))
      _, f = api:call("GET", "feed/user/star/followers/")
      assert.are.same({}, f.results)
    end)

    it("refuse a bad pair, a self-follow or a bad limit with 400 and follow none", function()
      for _, req in ipairs({
        { '[{"source":"timeline:g1","target":"user:star"},{"source":"timeline:g2"}]' },
        { '[{"source":"timeline:g1","target":"user:star"},{"source":"user:x","target":"user:x"}]' },
        { '{"source":"timeline:g1","target":"user:star"}' },
        { '[{"source":"timeline:g1","target":"user:star"}]', "activity_copy_limit=1001" },
      }) do
        local st, b, raw = api:call("POST", "follow_many/", { body = req[1], query = req[2] })
        assert.are.equal(400, st, raw)
        assert.are.equal(4, b.code)
      end
      assert.are.same({}, results("timeline/g1"))
      local _, f = api:call("GET", "feed/timeline/g1/follows/")
      assert.are.same({}, f.results)
    end)
  end)

  describe("the contract's table (section 4)", function()
    it("follow_many: a copy limit over 1000 is 400 code 4 with the exact detail the Ruby suite compares", function()
      local st, b, raw = api:call("POST", "follow_many/", { query = "activity_copy_limit=1001",
        body = '[{"source":"timeline:h1","target":"user:star"}]' })
      assert.are.equal(400, st, raw)
      assert.are.equal(4, b.code)
      assert.are.equal("activity_copy_limit must be a non-negative number not greater than 1000", b.detail)
      local _, f = api:call("GET", "feed/timeline/h1/follows/")
      assert.are.same({}, f.results)
    end)

    it("unfollow_many: a source or target that is no feed id string is 400 'invalid request payload'", function()
      api:call("POST", "follow_many/", { body = '[{"source":"timeline:h2","target":"user:star"}]' })
      for _, body in ipairs({
        '[{"source":"timeline:h2","target":"user:star"},{"source":1,"target":"user:star"}]',
        '[{"source":"timeline:h2","target":"user:star"},{"source":"timeline:h2","target":"star"}]',
        '[{"source":"timeline:h2","target":"user:star"},{"source":"timeline:h2"}]',
        '[{"source":"timeline:h2","target":"user:star"},{"source":"timeline:h2","target":["user:star"]}]',
      }) do
        local st, b, raw = api:call("POST", "unfollow_many/", { body = body })
        assert.are.equal(400, st, raw)
        assert.are.equal(4, b.code)
        assert.are.equal("invalid request payload", b.detail)
      end
      local _, f = api:call("GET", "feed/timeline/h2/follows/")
      assert.are.equal(1, #f.results)
    end)

    it("unfollow_many: a pair that is not followed, or a feed and itself, is no error", function()
      local st, _, raw = api:call("POST", "unfollow_many/", { body = '[{"source":"timeline:h3","target":"user:no"},'
        .. '{"source":"user:h3","target":"user:h3"}]' })
      assert.are.equal(201, st, raw)
    end)

    it("add_to_many: at most 100 feeds, and the id is the one separate adds give", function()
      local list = {}
      for i = 1, 101 do list[i] = '"user:many' .. i .. '"' end
      local act = '{"actor":"a","verb":"v","object":"o","time":"2026-06-01T00:00:00.000001"}'
      local st, b, raw = api:call("POST", "feed/add_to_many/", { body = '{"activity":' .. act .. ',"feeds":['
        .. table.concat(list, ",") .. "]}" })
      assert.are.equal(400, st, raw)
      assert.is_table(b.exception_fields.feeds)
      assert.are.same({}, results("user/many1"))
      list[101] = nil
      local _
      st, _, raw = api:call("POST", "feed/add_to_many/", { body = '{"activity":' .. act .. ',"feeds":['
        .. table.concat(list, ",") .. "]}" })
      assert.are.equal(201, st, raw)
      local _, one = api:call("POST", "feed/user/single/", { body = act })
      assert.are.equal(one.id, results("user/many1")[1].id)
      assert.are.equal(one.id, results("user/many100")[1].id)
    end)
  end)

  it("need a server token (403 for user tokens) covering the resource", function()
    local user = api:token('{"user_id":"star"}')
    assert.are.equal(403, (api:call("POST", "follow_many/", { token = user,
      body = '[{"source":"timeline:star","target":"user:x"}]' })))
    assert.are.equal(403, (api:call("POST", "unfollow_many/", { token = user,
      body = '[{"source":"timeline:star","target":"user:x"}]' })))
    assert.are.equal(403, (api:call("POST", "feed/add_to_many/", { token = user,
      body = '{"activity":{"actor":"SU:star","verb":"v","object":"o"},"feeds":["user:star"]}' })))
    assert.are.equal(403, (api:call("POST", "follow_many/", { token = api:token('{"resource":"feed","action":"*",'
      .. '"feed_id":"*"}'), body = '[{"source":"timeline:star","target":"user:x"}]' })))
    assert.are.equal(201, (api:call("POST", "follow_many/", { token = api:token('{"resource":"follower",'
      .. '"action":"*","feed_id":"*"}'), body = '[{"source":"timeline:star","target":"user:x"}]' })))
    assert.are.equal(201, (api:call("POST", "feed/add_to_many/", { token = api:token('{"resource":"feed",'
      .. '"action":"*","feed_id":"*"}'), body = '{"activity":{"actor":"a","verb":"v","object":"o"},'
      .. '"feeds":["user:star"]}' })))
  end)

  it("logged no unexpected Lua errors", function()
    local log = s:error_log()
    assert.is_nil(log:find("unexpected error", 1, true), log)
    assert.is_nil(log:find("lua entry thread aborted", 1, true), log)
  end)
end)
