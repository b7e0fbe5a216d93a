-- Feed tokens: feed:token signs a token scoped to one feed (for a browser or
-- a game client), and stream.connect with such a token gives a client that
-- can do what the scope allows against the real local server, and no more.
local stream = require "stream"
local server = require "helpers.server"
local H = require "helpers.client"

local core = stream.core
local SECRET = "test-secret-abcdefghijklmnopqrstuvwxyz0123"
local OFFLINE = { base_url = "http://127.0.0.1:9/", retries = 0 }

-- The header, payload (both decoded) and signing input of a token.
local function parts(token)
  local h, p = token:match("^([^.]+)%.([^.]+)%.[^.]+$")
  return core.b64url_decode(h), core.b64url_decode(p), h .. "." .. p
end

-- Independent check: the openssl CLI computes the signature.
local function openssl_sig(secret, data)
  local df = os.tmpname()
  local f = assert(io.open(df, "wb")); f:write(data); f:close()
  local p = assert(io.popen("openssl dgst -sha256 -binary -mac HMAC -macopt 'hexkey:"
    .. (secret:gsub(".", function(c) return string.format("%02x", c:byte()) end))
    .. "' " .. df .. " | base64 -w0"))
  local out = p:read("*a"); p:close(); os.remove(df)
  return (out:gsub("=+%s*$", ""):gsub("%+", "-"):gsub("/", "_"))
end

describe("feed:token", function()
  local c
  setup(function() c = stream.connect("key", SECRET, "1", OFFLINE) end)
  teardown(function() c:close() end)

  it("signs resource *, action * and the joined feed id with the API secret", function()
    local token = assert(c:feed("user", "alice"):token())
    local header, payload, input = parts(token)
    assert.equal('{"alg":"HS256","typ":"JWT"}', header)
    assert.equal('{"resource":"*","action":"*","feed_id":"useralice"}', payload)
    assert.equal(openssl_sig(SECRET, input), token:match("[^.]+$"))
    assert.equal(0, c:stats().requests) -- signed here, nothing sent
  end)

  it("read_only signs action read; expires_in adds exp, seconds from now", function()
    local _, payload = parts(assert(c:feed("timeline:bob"):token({ read_only = true })))
    assert.equal('{"resource":"*","action":"read","feed_id":"timelinebob"}', payload)
    local before = os.time()
    _, payload = parts(assert(c:feed("user", "alice"):token({ expires_in = 3600, read_only = false })))
    local claims = stream.json.decode(payload)
    assert.equal("*", claims.action)
    assert.is_true(claims.exp >= before + 3600 and claims.exp <= os.time() + 3600)
    assert.equal(math.floor(claims.exp), claims.exp) -- whole seconds, as JWT readers expect
  end)

  it("is invalid for a feed whose slug or id breaks the rules", function()
    local token, err = c:feed("user", "a b"):token()
    assert.is_nil(token)
    assert.equal("invalid", err.kind)
    assert.matches("feed id", err.detail)
  end)

  it("raises for bad options and for a client without the API secret", function()
    local user_client = stream.connect("key", assert(c:create_user_token("erin")), "1", OFFLINE)
    for _, call in ipairs({
      function() local t = c:feed("user", "a"):token({ read_only = "yes" }); return t end,
      function() local t = c:feed("user", "a"):token({ expires_in = 0 }); return t end,
      function() local t = c:feed("user", "a"):token({ scope = "read" }); return t end,
      function() local t = c:feed("user", "a").token(); return t end,
      function() local t = user_client:feed("user", "erin"):token(); return t end,
    }) do
      local ok, e = pcall(call)
      assert.is_false(ok)
      assert.matches("feed_token_spec%.lua:%d+: feed:token", e)
    end
    local _, e = pcall(function() local t = user_client:feed("user", "erin"):token(); return t end)
    assert.matches("needs the API secret; this client holds a user token", e)
    user_client:close()
  end)
end)

