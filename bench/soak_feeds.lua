-- bench/soak_feeds.lua: mixed feed calls (adds, removes, follows,
-- unfollows, reactions, plain and enriched reads) across many feeds against
-- the local server with faults sprinkled in and the client's retries on;
-- afterwards the stored state is checked against a log of what the server
-- acknowledged.
--
--   bench/soak feeds                 starts a private server and runs this file
--   lua5.4 bench/soak_feeds.lua      against a running server with STREAM_LOCAL_FAULTS=1
--
-- Environment: STREAM_LOCAL_URL, STREAM_API_KEY, STREAM_API_SECRET and
--   SOAK_CALLS       5000   calls to make (retries not counted)
--   SOAK_FEEDS       24     user feeds, and as many timeline feeds following them
--   SOAK_TASKS       8      concurrent tasks; task k owns user and timeline feeds
--                           k, k + TASKS, ...: writes on one feed never overlap
--   SOAK_FAULT_RATE  0.05   share of calls a programmed fault is queued before
--   SOAK_SECONDS     600    the run stops (and fails) after this long
--   SOAK_WARMUP      CALLS/2 calls before the memory baseline is taken
--   SOAK_SEED        time   random seed (printed)
--
-- The faults are bench/soak.lua's: 503, dropped connections, short and long
-- delays (the client times out while the server still works), truncated
-- answers, 429 with a reset 0 or 1 s ahead.
--
-- The log. Every activity carries a serial `sn`; half of the adds carry
-- foreign_id + time (retried, Stream replaces) and half do not (never sent
-- twice by the client). An activity is "in" (acknowledged add), "out"
-- (acknowledged remove), or "maybe" (the answer was lost: it may or may not
-- be stored). Follows the same: on, off, maybe. Reactions carry a caller-given
-- id (retry-safe); each is on, off or maybe. A task whose call timed out or
-- lost its connection writes nothing for SETTLE seconds, so a request the
-- server still handles cannot land after the task's next write.
--
-- Checked during the run: every read (plain and enriched) holds no activity
-- twice; an enriched read's like count of an activity of the reading task
-- lies between its acknowledged and possible reactions. Checked at the end
-- (faults cleared, late requests waited out), with every feed read whole:
--   * every user feed holds each "in" activity exactly once, no "out"
--     activity, no activity the log does not know, no sn twice;
--   * every follow row is "on" or "maybe", every "on" follow is there;
--   * every timeline holds exactly the activities of the user feeds it
--     follows at the end (fan-out, follow copies and unfollow removals),
--     each once;
--   * the like reactions of every activity are exactly the "on" reactions
--     plus some of the "maybe" ones, and an enriched read's reaction_counts
--     agrees with them.
-- Load mode (SOAK_MODE=load, bench/load): no faults and no retries, 64
-- tasks over as many connections on 128 user and 128 timeline feeds, for
-- SOAK_DURATION seconds (30); any failed call fails the run, and the
-- latency of every call (p50, p99, max) is reported by operation. The same
-- checks follow; RSS is reported but not held to the limit (the feeds, and so
-- the pages read, grow for the whole run).
--
-- Memory: VmRSS sampled every 250 calls; after the warm-up its spread, less
-- what the log itself grew in the Lua heap, must stay within 1 MiB.

local function script_dir()
  local src = debug.getinfo(1, "S").source
  return src:sub(1, 1) == "@" and src:sub(2):match("^(.*)/[^/]*$") or "."
end
local ROOT = script_dir() .. "/.."
package.path = ROOT .. "/lua/?.lua;" .. ROOT .. "/lua/?/init.lua;" .. package.path
package.cpath = ROOT .. "/build/5.4/?.so;" .. package.cpath

local stream = require "stream"
local core = stream.core
local C = dofile(ROOT .. "/bench/soak_common.lua")
local env, num = C.env, C.num

