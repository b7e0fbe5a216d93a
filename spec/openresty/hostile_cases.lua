-- spec/openresty/hostile_cases.lua: runs inside the nginx that hostile_spec.lua
-- starts. Each case makes a whole client (the ngx transport, as connect picks
-- it inside nginx) against the peer on ?port= and answers a JSON summary of
-- what came back; the spec asserts on it.
local ngx = ngx -- luacheck: ignore 113 (the nginx API, a global inside nginx)
local core = require "stream.core"
local stream = require "stream"

local M = {}

local SECRET = "hostile-cases-secret-0123456789abcdef"

local function client(opts)
  opts.base_url = "http://127.0.0.1:" .. ngx.var.arg_port .. "/"
  return stream.connect("key", SECRET, "1", opts)
end

-- What a call gave: the answer's size or the error's fields, and the time.
local function summary(f)
  local t0 = core.monotime()
  local res, err = f()
  local out = { seconds = core.monotime() - t0 }
  if res then
    out.ok = true
    return out
  end
  out.kind, out.reason, out.detail = err.kind, err.reason, err.detail
  out.attempts, out.retryable, out.sent = err.attempts, err.retryable, err.sent
  out.text = "failed: " .. err
  return out
end

local cases = {}

-- ?timeout=, ?total=, ?retries=, ?max_header=: options of the client
function cases.get()
  local a = ngx.var
  local c = client({
    timeout = tonumber(a.arg_timeout) or 5,
    total_timeout = tonumber(a.arg_total),
    retries = tonumber(a.arg_retries) or 0,
    max_header_bytes = tonumber(a.arg_max_header),
  })
  return summary(function() return c:user("x"):get() end)
end

-- body-less PUT and POST against the capture peer
function cases.empty_bodies()
  local c = client({ retries = 0 })
  return {
    restore = summary(function() return c.reactions:restore("r-1") end),
    post = summary(function() return c:_request({ method = "POST", path = "x/", idempotent = true }) end),
  }
end

function M.run()
  local f = cases[ngx.var.arg_case]
  local ok, res = pcall(f or error, "no case " .. tostring(ngx.var.arg_case))
  local body = assert(core.json_encode(ok and res or { raised = tostring(res) }))
  ngx.header["Content-Type"] = "application/json"
  ngx.header["Content-Length"] = #body
  ngx.print(body)
end

return M
