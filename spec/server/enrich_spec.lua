-- Enrichment of the local server (stream-feeds-api.md section 5, checklist items 13 and
-- 14): references replaced at read time on enrich/ paths only.

local server = require "helpers.server"
local http = require "helpers.http"
local cjson = require "cjson"

describe("local server enrichment", function()
  local s, api

  setup(function()
    s = server.start()
    api = http.api(s)
  end)

  teardown(function()
    if s then s:stop() end
  end)

  local function call(method, path, opts)
    local st, b, raw = api:call(method, path, opts)
    assert.is_true(st == 200 or st == 201, raw)
    return b
  end

  local function user_without_duration(id)
    local b = call("GET", "user/" .. id .. "/")
    b.duration = nil
    return b
  end

  local function missing(ref, kind, id, collection)
    return { error = "ReferenceNotFound", reference = ref, reference_type = kind, id = id, collection = collection }
  end

  it("the plain read keeps SU:<id>; the enriched read's actor equals the user as GET shows it", function()
    call("POST", "user/", { body = '{"id":"ann","data":{"name":"Ann"}}' })
    call("POST", "feed/user/ann/", { body = '{"actor":"SU:ann","verb":"post","object":"o"}' })
    assert.are.equal("SU:ann", call("GET", "feed/user/ann/").results[1].actor)
    local got = call("GET", "enrich/feed/user/ann/")
    assert.are.same(user_without_duration("ann"), got.results[1].actor)
    assert.are.equal("created_at,data,id,updated_at", (function()
      local k = {}
      for name in pairs(got.results[1].actor) do k[#k + 1] = name end
      table.sort(k)
      return table.concat(k, ",")
    end)())
  end)

  it("replaces every top-level reference, whatever its key; nested ones and other strings stay", function()
    call("POST", "user/", { body = '{"id":"ben","data":{}}' })
    local a = call("POST", "feed/user/ben/", { body = '{"actor":"SU:ben","verb":"v","object":"SU:ben",'
      .. '"target":"SU:ben","mine":"SU:ben","nested":{"u":"SU:ben"},"list":["SU:ben"],"plain":"SU",'
      .. '"colon":"hello:world","empty":"SU:"}' })
    local got = call("GET", "enrich/activities/", { query = "ids=" .. a.id }).results[1]
    local ben = user_without_duration("ben")
    assert.are.same(ben, got.actor)
    assert.are.same(ben, got.object)
    assert.are.same(ben, got.target)
    assert.are.same(ben, got.mine)
    assert.are.same({ u = "SU:ben" }, got.nested)
    assert.are.same({ "SU:ben" }, got.list)
    assert.are.equal("SU", got.plain)
    assert.are.equal("hello:world", got.colon)
    assert.are.equal("SU:", got.empty)
  end)

  it("a never-created or deleted user becomes ReferenceNotFound and the read is 200", function()
    call("POST", "user/", { body = '{"id":"gone","data":{}}' })
    call("POST", "feed/user/cat/", { body = '{"actor":"SU:gone","verb":"v","object":"SU:never"}' })
    call("DELETE", "user/gone/")
    local st, b = api:call("GET", "enrich/feed/user/cat/")
    assert.are.equal(200, st)
    assert.are.same(missing("SU:gone", "user", "gone"), b.results[1].actor)
    assert.are.same(missing("SU:never", "user", "never"), b.results[1].object)
  end)

  it("activity, reaction and collection references that name nothing become ReferenceNotFound", function()
    call("POST", "feed/user/dan/", { body = '{"actor":"SA:00000000-0000-1000-8000-000000000000","verb":"v",'
      .. '"object":"SR:r-1","target":"SO:food:pizza"}' })
    local a = call("GET", "enrich/feed/user/dan/").results[1]
    assert.are.same(missing("SA:00000000-0000-1000-8000-000000000000", "activity",
      "00000000-0000-1000-8000-000000000000"), a.actor)
    assert.are.same(missing("SR:r-1", "reaction", "r-1"), a.object)
    assert.are.same(missing("SO:food:pizza", "object", "pizza", "food"), a.target)
  end)

  it("a removed activity becomes ReferenceNotFound", function()
    local a = call("POST", "feed/user/dee/", { body = '{"actor":"a","verb":"v","object":"o"}' })
    call("POST", "feed/user/dee/", { body = '{"actor":"a","verb":"share","object":"SA:' .. a.id .. '"}' })
    assert.are.equal(a.id, call("GET", "enrich/feed/user/dee/", { query = "limit=1" }).results[1].object.id)
    call("DELETE", "feed/user/dee/" .. a.id .. "/")
    local st, b = api:call("GET", "enrich/feed/user/dee/")
    assert.are.equal(200, st)
    assert.are.equal(1, #b.results)
    assert.are.same(missing("SA:" .. a.id, "activity", a.id), b.results[1].object)
  end)

  it("SA:<id> becomes the activity, itself enriched; a cycle ends one level down", function()
    call("POST", "user/", { body = '{"id":"eve","data":{"n":1}}' })
    local first = call("POST", "feed/user/eve/", { body = '{"actor":"SU:eve","verb":"v","object":"o"}' })
    local second = call("POST", "feed/user/eve/", { body = '{"actor":"SU:eve","verb":"share","object":"SA:'
      .. first.id .. '"}' })
    local got = call("GET", "enrich/activities/", { query = "ids=" .. second.id }).results[1]
    assert.are.equal(first.id, got.object.id)
    assert.are.same(user_without_duration("eve"), got.object.actor)
    assert.are.equal(cjson.null, got.object.origin)
    -- a cycle: x points at itself through its object; the reference inside the
    -- referenced activity is replaced once more, the one below that stays a string
    local x = call("POST", "feed/user/eve/", { body = '{"actor":"SU:eve","verb":"v","object":"o",'
      .. '"foreign_id":"cyc","time":"2026-01-01T00:00:00"}' })
    call("POST", "feed/user/eve/", { body = '{"actor":"SU:eve","verb":"v","object":"SA:' .. x.id .. '",'
      .. '"foreign_id":"cyc","time":"2026-01-01T00:00:00"}' })
    local c = call("GET", "enrich/activities/", { query = "ids=" .. x.id }).results[1]
    assert.are.equal(x.id, c.object.id)
    assert.are.equal(x.id, c.object.object.id)
    assert.are.equal("SA:" .. x.id, c.object.object.object)
    assert.are.equal("SU:eve", c.object.object.actor)
  end)

  it("a user updated after posting shows its new data in old activities", function()
    call("POST", "user/", { body = '{"id":"fay","data":{"v":"old"}}' })
    call("POST", "feed/user/fay/", { body = '{"actor":"SU:fay","verb":"v","object":"o"}' })
    call("PUT", "user/fay/", { body = '{"data":{"v":"new"}}' })
    assert.are.same({ v = "new" }, call("GET", "enrich/feed/user/fay/").results[1].actor.data)
  end)

  it("an enriched activity by id equals the same activity read from an enriched feed", function()
    call("POST", "user/", { body = '{"id":"gus","data":{}}' })
    local a = call("POST", "feed/user/gus/", { body = '{"actor":"SU:gus","verb":"v","object":"SU:nobody"}' })
    assert.are.same(call("GET", "enrich/feed/user/gus/").results[1],
      call("GET", "enrich/activities/", { query = "ids=" .. a.id }).results[1])
  end)

  it("next of an enriched read stays on the enrich path and keeps the other parameters", function()
    for i = 1, 3 do
      call("POST", "feed/user/hal/", { body = '{"actor":"a","verb":"v","object":"o' .. i .. '"}' })
    end
    local page = call("GET", "enrich/feed/user/hal/", { query = "limit=2&withReactionCounts=true" })
    assert.matches("^/api/v1%.0/enrich/feed/user/hal/%?id_lt=[%x-]+&limit=2&withReactionCounts=true$", page.next)
  end)

  it("reaction flags add their keys, in order, each {} while there are no reactions; without flags none", function()
    local a = call("POST", "feed/user/ivy/", { body = '{"actor":"a","verb":"v","object":"o"}' })
    local _, _, raw = api:call("GET", "enrich/feed/user/ivy/",
      { query = "withOwnReactions=true&withRecentReactions=True&withReactionCounts=1" })
    assert.matches('"origin":null,"own_reactions":{},"latest_reactions":{},"latest_reactions_extra":{},'
      .. '"reaction_counts":{}}', raw, 1, true)
    local plain = call("GET", "enrich/activities/", { query = "ids=" .. a.id }).results[1]
    assert.is_nil(plain.own_reactions)
    assert.is_nil(plain.latest_reactions)
    assert.is_nil(plain.reaction_counts)
    local counts = call("GET", "enrich/activities/", { query = "ids=" .. a.id .. "&withReactionCounts=true" })
    assert.are.same({}, counts.results[1].reaction_counts)
    assert.is_nil(counts.results[1].own_reactions)
    assert.is_nil(call("GET", "feed/user/ivy/", { query = "withReactionCounts=true" }).results[1].reaction_counts)
  end)

  it("logged no unexpected Lua errors", function()
    local log = s:error_log()
    assert.is_nil(log:find("unexpected error", 1, true), log)
    assert.is_nil(log:find("lua entry thread aborted", 1, true), log)
  end)
end)
