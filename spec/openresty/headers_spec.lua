-- A request's own headers (req.headers) and bodies of any bytes through the
-- ngx transport inside a real nginx (one worker), against a peer that
-- records every request byte for byte (helpers/recorder.lua). The cases run
-- in nginx (openresty/headers_cases.lua); the same through the curl
-- transport are spec/transport_headers_spec.lua.
local S = require "openresty.support"
local recorder = require "helpers.recorder"
local cases = require "openresty.headers_cases"

local values = recorder.values

local HTTP = [[
  server {
    listen 127.0.0.1:@PORT@;
    location = /t { content_by_lua_block { require("openresty.headers_cases").run() } }
  }
]]

describe("ngx transport: a request's own headers", function()
  local ng, peer

  setup(function()
    ng = S.nginx(HTTP)
    peer = recorder.start()
  end)
  teardown(function()
    if ng then ng:stop() end
    if peer then peer.stop() end
  end)

  -- Runs the case; what it answered and the requests the peer recorded for it.
  local function case(name)
    local before = #peer.requests()
    local status, res, _, raw = S.json_request("GET", ng.url .. "/t?case=" .. name .. "&port=" .. peer.port,
      { timeout = 15 })
    assert.equal(200, status, raw)
    assert.is_nil(res.raised, res.raised)
    local seen = peer.requests()
    return res, { table.unpack(seen, before + 1) }
  end

  local function all_ok(res, n)
    assert.equal(n, #res)
    for i = 1, n do assert.equal(200, res[i].status, res[i].message) end
  end

  it("sends a request without req.headers as before, with an empty map the same bytes", function()
    local res, seen = case("plain")
    all_ok(res, 4)
    local get, post = seen[1].head, seen[2].head
    assert.same({ "a.b.c" }, values(get, "authorization"))
    assert.same({}, values(get, "content-type"))
    assert.same({ "application/json" }, values(post, "content-type"))
    assert.same({ "2" }, values(post, "content-length"))
    assert.equal(get, seen[3].head)
    assert.equal(post, seen[4].head)
  end)

  it("sends extra headers besides the transport's own, empty values and tabs as they are", function()
    local res, seen = case("extra")
    all_ok(res, 3)
    assert.same({ "t-1" }, values(seen[1].head, "x-trace"))
    assert.same({ "application/json" }, values(seen[1].head, "accept"))
    assert.same({ "" }, values(seen[2].head, "x-empty"))
    assert.same({ "a\tb \195\169" }, values(seen[3].head, "x-a"))
  end)

  it("replaces a fixed header of the same name in any case, never doubles it", function()
    local res, seen = case("replace")
    all_ok(res, 3)
    assert.same({ "multipart/form-data; boundary=----x1" }, values(seen[1].head, "content-type"))
    assert.same({ "5" }, values(seen[1].head, "content-length"))
    assert.same({ "image/png" }, values(seen[2].head, "accept"))
    assert.same({ "other/2" }, values(seen[2].head, "user-agent"))
    assert.same({ "a.b.c" }, values(seen[2].head, "authorization"))
    -- a PUT without a body is sent with an empty one, so with the body headers
    assert.same({ "text/plain" }, values(seen[3].head, "content-type"))
    assert.same({ "0" }, values(seen[3].head, "content-length"))
  end)

  it("sends bodies with NUL bytes byte-exact with their Content-Length", function()
    local res, seen = case("binary")
    all_ok(res, 2)
    for i = 1, 2 do
      assert.equal(cases.BINARY, seen[i].body)
      assert.same({ tostring(#cases.BINARY) }, values(seen[i].head, "content-length"))
    end
    assert.same({ "application/octet-stream" }, values(seen[2].head, "content-type"))
  end)

  it("refuses names and values HTTP does not allow, and the transport's own, sending nothing", function()
    local res, seen = case("invalid")
    for name in pairs(cases.BAD) do
      local r = res[name]
      assert.equal("invalid", r.kind, name)
      assert.is_false(r.sent, name)
      assert.equal("header", r.reason, name)
    end
    assert.matches("X-Evil", res.crlf.message, 1, true)
    assert.not_matches("Injected", res.crlf.message, 1, true)
    assert.equal("invalid", res.submitted.kind)
    assert.is_false(res.submitted.sent)
    assert.same({}, seen)
  end)

  it("leaves no Lua errors in nginx's error log", function()
    local log = ng:error_log()
    assert.is_nil(log:match("[^\n]*runtime error[^\n]*"))
  end)
end)
