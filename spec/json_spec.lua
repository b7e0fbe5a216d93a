-- The JSON codec of the C core: stream.core.json_encode / json_decode /
-- null / array / array_mt.
--
-- This file runs on Lua 5.1, LuaJIT, 5.3 and 5.4 alike (no integer
-- literals beyond 2^53, bitwise operators, \x or \u{} escapes, utf8 or
-- string.pack). What only exists from 5.3 on (the integer subtype, 64-bit
-- integers) is pinned down in spec/lua53/json_integers_spec.lua.
local core = require "stream.core"
local cjson = require "cjson"

-- busted runs specs in an environment where each global lookup walks a
-- chain of tables; the loops below use locals.
local type, pairs, ipairs, tostring, tonumber = type, pairs, ipairs, tostring, tonumber
local error, math, string, table = error, math, string, table

-- In the aggressive-GC runs (valgrind, sanitizers) every allocation does a
-- collector step: the volume tests shrink to a twentieth there.
local function volume(n)
  if os.getenv("STREAM_SPEC_AGGRESSIVE_GC") == "1" then
    return math.max(1, math.floor(n / 20))
  end
  return n
end

-- UTF-8 bytes of a code point (Lua 5.1 has neither utf8.char nor "\u{...}").
local function U(cp)
  if cp < 0x80 then return string.char(cp) end
  if cp < 0x800 then
    return string.char(0xC0 + math.floor(cp / 0x40), 0x80 + cp % 0x40)
  end
  if cp < 0x10000 then
    return string.char(0xE0 + math.floor(cp / 0x1000), 0x80 + math.floor(cp / 0x40) % 0x40, 0x80 + cp % 0x40)
  end
  return string.char(0xF0 + math.floor(cp / 0x40000), 0x80 + math.floor(cp / 0x1000) % 0x40,
    0x80 + math.floor(cp / 0x40) % 0x40, 0x80 + cp % 0x40)
end

-- -0.0 made at run time: Lua 5.1 may fold a -0.0 literal into 0.
local NEG_ZERO = -1 / math.huge

-- How an integral float is written: "1.0" where Lua has an integer subtype
-- (5.3+, so the subtype survives), "1" on 5.1/LuaJIT (every number is a double).
local HAS_INTEGERS = math.type ~= nil
local ONE_POINT_ZERO = HAS_INTEGERS and "1.0" or "1"

-- A finalizer that runs when `fn` is collected: tables take __gc from 5.2 on,
-- 5.1 and LuaJIT need a userdata (newproxy).
local newproxy = newproxy -- luacheck: ignore 113 (5.1/LuaJIT only)
local function with_finalizer(fn)
  if newproxy then
    local p = newproxy(true)
    getmetatable(p).__gc = fn
    return p
  end
  return setmetatable({}, { __gc = fn })
end

local encode, decode = core.json_encode, core.json_decode
local null, array = core.null, core.array

-- Deep comparison. strict: numbers must also agree on the sign of zero,
-- and on math.type where Lua has it. Returns nil when equal, else where they differ.
local function differ(a, b, strict)
  if type(a) ~= type(b) then
    return ": " .. type(a) .. " vs " .. type(b)
  end
  if type(a) == "number" then
    if a ~= b then
      return (": %.17g vs %.17g"):format(a, b)
    end
    if strict and HAS_INTEGERS and math.type(a) ~= math.type(b) then
      return (": %s %.17g vs %s %.17g"):format(math.type(a), a, math.type(b), b)
    end
    if strict and a == 0 and 1 / a ~= 1 / b then
      return (": %.17g vs %.17g (sign of zero)"):format(a, b)
    end
    return nil
  end
  if type(a) ~= "table" then
    if a ~= b then
      return ": " .. tostring(a) .. " vs " .. tostring(b)
    end
    return nil
  end
  for k, v in pairs(a) do
    local diff = differ(v, b[k], strict)
    if diff then return "[" .. tostring(k) .. "]" .. diff end
  end
  for k in pairs(b) do
    if a[k] == nil then
      return "[" .. tostring(k) .. "]: missing vs present"
    end
  end
  return nil
end

