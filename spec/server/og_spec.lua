-- Open graph scraping on the local server (stream-feeds-api.md section 14): the server
-- fetches pages from a loopback page server this spec runs (nothing else is fetched),
-- parses them with gumbo and answers the OG object; bad urls, unreachable pages, non-2xx,
-- non-HTML, pages that never end and huge pages are 400s within the deadline.

local server = require "helpers.server"
local http = require "helpers.http"
local shape = require "helpers.shape"
local socket = require "socket"
local cjson = require "cjson"

local NO_DATA = "couldn't find og data for the provided url"

-- the page server: a child Lua process (luasocket, one select loop, any number of
-- connections at once) serving the pages below; it logs "path<TAB>user agent" per
-- request and "sent<TAB>path<TAB>bytes" when a connection ends
local CHILD = [==[
local socket = require "socket"
local port, dir = tonumber(arg[1]), arg[2]
local srv = assert(socket.bind("127.0.0.1", port))
srv:settimeout(0)
local log = assert(io.open(dir .. "/log", "wb"))
local base = "http://127.0.0.1:" .. port

local FULL = [[<!DOCTYPE html><html><head>
<title>Fallback title</title>
<meta property="og:title" content="The Rock">
<meta property="og:type" content="video.movie">
<meta property="og:url" content="http://www.x.test/rock/">
<meta property="og:site" content="@rock">
<meta property="og:site_name" content="IMDb">
<meta property="og:description" content="A film.">
<meta name="description" content="plain description">
<meta property="og:determiner" content="the">
<meta property="og:locale" content="en_GB">
<meta property="og:image" content="http://x.test/rock.jpg">
<meta property="og:image:secure_url" content="https://x.test/rock.jpg">
<meta property="og:image:width" content="400">
<meta property="og:image:height" content="300">
<meta property="og:image:type" content="image/jpeg">
<meta property="og:image:alt" content="A shiny red apple">
<meta property="og:image" content="http://x.test/rock2.jpg">
<meta property="og:image:width" content="wide">
<meta property="og:video" content="http://x.test/movie.swf">
<meta property="og:video:url" content="http://x.test/movie.mp4">
<meta property="og:video:secure_url" content="https://x.test/movie.mp4">
<meta property="og:video:type" content="video/mp4">
<meta property="og:video:width" content="640">
<meta property="og:video:height" content="480">
<meta property="og:audio" content="http://x.test/sound.mp3">
<meta property="og:audio:secure_url" content="https://x.test/sound.mp3">
<meta property="og:audio:type" content="audio/mpeg">
<link rel="stylesheet" href="/s.css"><link rel="shortcut icon" href="/static/icon.png">
</head><body><p>The page.</p></body></html>]]

local MALFORMED = [[<html><title>Broken page</title><meta property=og:type content=article>
<div><table><p>unclosed<b><i>cross</b></i><td>cell</tr><meta name="description" content='in body'>
<svg><title>not this one</title></svg><p>never closed]]

local ENTITIES = [[<html><head><meta property="og:title" content="Tom &amp; Jerry &quot;quoted&quot; &eacute;&#x263A;">
<title>ignored &amp; unused</title><meta property="og:description" content="a&lt;b&gt;c &copy; 2024"></head></html>]]

local function answer(status, headers, body)
  local h = { "HTTP/1.1 " .. status .. "\r\n", "Connection: close\r\n" }
  for _, line in ipairs(headers) do h[#h + 1] = line .. "\r\n" end
  if body then h[#h + 1] = "Content-Length: " .. #body .. "\r\n" end
  return table.concat(h) .. "\r\n" .. (body or "")
end

local function html(status, body) return answer(status, { "Content-Type: text/html; charset=utf-8" }, body) end
local function moved(status, location) return answer(status, { "Location: " .. location }, "") end

local FILLER = "<p>" .. string.rep("x", 65530) .. "</p>\n"

-- path -> the answer's text, or a table { head = text, more = function(state) -> text }
local PAGES = {
  ["/full"] = function() return html("200 OK", FULL) end,
  ["/title-only"] = function()
    return html("200 OK", "<html><head><title>\n  Just a   title \n</title></head></html>")
  end,
  ["/no-title"] = function() return html("200 OK", "<html><body><p>nothing here</p></body></html>") end,
  ["/malformed"] = function() return html("200 OK", MALFORMED) end,
  ["/entities"] = function() return html("200 OK", ENTITIES) end,
  ["/deep"] = function()
    return html("200 OK", "<html><head><title>Deep</title></head><body>" .. string.rep("<div>", 200000))
  end,
  ["/missing"] = function() return html("404 Not Found", "<html><title>Not found</title></html>") end,
  ["/binary"] = function()
    return answer("200 OK", { "Content-Type: application/octet-stream" }, "\0\1\2\255<title>x</title>")
  end,
  ["/chunked"] = function()
    return answer("200 OK", { "Content-Type: text/html", "Transfer-Encoding: chunked" },
      nil) .. "7\r\n<html><\r\n14\r\ntitle>Chunked page</\r\n7\r\ntitle>\r\n0\r\n\r\n"
  end,
  ["/redirect-abs"] = function() return moved("302 Found", base .. "/full") end,
  ["/deep/start"] = function() return moved("301 Moved Permanently", "next?x=1") end,
  ["/deep/next"] = function() return moved("307 Temporary Redirect", "../sub/../title-only") end,
  ["/loop"] = function() return moved("302 Found", "/loop") end,
  ["/endless"] = function()
    return { head = html("200 OK", nil) .. "<html><head><title>Endless</title>",
      more = function(st)
        if socket.gettime() - (st.last or 0) < 0.2 then return "" end
        st.last = socket.gettime()
        return "<p>more</p>"
      end }
  end,
  ["/huge"] = function()
    return { head = answer("200 OK", { "Content-Type: text/html", "Content-Length: 1073741824" }, nil)
      .. "<html><head><title>Huge page</title></head><body>",
      more = function() return FILLER end }
  end,
}

local conns = {}
local function start(c, buf)
  local path = buf:match("^GET (%S+)") or "?"
  local ua = buf:match("\r\n[Uu]ser%-[Aa]gent: ([^\r\n]*)") or ""
  log:write(path, "\t", ua, "\n") log:flush()
  local page = PAGES[path:gsub("%?.*$", "")]
  local out = page and page() or html("404 Not Found", "")
  if type(out) == "table" then
    conns[c] = { out = out.head, more = out.more, st = {}, path = path, sent = 0 }
  else
    conns[c] = { out = out, path = path, sent = 0 }
  end
end

local function finish(c, st)
  log:write("sent\t", st.path or "?", "\t", st.sent, "\n") log:flush()
  c:close()
  conns[c] = nil
end

local ready = io.open(dir .. "/ready", "wb"); ready:write("1"); ready:close()
local idle = 0
while idle < 1200 do   -- a minute without connections: the spec is gone
  local rl, wl, done = { srv }, {}, {}
  for c, st in pairs(conns) do
    if not st.buf then
      if st.out == "" and st.more then st.out = st.more(st.st) end
      if st.out ~= "" then wl[#wl + 1] = c elseif not st.more then done[#done + 1] = c end
    end
    if st.buf or st.out == "" then rl[#rl + 1] = c end
  end
  for _, c in ipairs(done) do finish(c, conns[c]) end
  local readable, writable = socket.select(rl, wl, 0.05)
  idle = next(conns) == nil and idle + 1 or 0
  for _, c in ipairs(readable) do
    if c == srv then
      local nc = srv:accept()
      if nc then nc:settimeout(0); conns[nc] = { buf = "" } end
    elseif conns[c] then
      local st = conns[c]
      local data, err, partial = c:receive(65536)
      if st.buf then
        st.buf = st.buf .. (data or partial or "")
        if st.buf:find("\r\n\r\n", 1, true) then start(c, st.buf) end
      end
      if err == "closed" and conns[c] then finish(c, conns[c]) end
    end
  end
  for _, c in ipairs(writable) do
    local st = conns[c]
    if st and st.out ~= "" then
      local n, err, partial = c:send(st.out)
      n = n or partial or 0
      st.sent, st.out = st.sent + n, st.out:sub(n + 1)
      if err == "closed" then finish(c, st) end
    end
  end
end
]==]

local function q(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function start_pages()
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p " .. q(dir)))
  local f = assert(io.open(dir .. "/pages.lua", "wb"))
  f:write(CHILD)
  f:close()
  local port = server.free_port()
  os.execute(string.format("sh -c 'echo $$ > %s/pid; exec lua5.4 %s/pages.lua %d %s' >/dev/null 2>&1 &",
    dir, dir, port, dir))
  for _ = 1, 500 do
    local r = io.open(dir .. "/ready")
    if r then r:close() break end
    socket.sleep(0.01)
  end
  local pages = { url = "http://127.0.0.1:" .. port, port = port }
  function pages.log()
    local fh = io.open(dir .. "/log", "rb")
    local text = fh and fh:read("a") or ""
    if fh then fh:close() end
    return text
  end
  function pages.stop()
    local fh = io.open(dir .. "/pid")
    local pid = fh and fh:read("l")
    if fh then fh:close() end
    if pid and pid:match("^%d+$") then os.execute("kill " .. pid .. " 2>/dev/null") end
    os.execute("rm -rf " .. q(dir))
  end
  return pages
end

describe("local server open graph", function()
  local s, api, pages

  setup(function()
    s = server.start()
    api = http.api(s)
    pages = start_pages()
  end)

  teardown(function()
    if pages then pages.stop() end
    if s then s:stop() end
  end)

  local function token(claims) return api:token(cjson.encode(claims)) end

  local function escape(v)
    return (v:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", c:byte()) end))
  end

  local function og(url, opts)
    opts = opts or {}
    opts.query = url and ("url=" .. escape(url)) or nil
    return api:call("GET", opts.path or "og/", opts)
  end

  local function no_data(st, b, raw)
    assert.are.equal(400, st, raw)
    assert.are.equal(4, b.code)
    assert.are.equal("InputException", b.exception)
    assert.are.equal(NO_DATA, b.detail)
  end

  it("answers a full og page: og fields first, media with their properties, numbers", function()
    local url = pages.url .. "/full"
    local st, b, raw = og(url, { token = token(({ resource = "url", action = "read" })) })
    assert.are.equal(200, st, raw)
    assert.are.equal("audios,description,determiner,duration,favicon,images,locale,original_url,site,"
      .. "site_name,title,type,url,videos", shape.keys(b))
    assert.are.equal("The Rock", b.title)
    assert.are.equal("video.movie", b.type)
    assert.are.equal("http://www.x.test/rock/", b.url)
    assert.are.equal("@rock", b.site)
    assert.are.equal("IMDb", b.site_name)
    assert.are.equal("A film.", b.description)
    assert.are.equal("the", b.determiner)
    assert.are.equal("en_GB", b.locale)
    assert.are.equal(pages.url .. "/static/icon.png", b.favicon)
    assert.are.equal(url, b.original_url)
    assert.are.same({
      { image = "http://x.test/rock.jpg", secure_url = "https://x.test/rock.jpg", width = 400, height = 300,
        type = "image/jpeg", alt = "A shiny red apple" },
      { image = "http://x.test/rock2.jpg" },
    }, b.images)
    assert.are.same({ { video = "http://x.test/movie.swf", url = "http://x.test/movie.mp4",
      secure_url = "https://x.test/movie.mp4", type = "video/mp4", width = 640, height = 480 } }, b.videos)
    assert.are.same({ { audio = "http://x.test/sound.mp3", secure_url = "https://x.test/sound.mp3",
      type = "audio/mpeg" } }, b.audios)
    assert.matches('"width":400,"height":300', raw, 1, true)
    assert.matches("/full\tgetstream.io/opengraph-bot facebookexternalhit/1.1\n", pages.log(), 1, true)
  end)

  it("answers og?url= without the slash directly, and takes any user token", function()
    local st, b, raw, h = og(pages.url .. "/title-only", { path = "og", token = token(({ user_id = "og-u" })) })
    assert.are.equal(200, st, raw)
    assert.is_nil(h["location"])
    assert.are.equal("Just a title", b.title)
  end)

  it("answers a page with only <title>: title, url, favicon and original_url", function()
    local url = pages.url .. "/title-only"
    local st, b, raw = og(url)
    assert.are.equal(200, st, raw)
    assert.are.equal("duration,favicon,original_url,title,url", shape.keys(b))
    assert.are.equal("Just a title", b.title)
    assert.are.equal(url, b.url)
    assert.are.equal(url, b.original_url)
    assert.are.equal(pages.url .. "/favicon.ico", b.favicon)
  end)

  it("follows relative and absolute redirects; url is the final one", function()
    local start = pages.url .. "/deep/start"
    local st, b, raw = og(start)
    assert.are.equal(200, st, raw)
    assert.are.equal("Just a title", b.title)
    assert.are.equal(pages.url .. "/title-only", b.url)
    assert.are.equal(start, b.original_url)
    assert.matches("/deep/next?x=1\t", pages.log(), 1, true)

    st, b, raw = og(pages.url .. "/redirect-abs")
    assert.are.equal(200, st, raw)
    assert.are.equal("The Rock", b.title)
    assert.are.equal(pages.url .. "/redirect-abs", b.original_url)
  end)

  it("stops after five redirects: 400", function()
    local function fetched() return select(2, ("\n" .. pages.log()):gsub("\n/loop\t", "")) end
    local before = fetched()
    no_data(og(pages.url .. "/loop"))
    assert.are.equal(before + 6, fetched())
  end)

  it("percent-encodes spaces and control bytes of the url in the request line", function()
    local st, b, raw = og(pages.url .. "/title-only?a=b c\r\nX-Evil: 1")
    assert.are.equal(200, st, raw)
    assert.are.equal("Just a title", b.title)
    assert.matches("/title-only?a=b%20c%0D%0AX-Evil:%201\tgetstream.io", pages.log(), 1, true)
  end)

  it("reads a chunked body", function()
    local st, b, raw = og(pages.url .. "/chunked")
    assert.are.equal(200, st, raw)
    assert.are.equal("Chunked page", b.title)
  end)

  it("parses malformed HTML as a browser would", function()
    local st, b, raw = og(pages.url .. "/malformed")
    assert.are.equal(200, st, raw)
    assert.are.equal("Broken page", b.title)
    assert.are.equal("article", b.type)
    assert.are.equal("in body", b.description)
  end)

  it("parses a page nested 200,000 deep in time (the parser sees 1024 levels)", function()
    local t0 = socket.gettime()
    local st, b, raw = og(pages.url .. "/deep")
    assert.are.equal(200, st, raw)
    assert.are.equal("Deep", b.title)
    assert.is_true(socket.gettime() - t0 < 2)
  end)

  it("decodes entities in attributes", function()
    local st, b, raw = og(pages.url .. "/entities")
    assert.are.equal(200, st, raw)
    assert.are.equal('Tom & Jerry "quoted" é\u{263A}', b.title)
    assert.are.equal("a<b>c \u{A9} 2024", b.description)
  end)

  it("answers 400 for a binary download, a 404 page, a page without a title, an unreachable host", function()
    no_data(og(pages.url .. "/binary"))
    no_data(og(pages.url .. "/missing"))
    no_data(og(pages.url .. "/no-title"))
    no_data(og("http://127.0.0.1:" .. server.free_port() .. "/"))
    no_data(og("https://127.0.0.1:" .. server.free_port() .. "/"))
  end)

  it("fetches https through TLS (certificate not verified)", function()
    local tls = require("helpers.tls").start()
    local url = "https://localhost:" .. tls.port .. "/page"
    local ok, err = pcall(function()
      no_data(og(url))   -- the peer answers JSON, not HTML
      assert.matches("no data for " .. url .. ": status 200, not an HTML page", s:error_log(), 1, true)
    end)
    tls.stop()
    assert(ok, err)
  end)

  it("gives up on a page that never ends at the 4-second deadline", function()
    local t0 = socket.gettime()
    no_data(og(pages.url .. "/endless"))
    local took = socket.gettime() - t0
    assert.is_true(took > 3.5 and took < 5.5, "took " .. took)
  end)

  it("reads a 1 GB page only up to the cap and parses what it read", function()
    local t0 = socket.gettime()
    local st, b, raw = og(pages.url .. "/huge")
    assert.are.equal(200, st, raw)
    assert.are.equal("Huge page", b.title)
    assert.is_true(socket.gettime() - t0 < 4)
    local sent
    for _ = 1, 100 do
      sent = tonumber(pages.log():match("sent\t/huge\t(%d+)"))
      if sent then break end
      socket.sleep(0.05)
    end
    assert.is_true(sent ~= nil and sent < 64 * 1024 * 1024, "sent " .. tostring(sent))
  end)

  it("answers 400 naming url for a missing url or one that is not http(s)", function()
    for _, url in ipairs({ false, "", "ftp://127.0.0.1/file", "javascript:alert(1)", "no scheme", "http://" }) do
      local st, b, raw = og(url or nil)
      assert.are.equal(400, st, raw)
      assert.are.equal(4, b.code)
      assert.is_table(b.exception_fields.url, raw)
    end
  end)

  it("needs a token of resource url or * for server tokens", function()
    local st, _, raw = og(pages.url .. "/title-only", { token = token(({ resource = "feed", action = "*",
      feed_id = "*" })) })
    assert.are.equal(403, st, raw)
    st = og(pages.url .. "/title-only", { token = token(({ resource = "url", action = "write" })) })
    assert.are.equal(403, st)
    st = og(pages.url .. "/title-only", { auth = false })
    assert.are.equal(401, st)
  end)

  it("logs no Lua errors", function()
    local log = s:error_log()
    assert.is_nil(log:find("unexpected error", 1, true), log)
    assert.is_nil(log:find("runtime error", 1, true), log)
  end)
end)