local LOAD = env("SOAK_MODE") == "load"
local CALLS = math.floor(num("SOAK_CALLS", LOAD and 100000000 or 5000))
local TASKS = math.floor(num("SOAK_TASKS", LOAD and 64 or 8))
local FEEDS = math.floor(num("SOAK_FEEDS", LOAD and 2 * TASKS or 24))
local FAULT_RATE = num("SOAK_FAULT_RATE", LOAD and 0 or 0.05)
local SECONDS = num("SOAK_SECONDS", 600)
local DURATION = num("SOAK_DURATION", LOAD and 30 or SECONDS)
local WARMUP = math.floor(num("SOAK_WARMUP", LOAD and 0 or CALLS // 2))
local SEED = math.floor(num("SOAK_SEED", os.time()))
local SERVER = assert(env("STREAM_LOCAL_URL"), "STREAM_LOCAL_URL is not set (run bench/soak feeds)")
local API_KEY = env("STREAM_API_KEY", "local-api-key")
local API_SECRET = env("STREAM_API_SECRET", "local-api-secret-change-me-0123456789")

local TIMEOUT = LOAD and 10 or 0.5
local SETTLE = C.SETTLE
local SAMPLE_EVERY = 250
local RSS_LIMIT_KB = 1024

math.randomseed(SEED)
local random = math.random
local now = core.monotime

local counts = { started = 0, calls = 0, ok = 0, ops = {}, errors = {}, faults = {}, maybe = 0,
  violations = 0, raised = 0, reads_checked = 0, counts_checked = 0 }
local violation, violations = C.violations(counts, 30)
local bump, refused, err_key = C.bump, C.refused, C.err_key

-------------------------------------------------------------------- faults

local faults = C.faults({ core = core, stream = stream, server = SERVER, rate = FAULT_RATE,
  random = random, on_fault = function(name) bump(counts.faults, name) end })
local ctl, maybe_fault = faults.ctl, faults.maybe

-------------------------------------------------------------------- the log

local tag = string.format("sf%d", SEED % 1000000)
local users, timelines = {}, {}
for i = 1, FEEDS do
  users[i] = tag .. "-" .. i
  timelines[i] = tag .. "-" .. i
end
local activities = {}    -- sn -> {feed = i, state = "in"|"out"|"maybe", id =, fid =}
local by_feed = {}       -- user feed i -> list of sn
local follows = {}       -- "t:u" -> "on" | "off" | "maybe"
local reactions = {}     -- sn -> {reaction id -> "on" | "off" | "maybe"}
for i = 1, FEEDS do by_feed[i] = {} end
local serial = 0

local function uuid()
  return string.format("%08x-%04x-4%03x-%04x-%012x", random(0, 0xffffffff), random(0, 0xffff),
    random(0, 0xfff), random(0x8000, 0xbfff), random(0, 0xffffffffffff))
end

-- a settled activity of feed i ("in"), or nil
local function pick_in(i)
  local list = by_feed[i]
  for _ = 1, 6 do
    if #list == 0 then return nil end
    local sn = list[random(#list)]
    if activities[sn].state == "in" then return sn end
  end
  return nil
end

-- after a write failed in a way that leaves it open
local function open_state(current)
  if current == "maybe" then return "maybe" end
  return "maybe"
end

-------------------------------------------------------------------- calls

local client = stream.connect(API_KEY, API_SECRET, "1", {
  base_url = SERVER, timeout = TIMEOUT, connect_timeout = LOAD and 5 or 1, retries = LOAD and 0 or 3,
  max_retry_wait = 2, max_connections = math.max(TASKS, 1),
})
local latencies = {}   -- op -> list of seconds (load mode)
local settle_until = {}
local deadline = now() + SECONDS
local stop_at = now() + DURATION

-- no activity twice in a page; like counts of the task's own activities in range
local function check_page(res, what, own)
  counts.reads_checked = counts.reads_checked + 1
  local ids, sns = {}, {}
  for _, a in ipairs(res.results or {}) do
    if ids[a.id] then violation("%s: activity %s twice in one page", what, tostring(a.id)) end
    ids[a.id] = true
    local sn = math.tointeger(a.sn)
    if sn then
      if sns[sn] then violation("%s: sn %d twice in one page", what, sn) end
      sns[sn] = true
      local rec = activities[sn]
      if not rec then violation("%s: sn %d was never sent", what, sn)
      elseif rec.state == "out" and own[rec.feed] then
        violation("%s: sn %d was removed (acknowledged) but is read back", what, sn)
      end
      if rec and own[rec.feed] and type(a.reaction_counts) == "table" then
        local lo, hi = 0, 0
        for _, st in pairs(reactions[sn] or {}) do
          if st == "on" then lo = lo + 1; hi = hi + 1 elseif st == "maybe" then hi = hi + 1 end
        end
        local n = a.reaction_counts.like or 0
        counts.counts_checked = counts.counts_checked + 1
        if n < lo or n > hi then
          violation("%s: sn %d has %d likes, the log says %d..%d", what, sn, n, lo, hi)
        end
      end
    end
  end
end

local function pick_op()
  local r = random()
  if r < 0.30 then return "add"
  elseif r < 0.40 then return "remove"
  elseif r < 0.48 then return "follow"
  elseif r < 0.53 then return "unfollow"
  elseif r < 0.68 then return "react"
  elseif r < 0.72 then return "unreact"
  elseif r < 0.86 then return "read enriched" end
  return "read"
end

-- Each operation on own feed i: OPS[op](i) -> after, res, err, where after() updates the
-- log from res and err; no after when there is nothing to act on (the call reads instead).
local OPS = {}

OPS["add"] = function(i)
  serial = serial + 1
  local sn = serial
  local a = { actor = "SU:" .. tag, verb = "post", object = "o:" .. sn, sn = sn }
  local rec = { feed = i, state = "maybe" }
  if random() < 0.5 then
    a.foreign_id = "fs:" .. sn
    a.time = 1795860000 + sn
    rec.fid = a.foreign_id
  end
  activities[sn] = rec
  by_feed[i][#by_feed[i] + 1] = sn
  local res, err = client:feed("user", users[i]):add_activity(a)
  return function()
    if res then rec.state = "in"; rec.id = res.id
    elseif refused(err) then rec.state = "out"
    else rec.state = "maybe"; counts.maybe = counts.maybe + 1 end
  end, res, err
end

OPS["remove"] = function(i)
  local sn = pick_in(i)
  if not sn then return nil end
  local rec = activities[sn]
  local res, err
  if rec.fid and random() < 0.5 then
    res, err = client:feed("user", users[i]):remove_activity({ foreign_id = rec.fid })
  else
    res, err = client:feed("user", users[i]):remove_activity(rec.id)
  end
  return function()
    if res then rec.state = "out"
    elseif not refused(err) then rec.state = open_state(rec.state); counts.maybe = counts.maybe + 1 end
  end, res, err
end

local function follow_op(op)
  return function(i)
    local u = random(FEEDS)
    local key = i .. ":" .. u
    local tl = client:feed("timeline", timelines[i])
    local res, err
    if op == "follow" then
      res, err = tl:follow(client:feed("user", users[u]), { activity_copy_limit = 1000 })
    else
      res, err = tl:unfollow(client:feed("user", users[u]))
    end
    return function()
      if res then follows[key] = op == "follow" and "on" or "off"
      elseif not refused(err) then follows[key] = "maybe"; counts.maybe = counts.maybe + 1 end
    end, res, err
  end
end
OPS["follow"], OPS["unfollow"] = follow_op("follow"), follow_op("unfollow")

OPS["react"] = function(i)
  local sn = pick_in(i)
  if not sn then return nil end
  local rid = uuid()
  reactions[sn] = reactions[sn] or {}
  reactions[sn][rid] = "maybe"
  local res, err = client.reactions:add("like", activities[sn].id, { sn = sn }, { id = rid, user_id = tag })
  return function()
    if res then reactions[sn][rid] = "on"
    elseif refused(err) then reactions[sn][rid] = "off"
    else counts.maybe = counts.maybe + 1 end
  end, res, err
end

OPS["unreact"] = function(i)
  local sn = pick_in(i)
  local rid
  for id, st in pairs(sn and reactions[sn] or {}) do if st == "on" then rid = id break end end
  if not rid then return nil end
  local res, err = client.reactions:delete(rid)
  return function()
    if res then reactions[sn][rid] = "off"
    elseif not refused(err) then reactions[sn][rid] = "maybe"; counts.maybe = counts.maybe + 1 end
  end, res, err
end

-- read(i, own, enriched) -> after, res, err: a page of feed i checked against the log
local function read(i, own, enriched)
  local feed, res, err
  if enriched then
    feed = random() < 0.5 and client:feed("user", users[i]) or client:feed("timeline", timelines[i])
    res, err = feed:get({ limit = 25, enrich = true, reactions = { counts = true, recent = true } })
  else
    feed = client:feed("user", users[i])
    res, err = feed:get({ limit = 25 })
  end
  local what = (enriched and "enriched read of " or "read of ") .. feed.id
  return function() if res then check_page(res, what, own) end end, res, err
end

local function record_latency(op, t0)
  local kind = op:match("^read") and op or (op == "unreact" and "react" or op == "unfollow"
    and "follow" or op)
  latencies[kind] = latencies[kind] or {}
  local l = latencies[kind]
  l[#l + 1] = now() - t0
end

local function call(k, own_list, own)
  local i = own_list[random(#own_list)]
  local op = pick_op()
  counts.started = counts.started + 1
  maybe_fault()
  local t0 = now()
  local after, res, err
  if OPS[op] then after, res, err = OPS[op](i) end
  if not after then
    if op ~= "read enriched" then op = "read" end
    after, res, err = read(i, own, op == "read enriched")
  end
  bump(counts.ops, op)
  counts.calls = counts.calls + 1
  if LOAD then record_latency(op, t0) end
  if res then counts.ok = counts.ok + 1 else bump(counts.errors, op .. ": " .. err_key(err)) end
  after()
  if (err and (err.kind == "timeout" or err.kind == "transport")) or now() - t0 >= TIMEOUT then
    settle_until[k] = now() + SETTLE
  end
end

-------------------------------------------------------------------- memory

local rss_kb = C.rss_kb
local samples = {}

-------------------------------------------------------------------- run

io.write(string.format("%s: %s on %d user and %d timeline feeds, %d tasks, "
  .. "fault rate %.3f, seed %d, server %s\n", LOAD and "load" or "soak feeds",
  LOAD and string.format("%g s", DURATION) or (CALLS .. " calls"), FEEDS, FEEDS, TASKS, FAULT_RATE, SEED,
  SERVER))
io.flush()
ctl("DELETE")

-- a follow graph to start from: timeline i follows user feeds i and i+1
for i = 1, FEEDS do
  for _, u in ipairs({ i, i % FEEDS + 1 }) do
    assert(client:feed("timeline", timelines[i]):follow(client:feed("user", users[u])))
    follows[i .. ":" .. u] = "on"
  end
end

local started = now()
local next_sample = SAMPLE_EVERY
local timed_out = false
local function worker(k)
  return function()
    local own_list, own = {}, {}
    for i = k, FEEDS, TASKS do own_list[#own_list + 1] = i; own[i] = true end
    settle_until[k] = 0
    while counts.started < CALLS and now() < stop_at do
      if now() > deadline then timed_out = true; return end
      if settle_until[k] > now() then
        coroutine.yield()
        if TASKS == 1 then core.sleep(0.05) end
      else
        call(k, own_list, own)
        if counts.calls >= next_sample then
          next_sample = next_sample + SAMPLE_EVERY
          -- a full collection first, so the heap figure is live data (mostly the log)
          collectgarbage()
          samples[#samples + 1] = { calls = counts.calls, rss = rss_kb(), heap = collectgarbage("count") }
        end
      end
    end
  end
end
local fns = {}
for k = 1, TASKS do fns[k] = worker(k) end
C.note_raised(client:parallel(fns), counts, violations, 30)
local run_seconds = now() - started

-------------------------------------------------------------------- check

core.sleep(SETTLE)
ctl("DELETE")
local check = stream.connect(API_KEY, API_SECRET, "1", { base_url = SERVER, timeout = 10, retries = 3 })

local function read_all(feed, opts)
  local list = {}
  for a, err in feed:each(opts or { limit = 100 }) do
    if err ~= nil then
      violation("final read of %s: %s", feed.id, tostring(err))
      return list
    end
    list[#list + 1] = a
    if #list > 100000 then break end
  end
  return list
end

local final = { in_ = 0, out = 0, maybe_in = 0, maybe_out = 0, timeline_rows = 0, follows = 0,
  likes = 0, maybe_likes = 0 }
local stored = {}   -- user feed i -> set of sn
for i = 1, FEEDS do
  local seen = {}
  stored[i] = seen
  for _, a in ipairs(read_all(check:feed("user", users[i]))) do
    local sn = math.tointeger(a.sn)
    local rec = sn and activities[sn]
    if not rec then violation("user:%s holds %s, never sent", users[i], tostring(a.id))
    else
      if seen[sn] then violation("user:%s holds sn %d twice (a retry duplicated it?)", users[i], sn) end
      seen[sn] = a.id
      if rec.feed ~= i then violation("user:%s holds sn %d of another feed", users[i], sn) end
      if rec.state == "out" then violation("user:%s holds sn %d, removed or refused", users[i], sn) end
      if rec.state == "maybe" then final.maybe_in = final.maybe_in + 1; rec.id = rec.id or a.id end
    end
  end
  for _, sn in ipairs(by_feed[i]) do
    local st = activities[sn].state
    if st == "in" then
      final.in_ = final.in_ + 1
      if not seen[sn] then violation("user:%s lacks sn %d (acknowledged add)", users[i], sn) end
    elseif st == "out" then final.out = final.out + 1
    elseif not seen[sn] then final.maybe_out = final.maybe_out + 1 end
  end
end

for t = 1, FEEDS do
  local tl = check:feed("timeline", timelines[t])
  local followed = {}
  local rows = check:feed("timeline", timelines[t]):following({ limit = 500 })
  if not rows then violation("following of timeline:%s unreadable", timelines[t]) rows = { results = {} } end
  for _, row in ipairs(rows.results or {}) do
    local u = tostring(row.target_id):match("^user:" .. tag:gsub("%-", "%%-") .. "%-(%d+)$")
    u = tonumber(u)
    if not u then violation("timeline:%s follows %s", timelines[t], tostring(row.target_id))
    else followed[u] = true end
  end
  for u = 1, FEEDS do
    local st = follows[t .. ":" .. u] or "off"
    if st == "on" and not followed[u] then violation("timeline:%s lost its follow of user %d", timelines[t], u) end
    if st == "off" and followed[u] then violation("timeline:%s follows user %d after an unfollow", timelines[t], u) end
    if followed[u] then final.follows = final.follows + 1 end
  end
  local seen = {}
  for _, a in ipairs(read_all(tl)) do
    final.timeline_rows = final.timeline_rows + 1
    local sn = math.tointeger(a.sn)
    local rec = sn and activities[sn]
    if not rec then violation("timeline:%s holds %s, never sent", timelines[t], tostring(a.id))
    else
      if seen[sn] then violation("timeline:%s holds sn %d twice", timelines[t], sn) end
      seen[sn] = true
      if not followed[rec.feed] then
        violation("timeline:%s holds sn %d of user %d it does not follow", timelines[t], sn, rec.feed)
      elseif not stored[rec.feed][sn] then
        violation("timeline:%s holds sn %d, gone from its user feed", timelines[t], sn)
      end
    end
  end
  for u in pairs(followed) do
    for sn in pairs(stored[u]) do
      if not seen[sn] then violation("timeline:%s lacks sn %d of followed user %d", timelines[t], sn, u) end
    end
  end
end

for i = 1, FEEDS do
  local enriched = {}
  for _, a in ipairs(read_all(check:feed("user", users[i]), { limit = 100, enrich = true,
    reactions = { counts = true } })) do
    enriched[math.tointeger(a.sn) or -1] = a
  end
  for sn, id in pairs(stored[i]) do
    local got = {}
    local n = 0
    for page, err in check.reactions:pages({ activity_id = id, kind = "like", limit = 25 }) do
      if err ~= nil then violation("reactions of sn %d: %s", sn, tostring(err)) break end
      for _, r in ipairs(page.results) do
        if got[r.id] then violation("reaction %s read twice for sn %d", r.id, sn) end
        got[r.id] = true
        n = n + 1
      end
    end
    for rid, st in pairs(reactions[sn] or {}) do
      if st == "on" then
        final.likes = final.likes + 1
        if not got[rid] then violation("sn %d lacks acknowledged like %s", sn, rid) end
      elseif st == "off" and got[rid] then violation("sn %d holds removed like %s", sn, rid)
      elseif st == "maybe" then final.maybe_likes = final.maybe_likes + 1 end
    end
    for rid in pairs(got) do
      if not (reactions[sn] or {})[rid] then violation("sn %d holds like %s never sent", sn, rid) end
    end
    local a = enriched[sn]
    local c = a and type(a.reaction_counts) == "table" and (a.reaction_counts.like or 0)
    if c ~= n then violation("sn %d: reaction_counts.like %s, %d likes listed", sn, tostring(c), n) end
  end
end
check:close()
local stats = client:stats()
client:close()
faults.close()

-- the log itself grows with every call (it lives in the Lua heap): RSS
-- growth beyond the heap's growth is what must stay within the limit
if LOAD then WARMUP = counts.calls // 2 end
local base, lo, hi, heap_lo, heap_hi, heap_first, heap_last
for _, s in ipairs(samples) do
  if s.calls >= WARMUP and s.rss then
    base = base or s.rss
    heap_first = heap_first or s.heap
    heap_last = s.heap
    lo, hi = math.min(lo or s.rss, s.rss), math.max(hi or s.rss, s.rss)
    heap_lo, heap_hi = math.min(heap_lo or s.heap, s.heap), math.max(heap_hi or s.heap, s.heap)
  end
end
local log_growth = heap_first and math.max(0, math.floor(heap_last - heap_first)) or 0
-- under load the feeds keep growing for the whole (short) run: RSS is reported, not held
local rss_ok = LOAD or (lo ~= nil and hi - lo - log_growth <= RSS_LIMIT_KB)

-------------------------------------------------------------------- report

local function sorted_lines(t)
  local keys = {}
  for key in pairs(t) do keys[#keys + 1] = key end
  table.sort(keys)
  local out = {}
  for _, key in ipairs(keys) do out[#out + 1] = string.format("%s %d", key, t[key]) end
  return table.concat(out, ", ")
end
print(string.format("calls        %d in %.1f s (%.0f/s), %d ok", counts.calls, run_seconds,
  counts.calls / run_seconds, counts.ok))
print("ops          " .. sorted_lines(counts.ops))
print("errors       " .. (next(counts.errors) and sorted_lines(counts.errors) or "none"))
print("faults       " .. (next(counts.faults) and sorted_lines(counts.faults) or "none"))
print(string.format("requests     %d sent (retries included) over %d connections", stats.requests or -1,
  stats.connects or -1))
print(string.format("reads        %d pages checked during the run, %d like counts in range",
  counts.reads_checked, counts.counts_checked))
print(string.format("final state  %d acknowledged adds present, %d removed or refused absent, "
  .. "%d uncertain stored, %d uncertain absent; %d follows, %d timeline rows; "
  .. "%d acknowledged likes present, %d uncertain likes (%d writes lost their answer)",
  final.in_, final.out, final.maybe_in, final.maybe_out, final.follows, final.timeline_rows,
  final.likes, final.maybe_likes, counts.maybe))
if lo then
  print(string.format("memory       rss after %d calls %d kB, then %d..%d kB (spread %d kB; less the "
    .. "log's growth %d kB: %d, limit %d); lua heap %d..%d kB", WARMUP, base, lo, hi, hi - lo, log_growth,
    hi - lo - log_growth, RSS_LIMIT_KB, math.floor(heap_lo), math.floor(heap_hi)))
else
  print("memory       no samples after the warm-up")
end
if LOAD then
  local all = {}
  local function pct(list, p)
    return list[math.max(1, math.ceil(#list * p))] * 1000
  end
  local names = {}
  for op, list in pairs(latencies) do
    names[#names + 1] = op
    table.sort(list)
    for _, v in ipairs(list) do all[#all + 1] = v end
  end
  table.sort(names)
  table.sort(all)
  print(string.format("latency      %d tasks over %d connections, %d calls in %.1f s: all p50 %.1f ms, "
    .. "p99 %.1f ms, max %.1f ms", TASKS, stats.connects or -1, #all, run_seconds, pct(all, 0.5),
    pct(all, 0.99), all[#all] * 1000))
  for _, op in ipairs(names) do
    local list = latencies[op]
    print(string.format("  %-14s %6d calls  p50 %7.1f ms  p99 %7.1f ms  max %7.1f ms", op, #list,
      pct(list, 0.5), pct(list, 0.99), list[#list] * 1000))
  end
end
print(string.format("violations   %d", counts.violations))
for _, v in ipairs(violations) do print("  " .. v) end
local pass = not timed_out and (LOAD or counts.calls >= CALLS) and counts.violations == 0
  and counts.raised == 0 and rss_ok and not (LOAD and next(counts.errors))
if timed_out then print(string.format("stopped after SOAK_SECONDS=%g with %d calls", SECONDS, counts.calls)) end
print(string.format("%s: %s (%d calls, %d violations, %d crashes, rss spread %s kB, seed %d)",
  LOAD and "load" or "soak feeds", pass and "PASS" or "FAIL", counts.calls, counts.violations, counts.raised,
  lo and tostring(hi - lo) or "?", SEED))
os.exit(pass and 0 or 1)
