-- Spec helper: clients pointed at a running local server, and transports
-- that wrap the real curl transport to add request headers (the server's
-- fault headers) or record what came back.
local stream = require "stream"
local curl = require "stream.transport.curl"

local M = {}

-- A transport module that sends `extra` headers on every request and
-- records the last answer's headers in `log`.
function M.transport(extra, log)
  return {
    new = function(core, settings)
      for _, h in ipairs(extra or {}) do
        local name, value = h:match("^([^:]+):%s*(.*)$")
        settings.headers[name] = value
      end
      local t = curl.new(core, settings)
      if log then
        local request = t.request
        t.request = function(self, req)
          local res, err = request(self, req)
          log[#log + 1] = { method = req.method, url = req.url, body = req.body,
            status = res and res.status, headers = res and res.headers, err = err }
          return res, err
        end
      end
      return t
    end,
  }
end

-- A server-side client whose requests all carry the fault headers given
-- (nil: none), for a server started with faults = true.
function M.faulty(s, headers, opts)
  opts = opts or {}
  opts.base_url = s.base_url
  if headers then opts.transport = M.transport(headers) end
  return stream.connect(s.api_key, s.api_secret, "1", opts)
end

-- f's first two results and the seconds it took.
function M.timed(f)
  local t0 = require("socket").gettime()
  local a, b = f()
  return a, b, require("socket").gettime() - t0
end

function M.server_client(s, opts)
  opts = opts or {}
  opts.base_url = opts.base_url or s.base_url
  return stream.connect(s.api_key, s.api_secret, "1", opts)
end

function M.token_client(s, token, opts)
  opts = opts or {}
  opts.base_url = opts.base_url or s.base_url
  return stream.connect(s.api_key, token, "1", opts)
end

-- The claims of a JWT the client signed (its payload, decoded by the core).
function M.claims(token)
  local core = require "stream.core"
  return core.json_decode(core.b64url_decode(token:match("^[^.]+%.([^.]+)%.")))
end

local n = 0
function M.uid(prefix)
  n = n + 1
  return string.format("%s-%d-%d-%d", prefix or "u", os.time(), math.random(1, 1e6), n)
end

-- Runs a Lua 5.4 script in a child (environment variables stay there);
-- its output, and whether it ended within `seconds`.
function M.child(env, script, seconds)
  local path = os.tmpname()
  local out = assert(io.open(path, "w"))
  out:write('package.path = "lua/?.lua;lua/?/init.lua;" .. package.path\n',
    'package.cpath = "build/5.4/?.so;" .. package.cpath\n', script)
  out:close()
  local p = io.popen(env .. " timeout " .. (seconds or 10) .. " lua5.4 " .. path .. " 2>&1; echo \"rc=$?\"")
  local text = p:read("*a")
  p:close()
  os.remove(path)
  return text
end

return M
