-- The exact requests of the batch calls and target updates (method, path,
-- query, body bytes), seen by a capture peer; which of them are sent again
-- after a lost answer (the local server drops the connection); and the checks
-- made before anything is sent. Their answers' meaning is in batch_spec.
local stream = require "stream"
local capture = require "helpers.capture"
local server = require "helpers.server"
local H = require "helpers.client"

local SECRET = "secret-for-wire-specs-0123456789"

local function request_line(req) return req:match("^([^\r\n]*)") end
local function body_of(req) return req:match("\r\n\r\n(.*)$") end

-- Sends each call to one capture peer and returns the raw requests.
local function sent(calls)
  local peer = capture.start({ status = 201, body = '{"duration":"0.1ms"}', count = #calls })
  local c = stream.connect("key", SECRET, "1", { base_url = peer.url, retries = 0 })
  for _, call in ipairs(calls) do call(c) end
  c:close()
  local reqs = peer.requests()
  peer.stop()
  return reqs
end

describe("batch requests on the wire", function()
  it("add_to_many posts {activity, feeds}, the activity encoded as feed:add_activity encodes it", function()
    local reqs = sent({ function(c)
      assert(c:add_to_many({ actor = c:user("alice"), verb = "won", object = "match:1", time = 1795860000.5 },
        { c:feed("user", "bob"), "timeline:carl" }))
    end })
    assert.equal("POST /api/v1.0/feed/add_to_many/?api_key=key HTTP/1.1", request_line(reqs[1]))
    local body = body_of(reqs[1])
    assert.matches('^{"activity":{', body)
    assert.matches(',"feeds":%["user:bob","timeline:carl"%]}$', body)
    assert.same({ actor = "SU:alice", verb = "won", object = "match:1", time = "2026-11-28T10:00:00.500000" },
      stream.json.decode(body).activity)
    assert.equal("application/json", capture.header(reqs[1], "[Cc]ontent%-[Tt]ype"))
  end)

  it("follow_many sends a bare array, the copy limit in the query", function()
    local reqs = sent({
      function(c)
        assert(c:follow_many({ { source = c:feed("timeline", "a"), target = "user:b" },
          { source = "timeline:a", target = c:feed("user", "c") } }, { activity_copy_limit = 5 }))
      end,
      function(c) assert(c:follow_many({ { source = "timeline:a", target = "user:b" } })) end,
    })
    assert.equal("POST /api/v1.0/follow_many/?api_key=key&activity_copy_limit=5 HTTP/1.1",
      request_line(reqs[1]))
    assert.equal('[{"source":"timeline:a","target":"user:b"},{"source":"timeline:a","target":"user:c"}]',
      body_of(reqs[1]))
    assert.equal("POST /api/v1.0/follow_many/?api_key=key HTTP/1.1", request_line(reqs[2]))
    assert.equal('[{"source":"timeline:a","target":"user:b"}]', body_of(reqs[2]))
  end)

  it("unfollow_many sends keep_history only on the items that set it", function()
    local reqs = sent({ function(c)
      assert(c:unfollow_many({
        { source = "timeline:a", target = "user:b", keep_history = true },
        { source = c:feed("timeline", "a"), target = "user:c" },
        { source = "timeline:a", target = "user:d", keep_history = false },
      }))
    end })
    assert.equal("POST /api/v1.0/unfollow_many/?api_key=key HTTP/1.1", request_line(reqs[1]))
    assert.equal('[{"source":"timeline:a","target":"user:b","keep_history":true},'
      .. '{"source":"timeline:a","target":"user:c"},'
      .. '{"source":"timeline:a","target":"user:d","keep_history":false}]', body_of(reqs[1]))
  end)

  it("update_activity_to_targets posts to feed_targets/, by foreign_id and time or by id", function()
    local reqs = sent({
      function(c)
        assert(c:feed("user", "alice"):update_activity_to_targets({ foreign_id = "post:1", time = 0,
          new_targets = { "user:b", c:feed("notification", "c") } }))
      end,
      function(c)
        assert(c:feed("user", "alice"):update_activity_to_targets({ id = "0b6e3c9a-1b2c-11ef-8080-800100000001",
          added_targets = { "user:d" }, removed_targets = { "user:b" } }))
      end,
      function(c)
        assert(c:feed("user", "alice"):update_activity_to_targets({ foreign_id = "post:1",
          time = "2026-11-28T10:00:00", added_targets = {}, removed_targets = { "user:b" } }))
      end,
    })
    assert.equal("POST /api/v1.0/feed_targets/user/alice/activity_to_targets/?api_key=key HTTP/1.1",
      request_line(reqs[1]))
    assert.equal('{"foreign_id":"post:1","time":"1970-01-01T00:00:00.000000",'
      .. '"new_targets":["user:b","notification:c"]}', body_of(reqs[1]))
    assert.equal('{"id":"0b6e3c9a-1b2c-11ef-8080-800100000001","added_targets":["user:d"],'
      .. '"removed_targets":["user:b"]}', body_of(reqs[2]))
    -- an empty list is no list to Stream: it is left out
    assert.equal('{"foreign_id":"post:1","time":"2026-11-28T10:00:00","removed_targets":["user:b"]}',
      body_of(reqs[3]))
  end)
end)

describe("batch calls after a lost answer", function()
  local s

  setup(function() s = server.start({ faults = true }) end)
  teardown(function() if s then s:stop() end end)

  -- Runs fn(client) against a server that drops every connection unanswered;
  -- the error and the number of requests that reached it.
  local function dropped(fn)
    local c = H.faulty(s, { "X-Stream-Local-Drop: 1" }, { retries = 2 })
    local res, err = fn(c)
    local n = c:stats().requests
    c:close()
    assert.is_nil(res)
    assert.equal("transport", err.kind)
    assert.is_true(err.sent)
    return err, n
  end

  it("sends follow_many, unfollow_many and target updates again", function()
    for _, fn in ipairs({
      function(c) return c:follow_many({ { source = "timeline:a", target = "user:b" } }) end,
      function(c) return c:unfollow_many({ { source = "timeline:a", target = "user:b" } }) end,
      function(c)
        return c:feed("user", "a"):update_activity_to_targets({ foreign_id = "f", time = 0,
          new_targets = { "user:b" } })
      end,
    }) do
      local err, n = dropped(fn)
      assert.equal(3, err.attempts)
      assert.equal(3, n)
    end
  end)

  it("sends add_to_many again only when the activity has foreign_id and time", function()
    local err, n = dropped(function(c)
      return c:add_to_many({ actor = "SU:a", verb = "v", object = "o" }, { "user:a", "user:b" })
    end)
    assert.equal(1, err.attempts)
    assert.equal(1, n)
    err, n = dropped(function(c)
      return c:add_to_many({ actor = "SU:a", verb = "v", object = "o", foreign_id = "f:1", time = 0 },
        { "user:a", "user:b" })
    end)
    assert.equal(3, err.attempts)
    assert.equal(3, n)
  end)
end)

describe("batch checks before sending", function()
  local c
  setup(function()
    -- nothing listens on port 9: a request that was sent would fail as transport
    c = stream.connect("key", SECRET, "1", { base_url = "http://127.0.0.1:9/", retries = 0 })
  end)
  teardown(function() c:close() end)

  -- the call's results come last, so both reach here
  local function invalid(pattern, res, err)
    assert.is_nil(res)
    assert.equal("invalid", err.kind)
    assert.is_false(err.sent)
    assert.matches(pattern, err.detail)
    return err
  end

  it("refuses a bad feed, slug or id in any list, naming where it is", function()
    local act = { actor = "a", verb = "v", object = "o" }
    local err = invalid("feed id", c:add_to_many(act, { "user:a", "user:b/c" }))
    assert.equal("POST", err.method)
    assert.equal("feed/add_to_many/", err.path)
    invalid('^feeds%[1%] "nocolon"', c:add_to_many(act, { "nocolon" }))
    invalid("slug", c:follow_many({ { source = "timeline:a", target = "us er:b" } }))
    invalid("feed id", c:unfollow_many({ { source = c:feed("timeline", "a?x"), target = "user:b" } }))
    invalid("feed id", c:feed("user", "a"):update_activity_to_targets({ foreign_id = "f", time = 0,
      added_targets = { "user:ok", "user:" } }))
    invalid("feed id", c:feed("user", "a b"):update_activity_to_targets({ foreign_id = "f", time = 0,
      new_targets = { "user:b" } }))
  end)

  it("limits add_to_many to 1-100 feeds and each target list to 100", function()
    local many = {}
    for i = 1, 101 do many[i] = "user:u" .. i end
    local act = { actor = "a", verb = "v", object = "o" }
    invalid("1 to 100 feeds, got 101", c:add_to_many(act, many))
    invalid("got 0", c:add_to_many(act, {}))
    invalid("at most 100", c:feed("user", "a"):update_activity_to_targets({ foreign_id = "f", time = 0,
      new_targets = many }))
    many[101] = nil
    local ok, err = pcall(function()
      local _, e = c:add_to_many(act, many)
      return e
    end)
    assert.is_true(ok)
    assert.equal("transport", err.kind) -- 100 feeds pass the checks and are sent
  end)

  it("refuses empty follow lists, empty target changes and a feed both added and removed", function()
    invalid("must not be empty", c:follow_many({}))
    invalid("must not be empty", c:unfollow_many({}))
    local f = c:feed("user", "a")
    invalid("no target", f:update_activity_to_targets({ foreign_id = "f", time = 0, new_targets = {} }))
    invalid("both added_targets and removed_targets", f:update_activity_to_targets({ foreign_id = "f",
      time = 0, added_targets = { "user:b" }, removed_targets = { c:feed("user", "b") } }))
    local to_b = { "user:b" }
    invalid("foreign_id", f:update_activity_to_targets({ foreign_id = "", time = 0, new_targets = to_b }))
    invalid("^id ", f:update_activity_to_targets({ id = "not an id", new_targets = to_b }))
    invalid("time", f:update_activity_to_targets({ foreign_id = "f", time = -1, new_targets = to_b }))
  end)

  it("an activity add_to_many cannot encode is invalid, like feed:add_activity", function()
    invalid("over the 10240%-byte limit", c:add_to_many({ actor = "a", verb = "v",
      object = ("o"):rep(10300) }, { "user:a" }))
    invalid("^activity: ", c:add_to_many({ actor = c:user("bad id"), verb = "v", object = "o" },
      { "user:a" }))
  end)

  it("raises for wrong types and misuse at the caller's line", function()
    local f = c:feed("user", "a")
    for _, call in ipairs({
      function() local r = c:add_to_many("x", { "user:a" }); return r end,
      function() local r = c:add_to_many({}, "user:a"); return r end,
      function() local r = c:add_to_many({}, { 42 }); return r end,
      function() local r = c:follow_many("x"); return r end,
      function() local r = c:follow_many({ "timeline:a" }); return r end,
      function() local r = c:follow_many({ { source = "timeline:a", target = 1 } }); return r end,
      function() local r = c:follow_many({ { source = "timeline:a", target = "user:b", extra = 1 } }); return r end,
      function() local r = c:follow_many({ { source = "timeline:a", target = "user:b" } }, { limit = 1 }); return r end,
      function()
        local r = c:follow_many({ { source = "timeline:a", target = "user:b" } }, { activity_copy_limit = 1001 })
        return r
      end,
      function() local r = c:unfollow_many({ { source = "a:b", target = "user:b", keep_history = 1 } }); return r end,
      function() local r = f:update_activity_to_targets("x"); return r end,
      function() local r = f:update_activity_to_targets({ foreign_id = "f", time = 0 }); return r end,
      function() local r = f:update_activity_to_targets({ id = "x", time = 0, new_targets = {} }); return r end,
      function() local r = f:update_activity_to_targets({ foreign_id = "f", new_targets = {} }); return r end,
      function()
        local r = f:update_activity_to_targets({ foreign_id = "f", time = 0, new_targets = {}, added_targets = {} })
        return r
      end,
      function() local r = f:update_activity_to_targets({ id = "x", new_targets = "user:b" }); return r end,
      function() local r = f:update_activity_to_targets({ id = "x", new_targets = { true } }); return r end,
      function() local r = f:update_activity_to_targets({ id = "x", to = { "user:b" } }); return r end,
      function() local r = f.update_activity_to_targets({ id = "x", new_targets = { "user:b" } }); return r end,
      function() local r = c.add_to_many({}, { "user:a" }); return r end,
    }) do
      local ok, e = pcall(call)
      assert.is_false(ok)
      assert.matches("batch_wire_spec%.lua:%d+: ", e)
    end
  end)
end)
