-- bench/throughput.lua: lua-stream's throughput for one case, in requests a second.
--
--   lua5.4 bench/throughput.lua SERVER OP MODE N WARMUP
--
-- OP: get (user:get() of "bench-user"), create (client:user(unique id):create(~1 kB
-- data); create10k the same with ~10 kB), update (user:update(~1 kB data) of "bench-user").
-- MODE: seq (one call after
-- the other on one kept-alive connection) or par (client:parallel with BENCH_CONC,
-- default 32, functions, each taking calls from one shared counter until N are done:
-- 32 requests in flight all the time, as bench/rawcurl.c's multi loop and the 32
-- workers of bench/js/bench.js keep them). WARMUP calls of the same kind run first
-- (untimed), then N calls are timed with a wall clock (and os.clock, the process's CPU
-- time, for cpu_us= per call); every answer is checked (errors= counts failures; the
-- run fails if any). BENCH_BASE_URL names the server, BENCH_TAG makes create ids
-- unique per run; BENCH_CLIENT_NAME (default lua) names the client in the result. Prints one line:
--   bench client=lua server=.. op=.. mode=.. conc=.. n=.. seconds=.. rps=.. cpu_us=.. errors=.. connects=..
package.path = "bench/?.lua;" .. package.path
local B = require "common"

local server, op, mode = arg[1], arg[2], arg[3]
local n, warm = tonumber(arg[4]) or 2000, tonumber(arg[5]) or 200
local conc = tonumber(os.getenv("BENCH_CONC")) or 32
local tag = os.getenv("BENCH_TAG") or tostring(os.time())
local bytes = 1000
if op == "create10k" then op, bytes = "create", 10000 end
assert(op == "get" or op == "create" or op == "update", "op: get, create, create10k or update")
assert(mode == "seq" or mode == "par", "mode: seq or par")

local client = B.client()
local data = B.data(bytes)
local me = client:user("bench-user")
assert(me:get_or_create(B.profile()))

local seq_id = 0
local function one()
  if op == "get" then
    return me:get()
  elseif op == "create" then
    seq_id = seq_id + 1
    return client:user(tag .. "-" .. seq_id):create(data)
  else
    return me:update(data)
  end
end

local first_error
local function check(res, err)
  if res then return 0 end
  if not first_error then first_error = tostring(err) end
  return 1
end

-- count calls, one after the other, or spread over `conc` functions in client:parallel.
local function run(count)
  local errors = 0
  if mode == "seq" then
    for _ = 1, count do errors = errors + check(one()) end
    return errors
  end
  local left = count
  local function worker()
    while left > 0 do
      left = left - 1
      errors = errors + check(one())
    end
  end
  local fns = {}
  for i = 1, math.min(conc, count) do fns[i] = worker end
  for _, r in ipairs(client:parallel(fns)) do
    if r.raised then errors = errors + check(nil, r[2]) end
  end
  return errors
end

if warm > 0 then run(warm) end
local before = client:stats().connects
local t0, c0 = B.now(), os.clock()
local errors = run(n)
local t1, c1 = B.now(), os.clock()
local connects = client:stats().connects - before
if first_error then io.stderr:write("throughput.lua: ", first_error, "\n") end

local dt = t1 - t0
B.emit({ "client", "server", "op", "mode", "conc", "n", "seconds", "rps", "cpu_us", "errors", "connects" }, {
  client = os.getenv("BENCH_CLIENT_NAME") or "lua", server = server, op = op, mode = mode, conc = mode == "seq" and 1 or conc,
  n = n, seconds = string.format("%.6f", dt), rps = string.format("%.1f", n / dt),
  cpu_us = string.format("%.1f", (c1 - c0) * 1e6 / n),
  errors = errors, connects = connects,
})
client:close()
os.exit(errors == 0 and 0 or 1)
