-- Files and open graph inside a real nginx (one worker), through the ngx transport: a
-- file upload streamed from disk (the exact multipart bytes at a recording peer; the
-- stored bytes at the local server) and an og call for a page a loopback peer serves.
-- The calls run in nginx (openresty/files_og_cases.lua); this file starts the servers
-- and checks the summaries.
local S = require "openresty.support"
local server = require "helpers.server"
local recorder = require "helpers.recorder"
local capture = require "helpers.capture"

local HTTP = [[
  server {
    listen 127.0.0.1:@PORT@;
    location = /files { content_by_lua_block { require("openresty.files_og_cases").run() } }
  }
]]

local PAGE = '<html><head><meta property="og:title" content="Inside nginx"></head><body></body></html>'

local function escape(s)
  return (s:gsub("[^%w%-%._~]", function(ch) return string.format("%%%02X", ch:byte()) end))
end

describe("files and og inside nginx", function()
  local s, ng, path, bytes

  setup(function()
    s = server.start()
    ng = S.nginx(HTTP)
    path = os.tmpname()
    local parts = {}
    for i = 1, 20000 do parts[i] = string.format("%09d\n", i) end
    bytes = table.concat(parts) .. "\0\255"  -- 200 KB: several 64 KiB pieces
    local f = assert(io.open(path, "wb"))
    f:write(bytes)
    f:close()
    os.execute("chmod 644 " .. path)
  end)

  teardown(function()
    if path then os.remove(path) end
    if ng then ng:stop() end
    if s then s:stop() end
  end)

  local function run(base, key, secret, page)
    local status, res, _, raw = S.json_request("GET", ng.url .. "/files?base=" .. escape(base) .. "&key=" .. key
      .. "&secret=" .. secret .. "&path=" .. escape(path) .. "&page=" .. escape(page or ""))
    assert.equal(200, status, raw)
    assert.equal("ngx", res.transport)
    return res
  end

  it("streams the file's bytes exactly framed", function()
    local peer = recorder.start()
    local res = run(peer.url, "key", "secret-for-files-in-nginx-0123456")
    local r = peer.requests()[1]
    peer.stop()
    assert.is_nil(res.upload_error)
    assert.equal("invalid", res.missing)
    local b = r.head:match("\r\n[Cc]ontent%-[Tt]ype: multipart/form%-data; boundary=([^\r\n]+)")
    assert.truthy(b)
    assert.equal("--" .. b .. '\r\nContent-Disposition: form-data; name="file"; filename="streamed.bin"'
      .. "\r\nContent-Type: application/octet-stream\r\n\r\n" .. bytes .. "\r\n--" .. b .. "--\r\n", r.body)
    assert.equal(1, #recorder.values(r.head, "Content-Type"))
  end)

  it("uploads to the local server and scrapes a loopback page", function()
    local page = capture.start({ headers = { ["Content-Type"] = "text/html" }, body = PAGE, count = 4 })
    local res = run(s.base_url, s.api_key, s.api_secret, page.url .. "/p")
    page.stop()
    assert.is_nil(res.upload_error, res.upload_error)
    local status, body = S.request("GET", res.file)
    assert.equal(200, status)
    assert.equal(bytes, body)
    assert.is_nil(res.og_error, res.og_error)
    assert.equal("Inside nginx", res.title)
  end)
end)
