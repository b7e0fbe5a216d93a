-- stream_local.auth: who is calling, from the api_key parameter and the JWT headers.
--
-- What it does:
--   * api_key(args) checks the api_key query parameter (401 code 2 when missing/unknown).
--   * authenticate(method, resources, feed_id) checks `stream-auth-type: jwt` and the
--     `Authorization` header (a bare HS256 JWT over the API secret, verified by
--     stream_local.jwt) and returns a principal: { server = true, feed_scope } for
--     tokens with a `resource` claim (feed_scope: the joined feed id of a `feed_id`
--     claim other than `*`, else nil), or { user_id = "..." } for user tokens (a
--     `user_id` claim and no `resource`).
--     The scope claims must cover the call, else 403 code 17:
--       resource  "*" or one the route accepts (users, feed, follower, activities, ...);
--       action    "*" or the method's (GET read, POST/PUT write, DELETE delete);
--       feed_id   "*" or the joined id of the route's feed ("useralice"); routes on no
--                 one feed (users, reactions, collections, stats) need "*";
--     an absent `action` or `feed_id` claim does not narrow the scope.
--   * query_token(token, resource, action): the same checks for a JWT sent as a query
--     value (the analytics redirect's `authorization`).
--   * allowed(principal, id) says whether the principal may create/update/delete user id.
--   * covers_feed(principal, feed_id): whether a feed-scoped server token reaches a feed
--     named in a body (batch calls, activity updates).
--
-- What it deliberately does not do: no "Bearer " prefix (refused with a hint), no
-- token revocation. App policies for user tokens (whose feeds a user may touch) are the
-- handlers' business.

local config = require "stream_local.config"
local json = require "stream_local.json"
local jwt = require "stream_local.jwt"
local request = require "stream_local.request"

-- luacheck: globals ngx
local ngx = ngx
local type, ipairs, lower, concat = type, ipairs, string.lower, table.concat

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

-- covers(claim, needed): a scope claim covers a call when it is absent, "*" or the value
-- the call needs
local function covers(claim, needed)
  return claim == nil or claim == "*" or (json.kind(claim) == "string" and claim == needed)
end

local function listed(claim, list)
  if claim == "*" then return true end
  for _, name in ipairs(list) do
    if claim == name then return true end
  end
  return false
end

-- scope_of(claim) -> nil for a token that covers every feed (`*` or no claim), else the
-- one joined feed id it covers ("" covers none: a claim that is no string)
local function scope_of(claim)
  if claim == nil or claim == "*" then return nil end
  if json.kind(claim) ~= "string" then return "" end
  return claim
end

-- authenticate(method, resources, feed_id) -> principal | nil, status, detail, code, exception
-- resources: the token resources the route accepts; feed_id: the joined feed id
-- ("useralice") the route acts on, or nil for routes without a feed.
function M.authenticate(method, resources, feed_id)
  local headers = ngx.req.get_headers(100)
  local auth_type, repeated = request.header(headers, "stream-auth-type")
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
  token, repeated = request.header(headers, "authorization")
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
    if not listed(resource, resources) then
      return nil, 403, "the token's resource claim does not cover this call (it needs resource "
        .. concat(resources, " or ") .. " or *)"
    end
    principal = { server = true, feed_scope = scope_of(claims:get("feed_id")) }
  elseif type(user_id) == "string" then
    principal = { user_id = user_id }
  else
    return nil, 403, "the token has neither a resource nor a user_id claim"
  end

  if not covers(claims:get("action"), ACTIONS[method]) then
    return nil, 403, "the token's action claim does not allow " .. method
      .. " (it needs action " .. ACTIONS[method] .. " or *)"
  end
  if feed_id == "*" and not covers(claims:get("feed_id"), "*") then
    return nil, 403, "the token's feed_id claim covers one feed, and this call is on no one feed's paths "
      .. "(it needs feed_id *)"
  end
  if feed_id and not covers(claims:get("feed_id"), feed_id) then
    return nil, 403, "the token's feed_id claim does not cover the feed " .. feed_id
  end
  return principal
end

-- covers_feed(principal, feed_id): does a server token's feed_id claim cover the feed
-- "user:alice" (claim `*`, none, or the joined id "useralice")? Routes that act on one
-- feed are checked by authenticate; batch calls and activity updates name their feeds
-- in the body and ask here (user tokens: true, their policies are the handlers').
function M.covers_feed(principal, feed_id)
  local scope = principal.feed_scope
  if scope == nil then return true end
  return type(feed_id) == "string" and (feed_id:gsub(":", "", 1)) == scope
end

-- query_token(token, resource, action) -> claims | nil, detail: a JWT handed over in a
-- query value (the analytics redirect): verified like a header token, its `resource`
-- claim `*` or the one named, its `action` claim absent, `*` or the one named
function M.query_token(token, resource, action)
  if type(token) ~= "string" or token == "" then return nil, "the authorization query value is missing" end
  local claims, why = jwt.verify(token, config.api_secret, ngx.now())
  if not claims then return nil, "invalid token: " .. why end
  if not listed(claims:get("resource"), { resource }) then
    return nil, "the token's resource claim does not cover this call (it needs resource " .. resource .. " or *)"
  end
  if not covers(claims:get("action"), action) then
    return nil, "the token's action claim does not cover this call (it needs action " .. action .. " or *)"
  end
  return claims
end

-- allowed(principal, id): may this principal create/update/delete user `id`?
function M.allowed(principal, id)
  return principal.server or principal.user_id == id
end

return M
