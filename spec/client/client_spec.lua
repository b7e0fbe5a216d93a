-- stream.connect, the wire format, error kinds, connection reuse and
-- secret hygiene, over real HTTP (the local server, or a one-shot peer
-- when an answer no real server gives is needed).
local stream = require "stream"
local server = require "helpers.server"
local capture = require "helpers.capture"
local H = require "helpers.client"

local SECRET = "s3cr3t-value-that-must-never-leak-0123456789"
local USER_JSON = '{"id":"john","created_at":"2026-11-26T17:02:16.131000Z",'
  .. '"updated_at":"2026-11-26T17:02:16.131000Z","data":{"n":9007199254740993},"duration":"0.31ms"}'

local header = capture.header

describe("stream.connect", function()
  it("detects a user token by its three base64url segments", function()
    local c = stream.connect("k", "secret.with.dots", "1", { base_url = "http://127.0.0.1:9/" })
    assert.equal("server", c.auth_mode)
    local token = c:create_user_token("erin")
    local u = stream.connect("k", token, "1", { base_url = "http://127.0.0.1:9/" })
    assert.equal("user_token", u.auth_mode)
    assert.equal("erin", u.current_user.id)
    c:close(); u:close()
  end)

  it("takes options as the third argument when there is no app id", function()
    local c = stream.connect("k", "s", { base_url = "http://127.0.0.1:9/api" })
    assert.equal("http://127.0.0.1:9/api/v1.0/", c.base_url)
    c:close()
  end)

  it("raises on misuse, naming the problem", function()
    assert.has_error(function() stream.connect("k", nil, "1") end)
    assert.has_error(function() stream.connect(42, "s") end)
    local ok, msg = pcall(stream.connect, "k", "s", "1", { retry = 3 })
    assert.is_false(ok)
    assert.matches("unknown option 'retry'", msg)
  end)

  it("reads the environment when given no credentials", function()
    -- Run in a child so the variables do not leak into other specs.
    local cmd = "STREAM_URL='http://envkey:envsecret@127.0.0.1:9/?app_id=77' lua5.4 -e '"
      .. "package.path=\"lua/?.lua;lua/?/init.lua;\"..package.path;"
      .. "package.cpath=\"build/5.4/?.so;\"..package.cpath;"
      .. "local c=require(\"stream\").connect(); io.write(c.api_key,\" \",c.app_id,\" \",c.base_url)'"
    local p = io.popen(cmd)
    local out = p:read("*a")
    p:close()
    assert.equal("envkey 77 http://127.0.0.1:9/api/v1.0/", out)
  end)

  it("reports a malformed STREAM_URL at the caller's line", function()
    local cmd = "STREAM_URL='not a url' lua5.4 -e '"
      .. "package.path=\"lua/?.lua;lua/?/init.lua;\"..package.path;"
      .. "package.cpath=\"build/5.4/?.so;\"..package.cpath;"
      .. "local f=load(\"local c = require([[stream]]).connect() return c\", \"=caller.lua\");"
      .. "io.write(select(2, pcall(f)))'"
    local p = io.popen(cmd)
    local out = p:read("*a")
    p:close()
    assert.matches("^caller%.lua:1: stream%.connect: STREAM_URL must look like", out)
  end)
end)

