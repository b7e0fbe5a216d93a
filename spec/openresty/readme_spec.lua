-- The README's OpenResty sample runs as written: its ```nginx block (main, http and
-- server contexts, split at its "# http context" and "# in a server block" comments) and
-- its nginx module (the ```lua block whose first line is `-- app.lua`) make a real nginx
-- with one client per worker, which serves concurrent requests against the local server.
--
-- The only changes made to the README's text: /path/to/lua-stream becomes this checkout,
-- the directory holding app.lua is put in front of lua_package_path (where a reader puts
-- their own module), and the server block gets a loopback `listen` and the logs a place.
local S = require "openresty.support"
local server = require "helpers.server"
local readme = require "helpers.readme"

local function read_blocks()
  local path = S.root .. "/README.md"
  local nginx = readme.blocks(path, "nginx")
  assert(#nginx == 1, "expected one ```nginx block in README.md, found " .. #nginx)
  local app
  for _, b in ipairs(readme.blocks(path, "lua")) do
    local name = b.text:match("^%-%- ([%w_]+)%.lua")
    if name and readme.is_nginx_module(b) then
      assert(not app, "more than one nginx module sample in README.md")
      app = { name = name, text = b.text }
    end
  end
  assert(app, "README.md has no nginx module sample (a ```lua block starting `-- name.lua`)")
  return nginx[1].text, app
end

-- The README's config split into its three contexts.
local function contexts(text)
  local parts, cur = { main = {}, http = {}, server = {} }, "main"
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    if line:match("^#%s*http context") then cur = "http"
    elseif line:match("^#%s*in a server block") then cur = "server"
    else table.insert(parts[cur], line) end
  end
  assert(#parts.http > 0 and #parts.server > 0,
    "the README's nginx block lost its '# http context' / '# in a server block' comments")
  return parts
end

describe("README.md's OpenResty sample", function()
  local s, ng, app

  setup(function()
    s = server.start({})
    local text
    text, app = read_blocks()
    local parts = contexts(text:gsub("/path/to/lua%-stream", S.root))
    local port = S.free_port()
    local prefix = os.tmpname()
    os.remove(prefix)
    assert(os.execute("mkdir -p '" .. prefix .. "/logs' '" .. prefix .. "/conf' '" .. prefix .. "/app'"))
    local f = assert(io.open(prefix .. "/app/" .. app.name .. ".lua", "w"))
    f:write(app.text)
    f:close()
    local http = table.concat(parts.http, "\n"):gsub('lua_package_path%s+"', 'lua_package_path "'
      .. prefix .. '/app/?.lua;', 1)
    local root_user = io.popen("id -u"):read("*l") == "0" and "user root root;" or ""
    local conf = table.concat({
      table.concat(parts.main, "\n"), root_user, "worker_processes 1;", "daemon on;",
      "pid " .. prefix .. "/logs/nginx.pid;", "error_log " .. prefix .. "/logs/error.log warn;",
      "events { worker_connections 256; }",
      "http {", "  access_log off;", "  client_body_temp_path " .. prefix .. "/logs/body;",
      http,
      "  server {", "    listen 127.0.0.1:" .. port .. ";",
      table.concat(parts.server, "\n"), "  }", "}",
    }, "\n")
    ng = S.start_conf(conf, port, prefix, {
      STREAM_API_KEY = s.api_key, STREAM_API_SECRET = s.api_secret, STREAM_APP_ID = "1",
      STREAM_BASE_URL = s.url .. "/api/",
    })
  end)

  teardown(function()
    if ng then ng:stop() end
    if s then s:stop() end
  end)

  it("serves every location of the sample to concurrent requests on the worker's one client", function()
    -- what the sample reads: a user with a timeline and a follower
    local stream = require "stream"
    local c = stream.connect(s.api_key, s.api_secret, "1", { base_url = s.base_url })
    local id = "readme-" .. math.random(1, 1e9)
    assert(c:user(id):create({ name = "Rae" }))
    assert(c:user("fan-" .. id):create({ name = "Fan" }))
    assert(c:feed("timeline", "fan-" .. id):follow(c:feed("user", id)))
    assert(c:feed("user", id):add_activity({ actor = c:user(id), verb = "post", object = "o:1" }))
    assert(c:feed("timeline", id):follow(c:feed("user", "fan-" .. id)))
    assert(c:feed("user", "fan-" .. id):add_activity({ actor = c:user("fan-" .. id), verb = "cheer", object = "o:2" }))
    c:close()

    local locations = {}
    for _, line in ipairs(contexts(read_blocks()).server) do
      local loc = line:match("^%s*location%s+(/[%w_/-]*)")
      if loc then locations[#locations + 1] = loc end
    end
    assert.is_true(#locations >= 2, "the sample should show more than one location")
    local pid = S.read_file(ng.prefix .. "/logs/nginx.pid")
    local list = {}
    for round = 1, 4 do
      for _, loc in ipairs(locations) do
        list[#list + 1] = { "GET", ng.url .. loc .. "?id=" .. id, round = round }
      end
    end
    list[#list + 1] = { "GET", ng.url .. locations[1] .. "?id=no-such-" .. id }
    list[#list + 1] = { "GET", ng.url .. locations[1] .. "?id=bad%20id" }
    local results = S.concurrent(list, 20)
    for i = 1, #list - 2 do
      local r = results[i]
      assert.are.equal(200, r.status, list[i][2] .. ": " .. tostring(r.body))
      assert.matches("Rae", r.body, 1, true)
    end
    -- the sample's error mapping: an unknown user is Stream's 404, a bad id is invalid
    assert.are.equal(404, results[#list - 1].status, results[#list - 1].body)
    assert.matches("DoesNotExistException", results[#list - 1].body, 1, true)
    assert.are.equal(400, results[#list].status, results[#list].body)
    -- the dashboard's parallel read the follower count and the timeline
    for i, r in ipairs(results) do
      if list[i][2]:find("/dashboard", 1, true) then
        assert.matches("1 activities, 1 followers", r.body, 1, true)
      end
    end
    assert.are.equal(pid, S.read_file(ng.prefix .. "/logs/nginx.pid"))
    local log = ng:error_log()
    assert.is_nil(log:match("%[error%][^\n]*"), log)
    assert.is_nil(log:match("signal %d+"), log)
  end)
end)
