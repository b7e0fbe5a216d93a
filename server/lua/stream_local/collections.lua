-- stream_local.collections: collection entries, the objects `SO:<name>:<id>` references
-- name (stream-feeds-api.md section 8), stored in the `collections` table.
--
-- What it does:
--   POST   collections/{name}/        add {"id"?, "data", "user_id"?} (201; id generated
--                                     when missing or null; existing id 409 code 22)
--   GET    collections/{name}/{id}/   get (200)
--   PUT    collections/{name}/{id}/   update {"data"}: data replaced, updated_at moves (201)
--   DELETE collections/{name}/{id}/   delete (200 {"duration"})
--   POST   collections/               upsert many {"data":{"<name>":[{"id",...},...]}}:
--                                     each item stored whole, id included, as data (201)
--   GET    collections/?foreign_ids=<name>:<id>,...   select many (200)
--   DELETE collections/?collection_name=<name>&ids=a,b   delete many (200)
--   The SQL and the entry's answer text live in stream_local.collectionstore.
--
-- Invariants: an entry answers with exactly the keys id, collection, foreign_id, data,
-- created_at, updated_at (`foreign_id` = "<name>:<id>"; `user_id` is stored, never
-- shown); updated_at is at least 1 µs after the previous value, so it always moves; every
-- write is one BEGIN IMMEDIATE transaction, and a request that is refused writes nothing
-- (batches are validated whole first). Ownership: the token's user (user tokens) or
-- `user_id` (server tokens, optional); a user token may update or delete only what it
-- owns, and may read anything. Batch calls take server tokens only.
--
-- What it deliberately does not do: no merging of data on update (it is replaced), no
-- ownership change after the add, no cascade (activities keep their `SO:` references,
-- which enrichment then reports as missing), no collection-level listing.

local json = require "stream_local.json"
local reply = require "stream_local.reply"
local request = require "stream_local.request"
local config = require "stream_local.config"
local ids = require "stream_local.ids"
local collectionstore = require "stream_local.collectionstore"
local guards = require "stream_local.guards"
local db = require "stream_local.db"

local type, ipairs, random = type, ipairs, math.random
local concat, format = table.concat, string.format

local M = {}

local NAME_RULE = ids.USER_ID_RULE
local MAX_DATA_BYTES = config.max_activity_bytes -- 10 kB, as activities and users
local MAX_BATCH = config.max_batch -- entries per batch call

-- names and ids follow the user id rule
local valid = ids.valid_user_id

local invalid = reply.invalid

local function missing(name, id)
  return reply.error(404, "collection entry " .. name .. ":" .. id .. " does not exist")
end

-- uuid4() -> a random 36-character UUID (version 4)
local function uuid4()
  return format("%08x-%04x-4%03x-%04x-%04x%08x", random(0, 0xffffffff), random(0, 0xffff),
    random(0, 0xfff), 0x8000 + random(0, 0x3fff), random(0, 0xffff), random(0, 0xffffffff))
end

local entry_json, entry = collectionstore.entry_json, collectionstore.entry

-- data_json(node, field, errors) -> compact JSON of a non-empty data object | nil
local DATA_RULE = { non_empty = true, max_bytes = MAX_DATA_BYTES }
local function data_json(node, field, errors)
  return guards.data_json(node, field, errors, DATA_RULE)
end

-- path_entry(ctx) -> name, id | nil after answering 404 (a path naming no entry)
local function path_entry(ctx)
  local name, id = ctx.params.name, ctx.params.id
  if not valid(name) or not valid(id) then
    missing(name, id)
    return nil
  end
  return name, id
end

-- single entries -----------------------------------------------------------------

