-- Reactions on the local server (stream-feeds-api.md section 6): add, get, update,
-- delete, soft delete and restore, children, filters with their paging, get_many, the
-- validation errors and the token rules, over HTTP with curl.

local server = require "helpers.server"
local http = require "helpers.http"
local cjson = require "cjson"
local shape = require "helpers.shape"
local keys, without_duration = shape.keys, shape.without_duration

describe("local server reactions", function()
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
    return b, st
  end

  local function user_token(id)
    return api:token('{"user_id":"' .. id .. '"}')
  end

  local function user_of(id)
    return without_duration(call("GET", "user/" .. id .. "/"))
  end

  local n = 0
  local function activity(feed_user)
    n = n + 1
    return call("POST", "feed/user/" .. feed_user .. "/", { body = '{"actor":"SU:' .. feed_user
      .. '","verb":"post","object":"o' .. n .. '"}' }).id
  end

  local function react(body, opts)
    opts = opts or {}
    opts.body = cjson.encode(body)
    return call("POST", "reaction/", opts)
  end

  local function expect_error(status, code, st, b, raw)
    assert.are.equal(status, st, raw)
    assert.are.equal(code, b.code, raw)
    assert.are.equal(status, b.status_code)
    assert.is_string(b.detail)
    assert.is_string(b.duration)
  end

  local KEYS = "activity_id,children_counts,created_at,data,id,kind,latest_children,parent,updated_at,user,user_id"

  describe("add, get, update, delete", function()
    it("round-trips with the exact key set and a user equal to GET user", function()
      call("POST", "user/", { body = '{"id":"rita","data":{"name":"Rita"}}' })
      local aid = activity("rita")
      local added, st = react({ kind = "like", activity_id = aid, user_id = "rita", data = { n = 1 } })
      assert.are.equal(201, st)
      assert.is_string(added.duration)
      added = without_duration(added)
      assert.are.equal(KEYS, keys(added))
      assert.matches("^%x+%-%x+%-4%x+%-[89ab]%x+%-%x+$", added.id)
      assert.are.equal(36, #added.id)
      assert.are.equal("like", added.kind)
      assert.are.equal(aid, added.activity_id)
      assert.are.equal("", added.parent)
      assert.are.same({ n = 1 }, added.data)
      assert.are.same(user_of("rita"), added.user)
      assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%d%d%d%dZ$", added.created_at)
      assert.are.equal(added.created_at, added.updated_at)
      assert.are.same({}, added.latest_children)
      assert.are.same({}, added.children_counts)
      assert.are.same(added, without_duration(call("GET", "reaction/" .. added.id .. "/")))

      local updated, ust = call("PUT", "reaction/" .. added.id .. "/", { body = '{"data":{"m":2}}' })
      assert.are.equal(201, ust)
      assert.are.same({ m = 2 }, updated.data)
      assert.are.equal(added.created_at, updated.created_at)
      assert.is_true(updated.updated_at > added.updated_at)
      assert.are.same(without_duration(updated), without_duration(call("GET", "reaction/" .. added.id .. "/")))

      local d, dst = call("DELETE", "reaction/" .. added.id .. "/")
      assert.are.equal(200, dst)
      assert.are.equal("duration", keys(d))
      for _, m in ipairs({ "GET", "PUT", "DELETE" }) do
        local est, eb, raw = api:call(m, "reaction/" .. added.id .. "/", { body = m == "PUT" and '{"data":{}}' or nil })
        expect_error(404, 16, est, eb, raw)
      end
    end)

    it("resolves user at read time: later user data shows, a missing user is ReferenceNotFound", function()
      call("POST", "user/", { body = '{"id":"ulla","data":{"v":"old"}}' })
      local r = react({ kind = "like", activity_id = activity("ulla"), user_id = "ulla" })
      call("PUT", "user/ulla/", { body = '{"data":{"v":"new"}}' })
      assert.are.same({ v = "new" }, call("GET", "reaction/" .. r.id .. "/").user.data)
      call("DELETE", "user/ulla/")
      assert.are.same({ error = "ReferenceNotFound", reference = "SU:ulla", reference_type = "user", id = "ulla" },
        call("GET", "reaction/" .. r.id .. "/").user)
      local ghost = react({ kind = "like", activity_id = activity("ulla"), user_id = "never-made" })
      assert.are.equal("never-made", ghost.user.id)
      assert.are.equal("ReferenceNotFound", ghost.user.error)
    end)

    it("keeps SU: references inside data as strings", function()
      call("POST", "user/", { body = '{"id":"sam","data":{}}' })
      local r = react({ kind = "comment", activity_id = activity("sam"), user_id = "sam", data = { who = "SU:sam" } })
      assert.are.same({ who = "SU:sam" }, call("GET", "reaction/" .. r.id .. "/").data)
    end)

    it("takes a client-chosen id and answers 409 when it is used again", function()
      local aid = activity("ida")
      local r = react({ id = "my-reaction-1", kind = "like", activity_id = aid, user_id = "ida" })
      assert.are.equal("my-reaction-1", r.id)
      local st, b, raw = api:call("POST", "reaction/", { body = cjson.encode({ id = "my-reaction-1", kind = "like",
        activity_id = aid, user_id = "other" }) })
      expect_error(409, 22, st, b, raw)
      assert.are.equal("ida", call("GET", "reaction/my-reaction-1/").user_id)
    end)

    it("replaces data on update (no merge); null data becomes {}; a missing data key keeps it", function()
      local r = react({ kind = "c", activity_id = activity("uma"), user_id = "uma", data = { a = 1, b = 2 } })
      assert.are.same({ c = 3 }, call("PUT", "reaction/" .. r.id .. "/", { body = '{"data":{"c":3}}' }).data)
      assert.are.same({ c = 3 }, call("PUT", "reaction/" .. r.id .. "/", { body = '{}' }).data)
      assert.are.same({}, call("PUT", "reaction/" .. r.id .. "/", { body = '{"data":null}' }).data)
    end)

    it("accepts an unknown activity_id", function()
      local r = react({ kind = "like", activity_id = "not-an-activity", user_id = "x" })
      assert.are.equal("not-an-activity", r.activity_id)
    end)
  end)

  describe("validation", function()
    local function bad(body, field, opts)
      opts = opts or {}
      local count = #call("GET", "reaction/user_id/val/", {}).results
      local st, b, raw = api:call("POST", "reaction/", { body = body, token = opts.token })
      expect_error(400, 4, st, b, raw)
      assert.are.equal("InputException", b.exception)
      assert.is_table(b.exception_fields and b.exception_fields[field], raw)
      assert.are.equal(count, #call("GET", "reaction/user_id/val/", {}).results)
      return b
    end

    it("user_id is required with a server token: the exact 400 body", function()
      local b = bad('{"kind":"like","activity_id":"a1"}', "user_id")
      assert.are.same({ user_id = { "user_id is a required field" } }, b.exception_fields)
      assert.are.same({ "detail", "status_code", "code", "exception", "duration", "more_info", "exception_fields" },
        (function()
          local out = {}
          for k in pairs(b) do out[#out + 1] = k end
          local order = { detail = 1, status_code = 2, code = 3, exception = 4, duration = 5, more_info = 6,
            exception_fields = 7 }
          table.sort(out, function(x, y) return order[x] < order[y] end)
          return out
        end)())
      assert.are.equal("https://getstream.io/docs/api_error_responses", b.more_info)
    end)

    it("neither activity_id nor parent names both fields", function()
      local b = bad('{"kind":"like","user_id":"val"}', "activity_id")
      assert.are.same({ "one of activity_id or parent must not be empty" }, b.exception_fields.activity_id)
      assert.are.same({ "one of activity_id or parent must not be empty" }, b.exception_fields.parent)
      bad('{"kind":"like","user_id":"val","activity_id":"","parent":""}', "parent")
    end)

    it("kind is required and follows the id rule", function()
      bad('{"user_id":"val","activity_id":"a"}', "kind")
      bad('{"kind":"","user_id":"val","activity_id":"a"}', "kind")
      bad('{"kind":"has space","user_id":"val","activity_id":"a"}', "kind")
      bad('{"kind":"' .. string.rep("k", 256) .. '","user_id":"val","activity_id":"a"}', "kind")
      bad('{"kind":5,"user_id":"val","activity_id":"a"}', "kind")
    end)

    it("data must be an object; a reaction is at most 10 kB; ids follow the rule", function()
      bad('{"kind":"k","user_id":"val","activity_id":"a","data":"text"}', "data")
      bad('{"kind":"k","user_id":"val","activity_id":"a","data":[1]}', "data")
      bad('{"kind":"k","user_id":"val","activity_id":"a","data":{"p":"' .. string.rep("x", 10300) .. '"}}', "data")
      bad('{"kind":"k","user_id":"a b","activity_id":"a"}', "user_id")
      bad('{"id":"bad id","kind":"k","user_id":"val","activity_id":"a"}', "id")
      bad('{"kind":"k","user_id":"val","activity_id":"a","target_feeds":"user:x"}', "target_feeds")
      bad('{"kind":"k","user_id":"val","activity_id":"a","target_feeds":["nocolon"]}', "target_feeds")
    end)

    it("takes a reaction of exactly 10240 bytes and refuses one byte more", function()
      local base = '{"id":"size-ok","kind":"k","activity_id":"a","parent":"","user_id":"val","data":{"p":""}}'
      local pad = string.rep("x", 10240 - #base)
      local st, b, raw = api:call("POST", "reaction/", { body = '{"id":"size-ok","kind":"k","activity_id":"a",'
        .. '"user_id":"val","data":{"p":"' .. pad .. '"}}' })
      assert.are.equal(201, st, raw)
      assert.are.equal(#pad, #b.data.p)
      bad('{"id":"size-no","kind":"k","activity_id":"a","user_id":"val","data":{"p":"' .. pad .. 'x"}}', "data")
      call("DELETE", "reaction/size-ok/")
    end)

    it("malformed JSON is a 400 and nothing is written", function()
      local st, b, raw = api:call("POST", "reaction/", { body = '{"kind":"k",}' })
      expect_error(400, 4, st, b, raw)
    end)

    it("an unknown parent and a fourth level are 400", function()
      bad('{"kind":"k","user_id":"val","parent":"no-such-reaction"}', "parent")
      local top = react({ kind = "c", activity_id = activity("deep"), user_id = "deep" })
      local child = react({ kind = "c", parent = top.id, user_id = "deep" })
      local grand = react({ kind = "c", parent = child.id, user_id = "deep" })
      assert.are.equal(top.activity_id, grand.activity_id)
      local b = bad(cjson.encode({ kind = "c", parent = grand.id, user_id = "val" }), "parent")
      assert.matches("3 levels", b.exception_fields.parent[1])
    end)

    it("more than 20 target feeds is a 400; an unconfigured group is 400 code 6", function()
      local feeds = {}
      for i = 1, 21 do feeds[i] = "user:f" .. i end
      bad(cjson.encode({ kind = "k", user_id = "val", activity_id = "a", target_feeds = feeds }), "target_feeds")
      local st, b, raw = api:call("POST", "reaction/", { body = cjson.encode({ kind = "k", user_id = "val",
        activity_id = "a", target_feeds = { "flat:x" } }) })
      expect_error(400, 6, st, b, raw)
      assert.are.equal("FeedConfigException", b.exception)
    end)
  end)

  describe("children", function()
    it("counts direct children by kind and holds the 10 newest across kinds, grouped, newest first", function()
      local aid = activity("pam")
      local top = react({ kind = "comment", activity_id = aid, user_id = "pam" })
      local made = {}
      for i = 1, 12 do
        made[i] = react({ kind = (i % 3 == 0) and "like" or "reply", parent = top.id, user_id = "u" .. i,
          data = { i = i } })
        assert.are.equal(aid, made[i].activity_id)
        assert.are.equal(top.id, made[i].parent)
      end
      local got = call("GET", "reaction/" .. top.id .. "/")
      assert.are.same({ reply = 8, like = 4 }, got.children_counts)
      -- the 10 newest are 12..3; grouped by kind, each newest first
      local want = { like = {}, reply = {} }
      for i = 12, 3, -1 do
        local k = (i % 3 == 0) and "like" or "reply"
        want[k][#want[k] + 1] = made[i].id
      end
      local seen = { like = {}, reply = {} }
      for kind, list in pairs(got.latest_children) do
        for _, c in ipairs(list) do seen[kind][#seen[kind] + 1] = c.id end
      end
      assert.are.same(want, seen)
      -- a child answered inside its parent equals the child read on its own
      local one = got.latest_children.like[1]
      assert.are.same(without_duration(call("GET", "reaction/" .. one.id .. "/")), one)
    end)

    it("nests grandchildren; a child's activity_id is the parent's even when another is sent", function()
      local aid = activity("gil")
      local top = react({ kind = "comment", activity_id = aid, user_id = "gil" })
      local child = react({ kind = "reply", parent = top.id, activity_id = "something-else", user_id = "gil" })
      assert.are.equal(aid, child.activity_id)
      local grand = react({ kind = "like", parent = child.id, user_id = "gil" })
      local got = call("GET", "reaction/" .. top.id .. "/")
      assert.are.equal(grand.id, got.latest_children.reply[1].latest_children.like[1].id)
      assert.are.same({ like = 1 }, got.latest_children.reply[1].children_counts)
      -- a hard delete of the child takes the grandchild with it
      call("DELETE", "reaction/" .. child.id .. "/")
      local st = api:call("GET", "reaction/" .. grand.id .. "/")
      assert.are.equal(404, st)
      got = call("GET", "reaction/" .. top.id .. "/")
      assert.are.same({ reply = 0 }, got.children_counts)
      assert.are.same({}, got.latest_children)
    end)
  end)

  describe("soft delete and restore", function()
    it("GET shows deleted_at; filters and counts leave it out until restored", function()
      local aid = activity("sof")
      local top = react({ kind = "comment", activity_id = aid, user_id = "sof" })
      local child = react({ kind = "like", parent = top.id, user_id = "sof" })
      local d, st = call("DELETE", "reaction/" .. child.id .. "/", { query = "soft=true" })
      assert.are.equal(200, st)
      assert.are.equal("duration", keys(d))
      local got = call("GET", "reaction/" .. child.id .. "/")
      assert.matches("^%d%d%d%d%-.*Z$", got.deleted_at)
      got.duration = nil
      assert.are.equal((KEYS:gsub("data,", "data,deleted_at,")), keys(got))
      assert.are.same({}, call("GET", "reaction/reaction_id/" .. top.id .. "/").results)
      assert.are.same({ like = 0 }, call("GET", "reaction/" .. top.id .. "/").children_counts)
      assert.are.same({}, call("GET", "reaction/get_many/", { query = "ids=" .. child.id }).reactions)
      assert.are.equal(child.id, call("GET", "reaction/get_many/", { query = "ids=" .. child.id
        .. "&include_deleted=true" }).reactions[1].id)

      local r, rst = call("PUT", "reaction/" .. child.id .. "/restore/")
      assert.are.equal(200, rst)
      assert.are.equal("duration", keys(r))
      got = call("GET", "reaction/" .. child.id .. "/")
      assert.is_nil(got.deleted_at)
      assert.are.equal(child.id, call("GET", "reaction/reaction_id/" .. top.id .. "/").results[1].id)
      assert.are.same({ like = 1 }, call("GET", "reaction/" .. top.id .. "/").children_counts)
    end)

    it("restore of a live, unknown or hard-deleted reaction is 404", function()
      local r = react({ kind = "like", activity_id = activity("res"), user_id = "res" })
      local st, b, raw = api:call("PUT", "reaction/" .. r.id .. "/restore/")
      expect_error(404, 16, st, b, raw)
      st, b, raw = api:call("PUT", "reaction/never/restore/")
      expect_error(404, 16, st, b, raw)
      call("DELETE", "reaction/" .. r.id .. "/")
      st = api:call("PUT", "reaction/" .. r.id .. "/restore/")
      assert.are.equal(404, st)
    end)
  end)

  describe("filter", function()
    local aid, made
    setup(function()
      aid = activity("fil")
      made = {}
      for i = 1, 7 do
        made[i] = without_duration(react({ kind = (i % 2 == 1) and "like" or "comment", activity_id = aid,
          user_id = (i <= 4) and "fa" or "fb", data = { i = i } }))
      end
      -- a child is not listed by the activity lookup
      react({ kind = "like", parent = made[1].id, user_id = "fa" })
    end)

    local function ids(list)
      local out = {}
      for i, r in ipairs(list) do out[i] = r.id end
      return out
    end

    local function range(a, b, step)
      local out = {}
      for i = a, b, step do out[#out + 1] = made[i].id end
      return out
    end

    it("lists top-level reactions of an activity newest first; the default limit is 10", function()
      local b = call("GET", "reaction/activity_id/" .. aid .. "/")
      assert.are.equal("duration,next,results", keys(b))
      assert.are.same(range(7, 1, -1), ids(b.results))
      assert.are.equal("", b.next)
      -- the results reproduce the add responses (made[1] has a child now)
      assert.are.same(made[7], b.results[1])
    end)

    it("pages newest first with id_lt and next, and oldest first with id_gt", function()
      local got, query = {}, "limit=3"
      for _ = 1, 10 do
        local b = call("GET", "reaction/activity_id/" .. aid .. "/", { query = query })
        for _, r in ipairs(b.results) do
          got[#got + 1] = r.id
          -- each page reproduces the add responses (the first reaction has a child since)
          if r.id ~= made[1].id then assert.are.same(made[8 - #got], r) end
        end
        if b.next == "" then break end
        assert.matches("^/api/v1%.0/reaction/activity_id/" .. aid:gsub("%-", "%%-") .. "/%?id_lt=", b.next)
        query = b.next:match("%?(.*)$")
      end
      assert.are.same(range(7, 1, -1), got)

      got, query = {}, "limit=2&id_gt=" .. made[1].id
      for _ = 1, 10 do
        local b = call("GET", "reaction/activity_id/" .. aid .. "/", { query = query })
        for _, r in ipairs(b.results) do
          got[#got + 1] = r.id
          assert.are.same(made[#got + 1], r)
        end
        if b.next == "" then break end
        assert.matches("id_gt=", b.next)
        query = b.next:match("%?(.*)$")
      end
      assert.are.same(range(2, 7, 1), got)
      assert.are.same(range(3, 5, 1), ids(call("GET", "reaction/activity_id/" .. aid .. "/",
        { query = "limit=3&id_gte=" .. made[3].id }).results))
      assert.are.same(range(5, 3, -1), ids(call("GET", "reaction/activity_id/" .. aid .. "/",
        { query = "limit=3&id_lte=" .. made[5].id }).results))
    end)

    it("takes the kind as a path segment and ignores it as a query parameter", function()
      assert.are.same(range(7, 1, -2), ids(call("GET", "reaction/activity_id/" .. aid .. "/like/").results))
      assert.are.same(range(7, 1, -1), ids(call("GET", "reaction/activity_id/" .. aid .. "/",
        { query = "kind=like" }).results))
    end)

    it("looks up by user and by parent reaction; filter_user_id narrows", function()
      local fb = ids(call("GET", "reaction/user_id/fb/").results)
      assert.are.same(range(7, 5, -1), fb)
      assert.are.same({ made[6].id }, ids(call("GET", "reaction/user_id/fb/comment/").results))
      assert.are.equal(1, #call("GET", "reaction/reaction_id/" .. made[1].id .. "/").results)
      assert.are.same(range(4, 1, -1), ids(call("GET", "reaction/activity_id/" .. aid .. "/",
        { query = "filter_user_id=fa" }).results))
    end)

    it("with_activity_data adds the activity, enriched, with the four reaction keys", function()
      local b = call("GET", "reaction/activity_id/" .. aid .. "/", { query = "limit=1&with_activity_data=true" })
      assert.are.equal("activity,duration,next,results", keys(b))
      assert.are.equal(aid, b.activity.id)
      assert.are.same({ like = 4, comment = 3 }, b.activity.reaction_counts)
      assert.is_table(b.activity.own_reactions)
      assert.is_table(b.activity.latest_reactions)
      assert.is_table(b.activity.latest_reactions_extra)
      assert.are.equal("ReferenceNotFound", b.activity.actor.error)
      assert.matches("with_activity_data=true", b.next)
    end)

    it("gives 10 by default and a next page after them", function()
      local many = activity("fil10")
      for i = 1, 12 do react({ kind = "like", activity_id = many, user_id = "m" .. i }) end
      local b = call("GET", "reaction/activity_id/" .. many .. "/")
      assert.are.equal(10, #b.results)
      assert.matches("limit=10", b.next)
      assert.are.equal(2, #call("GET", "reaction/activity_id/" .. many .. "/",
        { query = b.next:match("%?(.*)$") }).results)
    end)

    it("reads a limit above 25 as 25; below 1 or not a whole number is 400", function()
      local many = activity("fil30")
      for i = 1, 27 do react({ kind = "like", activity_id = many, user_id = "l" .. i }) end
      for _, limit in ipairs({ "26", "100", "300" }) do
        local b = call("GET", "reaction/activity_id/" .. many .. "/", { query = "limit=" .. limit })
        assert.are.equal(25, #b.results, limit)
        assert.matches("limit=25", b.next)
      end
      assert.are.equal(7, #call("GET", "reaction/activity_id/" .. aid .. "/", { query = "limit=25" }).results)
      for _, limit in ipairs({ "0", "-1", "2.5", "x" }) do
        local st, b, raw = api:call("GET", "reaction/activity_id/" .. aid .. "/", { query = "limit=" .. limit })
        expect_error(400, 4, st, b, raw)
        assert.is_table(b.exception_fields.limit, limit)
      end
    end)

    -- µs since the epoch of a reaction's created_at ("2026-11-28T10:00:00.123456Z")
    local function created_us(r)
      local y, mo, d, h, mi, sec, frac = r.created_at:match("^(%d+)%-(%d+)%-(%d+)T(%d+):(%d+):(%d+)%.(%d+)Z$")
      y, mo = tonumber(y), tonumber(mo)
      -- days from civil (proleptic Gregorian), so no local time zone is involved
      if mo <= 2 then y = y - 1 end
      local era = y // 400
      local yoe = y - era * 400
      local doy = (153 * (mo + (mo > 2 and -3 or 9)) + 2) // 5 + tonumber(d) - 1
      local days = era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468
      return ((days * 24 + tonumber(h)) * 60 + tonumber(mi)) * 60 * 1000000 + tonumber(sec) * 1000000
        + tonumber(frac)
    end

    -- a version-1 UUID carrying the time us (+ tenths of a µs), as the service's ids do
    local function v1_at(us, tenths)
      local t = us * 10 + (tenths or 0) + 0x01B21DD213814000
      return string.format("%08x-%04x-%04x-8080-%012x", t & 0xffffffff, (t >> 32) & 0xffff,
        0x1000 | ((t >> 48) & 0x0fff), 0x123456789abc)
    end

    it("reads a cursor naming no reaction as the time inside its version-1 UUID", function()
      local t = {}
      for i = 1, 7 do t[i] = created_us(made[i]) end
      assert.is_true(t[3] < t[4] and t[4] < t[5], "creation times must grow")
      local path = "reaction/activity_id/" .. aid .. "/"
      local function got(query) return ids(call("GET", path, { query = query }).results) end
      -- exactly at made[4]'s time: lt leaves it out, lte keeps it; gt / gte likewise, oldest first
      assert.are.same(range(3, 1, -1), got("id_lt=" .. v1_at(t[4])))
      assert.are.same(range(4, 1, -1), got("id_lte=" .. v1_at(t[4])))
      assert.are.same(range(5, 7, 1), got("id_gt=" .. v1_at(t[4])))
      assert.are.same(range(4, 7, 1), got("id_gte=" .. v1_at(t[4])))
      -- a tenth of a microsecond after it: made[4] is before the cursor
      assert.are.same(range(4, 1, -1), got("id_lt=" .. v1_at(t[4], 1)))
      assert.are.same(range(5, 7, 1), got("id_gte=" .. v1_at(t[4], 1)))
      -- upper case, and paging on from such a cursor with the reaction ids of next
      local b = call("GET", path, { query = "limit=2&id_lt=" .. v1_at(t[6]):upper() })
      assert.are.same(range(5, 4, -1), ids(b.results))
      assert.are.same(range(3, 2, -1), got(b.next:match("%?(.*)$")))
      assert.are.same({}, got("id_lt=" .. v1_at(t[1])))
    end)

    it("answers the official Python suite's filters by a random id with empty results", function()
      local random = "87a9eec0-fd5f-11e8-8080-80013fed2f5b"
      local b = call("GET", "reaction/reaction_id/" .. random .. "/like/", { query = "id_lte=" .. random })
      assert.are.same({}, b.results)
      assert.are.equal("", b.next)
      assert.are.same({}, call("GET", "reaction/activity_id/" .. random .. "/",
        { query = "id_lte=" .. random }).results)
      -- the user's reactions from before 2018-12-11 (none)
      assert.are.same({}, call("GET", "reaction/user_id/fa/", { query = "id_lte=" .. random }).results)
      -- unknown lookups without a cursor
      assert.are.same({}, call("GET", "reaction/reaction_id/" .. random .. "/").results)
      assert.are.same({}, call("GET", "reaction/activity_id/no-such-activity/").results)
    end)

    it("refuses a cursor that is no UUID; a UUID without a time that names no reaction is an empty page", function()
      for _, cursor in ipairs({ "id_lt", "id_lte", "id_gt", "id_gte" }) do
        local st, b, raw = api:call("GET", "reaction/activity_id/" .. aid .. "/", { query = cursor .. "=nope" })
        expect_error(400, 4, st, b, raw)
        assert.is_table(b.exception_fields[cursor])
      end
      -- ids made here are version 4: once the reaction is gone its id carries no time
      local gone = react({ kind = "like", activity_id = activity("gone"), user_id = "g" })
      call("DELETE", "reaction/" .. gone.id .. "/")
      for _, cursor in ipairs({ "id_lt", "id_lte", "id_gt", "id_gte" }) do
        local page = call("GET", "reaction/activity_id/" .. aid .. "/", { query = cursor .. "=" .. gone.id })
        assert.are.same({}, page.results)
        assert.are.equal("", page.next)
      end
      -- a soft-deleted reaction still has its place
      local soft = react({ kind = "like", activity_id = aid, user_id = "g" })
      call("DELETE", "reaction/" .. soft.id .. "/", { query = "soft=true" })
      assert.are.same(range(7, 1, -1), ids(call("GET", "reaction/activity_id/" .. aid .. "/",
        { query = "id_lt=" .. soft.id }).results))
    end)
  end)

  describe("routes", function()
    it("redirects slash-less paths and answers 405 with Allow for other methods", function()
      local st, _, _, h = api:call("GET", "reaction/some-id")
      assert.are.equal(301, st)
      assert.matches("/api/v1%.0/reaction/some%-id/%?", h.location)
      local b, raw
      st, b, raw, h = api:call("POST", "reaction/some-id/", { body = "{}" })
      expect_error(405, 1, st, b, raw)
      assert.are.equal("GET, PUT, DELETE", h.allow)
      st, _, _, h = api:call("GET", "reaction/")
      assert.are.equal(405, st)
      assert.are.equal("POST", h.allow)
      st, _, _, h = api:call("GET", "reaction/some-id/restore/")
      assert.are.equal(405, st)
      assert.are.equal("PUT", h.allow)
      st = api:call("GET", "reaction/other_lookup/x/")
      assert.are.equal(404, st)
    end)
  end)

  describe("get_many", function()
    it("answers the known ids in request order, unknown left out", function()
      local aid = activity("gm")
      local a = react({ kind = "like", activity_id = aid, user_id = "gm" })
      local b = react({ kind = "like", activity_id = aid, user_id = "gm" })
      local got = call("GET", "reaction/get_many/", { query = "ids=" .. b.id .. ",nope," .. a.id })
      assert.are.equal("duration,reactions", keys(got))
      assert.are.same({ b.id, a.id }, { got.reactions[1].id, got.reactions[2].id })
      assert.are.equal(2, #got.reactions)
      local st, e, raw = api:call("GET", "reaction/get_many/")
      expect_error(400, 4, st, e, raw)
    end)
  end)

  describe("tokens", function()
    local function scope(resource, action, feed_id)
      return api:token('{"resource":"' .. resource .. '","action":"' .. action .. '","feed_id":"' .. feed_id .. '"}')
    end

    it("accept resource reactions with the method's action and feed_id *", function()
      local aid = activity("tok")
      local body = cjson.encode({ kind = "like", activity_id = aid, user_id = "tok" })
      local st, r = api:call("POST", "reaction/", { body = body, token = scope("reactions", "write", "*") })
      assert.are.equal(201, st)
      assert.are.equal(200, (api:call("GET", "reaction/" .. r.id .. "/", { token = scope("reactions", "read", "*") })))
      assert.are.equal(200, (api:call("GET", "reaction/" .. r.id .. "/", { token = scope("reactions", "*", "*") })))
      assert.are.equal(403, (api:call("GET", "reaction/" .. r.id .. "/", { token = scope("reactions", "write", "*") })))
      assert.are.equal(403, (api:call("POST", "reaction/", { body = body, token = scope("feed", "*", "*") })))
      assert.are.equal(403, (api:call("POST", "reaction/", { body = body, token = scope("reactions", "read", "*") })))
      assert.are.equal(403, (api:call("DELETE", "reaction/" .. r.id .. "/",
        { token = scope("reactions", "write", "*") })))
      assert.are.equal(403, (api:call("GET", "reaction/" .. r.id .. "/",
        { token = scope("reactions", "read", "usertok") })))
      assert.are.equal(200, (api:call("DELETE", "reaction/" .. r.id .. "/",
        { token = scope("reactions", "delete", "*") })))
    end)

    it("a user token fills user_id, may not name another user, and changes only its own", function()
      local aid = activity("ut")
      local mine, st = react({ kind = "like", activity_id = aid }, { token = user_token("ut") })
      assert.are.equal(201, st)
      assert.are.equal("ut", mine.user_id)
      local same = react({ kind = "like", activity_id = aid, user_id = "ut" }, { token = user_token("ut") })
      assert.are.equal("ut", same.user_id)
      local est, eb, raw = api:call("POST", "reaction/", { token = user_token("ut"),
        body = cjson.encode({ kind = "like", activity_id = aid, user_id = "other" }) })
      expect_error(403, 17, est, eb, raw)

      local theirs = react({ kind = "like", activity_id = aid, user_id = "other" })
      local other = user_token("ut")
      assert.are.equal(200, (api:call("GET", "reaction/" .. theirs.id .. "/", { token = other })))
      assert.are.equal(200, (api:call("GET", "reaction/activity_id/" .. aid .. "/", { token = other })))
      assert.are.equal(403, (api:call("PUT", "reaction/" .. theirs.id .. "/", { token = other, body = '{"data":{}}' })))
      assert.are.equal(403, (api:call("DELETE", "reaction/" .. theirs.id .. "/", { token = other })))
      assert.are.equal(201, (api:call("PUT", "reaction/" .. mine.id .. "/", { token = other, body = '{"data":{}}' })))
      assert.are.equal(200, (api:call("DELETE", "reaction/" .. mine.id .. "/", { token = other, query = "soft=true" })))
      assert.are.equal(200, (api:call("PUT", "reaction/" .. mine.id .. "/restore/", { token = other })))
      assert.are.equal(200, (api:call("DELETE", "reaction/" .. mine.id .. "/", { token = other })))
      assert.are.equal(200, (api:call("GET", "reaction/" .. theirs.id .. "/")))
    end)

    it("user tokens send target_feeds to their own feeds and others' notification feeds only", function()
      local aid = activity("tf")
      local t = user_token("tf")
      local function st(feeds)
        return (api:call("POST", "reaction/", { token = t, body = cjson.encode({ kind = "like", activity_id = aid,
          target_feeds = feeds }) }))
      end
      assert.are.equal(201, st({ "user:tf", "timeline:tf", "notification:someone" }))
      assert.are.equal(403, st({ "user:someone" }))
      assert.are.equal(403, st({ "user:tf", "timeline:someone" }))
    end)
  end)

  it("logged no unexpected Lua errors", function()
    local log = s:error_log()
    assert.is_nil(log:find("unexpected error", 1, true), log)
    assert.is_nil(log:find("lua entry thread aborted", 1, true), log)
    assert.is_nil(log:find("[error]", 1, true), log)
  end)
end)
