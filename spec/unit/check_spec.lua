-- The argument rules every API area shares (lua/stream/check.lua).
local core = require "stream.core"
local check = require "stream.check"

-- The message of f() run from a chunk named "caller.lua" (line 1).
local function raised_at_caller(f, ...)
  local args = { ... }
  local chunk = (loadstring or load)("local f, a, b, c, d = ... local r = f(a, b, c, d) return r", "=caller.lua")
  local ok, msg = pcall(chunk, f, args[1], args[2], args[3], args[4])
  assert.is_false(ok)
  return msg
end

describe("check.opts", function()
  it("copies the table and raises at the caller's line naming the function and key", function()
    local given = { a = 1 }
    local out = check.opts(given, { a = true }, "thing:do")
    assert.same({ a = 1 }, out)
    assert.are_not.equal(given, out)
    assert.same({}, check.opts(nil, {}, "thing:do"))
    local function method(opts)
      local o = check.opts(opts, { a = true }, "thing:do")
      return o
    end
    assert.matches("^caller%.lua:1: thing:do: unknown option 'b'$", raised_at_caller(method, { b = 1 }))
    assert.matches("^caller%.lua:1: thing:do: options must be a table, got string$",
      raised_at_caller(method, "x"))
  end)
end)

describe("check.id", function()
  it("accepts 1-255 of A-Z a-z 0-9 _ -", function()
    assert.is_nil(check.id("a-Z_09"))
    assert.is_nil(check.id(string.rep("x", 255)))
  end)

  it("returns an invalid error naming the field, the value cut after 40 characters", function()
    local err = check.id(string.rep("y", 300), "user_id", { method = "GET", path = "user/" })
    assert.equal("invalid", err.kind)
    assert.is_false(err.sent)
    assert.is_table(err.fields.user_id)
    assert.matches('^user_id "' .. string.rep("y", 40) .. '%.%.%." must be 1 to 255', err.detail)
    assert.equal("id", next(check.id("a b").fields))
    assert.is_table(check.id(""))
  end)

  it("turns integers into decimal text and raises for other types", function()
    assert.equal("42", check.id_arg(42, "f"))
    local function method(id)
      local text = check.id_arg(id, "users:get")
      return text
    end
    assert.matches("^caller%.lua:1: users:get: id must be a string, got table$", raised_at_caller(method, {}))
  end)
end)

describe("check.slug", function()
  it("accepts letters, digits and _ and hints at feed(slug, id) for a ':'", function()
    assert.is_nil(check.slug("timeline_2"))
    assert.is_table(check.slug("a-b"))
    local err = check.slug("user:1")
    assert.matches('feed%("user", "1"%), not feed%("user:1"%)', err.detail)
  end)
end)

describe("check.object", function()
  -- what check.object encodes with: the client's pipeline (codec:encode)
  local codec = { encode = function(_, v, field) return core.json_encode(v, field) end }

  it("encodes nil as {}, refuses arrays, checks the size, names the field", function()
    assert.equal("{}", check.object(codec, nil, "data"))
    assert.equal('{"a":1}', check.object(codec, { a = 1 }, "data"))
    local _, err = check.object(codec, { 1, 2 }, "data")
    assert.matches("data must be a JSON object", err.detail)
    _, err = check.object(codec, { s = string.rep("x", 100) }, "extra", nil, 50, 0, "the extra data")
    assert.matches("^the extra data is %d+ bytes, over the 50%-byte limit$", err.detail)
    assert.is_table(err.fields.extra)
    _, err = check.object(codec, { f = print }, "data")
    assert.matches("^data%.f", err.detail)
  end)
end)

describe("check.ids and check.escape", function()
  it("refuses an empty list or a bad id", function()
    assert.is_nil(check.ids({ "a", "b" }))
    assert.is_table(check.ids({}))
    assert.is_table(check.ids({ "a", "b/c" }))
  end)

  it("escapes everything but unreserved characters", function()
    assert.equal("a-b_c.d~e%20%2F%3F%26%3D%25", check.escape("a-b_c.d~e /?&=%"))
  end)

  describe("header_lines", function()
    it("writes a header map as lines in name order, with the given line end", function()
      assert.same({ "A: 1\r\n", "B: 2\r\n" }, check.header_lines({ B = "2", A = "1" }, "t", "h", "\r\n"))
      assert.same({ "X: y" }, check.header_lines({ X = "y" }, "t", "h"))
      assert.same({}, check.header_lines(nil, "t", "h"))
    end)

    it("raises for a line break or a non-string, naming the map", function()
      assert.has_error(function() check.header_lines({ X = "a\r\nEvil: 1" }, "t", "headers") end,
        "t: headers must map names to values without line breaks")
      assert.has_error(function() check.header_lines({ X = 1 }, "t", "headers") end)
    end)
  end)
end)
