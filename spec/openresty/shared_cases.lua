-- spec/openresty/shared_cases.lua: runs inside the nginx that shared_client_spec.lua starts.
-- OpenResty's idiom: one client made in init_worker_by_lua and used by every request of the
-- worker, plain calls, client:parallel and client:go alike.
--
--   init_worker(base_url, key, secret)  makes the worker's client (sends nothing)
--   location /sc/<name>                 run(): the handler <name> below, answering JSON
--
-- Nothing here asserts: the spec does, on the answers.
local ngx = ngx -- luacheck: ignore 113 (the nginx API, a global inside nginx)
local stream = require "stream"

local M = {}

local client            -- the worker's one client
local settings          -- what it was made with, for per-request clients
local stash             -- a task one request started, for another request to misuse

function M.init_worker(base_url, key, secret)
  settings = { base_url = base_url, key = key, secret = secret }
  client = stream.connect(key, secret, "1", { base_url = base_url, timeout = 10 })
end

local function now()
  ngx.update_time()
  return ngx.now()
end

local function reply(t)
  t.pid = ngx.worker.pid()
  ngx.header["Content-Type"] = "application/json"
  ngx.say(stream.json.encode(t))
end

local function user_id(i)
  return "sc-" .. i
end

local H = {}

function H.pid()
  return {}
end

-- The users the other handlers read: sc-1 .. sc-n, data {i = i}.
function H.setup(args)
  for i = 1, tonumber(args.n) do
    local res, err = client:user(user_id(i)):get_or_create({ i = i })
    if not res then return { error = tostring(err) } end
  end
  return { ok = true }
end

