-- server/funclen.lua: lists the Lua functions longer than a limit.
--
--   lua5.4 server/funclen.lua [-n LINES] FILE...
--
-- For each file, every `function` keyword starts a function that ends at its matching
-- `end`, found by a small tokenizer that skips strings (quoted and long brackets),
-- comments and numbers and counts the block openers `function`, `if`, `do` (which also
-- closes the head of `for` and `while`) and `repeat` against `end` and `until`. A
-- function longer than LINES (default 60, counting its first and last lines) is printed
-- as `file:line: name is N lines (limit LINES)`, and the exit status is 1 if any was.
--
-- A function may be longer when the comment lines right above it say why with
-- `long: <reason>` (a rule table or a state machine that reads as one).
--
-- What it deliberately does not do: no full Lua parse; a file it cannot follow (an `end`
-- without an opener, a block left open) is reported as such and counts as a failure.

local LIMIT = 60

local OPENERS = { ["function"] = true, ["if"] = true, ["do"] = true, ["repeat"] = true }
local CLOSERS = { ["end"] = true, ["until"] = true }

-- the position after a long bracket opened at i ("[[", "[==["), or nil when there is none
local function long_bracket_end(src, i)
  local eq = src:match("^%[(=*)%[", i)
  if not eq then return nil end
  local _, stop = src:find("]" .. eq .. "]", i + #eq + 2, true)
  return (stop or #src) + 1
end

-- the position after a quoted string opened at i
local function quoted_end(src, i)
  local q = src:sub(i, i)
  local j = i + 1
  while j <= #src do
    local c = src:sub(j, j)
    if c == "\\" then
      j = j + 2
    elseif c == q or c == "\n" then
      return j + 1
    else
      j = j + 1
    end
  end
  return j
end

-- tokens(src) -> list of { word, line } for the names and keywords of src, strings and
-- comments skipped; a name right after `.` or `:` is a field, never a keyword
local function tokens(src)
  local list, i, line, n = {}, 1, 1, #src
  local after_dot = false
  while i <= n do
    local c = src:sub(i, i)
    local nexti
    if c == "\n" then
      line = line + 1
    elseif src:find("^%-%-", i) then
      nexti = long_bracket_end(src, i + 2) or (src:find("\n", i, true) or n + 1)
    elseif c == "[" and src:find("^%[=*%[", i) then
      nexti = long_bracket_end(src, i)
    elseif c == '"' or c == "'" then
      nexti = quoted_end(src, i)
    elseif c:find("[%a_]") then
      local word = src:match("^[%w_]+", i)
      list[#list + 1] = { word = word, line = line, field = after_dot }
      nexti = i + #word
    elseif c:find("%d") then
      nexti = i + #src:match("^[%w_%.]+", i)
    end
    if nexti then
      local _, lines = src:sub(i, nexti - 1):gsub("\n", "")
      line = line + lines
      i = nexti
      after_dot = false
    else
      if not c:find("%s") then
        local prev, nextc = src:sub(i - 1, i - 1), src:sub(i + 1, i + 1)
        after_dot = (c == "." and prev ~= "." and nextc ~= ".") or (c == ":" and prev ~= ":" and nextc ~= ":")
      end
      i = i + 1
    end
  end
  return list
end

-- the name a function is known by: `function a.b:c(`, `local function f(`, `x = function(`
local function function_name(src_lines, line)
  local text = src_lines[line] or ""
  return text:match("function%s+([%w_%.:]+)%s*%(")
    or text:match("([%w_%.%[%]\"']+)%s*=%s*function%s*%(")
    or "function at line " .. line
end

-- whether the comment lines right above `line` carry `long: <reason>`
local function excused(src_lines, line)
  local k = line - 1
  while k >= 1 and src_lines[k]:find("^%s*%-%-") do
    if src_lines[k]:find("long:%s*%S") then return true end
    k = k - 1
  end
  return false
end

-- spans(src) -> list of { first, last } for every function, or nil, message
local function spans(src)
  local stack, found = {}, {}
  for _, t in ipairs(tokens(src)) do
    if t.field then
      -- a field name (t.end is not Lua, but t.do_thing is): never a keyword
      goto continue
    end
    if OPENERS[t.word] then
      stack[#stack + 1] = { word = t.word, line = t.line }
    elseif CLOSERS[t.word] then
      local top = table.remove(stack)
      if not top then return nil, "line " .. t.line .. ": `" .. t.word .. "` closes nothing" end
      if top.word == "function" then found[#found + 1] = { first = top.line, last = t.line } end
    end
    ::continue::
  end
  if #stack > 0 then return nil, "line " .. stack[#stack].line .. ": `" .. stack[#stack].word .. "` never closed" end
  return found
end

local function check_file(path, limit)
  local f, err = io.open(path, "r")
  if not f then
    io.stderr:write("funclen: ", err, "\n")
    return false
  end
  local src = f:read("a")
  f:close()
  local found, problem = spans(src)
  if not found then
    print(path .. ": cannot follow the blocks: " .. problem)
    return false
  end
  local src_lines = {}
  for l in (src .. "\n"):gmatch("([^\n]*)\n") do src_lines[#src_lines + 1] = l end
  local ok = true
  for _, s in ipairs(found) do
    local length = s.last - s.first + 1
    if length > limit and not excused(src_lines, s.first) then
      print(string.format("%s:%d: %s is %d lines (limit %d)", path, s.first,
        function_name(src_lines, s.first), length, limit))
      ok = false
    end
  end
  return ok
end

local function main(argv)
  local limit, files = LIMIT, {}
  local i = 1
  while i <= #argv do
    if argv[i] == "-n" then
      limit = tonumber(argv[i + 1])
      if not limit then
        io.stderr:write("funclen: -n needs a number of lines\n")
        return 2
      end
      i = i + 2
    else
      files[#files + 1] = argv[i]
      i = i + 1
    end
  end
  if #files == 0 then
    io.stderr:write("usage: lua5.4 server/funclen.lua [-n LINES] FILE...\n")
    return 2
  end
  local ok = true
  for _, path in ipairs(files) do
    if not check_file(path, limit) then ok = false end
  end
  return ok and 0 or 1
end

os.exit(main(arg))
