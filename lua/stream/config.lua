-- stream.config: turns what `stream.connect` is given (arguments, options,
-- environment) into one checked settings table, and builds base URLs.
--
-- Misuse (a wrong type, an unknown option, a malformed STREAM_URL) raises
-- with the option named. Nothing here talks to the network or keeps state.
-- Credentials pass through and are never put into a message.

local config = {}

config.VERSION = "0.1.0"

local DEFAULT_HOST = "api.stream-io-api.com"

-- Every default, defined once: the client resolves the options against
-- these, and transports receive resolved values only.
config.DEFAULTS = {
  timeout = 10,                          -- seconds per attempt
  connect_timeout = 5,                   -- seconds to set up a connection
  retries = 2,                           -- attempts after the first
  max_retry_wait = 5,                    -- longest wait for a rate-limit reset
  max_response_bytes = 16 * 1024 * 1024, -- answers above this are cut
  -- the status line and headers of an answer (Stream's carry under 2 KiB):
  -- above this the answer is refused as reason "limit", never retried
  max_header_bytes = 64 * 1024,
  max_connections = 32,                  -- open at once; more requests queue
  verify = true,                         -- TLS certificates and host names
  user_agent = "stream-lua-client/" .. config.VERSION,
}

-- Every option `connect` knows, with a checker that raises on a bad value.
local function is_seconds(v) return type(v) == "number" and v > 0 and v <= 86400 end
local function is_string(v) return type(v) == "string" and v ~= "" end
-- goes into a request header: a CR or LF would start a header of its own
local function is_header_value(v) return is_string(v) and not v:find("%c") end
local function is_count(v)
  return type(v) == "number" and v >= 1 and v <= 10000 and v == math.floor(v)
end

local function is_bytes(v)
  return type(v) == "number" and v >= 1 and v <= 2^31 - 1 and v == math.floor(v)
end

local OPTIONS = {
  location = { is_string, "a region name such as \"us-east\"" },
  base_url = { is_string, "an http(s) URL" },
  timeout = { is_seconds, "a number of seconds in (0, 86400]" },
  connect_timeout = { is_seconds, "a number of seconds in (0, 86400]" },
  total_timeout = { is_seconds, "a number of seconds in (0, 86400]" },
  retries = { function(v) return type(v) == "number" and v >= 0 and v <= 100 and v == math.floor(v) end,
    "an integer in [0, 100]" },
  max_retry_wait = { function(v) return type(v) == "number" and v >= 0 and v <= 3600 end,
    "a number of seconds in [0, 3600]" },
  user_agent = { is_header_value, "a non-empty string without control characters" },
  ca_file = { is_string, "a file name" },
  proxy = { is_string, "a proxy URL" },
  max_connections = { is_count, "an integer in [1, 10000]" },
  max_response_bytes = { is_bytes, "an integer number of bytes below 2^31" },
  max_header_bytes = { is_bytes, "an integer number of bytes below 2^31" },
  verify = { function(v) return type(v) == "boolean" end, "a boolean" },
  transport = { function(v) return type(v) == "string" or type(v) == "table" end,
    "\"curl\", \"ngx\" or a transport table" },
  -- observability hooks (request.lua, "Hooks")
  on_request = { function(v) return type(v) == "function" end, "a function" },
  on_response = { function(v) return type(v) == "function" end, "a function" },
}

-- opts (already checked by config.options) with every default filled in.
function config.resolve(opts)
  local out = {}
  for k, v in pairs(config.DEFAULTS) do out[k] = v end
  for k, v in pairs(opts) do out[k] = v end
  return out
end

-- Copies and checks an options table; raises naming the first bad key.
function config.options(opts, level)
  level = (level or 1) + 1
  if opts == nil then return {} end
  if type(opts) ~= "table" then
    error("stream.connect: options must be a table, got " .. type(opts), level)
  end
  local out = {}
  for k, v in pairs(opts) do
    local spec = OPTIONS[k]
    if spec == nil then
      error("stream.connect: unknown option '" .. tostring(k) .. "'", level)
    end
    if not spec[1](v) then
      error("stream.connect: option '" .. k .. "' must be " .. spec[2], level)
    end
    out[k] = v
  end
  if out.location and not out.location:match("^[%w%-]+$") then
    error("stream.connect: option 'location' must be letters, digits and '-'", level)
  end
  return out
end

-- The base every path is appended to, always ending in "/v1.0/".
-- "http://h:8000" and "http://h:8000/" become "http://h:8000/api/v1.0/";
-- "http://h/api" and "http://h/api/" become "http://h/api/v1.0/";
-- a base already ending in "/v1.0" or "/v1.0/" is kept.
function config.base_url(opts, level)
  level = (level or 1) + 1
  local base = opts.base_url
  if base == nil then
    local host = DEFAULT_HOST
    if opts.location then host = opts.location .. "-" .. DEFAULT_HOST end
    return "https://" .. host .. "/api/v1.0/"
  end
  local scheme, rest = base:match("^(https?)://(.+)$")
  if not scheme then
    error("stream.connect: option 'base_url' must start with http:// or https://", level)
  end
  if rest:find("[%s?#]") then
    error("stream.connect: option 'base_url' must not contain spaces, '?' or '#'", level)
  end
  local hostport, path = rest:match("^([^/]+)(.*)$")
  if not hostport then
    error("stream.connect: option 'base_url' has no host", level)
  end
  if path == "" or path == "/" then
    path = "/api/v1.0/"
  else
    if path:sub(-1) ~= "/" then path = path .. "/" end
    if not path:find("/v1%.0/$") then path = path .. "v1.0/" end
  end
  return scheme .. "://" .. hostport .. path
end

-- The base URLs of the services besides the API (stream-feeds-api.md
-- sections 15 and 16), from the options and the API's base URL (what
-- config.base_url gave): without base_url, "<service>.stream-io-api.com"
-- ("<location>-<service>..." with a location); with one, the same scheme,
-- host and port. `redirect` is where analytics' tracking links point
-- (".../analytics/redirect/", as the official clients write them).
local SERVICES = { "personalization", "analytics" }