local function same(a, b, strict)
  local diff = differ(a, b, strict)
  if diff then return false, "value" .. diff end
  return true
end

local function assert_same(expected, actual, strict)
  local ok, where = same(expected, actual, strict)
  assert(ok, where)
end

local function nested(n, leaf)
  local top = leaf or {}
  for _ = 2, n do top = { top } end
  return top
end

describe("json_encode", function()
  describe("numbers", function()
    it("writes integers exactly up to 2^53-1", function()
      assert.equal("0", encode(0))
      assert.equal("-17", encode(-17))
      assert.equal("9007199254740991", encode(9007199254740991))
      assert.equal("-9007199254740991", encode(-9007199254740991))
      assert.equal("[1,-1,100000000000000]", encode({ 1, -1, 100000000000000 }))
    end)

    it("writes 2^53 and larger integral doubles so they read back", function()
      assert.equal("9007199254740992.0", encode(2 ^ 53))
      assert.equal(2 ^ 53, decode(encode(2 ^ 53)))
      assert.equal(2 ^ 63, decode(encode(2 ^ 63)))
    end)

    it("writes floats in the shortest %.15g/%.16g/%.17g form that reads back", function()
      local cases = {
        { 0.1, "0.1" },
        { 1 / 3, "0.3333333333333333" },
        { 0.1 + 0.2, "0.30000000000000004" },
        { 5e-324, "5e-324" }, { 2.2250738585072e-308, "2.2250738585072e-308" },
        { 2.2250738585072014e-308, "2.2250738585072014e-308" },
        { 1.7976931348623157e308, "1.7976931348623157e+308" },
        { 1e21, "1e+21" },
        { 1e300, "1e+300" },
        { 1e-7, "1e-07" },
        { 123456789.125, "123456789.125" },
        { -2.5, "-2.5" },
        { math.pi, "3.141592653589793" },
      }
      for _, c in ipairs(cases) do
        local text = encode(c[1])
        assert.equal(c[2], text)
        assert.equal(c[1], tonumber(text))
        assert.equal(c[1], decode(text))
      end
    end)

    it("writes -0.0 as -0.0 and reads it back with its sign", function()
      assert.equal("-0.0", encode(NEG_ZERO))
      assert.equal(-math.huge, 1 / decode(encode(NEG_ZERO)))
      assert.equal("[-0.0]", encode({ NEG_ZERO }))
    end)

    it("reads back what it writes", function()
      for _, v in ipairs({ 0, 1, -1, 2 ^ 60, 1e15, 1e-3, 123456.5, -2 ^ 52 }) do
        assert.equal(v, decode(encode(v)))
      end
    end)

    it("rejects NaN and infinities, naming the path", function()
      assert.same({ nil, "data.n: NaN cannot be encoded" }, { encode({ n = 0 / 0 }, "data") })
      assert.same({ nil, "value: inf cannot be encoded" }, { encode(math.huge) })
      assert.same({ nil, "value[2]: -inf cannot be encoded" }, { encode({ 1, -math.huge }) })
    end)
  end)

  describe("strings", function()
    it("escapes quote, backslash and control characters", function()
      assert.equal([["\"\\\b\f\n\r\t"]], encode("\"\\\b\f\n\r\t"))
      assert.equal([["\u0000\u0001\u001f"]], encode("\0\1\31"))
      assert.equal([["a\u0000b"]], encode("a\0b"))
    end)

    it("writes '/', DEL and non-ASCII as they are", function()
      assert.equal('"a/b\127"', encode("a/b\127"))
      assert.equal('"é€😀' .. U(0x10FFFF) .. '"', encode("é€😀" .. U(0x10FFFF)))
      local edges = U(0xD7FF) .. U(0xE000) .. U(0xFFFF)
      assert.equal('"' .. edges .. '"', encode(edges))
    end)

    it("rejects invalid UTF-8 with the byte offset", function()
      -- (decimal escapes: Lua 5.1 has no \x)
      local bad = {
        { "abcd\255", 5 },               -- never valid
        { "\128", 1 },                   -- lone continuation byte
        { "\192\175", 1 },               -- overlong 2 bytes
        { "\193\191", 1 },               -- overlong 2 bytes
        { "ab\224\128\175", 3 },         -- overlong 3 bytes
        { "\240\143\191\191", 1 },       -- overlong 4 bytes
        { "x\237\160\128", 2 },          -- U+D800
        { "\237\191\191", 1 },           -- U+DFFF
        { "\244\144\128\128", 1 },       -- U+110000
        { "\245\128\128\128", 1 },
        { "abc\226\130", 4 },            -- truncated
        { "\226\130x", 1 },              -- truncated inside
        { "\240\159\152", 1 },           -- truncated 4 bytes
      }
      for _, c in ipairs(bad) do
        assert.same({ nil, "data: invalid UTF-8 in string at byte " .. c[2] }, { encode(c[1], "data") })
      end
      assert.same({ nil, "value.k: invalid UTF-8 in string at byte 2" }, { encode({ k = "a\255" }) })
      assert.same({ nil, "value[1]: invalid UTF-8 in key at byte 1" }, { encode({ { ["\255"] = 1 } }) })
    end)

    it("escapes object keys like strings", function()
      assert.equal([[{"a\"b\n":1}]], encode({ ["a\"b\n"] = 1 }))
      assert.equal([[{"":true}]], encode({ [""] = true }))
    end)
  end)

  describe("tables", function()
    it("writes keys 1..n as an array and string keys as an object", function()
      assert.equal("[1,2,3]", encode({ 1, 2, 3 }))
      assert.equal('{"a":1}', encode({ a = 1 }))
      local obj = decode(encode({ a = 1, b = { c = "x" }, d = { 1, { 2 } } }))
      assert.same({ a = 1, b = { c = "x" }, d = { 1, { 2 } } }, obj)
    end)

    it("writes an empty unmarked table as {} and a marked one as []", function()
      assert.equal("{}", encode({}))
      assert.equal("[]", encode(array({})))
      local text = encode({ list = array({}), obj = {} })
      assert.is_true(text == '{"list":[],"obj":{}}' or text == '{"obj":{},"list":[]}', text)
    end)

    it("rejects sparse arrays, naming the first missing index", function()
      assert.same({ nil, "data.list: sparse array (missing index 2)" },
        { encode({ list = { 1, nil, 3 } }, "data") })
      assert.same({ nil, "value: sparse array (missing index 1)" }, { encode({ [2] = "x" }) })
      assert.same({ nil, "value: sparse array (missing index 4)" }, { encode({ 1, 2, 3, [10] = 4 }) })
      assert.same({ nil, "value: sparse array (missing index 2)" }, { encode(array({ [1] = 1, [3] = 3 })) })
    end)

    it("rejects mixed array and object keys", function()
      assert.same({ nil, "data: mixed array and object keys" }, { encode({ 1, 2, n = 2 }, "data") })
      assert.same({ nil, "value: mixed array and object keys" }, { encode({ a = 1, [5] = 2 }) })
      assert.same({ nil, "value: mixed array and object keys" }, { encode(array({ a = 1 })) })
    end)

    it("rejects keys that are neither strings nor array indices", function()
      assert.same({ nil, "value: boolean key cannot be encoded" }, { encode({ [true] = 1 }) })
      assert.same({ nil, "value: non-integer number key cannot be encoded" }, { encode({ [1.5] = 1 }) })
      assert.same({ nil, "value: non-integer number key cannot be encoded" }, { encode({ 1, [2.5] = 1 }) })
      assert.same({ nil, "value: table key cannot be encoded" }, { encode({ [{}] = 1 }) })
      assert.same({ nil, "value: array index 0 out of range" }, { encode({ [0] = 1, [1] = 2 }) })
      assert.same({ nil, "value: array index -3 out of range" }, { encode({ [-3] = 1 }) })
    end)

    it("allows a table that appears twice without a cycle", function()
      local shared = { 1, { x = 2 } }
      assert.equal('[[1,{"x":2}],[1,{"x":2}]]', encode({ shared, shared }))
      local t = { a = shared, b = { c = shared } }
      assert_same({ a = shared, b = { c = shared } }, decode(encode(t)))
    end)

    it("reports a cycle at the key that closes it", function()
      local data = { friends = { 1, 2 } }
      data.friends[3] = data
      assert.same({ nil, "data.friends[3]: cycle" }, { encode(data, "data") })
      local t = {}
      t[1] = t
      assert.same({ nil, "value[1]: cycle" }, { encode(t) })
    end)

    it("reports a cycle that closes deeper than 128 levels", function()
      local top = { n = {} }
      local cur = top.n
      for _ = 1, 300 do cur.n = {}; cur = cur.n end
      cur.n = top.n
      local res, err = encode(top)
      assert.is_nil(res)
      assert.matches("^value%.n%.n%.n%.n%.n%.n%.n%.n%[%.%.%.%]%.n%.n%.n%.n%.n%.n%.n%.n: cycle$", err)
    end)

    it("encodes 1000 levels and rejects 1001", function()
      assert.equal(string.rep("[", 1000) .. string.rep("]", 1000), encode(nested(1000, array({}))))
      assert.same({ nil, "value[...]: nesting deeper than 1000" }, { encode(nested(1001)) })
      assert.same({ nil, "data[...]: nesting deeper than 1000" }, { encode({ x = nested(1000) }, "data") })
    end)
  end)

  describe("null and other values", function()
    it("writes null, booleans and nil", function()
      assert.equal("null", encode(null))
      assert.equal("null", encode(nil))
      assert.equal("null", encode())
      assert.equal("true", encode(true))
      assert.equal("[false,null]", encode({ false, null }))
      assert.equal("[1,null,3,null]", encode({ 1, null, 3, null }))
      assert.equal('{"a":null}', encode({ a = null }))
    end)

    it("has null equal to cjson.null", function()
      assert.equal(cjson.null, null)
      assert.equal("userdata", type(null))
    end)

    it("rejects functions, userdata and threads, naming the path", function()
      assert.same({ nil, 'data["my key"].x: function cannot be encoded' },
        { encode({ ["my key"] = { x = print } }, "data") })
      assert.same({ nil, "value: userdata cannot be encoded" }, { encode(io.stdout) })
      assert.same({ nil, "value[1]: thread cannot be encoded" }, { encode({ coroutine.create(function() end) }) })
    end)
  end)

  describe("error paths", function()
    it("writes identifiers as .name, other keys as [\"...\"], indices as [n]", function()
      local function path_of(key)
        local _, err = encode({ [key] = { 1, print } }, "d")
        return (err:gsub(": function cannot be encoded$", ""))
      end
      assert.equal("d.name_1[2]", path_of("name_1"))
      assert.equal('d["1a"][2]', path_of("1a"))
      assert.equal('d["end"][2]', path_of("end"))
      assert.equal('d["a b"][2]', path_of("a b"))
      assert.equal('d["q\\"\\\\"][2]', path_of('q"\\'))
      assert.equal('d["\\n\\1"][2]', path_of("\n\1"))
      assert.equal('d["é"][2]', path_of("é"))
      assert.equal('d[""][2]', path_of(""))
    end)

    it("names the top 'value' unless told otherwise", function()
      assert.same({ nil, "value: function cannot be encoded" }, { encode(print) })
      assert.same({ nil, "body: function cannot be encoded" }, { encode(print, "body") })
    end)

    it("raises only when root is not a string", function()
      assert.has_error(function() encode({}, 42) end)
      assert.has_error(function() encode({}, {}) end)
      assert.equal("{}", encode({}, nil))
    end)
  end)
end)