describe("the wire format", function()
  it("sends the documented headers, api_key and a trailing slash", function()
    local peer = capture.start({ status = 201, body = USER_JSON })
    local c = stream.connect("the-key", SECRET, "1", { base_url = peer.url .. "/api" })
    local res = assert(c:user("john"):create({ n = 1 }))
    assert.equal(9007199254740993, res.data.n)
    local req = peer.requests()[1]
    assert.matches("^POST /api/v1%.0/user/%?api_key=the%-key HTTP/1%.1\r\n", req)
    assert.equal("jwt", header(req, "stream%-auth%-type"))
    assert.equal("stream-lua-client-" .. stream.VERSION, header(req, "X%-Stream%-Client"))
    assert.equal("application/json", header(req, "Content%-Type"))
    assert.is_nil(header(req, "Expect"))
    local auth = header(req, "Authorization")
    assert.equal(stream.core.hs256(SECRET, '{"resource":"*","action":"*","feed_id":"*"}'), auth)
    assert.equal('{"id":"john","data":{"n":1}}', req:match("\r\n\r\n(.*)$"))
    c:close(); peer.stop()
  end)

  it("sends a user token unchanged and no body on GET", function()
    local peer = capture.start({ status = 200, body = USER_JSON })
    local token = stream.connect("k", SECRET):create_user_token("john")
    local c = stream.connect("k", token, "1", { base_url = peer.url .. "/api/" })
    assert(c:user("john"):get({ with_follow_counts = true }))
    local req = peer.requests()[1]
    assert.matches("^GET /api/v1%.0/user/john/%?api_key=k&with_follow_counts=true HTTP/1%.1\r\n", req)
    assert.equal(token, header(req, "Authorization"))
    assert.is_nil(header(req, "Content%-Type"))
    c:close(); peer.stop()
  end)

  it("escapes the api key in the query", function()
    local peer = capture.start({ status = 200, body = USER_JSON })
    local c = stream.connect("a&b=c d", SECRET, "1", { base_url = peer.url })
    assert(c:user("john"):get())
    assert.matches("%?api_key=a%%26b%%3Dc%%20d ", peer.requests()[1])
    c:close(); peer.stop()
  end)
end)

