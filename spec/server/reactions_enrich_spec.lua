-- Reactions in enriched reads of the local server (stream-feeds-api.md sections 5 and 6):
-- own_reactions, latest_reactions(_extra), reaction_counts and their options, SR:
-- references, and the activities that target_feeds put into feeds.

local server = require "helpers.server"
local http = require "helpers.http"
local cjson = require "cjson"
local shape = require "helpers.shape"
local keys, without_duration = shape.keys, shape.without_duration

describe("local server reactions in enriched reads", function()
  local s, api

  setup(function()
    s = server.start({ feed_groups = "user,timeline,notification" })
    api = http.api(s)
  end)

  teardown(function()
    if s then s:stop() end
  end)

  local function call(method, path, opts)
    local st, b, raw = api:call(method, path, opts)
    assert.is_true(st == 200 or st == 201, raw)
    return b, raw
  end

  local n = 0
  local function activity(feed_user, extra)
    n = n + 1
    return call("POST", "feed/user/" .. feed_user .. "/", { body = '{"actor":"SU:' .. feed_user
      .. '","verb":"post","object":"o' .. n .. '"' .. (extra or "") .. '}' }).id
  end

  local function react(body, opts)
    opts = opts or {}
    opts.body = cjson.encode(body)
    return without_duration(call("POST", "reaction/", opts))
  end

  local function enriched(aid, query, opts)
    opts = opts or {}
    opts.query = "ids=" .. aid .. (query and ("&" .. query) or "")
    local b, raw = call("GET", "enrich/activities/", opts)
    return b.results[1], raw
  end

  local function ids(list)
    local out = {}
    for i, r in ipairs(list or {}) do out[i] = r.id end
    return out
  end

  local ALL = "withOwnReactions=true&withRecentReactions=true&withReactionCounts=true"

  it("adds no reaction keys without flags, and {} for each flag when there are no reactions", function()
    local aid = activity("e0")
    local a = enriched(aid)
    assert.is_nil(a.own_reactions)
    assert.is_nil(a.latest_reactions)
    assert.is_nil(a.reaction_counts)
    local b, raw = enriched(aid, ALL)
    assert.are.same({}, b.own_reactions)
    assert.are.same({}, b.latest_reactions)
    assert.are.same({}, b.latest_reactions_extra)
    assert.are.same({}, b.reaction_counts)
    -- in this order, after the activity's own keys
    local p1 = raw:find('"own_reactions"', 1, true)
    local p2 = raw:find('"latest_reactions"', 1, true)
    local p3 = raw:find('"latest_reactions_extra"', 1, true)
    local p4 = raw:find('"reaction_counts"', 1, true)
    assert.is_true(raw:find('"origin"', 1, true) < p1 and p1 < p2 and p2 < p3 and p3 < p4, raw)
    assert.are.equal(1, (enriched(aid, "withReactionCounts=True").reaction_counts and 1 or 0))
    assert.is_nil(enriched(aid, "withReactionCounts=1").latest_reactions)
    assert.is_nil(call("GET", "feed/user/e0/", { query = ALL }).results[1].reaction_counts)
  end)

  it("own, latest, extra and counts: newest first, limited per kind, with the next URL", function()
    call("POST", "user/", { body = '{"id":"e1","data":{"x":1}}' })
    local aid = activity("e1")
    local likes, comments = {}, {}
    for i = 1, 7 do
      likes[i] = react({ kind = "like", activity_id = aid, user_id = (i % 2 == 0) and "e1" or "o" .. i })
    end
    for i = 1, 2 do comments[i] = react({ kind = "comment", activity_id = aid, user_id = "e1" }) end
    react({ kind = "reply", parent = comments[1].id, user_id = "o1" }) -- children are not counted

    local a = enriched(aid, ALL .. "&user_id=e1")
    assert.are.same({ like = 7, comment = 2 }, a.reaction_counts)
    assert.are.same({ likes[7].id, likes[6].id, likes[5].id, likes[4].id, likes[3].id }, ids(a.latest_reactions.like))
    assert.are.same({ comments[2].id, comments[1].id }, ids(a.latest_reactions.comment))
    assert.are.same({ likes[6].id, likes[4].id, likes[2].id }, ids(a.own_reactions.like))
    assert.are.same({ comments[2].id, comments[1].id }, ids(a.own_reactions.comment))
    assert.are.same(likes[7], a.latest_reactions.like[1])
    assert.are.equal("like,comment", (function()
      local k = {}
      for kind in pairs(a.latest_reactions_extra) do k[#k + 1] = kind end
      table.sort(k, function(x, y) return x > y end)
      return table.concat(k, ",")
    end)())
    assert.are.equal("", a.latest_reactions_extra.comment.next)
    local want = s.base_url .. "reaction/activity_id/" .. aid .. "/like/?id_lt=" .. likes[3].id
      .. "&limit=5&withOwnChildren=false"
    assert.are.equal(want, a.latest_reactions_extra.like.next)
    -- the next URL leads to the remaining likes
    local rest = call("GET", "reaction/activity_id/" .. aid .. "/like/", { query = want:match("%?(.*)$") })
    assert.are.same({ likes[2].id, likes[1].id }, ids(rest.results))
    assert.are.equal("", rest.next)

    -- recentReactionsLimit and reactionKindsFilter
    local b = enriched(aid, ALL .. "&recentReactionsLimit=2&reactionKindsFilter=like")
    assert.are.same({ likes[7].id, likes[6].id }, ids(b.latest_reactions.like))
    assert.is_nil(b.latest_reactions.comment)
    assert.are.same({ like = 7 }, b.reaction_counts)
    assert.matches("id_lt=" .. likes[6].id:gsub("%-", "%%-") .. "&limit=2&", b.latest_reactions_extra.like.next)
    b = enriched(aid, ALL .. "&recentReactionsLimit=10")
    assert.are.equal(7, #b.latest_reactions.like)
    assert.are.equal("", b.latest_reactions_extra.like.next)
  end)

  it("own means user_id or withUserId, a user token's user, or everyone for a server read without one", function()
    local aid = activity("e2")
    local mine = react({ kind = "like", activity_id = aid, user_id = "me" })
    local theirs = react({ kind = "like", activity_id = aid, user_id = "them" })
    assert.are.same({ mine.id }, ids(enriched(aid, "withOwnReactions=true&user_id=me").own_reactions.like))
    assert.are.same({ mine.id }, ids(enriched(aid, "withOwnReactions=true&withUserId=me").own_reactions.like))
    assert.are.same({ theirs.id }, ids(enriched(aid, "withOwnReactions=true", {
      token = api:token('{"user_id":"them"}') }).own_reactions.like))
    assert.are.same({}, enriched(aid, "withOwnReactions=true&user_id=nobody").own_reactions)
    assert.are.same({ theirs.id, mine.id }, ids(enriched(aid, "withOwnReactions=true").own_reactions.like))
  end)

  it("keeps a kind at 0 after its last reaction goes; soft-deleted ones are left out until restored", function()
    local aid = activity("e3")
    local a = react({ kind = "like", activity_id = aid, user_id = "u" })
    local b = react({ kind = "vote", activity_id = aid, user_id = "u" })
    call("DELETE", "reaction/" .. a.id .. "/")
    call("DELETE", "reaction/" .. b.id .. "/", { query = "soft=true" })
    local got = enriched(aid, ALL)
    assert.are.same({ like = 0, vote = 0 }, got.reaction_counts)
    assert.are.same({}, got.latest_reactions)
    assert.are.same({}, got.own_reactions)
    assert.are.same({}, got.latest_reactions_extra)
    call("PUT", "reaction/" .. b.id .. "/restore/")
    got = enriched(aid, ALL)
    assert.are.same({ like = 0, vote = 1 }, got.reaction_counts)
    assert.are.same({ b.id }, ids(got.latest_reactions.vote))
  end)

  it("shows an activity's reactions in every feed that holds it", function()
    call("POST", "feed/timeline/e4f/follows/", { body = '{"target":"user:e4"}' })
    local aid = activity("e4", ',"to":["user:e4to"]')
    local r = react({ kind = "like", activity_id = aid, user_id = "x" })
    for _, feed in ipairs({ "user/e4", "timeline/e4f", "user/e4to" }) do
      local got = call("GET", "enrich/feed/" .. feed .. "/", { query = ALL }).results[1]
      assert.are.equal(aid, got.id)
      assert.are.same({ like = 1 }, got.reaction_counts, feed)
      assert.are.equal(r.id, got.latest_reactions.like[1].id)
    end
    -- the next page of an enriched feed keeps the flags
    activity("e4")
    local page = call("GET", "enrich/feed/user/e4/", { query = "limit=1&" .. ALL })
    assert.matches("withReactionCounts=true", page.next)
    local second = call("GET", "enrich/feed/user/e4/", { query = page.next:match("%?(.*)$") }).results[1]
    assert.are.same({ like = 1 }, second.reaction_counts)
  end)

  it("withOwnChildren adds each listed reaction's own children", function()
    local aid = activity("e5")
    local top = react({ kind = "comment", activity_id = aid, user_id = "p" })
    local c1 = react({ kind = "like", parent = top.id, user_id = "me5" })
    react({ kind = "like", parent = top.id, user_id = "other5" })
    local got = enriched(aid, "withRecentReactions=true&withOwnChildren=true&user_id=me5")
    assert.are.same({ c1.id }, ids(got.latest_reactions.comment[1].own_children.like))
    assert.are.equal(2, #got.latest_reactions.comment[1].latest_children.like)
    assert.is_nil(enriched(aid, "withRecentReactions=true").latest_reactions.comment[1].own_children)
    -- the filter endpoint the extra URLs point at takes the flag too (a user token's children)
    local f = call("GET", "reaction/activity_id/" .. aid .. "/", { query = "withOwnChildren=true",
      token = api:token('{"user_id":"me5"}') })
    assert.are.same({ c1.id }, ids(f.results[1].own_children.like))
    assert.are.equal(2, #call("GET", "reaction/activity_id/" .. aid .. "/", { query = "withOwnChildren=true" })
      .results[1].own_children.like)
    assert.is_nil(call("GET", "reaction/activity_id/" .. aid .. "/", { query = "withOwnChildren=false" })
      .results[1].own_children)
  end)

  it("withOwnChildren gives at most 5 own children per kind, newest first, in own and latest lists", function()
    local aid = activity("e10")
    local top = react({ kind = "comment", activity_id = aid, user_id = "me10" })
    local likes, replies = {}, {}
    for i = 1, 7 do likes[i] = react({ kind = "like", parent = top.id, user_id = "me10" }) end
    for i = 1, 2 do replies[i] = react({ kind = "reply", parent = top.id, user_id = "me10" }) end
    local theirs = react({ kind = "like", parent = top.id, user_id = "other10" })
    local want_likes = { likes[7].id, likes[6].id, likes[5].id, likes[4].id, likes[3].id }
    local got = enriched(aid, "withOwnReactions=true&withRecentReactions=true&withOwnChildren=true&user_id=me10")
    for _, list in ipairs({ got.latest_reactions.comment, got.own_reactions.comment }) do
      local oc = list[1].own_children
      assert.are.same(want_likes, ids(oc.like))
      assert.are.same({ replies[2].id, replies[1].id }, ids(oc.reply))
      assert.are.same(likes[7], oc.like[1])
    end
    -- a server read without a user: everyone's children, still 5 per kind
    got = enriched(aid, "withRecentReactions=true&withOwnChildren=true")
    assert.are.same({ theirs.id, likes[7].id, likes[6].id, likes[5].id, likes[4].id },
      ids(got.latest_reactions.comment[1].own_children.like))
    -- another reader has no children of the reply kind
    got = enriched(aid, "withRecentReactions=true&withOwnChildren=true&user_id=other10")
    assert.are.same({ like = { theirs } }, (function()
      local oc = got.latest_reactions.comment[1].own_children
      oc.like = { without_duration(oc.like[1]) }
      return oc
    end)())
  end)

  describe("activities nested through SA:", function()
    it("carry the same reaction keys, for the same reader, as top-level ones", function()
      call("POST", "user/", { body = '{"id":"e11","data":{}}' })
      local aid = activity("e11")
      local mine = react({ kind = "like", activity_id = aid, user_id = "e11" })
      local theirs = react({ kind = "like", activity_id = aid, user_id = "x11" })
      -- a reaction's target_feeds activity points at the reacted activity with SA:
      react({ kind = "comment", activity_id = aid, user_id = "e11", target_feeds = { "timeline:e11" } })
      local top = enriched(aid, ALL .. "&user_id=e11")
      local derived = call("GET", "enrich/feed/timeline/e11/", { query = ALL .. "&user_id=e11" }).results[1]
      local nested = derived.object
      assert.are.equal(aid, nested.id)
      for _, k in ipairs({ "own_reactions", "latest_reactions", "latest_reactions_extra", "reaction_counts" }) do
        assert.are.same(top[k], nested[k], k)
      end
      assert.are.same({ mine.id }, ids(nested.own_reactions.like))
      assert.are.same({ like = 2, comment = 1 }, nested.reaction_counts)
      assert.are.same({ theirs.id, mine.id }, ids(nested.latest_reactions.like))
      -- the derived activity has reaction keys of its own (none)
      assert.are.same({}, derived.reaction_counts)
      -- only the keys asked for, and none without flags
      nested = call("GET", "enrich/feed/timeline/e11/", { query = "withReactionCounts=true" }).results[1].object
      assert.are.same({ like = 2, comment = 1 }, nested.reaction_counts)
      assert.is_nil(nested.latest_reactions)
      assert.is_nil(call("GET", "enrich/feed/timeline/e11/").results[1].object.reaction_counts)
      -- one level deeper (an activity sharing an activity that shares this one)
      local share = activity("e11", ',"shared":"SA:' .. derived.id .. '"')
      local deep = enriched(share, "withReactionCounts=true").shared
      assert.are.same({}, deep.reaction_counts)
      assert.are.same({ like = 2, comment = 1 }, deep.object.reaction_counts)
    end)
  end)

  describe("rankingVars", function()
    local function esc(v)
      return (v:gsub("[^%w%-_.~]", function(c) return string.format("%%%02X", c:byte()) end))
    end

    it("takes a JSON object, or a string holding one, and changes nothing", function()
      local aid = activity("e12")
      react({ kind = "like", activity_id = aid, user_id = "u12" })
      local plain = call("GET", "enrich/feed/user/e12/", { query = ALL }).results
      for _, name in ipairs({ "rankingVars", "ranking_vars" }) do
        for _, v in ipairs({ '{"music":1,"sports":2.1}', '"{\\"music\\":1}"', "{}" }) do
          local q = ALL .. "&ranking=popularity&" .. name .. "=" .. esc(v)
          assert.are.same(plain, call("GET", "enrich/feed/user/e12/", { query = q }).results, v)
          call("GET", "feed/user/e12/", { query = "ranking=popularity&" .. name .. "=" .. esc(v) })
        end
      end
    end)

    it("answers anything else 400 code 4 naming it, on flat and grouped feeds", function()
      for _, v in ipairs({ "[1]", "nope", '"x"', "1", "null", '{"a":', '"[1]"' }) do
        for _, path in ipairs({ "enrich/feed/user/e13/", "feed/user/e13/", "feed/notification/e13/" }) do
          local st, b, raw = api:call("GET", path, { query = "ranking=popularity&rankingVars=" .. esc(v) })
          assert.are.equal(400, st, raw)
          assert.are.equal(4, b.code, raw)
          assert.is_table(b.exception_fields.rankingVars, raw)
        end
      end
      local st, b = api:call("GET", "feed/user/e13/", { query = "ranking_vars=nope" })
      assert.are.equal(400, st)
      assert.is_table(b.exception_fields.ranking_vars)
    end)
  end)

  describe("SR: references", function()
    it("become the reaction, and ReferenceNotFound once it is deleted", function()
      call("POST", "user/", { body = '{"id":"e6","data":{}}' })
      local r = react({ kind = "like", activity_id = "x", user_id = "e6" })
      local aid = activity("e6", ',"liked":"SR:' .. r.id .. '"')
      assert.are.same(r, enriched(aid).liked)
      assert.are.equal("SR:" .. r.id, call("GET", "feed/user/e6/").results[1].liked)
      call("DELETE", "reaction/" .. r.id .. "/")
      assert.are.same({ error = "ReferenceNotFound", reference = "SR:" .. r.id, reference_type = "reaction",
        id = r.id }, enriched(aid).liked)
    end)
  end)

  describe("target_feeds", function()
    it("puts one activity with exactly the contract's keys into each listed feed", function()
      call("POST", "user/", { body = '{"id":"e7","data":{"k":7}}' })
      local aid = activity("e7")
      local r = call("POST", "reaction/", { body = cjson.encode({ kind = "like", activity_id = aid, user_id = "e7",
        target_feeds = { "timeline:e7", "notification:e7b" }, target_feeds_extra_data = { note = "hi", n = 3 } }) })
      assert.are.same({ "timeline:e7", "notification:e7b" }, r.target_feeds)
      assert.are.same({ note = "hi", n = 3 }, r.target_feeds_extra_data)
      r.target_feeds_extra_data = nil
      r.duration = nil
      assert.is_nil(call("GET", "reaction/" .. r.id .. "/").target_feeds_extra_data)
      for _, feed in ipairs({ "timeline/e7", "notification/e7b" }) do
        local a = call("GET", "feed/" .. feed .. "/").results
        assert.are.equal(1, #a, feed)
        a = a[1]
        assert.are.equal("actor,foreign_id,id,n,note,object,origin,reaction,target,time,verb", keys(a))
        assert.are.equal("like", a.verb)
        assert.are.equal("SU:e7", a.actor)
        assert.are.equal("SA:" .. aid, a.object)
        assert.are.equal("SR:" .. r.id, a.reaction)
        assert.are.equal("reaction:" .. r.id, a.foreign_id)
        assert.are.equal(r.created_at:sub(1, -2), a.time)
        assert.are.equal("", a.target)
        assert.are.equal(cjson.null, a.origin)
        local e = call("GET", "enrich/feed/" .. feed .. "/").results[1]
        assert.are.same(without_duration(call("GET", "user/e7/")), e.actor)
        assert.are.equal(aid, e.object.id)
        assert.are.same(r, e.reaction)
      end
      assert.are.same({}, call("GET", "feed/user/e7b/").results)
    end)

    it("moves with an update and goes with the reaction", function()
      local aid = activity("e8")
      local r = react({ kind = "like", activity_id = aid, user_id = "e8",
        target_feeds = { "timeline:e8a", "user:e8b" } })
      local u = call("PUT", "reaction/" .. r.id .. "/",
        { body = '{"data":{"v":2},"target_feeds":["user:e8b","user:e8c"]}' })
      assert.are.same({ "user:e8b", "user:e8c" }, u.target_feeds)
      assert.are.same({}, call("GET", "feed/timeline/e8a/").results)
      for _, feed in ipairs({ "user/e8b", "user/e8c" }) do
        local a = call("GET", "feed/" .. feed .. "/").results
        assert.are.equal(1, #a, feed)
        assert.are.equal("SR:" .. r.id, a[1].reaction)
      end
      -- an update without target_feeds keeps them
      call("PUT", "reaction/" .. r.id .. "/", { body = '{"data":{"v":3}}' })
      assert.are.equal(1, #call("GET", "feed/user/e8c/").results)
      call("DELETE", "reaction/" .. r.id .. "/")
      assert.are.same({}, call("GET", "feed/user/e8b/").results)
      assert.are.same({}, call("GET", "feed/user/e8c/").results)
      -- an empty list removes them; the reaction then has no target_feeds key
      local r2 = react({ kind = "like", activity_id = aid, user_id = "e8", target_feeds = { "user:e8d" } })
      local u2 = call("PUT", "reaction/" .. r2.id .. "/", { body = '{"target_feeds":[]}' })
      assert.is_nil(u2.target_feeds)
      assert.are.same({}, call("GET", "feed/user/e8d/").results)
    end)

    it("refuses extra data that would set the activity's own keys", function()
      local st, b = api:call("POST", "reaction/", { body = cjson.encode({ kind = "like", activity_id = "a",
        user_id = "e9", target_feeds = { "user:e9" }, target_feeds_extra_data = { verb = "x" } }) })
      assert.are.equal(400, st)
      assert.is_table(b.exception_fields.target_feeds_extra_data)
      assert.are.same({}, call("GET", "feed/user/e9/").results)
    end)
  end)

  it("logged no unexpected Lua errors", function()
    local log = s:error_log()
    assert.is_nil(log:find("unexpected error", 1, true), log)
    assert.is_nil(log:find("[error]", 1, true), log)
  end)
end)
