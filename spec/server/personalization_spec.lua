-- Personalization on the local server (stream-feeds-api.md section 15): canned resources
-- from STREAM_LOCAL_PERSONALIZATION, their token scopes and bodies, and the personalized
-- feed (newest first, enriched, offset paging, user-token and endpoint rules).

local server = require "helpers.server"
local http = require "helpers.http"
local cjson = require "cjson"

local CANNED = '{"follow_recommendations":[{"foreign_id":"user:bob"}],'
  .. '"profile":{"results":[{"id":1}],"extra":true,"duration":"dropped","next":"x"},'
  .. '"personalized_feed":"one","big":9007199254740993}'

describe("local server personalization", function()
  local s, api, root

  setup(function()
    s = server.start({ personalization = CANNED })
    api = http.api(s)
    root = http.api({ base_url = s.url .. "/", api_key = s.api_key, api_secret = s.api_secret })
  end)

  teardown(function()
    if s then s:stop() end
  end)

  local function call(a, method, path, opts)
    opts = opts or {}
    if type(opts.body) == "table" then opts.body = cjson.encode(opts.body) end
    return a:call(method, path, opts)
  end

  local P_TOKEN = '{"resource":"personalization","action":"*","feed_id":"*","user_id":"*"}'

  describe("resources", function()
    it("an array answer becomes results, with app_id, next, limit, offset and version", function()
      local st, b, raw = call(root, "GET", "personalization/v1.0/follow_recommendations/",
        { query = "user_id=alice&limit=3&offset=2", token = root:token(P_TOKEN) })
      assert.are.equal(200, st, raw)
      assert.are.same({ { foreign_id = "user:bob" } }, b.results)
      assert.are.equal(1, b.app_id)
      assert.are.equal("", b.next)
      assert.are.equal(3, b.limit)
      assert.are.equal(2, b.offset)
      assert.are.equal("local", b.version)
      assert.is_string(b.duration)
    end)

    it("an object answer keeps its keys in order and gets only the missing ones; duration is the server's", function()
      local st, _, raw = call(root, "GET", "personalization/v1.0/profile/")
      assert.are.equal(200, st, raw)
      assert.matches('^{"results":%[{"id":1}%],"extra":true,"next":"x","app_id":1,"limit":10,"offset":0,'
        .. '"version":"local","duration":"[%d.]+ms"}$', raw)
    end)

    it("another value is the one result, numbers byte-exact", function()
      local _, _, raw = call(root, "GET", "personalization/v1.0/big/")
      assert.matches('"results":%[9007199254740993%]', raw)
      local _, b = call(root, "DELETE", "personalization/v1.0/personalized_feed/")
      assert.are.same({ "one" }, b.results)
    end)

    it("POST takes a raw body, a {data} body or none", function()
      for _, body in ipairs({ '{"user_id":"alice"}', '{"data":{"user_id":"alice"}}', false }) do
        local st, b, raw = call(root, "POST", "personalization/v1.0/profile/", { body = body or nil })
        assert.are.equal(200, st, raw)
        assert.are.equal("local", b.version)
      end
    end)

    it("a POST body that is not JSON is 400 code 4 naming body; a huge one 413", function()
      local st, b = call(root, "POST", "personalization/v1.0/profile/", { body = '{"data":' })
      assert.are.equal(400, st)
      assert.are.equal(4, b.code)
      assert.is_table(b.exception_fields.body)
      st = call(root, "POST", "personalization/v1.0/profile/", { body = '"' .. ("x"):rep(1100000) .. '"' })
      assert.are.equal(413, st)
    end)

    it("an unknown resource is 404 code 16; a path without the slash 301", function()
      local st, b = call(root, "GET", "personalization/v1.0/nothing/")
      assert.are.equal(404, st)
      assert.are.equal(16, b.code)
      st = call(root, "GET", "personalization/v1.0/profile")
      assert.are.equal(301, st)
    end)

    it("needs a server token with resource personalization or *; user tokens and other resources are 403", function()
      for _, claims in ipairs({ '{"user_id":"alice"}', '{"resource":"feed","action":"*","feed_id":"*"}',
          '{"resource":"analytics","action":"*","feed_id":"*"}',
          '{"resource":"personalization","action":"*","feed_id":"useralice"}' }) do
        local st, b = call(root, "GET", "personalization/v1.0/profile/", { token = root:token(claims) })
        assert.are.equal(403, st, claims)
        assert.are.equal(17, b.code)
      end
      local st = call(root, "GET", "personalization/v1.0/profile/",
        { token = root:token('{"resource":"personalization","action":"read"}') })
      assert.are.equal(200, st)
      st = call(root, "POST", "personalization/v1.0/profile/",
        { token = root:token('{"resource":"personalization","action":"read"}') })
      assert.are.equal(403, st)
    end)
  end)

  describe("the personalized feed", function()
    local ids = {}
    setup(function()
      assert.are.equal(201, (call(api, "POST", "user/", { body = { id = "pf-alice", data = { name = "A" } } })))
      for i = 1, 3 do
        local st, b, raw = call(api, "POST", "feed/user/pf-alice/",
          { body = { actor = "SU:pf-alice", verb = "post", object = "o" .. i } })
        assert.are.equal(201, st, raw)
        ids[i] = b.id
      end
    end)

    local function feed(query, token)
      return call(api, "GET", "enrich/personalization/feed/", { query = query, token = token })
    end

    it("reads the feed newest first, enriched, with limit, offset, version local and an offset next", function()
      local st, b, raw = feed("feed_slug=user&user_id=pf-alice&limit=2&endpoint=personalized_feed&ranking=x")
      assert.are.equal(200, st, raw)
      assert.are.equal(2, #b.results)
      assert.are.equal(ids[3], b.results[1].id)
      assert.are.equal(ids[2], b.results[2].id)
      assert.are.equal("pf-alice", b.results[1].actor.id)
      assert.are.same({ name = "A" }, b.results[1].actor.data)
      assert.are.equal(2, b.limit)
      assert.are.equal(0, b.offset)
      assert.are.equal("local", b.version)
      assert.matches("^/api/v1%.0/enrich/personalization/feed/%?limit=2&offset=2&", b.next)
      local st2, b2 = call(api, "GET", b.next:gsub("^/api/v1%.0/", ""):gsub("%?.*", ""),
        { query = b.next:match("%?(.*)$") })
      assert.are.equal(200, st2)
      assert.are.equal(1, #b2.results)
      assert.are.equal(ids[1], b2.results[1].id)
      assert.are.equal("", b2.next)
    end)

    it("takes the reaction flags of an enriched read", function()
      local st, b, raw = feed("feed_slug=user&user_id=pf-alice&limit=1&withReactionCounts=true")
      assert.are.equal(200, st, raw)
      assert.is_table(b.results[1].reaction_counts)
    end)

    it("a user token reads its own user's only: another user is 403 code 17 with the service's detail", function()
      local st = feed("feed_slug=user&user_id=pf-alice", api:token('{"user_id":"pf-alice"}'))
      assert.are.equal(200, st)
      local b
      st, b = feed("feed_slug=user&user_id=pf-alice", api:token('{"user_id":"mallory"}'))
      assert.are.equal(403, st)
      assert.are.equal(17, b.code)
      assert.are.equal("NotAllowedException", b.exception)
      assert.are.equal("You do not have permission to do this, you got this error because there are no policies "
        .. "allowing this request on this application. Please consult the documentation https://getstream.io/docs/",
        b.detail)
    end)

    it("a token for another resource or another feed is 403", function()
      local st = feed("feed_slug=user&user_id=pf-alice", api:token('{"resource":"reactions","action":"*"}'))
      assert.are.equal(403, st)
      st = feed("feed_slug=user&user_id=pf-alice", api:token('{"resource":"feed","action":"*","feed_id":"userbob"}'))
      assert.are.equal(403, st)
      st = feed("feed_slug=user&user_id=pf-alice",
        api:token('{"resource":"feed","action":"read","feed_id":"userpf-alice"}'))
      assert.are.equal(200, st)
    end)

    it("an unknown endpoint is 404 code 16", function()
      local st, b = feed("feed_slug=user&user_id=pf-alice&endpoint=nope")
      assert.are.equal(404, st)
      assert.are.equal(16, b.code)
    end)

    it("refuses hostile queries with 400 naming the field, and an unknown group with code 6", function()
      for query, field in pairs({ ["user_id=pf-alice"] = "feed_slug", ["feed_slug=user"] = "user_id",
          ["feed_slug=us%20er&user_id=a"] = "feed_slug", ["feed_slug=user&user_id=" .. ("x"):rep(300)] = "user_id",
          ["feed_slug=user&user_id=a&limit=-1"] = "limit", ["feed_slug=user&user_id=a&limit=abc"] = "limit",
          ["feed_slug=user&user_id=a&offset=1e9999"] = "offset" }) do
        local st, b, raw = feed(query)
        assert.are.equal(400, st, query .. " " .. raw)
        assert.is_table(b.exception_fields[field], query .. " " .. raw)
      end
      local st, b = feed("feed_slug=nogroup&user_id=a")
      assert.are.equal(400, st)
      assert.are.equal(6, b.code)
    end)
  end)

  it("a STREAM_LOCAL_PERSONALIZATION that is no JSON object stops the server at start", function()
    local ok, err = pcall(server.start, { personalization = '["not", "an object"]' })
    assert.is_false(ok)
    assert.matches("STREAM_LOCAL_PERSONALIZATION", err)
  end)
end)
