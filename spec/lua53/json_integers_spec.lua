-- The JSON codec where Lua has an integer subtype (5.3 and 5.4 only: this
-- file uses integer literals, bitwise operators and string.pack, so it does
-- not even load on 5.1 or LuaJIT). The rest of the codec's behaviour, the
-- same on every Lua, is in spec/json_spec.lua.
local core = require "stream.core"

local ipairs, math, string = ipairs, math, string
local encode, decode = core.json_encode, core.json_decode

local function volume(n)
  if os.getenv("STREAM_SPEC_AGGRESSIVE_GC") == "1" then
    return math.max(1, n // 20)
  end
  return n
end

describe("json_encode with integers (Lua 5.3+)", function()
  it("keeps integers exact up to 2^63-1", function()
    assert.equal("9007199254740993", encode((1 << 53) + 1))
    assert.equal("9223372036854775807", encode(math.maxinteger))
    assert.equal("-9223372036854775808", encode(math.mininteger))
    assert.equal("[1,-1,100000000000000000]", encode({ 1, -1, 100000000000000000 }))
  end)

  it("keeps .0 on an integral float written without exponent", function()
    assert.equal("1.0", encode(1.0))
    assert.equal("-3.0", encode(-3.0))
    assert.equal("100000000000000.0", encode(1e14))
    assert.equal("9007199254740992.0", encode(2.0 ^ 53))
    assert.equal("1e+15", encode(1e15))
    assert.equal("[1.0,2]", encode({ 1.0, 2 }))
  end)

  it("writes 0.0 and -0.0 as floats", function()
    assert.equal("-0.0", encode(-0.0))
    assert.equal("0.0", encode(0.0))
    assert.equal("0", encode(0))
  end)

  it("keeps the integer/float subtype through a round trip", function()
    for _, v in ipairs({ 0, 1, -1, 0.0, 1.0, -1.0, 2.0 ^ 60, 1 << 60, 1e15, 1e-3 }) do
      local back = decode(encode(v))
      assert.equal(v, back)
      assert.equal(math.type(v), math.type(back))
    end
    local z = decode(encode(-0.0))
    assert.equal("float", math.type(z))
    assert.equal(-math.huge, 1 / z)
  end)
end)

describe("json_decode with integers (Lua 5.3+)", function()
  it("reads integers without fraction or exponent as integers", function()
    assert.equal("integer", math.type(decode("12")))
    assert.equal(math.maxinteger, decode("9223372036854775807"))
    assert.equal(math.mininteger, decode("-9223372036854775808"))
    assert.equal("integer", math.type(decode("-9223372036854775808")))
    assert.equal((1 << 53) + 1, decode("9007199254740993"))
    assert.equal(0, decode("-0"))
    assert.equal("integer", math.type(decode("-0")))
  end)

  it("reads integers beyond int64 as floats", function()
    local v = decode("9223372036854775808")
    assert.equal("float", math.type(v))
    assert.equal(2.0 ^ 63, v)
    assert.equal("float", math.type(decode("-18446744073709551616")))
  end)

  it("reads numbers with a fraction or an exponent as floats", function()
    for _, s in ipairs({ "1.0", "-0.0", "1e2", "1E+2", "2.5e-3", "9007199254740993.0", "1e400" }) do
      assert.equal("float", math.type(decode(s)), s)
    end
  end)

  it("reads back every double it writes (random bit patterns)", function()
    local seed = tonumber(os.getenv("STREAM_JSON_SEED")) or os.time()
    local state = seed
    local function bits()
      state = state * 6364136223846793005 + 1442695040888963407
      return state
    end
    for _ = 1, volume(3000) do
      local d = string.unpack("<d", string.pack("<i8", bits()))
      if d == d and d ~= math.huge and d ~= -math.huge then
        local text = encode(d)
        local back = decode(text)
        if string.pack("<d", back) ~= string.pack("<d", d) then
          error(("seed %d: %.17g written as %s read back as %.17g"):format(seed, d, text, back))
        end
      end
    end
  end)
end)
