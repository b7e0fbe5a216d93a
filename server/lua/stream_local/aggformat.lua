-- stream_local.aggformat: the aggregation formats of aggregated and notification feeds
-- (stream-feeds-api.md section 12): a small Jinja-like template language that computes
-- an activity's group key.
--
-- What it does:
--   * compile(source) -> template | nil, message. A real parser: the source is cut
--     into text, `{{ expr }}`, `{% stmt %}` and `{# comment #}` pieces (`{{-` / `-}}` and
--     the like strip the whitespace beside them), statements nest into a tree
--     (`if` / `elif` / `else` / `endif`), and expressions are parsed by precedence:
--     `or` < `and` < `not` < `==` `!=` < primary. Primaries: string literals in ' or "
--     (backslash escapes), whole or decimal numbers, true/false/none (any case), a
--     name with dotted attributes (`feed.group`, `details.place.city`), a method call
--     `<value>.strftime("<fmt>")`, and parentheses. Anything else (`test[]`, filters,
--     an unclosed tag or block) does not compile.
--   * render(template, env) -> the group key: the output, stripped of surrounding
--     whitespace, cut to MAX_KEY characters. env.lookup(name) gives an activity's
--     top-level value (a string, or a stream_local.json node), env.time_us its time,
--     env.feed = { group, user_id }. `time` is the activity time: strftime takes
--     %Y %m %d %H %M %S %j %y %% on UTC (other codes are left as written), and printed
--     whole it is `YYYY-MM-DD HH:MM:SS[.ffffff]`. An unknown name or attribute renders
--     "" and is false; null renders `None`, booleans `True` / `False`, numbers as
--     written, objects and arrays as compact JSON.
--
-- What it deliberately does not do: no filters (`|upper`), loops, macros, subscripts,
-- arithmetic or other methods than strftime; no runtime errors: every format that
-- compiles renders. Pure Lua, no ngx: it runs in the specs' Lua 5.4 as in nginx.

local json = require "stream_local.json"

local type, ipairs, tonumber, setmetatable, getmetatable = type, ipairs, tonumber, setmetatable, getmetatable
local error, pcall = error, pcall
local concat, format, floor, date = table.concat, string.format, math.floor, os.date

local M = {}

M.DEFAULT = '{{ verb }}_{{ time.strftime("%Y-%m-%d") }}'
M.MAX_KEY = 255

-- values that are not JSON values: an unknown name, and the activity time
local UNDEF = setmetatable({}, { __name = "aggformat.undefined" })
local TIME = { __name = "aggformat.time" }

local function syntax(msg)
  error({ syntax = msg }, 0)
end

-- pieces ---------------------------------------------------------------------------

local OPEN = { ["{"] = "}}", ["%"] = "%}", ["#"] = "#}" }

-- close_of(src, i, closer) -> the index where closer starts, skipping quoted strings
local function close_of(src, i, closer)
  local quote
  while i <= #src do
    local c = src:sub(i, i)
    if quote then
      if c == "\\" then i = i + 1 elseif c == quote then quote = nil end
    elseif c == "'" or c == '"' then
      quote = c
    elseif src:sub(i, i + 1) == closer then
      return i
    end
    i = i + 1
  end
  syntax("a tag is not closed")
end

