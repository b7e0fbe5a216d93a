local config = require "stream.config"

local function env(t)
  return function(name) return t[name] end
end

describe("config.base_url", function()
  it("defaults to the global host", function()
    assert.equal("https://api.stream-io-api.com/api/v1.0/", config.base_url({}))
  end)

  it("puts a location in front of the host", function()
    assert.equal("https://us-east-api.stream-io-api.com/api/v1.0/", config.base_url({ location = "us-east" }))
  end)

  it("completes a base URL given with or without the trailing slash", function()
    for _, b in ipairs({ "http://127.0.0.1:8000/api", "http://127.0.0.1:8000/api/",
                         "http://127.0.0.1:8000/api/v1.0", "http://127.0.0.1:8000/api/v1.0/",
                         "http://127.0.0.1:8000", "http://127.0.0.1:8000/" }) do
      assert.equal("http://127.0.0.1:8000/api/v1.0/", config.base_url({ base_url = b }), b)
    end
  end)

  it("raises on a base URL that is not http(s) or carries a query", function()
    assert.has_error(function() config.base_url({ base_url = "ftp://x/" }) end)
    assert.has_error(function() config.base_url({ base_url = "http://x/api?x=1" }) end)
  end)
end)

describe("config.options", function()
  it("copies the table", function()
    local o = { timeout = 3 }
    local c = config.options(o)
    assert.are_not.equal(o, c)
    assert.equal(3, c.timeout)
  end)

  it("names an unknown key", function()
    assert.has_error(function() config.options({ timout = 3 }) end, nil)
    local ok, msg = pcall(config.options, { timout = 3 })
    assert.is_false(ok)
    assert.matches("unknown option 'timout'", msg)
  end)

  it("names a key with a bad value", function()
    local ok, msg = pcall(config.options, { timeout = -1 })
    assert.is_false(ok)
    assert.matches("option 'timeout' must be", msg)
    ok, msg = pcall(config.options, { location = "us east" })
    assert.is_false(ok)
    assert.matches("'location'", msg)
  end)
end)

describe("config.from_env", function()
  it("reads a Heroku-style STREAM_URL", function()
    local s = config.from_env(env({ STREAM_URL = "https://key1:sec%2Fret@us-east.stream-io-api.com/?app_id=42" }))
    assert.equal("key1", s.api_key)
    assert.equal("sec/ret", s.api_secret)
    assert.equal("42", s.app_id)
    assert.equal("us-east", s.location)
    assert.is_nil(s.base_url)
  end)

  it("does not turn api.stream-io-api.com into api-api", function()
    local s = config.from_env(env({ STREAM_URL = "https://k:s@api.stream-io-api.com/?app_id=1" }))
    assert.is_nil(s.location)
    assert.equal("https://api.stream-io-api.com/api/v1.0/", config.base_url(s))
  end)

  it("accepts the LOC-api host form", function()
    local s = config.from_env(env({ STREAM_URL = "https://k:s@eu-west-api.stream-io-api.com/?app_id=1" }))
    assert.equal("eu-west", s.location)
  end)

  it("uses any other host as a base URL", function()
    local s = config.from_env(env({ STREAM_URL = "http://k:s@127.0.0.1:8000/?app_id=1" }))
    assert.equal("http://127.0.0.1:8000/api/v1.0/", config.base_url(s))
  end)

  it("reads the separate variables", function()
    local s = config.from_env(env({ STREAM_API_KEY = "k", STREAM_API_SECRET = "s", STREAM_APP_ID = "9",
                                    STREAM_REGION = "tokyo", STREAM_BASE_URL = "http://h:1/api/" }))
    assert.same({ api_key = "k", api_secret = "s", app_id = "9", location = "tokyo",
                  base_url = "http://h:1/api/" }, s)
  end)

  it("splits STREAM_URL at the last '@', so no part of the secret reaches the host", function()
    local s = config.from_env(env({ STREAM_URL = "https://key:se@cret@h.example/?app_id=1" }))
    assert.equal("se@cret", s.api_secret)
    assert.equal("https://h.example/api/v1.0/", config.base_url(s))
    local ok = pcall(config.from_env, env({ STREAM_URL = "https://key:secret@h.example@" }))
    assert.is_false(ok)
  end)

  it("refuses a STREAM_REGION that is not a host-name label", function()
    local ok, msg = pcall(config.from_env, env({ STREAM_API_KEY = "k", STREAM_API_SECRET = "s",
                                                 STREAM_REGION = "a/b?x" }))
    assert.is_false(ok)
    assert.matches("STREAM_REGION must be letters, digits and '%-'", msg)
  end)

  it("raises on a malformed STREAM_URL without echoing it", function()
    local ok, msg = pcall(config.from_env, env({ STREAM_URL = "https://onlykey@host/" }))
    assert.is_false(ok)
    assert.is_nil(msg:find("onlykey", 1, true))
  end)
end)
