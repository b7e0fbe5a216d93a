-- The query rules of the local server (stream_local.rules): paged reads, follow lists,
-- follow_many's activity_copy_limit and a reaction filter's limit, each a rule table,
-- answering an out-of-range value with 400 code 4 naming the parameter and its range.

local server = require "helpers.server"
local http = require "helpers.http"

describe("local server query rules", function()
  local s, api

  setup(function()
    s = server.start()
    api = http.api(s)
  end)

  teardown(function()
    if s then s:stop() end
  end)

  local function refused(method, path, query, field, message, body)
    local st, b, raw = api:call(method, path, { query = query, body = body })
    assert.are.equal(400, st, path .. "?" .. query .. ": " .. tostring(raw))
    assert.are.equal(4, b.code, raw)
    assert.truthy(raw:find(field, 1, true), raw)
    assert.truthy(raw:find(message, 1, true), raw)
  end

  it("refuses feed read limits outside 1-100 and negative or non-numeric offsets", function()
    refused("GET", "feed/user/alice/", "limit=0", "limit", "must be a whole number from 1 to 100")
    refused("GET", "feed/user/alice/", "limit=101", "limit", "must be a whole number from 1 to 100")
    refused("GET", "feed/user/alice/", "offset=-1", "offset", "must be a whole number from 0 to 1000000000")
    refused("GET", "feed/user/alice/", "offset=x", "offset", "must be a whole number from 0 to 1000000000")
    local st = api:call("GET", "feed/user/alice/", { query = "limit=100&offset=0" })
    assert.are.equal(200, st)
  end)

  it("refuses follow list limits above 500", function()
    refused("GET", "feed/user/alice/followers/", "limit=501", "limit", "must be a whole number from 0 to 500")
    refused("GET", "feed/timeline/alice/follows/", "offset=1.5", "offset", "must be a whole number from 0 to")
    local st = api:call("GET", "feed/user/alice/followers/", { query = "limit=0" })
    assert.are.equal(200, st)
  end)

  it("refuses follow_many's activity_copy_limit above 1000", function()
    refused("POST", "follow_many/", "activity_copy_limit=1001", "activity_copy_limit",
      "activity_copy_limit must be a non-negative number not greater than 1000", "[]")
  end)

  it("caps a reaction filter's limit at 25 and refuses 0", function()
    refused("GET", "reaction/activity_id/00000000-0000-0000-0000-000000000000/", "limit=0", "limit",
      "must be a whole number of at least 1 (above 25 reads as 25)")
    local st, _, raw = api:call("GET", "reaction/activity_id/00000000-0000-0000-0000-000000000000/",
      { query = "limit=1000" })
    assert.are.equal(200, st, raw)
  end)
end)
