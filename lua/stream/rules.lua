-- stream.rules: the run-time rules every API area shares, each written once.
--
-- users, feeds, activities, reactions, collections and batch call these
-- instead of keeping copies, so one value is accepted or refused the same
-- way by every method:
-- - activity ids: 1-255 of A-Z a-z 0-9 _ - . : ~ @, not only dots. Every
--   id Stream gives (a UUID) passes, and so does a foreign id such as
--   "post:1" where one names an activity in a path; none of these characters
--   can end a path segment, start a query or split a comma-joined list, and
--   "." or ".." would name another path;
-- - foreign ids carried in a query (get_activities): 1-255 characters,
--   no ',' (the list separator) and no control character;
-- - paging: limit, offset and the id_* cursors, with the server's ranges;
-- - the `user_id` option: a user id or a user handle, always through the
--   user id rule;
-- - feed targets ("slug:id" or a feed handle) are feeds.target_id, which
--   uses check.slug and check.id;
-- - JSON objects and their 10240-byte size limit (OBJECT_BYTES);
-- - the method and path a refused request names (rules.info).
--
-- Wrong TYPES are bugs in the caller's code and raise (check.raise counts
-- the level from the function that calls the rule). Values out of range
-- come from outside at run time: nil, err (kind invalid), nothing sent.

local errors = require "stream.errors"
local check = require "stream.check"
local handles = require "stream.handles"

local rules = {}

rules.MAX_ID = check.MAX_ID
-- Stream's limit on one user object, activity, reaction or collection entry.
rules.OBJECT_BYTES = 10240
-- How much of a rejected value a path or message shows.
local SHOWN = 40
local MAX_INT = 2 ^ 31 - 1

-- The server's ranges. Reaction filters read a limit above 25 as 25, so the
-- client passes any positive limit on; follower lists stop at 500.
rules.RANGES = {
  feed_limit = { 1, 100 },
  reaction_limit = { 1, MAX_INT },
  follow_limit = { 1, 500 },
  offset = { 0, MAX_INT },
}

---------------------------------------------------------------- naming a refused request

-- A value as a refused request's path or message shows it: cut after SHOWN
-- characters, control characters as \ddd, so no raw newline reaches a log.
function rules.shown(s)
  if #s > SHOWN then s = s:sub(1, SHOWN) .. "..." end
  return (s:gsub("%c", function(c) return string.format("\\%03d", c:byte()) end))
end

local function segment(s)
  if s:find("[^.]") and #s <= rules.MAX_ID and not s:find("[^A-Za-z0-9_.:~@%-]") then return s end
  return rules.shown(s)
end

-- The { method =, path = } of a refused request: the segments joined with
-- '/', ending in '/'. A segment that could be sent stays whole; any other
-- is shown as rules.shown shows it.
function rules.info(method, ...)
  local parts = { ... }
  for i = 1, #parts do parts[i] = segment(parts[i]) end
  return { method = method, path = table.concat(parts, "/") .. "/" }
end

---------------------------------------------------------------- ids

-- nil when `id` is an activity id (see above), else an `invalid` error for
-- `field` (default "id"); the message names `label` (default the field).
function rules.activity_id(id, field, info, label)
  if id == "" or #id > rules.MAX_ID or id:find("[^A-Za-z0-9_.:~@%-]") or not id:find("[^.]") then
    field = field or "id"
    return errors.invalid(string.format("%s \"%s\" must be 1 to %d characters of A-Z a-z 0-9 - _ . : ~ @"
      .. " (not only dots)", label or field, rules.shown(id), rules.MAX_ID), field, info)
  end
end

-- nil when a foreign id may go in a comma-joined query value, else an error.
function rules.foreign_id(fid, field, info, label)
  if fid == "" or #fid > rules.MAX_ID or fid:find("[,%c]") then
    return errors.invalid(string.format("%s \"%s\" must be 1 to %d characters without ',' "
      .. "or control characters", label or field, rules.shown(fid), rules.MAX_ID), field, info)
  end
end

-- The id a user reference names: a string as it is, a user handle's id;
-- nil for anything else (handles.lua knows the handle types).
rules.user_of = handles.user_of

-- A `user_id`-like option (`key` names it): the checked id, nil when the
-- option is absent, or nil, err for a bad id. Another type raises at
-- `level` as check.raise counts it from the caller of this function.
function rules.user_option(v, key, fname, info, level)
  if v == nil then return nil end
  local id = rules.user_of(v)
  if not id then
    check.raise(fname .. ": option '" .. key .. "' must be a user id or a user handle, got "
      .. type(v), (level or 2) + 1)
  end
  local err = check.id(id, key, info)
  if err then return nil, err end
  return id
end

---------------------------------------------------------------- paging

-- A whole-number option (`key`) within RANGES[range]: the number, nil when
-- absent, or nil, err when out of range. A non-integer raises.
function rules.count(v, key, range, fname, info, level)
  if v == nil then return nil end
  if type(v) ~= "number" or v ~= math.floor(v) or v ~= v then
    check.raise(fname .. ": option '" .. key .. "' must be an integer, got "
      .. (type(v) == "number" and tostring(v) or type(v)), (level or 2) + 1)
  end
  local r = rules.RANGES[range]
  if v < r[1] or v > r[2] then
    return nil, errors.invalid(string.format("%s %s is out of range: %d to %d", key,
      string.format("%.17g", v), r[1], r[2]), key, info)
  end
  return v
end

rules.CURSORS = { "id_lt", "id_lte", "id_gt", "id_gte" }

-- limit, offset and the cursors of `opts` into query `q`: true, or nil,
-- err. `range` names the limit's range; `no_offset` leaves offset out (it
-- is then an unknown option, caught before). Cursors are activity ids
-- (a table with an `id`, such as a reaction, gives its id).
function rules.paging(opts, q, range, fname, info, level)
  level = (level or 2) + 1
  local err
  q.limit, err = rules.count(opts.limit, "limit", range, fname, info, level)
  if err then return nil, err end
  q.offset, err = rules.count(opts.offset, "offset", "offset", fname, info, level)
  if err then return nil, err end
  for _, c in ipairs(rules.CURSORS) do
    local v = opts[c]
    if type(v) == "table" then v = v.id end
    if opts[c] ~= nil then
      if type(v) ~= "string" then
        check.raise(fname .. ": option '" .. c .. "' must be an activity id string", level)
      end
      err = rules.activity_id(v, c, info)
      if err then return nil, err end
      q[c] = v
    end
  end
  return true
end

---------------------------------------------------------------- objects

-- The JSON text of `data` as an object (nil gives "{}"), or nil, err for
-- what JSON cannot hold, an array, or more than OBJECT_BYTES once
-- `overhead` bytes of the enclosing object are added (`what` names it).
function rules.object(codec, data, field, info, overhead, what)
  return check.object(codec, data, field, info, rules.OBJECT_BYTES, overhead or 0, what)
end

-- nil when an encoded body fits OBJECT_BYTES, else an error naming `what`.
function rules.fits(text, what, field, info)
  if #text > rules.OBJECT_BYTES then
    return errors.invalid(string.format("%s is %d bytes, over the %d-byte limit",
      what, #text, rules.OBJECT_BYTES), field, info)
  end
end

return rules
