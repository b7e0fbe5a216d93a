-- stream.users: the users endpoints, as a light handle per user
-- (`client:user(id)`) and as the collection `client.users`.
--
-- Everything run-time is checked here before a byte is sent: ids must be
-- 1-255 characters of A-Z a-z 0-9 _ - (so an id can never change the
-- request target), data must be a JSON object that fits the 10240-byte
-- user object limit. Such problems return nil, err (kind "invalid");
-- wrong argument types raise. Sending, decoding and error mapping are
-- the client's (client.lua).

local errors = require "stream.errors"

local users = {}

local MAX_USER_BYTES = 10240
local MAX_ID = 255

local function raise(msg, level)
  error(msg, (level or 1) + 2)
end

-- Normalises an id argument: strings as they are, integers as decimal
-- text; any other type raises.
local function id_arg(id, fname)
  local t = type(id)
  if t == "number" and id == math.floor(id) and id >= -2^53 and id <= 2^53 then
    return string.format("%d", id)
  elseif t ~= "string" then
    raise(fname .. ": id must be a string, got " .. t, 2)
  end
  return id
end

-- nil when the id is fine, else an "invalid" error.
local function id_problem(id, info)
  if #id == 0 or #id > MAX_ID or id:find("[^A-Za-z0-9_%-]") then
    local shown = #id > 40 and (id:sub(1, 40) .. "...") or id
    return errors.invalid(string.format(
      "id %q must be 1 to %d characters of A-Z a-z 0-9 _ -", shown, MAX_ID), "id", info)
  end
end

local function check_data(data, fname)
  if data ~= nil and type(data) ~= "table" then
    raise(fname .. ": data must be a table, got " .. type(data), 2)
  end
end

-- Encodes data (nil means {}) as a JSON object; nil, err when it cannot be.
local function encode_data(core, data, info)
  if data == nil then return "{}" end
  local text, msg = core.json_encode(data, "data")
  if not text then
    return nil, errors.invalid(msg, "data", info)
  end
  if text:byte(1) ~= 123 then -- "{"
    return nil, errors.invalid("data must be a JSON object, not an array", "data", info)
  end
  return text
end

