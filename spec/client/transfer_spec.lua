-- stream.core's http over real HTTP (a one-shot peer that records the exact
-- bytes): what a transfer hands back, and that a pooled easy handle carries
-- nothing from one request into the next.
local core = require "stream.core"
local capture = require "helpers.capture"

local header = capture.header

local function http(opts)
  local o = {
    timeout = 5, connect_timeout = 5, max_response_bytes = 1048576,
    headers = { "Accept: application/json" },
    body_headers = { "Content-Type: application/json", "Expect:" },
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

describe("a pooled easy handle", function()
  -- One handle in the pool: every request below runs on the same one, in turn.
  it("carries no method, body or header of one request into the next", function()
    local calls = {
      { "POST", "/1/", '{"a":1}' },
      { "GET", "/2/" },
      { "POST", "/3/", '{"once":true}', true },
      { "DELETE", "/4/" },
      { "GET", "/5/" },
      { "PUT", "/6/", '{"b":2}' },
      { "POST", "/7/", '{"c":3}', true },
      { "PUT", "/8/", '{"d":4}' },
      { "DELETE", "/9/" },
      { "POST", "/10/", "", true },
      { "GET", "/11/" },
    }
    local peer = capture.start({ body = "{}", count = #calls })
    local h = http({ max_connections = 1 })
    for i, c in ipairs(calls) do
      local res, err = h:request(c[1], peer.url .. c[2], c[3], nil, c[4])
      assert(res, err and err.message)
      assert.equal(200, res.status, i)
    end
    local seen = peer.requests()
    assert.equal(#calls, #seen)
    for i, c in ipairs(calls) do
      local req = seen[i]
      assert.equal(c[1] .. " " .. c[2] .. " HTTP/1.1", req:match("^[^\r\n]*"), i)
      local body = req:match("\r\n\r\n(.*)$")
      if c[3] then
        assert.equal(tostring(#c[3]), header(req, "Content%-Length"), i)
        assert.equal("application/json", header(req, "Content%-Type"), i)
        assert.equal(c[3], body, i)
      else
        assert.is_nil(header(req, "Content%-Length"), i)
        assert.is_nil(header(req, "Content%-Type"), i)
        assert.is_nil(header(req, "Transfer%-Encoding"), i)
        assert.equal("", body, i)
      end
      assert.is_nil(header(req, "Expect"), i)
      assert.equal("application/json", header(req, "Accept"), i)
    end
    assert.equal(1, h:stats().connects)
    h:close()
  end)

  it("takes each request's own timeout, and the client's when it gives none", function()
    local server = require "helpers.server"
    local s = server.start({ faults = true })
    local h = http({ max_connections = 1, timeout = 5,
      headers = { "Accept: application/json", "X-Stream-Local-Delay: 400" } })
    local url = s.base_url .. "user/x/?api_key=" .. s.api_key
    local res, err = h:request("GET", url, nil, 0.05)
    assert.is_nil(res)
    assert.equal("timeout", err.kind)
    res, err = h:request("GET", url)            -- 400 ms, within the client's 5 s
    assert(res, err and err.message)
    res, err = h:request("GET", url, nil, 0.05)
    assert.is_nil(res)
    assert.equal("timeout", err.kind)
    h:close(); s:stop()
  end)
end)
