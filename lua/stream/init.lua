-- stream: the public entry point of lua-stream.
--
--   local stream = require "stream"
--   local client = stream.connect(api_key, api_secret, app_id, opts)
--
-- connect() decides between a server-side client (API secret) and a
-- client-side one (a user token, or a token scoped to one feed: three
-- base64url segments with a JWT header), or reads everything from the
-- environment. The work is done in
-- client.lua (requests, errors), users.lua (the endpoints), config.lua
-- (options, URLs, environment) and the C core `stream.core`.

local core = require "stream.core"
local config = require "stream.config"
local Client = require "stream.client"
local errors = require "stream.errors"
local activities = require "stream.activities"

local stream = {
  _VERSION = "lua-stream " .. Client.VERSION,
  VERSION = Client.VERSION,
  null = core.null,
  array = core.array,
  json = {
    encode = core.json_encode,
    decode = core.json_decode,
  },
  core = core,
  is_error = errors.is_error,
  is_missing = activities.is_missing,
}

-- Inside nginx (lua-nginx-module: an `ngx` global with get_phase) the
-- default is the cosocket transport, whatever the phase at connect time:
-- a client made in init_by_lua or init_worker_by_lua is used later by
-- request handlers and timers. Whether the phase allows sending is checked
-- by that transport at each call (where cosockets are disabled a call fails
-- at once instead of blocking the worker). Elsewhere the default is curl.
local function pick_transport(opts)
  local t = opts.transport
  local ngx = rawget(_G, "ngx")
  local in_nginx = type(ngx) == "table" and type(ngx.get_phase) == "function"
  if t == nil then
    t = in_nginx and "ngx" or "curl"
  end
  if t == "curl" then
    return require "stream.transport.curl"
  elseif t == "ngx" then
    if not in_nginx then
      error("stream.connect: transport 'ngx' needs nginx's Lua module (OpenResty); "
        .. "use 'curl' outside nginx", 3)
    end
    return require "stream.transport.ngx"
  elseif type(t) == "table" then
    if type(t.new) ~= "function" then
      error("stream.connect: option 'transport' table must have a new(core, settings) function", 3)
    end
    return t
  end
  error("stream.connect: unknown transport '" .. tostring(t) .. "'", 3)
end

-- The user a token acts as, or nil.
local function user_of(claims)
  local u = claims.user_id
  if type(u) == "string" and u ~= "" then return u end
end

-- The feeds a token without a user is limited to ("useralice", as
-- feed:token and the official clients sign it), or nil: a token whose
-- feed_id is "*" or absent would be a server token, which a browser or a
-- game client must never hold, and is refused like a token naming nothing.
local function feed_scope_of(claims)
  local f = claims.feed_id
  if type(f) == "string" and f ~= "" and f ~= "*" and type(claims.resource) == "string" then
    return f
  end
end

-- connect(api_key, secret_or_token [, app_id] [, opts])
-- connect([opts])   -- credentials from STREAM_URL or STREAM_API_KEY & co.
function stream.connect(api_key, credential, app_id, opts)
  local env
  if api_key == nil or type(api_key) == "table" then
    if credential ~= nil or app_id ~= nil or opts ~= nil then
      error("stream.connect: pass either (api_key, secret, app_id, opts) or (opts)", 2)
    end
    opts = api_key
    env = config.from_env(nil, 2)
    api_key, credential, app_id = env.api_key, env.api_secret, env.app_id
    if not api_key or not credential then
      error("stream.connect: no credentials given; pass them or set STREAM_URL, "
        .. "or STREAM_API_KEY and STREAM_API_SECRET", 2)
    end
  else
    if type(app_id) == "table" and opts == nil then
      opts, app_id = app_id, nil
    end
    env = config.endpoint_from_env(nil, 2)
  end
  if type(api_key) ~= "string" or api_key == "" or api_key:find("%c") then
    error("stream.connect: api_key must be a non-empty string without control characters", 2)
  end
  if type(credential) ~= "string" or credential == "" then
    error("stream.connect: the API secret or user token must be a non-empty string", 2)
  end
  if app_id ~= nil and type(app_id) ~= "string" and type(app_id) ~= "number" then
    error("stream.connect: app_id must be a string or a number", 2)
  end
  opts = config.options(opts, 2)
  -- STREAM_BASE_URL / STREAM_REGION apply whatever the credentials;
  -- explicit options win over the environment.
  if opts.location == nil and opts.base_url == nil then
    opts.location, opts.base_url = env.location, env.base_url
  end
  local transport = pick_transport(opts)
  local settings = {
    api_key = api_key,
    app_id = app_id ~= nil and tostring(app_id) or nil,
    base_url = config.base_url(opts, 2),
    options = opts,
  }
  settings.services = config.services(opts, settings.base_url)
  local claims = config.token_payload(core, credential)
  if claims and not user_of(claims) and not feed_scope_of(claims) then
    -- every call of such a client would be refused with 403
    error("stream.connect: the token has neither a user_id claim (a string) nor a feed scope "
      .. "(a resource claim and a feed_id claim other than \"*\"); sign user tokens with "
      .. "client:create_user_token(user_id), feed tokens with feed:token()", 2)
  end
  if claims then
    settings.token = credential
    settings.claims = claims
    if not user_of(claims) then settings.feed_scope = feed_scope_of(claims) end
  else
    settings.secret = credential
  end
  return Client.new(core, settings, transport)
end

return stream
