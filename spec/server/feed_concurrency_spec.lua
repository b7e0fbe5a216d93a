-- Concurrency of the feed endpoints across nginx workers (2 workers): concurrent adds,
-- removes, follows and unfollows on shared feeds lose nothing, duplicate nothing and
-- leave no half-written state; a removal from one feed an activity was added to racing
-- identical adds to two feeds takes nothing from the other. Requests run as parallel curl processes, bounded in
-- number (at most 60 at a time) and time (curl's 30 s limit each).

local server = require "helpers.server"
local http = require "helpers.http"
local cjson = require "cjson"

describe("local server feed concurrency (2 workers)", function()
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

  local function statuses(results)
    local c = {}
    for _, r in ipairs(results) do c[r.status] = (c[r.status] or 0) + 1 end
    return c
  end

  -- every activity of a feed (pages of 100 through next), checking there are no duplicates
  local function all(feed)
    local out, seen, query = {}, {}, "limit=100"
    while true do
      local st, b, raw = api:call("GET", "feed/" .. feed .. "/", { query = query })
      assert.are.equal(200, st, raw)
      for _, a in ipairs(b.results) do
        assert.is_nil(seen[a.id], "duplicate " .. a.id .. " in " .. feed)
        seen[a.id] = a
        out[#out + 1] = a
      end
      if b.next == "" then break end
      query = b.next:match("%?(.*)$")
    end
    return out, seen
  end

  local function id_set(list)
    local set = {}
    for _, a in ipairs(list) do set[a.id] = true end
    return set
  end

  local FOLLOWERS = 5

  it("40 concurrent adds to a followed feed reach it and every follower exactly once", function()
    for i = 1, FOLLOWERS do
      api:call("POST", "feed/timeline/c" .. i .. "/follows/", { body = '{"target":"user:hub"}' })
    end
    local list = {}
    for i = 1, 40 do
      list[i] = { "POST", api:url("feed/user/hub/"), { body = '{"actor":"a","verb":"v","object":"o:' .. i
        .. '","foreign_id":"f:' .. i .. '","to":["user:side"]}' } }
    end
    assert.are.same({ [201] = 40 }, statuses(run(list)))
    local hub = all("user/hub")
    assert.are.equal(40, #hub)
    assert.are.same(id_set(hub), id_set((all("user/side"))))
    for i = 1, FOLLOWERS do
      local got = all("timeline/c" .. i)
      assert.are.same(id_set(hub), id_set(got))
      for _, a in ipairs(got) do assert.are.equal("user:hub", a.origin) end
    end
  end)

  it("20 concurrent removes (each twice) take the activity from every feed, no more", function()
    local hub = all("user/hub")
    local list = {}
    for i = 1, 20 do
      list[#list + 1] = { "DELETE", api:url("feed/user/hub/" .. hub[i].id .. "/") }
      list[#list + 1] = { "DELETE", api:url("feed/user/hub/" .. hub[i].id .. "/") }
    end
    assert.are.same({ [200] = 40 }, statuses(run(list)))
    local left = all("user/hub")
    assert.are.equal(20, #left)
    for i = 1, 20 do assert.is_nil(id_set(left)[hub[i].id]) end
    assert.are.same(id_set(left), id_set((all("user/side"))))
    for i = 1, FOLLOWERS do
      assert.are.same(id_set(left), id_set((all("timeline/c" .. i))))
    end
  end)

  it("30 follows racing 30 adds: every follower ends with every activity of the feed", function()
    local list = {}
    for i = 1, 30 do
      list[#list + 1] = { "POST", api:url("feed/timeline/r" .. i .. "/follows/"),
        { body = '{"target":"user:hub2","activity_copy_limit":1000}' } }
      list[#list + 1] = { "POST", api:url("feed/user/hub2/"), { body = '{"actor":"a","verb":"v","object":"o:' .. i
        .. '"}' } }
    end
    assert.are.same({ [201] = 60 }, statuses(run(list)))
    local hub = id_set((all("user/hub2")))
    local n = 0
    for _ in pairs(hub) do n = n + 1 end
    assert.are.equal(30, n)
    for i = 1, 30 do
      assert.are.same(hub, id_set((all("timeline/r" .. i))))
    end
    local _, b = api:call("GET", "feed/user/hub2/followers/", { query = "limit=100" })
    assert.are.equal(30, #b.results)
  end)

  it("follows and unfollows racing on the same pairs leave follows and copies consistent", function()
    for i = 1, 5 do
      api:call("POST", "feed/user/hub3/", { body = '{"actor":"a","verb":"v","object":"o:' .. i .. '"}' })
    end
    local list = {}
    for round = 1, 6 do
      for i = 1, 5 do
        if round % 2 == 1 then
          list[#list + 1] = { "POST", api:url("feed/timeline/p" .. i .. "/follows/"),
            { body = '{"target":"user:hub3"}' } }
        else
          list[#list + 1] = { "DELETE", api:url("feed/timeline/p" .. i .. "/follows/user:hub3/") }
        end
      end
    end
    local c = statuses(run(list))
    assert.are.same({ [201] = 15, [200] = 15 }, c)
    local hub = id_set((all("user/hub3")))
    local _, b = api:call("GET", "feed/user/hub3/followers/", { query = "limit=100" })
    local following = {}
    for _, r in ipairs(b.results) do
      assert.is_nil(following[r.feed_id], "duplicate follow row")
      following[r.feed_id] = true
    end
    for i = 1, 5 do
      local got = id_set((all("timeline/p" .. i)))
      if following["timeline:p" .. i] then
        assert.are.same(hub, got)
      else
        assert.are.same({}, got)
      end
    end
    local _, stats = api:call("GET", "stats/follow/", { query = "followers=user:hub3" })
    assert.are.equal(#b.results, stats.results.followers.count)
  end)

  it("identical adds racing to two feeds get one id, and a feed following both holds it once", function()
    for _, f in ipairs({ "user:twa", "user:twb" }) do
      api:call("POST", "feed/timeline/twboth/follows/", { body = '{"target":"' .. f .. '"}' })
    end
    local act = '{"actor":"a","verb":"v","object":"same","time":"2026-09-01T00:00:00.000123"}'
    local list = {}
    for i = 1, 20 do
      list[i] = { "POST", api:url(i % 2 == 0 and "feed/user/twa/" or "feed/user/twb/"), { body = act } }
    end
    local results = run(list)
    assert.are.same({ [201] = 20 }, statuses(results))
    local id = cjson.decode(results[1].body).id
    for _, r in ipairs(results) do assert.are.equal(id, cjson.decode(r.body).id) end
    for _, feed in ipairs({ "user/twa", "user/twb", "timeline/twboth" }) do
      assert.are.same({ [id] = true }, id_set((all(feed))), feed)
    end
  end)

  it("identical adds to two feeds racing a remove from the first: the second and its followers keep them", function()
    api:call("POST", "feed/timeline/rfa/follows/", { body = '{"target":"user:rha"}' })
    api:call("POST", "feed/timeline/rfb/follows/", { body = '{"target":"user:rhb"}' })
    for _, f in ipairs({ "user:rha", "user:rhb" }) do
      api:call("POST", "feed/timeline/rfab/follows/", { body = '{"target":"' .. f .. '"}' })
    end
    local acts, ids = {}, {}
    for i = 1, 10 do
      acts[i] = '{"actor":"a","verb":"v","object":"race","time":"2026-09-03T00:00:' .. string.format("%02d", i) .. '"}'
      -- the id an add gives (from the content); the probe feed was its only home, so the
      -- activity is gone again before the race
      local _, b = api:call("POST", "feed/user/rprobe/", { body = acts[i] })
      ids[i] = b.id
      api:call("DELETE", "feed/user/rprobe/" .. b.id .. "/")
    end
    local list = {}
    for i = 1, 10 do
      list[#list + 1] = { "POST", api:url("feed/user/rha/"), { body = acts[i] } }
      list[#list + 1] = { "DELETE", api:url("feed/user/rha/" .. ids[i] .. "/") }
      list[#list + 1] = { "POST", api:url("feed/user/rhb/"), { body = acts[i] } }
    end
    local results = run(list)
    assert.are.same({ [201] = 20, [200] = 10 }, statuses(results))
    for i = 1, 10 do
      assert.are.equal(ids[i], cjson.decode(results[3 * i - 2].body).id)
      assert.are.equal(ids[i], cjson.decode(results[3 * i].body).id)
    end
    local want = {}
    for _, id in ipairs(ids) do want[id] = true end
    assert.are.same(want, id_set((all("user/rhb"))))
    assert.are.same(want, id_set((all("timeline/rfb"))))
    local both_list, both = all("timeline/rfab")
    assert.are.same(want, id_set(both_list))
    -- the first feed holds what the remove came before; its follower exactly that
    local in_a = id_set((all("user/rha")))
    assert.are.same(in_a, id_set((all("timeline/rfa"))))
    for id in pairs(want) do
      local origin = both[id].origin
      assert.is_true(origin == "user:rhb" or (origin == "user:rha" and in_a[id] == true), origin)
    end
  end)

  it("20 target updates racing 20 adds to the same targets end with every feed exact", function()
    api:call("POST", "feed/timeline/tfa/follows/", { body = '{"target":"user:ta"}' })
    api:call("POST", "feed/timeline/tfb/follows/", { body = '{"target":"user:tb"}' })
    local moved, added = {}, {}
    for i = 1, 20 do
      local _, b = api:call("POST", "feed/user/hubt/", { body = '{"actor":"a","verb":"v","object":"o",'
        .. '"foreign_id":"t:' .. i .. '","time":"2026-09-02T00:00:' .. string.format("%02d", i) .. '",'
        .. '"to":["user:ta"]}' })
      moved[b.id] = true
    end
    local list = {}
    for i = 1, 20 do
      list[#list + 1] = { "POST", api:url("feed_targets/user/hubt/activity_to_targets/"), { body = '{"foreign_id":'
        .. '"t:' .. i .. '","time":"2026-09-02T00:00:' .. string.format("%02d", i) .. '","new_targets":["user:tb"]}' } }
      list[#list + 1] = { "POST", api:url("feed/user/hubt/"), { body = '{"actor":"a","verb":"v","object":"o",'
        .. '"foreign_id":"n:' .. i .. '","to":["user:ta"]}' } }
    end
    local results = run(list)
    assert.are.same({ [201] = 40 }, statuses(results))
    for i = 2, 40, 2 do added[cjson.decode(results[i].body).id] = true end
    assert.are.same(added, id_set((all("user/ta"))))
    assert.are.same(added, id_set((all("timeline/tfa"))))
    assert.are.same(moved, id_set((all("user/tb"))))
    assert.are.same(moved, id_set((all("timeline/tfb"))))
    assert.are.equal(40, #all("user/hubt"))
  end)

  it("logged no unexpected Lua errors", function()
    local log = s:error_log()
    assert.is_nil(log:find("unexpected error", 1, true), log)
    assert.is_nil(log:find("lua entry thread aborted", 1, true), log)
    assert.is_nil(log:find("sqlite", 1, true), log)
  end)
end)
