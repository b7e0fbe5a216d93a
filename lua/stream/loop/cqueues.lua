-- stream.loop.cqueues: a client's calls on a cqueues controller (the loop
-- under lua-http).
--
--   local cqueues = require "cqueues"
--   local cq = cqueues.new()
--   require("stream.loop.cqueues").attach(client, cq)
--   cq:wrap(function()
--     local user = assert(client:user("alice"):get()) -- suspends this coroutine only
--   end)
--   assert(cq:loop())
--
-- After attach, a call made from a coroutine a controller runs (a cq:wrap
-- function) waits on a condition variable, so only that coroutine waits;
-- a call from anywhere else still blocks. While calls of the loop are in
-- flight, one coroutine of the attached controller polls the sockets
-- libcurl names and runs libcurl's timer; it ends when none is, so cq:loop()
-- returns once the program's own coroutines have. attach(client) from
-- inside a controller's coroutine attaches to that controller. cqueues is
-- loaded only here: it is no dependency of the rest of stream.

local cqueues = require "cqueues"
local condition = require "cqueues.condition"
local Client = require "stream.client"

local unpack = table.unpack or unpack -- luacheck: ignore 143

local M = {}

local A = {}
A.__index = A

local EVENTS = { "r", "w", "rw" }

function A.inside()
  return cqueues.running() ~= nil
end

function A.suspend(_, w)
  w.cond = condition.new()
  while not w.woken do w.cond:wait() end
end

function A.wake(_, w)
  if w.woken then return end
  w.woken = true
  if w.cond then w.cond:signal() end
end

function A:spawn(fn)
  local cq = cqueues.running() or self.cq
  cq:wrap(fn)
end

function A.sleep(_, seconds)
  cqueues.sleep(seconds)
end

function A:watch(fd, what)
  if what == 0 then
    if self.fds[fd] then
      self.fds[fd] = nil
      -- cqueues keeps descriptors registered between polls: one libcurl
      -- closed (and may have opened again under the same number) is dropped
      cqueues.cancel(fd)
    end
  else
    local p = self.fds[fd] or { pollfd = fd }
    p.events = EVENTS[what]
    self.fds[fd] = p
  end
  self.changed:signal()
end

function A:timer(seconds)
  self.timer_at = seconds and cqueues.monotime() + seconds or nil
  self.changed:signal()
end

function A:reset()
  for fd in pairs(self.fds) do self:watch(fd, 0) end
end

-- The polling coroutine: runs while calls of the loop are in flight.
function A:drive()
  local objs = {}
  while self.active and not self.closed do
    local n = 1
    objs[1] = self.changed
    for _, p in pairs(self.fds) do
      n = n + 1
      objs[n] = p
    end
    if self.timer_at then
      n = n + 1
      objs[n] = math.max(0, self.timer_at - cqueues.monotime())
    end
    local ready = { cqueues.poll(unpack(objs, 1, n)) }
    for i = 1, #ready do
      local p = ready[i]
      if type(p) == "table" and self.fds[p.pollfd] == p then self.driver:ready(p.pollfd, 0) end
    end
    if self.timer_at and cqueues.monotime() >= self.timer_at then
      self.timer_at = nil
      self.driver:fire()
    end
  end
  self.polling = false
end

function A:busy(on)
  self.active = on
  if on and not self.polling then
    self.polling = true
    self.cq:wrap(function() self:drive() end)
  elseif not on then
    self.changed:signal()
  end
end

function A:close()
  self.closed = true
  self:reset()
  self.timer_at = nil
  self.changed:signal()
end

-- attach(client [, cq]): cq a controller (cqueues.new()); the running one
-- when not given.
function M.attach(client, cq)
  cq = cq or cqueues.running()
  if cq == nil then
    error("stream.loop.cqueues.attach: give a controller (cqueues.new()), or attach from a"
      .. " coroutine one runs", 2)
  end
  if not (cqueues.type and cqueues.type(cq) == "controller") then
    error("stream.loop.cqueues.attach: expects a cqueues controller, got " .. type(cq), 2)
  end
  local a = setmetatable({ cq = cq, fds = {}, changed = condition.new() }, A)
  Client.attach_loop(client, a, "stream.loop.cqueues.attach")
  return client
end

return M
