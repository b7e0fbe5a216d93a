-- Notification feeds through the client, against the real local server: the
-- grouped answer, mark_read / mark_seen (all or by group id), pages and each over
-- groups, and groups fed by follows, `to` targets and reaction target_feeds.
local stream = require "stream"
local server = require "helpers.server"
local H = require "helpers.client"
local shape = require "helpers.shape"

describe("notification feeds", function()
  local s, client

  setup(function()
    s = server.start()
    client = H.server_client(s)
  end)
  teardown(function()
    if client then client:close() end
    if s then s:stop() end
  end)

  local GROUP_KEYS = { "activities", "activity_count", "actor_count", "created_at", "group", "id",
    "is_read", "is_seen", "updated_at", "verb" }

  it("groups by verb and day, with unseen and unread counts", function()
    local bell = client:feed("notification", H.uid("bell"))
    assert(bell:add_activities({
      { actor = "SU:a", verb = "like", object = "p:1", time = 1795860000 },
      { actor = "SU:b", verb = "like", object = "p:1", time = 1795860060 },
      { actor = "SU:a", verb = "comment", object = "p:1", time = 1795860120 },
    }))
    local page = assert(bell:get())
    assert.equal(2, #page.results)
    assert.equal(2, page.unseen)
    assert.equal(2, page.unread)
    local comment, like = page.results[1], page.results[2]
    assert.same(GROUP_KEYS, shape.key_list(like))
    assert.equal("comment_2026-11-28", comment.group)
    assert.equal("like", like.verb)
    assert.equal(2, like.activity_count)
    assert.equal(2, like.actor_count)
    assert.equal(like.activities[1].id .. "." .. like.group, like.id)
    assert.is_false(like.is_seen)
  end)

  it("mark_seen by group id and mark_read for all show on the next read", function()
    local bell = client:feed("notification", H.uid("marks"))
    assert(bell:add_activities({
      { actor = "SU:a", verb = "like", object = "p:1", time = 1795860000 },
      { actor = "SU:a", verb = "follow", object = "u:1", time = 1795860060 },
    }))
    local first = assert(bell:get())
    local follow_group = first.results[1].id
    local marking = assert(bell:get({ mark_seen = { follow_group } }))
    assert.is_false(marking.results[1].is_seen) -- the marking read shows the marks as they were
    local after = assert(bell:get({ mark_read = true }))
    assert.equal(1, after.unseen)
    assert.is_true(after.results[1].is_seen)
    assert.is_false(after.results[2].is_seen)
    assert.equal(0, assert(bell:get()).unread)
  end)

  it("pages and each walk groups across page boundaries", function()
    local bell = client:feed("notification", H.uid("paged"))
    local list = {}
    for i = 1, 5 do
      list[i] = { actor = "SU:a", verb = "v" .. i, object = "o", time = 1795860000 + i }
    end
    assert(bell:add_activities(list))
    local verbs, pages = {}, 0
    for page, err in bell:pages({ limit = 2 }) do
      assert.is_nil(err)
      pages = pages + 1
      for _, g in ipairs(page.results) do verbs[#verbs + 1] = g.verb end
    end
    assert.equal(3, pages)
    assert.same({ "v5", "v4", "v3", "v2", "v1" }, verbs)
    local n = 0
    for g in bell:each({ limit = 2 }) do
      n = n + 1
      assert.is_string(g.group)
    end
    assert.equal(5, n)
  end)

  it("receives through follows, to targets and reaction target_feeds, enriched", function()
    local owner = client:user(H.uid("owner"))
    local fan = client:user(H.uid("fan"))
    assert(owner:create({ name = "Owner" }))
    assert(fan:create({ name = "Fan" }))
    local bell = owner:feed("notification")
    assert(bell:follow(fan:feed("user")))
    local post = assert(fan:feed("user"):add_activity({ actor = fan, verb = "post", object = "x",
      to = { bell } }))
    assert(client.reactions:add("like", post, nil, { user_id = fan, target_feeds = { bell } }))
    local page = assert(bell:get({ enrich = true }))
    local verbs = {}
    for _, g in ipairs(page.results) do verbs[g.verb] = g end
    assert.equal(1, verbs.post.activity_count) -- one activity, though it came two ways
    assert.equal("Fan", verbs.post.activities[1].actor.data.name)
    assert.equal("Fan", verbs.like.activities[1].actor.data.name)
    assert.equal(post.id, verbs.like.activities[1].object.id)
  end)

  it("cannot be followed", function()
    local res, err = client:feed("timeline", H.uid("t")):follow(client:feed("notification", "x"))
    assert.is_nil(res)
    assert.equal(400, err.status)
  end)

  it("a user token reads its own bell but not another's", function()
    local me = H.uid("me")
    local c = H.token_client(s, assert(client:create_user_token(me)))
    assert(c:feed("notification", me):get({ mark_seen = true }))
    local res, err = c:feed("notification", "someone-else"):get()
    assert.is_nil(res)
    assert.equal(403, err.status)
    assert.is_false(stream.is_missing(err))
    c:close()
  end)
end)
