-- The server's strict JSON codec (server/lua/stream_local/json.lua), loaded directly
-- under Lua 5.4: it is plain Lua so the same file runs inside nginx (LuaJIT).

package.path = "server/lua/?.lua;" .. package.path
local json = require "stream_local.json"

local function roundtrip(text)
  local tree, err, pos = json.parse(text)
  assert(tree ~= nil, "parse failed: " .. tostring(err) .. " at " .. tostring(pos))
  return json.encode(tree)
end

local function rejects(text, pattern)
  local tree, err, pos = json.parse(text)
  assert.is_nil(tree, "accepted: " .. text)
  assert.is_string(err)
  assert.is_number(pos)
  if pattern then assert.matches(pattern, err) end
end

describe("server JSON codec", function()
  describe("numbers", function()
    it("keeps every number token exactly as written", function()
      for _, n in ipairs({ "0", "-0", "9007199254740993", "-9223372036854775808",
        "9223372036854775807", "18446744073709551616", "0.1", "1e-300", "5e-324",
        "1.7976931348623157e308", "2.5E+10", "1.0", "-12.50e-3" }) do
        assert.are.equal("[" .. n .. "]", roundtrip("[" .. n .. "]"))
      end
    end)

    it("rejects leading zeros, bare dots, missing digits, plus signs, hex, NaN", function()
      for _, t in ipairs({ "01", "-01", "1.", ".5", "1e", "1e+", "+1", "0x10", "NaN",
        "Infinity", "-", "1.e5", "--1" }) do
        rejects(t)
      end
    end)
  end)

  describe("strings", function()
    it("decodes escapes, surrogate pairs included, to UTF-8", function()
      local tree = json.parse('"\\u00e9\\ud83d\\ude00\\n\\t\\"\\\\\\/\\b\\f\\r"')
      assert.are.equal("\195\169\240\159\152\128\n\t\"\\/\b\f\r", tree)
    end)

    it("writes raw UTF-8 and escapes only quotes, backslashes and control characters", function()
      assert.are.equal('"é😀\\n\\u0000\\u001f/\\"\\\\"',
        roundtrip('"\\u00e9\\ud83d\\ude00\\n\\u0000\\u001F\\/\\"\\\\"'))
    end)

    it("quote() replaces invalid UTF-8 from outside the parser by U+FFFD", function()
      assert.are.equal('"a\239\191\189b\195\169\239\191\189\239\191\189"', json.quote("a\255b\195\169\192\175"))
    end)

    it("accepts raw multi-byte UTF-8 up to U+10FFFF", function()
      local s = '"\223\191\239\191\191\244\143\191\191"'
      assert.are.equal(s, roundtrip(s))
    end)

    it("rejects lone and reversed surrogates", function()
      rejects('"\\ud83d"', "surrogate")
      rejects('"\\ude00"', "surrogate")
      rejects('"\\ude00\\ud83d"', "surrogate")
      rejects('"\\ud83d\\u0041"', "surrogate")
    end)

    it("rejects bad escapes and raw control characters", function()
      rejects('"\\x41"', "escape")
      rejects('"\\u12"', "escape")
      rejects('"\\u12G4"', "escape")
      rejects('"a\nb"', "control")
      rejects('"a\0b"', "control")
      rejects('"abc', "unterminated")
    end)

    it("rejects invalid UTF-8: stray continuation, overlong, surrogate, too high, truncated", function()
      for _, bytes in ipairs({ "\128", "\192\175", "\224\128\175", "\237\160\128",
        "\244\144\128\128", "\245\128\128\128", "\226\130", "\255" }) do
        rejects('"' .. bytes .. '"', "UTF%-8")
      end
    end)
  end)

  describe("structure", function()
    it("keeps object keys in input order", function()
      assert.are.equal('{"z":1,"a":2,"m":{"y":[],"b":{}}}', roundtrip(' { "z" : 1 , "a":2,"m":{"y":[ ],"b":{ }} } '))
    end)

    it("writes the canonical form with keys sorted at every depth, skipping top-level keys only", function()
      local tree = json.parse('{"z":1,"id":"x","a":[{"b":2,"a":1}],"m":{"id":3,"c":true}}')
      assert.are.equal('{"a":[{"a":1,"b":2}],"m":{"c":true,"id":3},"z":1}', json.canonical(tree, { id = true }))
      assert.are.equal('{"z":1,"id":"x","a":[{"b":2,"a":1}],"m":{"id":3,"c":true}}', json.encode(tree))
    end)

    it("rejects trailing commas, missing commas, trailing garbage and empty input", function()
      rejects("[1,]")
      rejects('{"a":1,}')
      rejects("[1 2]")
      rejects('{"a" 1}')
      rejects("{} x", "trailing")
      rejects("")
      rejects("   ")
      rejects("[")
      rejects("{'a':1}")
    end)

    it("rejects duplicate keys", function()
      rejects('{"a":1,"a":2}', "duplicate")
    end)

    it("allows nesting up to the depth limit and no deeper", function()
      local d = json.MAX_DEPTH
      assert.is_truthy(json.parse(string.rep("[", d) .. string.rep("]", d)))
      rejects(string.rep("[", d + 1) .. string.rep("]", d + 1), "nesting")
      rejects(string.rep('{"a":', d + 1) .. "1" .. string.rep("}", d + 1), "nesting")
    end)

    it("parses literals and reports kinds", function()
      local t = json.parse('{"t":true,"f":false,"n":null,"s":"x","i":1,"a":[],"o":{}}')
      assert.are.equal("object", json.kind(t))
      assert.are.equal("boolean", json.kind(t:get("t")))
      assert.are.equal("null", json.kind(t:get("n")))
      assert.are.equal("string", json.kind(t:get("s")))
      assert.are.equal("number", json.kind(t:get("i")))
      assert.are.equal("array", json.kind(t:get("a")))
      assert.are.equal("object", json.kind(t:get("o")))
    end)

    it("reports the byte offset of an error", function()
      local _, _, pos = json.parse('{"a":[1,2,]}')
      assert.are.equal(11, pos)
    end)
  end)
end)
