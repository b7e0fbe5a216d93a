-- The request hooks: one log line per call to Stream, and a trace id sent
-- with every request. With STREAM_API_KEY / STREAM_API_SECRET (or
-- STREAM_URL) set it talks to Stream; `make demo`'s local server works too.
-- Run from the repository root after `make`:
--   lua5.4 examples/hooks.lua

package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
package.cpath = "build/5.4/?.so;" .. package.cpath

local stream = require "stream"

local serial = 0

local client = stream.connect({
  -- before each attempt (a retry is a request of its own): add headers
  on_request = function(req)
    serial = serial + 1
    req.headers["X-Request-Id"] = string.format("demo-%d-%d", os.time(), serial)
  end,
  -- once per call, with its answer or its error
  on_response = function(info)
    io.stdout:write(string.format("stream %-6s %-28s area=%-8s %-4s attempts=%d %.1fms sent=%dB got=%dB%s\n",
      info.method, info.path, info.area, tostring(info.status or info.kind), info.attempts,
      info.duration * 1000, info.bytes_sent, info.bytes_received,
      info.reused and " (kept-alive connection)" or ""))
  end,
})

local id = string.format("hooks-%d-%d", os.time(), math.random(1000, 9999))
local user = client:user(id)
user:create({ name = "Ann" })
user:get()
client:user(id .. "-missing"):get()
local feed = client:feed("user", id)
feed:add_activity({ actor = user, verb = "post", object = "note:1" })
feed:get({ limit = 5 })
client:parallel({
  function() return client:user(id):get() end,
  function() return feed:get({ limit = 1 }) end,
})
user:delete()
client:close()
