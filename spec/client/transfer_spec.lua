-- stream.core's http over real HTTP (a one-shot peer that records the exact
-- bytes): what a transfer hands back, and that a pooled easy handle carries
-- nothing from one request into the next.
local core = require "stream.core"
local capture = require "helpers.capture"

local header = capture.header

local function http(opts)
  local o = {
    timeout = 5, connect_timeout = 5, max_response_bytes = 1048576,
    headers = { "Accept: application/json", "Expect:" },
    body_headers = { "Content-Type: application/json" },
  }
  for k, v in pairs(opts or {}) do o[k] = v end
  return core.http_new(o)
end

describe("http:request's answer", function()
  it("maps the answer's headers, lower-cased, when they are read", function()
    local peer = capture.start({ status = 429, body = "{}",
      headers = { ["X-RateLimit-Reset"] = "1700000000", ["X-Other"] = " padded\t" } })
    local h = http()
    local res = assert(h:request("GET", peer.url .. "/a/"))
    assert.equal(429, res.status)
    assert.equal("{}", res.body)
    assert.equal("1700000000", res.headers["x-ratelimit-reset"])
    assert.equal("padded", res.headers["x-other"])
    assert.equal("2", res.headers["content-length"])
    assert.equal(res.headers, res.headers)   -- built once, then kept
    assert.is_nil(res.missing)
    h:close()
  end)
end)
