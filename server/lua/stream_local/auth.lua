-- stream_local.auth: who is calling, from the api_key parameter and the JWT headers.
--
-- What it does:
--   * api_key(args) checks the api_key query parameter (401 code 2 when missing/unknown).
--   * authenticate(method) checks `stream-auth-type: jwt` and the `Authorization` header
--     (a bare HS256 JWT over the API secret, verified by stream_local.jwt) and returns a
--     principal: { server = true } for tokens with `resource` "users" or "*", or
--     { user_id = "..." } for user tokens (a `user_id` claim and no `resource`).
--     An `action` claim, when present and not "*", must match the method
--     (GET read, POST/PUT write, DELETE delete), as the Java client sets it.
--   * allowed(principal, id) says whether the principal may create/update/delete user id.
--
-- What it deliberately does not do: no "Bearer " prefix (refused with a hint), no
-- feed_id checks, no app-level permission policies, no token revocation.

local config = require "stream_local.config"
local json = require "stream_local.json"
local jwt = require "stream_local.jwt"

-- luacheck: globals ngx
local ngx = ngx
local type, lower = type, string.lower

local M = {}

-- failure tuples: nil, status, detail [, code, exception]

function M.api_key(value)
  if value == nil or value == "" then
    return nil, 401, "api_key query parameter is missing"
  end
  if value ~= config.api_key then
    return nil, 401, "api_key not valid"
  end
  return true
end

local ACTIONS = { GET = "read", HEAD = "read", POST = "write", PUT = "write", DELETE = "delete" }

local function header(headers, name)
  local v = headers[name]
  if type(v) == "table" then return nil, true end -- repeated header
  return v
end

function M.authenticate(method)
  local headers = ngx.req.get_headers(100)
  local auth_type, repeated = header(headers, "stream-auth-type")
  if repeated then
    return nil, 401, "the stream-auth-type header is repeated", 3, "SignatureException"
  end
  if auth_type == nil then
    return nil, 401, "the stream-auth-type header is missing (send stream-auth-type: jwt)",
      3, "SignatureException"
  end
  if lower(auth_type) ~= "jwt" then
    return nil, 401, "unsupported stream-auth-type (only jwt is supported)", 3, "SignatureException"
  end
  local token
  token, repeated = header(headers, "authorization")
  if repeated then
    return nil, 403, "the Authorization header is repeated"
  end
  if token == nil or token == "" then
    return nil, 401, "the Authorization header is missing (send the JWT)", 3, "SignatureException"
  end
  if token:find("^[Bb][Ee][Aa][Rr][Ee][Rr] ") then
    return nil, 403, "send the bare JWT in the Authorization header, without \"Bearer \""
  end
  local claims, why = jwt.verify(token, config.api_secret, ngx.now())
  if not claims then
    return nil, 403, "invalid token: " .. why
  end

  local principal
  local resource, user_id = claims:get("resource"), claims:get("user_id")
  if resource ~= nil then
    if resource ~= "users" and resource ~= "*" then
      return nil, 403, "the token's resource claim does not grant access to users"
    end
    principal = { server = true }
  elseif type(user_id) == "string" then
    principal = { user_id = user_id }
  else
    return nil, 403, "the token has neither a resource nor a user_id claim"
  end

  local action = claims:get("action")
  if action ~= nil and action ~= "*" then
    if json.kind(action) ~= "string" or action ~= ACTIONS[method] then
      return nil, 403, "the token's action claim does not allow " .. method
    end
  end
  return principal
end

-- allowed(principal, id): may this principal create/update/delete user `id`?
function M.allowed(principal, id)
  return principal.server or principal.user_id == id
end

return M
