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
end)
