-- Spec helper: an HTTP peer in a child process that records every request
-- byte for byte (request line, headers exactly as they came, body by its
-- Content-Length) and answers each with 200 and `{}`. Unlike capture.lua it
-- keeps bodies with NUL bytes whole, serves any number of requests on any
-- number of keep-alive connections at once, and runs until stopped.
--
--   local recorder = require "helpers.recorder"
--   local peer = recorder.start()      -- peer.url, peer.port
--   peer.requests()  -> { {head =, body =, raw =}, ... } in arrival order
--                       (head: request line and header lines, without the
--                       blank line; raw: every byte of the request)
--   peer.stop()
--   recorder.fields(head) -> { {name, value}, ... } in order, names as sent
--   recorder.values(head, name) -> the values of header `name` (any case)
--   recorder.line(r) -> a recorded request's request line ("POST /x HTTP/1.1")
--   recorder.one(r, name) -> the value of header `name`, asserted to be sent once
local socket = require "socket"
local free_port = require("helpers.server").free_port

local M = {}

local CHILD = [==[
local socket = require "socket"
local port, out = tonumber(arg[1]), arg[2]
local srv = assert(socket.bind("127.0.0.1", port))
srv:settimeout(0)
local log = assert(io.open(out, "wb"))
local ready = io.open(out .. ".ready", "wb"); ready:write("1"); ready:close()
local ANSWER = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
local conns = {}       -- socket -> bytes received and not yet recorded

-- Records every whole request in buf and answers it; the rest of buf.
local function serve(c, buf)
  while true do
    local e = buf:find("\r\n\r\n", 1, true)
    if not e then return buf end
    local head = buf:sub(1, e - 1)
    local len = tonumber(head:lower():match("\r\ncontent%-length:%s*(%d+)")) or 0
    if #buf < e + 3 + len then return buf end
    local raw = buf:sub(1, e + 3 + len)
    log:write(#raw, "\n", raw)
    log:flush()
    c:send(ANSWER)
    buf = buf:sub(#raw + 1)
  end
end

local idle = 0
while idle < 600 do  -- a minute without any connection: the spec is gone
  local list = { srv }
  for c in pairs(conns) do list[#list + 1] = c end
  local readable = socket.select(list, nil, 0.1)
  idle = (#readable == 0 and next(conns) == nil) and idle + 1 or 0
  for _, s in ipairs(readable) do
    if s == srv then
      local c = srv:accept()
      if c then c:settimeout(0); conns[c] = "" end
    else
      local data, err, partial = s:receive(65536)
      local chunk = data or partial
      if chunk and chunk ~= "" then conns[s] = serve(s, conns[s] .. chunk) end
      if err == "closed" then s:close(); conns[s] = nil end
    end
  end
end
log:close()
]==]

local function q(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function parse(text)
  local list, pos = {}, 1
  while pos <= #text do
    local nl = text:find("\n", pos, true)
    if not nl then break end
    local len = tonumber(text:sub(pos, nl - 1))
    local raw = text:sub(nl + 1, nl + len)
    if #raw < len then break end
    local e = raw:find("\r\n\r\n", 1, true)
    list[#list + 1] = { raw = raw, head = raw:sub(1, e - 1), body = raw:sub(e + 4) }
    pos = nl + 1 + len
  end
  return list
end

function M.start()
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p " .. q(dir)))
  local script, out, pidfile = dir .. "/peer.lua", dir .. "/requests", dir .. "/pid"
  local f = assert(io.open(script, "wb"))
  f:write(CHILD)
  f:close()
  local port = free_port()
  os.execute(string.format("sh -c 'echo $$ > %s; exec lua5.4 %s %d %s' >/dev/null 2>&1 &",
    pidfile, script, port, out))
  for _ = 1, 500 do
    local r = io.open(out .. ".ready")
    if r then r:close() break end
    socket.sleep(0.01)
  end
  local peer = { url = "http://127.0.0.1:" .. port, port = port }
  function peer.requests()
    local fh = io.open(out, "rb")
    local text = fh and fh:read("*a") or ""
    if fh then fh:close() end
    return parse(text)
  end
  function peer.stop()
    local fh = io.open(pidfile)
    local pid = fh and fh:read("*l")
    if fh then fh:close() end
    if pid and pid:match("^%d+$") then os.execute("kill " .. pid .. " 2>/dev/null") end
    os.execute("rm -rf " .. q(dir))
  end
  return peer
end

-- The header fields of a recorded head (the request line aside), in order:
-- { {name, value}, ... }.
function M.fields(head)
  local list = {}
  for line in head:gmatch("\r\n([^\r\n]*)") do
    local name, value = line:match("^([^:]+):[ \t]*(.-)[ \t]*$")
    if name then list[#list + 1] = { name, value } end
  end
  return list
end

-- Every value of header `name` (compared in any case) in a recorded head.
function M.values(head, name)
  local out = {}
  for _, f in ipairs(M.fields(head)) do
    if f[1]:lower() == name:lower() then out[#out + 1] = f[2] end
  end
  return out
end

-- The request line of a recorded request.
function M.line(r)
  return r.head:match("^([^\r\n]*)")
end

-- The one value of header `name` in a recorded request (asserted sent once).
function M.one(r, name)
  local values = M.values(r.head, name)
  assert(#values == 1, name .. " sent " .. #values .. " times")
  return values[1]
end

return M