function config.services(opts, api_base)
  local root = api_base:match("^(https?://[^/]+)")
  local out = {}
  for _, name in ipairs(SERVICES) do
    local host = root
    if opts.base_url == nil then
      host = "https://" .. (opts.location and (opts.location .. "-") or "") .. name .. ".stream-io-api.com"
    end
    out[name] = host .. "/" .. name .. "/v1.0/"
  end
  out.redirect = out.analytics:gsub("v1%.0/$", "")
  return out
end

local function url_unescape(s)
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

-- Parses a Heroku-style STREAM_URL: https://KEY:SECRET@HOST/?app_id=N.
-- HOST "api.stream-io-api.com" (or "stream-io-api.com") means the default
-- host; "LOC.stream-io-api.com" and "LOC-api.stream-io-api.com" mean
-- location LOC; any other host is used as it is, as a base URL.
-- Raises (at `level`, as error() counts from the caller) when malformed.
function config.parse_stream_url(url, level)
  level = (level or 1) + 1
  -- The secret runs to the last '@' (it may hold one; the host never does),
  -- so no part of it can end up in the host, the base URL or tostring.
  local scheme, key, secret, host, path = url:match("^(https?)://([^:/@]+):([^/?#]+)@([^/?#@]+)([^#]*)$")
  if path and path ~= "" and not path:find("^[/?]") then scheme = nil end
  if not scheme then
    error("stream.connect: STREAM_URL must look like https://KEY:SECRET@HOST/?app_id=ID", level)
  end
  local s = {
    api_key = url_unescape(key),
    api_secret = url_unescape(secret),
  }
  local query = path:match("%?(.*)$") or ""
  path = path:gsub("%?.*$", "")
  for k, v in query:gmatch("([^&=]+)=([^&]*)") do
    if k == "app_id" then s.app_id = url_unescape(v) end
  end
  local bare = host:lower()
  if bare == DEFAULT_HOST or bare == "stream-io-api.com" then
    s.location = nil
  elseif bare:match("^[%w%-]+%-api%.stream%-io%-api%.com$") then
    s.location = bare:match("^([%w%-]+)%-api%.stream%-io%-api%.com$")
  elseif bare:match("^[%w%-]+%.stream%-io%-api%.com$") then
    s.location = bare:match("^([%w%-]+)%.stream%-io%-api%.com$")
  else
    s.base_url = scheme .. "://" .. host .. ((path ~= "" and path ~= "/") and path or "/")
  end
  return s
end

-- Reads credentials and options from the environment. `getenv` is a
-- parameter so specs can pass a table-backed one; `level` as for error().
function config.from_env(getenv, level)
  level = (level or 1) + 1
  getenv = getenv or os.getenv
  local s = {}
  local url = getenv("STREAM_URL")
  if url and url ~= "" then
    s = config.parse_stream_url(url, level)
  end
  local function pick(name)
    local v = getenv(name)
    if v ~= nil and v ~= "" then return v end
  end
  s.api_key = s.api_key or pick("STREAM_API_KEY")
  s.api_secret = s.api_secret or pick("STREAM_API_SECRET")
  s.app_id = s.app_id or pick("STREAM_APP_ID")
  local where = config.endpoint_from_env(getenv, level)
  s.location = s.location or where.location
  s.base_url = s.base_url or where.base_url
  return s
end

-- Where to send, from STREAM_BASE_URL and STREAM_REGION: read whatever
-- credentials connect was given (as the official JavaScript client reads
-- its base URL); connect's own base_url/location options win.
function config.endpoint_from_env(getenv, level)
  level = (level or 1) + 1
  getenv = getenv or os.getenv
  local function pick(name)
    local v = getenv(name)
    if v ~= nil and v ~= "" then return v end
  end
  local location = pick("STREAM_REGION")
  if location and not location:match("^[%w%-]+$") then
    -- it becomes part of the host name
    error("stream.connect: STREAM_REGION must be letters, digits and '-'", level)
  end
  return { location = location, base_url = pick("STREAM_BASE_URL") }
end

-- A credential is a user token when it is a three-segment base64url JWT
-- whose header names HS256 (a secret that merely contains a dot is not).
function config.token_payload(core, credential)
  local h, p, sig = credential:match("^([%w_%-]+)%.([%w_%-]+)%.([%w_%-]+)$")
  if not h then return nil end
  local header = core.b64url_decode(h)
  local payload = core.b64url_decode(p)
  if not header or not payload or not core.b64url_decode(sig) then return nil end
  header = core.json_decode(header)
  if type(header) ~= "table" or header.alg == nil then return nil end
  local claims = core.json_decode(payload)
  if type(claims) ~= "table" then return nil end
  return claims
end

return config
