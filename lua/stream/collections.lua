-- stream.collections: `client.collections`, objects other than users that
-- activities point at (a food, a game level, a post body), and a light
-- entry handle whose reference ("SO:food:burger") an activity may carry.
--
-- Each method checks its arguments and describes one request for the
-- client's pipeline. Local checks, nothing sent when they fail (`invalid`):
-- collection names and ids 1-255 characters of A-Z a-z 0-9 _ -, data a
-- non-empty JSON object of at most 10 kB, batches of 1 to 1000 entries.
-- Retry safety: get, update, delete, upsert, select and delete_many may be
-- repeated (each leaves the same state however often it runs); an add is
-- repeated only when it carries its own id, and a 409 on such a repeat
-- answers with the stored entry when it holds the same data.

local errors = require "stream.errors"
local check = require "stream.check"
local rules = require "stream.rules"
local handles = require "stream.handles"
local request = require "stream.request"

local collections = {}

local MAX_BYTES = rules.OBJECT_BYTES
local MAX_BATCH = 1000

local Collections = {}
Collections.__index = Collections
Collections.__name = "stream.collections"

function Collections.__tostring()
  return "stream.collections"
end

function collections.new(client)
  return setmetatable({ client = client }, Collections)
end

local function self_check(self, fname)
  check.self(self, Collections, fname, 3)
end

-- name and id problems as one `invalid` error, or nil.
local names_problem = handles.entry_problem

local function data_json(pipe, data, fname, info, level)
  if type(data) ~= "table" then
    check.raise(fname .. ": data must be a table, got " .. type(data), level)
  end
  local text, err = check.object(pipe, data, "data", info, MAX_BYTES, 0, "data")
  if not text then return nil, err end
  if text == "{}" then
    return nil, errors.invalid("data must not be empty", "data", info)
  end
  return text
end

-- Structural equality of two decoded JSON values (arrays and objects alike).
local function same(a, b)
  if type(a) ~= "table" or type(b) ~= "table" then return a == b end
  for k, v in pairs(a) do
    if not same(v, b[k]) then return false end
  end
  for k in pairs(b) do
    if a[k] == nil then return false end
  end
  return true
end

---------------------------------------------------------------- entry handle

-- The handle type is handles.lua's (inside an activity an entry handle is
-- its "SO:" reference); its methods are here.
local Entry = handles.Entry
local entry_ref = handles.refs[Entry]

function Entry.__tostring(e)
  return "stream.collection_entry " .. e.collection .. ":" .. e.id
end

-- "SO:<collection>:<id>", or nil, err when a name breaks the rules.
function Entry:ref()
  check.self(self, Entry, "entry:ref")
  local ref, err = entry_ref(self)
  return ref, err
end

function Entry:get()
  check.self(self, Entry, "entry:get")
  local res, err = self.client.collections:get(self.collection, self.id)
  return res, err
end

function Entry:update(data)
  check.self(self, Entry, "entry:update")
  local res, err = self.client.collections:update(self.collection, self.id, data)
  return res, err
end

function Entry:delete()
  check.self(self, Entry, "entry:delete")
  local res, err = self.client.collections:delete(self.collection, self.id)
  return res, err
end

-- collections:entry(name, id) -> handle (sends nothing)
function Collections:entry(name, id)
  self_check(self, "collections:entry")
  name = check.id_arg(name, "collections:entry", 2, "collection name")
  id = check.id_arg(id, "collections:entry", 2)
  return handles.entry(self.client, name, id)
end

---------------------------------------------------------------- one entry

local ADD_OPTS = { id = true, user_id = true }

-- collections:add(name, data [, {id =, user_id =}]) -> the entry
function Collections:add(name, data, opts)
  self_check(self, "collections:add")
  local fname = "collections:add"
  name = check.id_arg(name, fname, 2, "collection name")
  opts = check.opts(opts, ADD_OPTS, fname, 2)
  local path = "collections/" .. name .. "/"
  local info = { method = "POST", path = "collections/" }
  local err = names_problem(name, nil, info)
  if err then return nil, err end
  local pipe = self.client.pipeline
  local text
  text, err = data_json(pipe, data, fname, info, 3)
  if not text then return nil, err end
  local id
  if opts.id ~= nil then
    id = check.id_arg(opts.id, fname, 2, "option 'id'")
    err = check.id(id, "id", info)
    if err then return nil, err end
  end
  local u
  u, err = rules.user_option(opts.user_id, "user_id", fname, info, 2)
  if err then return nil, err end
  local res
  res, err = pipe:send({ method = "POST", path = path, idempotent = id ~= nil,
    body = request.object("id", id and pipe:encode(id), "data", text, "user_id", u and pipe:encode(u)) })
  if res == nil and id and err.kind == "api" and err.status == 409 and (err.attempts or 1) > 1 then
    local got = pipe:send({ method = "GET", path = path .. id .. "/", idempotent = true })
    if type(got) == "table" and same(got.data, pipe:decode(text)) then
      return got
    end
  end
  return res, err