-- One task of /sc/parallel: sleeps (a yield that is not the library's), reads its user,
-- sleeps again; what it read, or why not.
local function reader(i, pause)
  return function()
    if pause > 0 then ngx.sleep(pause) end
    local res, err = client:user(user_id(i)):get()
    if not res then return nil, tostring(err) end
    if pause > 0 then ngx.sleep(pause / 2) end
    return res.data.i
  end
end

-- client:parallel on the worker's client: n tasks, each ngx.sleep + get + ngx.sleep.
function H.parallel(args)
  local n, pause = tonumber(args.n), tonumber(args.sleep) or 0
  local fns = {}
  for i = 1, n do fns[i] = reader(i, pause) end
  local t0 = now()
  local results = client:parallel(fns, { max_in_flight = tonumber(args.max) })
  local got, bad = {}, {}
  for i = 1, n do
    local r = results[i]
    got[i] = r[1] or stream.null
    if r[1] ~= i then bad[#bad + 1] = i .. ": " .. tostring(r[2]) end
  end
  return { seconds = now() - t0, got = got, bad = bad, ok = #bad == 0 }
end

-- A plain call on the worker's client.
function H.plain(args)
  local i = tonumber(args.i) or 1
  local res, err = client:user(user_id(i)):get()
  return { ok = res ~= nil and res.data.i == i, err = err and tostring(err) }
end

-- Whether user args.id exists (data.k when it does), by a plain call.
function H.exists(args)
  local res, err = client:user(args.id):get()
  return { k = res and res.data.k, err = err and tostring(err) }
end

-- go tasks driven by step and wait, in this request, on the worker's client.
function H.go(args)
  local n, pause = tonumber(args.n), tonumber(args.sleep) or 0
  local tasks = {}
  for i = 1, n do tasks[i] = client:go(reader(i, pause)) end
  local t0, steps = now(), 0
  while client:step(0.05) > 0 and steps < 1000 do steps = steps + 1 end
  local got, ok = {}, true
  for i = 1, n do
    got[i] = tasks[i]:done() and tasks[i]:result() or stream.null
    ok = ok and got[i] == i
  end
  return { seconds = now() - t0, got = got, ok = ok, left = client:pending() }
end

-- Starts a task, leaves it where another request can find it, and waits for it here.
function H.go_start(args)
  local pause = tonumber(args.sleep) or 0.5
  local task = client:go(function()
    ngx.sleep(pause)
    return 42
  end)
  stash = task
  client:wait()
  stash = nil
  return { result = task:result(), done = task:done() }
end

-- What another request's task does when touched here: each use raises at once.
function H.go_other()
  for _ = 1, 200 do
    if stash then break end
    ngx.sleep(0.01)
  end
  if not stash then return { error = "no task was started" } end
  local t0 = now()
  local ok_done, e_done = pcall(stash.done, stash)
  local ok_result, e_result = pcall(stash.result, stash)
  local left = client:pending()
  client:wait() -- this request has no task: returns at once
  return {
    done_raised = not ok_done, done_error = tostring(e_done),
    result_raised = not ok_result, result_error = tostring(e_result),
    pending = left, seconds = now() - t0,
  }
end

-- A transport that delays every answer by `ms` (the local server's delay header).
local function slow_transport(ms)
  local T = require "stream.transport.ngx"
  return {
    new = function(core, s)
      s.headers["X-Stream-Local-Delay"] = tostring(ms)
      return T.new(core, s)
    end,
  }
end

-- One entry of a parallel result, as JSON can carry it.
local function entry(r)
  local e = r[2]
  local t = type(e) == "table"
  return {
    ok = r[1] ~= nil, raised = r.raised or false, value = type(r[1]) ~= "table" and r[1] or nil,
    kind = t and e.kind or nil, reason = t and e.reason or nil, sent = t and e.sent or nil,
    text = e ~= nil and tostring(e) or nil,
  }
end

-- client:close() from a parallel task while the others' requests are in flight, on a client
-- of this request whose answers come after `ms`: task 1 reads before anything else starts,
-- tasks 3-5 write once it is done, task 2 closes the client while they are in flight.
function H.close_parallel(args)
  local c = stream.connect(settings.key, settings.secret, "1",
    { base_url = settings.base_url, transport = slow_transport(tonumber(args.ms) or 300) })
  local first_done = false
  local function after_first()
    while not first_done do ngx.sleep(0.005) end
  end
  local fns = {
    function()
      local res, err = c:user(user_id(1)):get()
      first_done = true
      return res and res.data.i, err
    end,
    function()
      after_first()
      ngx.sleep(0.1)
      c:close()
      return "closed"
    end,
  }
  local ids = {}
  for k = 1, 3 do
    ids[k] = ("scw-%d-%d-%d"):format(ngx.worker.pid(), math.floor(now() * 1000), k)
    fns[#fns + 1] = function()
      after_first()
      return c:user(ids[k]):create({ k = k })
    end
  end
  local t0 = now()
  local ok, results = pcall(c.parallel, c, fns)
  if not ok then return { raised = tostring(results) } end
  local out = { seconds = now() - t0, entries = {}, ids = ids, n = #results }
  for i, r in ipairs(results) do out.entries[i] = entry(r) end
  return out
end

-- go tasks in flight on a client of this request when it is closed: step drains them.
function H.close_go(args)
  local c = stream.connect(settings.key, settings.secret, "1",
    { base_url = settings.base_url, transport = slow_transport(tonumber(args.ms) or 300) })
  local tasks = {}
  for i = 1, 3 do
    tasks[i] = c:go(function() return c:user(user_id(i)):get() end)
  end
  ngx.sleep(0.05)
  c:close()
  local t0, steps = now(), 0
  local ok, err = pcall(function()
    while c:step(0.05) > 0 and steps < 400 do steps = steps + 1 end
  end)
  local out = { step_raised = not ok and tostring(err) or nil, seconds = now() - t0, entries = {} }
  for i = 1, 3 do
    out.entries[i] = tasks[i]:done() and entry({ tasks[i]:result() }) or { unfinished = true }
  end
  out.left = c:pending()
  return out
end

-- A task that yields on its own (coroutine.yield) and one that runs a coroutine of its own
-- around a call: both go on, concurrently with a third that only sleeps.
function H.own_yield()
  local t0 = now()
  local results = client:parallel({
    function()
      coroutine.yield("mine")
      ngx.sleep(0.2)
      return "yielded"
    end,
    function()
      local co = coroutine.wrap(function()
        ngx.sleep(0.2)
        local res = client:user(user_id(2)):get()
        coroutine.yield(res and res.data.i)
        return "again"
      end)
      return co(), co()
    end,
    function()
      ngx.sleep(0.2)
      return "slept"
    end,
  })
  return { seconds = now() - t0, got = { results[1][1], results[2][1], results[2][2], results[3][1] },
    raised = results[1].raised and tostring(results[1][2]) or nil }
end

-- client:parallel in an ngx.timer.at callback (the worker's client; a timer has its own
-- context): what it gave, once it is done.
local timer_out
function H.timer(args)
  timer_out = nil
  local n, pause = tonumber(args.n) or 4, tonumber(args.sleep) or 0.2
  local ok, err = ngx.timer.at(0, function()
    local out = H.parallel({ n = n, sleep = pause })
    timer_out = out
  end)
  if not ok then return { error = err } end
  for _ = 1, 300 do
    if timer_out then break end
    ngx.sleep(0.01)
  end
  return timer_out or { error = "the timer did not finish" }
end

-- client:parallel from log_by_lua (no light threads, no cosockets there): the functions
-- run one after another and each call fails at once, naming the phase.
local log_out, log_go
function M.log_phase()
  local results = client:parallel({
    function() return client:user(user_id(1)):get() end,
    function() return client:user(user_id(2)):get() end,
  })
  log_out = {}
  for i, r in ipairs(results) do
    log_out[i] = { raised = r.raised or false, reason = r[2] and r[2].reason, text = tostring(r[2]) }
  end
  local ok, err = pcall(client.go, client, function() end)
  log_go = { raised = not ok, error = tostring(err) }
end

function H.log_result()
  return { entries = log_out, go = log_go }
end

function M.run()
  local name = ngx.var.uri:match("^/sc/([%w_]+)$")
  local h = H[name]
  if not h then return ngx.exit(404) end
  local ok, res = pcall(h, ngx.req.get_uri_args())
  if not ok then res = { raised = tostring(res) } end
  reply(res)
end

return M
