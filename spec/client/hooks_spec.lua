-- The request hooks (options on_request, on_response) against the local
-- server and the recording peer.
local stream = require "stream"
local server = require "helpers.server"
local recorder = require "helpers.recorder"
local H = require "helpers.client"

-- Every string in a value, walked through tables (keys too).
local function strings(v, out, seen)
  out, seen = out or {}, seen or {}
  if type(v) == "string" then
    out[#out + 1] = v
  elseif type(v) == "table" and not seen[v] then
    seen[v] = true
    for k, x in pairs(v) do
      strings(k, out, seen)
      strings(x, out, seen)
    end
  end
  return out
end

local function assert_clean(v, secrets)
  for _, s in ipairs(strings(v)) do
    for _, secret in ipairs(secrets) do
      assert(not s:find(secret, 1, true), "hook value holds a secret: " .. s)
    end
  end
end

-- A copy of a table the client lends a hook (it fills the same one again later).
local function copy(t)
  local out = {}
  for k, v in pairs(t) do out[k] = v end
  return out
end

-- A client whose hooks record into reqs and infos.
local function hooked(s, opts, reqs, infos)
  opts = opts or {}
  opts.on_request = opts.on_request or function(req) reqs[#reqs + 1] = copy(req) end
  opts.on_response = opts.on_response or function(info) infos[#infos + 1] = copy(info) end
  return H.server_client(s, opts)
end

describe("request hooks", function()
  local s

  it("lend on_response one table, filled again for the next call", function()
    local seen = {}
    local c = H.server_client(s, { on_response = function(info)
      seen[#seen + 1] = { t = info, path = info.path } end })
    assert(c:user("hook-lend"):get_or_create({}))
    assert(c:user("hook-lend"):get())
    c:close()
    assert.equal(2, #seen)
    assert.equal(seen[1].t, seen[2].t)
    assert.equal("user/", seen[1].path)
    assert.equal("user/hook-lend/", seen[2].path)
  end)

  it("lend on_request one table per attempt, its headers empty again each time", function()
    local seen = {}
    local c = H.server_client(s, { on_request = function(req)
      seen[#seen + 1] = { t = req, path = req.path, headers = next(req.headers) }
      req.headers["X-Trace-Id"] = "t-" .. #seen
    end })
    assert(c:user("hook-lend-req"):get_or_create({}))
    assert(c:user("hook-lend-req"):get())
    c:close()
    assert.equal(2, #seen)
    assert.equal(seen[1].t, seen[2].t)
    assert.same({ "user/", "user/hook-lend-req/" }, { seen[1].path, seen[2].path })
    assert.is_nil(seen[2].headers)
  end)

  it("report a body the pipeline refuses: kind invalid, no attempt", function()
    local infos = {}
    local c = hooked(s, nil, {}, infos)
    local _, err = c.pipeline:send({ method = "POST", path = "user/", body = { f = function() end } })
    c:close()
    assert.equal("invalid", err.kind)
    assert.equal(1, #infos)
    assert.same({ "POST", "user/", "users", "invalid", 0, 0 },
      { infos[1].method, infos[1].path, infos[1].area, infos[1].kind, infos[1].attempts, infos[1].bytes_sent })
    assert.is_nil(infos[1].status)
  end)

  it("count the retries of a call that fails, with the last status", function()
    local infos = {}
    local c = hooked(s, { retries = 2, on_request = function(req)
      req.headers["X-Stream-Local-Status"] = "503"
    end }, {}, infos)
    local _, err = c:user(H.uid("fail")):get()
    c:close()
    assert.equal(503, err.status)
    assert.equal(3, err.attempts)
    assert.same({ 503, "api", 3 }, { infos[1].status, infos[1].kind, infos[1].attempts })
    assert.is_true(infos[1].bytes_received > 0)
  end)

  it("leave a client without hooks on Pipeline.send itself", function()
    local request = require "stream.request"
    local plain = H.server_client(s)
    local c = H.server_client(s, { on_response = function() end })
    assert.equal(request.Pipeline.send, plain.pipeline.send)
    assert.not_equal(request.Pipeline.send, c.pipeline.send)
    plain:close()
    c:close()
  end)

  it("remember the area of at most 256 paths, each as hooks.area names it", function()
    local hooks = require "stream.hooks"
    local h = hooks.new({ on_response = function() end }, nil, nil, os.clock)
    for i = 1, 600 do
      assert.equal("users", hooks.area_of(h, { method = "GET", path = "user/u" .. i .. "/" }))
      assert.is_true(h.nareas <= 256)
    end
    for _, desc in ipairs({
      { path = "feed/add_to_many/" }, { path = "feed/user/a/" }, { path = "enrich/feed/user/a/" },
      { path = "user/u1/", service = "personalization" }, { path = "user/u1/", area = "x" },
      { path = "other/1/" }, { path = "/" },
    }) do
      assert.equal(hooks.area(desc), hooks.area_of(h, desc))
      assert.equal(hooks.area(desc), hooks.area_of(h, desc))
    end
  end)

  setup(function() s = server.start({ faults = true }) end)
  teardown(function() if s then s:stop() end end)

  it("are checked as functions", function()
    assert.error_matches(function() stream.connect("k", "s", "1", { on_response = true }) end,
      "option 'on_response' must be a function")
    assert.error_matches(function() stream.connect("k", "s", "1", { on_request = "x" }) end,
      "option 'on_request' must be a function")
  end)

  it("report one call: method, path, area, status, attempts, duration, bytes, reuse", function()
    local reqs, infos = {}, {}
    local c = hooked(s, nil, reqs, infos)
    local id = H.uid("hook")
    assert(c:user(id):create({ name = "Ann" }))
    assert(c:user(id):get())
    assert.equal(2, #reqs)
    assert.equal(2, #infos)
    local r = reqs[1]
    assert.same({ "POST", "user/", "users", 1 }, { r.method, r.path, r.area, r.attempt })
    local a, b = infos[1], infos[2]
    assert.same({ "POST", "user/", "users", 201, 1 }, { a.method, a.path, a.area, a.status, a.attempts })
    assert.same({ "GET", "user/" .. id .. "/", "users", 200 }, { b.method, b.path, b.area, b.status })
    assert.is_nil(a.kind)
    assert.is_true(a.duration > 0 and a.duration < 5)
    assert.is_true(a.bytes_sent > 10)
    assert.equal(0, b.bytes_sent)
    assert.is_true(b.bytes_received > 10)
    assert.is_false(a.reused)
    assert.is_true(b.reused)
    c:close()
  end)

  it("never give a hook the secret, a token or a body", function()
    local reqs, infos = {}, {}
    local c = hooked(s, nil, reqs, infos)
    local id = H.uid("secret")
    assert(c:user(id):create({ marker = "BODY-MARKER-123" }))
    local feed = c:feed("user", id)
    assert(feed:add_activity({ actor = "SU:" .. id, verb = "post", object = "o:1", marker = "BODY-MARKER-123" }))
    assert(feed:get())
    c.personalization:get("follow_recommendations", { user_id = id })
    local token = feed:token()
    assert.is_true(#infos >= 4)
    assert_clean({ reqs, infos }, { s.api_secret, s.api_key, token, "BODY-MARKER-123", "api_key" })
    for _, info in ipairs(infos) do
      assert.is_nil(info.path:find("?", 1, true))
      assert.is_string(info.area)
    end
    assert.equal("personalization", infos[#infos].area)
    c:close()
  end)

  it("name each call's area", function()
    local infos = {}
    local c = hooked(s, nil, {}, infos)
    local id = H.uid("area")
    local f = c:feed("user", id)
    local seen = {}
    c:user(id):get_or_create({})
    f:get()
    f:follow(c:feed("timeline", id))
    c.reactions:get(H.uid("r"))
    c.collections:get("food", "x")
    for _, info in ipairs(infos) do seen[#seen + 1] = info.area end
    assert.same({ "users", "feeds", "feeds", "reactions", "collections" }, seen)
    c:close()
  end)

  it("report an error's kind and status", function()
    local infos = {}
    local c = hooked(s, nil, {}, infos)
    assert.is_nil(c:user(H.uid("missing")):get())
    assert.equal(404, infos[1].status)
    assert.equal("api", infos[1].kind)
    -- refused by the area before any request is described: no call to report
    local _, err = c:user("x"):create({ f = function() end })
    assert.equal("invalid", err.kind)
    assert.equal(1, #infos)
    c:close()
    local dead = hooked({ base_url = "http://127.0.0.1:" .. server.free_port() .. "/", api_key = s.api_key,
      api_secret = s.api_secret }, { retries = 0 }, {}, infos)
    assert.is_nil(dead:user("x"):get())
    assert.equal("transport", infos[2].kind)
    assert.is_nil(infos[2].status)
    assert.equal(1, infos[2].attempts)
    dead:close()
  end)

  it("call on_request once per attempt and on_response once per call", function()
    local reqs, infos = {}, {}
    local c = hooked(s, {
      retries = 3,
      on_request = function(req)
        reqs[#reqs + 1] = copy(req)
        if req.attempt < 3 then req.headers["X-Stream-Local-Status"] = "503" end
      end,
    }, reqs, infos)
    assert(c:user(H.uid("retry")):get_or_create({}))
    assert.equal(3, #reqs)
    assert.same({ 1, 2, 3 }, { reqs[1].attempt, reqs[2].attempt, reqs[3].attempt })
    assert.equal(1, #infos)
    assert.equal(3, infos[1].attempts)
    assert.equal(201, infos[1].status)
    c:close()
  end)

  it("send the headers on_request sets, replacing a same-name one", function()
    local peer = recorder.start()
    local n = 0
    local c = stream.connect("key", "secret-xyz", "1", { base_url = peer.url, on_request = function(req)
      n = n + 1
      req.headers["X-Trace-Id"] = "trace-" .. n
      req.headers["user-agent"] = "hooked/1"
      req.headers["Bad Name"] = "x"
    end })
    local stderr = io.stderr
    local lines = {}
    io.stderr = { write = function(_, ...) for _, x in ipairs({ ... }) do lines[#lines + 1] = x end end } -- luacheck: ignore
    local ok1 = c:user("a"):get()
    local ok2 = c:user("b"):update({ x = 1 })
    io.stderr = stderr -- luacheck: ignore
    assert(ok1 and ok2)
    local got = peer.requests()
    peer.stop()
    assert.same({ "trace-1" }, recorder.values(got[1].head, "X-Trace-Id"))
    assert.same({ "trace-2" }, recorder.values(got[2].head, "x-trace-id"))
    assert.same({ "hooked/1" }, recorder.values(got[2].head, "User-Agent"))
    assert.same({ "application/json" }, recorder.values(got[2].head, "Content-Type"))
    assert.truthy(table.concat(lines):find("Bad Name", 1, true))
    c:close()
  end)

  it("survive a raising hook: the call goes on, the error is reported once", function()
    local stderr = io.stderr
    local out = {}
    io.stderr = { write = function(_, ...) for _, x in ipairs({ ... }) do out[#out + 1] = x end end } -- luacheck: ignore
    local c = H.server_client(s, {
      on_request = function() error("boom in request") end,
      on_response = function() error("boom in response") end,
    })
    local id = H.uid("raise")
    local a = c:user(id):get_or_create({})
    local b = c:user(id):get()
    io.stderr = stderr -- luacheck: ignore
    assert.equal(id, a.id)
    assert.equal(id, b.id)
    local text = table.concat(out)
    local _, nreq = text:gsub("boom in request", "")
    local _, nres = text:gsub("boom in response", "")
    assert.same({ 1, 1 }, { nreq, nres })
    assert.is_nil(text:find(s.api_secret, 1, true))
    c:close()
  end)

  it("report each of many parallel calls", function()
    local infos = {}
    local c = hooked(s, { max_connections = 4 }, {}, infos)
    local fns = {}
    for i = 1, 12 do
      fns[i] = function() return c:user(H.uid("par" .. i)):get_or_create({}) end
    end
    for _, r in ipairs(c:parallel(fns)) do assert(r[1], r[2]) end
    assert.equal(12, #infos)
    local paths = {}
    for _, info in ipairs(infos) do
      assert.equal(201, info.status)
      assert.equal(1, info.attempts)
      paths[info.path] = true
    end
    local n = 0
    for _ in pairs(paths) do n = n + 1 end
    assert.equal(1, n) -- get_or_create posts to user/
    c:close()
  end)
end)
