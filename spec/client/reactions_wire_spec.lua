-- The exact requests client.reactions sends, seen by a capture peer, and the
-- checks made before sending; the answers' meaning is in reactions_spec.
local stream = require "stream"
local capture = require "helpers.capture"

local function request_line(req) return req:match("^([^\r\n]*)") end
local function body_of(req) return req:match("\r\n\r\n(.*)$") end

local SECRET = "secret-for-wire-specs-0123456789"

local function sent(calls)
  local peer = capture.start({ status = 200, body = '{"duration":"0.1ms","results":[],"next":""}',
    count = #calls })
  local c = stream.connect("key", SECRET, "1", { base_url = peer.url, retries = 0 })
  for _, call in ipairs(calls) do call(c) end
  c:close()
  local reqs = peer.requests()
  peer.stop()
  return reqs
end

describe("reaction requests on the wire", function()
  it("add posts kind, activity_id, user_id, data, target_feeds and extra data", function()
    local reqs = sent({ function(c)
      assert(c.reactions:add("like", { id = "act-1", verb = "post" }, { emoji = ":)" }, {
        user_id = c:user("bob"), target_feeds = { c:feed("notification", "alice"), "user:bob" },
        target_feeds_extra_data = { note = "x" },
      }))
    end })
    assert.equal("POST /api/v1.0/reaction/?api_key=key HTTP/1.1", request_line(reqs[1]))
    assert.equal('{"kind":"like","activity_id":"act-1","user_id":"bob","data":{"emoji":":)"},'
      .. '"target_feeds":["notification:alice","user:bob"],"target_feeds_extra_data":{"note":"x"}}',
      body_of(reqs[1]))
  end)

  it("add_child posts parent; a caller-given id goes in the body", function()
    local reqs = sent({ function(c)
      assert(c.reactions:add_child("reply", "parent-1", nil, { user_id = "bob", id = "my-id-1" }))
    end })
    assert.equal('{"kind":"reply","parent":"parent-1","user_id":"bob","id":"my-id-1","data":{}}',
      body_of(reqs[1]))
  end)

  it("get, update, delete, soft delete, restore and get_many", function()
    local reqs = sent({
      function(c) assert(c.reactions:get("r1")) end,
      function(c) assert(c.reactions:update("r1", { text = "edited" }, { target_feeds = { "user:a" } })) end,
      function(c) assert(c.reactions:delete("r1")) end,
      function(c) assert(c.reactions:delete("r1", { soft = true })) end,
      function(c) assert(c.reactions:restore({ id = "r1" })) end,
      function(c) assert(c.reactions:get_many({ "r1", "r2" }, { include_deleted = true })) end,
    })
    assert.equal("GET /api/v1.0/reaction/r1/?api_key=key HTTP/1.1", request_line(reqs[1]))
    assert.equal("PUT /api/v1.0/reaction/r1/?api_key=key HTTP/1.1", request_line(reqs[2]))
    assert.equal('{"data":{"text":"edited"},"target_feeds":["user:a"]}', body_of(reqs[2]))
    assert.equal("DELETE /api/v1.0/reaction/r1/?api_key=key HTTP/1.1", request_line(reqs[3]))
    assert.equal("DELETE /api/v1.0/reaction/r1/?api_key=key&soft=true HTTP/1.1", request_line(reqs[4]))
    assert.equal("PUT /api/v1.0/reaction/r1/restore/?api_key=key HTTP/1.1", request_line(reqs[5]))
    assert.equal("GET /api/v1.0/reaction/get_many/?api_key=key&ids=r1%2Cr2&include_deleted=true HTTP/1.1",
      request_line(reqs[6]))
  end)

  it("filter puts the lookup and kind in the path and the rest in the query", function()
    local reqs = sent({
      function(c) assert(c.reactions:filter({ activity_id = "a1", kind = "like", limit = 5, id_lt = "r9" })) end,
      function(c) assert(c.reactions:filter({ user_id = c:user("bob") })) end,
      function(c)
        assert(c.reactions:filter({ reaction_id = "r1", with_activity_data = true, filter_user_id = "carl" }))
      end,
    })
    assert.equal("GET /api/v1.0/reaction/activity_id/a1/like/?api_key=key&id_lt=r9&limit=5 HTTP/1.1",
      request_line(reqs[1]))
    assert.equal("GET /api/v1.0/reaction/user_id/bob/?api_key=key HTTP/1.1", request_line(reqs[2]))
    assert.equal("GET /api/v1.0/reaction/reaction_id/r1/?api_key=key&filter_user_id=carl"
      .. "&with_activity_data=true HTTP/1.1", request_line(reqs[3]))
  end)
end)

describe("reaction checks before sending", function()
  local c
  setup(function()
    c = stream.connect("key", SECRET, "1", { base_url = "http://127.0.0.1:9/" })
  end)
  teardown(function() c:close() end)

  local function invalid(res, err, field)
    assert.is_nil(res)
    assert.equal("invalid", err.kind)
    if field then assert.is_table(err.fields[field], "fields." .. field) end
  end

  it("a server-side client must name user_id", function()
    invalid(nil, select(2, c.reactions:add("like", "a1")), "user_id")
  end)

  it("refuses bad kinds, ids, data and oversize requests", function()
    invalid(c.reactions:add("li ke", "a1", nil, { user_id = "u" }))
    invalid(c.reactions:add("like", "a/1", nil, { user_id = "u" }))
    invalid(c.reactions:add("like", "a1", stream.array({ 1 }), { user_id = "u" }))
    invalid(c.reactions:add("like", "a1", { x = ("y"):rep(10300) }, { user_id = "u" }))
    invalid(c.reactions:add("like", "a1", nil, { user_id = "u", target_feeds = { "nocolon" } }))
    invalid(c.reactions:add("like", "a1", nil, { user_id = "u", target_feeds = { "user:a b" } }))
    invalid(c.reactions:get("r/1"))
    invalid(c.reactions:get_many({}))
    invalid(c.reactions:filter({ activity_id = "a1", kind = "bad kind" }))
  end)

  it("misuse raises at the caller's line", function()
    for _, f in ipairs({
      function() c.reactions:filter({ kind = "like" }) end,
      function() c.reactions:filter({ activity_id = "a", user_id = "b" }) end,
      function() c.reactions:filter({ activity_id = "a", nope = 1 }) end,
      function() c.reactions:add(1, "a") end,
      function() c.reactions:add("like", 42) end,
      function() c.reactions:add("like", "a", "data") end,
      function() c.reactions:add("like", "a", nil, { user_id = 5 }) end,
      function() c.reactions:add("like", "a", nil, { user_id = "u", target_feeds = { 5 } }) end,
      function() c.reactions:update("r1") end,
      function() c.reactions:update("r1", {}, { target_feeds = "user:a" }) end,
      function() c.reactions:delete("r1", { soft = "yes" }) end,
      function() c.reactions.get("r1") end,
    }) do
      local ok, e = pcall(f)
      assert.is_false(ok)
      assert.matches("reactions_wire_spec%.lua:%d+: reactions[:.]", e)
    end
  end)
end)
