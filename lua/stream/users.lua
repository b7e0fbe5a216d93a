-- stream.users: the users endpoints, as a light handle per user
-- (`client:user(id)`) and as the collection `client.users`.
--
-- Everything run-time is checked here before a byte is sent: ids must be
-- 1-255 characters of A-Z a-z 0-9 _ - (so an id can never change the
-- request target), data must be a JSON object that fits the 10240-byte
-- user object limit (the rules are check.lua's). Such problems return
-- nil, err (kind "invalid"); wrong argument types raise. Each operation
-- then describes its request and hands it to the client's pipeline
-- (request.lua sends, retries, decodes and builds errors).

local errors = require "stream.errors"
local check = require "stream.check"
local rules = require "stream.rules"
local handles = require "stream.handles"
local request = require "stream.request"

local users = {}

local MAX_USER_BYTES = rules.OBJECT_BYTES
-- Bytes a user object adds around its id and data: {"id":"","data":}
local USER_WRAP = #'{"id":"","data":}'

-- The JSON text of a user's data, checked against the size limit of the
-- user object it goes in; nil, err.
local function user_data(pipe, id, data)
  return check.object(pipe, data, "data", nil, MAX_USER_BYTES, USER_WRAP + #id, "user object")
end

-- The JSON text of one user object ({"id":..., "data":...}, the data
-- encoded once), or nil, err.
local function user_json(pipe, id, data)
  local d, err = check.object(pipe, data, "data", nil, MAX_USER_BYTES, USER_WRAP + #id, "user object")
  if not d then return nil, err end
  -- the id passed check.id: none of its characters is escaped in JSON
  return request.pair("id", '"' .. id .. '"', "data", d)
end

local function user_path(id)
  return "user/" .. id .. "/"
end

-- An error refused before sending names the request it would have been:
-- for a bad id the full path, the id cut as check.shown cuts it (a rejected
-- id may be long or hold anything). Built only when there is an error.
local function refused(err, method, path)
  err.method, err.path = method, path
  return nil, err
end

local function shown_path(id)
  return rules.info("GET", "user", id).path
end

---------------------------------------------------------------- operations
-- Each takes the client first; the handle and the collection both call
-- these. Each checks what came from outside, then describes its request.

local ops = {}

function ops.create(client, id, data, get_or_create)
  local err = check.id(id, "id")
  if err then return refused(err, "POST", "user/") end
  local pipe = client.pipeline
  local body
  body, err = user_json(pipe, id, data)
  if not body then return refused(err, "POST", "user/") end
  return pipe:send({
    method = "POST", path = "user/", body = body,
    query = get_or_create and { get_or_create = true } or nil,
    -- a get-or-create never changes a user that exists: safe to repeat
    idempotent = get_or_create and true or false,
  })
end

function ops.get(client, id, with_follow_counts)
  local err = check.id(id, "id")
  if err then return refused(err, "GET", shown_path(id)) end
  return client.pipeline:send({
    method = "GET", path = user_path(id), idempotent = true,
    query = with_follow_counts and { with_follow_counts = true } or nil,
  })
end

function ops.update(client, id, data)
  local err = check.id(id, "id")
  if err then return refused(err, "PUT", shown_path(id)) end
  local pipe = client.pipeline
  local d
  d, err = user_data(pipe, id, data)
  if not d then return refused(err, "PUT", user_path(id)) end
  return pipe:send({
    method = "PUT", path = user_path(id), body = request.object("data", d), idempotent = true,
  })
end

function ops.delete(client, id)
  local err = check.id(id, "id")
  if err then return refused(err, "DELETE", shown_path(id)) end
  return client.pipeline:send({ method = "DELETE", path = user_path(id), idempotent = true })
end

ops.ref = handles.user_ref

-- ids joined for the query; nil, err when the list is empty or an id is bad.
local function ids_query(list, info)
  local err = check.ids(list, "ids", info)
  if err then return nil, err end
  return { ids = table.concat(list, ",") }
end

---------------------------------------------------------------- user handle

local User = handles.User

function User.__tostring(u)
  return "stream.user " .. u.id
end

-- users.handle(client, id [, level]): level is where a bad id type is
-- reported (as error() counts from the caller)
users.handle = handles.user

local CREATE_OPTS = { get_or_create = true }
local GET_OPTS = { with_follow_counts = true }

-- user:create(data [, {get_or_create = true}])
function User:create(data, opts)
  check.self(self, User, "user:create")
  check.data_arg(data, "user:create")
  opts = check.opts(opts, CREATE_OPTS, "user:create")
  return ops.create(self.client, self.id, data, opts.get_or_create)
end

function User:get_or_create(data)
  check.self(self, User, "user:get_or_create")
  check.data_arg(data, "user:get_or_create")
  return ops.create(self.client, self.id, data, true)
end

-- user:get([{with_follow_counts = true}])
-- The plain get is most calls: its id is checked once per handle (again
-- only if `id` is changed) and its description is kept in the handle.
function User:get(opts)
  check.self(self, User, "user:get")
  if opts == nil then
    local id = self.id
    if self._get_id ~= id then
      if check.id(id, "id") then return ops.get(self.client, id) end
      self._get_desc = { method = "GET", path = user_path(id), idempotent = true }
      self._get_id = id
    end
    return self.client.pipeline:send(self._get_desc)
  end
  opts = check.opts(opts, GET_OPTS, "user:get")
  return ops.get(self.client, self.id, opts.with_follow_counts)
end

-- user:profile(): the user with its follower and following counts, as the
-- official clients' profile() is get({with_follow_counts: true}).
function User:profile()
  check.self(self, User, "user:profile")
  return ops.get(self.client, self.id, true)
end

function User:update(data)
  check.self(self, User, "user:update")
  check.data_arg(data, "user:update", 2, "data", true)
  return ops.update(self.client, self.id, data)
end

function User:delete()
  check.self(self, User, "user:delete")
  return ops.delete(self.client, self.id)
end

function User:ref()
  check.self(self, User, "user:ref")
  return ops.ref(self.id)
end

-- user:feed("timeline") -> the feed handle timeline:<this user's id>
function User:feed(slug)
  check.self(self, User, "user:feed")
  local feed = handles.feed(self.client, slug, self.id, "user:feed")
  return feed
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
  check.self(self, Users, "users:add")
  id = check.id_arg(id, "users:add")
  check.data_arg(data, "users:add")
  return ops.create(self.client, id, data, get_or_create and true or false)
end

function Users:get(id, opts)
  check.self(self, Users, "users:get")
  id = check.id_arg(id, "users:get")
  opts = check.opts(opts, GET_OPTS, "users:get")
  return ops.get(self.client, id, opts.with_follow_counts)
end

function Users:update(id, data)
  check.self(self, Users, "users:update")
  id = check.id_arg(id, "users:update")
  check.data_arg(data, "users:update", 2, "data", true)
  return ops.update(self.client, id, data)
end

function Users:delete(id)
  check.self(self, Users, "users:delete")
  return ops.delete(self.client, check.id_arg(id, "users:delete"))
end

function Users:ref(id)
  check.self(self, Users, "users:ref")
  return ops.ref(check.id_arg(id, "users:ref"))
end

local ADD_MANY_OPTS = { override = true }

-- users:add_many({{id = ..., data = ...}, ...} [, {override = true}])
function Users:add_many(list, opts)
  check.self(self, Users, "users:add_many")
  if type(list) ~= "table" then
    check.raise("users:add_many: expected a list of {id = ..., data = ...}, got " .. type(list), 2)
  end
  opts = check.opts(opts, ADD_MANY_OPTS, "users:add_many")
  local info = { method = "POST", path = "users/" }
  if #list == 0 then
    return nil, errors.invalid("the list of users must not be empty", "users", info)
  end
  local pipe = self.client.pipeline
  local parts, fields, problems = {}, {}, {}
  for i = 1, #list do
    local u = list[i]
    if type(u) ~= "table" then
      check.raise("users:add_many: item " .. i .. " must be a table, got " .. type(u), 2)
    end
    local where = "users[" .. i .. "]"
    local id, err = u.id
    if id == nil then
      err = errors.invalid(where .. ": id is missing", where .. ".id")
    else
      id = check.id_arg(id, "users:add_many: " .. where, 2)
      check.data_arg(u.data, "users:add_many: " .. where, 2)
      err = check.id(id, "id")
      if not err then
        local text, bad = user_json(pipe, id, u.data)
        if text then parts[i] = text else err = bad end
      end
    end
    if err then
      -- every bad item is reported, keyed by where it is in the list
      local field = next(err.fields)
      local key = field == where .. ".id" and field or (where .. "." .. field)
      local detail = err.detail:find("^users%[") and err.detail or (where .. ": " .. err.detail)
      fields[key] = { detail }
      problems[#problems + 1] = detail
    end
  end
  if #problems > 0 then
    local e = errors.invalid(#problems .. " of " .. #list .. " users are invalid: "
      .. table.concat(problems, "; "), nil, info)
    e.fields = fields
    return nil, e
  end
  local body = request.object("users", parts, "override", opts.override and "true" or "false")
  -- a batch may have been stored in part: never sent twice
  return pipe:send({ method = "POST", path = "users/", body = body, idempotent = false })
end

function Users:get_many(ids)
  check.self(self, Users, "users:get_many")
  local list = check.ids_arg(ids, "users:get_many")
  local q, err = ids_query(list, { method = "GET", path = "users/" })
  if not q then return nil, err end
  return self.client.pipeline:send({ method = "GET", path = "users/", query = q, idempotent = true })
end

function Users:delete_many(ids)
  check.self(self, Users, "users:delete_many")
  local list = check.ids_arg(ids, "users:delete_many")
  local q, err = ids_query(list, { method = "DELETE", path = "users/" })
  if not q then return nil, err end
  return self.client.pipeline:send({ method = "DELETE", path = "users/", query = q, idempotent = true })
end

users.ref = ops.ref

-- The id a `user_id` argument names: a string as it is, a user handle's id;
-- nil for anything else (the caller raises, naming its option).
users.id_of = handles.user_of
users.User = User
users.Users = Users
users.MAX_USER_BYTES = MAX_USER_BYTES
return users
