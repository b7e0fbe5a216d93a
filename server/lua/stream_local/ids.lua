-- stream_local.ids: activity ids, their sort keys, and activity times.
--
-- What it does:
--   * valid_user_id(id): the rule for user ids and feed ids' id half (USER_ID_RULE).
--   * parse_time(text) -> µs since the epoch | nil: ISO 8601 with or without fraction,
--     without offset (UTC), with `Z`, or with an offset (`+05:00`, `+0500`), converted to
--     UTC; fractions beyond six digits are truncated.
--   * format_time(µs) -> "2026-11-28T10:00:00.123456" (UTC, no offset, six digits).
--   * activity_id(time_us, key) -> id, sort key: the id stream-feeds-api.md section 3
--     derives from (foreign_id, time truncated to milliseconds) with MurmurHash3. `key`
--     is the foreign id, or for an activity without one the canonical JSON of its
--     content (stream_local.activity.canonical), so identical adds get one id in every
--     feed and ids are never random.
--   * sort_key(id) -> the key for an id string, nil when it is not such a UUID.
--     A sort key is 15 hex digits of the 60-bit time, then the remaining 8 bytes in hex,
--     so comparing keys as text compares (time, rest); ids themselves never are.
--   * time_of(id) -> µs since the epoch (floored) of the time fields of a UUID, the
--     tenths of a µs left over (0..9), and whether it is a version-1 UUID (the only kind
--     whose time fields are a time); nil for any other string. The one reading of an
--     id's time: a feed cursor that names no activity of the feed and a reaction cursor
--     that names no reaction both stand for it.
--   * TIME_RULE: the message for a time parse_time refuses.
--
-- What it deliberately does not do: no times from other UUID versions (a version-4 id
-- carries none), no leap seconds, no years before 1700 or after 2199 (µs since 1970
-- must stay exact in a double).

local ffi = require "ffi"
local bit = require "bit"

local bor, bxor, lshift, rshift, tobit = bit.bor, bit.bxor, bit.lshift, bit.rshift, bit.tobit
local byte, format, floor, tonumber = string.byte, string.format, math.floor, tonumber

local M = {}

-- user ids (also the id half of a feed id) ------------------------------------

M.USER_ID_RULE = "must be 1 to 255 characters of A-Z, a-z, 0-9, - and _"

function M.valid_user_id(id)
  return type(id) == "string" and #id >= 1 and #id <= 255 and id:find("^[A-Za-z0-9_-]+$") ~= nil
end

-- time ---------------------------------------------------------------------

local function days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = floor(y / 400)
  local yoe = y - era * 400
  local mp = (m + 9) % 12
  local doy = floor((153 * mp + 2) / 5) + d - 1
  local doe = yoe * 365 + floor(yoe / 4) - floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
end

-- µs since the epoch stay exact in a double (|µs| < 2^53) from 1685 to 2255
local MIN_YEAR, MAX_YEAR = 1700, 2199

local MONTH_DAYS = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 }

local function leap(y)
  return (y % 4 == 0 and y % 100 ~= 0) or y % 400 == 0
end

M.TIME_RULE = "must be an ISO 8601 time such as 2026-11-28T10:00:00.123456 (UTC, or with Z or an offset)"

function M.parse_time(text)
  if type(text) ~= "string" then return nil end
  local y, mo, d, h, mi, s, rest = text:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)[T ](%d%d):(%d%d):(%d%d)(.*)$")
  if not y then return nil end
  y, mo, d, h, mi, s = tonumber(y), tonumber(mo), tonumber(d), tonumber(h), tonumber(mi), tonumber(s)
  if y < MIN_YEAR or y > MAX_YEAR or mo < 1 or mo > 12 or d < 1 or d > MONTH_DAYS[mo]
    or (mo == 2 and d == 29 and not leap(y)) or h > 23 or mi > 59 or s > 59 then
    return nil
  end
  local us = 0
  local frac, zone = rest:match("^%.(%d+)(.*)$")
  if frac then
    us = tonumber((frac .. "00000"):sub(1, 6))
    rest = zone
  end
  local offset
  if rest == "" or rest == "Z" or rest == "z" then
    offset = 0
  else
    local sign, oh, om = rest:match("^([+-])(%d%d):?(%d%d)$")
    if not sign then return nil end
    oh, om = tonumber(oh), tonumber(om)
    if oh > 23 or om > 59 then return nil end
    offset = (oh * 60 + om) * 60
    if sign == "-" then offset = -offset end
  end
  local secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s - offset
  return secs * 1000000 + us
end

function M.format_time(us)
  local sec = floor(us / 1000000)
  return os.date("!%Y-%m-%dT%H:%M:%S", sec) .. format(".%06d", us - sec * 1000000)
end

-- MurmurHash3 x86 32-bit ---------------------------------------------------

local function u32(x) return x % 4294967296 end

