-- stream.scheduler: runs functions in coroutines that yield while their
-- requests are in flight, so one client's transport (one libcurl multi
-- handle) carries many requests at once.
--
-- Only coroutines this scheduler created ever yield: a request made from
-- the main thread, or from a coroutine the caller made, stays a plain
-- blocking call. The scheduler knows nothing of Stream; the pipeline gives
-- it a transport request ({method =, url =, body =, ...}) and gets the
-- transport's answer back. It owns the task counts, `run_all` (parallel's
-- spawn-with-a-limit) and `wait`.
--
-- Closing: once the client is closed (S:close, before the transport
-- closes and fails what it had in flight with reason "closed"), step stops
-- calling the transport and resumes every waiting task at once, so each
-- call in flight ends with nil, err (reason "closed"), a back-off in
-- progress ends, run_all returns its results and wait drains. A request
-- sent after that fails the same way without reaching the transport.
--
-- A transport that runs functions as threads of its host (the ngx one:
-- ngx.thread light threads) gets the threaded scheduler at the end of this
-- file instead: see "threads" below for why and how.
--
-- The hot path allocates nothing per step: a task submits its request
-- with itself as the owner, so the transport's perform(wait, done) lists
-- the tasks whose requests finished in one reused list (no map from
-- requests to tasks), a waiting task is marked on itself (task.waiting),
-- and resuming a task packs no table. run_all runs its
-- functions on at most `limit` reusable runner coroutines, each taking the
-- next function when the last one returned.

local pack = table.pack or function(...) return { n = select("#", ...), ... } end
local unpack = table.unpack or unpack -- luacheck: ignore 143

local S = {}
S.__index = S

