-- Concurrency of activity updates and collection writes across nginx workers (2
-- workers): each request is one transaction, so concurrent read-modify-write updates of
-- one activity lose nothing, and of concurrent adds of one collection id exactly one
-- wins. Requests run as parallel curl processes, bounded in number (40) and time
-- (curl's 30 s limit each).

local server = require "helpers.server"
local http = require "helpers.http"
local cjson = require "cjson"

describe("local server update and collection concurrency (2 workers)", function()
  local s, api, auth

  setup(function()
    s = server.start({ workers = 2 })
    api = http.api(s)
    auth = { Authorization = api:token(), ["stream-auth-type"] = "jwt" }
  end)

  teardown(function()
    if s then s:stop() end
  end)

  local N = 40

  local function run(list)
    for _, r in ipairs(list) do
      r[3].headers = auth
      r[3].timeout = 30
    end
    return http.concurrent(list)
  end

  it("concurrent partial updates of one activity each keep their change", function()
    local st, a, raw = api:call("POST", "feed/user/conc/", { body = '{"actor":"a","verb":"v","object":"o"}' })
    assert.are.equal(201, st, raw)
    local list = {}
    for i = 1, N do
      list[i] = { "POST", api:url("activity/"), { body = cjson.encode({ changes = { {
        id = a.id, set = { ["k" .. i] = i, ["nested.k" .. i] = i } } } }) } }
    end
    for _, r in ipairs(run(list)) do assert.are.equal(201, r.status, r.body) end
    local b
    st, b, raw = api:call("GET", "activities/", { query = "ids=" .. a.id })
    assert.are.equal(200, st, raw)
    local got = b.results[1]
    for i = 1, N do
      assert.are.equal(i, got["k" .. i], "k" .. i)
      assert.are.equal(i, got.nested["k" .. i], "nested.k" .. i)
    end
  end)

  it("of concurrent adds of one collection id exactly one wins, the others are 409", function()
    local list = {}
    for i = 1, N do
      list[i] = { "POST", api:url("collections/race/"), { body = cjson.encode({ id = "one", data = { n = i } }) } }
    end
    local winner
    local counts = {}
    for _, r in ipairs(run(list)) do
      counts[r.status] = (counts[r.status] or 0) + 1
      if r.status == 201 then winner = cjson.decode(r.body).data.n end
    end
    assert.are.same({ [201] = 1, [409] = N - 1 }, counts)
    local st, b, raw = api:call("GET", "collections/race/one/")
    assert.are.equal(200, st, raw)
    assert.are.equal(winner, b.data.n)
  end)

  it("concurrent updates of one collection entry leave one whole data object", function()
    assert.are.equal(201, (api:call("POST", "collections/race/", { body = '{"id":"two","data":{"n":0}}' })))
    local list = {}
    for i = 1, N do
      list[i] = { "PUT", api:url("collections/race/two/"), { body = cjson.encode({ data = { n = i, m = i } }) } }
    end
    for _, r in ipairs(run(list)) do assert.are.equal(201, r.status, r.body) end
    local st, b, raw = api:call("GET", "collections/race/two/")
    assert.are.equal(200, st, raw)
    assert.are.equal(b.data.n, b.data.m)
    assert.is_true(b.data.n >= 1 and b.data.n <= N)
  end)

  it("logged no unexpected Lua errors", function()
    local log = s:error_log()
    assert.is_nil(log:find("unexpected error", 1, true), log)
    assert.is_nil(log:find("lua entry thread aborted", 1, true), log)
  end)
end)