-- a * b mod 2^32 for a, b in [0, 2^32), exact in doubles
local function mul32(a, b)
  local alo, ahi = a % 65536, floor(a / 65536)
  return ((ahi * b) % 65536 * 65536 + alo * b) % 4294967296
end

local function rotl(x, r)
  return u32(bor(lshift(x, r), rshift(x, 32 - r)))
end

local C1, C2 = 0xcc9e2d51, 0x1b873593

-- murmur3(s) -> the hash as a signed int32
function M.murmur3(s)
  local h = 0
  local len = #s
  local nblocks = floor(len / 4)
  for i = 0, nblocks - 1 do
    local b1, b2, b3, b4 = byte(s, i * 4 + 1, i * 4 + 4)
    local k = b1 + b2 * 256 + b3 * 65536 + b4 * 16777216
    k = mul32(rotl(mul32(k, C1), 15), C2)
    h = u32(bxor(h, k))
    h = rotl(h, 13)
    h = (h * 5 + 0xe6546b64) % 4294967296
  end
  local tail = nblocks * 4
  local k = 0
  local r = len % 4
  if r >= 3 then k = u32(bxor(k, lshift(byte(s, tail + 3), 16))) end
  if r >= 2 then k = u32(bxor(k, lshift(byte(s, tail + 2), 8))) end
  if r >= 1 then
    k = u32(bxor(k, byte(s, tail + 1)))
    k = mul32(rotl(mul32(k, C1), 15), C2)
    h = u32(bxor(h, k))
  end
  h = u32(bxor(h, len))
  h = u32(bxor(h, rshift(h, 16)))
  h = mul32(h, 0x85ebca6b)
  h = u32(bxor(h, rshift(h, 13)))
  h = mul32(h, 0xc2b2ae35)
  h = u32(bxor(h, rshift(h, 16)))
  return tobit(h)
end

-- ids ----------------------------------------------------------------------

local GREGORIAN_OFFSET = ffi.new("int64_t", 12219292800000) * 10000 -- 100 ns units, 1582 -> 1970
local I64 = ffi.typeof("int64_t") -- signed: times before 1970 are negative

-- (time in 100-ns units as uint64, 16 hex digits of clock sequence and node) -> id, sk
local function compose(t, rest)
  local lo = tonumber(t % 4294967296)
  local hi = tonumber(t / 4294967296) -- 28 bits
  local mid, top = hi % 65536, floor(hi / 65536) % 4096
  local id = format("%08x-%04x-%04x-%s-%s", lo, mid, 0x1000 + top, rest:sub(1, 4), rest:sub(5, 16))
  return id, format("%03x%04x%08x", top, mid, lo) .. rest
end

local function node_of_foreign_id(foreign_id)
  local h = M.murmur3(foreign_id)
  local d
  if h > 0 then d = h + 4294967296 else d = -h end
  d = d + 0x800000000000
  return format("%04x%08x", floor(d / 4294967296) % 65536, d % 4294967296)
end

-- activity_id(time_us, key) -> id, sort key; key: the foreign id, or the canonical
-- JSON of an activity without one
function M.activity_id(time_us, key)
  local ms = floor(time_us / 1000)
  local t = I64(ms) * 10000 + GREGORIAN_OFFSET
  return compose(t, "8080" .. node_of_foreign_id(key))
end

function M.sort_key(id)
  if type(id) ~= "string" then return nil end
  local lo, mid, top, clock, node = id:match("^(%x%x%x%x%x%x%x%x)%-(%x%x%x%x)%-%x(%x%x%x)%-(%x%x%x%x)%-(%x+)$")
  if not lo or #node ~= 12 then return nil end
  return (top .. mid .. lo .. clock .. node):lower()
end

-- time_of(id) -> µs since the epoch (floored), tenths of a µs (0..9), is_v1 | nil: the
-- 60-bit count of 100-ns intervals since 1582-10-15 in the time fields of a UUID, kept
-- whole in int64 so no precision is lost on the way. Only a version-1 UUID (version
-- nibble 1, is_v1 true) really carries a time; in others those bits are whatever the
-- id holds, and the caller decides what such a cursor means.
local UUID_FIELDS = "^(%x%x%x%x%x%x%x%x)%-(%x%x%x%x)%-(%x)(%x%x%x)%-%x%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$"
function M.time_of(id)
  if type(id) ~= "string" then return nil end
  local lo, mid, version, hi = id:match(UUID_FIELDS)
  if not lo then return nil end
  local d = (I64(tonumber(hi .. mid, 16)) * 4294967296 + tonumber(lo, 16)) - GREGORIAN_OFFSET
  local us = d / 10 -- int64 division truncates toward zero: floor it for times before 1970
  local tenths = d - us * 10
  if tenths < 0 then
    us, tenths = us - 1, tenths + 10
  end
  return tonumber(us), tonumber(tenths), version == "1"
end

return M
