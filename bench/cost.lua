-- bench/cost.lua: the loop bench/run runs under valgrind --tool=callgrind to count the
-- client-side instructions of one call (see bench/callgrind.lua for the method).
--
--   lua5.4 bench/cost.lua OP N        (OP: get, get-nogc, get-hook, get-hooks, get-hook-nogc,
--                                      get-hooks-nogc, create1k, create10k, pget, sign)
--
-- Connects to BENCH_BASE_URL (the fixed-response nginx), makes 20 warm-up calls, then N
-- calls of OP, sequentially on one kept-alive connection. pget: N user:get() through
-- client:parallel, 32 functions taking calls from one counter (as bench/throughput.lua
-- par), after a warm-up of 64 the same way. get-nogc: get with the Lua GC stopped after
-- the warm-up, so that get minus get-nogc is what the garbage collector costs per call
-- (callgrind charges a GC step to whichever function allocates when it runs, mostly
-- json_decode). sign: N core.hs256 signatures of the server-side claims (a client signs
-- its token once, at connect; this is that one-time cost, and the cost of each
-- client:create_user_token). get-hook: get with a trivial on_response hook (it counts
-- the calls); get-hooks: with that and a trivial on_request (it returns), so that
-- get-hook minus get is what the hooks cost per call (get-hook-nogc minus get-nogc: the
-- same without the garbage collector's share, which moves by about 1% of a get from run
-- to run). Two runs with different N differ only by the extra calls,
-- so (Ir(N2) - Ir(N1)) / (N2 - N1) is the cost of one call without the start-up. Every
-- answer is checked (an error raises).
package.path = "bench/?.lua;" .. package.path
local B = require "common"

local op, n = arg[1], tonumber(arg[2]) or 100
local nogc = op:match("%-nogc$") ~= nil
if nogc then op = op:gsub("%-nogc$", "") end
local hooks = op == "get-hook" or op == "get-hooks"
local with_request = op == "get-hooks"
if hooks then op = "get" end
local client = B.client()
if hooks then
  client:close()
  local calls = 0
  client = B.stream.connect(os.getenv("STREAM_API_KEY") or "local-api-key",
    os.getenv("STREAM_API_SECRET") or "local-api-secret-change-me-0123456789", {
      base_url = assert(os.getenv("BENCH_BASE_URL"), "set BENCH_BASE_URL"),
      on_response = function() calls = calls + 1 end,
      on_request = with_request and function() end or nil,
    })
end
local me = client:user("bench-user")
local data
if op == "create1k" then data = B.data(1000)
elseif op == "create10k" then data = B.data(10000)
else assert(op == "get" or op == "pget" or op == "sign",
  "op: get, get-hook, get-hooks (each also with -nogc), create1k, create10k, pget or sign") end

local function one(i)
  if op == "get" then return me:get() end
  return client:user("cost-" .. i):create(data)
end

if op == "sign" then
  local core = B.stream.core
  local secret = os.getenv("STREAM_API_SECRET") or "local-api-secret-change-me-0123456789"
  local claims = '{"resource":"*","action":"*","feed_id":"*"}'
  for _ = 1, 20 do assert(core.hs256(secret, claims)) end
  for _ = 1, n do assert(core.hs256(secret, claims)) end
elseif op == "pget" then
  local function par(count)
    local left = count
    local function worker()
      while left > 0 do
        left = left - 1
        assert(me:get())
      end
    end
    local fns = {}
    for i = 1, 32 do fns[i] = worker end
    for _, r in ipairs(client:parallel(fns)) do assert(not r.raised, r[2]) end
  end
  par(64)
  par(n)
else
  for i = 1, 20 do assert(one(i)) end
  if nogc then collectgarbage("stop") end
  for i = 1, n do assert(one(i)) end
end
client:close()
