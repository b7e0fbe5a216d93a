-- Data fidelity of the local server: numbers, strings and key order come back exactly
-- as sent (compared as JSON text, since lua-cjson would round numbers itself).

local server = require "helpers.server"
local http = require "helpers.http"

describe("local server data fidelity", function()
  local s, api

  setup(function()
    s = server.start()
    api = http.api(s)
  end)

  teardown(function()
    if s then s:stop() end
  end)

  local n = 0
  -- sends data (JSON text) through add, get, update and batch get; returns the texts seen
  local function through(data)
    n = n + 1
    local id = "fid-" .. n
    local seen = {}
    local _, _, raw = api:call("POST", "user/", { body = '{"id":"' .. id .. '","data":' .. data .. '}' })
    seen[#seen + 1] = raw:match('"data":(.*),"duration":')
    _, _, raw = api:call("GET", "user/" .. id .. "/")
    seen[#seen + 1] = raw:match('"data":(.*),"duration":')
    _, _, raw = api:call("PUT", "user/" .. id .. "/", { body = '{"data":' .. data .. '}' })
    seen[#seen + 1] = raw:match('"data":(.*),"duration":')
    _, _, raw = api:call("GET", "users/", { query = "ids=" .. id })
    seen[#seen + 1] = raw:match('"data":(.*)}%],"duration":')
    return seen
  end

  local function same_everywhere(sent, expected)
    for i, got in ipairs(through(sent)) do
      assert.are.equal(expected or sent, got, "step " .. i)
    end
  end

  it("keeps integers up to 64 bits exactly as written", function()
    same_everywhere('{"a":9007199254740993,"b":-9223372036854775808,"c":9223372036854775807,"d":0,"e":-1}')
  end)

  it("keeps doubles in the form they were sent", function()
    same_everywhere('{"a":0.1,"b":1e-300,"c":5e-324,"d":1.7976931348623157e308,"e":-2.5E+10,"f":1.0}')
  end)

  it("keeps Unicode: \\u escapes (surrogate pairs too) come back as UTF-8", function()
    same_everywhere('{"s":"\\u00e9\\ud83d\\ude00"}', '{"s":"é😀"}')
    same_everywhere('{"s":"é😀 ∑ 中文 \u{10FFFF}"}')
  end)

  it("escapes control characters, quotes and backslashes, and keeps / raw", function()
    same_everywhere('{"s":"a\\u0000b\\u001fc\\n\\t\\"\\\\\\/"}', '{"s":"a\\u0000b\\u001fc\\n\\t\\"\\\\/"}')
  end)

  it("keeps Unicode in keys", function()
    same_everywhere('{"clé":1,"😀":{"ключ":"значение"}}')
  end)

  it("keeps the order of object keys", function()
    same_everywhere('{"zeta":1,"alpha":2,"mid":{"z":[],"a":{},"m":null},"beta":[true,false,null]}')
  end)

  it("writes compact JSON whatever whitespace was sent", function()
    same_everywhere('{ "a" : [ 1 , 2 ] ,\n\t"b" : { } }', '{"a":[1,2],"b":{}}')
  end)

  it("keeps empty arrays and objects apart", function()
    same_everywhere('{"arr":[],"obj":{},"nested":[[],{},[{}]]}')
  end)

  it("writes timestamps with real microseconds, not milliseconds padded with zeros", function()
    local micros = {}
    for i = 1, 8 do
      local _, body = api:call("POST", "user/", { body = '{"id":"us-' .. i .. '"}' })
      local us = body.created_at:match("%.(%d%d%d%d%d%d)Z$")
      assert.is_string(us, body.created_at)
      micros[#micros + 1] = us
    end
    local padded = 0
    for _, us in ipairs(micros) do
      if us:sub(4) == "000" then padded = padded + 1 end
    end
    -- with a real microsecond clock, eight values all ending in 000 has odds of 1e-24
    assert.is_true(padded < #micros, table.concat(micros, " "))
  end)

  it("logged no unexpected Lua errors", function()
    local log = s:error_log()
    assert.is_nil(log:find("unexpected error", 1, true), log)
    assert.is_nil(log:find("lua entry thread aborted", 1, true), log)
  end)
end)