-- pieces(src) -> list of { "text", s } | { "{", expr source } | { "%", stmt source }
local function pieces(src)
  local out, i, strip_next = {}, 1, false
  while i <= #src do
    local s, e, kind = src:find("{([{%%#])", i)
    local text = src:sub(i, (s or #src + 1) - 1)
    if strip_next then text = text:gsub("^%s+", "") end
    if s and src:sub(e + 1, e + 1) == "-" then
      text = text:gsub("%s+$", "")
      e = e + 1
    end
    if text ~= "" then out[#out + 1] = { "text", text } end
    if not s then break end
    local c = close_of(src, e + 1, OPEN[kind])
    local inner = src:sub(e + 1, c - 1)
    strip_next = inner:sub(-1) == "-"
    if strip_next then inner = inner:sub(1, -2) end
    if kind ~= "#" then out[#out + 1] = { kind, inner } end
    i = c + 2
  end
  return out
end

-- expression tokens -------------------------------------------------------------------

local ESC = { n = "\n", t = "\t", r = "\r", ["\\"] = "\\", ["'"] = "'", ['"'] = '"' }

local function read_string(src, i)
  local q, buf = src:sub(i, i), {}
  i = i + 1
  while i <= #src do
    local c = src:sub(i, i)
    if c == q then return { "str", concat(buf) }, i + 1 end
    if c == "\\" then
      i = i + 1
      c = ESC[src:sub(i, i)] or ("\\" .. src:sub(i, i))
    end
    buf[#buf + 1] = c
    i = i + 1
  end
  syntax("a string is not closed")
end

-- tokens(src) -> list of { type, value }: name, str, num, op
local function tokens(src)
  local out, i = {}, 1
  while true do
    i = src:find("%S", i)
    if not i then break end
    local c = src:sub(i, i)
    local tok, nxt
    if c == "'" or c == '"' then
      tok, nxt = read_string(src, i)
    elseif c:find("[%a_]") then
      local w = src:match("^[%w_]+", i)
      tok, nxt = { "name", w }, i + #w
    elseif c:find("%d") then
      local n = src:match("^%d+%.%d+", i) or src:match("^%d+", i)
      tok, nxt = { "num", n }, i + #n
    else
      local two = src:sub(i, i + 1)
      if two == "==" or two == "!=" then
        tok, nxt = { "op", two }, i + 2
      elseif c == "." or c == "(" or c == ")" then
        tok, nxt = { "op", c }, i + 1
      else
        syntax("unexpected " .. c)
      end
    end
    out[#out + 1] = tok
    i = nxt
  end
  return out
end

-- expression parser -------------------------------------------------------------------

local Parser = {}
Parser.__index = Parser

function Parser:peek(kind, value)
  local t = self.toks[self.pos]
  return t and t[1] == kind and (value == nil or t[2] == value)
end

function Parser:take(kind, value)
  if not self:peek(kind, value) then syntax("expected " .. (value or kind)) end
  self.pos = self.pos + 1
  return self.toks[self.pos - 1][2]
end

local CONSTANTS = { ["true"] = true, ["false"] = false, none = json.null }

-- a name, its dotted attributes, and a strftime call on it
function Parser:path()
  local path = { self:take("name") }
  while self:peek("op", ".") do
    self.pos = self.pos + 1
    path[#path + 1] = self:take("name")
  end
  if not self:peek("op", "(") then return { "path", path } end
  if path[#path] ~= "strftime" or #path < 2 then syntax("the only call is strftime") end
  self.pos = self.pos + 1
  local fmt = self:take("str")
  self:take("op", ")")
  path[#path] = nil
  return { "strftime", { "path", path }, fmt }
end

function Parser:primary()
  local t = self.toks[self.pos]
  if not t then syntax("an expression is missing") end
  if t[1] == "str" then
    self.pos = self.pos + 1
    return { "lit", t[2] }
  elseif t[1] == "num" then
    self.pos = self.pos + 1
    return { "lit", json.number(t[2]) }
  elseif t[1] == "name" and CONSTANTS[t[2]:lower()] ~= nil then
    self.pos = self.pos + 1
    return { "lit", CONSTANTS[t[2]:lower()] }
  elseif t[1] == "name" then
    return self:path()
  elseif self:peek("op", "(") then
    self.pos = self.pos + 1
    local e = self:expr()
    self:take("op", ")")
    return e
  end
  syntax("unexpected " .. t[2])
end

function Parser:compare()
  local left = self:primary()
  if self:peek("op", "==") or self:peek("op", "!=") then
    local op = self:take("op")
    return { op == "==" and "eq" or "ne", left, self:primary() }
  end
  return left
end

function Parser:negation()
  if self:peek("name", "not") then
    self.pos = self.pos + 1
    return { "not", self:negation() }
  end
  return self:compare()
end

function Parser:binary(word, operand)
  local left = operand(self)
  while self:peek("name", word) do
    self.pos = self.pos + 1
    left = { word, left, operand(self) }
  end
  return left
end

function Parser:conjunction() return self:binary("and", Parser.negation) end
function Parser:expr() return self:binary("or", Parser.conjunction) end

-- expression(src) -> node; the whole text must be one expression
local function expression(src)
  local p = setmetatable({ toks = tokens(src), pos = 1 }, Parser)
  local e = p:expr()
  if p.toks[p.pos] then syntax("unexpected " .. p.toks[p.pos][2]) end
  return e
end

-- statements -----------------------------------------------------------------------

-- block(list, i, stops) -> body, index of the stopping statement, its keyword
local function block(list, i, stops)
  local body = {}
  while i <= #list do
    local p = list[i]
    if p[1] == "text" then
      body[#body + 1] = p
    elseif p[1] == "{" then
      body[#body + 1] = { "out", expression(p[2]) }
    else
      local word, rest = p[2]:match("^%s*(%a+)(.-)%s*$")
      if stops and stops[word] then return body, i, word, rest end
      if word ~= "if" then syntax("unknown statement " .. (word or p[2])) end
      local node = { "if", branches = {} }
      local cond, b, kw, r = rest
      repeat
        b, i, kw, r = block(list, i + 1, { elif = true, ["else"] = true, endif = true })
        node.branches[#node.branches + 1] = { expression(cond), b }
        cond = r
      until kw ~= "elif"
      if kw == "else" then
        if r ~= "" then syntax("else takes nothing") end
        node.otherwise, i, kw, r = block(list, i + 1, { endif = true })
      end
      if kw ~= "endif" or r ~= "" then syntax("if is not closed by endif") end
      body[#body + 1] = node
    end
    i = i + 1
  end
  if stops then syntax("a block is not closed") end
  return body, i
end

local cache = {}

-- compile(source) -> template | nil, message (cached by source)
function M.compile(source)
  local hit = cache[source]
  if hit then return hit[1], hit[2] end
  local ok, res = pcall(function() return (block(pieces(source), 1, nil)) end)
  if not ok and (type(res) ~= "table" or not res.syntax) then error(res, 0) end
  hit = ok and { res } or { nil, res.syntax }
  cache[source] = hit
  return hit[1], hit[2]
end

-- evaluation -----------------------------------------------------------------------

local STRFTIME = { Y = true, m = true, d = true, H = true, M = true, S = true, j = true, y = true }

local function strftime(us, fmt)
  local sec = floor(us / 1000000)
  return (fmt:gsub("%%(.)", function(c)
    if c == "%" then return "%" end
    if STRFTIME[c] then return date("!%" .. c, sec) end
    return nil
  end))
end

local function time_text(us)
  local sec = floor(us / 1000000)
  local frac = us - sec * 1000000
  return date("!%Y-%m-%d %H:%M:%S", sec) .. (frac ~= 0 and format(".%06d", frac) or "")
end

-- attribute(v, name) -> the attribute of a value (objects and the feed only)
local function attribute(v, name)
  if type(v) == "table" and v.feed_attrs then return v[name] or UNDEF end
  if json.kind(v) == "object" then
    local x = v.values[name]
    if x ~= nil then return x end
  end
  return UNDEF
end

local function lookup(env, path)
  local name, v = path[1]
  if name == "time" then
    v = setmetatable({ us = env.time_us }, TIME)
  elseif name == "feed" then
    v = { feed_attrs = true, group = env.feed.group, user_id = env.feed.user_id }
  else
    v = env.lookup(name)
    if v == nil then v = UNDEF end
  end
  for i = 2, #path do v = attribute(v, path[i]) end
  return v
end

local function text_of(v)
  if v == UNDEF then return "" end
  if type(v) == "string" then return v end
  if type(v) == "boolean" then return v and "True" or "False" end
  if getmetatable(v) == TIME then return time_text(v.us) end
  local kind = json.kind(v)
  if kind == "null" then return "None" end
  if kind == "number" then return v.text end
  if kind then return json.encode(v) end
  return ""
end

local function truthy(v)
  if v == UNDEF or v == false or v == "" or v == json.null then return false end
  local kind = json.kind(v)
  if kind == "number" then return tonumber(v.text) ~= 0 end
  if kind == "object" then return v.keys[1] ~= nil end
  if kind == "array" then return v.n > 0 end
  return true
end

local function equal(a, b)
  if getmetatable(a) == TIME and getmetatable(b) == TIME then return a.us == b.us end
  local ka, kb = json.kind(a), json.kind(b)
  if a == UNDEF or b == UNDEF or ka ~= kb then return a == b end
  if ka == "number" then return tonumber(a.text) == tonumber(b.text) end
  if ka == "object" or ka == "array" then return json.encode(a) == json.encode(b) end
  return a == b
end

local eval
local EVAL = {
  lit = function(_, n) return n[2] end,
  path = function(env, n) return lookup(env, n[2]) end,
  strftime = function(env, n)
    local v = eval(env, n[2])
    if getmetatable(v) ~= TIME then return UNDEF end
    return strftime(v.us, n[3])
  end,
  eq = function(env, n) return equal(eval(env, n[2]), eval(env, n[3])) end,
  ne = function(env, n) return not equal(eval(env, n[2]), eval(env, n[3])) end,
  ["not"] = function(env, n) return not truthy(eval(env, n[2])) end,
  -- Jinja's and / or give one of their operands, as Python's do
  ["and"] = function(env, n)
    local a = eval(env, n[2])
    if not truthy(a) then return a end
    return eval(env, n[3])
  end,
  ["or"] = function(env, n)
    local a = eval(env, n[2])
    if truthy(a) then return a end
    return eval(env, n[3])
  end,
}
eval = function(env, n) return EVAL[n[1]](env, n) end

local function run(body, env, out)
  for _, node in ipairs(body) do
    if node[1] == "text" then
      out[#out + 1] = node[2]
    elseif node[1] == "out" then
      out[#out + 1] = text_of(eval(env, node[2]))
    else
      local taken = false
      for _, br in ipairs(node.branches) do
        if truthy(eval(env, br[1])) then
          run(br[2], env, out)
          taken = true
          break
        end
      end
      if not taken and node.otherwise then run(node.otherwise, env, out) end
    end
  end
end

-- cut(s, n) -> s cut to at most n UTF-8 characters
local function cut(s, n)
  local count, i = 0, 1
  while i <= #s do
    count = count + 1
    if count > n then return s:sub(1, i - 1) end
    local b = s:byte(i)
    i = i + (b >= 0xF0 and 4 or b >= 0xE0 and 3 or b >= 0xC0 and 2 or 1)
  end
  return s
end

-- render(template, env) -> group key
function M.render(template, env)
  local out = {}
  run(template, env, out)
  local key = concat(out):gsub("^%s+", ""):gsub("%s+$", "")
  return cut(key, M.MAX_KEY)
end

return M
