-- The batch users endpoints of the local server: POST/GET/DELETE users/.

local server = require "helpers.server"
local http = require "helpers.http"
local shape = require "helpers.shape"
local ids_of = shape.ids_of

describe("local server batch endpoints", function()
  local s, api

  setup(function()
    s = server.start()
    api = http.api(s)
  end)

  teardown(function()
    if s then s:stop() end
  end)

  describe("POST users/", function()
    it("adds 2 users (201 created_users) and GET users/ returns both", function()
      local status, body = api:call("POST", "users/", {
        body = '{"users":[{"id":"b-1","data":{"n":1}},{"id":"b-2"}]}' })
      assert.are.equal(201, status)
      assert.are.same({ "b-1", "b-2" }, ids_of(body.created_users))
      assert.are.same({ n = 1 }, body.created_users[1].data)
      assert.are.same({}, body.created_users[2].data)
      assert.is_string(body.created_users[1].created_at)
      assert.is_nil(body.created_users[1].duration)
      assert.is_string(body.duration)
      local gstatus, got = api:call("GET", "users/", { query = "ids=b-1,b-2" })
      assert.are.equal(200, gstatus)
      assert.are.same({ "b-1", "b-2" }, ids_of(got.users))
    end)

    it("without override leaves existing users unchanged and lists them", function()
      api:call("POST", "user/", { body = '{"id":"b-keep","data":{"v":"old"}}' })
      local status, body = api:call("POST", "users/", {
        body = '{"users":[{"id":"b-keep","data":{"v":"new"}},{"id":"b-fresh","data":{"v":"new"}}],"override":false}' })
      assert.are.equal(201, status)
      assert.are.same({ v = "old" }, body.created_users[1].data)
      assert.are.same({ v = "new" }, body.created_users[2].data)
    end)

    for _, flag in ipairs({ "override", "override_existing" }) do
      it("with " .. flag .. ":true replaces existing data, keeping created_at", function()
        local id = "b-over-" .. flag:gsub("_", "-")
        local _, before = api:call("POST", "user/", { body = '{"id":"' .. id .. '","data":{"v":"old"}}' })
        local status, body = api:call("POST", "users/", {
          body = '{"users":[{"id":"' .. id .. '","data":{"v":"new"}}],"' .. flag .. '":true}' })
        assert.are.equal(201, status)
        local after = body.created_users[1]
        assert.are.same({ v = "new" }, after.data)
        assert.are.equal(before.created_at, after.created_at)
        assert.is_true(after.updated_at > before.updated_at)
        local _, got = api:call("GET", "user/" .. id .. "/")
        assert.are.same({ v = "new" }, got.data)
      end)
    end

    it("rejects the whole batch (400, nothing written) when one entry is invalid", function()
      local status, body = api:call("POST", "users/", {
        body = '{"users":[{"id":"b-ok-1"},{"id":"bad id"},{"id":"b-ok-2","data":[1]}]}' })
      assert.are.equal(400, status)
      assert.are.equal(4, body.code)
      assert.is_table(body.exception_fields["users[1].id"])
      assert.is_table(body.exception_fields["users[2].data"])
      assert.are.equal(404, (api:call("GET", "user/b-ok-1/")))
    end)

    it("rejects a missing, empty or non-array users field and a non-boolean override", function()
      for _, b in ipairs({ '{}', '{"users":[]}', '{"users":{"id":"x"}}', '{"users":["x"]}' }) do
        local status, body = api:call("POST", "users/", { body = b })
        assert.are.equal(400, status, b)
        assert.are.equal(4, body.code)
      end
      local status, body = api:call("POST", "users/", { body = '{"users":[{"id":"x"}],"override":"yes"}' })
      assert.are.equal(400, status)
      assert.is_table(body.exception_fields.override)
    end)
  end)

  describe("GET users/", function()
    it("leaves unknown ids out and lists each user once", function()
      api:call("POST", "users/", { body = '{"users":[{"id":"g-1"},{"id":"g-2"}]}' })
      local status, body = api:call("GET", "users/", { query = "ids=g-2,unknown-x,g-1,g-2" })
      assert.are.equal(200, status)
      assert.are.same({ "g-2", "g-1" }, ids_of(body.users))
    end)

    it("returns an empty list when no id exists", function()
      local status, _, raw = api:call("GET", "users/", { query = "ids=nobody-1,nobody-2" })
      assert.are.equal(200, status)
      assert.matches('^{"users":%[%],"duration":', raw)
    end)

    it("needs ids (400 exception_fields.ids) and refuses invalid ones", function()
      for _, q in ipairs({ "", "ids=", "ids=a,,b", "ids=a%20b", "ids=a.b" }) do
        local status, body = api:call("GET", "users/", { query = q })
        assert.are.equal(400, status, q)
        assert.is_table(body.exception_fields.ids)
      end
    end)
  end)

  describe("DELETE users/", function()
    it("deletes both users and a later get returns none", function()
      api:call("POST", "users/", { body = '{"users":[{"id":"d-1"},{"id":"d-2"}]}' })
      local status, body = api:call("DELETE", "users/", { query = "ids=d-1,d-2" })
      assert.are.equal(200, status)
      assert.are.same({ "d-1", "d-2" }, body.deleted_user_ids)
      local _, got = api:call("GET", "users/", { query = "ids=d-1,d-2" })
      assert.are.same({}, got.users)
    end)

    it("lists every id asked for, never-created ones included", function()
      local status, body = api:call("DELETE", "users/", { query = "ids=never-1,never-2" })
      assert.are.equal(200, status)
      assert.are.same({ "never-1", "never-2" }, body.deleted_user_ids)
    end)
  end)

  describe("with a user token", function()
    it("refuses every batch endpoint with 403 code 17", function()
      local token = api:token('{"user_id":"alice"}')
      for _, c in ipairs({ { "POST", "users/", nil, '{"users":[{"id":"alice"}]}' },
        { "GET", "users/", "ids=alice" }, { "DELETE", "users/", "ids=alice" } }) do
        local status, body = api:call(c[1], c[2], { token = token, query = c[3], body = c[4] })
        assert.are.equal(403, status, c[1])
        assert.are.equal(17, body.code)
      end
    end)
  end)

  it("logged no unexpected Lua errors", function()
    local log = s:error_log()
    assert.is_nil(log:find("unexpected error", 1, true), log)
    assert.is_nil(log:find("lua entry thread aborted", 1, true), log)
  end)
end)
