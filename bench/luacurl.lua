-- bench/luacurl.lua: the competent hand-written peer of lua-stream under LuaJIT:
-- Debian's lua-curl binding (`apt-get install lua-curl lua-cjson`) and lua-cjson,
-- one easy handle with its options set once, the same requests lua-stream sends
-- (URL, api_key, JWT, the other headers, the same data), every answer decoded.
--
--   luajit bench/luacurl.lua OP N WARM     (OP: get, create1k, create10k)
--
-- Reads BENCH_BASE_URL (".../api/"), STREAM_API_KEY, STREAM_API_SECRET (the JWT is
-- signed with lua-stream's core, once, as a caller of the binding would sign it once).
-- Prints one result line as bench/throughput.lua does (client=luacurl).
package.path = "bench/?.lua;" .. package.path
local B = require "common"
local curl = require "curl"
local cjson = require "cjson"

local op, n, warm = arg[1], tonumber(arg[2]) or 2000, tonumber(arg[3]) or 200
local base = assert(os.getenv("BENCH_BASE_URL"), "BENCH_BASE_URL")
local key = os.getenv("STREAM_API_KEY") or "local-api-key"
local secret = os.getenv("STREAM_API_SECRET") or "local-api-secret-change-me-0123456789"
local token = B.stream.core.hs256(secret, '{"resource":"*","action":"*","feed_id":"*"}')

local c = curl.easy_init()
local chunks, nchunks = {}, 0
c:setopt(curl.OPT_WRITEFUNCTION, function(s)
  nchunks = nchunks + 1
  chunks[nchunks] = s
  return #s
end)
c:setopt(curl.OPT_NOSIGNAL, 1)
c:setopt(curl.OPT_TCP_NODELAY, 1)
c:setopt(curl.OPT_ACCEPT_ENCODING, "")
local common = {
  "Authorization: " .. token, "stream-auth-type: jwt", "X-Stream-Client: stream-lua-client-0.1.0",
  "Accept: application/json", "User-Agent: stream-lua-client/0.1.0",
}
local body_headers = { "Content-Type: application/json", "Expect:" }
for _, h in ipairs(common) do body_headers[#body_headers + 1] = h end

local data
if op == "create1k" then data = B.data(1000)
elseif op == "create10k" then data = B.data(10000)
else assert(op == "get", "op: get, create1k or create10k") end
if op == "get" then
  c:setopt(curl.OPT_HTTPHEADER, common)
  c:setopt(curl.OPT_URL, base .. "v1.0/user/bench-user/?api_key=" .. key)
else
  c:setopt(curl.OPT_HTTPHEADER, body_headers)
  c:setopt(curl.OPT_URL, base .. "v1.0/user/?api_key=" .. key)
end

local seq = 0
local function one()
  nchunks = 0
  if op ~= "get" then
    seq = seq + 1
    c:setopt(curl.OPT_POSTFIELDS, cjson.encode({ id = "lc-" .. seq, data = data }))
  end
  local ok = c:perform()
  local value = ok and cjson.decode(nchunks == 1 and chunks[1] or table.concat(chunks, "", 1, nchunks))
  return value ~= nil and type(value) == "table" and value.id ~= nil
end

local errors = 0
for _ = 1, warm do if not one() then errors = errors + 1 end end
local t0, c0 = B.now(), os.clock()
for _ = 1, n do if not one() then errors = errors + 1 end end
local t1, c1 = B.now(), os.clock()
local dt = t1 - t0
B.emit({ "client", "server", "op", "mode", "conc", "n", "seconds", "rps", "cpu_us", "errors" }, {
  client = "luacurl", server = "fixed", op = op, mode = "seq", conc = 1, n = n,
  seconds = string.format("%.6f", dt), rps = string.format("%.1f", n / dt),
  cpu_us = string.format("%.1f", (c1 - c0) * 1e6 / n), errors = errors,
})
