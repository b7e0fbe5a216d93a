-- stream_local.json: a strict JSON (RFC 8259) parser and a compact encoder for the
-- local server.
--
-- What it does:
--   * parse(text) returns a tree, or nil, message, byte offset. It rejects everything
--     RFC 8259 does not allow: trailing commas, leading zeros, bad escapes, raw control
--     characters, invalid UTF-8 (overlongs, surrogates, > U+10FFFF), lone or reversed
--     surrogate escapes, duplicate object keys, trailing garbage, nesting deeper than
--     MAX_DEPTH.
--   * Numbers are kept as their source text (a `number` node), so 9007199254740993,
--     -9223372036854775808 or 5e-324 come back exactly as they were written.
--   * Object keys keep their input order.
--   * encode(tree) writes compact JSON (no spaces) back from such a tree (canonical(tree,
--     skip): the same with object keys sorted, for digests and content ids); strings are
--     written as raw UTF-8 with only `"`, `\` and control characters escaped.
--
-- What it deliberately does not do:
--   * No conversion of numbers to Lua numbers (use tonumber(node.text) where a value is
--     needed), no decoding into plain Lua tables, no pretty printing.
--   * No use of ngx, ffi or bit operations: it runs unchanged under LuaJIT (inside nginx)
--     and Lua 5.4 (the specs load it directly).

local byte, sub, find, char, format = string.byte, string.sub, string.find, string.char, string.format
local concat, sort = table.concat, table.sort
local floor = math.floor
local setmetatable, getmetatable, type, tonumber = setmetatable, getmetatable, type, tonumber
local ipairs, tostring, error, pcall = ipairs, tostring, error, pcall

local M = {}

-- The client encodes up to 1000 levels; a body wraps them in one or two more.
M.MAX_DEPTH = 1024

-- node kinds ---------------------------------------------------------------

local Object = { __name = "json.object" }
Object.__index = Object
local Array = { __name = "json.array" }
Array.__index = Array
local Number = { __name = "json.number" }
Number.__index = Number

M.null = setmetatable({}, { __name = "json.null", __tostring = function() return "null" end })

function M.object()
  return setmetatable({ keys = {}, values = {} }, Object)
end

function M.array()
  return setmetatable({ n = 0 }, Array)
end

function M.number(text)
  return setmetatable({ text = text }, Number)
end

-- Adds or replaces key in an object node, keeping first-insertion order.
function Object:set(key, value)
  if self.values[key] == nil then
    self.keys[#self.keys + 1] = key
  end
  self.values[key] = value
end

function Object:get(key)
  return self.values[key]
end

function Array:push(value)
  self.n = self.n + 1
  self[self.n] = value
end

-- kind(v) -> "object" | "array" | "string" | "number" | "boolean" | "null" | nil
function M.kind(v)
  local t = type(v)
  if t == "string" then return "string" end
  if t == "boolean" then return "boolean" end
  if v == M.null then return "null" end
  local mt = getmetatable(v)
  if mt == Object then return "object" end
  if mt == Array then return "array" end
  if mt == Number then return "number" end
  return nil
end

-- parser -------------------------------------------------------------------

local null = M.null

-- a run of bytes that need no attention inside a string: printable ASCII minus " and \
local PLAIN_RUN = "^[ !#-[%]^-~]+"

local ESCAPES = {
  [0x22] = '"', [0x5C] = "\\", [0x2F] = "/", [0x62] = "\b",
  [0x66] = "\f", [0x6E] = "\n", [0x72] = "\r", [0x74] = "\t",
}

local function utf8_char(cp)
  if cp < 0x80 then
    return char(cp)
  elseif cp < 0x800 then
    return char(0xC0 + floor(cp / 0x40), 0x80 + cp % 0x40)
  elseif cp < 0x10000 then
    return char(0xE0 + floor(cp / 0x1000), 0x80 + floor(cp / 0x40) % 0x40, 0x80 + cp % 0x40)
  else
    return char(0xF0 + floor(cp / 0x40000), 0x80 + floor(cp / 0x1000) % 0x40,
                0x80 + floor(cp / 0x40) % 0x40, 0x80 + cp % 0x40)
  end
end

-- Length of the valid UTF-8 sequence starting at i (lead byte >= 0x80), or nil.
local function utf8_len(s, i)
  local c = byte(s, i)
  local lo, hi, n = 0x80, 0xBF, nil -- luacheck: ignore 311
  if c >= 0xC2 and c <= 0xDF then n = 2
  elseif c == 0xE0 then n = 3; lo = 0xA0
  elseif c >= 0xE1 and c <= 0xEC then n = 3
  elseif c == 0xED then n = 3; hi = 0x9F
  elseif c >= 0xEE and c <= 0xEF then n = 3
  elseif c == 0xF0 then n = 4; lo = 0x90
  elseif c >= 0xF1 and c <= 0xF3 then n = 4
  elseif c == 0xF4 then n = 4; hi = 0x8F
  else return nil end
  local c2 = byte(s, i + 1)
  if not c2 or c2 < lo or c2 > hi then return nil end
  for k = 2, n - 1 do
    local ck = byte(s, i + k)
    if not ck or ck < 0x80 or ck > 0xBF then return nil end
  end
  return n
end

local function hex4(s, i)
  local h = sub(s, i, i + 3)
  if #h ~= 4 or not find(h, "^%x%x%x%x$") then return nil end
  return tonumber(h, 16)
end

local function fail(msg, pos)
  error({ json_error = msg, pos = pos }, 0)
end

local function skip_ws(s, i)
  local _, e = find(s, "^[ \t\r\n]*", i)
  return e + 1
end

local function parse_string(s, i)
  -- s[i] is the opening quote
  local buf, nb = {}, 0
  i = i + 1
  while true do
    local _, e = find(s, PLAIN_RUN, i)
    if e then
      nb = nb + 1; buf[nb] = sub(s, i, e)
      i = e + 1
    end
    local c = byte(s, i)
    if c == nil then
      fail("unterminated string", i)
    elseif c == 0x22 then
      return concat(buf), i + 1
    elseif c == 0x5C then
      local esc = byte(s, i + 1)
      if esc == 0x75 then
        local cp = hex4(s, i + 2)
        if not cp then fail("invalid \\u escape", i) end
        if cp >= 0xD800 and cp <= 0xDBFF then
          local lowcp = byte(s, i + 6) == 0x5C and byte(s, i + 7) == 0x75 and hex4(s, i + 8)
          if not lowcp or lowcp < 0xDC00 or lowcp > 0xDFFF then
            fail("lone high surrogate in \\u escape", i)
          end
          cp = 0x10000 + (cp - 0xD800) * 0x400 + (lowcp - 0xDC00)
          i = i + 12
        elseif cp >= 0xDC00 and cp <= 0xDFFF then
          fail("lone low surrogate in \\u escape", i)
        else
          i = i + 6
        end
        nb = nb + 1; buf[nb] = utf8_char(cp)
      else
        local r = esc and ESCAPES[esc]
        if not r then fail("invalid escape", i) end
        nb = nb + 1; buf[nb] = r
        i = i + 2
      end
    elseif c < 0x20 then
      fail("control character in string", i)
    elseif c < 0x80 then
      -- only DEL (0x7F) gets here
      nb = nb + 1; buf[nb] = char(c)
      i = i + 1
    else
      local n = utf8_len(s, i)
      if not n then fail("invalid UTF-8", i) end
      nb = nb + 1; buf[nb] = sub(s, i, i + n - 1)
      i = i + n
    end
  end
end

local function parse_number(s, i)
  local start = i
  if byte(s, i) == 0x2D then i = i + 1 end -- '-'
  local c = byte(s, i)
  if c == 0x30 then
    i = i + 1
    local d = byte(s, i)
    if d and d >= 0x30 and d <= 0x39 then fail("leading zero in number", start) end
  elseif c and c >= 0x31 and c <= 0x39 then
    local _, e = find(s, "^%d+", i)
    i = e + 1
  else
    fail("invalid number", start)
  end
  if byte(s, i) == 0x2E then -- '.'
    local _, e = find(s, "^%d+", i + 1)
    if not e then fail("digits expected after decimal point", i) end
    i = e + 1
  end
  c = byte(s, i)
  if c == 0x65 or c == 0x45 then -- e E
    local _, e = find(s, "^[+-]?%d+", i + 1)
    if not e then fail("digits expected in exponent", i) end
    i = e + 1
  end
  return M.number(sub(s, start, i - 1)), i
end

local parse_value

local function parse_object(s, i, depth)
  if depth > M.MAX_DEPTH then fail("nesting deeper than " .. M.MAX_DEPTH, i) end
  local obj = M.object()
  local values = obj.values
  i = skip_ws(s, i + 1)
  if byte(s, i) == 0x7D then return obj, i + 1 end
  while true do
    if byte(s, i) ~= 0x22 then fail("object key (a string) expected", i) end
    local key
    local kpos = i
    key, i = parse_string(s, i)
    if values[key] ~= nil then fail("duplicate object key", kpos) end
    i = skip_ws(s, i)
    if byte(s, i) ~= 0x3A then fail("':' expected", i) end
    local v
    v, i = parse_value(s, skip_ws(s, i + 1), depth)
    obj:set(key, v)
    i = skip_ws(s, i)
    local c = byte(s, i)
    if c == 0x2C then
      i = skip_ws(s, i + 1)
    elseif c == 0x7D then
      return obj, i + 1
    else
      fail("',' or '}' expected", i)
    end
  end
end

local function parse_array(s, i, depth)
  if depth > M.MAX_DEPTH then fail("nesting deeper than " .. M.MAX_DEPTH, i) end
  local arr = M.array()
  i = skip_ws(s, i + 1)
  if byte(s, i) == 0x5D then return arr, i + 1 end
  while true do
    local v
    v, i = parse_value(s, i, depth)
    arr:push(v)
    i = skip_ws(s, i)
    local c = byte(s, i)
    if c == 0x2C then
      i = skip_ws(s, i + 1)
    elseif c == 0x5D then
      return arr, i + 1
    else
      fail("',' or ']' expected", i)
    end
  end
end

parse_value = function(s, i, depth)
  local c = byte(s, i)
  if c == 0x7B then return parse_object(s, i, depth + 1) end
  if c == 0x5B then return parse_array(s, i, depth + 1) end
  if c == 0x22 then return parse_string(s, i) end
  if c == 0x2D or (c and c >= 0x30 and c <= 0x39) then return parse_number(s, i) end
  if c == 0x74 and sub(s, i, i + 3) == "true" then return true, i + 4 end
  if c == 0x66 and sub(s, i, i + 4) == "false" then return false, i + 5 end
  if c == 0x6E and sub(s, i, i + 3) == "null" then return null, i + 4 end
  if c == nil then fail("unexpected end of input", i) end
  fail("unexpected character", i)
end

-- parse(text) -> tree | nil, message, byte_offset (1-based)
function M.parse(s)
  if type(s) ~= "string" then return nil, "no JSON text", 1 end
  local ok, v = pcall(function()
    local v, i = parse_value(s, skip_ws(s, 1), 0)
    i = skip_ws(s, i)
    if i <= #s then fail("trailing characters after the JSON value", i) end
    return v, i
  end)
  if ok then return v end
  if type(v) == "table" and v.json_error then
    return nil, v.json_error, v.pos
  end
  error(v, 0)
end

-- encoder ------------------------------------------------------------------

local QUOTE_ESC = {
  ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f",
  ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t",
}

local function esc_char(c)
  return QUOTE_ESC[c] or format("\\u%04x", byte(c))
end

-- Replaces each byte that does not start a valid UTF-8 sequence by U+FFFD.
local function repair_utf8(s)
  local out, n, i, len = {}, 0, 1, #s
  while i <= len do
    local _, e = find(s, "^[%z\1-\127]+", i)
    if e then
      n = n + 1; out[n] = sub(s, i, e)
      i = e + 1
    else
      local k = utf8_len(s, i)
      n = n + 1
      if k then
        out[n] = sub(s, i, i + k - 1)
        i = i + k
      else
        out[n] = "\239\191\189"
        i = i + 1
      end
    end
  end
  return concat(out)
end

-- quote(s): a Lua string as a JSON string literal. Strings from parse() are valid
-- UTF-8 already; anything else (text from a URL, a header) has invalid bytes replaced
-- by U+FFFD so the output is always valid UTF-8.
function M.quote(s)
  if find(s, "[\128-\255]") then
    local ok = true
    local i, len = 1, #s
    while i <= len do
      local _, e = find(s, "^[%z\1-\127]+", i)
      if e then
        i = e + 1
      else
        local k = utf8_len(s, i)
        if not k then ok = false; break end
        i = i + k
      end
    end
    if not ok then s = repair_utf8(s) end
  end
  if find(s, '[%z\1-\31"\\]') then
    s = s:gsub('[%z\1-\31"\\]', esc_char)
  end
  return '"' .. s .. '"'
end

local quote = M.quote

-- encode_into(v, buf, sorted, skip): the compact text of v into buf; sorted: object keys
-- in byte order at every depth (the canonical form), else as parsed; skip: keys left out
-- of the top-level object
local function encode_into(v, buf, sorted, skip)
  local k = M.kind(v)
  if k == "string" then
    buf[#buf + 1] = quote(v)
  elseif k == "number" then
    buf[#buf + 1] = v.text
  elseif k == "object" then
    local keys = v.keys
    if sorted or skip then
      keys = {}
      for _, key in ipairs(v.keys) do
        if not (skip and skip[key]) then keys[#keys + 1] = key end
      end
      if sorted then sort(keys) end
    end
    buf[#buf + 1] = "{"
    for idx, key in ipairs(keys) do
      if idx > 1 then buf[#buf + 1] = "," end
      buf[#buf + 1] = quote(key)
      buf[#buf + 1] = ":"
      encode_into(v.values[key], buf, sorted)
    end
    buf[#buf + 1] = "}"
  elseif k == "array" then
    buf[#buf + 1] = "["
    for idx = 1, v.n do
      if idx > 1 then buf[#buf + 1] = "," end
      encode_into(v[idx], buf, sorted)
    end
    buf[#buf + 1] = "]"
  elseif k == "boolean" then
    buf[#buf + 1] = v and "true" or "false"
  elseif k == "null" then
    buf[#buf + 1] = "null"
  else
    error("json.encode: not a JSON tree node: " .. tostring(v), 0)
  end
end

-- encode(tree) -> compact JSON text
function M.encode(v)
  local buf = {}
  encode_into(v, buf)
  return concat(buf)
end

-- canonical(tree, skip) -> compact JSON text with object keys sorted (byte order) at
-- every depth, the top-level keys named in skip left out
function M.canonical(v, skip)
  local buf = {}
  encode_into(v, buf, true, skip)
  return concat(buf)
end

return M
