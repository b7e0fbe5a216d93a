-- bench/soak.lua: a long run of mixed users calls (create, get, update, delete)
-- against the local server with faults sprinkled in, checking that nothing the
-- client wrote is lost, that nothing crashes and that memory stays flat.
--
--   bench/soak                       starts a private server and runs this file
--   lua5.4 bench/soak.lua            against a server that is already running
--                                    with STREAM_LOCAL_FAULTS=1 (see below)
--
-- Environment: STREAM_LOCAL_URL (the server, e.g. http://127.0.0.1:8000),
-- STREAM_API_KEY, STREAM_API_SECRET (as server/start prints them), and
--   SOAK_CALLS       200000  users calls to make (retries not counted)
--   SOAK_USERS       1000    distinct user ids
--   SOAK_TASKS       16      concurrent tasks (client:parallel); each owns its
--                            own users, so calls on one user never overlap
--   SOAK_FAULT_RATE  0.03    share of calls a programmed fault is queued before
--   SOAK_SECONDS     3600    the run stops (and fails) after this long
--   SOAK_WARMUP      20000   calls before the memory baseline is taken
--   SOAK_SEED        time    random seed (printed, so a run can be repeated)
--
-- Faults are programmed through /_local/faults and hit whichever request comes
-- next: 503 (once or twice), dropped connections, short delays (the answer
-- comes before the client's timeout), long delays (the client times out while
-- the server still handles the request afterwards), truncated bodies, and 429
-- with X-RateLimit-Reset 0 or 1 s ahead. The client runs with retries on.
--
-- The model of what is stored: for every user a set of possible states (a data
-- version, or 0 for "no such user"). A successful write, or a read, makes it
-- exactly one state. A write that failed in a way that proves it was refused
-- (one attempt, answered 4xx) leaves it as it was. A write that failed any
-- other way (timeout, transport error, 5xx, or after several attempts) may or
-- may not have been applied: both possibilities are kept, and a later read or
-- write settles them. A user whose call timed out (or hit any transport
-- error, or took longer than the timeout) is left alone for SETTLE seconds, so
-- a request the server still handles after the client gave up cannot land
-- after a later write. Every read is checked against the model; at the end
-- every user is read once more (faults cleared) and must hold one of its
-- possible states, and exactly the last successful write where no failed
-- write came after it.
--
-- Memory: VmRSS of this process (/proc/self/status) is sampled every 2000
-- calls; after the warm-up it must stay within 1 MiB (max - min).
--
-- Exit status 0 when every check passed; the last line says PASS or FAIL.

local function script_dir()
  local src = debug.getinfo(1, "S").source
  local dir = src:sub(1, 1) == "@" and src:sub(2):match("^(.*)/[^/]*$") or "."
  return dir
end
local ROOT = script_dir() .. "/.."
package.path = ROOT .. "/lua/?.lua;" .. ROOT .. "/lua/?/init.lua;" .. package.path
package.cpath = ROOT .. "/build/5.4/?.so;" .. package.cpath

local stream = require "stream"
local core = stream.core
local C = dofile(ROOT .. "/bench/soak_common.lua")
local env, num = C.env, C.num

local CALLS = math.floor(num("SOAK_CALLS", 200000))
local USERS = math.floor(num("SOAK_USERS", 1000))
local TASKS = math.floor(num("SOAK_TASKS", 16))
local FAULT_RATE = num("SOAK_FAULT_RATE", 0.03)
local SECONDS = num("SOAK_SECONDS", 3600)
local WARMUP = math.floor(num("SOAK_WARMUP", math.min(20000, CALLS // 10)))
local SEED = math.floor(num("SOAK_SEED", os.time()))
local SERVER = assert(env("STREAM_LOCAL_URL"), "STREAM_LOCAL_URL is not set (run bench/soak)")
local API_KEY = env("STREAM_API_KEY", "local-api-key")
local API_SECRET = env("STREAM_API_SECRET", "local-api-secret-change-me-0123456789")

local TIMEOUT = 0.5                    -- the client's timeout for one attempt
local SETTLE = C.SETTLE                -- the delay faults are soak_common.lua's
local SAMPLE_EVERY = 2000
local RSS_LIMIT_KB = 1024

math.randomseed(SEED)
local random = math.random
local now = core.monotime

-------------------------------------------------------------------- the data

local NAMES = { "plain", "Zo\u{eb}", "\u{674e}\u{96f7}", "\u{1F600} smile", 'quote " and \\',
  "tab\tnew\nline", "" }
local PAD = { "x", "\u{e9}", "\u{20ac}", "\u{1F680}" }

-- The data of version v of user u: deterministic, so the run keeps only
-- version numbers. Integers, floats that need 17 digits, strings in several
-- scripts, null, empty and non-empty arrays, nesting, and a filler from 0 to
-- about 8 kB so the sizes vary.
local function make_data(u, v)
  local tags = stream.array({})
  for i = 1, v % 6 do tags[i] = (v * i) % 97 end
  return {
    v = v,
    user = u,
    big = v * 1000003,
    score = v / 7,
    half = v + 0.5,
    name = NAMES[v % #NAMES + 1],
    flag = v % 2 == 0,
    none = stream.null,
    tags = tags,
    nested = { level = v % 5, list = { v, tostring(v), { deep = true, empty = {} } } },
    pad = string.rep(PAD[v % #PAD + 1], (v * 131) % 2000),
  }
end

-- same(sent, got): got (decoded from the server) holds exactly sent
local function same(a, b)
  if type(a) ~= type(b) then return false end
  if type(a) == "number" then return math.type(a) == math.type(b) and a == b end
  if type(a) ~= "table" then return a == b end
  local array = getmetatable(a) == core.array_mt or rawlen(a) > 0
  if array ~= (getmetatable(b) == core.array_mt) then return false end
  local n = 0
  for k, x in next, a do
    n = n + 1
    if not same(x, rawget(b, k)) then return false end
  end
  for _ in next, b do n = n - 1 end
  return n == 0
end

-------------------------------------------------------------------- the model

local ids, state, settle_at = {}, {}, {}
for u = 1, USERS do
  ids[u] = string.format("soak-%d-%d", SEED % 100000, u)
  state[u] = { 0 }   -- unknown users do not exist yet
  settle_at[u] = 0
end

local function has(set, v)
  for i = 1, #set do if set[i] == v then return true end end
  return false
end
local function add(set, v)
  if not has(set, v) then set[#set + 1] = v end
end
local function set_text(set)
  local t = {}
  for i = 1, #set do t[i] = tostring(set[i]) end
  return "{" .. table.concat(t, ",") .. "}"
end

local counts = {
  started = 0, calls = 0, ok = 0, errors = {}, ops = {}, faults = {}, violations = 0, raised = 0,
  ambiguous = 0, settles = 0,
}
local violation, violations = C.violations(counts, 20)
local bump, refused, err_key = C.bump, C.refused, C.err_key

-- A user object from the server (get, create, update) checked against the
-- model; returns its version or nil.
local function observed(u, res, what)
  local data = res and res.data
  local v = type(data) == "table" and data.v
  if math.type(v) ~= "integer" then
    violation("%s %s: answer without a data version", what, ids[u])
    return nil
  end
  if res.id ~= ids[u] then violation("%s %s: answer for id %s", what, ids[u], tostring(res.id)) end
  if not same(make_data(ids[u], v), data) then
    violation("%s %s: data of version %d differs from what was written", what, ids[u], v)
  end
  return v
end

-------------------------------------------------------------------- faults

local faults = C.faults({ core = core, stream = stream, server = SERVER, rate = FAULT_RATE,
  random = random, on_fault = function(name) bump(counts.faults, name) end })
local ctl, maybe_fault = faults.ctl, faults.maybe

-------------------------------------------------------------------- the calls

local client = stream.connect(API_KEY, API_SECRET, "1", {
  base_url = SERVER, timeout = TIMEOUT, connect_timeout = 1, retries = 3, max_retry_wait = 2,
})
local next_version = 0
local deadline = now() + SECONDS

-- the operation for user u: mostly creates while it is surely absent
local function pick_op(set)
  local r = random()
  if has(set, 0) and #set == 1 then
    return r < 0.7 and "create" or r < 0.8 and "get" or r < 0.9 and "update" or "delete"
  end
  return r < 0.1 and "create" or r < 0.45 and "get" or r < 0.8 and "update" or "delete"
end

-- send(user, op, id, v) -> res, err
local function send(user, op, id, v)
  if op == "create" then return user:create(make_data(id, v)) end
  if op == "update" then return user:update(make_data(id, v)) end
  if op == "get" then return user:get() end
  return user:delete()
end

-- the model after an answer
local function on_answer(u, op, res, v)
  local id, set = ids[u], state[u]
  counts.ok = counts.ok + 1
  if op == "delete" then
    state[u] = { 0 }
    return
  end
  local got = observed(u, res, op)
  if not got then return end
  if op ~= "get" and got ~= v then
    violation("%s %s: answered version %d, sent %d", op, id, got, v)
  elseif op == "get" and not has(set, got) then
    violation("get %s: version %d, possible %s", id, got, set_text(set))
  end
  state[u] = { got }
end

-- the model after a failure that may or may not have been applied
local function on_ambiguous(set, op, v)
  counts.ambiguous = counts.ambiguous + 1
  if op == "create" then -- applies to an absent user only
    if has(set, 0) then add(set, v) end
  elseif op == "delete" then
    add(set, 0)
  else -- update: applies to an existing user only
    local present = false
    for i = 1, #set do if set[i] ~= 0 then present = true end end
    if present then add(set, v) end
  end
end

-- the model after an error
local function on_error(u, op, err, v)
  local id, set = ids[u], state[u]
  bump(counts.errors, op .. ": " .. err_key(err))
  if err.kind == "api" and err.status == 404 and op ~= "create" then
    -- get, update and delete all say the user does not exist now
    if not has(set, 0) then
      violation("%s %s: 404, possible %s", op, id, set_text(set))
    end
    state[u] = { 0 }
  elseif err.kind == "api" and err.status == 409 and op == "create" then
    -- the user exists: any state but "absent"; after several attempts the
    -- first one may have created it
    local out = {}
    for i = 1, #set do if set[i] ~= 0 then out[#out + 1] = set[i] end end
    if (err.attempts or 1) > 1 then add(out, v) end
    if #out == 0 then violation("create %s: 409, but it cannot exist", id) end
    state[u] = #out > 0 and out or set
  elseif op ~= "get" and not refused(err) then
    on_ambiguous(set, op, v)
  end
end

-- One call on user u; updates the model.
local function call(u)
  local id = ids[u]
  local op = pick_op(state[u])
  bump(counts.ops, op)
  counts.started = counts.started + 1
  maybe_fault()
  local v
  if op == "create" or op == "update" then
    next_version = next_version + 1
    v = next_version
  end
  local t0 = now()
  local res, err = send(client:user(id), op, id, v)
  local elapsed = now() - t0
  counts.calls = counts.calls + 1
  if res then
    on_answer(u, op, res, v)
  else
    on_error(u, op, err, v)
  end
  if (err and (err.kind == "timeout" or err.kind == "transport")) or elapsed >= TIMEOUT then
    settle_at[u] = now() + SETTLE
    counts.settles = counts.settles + 1
  end
end

-------------------------------------------------------------------- memory

local rss_kb = C.rss_kb

local samples = {}
local function sample()
  samples[#samples + 1] = { calls = counts.calls, rss = rss_kb(), heap = collectgarbage("count") }
end

-------------------------------------------------------------------- run

io.write(string.format("soak: %d calls on %d users, %d tasks, fault rate %.3f, seed %d, server %s\n",
  CALLS, USERS, TASKS, FAULT_RATE, SEED, SERVER))
io.flush()
ctl("DELETE")

local started = now()
local next_sample = SAMPLE_EVERY
local timed_out = false

local function worker(k)
  return function()
    -- users k, k + TASKS, k + 2 * TASKS, ... belong to this task
    local mine = {}
    for u = k, USERS, TASKS do mine[#mine + 1] = u end
    while counts.started < CALLS do
      if now() > deadline then
        timed_out = true
        return
      end
      local t = now()
      local u
      for _ = 1, 8 do
        local c = mine[random(1, #mine)]
        if settle_at[c] <= t then u = c break end
      end
      if u then
        call(u)
        if counts.calls >= next_sample then
          next_sample = next_sample + SAMPLE_EVERY
          sample()
          if counts.calls % 20000 == 0 then
            io.write(string.format("  %7d calls  %6.1fs  rss %d kB  lua heap %d kB\n", counts.calls,
              now() - started, samples[#samples].rss or -1, math.floor(samples[#samples].heap)))
            io.flush()
          end
        end
      else
        coroutine.yield() -- every user picked is settling: let the others run
      end
    end
  end
end

local fns = {}
for k = 1, TASKS do fns[k] = worker(k) end
C.note_raised(client:parallel(fns), counts, violations, 20)
local run_seconds = now() - started

-------------------------------------------------------------------- check

-- wait out requests the server may still be handling, then read every user
local last = 0
for u = 1, USERS do last = math.max(last, settle_at[u]) end
if last > now() then core.sleep(last - now()) end
ctl("DELETE")
local left = ctl("GET")
if not left:find('"faults":[]', 1, true) then violation("fault queue not empty at the end: %s", left) end

local verified = { exact = 0, resolved = 0, absent = 0, present = 0, unreadable = 0 }
local check = stream.connect(API_KEY, API_SECRET, "1", { base_url = SERVER, timeout = 5, retries = 3 })
for u = 1, USERS do
  local set = state[u]
  local res, err = check:user(ids[u]):get()
  local got
  if res then
    got = observed(u, res, "final get")
  elseif err.kind == "api" and err.status == 404 then
    got = 0
  else
    verified.unreadable = verified.unreadable + 1
    violation("final get %s: %s", ids[u], tostring(err))
  end
  if got then
    if got == 0 then verified.absent = verified.absent + 1 else verified.present = verified.present + 1 end
    if not has(set, got) then
      violation("final get %s: stored %s, the client last wrote %s", ids[u],
        got == 0 and "nothing" or ("version " .. got), set_text(set))
    elseif #set == 1 then
      verified.exact = verified.exact + 1
    else
      verified.resolved = verified.resolved + 1
    end
  end
end
check:close()
local stats = client:stats()
client:close()
faults.close()

-- memory after the warm-up
local base, lo, hi, heap_lo, heap_hi
for _, s in ipairs(samples) do
  if s.calls >= WARMUP and s.rss then
    base = base or s.rss
    lo, hi = math.min(lo or s.rss, s.rss), math.max(hi or s.rss, s.rss)
    heap_lo, heap_hi = math.min(heap_lo or s.heap, s.heap), math.max(heap_hi or s.heap, s.heap)
  end
end
local rss_ok = lo ~= nil and hi - lo <= RSS_LIMIT_KB

-------------------------------------------------------------------- report

local function sorted_lines(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  local out = {}
  for _, k in ipairs(keys) do out[#out + 1] = string.format("%s %d", k, t[k]) end
  return table.concat(out, ", ")
end

print(string.format("calls        %d in %.1f s (%.0f/s), %d ok", counts.calls, run_seconds,
  counts.calls / run_seconds, counts.ok))
print("ops          " .. sorted_lines(counts.ops))
print("errors       " .. (next(counts.errors) and sorted_lines(counts.errors) or "none"))
print("faults       " .. (next(counts.faults) and sorted_lines(counts.faults) or "none"))
print(string.format("ambiguous    %d failed writes may or may not have been applied; "
  .. "%d calls made their user wait %.1f s", counts.ambiguous, counts.settles, SETTLE))
print(string.format("requests     %d sent (retries included) over %d connections", stats.requests or -1,
  stats.connects or -1))
print(string.format("final state  %d users: %d exact, %d resolved from an ambiguous write, "
  .. "%d present, %d absent, %d unreadable",
  USERS, verified.exact, verified.resolved, verified.present, verified.absent, verified.unreadable))
if lo then
  print(string.format("memory       rss after %d calls %d kB, then %d..%d kB (spread %d kB, limit %d); "
    .. "lua heap %d..%d kB", WARMUP, base, lo, hi, hi - lo, RSS_LIMIT_KB, math.floor(heap_lo), math.floor(heap_hi)))
else
  print("memory       no samples after the warm-up")
end
print(string.format("crashes      %d tasks raised", counts.raised))
print(string.format("violations   %d", counts.violations))
for _, v in ipairs(violations) do print("  " .. v) end

local pass = not timed_out and counts.calls >= CALLS and counts.violations == 0
  and counts.raised == 0 and rss_ok
if timed_out then print(string.format("stopped after SOAK_SECONDS=%g with %d calls", SECONDS, counts.calls)) end
print(string.format("soak: %s (%d calls, %d violations, %d crashes, rss spread %s kB, seed %d)",
  pass and "PASS" or "FAIL", counts.calls, counts.violations, counts.raised,
  lo and tostring(hi - lo) or "?", SEED))
os.exit(pass and 0 or 1)
