/*
 * fuzz_connect.c - credentials, tokens and URLs through the Lua layer.
 *
 * Loads lua/stream/config.lua and lua/stream/init.lua from the repository
 * on top of the linked-in core (see fuzz_common.h for package.path).
 *
 * The input s, and its parts a, b, c (split at the first two 0xff bytes),
 * are fed to:
 *   - b64url_encode / b64url_decode: decode(encode(s)) == s, the encoding
 *     uses the URL alphabet only and has the expected length; decode(s)
 *     either fails with a message or gives bytes that encode back to s
 *     (the decoder is strict, so an accepted text is canonical);
 *   - config.token_payload(core, s) and on the token
 *     b64(a).b64(b).b64(c): never raises, returns nil or a table, and a
 *     table exactly when a is a JSON object with "alg" and b a JSON object
 *     or array;
 *   - pcall(config.parse_stream_url, s) and on "https://a:b@c": a Lua error
 *     is fine, and its message never holds the input; a result holds
 *     string api_key and api_secret, a location of letters, digits and '-',
 *     or a base URL whose host part holds no '@' (KEY:SECRET is the only
 *     userinfo, so no piece of the secret lands in the base URL);
 *   - pcall(config.base_url, {base_url = s}) and with "http://" .. s: a
 *     result starts with http(s)://, ends with "/v1.0/" and has no space,
 *     '?' or '#';
 *   - pcall(config.from_env, getenv) with STREAM_URL = s;
 *   - pcall(stream.connect, "fuzz-key", s) and with {base_url = s}: a made
 *     client is closed again, and neither tostring(client) nor any string
 *     reachable from its fields shows s (the secret or token);
 *   - stream.connect() from the environment (os.getenv is replaced):
 *     STREAM_REGION = s gives https://s-api.stream-io-api.com/api/v1.0/
 *     when s is letters, digits and '-' (what the location option allows),
 *     else an error; STREAM_URL = s gives the base URL its host documents,
 *     or an error that does not show s.
 *
 * It sends nothing: connect makes a curl multi handle, no connection.
 */
#include "fuzz_common.h"