describe("array", function()
  it("marks a table and returns it", function()
    local t = {}
    assert.equal(t, array(t))
    assert.equal(core.array_mt, getmetatable(t))
    assert.equal(t, array(t)) -- marking twice is fine
    assert.equal("[]", encode(t))
  end)

  it("has a metatable named stream.array", function()
    assert.equal("stream.array", core.array_mt.__name)
  end)

  it("raises for a non-table or a table with another metatable", function()
    assert.has_error(function() array(1) end)
    assert.has_error(function() array(nil) end)
    assert.has_error(function() array(setmetatable({}, {})) end)
  end)
end)

describe("json_decode", function()
  describe("numbers", function()
    it("reads integers", function()
      assert.equal(12, decode("12"))
      assert.equal(-12, decode("-12"))
      assert.equal(9007199254740991, decode("9007199254740991"))
      assert.equal(2 ^ 53, decode("9007199254740992"))
      assert.equal(0, decode("-0"))
      assert.equal(math.huge, 1 / decode("-0")) -- "-0" is the integer 0
    end)

    it("reads integers beyond int64 as the nearest double", function()
      assert.equal(2 ^ 63, decode("9223372036854775808"))
      assert.equal(-2 ^ 63 * 2, decode("-18446744073709551616"))
      assert.equal(1.2345678901234568e29, decode("123456789012345678901234567890"))
    end)

    it("reads fractions and exponents as correctly rounded floats", function()
      local cases = {
        "1.0", "-0.0", "0.1", "1e2", "1E+2", "1e-2", "2.5e-3", "0.30000000000000004",
        "9007199254740993.0", "2.2250738585072014e-308", "2.2250738585072011e-308",
        "4.9e-324", "2.4703282292062327e-324", "2.4703282292062328e-324",
        "1.7976931348623157e308", "1e23", "8.98846567431158e307", "1e-400",
        "0.1000000000000000055511151231257827021181583404541015625",
        "123456789012345678901234567890.5", "7.0e-10", "1448997445238699",
        "0.000000000000000000000000000000000001", "3.14159265358979323846264338",
      }
      for _, s in ipairs(cases) do
        local v, expected = decode(s), tonumber(s)
        assert.equal(expected, v, s)
        assert.equal(expected == 0 and 1 / expected or 0, v == 0 and 1 / v or 0, s)
      end
    end)

    it("reads numbers beyond the double range as infinities", function()
      assert.equal(math.huge, decode("1e400"))
      assert.equal(-math.huge, decode("-1e400"))
    end)
  end)

  describe("strings", function()
    it("reads escapes", function()
      assert.equal("\"\\/\b\f\n\r\t", decode([["\"\\\/\b\f\n\r\t"]]))
      assert.equal("é€", decode([["\u00e9\u20AC"]]))
      assert.equal("a\0b", decode([["a\u0000b"]]))
    end)

    it("joins surrogate pairs and rejects lone surrogates", function()
      assert.equal("😀", decode([["\uD83D\uDE00"]]))
      assert.equal(U(0x10FFFF), decode([["\udbff\udfff"]]))
      assert.equal("x😀y", decode([["x\ud83d\ude00y"]]))
      for _, s in ipairs({ [["\ud83d"]], [["\ud83dx"]], [["\ud83d\u0041"]], [["\ude00"]], [["\ud83d\ud83d"]] }) do
        local v, err = decode(s)
        assert.is_nil(v)
        assert.equal("invalid JSON at byte 2: lone surrogate in \\u escape", err)
      end
    end)

    it("validates raw bytes as UTF-8", function()
      assert.equal("é€😀", decode('"é€😀"'))
      for _, c in ipairs({ { '"ab\255"', 4 }, { '"\192\175"', 2 }, { '"\237\160\128"', 2 },
                           { '"\244\144\128\128"', 2 }, { '"a\\n\226\130"', 5 }, { '"\128"', 2 } }) do
        assert.same({ nil, "invalid JSON at byte " .. c[2] .. ": invalid UTF-8 in string" }, { decode(c[1]) })
      end
    end)

    it("rejects control characters", function()
      assert.same({ nil, "invalid JSON at byte 3: control character in string" }, { decode('"a\tb"') })
      assert.same({ nil, "invalid JSON at byte 2: control character in string" }, { decode('"\0"') })
    end)
  end)

  describe("containers", function()
    it("marks decoded arrays, also empty ones, and leaves objects plain", function()
      local v = decode('{"a":[],"b":[1,[2]],"c":{}}')
      assert.equal(core.array_mt, getmetatable(v.a))
      assert.equal(core.array_mt, getmetatable(v.b))
      assert.equal(core.array_mt, getmetatable(v.b[2]))
      assert.is_nil(getmetatable(v))
      assert.is_nil(getmetatable(v.c))
      assert.equal("[]", encode(v.a))
      assert.equal("{}", encode(v.c))
    end)

    it("keeps [] as [] through decode -> change -> encode", function()
      local list = decode("[1,2]")
      table.remove(list)
      table.remove(list)
      assert.equal("[]", encode(list))
      table.insert(list, "x")
      assert.equal('["x"]', encode(list))
    end)

    it("keeps null in place in arrays and objects", function()
      local v = decode("[1,null,3,null]")
      assert.equal(4, #v)
      assert.equal(null, v[2])
      assert.equal(null, v[4])
      assert.equal("[1,null,3,null]", encode(v))
      assert.same({ null, null }, decode("[null,null]"))
      assert.equal(null, decode('{"a":null}').a)
      assert.equal(null, decode("null"))
    end)

    it("lets the last duplicate key win", function()
      assert.equal(2, decode('{"a":1,"a":2}').a)
    end)

    it("reads any value at the top and skips JSON whitespace", function()
      assert.equal("x", decode('"x"'))
      assert.equal(true, decode(" true "))
      assert.equal(false, decode("false"))
      assert.same({ 1, { a = 2 } }, decode(' \t\r\n[ 1 , { "a" : 2 } ]\n'))
    end)

    it("decodes 1000 levels and rejects 1001", function()
      local ok = decode(string.rep("[", 1000) .. string.rep("]", 1000))
      assert.equal("table", type(ok))
      assert.same({ nil, "invalid JSON at byte 1001: nesting deeper than 1000" },
        { decode(string.rep("[", 1001) .. string.rep("]", 1001)) })
      assert.same({ nil, "invalid JSON at byte 5001: nesting deeper than 1000" },
        { decode(string.rep('{"a":', 1001) .. "1" .. string.rep("}", 1001)) })
    end)
  end)

  describe("malformed input", function()
    it("reports the byte offset and what was expected", function()
      local bad = {
        { "", 1, "unexpected end of input" },
        { "  \n", 4, "unexpected end of input" },
        { "[1,]", 4, "expected value" },
        { "[1,,2]", 4, "expected value" },
        { "[1 2]", 4, "expected ',' or ']'" },
        { "[1,2", 5, "unexpected end of input" },
        { "[", 2, "unexpected end of input" },
        { '{"a":1,}', 8, "expected string key" },
        { '{"a":1 "b":2}', 8, "expected ',' or '}'" },
        { '{"a" 1}', 6, "expected ':'" },
        { "{a:1}", 2, "expected string key" },
        { "{1:2}", 2, "expected string key" },
        { '{"a":', 6, "unexpected end of input" },
        { "01", 1, "leading zero in number" },
        { "-01", 2, "leading zero in number" },
        { "1.", 3, "unexpected end of input" },
        { "1.e5", 3, "expected digit after '.'" },
        { ".5", 1, "expected value" },
        { "+1", 1, "expected value" },
        { "1ex", 3, "expected digit in exponent" },
        { "1e+", 4, "unexpected end of input" },
        { "-", 2, "unexpected end of input" },
        { "[-]", 3, "expected digit" },
        { "NaN", 1, "expected value" },
        { "-Infinity", 2, "expected digit" },
        { "nul", 1, "invalid literal" },
        { "True", 1, "expected value" },
        { "nulll", 5, "unexpected data after the JSON value" },
        { '"abc', 5, "unterminated string" },
        { '"abc\\"', 7, "unterminated string" },
        { '"\\', 3, "unterminated string" },
        { '"a\\x"', 3, "invalid escape" },
        { '"\\u12"', 2, "invalid \\u escape" },
        { '"\\u12G4"', 2, "invalid \\u escape" },
        { "'a'", 1, "expected value" },
        { "// comment\n1", 1, "expected value" },
        { "/* c */ 1", 1, "expected value" },
        { "\239\187\191" .. "1", 1, "expected value" },
        { "[1]\0", 4, "unexpected data after the JSON value" },
        { "\f1", 1, "expected value" },
      }
      assert.is_true(#bad >= 25)
      for _, c in ipairs(bad) do
        local v, err = decode(c[1])
        assert.is_nil(v, c[1])
        assert.equal(("invalid JSON at byte %d: %s"):format(c[2], c[3]), err, c[1])
      end
    end)

    it("rejects trailing garbage", function()
      assert.same({ nil, "invalid JSON at byte 5: unexpected data after the JSON value" }, { decode("[1] x") })
      assert.same({ nil, "invalid JSON at byte 4: unexpected data after the JSON value" }, { decode("[1]]") })
      assert.same({ nil, "invalid JSON at byte 3: unexpected data after the JSON value" }, { decode("1 2") })
      assert.same({ 1 }, decode("[1] \n\t"))
    end)

    it("raises only when the argument is not a string", function()
      assert.has_error(function() decode() end)
      assert.has_error(function() decode(12) end)
      assert.has_error(function() decode({}) end)
    end)
  end)
end)

describe("round trips", function()
  local function user(i)
    return {
      id = "user-" .. i,
      created_at = "2024-05-01T12:00:00.123456Z",
      role = "user",
      online = i % 2 == 0,
      score = i * 1.25,
      visits = i * 1000003,
      ratio = 1 / (i + 1),
      data = {
        name = "Jöhn \"Doe\" " .. i,
        bio = "line 1\nline 2\ttab / slash \\ 😀",
        tags = { "a", "b", "c" },
        friends = array({}),
        nothing = null,
        nested = { deep = { deeper = { 1, 2.5, { x = null } } } },
        flags = { true, false, null, 7 },
      },
    }
  end

  it("round-trips a big document exactly", function()
    local n = volume(2000)
    local doc = { users = {}, meta = { count = n, next = null } }
    for i = 1, n do doc.users[i] = user(i) end
    local text = assert(encode(doc))
    assert.is_true(#text > n * 300)
    local back = assert(decode(text))
    assert_same(doc, back, true)
    assert.equal(text:len(), encode(back):len())
    assert_same(back, decode(encode(back)), true)
  end)

  it("works when a finalizer encodes and decodes in the middle of a call", function()
    -- The cached buffer is in use then; the nested call must take another.
    local doc = {}
    for i = 1, 20 do doc[i] = user(i) end
    local text = encode(doc)
    local inside, reentered, bad = false, 0, nil
    local function garbage()
      for _ = 1, 50 do
        with_finalizer(function()
          if inside then reentered = reentered + 1 end
          local s = encode({ a = { 1, "x\n" } })
          local v = decode('["\\n",{"b":[1.5]}]')
          if s ~= '{"a":[1,"x\\n"]}' or v[1] ~= "\n" or v[2].b[1] ~= 1.5 then bad = s end
        end)
      end
    end
    -- Until some finalizers have run inside our calls (a few rounds).
    for round = 1, 3000 do
      garbage()
      inside = true
      local back = decode(text)
      local again = encode(back)
      inside = false
      assert_same(doc, back, true)
      assert.equal(#text, #again)
      if reentered > 0 and round >= 5 then break end
    end
    collectgarbage()
    assert.is_nil(bad)
    assert.is_true(reentered > 0)
  end)

  -- LuaJIT formats numbers itself, whatever the C locale says; elsewhere
  -- string.format shows that the locale took effect.
  local C_FORMAT = rawget(_G, "jit") == nil

  -- Every locale named here writes a decimal comma.
  local function comma_locale()
    local old = os.setlocale(nil, "numeric")
    local names = { "de_DE.UTF-8", "de_DE.utf8", "de_DE", "fr_FR.UTF-8", "fr_FR.utf8",
                    "nl_NL.UTF-8", "ru_RU.UTF-8", "es_ES.UTF-8", "it_IT.UTF-8" }
    for _, name in ipairs(names) do
      if os.setlocale(name, "numeric") and (not C_FORMAT or string.format("%.1f", 1.5) == "1,5") then
        os.setlocale(old, "numeric")
        return name
      end
    end
    os.setlocale(old, "numeric")
  end

  it("ignores a comma decimal point in LC_NUMERIC", function()
    local name = comma_locale()
    if not name then
      pending("no comma-decimal locale installed (e.g. localedef -i de_DE -f UTF-8 de_DE.UTF-8)")
      return
    end
    local old = os.setlocale(nil, "numeric")
    finally(function() os.setlocale(old, "numeric") end)
    os.setlocale(name, "numeric")
    if C_FORMAT then assert.equal("1,5", string.format("%.1f", 1.5)) end
    assert.equal("[1.5,0.1,1e+300,-2.5e-08," .. ONE_POINT_ZERO .. ",0.30000000000000004]",
      encode({ 1.5, 0.1, 1e300, -2.5e-8, 1.0, 0.1 + 0.2 }))
    -- the fast path, then strtod (many digits, far exponents)
    local v = decode("[1.5,0.1,1e300,2.2250738585072014e-308,"
      .. "0.1000000000000000055511151231257827,12345678901234567890.5]")
    assert.same({ 1.5, 0.1, 1e300, 2.2250738585072014e-308, 0.1, 12345678901234567890.5 }, v)
  end)

  describe("against lua-cjson", function()
    -- A seeded generator of documents that lua-cjson 2.1.0 holds exactly:
    -- integers below 10^14, floats with at most 14 significant digits,
    -- non-empty arrays, valid UTF-8 strings, nesting up to depth 6.
    local function generator(seed)
      -- Park-Miller: every product stays below 2^53, exact in doubles and integers.
      local state = seed % 2147483646 + 1
      local function rand(n) -- 1..n
        state = state * 16807 % 2147483647
        return state % n + 1
      end
      local pieces = { "a", "Z", "0", " ", "key", "\"", "\\", "/", "\b", "\f", "\n", "\r", "\t",
                       "\0", "\1", "\31", "\127", "é", "€", "😀", U(0x10FFFF), U(0xE000) }
      local function str()
        local out = {}
        for i = 1, rand(8) - 1 do
          if rand(3) == 1 then
            local r = rand(4)
            local cp = r == 1 and 0x80 + rand(0x780) - 1
              or r == 2 and 0x800 + rand(0xD800 - 0x800) - 1
              or r == 3 and 0xE000 + rand(0x2000) - 1
              or 0x10000 + rand(0x100000) - 1
            out[i] = U(cp)
          else
            out[i] = pieces[rand(#pieces)]
          end
        end
        return table.concat(out)
      end
      local function digits(n)
        local v = 0
        for _ = 1, n do v = v * 10 + rand(10) - 1 end
        return v
      end
      local value
      local function scalar()
        local r = rand(9)
        if r == 1 then return null
        elseif r == 2 then return rand(2) == 1
        elseif r <= 4 then
          local v = digits(rand(14))
          return rand(2) == 1 and -v or v
        elseif r <= 6 then
          local m = digits(rand(14))
          local f = tonumber(("%de%d"):format(m, rand(41) - 21))
          return rand(2) == 1 and -f or f
        else
          return str()
        end
      end
      function value(depth)
        local r = rand(depth >= 6 and 1 or 4)
        if r <= 2 or depth >= 6 then return scalar() end
        local t = {}
        if r == 3 then
          for i = 1, rand(5) do t[i] = value(depth + 1) end
        else
          for _ = 1, rand(6) - 1 do t[str()] = value(depth + 1) end
        end
        return t
      end
      return function() return value(1) end
    end

    it("agrees on thousands of random documents", function()
      local seed = tonumber(os.getenv("STREAM_JSON_SEED")) or os.time()
      local gen = generator(seed)
      local function check(ok, what, i, where)
        if not ok then
          error(("seed %d, document %d, %s: %s"):format(seed, i, what, tostring(where)), 2)
        end
      end
      for i = 1, volume(3000) do
        local doc = gen()
        local text, err = encode(doc)
        check(text, "our encode failed", i, err)
        check(same(doc, cjson.decode(text)), "our encode -> cjson.decode", i, text)
        local theirs = cjson.encode(doc)
        local back, derr = decode(theirs)
        check(back ~= nil or doc == nil, "our decode of cjson failed", i, derr)
        check(same(doc, back), "cjson.encode -> our decode", i, theirs)
        local ok, where = same(doc, decode(text), true)
        check(ok, "our round trip", i, where)
      end
    end)
  end)
end)
