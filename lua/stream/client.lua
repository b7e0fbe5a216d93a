-- stream.client: one connection to Stream. Builds URLs and headers, sends
-- through a transport, decodes answers and turns failures into errors.
--
-- Credentials live in a private weak table, never in a field of the client
-- object, so dumping a client (pairs, inspect, tostring) shows no secret.
-- Every error text from outside is scrubbed of the secret and the tokens
-- before it reaches the caller. The users endpoints themselves are in
-- users.lua; option and environment parsing in config.lua.

local errors = require "stream.errors"
local users = require "stream.users"

local Client = {}
Client.__index = Client
Client.__name = "stream.client"

local VERSION = "0.1.0"
local CLIENT_NAME = "stream-lua-client-" .. VERSION

-- client -> { secret = ..., token = ... }; weak so a client can be collected.
local private = setmetatable({}, { __mode = "k" })

-- The JWT server-side clients send: the users scope the official clients use.
local SERVER_CLAIMS = '{"resource":"users","action":"*","feed_id":"*"}'

local function url_escape(s)
  return (s:gsub("[^A-Za-z0-9_.~%-]", function(c)
    return string.format("%%%02X", c:byte())
  end))
end

-- Replaces every occurrence of the client's secrets in text.
local function scrub(client, text)
  if type(text) ~= "string" then return text end
  local p = private[client]
  if not p then return text end
  for _, s in ipairs(p.hidden) do
    local i = text:find(s, 1, true)
    while i do
      text = text:sub(1, i - 1) .. "[redacted]" .. text:sub(i + #s)
      i = text:find(s, i + 10, true)
    end
  end
  return text
end

local function check_open(self, fname)
  if self._closed then
    error("stream: " .. fname .. " on a closed client", 3)
  end
end

-- settings (from stream.connect, already checked): api_key, secret or
-- token (+ claims), app_id, base_url, and transport options.
function Client.new(core, settings, transport_mod)
  local self = setmetatable({}, Client)
  local p = { hidden = {} }
  local auth
  if settings.token then
    auth = settings.token
    p.token = settings.token
    p.hidden[1] = settings.token
    self.auth_mode = "user_token"
  else
    auth = core.hs256(settings.secret, SERVER_CLAIMS)
    p.secret = settings.secret
    p.hidden[1] = settings.secret
    p.hidden[2] = auth
    self.auth_mode = "server"
  end
  private[self] = p
  self._core = core
  self.api_key = settings.api_key
  self.app_id = settings.app_id
  self.base_url = settings.base_url
  self._prefix_q = "?api_key=" .. url_escape(settings.api_key)
  local o = settings.options
  self._transport = transport_mod.new(core, {
    timeout = o.timeout or 10,
    connect_timeout = o.connect_timeout or 5,
    ca_file = o.ca_file,
    verify = o.verify,
    proxy = o.proxy,
    user_agent = o.user_agent or ("stream-lua-client/" .. VERSION),
    max_connections = o.max_connections,
    max_response_bytes = o.max_response_bytes,
    headers = {
      "Authorization: " .. auth,
      "stream-auth-type: jwt",
      "X-Stream-Client: " .. CLIENT_NAME,
      "Accept: application/json",
      "Expect:",
    },
    body_headers = { "Content-Type: application/json" },
  })
  self.users = users.collection(self)
  if settings.claims and type(settings.claims.user_id) == "string" then
    self.user_id = settings.claims.user_id
    self.current_user = users.handle(self, settings.claims.user_id)
  end
  return self
end

-- Sends one request and returns the decoded answer, or nil, err.
-- path is relative to the base ("user/john/"), query has no api_key.
function Client:_call(method, path, query, body)
  check_open(self, method .. " " .. path)
  local url = self.base_url .. path .. self._prefix_q
  if query then url = url .. "&" .. query end
  local status, raw, headers = self._transport:request(method, url, body)
  local info_path = path
  if not status then
    return nil, errors.new(raw == "timeout" and "timeout" or "transport", scrub(self, headers), {
      method = method, path = info_path, attempts = 1,
    })
  end
  local core = self._core
  if status >= 200 and status < 300 then
    local value, msg = core.json_decode(raw)
    if value == nil then
      return nil, errors.new("decode", "answer is not valid JSON: " .. msg, {
        status = status, method = method, path = info_path, attempts = 1,
        rate_limit = errors.rate_limit(headers),
      })
    end
    return value
  end
  local decoded = core.json_decode(raw)
  local err = errors.from_response(status, decoded, raw, headers, { method = method, path = info_path })
  err.detail = scrub(self, err.detail)
  err.attempts = 1
  return nil, err
end

function Client:user(id)
  check_open(self, "client:user")
  return users.handle(self, id)
end

-- Get-or-create of the token's own user; its data is never overwritten.
function Client:set_user(data)
  if self.auth_mode ~= "user_token" or not self.current_user then
    error("client:set_user needs a client made with a user token (it has a user_id claim)", 2)
  end
  if data ~= nil and type(data) ~= "table" then
    error("client:set_user: data must be a table, got " .. type(data), 2)
  end
  return self.current_user:get_or_create(data)
end

local TOKEN_OPTS = { expires_in = true }

-- A token for one user, signed with the API secret (server side only).
function Client:create_user_token(user_id, extra_claims, opts)
  local p = private[self]
  if not p or not p.secret then
    error("client:create_user_token needs the API secret; this client holds a user token", 2)
  end
  if type(user_id) ~= "string" then
    error("client:create_user_token: user_id must be a string, got " .. type(user_id), 2)
  end
  if extra_claims ~= nil and type(extra_claims) ~= "table" then
    error("client:create_user_token: extra_claims must be a table, got " .. type(extra_claims), 2)
  end
  if opts ~= nil then
    if type(opts) ~= "table" then
      error("client:create_user_token: options must be a table, got " .. type(opts), 2)
    end
    for k in pairs(opts) do
      if not TOKEN_OPTS[k] then
        error("client:create_user_token: unknown option '" .. tostring(k) .. "'", 2)
      end
    end
  end
  if user_id == "" or #user_id > 255 or user_id:find("[^A-Za-z0-9_%-]") then
    return nil, errors.invalid(string.format(
      "user_id %q must be 1 to 255 characters of A-Z a-z 0-9 _ -", user_id:sub(1, 40)), "user_id")
  end
  local claims = {}
  if extra_claims then
    for k, v in pairs(extra_claims) do
      if k == "user_id" then
        error("client:create_user_token: extra_claims may not set user_id", 2)
      end
      claims[k] = v
    end
  end
  claims.user_id = user_id
  if opts and opts.expires_in ~= nil then
    local e = opts.expires_in
    if type(e) ~= "number" or e <= 0 or e ~= e then
      error("client:create_user_token: expires_in must be a positive number of seconds", 2)
    end
    claims.exp = math.floor(os.time() + e)
  end
  local payload, msg = self._core.json_encode(claims, "claims")
  if not payload then
    return nil, errors.invalid(msg, "claims")
  end
  return self._core.hs256(p.secret, payload)
end

-- Connection figures of the transport: requests sent, connections opened.
function Client:stats()
  return self._transport:stats()
end

function Client:close()
  if not self._closed then
    self._closed = true
    self._transport:close()
  end
end

Client.__close = Client.close
Client.__gc = Client.close

function Client:__tostring()
  local who = self.auth_mode == "server" and "server-side"
      or ("user token" .. (self.user_id and (" for " .. self.user_id) or ""))
  return string.format("stream.client (api_key=%s, %s, %s%s)", self.api_key, who,
    self.base_url, self._closed and ", closed" or "")
end

Client.VERSION = VERSION
Client.CLIENT_NAME = CLIENT_NAME
return Client
