-- fuzz/server.lua: hostile requests against the local server. Each request
-- is a seed from fuzz/corpus/server/ (one per endpoint: users, feeds,
-- follows, activities, reactions, collections, updates, notification reads,
-- personalization, analytics, moderation; a target starting with "/" is a
-- path outside /api/v1.0/)
-- with its placeholders filled in and then mutated: path segments, query
-- values, auth and other headers, the method, and the JSON body (values of
-- other types, huge and deep values, removed and added keys, cut and
-- flipped bytes). Requests go over raw HTTP/1.1 on loopback (luasocket), so
-- the answer is seen exactly as sent.
--
--   fuzz/server                   starts a private server and runs this file
--   lua5.4 fuzz/server.lua        against a running server (STREAM_LOCAL_URL, ...)
--
-- Environment: STREAM_LOCAL_URL, STREAM_API_KEY, STREAM_API_SECRET and
--   FUZZ_SERVER_COUNT    20000  requests to send
--   FUZZ_SERVER_SECONDS  60     stop sending after this long (not a failure)
--   FUZZ_SERVER_SEED     time   random seed (printed, so a run can be repeated)
--   FUZZ_SERVER_OUT      build/fuzz/server  where failing requests are written
--
-- Checked for every request: a complete HTTP answer arrives (no dropped or
-- stalled connection), its status is below 500, its body is JSON, and an
-- error (4xx) is a Stream error body (detail, status_code equal to the
-- status, code, exception), and so is a redirect (301 for a path without its
-- trailing slash; a 302, the analytics redirect, names an http(s) location in
-- its JSON body instead). Every body the seeds write carries a marker
-- ("fz" in activities, reactions' data and entries, "up" in updates); after
-- the run every activity in the seeded feeds and every reaction on the seeded
-- activities is read back (with the real client), and each marker found must
-- belong to a request that was answered 2xx: a refused request wrote nothing
-- (no half-written batch, update or add). (A value a mutation put in place of
-- a marker names no request and is not counted.)
--
-- Exit status 0 when every check passed; the last line says PASS or FAIL.

local function script_dir()
  local src = debug.getinfo(1, "S").source
  return src:sub(1, 1) == "@" and src:sub(2):match("^(.*)/[^/]*$") or "."
end
local ROOT = script_dir() .. "/.."
package.path = ROOT .. "/lua/?.lua;" .. ROOT .. "/lua/?/init.lua;" .. package.path
package.cpath = ROOT .. "/build/5.4/?.so;" .. package.cpath

local socket = require "socket"
local stream = require "stream"
local json = stream.json

local function env(name, default)
  local v = os.getenv(name)
  if v == nil or v == "" then return default end
  return v
end

local COUNT = math.floor(tonumber(env("FUZZ_SERVER_COUNT", "20000")))
local SECONDS = tonumber(env("FUZZ_SERVER_SECONDS", "60"))
local SEED = math.floor(tonumber(env("FUZZ_SERVER_SEED", tostring(os.time()))))
local OUT = env("FUZZ_SERVER_OUT", ROOT .. "/build/fuzz/server")
local SERVER = assert(env("STREAM_LOCAL_URL"), "STREAM_LOCAL_URL is not set (run fuzz/server)")
local API_KEY = env("STREAM_API_KEY", "local-api-key")
local API_SECRET = env("STREAM_API_SECRET", "local-api-secret-change-me-0123456789")
local HOST, PORT = SERVER:match("^http://([^:/]+):(%d+)")
assert(HOST == "127.0.0.1" or HOST == "localhost", "loopback only: " .. SERVER)
PORT = tonumber(PORT)

math.randomseed(SEED)
local random = math.random
local hs256 = stream.core.hs256
local SERVER_TOKEN = hs256(API_SECRET, '{"resource":"*","action":"*","feed_id":"*"}')
local USER_TOKEN = hs256(API_SECRET, '{"user_id":"fz-u0"}')
-- the analytics redirect's token, a query value ({T} in a seed)
local REDIRECT_TOKEN = hs256(API_SECRET, '{"resource":"redirect_and_track","action":"*","user_id":"*"}')

---------------------------------------------------------------- seeds

local seeds = {}
do
  local dir = ROOT .. "/fuzz/corpus/server"
  local p = assert(io.popen("ls " .. dir))
  for name in p:lines() do
    if name:match("%.req$") then
      local f = assert(io.open(dir .. "/" .. name, "rb"))
      local text = f:read("a")
      f:close()
      local line, rest = text:match("^([^\n]*)\n(.*)$")
      local method, target = line:match("^(%u+) (.*)$")
      local headers = {}
      local head, b = rest:match("^(.-)\n(.*)$")
      for h in (head or ""):gmatch("[^\n]+") do headers[#headers + 1] = h end
      local body = b or ""
      seeds[#seeds + 1] = { name = name, method = method, target = target, headers = headers,
        body = body }
    end
  end
  p:close()
  assert(#seeds > 0, "no seeds in " .. dir)
end

---------------------------------------------------------------- raw HTTP

local conn
local function connect()
  if conn then conn:close() end
  conn = assert(socket.tcp())
  conn:settimeout(10)
  assert(conn:connect(HOST, PORT))
end

-- send(method, target, headers, body) -> {status =, headers =, body =} or nil, why
local function send(method, target, headers, body)
  if not conn then connect() end
  local lines = { method .. " " .. target .. " HTTP/1.1", "Host: 127.0.0.1:" .. PORT }
  for _, h in ipairs(headers) do lines[#lines + 1] = h end
  if body and body ~= "" then lines[#lines + 1] = "Content-Length: " .. #body end
  local req = table.concat(lines, "\r\n") .. "\r\n\r\n" .. (body or "")
  local _, err = conn:send(req)
  if err then
    -- the server closed a kept-alive connection before this request: once more
    connect()
    _, err = conn:send(req)
    if err then return nil, "send: " .. err end
  end
  local status_line, e = conn:receive("*l")
  if not status_line then
    return nil, "no answer (" .. tostring(e) .. ")"
  end
  local status = tonumber(status_line:match("^HTTP/1%.%d (%d%d%d)"))
  if not status then return nil, "bad status line " .. status_line:sub(1, 80) end
  local hdrs, len, chunked, close = {}, nil, false, false
  while true do
    local l = conn:receive("*l")
    if not l then return nil, "headers cut" end
    if l == "" then break end
    local k, v = l:match("^([^:]+):%s*(.*)$")
    if k then
      k = k:lower()
      hdrs[k] = v
      if k == "content-length" then len = tonumber(v) end
      if k == "transfer-encoding" and v:lower():find("chunked") then chunked = true end
      if k == "connection" and v:lower():find("close") then close = true end
    end
  end
  local out
  if method == "HEAD" or status == 204 or status == 304 then
    out = ""
  elseif chunked then
    local parts = {}
    while true do
      local sz = conn:receive("*l")
      if not sz then return nil, "chunk cut" end
      local n = tonumber(sz:match("^%x+"), 16)
      if not n then return nil, "bad chunk size" end
      if n == 0 then conn:receive("*l"); break end
      local piece = conn:receive(n)
      if not piece then return nil, "chunk cut" end
      parts[#parts + 1] = piece
      conn:receive("*l")
    end
    out = table.concat(parts)
  elseif len then
    out = len > 0 and conn:receive(len) or ""
    if not out then return nil, "body cut" end
  else
    out = conn:receive("*a")
    close = true
  end
  if close then conn:close(); conn = nil end
  return { status = status, headers = hdrs, body = out }
end

---------------------------------------------------------------- values

local WORDS = { "", ".", "..", "%2e%2e", "%00", "%", "%zz", "a%2fb", "*", ":", "user:x", "SU:fz-u0",
  "SO:food:c1", "null", "-1", "0", "1e309", "99999999999999999999", "\u{e9}t\u{e9}",
  "\u{1F600}", "fz-u0", "user", "timeline", "notification", "'", '"', "<", "{}", "[]", ",", ",,",
  "true", "2026-11-28T10:00:00", "2026-13-45T99:99:99", "0b0b0b0b-0000-4000-8000-000000000001" }

local function long_string(n, c)
  return string.rep(c or "x", n)
end

local function word()
  local r = random(20)
  if r == 1 then return long_string(random(200, 3000)) end
  if r == 2 then return tostring(random(-1000, 100000)) end
  return WORDS[random(#WORDS)]
end

-- a value of any JSON type, sometimes awkward
local function value(depth)
  depth = depth or 0
  local r = random(22)
  if r == 1 then return random(-5, 5) end
  if r == 2 then return 2 ^ 53 + 1 end
  if r == 3 then return 1e308 end
  if r == 4 then return -0.5 end
  if r == 5 then return math.maxinteger end
  if r == 6 then return true end
  if r == 7 then return false end
  if r == 8 then return json.null end
  if r == 9 then return stream.array({}) end
  if r == 10 then return {} end
  if r == 11 then return long_string(random(1, 12000)) end
  if r == 12 and depth < 3 then
    local a = stream.array({})
    for i = 1, random(0, 5) do a[i] = value(depth + 1) end
    return a
  end
  if r == 13 and depth < 3 then return { k = value(depth + 1), [word()] = value(depth + 1) } end
  if r == 14 then
    local a = stream.array({})
    for i = 1, random(1000, 1200) do a[i] = "user:fz" .. (i % 7) end
    return a
  end
  if r == 15 then return "\u{FFFF}\u{10FFFF}" end
  return word()
end

-- a JSON text nested n deep (the codec refuses to build one)
local function deep_text(n)
  return string.rep("[", n) .. "1" .. string.rep("]", n)
end

---------------------------------------------------------------- mutators

local function mutate_path(path)
  local segs = {}
  for s in path:gmatch("[^/]+") do segs[#segs + 1] = s end
  local r = random(5)
  local i = random(math.max(#segs, 1))
  if r == 1 then segs[i] = word()
  elseif r == 2 then table.remove(segs, i)
  elseif r == 3 then table.insert(segs, i, word())
  elseif r == 4 then segs[i] = (segs[i] or "") .. word()
  else segs[#segs + 1] = word() end
  -- spaces and control characters would break the request line itself
  local out = table.concat(segs, "/"):gsub("[%s%c]", "%%20")
  return out .. (random(4) > 1 and "/" or "")
end

local function mutate_query(pairs_)
  local r = random(5)
  local i = random(math.max(#pairs_, 1))
  if r == 1 and pairs_[i] then pairs_[i][2] = word()
  elseif r == 2 and pairs_[i] then table.remove(pairs_, i)
  elseif r == 3 and pairs_[i] then table.insert(pairs_, { pairs_[i][1], word() })
  elseif r == 4 then
    local keys = { "limit", "offset", "id_lt", "id_gte", "ids", "foreign_ids", "timestamps",
      "mark_read", "mark_seen", "keep_history", "soft", "filter", "user_id", "enrich",
      "withReactionCounts", "withRecentReactions", "recentReactionsLimit", "ranking",
      "activity_copy_limit", "with_activity_data", "include_deleted", "api_key", "get_or_create" }
    pairs_[#pairs_ + 1] = { keys[random(#keys)], word() }
  else
    pairs_[#pairs_ + 1] = { word(), word() }
  end
  for _, p in ipairs(pairs_) do
    p[1] = p[1]:gsub("[%s%c&=#]", "%%20")
    p[2] = p[2]:gsub("[%s%c&#]", "%%20")
  end
end

local function mutate_headers(h)
  local r = random(9)
  if r == 1 then h.auth = nil
  elseif r == 2 then h.auth = "Bearer " .. SERVER_TOKEN
  elseif r == 3 then h.auth = SERVER_TOKEN:sub(1, -3) .. "xx"
  elseif r == 4 then h.auth = USER_TOKEN
  elseif r == 5 then h.auth_type = word()
  elseif r == 6 then h.extra[#h.extra + 1] = "Content-Type: " .. (random(2) == 1 and "text/plain" or word())
  elseif r == 7 then h.extra[#h.extra + 1] = "Authorization: " .. SERVER_TOKEN
  elseif r == 8 then h.auth = hs256(API_SECRET, '{"resource":"feed","action":"read","feed_id":"*"}')
  else h.extra[#h.extra + 1] = "X-Junk: " .. long_string(random(1, 8000)) end
end

-- structured: a random node of the decoded body changed
local function mutate_json(doc)
  if type(doc) ~= "table" then return value() end
  local nodes = { { doc } }
  local function walk(t, d)
    if d > 4 then return end
    for k, v in pairs(t) do
      nodes[#nodes + 1] = { t, k }
      if type(v) == "table" then walk(v, d + 1) end
    end
  end
  walk(doc, 0)
  local n = nodes[random(#nodes)]
  local t, k = n[1], n[2]
  if k == nil then
    t[word()] = value()
  else
    local r = random(4)
    if r == 1 then t[k] = value()
    elseif r == 2 then
      if type(k) == "number" then table.remove(t, k) else t[k] = nil end
    elseif r == 3 and type(t[k]) == "table" then
      local keys = { "id", "time", "to", "foreign_id", "actor", "verb", "object", "target", "data",
        "user_id", "kind", "activity_id", "parent", "set", "unset", "changes", "activities",
        "feeds", "source", "target_feeds", "__proto__", "duration" }
      t[k][keys[random(#keys)]] = value()
    else
      t[k] = value()
    end
  end
  return doc
end

local function mutate_bytes(body)
  local r = random(6)
  if #body == 0 then return word() end
  local i = random(#body)
  if r == 1 then return body:sub(1, i - 1) end
  if r == 2 then return body:sub(1, i - 1) .. string.char(random(0, 255)) .. body:sub(i + 1) end
  if r == 3 then
    local bits = { '"', "{", "}", "[", "]", ",", ":", "\\", "\\u0000", "\\ud800", "\0", "\255", "-",
      "1e999", "nul" }
    return body:sub(1, i - 1) .. bits[random(#bits)] .. body:sub(i)
  end
  if r == 4 then return deep_text(random(100, 3000)) end
  if r == 5 then return body .. body end
  return body:sub(i) .. body:sub(1, i - 1)
end

---------------------------------------------------------------- a request

local fill = {
  U = "fz-u0", U2 = "fz-u1", F = "fz-f0", F2 = "fz-f1", C = "c1",
  A = "0b0b0b0b-0000-4000-8000-000000000001", R = "0b0b0b0b-0000-4000-8000-000000000002",
  T = REDIRECT_TOKEN,
}
local FEEDS = { "fz-f0", "fz-f1", "fz-f2" }
local ACTIVITIES, REACTIONS = {}, {}

local function fill_in(text, marker)
  return (text:gsub("{(%u%d?)}", function(k)
    if k == "M" then return marker end
    if k == "F" or k == "F2" then return FEEDS[random(#FEEDS)] end
    if k == "A" and #ACTIVITIES > 0 then return ACTIVITIES[random(#ACTIVITIES)] end
    if k == "R" and #REACTIONS > 0 then return REACTIONS[random(#REACTIONS)] end
    return fill[k]
  end))
end

local function build(seed, marker, mutations)
  local target = fill_in(seed.target, marker)
  local path, query = target:match("^([^?]*)%??(.*)$")
  local q = {}
  for pair in query:gmatch("[^&]+") do
    local k, v = pair:match("^([^=]*)=?(.*)$")
    q[#q + 1] = { k, v }
  end
  local h = { auth = SERVER_TOKEN, auth_type = "jwt", extra = {} }
  for _, line in ipairs(seed.headers) do h.extra[#h.extra + 1] = fill_in(line, marker) end
  local method = seed.method
  local body = fill_in(seed.body, marker)
  local api_key = API_KEY
  for _ = 1, mutations do
    local r = random(12)
    if r <= 2 then path = mutate_path(path)
    elseif r <= 4 then mutate_query(q)
    elseif r == 5 then mutate_headers(h)
    elseif r == 6 then
      local ms = { "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS" }
      method = ms[random(#ms)]
    elseif r == 7 then api_key = random(2) == 1 and word() or nil
    elseif r <= 10 and body ~= "" then
      local ok, doc = pcall(json.decode, body)
      if ok then
        local ok2, text = pcall(json.encode, mutate_json(doc))
        if ok2 and type(text) == "string" then body = text end
      else
        body = mutate_bytes(body)
      end
    else
      body = mutate_bytes(body)
    end
  end
  local parts = {}
  if api_key then parts[1] = "api_key=" .. api_key:gsub("[%s%c&#]", "%%20") end
  for _, p in ipairs(q) do parts[#parts + 1] = p[1] .. "=" .. p[2] end
  local headers = {}
  if h.auth then headers[#headers + 1] = "Authorization: " .. h.auth end
  if h.auth_type then headers[#headers + 1] = "Stream-Auth-Type: " .. h.auth_type end
  local has_type = false
  for _, line in ipairs(h.extra) do
    headers[#headers + 1] = line
    if line:lower():find("^content%-type") then has_type = true end
  end
  if body ~= "" and not has_type then headers[#headers + 1] = "Content-Type: application/json" end
  -- a seed's target starting with "/" is a path of its own (/personalization/, /analytics/)
  local full = seed.target:sub(1, 1) == "/" and "/" .. path:gsub("^/+", "") or "/api/v1.0/" .. path:gsub("^/+", "")
  return method, full .. "?" .. table.concat(parts, "&"), headers, body
end

---------------------------------------------------------------- checks

local failures, failed = 0, {}
local function fail(what, method, target, headers, body)
  failures = failures + 1
  if failures <= 20 then
    io.stderr:write(string.format("fuzz/server: %s\n  %s %s\n", what, method, target:sub(1, 300)))
  end
  os.execute("mkdir -p '" .. OUT .. "'")
  local f = io.open(string.format("%s/failure-%d-%d.http", OUT, SEED, failures), "wb")
  if f then
    f:write(method, " ", target, " HTTP/1.1\r\n", table.concat(headers, "\r\n"), "\r\n\r\n", body)
    f:close()
  end
  failed[#failed + 1] = what
end

local function check_answer(res, method)
  if res.status >= 500 then return "status " .. res.status end
  if method == "HEAD" then return nil end
  local ok, doc = pcall(json.decode, res.body)
  if not ok then return "status " .. res.status .. " with a body that is not JSON: " .. res.body:sub(1, 120) end
  if res.status == 302 then
    -- the analytics redirect: a JSON body naming where it leads
    if type(doc) ~= "table" or type(doc.location) ~= "string" or not doc.location:find("^[Hh][Tt][Tt][Pp][Ss]?://") then
      return "302 without an http(s) location in its body: " .. res.body:sub(1, 160)
    end
    return nil
  end
  if res.status >= 300 then
    if type(doc) ~= "table" or type(doc.detail) ~= "string" or doc.status_code ~= res.status
        or type(doc.code) ~= "number" or type(doc.exception) ~= "string" then
      return "status " .. res.status .. " without a Stream error body: " .. res.body:sub(1, 160)
    end
  end
  return nil
end

---------------------------------------------------------------- setup

local function must(method, target, body)
  local headers = { "Authorization: " .. SERVER_TOKEN, "Stream-Auth-Type: jwt",
    "Content-Type: application/json" }
  local res, err = send(method, "/api/v1.0/" .. target .. (target:find("?", 1, true) and "&" or "?")
    .. "api_key=" .. API_KEY, headers, body)
  assert(res, err)
  assert(res.status < 300, method .. " " .. target .. ": " .. res.status .. " " .. res.body)
  return json.decode(res.body)
end

for i = 0, 3 do must("POST", "user/?get_or_create=true", '{"id":"fz-u' .. i .. '","data":{"n":' .. i .. '}}') end
must("POST", "collections/food/", '{"id":"c1","data":{"name":"burger"},"user_id":"fz-u0"}')
for i, f in ipairs(FEEDS) do
  local a = must("POST", "feed/user/" .. f .. "/", json.encode({ actor = "SU:fz-u0", verb = "post",
    object = "SO:food:c1", foreign_id = "post:seed", time = "2026-11-28T10:00:00.000000",
    fz = "seed" }))
  ACTIVITIES[#ACTIVITIES + 1] = a.id
  local r = must("POST", "reaction/", json.encode({ kind = "like", activity_id = a.id,
    user_id = "fz-u" .. i, data = { fz = "seed" } }))
  REACTIONS[#REACTIONS + 1] = r.id
  must("POST", "feed/timeline/" .. f .. "/follows/", json.encode({ target = "user:" .. FEEDS[i % #FEEDS + 1] }))
end

---------------------------------------------------------------- the run

local acked = { seed = true }   -- markers of requests answered 2xx
local answered = {}             -- marker -> the request and its status, for the report
local t0 = socket.gettime()
local sent, statuses, by_seed = 0, {}, {}
print(string.format("fuzz/server: seed %d, %d seeds, up to %d requests or %d s against %s",
  SEED, #seeds, COUNT, SECONDS, SERVER))
for n = 1, COUNT do
  if socket.gettime() - t0 > SECONDS then break end
  local seed = seeds[random(#seeds)]
  local marker = "m" .. n
  local method, target, headers, body = build(seed, marker, random(0, 4))
  local res, err = send(method, target, headers, body)
  sent = sent + 1
  if not res then
    fail("connection: " .. err .. " (" .. seed.name .. ")", method, target, headers, body)
    conn = nil
  else
    statuses[res.status] = (statuses[res.status] or 0) + 1
    local why = check_answer(res, method)
    if why then fail(why .. " (" .. seed.name .. ")", method, target, headers, body) end
    if res.status >= 200 and res.status < 300 then acked[marker] = true end
    answered[marker] = method .. " " .. target .. " -> " .. res.status .. " " .. tostring(body):sub(1, 300)
    by_seed[seed.name] = (by_seed[seed.name] or 0) + 1
  end
end
local elapsed = socket.gettime() - t0
if conn then conn:close() end

---------------------------------------------------------------- afterwards

-- every marker in what is stored must come from a request answered 2xx
local client = stream.connect(API_KEY, API_SECRET, "1", { base_url = SERVER })
local seen, stray = 0, 0
local function look(where, t)
  for _, key in ipairs({ "fz", "up" }) do
    local m = t[key]
    -- a mutation may have changed the marker itself ("m1271" -> "m01271"): such a value
    -- names no request sent (none is in `answered`) and is not counted
    if type(m) == "string" and (m == "seed" or answered[m]) then
      seen = seen + 1
      if not acked[m] then
        stray = stray + 1
        if stray <= 10 then
          io.stderr:write(string.format("fuzz/server: %s holds %s=%s from a refused request (%s)\n",
            where, key, tostring(m), tostring(answered[m])))
        end
      end
    end
  end
end
local reads_ok = true
for _, f in ipairs(FEEDS) do
  for _, slug in ipairs({ "user", "timeline" }) do
    local count = 0
    for a, err in client:feed(slug, f):each({ limit = 100 }) do
      if a == false then
        reads_ok = false
        io.stderr:write("fuzz/server: reading " .. slug .. ":" .. f .. ": " .. tostring(err) .. "\n")
        break
      end
      look(slug .. ":" .. f .. " activity " .. tostring(a.id), a)
      count = count + 1
      if count > 200000 then break end
    end
  end
end
for _, id in ipairs(ACTIVITIES) do
  local count = 0
  for page, err in client.reactions:pages({ activity_id = id, limit = 25 }) do
    if page == false then
      reads_ok = false
      io.stderr:write("fuzz/server: reading reactions: " .. tostring(err) .. "\n")
      break
    end
    for _, r in ipairs(page.results) do
      if type(r.data) == "table" then look("reaction " .. tostring(r.id), r.data) end
    end
    count = count + 1
    if count > 10000 then break end
  end
end
client:close()

local codes = {}
for status, n in pairs(statuses) do codes[#codes + 1] = string.format("%d:%d", status, n) end
table.sort(codes)
print(string.format("fuzz/server: %d requests in %.1f s (%.0f/s), %d seeds used; answers %s",
  sent, elapsed, sent / elapsed, (function() local k = 0; for _ in pairs(by_seed) do k = k + 1 end; return k end)(),
  table.concat(codes, " ")))
print(string.format("fuzz/server: %d markers read back, %d from refused requests", seen, stray))
local ok = failures == 0 and stray == 0 and reads_ok and sent > 0
print(string.format("fuzz/server: %s (%d failed requests%s)", ok and "PASS" or "FAIL", failures,
  failures > 0 and (", inputs in " .. OUT) or ""))
os.exit(ok and 0 or 1)
