-- client.collections and the activity updates against the real local server,
-- over real HTTP.
local stream = require "stream"
local server = require "helpers.server"
local H = require "helpers.client"
local shape = require "helpers.shape"

local ENTRY_KEYS = { "collection", "created_at", "data", "foreign_id", "id", "updated_at" }

describe("client.collections", function()
  local s, client

  setup(function()
    s = server.start()
    client = H.server_client(s)
  end)
  teardown(function()
    if client then client:close() end
    if s then s:stop() end
  end)

  it("add, get, update and delete an entry", function()
    local id = H.uid("burger")
    local e = assert(client.collections:add("food", { name = "burger" }, { id = id }))
    assert.same(ENTRY_KEYS, shape.key_list(e, "duration"))
    assert.equal("food:" .. id, e.foreign_id)
    assert.same({ name = "burger" }, assert(client.collections:get("food", id)).data)
    local u = assert(client.collections:update("food", id, { name = "cheeseburger" }))
    assert.same({ name = "cheeseburger" }, u.data)
    local res, err = client.collections:add("food", { name = "again" }, { id = id })
    assert.is_nil(res)
    assert.equal(409, err.status)
    assert(client.collections:entry("food", id):delete())
    res, err = client.collections:get("food", id)
    assert.is_nil(res)
    assert.equal(404, err.status)
  end)

  it("generates an id when none is given", function()
    local e = assert(client.collections:add("food", { name = "fries" }))
    assert.equal(36, #e.id)
  end)

  it("upsert stores items whole; select and delete_many", function()
    local a, b = H.uid("a"), H.uid("b")
    assert(client.collections:upsert("food", { { id = a, name = "salad" }, { id = b, name = "soup" } }))
    local sel = assert(client.collections:select("food", { a, b, "never" }))
    assert.equal(2, #sel.response.data)
    local by_id = {}
    for _, e in ipairs(sel.response.data) do by_id[e.id] = e end
    assert.same({ id = a, name = "salad" }, by_id[a].data)
    assert(client.collections:delete_many("food", { a, b }))
    assert.same({}, assert(client.collections:select("food", { a, b })).response.data)
  end)

  it("an entry in an activity enriches to the entry, then to a missing reference", function()
    local id = H.uid("level")
    assert(client.collections:add("level", { name = "Lava Cave" }, { id = id }))
    local feed = client:feed("user", H.uid("player"))
    local act = assert(feed:add_activity({ actor = "SU:p", verb = "cleared",
      object = client.collections:entry("level", id) }))
    assert.equal("SO:level:" .. id, act.object)
    local rich = assert(feed:get({ enrich = true })).results[1]
    assert.equal("Lava Cave", rich.object.data.name)
    assert(client.collections:delete("level", id))
    rich = assert(feed:get({ enrich = true })).results[1]
    assert.is_true(stream.is_missing(rich.object))
    assert.equal("object", rich.object.reference_type)
    assert.equal("level", rich.object.collection)
  end)
end)

describe("activity updates", function()
  local s, client

  setup(function()
    s = server.start()
    client = H.server_client(s)
  end)
  teardown(function()
    if client then client:close() end
    if s then s:stop() end
  end)

  it("a partial update by id shows in a follower's timeline", function()
    local src = client:feed("user", H.uid("src"))
    local tl = client:feed("timeline", H.uid("tl"))
    assert(tl:follow(src))
    local a = assert(src:add_activity({ actor = "SU:x", verb = "score", object = "run:1",
      points = 100, meta = { old = true } }))
    local u = assert(client:activity_partial_update({ id = a.id,
      set = { points = 120, ["meta.by"] = client:user("ref") }, unset = { "meta.old" } }))
    assert.equal(a.id, u.id)
    assert.equal(120, u.points)
    assert.same({ by = "SU:ref" }, u.meta)
    local copy = assert(tl:get()).results[1]
    assert.equal(120, copy.points)
    assert.equal("user:" .. src.user_id, copy.origin)
  end)

  it("by foreign id and time, several at once, and a full update", function()
    local feed = client:feed("user", H.uid("fid"))
    assert(feed:add_activity({ actor = "SU:x", verb = "v", object = "o", foreign_id = "run:7",
      time = 1795860000, points = 1 }))
    local res = assert(client:activities_partial_update({
      { foreign_id = "run:7", time = 1795860000, set = { points = 2 } },
    }))
    assert.equal(2, res.activities[1].points)
    assert(client:update_activities({ { actor = "SU:x", verb = "v", object = "o2",
      foreign_id = "run:7", time = 1795860000 } }))
    local a = assert(feed:get()).results[1]
    assert.equal("o2", a.object)
    assert.is_nil(a.points)
  end)

  it("an unknown activity is a 404", function()
    local res, err = client:activity_partial_update({ id = "00000000-0000-1000-8080-800000000000",
      set = { x = 1 } })
    assert.is_nil(res)
    assert.equal(404, err.status)
  end)
end)
