-- stream_local.users: the handlers of the users endpoints (stream-api.md section 3).
--
-- What it does: validates input, checks what the caller may do, talks to the store and
-- answers. Each handler gets ctx = { method, args, principal, id (from the path) } and
-- returns after writing the response through stream_local.reply.
--
--   POST   user/               add (201; existing id 409/22), ?get_or_create=true|True|1
--   GET    user/{id}/          get (200), ?with_follow_counts adds the two counts
--   PUT    user/{id}/          update: data replaced, updated_at moves (201)
--   DELETE user/{id}/          delete (200 {"duration"})
--   POST   users/              batch add {"users":[...],"override"|"override_existing":bool}
--   GET    users/?ids=a,b      batch get, unknown ids left out
--   DELETE users/?ids=a,b      batch delete, lists every id asked for
--
-- An id in the path that breaks the id rule names no user: 404 code 16, as the service
-- answers (ids in bodies and in `ids` are validated: 400 code 4).
--
-- What it deliberately does not do: no enrichment, no
-- merging of data on update, no partial success in batches (any invalid entry rejects
-- the whole request before anything is written).

local json = require "stream_local.json"
local userstore = require "stream_local.userstore"
local reply = require "stream_local.reply"
local auth = require "stream_local.auth"
local config = require "stream_local.config"
local request = require "stream_local.request"
local idrules = require "stream_local.ids"
local guards = require "stream_local.guards"

local type, ipairs, tostring = type, ipairs, tostring
local concat = table.concat
local format = string.format

local M = {}

-- helpers ------------------------------------------------------------------

local flag = request.flag

local valid_id = idrules.valid_user_id
local ID_RULE = idrules.USER_ID_RULE

-- body_object() -> object tree | nil (after answering 400)
local function body_object()
  local tree, detail = request.json_object()
  if not tree then reply.error(400, detail) end
  return tree
end

-- data_json(node, field, errors) -> compact JSON of the data object, "{}" for absent/null
local DATA_RULE = { name_kind = true }
local function data_json(node, field, errors)
  return guards.data_json(node, field, errors, DATA_RULE)
end

