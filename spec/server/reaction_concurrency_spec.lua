-- Concurrency of reactions across nginx workers (2 workers): reactions added, deleted,
-- soft-deleted and nested on one activity by parallel curl processes keep exact counts
-- and lists, and a client-chosen id raced by several requests is created once. Requests
-- are bounded in number (60 at a time) and time (curl's 30 s limit each).

local server = require "helpers.server"
local http = require "helpers.http"
local cjson = require "cjson"

describe("local server reaction concurrency (2 workers)", function()
  local s, api, auth

  setup(function()
    s = server.start({ workers = 2 })
    api = http.api(s)
    auth = { Authorization = api:token(), ["stream-auth-type"] = "jwt" }
  end)

  teardown(function()
    if s then s:stop() end
  end)

  local function run(list)
    for _, r in ipairs(list) do
      r[3] = r[3] or {}
      r[3].headers = auth
      r[3].timeout = 30
    end
    return http.concurrent(list)
  end

  local function call(method, path, opts)
    local st, b, raw = api:call(method, path, opts)
    assert.is_true(st == 200 or st == 201, raw)
    return b
  end

  local function url(path, query)
    return api:url(path, { query = query })
  end

  -- every listed reaction of a lookup, through next, checking for duplicates
  local function all(path)
    local out, seen, query = {}, {}, "limit=25"
    for _ = 1, 100 do
      local b = call("GET", path, { query = query })
      for _, r in ipairs(b.results) do
        assert.is_nil(seen[r.id], "duplicate " .. r.id)
        seen[r.id] = true
        out[#out + 1] = r.id
      end
      if b.next == "" then return out, seen end
      query = b.next:match("%?(.*)$")
    end
    error("more pages than expected")
  end

  local ADDS, HARD, SOFT, CHILDREN, SAME_ID = 30, 10, 10, 10, 10

  it("parallel adds, deletes, soft deletes and child adds keep exact counts and lists", function()
    local aid = call("POST", "feed/user/conc/", { body = '{"actor":"SU:conc","verb":"v","object":"o"}' }).id
    local parent = call("POST", "reaction/", { body = cjson.encode({ kind = "post", activity_id = aid,
      user_id = "p" }) })
    local old = {}
    for i = 1, HARD + SOFT do
      old[i] = call("POST", "reaction/", { body = cjson.encode({ kind = "like", activity_id = aid,
        user_id = "old" .. i }) }).id
    end

    local list = {}
    for i = 1, ADDS do
      list[#list + 1] = { "POST", url("reaction/"), { body = cjson.encode({ kind = (i % 3 == 0) and "comment" or "like",
        activity_id = aid, user_id = "c" .. i }) } }
    end
    for i = 1, HARD do list[#list + 1] = { "DELETE", url("reaction/" .. old[i] .. "/") } end
    for i = HARD + 1, HARD + SOFT do list[#list + 1] = { "DELETE", url("reaction/" .. old[i] .. "/", "soft=true") } end
    for i = 1, CHILDREN do
      list[#list + 1] = { "POST", url("reaction/"), { body = cjson.encode({ kind = "reply", parent = parent.id,
        user_id = "k" .. i }) } }
    end
    assert.are.equal(60, #list)
    local results = run(list)

    local added, counts = {}, {}
    for i, r in ipairs(results) do
      local want = list[i][1] == "POST" and 201 or 200
      assert.are.equal(want, r.status, r.body)
      if list[i][1] == "POST" then
        local b = cjson.decode(r.body)
        counts[b.kind] = (counts[b.kind] or 0) + 1
        if b.parent == "" then added[b.id] = true end
      end
    end
    assert.are.same({ like = 20, comment = 10, reply = CHILDREN }, counts)

    local a = call("GET", "enrich/activities/", { query = "ids=" .. aid
      .. "&withReactionCounts=true&withRecentReactions=true&recentReactionsLimit=25" }).results[1]
    assert.are.same({ post = 1, like = 20, comment = 10 }, a.reaction_counts)
    assert.are.equal(20, #a.latest_reactions.like)
    assert.are.equal(10, #a.latest_reactions.comment)

    local listed, seen = all("reaction/activity_id/" .. aid .. "/")
    assert.are.equal(ADDS + 1, #listed)
    for id in pairs(added) do assert.is_true(seen[id], id) end
    assert.is_true(seen[parent.id])
    for i = 1, HARD + SOFT do assert.is_nil(seen[old[i]]) end

    local p = call("GET", "reaction/" .. parent.id .. "/")
    assert.are.same({ reply = CHILDREN }, p.children_counts)
    assert.are.equal(CHILDREN, #p.latest_children.reply)
    assert.are.equal(CHILDREN, #all("reaction/reaction_id/" .. parent.id .. "/"))

    -- the hard-deleted are gone, the soft-deleted still answer GET
    for i = 1, HARD do assert.are.equal(404, (api:call("GET", "reaction/" .. old[i] .. "/"))) end
    for i = HARD + 1, HARD + SOFT do
      assert.is_string(call("GET", "reaction/" .. old[i] .. "/").deleted_at)
    end
  end)

  it("a client-chosen id raced by parallel requests is created exactly once", function()
    local list = {}
    for i = 1, SAME_ID do
      list[i] = { "POST", url("reaction/"), { body = cjson.encode({ id = "raced-id", kind = "like",
        activity_id = "act", user_id = "r" .. i }) } }
    end
    local st = {}
    for _, r in ipairs(run(list)) do st[r.status] = (st[r.status] or 0) + 1 end
    assert.are.same({ [201] = 1, [409] = SAME_ID - 1 }, st)
    assert.are.equal(1, #call("GET", "reaction/activity_id/act/").results)
  end)

  it("parallel deletes of one activity's reactions leave every kind at 0", function()
    local aid = call("POST", "feed/user/conc2/", { body = '{"actor":"SU:x","verb":"v","object":"o"}' }).id
    local made = {}
    for i = 1, 20 do
      made[i] = call("POST", "reaction/", { body = cjson.encode({ kind = (i % 2 == 0) and "a" or "b",
        activity_id = aid, user_id = "d" .. i }) }).id
    end
    local list = {}
    for i = 1, 20 do list[i] = { "DELETE", url("reaction/" .. made[i] .. "/") } end
    -- each reaction deleted twice at once: one 200, one 404
    for i = 1, 20 do list[20 + i] = { "DELETE", url("reaction/" .. made[i] .. "/") } end
    local st = {}
    for _, r in ipairs(run(list)) do st[r.status] = (st[r.status] or 0) + 1 end
    assert.are.same({ [200] = 20, [404] = 20 }, st)
    local a = call("GET", "enrich/activities/", { query = "ids=" .. aid .. "&withReactionCounts=true" }).results[1]
    assert.are.same({ a = 0, b = 0 }, a.reaction_counts)
    assert.are.same({}, call("GET", "reaction/activity_id/" .. aid .. "/").results)
  end)

  it("reads taken while reactions are added see lists and counts that agree", function()
    local aid = call("POST", "feed/user/conc3/", { body = '{"actor":"SU:x","verb":"v","object":"o"}' }).id
    local parent = call("POST", "reaction/", { body = cjson.encode({ kind = "post", activity_id = aid,
      user_id = "p" }) })
    local list = {}
    for i = 1, 20 do
      list[#list + 1] = { "POST", url("reaction/"), { body = cjson.encode({ kind = "like", activity_id = aid,
        user_id = "l" .. i }) } }
      if i <= 8 then
        list[#list + 1] = { "POST", url("reaction/"), { body = cjson.encode({ kind = "reply", parent = parent.id,
          user_id = "r" .. i }) } }
      end
      list[#list + 1] = { "GET", url("enrich/activities/", "ids=" .. aid
        .. "&withReactionCounts=true&withRecentReactions=true&recentReactionsLimit=25") }
      if i % 2 == 0 then list[#list + 1] = { "GET", url("reaction/" .. parent.id .. "/") } end
    end
    assert.are.equal(58, #list)
    local reads = 0
    for i, r in ipairs(run(list)) do
      assert.is_true(r.status == 200 or r.status == 201, r.body)
      if list[i][1] == "GET" then
        reads = reads + 1
        local b = cjson.decode(r.body)
        if b.results then
          local a = b.results[1]
          local listed = a.latest_reactions.like and #a.latest_reactions.like or 0
          assert.are.equal(a.reaction_counts.like or 0, listed)
          assert.are.equal(1, a.reaction_counts.post)
        else
          local listed = b.latest_children.reply and #b.latest_children.reply or 0
          assert.are.equal(b.children_counts.reply or 0, listed)
        end
      end
    end
    assert.are.equal(30, reads)
    local a = call("GET", "enrich/activities/", { query = "ids=" .. aid .. "&withReactionCounts=true" }).results[1]
    assert.are.same({ post = 1, like = 20 }, a.reaction_counts)
  end)

  it("logged no unexpected Lua errors", function()
    local log = s:error_log()
    assert.is_nil(log:find("unexpected error", 1, true), log)
    assert.is_nil(log:find("[error]", 1, true), log)
  end)
end)
