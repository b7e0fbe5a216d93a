-- Concurrency of the local server across its nginx workers: creates of one id race to
-- exactly one winner, concurrent updates never leave a mixed record.

local server = require "helpers.server"
local http = require "helpers.http"

describe("local server concurrency (2 workers)", function()
  local s, api, auth

  setup(function()
    s = server.start({ workers = 2 })
    api = http.api(s)
    auth = { Authorization = api:token(), ["stream-auth-type"] = "jwt" }
  end)

  teardown(function()
    if s then s:stop() end
  end)

  local function count(results)
    local c = {}
    for _, r in ipairs(results) do c[r.status] = (c[r.status] or 0) + 1 end
    return c
  end

  it("20 concurrent creates of one id give exactly one 201 and nineteen 409", function()
    local list = {}
    for i = 1, 20 do
      list[i] = { "POST", api:url("user/"), { headers = auth, body = '{"id":"race-1","data":{"writer":' .. i .. '}}' } }
    end
    local c = count(http.concurrent(list))
    assert.are.same({ [201] = 1, [409] = 19 }, c)
  end)

  it("20 concurrent get-or-creates of one id all get 201 and the same user", function()
    local list = {}
    for i = 1, 20 do
      list[i] = { "POST", api:url("user/", { query = "get_or_create=true" }),
        { headers = auth, body = '{"id":"race-2","data":{"writer":' .. i .. '}}' } }
    end
    local results = http.concurrent(list)
    local created = {}
    for _, r in ipairs(results) do
      assert.are.equal(201, r.status)
      created[r.body:match('"created_at":"([^"]+)"') .. r.body:match('"data":({[^}]*})')] = true
    end
    local n = 0
    for _ in pairs(created) do n = n + 1 end
    assert.are.equal(1, n)
  end)

  it("20 concurrent updates leave one of the written records, whole", function()
    api:call("POST", "user/", { body = '{"id":"race-3","data":{}}' })
    local list = {}
    for i = 1, 20 do
      local pad = string.rep(string.char(96 + i), 200)
      list[i] = { "PUT", api:url("user/race-3/"),
        { headers = auth, body = '{"data":{"writer":' .. i .. ',"pad":"' .. pad .. '","check":' .. i .. '}}' } }
    end
    local results = http.concurrent(list)
    local stamps = {}
    for _, r in ipairs(results) do
      assert.are.equal(201, r.status)
      stamps[#stamps + 1] = r.body:match('"updated_at":"([^"]+)"')
    end
    local _, got = api:call("GET", "user/race-3/")
    local w = got.data.writer
    assert.are.equal(w, got.data.check)
    assert.are.equal(string.rep(string.char(96 + w), 200), got.data.pad)
    -- updated_at values handed out are all different (each update moved it)
    table.sort(stamps)
    for i = 2, #stamps do assert.are_not.equal(stamps[i - 1], stamps[i]) end
  end)

  it("concurrent updates and a delete end with the user either gone or whole", function()
    api:call("POST", "user/", { body = '{"id":"race-4","data":{"v":0}}' })
    local list = {}
    for i = 1, 10 do
      list[#list + 1] = { "PUT", api:url("user/race-4/"),
        { headers = auth, body = '{"data":{"v":' .. i .. ',"w":' .. i .. '}}' } }
    end
    list[#list + 1] = { "DELETE", api:url("user/race-4/"), { headers = auth } }
    local c = count(http.concurrent(list))
    assert.are.equal(1, c[200])
    local st, got = api:call("GET", "user/race-4/")
    if st == 200 then
      -- an update can only have run before the delete, so the user must be gone
      error("user resurrected after delete: " .. tostring(got and got.data and got.data.v))
    end
    assert.are.equal(404, st)
    assert.are.equal(11, (c[201] or 0) + (c[404] or 0) + c[200])
  end)

  it("logged no unexpected Lua errors", function()
    local log = s:error_log()
    assert.is_nil(log:find("unexpected error", 1, true), log)
    assert.is_nil(log:find("lua entry thread aborted", 1, true), log)
  end)
end)
