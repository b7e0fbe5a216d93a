-- stream_local.jwt: verification of HS256 JSON Web Tokens for the local server.
--
-- What it does:
--   * verify(token, secret, now) checks a compact JWS: exactly three base64url segments
--     (no padding, canonical encoding), a header that is a JSON object with
--     "alg":"HS256" (anything else, "none" included, is refused), an HMAC-SHA256 signature
--     over "header.payload" computed with OpenSSL's libcrypto through the LuaJIT FFI and
--     compared in constant time, a payload that is a JSON object, and the time claims
--     `exp` (expired when now >= exp) and `nbf` (refused when now < nbf) when present.
--     It returns the payload tree (a stream_local.json object) or nil and a reason.
--
-- What it deliberately does not do:
--   * It shares no code with the client's signing code (csrc/): HMAC comes from libcrypto,
--     base64url decoding and the comparison are written here.
--   * No signing (the server never issues tokens), no other algorithms, no `iat`, `aud`,
--     `iss` checks, no leeway on `exp`.
--   * It knows nothing about Stream claims (`resource`, `user_id`, `action`): that is the
--     app's business.

local ffi = require "ffi"
local bit = require "bit"
local json = require "stream_local.json"

local byte, char, concat = string.byte, string.char, table.concat
local floor = math.floor
local bxor, bor = bit.bxor, bit.bor
local pcall, tonumber, type, error = pcall, tonumber, type, error

local M = {}

-- HMAC-SHA256 through libcrypto -------------------------------------------

pcall(ffi.cdef, [[
typedef struct evp_md_st EVP_MD;
]])
pcall(ffi.cdef, [[
const EVP_MD *EVP_sha256(void);
unsigned char *HMAC(const EVP_MD *evp_md, const void *key, int key_len,
                    const unsigned char *d, size_t n, unsigned char *md,
                    unsigned int *md_len);
]])

-- nginx is linked against libcrypto, so the symbols are normally in the process already.
local crypto
do
  local ok = pcall(function() return ffi.C.HMAC ~= nil and ffi.C.EVP_sha256 ~= nil end)
  if ok then
    crypto = ffi.C
  else
    crypto = ffi.load("libcrypto.so.3")
  end
end

local md_buf = ffi.new("unsigned char[64]")
local md_len = ffi.new("unsigned int[1]")

-- hmac_sha256(key, msg) -> 32 raw bytes
function M.hmac_sha256(key, msg)
  local r = crypto.HMAC(crypto.EVP_sha256(), key, #key, msg, #msg, md_buf, md_len)
  if r == nil then error("HMAC failed", 0) end
  return ffi.string(md_buf, md_len[0])
end

-- base64url ----------------------------------------------------------------

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
local DEC = {}
for i = 1, 64 do DEC[byte(B64, i)] = i - 1 end

-- Strict base64url decoding (RFC 4648 section 5, no padding, unused bits must be zero).
function M.b64url_decode(s)
  local n = #s
  if n % 4 == 1 then return nil end
  local out, no = {}, 0
  local i = 1
  while i <= n do
    local a, b, c, d = byte(s, i, i + 3)
    local va, vb = DEC[a], DEC[b]
    local vc, vd = c and DEC[c], d and DEC[d]
    if not va or not vb or (c and not vc) or (d and not vd) then return nil end
    if not c then
      if vb % 16 ~= 0 then return nil end
      no = no + 1; out[no] = char(va * 4 + floor(vb / 16))
    elseif not d then
      if vc % 4 ~= 0 then return nil end
      no = no + 1; out[no] = char(va * 4 + floor(vb / 16), (vb % 16) * 16 + floor(vc / 4))
    else
      no = no + 1
      out[no] = char(va * 4 + floor(vb / 16), (vb % 16) * 16 + floor(vc / 4), (vc % 4) * 64 + vd)
    end
    i = i + 4
  end
  return concat(out)
end

-- Constant-time comparison of two strings of equal, public length.
local function equal_ct(a, b)
  if #a ~= #b then return false end
  local diff = 0
  for i = 1, #a do
    diff = bor(diff, bxor(byte(a, i), byte(b, i)))
  end
  return diff == 0
end
M.equal_ct = equal_ct

-- verification -------------------------------------------------------------

local function claim_time(payload, name)
  local v = payload:get(name)
  if v == nil then return true end
  if json.kind(v) ~= "number" then return false end
  return tonumber(v.text)
end

-- verify(token, secret, now) -> payload_tree | nil, reason
function M.verify(token, secret, now)
  if type(token) ~= "string" then return nil, "no token" end
  local h64, p64, s64 = token:match("^([A-Za-z0-9_-]+)%.([A-Za-z0-9_-]+)%.([A-Za-z0-9_-]*)$")
  if not h64 then
    return nil, "the token is not a JWT (three base64url segments separated by dots)"
  end
  local htext, ptext = M.b64url_decode(h64), M.b64url_decode(p64)
  if not htext or not ptext then return nil, "the token is not valid base64url" end
  local header = json.parse(htext)
  if json.kind(header) ~= "object" then return nil, "the token header is not a JSON object" end
  local alg = header:get("alg")
  if alg ~= "HS256" then
    return nil, "the token algorithm must be HS256, got " .. (type(alg) == "string" and alg or "none")
  end
  local sig = M.b64url_decode(s64)
  if not sig or #sig ~= 32 then return nil, "signature verification failed" end
  local expected = M.hmac_sha256(secret, h64 .. "." .. p64)
  if not equal_ct(sig, expected) then return nil, "signature verification failed" end
  local payload = json.parse(ptext)
  if json.kind(payload) ~= "object" then return nil, "the token payload is not a JSON object" end
  local exp = claim_time(payload, "exp")
  if not exp then return nil, "the exp claim is not a number" end
  if exp ~= true and now >= exp then return nil, "the token has expired" end
  local nbf = claim_time(payload, "nbf")
  if not nbf then return nil, "the nbf claim is not a number" end
  if nbf ~= true and now < nbf then return nil, "the token is not valid yet (nbf)" end
  return payload
end

return M