-- The JSON text of one user object, checked against the size limit.
local function user_json(core, id, data, info)
  local d, err = encode_data(core, data, info)
  if not d then return nil, err end
  local text = '{"id":"' .. id .. '","data":' .. d .. '}'
  if #text > MAX_USER_BYTES then
    return nil, errors.invalid(string.format(
      "user object is %d bytes, over the %d-byte limit", #text, MAX_USER_BYTES), "data", info)
  end
  return text, d
end

local function check_opts(opts, allowed, fname)
  if opts == nil then return {} end
  if type(opts) ~= "table" then
    raise(fname .. ": options must be a table, got " .. type(opts), 2)
  end
  for k in pairs(opts) do
    if not allowed[k] then
      raise(fname .. ": unknown option '" .. tostring(k) .. "'", 2)
    end
  end
  return opts
end

local function ids_arg(ids, fname)
  if type(ids) ~= "table" then
    raise(fname .. ": ids must be a list of strings, got " .. type(ids), 2)
  end
  local out = {}
  for i = 1, #ids do out[i] = id_arg(ids[i], fname) end
  return out
end

local function ids_query(list, info)
  if #list == 0 then
    return nil, errors.invalid("ids must not be empty", "ids", info)
  end
  for i = 1, #list do
    local err = id_problem(list[i], info)
    if err then return nil, err end
  end
  return "ids=" .. table.concat(list, ",")
end

---------------------------------------------------------------- operations
-- Each takes the client first; the handle and the collection both call these.

local ops = {}

function ops.create(client, id, data, get_or_create)
  local info = { method = "POST", path = "user/" }
  local err = id_problem(id, info)
  if err then return nil, err end
  local body
  body, err = user_json(client._core, id, data, info)
  if not body then return nil, err end
  return client:_call("POST", "user/", get_or_create and "get_or_create=true" or nil, body)
end

function ops.get(client, id, with_follow_counts)
  local path = "user/" .. id .. "/"
  local err = id_problem(id, { method = "GET", path = "user/" })
  if err then return nil, err end
  return client:_call("GET", path, with_follow_counts and "with_follow_counts=true" or nil)
end

function ops.update(client, id, data)
  local info = { method = "PUT", path = "user/" }
  local err = id_problem(id, info)
  if err then return nil, err end
  local _, d = user_json(client._core, id, data, info)
  if not _ then return nil, d end
  return client:_call("PUT", "user/" .. id .. "/", nil, '{"data":' .. d .. '}')
end

function ops.delete(client, id)
  local err = id_problem(id, { method = "DELETE", path = "user/" })
  if err then return nil, err end
  return client:_call("DELETE", "user/" .. id .. "/")
end

function ops.ref(id)
  local err = id_problem(id)
  if err then return nil, err end
  return "SU:" .. id
end

---------------------------------------------------------------- user handle

local User = {}
User.__index = User
User.__name = "stream.user"

function User.__tostring(u)
  return "stream.user " .. u.id
end

function users.handle(client, id)
  id = id_arg(id, "client:user")
  return setmetatable({ client = client, id = id }, User)
end

local CREATE_OPTS = { get_or_create = true }
local GET_OPTS = { with_follow_counts = true }

-- user:create(data [, {get_or_create = true}])
function User:create(data, opts)
  check_data(data, "user:create")
  opts = check_opts(opts, CREATE_OPTS, "user:create")
  return ops.create(self.client, self.id, data, opts.get_or_create)
end

function User:get_or_create(data)
  check_data(data, "user:get_or_create")
  return ops.create(self.client, self.id, data, true)
end

-- user:get([{with_follow_counts = true}])
function User:get(opts)
  opts = check_opts(opts, GET_OPTS, "user:get")
  return ops.get(self.client, self.id, opts.with_follow_counts)
end

User.profile = User.get

function User:update(data)
  check_data(data, "user:update")
  return ops.update(self.client, self.id, data)
end

function User:delete()
  return ops.delete(self.client, self.id)
end

function User:ref()
  return ops.ref(self.id)
end

---------------------------------------------------------------- collection

local Users = {}
Users.__index = Users
Users.__name = "stream.users"

function Users.__tostring()
  return "stream.users"
end

function users.collection(client)
  return setmetatable({ client = client }, Users)
end

-- users:add(id, data [, get_or_create])
function Users:add(id, data, get_or_create)
  id = id_arg(id, "users:add")
  check_data(data, "users:add")
  return ops.create(self.client, id, data, get_or_create and true or false)
end

function Users:get(id, opts)
  id = id_arg(id, "users:get")
  opts = check_opts(opts, GET_OPTS, "users:get")
  return ops.get(self.client, id, opts.with_follow_counts)
end

function Users:update(id, data)
  id = id_arg(id, "users:update")
  check_data(data, "users:update")
  return ops.update(self.client, id, data)
end

function Users:delete(id)
  return ops.delete(self.client, id_arg(id, "users:delete"))
end

function Users.ref(_, id)
  return ops.ref(id_arg(id, "users:ref"))
end

local ADD_MANY_OPTS = { override = true }

-- users:add_many({{id = ..., data = ...}, ...} [, {override = true}])
function Users:add_many(list, opts)
  if type(list) ~= "table" then
    raise("users:add_many: expected a list of {id = ..., data = ...}, got " .. type(list))
  end
  opts = check_opts(opts, ADD_MANY_OPTS, "users:add_many")
  local info = { method = "POST", path = "users/" }
  if #list == 0 then
    return nil, errors.invalid("the list of users must not be empty", "users", info)
  end
  local core = self.client._core
  local parts = {}
  for i = 1, #list do
    local u = list[i]
    if type(u) ~= "table" then
      raise("users:add_many: item " .. i .. " must be a table, got " .. type(u))
    end
    local id = id_arg(u.id, "users:add_many")
    check_data(u.data, "users:add_many")
    local err = id_problem(id, info)
    if err then
      err.detail = "users[" .. i .. "]: " .. err.detail
      return nil, err
    end
    local text
    text, err = user_json(core, id, u.data, info)
    if not text then
      err.detail = "users[" .. i .. "]: " .. err.detail
      return nil, err
    end
    parts[i] = text
  end
  local body = '{"users":[' .. table.concat(parts, ",") .. '],"override":'
      .. (opts.override and "true" or "false") .. '}'
  return self.client:_call("POST", "users/", nil, body)
end

function Users:get_many(ids)
  local list = ids_arg(ids, "users:get_many")
  local q, err = ids_query(list, { method = "GET", path = "users/" })
  if not q then return nil, err end
  return self.client:_call("GET", "users/", q)
end

function Users:delete_many(ids)
  local list = ids_arg(ids, "users:delete_many")
  local q, err = ids_query(list, { method = "DELETE", path = "users/" })
  if not q then return nil, err end
  return self.client:_call("DELETE", "users/", q)
end

users.User = User
users.Users = Users
users.MAX_USER_BYTES = MAX_USER_BYTES
return users
