-- The run-time rules every API area shares (lua/stream/rules.lua).
local rules = require "stream.rules"

local UUID = "0b9b8b5c-2f3e-11ef-9d4a-0242ac120002"

describe("rules.activity_id", function()
  it("accepts a Stream UUID, a foreign id such as post:1 and 255 characters", function()
    assert.is_nil(rules.activity_id(UUID))
    assert.is_nil(rules.activity_id("post:1"))
    assert.is_nil(rules.activity_id("a.b~c@d_e-f"))
    assert.is_nil(rules.activity_id(string.rep("x", 255)))
  end)

  it("refuses what would break a path, a query or a comma-joined list", function()
    for _, bad in ipairs({ "", string.rep("x", 256), "a/b", "a?b", "a#b", "a,b", "a b",
      "a%2Fb", "a\nb", ".", ".." }) do
      local err = rules.activity_id(bad, "id", { method = "GET", path = "x/" })
      assert.is_table(err, bad)
      assert.equal("invalid", err.kind)
      assert.is_table(err.fields.id)
    end
  end)

  it("names the label in the message and shows the value without a raw newline", function()
    local err = rules.activity_id("a\nb", "ids", nil, "ids[2]")
    assert.matches("^ids%[2%] \"a\\010b\"", err.detail)
    assert.is_nil(err.detail:find("\n", 1, true))
    assert.is_table(err.fields.ids)
  end)
end)

describe("rules.foreign_id", function()
  it("accepts anything in a query value but ',' and control characters", function()
    assert.is_nil(rules.foreign_id("post 1/é", "f"))
    assert.is_table(rules.foreign_id("a,b", "f"))
    assert.is_table(rules.foreign_id("a\tb", "f"))
    assert.is_table(rules.foreign_id("", "f"))
  end)
end)

describe("rules.count and rules.paging", function()
  it("holds the server's ranges", function()
    assert.same({ 1, 100 }, rules.RANGES.feed_limit)
    assert.same({ 1, 500 }, rules.RANGES.follow_limit)
    assert.equal(1, rules.RANGES.reaction_limit[1])
    assert.is_true(rules.RANGES.reaction_limit[2] > 25)
    assert.equal(0, rules.RANGES.offset[1])
  end)

  it("returns invalid for a number out of range and raises for a wrong type", function()
    assert.equal(100, rules.count(100, "limit", "feed_limit", "f"))
    local none, err = rules.count(101, "limit", "feed_limit", "f")
    assert.is_nil(none)
    assert.equal("invalid", err.kind)
    assert.matches("limit 101 is out of range: 1 to 100", err.detail)
    assert.is_nil(select(2, rules.count(0, "offset", "offset", "f")))
    assert.equal("invalid", select(2, rules.count(-1, "offset", "offset", "f")).kind)
    assert.has_error(function() rules.count("2", "limit", "feed_limit", "f") end,
      "f: option 'limit' must be an integer, got string")
    assert.has_error(function() rules.count(1.5, "limit", "feed_limit", "f") end)
  end)

  it("puts limit, offset and cursors in the query, a cursor through the activity id rule", function()
    local q = {}
    assert.is_true(rules.paging({ limit = 26, id_lt = { id = UUID } }, q, "reaction_limit", "f"))
    assert.same({ limit = 26, id_lt = UUID }, q)
    local ok, err = rules.paging({ id_gt = "a/b" }, {}, "feed_limit", "f")
    assert.is_nil(ok)
    assert.equal("invalid", err.kind)
  end)
end)

describe("rules.user_option", function()
  it("always runs the user id check and raises for a wrong type", function()
    assert.is_nil(rules.user_option(nil, "user_id", "f"))
    assert.equal("bob", rules.user_option("bob", "user_id", "f"))
    local none, err = rules.user_option("bad id!", "user_id", "f")
    assert.is_nil(none)
    assert.equal("invalid", err.kind)
    assert.has_error(function() rules.user_option(42, "user_id", "f") end,
      "f: option 'user_id' must be a user id or a user handle, got number")
  end)
end)

describe("rules.info", function()
  it("keeps a sendable segment whole and cuts any other one the same way", function()
    assert.same({ method = "GET", path = "user/alice/" }, rules.info("GET", "user", "alice"))
    local long = string.rep("y", 300)
    assert.equal("user/" .. string.rep("y", 40) .. ".../", rules.info("GET", "user", long).path)
    assert.equal("feed/user/a\\010b/", rules.info("GET", "feed", "user", "a\nb").path)
  end)
end)

describe("rules.OBJECT_BYTES", function()
  it("is Stream's 10240-byte object limit, checked on encoded text", function()
    assert.equal(10240, rules.OBJECT_BYTES)
    assert.is_nil(rules.fits(string.rep("x", 10240), "the thing", "data"))
    assert.matches("the thing is 10241 bytes, over the 10240%-byte limit",
      rules.fits(string.rep("x", 10241), "the thing", "data").detail)
  end)
end)
