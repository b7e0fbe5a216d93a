-- stream.check: the argument rules every API area shares (users now; feeds,
-- reactions and collections follow the same ones).
--
-- Two kinds of problem, two shapes:
-- - misuse that is a bug in the caller's code (a wrong type, an unknown
--   option, a method called with '.') raises. Every raising function takes
--   `level`, counted as error() counts it from the function that calls the
--   check: 2 means "the caller of the public method";
-- - values that come from outside at run time (an id with bad characters,
--   data over a size limit, data JSON cannot hold) return an `invalid`
--   error (errors.lua) that names the field; nothing is sent.
--
-- Nothing here sends, keeps state or sees credentials.

local errors = require "stream.errors"

local check = {}

check.MAX_ID = 255
-- How much of a rejected value an error message shows.
local SHOWN = 40

-- error(msg, level) as if called where raise is called.
local function raise(msg, level)
  error(msg, level + 1)
end
check.raise = raise

-- `self` of a method: a table with the right metatable, or a raise that
-- says the method was called with '.' instead of ':'.
function check.self(self, mt, fname, level)
  if getmetatable(self) ~= mt then
    raise(fname .. ": called with '.' instead of ':'", (level or 2) + 1)
  end
end

-- What check.opts gives for nil: shared, so never write into it.
local NO_OPTS = setmetatable({}, { __newindex = function()
  error("stream.check: the empty options table is read-only", 2)
end })

-- A copy of an options table (nil gives an empty read-only table); raises
-- for a non-table or an unknown key, naming the function and the key.
function check.opts(opts, allowed, fname, level)
  level = level or 2
  if opts == nil then return NO_OPTS end
  if type(opts) ~= "table" then
    raise(fname .. ": options must be a table, got " .. type(opts), level + 1)
  end
  local out = {}
  for k, v in pairs(opts) do
    if not allowed[k] then
      raise(fname .. ": unknown option '" .. tostring(k) .. "'", level + 1)
    end
    out[k] = v
  end
  return out
end

-- An id argument as text: strings as they are, integers as decimal text;
-- any other type raises.
function check.id_arg(id, fname, level, what)
  local t = type(id)
  if t == "number" and id == math.floor(id) and id >= -2^53 and id <= 2^53 then
    return string.format("%d", id)
  elseif t ~= "string" then
    raise(fname .. ": " .. (what or "id") .. " must be a string, got " .. t, (level or 2) + 1)
  end
  return id
end

-- A value as a message shows it: cut after SHOWN characters (quoted
-- unless `bare`).
function check.shown(s, bare)
  if #s > SHOWN then s = s:sub(1, SHOWN) .. "..." end
  if bare then return s end
  return string.format("%q", s)
end

-- nil when the id is 1-255 characters of A-Z a-z 0-9 _ -, else an
-- `invalid` error for `field` (default "id"). Such an id can never change
-- a request's target.
function check.id(id, field, info)
  if #id == 0 or #id > check.MAX_ID or id:find("[^A-Za-z0-9_%-]") then
    field = field or "id"
    return errors.invalid(string.format("%s %s must be 1 to %d characters of A-Z a-z 0-9 _ -",
      field, check.shown(id), check.MAX_ID), field, info)
  end
end

-- nil when a feed slug is [A-Za-z0-9_]+, else an `invalid` error.
function check.slug(slug, field, info)
  field = field or "slug"
  if slug == "" or slug:find("[^A-Za-z0-9_]") then
    local msg = string.format("%s %s must be letters, digits and _", field, check.shown(slug))
    if slug:find(":", 1, true) then
      msg = msg .. ' (a feed is named by two arguments: feed("user", "1"), not feed("user:1"))'
    end
    return errors.invalid(msg, field, info)
  end
end

-- A list of ids as text (each through id_arg); raises for a non-list.
function check.ids_arg(ids, fname, level)
  level = level or 2
  if type(ids) ~= "table" then
    raise(fname .. ": ids must be a list of strings, got " .. type(ids), level + 1)
  end
  local out = {}
  for i = 1, #ids do out[i] = check.id_arg(ids[i], fname, level + 1) end
  return out
end

-- nil when the list is non-empty and every id is valid, else an error.
function check.ids(list, field, info)
  field = field or "ids"
  if #list == 0 then
    return errors.invalid(field .. " must not be empty", field, info)
  end
  for i = 1, #list do
    local err = check.id(list[i], field, info)
    if err then return err end
  end
end

-- Raises unless data is a table (or nil, when not `required`).
function check.data_arg(data, fname, level, field, required)
  if data == nil and required then
    raise(fname .. ": " .. (field or "data") .. " is required (a table)", (level or 2) + 1)
  end
  if data ~= nil and type(data) ~= "table" then
    raise(fname .. ": " .. (field or "data") .. " must be a table, got " .. type(data), (level or 2) + 1)
  end
end

-- The JSON text of `data` as an object (nil gives "{}"), or nil, err:
-- what JSON cannot hold, an array, or more than `limit` bytes once
-- `overhead` bytes of the enclosing object are added. `what` names the
-- object in the size message ("user object"); the error names `field`.
-- `codec` encodes (codec:encode(value, field): the client's pipeline).
function check.object(codec, data, field, info, limit, overhead, what)
  local text = "{}"
  if data ~= nil then
    local msg
    text, msg = codec:encode(data, field)
    if not text then return nil, errors.invalid(msg, field, info) end
    if text:byte(1) ~= 123 then -- "{"
      return nil, errors.invalid(field .. " must be a JSON object, not an array", field, info)
    end
  end
  if limit then
    local size = #text + (overhead or 0)
    if size > limit then
      return nil, errors.invalid(string.format("%s is %d bytes, over the %d-byte limit",
        what or field, size, limit), field, info)
    end
  end
  return text
end

-- A name -> value header map as "Name: value" lines in name order (so
-- requests are the same from run to run), each ending in `eol`; raises
-- (naming `who` and `what`) for a non-string or a CR or LF, which would
-- start a header of its own.
function check.header_lines(map, who, what, eol)
  local names = {}
  for name in pairs(map or {}) do names[#names + 1] = name end
  table.sort(names, function(a, b) return tostring(a) < tostring(b) end)
  local out = {}
  for i, name in ipairs(names) do
    local value = map[name]
    if type(name) ~= "string" or type(value) ~= "string" or (name .. value):find("[\r\n]") then
      error(who .. ": " .. what .. " must map names to values without line breaks", 4)
    end
    out[i] = name .. ": " .. value .. (eol or "")
  end
  return out
end

-- Percent-escapes everything but the unreserved characters (RFC 3986).
function check.escape(s)
  return (s:gsub("[^A-Za-z0-9_.~%-]", function(c)
    return string.format("%%%02X", c:byte())
  end))
end

return check
