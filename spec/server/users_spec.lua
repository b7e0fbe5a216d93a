-- The single-user endpoints of the local server (stream-api.md section 3) and the
-- conformance checklist of section 5 that applies to a server.

local server = require "helpers.server"
local http = require "helpers.http"
local shape = require "helpers.shape"
local keys = shape.keys

local TIMESTAMP = "^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%d%d%d%dZ$"
local DURATION = "^%d+%.%d%dms$"

describe("local server users endpoints", function()
  local s, api

  setup(function()
    s = server.start()
    api = http.api(s)
  end)

  teardown(function()
    if s then s:stop() end
  end)

  describe("POST user/", function()
    it("returns 201 with id, created_at, updated_at, the sent data and duration", function()
      local status, body, raw, headers = api:call("POST", "user/",
        { body = '{"id":"add-1","data":{"name":"John","n":1}}' })
      assert.are.equal(201, status)
      assert.are.equal("created_at,data,duration,id,updated_at", keys(body))
      assert.are.equal("add-1", body.id)
      assert.are.same({ name = "John", n = 1 }, body.data)
      assert.matches(TIMESTAMP, body.created_at)
      assert.are.equal(body.created_at, body.updated_at)
      assert.matches(DURATION, body.duration)
      assert.matches("^application/json", headers["content-type"])
      assert.matches('^{"id":"add%-1","created_at":"[^"]+","updated_at":"[^"]+",'
        .. '"data":{"name":"John","n":1},"duration":"[^"]+"}$', raw)
    end)

    it("stores data left out as {}", function()
      local status, _, raw = api:call("POST", "user/", { body = '{"id":"add-nodata"}' })
      assert.are.equal(201, status)
      assert.matches('"data":{}', raw, 1, true)
    end)

    it("stores data null as {}", function()
      local status, _, raw = api:call("POST", "user/", { body = '{"id":"add-null","data":null}' })
      assert.are.equal(201, status)
      assert.matches('"data":{}', raw, 1, true)
    end)

    it("returns 409 code 22 for an existing id", function()
      assert.are.equal(201, (api:call("POST", "user/", { body = '{"id":"dup-1","data":{}}' })))
      local status, body = api:call("POST", "user/", { body = '{"id":"dup-1","data":{"x":1}}' })
      assert.are.equal(409, status)
      assert.are.equal(22, body.code)
      assert.are.equal(409, body.status_code)
      assert.are.equal("ConflictException", body.exception)
      assert.are.equal("User dup-1 already exists", body.detail)
    end)

    for _, spelling in ipairs({ "true", "True", "1" }) do
      it("with get_or_create=" .. spelling .. " returns an existing user unchanged (201)", function()
        local id = "goc-" .. spelling
        local _, first = api:call("POST", "user/", { body = '{"id":"' .. id .. '","data":{"v":"original"}}' })
        local status, again = api:call("POST", "user/", {
          query = "get_or_create=" .. spelling, body = '{"id":"' .. id .. '","data":{"v":"ignored"}}' })
        assert.are.equal(201, status)
        assert.are.equal(first.created_at, again.created_at)
        assert.are.equal(first.updated_at, again.updated_at)
        assert.are.same({ v = "original" }, again.data)
      end)
    end

    it("with get_or_create=true creates a missing user (201)", function()
      local status, body = api:call("POST", "user/",
        { query = "get_or_create=true", body = '{"id":"goc-new","data":{"a":1}}' })
      assert.are.equal(201, status)
      assert.are.same({ a = 1 }, body.data)
    end)

    it("treats get_or_create=false, yes and 0 as not set (409 on existing)", function()
      api:call("POST", "user/", { body = '{"id":"goc-off"}' })
      for _, v in ipairs({ "false", "yes", "0", "TRUE" }) do
        assert.are.equal(409, (api:call("POST", "user/", { query = "get_or_create=" .. v, body = '{"id":"goc-off"}' })))
      end
    end)
  end)

  describe("GET user/{id}/", function()
    it("returns 200 with the add response minus duration", function()
      local _, added = api:call("POST", "user/", { body = '{"id":"get-1","data":{"k":[1,2,{"z":null}]}}' })
      local status, got = api:call("GET", "user/get-1/")
      assert.are.equal(200, status)
      assert.matches(DURATION, got.duration)
      added.duration, got.duration = nil, nil
      assert.are.same(added, got)
    end)

    for _, spelling in ipairs({ "true", "True", "1" }) do
      it("with with_follow_counts=" .. spelling .. " adds exactly followers_count and following_count (0)", function()
        api:call("POST", "user/", { query = "get_or_create=1", body = '{"id":"get-counts"}' })
        local status, got = api:call("GET", "user/get-counts/", { query = "with_follow_counts=" .. spelling })
        assert.are.equal(200, status)
        assert.are.equal("created_at,data,duration,followers_count,following_count,id,updated_at", keys(got))
        assert.are.equal(0, got.followers_count)
        assert.are.equal(0, got.following_count)
      end)
    end

    it("returns 404 code 16 for a never-created id", function()
      local status, body = api:call("GET", "user/never-created/")
      assert.are.equal(404, status)
      assert.are.equal(16, body.code)
      assert.are.equal("DoesNotExistException", body.exception)
    end)
  end)

  describe("PUT user/{id}/", function()
    it("replaces data (no merge), keeps created_at, moves updated_at, answers 201", function()
      local _, added = api:call("POST", "user/", { body = '{"id":"upd-1","data":{"a":1,"b":2}}' })
      local status, updated = api:call("PUT", "user/upd-1/", { body = '{"data":{"c":3}}' })
      assert.are.equal(201, status)
      assert.are.same({ c = 3 }, updated.data)
      assert.are.equal(added.created_at, updated.created_at)
      assert.are_not.equal(added.updated_at, updated.updated_at)
      assert.is_true(updated.updated_at > added.updated_at)
      local _, got = api:call("GET", "user/upd-1/")
      assert.are.same({ c = 3 }, got.data)
    end)

    it("moves updated_at forward on every update, even back to back", function()
      api:call("POST", "user/", { body = '{"id":"upd-fast"}' })
      local last = ""
      for i = 1, 5 do
        local _, u = api:call("PUT", "user/upd-fast/", { body = '{"data":{"i":' .. i .. '}}' })
        assert.is_true(u.updated_at > last)
        last = u.updated_at
      end
    end)

    it("stores data left out or null as {}", function()
      api:call("POST", "user/", { body = '{"id":"upd-empty","data":{"a":1}}' })
      local _, _, raw = api:call("PUT", "user/upd-empty/", { body = '{}' })
      assert.matches('"data":{}', raw, 1, true)
      api:call("PUT", "user/upd-empty/", { body = '{"data":{"a":1}}' })
      _, _, raw = api:call("PUT", "user/upd-empty/", { body = '{"data":null}' })
      assert.matches('"data":{}', raw, 1, true)
    end)

    it("returns 400 code 4 with exception_fields.data for non-object data", function()
      api:call("POST", "user/", { body = '{"id":"upd-bad"}' })
      for _, data in ipairs({ '"text"', "[1,2]", "42", "true" }) do
        local status, body = api:call("PUT", "user/upd-bad/", { body = '{"data":' .. data .. '}' })
        assert.are.equal(400, status)
        assert.are.equal(4, body.code)
        assert.is_table(body.exception_fields.data)
      end
    end)

    it("returns 404 code 16 for an unknown id", function()
      local status, body = api:call("PUT", "user/upd-unknown/", { body = '{"data":{}}' })
      assert.are.equal(404, status)
      assert.are.equal(16, body.code)
    end)
  end)

  describe("DELETE user/{id}/", function()
    it("returns 200 with only duration, and a later get is 404", function()
      api:call("POST", "user/", { body = '{"id":"del-1"}' })
      local status, body = api:call("DELETE", "user/del-1/")
      assert.are.equal(200, status)
      assert.are.equal("duration", keys(body))
      assert.are.equal(404, (api:call("GET", "user/del-1/")))
    end)

    it("returns 404 code 16 for an unknown id", function()
      local status, body = api:call("DELETE", "user/del-unknown/")
      assert.are.equal(404, status)
      assert.are.equal(16, body.code)
    end)

    it("lets the id be created again afterwards", function()
      api:call("POST", "user/", { body = '{"id":"del-again","data":{"v":1}}' })
      api:call("DELETE", "user/del-again/")
      local status, body = api:call("POST", "user/", { body = '{"id":"del-again","data":{"v":2}}' })
      assert.are.equal(201, status)
      assert.are.same({ v = 2 }, body.data)
    end)
  end)

  describe("ids", function()
    it("accepts 1 to 255 characters of letters, digits, - and _", function()
      for _, id in ipairs({ "a", "Z_9-x", string.rep("x", 255), "42" }) do
        local status = api:call("POST", "user/", { body = '{"id":"' .. id .. '"}' })
        assert.are.equal(201, status)
        assert.are.equal(200, (api:call("GET", "user/" .. id .. "/")))
      end
    end)

    it("refuses others with 400 code 4 and exception_fields.id", function()
      for _, id in ipairs({ "", "a b", "a.b", "a:b", "é", string.rep("x", 256), "SU:1" }) do
        local status, body = api:call("POST", "user/", { body = '{"id":"' .. id .. '"}' })
        assert.are.equal(400, status, id)
        assert.are.equal(4, body.code)
        assert.is_table(body.exception_fields.id)
      end
    end)

    it("refuses a missing or non-string id with exception_fields.id", function()
      for _, b in ipairs({ '{}', '{"id":42}', '{"id":null}', '{"id":["a"]}' }) do
        local status, body = api:call("POST", "user/", { body = b })
        assert.are.equal(400, status)
        assert.is_table(body.exception_fields.id)
      end
    end)

    it("answers 404 code 16 for a path id that breaks the rule (percent-decoded), as the service does", function()
      for _, path in ipairs({ "user/a%20b/", "user/a.b/", "user/%C3%A9/", "user/a%2Fb/",
        "user/" .. string.rep("x", 256) .. "/" }) do
        for _, method in ipairs({ "GET", "PUT", "DELETE" }) do
          local status, body, raw = api:call(method, path, { body = method == "PUT" and '{"data":{}}' or nil })
          assert.are.equal(404, status, method .. " " .. path)
          assert.are.equal(16, body.code, raw)
          assert.are.equal("DoesNotExistException", body.exception)
          assert.is_nil(body.exception_fields)
        end
      end
    end)
  end)

  it("logged no unexpected Lua errors", function()
    local log = s:error_log()
    assert.is_nil(log:find("unexpected error", 1, true), log)
    assert.is_nil(log:find("lua entry thread aborted", 1, true), log)
  end)
end)
