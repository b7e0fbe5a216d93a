-- The exact requests of client.collections and the activity updates, seen by
-- a capture peer, and the checks made before sending.
local stream = require "stream"
local capture = require "helpers.capture"

local function request_line(req) return req:match("^([^\r\n]*)") end
local function body_of(req) return req:match("\r\n\r\n(.*)$") end

local SECRET = "secret-for-wire-specs-0123456789"

local function sent(calls, answer)
  local peer = capture.start({ status = 201, count = #calls,
    body = answer or '{"duration":"0.1ms","activities":[{"id":"a1"}],"results":[]}' })
  local c = stream.connect("key", SECRET, "1", { base_url = peer.url, retries = 0 })
  for _, call in ipairs(calls) do call(c) end
  c:close()
  local reqs = peer.requests()
  peer.stop()
  return reqs
end

describe("collection requests on the wire", function()
  it("add, get, update, delete, upsert, select and delete_many", function()
    local reqs = sent({
      function(c) assert(c.collections:add("food", { name = "burger" }, { id = "b1", user_id = c:user("al") })) end,
      function(c) assert(c.collections:add("food", { name = "fries" })) end,
      function(c) assert(c.collections:get("food", "b1")) end,
      function(c) assert(c.collections:update("food", "b1", { name = "cheeseburger" })) end,
      function(c) assert(c.collections:entry("food", "b1"):delete()) end,
      function(c) assert(c.collections:upsert("food", { { id = "b2", name = "salad" } })) end,
      function(c) assert(c.collections:select("food", { "b1", "b2" })) end,
      function(c) assert(c.collections:delete_many("food", { "b1", "b2" })) end,
    })
    assert.equal("POST /api/v1.0/collections/food/?api_key=key HTTP/1.1", request_line(reqs[1]))
    assert.equal('{"id":"b1","data":{"name":"burger"},"user_id":"al"}', body_of(reqs[1]))
    assert.equal('{"data":{"name":"fries"}}', body_of(reqs[2]))
    assert.equal("GET /api/v1.0/collections/food/b1/?api_key=key HTTP/1.1", request_line(reqs[3]))
    assert.equal("PUT /api/v1.0/collections/food/b1/?api_key=key HTTP/1.1", request_line(reqs[4]))
    assert.equal('{"data":{"name":"cheeseburger"}}', body_of(reqs[4]))
    assert.equal("DELETE /api/v1.0/collections/food/b1/?api_key=key HTTP/1.1", request_line(reqs[5]))
    assert.equal("POST /api/v1.0/collections/?api_key=key HTTP/1.1", request_line(reqs[6]))
    local up = stream.json.decode(body_of(reqs[6]))
    assert.same({ data = { food = { { id = "b2", name = "salad" } } } }, up)
    assert.equal("GET /api/v1.0/collections/?api_key=key&foreign_ids=food%3Ab1%2Cfood%3Ab2 HTTP/1.1",
      request_line(reqs[7]))
    assert.equal("DELETE /api/v1.0/collections/?api_key=key&collection_name=food&ids=b1%2Cb2 HTTP/1.1",
      request_line(reqs[8]))
  end)

  it("an entry handle inside an activity is sent as its SO: reference", function()
    local reqs = sent({ function(c)
      assert(c:feed("user", "al"):add_activity({ actor = c:user("al"), verb = "eat",
        object = c.collections:entry("food", "b1") }))
    end })
    assert.equal("SO:food:b1", stream.json.decode(body_of(reqs[1])).object)
  end)
end)

