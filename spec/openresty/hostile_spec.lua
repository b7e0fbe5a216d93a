-- The ngx transport inside a real nginx (one worker) against hostile and
-- broken peers (helpers/hostile.lua, lua-socket children): the deadline
-- against dripping bytes, the header cap, malformed answers, and
-- Content-Length: 0 on body-less writes. The cases run in nginx
-- (openresty/hostile_cases.lua); this file starts nginx and the peers.
local S = require "openresty.support"
local hostile = require "helpers.hostile"
local capture = require "helpers.capture"

local HTTP = [[
  server {
    listen 127.0.0.1:@PORT@;
    location = /t { content_by_lua_block { require("openresty.hostile_cases").run() } }
  }
]]

describe("ngx transport against a hostile server", function()
  local ng

  setup(function() ng = S.nginx(HTTP) end)
  teardown(function() if ng then ng:stop() end end)

  local function case(name, peer, query)
    local status, res, _, raw = S.json_request("GET", ng.url .. "/t?case=" .. name .. "&port=" .. peer.port
      .. (query or ""), { timeout = 15 })
    assert.equal(200, status, raw)
    assert.is_nil(res.raised, res.raised)
    return res
  end

  it("timeout bounds one attempt from its start to the last byte, however slowly bytes come", function()
    for _, mode in ipairs({ "drip", "drip_head" }) do
      local peer = hostile.start(mode)
      local r = case("get", peer, "&timeout=1")
      peer.stop()
      assert.equal("timeout", r.kind, mode)
      assert.is_true(r.seconds < 2.5, mode .. " took " .. r.seconds .. " s with timeout = 1")
    end
  end)

  it("total_timeout bounds the whole call, retries included", function()
    local peer = hostile.start("drip")
    local r = case("get", peer, "&timeout=1&total=2.5&retries=10")
    peer.stop()
    assert.equal("timeout", r.kind)
    assert.is_true(r.attempts >= 2, "attempts: " .. r.attempts)
    assert.is_true(r.seconds < 4, "took " .. r.seconds .. " s with total_timeout = 2.5")
  end)

  it("caps the answer's header section at max_header_bytes: 'limit', not retried", function()
    for _, mode in ipairs({ "big_line", "many_lines" }) do
      local peer = hostile.start(mode)
      local r = case("get", peer, "&retries=3")
      local seen = #peer.requests()
      peer.stop()
      assert.equal("transport", r.kind, mode)
      assert.equal("limit", r.reason, mode)
      assert.matches("max_header_bytes", r.detail, 1, true)
      assert.is_false(r.retryable, mode)
      assert.equal(1, r.attempts, mode)
      assert.equal(1, seen, mode)
    end
    local peer = hostile.start("many_lines")
    local r = case("get", peer, "&max_header=131072")
    peer.stop()
    assert.is_true(r.ok, r.detail)
  end)

  local malformed = {
    status20 = { "malformed", "status line" },
    bad_length = { "malformed", "Content%-Length" },
    huge_length = { "limit", "max_response_bytes" },
  }
  for mode, want in pairs(malformed) do
    it("calls a " .. mode .. " answer '" .. want[1] .. "', as the curl transport does, never retried", function()
      local peer = hostile.start(mode)
      local r = case("get", peer, "&retries=3")
      local seen = #peer.requests()
      peer.stop()
      assert.equal("transport", r.kind)
      assert.equal(want[1], r.reason)
      assert.matches(want[2], r.detail)
      assert.is_false(r.retryable)
      assert.equal(1, r.attempts)
      assert.equal(1, seen)
      assert.matches("^failed: stream: transport: ", r.text)
    end)
  end

  it("sends Content-Length: 0 with a PUT or POST without a body (reactions:restore)", function()
    local peer = capture.start({ body = "{}", count = 2 })
    local r = case("empty_bodies", peer)
    local seen = peer.requests()
    peer.stop()
    assert.is_true(r.restore.ok, r.restore.detail)
    assert.is_true(r.post.ok, r.post.detail)
    assert.matches("^PUT /api/v1.0/reaction/r%-1/restore/%?", seen[1])
    assert.equal("0", capture.header(seen[1], "Content%-Length"))
    assert.matches("^POST /api/v1.0/x/%?", seen[2])
    assert.equal("0", capture.header(seen[2], "Content%-Length"))
  end)

  it("leaves no Lua errors in nginx's error log", function()
    local log = ng:error_log()
    assert.is_nil(log:match("[^\n]*runtime error[^\n]*"))
  end)
end)
