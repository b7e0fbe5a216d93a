-- Spec helper: an HTTPS peer. Makes a throw-away CA and a server
-- certificate for "localhost" only (not 127.0.0.1) with the openssl CLI, and starts a
-- plain nginx (its own prefix, a free loopback port) that answers every
-- request with a fixed user JSON body over TLS. opts.ca: another peer whose
-- authority signs this one's certificate too. opts.keepalive_requests
-- bounds the requests of one connection (1: a new connection, so a new
-- handshake, every request); peer.handshakes() reads the access log: one
-- entry per request, true when its connection's TLS session was resumed.
local socket = require "socket"

local M = {}

local function sh(cmd)
  local ok = os.execute(cmd .. " >/dev/null 2>&1")
  assert(ok == true or ok == 0, "failed: " .. cmd)
end

local free_port = require("helpers.server").free_port

local BODY = '{"id":"tls","created_at":"2026-11-26T17:02:16.131000Z",'
  .. '"updated_at":"2026-11-26T17:02:16.131000Z","data":{},"duration":"0.1ms"}'

function M.start(opts)
  opts = opts or {}
  local dir = os.tmpname()
  os.remove(dir)
  sh("mkdir -p " .. dir .. "/logs " .. dir .. "/conf")
  local d = dir .. "/conf/"
  if opts.ca then -- signed by another peer's authority (one trusted CA for both)
    local other = opts.ca.dir .. "/conf/"
    sh("cp " .. other .. "ca.key " .. other .. "ca.pem " .. d)
  else
    sh("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=lua-stream-test-ca"
      .. " -keyout " .. d .. "ca.key -out " .. d .. "ca.pem")
  end
  sh("openssl req -newkey rsa:2048 -nodes -subj /CN=localhost"
    .. " -keyout " .. d .. "server.key -out " .. d .. "server.csr")
  local ext = assert(io.open(d .. "ext.cnf", "w"))
  ext:write("subjectAltName=DNS:localhost\n")
  ext:close()
  sh("openssl x509 -req -in " .. d .. "server.csr -CA " .. d .. "ca.pem -CAkey " .. d .. "ca.key"
    .. " -CAcreateserial -days 2 -extfile " .. d .. "ext.cnf -out " .. d .. "server.pem")
  local port = free_port()
  local user = os.getenv("USER") == "root" or io.popen("id -u"):read("*l") == "0"
  local conf = assert(io.open(d .. "nginx.conf", "w"))
  conf:write(([[
%s
worker_processes 1;
daemon on;
pid %s/logs/nginx.pid;
error_log %s/logs/error.log;
events { worker_connections 64; }
http {
  log_format tls '$connection $connection_requests $ssl_session_reused';
  access_log %s/logs/access.log tls;
  keepalive_requests %d;
  client_body_temp_path %s/logs/body;
  proxy_temp_path %s/logs/proxy;
  fastcgi_temp_path %s/logs/fastcgi;
  uwsgi_temp_path %s/logs/uwsgi;
  scgi_temp_path %s/logs/scgi;
  server {
    listen 127.0.0.1:%d ssl;
    ssl_certificate %sserver.pem;
    ssl_certificate_key %sserver.key;
    ssl_session_cache shared:lua_stream_spec:1m;
    location / {
      default_type application/json;
      return 200 '%s';
    }
  }
}
]]):format(user and "user root root;" or "", dir, dir, dir, opts.keepalive_requests or 1000,
    dir, dir, dir, dir, dir, port, d, d, BODY))
  conf:close()
  sh("nginx -p " .. dir .. " -e " .. dir .. "/logs/error.log -c " .. d .. "nginx.conf")
  for _ = 1, 200 do
    local c = socket.connect("127.0.0.1", port)
    if c then c:close(); break end
    socket.sleep(0.01)
  end
  local peer = { port = port, ca_file = d .. "ca.pem", dir = dir }
  -- Per new connection in the access log (its first request), whether its
  -- session was resumed, in order.
  function peer.handshakes()
    local list = {}
    local f = io.open(dir .. "/logs/access.log")
    if not f then return list end
    for line in f:lines() do
      local n, reused = line:match("^%d+ (%d+) (%S+)")
      if n == "1" then list[#list + 1] = reused == "r" end
    end
    f:close()
    return list
  end
  function peer.stop()
    local f = io.open(dir .. "/logs/nginx.pid")
    if f then
      local pid = f:read("*l")
      f:close()
      if pid then os.execute("kill " .. pid .. " 2>/dev/null") end
    end
    os.execute("sleep 0.2; rm -rf " .. dir)
  end
  return peer
end

return M
