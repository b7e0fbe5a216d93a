-- server/start and server/stop: several instances, settings, failures, foreground mode.

local server = require "helpers.server"
local http = require "helpers.http"
local socket = require "socket"

local function q(s) return http.shell_quote(s) end
local ROOT = server.root

local function exists(path)
  return os.execute("test -e " .. q(path)) == true
end

-- run server/start with env; returns ok, stdout, stderr
local function start_cmd(env, args)
  local errf = os.tmpname()
  local parts = { "env" }
  for k, v in pairs(env) do parts[#parts + 1] = k .. "=" .. q(v) end
  parts[#parts + 1] = q(ROOT .. "/server/start") .. " " .. (args or "--daemon") .. " 2>" .. q(errf)
  local p = io.popen(table.concat(parts, " "), "r")
  local out = p:read("*a")
  local ok = p:close()
  local err = http.read_file(errf)
  os.remove(errf)
  return ok, out, err
end

describe("server/start", function()
  it("runs two servers on different ports at once, each with its own users", function()
    local a = server.start()
    local b = server.start({ workers = 1 })
    finally(function() a:stop(); b:stop() end)
    assert.are_not.equal(a.port, b.port)
    local api_a, api_b = http.api(a), http.api(b)
    assert.are.equal(201, (api_a:call("POST", "user/", { body = '{"id":"only-on-a"}' })))
    assert.are.equal(200, (api_a:call("GET", "user/only-on-a/")))
    assert.are.equal(404, (api_b:call("GET", "user/only-on-a/")))
    assert.are.equal(201, (api_b:call("POST", "user/", { body = '{"id":"only-on-a"}' })))
  end)

  it("prints the settings as shell assignments and keeps everything in its prefix", function()
    local port = server.free_port()
    local ok, out = start_cmd({ STREAM_LOCAL_PORT = port, STREAM_API_KEY = "k-1", STREAM_API_SECRET = "s-1" })
    assert.is_true(ok)
    local prefix = out:match("STREAM_LOCAL_PREFIX=(%S+)")
    finally(function() os.execute(q(ROOT .. "/server/stop") .. " " .. q(prefix)) end)
    assert.matches("STREAM_LOCAL_URL=http://127%.0%.0%.1:" .. port .. "\n", out)
    assert.matches("STREAM_BASE_URL=http://127%.0%.0%.1:" .. port .. "/api/\n", out)
    assert.matches("STREAM_API_KEY=k%-1\n", out)
    assert.matches("STREAM_API_SECRET=s%-1\n", out)
    for _, f in ipairs({ "conf/nginx.conf", "logs/nginx.pid", "logs/error.log", "temp/client_body" }) do
      assert.is_true(exists(prefix .. "/" .. f), f)
    end
    local conf = http.read_file(prefix .. "/conf/nginx.conf")
    assert.matches("listen 127%.0%.0%.1:" .. port .. ";", conf)
    assert.is_nil(conf:find("/var/log/nginx", 1, true))
    -- the key and secret from the environment are the ones checked
    local api = http.api({ base_url = "http://127.0.0.1:" .. port .. "/api/v1.0/",
      api_key = "k-1", api_secret = "s-1" })
    assert.are.equal(404, (api:call("GET", "user/x/")))
    assert.are.equal(401, (api:call("GET", "user/x/", { api_key = "local-api-key" })))
    assert.are.equal(403, (api:call("GET", "user/x/", { token = http.jwt(http.SERVER_CLAIMS) })))
  end)

  it("uses --prefix DIR when given", function()
    local dir = os.tmpname()
    os.remove(dir)
    local ok, out = start_cmd({ STREAM_LOCAL_PORT = server.free_port() }, "--daemon --prefix " .. q(dir))
    finally(function() os.execute(q(ROOT .. "/server/stop") .. " " .. q(dir) .. " >/dev/null 2>&1") end)
    assert.is_true(ok)
    assert.matches("STREAM_LOCAL_PREFIX=" .. dir:gsub("%p", "%%%0"), out)
    assert.is_true(exists(dir .. "/conf/nginx.conf"))
  end)

  it("fails fast with a clear message when the port is taken", function()
    local a = server.start()
    finally(function() a:stop() end)
    local t0 = socket.gettime()
    local ok, out, err = start_cmd({ STREAM_LOCAL_PORT = a.port })
    assert.is_falsy(ok)
    assert.are.equal("", out)
    assert.matches("port " .. a.port .. " is already in use", err)
    assert.is_true(socket.gettime() - t0 < 1)
  end)

  it("refuses bad settings", function()
    for _, env in ipairs({ { STREAM_LOCAL_PORT = "abc" }, { STREAM_LOCAL_PORT = "80" },
      { STREAM_LOCAL_WORKERS = "0" }, { STREAM_LOCAL_RATE_LIMIT = "many" }, { STREAM_LOCAL_FAULTS = "maybe" },
      { STREAM_LOCAL_FEED_GROUPS = "user,bad-slug" }, { STREAM_LOCAL_FEED_GROUPS = "user,,timeline" },
      { STREAM_LOCAL_FEED_GROUPS = "user,notification:ranked" }, { STREAM_LOCAL_FEED_GROUPS = "user:" },
      { STREAM_LOCAL_MEMORY = "lots" }, { STREAM_LOCAL_MEMORY = "0m" },
      { STREAM_LOCAL_DB = "/nonexistent-dir-for-stream-local/x.db" } }) do
      local ok, _, err = start_cmd(env)
      assert.is_falsy(ok)
      assert.matches("server/start: ", err)
    end
  end)

  it("runs in the foreground until TERM, then removes the prefix it made", function()
    local port = server.free_port()
    local out = os.tmpname()
    local p = io.popen("env STREAM_LOCAL_PORT=" .. port .. " " .. q(ROOT .. "/server/start") .. " >" .. q(out)
      .. " 2>&1 & echo $!", "r")
    local pid = p:read("*l")
    p:close()
    local text, prefix = "", nil
    for _ = 1, 200 do
      text = http.read_file(out) or ""
      prefix = text:match("STREAM_LOCAL_PREFIX=(%S+)")
      if prefix then break end
      socket.sleep(0.025)
    end
    assert.is_string(prefix, text)
    assert.are.equal(404, (http.api({ base_url = "http://127.0.0.1:" .. port .. "/api/v1.0/", api_key = "local-api-key",
      api_secret = http.DEFAULT_SECRET }):call("GET", "user/x/")))
    os.execute("kill -TERM " .. pid)
    for _ = 1, 200 do
      if not exists(prefix) then break end
      socket.sleep(0.025)
    end
    os.remove(out)
    assert.is_false(exists(prefix))
    assert.are.equal(0, (http.request("GET", "http://127.0.0.1:" .. port .. "/", { timeout = 1 })))
  end)
end)

describe("server/stop", function()
  it("stops the server, removes the prefix, and is idempotent", function()
    local s = server.start()
    s:stop()
    assert.is_false(exists(s.prefix))
    assert.are.equal(0, (http.request("GET", s.url .. "/", { timeout = 1 })))
    assert.is_true(os.execute(q(ROOT .. "/server/stop") .. " " .. q(s.prefix)))
    s:stop()
  end)

  it("refuses a directory that is not a server prefix", function()
    local dir = os.tmpname()
    os.remove(dir)
    os.execute("mkdir " .. q(dir))
    finally(function() os.execute("rmdir " .. q(dir)) end)
    assert.is_falsy(os.execute(q(ROOT .. "/server/stop") .. " " .. q(dir) .. " 2>/dev/null"))
    assert.is_true(exists(dir))
  end)

  it("is also reachable as server/start --stop", function()
    local ok, out = start_cmd({ STREAM_LOCAL_PORT = server.free_port() })
    assert.is_true(ok)
    local prefix = out:match("STREAM_LOCAL_PREFIX=(%S+)")
    assert.is_true(os.execute(q(ROOT .. "/server/start") .. " --stop " .. q(prefix)))
    assert.is_false(exists(prefix))
  end)
end)
