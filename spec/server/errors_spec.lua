-- Error answers of the local server: body shape, validation (400), body size (413),
-- unknown routes (404), methods (405) and slash-less redirects (301).

local server = require "helpers.server"
local http = require "helpers.http"
local cjson = require "cjson"

local MORE_INFO = "https://getstream.io/docs/api_error_responses"

describe("local server errors", function()
  local s, api

  setup(function()
    s = server.start()
    api = http.api(s)
  end)

  teardown(function()
    if s then s:stop() end
  end)

  local function assert_stream_error(status, code, st, body, raw, headers)
    assert.are.equal(status, st)
    assert.is_table(body, "not JSON: " .. tostring(raw))
    assert.are.equal(status, body.status_code)
    assert.are.equal(code, body.code)
    assert.is_string(body.detail)
    assert.is_string(body.exception)
    assert.matches("^%d+%.%d%dms$", body.duration)
    assert.are.equal(MORE_INFO, body.more_info)
    if headers then
      assert.matches("^application/json", headers["content-type"])
      assert.is_string(headers["x-ratelimit-limit"])
      assert.is_string(headers["x-stream-local-connection"])
    end
    return body
  end

  describe("error body", function()
    it("has detail, status_code, code, exception, duration, more_info in that order", function()
      local _, _, raw = api:call("GET", "user/nobody/")
      assert.matches('^{"detail":"[^"]*","status_code":404,"code":16,"exception":"DoesNotExistException",'
        .. '"duration":"[^"]+","more_info":"[^"]+"}$', raw)
    end)

    it("carries exception_fields only on validation errors", function()
      local _, body = api:call("GET", "user/nobody/")
      assert.is_nil(body.exception_fields)
      _, body = api:call("POST", "user/", { body = '{"id":"a b"}' })
      local names = {}
      for name in pairs(body.exception_fields) do names[#names + 1] = name end
      assert.are.same({ "id" }, names)
      assert.is_string(body.exception_fields.id[1])
    end)
  end)

  describe("400 InputException", function()
    it("for malformed JSON bodies", function()
      for _, b in ipairs({ "{", '{"id":"x",}', "{'id':'x'}", '{"id":"x"} extra', '{"id":"\\x"}',
        '{"id":"x","data":{"n":01}}', '{"id":"x","data":{"s":"\\ud800"}}', '{"id":"x","data":{"s":"\192\175"}}',
        '{"id":"x","data":{"a":1,"a":2}}', "" }) do
        local st, body, raw, headers = api:call("POST", "user/", { body = b })
        assert_stream_error(400, 4, st, body, raw, headers)
        assert.are.equal("InputException", body.exception)
      end
    end)

    it("for a body that is JSON but not an object", function()
      for _, b in ipairs({ "[]", '"x"', "1", "null" }) do
        assert_stream_error(400, 4, api:call("POST", "user/", { body = b }))
      end
    end)

    it("for non-object data with exception_fields.data", function()
      for _, d in ipairs({ '"a string"', "[1,2]", "[]", "12", "true" }) do
        local body = assert_stream_error(400, 4, api:call("POST", "user/", { body = '{"id":"nd","data":' .. d .. '}' }))
        assert.is_table(body.exception_fields.data)
      end
    end)

    it("for data nested deeper than 1024 levels; the 1000 levels a client may send are accepted", function()
      local deep = string.rep('{"a":', 1024) .. "1" .. string.rep("}", 1024)
      assert_stream_error(400, 4, api:call("POST", "user/", { body = '{"id":"deep","data":' .. deep .. '}' }))
      local ok = string.rep('{"a":', 1000) .. "1" .. string.rep("}", 1000)
      local st, _, raw = api:call("POST", "user/", { body = '{"id":"deep-ok","data":' .. ok .. '}' })
      assert.are.equal(201, st, raw)
      local _, _, got = api:call("GET", "user/deep-ok/")
      assert.truthy(got:find(ok, 1, true))
    end)

    it("for a user object over 10240 bytes, with exception_fields.data; 10240 exactly is fine", function()
      local id = "big"
      local overhead = #('{"id":"big","data":{"s":""}}')
      local fits = string.rep("x", 10240 - overhead)
      assert.are.equal(10240, #('{"id":"' .. id .. '","data":{"s":"' .. fits .. '"}}'))
      assert.are.equal(201, (api:call("POST", "user/", { body = '{"id":"big","data":{"s":"' .. fits .. '"}}' })))
      local body = assert_stream_error(400, 4, api:call("POST", "user/", {
        body = '{"id":"big2","data":{"s":"' .. fits .. 'xx"}}' }))
      assert.is_table(body.exception_fields.data)
      body = assert_stream_error(400, 4, api:call("PUT", "user/big/", { body = '{"data":{"s":"' .. fits .. 'x"}}' }))
      assert.is_table(body.exception_fields.data)
    end)

    it("measures the size on the compact form, not the sent whitespace", function()
      local overhead = #('{"id":"ws","data":{"s":""}}')
      local fits = string.rep("y", 10240 - overhead)
      local padded = '{ "id" : "ws" ,\n "data" : { "s" : "' .. fits .. '" } ' .. string.rep(" ", 500) .. '}'
      assert.are.equal(201, (api:call("POST", "user/", { body = padded })))
    end)
  end)

  describe("413", function()
    it("answers a body over 1 MiB with code 18 and a Stream body", function()
      local big = '{"id":"huge","data":{"s":"' .. string.rep("z", 1100000) .. '"}}'
      local st, body, raw, headers = api:call("POST", "user/", { body = big })
      assert_stream_error(413, 18, st, body, raw, headers)
      assert.are.equal("InputException", body.exception)
    end)

    it("does the same for a chunked body over 1 MiB", function()
      local big = string.rep("z", 1100000)
      local st, body, raw, headers = api:call("POST", "user/", { body = big,
        headers = { ["Transfer-Encoding"] = "chunked" } })
      assert_stream_error(413, 18, st, body, raw, headers)
    end)
  end)

  describe("text from the URL", function()
    it("is echoed as valid UTF-8 even when the URL carries invalid bytes", function()
      local st, body, raw = api:call("GET", "user/a%FFb/")
      assert.are.equal(404, st)
      assert.is_table(body, raw)
      assert.is_truthy(utf8.len(raw), "invalid UTF-8 in " .. raw)
      assert.matches("a\239\191\189b", body.detail, 1, true)
    end)
  end)

  describe("404", function()
    it("answers unknown routes with a Stream body", function()
      for _, path in ipairs({ "/", "/api/v1.0/", "/api/v1.0/feeds/user/1/", "/api/v2.0/user/",
        "/api/v1.0/user/a/b/", "/api/v1.0/user//", "/api/v1.0/userx/" }) do
        local st, raw, headers = http.request("GET", s.url .. path .. "?api_key=" .. s.api_key)
        local ok, decoded = pcall(cjson.decode, raw)
        assert_stream_error(404, 16, st, ok and decoded or nil, raw, headers)
      end
    end)

    it("answers unknown routes before checking credentials", function()
      assert.are.equal(404, (http.request("GET", s.url .. "/nothing/here")))
    end)
  end)

  describe("405", function()
    it("answers a known path with an unsupported method, with Allow", function()
      for _, c in ipairs({ { "PATCH", "user/x/", "GET, PUT, DELETE" }, { "GET", "user/", "POST" },
        { "PUT", "users/", "GET, POST, DELETE" }, { "POST", "user/x/", "GET, PUT, DELETE" },
        { "OPTIONS", "user/", "POST" }, { "HEAD", "user/x/" } }) do
        local st, body, raw, headers = api:call(c[1], c[2], { body = c[1] ~= "HEAD" and "{}" or nil })
        assert.are.equal(405, st, c[1] .. " " .. c[2])
        if c[3] then
          assert_stream_error(405, 1, st, body, raw, headers)
          assert.are.equal(c[3], headers["allow"])
        end
      end
    end)

    it("answers an unknown method name with a Stream body", function()
      local st, body, raw = api:call("FROB", "user/x/")
      assert_stream_error(405, 1, st, body, raw)
    end)
  end)

  describe("paths without the trailing slash", function()
    it("redirect (301) to the slash path, keeping the query", function()
      for _, c in ipairs({ { "POST", "user" }, { "GET", "user/alice" }, { "DELETE", "users" } }) do
        local st, body, _, headers = api:call(c[1], c[2], { query = "x=1" })
        assert.are.equal(301, st)
        assert.are.equal("/api/v1.0/" .. c[2] .. "/?api_key=" .. s.api_key .. "&x=1", headers["location"])
        assert.are.equal(301, body.status_code)
      end
    end)
  end)

  it("logged no unexpected Lua errors", function()
    local log = s:error_log()
    assert.is_nil(log:find("unexpected error", 1, true), log)
    assert.is_nil(log:find("lua entry thread aborted", 1, true), log)
  end)
end)
