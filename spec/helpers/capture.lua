-- Spec helper: a one-shot HTTP peer in a child process. It listens on a
-- free loopback port, accepts `count` requests (keep-alive aware), writes
-- each raw request to a file and answers with a canned response. Lets specs
-- see the exact bytes the client sends and feed it answers no real server
-- gives (non-JSON, redirects).
local socket = require "socket"

local M = {}

local CHILD = [==[
local socket = require "socket"
local port, out, count, resp_file = tonumber(arg[1]), arg[2], tonumber(arg[3]), arg[4]
local f = io.open(resp_file, "rb"); local response = f:read("*a"); f:close()
local srv = assert(socket.bind("127.0.0.1", port))
srv:settimeout(10)
local log = assert(io.open(out, "wb"))
local ready = io.open(out .. ".ready", "wb"); ready:write("1"); ready:close()
local served = 0
while served < count do
  local c = srv:accept()
  if not c then break end
  c:settimeout(10)
  while served < count do
    local lines, len = {}, 0
    local line = c:receive("*l")
    if not line then break end
    while line and line ~= "" do
      lines[#lines + 1] = line
      local n = line:match("^[Cc]ontent%-[Ll]ength:%s*(%d+)")
      if n then len = tonumber(n) end
      line = c:receive("*l")
    end
    local body = len > 0 and c:receive(len) or ""
    log:write(table.concat(lines, "\r\n"), "\r\n\r\n", body, "\0")
    log:flush()
    c:send(response)
    served = served + 1
  end
  c:close()
end
log:close()
]==]

local free_port = require("helpers.server").free_port

-- The value of header `name` (a Lua pattern) in a captured raw request.
function M.header(req, name)
  return req:match("\r\n" .. name .. ":%s*([^\r\n]*)")
end

-- start{status=, headers={...}, body=, count=, port=} -> peer with .url, :requests()
-- (port: a free port the caller picked, e.g. to name the peer in its own answer)
function M.start(o)
  local body = o.body or ""
  local head = { "HTTP/1.1 " .. (o.status or 200) .. " X" }
  for k, v in pairs(o.headers or {}) do head[#head + 1] = k .. ": " .. v end
  head[#head + 1] = "Content-Length: " .. #body
  local resp_file = os.tmpname()
  local f = assert(io.open(resp_file, "wb"))
  f:write(table.concat(head, "\r\n"), "\r\n\r\n", body)
  f:close()
  local script = os.tmpname()
  f = assert(io.open(script, "wb")); f:write(CHILD); f:close()
  local out = os.tmpname()
  os.remove(out .. ".ready")
  local port = o.port or free_port()
  os.execute(string.format("lua5.4 %s %d %s %d %s >/dev/null 2>&1 &", script, port, out,
    o.count or 1, resp_file))
  for _ = 1, 500 do
    local r = io.open(out .. ".ready")
    if r then r:close(); break end
    socket.sleep(0.01)
  end
  local peer = { url = "http://127.0.0.1:" .. port, port = port }
  function peer.requests()
    local fh = io.open(out, "rb")
    local text = fh and fh:read("*a") or ""
    if fh then fh:close() end
    local list = {}
    for req in text:gmatch("([^%z]*)%z") do list[#list + 1] = req end
    return list
  end
  function peer.stop()
    os.remove(script); os.remove(resp_file); os.remove(out .. ".ready")
  end
  return peer
end

M.free_port = free_port
return M
