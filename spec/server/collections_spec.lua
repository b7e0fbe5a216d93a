-- Collections on the local server (stream-feeds-api.md section 8): entries, their exact
-- shape, batch calls, ownership, token scopes and `SO:` enrichment.

local server = require "helpers.server"
local http = require "helpers.http"
local cjson = require "cjson"
local shape = require "helpers.shape"
local keys, without_duration = shape.keys, shape.without_duration

local UUID = "^%x%x%x%x%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$"
local STAMP = "^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%d%d%d%dZ$"

describe("local server collections", function()
  local s, api

  setup(function()
    s = server.start()
    api = http.api(s)
  end)

  teardown(function()
    if s then s:stop() end
  end)

  local function user(id)
    return api:token('{"user_id":"' .. id .. '"}')
  end

  local function call(method, path, body, opts)
    opts = opts or {}
    opts.body = body and (type(body) == "string" and body or cjson.encode(body)) or nil
    return api:call(method, path, opts)
  end

  local function expect(status, method, path, body, opts)
    local st, b, raw = call(method, path, body, opts)
    assert.are.equal(status, st, raw)
    return b, raw
  end

  local function fails(status, code, method, path, body, opts)
    local st, b, raw = call(method, path, body, opts)
    assert.are.equal(status, st, raw)
    assert.are.equal(code, b.code, raw)
    assert.are.equal(status, b.status_code, raw)
    assert.is_string(b.detail)
    assert.is_string(b.exception)
    return b
  end

  describe("single entries", function()
    it("add answers 201 with exactly the entry's keys, foreign_id <name>:<id> and the data sent", function()
      local b = expect(201, "POST", "collections/food/", { id = "pizza", data = { name = "Pizza", n = { 1, 2 } } })
      assert.are.equal("collection,created_at,data,duration,foreign_id,id,updated_at", keys(b))
      assert.are.equal("pizza", b.id)
      assert.are.equal("food", b.collection)
      assert.are.equal("food:pizza", b.foreign_id)
      assert.are.same({ name = "Pizza", n = { 1, 2 } }, b.data)
      assert.matches(STAMP, b.created_at)
      assert.are.equal(b.created_at, b.updated_at)
      assert.matches("^%d+%.%d%dms$", b.duration)
      assert.are.same(without_duration(b), without_duration(expect(200, "GET", "collections/food/pizza/")))
    end)

    it("a missing or null id gets a generated 36-character UUID", function()
      local a = expect(201, "POST", "collections/food/", { data = { x = 1 } })
      local b = expect(201, "POST", "collections/food/", '{"id":null,"data":{"x":2}}')
      assert.matches(UUID, a.id)
      assert.matches(UUID, b.id)
      assert.are_not.equal(a.id, b.id)
      assert.are.equal("food:" .. a.id, a.foreign_id)
      assert.are.same({ x = 2 }, expect(200, "GET", "collections/food/" .. b.id .. "/").data)
    end)

    it("data must be a non-empty object of at most 10 kB; ids and names follow the id rule; nothing is written",
      function()
        for _, body in ipairs({ '{"id":"bad1","data":{}}', '{"id":"bad1","data":"s"}', '{"id":"bad1","data":[1]}',
          '{"id":"bad1"}', '{"id":"bad1","data":null}',
          '{"id":"bad1","data":{"pad":"' .. string.rep("p", 10240) .. '"}}' }) do
          local b = fails(400, 4, "POST", "collections/food/", body)
          assert.is_table(b.exception_fields.data, body)
        end
        assert.is_table(fails(400, 4, "POST", "collections/food/", '{"id":"a b","data":{"x":1}}').exception_fields.id)
        assert.is_table(fails(400, 4, "POST", "collections/food/", '{"id":5,"data":{"x":1}}').exception_fields.id)
        assert.is_table(fails(400, 4, "POST", "collections/food/", { id = string.rep("i", 256), data = { x = 1 } })
          .exception_fields.id)
        assert.is_table(fails(400, 4, "POST", "collections/f%3Ao/", '{"id":"ok","data":{"x":1}}')
          .exception_fields.collection_name)
        fails(400, 4, "POST", "collections/food/", "not json")
        fails(404, 16, "GET", "collections/food/bad1/")
        expect(201, "POST", "collections/food/", { id = "fits", data = { pad = string.rep("p", 10200) } })
      end)

    it("an existing id is 409 code 22, for anyone, and the entry stays", function()
      expect(201, "POST", "collections/food/", { id = "taken", data = { v = 1 } })
      local b = fails(409, 22, "POST", "collections/food/", { id = "taken", data = { v = 2 } })
      assert.are.equal("ConflictException", b.exception)
      fails(409, 22, "POST", "collections/food/", { id = "taken", data = { v = 3 } }, { token = user("u409") })
      assert.are.same({ v = 1 }, expect(200, "GET", "collections/food/taken/").data)
      expect(201, "POST", "collections/drink/", { id = "taken", data = { v = 4 } })
    end)

    it("get of an unknown id, or of a path id breaking the rule, is 404 code 16", function()
      assert.are.equal("DoesNotExistException", fails(404, 16, "GET", "collections/food/never/").exception)
      fails(404, 16, "GET", "collections/nocoll/never/")
      fails(404, 16, "GET", "collections/food/a%20b/")
    end)

    it("update answers 201, replaces data, keeps created_at and moves updated_at", function()
      local a = expect(201, "POST", "collections/food/", { id = "upd", data = { a = 1, b = 2 } })
      local b = expect(201, "PUT", "collections/food/upd/", { data = { c = 3 } })
      assert.are.equal("collection,created_at,data,duration,foreign_id,id,updated_at", keys(b))
      assert.are.same({ c = 3 }, b.data)
      assert.are.equal(a.created_at, b.created_at)
      assert.is_true(b.updated_at > a.updated_at)
      assert.are.same(without_duration(b), without_duration(expect(200, "GET", "collections/food/upd/")))
      expect(201, "PUT", "collections/food/upd/", { id = "upd", data = { d = 4 } })
    end)

    it("update refuses another id in the body and bad data (400), unknown ids are 404; nothing is written", function()
      expect(201, "POST", "collections/food/", { id = "upd2", data = { keep = true } })
      assert.is_table(fails(400, 4, "PUT", "collections/food/upd2/", { id = "other", data = { x = 1 } })
        .exception_fields.id)
      for _, body in ipairs({ '{"data":{}}', '{"data":"s"}', '{}' }) do
        assert.is_table(fails(400, 4, "PUT", "collections/food/upd2/", body).exception_fields.data)
      end
      assert.are.same({ keep = true }, expect(200, "GET", "collections/food/upd2/").data)
      fails(404, 16, "PUT", "collections/food/nothere/", { data = { x = 1 } })
      fails(404, 16, "GET", "collections/food/nothere/")
    end)

    it("delete answers 200 with only duration; a later get, update or delete is 404; the id can be added again",
      function()
        expect(201, "POST", "collections/food/", { id = "del", data = { v = 1 } })
        local b = expect(200, "DELETE", "collections/food/del/")
        assert.are.equal("duration", keys(b))
        fails(404, 16, "GET", "collections/food/del/")
        fails(404, 16, "PUT", "collections/food/del/", { data = { v = 2 } })
        fails(404, 16, "DELETE", "collections/food/del/")
        local again = expect(201, "POST", "collections/food/", { id = "del", data = { v = 3 } })
        assert.are.same({ v = 3 }, again.data)
        assert.are.same({ v = 3 }, expect(200, "GET", "collections/food/del/").data)
      end)
  end)

  describe("ownership", function()
    it("a user token owns what it adds; another user may read it but not update or delete it", function()
      expect(201, "POST", "collections/pets/", { id = "rex", data = { kind = "dog" } }, { token = user("ann") })
      local got = expect(200, "GET", "collections/pets/rex/", nil, { token = user("bob") })
      assert.are.equal("collection,created_at,data,duration,foreign_id,id,updated_at", keys(got))
      fails(403, 17, "PUT", "collections/pets/rex/", { data = { kind = "cat" } }, { token = user("bob") })
      fails(403, 17, "DELETE", "collections/pets/rex/", nil, { token = user("bob") })
      assert.are.same({ kind = "dog" }, expect(200, "GET", "collections/pets/rex/").data)
      expect(201, "PUT", "collections/pets/rex/", { data = { kind = "wolf" } }, { token = user("ann") })
      expect(200, "DELETE", "collections/pets/rex/", nil, { token = user("ann") })
    end)

    it("a user token may not add for another user_id; its own user_id is fine", function()
      fails(403, 17, "POST", "collections/pets/", { id = "tom", data = { x = 1 }, user_id = "bob" },
        { token = user("ann") })
      fails(404, 16, "GET", "collections/pets/tom/")
      local b = expect(201, "POST", "collections/pets/", { id = "tom", data = { x = 1 }, user_id = "ann" },
        { token = user("ann") })
      assert.is_nil(b.user_id)
    end)

    it("a server token may name the owner with user_id, and may change any entry", function()
      local b = expect(201, "POST", "collections/pets/", { id = "kit", data = { x = 1 }, user_id = "cat" })
      assert.are.equal("collection,created_at,data,duration,foreign_id,id,updated_at", keys(b))
      expect(201, "PUT", "collections/pets/kit/", { data = { x = 2 } }, { token = user("cat") })
      fails(403, 17, "PUT", "collections/pets/kit/", { data = { x = 3 } }, { token = user("dog") })
      expect(201, "PUT", "collections/pets/kit/", { data = { x = 4 } })
      -- an entry without an owner: no user token may change it
      expect(201, "POST", "collections/pets/", { id = "nobody", data = { x = 1 } })
      fails(403, 17, "PUT", "collections/pets/nobody/", { data = { x = 2 } }, { token = user("cat") })
      fails(403, 17, "DELETE", "collections/pets/nobody/", nil, { token = user("cat") })
      expect(200, "DELETE", "collections/pets/kit/")
      assert.is_table(fails(400, 4, "POST", "collections/pets/", { id = "bad", data = { x = 1 }, user_id = "a b" })
        .exception_fields.user_id)
    end)
  end)

  describe("batches", function()
    it("upsert many stores each item whole, id included, as data, and answers the items as sent", function()
      local sent = '{"data":{"food":[{"id":"u1","name":"one","n":[1]},{"id":"u2","name":"two"}],'
        .. '"drink":[{"id":"d1","cold":true}]}}'
      local b, raw = expect(201, "POST", "collections/", sent)
      assert.are.equal("data,duration", keys(b))
      assert.are.equal(sent, (raw:gsub(',"duration":"[^"]*"}$', "}")))
      local e = expect(200, "GET", "collections/food/u1/")
      assert.are.same({ id = "u1", name = "one", n = { 1 } }, e.data)
      assert.are.equal("food:u1", e.foreign_id)
      assert.are.same({ id = "d1", cold = true }, expect(200, "GET", "collections/drink/d1/").data)
    end)

    it("upsert many replaces an existing entry, keeping created_at and the owner", function()
      local a = expect(201, "POST", "collections/toys/", { id = "ball", data = { v = 1 } }, { token = user("own") })
      expect(201, "POST", "collections/", { data = { toys = { { id = "ball", v = 2 } } } })
      local e = expect(200, "GET", "collections/toys/ball/")
      assert.are.same({ id = "ball", v = 2 }, e.data)
      assert.are.equal(a.created_at, e.created_at)
      assert.is_true(e.updated_at > a.updated_at)
      expect(201, "PUT", "collections/toys/ball/", { data = { v = 3 } }, { token = user("own") })
    end)

    it("upsert many validates the whole batch first and writes nothing when any item is bad", function()
      for _, body in ipairs({
        '{"data":{"toys":[{"id":"ok1","v":1},{"v":2}]}}',
        '{"data":{"toys":[{"id":"ok1","v":1},{"id":"a b"}]}}',
        '{"data":{"toys":[{"id":"ok1","v":1},3]}}',
        '{"data":{"toys":{"id":"ok1"}}}',
        '{"data":{"t y":[{"id":"ok1"}]}}',
        '{"data":{"toys":[{"id":"ok1","pad":"' .. string.rep("p", 10240) .. '"}]}}',
        '{"data":{}}', '{"data":{"toys":[]}}', '{}', '{"data":[]}',
      }) do
        assert.is_table(fails(400, 4, "POST", "collections/", body).exception_fields, body)
      end
      fails(404, 16, "GET", "collections/toys/ok1/")
    end)

    it("batches take at most 1000 entries", function()
      local items = {}
      for i = 1, 1001 do items[i] = '{"id":"m' .. i .. '"}' end
      local b = fails(400, 4, "POST", "collections/", '{"data":{"many":[' .. table.concat(items, ",") .. "]}}")
      assert.is_table(b.exception_fields.data)
      fails(404, 16, "GET", "collections/many/m1/")
      items[1001] = nil
      expect(201, "POST", "collections/", '{"data":{"many":[' .. table.concat(items, ",") .. "]}}")
      local refs, ids = {}, {}
      for i = 1, 1001 do
        refs[i] = "many:m" .. i
        ids[i] = "m" .. i
      end
      fails(400, 4, "GET", "collections/", nil, { query = "foreign_ids=" .. table.concat(refs, ",") })
      fails(400, 4, "DELETE", "collections/", nil, { query = "collection_name=many&ids=" .. table.concat(ids, ",") })
      refs[1001], ids[1001] = nil, nil
      assert.are.equal(1000, #expect(200, "GET", "collections/", nil,
        { query = "foreign_ids=" .. table.concat(refs, ",") }).response.data)
      expect(200, "DELETE", "collections/", nil, { query = "collection_name=many&ids=" .. table.concat(ids, ",") })
      assert.are.equal(0, #expect(200, "GET", "collections/", nil,
        { query = "foreign_ids=" .. table.concat(refs, ",") }).response.data)
    end)

    it("select many answers the entries asked for in order, each once, leaving out unknown and deleted ones",
      function()
        expect(201, "POST", "collections/", { data = { sel = { { id = "a", v = 1 }, { id = "b", v = 2 },
          { id = "c", v = 3 } } } })
        expect(200, "DELETE", "collections/sel/c/")
        local b, raw = expect(200, "GET", "collections/", nil,
          { query = "foreign_ids=sel:b,sel:nope,sel:a,sel:c,other:a,sel:b" })
        assert.matches('^{"response":{"data":%[', raw)
        assert.are.equal("duration,response", keys(b))
        assert.are.equal("data", keys(b.response))
        assert.are.equal(2, #b.response.data)
        assert.are.same(without_duration(expect(200, "GET", "collections/sel/b/")), b.response.data[1])
        assert.are.same(without_duration(expect(200, "GET", "collections/sel/a/")), b.response.data[2])
        for _, q in ipairs({ "", "foreign_ids=", "foreign_ids=sel", "foreign_ids=sel:a%20b", "foreign_ids=:a" }) do
          assert.is_table(fails(400, 4, "GET", "collections/", nil, { query = q }).exception_fields.foreign_ids, q)
        end
      end)

    it("delete many removes the ids of one collection, silent about unknown ones, and answers only duration",
      function()
        expect(201, "POST", "collections/", { data = { dm = { { id = "x" }, { id = "y" }, { id = "z" } },
          dm2 = { { id = "x" } } } })
        local b = expect(200, "DELETE", "collections/", nil, { query = "collection_name=dm&ids=x,y,never" })
        assert.are.equal("duration", keys(b))
        fails(404, 16, "GET", "collections/dm/x/")
        fails(404, 16, "GET", "collections/dm/y/")
        expect(200, "GET", "collections/dm/z/")
        expect(200, "GET", "collections/dm2/x/")
        assert.is_table(fails(400, 4, "DELETE", "collections/", nil, { query = "ids=z" })
          .exception_fields.collection_name)
        assert.is_table(fails(400, 4, "DELETE", "collections/", nil, { query = "collection_name=dm" })
          .exception_fields.ids)
        assert.is_table(fails(400, 4, "DELETE", "collections/", nil, { query = "collection_name=dm&ids=z,a%20b" })
          .exception_fields.ids)
        expect(200, "GET", "collections/dm/z/")
      end)

    it("batch calls refuse user tokens with 403", function()
      local t = { token = user("ann") }
      fails(403, 17, "POST", "collections/", { data = { bt = { { id = "x" } } } }, t)
      fails(403, 17, "GET", "collections/", nil, { token = t.token, query = "foreign_ids=bt:x" })
      fails(403, 17, "DELETE", "collections/", nil, { token = t.token, query = "collection_name=bt&ids=x" })
      fails(404, 16, "GET", "collections/bt/x/")
    end)
  end)

  describe("tokens", function()
    local function scoped(resource, action)
      return api:token('{"resource":"' .. resource .. '","action":"' .. action .. '","feed_id":"*"}')
    end

    it("accept resource collections or * with the method's action, and refuse others", function()
      expect(201, "POST", "collections/tok/", { id = "a", data = { v = 1 } },
        { token = scoped("collections", "write") })
      expect(200, "GET", "collections/tok/a/", nil, { token = scoped("collections", "read") })
      expect(201, "PUT", "collections/tok/a/", { data = { v = 2 } }, { token = scoped("collections", "*") })
      expect(200, "GET", "collections/", nil, { token = scoped("*", "*"), query = "foreign_ids=tok:a" })
      fails(403, 17, "POST", "collections/tok/", { id = "b", data = { v = 1 } }, { token = scoped("feed", "*") })
      fails(403, 17, "POST", "collections/tok/", { id = "b", data = { v = 1 } },
        { token = scoped("collections", "read") })
      fails(403, 17, "DELETE", "collections/tok/a/", nil, { token = scoped("collections", "write") })
      fails(403, 17, "GET", "collections/tok/a/", nil, { token = scoped("users", "*") })
      expect(200, "DELETE", "collections/tok/a/", nil, { token = scoped("collections", "delete") })
      fails(404, 16, "GET", "collections/tok/b/")
    end)

    it("need feed_id * (or no feed_id claim) on collection calls", function()
      local narrow = api:token('{"resource":"collections","action":"*","feed_id":"useralice"}')
      local open = api:token('{"resource":"collections","action":"*"}')
      fails(403, 17, "POST", "collections/fid/", { id = "a", data = { v = 1 } }, { token = narrow })
      fails(403, 17, "GET", "collections/", nil, { token = narrow, query = "foreign_ids=fid:a" })
      fails(404, 16, "GET", "collections/fid/a/")
      expect(201, "POST", "collections/fid/", { id = "a", data = { v = 1 } }, { token = open })
      fails(403, 17, "GET", "collections/fid/a/", nil, { token = narrow })
    end)
  end)

  describe("enrichment", function()
    it("SO:<name>:<id> becomes the entry minus duration on enriched reads only, read at request time",
      function()
        local e = expect(201, "POST", "collections/meal/", { id = "soup", data = { hot = true } })
        local a = expect(201, "POST", "feed/user/chef/", '{"actor":"chef","verb":"cook","object":"SO:meal:soup",'
          .. '"side":"SO:meal:soup","nested":{"x":"SO:meal:soup"}}')
        assert.are.equal("SO:meal:soup", expect(200, "GET", "feed/user/chef/").results[1].object)
        local got = expect(200, "GET", "enrich/feed/user/chef/").results[1]
        assert.are.same(without_duration(e), got.object)
        assert.are.same(without_duration(e), got.side)
        assert.are.same({ x = "SO:meal:soup" }, got.nested)
        assert.are.same(got, expect(200, "GET", "enrich/activities/", nil, { query = "ids=" .. a.id }).results[1])
        local u = expect(201, "PUT", "collections/meal/soup/", { data = { hot = false } })
        assert.are.same(without_duration(u), expect(200, "GET", "enrich/feed/user/chef/").results[1].object)
      end)

    it("a never-created or deleted entry becomes the object ReferenceNotFound; the read is 200", function()
      expect(201, "POST", "collections/meal/", { id = "gone", data = { v = 1 } })
      expect(201, "POST", "feed/user/cook2/",
        '{"actor":"c","verb":"v","object":"SO:meal:gone","target":"SO:meal:never"}')
      expect(200, "DELETE", "collections/meal/gone/")
      local got = expect(200, "GET", "enrich/feed/user/cook2/").results[1]
      assert.are.same({ error = "ReferenceNotFound", reference = "SO:meal:gone", reference_type = "object",
        collection = "meal", id = "gone" }, got.object)
      assert.are.same({ error = "ReferenceNotFound", reference = "SO:meal:never", reference_type = "object",
        collection = "meal", id = "never" }, got.target)
      assert.are.equal("collection,error,id,reference,reference_type", keys(got.object))
    end)
  end)

  it("answers 405 for methods a collections path does not take", function()
    assert.are.equal(405, (call("PUT", "collections/", "{}")))
    assert.are.equal(405, (call("GET", "collections/food/")))
    assert.are.equal(405, (call("POST", "collections/food/x/", "{}")))
  end)

  it("logged no unexpected Lua errors", function()
    local log = s:error_log()
    assert.is_nil(log:find("unexpected error", 1, true), log)
    assert.is_nil(log:find("lua entry thread aborted", 1, true), log)
    assert.is_nil(log:find("[error]", 1, true), log)
  end)
end)
