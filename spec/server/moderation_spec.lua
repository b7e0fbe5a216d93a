-- Moderation on the local server (stream-feeds-api.md section 17): flags on users,
-- activities and reactions, their checks, server-token-only rule and the answer's shape.

local server = require "helpers.server"
local http = require "helpers.http"
local cjson = require "cjson"
local shape = require "helpers.shape"

local UUID = "^%x%x%x%x%x%x%x%x%-%x%x%x%x%-4%x%x%x%-[89ab]%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$"

describe("local server moderation", function()
  local s, api
  local activity_id, reaction_id

  local function call(method, path, body, opts)
    opts = opts or {}
    if body ~= nil then opts.body = type(body) == "string" and body or cjson.encode(body) end
    return api:call(method, path, opts)
  end

  setup(function()
    s = server.start()
    api = http.api(s)
    assert.are.equal(201, (call("POST", "user/", { id = "m-alice", data = {} })))
    local st, b = call("POST", "feed/user/m-alice/", { actor = "SU:m-alice", verb = "post", object = "x" })
    assert.are.equal(201, st)
    activity_id = b.id
    st, b = call("POST", "reaction/", { kind = "like", activity_id = activity_id, user_id = "m-alice" })
    assert.are.equal(201, st)
    reaction_id = b.id
  end)

  teardown(function()
    if s then s:stop() end
  end)

  local function flag(t, _, id, extra)
    local body = { user_id = "m-bob", entity_type = t, entity_id = id, reason = "spam" }
    for k, v in pairs(extra or {}) do body[k] = v end
    return body
  end

  it("flags a user, an activity and a reaction: 201 with the flag", function()
    for _, c in ipairs({ { "stream:user", "m-alice" }, { "stream:feeds:v2:activity", activity_id },
        { "stream:feeds:v2:reaction", reaction_id } }) do
      local st, b, raw = call("POST", "moderation/flag/", flag(c[1], nil, c[2], { custom = { n = 1 } }))
      assert.are.equal(201, st, raw)
      assert.are.equal("created_at,custom,duration,entity_id,entity_type,flag_id,reason,user_id", shape.keys(b))
      assert.matches(UUID, b.flag_id)
      assert.are.equal(c[1], b.entity_type)
      assert.are.equal(c[2], b.entity_id)
      assert.are.equal("m-bob", b.user_id)
      assert.are.equal("spam", b.reason)
      assert.are.same({ n = 1 }, b.custom)
    end
  end)

  it("takes the path without the final slash, and a repeat is a new flag", function()
    local st1, b1 = call("POST", "moderation/flag", flag("stream:user", nil, "m-alice", { reason = cjson.null }))
    local st2, b2 = call("POST", "moderation/flag", flag("stream:user", nil, "m-alice"))
    assert.are.equal(201, st1)
    assert.are.equal(201, st2)
    assert.are_not.equal(b1.flag_id, b2.flag_id)
    assert.are.equal(cjson.null, b1.reason)
    assert.is_nil(b1.custom)
  end)

  it("an unknown entity is 404 code 16", function()
    for _, c in ipairs({ { "stream:user", "nobody" },
        { "stream:feeds:v2:activity", "00000000-0000-1000-8000-000000000000" },
        { "stream:feeds:v2:reaction", "missing" } }) do
      local st, b, raw = call("POST", "moderation/flag/", flag(c[1], nil, c[2]))
      assert.are.equal(404, st, raw)
      assert.are.equal(16, b.code)
    end
  end)

  it("a missing, empty or mistyped field or another type is 400 code 4 naming it", function()
    local cases = {
      { { entity_type = "stream:user", entity_id = "m-alice" }, "user_id" },
      { flag("stream:user", nil, ""), "entity_id" },
      { flag("stream:user", nil, 5), "entity_id" },
      { flag("", nil, "m-alice"), "entity_type" },
      { flag("stream:channel", nil, "m-alice"), "entity_type" },
      { flag("stream:user", nil, "m-alice", { user_id = "" }), "user_id" },
      { flag("stream:user", nil, "m-alice", { reason = { "x" } }), "reason" },
      { flag("stream:user", nil, "m-alice", { custom = "x" }), "custom" },
      { "[]", "body" }, { "", "body" }, { '{"user_id":', "body" },
    }
    for _, c in ipairs(cases) do
      local st, b, raw = call("POST", "moderation/flag/", c[1])
      assert.are.equal(400, st, raw)
      assert.are.equal(4, b.code, raw)
      assert.is_table(b.exception_fields[c[2]], raw)
    end
    assert.are.equal(413, (call("POST", "moderation/flag/", flag("stream:user", nil, ("x"):rep(1100000)))))
  end)

  it("takes server tokens for moderation or * only: user tokens and other scopes are 403 code 17", function()
    assert.are.equal(201, (call("POST", "moderation/flag/", flag("stream:user", nil, "m-alice"),
      { token = api:token('{"resource":"moderation","action":"*","feed_id":"*"}') })))
    for _, claims in ipairs({ '{"user_id":"m-bob"}', '{"resource":"feed","action":"*","feed_id":"*"}',
        '{"resource":"moderation","action":"*","feed_id":"userm-alice"}',
        '{"resource":"moderation","action":"read"}' }) do
      local st, b = call("POST", "moderation/flag/", flag("stream:user", nil, "m-alice"), { token = api:token(claims) })
      assert.are.equal(403, st, claims)
      assert.are.equal(17, b.code)
    end
    local st, _, _, h = call("GET", "moderation/flag/")
    assert.are.equal(405, st)
    assert.are.equal("POST", h["allow"])
  end)
end)
