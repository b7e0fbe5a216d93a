-- Following `next` links: only paths under the client's own base URL, and
-- the iterators' error rule. Pure functions; the HTTP side is in feeds_spec.
local paging = require "stream.paging"
local activities = require "stream.activities"

local BASE = "http://127.0.0.1:8000/api/v1.0/"

describe("paging.resolve", function()
  it("follows a host-relative path under the API prefix", function()
    local path, q = paging.resolve(BASE, "/api/v1.0/feed/user/alice/?id_lt=abc-1&limit=25")
    assert.equal("feed/user/alice/", path)
    assert.equal("id_lt=abc-1&limit=25", q)
  end)

  it("follows an absolute link on the same scheme, host and port", function()
    local path, q = paging.resolve(BASE,
      "http://127.0.0.1:8000/api/v1.0/reaction/activity_id/x/like/?id_lt=y&limit=5")
    assert.equal("reaction/activity_id/x/like/", path)
    assert.equal("id_lt=y&limit=5", q)
  end)

  it("drops any api_key the link carries", function()
    local path, q = paging.resolve(BASE, "/api/v1.0/feed/user/a/?api_key=evil&limit=2&API_KEY=x")
    assert.equal("feed/user/a/", path)
    assert.equal("limit=2", q)
  end)

  it("drops an api_key whose name is percent-escaped, which a server decodes", function()
    local path, q = paging.resolve(BASE,
      "/api/v1.0/feed/user/a/?api%5Fkey=evil&limit=2&%61pi_key=x&api%5fKEY=y&%2561pi_key=z")
    assert.equal("feed/user/a/", path)
    assert.equal("limit=2&%2561pi_key=z", q)
  end)

  local hostile = {
    ["another host"] = "http://evil.example/api/v1.0/feed/user/a/",
    ["another port"] = "http://127.0.0.1:8001/api/v1.0/feed/user/a/",
    ["a scheme change"] = "https://127.0.0.1:8000/api/v1.0/feed/user/a/",
    ["a protocol-relative link"] = "//evil.example/api/v1.0/feed/user/a/",
    ["a CR/LF"] = "/api/v1.0/feed/user/a/?limit=1\r\nX-Evil: 1",
    ["a path outside the API"] = "/admin/feed/user/a/",
    ["a path that climbs out"] = "/api/v1.0/../admin/",
    ["an escaped climb"] = "/api/v1.0/%2e%2e/admin/",
    ["a backslash"] = "/api/v1.0/feed\\user/",
    ["a fragment"] = "/api/v1.0/feed/user/a/#x",
    ["a relative path"] = "feed/user/a/",
    ["userinfo in the host"] = "http://127.0.0.1:8000@evil.example/api/v1.0/feed/",
    ["the prefix alone"] = "/api/v1.0/",
    ["a javascript: link"] = "javascript:alert(1)",
  }
  for what, link in pairs(hostile) do
    it("refuses " .. what, function()
      local path, err = paging.resolve(BASE, link, { method = "GET", path = "feed/user/a/" })
      assert.is_nil(path)
      assert.equal("invalid", err.kind)
      assert.equal("GET", err.method)
      assert.matches("next link", err.detail)
      assert.is_nil(err.detail:find("[\r\n]"))
    end)
  end
end)

