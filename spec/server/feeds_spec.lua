-- Flat feeds of the local server: add, add many, read and its paging, ids and times,
-- validation, uniqueness, removal and activities by id (stream-feeds-api.md sections 1
-- and 3, checklist items 1-8 and 15 of section 7).

local server = require "helpers.server"
local http = require "helpers.http"
local cjson = require "cjson"
local shape = require "helpers.shape"
local keys, without_duration, ids_of = shape.keys, shape.without_duration, shape.ids_of

local UUID = "^%x%x%x%x%x%x%x%x%-%x%x%x%x%-1%x%x%x%-%x%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$"
local TIME = "^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%d%d%d%d$"

describe("local server flat feeds", function()
  local s, api

  setup(function()
    s = server.start()
    api = http.api(s)
  end)

  teardown(function()
    if s then s:stop() end
  end)

  local n = 0
  -- a fresh feed id for each test
  local function feed()
    n = n + 1
    return "feed/user/f" .. n .. "/"
  end

  local function add(path, body)
    local st, b, raw = api:call("POST", path, { body = body })
    assert.are.equal(201, st, raw)
    return b
  end

  local function read(path, query)
    local st, b, raw = api:call("GET", path, { query = query })
    assert.are.equal(200, st, raw)
    return b
  end

  local function act(i, extra)
    return '{"actor":"SU:a","verb":"post","object":"o:' .. i .. '"' .. (extra or "") .. "}"
  end

  describe("add", function()
    it("returns 201 with a time-based id; a read with limit=1 returns it first", function()
      local f = feed()
      add(f, act(1))
      local a = add(f, act(2))
      assert.matches(UUID, a.id)
      assert.matches("^%d+%.%d%dms$", a.duration)
      local page = read(f, "limit=1")
      assert.are.same({ a.id }, ids_of(page.results))
    end)

    it("answers exactly the stored activity's keys, and the read has exactly results, next, duration", function()
      local f = feed()
      local a = add(f, act(1))
      assert.are.equal("actor,duration,foreign_id,id,object,origin,target,time,verb", keys(a))
      assert.are.equal("", a.target)
      assert.are.equal("", a.foreign_id)
      assert.are.equal(cjson.null, a.origin)
      assert.matches(TIME, a.time)
      local page = read(f)
      assert.are.equal("duration,next,results", keys(page))
      assert.are.equal("actor,foreign_id,id,object,origin,target,time,verb", keys(page.results[1]))
    end)

    it("keeps the key order id, foreign_id, time, actor, verb, target, object, origin, to, custom", function()
      local f = feed()
      local _, _, raw = api:call("POST", f, { body = '{"zz":1,"object":"o","to":["user:other1"],'
        .. '"verb":"v","actor":"a","aa":2}' })
      local order = {}
      for k in raw:gmatch('"([%w_]+)":') do order[#order + 1] = k end
      assert.are.equal("id,foreign_id,time,actor,verb,target,object,origin,to,zz,aa,duration",
        table.concat(order, ","))
    end)

    it("equals, minus duration, what activities/?ids= returns for it", function()
      local f = feed()
      local a = add(f, act(1, ',"foreign_id":"x:1","time":"2026-01-02T03:04:05.678901","extra":{"k":[1,2]}'))
      local st, b = api:call("GET", "activities/", { query = "ids=" .. a.id })
      assert.are.equal(200, st)
      assert.are.same({ without_duration(a) }, b.results)
      assert.are.equal("duration,results", keys(b))
    end)

    it("derives the id from foreign_id and time as the official clients do (test vector)", function()
      local a = add(feed(), act(1, ',"foreign_id":"6621934","time":"2016-01-15T12:54:42"'))
      assert.are.equal("24f9d500-bb87-11e5-8080-80012ce3cc51", a.id)
      assert.are.equal("2016-01-15T12:54:42.000000", a.time)
    end)

    it("keeps custom fields (lists, objects, date strings) unchanged; a numeric object comes back a string", function()
      local f = feed()
      local a = add(f, '{"actor":"a","verb":"v","object":42,"list":[1,"two",{"three":3}],'
        .. '"obj":{"nested":{"deep":true},"n":null},"date":"2026-11-28T10:00:00Z","num":1.5}')
      assert.are.equal("42", a.object)
      local got = read(f).results[1]
      assert.are.equal("42", got.object)
      assert.are.same({ 1, "two", { three = 3 } }, got.list)
      assert.are.same({ nested = { deep = true }, n = cjson.null }, got.obj)
      assert.are.equal("2026-11-28T10:00:00Z", got.date)
      assert.are.equal(1.5, got.num)
    end)

    it("keeps number text exactly", function()
      local f = feed()
      local _, _, raw = api:call("POST", f, { body = '{"actor":"a","verb":"v","object":1.50,"big":9007199254740993}' })
      assert.matches('"object":"1.50"', raw, 1, true)
      assert.matches('"big":9007199254740993', raw, 1, true)
    end)

    it("accepts time with Z or an offset and returns it in UTC with six digits", function()
      local f = feed()
      assert.are.equal("2026-11-28T05:00:00.123456", add(f, act(1, ',"time":"2026-11-28T10:00:00.123456+05:00"')).time)
      assert.are.equal("2026-11-28T11:30:00.000000", add(f, act(2, ',"time":"2026-11-28T10:00:00-0130"')).time)
      assert.are.equal("2026-11-28T10:00:00.123000", add(f, act(3, ',"time":"2026-11-28T10:00:00.123Z"')).time)
      assert.are.equal("2026-11-28T10:00:00.000000", add(f, act(4, ',"time":"2026-11-28T10:00:00"')).time)
    end)

    it("keeps times before 1970 and far ahead exactly", function()
      local f = feed()
      assert.are.equal("1969-12-31T23:59:59.999999", add(f, act(1, ',"time":"1969-12-31T23:59:59.999999"')).time)
      assert.are.equal("1700-03-01T00:00:00.000001", add(f, act(2, ',"time":"1700-03-01T00:00:00.000001"')).time)
      assert.are.equal("2199-12-31T23:59:59.999999", add(f, act(3, ',"time":"2199-12-31T23:59:59.999999"')).time)
      local got = read(f).results
      assert.are.same({ "o:3", "o:1", "o:2" }, { got[1].object, got[2].object, got[3].object })
    end)

    it("a missing time means now", function()
      local before = os.date("!%Y-%m-%dT%H:%M:%S", os.time() - 5)
      local a = add(feed(), act(1))
      local after = os.date("!%Y-%m-%dT%H:%M:%S", os.time() + 5)
      assert.is_true(a.time >= before and a.time <= after, a.time)
    end)

    it("keeps `to` in the stored activity", function()
      local a = add(feed(), act(1, ',"to":["user:t1","timeline:t2"]'))
      assert.are.same({ "user:t1", "timeline:t2" }, a.to)
    end)
  end)

  describe("add many", function()
    it("returns the stored activities in request order; the feed reads them newest first", function()
      local f = feed()
      local body = '{"activities":[' .. act(1) .. "," .. act(2) .. "," .. act(3) .. "]}"
      local st, b = api:call("POST", f, { body = body })
      assert.are.equal(201, st)
      assert.are.equal("activities,duration", keys(b))
      assert.are.equal(3, #b.activities)
      for i, a in ipairs(b.activities) do
        assert.are.equal("o:" .. i, a.object)
        assert.matches(UUID, a.id)
      end
      local page = read(f)
      assert.are.same({ b.activities[3].id, b.activities[2].id, b.activities[1].id }, ids_of(page.results))
    end)

    it("writes nothing when one entry is invalid, and names it", function()
      local f = feed()
      local st, b = api:call("POST", f, { body = '{"activities":[' .. act(1) .. ',{"actor":"a","verb":"v"}]}' })
      assert.are.equal(400, st)
      assert.are.equal(4, b.code)
      assert.is_table(b.exception_fields["activities[1].object"])
      assert.are.same({}, read(f).results)
    end)
  end)

  describe("read", function()
    local f, a = nil, {}

    setup(function()
      f = feed()
      for i = 1, 3 do a[i] = add(f, act(i)) end
    end)

    it("limit=2 gives [a3, a2]; limit=2&offset=1 starts at a2; id_lt=a2 gives a1", function()
      assert.are.same({ a[3].id, a[2].id }, ids_of(read(f, "limit=2").results))
      assert.are.same({ a[2].id, a[1].id }, ids_of(read(f, "limit=2&offset=1").results))
      assert.are.same({ a[1].id }, ids_of(read(f, "id_lt=" .. a[2].id).results))
    end)

    it("id_lte, id_gt, id_gte bound the page; id_lte=X&id_gte=X&limit=1 reads one", function()
      assert.are.same({ a[2].id, a[1].id }, ids_of(read(f, "id_lte=" .. a[2].id).results))
      assert.are.same({ a[3].id }, ids_of(read(f, "id_gt=" .. a[2].id).results))
      assert.are.same({ a[3].id, a[2].id }, ids_of(read(f, "id_gte=" .. a[2].id).results))
      assert.are.same({ a[2].id }, ids_of(read(f, "id_lte=" .. a[2].id .. "&id_gte=" .. a[2].id .. "&limit=1").results))
    end)

    it("next leads to the following page and is \"\" after the last", function()
      local p1 = read(f, "limit=2")
      assert.are.equal("/api/v1.0/" .. f .. "?id_lt=" .. a[2].id .. "&limit=2", p1.next)
      local url = s.url .. p1.next .. "&api_key=" .. s.api_key
      local st, body = http.request("GET", url, { headers = api:headers() })
      assert.are.equal(200, st)
      local p2 = cjson.decode(body)
      assert.are.same({ a[1].id }, ids_of(p2.results))
      assert.are.equal("", p2.next)
      assert.are.equal("", read(f, "limit=3").next)
    end)

    it("defaults to 25 and refuses a limit over 100 or a bad cursor with 400 code 4", function()
      local g = feed()
      local list = {}
      for i = 1, 30 do list[i] = act(i) end
      add(g, '{"activities":[' .. table.concat(list, ",") .. "]}")
      local page = read(g)
      assert.are.equal(25, #page.results)
      assert.matches("limit=25", page.next)
      local st, b = api:call("GET", g, { query = "limit=101" })
      assert.are.equal(400, st)
      assert.are.equal(4, b.code)
      assert.is_table(b.exception_fields.limit)
      st, b = api:call("GET", g, { query = "id_lt=not-an-id" })
      assert.are.equal(400, st)
      assert.is_table(b.exception_fields.id_lt)
    end)

    it("orders by the time inside the id, not by the id text; a backdated activity sorts after newer ones", function()
      local g = feed()
      -- 97 s apart: the low 32 bits of the time (first in the id text) wrap every ~429 s
      local times = {}
      for i = 1, 12 do
        local sec = 1780000000 + i * 97
        times[i] = os.date("!%Y-%m-%dT%H:%M:%S", sec)
        add(g, act(i, ',"time":"' .. times[i] .. '"'))
      end
      local back = add(g, act(99, ',"time":"2001-01-01T00:00:00"'))
      local got = read(g, "limit=13").results
      local inverted = 0
      for i = 1, 12 do
        assert.are.equal(times[13 - i] .. ".000000", got[i].time)
        if i > 1 and got[i].id > got[i - 1].id then inverted = inverted + 1 end
      end
      assert.is_true(inverted > 0, "the id text order should differ from time order somewhere")
      assert.are.equal(back.id, got[13].id)
    end)

    it("an empty feed reads []", function()
      local page = read(feed())
      assert.are.same({}, page.results)
      assert.are.equal("", page.next)
    end)
  end)

  describe("uniqueness", function()
    it("same foreign_id and time replaces: one activity, the later fields", function()
      local f = feed()
      local a = add(f, act(1, ',"foreign_id":"fid:1","time":"2026-01-01T00:00:00","v":1'))
      local b = add(f, act(1, ',"foreign_id":"fid:1","time":"2026-01-01T00:00:00","v":2'))
      assert.are.equal(a.id, b.id)
      local page = read(f)
      assert.are.equal(1, #page.results)
      assert.are.equal(2, page.results[1].v)
    end)

    it("same foreign_id at another time is another activity", function()
      local f = feed()
      add(f, act(1, ',"foreign_id":"fid:2","time":"2026-01-01T00:00:00"'))
      add(f, act(1, ',"foreign_id":"fid:2","time":"2026-01-01T00:00:01"'))
      assert.are.equal(2, #read(f).results)
    end)

    it("same data and time without foreign_id is stored once", function()
      local f = feed()
      local a = add(f, act(1, ',"time":"2026-01-01T00:00:00"'))
      local b = add(f, act(1, ',"time":"2026-01-01T00:00:00"'))
      assert.are.equal(a.id, b.id)
      assert.are.equal(1, #read(f).results)
      add(f, act(2, ',"time":"2026-01-01T00:00:00"'))
      assert.are.equal(2, #read(f).results)
    end)
  end)

  describe("remove", function()
    it("by id and by foreign id empties the feed", function()
      local f = feed()
      local a = add(f, act(1))
      add(f, act(2, ',"foreign_id":"post:9"'))
      local st, b = api:call("DELETE", f .. a.id .. "/")
      assert.are.equal(200, st)
      assert.are.equal("duration,removed", keys(b))
      assert.are.equal(a.id, b.removed)
      st, b = api:call("DELETE", f .. "post:9/", { query = "foreign_id=1" })
      assert.are.equal(200, st)
      assert.are.equal("post:9", b.removed)
      assert.are.same({}, read(f).results)
      local _, got = api:call("GET", "activities/", { query = "ids=" .. a.id })
      assert.are.same({}, got.results)
    end)

    it("of an unknown id or foreign id is silent (200, same body)", function()
      local f = feed()
      local st, b = api:call("DELETE", f .. "24f9d500-bb87-11e5-8080-80012ce3cc51/")
      assert.are.equal(200, st)
      assert.are.equal("24f9d500-bb87-11e5-8080-80012ce3cc51", b.removed)
      st, b = api:call("DELETE", f .. "nothing:here/", { query = "foreign_id=true" })
      assert.are.equal(200, st)
      assert.are.equal("nothing:here", b.removed)
    end)
  end)

  describe("activities by id", function()
    it("finds by ids and by foreign_ids + timestamps, plain and enriched; unknown ids give []", function()
      local f = feed()
      local a = add(f, act(1, ',"foreign_id":"k:1","time":"2026-03-04T05:06:07.891"'))
      local b = add(f, act(2, ',"foreign_id":"k:2","time":"2026-03-04T05:06:08"'))
      local st, got = api:call("GET", "activities/", { query = "ids=" .. a.id .. "," .. b.id })
      assert.are.equal(200, st)
      assert.are.same({ a.id, b.id }, ids_of(got.results))
      st, got = api:call("GET", "activities/",
        { query = "foreign_ids=k:1,k:2&timestamps=2026-03-04T05:06:07.891000,2026-03-04T05:06:08" })
      assert.are.equal(200, st)
      assert.are.same({ a.id, b.id }, ids_of(got.results))
      st, got = api:call("GET", "enrich/activities/", { query = "ids=" .. a.id })
      assert.are.equal(200, st)
      assert.are.equal(a.id, got.results[1].id)
      st, got = api:call("GET", "activities/", { query = "ids=00000000-0000-1000-8000-000000000000" })
      assert.are.equal(200, st)
      assert.are.same({}, got.results)
    end)

    it("without ids or foreign_ids is 400 code 4", function()
      local st, b = api:call("GET", "activities/")
      assert.are.equal(400, st)
      assert.are.equal(4, b.code)
    end)
  end)

  describe("validation", function()
    local function refused(body, field)
      local f = feed()
      local st, b, raw = api:call("POST", f, { body = body })
      assert.are.equal(400, st, raw)
      assert.are.equal(4, b.code)
      assert.are.equal("InputException", b.exception)
      assert.is_table(b.exception_fields and b.exception_fields[field], raw)
      assert.are.same({}, read(f).results)
    end

    it("names a missing actor, verb or object; {} names actor", function()
      refused('{"verb":"v","object":"o"}', "actor")
      refused('{"actor":"a","object":"o"}', "verb")
      refused('{"actor":"a","verb":"v"}', "object")
      refused("{}", "actor")
    end)

    it("refuses `to` that is not a list, more than 100 targets, a bad time, a verb over 255 bytes", function()
      refused(act(1, ',"to":"user:x"'), "to")
      local many = {}
      for i = 1, 101 do many[i] = '"user:t' .. i .. '"' end
      refused(act(1, ',"to":[' .. table.concat(many, ",") .. "]"), "to")
      refused(act(1, ',"time":"yesterday"'), "time")
      refused(act(1, ',"time":"2026-02-30T00:00:00"'), "time")
      refused(act(1, ',"time":"2300-01-01T00:00:00"'), "time")
      refused(act(1, ',"time":"1699-12-31T23:59:59"'), "time")
      refused('{"actor":"a","object":"o","verb":"' .. string.rep("v", 256) .. '"}', "verb")
    end)

    it("refuses every reserved field; a reserved field sent as null is left out", function()
      for _, k in ipairs({ "id", "origin", "activity_id", "activity", "analytics", "extra_context",
        "is_read", "is_seen", "score", "site_id" }) do
        refused(act(1, ',"' .. k .. '":"x"'), k)
        refused(act(1, ',"' .. k .. '":0'), k)
      end
      local a = add(feed(), act(1, ',"id":null,"score":null,"origin":null'))
      assert.matches(UUID, a.id)
      assert.is_nil(a.score)
      assert.are.equal(cjson.null, a.origin)
    end)

    it("refuses an activity over 10 kB", function()
      refused(act(1, ',"pad":"' .. string.rep("x", 10300) .. '"'), "activity")
      add(feed(), act(1, ',"pad":"' .. string.rep("x", 9000) .. '"'))
    end)

    it("a feed group that is not configured is 400 code 6 FeedConfigException", function()
      for _, req in ipairs({ { "GET", "feed/flat/x/" }, { "POST", "feed/flat/x/", act(1) },
        { "POST", "feed/user/x/", act(1, ',"to":["flat:y"]') },
        { "POST", "feed/timeline/x/follows/", '{"target":"flat:y"}' } }) do
        local st, b = api:call(req[1], req[2], { body = req[3] })
        assert.are.equal(400, st)
        assert.are.equal(6, b.code)
        assert.are.equal("FeedConfigException", b.exception)
        assert.are.equal("The following feeds are not configured: 'flat'. ", b.detail:sub(1, 48))
      end
    end)

    it("a feed path without its trailing slash is 301; another method is 405 with Allow", function()
      local st, body, _, headers = api:call("POST", "feed/user/x", { body = act(1) })
      assert.are.equal(301, st)
      assert.are.equal(1, body.code)
      assert.matches("/api/v1%.0/feed/user/x/%?api_key=", headers["location"])
      st, _, _, headers = api:call("PUT", "feed/user/x/", { body = act(1) })
      assert.are.equal(405, st)
      assert.are.equal("GET, POST", headers["allow"])
      st, _, _, headers = api:call("POST", "enrich/feed/user/x/", { body = act(1) })
      assert.are.equal(405, st)
      assert.are.equal("GET", headers["allow"])
      st, _, _, headers = api:call("GET", "feed/user/x/some-id/")
      assert.are.equal(405, st)
      assert.are.equal("DELETE", headers["allow"])
      assert.are.same({}, read("feed/user/x/").results)
    end)

    it("a bad feed id in the path is 400 code 4", function()
      local st, b = api:call("GET", "feed/user/bad%20id/")
      assert.are.equal(400, st)
      assert.are.equal(4, b.code)
    end)
  end)

  it("logged no unexpected Lua errors", function()
    local log = s:error_log()
    assert.is_nil(log:find("unexpected error", 1, true), log)
    assert.is_nil(log:find("lua entry thread aborted", 1, true), log)
  end)
end)
