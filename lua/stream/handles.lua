-- stream.handles: the handle types the API areas hand out (a user, a feed,
-- a collection entry), how each is made, and what each stands for inside an
-- activity: its reference ("SU:alice", the feed "user:alice",
-- "SO:food:burger"), which activities.lua puts in its place before encoding.
--
-- A leaf: it requires check and errors only, never an area, so any area can
-- make or recognise any handle (user:feed makes a feed handle, a reaction
-- filter takes a user handle, batch reads feed handles) without requiring
-- another area. The areas add their methods to the metatables kept here
-- (users.lua to User, feeds.lua to Feed, collections.lua to Entry).
--
-- A handle holds its client and its names, nothing else. Names that break
-- the rules are reported where the handle is used (`invalid`, nothing
-- sent); a wrong argument type raises when it is made.

local errors = require "stream.errors"
local check = require "stream.check"

local handles = {}

local function handle_type(name)
  local mt = { __name = name }
  mt.__index = mt
  return mt
end

handles.User = handle_type("stream.user")
handles.Feed = handle_type("stream.feed")
handles.Entry = handle_type("stream.collection_entry")
local User, Feed, Entry = handles.User, handles.Feed, handles.Entry

---------------------------------------------------------------- making handles

-- client:user(id): `level` is where a bad id type is reported (as error()
-- counts it from the caller of this function).
function handles.user(client, id, level)
  id = check.id_arg(id, "client:user", (level or 1) + 1)
  return setmetatable({ client = client, id = id }, User)
end

-- client:feed("user", "alice") or client:feed("user:alice"); a misuse
-- raises at the caller of the public method that called this.
function handles.feed(client, slug, id, fname)
  fname = fname or "client:feed"
  if id == nil and type(slug) == "string" and slug:find(":", 1, true) then
    slug, id = slug:match("^([^:]*):(.*)$")
  end
  slug = check.id_arg(slug, fname, 3, "slug")
  if id == nil then
    error(fname .. ": expected (slug, id) or \"slug:id\", got only " .. string.format("%q", slug), 3)
  end
  id = check.id_arg(id, fname, 3, "id")
  return setmetatable({ client = client, slug = slug, user_id = id, id = slug .. ":" .. id }, Feed)
end

-- collections:entry(name, id), names already turned into text.
function handles.entry(client, name, id)
  return setmetatable({ client = client, collection = name, id = id }, Entry)
end

---------------------------------------------------------------- names

-- nil when a feed's slug and id are fine, else an `invalid` error.
function handles.feed_problem(slug, id, info)
  return check.slug(slug, "feed slug", info) or check.id(id, "feed id", info)
end

-- nil when a collection name (and id, when given) are fine, else an error.
function handles.entry_problem(name, id, info)
  return check.id(name, "collection", info) or (id and check.id(id, "id", info))
end

-- The id a user reference names: a string as it is, a user handle's id;
-- nil for anything else.
function handles.user_of(v)
  if type(v) == "string" then return v end
  if getmetatable(v) == User then return v.id end
  return nil
end

-- A feed named by a handle or a "slug:id" string, as "slug:id"; nil, err
-- when its names break the rules. Another type raises at `level` (default:
-- the caller of the public method that called this one). `what` names the
-- argument in messages ("target", "target_feeds[2]").
function handles.target_id(target, fname, info, level, what)
  what = what or "target"
  local slug, id
  if getmetatable(target) == Feed then
    slug, id = target.slug, target.user_id
  elseif type(target) == "string" then
    slug, id = target:match("^([^:]*):(.*)$")
    if not slug then
      return nil, errors.invalid(string.format("%s %s must be a feed handle or \"slug:id\"",
        what, check.shown(target)), what:match("^[%w_]+"), info)
    end
  else
    check.raise(fname .. ": " .. what .. " must be a feed handle or a \"slug:id\" string, got "
      .. type(target), level or 3)
  end
  local err = handles.feed_problem(slug, id, info)
  if err then return nil, err end
  return slug .. ":" .. id
end

---------------------------------------------------------------- references

-- "SU:<id>" for a user id, or nil, err.
function handles.user_ref(id)
  local err = check.id(id, "id")
  if err then return nil, err end
  return "SU:" .. id
end

-- metatable -> function(handle) -> reference string, or nil, err. Read it
-- with handles.refs[getmetatable(v)]; add a type with register_ref.
handles.refs = {
  [User] = function(u) return handles.user_ref(u.id) end,
  [Feed] = function(f)
    local err = handles.feed_problem(f.slug, f.user_id)
    if err then return nil, err end
    return f.id
  end,
  [Entry] = function(e)
    local err = handles.entry_problem(e.collection, e.id)
    if err then return nil, err end
    return "SO:" .. e.collection .. ":" .. e.id
  end,
}

-- Declares a handle type (its metatable) whose values an activity carries
-- as the reference fn(handle) gives (a string, or nil, err).
function handles.register_ref(mt, fn)
  handles.refs[mt] = fn
end

return handles
