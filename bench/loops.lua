-- bench/loops.lua MODE N INFLIGHT: N gets of one user with INFLIGHT calls at a
-- time, through one client, and one line "MODE calls_per_second failures".
--   parallel  client:parallel with INFLIGHT functions taking calls from one counter
--   luv       the client attached to luv's loop; INFLIGHT coroutines of the loop
--   cqueues   the client attached to a cqueues controller; INFLIGHT cq:wrap functions
-- The same calls as bench/throughput.lua's get (bench/common.lua's client).
package.path = "bench/?.lua;" .. package.path
local common = require "common" -- sets the paths of this checkout

local mode, n, inflight = arg[1], tonumber(arg[2] or 5000), tonumber(arg[3] or 32)
local client = common.client()
local user = client:user("bench-user")
local core = require "stream.core"

local left, failures = n, 0
-- one worker: takes calls from the counter until none is left
local function worker()
  while left > 0 do
    left = left - 1
    local res = user:get()
    if not res then failures = failures + 1 end
  end
end

local run = {}
function run.parallel()
  local fns = {}
  for i = 1, inflight do fns[i] = worker end
  client:parallel(fns)
end
function run.luv()
  local uv = require "luv"
  require("stream.loop.luv").attach(client)
  for _ = 1, inflight do coroutine.wrap(worker)() end
  uv.run()
end
function run.cqueues()
  local cq = require("cqueues").new()
  require("stream.loop.cqueues").attach(client, cq)
  for _ = 1, inflight do cq:wrap(worker) end
  assert(cq:loop())
end

assert(run[mode], "mode: parallel, luv or cqueues")
-- warm the connections first, outside the timing
left = inflight * 4
run.parallel()
left, failures = n, 0
local t0 = core.monotime()
run[mode]()
local elapsed = core.monotime() - t0
print(string.format("%s %.0f %d", mode, n / elapsed, failures))
client:close()
