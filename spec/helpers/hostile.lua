-- Spec helper: a hostile or broken HTTP peer in a child process (lua5.4 +
-- luasocket). It listens on a free loopback port, reads each request, logs
-- its first line and answers the way `mode` says, one connection at a time:
--
--   drip        a 200 whose 100-byte body comes one byte every 0.2 s
--   drip_head   a status line, then one header byte every 0.2 s, never ending
--   big_line    one header line of 1 MiB
--   many_lines  80 header lines of 1000 bytes (80 KB, every line short)
--   status20    "HTTP/1.1 99999999999999999999 OK"
--   huge_length Content-Length: 99999999999999999999 and a 2-byte body, then close
--   bad_length  Content-Length: 12abc
--   echo_auth   a 401 whose JSON exception, detail, fields, more_info and
--               Location carry the request's Authorization value and `extra`
--   echo_text   a 500 whose text body has the Authorization value across its
--               200th byte
--   silent      reads the request and never answers
--
-- Every wait is bounded: a connection ends after 30 s, the peer after 60 s
-- without a connection; stop() kills it.
local socket = require "socket"

local M = {}

local CHILD = [==[
local socket = require "socket"
local port, mode, log_path, ready, extra = tonumber(arg[1]), arg[2], arg[3], arg[4], arg[5] or ""
local srv = assert(socket.bind("127.0.0.1", port))
srv:settimeout(60)
local f = io.open(ready, "wb"); f:write("1"); f:close()

local function read_request(c)
  local first = c:receive("*l")
  if not first then return nil end
  local h, len = {}, 0
  while true do
    local line = c:receive("*l")
    if not line or line == "" then break end
    local k, v = line:match("^([^:]+):%s*(.*)$")
    if k then h[k:lower()] = v end
  end
  len = tonumber(h["content-length"] or "0") or 0
  if len > 0 then c:receive(len) end
  local log = io.open(log_path, "ab"); log:write(first, "\n"); log:close()
  return first, h
end

local function drip(c, head, n)
  if not c:send(head) then return end
  for _ = 1, n do
    socket.sleep(0.2)
    if not c:send("x") then return end
  end
end

local function json_text(s) return '"' .. s:gsub('[%c"\\]', "") .. '"' end

local answers = {}
function answers.drip(c) drip(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", 100) end
function answers.drip_head(c) drip(c, "HTTP/1.1 200 OK\r\nX-Slow: ", 150) end
function answers.big_line(c)
  c:send("HTTP/1.1 200 OK\r\nX-Big: " .. string.rep("a", 1048576) .. "\r\nContent-Length: 2\r\n\r\n{}")
end
function answers.many_lines(c)
  local t = { "HTTP/1.1 200 OK\r\n" }
  for i = 1, 80 do t[#t + 1] = ("X-Line-%d: %s\r\n"):format(i, string.rep("b", 1000)) end
  t[#t + 1] = "Content-Length: 2\r\n\r\n{}"
  c:send(table.concat(t))
end
function answers.status20(c) c:send("HTTP/1.1 99999999999999999999 OK\r\nContent-Length: 2\r\n\r\n{}") end
function answers.huge_length(c) c:send("HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n{}") end
function answers.bad_length(c) c:send("HTTP/1.1 200 OK\r\nContent-Length: 12abc\r\n\r\n{}") end
function answers.echo_auth(c, h)
  local a = h["authorization"] or ""
  local both = a .. " " .. extra
  local body = '{"code":17,"exception":' .. json_text(both) .. ',"detail":' .. json_text("bad " .. both)
    .. ',"exception_fields":{' .. json_text(a) .. ':[' .. json_text(extra) .. ']},"more_info":'
    .. json_text(both) .. '}'
  c:send("HTTP/1.1 401 X\r\nContent-Type: application/json\r\nContent-Length: " .. #body .. "\r\n\r\n" .. body)
end
function answers.echo_text(c, h)
  local body = string.rep("x", 190) .. (h["authorization"] or "") .. " " .. extra .. " end"
  c:send("HTTP/1.1 500 X\r\nContent-Length: " .. #body .. "\r\n\r\n" .. body)
end
function answers.silent(c)
  c:settimeout(30)
  c:receive("*a") -- until the client gives up and closes
end

while true do
  local c = srv:accept()
  if not c then break end
  c:settimeout(30)
  local first, h = read_request(c)
  if first then answers[mode](c, h) end
  c:close()
end
]==]

local free_port = require("helpers.server").free_port

local function q(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

-- start(mode [, extra]) -> peer with .url, .port, :requests() (first lines seen), :stop()
function M.start(mode, extra)
  local script, log, ready = os.tmpname(), os.tmpname(), os.tmpname()
  os.remove(ready)
  local f = assert(io.open(script, "wb")); f:write(CHILD); f:close()
  local port = free_port()
  local p = assert(io.popen(string.format("lua5.4 %s %d %s %s %s %s >/dev/null 2>&1 & echo $!",
    q(script), port, q(mode), q(log), q(ready), q(extra or ""))))
  local pid = p:read("*l")
  p:close()
  for _ = 1, 500 do
    local r = io.open(ready)
    if r then r:close(); break end
    socket.sleep(0.01)
  end
  local peer = { url = "http://127.0.0.1:" .. port, port = port }
  function peer.requests()
    local list = {}
    local fh = io.open(log, "rb")
    if fh then
      for line in fh:lines() do list[#list + 1] = line end
      fh:close()
    end
    return list
  end
  function peer.stop()
    if pid and pid:match("^%d+$") then os.execute("kill " .. pid .. " 2>/dev/null") end
    os.remove(script); os.remove(log); os.remove(ready)
  end
  return peer
end

return M
