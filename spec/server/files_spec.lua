-- Files on the local server (stream-feeds-api.md section 13): multipart uploads (in memory
-- and spooled to disk, up to 100 MB; 413 above), the signed URLs that serve the bytes,
-- deletes and their owners, tokens, malformed bodies and two workers sharing the files.

local server = require "helpers.server"
local http = require "helpers.http"
local cjson = require "cjson"

local UUID = "%x%x%x%x%x%x%x%x%-%x%x%x%x%-4%x%x%x%-[89ab]%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x"

local function write_file(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

-- multipart(boundary, parts) -> body text; parts: { { headers = {...}, body = "..." } }
local function multipart(boundary, parts)
  local out = {}
  for _, p in ipairs(parts) do
    out[#out + 1] = "--" .. boundary .. "\r\n" .. table.concat(p.headers, "\r\n") .. "\r\n\r\n" .. p.body .. "\r\n"
  end
  return table.concat(out) .. "--" .. boundary .. "--\r\n"
end

local function disposition(name, filename)
  local h = 'Content-Disposition: form-data; name="' .. name .. '"'
  if filename then h = h .. '; filename="' .. filename .. '"' end
  return h
end

local function hmac_hex(key, msg)
  local f = os.tmpname()
  write_file(f, msg)
  local hexkey = key:gsub(".", function(c) return string.format("%02x", c:byte()) end)
  local out = http.run("openssl dgst -sha256 -mac HMAC -macopt " .. http.shell_quote("hexkey:" .. hexkey)
    .. " " .. http.shell_quote(f))
  os.remove(f)
  return (assert(out:match("= (%x+)")))
end

describe("local server files", function()
  local s, api
  local ALICE = '{"user_id":"f-alice"}'
  local BOB = '{"user_id":"f-bob"}'

  setup(function()
    s = server.start({ workers = 2 })
    api = http.api(s)
  end)

  teardown(function()
    if s then s:stop() end
  end)

  -- upload(body, opts) through a raw multipart body
  local function upload(path, body, boundary, opts)
    opts = opts or {}
    return api:call("POST", path, { body = body, token = opts.token, headers = {
      ["Content-Type"] = "multipart/form-data; boundary=" .. (boundary or "xYz") } })
  end

  local function upload_text(text, name, opts)
    return upload("files/", multipart("xYz", { { headers = { disposition("file", name or "hello.txt"),
      "Content-Type: text/plain" }, body = text } }), "xYz", opts)
  end

  local function get(url)
    return http.request("GET", url)
  end

  local function esc(v)
    return (v:gsub("[^%w._~-]", function(c) return string.format("%%%02X", c:byte()) end))
  end

  it("uploads a file: 201 {file, duration}, and its URL serves the bytes with its type", function()
    local st, b, raw, h = upload_text("hello world\n")
    assert.are.equal(201, st, raw)
    assert.are.same({ "duration", "file" }, (function() local k = {} for n in pairs(b) do k[#k + 1] = n end
      table.sort(k) return k end)())
    assert.matches("^http://127%.0%.0%.1:" .. s.port .. "/_files/" .. UUID .. "/hello%.txt%?Expires=%d+&Signature=%x+$",
      b.file)
    assert.matches("^%d+$", h["x-stream-local-worker"])
    local expires = tonumber(b.file:match("Expires=(%d+)"))
    assert.is_true(math.abs(expires - (os.time() + 14 * 24 * 3600)) < 60)
    local gst, body, gh = get(b.file)
    assert.are.equal(200, gst)
    assert.are.equal("hello world\n", body)
    assert.are.equal("text/plain", gh["content-type"])
  end)

  it("keeps odd file names: quoted, with spaces, a path cut off", function()
    local st, b, raw = upload_text("x", 'C:/dir/sub/my file \\"1\\".txt')
    assert.are.equal(201, st, raw)
    assert.matches("/my%%20file%%20%%221%%22%.txt%?", b.file)
    local gst, body = get(b.file)
    assert.are.equal(200, gst)
    assert.are.equal("x", body)
  end)

  it("a file URL needs no api_key, but a wrong or expired signature is 403 and a wrong name 404", function()
    local _, b = upload_text("secret")
    local id, name = b.file:match("/_files/(" .. UUID .. ")/([^?]+)")
    local bad = b.file:gsub("Signature=(%x)", function(c) return "Signature=" .. (c == "0" and "1" or "0") end)
    local st, body = get(bad)
    assert.are.equal(403, st)
    assert.are.equal(17, cjson.decode(body).code)
    assert.are.equal(403, (get(b.file:gsub("&Signature=%x+", ""))))
    local past = tostring(os.time() - 10)
    local sig = hmac_hex(s.api_secret, id .. "/" .. name .. "\n" .. past)
    st, body = get(s.url .. "/_files/" .. id .. "/" .. name .. "?Expires=" .. past .. "&Signature=" .. sig)
    assert.are.equal(403, st)
    assert.matches("expired", cjson.decode(body).detail)
    st = get(s.url .. "/_files/" .. id .. "/other.txt?" .. b.file:match("%?(.*)$"))
    assert.are.equal(404, st)
    assert.are.equal(405, (http.request("DELETE", b.file)))
  end)

  it("a body without a boundary, cut in the middle or without a file part is 400 code 4", function()
    local cases = {
      { "files/", "plain", nil, "text/plain" },
      { "files/", "--xYz\r\n", nil, "multipart/form-data" },
      { "files/", "--xYz\r\n" .. disposition("file", "a.txt") .. "\r\n\r\nhalf of it", "xYz" },
      { "files/", "no delimiter at all", "xYz" },
      { "files/", multipart("xYz", { { headers = { disposition("other", "a.txt") }, body = "x" } }), "xYz" },
      { "files/", multipart("xYz", { { headers = { disposition("file") }, body = "x" } }), "xYz" },
      { "files/", "--xYz\r\nbroken header line\r\n\r\nx\r\n--xYz--", "xYz" },
      { "images/", "--xYz\r\n" .. disposition("file", "a.png") .. "\r\n\r\n\137PNG", "xYz" },
    }
    for i, c in ipairs(cases) do
      local st, b, raw = api:call("POST", c[1], { body = c[2], headers = {
        ["Content-Type"] = c[4] or ("multipart/form-data; boundary=" .. c[3]) } })
      assert.are.equal(400, st, "case " .. i .. ": " .. tostring(raw))
      assert.are.equal(4, b.code)
      assert.is_table(b.exception_fields.file, raw)
    end
  end)

  it("takes a quoted boundary, a preamble, other fields and the first file part", function()
    local body = "preamble\r\n" .. multipart("a b:c", {
      { headers = { disposition("note") }, body = "ignored" },
      { headers = { disposition("file", "first.bin") }, body = "one\r\n--a b:" },
      { headers = { disposition("file", "second.bin") }, body = "two" },
    })
    local st, b, raw = api:call("POST", "files/", { body = body, headers = {
      ["Content-Type"] = 'multipart/form-data; boundary="a b:c"' } })
    assert.are.equal(201, st, raw)
    assert.matches("/first%.bin%?", b.file)
    local _, bytes, h = get(b.file)
    assert.are.equal("one\r\n--a b:", bytes)
    assert.are.equal("application/octet-stream", h["content-type"])
  end)

  it("an upload nginx spools to disk (5 MB) comes back byte for byte, and over 100 MB is 413", function()
    local path = os.tmpname()
    local parts = {}
    for i = 1, 5000 do parts[i] = string.rep(string.char(i % 256), 1000) end
    write_file(path, table.concat(parts))
    local st, b, raw = api:call("POST", "files/", { curl_args = { "-F", "file=@" .. path .. ";type=application/x-big" },
      timeout = 60 })
    assert.are.equal(201, st, raw)
    local gst, bytes, h = get(b.file)
    assert.are.equal(200, gst)
    assert.are.equal(5000000, #bytes)
    assert.is_true(bytes == table.concat(parts))
    assert.are.equal("application/x-big", h["content-type"])
    os.execute("truncate -s 101M " .. http.shell_quote(path))
    st, b, raw = api:call("POST", "files/", { curl_args = { "-F", "file=@" .. path }, timeout = 60 })
    os.remove(path)
    assert.are.equal(413, st, raw)
    assert.are.equal(413, b.status_code)
    assert.matches("100 MB", b.detail)
  end)

  it("deletes: 200 {duration}, 404 the second time, 403 for another user's file", function()
    local _, b = upload_text("mine", "a.txt", { token = api:token(ALICE) })
    local q = "url=" .. esc(b.file)
    local st, db, raw = api:call("DELETE", "files/", { query = q, token = api:token(BOB) })
    assert.are.equal(403, st, raw)
    assert.are.equal(17, db.code)
    st, db, raw = api:call("DELETE", "files/", { query = q, token = api:token(ALICE) })
    assert.are.equal(200, st, raw)
    assert.are.same({ "duration" }, (function() local k = {} for n in pairs(db) do k[#k + 1] = n end return k end)())
    assert.are.equal(404, (get(b.file)))
    st, db = api:call("DELETE", "files/", { query = q, token = api:token(ALICE) })
    assert.are.equal(404, st)
    assert.are.equal(16, db.code)
  end)

  it("server tokens own nothing and may delete anything; images/ deletes too", function()
    local _, b = upload_text("hers", "b.txt", { token = api:token(ALICE) })
    assert.are.equal(200, (api:call("DELETE", "images/", { query = "url=" .. esc(b.file) })))
    local _, b2 = upload_text("server's")
    assert.are.equal(403, (api:call("DELETE", "files/", { query = "url=" .. esc(b2.file), token = api:token(BOB) })))
    assert.are.equal(200, (api:call("DELETE", "files/", { query = "url=" .. esc(b2.file) })))
  end)

  it("a delete without a url, or a url that is no file URL of this server, is 400 naming url", function()
    for _, q in ipairs({ "", "url=", "url=" .. esc("http://example.com/x.txt") }) do
      local st, b, raw = api:call("DELETE", "files/", { query = q })
      assert.are.equal(400, st, raw)
      assert.is_table(b.exception_fields.url)
    end
    local st = api:call("DELETE", "files/", { query = "url=" .. esc(s.url ..
      "/_files/00000000-0000-4000-8000-000000000000/x.txt") })
    assert.are.equal(404, st)
  end)

  it("tokens: resource files or *, user tokens; another resource or action is 403", function()
    local function with(claims) return (upload_text("a", "a.txt", { token = api:token(claims) })) end
    assert.are.equal(201, with('{"resource":"files","action":"*","feed_id":"*"}'))
    assert.are.equal(201, with('{"resource":"files","action":"write"}'))
    assert.are.equal(201, with(ALICE))
    assert.are.equal(403, with('{"resource":"feed","action":"*","feed_id":"*"}'))
    assert.are.equal(403, with('{"resource":"files","action":"read"}'))
    assert.are.equal(403, with('{"resource":"files","action":"*","feed_id":"userx"}'))
    assert.are.equal(401, (api:call("POST", "files/", { auth = false })))
  end)

  it("a file uploaded through one worker is served by the other", function()
    local _, b, _, h = upload_text("shared bytes")
    local writer = h["x-stream-local-worker"]
    local other
    for _ = 1, 60 do
      local st, body, gh = get(b.file)
      assert.are.equal(200, st)
      assert.are.equal("shared bytes", body)
      if gh["x-stream-local-worker"] ~= writer then other = gh["x-stream-local-worker"]; break end
    end
    assert.is_truthy(other, "the other worker served it")
  end)

  it("leaves no Lua error in the log", function()
    assert.is_nil(s:error_log():find("unexpected error", 1, true))
  end)
end)

describe("local server files with a kept database", function()
  it("keeps the files next to STREAM_LOCAL_DB across restarts", function()
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir " .. http.shell_quote(dir)))
    local db = dir .. "/kept.db"
    local s = server.start({ db = db, workers = 1 })
    local api = http.api(s)
    local body = multipart("kB", { { headers = { disposition("file", "kept.txt") }, body = "still here" } })
    local st, b, raw = api:call("POST", "files/", { body = body,
      headers = { ["Content-Type"] = "multipart/form-data; boundary=kB" } })
    s:stop()
    assert.are.equal(201, st, raw)
    local s2 = server.start({ db = db, workers = 1, port = s.port })
    local gst, bytes = http.request("GET", b.file)
    s2:stop()
    os.execute("rm -rf " .. http.shell_quote(dir))
    assert.are.equal(200, gst)
    assert.are.equal("still here", bytes)
  end)
end)
