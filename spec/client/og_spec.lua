-- client:og: the request on the wire (a recording peer), the URL checks
-- made before sending, retries, and the local server scraping a page a
-- loopback peer serves (never a public host).
local stream = require "stream"
local server = require "helpers.server"
local recorder = require "helpers.recorder"
local capture = require "helpers.capture"

local SECRET = "secret-for-og-0123456789abcdef01"

local PAGE = [[<!DOCTYPE html>
<html><head>
<title>Plain title</title>
<meta property="og:title" content="The OG title">
<meta property="og:type" content="article">
<meta property="og:description" content="A page about things.">
<meta property="og:site_name" content="Loopback">
<meta property="og:image" content="http://127.0.0.1/cat.png">
<meta property="og:image:width" content="640">
<meta property="og:image:height" content="480">
</head><body>hello</body></html>]]

describe("og on the wire", function()
  local peer, c

  before_each(function()
    peer = recorder.start()
    c = stream.connect("key", SECRET, "1", { base_url = peer.url, retries = 0 })
  end)
  after_each(function()
    c:close()
    peer.stop()
  end)

  it("asks og/ with the URL escaped, as a GET without a body", function()
    assert(c:og("https://example.com/a?x=1&y=%20"))
    assert(c:og("HTTP://127.0.0.1:8080"))
    local reqs = peer.requests()
    assert.equal("GET /api/v1.0/og/?api_key=key&url=https%3A%2F%2Fexample.com%2Fa%3Fx%3D1%26y%3D%2520 HTTP/1.1",
      reqs[1].head:match("^([^\r\n]*)"))
    assert.equal("GET /api/v1.0/og/?api_key=key&url=HTTP%3A%2F%2F127.0.0.1%3A8080 HTTP/1.1",
      reqs[2].head:match("^([^\r\n]*)"))
    assert.equal("", reqs[1].body)
    assert.same({}, recorder.values(reqs[1].head, "Content-Type"))
  end)

  it("refuses a URL that is not http(s) with nothing sent, and raises for misuse", function()
    for _, url in ipairs({ "", "ftp://example.com/", "example.com", "http://", "http:///x",
      "https://exa mple.com/", "http://example.com/\r\nX: y", "javascript:alert(1)" }) do
      local res, err = c:og(url)
      assert.is_nil(res, url)
      assert.equal("invalid", err.kind)
      assert.equal("url", next(err.fields))
      assert.equal("og/", err.path)
    end
    assert.has_error(function() c:og() end, "client:og: url must be a string, got nil")
    assert.has_error(function() c.og("http://x/") end, "client:og: called with '.' instead of ':'")
    assert.same({}, peer.requests())
  end)
end)

describe("og retries", function()
  it("is sent again like a read", function()
    local peer = capture.start({ status = 503, body = '{"detail":"busy"}', count = 3 })
    local c = stream.connect("key", SECRET, "1", { base_url = peer.url, retries = 2 })
    local res, err = c:og("http://127.0.0.1/")
    assert.is_nil(res)
    assert.equal(503, err.status)
    assert.equal(3, err.attempts)
    assert.is_true(err.retryable)
    c:close()
    peer.stop()
  end)
end)

describe("og against the local server", function()
  local s, c

  setup(function()
    s = server.start()
    c = stream.connect(s.api_key, s.api_secret, "1", { base_url = s.base_url })
  end)
  teardown(function()
    if c then c:close() end
    if s then s:stop() end
  end)

  it("scrapes a page served on loopback", function()
    local page = capture.start({ headers = { ["Content-Type"] = "text/html; charset=utf-8" }, body = PAGE, count = 4 })
    local url = page.url .. "/article?id=1"
    local res = assert(c:og(url))
    assert.equal("The OG title", res.title)
    assert.equal("article", res.type)
    assert.equal("A page about things.", res.description)
    assert.equal("Loopback", res.site_name)
    assert.equal(url, res.original_url)
    assert.is_table(res.images)
    assert.equal("http://127.0.0.1/cat.png", res.images[1].image)
    assert.equal(640, res.images[1].width)
    assert.equal(480, res.images[1].height)
    assert.truthy(res.duration)
    page.stop()
  end)

  it("answers 400 for a page without Open Graph data", function()
    local page = capture.start({ headers = { ["Content-Type"] = "application/octet-stream" }, body = "\0\1\2",
      count = 4 })
    local res, err = c:og(page.url .. "/file.bin")
    assert.is_nil(res)
    assert.equal(400, err.status)
    assert.truthy(tostring(err):find("couldn't find og data", 1, true))
    page.stop()
  end)
end)
