-- Ids, keys and options can never change where a request goes or add
-- headers to it: hostile values are refused before anything is sent, and
-- what is sent is escaped.
local stream = require "stream"
local capture = require "helpers.capture"

local HOSTILE_IDS = {
  "../admin", "a/b", "..", "a?x=1", "a#frag", "a%2Fb", "a b", "a\r\nX-Injected: 1",
  "a&api_key=other", "a;b", "\0", "caf\195\169", "", string.rep("a", 256), "a\\b",
}

local header = capture.header

describe("request target", function()
  it("is never changed by an id: every method refuses, nothing is sent", function()
    local c = stream.connect("k", "secret-0123456789", "1", { base_url = "http://127.0.0.1:9/" })
    local calls = {
      function(id) return c:user(id):get() end,
      function(id) return c:user(id):create({}) end,
      function(id) return c:user(id):get_or_create({}) end,
      function(id) return c:user(id):update({}) end,
      function(id) return c:user(id):delete() end,
      function(id) return c.users:get(id) end,
      function(id) return c.users:get_many({ "good", id }) end,
      function(id) return c.users:delete_many({ id, "good" }) end,
      function(id) return c.users:add_many({ { id = "good" }, { id = id } }) end,
      function(id) return c:create_user_token(id) end,
    }
    for _, id in ipairs(HOSTILE_IDS) do
      for i, call in ipairs(calls) do
        local res, err = call(id)
        assert.is_nil(res, "call " .. i .. " accepted " .. string.format("%q", id))
        assert.equal("invalid", err.kind)
      end
    end
    assert.equal(0, c:stats().requests)
    c:close()
  end)

  it("puts the id in the path and the api key in the query, escaped", function()
    local peer = capture.start({ status = 200, body = '{"id":"a-B_9","data":{}}' })
    local c = stream.connect("k&api_key=other#x y", "secret-0123456789", "1", { base_url = peer.url })
    assert(c:user("a-B_9"):get())
    c:close()
    local req = peer.requests()[1]
    local line = req:match("^[^\r\n]*")
    assert.equal("GET /api/v1.0/user/a-B_9/?api_key=k%26api_key%3Dother%23x%20y HTTP/1.1", line)
    peer.stop()
  end)

  it("refuses header values with line breaks and URLs with a query", function()
    assert.has_error(function()
      stream.connect("k", "secret-0123456789", "1", { user_agent = "x\r\nX-Injected: 1" })
    end, "stream.connect: option 'user_agent' must be a non-empty string without control characters")
    assert.has_error(function()
      stream.connect("k\r\nX-Injected: 1", "secret-0123456789", "1")
    end, "stream.connect: api_key must be a non-empty string without control characters")
    assert.has_error(function()
      stream.connect("k", "secret-0123456789", "1", { base_url = "http://127.0.0.1:9/?x=1" })
    end)
    assert.has_error(function()
      stream.connect("k", "secret-0123456789", "1", { base_url = "http://127.0.0.1:9/#x" })
    end)
  end)

  it("sends data with path-like keys only in the body", function()
    local peer = capture.start({ status = 201, body = '{"id":"u","data":{}}' })
    local c = stream.connect("k", "secret-0123456789", "1", { base_url = peer.url })
    assert(c:user("u"):create({ ["../x"] = "?a=b", ["\r\nX-Injected"] = "1" }))
    c:close()
    local req = peer.requests()[1]
    assert.equal("POST /api/v1.0/user/?api_key=k HTTP/1.1", req:match("^[^\r\n]*"))
    assert.is_nil(header(req, "X%-Injected"))
    peer.stop()
  end)
end)
