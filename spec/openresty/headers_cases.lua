-- spec/openresty/headers_cases.lua: runs inside the nginx that headers_spec.lua
-- starts. Each case sends requests with the ngx transport to the recording
-- peer on ?port= and answers a JSON list of what came back; the spec checks
-- those and what the peer recorded. Nothing here asserts.
local ngx = ngx -- luacheck: ignore 113 (the nginx API, a global inside nginx)
local core = require "stream.core"
local T = require "stream.transport.ngx"

local M = {}

-- Every byte value, NUL first and last, and a run of NULs.
M.BINARY = (function()
  local b = {}
  for i = 0, 255 do b[#b + 1] = string.char(i) end
  return "\0" .. table.concat(b) .. string.rep("\0", 64) .. "\r\n\r\nend\0"
end)()

M.SETTINGS = {
  timeout = 5, connect_timeout = 2, max_response_bytes = 1048576,
  headers = { Authorization = "a.b.c", ["stream-auth-type"] = "jwt", Accept = "application/json",
    ["User-Agent"] = "headers-cases/1" },
  body_headers = { ["Content-Type"] = "application/json" },
}

-- Invalid header maps (the value keys name them for the spec).
M.BAD = {
  crlf = { ["X-Evil"] = "a\r\nInjected: 1" }, lf = { ["X-A"] = "a\nb" }, cr = { ["X-A"] = "a\rb" },
  nul = { ["X-A"] = "a\0b" }, del = { ["X-A"] = "a\127" }, space = { ["X A"] = "v" },
  colon = { ["X:A"] = "v" }, empty_name = { [""] = "v" }, name_crlf = { ["X\r\nA"] = "v" },
  number = { ["X-A"] = 1 }, index = { [1] = "v" }, host = { Host = "elsewhere" },
  length = { ["content-length"] = "1" }, te = { ["Transfer-Encoding"] = "chunked" },
  twice = { ["X-A"] = "1", ["x-a"] = "2" }, not_table = "X-A: 1",
}

local function url()
  return "http://127.0.0.1:" .. ngx.var.arg_port .. "/p/"
end

local function summary(res, err)
  if res then return { status = res.status } end
  return { kind = err.kind, sent = err.sent, reason = err.reason, message = err.message }
end

-- Sends each {method, body, headers} in turn over one transport.
local function send_all(list)
  local t = T.new(core, M.SETTINGS)
  local out = {}
  for i, r in ipairs(list) do
    out[i] = summary(t:request({ method = r[1], url = url(), body = r[2], headers = r[3],
      idempotent = true }))
  end
  return out
end

local cases = {}

function cases.plain()
  return send_all({ { "GET" }, { "POST", "{}" }, { "GET", nil, {} }, { "POST", "{}", {} } })
end

function cases.extra()
  return send_all({ { "GET", nil, { ["X-Trace"] = "t-1" } }, { "GET", nil, { ["X-Empty"] = "" } },
    { "GET", nil, { ["X-A"] = "a\tb \195\169" } } })
end

function cases.replace()
  return send_all({
    { "POST", "--x--", { ["content-type"] = "multipart/form-data; boundary=----x1" } },
    { "GET", nil, { ACCEPT = "image/png", ["user-agent"] = "other/2" } },
    { "PUT", nil, { ["Content-Type"] = "text/plain" } },
  })
end

function cases.binary()
  return send_all({ { "POST", M.BINARY },
    { "PUT", M.BINARY, { ["Content-Type"] = "application/octet-stream" } } })
end

function cases.invalid()
  local t = T.new(core, M.SETTINGS)
  local out = {}
  for name, headers in pairs(M.BAD) do
    out[name] = summary(t:request({ method = "POST", url = url(), body = "{}", headers = headers }))
  end
  local h = t:submit({ method = "GET", url = url(), headers = M.BAD.crlf })
  while not h:done() do t:perform(1) end
  out.submitted = summary(h:result())
  return out
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