static const char *fuzz_checker_source(void)
{
    return
        "local config = require 'stream.config'\n"
        "local stream = require 'stream'\n"
        "local b64e, b64d = core.b64url_encode, core.b64url_decode\n"
        "local function b64_props(s)\n"
        "  local e = b64e(s)\n"
        "  if e:find('[^A-Za-z0-9_%-]') then fail('b64url_encode alphabet: %s', q(e)) end\n"
        "  local n = #s\n"
        "  local want = (n // 3) * 4 + ((n % 3 > 0) and (n % 3 + 1) or 0)\n"
        "  if #e ~= want then fail('b64url_encode length %d, want %d', #e, want) end\n"
        "  local d, err = b64d(e)\n"
        "  if d ~= s then fail('b64url_decode(b64url_encode(s)) ~= s: %s', q(err)) end\n"
        "  local r, rerr = b64d(s)\n"
        "  if r == nil then\n"
        "    if type(rerr) ~= 'string' or not rerr:find('^invalid base64url: ') then\n"
        "      fail('b64url_decode message %s', q(rerr)) end\n"
        "  elseif b64e(r) ~= s then\n"
        "    fail('b64url_decode accepted a non-canonical text %s', q(s))\n"
        "  end\n"
        "end\n"
        "local function is_token_header(h)\n"
        "  local v = decode(h)\n"
        "  return type(v) == 'table' and v.alg ~= nil\n"
        "end\n"
        "local function payload(cred, what)\n"
        "  local ok, claims = pcall(config.token_payload, core, cred)\n"
        "  if not ok then fail('token_payload raised on %s: %s', what, q(claims)) end\n"
        "  if claims ~= nil and type(claims) ~= 'table' then fail('token_payload gave %s', type(claims)) end\n"
        "  return claims\n"
        "end\n"
        "local function strip(msg)\n"
        "  return type(msg) == 'string' and msg:gsub('^checker:%d+: ', '') or msg\n"
        "end\n"
        "-- msg, the error for input s, must not hold s, unless s is part of the\n"
        "-- fixed text the same error has for an input without a secret (ref)\n"
        "local function no_echo(msg, s, ref, what)\n"
        "  msg, ref = strip(msg), strip(ref)\n"
        "  if #s >= 8 and type(msg) == 'string' and msg:find(s, 1, true)\n"
        "      and not (type(ref) == 'string' and ref:find(s, 1, true)) then\n"
        "    fail('%s error shows its input: %s', what, q(msg)) end\n"
        "end\n"
        "local function ref_error(f, ...)\n"
        "  local ok, err = pcall(f, ...)\n"
        "  return not ok and err or nil\n"
        "end\n"
        "-- a base URL taken from the host of a STREAM_URL has no userinfo: KEY:SECRET\n"
        "-- is the only one (so no part of the secret ends up in the base URL)\n"
        "local function host_props(base, url)\n"
        "  local auth = base:match('^https?://([^/]*)')\n"
        "  if not auth or auth == '' or auth:find('@', 1, true) then\n"
        "    fail('STREAM_URL %s gives the base URL %s', q(url), q(base)) end\n"
        "end\n"
        "local function url_props(url)\n"
        "  local ok, r = pcall(config.parse_stream_url, url)\n"
        "  if not ok then\n"
        "    no_echo(r, url, ref_error(config.parse_stream_url, '\\0'), 'parse_stream_url')\n"
        "    return\n"
        "  end\n"
        "  if type(r) ~= 'table' or type(r.api_key) ~= 'string' or type(r.api_secret) ~= 'string' then\n"
        "    fail('parse_stream_url result for %s', q(url)) end\n"
        "  if r.base_url ~= nil then\n"
        "    if not r.base_url:find('^https?://') then fail('parse_stream_url base_url %s', q(r.base_url)) end\n"
        "    host_props(r.base_url, url)\n"
        "  end\n"
        "  if r.location ~= nil and not r.location:find('^[%w%-]+$') then\n"
        "    fail('parse_stream_url location %s', q(r.location)) end\n"
        "end\n"
        "local function base_props(b)\n"
        "  local ok, r = pcall(config.base_url, { base_url = b })\n"
        "  if not ok then return end\n"
        "  if type(r) ~= 'string' or not r:find('^https?://[^/]+/') or r:sub(-6) ~= '/v1.0/'\n"
        "      or r:find('[%s?#]') then\n"
        "    fail('base_url(%s) = %s', q(b), q(r)) end\n"
        "end\n"
        "-- holds(v, s): a string reachable from table v (keys and values, not\n"
        "-- through metatables or upvalues) contains s\n"
        "local function holds(v, s, seen)\n"
        "  if type(v) == 'string' then return v:find(s, 1, true) ~= nil end\n"
        "  if type(v) ~= 'table' or seen[v] then return false end\n"
        "  seen[v] = true\n"
        "  for k, x in next, v do\n"
        "    if holds(k, s, seen) or holds(x, s, seen) then return true end\n"
        "  end\n"
        "  return false\n"
        "end\n"
        "local ref_client\n"
        "-- a client made with credential s shows it nowhere: not in tostring, not in\n"
        "-- any field (unless a client made with another secret shows the same text)\n"
        "local function connect_props(s)\n"
        "  ref_client = ref_client or stream.connect('fuzz-key', '\\1')\n"
        "  local ok, c = pcall(stream.connect, 'fuzz-key', s)\n"
        "  if ok then\n"
        "    if #s >= 4 and (tostring(c):find(s, 1, true) or holds(c, s, {}))\n"
        "        and not (tostring(ref_client):find(s, 1, true) or holds(ref_client, s, {})) then\n"
        "      fail('client made with credential %s shows it: %s', q(s), q(tostring(c))) end\n"
        "    c:close()\n"
        "  end\n"
        "  ok, c = pcall(stream.connect, 'fuzz-key', 'fuzz-secret', { base_url = s })\n"
        "  if ok then c:close() end\n"
        "end\n"
        "-- stream.connect() from the environment (os.getenv answers from the input)\n"
        "local env = {}\n"
        "os.getenv = function(name) return env[name] end\n"
        "local function env_connect(e)\n"
        "  env = e\n"
        "  local ok, c = pcall(stream.connect)\n"
        "  env = {}\n"
        "  if not ok then return nil, c end\n"
        "  local base = c.base_url\n"
        "  c:close()\n"
        "  return base\n"
        "end\n"
        "local function env_props(s)\n"
        "  -- STREAM_REGION names a location: https://LOC-api.stream-io-api.com/ with\n"
        "  -- LOC of letters, digits and '-' (as the location option), else an error\n"
        "  local base, err = env_connect({ STREAM_API_KEY = 'k', STREAM_API_SECRET = 'fuzz-secret', STREAM_REGION = s })\n"
        "  local want = s == '' and 'https://api.stream-io-api.com/api/v1.0/'\n"
        "    or s:find('^[%w%-]+$') and 'https://' .. s .. '-api.stream-io-api.com/api/v1.0/'\n"
        "  if base and base ~= want then\n"
        "    fail('STREAM_REGION %s gives the base URL %s', q(s), q(base)) end\n"
        "  if s ~= '' then\n"
        "    -- STREAM_URL: no error shows it; the base URL is the documented one\n"
        "    base, err = env_connect({ STREAM_URL = s })\n"
        "    if not base then\n"
        "      no_echo(err, s, select(2, env_connect({ STREAM_URL = '\\0' })), 'connect with STREAM_URL')\n"
        "      return\n"
        "    end\n"
        "    local r = config.parse_stream_url(s)\n"
        "    if r.base_url then host_props(base, s) end\n"
        "    if r.location and base ~= 'https://' .. r.location .. '-api.stream-io-api.com/api/v1.0/' then\n"
        "      fail('STREAM_URL %s gives the base URL %s', q(s), q(base)) end\n"
        "  end\n"
        "end\n"
        "return function(s, a, b, c)\n"
        "  b64_props(s)\n"
        "  payload(s, 'the input')\n"
        "  local tok = b64e(a) .. '.' .. b64e(b) .. '.' .. b64e(c)\n"
        "  local claims = payload(tok, 'b64(a).b64(b).b64(c)')\n"
        "  local want = #a > 0 and #b > 0 and #c > 0 and is_token_header(a)\n"
        "    and type(decode(b)) == 'table'\n"
        "  if (claims ~= nil) ~= want then\n"
        "    fail('token_payload(%s) = %s, expected %s', q(tok), tostring(claims), tostring(want)) end\n"
        "  url_props(s)\n"
        "  url_props('https://' .. a .. ':' .. b .. '@' .. c)\n"
        "  base_props(s)\n"
        "  base_props('http://' .. s)\n"
        "  local ok, err = pcall(config.from_env, function(name)\n"
        "    if name == 'STREAM_URL' then return s end\n"
        "    if name == 'STREAM_BASE_URL' then return a end\n"
        "  end)\n"
        "  if not ok then\n"
        "    no_echo(err, s, ref_error(config.from_env, function() return '\\0' end), 'from_env')\n"
        "  end\n"
        "  connect_props(s)\n"
        "  env_props(s)\n"
        "end\n";
}

/* Pushes s and its parts a, b, c (split at the first two 0xff bytes). */
static int fuzz_push_input(lua_State *L, const uint8_t *data, size_t size)
{
    const char *s = (const char *)data, *end = s + size, *p1, *p2;

    p1 = memchr(s, 0xff, size);
    if (p1 == NULL)
        p1 = end;
    p2 = p1 < end ? memchr(p1 + 1, 0xff, (size_t)(end - p1 - 1)) : NULL;
    if (p2 == NULL)
        p2 = end;

    lua_pushlstring(L, s, size);
    lua_pushlstring(L, s, (size_t)(p1 - s));
    lua_pushlstring(L, p1 < end ? p1 + 1 : end, p1 < end ? (size_t)(p2 - p1 - 1) : 0);
    lua_pushlstring(L, p2 < end ? p2 + 1 : end, p2 < end ? (size_t)(end - p2 - 1) : 0);
    return 4;
}
