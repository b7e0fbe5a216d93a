-- spec/openresty/connect_proxy.lua PORT LOGFILE: a minimal HTTP CONNECT proxy for
-- transport_spec.lua (lua5.4 + luasocket, one process, select loop).
-- It writes every CONNECT request head to LOGFILE, opens the tunnel to
-- the named host (localhost means 127.0.0.1) and relays bytes both ways
-- until either side closes. It runs until killed.
local socket = require "socket"

local port, logfile = tonumber(arg[1]), arg[2]
local srv = assert(socket.bind("127.0.0.1", port))
srv:settimeout(0)

local heads = {} -- client socket -> request head read so far
local peer = {}  -- socket -> the other end of its tunnel

local function log(text)
  local f = io.open(logfile, "a")
  if f then
    f:write(text, "\n--\n")
    f:close()
  end
end

local function drop(s)
  local other = peer[s]
  peer[s], heads[s] = nil, nil
  s:close()
  if other then
    peer[other] = nil
    other:close()
  end
end

local function send_all(s, data)
  s:settimeout(5)
  local ok = s:send(data)
  s:settimeout(0)
  return ok
end

while true do
  local watch = { srv }
  for s in pairs(heads) do watch[#watch + 1] = s end
  for s in pairs(peer) do watch[#watch + 1] = s end
  local readable = socket.select(watch, nil, 1)
  for _, s in ipairs(readable) do
    if s == srv then
      local c = srv:accept()
      if c then
        c:settimeout(0)
        heads[c] = ""
      end
    elseif heads[s] then
      local data, err, partial = s:receive(4096)
      heads[s] = heads[s] .. (data or partial or "")
      local head = heads[s]:match("^(.-)\r\n\r\n")
      if head then
        heads[s] = nil
        log(head)
        local host, p = head:match("^CONNECT ([^%s:]+):(%d+) HTTP/1%.[01]")
        local up = host and socket.connect(host == "localhost" and "127.0.0.1" or host, tonumber(p))
        if up then
          up:settimeout(0)
          peer[s], peer[up] = up, s
          send_all(s, "HTTP/1.1 200 Connection established\r\n\r\n")
        else
          send_all(s, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
          s:close()
        end
      elseif err == "closed" then
        heads[s] = nil
        s:close()
      end
    elseif peer[s] then
      local data, err, partial = s:receive(65536)
      local chunk = data or partial
      if chunk and #chunk > 0 and not send_all(peer[s], chunk) then
        drop(s)
      elseif err == "closed" then
        drop(s)
      end
    end
  end
end