describe("a client connected with a feed token", function()
  local s, admin

  setup(function()
    s = server.start()
    admin = H.server_client(s)
  end)

  teardown(function()
    if admin then admin:close() end
    if s then s:stop() end
  end)

  it("has no current user; user-token helpers raise, naming the feed token", function()
    local token = assert(admin:feed("user", "alice"):token())
    local c = H.token_client(s, token)
    assert.equal("feed_token", c.auth_mode)
    assert.equal("useralice", c.feed_scope)
    assert.is_nil(c.current_user)
    assert.is_nil(c.user_id)
    assert.matches("feed token for useralice", tostring(c))
    assert.is_nil(tostring(c):find(token, 1, true))
    local ok, e = pcall(function() local r = c:set_user({ name = "x" }); return r end)
    assert.is_false(ok)
    assert.matches("feed_token_spec%.lua:%d+: client:set_user needs a client made with a user token", e)
    ok, e = pcall(function() local r = c:create_user_token("x"); return r end)
    assert.is_false(ok)
    assert.matches("feed_token_spec%.lua:%d+: .*holds a feed token", e)
    c:close()
  end)

  it("reads and writes its own feed", function()
    local id = H.uid("own")
    local c = H.token_client(s, assert(admin:feed("user", id):token()))
    local feed = c:feed("user", id)
    local a = assert(feed:add_activity({ actor = "SU:" .. id, verb = "post", object = "1" }))
    assert.equal(a.id, assert(feed:get()).results[1].id)
    assert(feed:remove_activity(a.id))
    assert.same({}, assert(admin:feed("user", id):get()).results)
    c:close()
  end)

  it("fills no actor: the token names no user", function()
    local id = H.uid("noactor")
    local c = H.token_client(s, assert(admin:feed("user", id):token()))
    local res, err = c:feed("user", id):add_activity({ verb = "post", object = "1" })
    assert.is_nil(res)
    assert.equal(400, err.status)
    assert.is_table(err.fields.actor)
    c:close()
  end)

  it("with a read-only token reads its feed but cannot add (403)", function()
    local id = H.uid("ro")
    local a = assert(admin:feed("user", id):add_activity({ actor = "SU:x", verb = "post", object = "1" }))
    local c = H.token_client(s, assert(admin:feed("user", id):token({ read_only = true })))
    assert.equal(a.id, assert(c:feed("user", id):get()).results[1].id)
    local res, err = c:feed("user", id):add_activity({ actor = "SU:x", verb = "post", object = "2" })
    assert.is_nil(res)
    assert.equal("api", err.kind)
    assert.equal(403, err.status)
    assert.equal(17, err.code)
    assert.equal(1, #assert(admin:feed("user", id):get()).results)
    c:close()
  end)

  it("gets 403 for any other feed", function()
    local id = H.uid("mine")
    local c = H.token_client(s, assert(admin:feed("user", id):token()))
    for _, call in ipairs({
      function() return c:feed("user", id .. "x"):get() end,
      function() return c:feed("timeline", id):get() end,
      function()
        return c:feed("user", "someone-else"):add_activity({ actor = "SU:x", verb = "v", object = "o" })
      end,
    }) do
      local res, err = call()
      assert.is_nil(res)
      assert.equal(403, err.status)
      assert.equal(17, err.code)
    end
    c:close()
  end)

  it("may make batch calls inside its feed; one reaching another feed is 403 as a whole", function()
    local id = H.uid("batch")
    local c = H.token_client(s, assert(admin:feed("user", id):token()))
    local act = { actor = "SU:x", verb = "post", object = "1" }
    assert(c:add_to_many(act, { c:feed("user", id) }))
    local res, err = c:add_to_many(act, { c:feed("user", id), "user:" .. id .. "-other" })
    assert.is_nil(res)
    assert.equal(403, err.status)
    assert.equal(1, #assert(admin:feed("user", id):get()).results)
    assert.same({}, assert(admin:feed("user", id .. "-other"):get()).results)
    c:close()
  end)

  it("accepts a feed token signed elsewhere, with a per-operation resource", function()
    local id = H.uid("js")
    assert(admin:feed("user", id):add_activity({ actor = "SU:x", verb = "post", object = "1" }))
    -- the claims an official client signs for reading one feed
    local token = core.hs256(s.api_secret, '{"resource":"feed","action":"read","feed_id":"user' .. id .. '"}')
    local c = H.token_client(s, token)
    assert.equal("feed_token", c.auth_mode)
    assert.equal(1, #assert(c:feed("user", id):get()).results)
    c:close()
  end)
end)