local function check_id(node, field, errors)
  if node == nil then
    errors[#errors + 1] = { field, "this field is required" }
    return nil
  end
  if type(node) ~= "string" then
    errors[#errors + 1] = { field, "the id must be a string" }
    return nil
  end
  if not valid_id(node) then
    errors[#errors + 1] = { field, "invalid user id " .. json.quote(node) .. ": " .. ID_RULE }
    return nil
  end
  return node
end

local function check_size(id, data, field, errors)
  local size = #('{"id":' .. json.quote(id) .. ',"data":' .. data .. '}')
  if size > config.max_user_bytes then
    errors[#errors + 1] = { field, format("the user object is %d bytes, the limit is %d bytes",
      size, config.max_user_bytes) }
    return false
  end
  return true
end

local invalid = reply.invalid

local function forbidden(principal, id)
  return reply.error(403, "user " .. tostring(principal.user_id) ..
    " may not create, change or delete user " .. id)
end

local function not_found(id)
  return reply.error(404, "User " .. id .. " does not exist")
end

-- split the ids query parameter: nil after answering 400, else a de-duplicated list
local function ids_param(args)
  local v = request.joined(args, "ids")
  if not v then
    reply.error(400, "invalid input: ids: this query parameter is required",
      { { "ids", "this query parameter is required (comma-separated user ids)" } })
    return nil
  end
  local list, seen, errors = {}, {}, {}
  for id in (v .. ","):gmatch("([^,]*),") do
    if not valid_id(id) then
      errors[#errors + 1] = { "ids", "invalid user id " .. json.quote(id) .. ": " .. ID_RULE }
    elseif not seen[id] then
      seen[id] = true
      list[#list + 1] = id
    end
  end
  if errors[1] then
    invalid(errors)
    return nil
  end
  if #list > config.max_batch then
    invalid({ { "ids", format("at most %d ids per request", config.max_batch) } })
    return nil
  end
  return list
end

-- single user --------------------------------------------------------------

function M.add(ctx)
  local body = body_object()
  if not body then return end
  local errors = {}
  local id = check_id(body:get("id"), "id", errors)
  local data = data_json(body:get("data"), "data", errors)
  if id and data then check_size(id, data, "data", errors) end
  if errors[1] then return invalid(errors) end
  if not auth.allowed(ctx.principal, id) then return forbidden(ctx.principal, id) end

  local record, created = userstore.add(id, data)
  if not created and not flag(ctx.args, "get_or_create") then
    return reply.error(409, "User " .. id .. " already exists")
  end
  return reply.send(201, userstore.user_json(id, record))
end

function M.get(ctx)
  local id = ctx.id
  if not valid_id(id) then return not_found(id) end
  local record = userstore.get(id)
  if not record then return not_found(id) end
  local extra
  if flag(ctx.args, "with_follow_counts") then
    extra = format('"followers_count":%d,"following_count":%d', userstore.follow_counts(id))
  end
  return reply.send(200, userstore.user_json(id, record, extra))
end

function M.update(ctx)
  local id = ctx.id
  if not valid_id(id) then return not_found(id) end
  if not auth.allowed(ctx.principal, id) then return forbidden(ctx.principal, id) end
  local body = body_object()
  if not body then return end
  local errors = {}
  local data = data_json(body:get("data"), "data", errors)
  if data then check_size(id, data, "data", errors) end
  if errors[1] then return invalid(errors) end
  local record = userstore.update(id, data)
  if not record then return not_found(id) end
  return reply.send(201, userstore.user_json(id, record))
end

function M.delete(ctx)
  local id = ctx.id
  if not valid_id(id) then return not_found(id) end
  if not auth.allowed(ctx.principal, id) then return forbidden(ctx.principal, id) end
  if not userstore.delete(id) then return not_found(id) end
  return reply.send(200, "{}")
end

-- batches ------------------------------------------------------------------

function M.add_many()
  local body = body_object()
  if not body then return end
  local errors = {}

  local override = false
  for _, name in ipairs({ "override", "override_existing" }) do
    local v = body:get(name)
    if v ~= nil and v ~= json.null then
      if type(v) ~= "boolean" then
        errors[#errors + 1] = { name, "must be true or false" }
      elseif v then
        override = true
      end
    end
  end

  local list = body:get("users")
  local entries = {}
  if list == nil then
    errors[#errors + 1] = { "users", "this field is required" }
  elseif json.kind(list) ~= "array" then
    errors[#errors + 1] = { "users", "must be an array of users" }
  elseif list.n == 0 then
    errors[#errors + 1] = { "users", "must not be empty" }
  elseif list.n > config.max_batch then
    errors[#errors + 1] = { "users", format("at most %d users per request", config.max_batch) }
  else
    for i = 1, list.n do
      local prefix = format("users[%d].", i - 1)
      local u = list[i]
      if json.kind(u) ~= "object" then
        errors[#errors + 1] = { format("users[%d]", i - 1), "must be an object with id and data" }
      else
        local id = check_id(u:get("id"), prefix .. "id", errors)
        local data = data_json(u:get("data"), prefix .. "data", errors)
        if id and data and check_size(id, data, prefix .. "data", errors) then
          entries[#entries + 1] = { id, data }
        end
      end
    end
  end
  if errors[1] then return invalid(errors) end

  local out = {}
  for i, e in ipairs(entries) do
    local record
    if override then
      record = userstore.upsert(e[1], e[2])
    else
      record = userstore.add(e[1], e[2])
    end
    out[i] = userstore.user_json(e[1], record)
  end
  return reply.send(201, '{"created_users":[' .. concat(out, ",") .. "]}")
end

function M.get_many(ctx)
  local ids = ids_param(ctx.args)
  if not ids then return end
  local out = {}
  for _, id in ipairs(ids) do
    local record = userstore.get(id)
    if record then out[#out + 1] = userstore.user_json(id, record) end
  end
  return reply.send(200, '{"users":[' .. concat(out, ",") .. "]}")
end

function M.delete_many(ctx)
  local ids = ids_param(ctx.args)
  if not ids then return end
  local out = {}
  for i, id in ipairs(ids) do
    userstore.delete(id)
    out[i] = json.quote(id)
  end
  return reply.send(200, '{"deleted_user_ids":[' .. concat(out, ",") .. "]}")
end

-- routes (assembled by stream_local.app) -----------------------------------------

local BATCH = { guards.server_only("batch user endpoints need a server token (resource users or *)") }

M.ROUTES = {
  { pattern = [[^/api/v1\.0/user/$]], resource = "users", feed_id = guards.any_feed,
    methods = { POST = M.add } },
  { pattern = [[^/api/v1\.0/user/(?<id>[^/]+)/$]], resource = "users", feed_id = guards.any_feed,
    methods = { GET = M.get, PUT = M.update, DELETE = M.delete } },
  { pattern = [[^/api/v1\.0/users/$]], resource = "users", feed_id = guards.any_feed, guards = BATCH,
    methods = { POST = M.add_many, GET = M.get_many, DELETE = M.delete_many } },
}

return M