function M.add(ctx)
  local name = ctx.params.name
  local body, detail = request.json_object()
  if not body then return reply.error(400, detail) end
  local errors = {}
  if not valid(name) then
    errors[#errors + 1] = { "collection_name", "invalid collection name " .. json.quote(name) .. ": " .. NAME_RULE }
  end
  local id = body:get("id")
  if id == nil or id == json.null then
    id = uuid4()
  elseif not valid(id) then
    errors[#errors + 1] = { "id", "invalid id " .. (type(id) == "string" and json.quote(id) or "(not a string)")
      .. ": " .. NAME_RULE }
  end
  local data = data_json(body:get("data"), "data", errors)
  local owner = body:get("user_id")
  if owner == json.null then owner = nil end
  if owner ~= nil and not valid(owner) then
    errors[#errors + 1] = { "user_id", "invalid user id: " .. NAME_RULE }
  end
  if errors[1] then return invalid(errors) end
  local principal = ctx.principal
  if not principal.server then
    if owner ~= nil and owner ~= principal.user_id then
      return reply.error(403, "user " .. principal.user_id .. " may not add collection entries for " .. owner)
    end
    owner = principal.user_id
  end
  local row = db.write(function()
    if collectionstore.row(name, id) then return nil end
    return collectionstore.insert(name, id, owner, data)
  end)
  if not row then
    return reply.error(409, "collection entry " .. name .. ":" .. id .. " already exists")
  end
  return reply.send(201, entry_json(name, id, row))
end

function M.get(ctx)
  local name, id = path_entry(ctx)
  if not name then return end
  local text = entry(name, id)
  if not text then return missing(name, id) end
  return reply.send(200, text)
end

-- owned(principal, row): a user token changes only the entries it owns
local function owned(principal, row)
  return principal.server or (row[1] ~= nil and row[1] == principal.user_id)
end

function M.update(ctx)
  local name, id = path_entry(ctx)
  if not name then return end
  local body, detail = request.json_object()
  if not body then return reply.error(400, detail) end
  local errors = {}
  local given = body:get("id")
  if given ~= nil and given ~= json.null and given ~= id then
    errors[#errors + 1] = { "id", "the body names another id than the path (" .. id .. ")" }
  end
  local data = data_json(body:get("data"), "data", errors)
  if errors[1] then return invalid(errors) end
  local result, row = db.write(function()
    local old = collectionstore.row(name, id)
    if not old then return "missing" end
    if not owned(ctx.principal, old) then return "forbidden" end
    return "ok", collectionstore.replace(name, id, old, data)
  end)
  if result == "missing" then return missing(name, id) end
  if result == "forbidden" then
    return reply.error(403, "user " .. ctx.principal.user_id .. " may not change " .. name .. ":" .. id
      .. ", which it does not own")
  end
  return reply.send(201, entry_json(name, id, row))
end

function M.delete(ctx)
  local name, id = path_entry(ctx)
  if not name then return end
  local result = db.write(function()
    local old = collectionstore.row(name, id)
    if not old then return "missing" end
    if not owned(ctx.principal, old) then return "forbidden" end
    collectionstore.delete(name, id)
    return "ok"
  end)
  if result == "missing" then return missing(name, id) end
  if result == "forbidden" then
    return reply.error(403, "user " .. ctx.principal.user_id .. " may not delete " .. name .. ":" .. id
      .. ", which it does not own")
  end
  return reply.send(200, "{}")
end

-- batches ------------------------------------------------------------------------

function M.upsert_many()
  local body, detail = request.json_object()
  if not body then return reply.error(400, detail) end
  local data = body:get("data")
  if json.kind(data) ~= "object" or not data.keys[1] then
    return invalid({ { "data", 'must be an object of collection names and lists: {"food":[{"id":"1",...}]}' } })
  end
  local errors, items, count = {}, {}, 0
  for _, name in ipairs(data.keys) do
    local list = data.values[name]
    if not valid(name) then
      errors[#errors + 1] = { "data", "invalid collection name " .. json.quote(name) .. ": " .. NAME_RULE }
    elseif json.kind(list) ~= "array" then
      errors[#errors + 1] = { "data." .. name, "must be a list of objects" }
    else
      count = count + list.n
      for i = 1, list.n do
        local item, field = list[i], format("data.%s[%d]", name, i - 1)
        if json.kind(item) ~= "object" then
          errors[#errors + 1] = { field, "must be an object with an id" }
        elseif not valid(item:get("id")) then
          errors[#errors + 1] = { field .. ".id", "each item needs an id that " .. NAME_RULE }
        else
          local text = data_json(item, field, errors)
          if text then items[#items + 1] = { name, item:get("id"), text } end
        end
      end
    end
  end
  if count == 0 and not errors[1] then
    errors[#errors + 1] = { "data", "give at least one entry" }
  elseif count > MAX_BATCH then
    errors[#errors + 1] = { "data", format("at most %d entries per request", MAX_BATCH) }
  end
  if errors[1] then return invalid(errors) end
  db.write(function()
    for _, it in ipairs(items) do
      local old = collectionstore.row(it[1], it[2])
      if old then
        collectionstore.replace(it[1], it[2], old, it[3])
      else
        collectionstore.insert(it[1], it[2], nil, it[3])
      end
    end
  end)
  return reply.send(201, '{"data":' .. json.encode(data) .. "}")
end

-- list_arg(args, name) -> the non-empty items of a comma list | nil (also for ",")
local function list_arg(args, name)
  local list = request.list(args, name)
  return list and list[1] and list or nil
end

function M.select_many(ctx)
  local list = list_arg(ctx.args, "foreign_ids")
  if not list then
    return invalid({ { "foreign_ids", "give foreign_ids=<collection>:<id>,..." } })
  end
  if #list > MAX_BATCH then
    return invalid({ { "foreign_ids", format("at most %d per request", MAX_BATCH) } })
  end
  local wanted = {}
  for _, ref in ipairs(list) do
    local name, id = ref:match("^([^:]*):(.*)$")
    if not valid(name) or not valid(id) then
      return invalid({ { "foreign_ids", "invalid foreign id " .. json.quote(ref) .. ": expected <collection>:<id>, "
        .. "both of which " .. NAME_RULE } })
    end
    wanted[#wanted + 1] = { name, id }
  end
  local out, seen = {}, {}
  for _, w in ipairs(wanted) do
    local key = w[1] .. ":" .. w[2]
    if not seen[key] then
      seen[key] = true
      out[#out + 1] = entry(w[1], w[2])
    end
  end
  return reply.send(200, '{"response":{"data":[' .. concat(out, ",") .. "]}}")
end

function M.delete_many(ctx)
  local errors = {}
  local name = request.arg(ctx.args, "collection_name")
  if not valid(name) then
    errors[#errors + 1] = { "collection_name", "give the collection name, which " .. NAME_RULE }
  end
  local list = list_arg(ctx.args, "ids")
  if not list then
    errors[#errors + 1] = { "ids", "give ids=a,b,..." }
  elseif #list > MAX_BATCH then
    errors[#errors + 1] = { "ids", format("at most %d ids per request", MAX_BATCH) }
  else
    for _, id in ipairs(list) do
      if not valid(id) then
        errors[#errors + 1] = { "ids", "invalid id " .. json.quote(id) .. ": " .. NAME_RULE }
        break
      end
    end
  end
  if errors[1] then return invalid(errors) end
  db.write(function()
    for _, id in ipairs(list) do
      collectionstore.delete(name, id)
    end
  end)
  return reply.send(200, "{}")
end

-- routes (assembled by stream_local.app) -----------------------------------------

local BATCH = {
  guards.server_only("batch collection endpoints need a server token (resource collections or *)") }

M.ROUTES = {
  { pattern = [[^/api/v1\.0/collections/$]], resource = "collections", feed_id = guards.any_feed, guards = BATCH,
    methods = { POST = M.upsert_many, GET = M.select_many, DELETE = M.delete_many } },
  { pattern = [[^/api/v1\.0/collections/(?<name>[^/]+)/$]], resource = "collections", feed_id = guards.any_feed,
    methods = { POST = M.add } },
  { pattern = [[^/api/v1\.0/collections/(?<name>[^/]+)/(?<id>[^/]+)/$]], resource = "collections",
    feed_id = guards.any_feed, methods = { GET = M.get, PUT = M.update, DELETE = M.delete } },
}

return M