describe("error kinds", function()
  it("is invalid for a bad id, before anything is sent, and the client keeps working", function()
    local s = server.start()
    local c = H.server_client(s)
    local before = c:stats().requests
    for _, id in ipairs({ "", "a b", "a/b", "a?b", "a#b", "..", "é", string.rep("x", 256) }) do
      local res, err = c:user(id):get()
      assert.is_nil(res)
      assert.equal("invalid", err.kind, id)
      assert.is_table(err.fields.id)
      local _, e2 = c:user(id):create({})
      assert.equal("invalid", e2.kind)
      assert.is_nil(c:user(id):ref())
    end
    assert.equal(before, c:stats().requests)
    assert(c:user(H.uid("fine")):create({}))
    c:close(); s:stop()
  end)

  it("is invalid for data over 10240 bytes or that JSON cannot hold", function()
    local c = stream.connect("k", "s", "1", { base_url = "http://127.0.0.1:9/" })
    local cyc = { a = {} }
    cyc.a.b = cyc
    local cases = {
      { { big = string.rep("x", 10240) }, "10240" },
      { cyc, "data%.a%.b: cycle" },
      { { f = print }, "data%.f" },
      { { n = 0 / 0 }, "NaN" },
      { { [1] = 1, x = 2 }, "mixed" },
      { { s = "\255" }, "UTF%-8" },
    }
    for _, case in ipairs(cases) do
      local res, err = c:user("x"):create(case[1])
      assert.is_nil(res)
      assert.equal("invalid", err.kind)
      assert.matches(case[2], err.detail)
      assert.is_table(err.fields.data)
    end
    assert.equal(0, c:stats().requests)
    c:close()
  end)

  it("raises for wrong argument types", function()
    local c = stream.connect("k", "s", "1", { base_url = "http://127.0.0.1:9/" })
    assert.has_error(function() c:user({}) end)
    assert.has_error(function() c:user("x"):create("data") end)
    assert.has_error(function() c:user("x"):get("with_follow_counts") end)
    assert.has_error(function() c.users:get_many("a,b") end)
    c:close()
  end)

  it("is transport when nothing listens, and retryable", function()
    local port = capture.free_port()
    local c = stream.connect("k", "s", "1", { base_url = "http://127.0.0.1:" .. port .. "/" })
    local res, err = c:user("x"):get()
    assert.is_nil(res)
    assert.equal("transport", err.kind)
    assert.is_true(err.retryable)
    assert.equal(3, err.attempts)
    assert.equal("GET", err.method)
    assert.equal("user/x/", err.path)
    assert.matches("^stream: transport: .* %[GET user/x/%]$", tostring(err))
    c:close()
  end)

  it("is timeout when the answer takes longer than the timeout", function()
    local s = server.start({ faults = true })
    local c = stream.connect(s.api_key, s.api_secret, "1", {
      base_url = s.base_url, timeout = 0.3, retries = 0,
      transport = H.transport({ "X-Stream-Local-Delay: 3000" }),
    })
    local t0 = require("socket").gettime()
    local res, err = c:user("x"):get()
    local elapsed = require("socket").gettime() - t0
    assert.is_nil(res)
    assert.equal("timeout", err.kind)
    assert.is_true(err.retryable)
    assert.is_true(elapsed < 1.5, "took " .. elapsed)
    c:close(); s:stop()
  end)

  it("is decode when a 2xx answer is not JSON", function()
    local peer = capture.start({ status = 200, body = "<html>hello</html>" })
    local c = stream.connect("k", "s", "1", { base_url = peer.url })
    local res, err = c:user("x"):get()
    assert.is_nil(res)
    assert.equal("decode", err.kind)
    assert.equal(200, err.status)
    c:close(); peer.stop()
  end)

  it("is api with the location for a redirect, which is not followed", function()
    local peer = capture.start({ status = 301, headers = { Location = "http://elsewhere.invalid/x/" } })
    local c = stream.connect("k", SECRET, "1", { base_url = peer.url })
    local res, err = c:user("x"):update({ a = 1 })
    assert.is_nil(res)
    assert.equal("api", err.kind)
    assert.equal(301, err.status)
    assert.matches("elsewhere%.invalid", err.detail)
    assert.equal(1, #peer.requests())
    c:close(); peer.stop()
  end)

  it("carries rate-limit figures", function()
    local s = server.start()
    local c = H.server_client(s)
    local _, err = c:user(H.uid("missing")):get()
    assert.equal(404, err.status)
    assert.is_number(err.rate_limit.limit)
    assert.is_number(err.rate_limit.remaining)
    assert.is_number(err.rate_limit.reset)
    c:close(); s:stop()
  end)
end)

describe("connection reuse", function()
  it("sends sequential calls over one keep-alive connection", function()
    local s = server.start()
    local log = {}
    local c = stream.connect(s.api_key, s.api_secret, "1", {
      base_url = s.base_url, transport = H.transport(nil, log),
    })
    local id = H.uid("ka")
    assert(c:user(id):create({ n = 0 }))
    for i = 1, 50 do
      assert(c:user(id):get())
      assert(c:user(id):update({ n = i }))
    end
    local st = c:stats()
    assert.equal(101, st.requests)
    assert.equal(1, st.connects)
    local conn = {}
    for _, e in ipairs(log) do conn[e.headers["x-stream-local-connection"]] = true end
    assert.equal(1, #(function() local l = {} for k in pairs(conn) do l[#l + 1] = k end return l end)())
    c:close(); s:stop()
  end)
end)

-- No text collected from clients holds the secret, the user token or the
-- server token; at least `min` texts were seen, and errors of every kind.
local function assert_secret_free(texts, kinds, token, min)
  local hidden = { SECRET, token, stream.core.hs256(SECRET, '{"resource":"*","action":"*","feed_id":"*"}') }
  for _, text in ipairs(texts) do
    for _, h in ipairs(hidden) do
      assert.is_nil(text:find(h, 1, true), "leaked in: " .. text)
    end
  end
  assert.is_true(#texts > min)
  for _, kind in ipairs({ "api", "transport", "timeout", "invalid", "decode" }) do
    assert.is_true(kinds[kind], "no error of kind " .. kind)
  end
end

describe("secrets", function()
  it("never appear in errors, tostring or the client's fields", function()
    local s = server.start({ faults = true })
    local good = H.server_client(s)
    local token = assert(good:create_user_token(H.uid("tok")))
    local texts = {}
    local function collect(v) texts[#texts + 1] = tostring(v) end
    local clients = {
      stream.connect(s.api_key, SECRET, "1", { base_url = s.base_url }),
      stream.connect(s.api_key, token, "1", { base_url = s.base_url }),
      stream.connect(s.api_key, SECRET, "1", { base_url = "http://127.0.0.1:" .. capture.free_port() }),
      stream.connect(s.api_key, SECRET, "1", { base_url = s.base_url, timeout = 0.2,
        transport = H.transport({ "X-Stream-Local-Delay: 2000" }) }),
      stream.connect(s.api_key, SECRET, "1", { base_url = s.base_url,
        transport = H.transport({ "X-Stream-Local-Garbage: 1" }) }),
      stream.connect(s.api_key, SECRET, "1", { base_url = s.base_url, max_retry_wait = 0,
        transport = H.transport({ "X-Stream-Local-Status: 429" }) }),
      stream.connect(s.api_key, SECRET, "1", { base_url = s.base_url, max_response_bytes = 100,
        transport = H.transport({ "X-Stream-Local-Oversize: 5000" }) }),
    }
    local kinds = {}
    for _, c in ipairs(clients) do
      collect(c)
      collect(c:user("x"))
      for _, call in ipairs({
        function() return c:user("x"):get() end,
        function() return c:user("x"):create({}) end,
        function() return c:user("bad id"):get() end,
        function() return c:user("x"):update({ f = 0 / 0 }) end,
        function() return c.users:get_many({}) end,
      }) do
        local _, err = call()
        kinds[err.kind] = true
        collect(err)
        collect(err.detail)
      end
      local _, msg = pcall(c.create_user_token, c, 42)
      collect(msg)
      for k, v in pairs(c) do collect(k); collect(v) end
      c:close()
    end
    good:close(); s:stop()
    assert_secret_free(texts, kinds, token, 40)
  end)
end)

describe("secrets in what a program can reach", function()
  -- every string reachable from the client through fields (tables walked with next,
  -- keys and values, nested): neither the secret nor any JWT (the signed server token,
  -- a service token, a user token) may be among them
  local function strings_of(root)
    local out, seen = {}, {}
    local function walk(v)
      if type(v) == "string" then out[#out + 1] = v
      elseif type(v) == "table" and not seen[v] then
        seen[v] = true
        for k, x in next, v do walk(k); walk(x) end
      end
    end
    walk(root)
    return out
  end

  it("finds no secret or token in any field of the client, its pipeline or its transport", function()
    local s = server.start({})
    local good = H.server_client(s)
    assert(good:user("x"):get_or_create({}))
    local token = assert(good:create_user_token(H.uid("tok")))
    for _, c in ipairs({
      stream.connect(s.api_key, s.api_secret, "1", { base_url = s.base_url }),
      stream.connect(s.api_key, token, "1", { base_url = s.base_url }),
    }) do
      -- a call, and one with headers of its own (a service token), are made first
      assert(c:user("x"):get())
      if c.auth_mode == "server" then
        c.analytics:track_impressions({ { content_list = { "post:1" }, user_data = "x" } })
      end
      for _, text in ipairs(strings_of(c)) do
        assert.is_nil(text:find(s.api_secret, 1, true), "the secret is in a field")
        assert.is_nil(text:find(token, 1, true), "the user token is in a field")
        assert.is_nil(text:find("eyJ[%w_-]+%.eyJ[%w_-]+%."), "a JWT is in a field: " .. text:sub(1, 60))
      end
      c:close()
    end
    good:close(); s:stop()
  end)
end)

describe("secrets in the feed, reaction, collection and update areas", function()
  it("never appear in their errors, paging refusals or the tostring of their handles", function()
    local s = server.start({ faults = true })
    local good = H.server_client(s)
    local token = assert(good:create_user_token(H.uid("tok")))
    local texts = {}
    local function collect(v) texts[#texts + 1] = tostring(v) end
    local hostile = capture.start({ status = 200, count = 60,
      body = '{"results":[{"id":"x"}],"next":"http://evil.example/api/v1.0/feed/user/a/?api_key=k"}' })
    local clients = {
      stream.connect(s.api_key, SECRET, "1", { base_url = s.base_url }),
      stream.connect(s.api_key, token, "1", { base_url = s.base_url }),
      stream.connect(s.api_key, SECRET, "1", { base_url = "http://127.0.0.1:" .. capture.free_port(),
        retries = 0 }),
      stream.connect(s.api_key, SECRET, "1", { base_url = s.base_url, timeout = 0.2, retries = 0,
        transport = H.transport({ "X-Stream-Local-Delay: 2000" }) }),
      stream.connect(s.api_key, SECRET, "1", { base_url = s.base_url,
        transport = H.transport({ "X-Stream-Local-Garbage: 1" }) }),
      stream.connect(s.api_key, SECRET, "1", { base_url = s.base_url, max_retry_wait = 0,
        transport = H.transport({ "X-Stream-Local-Status: 429" }) }),
      stream.connect(s.api_key, SECRET, "1", { base_url = s.base_url, max_response_bytes = 100,
        transport = H.transport({ "X-Stream-Local-Oversize: 5000" }) }),
      stream.connect(s.api_key, SECRET, "1", { base_url = hostile.url, retries = 0 }),
    }
    local kinds = {}
    local AID = "0b0b0b0b-0000-4000-8000-000000000001"
    for _, c in ipairs(clients) do
      local feed = c:feed("user", "x")
      local entry = c.collections:entry("food", "x")
      collect(feed); collect(entry); collect(c.reactions); collect(c.collections)
      local calls = {
        function() return feed:get({ limit = 2 }) end,
        function() return feed:get({ enrich = true, reactions = { counts = true } }) end,
        function() return c:feed("user", "bad id"):get() end,
        function() return feed:add_activity({ actor = "SU:x", verb = "v", object = "o", n = 0 / 0 }) end,
        function() return feed:add_activity({ actor = "SU:x", verb = "v", object = "o" }) end,
        function() return feed:remove_activity("bad id!") end,
        function() return feed:remove_activity(AID) end,
        function() return feed:follow("user:y") end,
        function() return feed:follow("user:bad id") end,
        function() return feed:unfollow("user:y") end,
        function() return feed:followers() end,
        function() return c.reactions:add("like", AID, { n = 1 }) end,
        function() return c.reactions:add("bad kind!", AID) end,
        function() return c.reactions:get("bad id!") end,
        function() return c.reactions:update(AID, { n = 2 }) end,
        function() return c.reactions:delete(AID) end,
        function() return c.reactions:filter({ activity_id = AID }) end,
        function() return c.reactions:get_many({ AID }) end,
        function() return c.collections:add("food", { name = "x" }, { id = "x" }) end,
        function() return c.collections:add("bad name!", { name = "x" }) end,
        function() return entry:get() end,
        function() return entry:update({ name = "y" }) end,
        function() return entry:delete() end,
        function() return c.collections:select("food", { "x" }) end,
        function() return c:get_activities({ ids = { AID } }) end,
        function() return c:activity_partial_update({ id = AID, set = { n = 1 } }) end,
        function() return c:activity_partial_update({ id = "bad id!", set = { n = 1 } }) end,
        function() return c:update_activities({ { actor = "SU:x", verb = "v", object = "o" } }) end,
        function() return c:update_activities({ { actor = "SU:x", verb = "v", object = "o",
          foreign_id = "f:1", time = 1795860000 } }) end,
      }
      for _, call in ipairs(calls) do
        local ok, res, err = pcall(call)
        if not ok then
          collect(res)
        else
          collect(res)
          if type(res) == "table" then
            for k, v in pairs(res) do collect(k); collect(v) end
          end
          if err then
            kinds[err.kind] = true
            collect(err); collect(err.detail)
          end
        end
      end
      for _, walk in ipairs({ feed:pages({ limit = 1 }), feed:each({ limit = 1 }),
        c.reactions:pages({ activity_id = AID, limit = 1 }) }) do
        for _ = 1, 4 do
          local v, err = walk()
          if v == nil then break end
          if err ~= nil then
            kinds[err.kind] = true
            collect(err); collect(err.detail)
          end
        end
      end
      c:close()
    end
    hostile.stop()
    good:close(); s:stop()
    local refusals = 0
    for _, text in ipairs(texts) do
      if text:find("next link", 1, true) then refusals = refusals + 1 end
    end
    assert.is_true(refusals >= 3, "no paging refusal was seen")
    assert_secret_free(texts, kinds, token, 200)
  end)
end)

describe("secrets in a long error body", function()
  it("are not shown in part when the body is cut for the message", function()
    -- a short user token: the cut at 200 characters falls inside it
    local token = stream.core.hs256(SECRET, '{"user_id":"x"}')
    local signature = token:match("([^.]+)$")
    for _, pad in ipairs({ 120, 150, 180 }) do
      local peer = capture.start({ status = 500, count = 1,
        body = ("oops "):rep(pad / 5) .. token .. " trailing text" })
      local c = stream.connect("key", token, "1", { base_url = peer.url, retries = 0 })
      local _, err = c:feed("user", "a"):get()
      c:close(); peer.stop()
      assert.equal("api", err.kind)
      assert.matches("unexpected answer: oops oops", err.detail)
      assert.is_nil(err.detail:find(signature:sub(1, 8), 1, true), err.detail)
      assert.is_nil(tostring(err):find(signature:sub(1, 8), 1, true))
    end
  end)
end)

describe("secrets echoed in an error's other fields", function()
  -- a server (or a proxy in front of it) that echoes the request back into
  -- exception_fields, more_info or a redirect's Location
  local function scan(err, token)
    local seen = {}
    local function walk(v)
      if type(v) == "string" then
        assert.is_nil(v:find(token, 1, true), "token found in " .. v)
      elseif type(v) == "table" and not seen[v] then
        seen[v] = true
        for k, x in pairs(v) do walk(k); walk(x) end
      end
    end
    walk(err)
    assert.is_nil(tostring(err):find(token, 1, true))
  end

  it("are scrubbed from fields, more_info and location too", function()
    local token = stream.core.hs256(SECRET, '{"user_id":"echo"}')
    local body = '{"detail":"bad","code":4,"exception":"InputException","status_code":400,'
      .. '"more_info":"https://example.invalid/?auth=' .. token .. '",'
      .. '"exception_fields":{"' .. token .. '":["got ' .. token .. '"],"id":["' .. token .. '"]}}'
    local peer = capture.start({ status = 400, count = 1, body = body })
    local c = stream.connect("key", token, "1", { base_url = peer.url, retries = 0 })
    local _, err = c:user("echo"):get()
    c:close(); peer.stop()
    assert.equal(400, err.status)
    assert.is_table(err.fields.id)
    scan(err, token)
    peer = capture.start({ status = 302, count = 1, body = "{}",
      headers = { Location = "http://elsewhere.invalid/?t=" .. token } })
    c = stream.connect("key", token, "1", { base_url = peer.url, retries = 0 })
    _, err = c:user("echo"):get()
    c:close(); peer.stop()
    assert.equal(302, err.status)
    assert.matches("elsewhere.invalid", err.location)
    scan(err, token)
  end)
end)

describe("client:close", function()
  it("is idempotent and later calls raise", function()
    local c = stream.connect("k", "s", "1", { base_url = "http://127.0.0.1:9/" })
    c:close()
    c:close()
    assert.matches("closed", tostring(c))
    assert.has_error(function() c:user("x"):get() end)
  end)

  -- to-be-closed variables exist from Lua 5.4 on
  local it54 = _VERSION == "Lua 5.4" and it or function() end
  it54("works with <close>", function()
    local chunk = assert(load([[
      local stream = ...
      local c <close> = stream.connect("k", "s", "1", { base_url = "http://127.0.0.1:9/" })
      return c
    ]]))
    local c = chunk(stream)
    assert.is_true(c._closed)
  end)
end)
