-- client.files and client.images: the multipart bytes on the wire (a
-- recording peer), uploads streamed from disk without a copy in memory,
-- the checks made before sending, retries, and the real local server.
local stream = require "stream"
local files = require "stream.files"
local server = require "helpers.server"
local recorder = require "helpers.recorder"
local capture = require "helpers.capture"
local http = require "helpers.http"

local SECRET = "secret-for-files-0123456789abcdef"
-- a 4x2 red PNG
local PNG = "\137\80\78\71\13\10\26\10\0\0\0\13\73\72\68\82\0\0\0\4\0\0\0\2\8\2\0\0\0\240\202\234\52\0\0\0\16"
  .. "\73\68\65\84\120\156\99\248\207\192\0\71\12\200\28\0\111\170\7\249\128\220\0\40\0\0\0\0\73\69\78\68\174"
  .. "\66\96\130"

local function boundary_of(r)
  local ct = recorder.values(r.head, "Content-Type")
  assert.equal(1, #ct)
  return assert(ct[1]:match("^multipart/form%-data; boundary=(.+)$"))
end

local function multipart(b, name, ct, bytes)
  return "--" .. b .. '\r\nContent-Disposition: form-data; name="file"; filename="' .. name
    .. '"\r\nContent-Type: ' .. ct .. "\r\n\r\n" .. bytes .. "\r\n--" .. b .. "--\r\n"
end

local function write_file(path, bytes)
  local f = assert(io.open(path, "wb"))
  f:write(bytes)
  f:close()
end

local function tmpfile(bytes)
  local path = os.tmpname()
  write_file(path, bytes)
  return path
end

-- Makes math.random answer 1 for the first eight calls, then 2: the first
-- boundary the client draws is B1, the next B2.
local B1 = "stream-lua-" .. ("0001"):rep(8)
local B2 = "stream-lua-" .. ("0002"):rep(8)
local function rigged_random(fn)
  local saved, n = math.random, 0
  math.random = function() n = n + 1; return n <= 8 and 1 or 2 end -- luacheck: ignore 122
  local ok, err = pcall(fn)
  math.random = saved -- luacheck: ignore 122
  assert(ok, err)
end

-- Whether the process runs under valgrind or AddressSanitizer, whose own
-- memory makes the resident size say nothing about the client's.
local function instrumented()
  local f = io.open("/proc/self/maps")
  if not f then return false end
  local maps = f:read("*a")
  f:close()
  return maps:find("vgpreload", 1, true) ~= nil or maps:find("libasan", 1, true) ~= nil
end

-- The resident size in KiB (nil where /proc is missing or it means nothing).
local function rss_kb()
  if instrumented() then return nil end
  local f = io.open("/proc/self/status")
  if not f then return nil end
  local text = f:read("*a")
  f:close()
  return tonumber(text:match("VmRSS:%s*(%d+)"))
end

describe("files and images on the wire", function()
  local peer, c

  before_each(function()
    peer = recorder.start()
    c = stream.connect("key", SECRET, "1", { base_url = peer.url, retries = 0 })
  end)
  after_each(function()
    c:close()
    peer.stop()
  end)

  it("uploads bytes as one multipart part named file, exactly framed", function()
    assert(c.files:upload("hello\0world\r\n", "hello.txt"))
    assert(c.images:upload(PNG, "red.PNG"))
    assert(c.files:upload("x", "data.bin", { content_type = "application/x-thing; v=1" }))
    assert(c.files:upload("", "noext"))
    local reqs = peer.requests()
    assert.equal(4, #reqs)
    assert.equal("POST /api/v1.0/files/?api_key=key HTTP/1.1", recorder.line(reqs[1]))
    assert.equal("POST /api/v1.0/images/?api_key=key HTTP/1.1", recorder.line(reqs[2]))
    local want = {
      { "hello.txt", "text/plain", "hello\0world\r\n" }, { "red.PNG", "image/png", PNG },
      { "data.bin", "application/x-thing; v=1", "x" }, { "noext", "application/octet-stream", "" },
    }
    for i, r in ipairs(reqs) do
      local b = boundary_of(r)
      assert.truthy(#b <= 70)
      assert.equal(multipart(b, want[i][1], want[i][2], want[i][3]), r.body)
      assert.same({ tostring(#r.body) }, recorder.values(r.head, "Content-Length"))
      assert.same({}, recorder.values(r.head, "Expect"))
      assert.equal(1, #recorder.values(r.head, "Authorization"))
    end
  end)

  it("streams a {path} source: the same bytes as the string would be", function()
    local bytes = ("0123456789abcdef"):rep(10000) .. "\0\255"
    local path = tmpfile(bytes)
    assert(c.files:upload({ path = path }, "big.csv"))
    os.remove(path)
    local r = peer.requests()[1]
    assert.equal(multipart(boundary_of(r), "big.csv", "text/csv", bytes), r.body)
    assert.same({ tostring(#r.body) }, recorder.values(r.head, "Content-Length"))
  end)

  it("picks a boundary that does not occur in the bytes, a string's or a file's", function()
    -- in a file, B1 straddles the seam between two 16 KiB reads of the core's scan
    local bytes = ("z"):rep(4 * 16384 - 10) .. B1 .. ("z"):rep(100)
    local path = tmpfile(bytes)
    rigged_random(function()
      assert(c.files:upload("x" .. B1 .. "y", "a.txt"))
    end)
    rigged_random(function()
      assert(c.files:upload({ path = path }, "b.txt"))
    end)
    rigged_random(function()
      assert(c.files:upload("plain", "c.txt"))
    end)
    os.remove(path)
    local reqs = peer.requests()
    assert.equal(B2, boundary_of(reqs[1]))
    assert.equal(multipart(B2, "a.txt", "text/plain", "x" .. B1 .. "y"), reqs[1].body)
    assert.equal(B2, boundary_of(reqs[2]))
    assert.equal(multipart(B2, "b.txt", "text/plain", bytes), reqs[2].body)
    assert.equal(B1, boundary_of(reqs[3]))
  end)

  it("streams a 3 MB file without holding it in memory", function()
    local path = os.tmpname()
    local f = assert(io.open(path, "wb"))
    local piece = ("0123456789abcdef"):rep(4096)
    for _ = 1, 48 do f:write(piece) end  -- 3 MiB
    f:close()
    -- a first upload makes the buffers every upload uses
    assert(c.files:upload({ path = path }, "warm.bin"))
    collectgarbage("collect")
    collectgarbage("collect")
    local lua0, rss0 = collectgarbage("count"), rss_kb()
    local res = assert(c.files:upload({ path = path }, "big.bin"))
    local lua1, rss1 = collectgarbage("count"), rss_kb()
    collectgarbage("collect")
    local lua2 = collectgarbage("count")
    os.remove(path)
    assert.is_table(res)
    -- garbage included, then without it
    assert.truthy(lua1 - lua0 < 256, "Lua memory grew by " .. (lua1 - lua0) .. " KiB")
    assert.truthy(lua2 - lua0 < 64, "Lua memory kept " .. (lua2 - lua0) .. " KiB")
    if rss0 then
      assert.truthy(rss1 - rss0 < 1024, "RSS grew by " .. (rss1 - rss0) .. " KiB")
    end
    local r = peer.requests()[2]
    assert.equal(3 * 1024 * 1024 + #multipart(boundary_of(r), "big.bin", "application/octet-stream", ""),
      #r.body)
  end)

  it("deletes and processes by URL", function()
    local url = "http://cdn.example/_files/x/a%20b.png?Expires=1&Signature=s"
    assert(c.files:delete(url))
    assert(c.images:delete(url))
    assert(c.images:process(url, { resize = "fill", crop = "top,left", w = 20, h = 10 }))
    assert(c.images:process(url, { w = 5 }))
    local reqs = peer.requests()
    local esc = "http%3A%2F%2Fcdn.example%2F_files%2Fx%2Fa%2520b.png%3FExpires%3D1%26Signature%3Ds"
    assert.equal("DELETE /api/v1.0/files/?api_key=key&url=" .. esc .. " HTTP/1.1", recorder.line(reqs[1]))
    assert.equal("DELETE /api/v1.0/images/?api_key=key&url=" .. esc .. " HTTP/1.1", recorder.line(reqs[2]))
    assert.equal("GET /api/v1.0/images/?api_key=key&crop=top%2Cleft&h=10&resize=fill&url=" .. esc
      .. "&w=20 HTTP/1.1", recorder.line(reqs[3]))
    assert.equal("GET /api/v1.0/images/?api_key=key&url=" .. esc .. "&w=5 HTTP/1.1", recorder.line(reqs[4]))
  end)

  it("refuses bad values with nothing sent, and raises for misuse", function()
    local big = os.tmpname()
    local f = assert(io.open(big, "wb"))
    f:seek("set", files.MAX_BYTES)  -- sparse: MAX_BYTES + 1 bytes, none written but the last
    f:write("x")
    f:close()
    local url = "http://cdn.example/a.png"
    local cases = {
      { function() return c.files:upload({ path = big }, "big.bin") end, "file" },
      { function() return c.files:upload({ path = "/nonexistent/dir/x" }, "x.txt") end, "file" },
      { function() return c.files:upload({ path = "spec" }, "dir.txt") end, "file" },
      { function() return c.files:upload("x", "") end, "name" },
      { function() return c.files:upload("x", "a/b.txt") end, "name" },
      { function() return c.files:upload("x", 'a"b.txt') end, "name" },
      { function() return c.files:upload("x", "a\r\nb.txt") end, "name" },
      { function() return c.files:upload("x", ("n"):rep(256)) end, "name" },
      { function() return c.files:upload("x", "a.txt", { content_type = "text" }) end, "content_type" },
      { function() return c.files:upload("x", "a.txt", { content_type = "text/plain\r\nX: y" }) end,
        "content_type" },
      { function() return c.files:delete("ftp://cdn.example/a") end, "url" },
      { function() return c.files:delete("cdn.example/a") end, "url" },
      { function() return c.images:process("http://a b/", {}) end, "url" },
      { function() return c.images:process(url, { resize = "zoom" }) end, "resize" },
      { function() return c.images:process(url, { crop = "top,middle" }) end, "crop" },
      { function() return c.images:process(url, { crop = "" }) end, "crop" },
      { function() return c.images:process(url, { w = -1 }) end, "w" },
      { function() return c.images:process(url, { h = 0 }) end, "h" },
      { function() return c.images:process(url, { w = 1.5 }) end, "w" },
    }
    for i, case in ipairs(cases) do
      local res, err = case[1]()
      assert.is_nil(res, "case " .. i)
      assert.equal("invalid", err.kind, "case " .. i)
      assert.equal(case[2], next(err.fields), "case " .. i)
    end
    os.remove(big)
    local saved = files.MAX_BYTES
    files.MAX_BYTES = 4
    local res, err = c.files:upload("12345", "five.txt")
    files.MAX_BYTES = saved
    assert.is_nil(res)
    assert.equal("file", next(err.fields))
    assert.has_error(function() c.files:upload(nil, "x") end,
      'files:upload: source must be a string of bytes or {path = "..."}, got nil')
    assert.has_error(function() c.files:upload({}, "x") end)
    assert.has_error(function() c.images:upload("x", 5) end, "images:upload: name must be a string, got number")
    assert.has_error(function() c.files:upload("x", "a", { type = "x" }) end, "files:upload: unknown option 'type'")
    assert.has_error(function() c.files:delete(5) end, "files:delete: url must be a string, got number")
    assert.has_error(function() c.images:process(url, { w = "5" }) end,
      "images:process: w must be a number, got string")
    assert.has_error(function() c.files.upload("x", "a") end, "files:upload: called with '.' instead of ':'")
    assert.is_nil(c.files.process)
    assert.same({}, peer.requests())
  end)
end)

describe("files: which calls are sent again", function()
  it("never repeats an upload that was sent; repeats deletes and processing", function()
    local peer = capture.start({ status = 503, body = '{"detail":"busy"}', count = 6 })
    local c = stream.connect("key", SECRET, "1", { base_url = peer.url, retries = 2, max_retry_wait = 0 })
    local path = tmpfile("abc")
    local res, err = c.files:upload({ path = path }, "a.txt")
    assert.is_nil(res)
    assert.equal(503, err.status)
    assert.equal(1, err.attempts)
    res, err = c.files:delete("http://cdn.example/a.txt")
    assert.is_nil(res)
    assert.equal(3, err.attempts)
    os.remove(path)
    c:close()
    peer.stop()
  end)

  it("sends an upload again when nothing reached the server", function()
    local port = capture.free_port()
    local c = stream.connect("key", SECRET, "1", { base_url = "http://127.0.0.1:" .. port, retries = 1 })
    local res, err = c.files:upload("abc", "a.txt")
    assert.is_nil(res)
    assert.equal("transport", err.kind)
    assert.is_false(err.sent)
    assert.equal(2, err.attempts)
    c:close()
  end)
end)

describe("files and images against the local server", function()
  local s, c

  setup(function()
    s = server.start()
    c = stream.connect(s.api_key, s.api_secret, "1", { base_url = s.base_url })
  end)
  teardown(function()
    if c then c:close() end
    if s then s:stop() end
  end)

  it("uploads a string and a file, serves them, deletes them once", function()
    local res = assert(c.files:upload("hello world", "helloworld.txt"))
    assert.is_string(res.file)
    assert.truthy(res.file:find("/helloworld%.txt%?"))
    local status, body = http.request("GET", res.file)
    assert.equal(200, status)
    assert.equal("hello world", body)
    local bytes = ("\0\1\2\3"):rep(300000)
    local path = tmpfile(bytes)
    local res2 = assert(c.files:upload({ path = path }, "blob.bin"))
    os.remove(path)
    status, body = http.request("GET", res2.file)
    assert.equal(200, status)
    assert.equal(bytes, body)
    assert(c.files:delete(res.file))
    local _, err = c.files:delete(res.file)
    assert.equal(404, err.status)
  end)

  it("uploads an image, processes it, and refuses what is not one", function()
    local path = tmpfile(PNG)
    local res = assert(c.images:upload({ path = path }, "red.png"))
    os.remove(path)
    local variant = assert(c.images:process(res.file, { resize = "scale", w = 8, h = 8 }))
    assert.is_string(variant.file)
    assert.are_not.equal(res.file, variant.file)
    local _, err = c.images:upload("not an image at all", "x.png")
    assert.equal(400, err.status)
    assert.truthy(tostring(err):find("is not supported", 1, true))
    assert(c.images:delete(res.file))
  end)

  it("lets only the owner delete or process a user's upload", function()
    local alice = stream.connect(s.api_key, c:create_user_token("alice"), "1", { base_url = s.base_url })
    local bob = stream.connect(s.api_key, c:create_user_token("bob"), "1", { base_url = s.base_url })
    local res = assert(alice.images:upload(PNG, "alice.png"))
    local _, err = bob.images:delete(res.file)
    assert.equal(403, err.status)
    _, err = bob.images:process(res.file, { w = 2 })
    assert.equal(403, err.status)
    assert(alice.images:process(res.file, { w = 2 }))
    assert(alice.images:delete(res.file))
    alice:close()
    bob:close()
  end)
end)

describe("body_parts through the curl transport", function()
  local core = require "stream.core"
  local T = require "stream.transport.curl"
  local SETTINGS = {
    timeout = 5, connect_timeout = 5, max_response_bytes = 1048576,
    headers = { Accept = "application/json" }, body_headers = { ["Content-Type"] = "application/json" },
  }
  local peer, t, path

  before_each(function()
    peer = recorder.start()
    t = T.new(core, SETTINGS)
    path = tmpfile("0123456789")
  end)
  after_each(function()
    t:close()
    peer.stop()
    os.remove(path)
  end)

  local function req(size, idempotent, file)
    return { method = "POST", url = peer.url .. "/up", idempotent = idempotent,
      body_parts = { "<", { path = file or path, size = size }, ">" } }
  end

  it("sends prefix, the file's first `size` bytes and suffix, blocking or submitted", function()
    assert.equal(200, assert(t:request(req(10))).status)
    assert.equal(200, assert(t:request(req(4, true))).status)
    local h = t:submit(req(0))
    while not h:done() do t:perform(0.1) end
    assert.equal(200, assert(h:result()).status)
    -- a pooled handle that carried a file body goes back to a plain one
    assert.equal(200, assert(t:request({ method = "POST", url = peer.url .. "/plain", body = "{}" })).status)
    assert.equal(200, assert(t:request({ method = "GET", url = peer.url .. "/get" })).status)
    local reqs = peer.requests()
    assert.same({ "<0123456789>", "<0123>", "<>", "{}", "" },
      { reqs[1].body, reqs[2].body, reqs[3].body, reqs[4].body, reqs[5].body })
    assert.same({ "12" }, recorder.values(reqs[1].head, "Content-Length"))
    assert.same({}, recorder.values(reqs[5].head, "Content-Length"))
  end)

  it("fails before any I/O when the file cannot be opened", function()
    local res, err = t:request(req(3, false, path .. ".missing"))
    assert.is_nil(res)
    assert.same({ "invalid", "file", false }, { err.kind, err.reason, err.sent })
    local h = t:submit(req(3, false, path .. ".missing"))
    while not h:done() do t:perform(0.1) end
    res, err = h:result()
    assert.is_nil(res)
    assert.same({ "invalid", "file", false }, { err.kind, err.reason, err.sent })
    assert.same({}, peer.requests())
  end)

  it("stops a transfer whose file ends before its size", function()
    local res, err = t:request(req(100))
    assert.is_nil(res)
    assert.equal("transport", err.kind)
    assert.equal("transfer", err.reason)
    assert.truthy(err.message:find("ended before its size", 1, true))
    -- the handle is fine for the next request
    assert.equal(200, assert(t:request(req(10))).status)
  end)

  it("raises for malformed parts", function()
    assert.has_error(function()
      t.http:request("POST", peer.url, { "<", path, -1, ">" })
    end)
    assert.has_error(function()
      t.http:request("POST", peer.url, { "<", path })
    end)
  end)
end)

-- A peer whose first connection answers one request, then reads the next
-- whole and closes without answering (a kept-alive connection that died);
-- every later connection answers. It logs each request's body length.
local DYING = [==[
local socket = require "socket"
local port, log_path = tonumber(arg[1]), arg[2]
local srv = assert(socket.bind("127.0.0.1", port))
srv:settimeout(20)
local ready = io.open(log_path .. ".ready", "wb"); ready:write("1"); ready:close()
local ANSWER = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
local function read_request(c)
  local first = c:receive("*l")
  if not first then return nil end
  local len = 0
  while true do
    local line = c:receive("*l")
    if not line or line == "" then break end
    local n = line:lower():match("^content%-length:%s*(%d+)")
    if n then len = tonumber(n) end
  end
  local body = len > 0 and c:receive(len) or ""
  local log = io.open(log_path, "ab"); log:write(first, " ", #(body or ""), "\n"); log:close()
  return true
end
for conn = 1, 4 do
  local c = srv:accept()
  if not c then break end
  c:settimeout(10)
  local n = 0
  while read_request(c) do
    n = n + 1
    if conn == 1 and n == 2 then break end
    c:send(ANSWER)
  end
  c:close()
end
]==]

describe("a file body on a kept-alive connection that died", function()
  local core = require "stream.core"
  local T = require "stream.transport.curl"
  local socket = require "socket"

  local function dying_peer()
    local script, log = os.tmpname(), os.tmpname()
    os.remove(log)
    write_file(script, DYING)
    local port = capture.free_port()
    os.execute(string.format("lua5.4 %s %d %s >/dev/null 2>&1 &", script, port, log))
    for _ = 1, 500 do
      local r = io.open(log .. ".ready")
      if r then r:close() break end
      socket.sleep(0.01)
    end
    return "http://127.0.0.1:" .. port, function()
      local f = io.open(log, "rb")
      local text = f and f:read("*a") or ""
      if f then f:close() end
      os.remove(script); os.remove(log); os.remove(log .. ".ready")
      local lines = {}
      for l in text:gmatch("[^\n]+") do lines[#lines + 1] = l end
      return lines
    end
  end

  local function run(idempotent)
    local url, log = dying_peer()
    local t = T.new(core, { timeout = 5, connect_timeout = 5, max_response_bytes = 65536, headers = {},
      body_headers = {} })
    local path = tmpfile(("f"):rep(100000))
    assert.equal(200, assert(t:request({ method = "GET", url = url .. "/first" })).status)
    local res, err = t:request({ method = "POST", url = url .. "/up", idempotent = idempotent,
      body_parts = { "<", { path = path, size = 100000 }, ">" } })
    t:close()
    os.remove(path)
    return res, err, log()
  end

  it("is not sent again when it must reach the server once", function()
    local res, err, lines = run(false)
    assert.is_nil(res)
    assert.is_true(err.sent)
    assert.same({ "GET /first HTTP/1.1 0", "POST /up HTTP/1.1 100002" }, lines)
  end)

  it("is rewound and sent again on a fresh connection when idempotent", function()
    local res, _, lines = run(true)
    assert.equal(200, res.status)
    assert.same({ "GET /first HTTP/1.1 0", "POST /up HTTP/1.1 100002", "POST /up HTTP/1.1 100002" }, lines)
  end)
end)
