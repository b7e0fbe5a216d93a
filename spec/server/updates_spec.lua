-- Activity updates on the local server (stream-feeds-api.md section 10): partial updates
-- by id or by foreign id and time, full updates, the rules and errors of section 10, and
-- the change seen everywhere the activity is.

local server = require "helpers.server"
local http = require "helpers.http"
local cjson = require "cjson"

-- the top-level keys of a JSON object text, in their order (the text is compact and the
-- keys are plain names, so a depth-tracking scan is enough)
local function key_order(text)
  local keys, depth, i = {}, 0, 1
  while i <= #text do
    local c = text:sub(i, i)
    if c == '"' then
      local j = i + 1
      while text:sub(j, j) ~= '"' do
        if text:sub(j, j) == "\\" then j = j + 1 end
        j = j + 1
      end
      if depth == 1 and text:sub(j + 1, j + 1) == ":" then keys[#keys + 1] = text:sub(i + 1, j - 1) end
      i = j
    elseif c == "{" or c == "[" then
      depth = depth + 1
    elseif c == "}" or c == "]" then
      depth = depth - 1
    end
    i = i + 1
  end
  return table.concat(keys, ",")
end

-- the text of the first activity inside {"activities":[...]} or {"results":[...]}
local function first_text(raw)
  local start = raw:find("{", 2, true)
  local depth, i = 0, start
  repeat
    local c = raw:sub(i, i)
    if c == '"' then
      i = i + 1
      while raw:sub(i, i) ~= '"' do
        if raw:sub(i, i) == "\\" then i = i + 1 end
        i = i + 1
      end
    elseif c == "{" or c == "[" then
      depth = depth + 1
    elseif c == "}" or c == "]" then
      depth = depth - 1
    end
    i = i + 1
  until depth == 0
  return raw:sub(start, i - 1)
end

describe("local server activity updates", function()
  local s, api

  setup(function()
    s = server.start()
    api = http.api(s)
  end)

  teardown(function()
    if s then s:stop() end
  end)

  local function ok(status, method, path, opts)
    local st, b, raw = api:call(method, path, opts)
    assert.are.equal(status, st, raw)
    return b, raw
  end

  local function add(feed, body, opts)
    opts = opts or {}
    opts.body = body
    return ok(201, "POST", "feed/" .. feed:gsub(":", "/") .. "/", opts)
  end

  local function by_id(id, enrich)
    local b, raw = ok(200, "GET", (enrich and "enrich/" or "") .. "activities/", { query = "ids=" .. id })
    return b.results[1], raw
  end

  local function update(changes, opts)
    opts = opts or {}
    opts.body = cjson.encode({ changes = changes })
    return api:call("POST", "activity/", opts)
  end

  local function error_body(st, b, raw, status, code)
    assert.are.equal(status, st, raw)
    assert.are.equal(code, b.code, raw)
    assert.are.equal(status, b.status_code)
    assert.is_string(b.detail)
    assert.is_string(b.duration)
  end

  describe("POST activity/ (partial)", function()
    it("sets a field by id and answers the updated activity; a new key goes last, others keep their place",
      function()
        local a = add("user:p1", '{"actor":"SU:p1","verb":"v","object":"o","zeta":1,"alpha":{"x":1}}')
        local st, b, raw = update({ { id = a.id, set = { alpha = "A", added = { 1, 2 } } } })
        assert.are.equal(201, st, raw)
        assert.are.equal("activities,duration", key_order(raw))
        assert.are.equal(1, #b.activities)
        local got = b.activities[1]
        assert.are.equal(a.id, got.id)
        assert.are.equal("A", got.alpha)
        assert.are.same({ 1, 2 }, got.added)
        assert.are.equal(1, got.zeta)
        assert.are.equal(cjson.null, got.origin)
        assert.are.equal("id,foreign_id,time,actor,verb,target,object,origin,zeta,alpha,added",
          key_order(first_text(raw)))
        local again, again_raw = by_id(a.id)
        assert.are.same(got, again)
        assert.are.equal(key_order(first_text(raw)), key_order(first_text(again_raw)))
      end)

    it("creates the objects of a dotted path as needed and keeps their siblings", function()
      local a = add("user:p2", '{"actor":"a","verb":"v","object":"o","ingredients":{"bread":"rye"}}')
      local _, b = update({ { id = a.id, set = { ["ingredients.meat"] = "ham", ["deep.er.leaf"] = true } } })
      local got = b.activities[1]
      assert.are.same({ bread = "rye", meat = "ham" }, got.ingredients)
      assert.are.same({ er = { leaf = true } }, got.deep)
      assert.are.same(got, by_id(a.id))
    end)

    it("unsets dotted paths; a path that is not there is not an error", function()
      local a = add("user:p3", '{"actor":"a","verb":"v","object":"o","t":"x","n":{"a":1,"b":2},"k":3}')
      local st, b, raw = update({ { id = a.id, unset = { "t", "n.a", "missing", "n.zz", "k.sub", "no.such.path" } } })
      assert.are.equal(201, st, raw)
      local got = b.activities[1]
      assert.is_nil(got.t)
      assert.are.same({ b = 2 }, got.n)
      assert.are.equal(3, got.k)
      assert.are.same(got, by_id(a.id))
    end)

    it("applies set before unset, and target unset becomes the empty string", function()
      local a = add("user:p3b", '{"actor":"a","verb":"v","object":"o","target":"t"}')
      local _, b = update({ { id = a.id, set = { x = 1 }, unset = { "x", "target" } } })
      assert.is_nil(b.activities[1].x)
      assert.are.equal("", b.activities[1].target)
    end)

    it("finds the activity by foreign_id and time, the time in any accepted form", function()
      local a = add("user:p4", '{"actor":"a","verb":"v","object":"o","foreign_id":"fid:4",'
        .. '"time":"2026-11-28T10:00:00.123456"}')
      local _, b = update({ { foreign_id = "fid:4", time = "2026-11-28T15:00:00.123456+05:00", set = { v = 1 } } })
      assert.are.equal(a.id, b.activities[1].id)
      assert.are.equal(1, by_id(a.id).v)
      assert.are.equal("2026-11-28T10:00:00.123456", by_id(a.id).time)
      assert.are.equal("fid:4", by_id(a.id).foreign_id)
    end)

    it("answers every updated activity in request order, each as it is after its change", function()
      local x = add("user:p5", '{"actor":"a","verb":"v","object":"x"}')
      local y = add("user:p5", '{"actor":"a","verb":"v","object":"y"}')
      local _, b = update({ { id = y.id, set = { n = 1 } }, { id = x.id, set = { n = 2 } },
        { id = y.id, set = { m = 3 } } })
      assert.are.same({ y.id, x.id, y.id }, { b.activities[1].id, b.activities[2].id, b.activities[3].id })
      assert.are.equal(1, b.activities[1].n)
      assert.is_nil(b.activities[1].m)
      assert.are.equal(2, b.activities[2].n)
      assert.are.equal(3, b.activities[3].m)
      assert.are.equal(1, b.activities[3].n)
    end)

    it("takes one change as the whole body (no changes list) and answers that activity with duration", function()
      local a = add("user:single", '{"actor":"a","verb":"v","object":"o","foreign_id":"fs",'
        .. '"time":"2026-04-01T00:00:00","p":{"a":1,"b":2}}')
      local st, b, raw = api:call("POST", "activity/", { body = cjson.encode({ id = a.id, set = { ["p.c"] = 3 },
        unset = { "p.a" } }) })
      assert.are.equal(201, st, raw)
      assert.are.equal("id,foreign_id,time,actor,verb,target,object,origin,p,duration", key_order(raw))
      assert.are.same({ b = 2, c = 3 }, b.p)
      b.duration = nil
      assert.are.same(by_id(a.id), b)
      st, b, raw = api:call("POST", "activity/", { body = '{"foreign_id":"fs","time":"2026-04-01T00:00:00",'
        .. '"set":{"q":1},"unset":[]}' })
      assert.are.equal(201, st, raw)
      assert.are.equal(a.id, b.id)
      assert.are.equal(1, b.q)
      st, b, raw = api:call("POST", "activity/", { body = '{"id":"' .. a.id .. '","set":[],"unset":["q"]}' })
      assert.are.equal(201, st, raw)
      assert.is_nil(b.q)
      st, b, raw = api:call("POST", "activity/", { body = cjson.encode({ id = a.id, set = { time = "x" } }) })
      error_body(st, b, raw, 400, 4)
      assert.is_table(b.exception_fields.time, raw)
      st, b, raw = api:call("POST", "activity/",
        { body = '{"id":"00000000-0000-1000-8000-000000000000","set":{"q":2}}' })
      error_body(st, b, raw, 404, 16)
      assert.is_nil(by_id(a.id).q)
    end)

    it("can set actor, verb, object and target; a numeric object is stored as a string", function()
      local a = add("user:p6", '{"actor":"a","verb":"v","object":"o"}')
      local _, b = update({ { id = a.id, set = { actor = "b", verb = "w", object = 42, target = "t" } } })
      local got = b.activities[1]
      assert.are.same({ "b", "w", "42", "t" }, { got.actor, got.verb, got.object, got.target })
    end)

    it("is seen in the feed, followers' copies, to targets, activities by id and enriched reads", function()
      ok(201, "POST", "user/", { body = '{"id":"eu","data":{"n":"EU"}}' })
      ok(201, "POST", "feed/timeline/fan/follows/", { body = '{"target":"user:eu"}' })
      ok(201, "POST", "feed/timeline/tfan/follows/", { body = '{"target":"user:tt"}' })
      local a = add("user:eu", '{"actor":"SU:eu","verb":"v","object":"o","to":["user:tt"]}')
      local ref = add("user:other", '{"actor":"x","verb":"share","object":"SA:' .. a.id .. '"}')
      update({ { id = a.id, set = { ["meta.seen"] = "yes" } } })
      local function first(path)
        return ok(200, "GET", path).results[1]
      end
      assert.are.same({ seen = "yes" }, first("feed/user/eu/").meta)
      local copy = first("feed/timeline/fan/")
      assert.are.same({ seen = "yes" }, copy.meta)
      assert.are.equal("user:eu", copy.origin)
      assert.are.same({ seen = "yes" }, first("feed/user/tt/").meta)
      assert.are.equal(cjson.null, first("feed/user/tt/").origin)
      assert.are.same({ seen = "yes" }, first("feed/timeline/tfan/").meta)
      assert.are.equal("user:tt", first("feed/timeline/tfan/").origin)
      assert.are.same({ seen = "yes" }, by_id(a.id).meta)
      local enriched = first("enrich/feed/user/eu/")
      assert.are.same({ seen = "yes" }, enriched.meta)
      assert.are.equal("EU", enriched.actor.data.n)
      assert.are.same(enriched, by_id(a.id, true))
      assert.are.same({ seen = "yes" }, by_id(ref.id, true).object.meta)
    end)

    for _, field in ipairs({ "id", "foreign_id", "time", "origin", "to" }) do
      it("refuses to set or unset " .. field .. " (400 naming it) and writes nothing", function()
        local a = add("user:fixed_" .. field, '{"actor":"a","verb":"v","object":"o"}')
        local st, b, raw = update({ { id = a.id, set = { ok = 1 } }, { id = a.id, set = { [field] = "x" } } })
        error_body(st, b, raw, 400, 4)
        assert.is_table(b.exception_fields[field], raw)
        assert.matches(field, b.detail, 1, true)
        st, b, raw = update({ { id = a.id, unset = { field } } })
        error_body(st, b, raw, 400, 4)
        assert.is_table(b.exception_fields[field], raw)
        st, b, raw = update({ { id = a.id, set = { [field .. ".sub"] = 1 } } })
        error_body(st, b, raw, 400, 4)
        assert.is_nil(by_id(a.id).ok)
      end)
    end

    it("refuses reserved fields, unsetting required fields and fields inside strings", function()
      local a = add("user:r1", '{"actor":"a","verb":"v","object":"o","s":"str"}')
      for _, change in ipairs({
        { id = a.id, set = { score = 1 } },
        { id = a.id, unset = { "actor" } },
        { id = a.id, unset = { "object" } },
        { id = a.id, set = { ["actor.x"] = 1 } },
        { id = a.id, set = { actor = {} } },
        { id = a.id, set = { verb = "" } },
        { id = a.id, set = { verb = string.rep("v", 256) } },
        { id = a.id, set = { ["s.x"] = 1 } },
        { id = a.id, set = { ["a..b"] = 1 } },
        { id = a.id, set = { [""] = 1 } },
        { id = a.id, unset = { 7 } },
        { id = a.id, set = { 1, 2 } },
      }) do
        local st, b, raw = update({ change })
        error_body(st, b, raw, 400, 4)
        assert.is_table(b.exception_fields, raw)
      end
      assert.are.same({ "a", "v", "o", "str" }, (function()
        local g = by_id(a.id)
        return { g.actor, g.verb, g.object, g.s }
      end)())
    end)

    it("an unknown id or foreign id + time is 404 code 16, and nothing else in the request is written", function()
      local a = add("user:nf", '{"actor":"a","verb":"v","object":"o","foreign_id":"nf","time":"2026-01-01T00:00:00"}')
      local st, b, raw = update({ { id = a.id, set = { x = 1 } },
        { id = "00000000-0000-1000-8000-000000000000", set = { x = 1 } } })
      error_body(st, b, raw, 404, 16)
      assert.are.equal("DoesNotExistException", b.exception)
      st, b, raw = update({ { id = a.id, set = { x = 1 } },
        { foreign_id = "nf", time = "2026-01-01T00:00:01", set = { x = 1 } } })
      error_body(st, b, raw, 404, 16)
      st, b, raw = update({ { foreign_id = "other", time = "2026-01-01T00:00:00", set = { x = 1 } } })
      error_body(st, b, raw, 404, 16)
      assert.is_nil(by_id(a.id).x)
    end)

    it("validates the request: changes, ids, foreign_id with time", function()
      local cases = {
        '{}', '{"changes":[]}', '{"changes":{}}', '{"changes":[1]}', '{"changes":[{"set":{"x":1}}]}',
        '{"changes":[{"id":"nope","set":{"x":1}}]}', '{"changes":[{"foreign_id":"f","set":{"x":1}}]}',
        '{"changes":[{"foreign_id":"f","time":"yesterday"}]}',
        '{"changes":[{"foreign_id":5,"time":"2026-01-01T00:00:00"}]}',
        '{"changes":[{"id":"00000000-0000-1000-8000-000000000000","set":[1]}]}',
        '{"changes":[{"id":"00000000-0000-1000-8000-000000000000","unset":"x"}]}',
      }
      for _, body in ipairs(cases) do
        local st, b, raw = api:call("POST", "activity/", { body = body })
        error_body(st, b, raw, 400, 4)
        assert.is_table(b.exception_fields, body .. " " .. raw)
      end
      local st, b, raw = api:call("POST", "activity/", { body = "not json" })
      error_body(st, b, raw, 400, 4)
    end)

    it("takes at most 100 changes", function()
      local list = {}
      for i = 1, 100 do list[i] = '{"actor":"a","verb":"v","object":"o' .. i .. '"}' end
      local added = add("user:many", '{"activities":[' .. table.concat(list, ",") .. "]}").activities
      local changes = {}
      for i, a in ipairs(added) do changes[i] = { id = a.id, set = { n = i } } end
      local st, b, raw = update(changes)
      assert.are.equal(201, st, raw)
      assert.are.equal(100, #b.activities)
      assert.are.equal(added[100].id, b.activities[100].id)
      changes[101] = { id = added[1].id, set = { n = 0 } }
      st, b, raw = update(changes)
      error_body(st, b, raw, 400, 4)
      assert.is_table(b.exception_fields.changes, raw)
      assert.are.equal(1, by_id(added[1].id).n)
    end)

    it("keeps the 10 kB limit after the change and writes nothing over it", function()
      local a = add("user:big", '{"actor":"a","verb":"v","object":"o","pad":"' .. string.rep("p", 9000) .. '"}')
      local st, b, raw = update({ { id = a.id, set = { more = string.rep("m", 1300) } } })
      error_body(st, b, raw, 400, 4)
      assert.is_table(b.exception_fields.activity, raw)
      assert.is_nil(by_id(a.id).more)
      st = update({ { id = a.id, set = { more = string.rep("m", 900) } } })
      assert.are.equal(201, st)
      st = update({ { id = a.id, unset = { "pad" } } })
      assert.are.equal(201, st)
    end)
  end)

  describe("POST activities/ (full)", function()
    it("replaces the activity named by foreign_id and time and answers only duration", function()
      local a = add("user:full", '{"actor":"a","verb":"v","object":"o","foreign_id":"f:1",'
        .. '"time":"2026-02-01T10:00:00","old":1,"keep":{"x":1}}')
      local st, b, raw = api:call("POST", "activities/", { body = '{"activities":[{"foreign_id":"f:1",'
        .. '"time":"2026-02-01T10:00:00","actor":"b","verb":"w","object":7,"keep":{"y":2},"new":true}]}' })
      assert.are.equal(201, st, raw)
      assert.are.equal("duration", key_order(raw))
      assert.is_string(b.duration)
      local got, got_raw = by_id(a.id)
      assert.are.equal("id,foreign_id,time,actor,verb,target,object,origin,keep,new", key_order(first_text(got_raw)))
      assert.are.same({ "b", "w", "7", "", "f:1", "2026-02-01T10:00:00.000000" },
        { got.actor, got.verb, got.object, got.target, got.foreign_id, got.time })
      assert.is_nil(got.old)
      assert.are.same({ y = 2 }, got.keep)
      assert.are.equal(true, got.new)
      assert.are.same(got, ok(200, "GET", "feed/user/full/").results[1])
    end)

    it("is seen in followers' copies and to targets; to and the deliveries stay", function()
      ok(201, "POST", "feed/timeline/ffan/follows/", { body = '{"target":"user:fsrc"}' })
      local a = add("user:fsrc", '{"actor":"a","verb":"v","object":"o","foreign_id":"f:2",'
        .. '"time":"2026-02-01T11:00:00","to":["user:fdest"]}')
      local st, _, raw = api:call("POST", "activities/", { body = '{"activities":[{"foreign_id":"f:2",'
        .. '"time":"2026-02-01T11:00:00Z","actor":"a","verb":"v","object":"o","v":2}]}' })
      assert.are.equal(201, st, raw)
      local copy = ok(200, "GET", "feed/timeline/ffan/").results[1]
      assert.are.equal(a.id, copy.id)
      assert.are.equal(2, copy.v)
      assert.are.equal("user:fsrc", copy.origin)
      assert.are.same({ "user:fdest" }, copy.to)
      local fto_b, fto_raw = ok(200, "GET", "feed/user/fdest/")
      assert.are.equal(2, fto_b.results[1].v, fto_raw)
      st, _, raw = api:call("POST", "activities/", { body = '{"activities":[{"foreign_id":"f:2",'
        .. '"time":"2026-02-01T11:00:00","actor":"a","verb":"v","object":"o","to":["user:elsewhere"]}]}' })
      assert.are.equal(400, st, raw)
      assert.are.equal(2, by_id(a.id).v)
    end)

    it("accepts the id and origin of a read activity, and refuses an id that does not match", function()
      local a = add("user:rt", '{"actor":"a","verb":"v","object":"o","foreign_id":"f:3","time":"2026-02-01T12:00:00"}')
      local read = by_id(a.id)
      read.extra = "x"
      local st, _, raw = api:call("POST", "activities/", { body = cjson.encode({ activities = { read } }) })
      assert.are.equal(201, st, raw)
      assert.are.equal("x", by_id(a.id).extra)
      st, _, raw = api:call("POST", "activities/", { body = '{"activities":[{"actor":"a","verb":"v","object":"o",'
        .. '"foreign_id":"f:3","time":"2026-02-01T12:00:00","to":[],"extra":"y"}]}' })
      assert.are.equal(201, st, raw)
      assert.are.equal("y", by_id(a.id).extra)
      assert.is_nil(by_id(a.id).to)
      read.id = "00000000-0000-1000-8000-000000000000"
      local b
      st, b, raw = api:call("POST", "activities/", { body = cjson.encode({ activities = { read } }) })
      error_body(st, b, raw, 400, 4)
      assert.is_table(b.exception_fields["activities[0].id"], raw)
    end)

    it("needs foreign_id and time (400), writes nothing when one item fails and takes at most 100", function()
      local a = add("user:fv", '{"actor":"a","verb":"v","object":"o","foreign_id":"f:4","time":"2026-02-01T13:00:00"}')
      for _, body in ipairs({
        '{"activities":[{"actor":"a","verb":"v","object":"o","time":"2026-02-01T13:00:00"}]}',
        '{"activities":[{"actor":"a","verb":"v","object":"o","foreign_id":"f:4"}]}',
        '{"activities":[{"actor":"a","verb":"v","object":"o","foreign_id":"","time":"2026-02-01T13:00:00"}]}',
        '{"activities":[{"verb":"v","object":"o","foreign_id":"f:4","time":"2026-02-01T13:00:00"}]}',
        '{"activities":[{"actor":"a","object":"o","foreign_id":"unknown","time":"2026-02-01T13:00:00"}]}',
        '{"activities":[{"actor":"a","verb":"v","object":[],"foreign_id":"f:4","time":"2026-02-01T13:00:00"}]}',
        '{"activities":[{"actor":"a","verb":"v","object":"o","foreign_id":"f:4","time":"2026-02-01T13:00:00",'
          .. '"score":1}]}',
        '{"activities":[]}', '{}', '{"activities":[1]}',
      }) do
        local st, b, raw = api:call("POST", "activities/", { body = body })
        error_body(st, b, raw, 400, 4)
        assert.is_table(b.exception_fields, body)
      end
      local st, b, raw = api:call("POST", "activities/", { body = '{"activities":['
        .. '{"actor":"a","verb":"v","object":"changed","foreign_id":"f:4","time":"2026-02-01T13:00:00"},'
        .. '{"actor":"a","verb":"v","object":"o","foreign_id":"f:4","time":"2026-02-01T13:00:00",'
        .. '"to":["user:elsewhere"]}]}' })
      error_body(st, b, raw, 400, 4)
      assert.are.equal("o", by_id(a.id).object)
      local list = {}
      for i = 1, 101 do
        list[i] = '{"actor":"a","verb":"v","object":"o","foreign_id":"f:4","time":"2026-02-01T13:00:00"}'
      end
      st, b, raw = api:call("POST", "activities/", { body = '{"activities":[' .. table.concat(list, ",") .. "]}" })
      error_body(st, b, raw, 400, 4)
      assert.is_table(b.exception_fields.activities, raw)
      list[101] = nil
      st = api:call("POST", "activities/", { body = '{"activities":[' .. table.concat(list, ",") .. "]}" })
      assert.are.equal(201, st)
    end)

    it("keeps the stored time to the microsecond when the sent time names the same millisecond", function()
      local a = add("user:ftime", '{"actor":"a","verb":"v","object":"o","foreign_id":"f:6",'
        .. '"time":"2026-02-01T15:00:00.123456"}')
      local st, _, raw = api:call("POST", "activities/", { body = '{"activities":[{"actor":"a","verb":"v",'
        .. '"object":"o","foreign_id":"f:6","time":"2026-02-01T16:00:00.123+01:00","n":1}]}' })
      assert.are.equal(201, st, raw)
      local got = by_id(a.id)
      assert.are.equal(1, got.n)
      assert.are.equal("2026-02-01T15:00:00.123456", got.time)
    end)

    it("keeps the 10 kB limit", function()
      local a = add("user:fbig",
        '{"actor":"a","verb":"v","object":"o","foreign_id":"f:5","time":"2026-02-01T14:00:00"}')
      local st, b, raw = api:call("POST", "activities/", { body = '{"activities":[{"actor":"a","verb":"v",'
        .. '"object":"o","foreign_id":"f:5","time":"2026-02-01T14:00:00","pad":"' .. string.rep("p", 10300) .. '"}]}' })
      error_body(st, b, raw, 400, 4)
      assert.is_nil(by_id(a.id).pad)
    end)
  end)

  describe("tokens", function()
    local function user(id)
      return api:token('{"user_id":"' .. id .. '"}')
    end

    it("accept resource activities or *, and refuse other resources", function()
      local a = add("user:tok", '{"actor":"a","verb":"v","object":"o","foreign_id":"f:t","time":"2026-03-01T00:00:00"}')
      local body = cjson.encode({ changes = { { id = a.id, set = { n = 1 } } } })
      local full = '{"activities":[{"actor":"a","verb":"v","object":"o","foreign_id":"f:t",'
        .. '"time":"2026-03-01T00:00:00"}]}'
      for _, claims in ipairs({ '{"resource":"activities","action":"write","feed_id":"*"}',
        '{"resource":"*","action":"*","feed_id":"*"}' }) do
        assert.are.equal(201, (api:call("POST", "activity/", { body = body, token = api:token(claims) })))
        assert.are.equal(201, (api:call("POST", "activities/", { body = full, token = api:token(claims) })))
      end
      for _, claims in ipairs({ '{"resource":"feed","action":"*","feed_id":"*"}',
        '{"resource":"activities","action":"read","feed_id":"*"}' }) do
        local st, b = api:call("POST", "activity/", { body = body, token = api:token(claims) })
        error_body(st, b, "", 403, 17)
        st, b = api:call("POST", "activities/", { body = full, token = api:token(claims) })
        error_body(st, b, "", 403, 17)
      end
    end)

    it("a user token updates only activities whose actor is SU:<its id>", function()
      local mine = add("user:ua",
        '{"actor":"SU:ua","verb":"v","object":"o","foreign_id":"f:u","time":"2026-03-02T00:00:00"}')
      local theirs = add("user:ub",
        '{"actor":"SU:ub","verb":"v","object":"o","foreign_id":"f:v","time":"2026-03-02T00:00:00"}')
      local plain = add("user:ua", '{"actor":"ua","verb":"v","object":"o"}')
      local st, b, raw = update({ { id = mine.id, set = { n = 1 } } }, { token = user("ua") })
      assert.are.equal(201, st, raw)
      assert.are.equal(1, b.activities[1].n)
      for _, change in ipairs({ { id = theirs.id, set = { n = 1 } }, { id = plain.id, set = { n = 1 } },
        { id = mine.id, set = { actor = "SU:ub" } } }) do
        st, b, raw = update({ change }, { token = user("ua") })
        error_body(st, b, raw, 403, 17)
      end
      st, b, raw = update({ { id = mine.id, set = { n = 2 } }, { id = theirs.id, set = { n = 2 } } },
        { token = user("ua") })
      error_body(st, b, raw, 403, 17)
      assert.are.equal(1, by_id(mine.id).n)
      assert.is_nil(by_id(theirs.id).n)

      local function full(actor, fid)
        return '{"activities":[{"actor":"' .. actor .. '","verb":"v","object":"o","foreign_id":"' .. fid
          .. '","time":"2026-03-02T00:00:00","w":1}]}'
      end
      assert.are.equal(201, (api:call("POST", "activities/", { body = full("SU:ua", "f:u"), token = user("ua") })))
      st, b, raw = api:call("POST", "activities/", { body = full("SU:ua", "f:v"), token = user("ua") })
      error_body(st, b, raw, 403, 17)
      st, b, raw = api:call("POST", "activities/", { body = full("SU:ub", "f:u"), token = user("ua") })
      error_body(st, b, raw, 403, 17)
      assert.are.equal("SU:ua", by_id(mine.id).actor)
      assert.is_nil(by_id(theirs.id).w)
    end)
  end)

  it("answers 405 for other methods and for POST on enrich/activities/", function()
    assert.are.equal(405, (api:call("GET", "activity/")))
    assert.are.equal(405, (api:call("POST", "enrich/activities/", { body = '{"activities":[]}' })))
    assert.are.equal(200, (api:call("GET", "enrich/activities/",
      { query = "ids=00000000-0000-1000-8000-000000000000" })))
  end)

  it("logged no unexpected Lua errors", function()
    local log = s:error_log()
    assert.is_nil(log:find("unexpected error", 1, true), log)
    assert.is_nil(log:find("lua entry thread aborted", 1, true), log)
    assert.is_nil(log:find("[error]", 1, true), log)
  end)
end)
