-- Behaviour the official clients share and misuse that must say what
-- happened: profile, set_user, update without data, batches with several
-- bad items, calls with '.', the scheduler driven from inside its own
-- task, the default bound on connections. Real core, real HTTP, the local
-- server.
local stream = require "stream"
local server = require "helpers.server"
local H = require "helpers.client"

local child = H.child

describe("users behaviour", function()
  local s, client

  setup(function()
    s = server.start()
    client = H.server_client(s)
  end)

  teardown(function()
    if client then client:close() end
    if s then s:stop() end
  end)

  -- a client whose transport records every request
  local function logged(opts)
    local log = {}
    opts = opts or {}
    opts.transport = H.transport(nil, log)
    return H.server_client(s, opts), log
  end

  it("user:profile() asks for the follow counts, as the official clients do", function()
    local c, log = logged()
    local id = H.uid("profile")
    assert(c:user(id):create({ name = "p" }))
    local res = assert(c:user(id):profile())
    assert.equal(id, res.id)
    assert.matches("with_follow_counts=true", log[#log].url)
    assert.is_number(res.followers_count)
    c:close()
  end)

  it("user:update() without data raises and sends nothing", function()
    local c, log = logged()
    local ok, msg = pcall(function() return c:user("someone"):update() end)
    assert.is_false(ok)
    assert.matches("user:update: data is required", msg)
    ok, msg = pcall(function() return c.users:update("someone", nil) end)
    assert.is_false(ok)
    assert.matches("users:update: data is required", msg)
    assert.equal(0, #log)
    c:close()
  end)

  it("set_user(data) sends data without its id and leaves the caller's table alone", function()
    local id = H.uid("me")
    local log = {}
    local c = H.token_client(s, assert(client:create_user_token(id)), { transport = H.transport(nil, log) })
    local data = { id = "someone-else", name = "me" }
    local res = assert(c:set_user(data))
    assert.equal(id, res.id)
    assert.same({ name = "me" }, res.data)
    assert.equal("someone-else", data.id)
    assert.is_nil(log[1].body:find("someone-else", 1, true))
    c:close()
  end)

  it("users:add_many reports every bad item in one invalid error, and sends nothing", function()
    local c, log = logged()
    local list = {}
    for i = 1, 20 do list[i] = { id = H.uid("batch"), data = {} } end
    list[3].id = "bad id"
    list[17].id = string.rep("x", 300)
    list[9].data = { f = print }
    list[12] = { data = {} }
    local res, err = c.users:add_many(list)
    assert.is_nil(res)
    assert.equal("invalid", err.kind)
    assert.is_false(err.sent)
    for _, key in ipairs({ "users[3].id", "users[17].id", "users[9].data", "users[12].id" }) do
      assert.is_table(err.fields[key], key)
      assert.matches(key:match("^(users%[%d+%])"):gsub("[%[%]]", "%%%0"), err.detail)
    end
    assert.matches("^4 of 20 users are invalid", err.detail)
    assert.equal(0, #log)
    c:close()
  end)

  it("names the full path in errors about a bad id", function()
    local _, err = client:user("bad id"):get()
    assert.equal("user/bad id/", err.path)
    assert.matches("%[GET user/bad id/%]$", tostring(err))
    _, err = client.users:delete(string.rep("z", 300))
    assert.equal("user/" .. string.rep("z", 40) .. ".../", err.path)
  end)
end)

describe("calls with '.' instead of ':'", function()
  it("say so, at the caller's line", function()
    local c = stream.connect("k", "a-secret-for-dot-calls-0123", { base_url = "http://127.0.0.1:9/" })
    local user = c:user("x")
    local cases = {
      { function() local r = user.get() return r end, "user:get: called with '.' instead of ':'" },
      { function() local r = user.update({}) return r end, "user:update: called with '.' instead of ':'" },
      { function() local r = c.user("x") return r end, "client:user: called with '.' instead of ':'" },
      { function() local r = c.users.get("x") return r end, "users:get: called with '.' instead of ':'" },
      { function() local r = c.parallel({}) return r end, "client:parallel: called with '.' instead of ':'" },
    }
    for _, case in ipairs(cases) do
      local ok, msg = pcall(case[1])
      assert.is_false(ok)
      assert.matches("behaviour_spec%.lua:%d+: " .. case[2]:gsub("[%.%-]", "%%%0"), msg)
    end
    c:close()
  end)
end)

describe("the scheduler", function()
  it("raises at once when client:wait or client:step runs inside one of its tasks", function()
    -- in a child with a time limit: before, this spun forever
    local out = child("", [[
      local c = require("stream").connect("k", "a-secret-0123456789", { base_url = "http://127.0.0.1:9/" })
      local t = c:go(function() return c:wait() end)
      local u = c:go(function() return c:step(0) end)
      local _, e1 = t:result()
      local _, e2 = u:result()
      io.write(tostring(t:done()), " ", tostring(e1), "\n", tostring(e2), "\n")
    ]], 10)
    assert.matches("^true .*client:wait: called from inside a task of this client", out)
    assert.matches("\n.*client:step: called from inside a task of this client", out)
    assert.matches("rc=0\n$", out)
  end)

  it("task:done() is false, not nil, until the task ends", function()
    local c = stream.connect("k", "a-secret-0123456789", { base_url = "http://127.0.0.1:9/" })
    local t = c:go(function() coroutine.yield() end)
    assert.is_false(t:done())
    c:wait()
    assert.is_true(t:done())
    c:close()
  end)

  it("bounds connections by default: 128 in flight through parallel open at most max_connections", function()
    local s = server.start({ faults = true })
    local c = stream.connect(s.api_key, s.api_secret, "1", {
      base_url = s.base_url, transport = H.transport({ "X-Stream-Local-Delay: 100" }) })
    local id = H.uid("bound")
    assert(H.server_client(s):user(id):create({}))
    local fns = {}
    for i = 1, 128 do fns[i] = function() return c:user(id):get() end end
    local results = c:parallel(fns)
    for i = 1, 128 do assert.is_table(results[i][1], tostring(results[i][2])) end
    local st = c:stats()
    assert.equal(128, st.requests - 0)
    assert.is_true(st.connects <= 32, st.connects .. " connections opened")
    -- kept alive: a second burst opens none
    c:parallel(fns)
    assert.equal(st.connects, c:stats().connects)
    c:close()
    s:stop()
  end)
end)
