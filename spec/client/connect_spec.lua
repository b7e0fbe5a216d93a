-- stream.connect and the environment: STREAM_BASE_URL / STREAM_REGION
-- whatever the credentials, user tokens that cannot work refused.
local stream = require "stream"
local H = require "helpers.client"

local child = H.child

describe("stream.connect", function()
  it("uses STREAM_BASE_URL with explicit credentials; an explicit base_url still wins", function()
    local out = child("STREAM_BASE_URL=http://127.0.0.1:9/x STREAM_REGION=eu-west", [[
      local stream = require "stream"
      io.write(stream.connect("k", "a-secret-0123456789").base_url, " ")
      io.write(stream.connect("k", "a-secret-0123456789", "1", { base_url = "http://h:1" }).base_url, " ")
      io.write(stream.connect("k", "a-secret-0123456789", { location = "us-east" }).base_url, "\n")
    ]])
    assert.equal("http://127.0.0.1:9/x/v1.0/ http://h:1/api/v1.0/ "
      .. "https://us-east-api.stream-io-api.com/api/v1.0/\nrc=0\n", out)
    out = child("STREAM_REGION=eu-west", [[
      io.write(require("stream").connect("k", "a-secret-0123456789").base_url, "\n")
    ]])
    assert.equal("https://eu-west-api.stream-io-api.com/api/v1.0/\nrc=0\n", out)
  end)

  it("refuses a user token without a user_id claim, naming user_id and not the token", function()
    local function b64(s) return (stream.core.b64url_encode(s)) end
    local token = b64('{"alg":"HS256","typ":"JWT"}') .. "." .. b64('{"role":"admin"}') .. ".c2lnbmF0dXJl"
    local ok, msg = pcall(stream.connect, "k", token)
    assert.is_false(ok)
    assert.matches("user_id", msg)
    assert.is_nil(msg:find(token, 1, true))
  end)

  it("refuses a token scoped to every feed, which only a server may hold", function()
    for _, claims in ipairs({
      '{"resource":"*","action":"*","feed_id":"*"}',
      '{"resource":"feed","action":"read"}',
      '{"action":"read","feed_id":"useralice"}',
      '{"resource":"*","feed_id":""}',
    }) do
      local token = stream.core.hs256("a-secret-0123456789", claims)
      local ok, msg = pcall(stream.connect, "k", token)
      assert.is_false(ok, claims)
      assert.matches("neither a user_id claim %(a string%) nor a feed scope", msg)
      assert.is_nil(msg:find(token, 1, true))
    end
  end)

  it("accepts a feed-scoped token: a client limited to that feed, with no user", function()
    local c = stream.connect("k", "a-secret-0123456789", "1", { base_url = "http://127.0.0.1:9/" })
    local f = stream.connect("k", assert(c:feed("user", "alice"):token({ read_only = true })), "1",
      { base_url = "http://127.0.0.1:9/" })
    assert.equal("feed_token", f.auth_mode)
    assert.equal("useralice", f.feed_scope)
    assert.is_nil(f.current_user)
    -- a token with a user and a feed scope is a user token, as before
    local u = stream.connect("k", stream.core.hs256("a-secret-0123456789",
      '{"user_id":"erin","feed_id":"usererin","resource":"*"}'), "1", { base_url = "http://127.0.0.1:9/" })
    assert.equal("user_token", u.auth_mode)
    assert.equal("erin", u.current_user.id)
    c:close(); f:close(); u:close()
  end)
end)