end

local function one(self, fname, method, name, id, body)
  name = check.id_arg(name, fname, 3, "collection name")
  id = check.id_arg(id, fname, 3)
  local err = names_problem(name, id, { method = method, path = "collections/" })
  if err then return nil, err end
  return self.client.pipeline:send({ method = method, path = "collections/" .. name .. "/" .. id .. "/",
    body = body, idempotent = true })
end

function Collections:get(name, id)
  self_check(self, "collections:get")
  local res, err = one(self, "collections:get", "GET", name, id)
  return res, err
end

-- collections:update(name, id, data): replaces the entry's data
function Collections:update(name, id, data)
  self_check(self, "collections:update")
  local text, err = data_json(self.client.pipeline, data, "collections:update",
    { method = "PUT", path = "collections/" }, 3)
  if not text then return nil, err end
  local res
  res, err = one(self, "collections:update", "PUT", name, id, request.object("data", text))
  return res, err
end

function Collections:delete(name, id)
  self_check(self, "collections:delete")
  local res, err = one(self, "collections:delete", "DELETE", name, id)
  return res, err
end

---------------------------------------------------------------- batches

local function batch_size(n, info)
  if n == 0 or n > MAX_BATCH then
    return errors.invalid(string.format("a batch holds 1 to %d entries, got %d", MAX_BATCH, n),
      "ids", info)
  end
end

-- collections:upsert(name, items): each item is flat ({id = ..., field = ...})
-- and is stored whole, id included, as the entry's data.
function Collections:upsert(name, items)
  self_check(self, "collections:upsert")
  local fname = "collections:upsert"
  name = check.id_arg(name, fname, 2, "collection name")
  if type(items) ~= "table" then
    check.raise(fname .. ": items must be a list of tables, got " .. type(items), 2)
  end
  local info = { method = "POST", path = "collections/" }
  local err = names_problem(name, nil, info) or batch_size(#items, info)
  if err then return nil, err end
  local pipe = self.client.pipeline
  local parts = {}
  for i = 1, #items do
    local item = items[i]
    if type(item) ~= "table" then
      check.raise(fname .. ": items[" .. i .. "] must be a table, got " .. type(item), 2)
    end
    local id = check.id_arg(item.id, fname, 2, "items[" .. i .. "].id")
    err = check.id(id, "items[" .. i .. "].id", info)
    if err then return nil, err end
    local text
    text, err = check.object(pipe, item, "items[" .. i .. "]", info, MAX_BYTES)
    if not text then return nil, err end
    parts[i] = text
  end
  local res
  res, err = pipe:send({ method = "POST", path = "collections/", idempotent = true,
    body = request.object("data", request.object(name, parts)) })
  return res, err
end

local function ids_list(ids, fname, info)
  local list = check.ids_arg(ids, fname, 3)
  local err = batch_size(#list, info) or check.ids(list, "ids", info)
  if err then return nil, err end
  return list
end

-- collections:select(name, ids) -> {response = {data = {entry...}}}
function Collections:select(name, ids)
  self_check(self, "collections:select")
  name = check.id_arg(name, "collections:select", 2, "collection name")
  local info = { method = "GET", path = "collections/" }
  local err = names_problem(name, nil, info)
  if err then return nil, err end
  local list
  list, err = ids_list(ids, "collections:select", info)
  if not list then return nil, err end
  local fids = {}
  for i, id in ipairs(list) do fids[i] = name .. ":" .. id end
  local res
  res, err = self.client.pipeline:send({ method = "GET", path = "collections/", idempotent = true,
    query = { foreign_ids = table.concat(fids, ",") } })
  return res, err
end

-- collections:delete_many(name, ids)
function Collections:delete_many(name, ids)
  self_check(self, "collections:delete_many")
  name = check.id_arg(name, "collections:delete_many", 2, "collection name")
  local info = { method = "DELETE", path = "collections/" }
  local err = names_problem(name, nil, info)
  if err then return nil, err end
  local list
  list, err = ids_list(ids, "collections:delete_many", info)
  if not list then return nil, err end
  local res
  res, err = self.client.pipeline:send({ method = "DELETE", path = "collections/", idempotent = true,
    query = { collection_name = name, ids = table.concat(list, ",") } })
  return res, err
end

collections.Collections = Collections
collections.Entry = Entry
return collections
