-- stream.loop.luv: a client's calls on a luv (libuv) loop.
--
--   local uv = require "luv"
--   require("stream.loop.luv").attach(client)        -- luv's default loop
--   coroutine.wrap(function()
--     local user = assert(client:user("alice"):get()) -- suspends this coroutine only
--   end)()
--   uv.run()
--
-- After attach, a call made from a coroutine (any but the main one: in luv a
-- coroutine is what a callback resumes) suspends it; the loop goes on, and
-- the coroutine is resumed from the loop when the answer is in. A call from
-- the main thread (a plain callback) still blocks. The sockets libcurl opens
-- are watched with uv poll handles, its timer with a uv timer; while no call
-- of the loop is in flight they do not keep uv.run from returning. luv is
-- loaded only here: it is no dependency of the rest of stream.
--
-- An error raised by a resumed coroutine is raised from the loop callback
-- that resumed it (as coroutine.wrap would), where luv reports it.

local Client = require "stream.client"

local M = {}

local A = {}
A.__index = A

local EVENTS = { "r", "w", "rw" }
local MASK = { r = 1, w = 2, rw = 3 }
local isyieldable = coroutine.isyieldable

function A.inside()
  local co, main = coroutine.running()
  if co == nil or main then return false end
  return isyieldable == nil or isyieldable()
end

function A.suspend(_, w)
  w.co = coroutine.running()
  repeat coroutine.yield() until w.woken
end

-- Runs the queued wakes (the wake timer's callback): every one, then the
-- first error a coroutine raised.
function A:run_wakes()
  local q = self.queue
  self.queue = {}
  local failure
  for i = 1, #q do
    local co = q[i].co
    if co and coroutine.status(co) == "suspended" then
      local ok, err = coroutine.resume(co)
      if not ok and failure == nil then failure = debug.traceback(co, tostring(err)) end
    end
  end
  if failure ~= nil then error(failure, 0) end
end

function A:wake(w)
  if w.woken then return end
  w.woken = true
  if self.direct and w.co then
    -- inside the adapter's own poll or timer callback: resumed here, as a
    -- callback of the program would resume it (one loop turn less)
    local ok, err = coroutine.resume(w.co)
    if not ok then error(debug.traceback(w.co, tostring(err)), 0) end
    return
  end
  local q = self.queue
  q[#q + 1] = w
  if #q == 1 then self.wake_h:start(0, 0, self.on_wake) end
end

-- Runs a driver call from the adapter's own callback: the waits it ends
-- are resumed at once (wake), the flag cleared whatever happens.
function A:run(f, d, ...)
  self.direct = true
  local ok, err = pcall(f, d, ...)
  self.direct = false
  if not ok then error(err, 0) end
end

function A.spawn(_, fn)
  local co = coroutine.create(fn)
  local ok, err = coroutine.resume(co)
  if not ok then error(debug.traceback(co, tostring(err)), 0) end
end

function A:sleep(seconds)
  local t, w = self.uv.new_timer(), {}
  t:start(math.ceil(seconds * 1000), 0, function()
    self:release(t)
    self:wake(w)
  end)
  self:suspend(w)
end

local function set_ref(h, on)
  if on then h:ref() else h:unref() end
end

function A:watch(fd, what)
  local p = self.polls[fd]
  if what == 0 then
    if p then
      self.polls[fd], self.whats[fd] = nil, nil
      self:release(p)
    end
    return
  end
  if not p then
    p = assert(self.uv.new_socket_poll(fd))
    self.polls[fd] = p
    set_ref(p, self.refd)
  elseif self.whats[fd] == what then
    return -- already watched for that: no new registration with the kernel
  end
  self.whats[fd] = what
  local cb = self.callbacks[fd]
  if not cb then
    cb = function(err, events)
      self:run(self.driver.ready, self.driver, fd, err and 4 or MASK[events] or 0)
    end
    self.callbacks[fd] = cb
  end
  p:start(EVENTS[what], cb)
end

function A:timer(seconds)
  if seconds == false then
    self.timer_h:stop()
  else
    self.timer_h:start(math.ceil(seconds * 1000), 0, self.on_fire)
  end
end

function A:reset()
  for fd in pairs(self.polls) do self:watch(fd, 0) end
end

function A:busy(on)
  if on == self.refd then return end
  self.refd = on
  set_ref(self.timer_h, on)
  for _, p in pairs(self.polls) do set_ref(p, on) end
end

-- A handle no longer used: stopped, and closed when the loop runs (its
-- close completes on a later turn); outside the loop it is left to luv's
-- collector, which closes it (luv 1.44 crashes at exit on a handle closed
-- and never run to its close callback).
function A:release(h)
  h:stop()
  if self.uv.loop_mode() ~= nil then h:close() end
end

function A:close()
  if self.finalized then return end -- luv's handles are gone or going (see finalizer)
  self:reset()
  self:release(self.timer_h)
  -- the wake timer stays (stopped when idle) for the waits woken by close
end

-- An object finalized before the handles made just before it (Lua runs
-- finalizers in the reverse order objects were marked for them), so a
-- client collected with its adapter, or at exit, closes nothing that luv
-- already let go of.
local function finalizer(a)
  local function mark() a.finalized = true end
  if newproxy then -- luacheck: ignore 113 (Lua 5.1, LuaJIT: __gc only on userdata)
    local p = newproxy(true) -- luacheck: ignore 113
    getmetatable(p).__gc = mark
    return p
  end
  return setmetatable({}, { __gc = mark })
end

-- attach(client [, uv]): uv is the luv module (require "luv" when not given).
function M.attach(client, uv)
  uv = uv or require "luv"
  if type(uv) ~= "table" or type(uv.new_socket_poll) ~= "function" then
    error("stream.loop.luv.attach: expects the luv module as its loop, got " .. type(uv), 2)
  end
  local a = setmetatable({ uv = uv, polls = {}, whats = {}, callbacks = {}, queue = {}, refd = false },
    A)
  Client.attach_loop(client, a, "stream.loop.luv.attach")
  a.timer_h = uv.new_timer()
  a.timer_h:unref()
  a.wake_h = uv.new_timer()
  a.on_fire = function() a:run(a.driver.fire, a.driver) end
  a.on_wake = function() a:run_wakes() end
  a.finalizer = finalizer(a)
  return client
end

return M
