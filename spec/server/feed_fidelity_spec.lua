-- Fidelity of the local server's feeds to the wire contract (stream-feeds-api.md
-- sections 1-4 and 10, stream-api.md section 1): number actors, signed `to` entries,
-- ids derived from the content of activities without a foreign id, the order of
-- activities added within one millisecond and the cursors over them, an activity added
-- to two feeds (each feed a home of its own: removals, target updates and unfollows),
-- full updates of activities that do not exist, `stats/follow` without its slash, and
-- redirects whose Location is a path.
--
-- The expected ids are computed here, in Lua 5.3+ integers (MurmurHash3 x86 32 and the
-- UUID layout of section 3), independently of the server's LuaJIT code.

local server = require "helpers.server"
local http = require "helpers.http"
local shape = require "helpers.shape"
local cjson = require "cjson"
local ids_of = shape.ids_of

-- MurmurHash3 x86 32-bit, seed 0, as a signed int32
local function murmur3(s)
  local function rotl(x, r) return ((x << r) | (x >> (32 - r))) & 0xffffffff end
  local function mul(a, b) return (a * b) & 0xffffffff end
  local function scramble(k) return mul(rotl(mul(k, 0xcc9e2d51), 15), 0x1b873593) end
  local h, len = 0, #s
  local blocks = len - len % 4
  for i = 1, blocks, 4 do
    h = h ~ scramble((string.unpack("<I4", s, i)))
    h = (rotl(h, 13) * 5 + 0xe6546b64) & 0xffffffff
  end
  local k, r = 0, len % 4
  if r >= 3 then k = k ~ (s:byte(blocks + 3) << 16) end
  if r >= 2 then k = k ~ (s:byte(blocks + 2) << 8) end
  if r >= 1 then h = h ~ scramble(k ~ s:byte(blocks + 1)) end
  h = h ~ len
  h = mul(h ~ (h >> 16), 0x85ebca6b)
  h = mul(h ~ (h >> 13), 0xc2b2ae35)
  h = h ~ (h >> 16)
  if h >= 0x80000000 then h = h - 0x100000000 end
  return h
end

-- epoch milliseconds of "YYYY-MM-DDTHH:MM:SS[.ffffff]" (UTC)
local function epoch_ms(text)
  local y, mo, d, h, mi, s, frac = text:match("^(%d+)%-(%d+)%-(%d+)T(%d+):(%d+):(%d+)%.?(%d*)$")
  y, mo = tonumber(y), tonumber(mo)
  if mo <= 2 then y = y - 1 end
  local era = y // 400
  local yoe = y - era * 400
  local doy = (153 * ((mo + 9) % 12) + 2) // 5 + tonumber(d) - 1
  local days = era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468
  local ms = tonumber(((frac or "") .. "000"):sub(1, 3))
  return ((days * 24 + tonumber(h)) * 60 + tonumber(mi)) * 60000 + tonumber(s) * 1000 + ms
end

-- the id of section 3 for a key (foreign id or canonical JSON) and a time
local function expected_id(key, time)
  local t = epoch_ms(time) * 10000 + 122192928000000000
  local h = murmur3(key)
  local d = h > 0 and (h | 0x100000000) or -h
  d = d | 0x800000000000
  return string.format("%08x-%04x-%04x-8080-%012x", t & 0xffffffff, (t >> 32) & 0xffff,
    0x1000 | ((t >> 48) & 0x0fff), d & 0xffffffffffff)
end

