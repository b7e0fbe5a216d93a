-- stream.loop: a client's calls on a foreign event loop (luv, cqueues).
--
-- After attach, a call made from a coroutine the loop runs suspends that
-- coroutine only: its request goes to the transport in socket mode
-- (libcurl's socket API: csrc/http.c, "socket mode"), the loop watches the
-- sockets libcurl names and runs libcurl's timer, and the coroutine goes on
-- when its answer is in. A call from anywhere else blocks as before (the C
-- core then polls the same sockets itself), and afterwards the loop is told
-- what it changed. parallel from a loop coroutine runs its functions in
-- coroutines of the loop and suspends the caller until they are done;
-- retries' back-off waits are the loop's own sleeps.
--
-- An adapter (stream.loop.luv, stream.loop.cqueues) is the loop's side:
--   a:inside()             whether the running coroutine is one the loop runs
--   a:suspend(w)           suspends it until a:wake(w) (w: a table per wait)
--   a:wake(w)              resumes it later (never from inside wake); once
--   a:spawn(fn)            runs fn in a coroutine the loop runs
--   a:sleep(seconds)       suspends the running coroutine that long
--   a:watch(fd, what)      watches a socket (what: 1 read, 2 write, 3 both,
--                          0 no longer); when it is ready the adapter calls
--                          driver:ready(fd, mask) (mask: 1 read, 2 write,
--                          4 error, 0 let libcurl find out)
--   a:timer(seconds|false) arms (or stops) the one timer: driver:fire()
--   a:reset()              stops watching every socket
--   a:busy(flag)           whether calls of the loop are in flight: while
--                          they are the loop keeps running for them, and
--                          when none is nothing of the client keeps it alive
--   a:close()              stops watching, stops the timer and frees what it
--                          made (after the waits it woke ran)
-- and a.driver is set by attach.

local scheduler = require "stream.scheduler"

local M = {}

-- Whether a coroutine may yield from inside pcall (Lua 5.2+, LuaJIT; not
-- plain Lua 5.1). parallel's functions run protected, so on a loop they run
-- as the loop's coroutines only where that is so; on Lua 5.1 parallel from
-- a loop coroutine runs as it does outside a loop (blocking until done).
local YIELD_IN_PCALL = coroutine.wrap(function() return pcall(coroutine.yield, 1) end)() == 1
M.parallel_on_loop = YIELD_IN_PCALL

local Driver = {}
Driver.__index = Driver

-- Tells the adapter what libcurl wants watched now.
function Driver:apply()
  local list, a = self.list, self.a
  local n, timer, reset = self.t:events(list)
  if reset then a:reset() end
  for i = 1, n do a:watch(list[2 * i - 1], list[2 * i]) end
  if timer ~= nil then a:timer(timer) end
end

-- What a transport call listed as finished: the owner a request was
-- submitted with, a wait of a loop coroutine (woken) or a task of the
-- client's own scheduler (client:go: resumed).
function Driver:finished_one(owner)
  if self.waiting[owner] then
    self.waiting[owner] = nil
    self.nwaiting = self.nwaiting - 1
    self.a:wake(owner)
  else
    self.sched:deliver(owner)
  end
end

-- The n owners a transport call put in self.done.
function Driver:finished(n)
  if self.closed then return end
  self:apply()
  local done = self.done
  for i = 1, n or 0 do
    local h = done[i]
    done[i] = nil
    self:finished_one(h)
  end
  if self.nwaiting == 0 then self.a:busy(false) end
end

-- A watched socket is ready (fd nil: the timer fired).
function Driver:ready(fd, mask)
  if self.closed then return end
  local _, n = self.t:action(fd, mask, self.done)
  self:finished(n)
end

-- libcurl's timer fired.
function Driver:fire()
  return self:ready(nil, 0)
end

-- After a blocking call drove the transfers itself: what it finished, and
-- the sockets it opened or closed.
function Driver:sync()
  if self.closed then return end
  local _, n = self.t:perform(0, self.done)
  self:finished(n)
end

-- Whether the running coroutine is the loop's (and not a task of the
-- client's own scheduler, which keeps its own way of waiting).
function Driver:in_loop()
  local co = coroutine.running()
  return co ~= nil and not self.sched.tasks[co] and self.a:inside()
end

-- A call from a loop coroutine: submitted, and the coroutine suspended
-- until it is done (a request the transport refused is done at once).
function Driver:send(req)
  local w = {}
  local h = self.t:submit(req, w)
  if not h:done() then
    self.waiting[w] = true
    self.nwaiting = self.nwaiting + 1
    self.a:busy(true)
    self:apply()
    self.a:suspend(w)
  end
  return h:result()
end

-- parallel from a loop coroutine: at most `limit` loop coroutines, each
-- taking the next function when its last one returned; the caller waits.
function Driver:run_all(fns, limit)
  local n = #fns
  local results, nexti, live = {}, 1, math.min(limit, n)
  local w = {}
  local a = self.a
  local function worker()
    while nexti <= n do
      local i = nexti
      nexti = i + 1
      results[i] = scheduler.run_one(fns[i])
    end
    live = live - 1
    if live == 0 and w.suspended then a:wake(w) end
  end
  for _ = 1, live do a:spawn(worker) end
  if live > 0 then
    w.suspended = true
    a:suspend(w)
  end
  return results
end

-- The client closed: every loop coroutine waiting for a call is woken (its
-- call ends as "closed", the transport having failed it by then: wakes run
-- later) and the adapter lets go of the loop.
function Driver:close()
  if self.closed then return end
  self.closed = true
  for w in pairs(self.waiting) do
    self.waiting[w] = nil
    self.a:wake(w)
  end
  self.nwaiting = 0
  self.a:close()
end

-- The scheduler's methods, on this one scheduler only: a call from a loop
-- coroutine goes through the driver, any other as before.
local function hook(sched, d)
  local base_send, base_sleep, base_run_all, base_close = sched.send, sched.sleep, sched.run_all,
    sched.close
  function sched.send(self, req)
    if self.closed then return base_send(self, req) end
    if d:in_loop() then return d:send(req) end
    local inside = self:inside()
    local res, err = base_send(self, req)
    if not inside then d:sync() end
    return res, err
  end
  function sched.sleep(self, seconds)
    if self.closed or not (seconds > 0) then return end -- luacheck: ignore 581 (NaN too)
    if d:in_loop() then return d.a:sleep(seconds) end
    return base_sleep(self, seconds)
  end
  function sched.run_all(self, fns, limit)
    if YIELD_IN_PCALL and d:in_loop() then return d:run_all(fns, limit) end
    local results = base_run_all(self, fns, limit)
    d:sync()
    return results
  end
  function sched.close(self)
    base_close(self)
    d:close()
  end
  sched.foreign = function(owner) d:finished_one(owner) end
end

-- Puts the calls of a client (its scheduler and transport: client.lua's
-- Client:attach_loop hands them over) on the loop `adapter` speaks for. `who`
-- names the caller in errors, `level` where they point.
function M.install(sched, t, adapter, who, level)
  if sched.loop_driver then error(who .. ": the client is already attached to a loop", level) end
  if not t.watch then
    error(who .. ": the client's transport (" .. tostring(t.name) .. ") runs on its own loop;"
      .. " only the curl transport can be attached", level)
  end
  if sched.count > 0 or sched.nwaiting > 0 then
    error(who .. ": the client has calls in flight (client:go tasks); attach before making any", level)
  end
  t:watch()
  local d = setmetatable({ sched = sched, t = t, a = adapter, waiting = {}, nwaiting = 0,
    list = {}, done = {} }, Driver)
  adapter.driver = d
  sched.loop_driver = d
  hook(sched, d)
end

return M
