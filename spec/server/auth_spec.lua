-- Authentication and permissions of the local server: api_key, the JWT headers,
-- signature checks, server tokens and user tokens (stream-api.md section 2).

local server = require "helpers.server"
local http = require "helpers.http"

describe("local server auth", function()
  local s, api

  setup(function()
    s = server.start()
    api = http.api(s)
    api:call("POST", "user/", { body = '{"id":"alice","data":{"who":"alice"}}' })
    api:call("POST", "user/", { body = '{"id":"bob","data":{"who":"bob"}}' })
  end)

  teardown(function()
    if s then s:stop() end
  end)

  local function expect_error(status, code, st, body)
    assert.are.equal(status, st)
    assert.is_table(body)
    assert.are.equal(code, body.code)
    assert.are.equal(status, body.status_code)
  end

  describe("helpers.http.jwt (openssl)", function()
    it("reproduces the official JS client's test vectors", function()
      local secret = "test-secret-abcdefghijklmnopqrstuvwxyz0123"
      assert.are.equal("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ1c2VyX2lkIjoiZXJpbiJ9."
        .. "DbuYUAjPdV4sxHgP9T316FFkMhGecKUwUBj1ggSqKZM",
        http.jwt('{"user_id":"erin"}', secret))
      assert.are.equal("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
        .. "eyJyZXNvdXJjZSI6IioiLCJhY3Rpb24iOiIqIiwiZmVlZF9pZCI6IioifQ."
        .. "Wtg5g60pWUfHIdnD3x2-lT7xH54FJeCkSzFnDju18mg",
        http.jwt('{"resource":"*","action":"*","feed_id":"*"}', secret))
    end)
  end)

  describe("api_key", function()
    it("missing gives 401 code 2 ApiKeyException", function()
      local st, body = api:call("GET", "user/alice/", { api_key = false })
      expect_error(401, 2, st, body)
      assert.are.equal("ApiKeyException", body.exception)
    end)

    it("wrong gives 401 code 2", function()
      expect_error(401, 2, api:call("GET", "user/alice/", { api_key = "not-the-key" }))
    end)

    it("is checked before the token", function()
      expect_error(401, 2, api:call("GET", "user/alice/", { api_key = "nope", auth = false }))
    end)
  end)

  describe("headers", function()
    it("a missing Authorization header gives 401 code 3", function()
      expect_error(401, 3, api:call("GET", "user/alice/", { auth = false, headers = { ["stream-auth-type"] = "jwt" } }))
    end)

    it("a missing stream-auth-type header gives 401 code 3", function()
      expect_error(401, 3, api:call("GET", "user/alice/", { auth = false, headers = { Authorization = api:token() } }))
    end)

    it("stream-auth-type other than jwt gives 401 code 3, any case of jwt works", function()
      expect_error(401, 3, api:call("GET", "user/alice/", { headers = { ["stream-auth-type"] = "simple" } }))
      assert.are.equal(200, (api:call("GET", "user/alice/", { headers = { ["stream-auth-type"] = "JWT" } })))
    end)

    it("a 'Bearer ' prefix gives 403 code 17 (the service expects the bare token)", function()
      local st, body = api:call("GET", "user/alice/", { headers = { Authorization = "Bearer " .. api:token() } })
      expect_error(403, 17, st, body)
      assert.matches("Bearer", body.detail)
    end)
  end)

  describe("token verification", function()
    it("accepts the claim sets of all official clients", function()
      for _, claims in ipairs({
        '{"resource":"users","action":"*","feed_id":"*"}',
        '{"resource":"*","action":"*","feed_id":"*"}',
        '{"resource":"*","action":"*","feed_id":"*","user_id":"*"}',
        '{"resource":"users"}',
      }) do
        assert.are.equal(200, (api:call("GET", "user/alice/", { token = api:token(claims) })), claims)
      end
    end)

    it("accepts Java-style per-method actions and refuses a wrong one", function()
      local read = api:token('{"resource":"users","action":"read","feed_id":"*"}')
      local write = api:token('{"resource":"users","action":"write","feed_id":"*"}')
      local delete = api:token('{"resource":"users","action":"delete","feed_id":"*"}')
      assert.are.equal(200, (api:call("GET", "user/alice/", { token = read })))
      assert.are.equal(201, (api:call("POST", "user/", { token = write, body = '{"id":"java-1"}' })))
      assert.are.equal(201, (api:call("PUT", "user/java-1/", { token = write, body = '{"data":{}}' })))
      assert.are.equal(200, (api:call("DELETE", "user/java-1/", { token = delete })))
      expect_error(403, 17, api:call("GET", "user/alice/", { token = write }))
      expect_error(403, 17, api:call("DELETE", "user/alice/", { token = read }))
    end)

    it("a wrong secret gives 403 code 17 NotAllowedException", function()
      local st, body = api:call("GET", "user/alice/", { token = http.jwt(http.SERVER_CLAIMS, "wrong-secret") })
      expect_error(403, 17, st, body)
      assert.are.equal("NotAllowedException", body.exception)
    end)

    it("a tampered payload gives 403 code 17", function()
      local h, _, sig = api:token():match("^([^.]+)%.([^.]+)%.([^.]+)$")
      local forged = h .. "." .. http.b64url('{"resource":"*","action":"*","feed_id":"*","x":1}') .. "." .. sig
      expect_error(403, 17, api:call("GET", "user/alice/", { token = forged }))
    end)

    it("malformed tokens give 403 code 17", function()
      local good = api:token()
      for _, t in ipairs({ "garbage", "a.b", "a.b.c.d", good .. "=", good:gsub("%.", "..", 1),
        good:gsub("-", "+"):gsub("_", "/") .. "+/", "e30.e30.", "!!.!!.!!" }) do
        expect_error(403, 17, api:call("GET", "user/alice/", { token = t }))
      end
    end)

    it("refuses alg none (unsigned and signed) with 403 code 17", function()
      local claims = http.b64url(http.SERVER_CLAIMS)
      local none = http.b64url('{"alg":"none","typ":"JWT"}') .. "." .. claims .. "."
      expect_error(403, 17, api:call("GET", "user/alice/", { token = none }))
      local signed_none = http.jwt(http.SERVER_CLAIMS, s.api_secret, '{"alg":"none","typ":"JWT"}')
      expect_error(403, 17, api:call("GET", "user/alice/", { token = signed_none }))
    end)

    it("refuses other algorithms (HS512, RS256, hs256) with 403 code 17", function()
      for _, alg in ipairs({ "HS512", "RS256", "hs256" }) do
        local t = http.jwt(http.SERVER_CLAIMS, s.api_secret, '{"alg":"' .. alg .. '","typ":"JWT"}')
        expect_error(403, 17, api:call("GET", "user/alice/", { token = t }))
      end
    end)

    it("honours exp: expired gives 403 code 17, future is accepted", function()
      local past = api:token('{"resource":"*","action":"*","feed_id":"*","exp":' .. (os.time() - 10) .. '}')
      local future = api:token('{"resource":"*","action":"*","feed_id":"*","exp":' .. (os.time() + 3600) .. '}')
      local st, body = api:call("GET", "user/alice/", { token = past })
      expect_error(403, 17, st, body)
      assert.matches("expired", body.detail)
      assert.are.equal(200, (api:call("GET", "user/alice/", { token = future })))
    end)

    it("refuses a token without resource or user_id, or with another resource", function()
      expect_error(403, 17, api:call("GET", "user/alice/", { token = api:token('{"action":"*"}') }))
      expect_error(403, 17, api:call("GET", "user/alice/", { token = api:token('{"resource":"feed","action":"*"}') }))
    end)
  end)

  describe("user tokens", function()
    local alice

    setup(function()
      alice = api:token('{"user_id":"alice"}')
    end)

    it("may get, get-or-create, update and delete their own user", function()
      local own = api:token('{"user_id":"carol"}')
      assert.are.equal(201, (api:call("POST", "user/",
        { token = own, query = "get_or_create=true", body = '{"id":"carol","data":{"v":1}}' })))
      assert.are.equal(201, (api:call("POST", "user/",
        { token = own, query = "get_or_create=true", body = '{"id":"carol","data":{"v":2}}' })))
      assert.are.equal(200, (api:call("GET", "user/carol/", { token = own })))
      local st, body = api:call("PUT", "user/carol/", { token = own, body = '{"data":{"v":3}}' })
      assert.are.equal(201, st)
      assert.are.same({ v = 3 }, body.data)
      assert.are.equal(200, (api:call("DELETE", "user/carol/", { token = own })))
    end)

    it("accept extra claims such as iat", function()
      local t = api:token('{"user_id":"alice","iat":' .. os.time() .. '}')
      assert.are.equal(200, (api:call("GET", "user/alice/", { token = t })))
    end)

    it("may read another user's profile", function()
      local st, body = api:call("GET", "user/bob/", { token = alice })
      assert.are.equal(200, st)
      assert.are.same({ who = "bob" }, body.data)
    end)

    it("may not create, get-or-create, update or delete another user (403 code 17)", function()
      expect_error(403, 17, api:call("POST", "user/", { token = alice, body = '{"id":"mallory"}' }))
      expect_error(403, 17, api:call("POST", "user/",
        { token = alice, query = "get_or_create=true", body = '{"id":"bob"}' }))
      expect_error(403, 17, api:call("PUT", "user/bob/", { token = alice, body = '{"data":{"who":"alice"}}' }))
      expect_error(403, 17, api:call("DELETE", "user/bob/", { token = alice }))
      local _, body = api:call("GET", "user/bob/")
      assert.are.same({ who = "bob" }, body.data)
      assert.are.equal(404, (api:call("GET", "user/mallory/")))
    end)
  end)

  it("logged no unexpected Lua errors", function()
    local log = s:error_log()
    assert.is_nil(log:find("unexpected error", 1, true), log)
    assert.is_nil(log:find("lua entry thread aborted", 1, true), log)
  end)
end)