describe("local server feed fidelity", function()
  local s, api

  setup(function()
    s = server.start()
    api = http.api(s)
  end)

  teardown(function()
    if s then s:stop() end
  end)

  -- feed: "user:x"
  local function add(feed, body)
    local st, b, raw = api:call("POST", "feed/" .. feed:gsub(":", "/") .. "/", { body = body })
    assert.are.equal(201, st, raw)
    return b
  end

  local function read(feed, query)
    local st, b, raw = api:call("GET", "feed/" .. feed .. "/", { query = query })
    assert.are.equal(200, st, raw)
    return b
  end

  it("computes the contract's test vector with this spec's own id code", function()
    assert.are.equal("24f9d500-bb87-11e5-8080-80012ce3cc51", expected_id("6621934", "2016-01-15T12:54:42"))
  end)

  describe("activity fields", function()
    it("stores a number actor as its decimal string, as it does a number object", function()
      local a = add("user:num", '{"actor":1,"verb":"v","object":2}')
      assert.are.equal("1", a.actor)
      assert.are.equal("2", a.object)
      assert.are.equal("1", read("user/num").results[1].actor)
      local st, b, raw = api:call("POST", "activity/", { body = '{"changes":[{"id":"' .. a.id
        .. '","set":{"actor":7}}]}' })
      assert.are.equal(201, st, raw)
      assert.are.equal("7", b.activities[1].actor)
    end)

    it("takes `to` entries carrying a token after a space, delivers to the feed and stores feed ids only", function()
      local a = add("user:signer", '{"actor":"a","verb":"v","object":"o",'
        .. '"to":["user:sig1 eyJhbGciOiJIUzI1NiJ9.e30.sig","timeline:sig2"]}')
      assert.are.same({ "user:sig1", "timeline:sig2" }, a.to)
      assert.are.same({ a.id }, ids_of(read("user/sig1").results))
      assert.are.same({ "user:sig1", "timeline:sig2" }, read("user/signer").results[1].to)
      local st, b, raw = api:call("POST", "feed/user/signer/", { body = '{"actor":"a","verb":"v","object":"o",'
        .. '"to":[" user:sig1"]}' })
      assert.are.equal(400, st, raw)
      assert.is_table(b.exception_fields.to)
    end)
  end)

  describe("ids without a foreign id", function()
    local ACT = '{"actor":"a","verb":"v","object":"o","time":"2026-03-01T10:00:00.000001","n":{"b":1,"a":[2]}}'

    it("are the foreign-id layout hashed over the canonical JSON (sorted keys without id, origin, to)", function()
      local a = add("user:canon", ACT)
      local canonical = '{"actor":"a","foreign_id":"","n":{"a":[2],"b":1},"object":"o","target":"",'
        .. '"time":"2026-03-01T10:00:00.000001","verb":"v"}'
      assert.are.equal(expected_id(canonical, "2026-03-01T10:00:00.000001"), a.id)
    end)

    it("are one id for identical adds to two feeds, and a feed following both holds it once", function()
      for _, f in ipairs({ "user:twin1", "user:twin2" }) do
        assert.are.equal(201, (api:call("POST", "feed/timeline/twins/follows/", { body = '{"target":"' .. f .. '"}' })))
      end
      local one = add("user:twin1", ACT)
      local two = add("user:twin2", (ACT:gsub("^{", '{"to":["user:twin3"],')))
      assert.are.equal(one.id, two.id)
      assert.are.same({ one.id }, ids_of(read("timeline/twins").results))
      assert.are.same({ one.id }, ids_of(read("user/twin2").results))
      assert.are.same({ one.id }, ids_of(read("user/twin3").results))
    end)

    it("differ when a field or the time differs", function()
      local base = add("user:diff", ACT)
      local other = add("user:diff", (ACT:gsub('"o"', '"p"')))
      local later = add("user:diff", (ACT:gsub("000001", "000002")))
      assert.are_not.equal(base.id, other.id)
      assert.are_not.equal(base.id, later.id)
      assert.are.equal(3, #read("user/diff").results)
    end)
  end)

  describe("an activity added to two feeds (one id, each feed a home of its own)", function()
    local function follow(feed, target)
      local st, _, raw = api:call("POST", "feed/" .. feed:gsub(":", "/") .. "/follows/",
        { body = '{"target":"' .. target .. '"}' })
      assert.are.equal(201, st, raw)
    end

    local function holds(feed)
      return ids_of(read(feed:gsub(":", "/")).results)
    end

    local function remove(feed, id, query)
      local st, _, raw = api:call("DELETE", "feed/" .. feed:gsub(":", "/") .. "/" .. id .. "/", { query = query })
      assert.are.equal(200, st, raw)
    end

    local function by_id(id)
      local _, b = api:call("GET", "activities/", { query = "ids=" .. id })
      return ids_of(b.results)
    end

    it("removing it from one feed takes only what that feed brought; from the last, everything", function()
      follow("timeline:hoa", "user:ha")
      follow("timeline:hob", "user:hb")
      follow("timeline:hboth", "user:ha")
      follow("timeline:hboth", "user:hb")
      follow("timeline:hfta", "user:hta")
      follow("timeline:hftb", "user:htb")
      local act = '{"actor":"a","verb":"v","object":"homes","time":"2026-06-01T10:00:00.000001"}'
      local one = add("user:ha", (act:gsub("^{", '{"to":["user:hta"],')))
      local two = add("user:hb", (act:gsub("^{", '{"to":["user:htb"],')))
      assert.are.equal(one.id, two.id)
      assert.are.equal("user:ha", read("timeline/hboth").results[1].origin)
      remove("user:ha", one.id)
      for _, f in ipairs({ "user:ha", "timeline:hoa", "user:hta", "timeline:hfta" }) do
        assert.are.same({}, holds(f), f)
      end
      for _, f in ipairs({ "user:hb", "timeline:hob", "user:htb", "timeline:hftb", "timeline:hboth" }) do
        assert.are.same({ one.id }, holds(f), f)
      end
      -- the feed following both keeps it, now from the source that still holds it
      assert.are.equal("user:hb", read("timeline/hboth").results[1].origin)
      assert.are.equal(cjson.null, read("user/hb").results[1].origin)
      assert.are.same({ one.id }, by_id(one.id))
      remove("user:hb", one.id)
      for _, f in ipairs({ "user:hb", "timeline:hob", "user:htb", "timeline:hftb", "timeline:hboth" }) do
        assert.are.same({}, holds(f), f)
      end
      assert.are.same({}, by_id(one.id))
    end)

    it("a feed that is a `to` target of one add keeps it when the other home goes", function()
      local act = '{"actor":"a","verb":"v","object":"homes","time":"2026-06-01T10:00:00.000002"}'
      local one = add("user:kb", (act:gsub("^{", '{"to":["user:ka"],')))
      add("user:ka", act)
      remove("user:kb", one.id)
      -- user:ka was added to directly: the removal from user:kb leaves it there
      assert.are.same({ one.id }, holds("user:ka"))
      assert.are.same({}, holds("user:kb"))
    end)

    it("a target update on the second feed finds it there and changes that feed's targets only", function()
      local act = '{"actor":"a","verb":"v","object":"homes","time":"2026-06-01T10:00:00.000003"}'
      local one = add("user:ga", (act:gsub("^{", '{"to":["user:gx"],')))
      add("user:gb", act)
      local st, b, raw = api:call("POST", "feed_targets/user/gb/activity_to_targets/",
        { body = '{"id":"' .. one.id .. '","new_targets":["user:gt"]}' })
      assert.are.equal(201, st, raw)
      assert.are.same({ "user:gt" }, b.added)
      assert.are.same({}, b.removed)
      assert.are.same({ one.id }, holds("user:gt"))
      -- user:ga's own target stays: the update was of user:gb's add
      assert.are.same({ one.id }, holds("user:gx"))
      st, b, raw = api:call("POST", "feed_targets/user/ga/activity_to_targets/",
        { body = '{"id":"' .. one.id .. '","removed_targets":["user:gx"]}' })
      assert.are.equal(201, st, raw)
      assert.are.same({ "user:gx" }, b.removed)
      assert.are.same({}, holds("user:gx"))
      assert.are.same({ one.id }, holds("user:gt"))
    end)

    it("remove by foreign_id is per feed as well", function()
      local act = '{"actor":"a","verb":"v","object":"o","foreign_id":"home:1","time":"2026-06-01T11:00:00"}'
      local one = add("user:fa", act)
      local two = add("user:fb", act)
      assert.are.equal(one.id, two.id)
      remove("user:fa", "home:1", "foreign_id=1")
      assert.are.same({}, holds("user:fa"))
      assert.are.same({ one.id }, holds("user:fb"))
      remove("user:fb", "home:1", "foreign_id=1")
      assert.are.same({}, by_id(one.id))
    end)

    it("a partial update changes the one activity in both feeds", function()
      local act = '{"actor":"a","verb":"v","object":"homes","time":"2026-06-01T10:00:00.000004"}'
      local one = add("user:pa", act)
      add("user:pb", act)
      local st, _, raw = api:call("POST", "activity/", { body = '{"changes":[{"id":"' .. one.id
        .. '","set":{"mood":"same"}}]}' })
      assert.are.equal(201, st, raw)
      assert.are.equal("same", read("user/pa").results[1].mood)
      assert.are.equal("same", read("user/pb").results[1].mood)
    end)

    it("an unfollow keeps what the feed still gets through another feed it follows", function()
      follow("timeline:uboth", "user:ua")
      follow("timeline:uboth", "user:ub")
      local act = '{"actor":"a","verb":"v","object":"homes","time":"2026-06-01T10:00:00.000005"}'
      local one = add("user:ua", act)
      add("user:ub", act)
      local own = add("user:ua", '{"actor":"a","verb":"v","object":"only-ua"}')
      local st, _, raw = api:call("DELETE", "feed/timeline/uboth/follows/user:ua/")
      assert.are.equal(200, st, raw)
      assert.are.same({ one.id }, holds("timeline:uboth"))
      assert.are.equal("user:ub", read("timeline/uboth").results[1].origin)
      assert.are_not.equal(own.id, one.id)
    end)
  end)

  describe("order within one millisecond", function()
    local TIMES = { 7, 2, 9, 1, 10, 4, 6, 3, 8, 5 } -- microseconds, added in this order
    local by_us

    setup(function()
      by_us = {}
      for _, us in ipairs(TIMES) do
        -- foreign ids: their ids carry the millisecond only, so only `time` can order them
        local a = add("user:micro", string.format('{"actor":"a","verb":"v","object":"o","foreign_id":"m:%d",'
          .. '"time":"2026-04-01T09:00:00.%06d"}', us, us))
        by_us[us] = a.id
      end
    end)

    local function expected(from, to)
      local out = {}
      for us = from, to, -1 do out[#out + 1] = by_us[us] end
      return out
    end

    it("reads newest first by time to the microsecond", function()
      assert.are.same(expected(10, 1), ids_of(read("user/micro").results))
    end)

    it("pages exactly through next links and limit/offset", function()
      local got, query = {}, "limit=3"
      repeat
        local page = read("user/micro", query)
        for _, a in ipairs(page.results) do got[#got + 1] = a.id end
        query = page.next:match("%?(.*)$")
      until page.next == ""
      assert.are.same(expected(10, 1), got)
      assert.are.same(expected(6, 4), ids_of(read("user/micro", "limit=3&offset=4").results))
    end)

    it("takes a cursor naming an activity of the feed as its place", function()
      assert.are.same(expected(5, 1), ids_of(read("user/micro", "id_lt=" .. by_us[6]).results))
      assert.are.same(expected(6, 1), ids_of(read("user/micro", "id_lte=" .. by_us[6]).results))
      assert.are.same(expected(10, 7), ids_of(read("user/micro", "id_gt=" .. by_us[6]).results))
      assert.are.same(expected(10, 6), ids_of(read("user/micro", "id_gte=" .. by_us[6]).results))
      assert.are.same({ by_us[3] }, ids_of(read("user/micro", "id_lte=" .. by_us[3] .. "&id_gte=" .. by_us[3]
        .. "&limit=1").results))
    end)

    it("takes a cursor naming no activity of the feed as the time inside its id", function()
      -- an id of the same millisecond: its time is .000000, before every activity here
      local same_ms = expected_id("elsewhere", "2026-04-01T09:00:00.000500")
      assert.are.same({}, read("user/micro", "id_lt=" .. same_ms).results)
      assert.are.same(expected(10, 1), ids_of(read("user/micro", "id_gt=" .. same_ms).results))
      local next_ms = expected_id("elsewhere", "2026-04-01T09:00:00.001")
      assert.are.same(expected(10, 1), ids_of(read("user/micro", "id_lt=" .. next_ms).results))
    end)

    it("takes a well-formed cursor of another UUID version as the time in its time fields, never a 400", function()
      -- 0b0b0b0b-0000-4... reads as a time in 1582, before every activity
      local old = "0b0b0b0b-0000-4000-8000-000000000001"
      assert.are.same({}, read("user/micro", "id_lt=" .. old).results)
      assert.are.same(expected(10, 1), ids_of(read("user/micro", "id_gte=" .. old).results))
    end)
  end)

  describe("full update of an activity that does not exist", function()
    it("succeeds and stores it by its id in no feed; an add later puts it in its feed", function()
      local act = '{"actor":"a","verb":"v","object":"lonely","foreign_id":"lone:1","time":"2026-05-01T08:00:00"}'
      local st, _, raw = api:call("POST", "activities/", { body = '{"activities":[' .. act .. "]}" })
      assert.are.equal(201, st, raw)
      local id = expected_id("lone:1", "2026-05-01T08:00:00")
      local _, got = api:call("GET", "activities/", { query = "ids=" .. id })
      assert.are.equal(1, #got.results)
      assert.are.equal("lonely", got.results[1].object)
      _, got = api:call("GET", "activities/", { query = "foreign_ids=lone:1&timestamps=2026-05-01T08:00:00" })
      assert.are.same({ id }, ids_of(got.results))
      assert.are.same({}, read("user/a").results)
      local a = add("user:lone", (act:gsub("lonely", "placed")))
      assert.are.equal(id, a.id)
      assert.are.same({ id }, ids_of(read("user/lone").results))
      api:call("DELETE", "feed/user/lone/" .. id .. "/")
      _, got = api:call("GET", "activities/", { query = "ids=" .. id })
      assert.are.same({}, got.results)
    end)
  end)

  describe("paths", function()
    it("answers GET stats/follow without the trailing slash like stats/follow/", function()
      api:call("POST", "feed/timeline/st/follows/", { body = '{"target":"user:st"}' })
      local st, b, raw = api:call("GET", "stats/follow", { query = "followers=user:st&following=timeline:st" })
      assert.are.equal(200, st, raw)
      local _, slash = api:call("GET", "stats/follow/", { query = "followers=user:st&following=timeline:st" })
      assert.are.same(shape.without_duration(slash), shape.without_duration(b))
      assert.are.equal(1, b.results.followers.count)
    end)

    it("redirects a slash-less path to a Location that is a path, whatever the Host header says", function()
      local st, b, _, headers = api:call("POST", "feed/user/x", { query = "k=v",
        headers = { Host = "evil.example" }, body = "{}" })
      assert.are.equal(301, st)
      assert.are.equal(1, b.code)
      assert.are.equal("/api/v1.0/feed/user/x/?api_key=" .. s.api_key .. "&k=v", headers["location"])
    end)
  end)

  it("logged no unexpected Lua errors", function()
    local log = s:error_log()
    assert.is_nil(log:find("unexpected error", 1, true), log)
    assert.is_nil(log:find("lua entry thread aborted", 1, true), log)
  end)
end)
