-- client.reactions against the real local server, over real HTTP: reactions
-- carry their users, enriched reads show them, pages go both ways.
local stream = require "stream"
local server = require "helpers.server"
local H = require "helpers.client"
local http = require "helpers.http"
local shape = require "helpers.shape"

local KEYS = { "activity_id", "children_counts", "created_at", "data", "id", "kind",
  "latest_children", "parent", "updated_at", "user", "user_id" }

describe("client.reactions (server-side client)", function()
  local s, client, alice, bob, activity

  setup(function()
    s = server.start({ faults = true })
    client = H.server_client(s)
    alice = client:user(H.uid("alice"))
    bob = client:user(H.uid("bob"))
    assert(alice:create({ name = "Alice" }))
    assert(bob:create({ name = "Bob" }))
    activity = assert(alice:feed("user"):add_activity({ actor = alice, verb = "post", object = "p:1" }))
  end)

  teardown(function()
    if client then client:close() end
    if s then s:stop() end
  end)

  it("add returns the reaction with exactly its keys and its user enriched", function()
    local r = assert(client.reactions:add("like", activity, nil, { user_id = bob }))
    assert.same(KEYS, shape.key_list(r, "duration"))
    assert.equal(bob.id, r.user_id)
    assert.equal(activity.id, r.activity_id)
    assert.equal("", r.parent)
    local user = assert(bob:get())
    user.duration = nil
    assert.same(user, r.user)
    local again = assert(client.reactions:get(r.id))
    again.duration, r.duration = nil, nil
    assert.same(r, again)
  end)

  it("update replaces data; delete makes it a 404", function()
    local r = assert(client.reactions:add("comment", activity.id, { text = "hi" }, { user_id = bob }))
    local u = assert(client.reactions:update(r.id, { text = "edited" }))
    assert.same({ text = "edited" }, u.data)
    assert(client.reactions:delete(r.id))
    local res, err = client.reactions:get(r.id)
    assert.is_nil(res)
    assert.equal(404, err.status)
  end)

  it("children count on the parent; soft delete hides and restore brings back", function()
    local parent = assert(client.reactions:add("comment", activity, { text = "top" }, { user_id = alice }))
    local child = assert(client.reactions:add_child("like", parent, nil, { user_id = bob }))
    assert.equal(parent.id, child.parent)
    assert.equal(activity.id, child.activity_id)
    local p = assert(client.reactions:get(parent.id))
    assert.equal(1, p.children_counts.like)
    assert.equal(child.id, p.latest_children.like[1].id)
    assert(client.reactions:delete(child.id, { soft = true }))
    local page = assert(client.reactions:filter({ reaction_id = parent.id }))
    assert.same({}, page.results)
    assert.is_string(assert(client.reactions:get(child.id)).deleted_at)
    assert(client.reactions:restore(child.id))
    page = assert(client.reactions:filter({ reaction_id = parent.id }))
    assert.equal(child.id, page.results[1].id)
    local many = assert(client.reactions:get_many({ parent.id, child.id }))
    assert.equal(2, #many.reactions)
  end)

  it("pages go newest first with id_lt and oldest first with id_gt, across pages", function()
    local act = assert(alice:feed("user"):add_activity({ actor = alice, verb = "post", object = "p:2" }))
    local ids = {}
    for i = 1, 5 do
      ids[i] = assert(client.reactions:add("like", act, { n = i }, { user_id = bob })).id
    end
    local seen = {}
    for page, err in client.reactions:pages({ activity_id = act.id, kind = "like", limit = 2 }) do
      assert.is_nil(err)
      for _, r in ipairs(page.results) do seen[#seen + 1] = r.id end
    end
    assert.same({ ids[5], ids[4], ids[3], ids[2], ids[1] }, seen)
    seen = {}
    for page in client.reactions:pages({ activity_id = act.id, id_gt = ids[1], limit = 2 }) do
      for _, r in ipairs(page.results) do seen[#seen + 1] = r.id end
    end
    assert.same({ ids[2], ids[3], ids[4], ids[5] }, seen)
  end)

  it("enriched feed reads carry own, latest and counts with their users", function()
    local act = assert(alice:feed("user"):add_activity({ actor = alice, verb = "post", object = "p:3" }))
    assert(client.reactions:add("like", act, nil, { user_id = bob }))
    assert(client.reactions:add("like", act, nil, { user_id = alice }))
    assert(client.reactions:add("comment", act, { text = "nice" }, { user_id = bob }))
    local page = assert(alice:feed("user"):get({ limit = 1,
      reactions = { own = true, recent = true, counts = true }, user_id = bob }))
    local a = page.results[1]
    assert.equal(act.id, a.id)
    assert.equal("Alice", a.actor.data.name)
    assert.same({ like = 2, comment = 1 }, a.reaction_counts)
    assert.equal(1, #a.own_reactions.like)
    assert.equal(bob.id, a.own_reactions.like[1].user_id)
    assert.equal("Bob", a.latest_reactions.comment[1].user.data.name)
    local only = assert(client:get_activities({ ids = { act.id } },
      { reactions = { counts = true, kinds = { "comment" } } }))
    assert.same({ comment = 1 }, only.results[1].reaction_counts)
  end)

  it("a deleted reacting user shows as a missing reference", function()
    local carl = client:user(H.uid("carl"))
    assert(carl:create({ name = "Carl" }))
    local r = assert(client.reactions:add("like", activity, nil, { user_id = carl }))
    assert(carl:delete())
    local got = assert(client.reactions:get(r.id))
    assert.is_true(stream.is_missing(got.user))
    assert.equal("SU:" .. carl.id, got.user.reference)
  end)

  -- A transport that delivers the first POST for real and then reports its
  -- answer lost (a timeout after sending), as a dropped connection would.
  local function losing_transport()
    local curl = require "stream.transport.curl"
    return {
      new = function(core, settings)
        local t = curl.new(core, settings)
        local request, lost = t.request, false
        t.request = function(self, req)
          local res, err = request(self, req)
          if req.method == "POST" and not lost then
            lost = true
            return nil, { kind = "timeout", message = "answer lost (test)", sent = true,
              reason = "transfer" }
          end
          return res, err
        end
        return t
      end,
    }
  end

  it("a caller-given id makes a lost answer safe to repeat: the stored reaction comes back", function()
    local c = H.server_client(s, { transport = losing_transport(), retries = 2 })
    local id = H.uid("once")
    local r = assert(c.reactions:add("like", activity, { n = 1 }, { user_id = bob, id = id }))
    assert.equal(id, r.id)
    assert.same({ n = 1 }, r.data)
    local page = assert(client.reactions:filter({ user_id = bob, kind = "like", limit = 25 }))
    local n = 0
    for _, x in ipairs(page.results) do if x.id == id then n = n + 1 end end
    assert.equal(1, n)
    -- without an id the same loss is an error: the add is never sent twice
    c:close()
    c = H.server_client(s, { transport = losing_transport(), retries = 2 })
    local res, err = c.reactions:add("like", activity, nil, { user_id = bob })
    assert.is_nil(res)
    assert.equal("timeout", err.kind)
    assert.is_true(err.sent)
    assert.equal(1, err.attempts)
    -- an id that was used before is a plain 409 on the first attempt
    res, err = client.reactions:add("like", activity, nil, { user_id = bob, id = id })
    assert.is_nil(res)
    assert.equal(409, err.status)
    c:close()
  end)

  it("never repeats an add without an id", function()
    local status = http.request("POST", s.url .. "/_local/faults",
      { body = '{"fault":"status","status":503,"count":1}' })
    assert.equal(201, status)
    local res, err = client.reactions:add("like", activity, nil, { user_id = bob })
    assert.is_nil(res)
    assert.equal(503, err.status)
    assert.equal(1, err.attempts)
  end)
end)

describe("client.reactions (user-token client)", function()
  local s, sc, me, tc, activity

  setup(function()
    s = server.start()
    sc = H.server_client(s)
    me = H.uid("me")
    assert(sc:user(me):create({ name = "Me" }))
    activity = assert(sc:feed("user", me):add_activity({ actor = "SU:" .. me, verb = "post", object = "x" }))
    tc = H.token_client(s, assert(sc:create_user_token(me)))
  end)

  teardown(function()
    if tc then tc:close() end
    if sc then sc:close() end
    if s then s:stop() end
  end)

  it("reacts as its own user without naming user_id", function()
    local r = assert(tc.reactions:add("like", activity))
    assert.equal(me, r.user_id)
    assert.equal("Me", r.user.data.name)
  end)

  it("may not react as another user (403)", function()
    local res, err = tc.reactions:add("like", activity, nil, { user_id = "someone-else" })
    assert.is_nil(res)
    assert.equal(403, err.status)
  end)
end)
