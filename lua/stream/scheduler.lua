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
-- The hot path allocates nothing per step: a waiting request is one entry
-- of a map (transport handle -> task), a transport that can say which
-- requests finished (perform(wait, done), as the curl one does) fills one
-- reused list, and resuming a task packs no table. run_all runs its
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

function scheduler.new(transport)
  return setmetatable({
    transport = transport,
    tasks = setmetatable({}, { __mode = "k" }), -- coroutine -> task
    waiting = {},                               -- transport handle -> task
    nwaiting = 0,                               -- entries in `waiting`
    done = {},                                  -- reused: handles perform says finished
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
  local co = coroutine.running()
  local task = co and self.tasks[co]
  if not task then
    return self.transport:request(req)
  end
  local h = self.transport:submit(req)
  self.waiting[h] = task
  self.nwaiting = self.nwaiting + 1
  yield(WAITING)
  return h:result()
end

-- Waits `seconds`: a task yields (the others go on), anything else blocks
-- while still driving the transfers in flight.
function S:sleep(seconds)
  if not (seconds > 0) then return end -- luacheck: ignore 581 (NaN too)
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
    if left <= 0 then return end
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

local function finish(self, task, ok, ...)
  self.tasks[task.co] = nil
  self.count = self.count - 1
  task.finished = true
  if ok then
    task.results = pack(...)
  else
    task.raised = true
    task.results = { n = 2, nil, (...) }
  end
  if task.on_done then task.on_done(task) end
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

-- Drives transfers, waiting at most `wait` seconds for one to make
-- progress, and resumes every task whose request has finished.
-- Returns the number of unfinished tasks.
function S:step(wait)
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
  local done, waiting = self.done, self.waiting
  local _, n = self.transport:perform(wait, done)
  if n == nil then
    -- the transport does not list what finished: ask every handle
    n = 0
    for h in pairs(waiting) do
      if h:done() then n = n + 1; done[n] = h end
    end
  end
  for i = 1, n do
    local h = done[i]
    done[i] = nil
    local task = waiting[h]
    if task then
      waiting[h] = nil
      self.nwaiting = self.nwaiting - 1
      resume(self, task)
    end
  end
  return self.count
end

-- Seconds an outside loop may sleep before the next step: 0 when a task is
-- ready, nil when nothing is in flight, else libcurl's own timer, at most
-- 50 ms (the scheduler does not expose sockets to wait on).
function S:timeout()
  if #self.ready > 0 then return 0 end
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

function S:in_flight()
  return self.nwaiting
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

return scheduler