describe("paging.pages", function()
  local client = { base_url = BASE }

  it("follows next until it is empty, then ends", function()
    local sent = {}
    local answers = {
      { results = { 1, 2 }, next = "/api/v1.0/feed/user/a/?id_lt=2&limit=2" },
      { results = { 3 }, next = "" },
    }
    local it = paging.pages(client, function()
      return table.remove(answers, 1)
    end, function(path, q)
      sent[#sent + 1] = path .. "?" .. q
      return table.remove(answers, 1)
    end)
    assert.same({ 1, 2 }, it().results)
    assert.same({ 3 }, it().results)
    assert.is_nil(it())
    assert.same({ "feed/user/a/?id_lt=2&limit=2" }, sent)
  end)

  it("yields a failure value and err once on a failed request, then ends", function()
    local it = paging.pages(client, function() return nil, "boom" end, error)
    local p, err = it()
    assert.is_true(paging.is_failure(p))
    assert.equal("boom", err)
    assert.is_nil(it())
  end)

  it("ends with an invalid error, sending nothing, on a hostile next", function()
    local it = paging.pages(client, function()
      return { results = {}, next = "http://evil.example/api/v1.0/feed/user/a/" }
    end, function() error("must not be called") end)
    assert.is_table(it())
    local p, err = it()
    assert.is_true(paging.is_failure(p))
    assert.equal("invalid", err.kind)
    assert.is_nil(it())
  end)

  it("each yields every entry across pages and skips empty pages", function()
    local answers = {
      { results = { "a" }, next = "/api/v1.0/x/?p=2" },
      { results = {}, next = "/api/v1.0/x/?p=3" },
      { results = { "b", "c" }, next = "" },
    }
    local got = {}
    for v in paging.each(paging.pages(client, function() return table.remove(answers, 1) end,
      function() return table.remove(answers, 1) end)) do
      got[#got + 1] = v
    end
    assert.same({ "a", "b", "c" }, got)
  end)
end)

describe("the value a failed walk yields", function()
  local client = { base_url = BASE }
  local errors = require "stream.errors"
  local err = errors.new("api", "boom", { status = 503, method = "GET", path = "feed/user/a/" })

  local function failed_walk()
    local answers = { { results = { "a" }, next = "/api/v1.0/x/?p=2" } }
    return paging.each(paging.pages(client, function() return table.remove(answers, 1) end,
      function() return nil, err end))
  end

  it("raises the error's text when the README's loop uses it as an activity", function()
    local seen = {}
    local ok, msg = pcall(function()
      for activity in failed_walk() do seen[#seen + 1] = activity.id or activity end
    end)
    assert.is_false(ok)
    assert.same({ "a" }, seen)
    assert.matches("stream: walk stopped: stream: 503: boom %[GET feed/user/a/%]", msg)
  end)

  it("comes with err as the second value, which a `for activity, err` loop sees", function()
    local got, errs = {}, {}
    for activity, e in failed_walk() do
      if e then errs[#errs + 1] = e else got[#got + 1] = activity end
    end
    assert.same({ "a" }, got)
    assert.equal(1, #errs)
    assert.equal(err, errs[1])
  end)

  it("raises on every use as a table, and reads as the error in text", function()
    local p = paging.failure(err)
    local uses = {
      index = function() return p.results end,
      newindex = function() p.x = 1 end,
      call = function() p() end,
    }
    if _VERSION == "Lua 5.4" then -- LuaJIT's ipairs and # do not look at metatables
      uses.length = function() return #p end
      uses.ipairs = function() for _ in ipairs(p) do end end
    end
    for what, use in pairs(uses) do
      local ok, msg = pcall(use)
      assert.is_false(ok, what)
      assert.matches("boom", tostring(msg), 1, true)
    end
    assert.is_truthy(p) -- a truthy value: a for loop does not end on it, so its body sees err
    assert.equal("stream: walk stopped: " .. tostring(err), tostring(p))
    assert.equal("x: " .. tostring(p), "x: " .. p)
    assert.is_false(paging.is_failure({}))
  end)
end)

describe("activities.iso_time", function()
  it("formats epoch seconds as UTC with microseconds and no offset", function()
    assert.equal("2016-01-15T12:54:42.000000", activities.iso_time(1452862482))
    assert.equal("2026-11-28T10:00:00.123456", activities.iso_time(1795860000.123456))
    assert.equal("1970-01-01T00:00:00.000000", activities.iso_time(0))
  end)

  it("carries a rounded-up microsecond into the next second", function()
    assert.equal("1970-01-01T00:00:02.000000", activities.iso_time(1.9999999))
  end)

  it("refuses NaN, negatives and years past 9999", function()
    assert.is_nil(activities.iso_time(0 / 0))
    assert.is_nil(activities.iso_time(-1))
    assert.is_nil(activities.iso_time(1e12))
  end)
end)