-- What a task yields while it waits for its request; anything else it
-- yields (the function's own coroutine.yield) is resumed on the next step.
local WAITING = setmetatable({}, { __name = "stream.scheduler.waiting" })
-- What a run_all runner yields when a function returned, with its results.
local RAN = setmetatable({}, { __name = "stream.scheduler.ran" })

local create, resume_co, yield, status = coroutine.create, coroutine.resume, coroutine.yield,
  coroutine.status

local scheduler = {}

-- Longest a step of run_all / wait blocks before looking at the tasks again.
local STEP_WAIT = 1
-- Longest sleep timeout() advises: the scheduler exposes no sockets to
-- wait on, so an outside loop polls at least this often.
local MAX_POLL = 0.05

-- What a request sent after close gets (the transport contract's failure):
-- nothing reached the server.
local function closed_failure()
  return nil, { kind = "transport", message = "the client was closed", sent = false, reason = "closed" }
end

function scheduler.new(transport)
  if transport.spawn and transport.context and transport.signal then
    return scheduler.threaded(transport)
  end
  return setmetatable({
    transport = transport,
    tasks = setmetatable({}, { __mode = "k" }), -- coroutine -> task
    nwaiting = 0,                               -- tasks waiting for a request
    done = {},                                  -- reused: what perform says finished
    ready = {},                                 -- tasks to resume on the next step
    sleepers = {},                              -- { task =, wake = } (back-off waits)
    count = 0,                                  -- tasks started and not finished
  }, S)
end

-- Whether the running coroutine is one of this scheduler's tasks.
function S:inside()
  local co = coroutine.running()
  return co ~= nil and self.tasks[co] ~= nil
end

-- Sends one request: yields the calling task while it is in flight, or
-- blocks when the caller is not one of this scheduler's tasks.
function S:send(req)
  if self.closed then return closed_failure() end
  local co = coroutine.running()
  local task = co and self.tasks[co]
  if not task then
    return self.transport:request(req)
  end
  local h = self.transport:submit(req, task)
  task.waiting = true
  self.nwaiting = self.nwaiting + 1
  yield(WAITING)
  return h:result()
end

-- Waits `seconds`: a task yields (the others go on), anything else blocks
-- while still driving the transfers in flight.
function S:sleep(seconds)
  -- (NaN too); once closed the next attempt fails at once: no wait for it
  if self.closed or not (seconds > 0) then return end -- luacheck: ignore 581
  local t = self.transport
  local co = coroutine.running()
  local task = co and self.tasks[co]
  if task then
    self.sleepers[#self.sleepers + 1] = { task = task, wake = t:now() + seconds }
    coroutine.yield(WAITING)
    return
  end
  local wake = t:now() + seconds
  while true do
    local left = wake - t:now()
    if left <= 0 or self.closed then return end
    if self.nwaiting > 0 then t:perform(left) else t:sleep(left) end
  end
end

local Task = {}
Task.__index = Task
Task.__name = "stream.task"

function Task:done()
  return self.finished == true
end

-- What the function returned; raises while it is still running.
function Task:result()
  if not self.finished then error("stream: task has not finished", 2) end
  return unpack(self.results, 1, self.results.n)
end

-- Marks a task finished with what its function returned (ok) or raised, as
-- task:result() and parallel give it back, and tells its on_done. Both
-- schedulers end their tasks through it.
local function settle(task, ok, ...)
  task.finished = true
  if ok then
    task.results = pack(...)
  else
    task.raised = true
    task.results = { n = 2, nil, (...) }
  end
  if task.on_done then task.on_done(task) end
end

local function finish(self, task, ok, ...)
  self.tasks[task.co] = nil
  self.count = self.count - 1
  settle(task, ok, ...)
end

-- What a resumed task did: finished, waits for a request, yielded on its
-- own (resumed at the next step), or, as a run_all runner, ran a function.
local function after(self, task, ok, first, ...)
  if status(task.co) == "dead" then
    return finish(self, task, ok, first, ...)
  end
  if first == RAN and task.ran then return task.ran(task, (...)) end
  if first ~= WAITING then self.ready[#self.ready + 1] = task end
end

local function resume(self, task, ...)
  return after(self, task, resume_co(task.co, ...))
end

-- Starts fn(...) in a new task; it runs until its first request is in
-- flight. on_done(task) runs when it finishes.
function S:spawn(fn, on_done, ...)
  local task = setmetatable({ co = create(fn), on_done = on_done }, Task)
  self.tasks[task.co] = task
  self.count = self.count + 1
  resume(self, task, ...)
  return task
end

-- After close: every task waiting for a request (done now, failed as
-- "closed" by the transport's close), for a back-off or for its next turn
-- is resumed, without the transport.
local function drain(self)
  local list = self.ready
  self.ready = {}
  for _, task in pairs(self.tasks) do
    if task.waiting then
      task.waiting = nil
      list[#list + 1] = task
    end
  end
  self.nwaiting = 0
  for _, sl in ipairs(self.sleepers) do list[#list + 1] = sl.task end
  self.sleepers = {}
  for i = 1, #list do resume(self, list[i]) end
  return self.count
end

-- The owner of a request perform listed: when it is a task of this
-- scheduler waiting for that request, it is resumed. Whether it was.
local function deliver(self, owner)
  if not owner.waiting then return false end
  owner.waiting = nil
  self.nwaiting = self.nwaiting - 1
  resume(self, owner)
  return true
end

-- Drives transfers, waiting at most `wait` seconds for one to make
-- progress, and resumes every task whose request has finished.
-- Returns the number of unfinished tasks.
function S:step(wait)
  if self.closed then return drain(self) end
  if #self.ready > 0 then
    local list = self.ready
    self.ready = {}
    for i = 1, #list do resume(self, list[i]) end
    wait = 0
  end
  wait = wait or 0
  if #self.sleepers > 0 then
    local now = self.transport:now()
    local due, later = {}, {}
    local first
    for _, sl in ipairs(self.sleepers) do
      if sl.wake <= now then
        due[#due + 1] = sl.task
      else
        later[#later + 1] = sl
        if not first or sl.wake < first then first = sl.wake end
      end
    end
    self.sleepers = later
    for i = 1, #due do resume(self, due[i]) end
    if #due > 0 then wait = 0 end
    if first and first - now < wait then wait = first - now end
  end
  if self.nwaiting == 0 then
    if wait > 0 and #self.sleepers > 0 then self.transport:sleep(wait) end
    return self.count
  end
  local done = self.done
  local _, n = self.transport:perform(wait, done)
  for i = 1, n do
    local owner = done[i]
    done[i] = nil
    if not deliver(self, owner) and self.foreign then self.foreign(owner) end
  end
  return self.count
end

-- What a foreign loop's driver (stream.loop) took from the transport that
-- is a task of this scheduler (the owner its request was submitted with):
-- resumes it. Returns whether it was one waiting.
S.deliver = deliver

-- Seconds an outside loop may sleep before the next step: 0 when a task is
-- ready, nil when nothing is in flight, else libcurl's own timer, at most
-- 50 ms (the scheduler does not expose sockets to wait on).
function S:timeout()
  if self.count == 0 then return nil end
  if #self.ready > 0 or self.closed then return 0 end
  local limit = MAX_POLL
  if #self.sleepers > 0 then
    local now = self.transport:now()
    for _, sl in ipairs(self.sleepers) do
      limit = math.min(limit, math.max(0, sl.wake - now))
    end
  end
  if self.nwaiting == 0 then
    return #self.sleepers > 0 and limit or nil
  end
  local t = self.transport:timeout()
  if t == nil or t > limit then return limit end
  return t
end

-- Unfinished tasks, and requests in flight among them.
function S:pending()
  return self.count, self.nwaiting
end

-- Marks the client closed; call before the transport closes.
function S:close()
  self.closed = true
end

-- A run_all runner: runs the function it is resumed with, yields RAN with
-- what it returned, and is resumed with the next function, or with nil to
-- end.
local function runner(fn)
  while fn do
    fn = yield(RAN, pack(fn()))
  end
end

-- Runs fns[1..n] as tasks, at most `limit` at once, stepping until all
-- have finished. Returns one entry per function, in order: a packed list
-- of what it returned; a function that raised gives
-- {n = 2, nil, error_value, raised = true}.
function S:run_all(fns, limit)
  local n = #fns
  local results, active, nexti = {}, 0, 1
  local start_more
  -- a runner returned from fns[task.index]: give it the next one, or end it
  local function ran(task, r)
    results[task.index] = r
    if nexti <= n then
      local i = nexti
      nexti = i + 1
      task.index = i
      return resume(self, task, fns[i])
    end
    -- no more work: resumed with nil, the runner returns, so its coroutine
    -- ends (inside nginx, light threads it started are released only then)
    task.on_done = nil
    active = active - 1
    return resume(self, task, nil)
  end
  -- a runner whose function raised is finished; another takes its place
  local function raised(task)
    local r = task.results
    r.raised = true
    results[task.index] = r
    active = active - 1
  end
  start_more = function()
    while active < limit and nexti <= n do
      local i = nexti
      nexti = i + 1
      active = active + 1
      local task = setmetatable({ co = create(runner), on_done = raised, ran = ran, index = i }, Task)
      self.tasks[task.co] = task
      self.count = self.count + 1
      resume(self, task, fns[i])
    end
  end
  start_more()
  while active > 0 or nexti <= n do
    self:step(STEP_WAIT)
    start_more()
  end
  return results
end

-- Steps until no task is left.
function S:wait()
  while self.count > 0 do self:step(STEP_WAIT) end
end

---------------------------------------------------------------- threads

-- Inside nginx a coroutine scheduler cannot work: lua-nginx-module passes
-- an I/O yield (ngx.sleep, a cosocket of the caller's own) made inside a
-- coroutine up to the request's entry thread, so resume() would not return
-- until that I/O is done (tasks run one after another), and one request
-- would resume coroutines that belong to another. So with a transport that
-- runs functions as threads of its host, each task is such a thread (an
-- ngx.thread): nginx itself runs the tasks concurrently whatever they wait
-- on, a request inside a task is a plain call of the transport (it yields
-- the task's thread, not the worker), and step/wait wait on a semaphore
-- that finishing tasks post.
--
-- A light thread belongs to the request that spawned it, so tasks are kept
-- per request: a "group" per request and client, stored in a table the
-- transport gives for the running request (ngx.ctx) and gone with it.
-- parallel, go, step, wait, pending and timeout work on the calling
-- request's group only, so concurrent requests on one client (the
-- per-worker client of init_worker_by_lua) never share a task, a semaphore
-- or a coroutine. A task used from another request raises at once.
--
-- The transport offers:
--   t:context()       -> a table that lives as long as the running request
--                        (or nil where there is none), and nil when threads
--                        can start here, else why not (text)
--   t:spawn(fn, ...)  -> a thread running fn(...) (it runs at once until it
--                        first waits) | nil, err
--   t:signal()        -> a counting semaphore: post(n), wait(seconds), count()

local Threads = {}
Threads.__index = Threads

local ThreadTask = {}
ThreadTask.__index = ThreadTask
ThreadTask.__name = "stream.task"

-- Shortest wait of a step while tasks run: step(0) still lets nginx run them
-- (a loop of step(0) must not keep the worker from the tasks it waits for).
local MIN_WAIT = 0.001

local running = coroutine.running

function scheduler.threaded(transport)
  -- live: unfinished tasks of every request; 0 lets a plain call skip the
  -- lookup of the running request
  return setmetatable({ transport = transport, closed = false, live = 0 }, Threads)
end

-- The running request's group and, when threads cannot start here, why
-- not. With `make` (to start tasks) it is made on first use, and nil
-- where threads cannot start.
local function group_of(self, make)
  local ctx, problem = self.transport:context()
  local g = ctx and ctx[self]
  if not make then return g, problem end
  if problem or not ctx then return nil, problem end
  if g then return g end
  g = { set = self, tasks = {}, count = 0, in_flight = 0, signal = self.transport:signal() }
  ctx[self] = g
  return g
end

local function task_finished(g, task, ok, ...)
  g.count = g.count - 1
  g.set.live = g.set.live - 1
  settle(task, ok, ...)
  g.signal:post(1)
end

-- The body of every task's thread.
local function run_task(g, task, fn, ...)
  local co = running()
  g.tasks[co] = task
  task_finished(g, task, pcall(fn, ...))
  g.tasks[co] = nil
end

local function group_spawn(g, fn, on_done, ...)
  local task = setmetatable({ group = g, on_done = on_done }, ThreadTask)
  g.count = g.count + 1
  g.set.live = g.set.live + 1
  local th, err = g.set.transport:spawn(run_task, g, task, fn, ...)
  if not th then task_finished(g, task, false, "stream: cannot start a task: " .. tostring(err)) end
  return task
end

-- A task is used only by the request that started it.
local function check_owner(task)
  local g = task.group
  local ctx = g.set.transport:context()
  if not (ctx and ctx[g.set] == g) then
    error("stream: this task was started by another request (or timer); its thread belongs to that"
      .. " request, so only that request can use it (wait for it there, or start it here)", 3)
  end
end

function ThreadTask:done()
  check_owner(self)
  return self.finished == true
end

function ThreadTask:result()
  check_owner(self)
  if not self.finished then error("stream: task has not finished", 2) end
  return unpack(self.results, 1, self.results.n)
end

function Threads:inside()
  if self.live == 0 then return false end
  local g = group_of(self, false)
  return g ~= nil and g.tasks[running()] ~= nil
end

local function sent_from_task(g, ok, ...)
  g.in_flight = g.in_flight - 1
  if not ok then error((...), 0) end
  return ...
end

-- A request is a plain call of the transport, in a task or not: it waits
-- in the calling thread, and nginx runs the others meanwhile.
function Threads:send(req)
  if self.closed then return closed_failure() end
  local t = self.transport
  local g = self.live > 0 and group_of(self, false)
  if not (g and g.tasks[running()]) then return t:request(req) end
  g.in_flight = g.in_flight + 1
  return sent_from_task(g, pcall(t.request, t, req))
end

function Threads:sleep(seconds)
  if self.closed or not (seconds > 0) then return end -- luacheck: ignore 581 (NaN too)
  self.transport:sleep(seconds)
end

-- Starts fn(...) as a task of the calling request (client:go).
function Threads:spawn(fn, on_done, ...)
  local g, problem = group_of(self, true)
  if not g then
    error("client:go: cannot start a task here: " .. tostring(problem or "no request is running"), 3)
  end
  return group_spawn(g, fn, on_done, ...)
end

-- Waits at most `wait` seconds (at least MIN_WAIT while tasks run) for a
-- task of this request to finish. Returns the number left.
local function group_step(g, wait, problem)
  if g.count == 0 or problem then return g.count end
  local sig = g.signal
  if sig:count() == 0 then sig:wait(math.max(wait or 0, MIN_WAIT)) end
  while sig:count() > 0 do sig:wait(0) end
  return g.count
end

function Threads:step(wait)
  local g, problem = group_of(self, false)
  if not g then return 0 end
  return group_step(g, wait, problem)
end

function Threads:wait()
  local g, problem = group_of(self, false)
  if not g or problem then return end
  while g.count > 0 do group_step(g, STEP_WAIT) end
end

function Threads:pending()
  local g = group_of(self, false)
  if not g then return 0, 0 end
  return g.count, g.in_flight
end

function Threads:timeout()
  local g = group_of(self, false)
  if not g or g.count == 0 then return nil end
  if g.signal:count() > 0 then return 0 end
  return MAX_POLL
end

function Threads:close()
  self.closed = true
end

-- fn() as a run_all entry (stream.loop's run_all uses it too).
local function run_one(fn)
  local r = pack(pcall(fn))
  if r[1] then return pack(unpack(r, 2, r.n)) end
  return { n = 2, nil, r[2], raised = true }
end
scheduler.run_one = run_one

-- run_all with at most `limit` tasks of this request, each taking the next
-- function when its last one returned. Where threads cannot start (an nginx
-- phase without them), the functions run one after another: their calls
-- fail at once there anyway.
function Threads:run_all(fns, limit)
  local n = #fns
  local results, nexti, live = {}, 1, 0
  local g = group_of(self, true)
  if g then
    local function worker()
      while nexti <= n do
        local i = nexti
        nexti = i + 1
        results[i] = run_one(fns[i])
      end
    end
    local function worker_done() live = live - 1 end
    for _ = 1, math.min(limit, n) do
      live = live + 1
      group_spawn(g, worker, worker_done)
    end
    while live > 0 do group_step(g, STEP_WAIT) end
  end
  for i = nexti, n do results[i] = run_one(fns[i]) end -- no thread could take them
  return results
end

return scheduler
