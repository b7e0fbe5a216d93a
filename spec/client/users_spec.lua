-- The users API against the real local server, over real HTTP:
-- every method and the conformance checklist of the official suites.
local stream = require "stream"
local server = require "helpers.server"
local H = require "helpers.client"

describe("users API (server-side client)", function()
  local s, client

  setup(function()
    s = server.start()
    client = H.server_client(s)
  end)

  teardown(function()
    if client then client:close() end
    if s then s:stop() end
  end)

  describe("user:create", function()
    it("returns id, created_at, updated_at, data and duration", function()
      local id = H.uid("create")
      local data = { name = "John Doe", occupation = "Software Engineer", gender = "male" }
      local res, err = client:user(id):create(data)
      assert.is_nil(err)
      assert.equal(id, res.id)
      assert.same(data, res.data)
      assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%d%d%d%dZ$", res.created_at)
      assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%d%d%d%dZ$", res.updated_at)
      assert.is_string(res.duration)
    end)

    it("stores no data as {}", function()
      local res = assert(client:user(H.uid("nodata")):create())
      assert.same({}, res.data)
      assert.equal("{}", stream.json.encode(res.data))
    end)

    it("returns a 409 api error for an existing id", function()
      local id = H.uid("dup")
      assert(client:user(id):create({ a = 1 }))
      local res, err = client:user(id):create({ a = 2 })
      assert.is_nil(res)
      assert.equal("api", err.kind)
      assert.equal(409, err.status)
      assert.equal(22, err.code)
      assert.equal("ConflictException", err.exception)
      assert.equal("POST", err.method)
      assert.equal("user/", err.path)
      assert.is_false(err.retryable)
      assert.matches("^stream: 409 ConflictException %(code 22%): .*" .. id:gsub("%-", "%%-")
        .. ".* %[POST user/%]$", tostring(err))
    end)

    it("with get_or_create returns the existing user unchanged", function()
      local id = H.uid("goc")
      local first = assert(client:user(id):create({ v = "original" }))
      local again = assert(client:user(id):create({ v = "ignored" }, { get_or_create = true }))
      assert.equal(first.created_at, again.created_at)
      assert.equal(first.updated_at, again.updated_at)
      assert.same({ v = "original" }, again.data)
      local via = assert(client:user(id):get_or_create({ v = "ignored too" }))
      assert.same({ v = "original" }, via.data)
    end)

    it("raises on options it does not know", function()
      assert.has_error(function() client:user("x"):create({}, { upsert = true }) end)
    end)
  end)

  describe("user:get", function()
    it("equals the create answer minus duration", function()
      local id = H.uid("get")
      local created = assert(client:user(id):create({ n = 1, list = { 1, 2, 3 } }))
      local got = assert(client:user(id):get())
      created.duration, got.duration = nil, nil
      assert.same(created, got)
    end)

    it("adds exactly followers_count and following_count with with_follow_counts", function()
      local id = H.uid("counts")
      assert(client:user(id):create({}))
      local plain = assert(client:user(id):get())
      local counted = assert(client:user(id):get({ with_follow_counts = true }))
      plain.duration, counted.duration = nil, nil
      assert.equal(0, counted.followers_count)
      assert.equal(0, counted.following_count)
      counted.followers_count, counted.following_count = nil, nil
      assert.same(plain, counted)
    end)

    it("profile is get", function()
      local id = H.uid("profile")
      assert(client:user(id):create({ p = true }))
      assert.same({ p = true }, assert(client:user(id):profile()).data)
    end)

    it("returns a 404 api error for a never-created id", function()
      local res, err = client:user(H.uid("never")):get()
      assert.is_nil(res)
      assert.equal("api", err.kind)
      assert.equal(404, err.status)
      assert.equal(16, err.code)
      assert.equal("GET", err.method)
    end)
  end)

  describe("user:update", function()
    it("replaces data and moves updated_at", function()
      local id = H.uid("upd")
      local created = assert(client:user(id):create({ a = 1, b = 2 }))
      local updated = assert(client:user(id):update({ c = 3 }))
      assert.same({ c = 3 }, updated.data)
      assert.equal(created.created_at, updated.created_at)
      assert.is_true(updated.updated_at > created.updated_at)
      assert.same({ c = 3 }, assert(client:user(id):get()).data)
    end)

    it("keeps [] as [] through get, change, update", function()
      local id = H.uid("arr")
      assert(client:user(id):create({ tags = stream.array({}), nested = { list = stream.array({}) } }))
      local got = assert(client:user(id):get())
      got.data.extra = true
      local updated = assert(client:user(id):update(got.data))
      local text = stream.json.encode(updated.data)
      assert.matches('"tags":%[%]', text)
      assert.matches('"list":%[%]', text)
    end)

    it("returns 404 for an unknown id", function()
      local _, err = client:user(H.uid("ghost")):update({ x = 1 })
      assert.equal(404, err.status)
    end)

    it("refuses non-object data before sending", function()
      local before = client:stats().requests
      local res, err = client:user("x"):update(stream.array({ 1, 2 }))
      assert.is_nil(res)
      assert.equal("invalid", err.kind)
      assert.is_table(err.fields.data)
      assert.equal(before, client:stats().requests)
    end)
  end)

  describe("user:delete", function()
    it("succeeds and a later get is 404", function()
      local id = H.uid("del")
      assert(client:user(id):create({}))
      local res = assert(client:user(id):delete())
      assert.is_string(res.duration)
      local _, err = client:user(id):get()
      assert.equal(404, err.status)
    end)
  end)

  describe("user:ref", function()
    it("is SU:<id> and sends nothing", function()
      local before = client:stats().requests
      assert.equal("SU:42", client:user("42"):ref())
      assert.equal("SU:42", client:user(42):ref())
      assert.equal("SU:john-doe", client.users:ref("john-doe"))
      assert.equal(before, client:stats().requests)
    end)
  end)

  describe("client.users (seed style)", function()
    it("adds, gets, updates and deletes", function()
      local id = H.uid("seed")
      assert.same({ x = 1 }, assert(client.users:add(id, { x = 1 })).data)
      local _, err = client.users:add(id, { x = 2 })
      assert.equal(409, err.status)
      assert.same({ x = 1 }, assert(client.users:add(id, { x = 3 }, true)).data)
      assert.same({ x = 1 }, assert(client.users:get(id)).data)
      assert.same({ y = 2 }, assert(client.users:update(id, { y = 2 })).data)
      assert(client.users:delete(id))
      _, err = client.users:get(id)
      assert.equal(404, err.status)
    end)

    it("adds two in a batch, gets both, deletes both, then gets none", function()
      local a, b = H.uid("ba"), H.uid("bb")
      local res = assert(client.users:add_many({ { id = a, data = { n = 1 } }, { id = b, data = { n = 2 } } }))
      assert.equal(2, #res.created_users)
      local got = assert(client.users:get_many({ a, b }))
      assert.equal(2, #got.users)
      local seen = {}
      for _, u in ipairs(got.users) do seen[u.id] = u.data.n end
      assert.same({ [a] = 1, [b] = 2 }, seen)
      local del = assert(client.users:delete_many({ a, b }))
      table.sort(del.deleted_user_ids)
      local want = { a, b }; table.sort(want)
      assert.same(want, del.deleted_user_ids)
      got = assert(client.users:get_many({ a, b }))
      assert.equal(0, #got.users)
      assert.equal("[]", stream.json.encode(got.users))
    end)

    it("lists every never-created id on batch delete", function()
      local a, b = H.uid("nx"), H.uid("ny")
      local del = assert(client.users:delete_many({ a, b }))
      table.sort(del.deleted_user_ids)
      local want = { a, b }; table.sort(want)
      assert.same(want, del.deleted_user_ids)
    end)

    it("overrides existing users in a batch only when asked", function()
      local a = H.uid("ov")
      assert(client.users:add(a, { v = 1 }))
      assert(client.users:add_many({ { id = a, data = { v = 2 } } }, { override = true }))
      assert.same({ v = 2 }, assert(client.users:get(a)).data)
    end)

    it("refuses an empty batch or a bad id in it before sending", function()
      local before = client:stats().requests
      local _, err = client.users:add_many({})
      assert.equal("invalid", err.kind)
      _, err = client.users:add_many({ { id = "ok" }, { id = "bad id" } })
      assert.equal("invalid", err.kind)
      assert.matches("users%[2%]", err.detail)
      _, err = client.users:get_many({ "a", "b,c" })
      assert.equal("invalid", err.kind)
      _, err = client.users:delete_many({})
      assert.equal("invalid", err.kind)
      assert.equal(before, client:stats().requests)
    end)
  end)
end)

describe("users API (user-token client)", function()
  local s, admin

  setup(function()
    s = server.start()
    admin = H.server_client(s)
  end)

  teardown(function()
    if admin then admin:close() end
    if s then s:stop() end
  end)

  it("has a token that decodes to user_id plus the extra claims", function()
    local token = assert(admin:create_user_token("erin", { role = "admin", level = 3 }))
    local core = stream.core
    local payload = core.json_decode(core.b64url_decode(token:match("^[^.]+%.([^.]+)%.")))
    assert.same({ user_id = "erin", role = "admin", level = 3 }, payload)
  end)

  it("adds exp when asked to expire", function()
    local token = assert(admin:create_user_token("erin", nil, { expires_in = 60 }))
    local payload = stream.core.json_decode(stream.core.b64url_decode(token:match("^[^.]+%.([^.]+)%.")))
    assert.is_true(payload.exp >= os.time() + 59 and payload.exp <= os.time() + 61)
  end)

  it("gets, gets-or-creates, updates and deletes its own user", function()
    local id = H.uid("own")
    local c = H.token_client(s, assert(admin:create_user_token(id)))
    assert.equal("user_token", c.auth_mode)
    assert.equal(id, c.current_user.id)
    local made = assert(c:set_user({ name = "me" }))
    assert.same({ name = "me" }, made.data)
    local again = assert(c:set_user({ name = "changed?" }))
    assert.same({ name = "me" }, again.data)
    assert.same({ name = "me" }, assert(c.current_user:get()).data)
    assert.same({ name = "new" }, assert(c.current_user:update({ name = "new" })).data)
    assert(c.current_user:delete())
    local _, err = c.current_user:get()
    assert.equal(404, err.status)
    c:close()
  end)

  it("reads another user's profile but may not create, update or delete it", function()
    local other = H.uid("other")
    assert(admin:user(other):create({ public = true }))
    local c = H.token_client(s, assert(admin:create_user_token(H.uid("me"))))
    assert.same({ public = true }, assert(c:user(other):profile()).data)
    for _, call in ipairs({
      function() return c:user(H.uid("new")):create({}) end,
      function() return c:user(other):update({ hacked = true }) end,
      function() return c:user(other):delete() end,
    }) do
      local res, err = call()
      assert.is_nil(res)
      assert.equal(403, err.status)
      assert.equal(17, err.code)
    end
    assert.same({ public = true }, assert(admin:user(other):get()).data)
    c:close()
  end)

  it("raises when a user-token client is asked to sign", function()
    local c = H.token_client(s, assert(admin:create_user_token(H.uid("nosign"))))
    assert.has_error(function() c:create_user_token("x") end)
    c:close()
  end)

  it("raises on set_user from a server-side client", function()
    assert.has_error(function() admin:set_user({}) end)
  end)
end)

describe("authentication errors", function()
  local s

  setup(function() s = server.start() end)
  teardown(function() if s then s:stop() end end)

  it("is 401 code 2 for an unknown api key", function()
    local c = stream.connect("no-such-key", s.api_secret, "1", { base_url = s.base_url })
    local _, err = c:user("x"):get()
    assert.equal("api", err.kind)
    assert.equal(401, err.status)
    assert.equal(2, err.code)
    c:close()
  end)

  it("is 403 code 17 for a wrong secret", function()
    local c = stream.connect(s.api_key, "wrong-secret", "1", { base_url = s.base_url })
    local _, err = c:user("x"):get()
    assert.equal(403, err.status)
    assert.equal(17, err.code)
    assert.is_nil(tostring(err):find("wrong-secret", 1, true))
    c:close()
  end)
end)