describe("activity update requests on the wire", function()
  it("partial updates by id and by foreign id and time, set with handles, unset", function()
    local reqs = sent({
      function(c)
        assert(c:activity_partial_update({ id = "a1", set = { score = 10, ["meta.by"] = c:user("al") },
          unset = { "old" } }))
      end,
      function(c)
        assert(c:activities_partial_update({
          { foreign_id = "post:1", time = 0, set = { x = 1 } },
          { id = "a2", unset = { "y", "z.w" } },
        }))
      end,
      function(c)
        assert(c:update_activities({ { actor = c:user("al"), verb = "v", object = "o",
          foreign_id = "post:1", time = 1795860000 } }))
      end,
    })
    assert.equal("POST /api/v1.0/activity/?api_key=key HTTP/1.1", request_line(reqs[1]))
    local b = stream.json.decode(body_of(reqs[1]))
    assert.same({ changes = { { id = "a1", set = { score = 10, ["meta.by"] = "SU:al" }, unset = { "old" } } } }, b)
    b = stream.json.decode(body_of(reqs[2]))
    assert.same({ foreign_id = "post:1", time = "1970-01-01T00:00:00.000000", set = { x = 1 } },
      b.changes[1])
    assert.same({ id = "a2", unset = { "y", "z.w" } }, b.changes[2])
    assert.equal("POST /api/v1.0/activities/?api_key=key HTTP/1.1", request_line(reqs[3]))
    b = stream.json.decode(body_of(reqs[3]))
    assert.equal("SU:al", b.activities[1].actor)
    assert.equal("2026-11-28T10:00:00.000000", b.activities[1].time)
  end)

  it("activity_partial_update answers with the activity itself", function()
    local res
    sent({ function(c) res = assert(c:activity_partial_update({ id = "a1", set = { x = 1 } })) end },
      '{"activities":[{"id":"a1","x":1}],"duration":"1ms"}')
    assert.equal("a1", res.id)
    assert.equal("1ms", res.duration)
  end)
end)

describe("collection and update checks before sending", function()
  local c
  setup(function() c = stream.connect("key", SECRET, "1", { base_url = "http://127.0.0.1:9/" }) end)
  teardown(function() c:close() end)

  local function invalid(res, err)
    assert.is_nil(res)
    assert.equal("invalid", err.kind)
  end

  it("refuses bad names, ids, empty or oversized data and batch sizes", function()
    invalid(c.collections:add("fo od", { a = 1 }))
    invalid(c.collections:add("food", {}))
    invalid(c.collections:add("food", { a = ("x"):rep(10300) }))
    invalid(c.collections:add("food", { a = 1 }, { id = "b/1" }))
    invalid(c.collections:get("food", "b 1"))
    invalid(c.collections:upsert("food", {}))
    invalid(c.collections:upsert("food", { { id = "ok" }, { id = "no way" } }))
    invalid(c.collections:select("food", {}))
    local many = {}
    for i = 1, 1001 do many[i] = "id" .. i end
    invalid(c.collections:delete_many("food", many))
    invalid(c.collections:entry("fo:od", "x"):ref())
    invalid(c:update_activities({ { actor = "a", verb = "v", object = "o" } }))
    invalid(c:activity_partial_update({ id = "a/1", set = { x = 1 } }))
    invalid(c:activity_partial_update({ id = "a1", set = { x = 0 / 0 } }))
  end)

  it("misuse raises at the caller's line", function()
    for _, f in ipairs({
      function() c.collections:add("food", "burger") end,
      function() c.collections:add("food", { a = 1 }, { nope = 1 }) end,
      function() c.collections:update("food", "b1") end,
      function() c.collections:upsert("food", "x") end,
      function() c.collections.get("food", "b1") end,
      function() c:activity_partial_update({ set = { x = 1 } }) end,
      function() c:activity_partial_update({ id = "a", foreign_id = "f", time = 0, set = {} }) end,
      function() c:activity_partial_update({ id = "a" }) end,
      function() c:activity_partial_update({ id = "a", unset = "x" }) end,
      function() c:activities_partial_update("x") end,
      function() c:update_activities("x") end,
    }) do
      local ok, e = pcall(f)
      assert.is_false(ok)
      assert.matches("collections_wire_spec%.lua:%d+: ", e)
    end
  end)
end)
